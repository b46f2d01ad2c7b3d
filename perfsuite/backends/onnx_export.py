"""Export a Hugging Face GPT-2 to ONNX with past key/values, and optionally fuse it for onnxruntime.

The exported graph runs one prefill and then one token per decode step with the KV cache:

- inputs: ``input_ids`` and ``position_ids`` ``[batch, seq]`` int64, and per layer ``i``
  ``past_key_{i}`` and ``past_value_{i}`` ``[batch, heads, past_seq, head_dim]`` float32;
- outputs: ``logits`` ``[batch, vocab]`` float32 for the last position only, and per layer
  ``present_key_{i}`` and ``present_value_{i}`` ``[batch, heads, past_seq + seq, head_dim]``.

Prefill passes past tensors with ``past_seq = 0``. No attention mask input exists, so every
sequence in a batch must have the same length. Causal masking inside ``seq`` is part of the graph.
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from transformers import DynamicCache, GPT2LMHeadModel

from perfsuite.errors import PerfsuiteError

logger = logging.getLogger(__name__)

EXPORTER = "torch.onnx.export(dynamo=True)"

# Example sizes for tracing. None is 0 or 1, because torch.export specializes a dimension whose
# example size is 0 or 1 into a constant.
_EXAMPLE_BATCH = 2
_EXAMPLE_SEQ = 4
_EXAMPLE_PAST_SEQ = 3

# Parity and speed check of optimize_for_onnxruntime: a prompt, then timed decode steps.
_CHECK_PROMPT_LENGTH = 32
_CHECK_WARMUP_STEPS = 3
_CHECK_TIMED_STEPS = 20
_CHECK_ROUNDS = 3
_CHECK_ABSOLUTE_TOLERANCE = 1e-4
_CHECK_RELATIVE_TOLERANCE = 1e-3
# A fused graph counts as slower only beyond this fraction, so that timer noise on a busy machine
# does not flip the choice between two graphs of equal speed.
_CHECK_SLOWDOWN_ALLOWANCE = 0.05


class OnnxExportError(PerfsuiteError, RuntimeError):
    """Failure of the ONNX export. The chained exception contains the exporter's full report."""


@dataclass(frozen=True)
class ExportResult:
    """Location and provenance of an exported graph."""

    path: Path
    exporter: str
    seconds: float
    num_layers: int
    notes: tuple[str, ...] = ()


class _FlatCacheGPT2(torch.nn.Module):
    """Adapter from flat past tensors to a transformers DynamicCache and from the updated cache to flat presents."""

    def __init__(self, model: GPT2LMHeadModel) -> None:
        super().__init__()
        self.model = model
        self.num_layers = model.config.n_layer

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        past: list[torch.Tensor],
    ) -> tuple[torch.Tensor, ...]:
        cache = DynamicCache(config=self.model.config)
        for layer_index in range(self.num_layers):
            cache.update(past[2 * layer_index], past[2 * layer_index + 1], layer_index)

        output = self.model(
            input_ids=input_ids,
            position_ids=position_ids,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )

        presents: list[torch.Tensor] = []
        for layer in output.cache.layers:
            presents.extend((layer.keys, layer.values))
        return (output.logits[:, -1, :], *presents)


def input_names(num_layers: int) -> list[str]:
    past_names = [f"past_{kind}_{i}" for i in range(num_layers) for kind in ("key", "value")]
    return ["input_ids", "position_ids", *past_names]


def output_names(num_layers: int) -> list[str]:
    present_names = [f"present_{kind}_{i}" for i in range(num_layers) for kind in ("key", "value")]
    return ["logits", *present_names]


def export_gpt2_with_past(model: GPT2LMHeadModel, output_path: Path) -> ExportResult:
    """Export ``model`` to ``output_path`` and write its weights to ``<output_path>.data`` next to it.

    The export runs on a deep copy on CPU in float32, so ``model`` keeps its mode, attention
    implementation and parameters, and peak memory contains the weights twice.
    """
    _check_supported(model)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    num_layers = model.config.n_layer

    logger.info("ONNX export of GPT-2 (%d layers) to %s started", num_layers, output_path)
    start = time.perf_counter()

    wrapper = _FlatCacheGPT2(_copy_for_export(model)).eval()
    _run_exporter(wrapper, output_path)

    seconds = time.perf_counter() - start
    logger.info("ONNX export of GPT-2 to %s finished in %.1f s", output_path, seconds)

    notes = (
        f"exported with torch {torch.__version__}",
        "attention implementation 'eager', because the dynamo exporter fails on SDPA attention"
        " when its is_causal argument becomes symbolic",
        "prefill passes past tensors with past_seq = 0",
        "logits cover the last position only, like logits_to_keep=1",
        "no attention mask input: every sequence in a batch must have the same length",
    )
    return ExportResult(
        path=output_path,
        exporter=EXPORTER,
        seconds=seconds,
        num_layers=num_layers,
        notes=notes,
    )


