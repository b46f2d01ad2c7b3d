"""Tests for the environment stamp and the memory bandwidth bound."""

from __future__ import annotations

import subprocess

import pytest
import torch

from perfsuite.bandwidth import DecodeBound, measure_memory_bandwidth
from perfsuite.environment import KERNEL_FLAGS, collect_environment, current_commit


def test_stamp_matches_machine():
    stamp = collect_environment()

    assert stamp.logical_cores >= stamp.physical_cores >= 1
    assert stamp.quantized_engine == torch.backends.quantized.engine
    assert set(stamp.kernel_flags) <= set(KERNEL_FLAGS)
    assert stamp.versions["torch"] == torch.__version__


def test_stamp_flags_from_cpuinfo():
    with open("/proc/cpuinfo") as cpuinfo:
        flags = set(next(line for line in cpuinfo if line.startswith("flags")).split(":")[1].split())

    assert set(collect_environment().kernel_flags) == flags & set(KERNEL_FLAGS)


def test_machine_record_drops_commit():
    record = collect_environment().to_record(include_commit=False)

    assert "commit" not in record
    assert "commit" in collect_environment().to_record()


def test_commit_of_new_repository(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "file.txt").write_text("one")
    subprocess.run(["git", "-C", str(tmp_path), "add", "file.txt"], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "one"],
        check=True,
    )
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()

    clean = current_commit(tmp_path)
    (tmp_path / "file.txt").write_text("two")
    dirty = current_commit(tmp_path)

    assert clean == head
    assert dirty == head + "-dirty"


def test_commit_outside_repository(tmp_path):
    assert current_commit(tmp_path) is None


def test_bandwidth_plausible():
    bandwidth = measure_memory_bandwidth(buffer_bytes=64 * 1024 * 1024, repeats=2)

    # Any machine that runs this suite copies between 0.5 GB/s and 2 TB/s.
    assert 5e8 < bandwidth < 2e12


def test_decode_bound_arithmetic():
    bound = DecodeBound(weight_bytes=300_000_000, bandwidth_bytes_per_s=20e9, measured_step_s=0.03)

    assert bound.bound_step_s == pytest.approx(0.015)
    assert bound.fraction_of_bound == pytest.approx(0.5)
