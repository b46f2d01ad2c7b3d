"""Output quality of a backend next to its speed: logit error, greedy agreement and perplexity.

Every figure goes through the ``Backend`` interface (``prefill`` and ``decode``), so each
backend is scored by the same code as the reference it is compared with, torch-fp32.

- ``max_abs_logit_diff`` and ``greedy_agreement`` are teacher-forced: both backends are fed
  the reference's greedy tokens, so one flipped token does not derail the rest of the
  comparison.
- ``perplexity`` is measured on a fixed passage of real text (CPython's pydoc topics) that
  lies after the first ``PERPLEXITY_TEXT_OFFSET_TOKENS`` tokens of the corpus. Prompts are
  always cut from the start of the corpus and never exceed the model's positions (1024 for
  distilgpt2), so no prompt contains that passage.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from transformers import PreTrainedTokenizerBase

from perfsuite.backends.base import Backend
from perfsuite.errors import InvalidOptionError
from perfsuite.prompts import Prompt, corpus_text

logger = logging.getLogger(__name__)

DEFAULT_STEPS = 32
DEFAULT_PERPLEXITY_TOKENS = 256
PERPLEXITY_TEXT_OFFSET_TOKENS = 1024
SYNTHETIC_PERPLEXITY_NOTE = "synthetic weights: perplexity has no meaning"
# GPT-2's BPE averages about 4 characters per token on English prose; read twice that to be safe.
_CHARS_PER_TOKEN_BOUND = 8


@dataclass(frozen=True)
class QualityResult:
    """Agreement of a backend with the reference on the same prompts, and its perplexity.

    ``steps`` is the number of teacher-forced positions compared over all prompts
    (``len(prompt_lengths) * steps_per_prompt``) and the denominator of ``greedy_agreement``.
    ``perplexity`` is None when it has no meaning, and ``perplexity_note`` then gives the reason.
    """

    backend_id: str
    reference_id: str
    prompt_lengths: tuple[int, ...]
    steps_per_prompt: int
    steps: int
    max_abs_logit_diff: float
    greedy_agreement: float
    perplexity: float | None
    perplexity_tokens: int
    perplexity_note: str | None

    def to_record(self) -> dict[str, object]:
        """Return the result as a JSON-serializable dictionary."""
        record = asdict(self)
        record["prompt_lengths"] = list(self.prompt_lengths)
        return record


def compute_quality(
    backend: Backend,
    reference: Backend,
    prompts: Sequence[Prompt],
    steps: int = DEFAULT_STEPS,
    perplexity_tokens: int = DEFAULT_PERPLEXITY_TOKENS,
) -> QualityResult:
    """Compare ``backend`` with the already built ``reference`` on ``prompts`` and score its perplexity.

    Each prompt contributes ``steps`` positions: the prefill's next-token logits and
    ``steps - 1`` teacher-forced decode steps. Raises InvalidOptionError when the two backends
    run different models or the counts are out of range, and PromptTooLongError when a prompt
    plus ``steps`` tokens, or the perplexity passage, does not fit the model's positions.
    """
    _check_request(backend, reference, prompts, steps, perplexity_tokens)
    logger.info("Comparing backend %s with %s on %d prompts", backend.backend_id, reference.backend_id, len(prompts))

    max_diffs = []
    agreed = 0
    for prompt in prompts:
        prompt_max_diff, prompt_agreed = compare_teacher_forced(backend, reference, prompt, steps)
        max_diffs.append(prompt_max_diff)
        agreed += prompt_agreed

    perplexity, note = _perplexity_or_note(backend, perplexity_tokens)
    total_steps = steps * len(prompts)

    return QualityResult(
        backend_id=backend.backend_id,
        reference_id=reference.backend_id,
        prompt_lengths=tuple(prompt.n_tokens for prompt in prompts),
        steps_per_prompt=steps,
        steps=total_steps,
        # np.max, unlike max(), propagates a NaN logit into the result instead of hiding it.
        max_abs_logit_diff=float(np.max(max_diffs)),
        greedy_agreement=agreed / total_steps,
        perplexity=perplexity,
        perplexity_tokens=perplexity_tokens,
        perplexity_note=note,
    )


def _check_request(
    backend: Backend, reference: Backend, prompts: Sequence[Prompt], steps: int, perplexity_tokens: int
) -> None:
    backend_model = backend.loaded.info.fingerprint
    reference_model = reference.loaded.info.fingerprint
    if backend_model != reference_model:
        raise InvalidOptionError(
            f"backend {backend.backend_id!r} runs model {backend_model} but reference {reference.backend_id!r} "
            f"runs {reference_model}; build both from the same LoadedModel"
        )

    if not prompts:
        raise InvalidOptionError("no prompts to compare on; pass at least one Prompt")
    if steps < 1:
        raise InvalidOptionError(f"steps must be at least 1, got {steps}")
    if perplexity_tokens < 2:
        raise InvalidOptionError(f"perplexity_tokens must be at least 2 (one context and one scored token), got {perplexity_tokens}")


def compare_teacher_forced(backend: Backend, reference: Backend, prompt: Prompt, steps: int) -> tuple[float, int]:
    """Return the max absolute logit difference over ``steps`` positions and how many argmaxes agree.

    Both backends run the prompt, then ``steps - 1`` decode steps on the reference's greedy
    tokens. Differences are computed in float64.
    """
    reference.check_fits(prompt.n_tokens, steps)
    backend.check_fits(prompt.n_tokens, steps)
    input_ids = prompt.as_batch()

    reference_logits, reference_state = reference.prefill(input_ids)
    logits, state = backend.prefill(input_ids)

    diffs = []
    agreed = 0
    for step in range(steps):
        diffs.append(np.max(np.abs(logits.astype(np.float64) - reference_logits.astype(np.float64))))
        reference_tokens = reference_logits.argmax(axis=-1)
        agreed += int(logits.argmax(axis=-1)[0] == reference_tokens[0])

        if step < steps - 1:
            forced = reference_tokens[:, None]
            reference_logits, reference_state = reference.decode(forced, reference_state)
            logits, state = backend.decode(forced, state)

    return float(np.max(diffs)), agreed


def perplexity_token_ids(tokenizer: PreTrainedTokenizerBase, n_tokens: int) -> tuple[int, ...]:
    """Return the fixed perplexity passage: ``n_tokens`` corpus tokens after the first ``PERPLEXITY_TEXT_OFFSET_TOKENS``.

    Raises InvalidOptionError when the corpus is shorter than the offset plus ``n_tokens``.
    """
    needed = PERPLEXITY_TEXT_OFFSET_TOKENS + n_tokens
    text = corpus_text(needed * _CHARS_PER_TOKEN_BOUND)
    ids = tokenizer.encode(text, add_special_tokens=False)

    if len(ids) < needed:
        raise InvalidOptionError(
            f"the corpus has {len(ids)} tokens, fewer than the {needed} that a perplexity passage of "
            f"{n_tokens} tokens needs; pass a smaller perplexity_tokens"
        )

    return tuple(ids[PERPLEXITY_TEXT_OFFSET_TOKENS:needed])


def backend_perplexity(backend: Backend, token_ids: Sequence[int]) -> float:
    """Return ``exp(mean NLL)`` of ``token_ids[1:]``, each given the tokens before it.

    Runs ``prefill`` on the first token, then one ``decode`` per token, and accumulates the
    log-softmax of each actual next token in float64.
    """
    if len(token_ids) < 2:
        raise InvalidOptionError(f"perplexity needs at least 2 tokens, got {len(token_ids)}")

    ids = np.asarray([token_ids], dtype=np.int64)
    backend.check_fits(1, len(token_ids) - 1)

    logits, state = backend.prefill(ids[:, :1])
    total_log_probability = 0.0
    for position in range(1, len(token_ids)):
        total_log_probability += _log_softmax_at(logits[0], int(ids[0, position]))
        if position < len(token_ids) - 1:
            logits, state = backend.decode(ids[:, position : position + 1], state)

    return math.exp(-total_log_probability / (len(token_ids) - 1))


def _log_softmax_at(logits: np.ndarray, token: int) -> float:
    values = logits.astype(np.float64)
    largest = values.max()
    log_normalizer = largest + math.log(np.exp(values - largest).sum())
    return float(values[token] - log_normalizer)


def _perplexity_or_note(backend: Backend, n_tokens: int) -> tuple[float | None, str | None]:
    if backend.loaded.info.synthetic:
        return None, SYNTHETIC_PERPLEXITY_NOTE

    token_ids = perplexity_token_ids(backend.loaded.tokenizer, n_tokens)
    return backend_perplexity(backend, token_ids), None