def _check_supported(model: torch.nn.Module) -> None:
    if not isinstance(model, GPT2LMHeadModel):
        raise TypeError(f"export_gpt2_with_past expects a GPT2LMHeadModel, got {type(model).__name__}")

    if model.config.add_cross_attention:
        raise ValueError(
            "export_gpt2_with_past supports decoder-only GPT-2, but the model config sets add_cross_attention=True"
        )


def _copy_for_export(model: GPT2LMHeadModel) -> GPT2LMHeadModel:
    export_model = copy.deepcopy(model)
    export_model.set_attn_implementation("eager")
    export_model.to(device="cpu", dtype=torch.float32)
    return export_model.eval()


def _run_exporter(wrapper: _FlatCacheGPT2, output_path: Path) -> None:
    config = wrapper.model.config
    batch = torch.export.Dim("batch")
    seq = torch.export.Dim("seq")
    past_seq = torch.export.Dim("past_seq", min=0)
    token_shape = {0: batch, 1: seq}
    past_shape = {0: batch, 2: past_seq}
    dynamic_shapes = (token_shape, token_shape, [past_shape] * (2 * wrapper.num_layers))

    example_inputs = _example_inputs(
        config.vocab_size, config.n_head, config.n_embd // config.n_head, wrapper.num_layers
    )

    try:
        with warnings.catch_warnings():
            # torch 2.13 warns that an axis name shared by several inputs "will not be used",
            # but the saved graph names those axes batch, seq and past_seq all the same.
            warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used", category=UserWarning)
            torch.onnx.export(
                wrapper,
                example_inputs,
                output_path,
                input_names=input_names(wrapper.num_layers),
                output_names=output_names(wrapper.num_layers),
                dynamic_shapes=dynamic_shapes,
                dynamo=True,
                verbose=False,
            )
    except torch.onnx.OnnxExporterError as error:
        cause = error.__cause__ or error
        summary = str(cause).strip().splitlines()[0] if str(cause).strip() else "no message"
        raise OnnxExportError(
            f"ONNX export of GPT-2 to {output_path} failed with {type(cause).__name__}: {summary}."
            " The chained exception contains the exporter's full report."
        ) from error


def _example_inputs(
    vocab_size: int, num_heads: int, head_dim: int, num_layers: int
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab_size, (_EXAMPLE_BATCH, _EXAMPLE_SEQ), generator=generator)

    positions = torch.arange(_EXAMPLE_PAST_SEQ, _EXAMPLE_PAST_SEQ + _EXAMPLE_SEQ)
    position_ids = positions.expand(_EXAMPLE_BATCH, _EXAMPLE_SEQ).contiguous()

    past_shape = (_EXAMPLE_BATCH, num_heads, _EXAMPLE_PAST_SEQ, head_dim)
    past = [torch.randn(past_shape, generator=generator) for _ in range(2 * num_layers)]
    return input_ids, position_ids, past


@dataclass(frozen=True)
class _GraphGeometry:
    num_layers: int
    num_heads: int
    head_dim: int
    vocab_size: int


