"""ONNX Runtime on a graph exported with past key/values, cached on disk between runs."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from perfsuite.backends.base import Backend, BackendSettings, CacheState
from perfsuite.environment import library_versions
from perfsuite.errors import BackendUnavailableError
from perfsuite.models.source import LoadedModel

logger = logging.getLogger(__name__)

# Bump when the exported graph's inputs, outputs or export steps change, so stale caches are not reused.
EXPORT_FORMAT_VERSION = 1
_KEY_LIBRARIES = ("torch", "transformers", "onnx", "onnxruntime")
PLAIN_GRAPH = "model.onnx"
OPTIMIZED_GRAPH = "model.optimized.onnx"
METADATA_FILE = "export.json"


@dataclass(frozen=True)
class CachedExport:
    """An exported graph on disk and how it was made."""

    directory: Path
    graph: str
    exporter: str
    export_seconds: float
    fusions: tuple[str, ...]
    from_cache: bool

    @property
    def graph_path(self) -> Path:
        return self.directory / self.graph


def export_cache_key(fingerprint: str) -> str:
    """Return the cache folder name for a model fingerprint under the installed library versions."""
    versions = library_versions()
    stamp = json.dumps(
        {"format": EXPORT_FORMAT_VERSION, **{name: versions[name] for name in _KEY_LIBRARIES}}, sort_keys=True
    )
    return f"{fingerprint}-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"


def ensure_export(loaded: LoadedModel, cache_dir: Path, threads: int) -> CachedExport:
    """Return the cached export for ``loaded``, exporting it first when the cache has none."""
    directory = cache_dir / "onnx" / export_cache_key(loaded.info.fingerprint)
    metadata_path = directory / METADATA_FILE
    if metadata_path.is_file():
        cached = _read_metadata(directory, metadata_path)
        if cached is not None:
            logger.info("Using the cached ONNX export in %s", directory)
            return cached

    return _export_into(loaded, directory, threads)


def _read_metadata(directory: Path, metadata_path: Path) -> CachedExport | None:
    try:
        fields = json.loads(metadata_path.read_text())
        cached = CachedExport(
            directory=directory,
            graph=fields["graph"],
            exporter=fields["exporter"],
            export_seconds=fields["export_seconds"],
            fusions=tuple(fields["fusions"]),
            from_cache=True,
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("Ignoring the unreadable export cache %s (%s); exporting again", metadata_path, error)
        return None

    if not cached.graph_path.is_file():
        logger.warning("The export cache %s lacks %s; exporting again", directory, cached.graph)
        return None
    return cached


def _export_into(loaded: LoadedModel, directory: Path, threads: int) -> CachedExport:
    # Imported here: the exporter pulls in onnxscript, which only this backend needs.
    from perfsuite.backends.onnx_export import OnnxExportError, export_gpt2_with_past, optimize_for_onnxruntime

    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=directory.parent))
    except OSError as error:
        raise BackendUnavailableError(
            f"cannot create the ONNX export cache under {directory.parent}: {error}; "
            f"pass a writable folder with --perf-cache-dir or PERFSUITE_CACHE_DIR"
        ) from error

    try:
        logger.info("Exporting the model to ONNX (first run only; later runs reuse %s)", directory)
        result = export_gpt2_with_past(loaded.model, staging / PLAIN_GRAPH)
        fusions = tuple(
            optimize_for_onnxruntime(staging / PLAIN_GRAPH, staging / OPTIMIZED_GRAPH, intra_op_threads=threads)
        )
        graph = OPTIMIZED_GRAPH if fusions else PLAIN_GRAPH

        metadata = {"graph": graph, "exporter": result.exporter, "export_seconds": result.seconds, "fusions": fusions}
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        _publish(staging, directory)
    except OnnxExportError as error:
        raise BackendUnavailableError(f"ONNX export failed: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    return CachedExport(directory, graph, result.exporter, result.seconds, fusions, from_cache=False)


def _publish(staging: Path, directory: Path) -> None:
    # A rename makes the cache entry appear whole; a concurrent run that got there first wins.
    try:
        staging.rename(directory)
    except OSError:
        if not (directory / METADATA_FILE).is_file():
            shutil.rmtree(directory, ignore_errors=True)
            staging.rename(directory)


def graph_weight_bytes(path: Path) -> int:
    """Return the bytes of the graph's initializers, except those only read through a Gather (embedding lookups)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    consumers: dict[str, set[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)

    total = 0
    for initializer in model.graph.initializer:
        if consumers.get(initializer.name, set()) <= {"Gather"}:
            continue
        count = int(np.prod(initializer.dims)) if initializer.dims else 1
        total += count * onnx.helper.tensor_dtype_to_np_dtype(initializer.data_type).itemsize
    return total


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime's CPU execution provider, one token per decode step with the KV cache."""

    backend_id = "onnxruntime"

    def __init__(self, loaded: LoadedModel, settings: BackendSettings) -> None:
        super().__init__(loaded, settings)
        import onnxruntime

        self.export = ensure_export(loaded, settings.cache_dir, settings.threads)
        self.graph_path = self.prepare_graph(self.export)
        self.session = onnxruntime.InferenceSession(
            str(self.graph_path), sess_options=self._session_options(), providers=["CPUExecutionProvider"]
        )

        config = loaded.model.config
        self.num_layers = config.n_layer
        self.past_shape = (config.n_head, 0, config.n_embd // config.n_head)
        self.output_names = ["logits"]
        for layer in range(self.num_layers):
            self.output_names += [f"present_key_{layer}", f"present_value_{layer}"]

    def prepare_graph(self, export: CachedExport) -> Path:
        """Return the graph to run; subclasses derive another graph from the export."""
        return export.graph_path

    @classmethod
    def check_available(cls) -> None:
        try:
            import onnxruntime  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as error:
            raise BackendUnavailableError(
                f"{error.name} is not installed; install it with: pip install onnxruntime onnxscript"
            ) from error

    def _session_options(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.settings.threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        return options

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, CacheState]:
        batch = input_ids.shape[0]
        empty = np.zeros((batch, *self.past_shape), dtype=np.float32)
        past = [empty] * (2 * self.num_layers)
        return self._run(input_ids, past, past_length=0)

    def decode(self, token_ids: np.ndarray, state: CacheState) -> tuple[np.ndarray, CacheState]:
        past, past_length = state
        return self._run(token_ids, past, past_length)

    def weight_bytes_per_token(self) -> int:
        return graph_weight_bytes(self.graph_path)

    def details(self) -> dict[str, object]:
        export = {key: value for key, value in asdict(self.export).items() if key != "directory"}
        return {
            **super().details(),
            "intra_op_threads": self.settings.threads,
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "graph": self.graph_path.name,
            "export": export,
        }

    def _run(self, input_ids: np.ndarray, past: list[np.ndarray], past_length: int) -> tuple[np.ndarray, CacheState]:
        batch, length = input_ids.shape
        positions = np.arange(past_length, past_length + length, dtype=np.int64)

        feeds = {"input_ids": input_ids, "position_ids": np.tile(positions, (batch, 1))}
        for layer in range(self.num_layers):
            feeds[f"past_key_{layer}"] = past[2 * layer]
            feeds[f"past_value_{layer}"] = past[2 * layer + 1]

        outputs = self.session.run(self.output_names, feeds)
        return outputs[0], (outputs[1:], past_length + length)
