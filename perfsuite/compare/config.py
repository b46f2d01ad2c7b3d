"""Gate settings: defaults, per-benchmark overrides, and reading them from pyproject.toml.

The section is ``[tool.perfsuite.gate]``::

    [tool.perfsuite.gate]
    alpha = 0.01            # significance level of the Mann-Whitney U test
    min_effect = 0.05       # smallest change that counts, as a fraction (0.05 = 5%)
    resamples = 10000       # bootstrap resamples for the ratio interval
    min_rounds = 3          # fewest rounds per side worth comparing
    seed = 0                # bootstrap seed; results are deterministic for a given seed
    allow_mismatch = false  # compare even when machine, model or backend settings differ

    [[tool.perfsuite.gate.overrides]]
    match = "test_tokenize*"   # glob on the benchmark's name, fullname or group
    metric = "*"               # glob on the metric name (time_s, tokens_per_second, ...)
    min_effect = 0.10

Every override whose patterns match applies, in file order, so a later one wins for the
keys it sets.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from perfsuite.compare.errors import GateConfigError, InvalidThresholdError
from perfsuite.compare.stats import Thresholds

logger = logging.getLogger(__name__)

SECTION = "tool.perfsuite.gate"
THRESHOLD_KEYS = tuple(item.name for item in fields(Thresholds))
TOP_LEVEL_KEYS = (*THRESHOLD_KEYS, "allow_mismatch", "overrides")
OVERRIDE_KEYS = ("match", "metric", *THRESHOLD_KEYS)


@dataclass(frozen=True)
class ThresholdOverride:
    """Threshold values for the benchmarks and metrics that match two glob patterns."""

    match: str = "*"
    metric: str = "*"
    values: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for key, pattern in (("match", self.match), ("metric", self.metric)):
            if not isinstance(pattern, str) or not pattern:
                raise GateConfigError(f"{key} must be a non-empty glob pattern, got {pattern!r}")

        values = dict(self.values or {})
        unknown = [key for key in values if key not in THRESHOLD_KEYS]
        if unknown:
            raise GateConfigError(_unknown_key_message(unknown[0], OVERRIDE_KEYS))
        # Validate the values the same way full thresholds are validated.
        replace(Thresholds(), **values)
        object.__setattr__(self, "values", values)

    def applies_to(self, names: tuple[str, ...], metric: str) -> bool:
        """Return whether ``match`` fits any of the benchmark's names and ``metric`` fits the metric."""
        matches_benchmark = any(fnmatch.fnmatchcase(name, self.match) for name in names if name)
        return matches_benchmark and fnmatch.fnmatchcase(metric, self.metric)


@dataclass(frozen=True)
class GateConfig:
    """Everything the gate decides with: default thresholds, overrides and the mismatch switch."""

    thresholds: Thresholds = Thresholds()
    overrides: tuple[ThresholdOverride, ...] = ()
    allow_mismatch: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.allow_mismatch, bool):
            raise GateConfigError(f"allow_mismatch must be true or false, got {self.allow_mismatch!r}")

    def thresholds_for(self, names: tuple[str, ...], metric: str) -> Thresholds:
        """Return the thresholds for one metric of the benchmark known by ``names`` (name, fullname, group)."""
        thresholds = self.thresholds
        for override in self.overrides:
            if override.applies_to(names, metric):
                thresholds = replace(thresholds, **override.values)
        return thresholds

    def with_options(
        self, *, alpha: float | None = None, min_effect: float | None = None, allow_mismatch: bool | None = None
    ) -> GateConfig:
        """Return a copy with command-line values applied; overrides from the file still apply on top."""
        changes = {key: value for key, value in (("alpha", alpha), ("min_effect", min_effect)) if value is not None}
        thresholds = replace(self.thresholds, **changes)
        mismatch = self.allow_mismatch if allow_mismatch is None else allow_mismatch
        return replace(self, thresholds=thresholds, allow_mismatch=mismatch)


def load_gate_config(path: str | Path | None = None) -> GateConfig:
    """Read ``[tool.perfsuite.gate]`` from a pyproject.toml.

    With no path, ./pyproject.toml is read when it exists and defaults are used otherwise.
    A path that was given must exist. Raises GateConfigError naming the file, key and value.
    """
    explicit = path is not None
    pyproject = Path(path) if explicit else Path("pyproject.toml")
    if not pyproject.is_file():
        if explicit:
            raise GateConfigError(f"{pyproject}: config file not found; pass an existing pyproject.toml")
        logger.info("no pyproject.toml in %s; using the default gate settings", Path.cwd())
        return GateConfig()

    document = _read_toml(pyproject)
    table: Any = document
    for key in SECTION.split("."):
        table = table.get(key, {}) if isinstance(table, dict) else None
    if table is None or not isinstance(table, dict):
        raise GateConfigError(f"{pyproject}: [{SECTION}] must be a table")

    try:
        return parse_gate_table(table)
    except GateConfigError as error:
        raise GateConfigError(f"{pyproject}: [{SECTION}] {error}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:
        # NOTE: this Python 3.10 path is not exercised by the tests, which run on 3.11.
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise GateConfigError(
                f"{path}: reading TOML needs Python 3.11 or newer, or the tomli package; pip install tomli"
            ) from None

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise GateConfigError(f"{path}: cannot be read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise GateConfigError(f"{path}: invalid TOML ({error})") from None


def parse_gate_table(table: Mapping[str, Any]) -> GateConfig:
    """Build a GateConfig from the contents of ``[tool.perfsuite.gate]``.

    Raises GateConfigError naming the key and value for unknown keys and invalid values.
    """
    unknown = [key for key in table if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise GateConfigError(_unknown_key_message(unknown[0], TOP_LEVEL_KEYS))

    threshold_values = {key: table[key] for key in THRESHOLD_KEYS if key in table}
    try:
        thresholds = Thresholds(**threshold_values)
    except InvalidThresholdError as error:
        raise GateConfigError(str(error)) from None

    overrides = _parse_overrides(table.get("overrides", []))
    return GateConfig(thresholds=thresholds, overrides=overrides, allow_mismatch=table.get("allow_mismatch", False))


def _parse_overrides(raw: object) -> tuple[ThresholdOverride, ...]:
    if not isinstance(raw, list):
        raise GateConfigError(
            f"overrides must be an array of tables ([[{SECTION}.overrides]]), got {type(raw).__name__}"
        )

    overrides = []
    for number, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            raise GateConfigError(f"overrides entry {number} must be a table, got {entry!r}")
        values = {key: value for key, value in entry.items() if key not in ("match", "metric")}
        try:
            overrides.append(
                ThresholdOverride(match=entry.get("match", "*"), metric=entry.get("metric", "*"), values=values)
            )
        except GateConfigError as error:
            raise GateConfigError(f"overrides entry {number}: {error}") from None
    return tuple(overrides)


def _unknown_key_message(key: str, known: tuple[str, ...]) -> str:
    message = f"unknown key {key!r}"
    close = difflib.get_close_matches(key.replace("-", "_"), known, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return message + f" Known keys: {', '.join(known)}"
