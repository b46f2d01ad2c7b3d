"""End-to-end gate runs: a real slowdown must fail the gate, and the A/B command must run both sides."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
# One short generate and first-token benchmark of torch-fp32 on the tiny model, with full-profile rounds.
NARROW = (
    "-p", "no:cacheprovider", "--perf-model=synthetic:tiny", "--perf-backends=torch-fp32", "--perf-no-extras",
    "--perf-threads=1", "--perf-prompt-lengths=16", "--perf-generate-prompt-lengths=16", "--perf-new-tokens=8",
    "--perf-batch-sizes=1", "-k", "generate or first_token",
)

def test_gate_fails_on_injected_slowdown(suite, monkeypatch):
    base = suite.runpytest_subprocess(*NARROW, "--benchmark-json=base.json", timeout=600)
    monkeypatch.setenv("PERFSUITE_TEST_SLOWDOWN", "torch-fp32:1.0")

    head = suite.runpytest_subprocess(*NARROW, "--perf-gate=base.json", timeout=600)

    assert base.ret == 0
    assert head.ret == 1
    output = head.stdout.str()
    assert "REGRESSION (exit 1)" in output
    assert "decode_token_s" in output


def _outcome_code(output: str) -> int:
    """Return the exit code the gate's last outcome line names, such as 'PASS (exit 0)'."""
    for outcome, code in (("PASS (exit 0)", 0), ("REGRESSION (exit 1)", 1), ("CANNOT COMPARE (exit 2)", 2)):
        if outcome in output:
            return code
    raise AssertionError(f"no gate outcome line in:\n{output[-2000:]}")


def test_gate_exit_matches_outcome(suite):
    # Same code on both sides: on a noisy machine the verdict may still vary, so only consistency is checked.
    suite.runpytest_subprocess(*NARROW, "--benchmark-json=base.json", timeout=600)

    head = suite.runpytest_subprocess(*NARROW, "--perf-gate=base.json", timeout=600)

    assert head.ret == _outcome_code(head.stdout.str())


def test_gate_missing_base_cannot_compare(suite):
    result = suite.runpytest_subprocess(*NARROW, "--perf-gate=no-such-run.json", timeout=600)

    assert result.ret == 2
    assert "no-such-run.json" in result.stdout.str()


def test_ab_runs_both_sides(tmp_path, export_cache_dir):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPOSITORY), str(clone)], check=True)
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PERFSUITE_CACHE_DIR": str(export_cache_dir)}
    pytest_args = shlex.join(NARROW)

    completed = subprocess.run(
        [sys.executable, "-m", "perfsuite.cli", "ab", "--base", "HEAD", "--pairs", "2", "--output", str(tmp_path / "ab"),
         "--pytest-args", pytest_args, "--markdown", str(tmp_path / "ab.md")],
        cwd=clone, env=environment, capture_output=True, text=True, timeout=900,
    )

    assert completed.returncode == _outcome_code(completed.stdout), completed.stderr[-2000:]
    assert len(list((tmp_path / "ab" / "base").glob("*.json"))) == 2
    assert len(list((tmp_path / "ab" / "head").glob("*.json"))) == 2
    assert "00.json" in (tmp_path / "ab.md").read_text()
    saved = json.loads(next((tmp_path / "ab" / "base").glob("*.json")).read_text())
    assert saved["benchmarks"][0]["stats"]["data"]


def test_ab_rejects_measurement_change(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPOSITORY), str(clone)], check=True)
    module = clone / "benchmarks" / "test_generate.py"
    module.write_text(module.read_text() + "\n# a local change\n")

    completed = subprocess.run(
        [sys.executable, "-m", "perfsuite.cli", "ab", "--base", "HEAD", "--output", str(tmp_path / "ab")],
        cwd=clone, capture_output=True, text=True, timeout=300,
    )

    assert completed.returncode == 2
    assert "benchmarks/test_generate.py" in completed.stderr
    assert "--allow-measurement-change" in completed.stderr


def test_ab_unknown_base_named(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "perfsuite.cli", "ab", "--base", "no-such-branch", "--output", str(tmp_path / "ab")],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=120,
    )

    assert completed.returncode == 2
    assert "no-such-branch" in completed.stderr


def test_ab_extends_while_inconclusive(tmp_path, export_cache_dir):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPOSITORY), str(clone)], check=True)
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PERFSUITE_CACHE_DIR": str(export_cache_dir)}

    completed = subprocess.run(
        [sys.executable, "-m", "perfsuite.cli", "ab", "--base", "HEAD", "--pairs", "1", "--extend-budget", "90",
         "--output", str(tmp_path / "ab"), "--pytest-args", shlex.join(NARROW)],
        cwd=clone, env=environment, capture_output=True, text=True, timeout=900,
    )

    pairs = len(list((tmp_path / "ab" / "base").glob("*.json")))
    assert completed.returncode == _outcome_code(completed.stdout), completed.stderr[-2000:]
    assert f"Ran {pairs} base/head pairs" in completed.stdout
    assert len(list((tmp_path / "ab" / "head").glob("*.json"))) == pairs
    # With one pair some verdicts are inconclusive (5 generate rounds cannot reach p < 0.01 in
    # every metric), so the budget buys at least one more pair.
    assert pairs >= 2
