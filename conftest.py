"""Registers the perfsuite pytest plugin for benchmarks/ and tests/."""

pytest_plugins = ("perfsuite.pytest_plugin",)
