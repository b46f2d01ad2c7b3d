"""Registers the perfsuite pytest plugin for benchmarks/ and tests/, and pytester for the end-to-end tests."""

pytest_plugins = ("perfsuite.pytest_plugin", "pytester")
