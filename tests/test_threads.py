"""Tests that the thread setting reaches each runtime, not only the settings object."""

from __future__ import annotations

import dataclasses

import psutil
import pytest
import torch

from perfsuite.backends.onnxruntime_backend import OnnxRuntimeBackend
from perfsuite.backends.torch_fp32 import TorchBackend
from perfsuite.prompts import make_prompt


def _os_threads() -> int:
    return psutil.Process().num_threads()


@pytest.mark.parametrize("threads", [1, 2])
def test_torch_activate_sets_threads(tiny_model, backend_settings, threads):
    backend = TorchBackend(tiny_model, dataclasses.replace(backend_settings, threads=threads))
    torch.set_num_threads(3)

    backend.activate()

    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("threads", [1, 2])
def test_onnxruntime_session_threads(tiny_model, backend_settings, threads):
    backend = OnnxRuntimeBackend(tiny_model, dataclasses.replace(backend_settings, threads=threads))

    options = backend.session.get_session_options()

    assert options.intra_op_num_threads == threads
    assert options.inter_op_num_threads == 1


def test_onnxruntime_threads_start_workers(tiny_model, backend_settings):
    # onnxruntime's intra-op pool starts (threads - 1) OS threads per session; the caller's thread is the last one.
    ids = make_prompt(tiny_model.tokenizer, 8).as_batch()
    before = _os_threads()
    single = OnnxRuntimeBackend(tiny_model, dataclasses.replace(backend_settings, threads=1))
    single.generate(ids, 2)
    after_single = _os_threads()

    quad = OnnxRuntimeBackend(tiny_model, dataclasses.replace(backend_settings, threads=4))
    quad.generate(ids, 2)
    after_quad = _os_threads()

    assert after_single - before == 0
    assert after_quad - after_single == 3
