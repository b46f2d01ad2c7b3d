"""PyTorch eager fp32: the reference every other backend is compared with."""

from __future__ import annotations

import numpy as np
import torch
from transformers import GPT2LMHeadModel

from perfsuite.backends.base import Backend, BackendSettings, CacheState
from perfsuite.models.source import LoadedModel


def module_weight_bytes(model: torch.nn.Module) -> int:
    """Return the bytes of parameters and packed int8 weights outside embedding tables.

    An embedding lookup reads one row per token, so embedding tables are left out; a
    table tied to ``lm_head`` is still counted once, through ``lm_head``.
    """
    seen: set[int] = set()
    # Unpacked int8 weights are new tensors; keeping them alive stops a freed address from being reused.
    counted: list[torch.Tensor] = []
    total = 0

    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            continue
        tensors = list(module.parameters(recurse=False))
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            weight, bias = module._weight_bias()
            tensors = [weight] + ([bias] if bias is not None else [])
        for tensor in tensors:
            if id(tensor) in seen or tensor.data_ptr() in seen:
                continue
            seen.update({id(tensor), tensor.data_ptr()})
            counted.append(tensor)
            total += tensor.numel() * tensor.element_size()

    return total


class TorchBackend(Backend):
    """Runs a GPT2LMHeadModel in eval mode under ``torch.inference_mode``."""

    backend_id = "torch-fp32"

    def __init__(self, loaded: LoadedModel, settings: BackendSettings) -> None:
        super().__init__(loaded, settings)
        self.model = self.prepare_model(loaded.model)

    def prepare_model(self, model: GPT2LMHeadModel) -> torch.nn.Module:
        """Return the module to run; subclasses return a converted copy and leave ``model`` untouched."""
        return model.eval()

    def activate(self) -> None:
        # torch's intra-op thread count is process-wide, and backends built for other counts share the process.
        torch.set_num_threads(self.settings.threads)

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, CacheState]:
        return self._forward(input_ids, cache=None)

    def decode(self, token_ids: np.ndarray, state: CacheState) -> tuple[np.ndarray, CacheState]:
        return self._forward(token_ids, cache=state)

    def weight_bytes_per_token(self) -> int:
        return module_weight_bytes(self.model)

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
