"""Formatting of table cells shared by the reports."""

from __future__ import annotations

from perfsuite.compare.table import format_p_value, format_quantity


def test_quantity_seconds_scaled():
    assert format_quantity(0.0000335, "s") == "33.5 µs"
    assert format_quantity(0.25, "s") == "250 ms"
    assert format_quantity(2.0, "s") == "2 s"


def test_quantity_bytes_scaled():
    assert format_quantity(3 * 2**20, "bytes") == "3 MiB"


def test_quantity_other_unit():
    assert format_quantity(812.345, "tokens/s") == "812.3 tokens/s"


def test_quantity_nan_dash():
    assert format_quantity(float("nan"), "s") == "-"


def test_p_value_tiny():
    assert format_p_value(1e-9) == "<0.0001"


def test_p_value_missing():
    assert format_p_value(None) == "-"
