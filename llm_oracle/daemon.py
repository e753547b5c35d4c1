"""``python -m llm_oracle run``: sessions at the configured UTC times, plus event-triggered
ones, until SIGINT or SIGTERM.

The schedule is ``llm_oracle.schedule``'s: the session due is the slot ``now`` is in,
unless it already ran; a session started more than ``LATE_AFTER`` after its slot began is
journaled late and decides on what is known now.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from llm_oracle import store
from llm_oracle.oracle import Oracle
from llm_oracle.schedule import Schedule

logger = logging.getLogger("llm_oracle")

LATE_AFTER = timedelta(minutes=5)  # a session started later than this is journaled late


def print_decision(d: Any) -> None:
    """The decision's main fields as JSON on stdout."""
    print(json.dumps({k: d.model_dump(mode="json")[k] for k in
                      ("decided_at", "status", "risk_level", "focus_pairs", "max_exposure",
                       "provider", "model", "cost_usd", "rejected_reason", "notes")},
                     indent=2))


def due_slot(sessions: Iterable[str], last_done: datetime, now: datetime) -> datetime | None:
    """When the session due now was scheduled: the start of the slot ``now`` is in, if it
    began after the last completed session; else None.

    Scheduling from the last completed session (not from ``now``) means a slot that passed
    while the daemon was busy (a slow fetch, a slow provider) or down still runs, once,
    late; several missed slots collapse into one session, never a burst."""
    slot = Schedule(sessions).due(last_done, now)
    return None if slot is None else slot.start


def next_slot(sessions: Iterable[str], after: datetime) -> datetime:
    """The first session start after ``after``."""
    return Schedule(sessions).slot(after).end


def last_completed(oracle: Oracle) -> datetime | None:
    """When the newest journaled session ran (rejected ones count: no retry storm)."""
    decisions = store.read_journal(oracle.out / store.JOURNAL)
    return max((d.decided_at for d in decisions if not d.session.startswith("event:")),
               default=None)


def event_move(oracle: Oracle, now: datetime) -> str | None:
    """A focus pair that moved more than ``event_move`` over its last closed hour."""
    profile = store.read_journal(oracle.out / store.JOURNAL)
    focus = next((d.focus_pairs for d in reversed(profile) if d.usable), [])
    for pair in focus:
        if pair not in oracle.view.frames:
            continue
        closed = oracle.view.closed_before(pair, now)
        if len(closed) and abs(closed["close"].iloc[-1] / closed["open"].iloc[-1] - 1) \
                >= oracle.settings.event_move:
            return pair
    return None


def run_safely(oracle: Oracle, at: datetime, session: str) -> None:
    """One live session; whatever goes wrong is logged and the daemon goes on."""
    try:
        print_decision(oracle.run_session(at, session, stamp_arrival=True))
    except Exception:
        logger.exception("session %s at %s failed; the last good decision stays in force",
                         session, at)


def refresh(oracle: Oracle) -> None:
    """New candles only (live views fetch since their last candle)."""
    try:
        oracle.view.update()
    except Exception:
        logger.exception("candle refresh failed; the session uses the candles it has")


def run(oracle: Oracle, poll: float) -> int:
    """The daemon loop; ``poll``: the longest wait between checks, seconds."""
    stop = oracle.cancel  # set by SIGTERM/SIGINT: waits and an in-flight request end at once
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sessions = oracle.settings.sessions
    last_event = datetime.min.replace(tzinfo=UTC)
    print(f"llm_oracle: daemon with {oracle.provider.name}, sessions "  # type: ignore[union-attr]
          f"{sessions} UTC, writing {oracle.out}", file=sys.stderr, flush=True)
    last_done = last_completed(oracle)
    if last_done is None or not (oracle.out / store.PROFILE).exists():
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        run_safely(oracle, now, "startup")
        last_done = max(now, last_done or now)
    while not stop.is_set():
        now = datetime.now(UTC)
        slot = due_slot(sessions, last_done, now)
        if slot is not None:
            late = now - slot > LATE_AFTER
            refresh(oracle)
            # A late session decides on what is known now, not at the missed slot.
            at = now.replace(second=0, microsecond=0) if late else slot
            name = f"{slot:%H:%M}Z" + (" late" if late else "")
            if late:
                logger.warning("session %s runs late, at %s", f"{slot:%H:%M}Z", at)
            run_safely(oracle, at, name)
            last_done = max(slot, at)
            continue
        wait = min(poll, max(0.0, (next_slot(sessions, last_done) - now).total_seconds()))
        if stop.wait(timeout=wait):
            break
        now = datetime.now(UTC)
        spacing = timedelta(minutes=oracle.settings.event_min_spacing_minutes)
        if now - last_event >= spacing and due_slot(sessions, last_done, now) is None:
            refresh(oracle)
            pair = event_move(oracle, now)
            if pair:
                last_event = now
                run_safely(oracle, now.replace(second=0, microsecond=0), f"event:{pair}")
    return 0
