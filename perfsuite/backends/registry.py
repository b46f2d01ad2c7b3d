"""The backend registry: maps each backend id to its class. Adding a backend adds one line here."""

from __future__ import annotations

from perfsuite.backends.base import Backend
from perfsuite.backends.onnxruntime_backend import OnnxRuntimeBackend
from perfsuite.backends.onnxruntime_int8 import OnnxRuntimeInt8Backend
from perfsuite.backends.torch_fp32 import TorchBackend
from perfsuite.backends.torch_int8_dynamic import TorchInt8DynamicBackend
from perfsuite.errors import InvalidOptionError

BACKENDS: dict[str, type[Backend]] = {
    cls.backend_id: cls
    for cls in (
        TorchBackend,
        TorchInt8DynamicBackend,
        OnnxRuntimeBackend,
        OnnxRuntimeInt8Backend,
    )
}

REFERENCE_BACKEND = TorchBackend.backend_id

# Each int8 backend and the fp32 backend it quantizes, so summaries can note when int8 is slower.
INT8_COUNTERPARTS = {
    TorchInt8DynamicBackend.backend_id: TorchBackend.backend_id,
    OnnxRuntimeInt8Backend.backend_id: OnnxRuntimeBackend.backend_id,
}


def parse_backend_ids(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of backend ids, or ``all``; raise InvalidOptionError on an unknown id."""
    requested = [part.strip() for part in text.split(",") if part.strip()]
    if not requested or requested == ["all"]:
        return tuple(BACKENDS)

    unknown = [backend_id for backend_id in requested if backend_id not in BACKENDS]
    if unknown:
        raise InvalidOptionError(
            f"unknown backend id {', '.join(map(repr, unknown))}; valid ids: {', '.join(BACKENDS)} (or 'all')"
        )

    return tuple(dict.fromkeys(requested))
