"""PyTorch eager fp32: the reference every other backend is compared with."""

from __future__ import annotations

import numpy as np
import torch
from transformers import GPT2LMHeadModel

from perfsuite.backends.base import Backend, BackendSettings, CacheState
from perfsuite.models.source import LoadedModel


class TorchBackend(Backend):
    """Runs a GPT2LMHeadModel in eval mode under ``torch.inference_mode``."""

    backend_id = "torch-fp32"

    def __init__(self, loaded: LoadedModel, settings: BackendSettings) -> None:
        super().__init__(loaded, settings)
        self.model = self.prepare_model(loaded.model)

    def prepare_model(self, model: GPT2LMHeadModel) -> torch.nn.Module:
        """Return the module to run; subclasses return a converted copy and leave ``model`` untouched."""
        return model.eval()

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, CacheState]:
        return self._forward(input_ids, cache=None)

    def decode(self, token_ids: np.ndarray, state: CacheState) -> tuple[np.ndarray, CacheState]:
        return self._forward(token_ids, cache=state)

    def details(self) -> dict[str, object]:
        return {**super().details(), "torch_threads": torch.get_num_threads(), "dtype": "float32"}

    def _forward(self, input_ids: np.ndarray, cache: CacheState) -> tuple[np.ndarray, CacheState]:
        # logits_to_keep=1 computes lm_head for the last position only, as generation does.
        with torch.inference_mode():
            output = self.model(
                input_ids=torch.from_numpy(input_ids),
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        return output.logits[:, -1, :].numpy(), output.cache
