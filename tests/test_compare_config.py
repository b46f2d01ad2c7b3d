"""Gate settings read from pyproject.toml: defaults, overrides and errors naming the key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfsuite.compare.config import GateConfig, ThresholdOverride, load_gate_config, parse_gate_table
from perfsuite.compare.errors import GateConfigError
from perfsuite.compare.stats import Thresholds


def write_pyproject(tmp_path, text):
    path = tmp_path / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_section(tmp_path):
    path = write_pyproject(tmp_path, '[project]\nname = "x"\n')
    assert load_gate_config(path) == GateConfig()


def test_defaults_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_gate_config() == GateConfig()


def test_explicit_file_missing(tmp_path):
    with pytest.raises(GateConfigError, match="config file not found"):
        load_gate_config(tmp_path / "absent.toml")


def test_reads_thresholds(tmp_path):
    path = write_pyproject(
        tmp_path,
        "[tool.perfsuite.gate]\nalpha = 0.05\nmin_effect = 0.1\nresamples = 2000\nmin_rounds = 5\nseed = 7\n"
        "allow_mismatch = true\n",
    )
    config = load_gate_config(path)
    assert config.thresholds == Thresholds(alpha=0.05, min_effect=0.1, resamples=2000, min_rounds=5, seed=7)
    assert config.allow_mismatch


def test_reads_overrides(tmp_path):
    path = write_pyproject(
        tmp_path,
        "[tool.perfsuite.gate]\nmin_effect = 0.05\n\n"
        '[[tool.perfsuite.gate.overrides]]\nmatch = "test_tokenize*"\nmin_effect = 0.1\n\n'
        '[[tool.perfsuite.gate.overrides]]\nmatch = "*[onnxruntime-*"\nmetric = "time_s"\nmin_effect = 0.2\n',
    )
    config = load_gate_config(path)
    assert config.overrides[0] == ThresholdOverride(match="test_tokenize*", values={"min_effect": 0.1})
    assert config.thresholds_for(("test_tokenize[torch-fp32-16]",), "time_s").min_effect == 0.1
    assert config.thresholds_for(("test_generate[onnxruntime-16]",), "time_s").min_effect == 0.2
    assert config.thresholds_for(("test_generate[onnxruntime-16]",), "decode_token_s").min_effect == 0.05


def test_later_override_wins(tmp_path):
    overrides = (
        ThresholdOverride(match="*", values={"alpha": 0.05}),
        ThresholdOverride(match="test_generate*", values={"alpha": 0.001}),
    )
    config = GateConfig(overrides=overrides)
    assert config.thresholds_for(("test_generate[torch-fp32-16]",), "time_s").alpha == 0.001
    assert config.thresholds_for(("test_tokenize[torch-fp32-16]",), "time_s").alpha == 0.05


def test_override_matches_group(tmp_path):
    override = ThresholdOverride(match="generate: prompt 16*", values={"min_effect": 0.3})
    config = GateConfig(overrides=(override,))
    names = ("test_generate[torch-fp32-16]", "benchmarks/test_generate.py::test_generate[torch-fp32-16]", "generate: prompt 16, new 8")
    assert config.thresholds_for(names, "time_s").min_effect == 0.3


def test_invalid_alpha_names_file_key_value(tmp_path):
    path = write_pyproject(tmp_path, "[tool.perfsuite.gate]\nalpha = 1.5\n")
    with pytest.raises(GateConfigError) as caught:
        load_gate_config(path)
    assert str(path) in str(caught.value)
    assert "alpha" in str(caught.value)
    assert "1.5" in str(caught.value)


def test_unknown_key_suggests(tmp_path):
    path = write_pyproject(tmp_path, "[tool.perfsuite.gate]\nmin-effect = 0.1\n")
    with pytest.raises(GateConfigError, match="did you mean 'min_effect'"):
        load_gate_config(path)


def test_invalid_toml(tmp_path):
    path = write_pyproject(tmp_path, "[tool.perfsuite.gate\nalpha = \n")
    with pytest.raises(GateConfigError, match="invalid TOML"):
        load_gate_config(path)


def test_section_not_table(tmp_path):
    path = write_pyproject(tmp_path, '[tool.perfsuite]\ngate = "strict"\n')
    with pytest.raises(GateConfigError, match="must be a table"):
        load_gate_config(path)


def test_override_invalid_value_names_entry(tmp_path):
    path = write_pyproject(
        tmp_path, '[tool.perfsuite.gate]\n[[tool.perfsuite.gate.overrides]]\nmatch = "x*"\nresamples = 5\n'
    )
    with pytest.raises(GateConfigError, match="overrides entry 1: resamples must be at least 100"):
        load_gate_config(path)


def test_override_unknown_key(tmp_path):
    path = write_pyproject(
        tmp_path, '[tool.perfsuite.gate]\n[[tool.perfsuite.gate.overrides]]\npattern = "x*"\nalpha = 0.05\n'
    )
    with pytest.raises(GateConfigError, match="unknown key 'pattern'"):
        load_gate_config(path)


def test_overrides_not_array():
    with pytest.raises(GateConfigError, match="array of tables"):
        parse_gate_table({"overrides": {"match": "x"}})


def test_override_empty_pattern():
    with pytest.raises(GateConfigError, match="match must be a non-empty glob"):
        ThresholdOverride(match="")


def test_allow_mismatch_not_bool():
    with pytest.raises(GateConfigError, match="allow_mismatch must be true or false"):
        parse_gate_table({"allow_mismatch": "yes"})


def test_options_replace_defaults():
    config = GateConfig().with_options(alpha=0.05, min_effect=0.2, allow_mismatch=True)
    assert config.thresholds.alpha == 0.05
    assert config.thresholds.min_effect == 0.2
    assert config.allow_mismatch


def test_options_invalid_value():
    with pytest.raises(GateConfigError, match="min_effect must be at least 0"):
        GateConfig().with_options(min_effect=-1.0)


def test_repository_pyproject_valid():
    config = load_gate_config(Path(__file__).resolve().parent.parent / "pyproject.toml")
    assert isinstance(config, GateConfig)
