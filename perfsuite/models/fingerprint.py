"""Fingerprints that identify a model by its configuration and weight values."""

from __future__ import annotations

import hashlib
import json

import torch

FINGERPRINT_CHARS = 16

# Config keys that name where or with what a model was saved, not what it computes.
_IGNORED_CONFIG_KEYS = frozenset({"_name_or_path", "transformers_version", "architectures", "torch_dtype", "dtype"})


def fingerprint_model(model: torch.nn.Module) -> str:
    """Return a short sha256 of the model's config and every tensor in its state dict.

    Two models with the same fingerprint compute the same function; a different
    weight value, shape, dtype or geometry gives a different fingerprint.
    """
    digest = hashlib.sha256()
    digest.update(_config_bytes(model))

    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())

    return digest.hexdigest()[:FINGERPRINT_CHARS]


def _config_bytes(model: torch.nn.Module) -> bytes:
    config = getattr(model, "config", None)
    if config is None:
        return b""

    values = {key: value for key, value in config.to_dict().items() if key not in _IGNORED_CONFIG_KEYS}
    return json.dumps(values, sort_keys=True, default=str).encode()