def optimize_for_onnxruntime(
    path_in: Path,
    path_out: Path,
    *,
    intra_op_threads: int = 0,
    require_speedup: bool = True,
) -> list[str]:
    """Apply onnxruntime's GPT-2 fusions to ``path_in`` and return the fused operator types they added.

    An empty list means: use ``path_in`` with onnxruntime's own ORT_ENABLE_ALL session
    optimizations. That happens when the optimizer raises the known IndexError, adds no fused
    operator, changes logits or presents beyond tolerance, or (with ``require_speedup``) makes
    the decode step more than 5 % slower. ``path_out`` exists only when the list is not empty.
    ``intra_op_threads`` sets the sessions of the parity and speed check; 0 lets onnxruntime choose.

    The Attention fusion never applies to this graph: in onnxruntime 1.32, FusionGptAttention
    matches only one stacked ``past_{i}`` tensor per layer, not separate key and value inputs.
    """
    # Imported here because importing onnxruntime.transformers appends its folder to sys.path.
    from onnxruntime.transformers.optimizer import optimize_model

    path_in = Path(path_in)
    path_out = Path(path_out)
    geometry = _read_geometry(path_in)

    try:
        optimizer = optimize_model(
            str(path_in),
            model_type="gpt2",
            num_heads=geometry.num_heads,
            hidden_size=geometry.num_heads * geometry.head_dim,
        )
    except IndexError as error:
        # onnxruntime 1.32: Gpt2OnnxModel.postprocess reads gemm_node.input[2] and raises IndexError on a
        # Gemm without bias input. The onnxscript optimizer in torch.onnx.export drops a bias that is all
        # zeros, which is the case for freshly initialized GPT-2 weights.
        logger.warning(
            "onnxruntime GPT-2 optimizer failed on %s with IndexError (%s), probably on a Gemm without bias,"
            " so the plain graph stays in use",
            path_in,
            error,
        )
        return []

    fusions = _added_operator_types(path_in, optimizer.get_fused_operator_statistics())
    if not fusions:
        logger.warning(
            "onnxruntime GPT-2 optimizer added no fused operator to %s, so the plain graph stays in use", path_in
        )
        return []

    optimizer.save_model_to_file(str(path_out), use_external_data_format=_has_external_data(path_in))

    rejection = _compare_with_plain(path_in, path_out, geometry, intra_op_threads, require_speedup)
    if rejection is not None:
        logger.warning(
            "Fused graph %s rejected because %s. The plain graph %s stays in use", path_out, rejection, path_in
        )
        _remove_graph(path_out)
        return []

    logger.info("Fused graph %s written with %s", path_out, ", ".join(fusions))
    return fusions


def _read_geometry(path: Path) -> _GraphGeometry:
    graph = onnx.load(str(path), load_external_data=False).graph
    dims_by_name = {value.name: value.type.tensor_type.shape.dim for value in graph.input}
    dims_by_name.update({value.name: value.type.tensor_type.shape.dim for value in graph.output})

    if "past_key_0" not in dims_by_name or "logits" not in dims_by_name:
        raise ValueError(f"{path} has no past_key_0 input or logits output. Export it with export_gpt2_with_past")

    num_layers = sum(1 for value in graph.input if value.name.startswith("past_key_"))
    past_dims = dims_by_name["past_key_0"]
    return _GraphGeometry(
        num_layers=num_layers,
        num_heads=past_dims[1].dim_value,
        head_dim=past_dims[3].dim_value,
        vocab_size=dims_by_name["logits"][1].dim_value,
    )


def _added_operator_types(path_in: Path, fused_counts: dict[str, int]) -> list[str]:
    # The optimizer's statistics count operators in the output graph, including ones the input
    # graph already had (the exporter emits LayerNormalization), so compare with the input.
    graph = onnx.load(str(path_in), load_external_data=False).graph
    input_counts: dict[str, int] = {}
    for node in graph.node:
        input_counts[node.op_type] = input_counts.get(node.op_type, 0) + 1

    return [name for name, count in fused_counts.items() if count > input_counts.get(name, 0)]


def _has_external_data(path: Path) -> bool:
    model = onnx.load(str(path), load_external_data=False)
    return any(
        initializer.data_location == onnx.TensorProto.EXTERNAL for initializer in model.graph.initializer
    )


def _remove_graph(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".data").unlink(missing_ok=True)


