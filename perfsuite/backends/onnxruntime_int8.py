"""ONNX Runtime dynamic int8: onnxruntime's own dynamic quantization of the exported graph.

Whether int8 pays off depends on the CPU's integer kernels, so this backend may well be
slower than its fp32 graph. The run summary prints a note when it is.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import onnx
from onnx import numpy_helper

from perfsuite.backends.onnxruntime_backend import PLAIN_GRAPH, CachedExport, OnnxRuntimeBackend
from perfsuite.errors import BackendUnavailableError

logger = logging.getLogger(__name__)

INT8_GRAPH = "model.int8.onnx"
INT8_MATMUL_OPS = ("MatMulInteger", "DynamicQuantizeMatMul")


def fold_transposed_weights(model: onnx.ModelProto) -> int:
    """Replace each Transpose of an initializer by a transposed initializer; return how many were folded.

    The exporter writes the tied ``lm_head`` as ``MatMul(x, Transpose(wte))``. onnxruntime's
    dynamic quantization only quantizes a MatMul whose weight is a constant, so without
    this step ``lm_head``, the largest matrix of the model, would stay fp32.
    """
    initializers = {initializer.name: initializer for initializer in model.graph.initializer}
    folded = []

    for node in model.graph.node:
        if node.op_type != "Transpose" or node.input[0] not in initializers:
            continue
        weight = numpy_helper.to_array(initializers[node.input[0]])
        permutation = next((list(attribute.ints) for attribute in node.attribute if attribute.name == "perm"), None)
        transposed = weight.transpose(permutation) if permutation else weight.T
        model.graph.initializer.append(numpy_helper.from_array(transposed.copy(), name=node.output[0]))
        folded.append(node)

    for node in folded:
        model.graph.node.remove(node)
    return len(folded)


def count_int8_matmuls(path: Path) -> int:
    """Count the integer matrix multiplications in the graph at ``path``."""
    model = onnx.load(str(path), load_external_data=False)
    return sum(node.op_type in INT8_MATMUL_OPS for node in model.graph.node)


def quantize_graph_int8(export: CachedExport) -> Path:
    """Return the dynamic-int8 copy of the export's plain graph, quantizing it once into the export folder."""
    target = export.directory / INT8_GRAPH
    if target.is_file():
        logger.info("Using the cached int8 graph %s", target)
        return target

    from onnxruntime.quantization import QuantType, quantize_dynamic

    started = time.perf_counter()
    logger.info("Quantizing %s to dynamic int8 (first run only)", export.directory / PLAIN_GRAPH)
    staging = Path(tempfile.mkdtemp(prefix=".int8-", dir=export.directory))

    try:
        model = onnx.load(str(export.directory / PLAIN_GRAPH))
        logger.info("Folded %d transposed weights into constants", fold_transposed_weights(model))
        onnx.save(model, str(staging / "folded.onnx"), save_as_external_data=True, location="folded.onnx.data")

        quantize_dynamic(str(staging / "folded.onnx"), str(staging / INT8_GRAPH), weight_type=QuantType.QInt8)
        (staging / INT8_GRAPH).replace(target)
    except (OSError, RuntimeError, ValueError) as error:
        raise BackendUnavailableError(f"onnxruntime dynamic int8 quantization of {export.directory} failed: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    logger.info("Quantized to int8 in %.1f s", time.perf_counter() - started)
    return target


class OnnxRuntimeInt8Backend(OnnxRuntimeBackend):
    """The onnxruntime backend on a dynamic-int8 graph: int8 MatMul weights, activations quantized per call."""

    backend_id = "onnxruntime-int8"

    def prepare_graph(self, export: CachedExport) -> Path:
        graph = quantize_graph_int8(export)
        self.int8_matmuls = count_int8_matmuls(graph)
        return graph

    def details(self) -> dict[str, object]:
        return {
            **super().details(),
            "dtype": "int8 weights (QInt8), activations quantized per call",
            "int8_matmuls": self.int8_matmuls,
        }
