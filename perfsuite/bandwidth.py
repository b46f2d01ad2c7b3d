"""The machine's memory bandwidth, and the decode-step time it allows each backend.

Decoding one token reads every weight matrix once, so a decode step cannot be faster than
``weight bytes / memory bandwidth``. Comparing a measured step with that bound shows how
close a runtime gets to the hardware, and flags a figure that beats it as implausible.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# Large enough to overflow any CPU's last-level cache, small enough for a 2-core CI runner.
BUFFER_BYTES = 256 * 1024 * 1024
REPEATS = 5


@dataclass(frozen=True)
class DecodeBound:
    """A backend's decode step against the bandwidth bound."""

    weight_bytes: int
    bandwidth_bytes_per_s: float
    measured_step_s: float

    @property
    def bound_step_s(self) -> float:
        return self.weight_bytes / self.bandwidth_bytes_per_s

    @property
    def fraction_of_bound(self) -> float:
        """Bound time over measured time: 1.0 runs at the bandwidth limit; above 1.0 is implausible
        unless the weights fit in cache."""
        return self.bound_step_s / self.measured_step_s


def measure_memory_bandwidth(buffer_bytes: int = BUFFER_BYTES, repeats: int = REPEATS) -> float:
    """Return the best observed copy bandwidth in bytes per second (bytes read plus bytes written).

    One thread copies a buffer larger than the caches. The best of ``repeats`` is kept,
    because the bound is what the memory can do, not what a noisy moment allowed.
    """
    source = np.ones(buffer_bytes // 8, dtype=np.float64)
    target = np.empty_like(source)
    np.copyto(target, source)

    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - started)

    bandwidth = 2 * source.nbytes / best
    logger.info("Memory copy bandwidth: %.1f GB/s (one thread, %d MiB buffer)", bandwidth / 1e9, buffer_bytes >> 20)
    return bandwidth
