"""Synthetic GPT-2 models: real geometry, weights drawn from a fixed seed.

Latency of a transformer depends on its geometry (layers, heads, width, positions,
vocabulary), not on its weight values, so a seeded model with distilgpt2's geometry
times like distilgpt2 on machines that cannot download it. Its generated text is
meaningless, and every report marks the model as synthetic.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
from transformers import GPT2Config, GPT2LMHeadModel

logger = logging.getLogger(__name__)

GPT2_VOCAB_SIZE = 50257
SYNTHETIC_SEED = 20261204


@dataclass(frozen=True)
class SyntheticPreset:
    """The geometry of a synthetic GPT-2 and the hub model it replaces, if any."""

    name: str
    n_layer: int
    n_head: int
    n_embd: int
    n_positions: int
    stands_for: str | None

    def to_config(self) -> GPT2Config:
        return GPT2Config(
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            n_positions=self.n_positions,
            vocab_size=GPT2_VOCAB_SIZE,
            bos_token_id=GPT2_VOCAB_SIZE - 1,
            eos_token_id=GPT2_VOCAB_SIZE - 1,
        )


SYNTHETIC_PRESETS: dict[str, SyntheticPreset] = {
    # distilgpt2's published geometry: 81.9M parameters with the tied lm_head.
    "distilgpt2": SyntheticPreset("distilgpt2", 6, 12, 768, 1024, stands_for="distilgpt2"),
    # A few-MB model for unit tests; it keeps GPT-2's vocabulary so real prompts fit.
    "tiny": SyntheticPreset("tiny", 2, 2, 64, 256, stands_for=None),
}


def build_synthetic_model(preset: SyntheticPreset) -> GPT2LMHeadModel:
    """Build the preset's model in eval mode, with weights from ``SYNTHETIC_SEED``.

    The weights are the same on every run with the same torch version; the
    fingerprint recorded next to each result detects any difference.
    """
    started = time.perf_counter()
    logger.info("Building synthetic GPT-2 %r (%d layers, width %d)", preset.name, preset.n_layer, preset.n_embd)

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(SYNTHETIC_SEED)
    try:
        model = GPT2LMHeadModel(preset.to_config())
    finally:
        torch.random.set_rng_state(generator_state)

    model.eval()
    logger.info("Built synthetic model in %.1f s", time.perf_counter() - started)
    return model
