"""A test-only slowdown of one backend, to check that the regression gate detects real regressions.

``PERFSUITE_TEST_SLOWDOWN=BACKEND_ID:FRACTION`` (for example ``torch-fp32:0.10``) makes
every prefill and decode call of that backend busy-wait for ``FRACTION`` of the time the
call took, so its timings grow by that fraction while the work stays the same. Never set
it outside tests and gate-quality measurements.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from perfsuite.backends.base import Backend
from perfsuite.errors import InvalidOptionError

logger = logging.getLogger(__name__)

SLOWDOWN_VARIABLE = "PERFSUITE_TEST_SLOWDOWN"


@dataclass(frozen=True)
class Slowdown:
    """The backend to slow down and the fraction of each call's time to add."""

    backend_id: str
    fraction: float

    @classmethod
    def from_environment(cls) -> Slowdown | None:
        text = os.environ.get(SLOWDOWN_VARIABLE, "").strip()
        if not text:
            return None

        backend_id, _, fraction_text = text.rpartition(":")
        try:
            fraction = float(fraction_text)
        except ValueError:
            fraction = -1.0
        if not backend_id or not 0 < fraction <= 10:
            raise InvalidOptionError(
                f"invalid {SLOWDOWN_VARIABLE} value {text!r}; expected BACKEND_ID:FRACTION such as torch-fp32:0.10"
            )
        return cls(backend_id, fraction)


def _spin_until(deadline: float) -> None:
    # Busy-waiting keeps the added time exact to microseconds, where sleep() can overshoot by far more.
    while time.perf_counter() < deadline:
        pass


def apply_slowdown(backend: Backend, slowdown: Slowdown) -> None:
    """Wrap ``backend``'s prefill and decode so each call takes ``1 + fraction`` times as long."""
    logger.warning("Test slowdown active: %s calls take %.0f%% longer", backend.backend_id, 100 * slowdown.fraction)

    for name in ("prefill", "decode"):
        original = getattr(backend, name)

        def slowed(*args, _original=original):
            started = time.perf_counter()
            result = _original(*args)
            elapsed = time.perf_counter() - started
            _spin_until(time.perf_counter() + slowdown.fraction * elapsed)
            return result

        setattr(backend, name, slowed)
