"""The GitHub Actions workflows cannot run here, so they are validated offline instead."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW_DIR = Path(__file__).resolve().parent.parent / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; install the test extras: pip install -e '.[test]'")
    return path


def test_workflows_present():
    names = {path.name for path in WORKFLOWS}

    assert "benchmarks-pr.yml" in names
    assert "benchmarks-baseline.yml" in names


def test_workflows_match_schema():
    completed = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True, text=True, timeout=120,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_workflows_pass_zizmor():
    completed = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", str(WORKFLOW_DIR)],
        capture_output=True, text=True, timeout=120,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_pr_workflow_gates_with_ab():
    text = (WORKFLOW_DIR / "benchmarks-pr.yml").read_text()

    assert "perfsuite ab --base" in text
    assert "GITHUB_STEP_SUMMARY" in text
    assert "actions/upload-artifact@" in text
