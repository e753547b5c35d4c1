"""Which candles the local exchange shows, and with which timestamps.

* ``StaticClock`` serves the data directory as it is: every candle, original timestamps.
  Enough for backtesting, hyperopt and the analyses, which only ask for markets.
* ``ReplayClock`` re-times the data so that a chosen moment of the data is "now" and the
  candles after it appear one by one in real time, as on a live exchange. The shift is a
  whole number of days, so candles stay aligned on their interval boundaries (5m candles
  open at :00, :05, ... and daily candles at 00:00 UTC, as freqtrade expects).
* ``ScaledClock`` runs ``speed`` times faster than the wall clock and shows the data's own
  timestamps: "now" is a data time. Its clients must share that time, which
  ``local_exchange.fastclock`` gives a Python process (freqtrade, the oracle daemon).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

DAY_MS = 86_400_000


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class StaticClock:
    """Everything visible, no re-timing."""

    shift_ms: int = 0

    def cursor(self) -> int | None:
        """Data time up to which candles are visible (None: all of them)."""
        return None

    def now(self) -> int:
        return wall_ms()


@dataclass(frozen=True)
class ReplayClock:
    """Presented time = data time + ``shift_ms``; the data cursor follows the wall clock."""

    shift_ms: int

    @classmethod
    def starting_at(cls, data_start_ms: int, now_ms: int | None = None) -> ReplayClock:
        """A clock whose 'now' lies within one day after ``data_start_ms`` of the data."""
        now_ms = wall_ms() if now_ms is None else now_ms
        return cls(shift_ms=((now_ms - data_start_ms) // DAY_MS) * DAY_MS)

    def cursor(self) -> int | None:
        return self.now() - self.shift_ms

    def now(self) -> int:
        return wall_ms()


@dataclass(frozen=True)
class ScaledClock:
    """Data time ``data_start_ms`` at wall time ``anchor_wall_ms``, then ``speed``x faster."""

    data_start_ms: int
    anchor_wall_ms: int
    speed: float
    shift_ms: int = 0  # timestamps are shown as they are in the data

    def now(self) -> int:
        return scaled_now_ms(self.data_start_ms, self.anchor_wall_ms, self.speed, wall_ms())

    def cursor(self) -> int | None:
        return self.now()


def scaled_now_ms(data_start_ms: int, anchor_wall_ms: int, speed: float, wall: int) -> int:
    """The one formula of fast replay, shared by the exchange and ``fastclock``."""
    return data_start_ms + int((wall - anchor_wall_ms) * speed)


Clock = StaticClock | ReplayClock | ScaledClock
