"""PyTorch dynamic int8: int8 weights, activations quantized per call, on every projection.

GPT-2's attention and MLP projections are transformers' ``Conv1D`` (a transposed linear
layer), which ``quantize_dynamic({nn.Linear})`` does not recognize. Left alone, only
``lm_head`` would be quantized. Each ``Conv1D`` is first replaced by the equivalent
``nn.Linear``, so all four projections of every block and ``lm_head`` run int8.
"""

from __future__ import annotations

import copy
import logging
import warnings

import torch
from torch import nn
from transformers import GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

from perfsuite.backends.torch_fp32 import TorchBackend

logger = logging.getLogger(__name__)


def conv1d_to_linear(conv: Conv1D) -> nn.Linear:
    """Return an ``nn.Linear`` that computes the same function as ``conv``.

    ``Conv1D`` stores its weight as ``[in_features, out_features]`` and computes
    ``x @ W + b``; ``nn.Linear`` stores ``[out_features, in_features]``.
    """
    in_features, out_features = conv.weight.shape
    linear = nn.Linear(in_features, out_features, bias=conv.bias is not None)

    with torch.no_grad():
        linear.weight.copy_(conv.weight.t())
        if conv.bias is not None:
            linear.bias.copy_(conv.bias)

    return linear


def replace_conv1d_with_linear(model: nn.Module) -> int:
    """Replace every ``Conv1D`` in ``model`` in place and return how many were replaced."""
    targets = [(name, module) for name, module in model.named_modules() if isinstance(module, Conv1D)]

    for name, conv in targets:
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child_name, conv1d_to_linear(conv))

    return len(targets)


def quantize_dynamic_int8(model: GPT2LMHeadModel) -> nn.Module:
    """Return an int8 dynamic-quantized copy of ``model``; ``model`` itself is not modified."""
    converted = copy.deepcopy(model).eval()
    replaced = replace_conv1d_with_linear(converted)
    logger.info("Replaced %d Conv1D projections with nn.Linear before quantization", replaced)

    # NOTE: torch.ao.quantization warns that it will be removed; torchao's quantize_() with
    # Int8DynamicActivationInt8WeightConfig replaces it. pyproject.toml pins a torch range where it works.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(torch\.ao\.quantization|quantized tensor creation).*")
        quantized = torch.ao.quantization.quantize_dynamic(converted, {nn.Linear}, dtype=torch.qint8)

    return quantized


def count_int8_modules(model: nn.Module) -> int:
    """Count the dynamic-quantized linear modules in ``model``."""
    return sum(isinstance(module, torch.ao.nn.quantized.dynamic.Linear) for module in model.modules())


class TorchInt8DynamicBackend(TorchBackend):
    """torch-fp32's runner on a copy whose projections and lm_head are dynamic int8."""

    backend_id = "torch-int8-dynamic"

    def prepare_model(self, model: GPT2LMHeadModel) -> nn.Module:
        quantized = quantize_dynamic_int8(model)
        self.int8_modules = count_int8_modules(quantized)
        logger.info("Quantized %d modules to dynamic int8 (engine %s)", self.int8_modules, torch.backends.quantized.engine)
        return quantized

    def details(self) -> dict[str, object]:
        return {
            **super().details(),
            "dtype": "int8 weights, fp32 activations quantized per call",
            "int8_modules": self.int8_modules,
            "quantized_engine": torch.backends.quantized.engine,
        }
