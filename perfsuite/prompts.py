"""Prompts: real English text cut at exact token counts.

The text is CPython's own documentation (``pydoc_data.topics``, shipped with every
CPython), so prompts are real prose and code written independently of this suite, available offline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydoc_data.topics import topics
from transformers import PreTrainedTokenizerBase

from perfsuite.errors import InvalidOptionError

# About 4 characters per GPT-2 token in English prose; read this many characters per token wanted.
_CHARS_PER_TOKEN_BOUND = 8


@dataclass(frozen=True)
class Prompt:
    """A prompt of exactly ``len(ids)`` tokens; ``text`` is those tokens decoded."""

    text: str
    ids: tuple[int, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    def as_batch(self, batch_size: int = 1) -> np.ndarray:
        """Return the ids repeated into a ``[batch_size, n_tokens]`` int64 array."""
        return np.tile(np.asarray(self.ids, dtype=np.int64), (batch_size, 1))


def corpus_text(min_chars: int) -> str:
    """Return at least ``min_chars`` characters of pydoc topics, in sorted topic order."""
    pieces: list[str] = []
    total = 0

    for name in sorted(topics):
        pieces.append(topics[name].strip())
        total += len(pieces[-1]) + 2
        if total >= min_chars:
            break

    return "\n\n".join(pieces)


def make_prompt(tokenizer: PreTrainedTokenizerBase, n_tokens: int) -> Prompt:
    """Cut the corpus at exactly ``n_tokens`` tokens.

    Raises InvalidOptionError for a count below 1 or beyond the corpus.
    """
    if n_tokens < 1:
        raise InvalidOptionError(f"prompt length must be at least 1 token, got {n_tokens}")

    text = corpus_text(n_tokens * _CHARS_PER_TOKEN_BOUND)
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) < n_tokens:
        raise InvalidOptionError(f"prompt length {n_tokens} exceeds the {len(ids)} tokens of the prompt corpus")

    kept = tuple(ids[:n_tokens])
    return Prompt(text=tokenizer.decode(list(kept)), ids=kept)
