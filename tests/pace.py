"""How busy this machine is right now, as a factor for the suite's time limits.

Tests wait for events, and where a wait needs a limit it is ``seconds * pace()``: on a
quiet machine the limits stay as written, on one loaded by other jobs (load 4-8 on 2
cores) they stretch with the measured slowdown, so the suite fails on a real hang, not on
a busy neighbour. ``HYBRID_AI_TEST_PACE`` pins the factor.
"""

from __future__ import annotations

import os
import statistics
import time

# Seconds the probe below takes on a quiet 2-core machine of this project's kind.
QUIET_PROBE_S = 0.08
MAX_PACE = 6.0  # a limit never stretches beyond this: a hang still ends the test


def _probe() -> float:
    started = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i * i % 7
    return time.perf_counter() - started


def pace() -> float:
    """The slowdown now, 1.0 (quiet) .. ``MAX_PACE``: the larger of the probe's median time
    against a quiet machine's and the load average per core."""
    pinned = os.environ.get("HYBRID_AI_TEST_PACE")
    if pinned:
        return max(1.0, float(pinned))
    measured = statistics.median(_probe() for _ in range(3)) / QUIET_PROBE_S
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return min(MAX_PACE, max(1.0, measured, load))


def limit(seconds: float) -> float:
    """``seconds`` stretched by the machine's current pace."""
    return seconds * pace()