def _create_session(path: Path, intra_op_threads: int = 0) -> onnxruntime.InferenceSession:
    """Open ``path`` on the CPU provider with ORT_ENABLE_ALL. With 0 threads onnxruntime picks the count."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _compare_with_plain(
    plain_path: Path,
    fused_path: Path,
    geometry: _GraphGeometry,
    intra_op_threads: int,
    require_speedup: bool,
) -> str | None:
    """Return why the fused graph is worse than the plain one, or None when it is not."""
    plain = _create_session(plain_path, intra_op_threads)
    fused = _create_session(fused_path, intra_op_threads)
    tokens = np.random.default_rng(0).integers(
        0, geometry.vocab_size, size=(1, _CHECK_PROMPT_LENGTH + _CHECK_WARMUP_STEPS + _CHECK_TIMED_STEPS)
    )

    plain_outputs = _prefill_and_decode(plain, geometry, tokens)
    fused_outputs = _prefill_and_decode(fused, geometry, tokens)
    for name, plain_value, fused_value in zip(output_names(geometry.num_layers), plain_outputs, fused_outputs):
        if not np.allclose(fused_value, plain_value, rtol=_CHECK_RELATIVE_TOLERANCE, atol=_CHECK_ABSOLUTE_TOLERANCE):
            difference = float(np.abs(fused_value - plain_value).max())
            return f"its output {name} differs from the plain graph's by up to {difference:.3g}"

    if not require_speedup:
        return None

    plain_seconds, fused_seconds = _fastest_decode_seconds(plain, fused, geometry, tokens)
    logger.info(
        "Decode step on %s (fastest of %d rounds): plain %.3f ms, fused %.3f ms",
        fused_path,
        _CHECK_ROUNDS,
        plain_seconds * 1e3,
        fused_seconds * 1e3,
    )
    if fused_seconds > plain_seconds * (1 + _CHECK_SLOWDOWN_ALLOWANCE):
        return (
            f"its decode step of {fused_seconds * 1e3:.3f} ms is more than {_CHECK_SLOWDOWN_ALLOWANCE:.0%}"
            f" slower than the plain graph's {plain_seconds * 1e3:.3f} ms"
        )
    return None


def _empty_past(geometry: _GraphGeometry, batch: int) -> dict[str, np.ndarray]:
    shape = (batch, geometry.num_heads, 0, geometry.head_dim)
    names = input_names(geometry.num_layers)[2:]
    return {name: np.zeros(shape, dtype=np.float32) for name in names}


def _step_feed(token_ids: np.ndarray, start_position: int, past: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch, length = token_ids.shape
    positions = np.arange(start_position, start_position + length, dtype=np.int64)
    return {
        "input_ids": token_ids.astype(np.int64),
        "position_ids": np.broadcast_to(positions, (batch, length)).copy(),
        **past,
    }


def _next_past(outputs: list[np.ndarray], num_layers: int) -> dict[str, np.ndarray]:
    return dict(zip(input_names(num_layers)[2:], outputs[1:]))


def _prefill_and_decode(
    session: onnxruntime.InferenceSession, geometry: _GraphGeometry, tokens: np.ndarray
) -> list[np.ndarray]:
    prompt = tokens[:, :_CHECK_PROMPT_LENGTH]
    outputs = session.run(None, _step_feed(prompt, 0, _empty_past(geometry, batch=1)))

    next_token = tokens[:, _CHECK_PROMPT_LENGTH : _CHECK_PROMPT_LENGTH + 1]
    past = _next_past(outputs, geometry.num_layers)
    return session.run(None, _step_feed(next_token, _CHECK_PROMPT_LENGTH, past))


def _fastest_decode_seconds(
    plain: onnxruntime.InferenceSession,
    fused: onnxruntime.InferenceSession,
    geometry: _GraphGeometry,
    tokens: np.ndarray,
) -> tuple[float, float]:
    # Rounds alternate between the graphs, and the fastest round of each counts, because other
    # load on the machine only ever adds time.
    plain_medians: list[float] = []
    fused_medians: list[float] = []
    for _ in range(_CHECK_ROUNDS):
        plain_medians.append(_time_decode_steps(plain, geometry, tokens))
        fused_medians.append(_time_decode_steps(fused, geometry, tokens))
    return min(plain_medians), min(fused_medians)


def _time_decode_steps(session: onnxruntime.InferenceSession, geometry: _GraphGeometry, tokens: np.ndarray) -> float:
    prompt = tokens[:, :_CHECK_PROMPT_LENGTH]
    outputs = session.run(None, _step_feed(prompt, 0, _empty_past(geometry, batch=1)))
    past = _next_past(outputs, geometry.num_layers)

    step_seconds: list[float] = []
    for step in range(_CHECK_WARMUP_STEPS + _CHECK_TIMED_STEPS):
        position = _CHECK_PROMPT_LENGTH + step
        feed = _step_feed(tokens[:, position : position + 1], position, past)

        start = time.perf_counter()
        outputs = session.run(None, feed)
        step_seconds.append(time.perf_counter() - start)

        past = _next_past(outputs, geometry.num_layers)
    return statistics.median(step_seconds[_CHECK_WARMUP_STEPS:])
