"""Steering the trades already open: the oracle's caps applied to positions, not only entries.

Two kinds of event trim open trades through freqtrade's position adjustment (partial exits):

* **a new decision** (tag ``oracle_derisk``) that lowers the risk level, ``max_position`` or
  ``max_exposure``;
* **the overnight mark** (tag ``overnight_trim``, ``hybrid_ai.oracle.overnight_at``): total
  exposure is cut to the ``overnight_target`` of the decision in force, until the next
  decision arrives (entries may not lift it above that meanwhile, see ``entry_caps``).

The rule, for one event and the trades open before it (trades opened later were already
sized under the event's caps and are never trimmed by it):

1. Risk level: a trade sized under a bolder level than the decision's is scaled by the ratio
   of the two levels' stake multipliers (moderate -> conservative: 1.0 -> 0.5 halves it). With
   ``derisk_closes_unfocused`` a downgrade also closes trades outside the new focus list.
2. Per trade: no trade above ``max_position`` x equity (the hard limit caps that too).
3. Total: when all open trades together exceed ``max_exposure`` x equity (overnight:
   ``overnight_target`` x equity), the trimmable trades are cut pro rata to their size.

Exposure is measured as freqtrade measures stakes: the stake committed to each trade (cost
basis), the same figure the entry-side caps use. Each trade is steered at most once per event
(hysteresis: a price move after the event never triggers a second trim, and entries after it
are capped to the same limits, so trims and re-entries cannot ping-pong). Cuts below
``MIN_CUT`` of a trade are not worth an order; a remainder below the exchange minimum closes the
trade. Trims only ever sell: they never add exposure and never touch stops or trailing.
Without a valid decision (journal stale, missing or corrupt) nothing is trimmed: the
conservative fallback caps new entries only, so an oracle outage cannot cause a trim storm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

DERISK = "oracle_derisk"
OVERNIGHT = "overnight_trim"
MIN_CUT = 0.05  # smallest cut worth an order, as a fraction of the trade's stake


@dataclass(frozen=True)
class Position:
    """An open trade as steering sees it."""

    trade_id: int
    pair: str
    stake: float  # stake committed (cost basis), stake currency
    opened_at: datetime
    sized_rank: int  # the risk rank its size reflects (0 conservative .. 2 aggressive)


@dataclass(frozen=True)
class Caps:
    """What one decision (and, overnight, its target) allows, in stake currency."""

    decided_at: datetime
    rank: int
    focus: frozenset[str]
    max_position: float  # one trade, stake currency
    max_exposure: float  # all trades, stake currency
    multipliers: Sequence[float]  # stake multiplier by risk rank
    close_unfocused: bool = False
    overnight_since: datetime | None = None  # overnight mark in force, if any
    overnight_exposure: float | None = None  # all trades overnight, stake currency


@dataclass(frozen=True)
class Trim:
    target: float  # stake the trade keeps (0: close it)
    tag: str


def plan_trims(positions: Sequence[Position], caps: Caps,
               skip: frozenset[int] = frozenset()) -> dict[int, Trim]:
    """Targets for the trades that must shrink under ``caps``; ``skip``: ids already steered
    by this event (their stake counts, they are not cut again)."""
    targets = {p.trade_id: p.stake for p in positions}
    tags: dict[int, str] = {}

    def cut(trade_id: int, value: float, tag: str) -> None:
        if value < targets[trade_id]:
            targets[trade_id] = max(value, 0.0)
            tags[trade_id] = tag

    movable = [p for p in positions if p.opened_at < caps.decided_at and p.trade_id not in skip]
    for p in movable:
        if caps.rank < p.sized_rank:
            sized = caps.multipliers[p.sized_rank]
            ratio = caps.multipliers[caps.rank] / sized if sized > 0 else 0.0
            cut(p.trade_id, p.stake * ratio, DERISK)
            if caps.close_unfocused and p.pair not in caps.focus:
                cut(p.trade_id, 0.0, DERISK)
        cut(p.trade_id, caps.max_position, DERISK)
    _fit(targets, [p.trade_id for p in movable], caps.max_exposure, DERISK, cut)

    if caps.overnight_since is not None and caps.overnight_exposure is not None:
        overnight = [p.trade_id for p in positions
                     if p.opened_at < caps.overnight_since and p.trade_id not in skip]
        _fit(targets, overnight, caps.overnight_exposure, OVERNIGHT, cut)

    return {p.trade_id: Trim(targets[p.trade_id], tags[p.trade_id]) for p in positions
            if p.trade_id in tags and targets[p.trade_id] < p.stake * (1 - MIN_CUT)}


def _fit(targets: dict[int, float], movable: list[int], cap: float, tag: str, cut) -> None:
    """Cut the movable trades pro rata until all targets together fit under ``cap``."""
    excess = sum(targets.values()) - cap
    movable_total = sum(targets[i] for i in movable)
    if excess <= 1e-9 or movable_total <= 0:
        return
    scale = max(0.0, (movable_total - excess) / movable_total)
    for i in movable:
        cut(i, targets[i] * scale, tag)


def overnight_since(guidance, now: datetime, at: time | None) -> datetime | None:
    """The overnight mark in force at ``now``: passed, and no decision since (``guidance``:
    the decision in force, with its ``decided_at``)."""
    mark = overnight_mark(now, at)
    if mark is None or guidance.decided_at is None or guidance.decided_at > mark:
        return None
    return mark


def overnight_mark(now: datetime, at: time | None) -> datetime | None:
    """The latest overnight mark at or before ``now`` (None when overnight trims are off)."""
    if at is None:
        return None
    mark = datetime.combine(now.astimezone(UTC).date(), at, tzinfo=UTC)
    return mark if mark <= now else mark - timedelta(days=1)
