"""The backend interface: one method per measured phase, the same greedy loop for every runtime.

A runtime implements two primitives, ``prefill`` and ``decode``, on int64 token arrays and
float32 logits. The phase methods that benchmarks time (``tokenize``, ``first_token``,
``generate``) are written once here, so every backend does exactly the same work:
greedy decoding with the KV cache, exactly N new tokens, end-of-text ignored.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from perfsuite.errors import PromptTooLongError
from perfsuite.models.source import LoadedModel
from perfsuite.timing import DEFAULT_CLOCK, Clock, GenerationTiming

# Backend-specific KV cache: a transformers Cache for torch, a list of arrays for onnxruntime.
CacheState = Any


@dataclass(frozen=True)
class BackendSettings:
    """Settings every backend applies: the intra-op thread count and the on-disk cache folder."""

    threads: int
    cache_dir: Path


class Backend(abc.ABC):
    """A runtime that runs a loaded GPT-2; built once per pytest run and reused by every benchmark."""

    backend_id: ClassVar[str]

    def __init__(self, loaded: LoadedModel, settings: BackendSettings) -> None:
        self.loaded = loaded
        self.settings = settings
        self.n_positions = loaded.info.n_positions

    def activate(self) -> None:
        """Apply process-wide settings (such as torch's thread count) before this backend is timed."""

    @classmethod
    def check_available(cls) -> None:
        """Raise BackendUnavailableError when the runtime is not installed; the default needs nothing."""

    @abc.abstractmethod
    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, CacheState]:
        """Run the prompt ``[batch, seq]`` and return the last position's logits ``[batch, vocab]`` and the cache."""

    @abc.abstractmethod
    def decode(self, token_ids: np.ndarray, state: CacheState) -> tuple[np.ndarray, CacheState]:
        """Run one token per sequence ``[batch, 1]`` against the cache; return logits ``[batch, vocab]`` and the cache."""

    def weight_bytes_per_token(self) -> int | None:
        """Return the bytes of weights one decode step reads (gathered embedding rows excluded), or None if unknown."""
        return None

    def details(self) -> dict[str, object]:
        """Return the settings that shape this backend's numbers, saved in each benchmark's extra_info."""
        return {"threads": self.settings.threads}

    def tokenize(self, text: str) -> np.ndarray:
        """Encode ``text`` into a ``[1, seq]`` int64 array of token ids."""
        ids = self.loaded.tokenizer.encode(text, add_special_tokens=False)
        return np.asarray([ids], dtype=np.int64)

    def first_token(self, input_ids: np.ndarray) -> np.ndarray:
        """Run the prompt and return the greedy next token of each sequence, ``[batch]``."""
        self.check_fits(input_ids.shape[1], new_tokens=1)
        logits, _ = self.prefill(input_ids)
        return logits.argmax(axis=-1)

    def generate(self, input_ids: np.ndarray, new_tokens: int) -> np.ndarray:
        """Greedy-decode exactly ``new_tokens`` tokens per sequence with the KV cache; returns ``[batch, new_tokens]``."""
        return self.generate_timed(input_ids, new_tokens)[0]

    def generate_timed(
        self, input_ids: np.ndarray, new_tokens: int, clock: Clock = DEFAULT_CLOCK
    ) -> tuple[np.ndarray, GenerationTiming]:
        """Run ``generate`` and return the tokens with a timestamp taken after each token was chosen."""
        if new_tokens < 1:
            raise ValueError(f"new_tokens must be at least 1, got {new_tokens}")
        self.check_fits(input_ids.shape[1], new_tokens)

        generated = np.empty((input_ids.shape[0], new_tokens), dtype=np.int64)
        token_times: list[float] = []

        started = clock()
        logits, state = self.prefill(input_ids)
        next_tokens = logits.argmax(axis=-1)
        token_times.append(clock())
        generated[:, 0] = next_tokens

        for step in range(1, new_tokens):
            logits, state = self.decode(next_tokens[:, None], state)
            next_tokens = logits.argmax(axis=-1)
            token_times.append(clock())
            generated[:, step] = next_tokens

        return generated, GenerationTiming(started=started, token_times=tuple(token_times))

    def check_fits(self, prompt_tokens: int, new_tokens: int) -> None:
        """Raise PromptTooLongError when the prompt plus new tokens exceed the model's positions."""
        check_prompt_fits(prompt_tokens, new_tokens, self.n_positions)


def check_prompt_fits(prompt_tokens: int, new_tokens: int, n_positions: int) -> None:
    """Raise PromptTooLongError naming both numbers when ``prompt + new`` exceeds ``n_positions``."""
    if prompt_tokens + new_tokens > n_positions:
        raise PromptTooLongError(
            f"a prompt of {prompt_tokens} tokens plus {new_tokens} new tokens needs "
            f"{prompt_tokens + new_tokens} positions, but the model has {n_positions}; "
            f"use a shorter prompt or fewer new tokens"
        )
