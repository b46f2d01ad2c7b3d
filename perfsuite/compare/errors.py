"""Exceptions raised by the regression gate for invalid input files, settings and thresholds."""

from __future__ import annotations

from perfsuite.errors import PerfsuiteError


class CompareError(PerfsuiteError):
    """Base class of the errors raised while loading or comparing saved runs."""


class RunFileError(CompareError, ValueError):
    """A saved run cannot be used: unreadable, not pytest-benchmark JSON, or missing per-round data."""


class GateConfigError(CompareError, ValueError):
    """A gate setting in pyproject.toml or on the command line is invalid."""


class InvalidThresholdError(GateConfigError):
    """A statistical threshold (alpha, min_effect, resamples, min_rounds, seed) is out of range."""
