"""llm-perfsuite: pytest-benchmark performance tests for CPU inference of small causal LMs."""

__version__ = "0.1.0"
