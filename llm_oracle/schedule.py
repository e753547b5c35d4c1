"""When sessions run: the one HH:MM parser and the one definition of a session slot.

A session slot is half-open, ``[start, next start)``: the session configured at 06:00 owns
every instant from 06:00:00 (included) up to the next session's start (excluded), across
midnight for the day's last session. A time exactly at a session's start belongs to the
slot that starts then, never to the one before. Everything derives from that:

* a backfill over ``[start, end)`` decides the sessions that start in it (a session at
  ``end`` belongs to the next timerange, so consecutive timeranges never decide it twice);
* the daemon's due session is the slot ``now`` is in, unless it already ran (a session
  due at exactly 06:00:00 runs then, not a slot later); the next one is that slot's end.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


def parse_hhmm(value: str) -> time:
    """``"06:00"`` -> ``time(6, 0)`` (UTC, by this pack's convention).

    :raises ValueError: ``'25:00' is not HH:MM (UTC)``
    """
    hh, _, mm = value.partition(":")
    if not (hh.isascii() and mm.isascii() and hh.isdigit() and mm.isdigit()
            and int(hh) < 24 and int(mm) < 60):
        raise ValueError(f"{value!r} is not HH:MM (UTC)")
    return time(int(hh), int(mm))


@dataclass(frozen=True)
class Slot:
    """One session's slot: ``[start, end)``, UTC; ``label`` is the session as configured."""

    start: datetime
    end: datetime
    label: str

    @property
    def name(self) -> str:
        """The session's journaled name, e.g. ``"06:00Z"``."""
        return f"{self.label}Z"

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


class Schedule:
    """The daily session times (UTC) and the slots they cut the timeline into.

    :param sessions: "HH:MM" strings, in any order; a time given twice is one session (the
        first spelling names it)
    :raises ValueError: an item is not HH:MM
    """

    def __init__(self, sessions: Iterable[str]) -> None:
        labels: dict[time, str] = {}
        for item in sessions:
            labels.setdefault(parse_hhmm(item), item)
        self.times = sorted(labels)
        self.labels = [labels[t] for t in self.times]

    def __bool__(self) -> bool:
        return bool(self.times)

    def _at(self, day: date, index: int) -> datetime:
        """Session ``index`` of ``day``; indexes beyond the day's sessions roll over."""
        days, i = divmod(index, len(self.times))
        return datetime.combine(day + timedelta(days=days), self.times[i], tzinfo=UTC)

    def slot(self, moment: datetime) -> Slot:
        """The slot ``moment`` is in: the latest session start at or before it.

        :raises ValueError: no sessions are configured
        """
        if not self.times:
            raise ValueError("no session times configured")
        if moment.tzinfo is None:
            raise TypeError(f"{moment} has no timezone (session times are UTC)")
        moment = moment.astimezone(UTC)
        day = moment.date()
        i = bisect_right(self.times, moment.time()) - 1  # -1: the slot began yesterday
        return Slot(self._at(day, i), self._at(day, i + 1), self.labels[i % len(self.times)])

    def slots(self, start: datetime, end: datetime) -> Iterator[Slot]:
        """The slots that start in ``[start, end)``, in time order."""
        if not self.times or start >= end:
            return
        slot = self.slot(start)
        if slot.start < start:
            slot = self.slot(slot.end)
        while slot.start < end:
            yield slot
            slot = self.slot(slot.end)

    def due(self, last_done: datetime, now: datetime) -> Slot | None:
        """The slot whose session is due at ``now``, given the last completed session.

        That is the slot ``now`` is in, if it started after ``last_done``: a slot that
        passed while the daemon was busy or down still runs, once, late, and several
        missed slots collapse into the newest one, never a burst."""
        slot = self.slot(now)
        return slot if slot.start > last_done else None
