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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from hybrid_ai.columns import DERISK, OVERNIGHT
from hybrid_ai.positions import OpenPosition, PositionRule, Sell
from hybrid_ai.settings import PackSettings, RiskLevel

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


# --- the two position rules that carry the trims out (``hybrid_ai.positions``) ----------
class TradeMemory:
    """Per trade: the events that already steered it and the risk rank its size reflects;
    in memory first, then in the trade's custom data (a restart reads them back)."""

    KEEP_MARKS = 8  # the newest events per trade kept in the custom data

    def __init__(self) -> None:
        self._marks: dict[tuple[int, datetime], set[str]] = {}
        self._sized: dict[tuple[int, datetime], int] = {}

    @staticmethod
    def _key(p: OpenPosition) -> tuple[int, datetime]:
        return p.trade_id, p.opened_at

    def marks(self, p: OpenPosition) -> set[str]:
        key = self._key(p)
        if key not in self._marks:
            stored = p.custom.get_custom_data("steered", default=[]) if p.custom else []
            self._marks[key] = set(stored or [])
        return self._marks[key]

    def mark(self, p: OpenPosition, events: tuple[str, ...]) -> None:
        marks = self.marks(p)
        if not set(events) <= marks:
            marks.update(events)
            if p.custom is not None:
                newest = sorted(marks, key=lambda k: k.partition("@")[2])[-self.KEEP_MARKS:]
                p.custom.set_custom_data("steered", newest)

    def sized_rank(self, p: OpenPosition, default: Callable[[], int]) -> int:
        key = self._key(p)
        if key not in self._sized:
            stored = p.custom.get_custom_data("sized_rank") if p.custom else None
            self._sized[key] = int(stored) if stored is not None else default()
        return self._sized[key]

    def resize(self, p: OpenPosition, rank: int) -> None:
        self._sized[self._key(p)] = rank
        if p.custom is not None:
            p.custom.set_custom_data("sized_rank", rank)


class OracleSteering:
    """Plans the oracle's trims of the open trades for the decision in force and, after
    the overnight mark, its overnight target (``hybrid_ai.oracle.steering.plan_trims``); the
    ``OracleDerisk`` and ``OvernightTrim`` rules read one plan.

    :param guidance_at: the oracle's word at a time (``OracleFeed.at``)
    :param portfolio: the open trades (stakes) and the equity, in stake currency
    :param overnight_at: the overnight mark's time of day (None: off)
    """

    def __init__(self, settings: PackSettings, guidance_at: Callable[[datetime], Any],
                 portfolio: Callable[[], tuple[Sequence[OpenPosition], float]],
                 overnight_at: time | None, memory: TradeMemory) -> None:
        self.settings, self.guidance_at, self.portfolio = settings, guidance_at, portfolio
        self.overnight_at, self.memory = overnight_at, memory
        self._plans: dict[tuple[str, ...], tuple[Caps, dict[int, Trim]]] = {}
        self._last: tuple[tuple[int, datetime, datetime], Trim | None] | None = None

    def sized_rank(self, p: OpenPosition) -> int:
        """The rank a trade's size reflects: the level in force when it opened, or the level
        of the trim that last cut it."""
        return self.memory.sized_rank(p, lambda: self.guidance_at(p.opened_at).risk_level.rank)

    def trim(self, p: OpenPosition, now: datetime) -> Trim | None:
        """This trade's trim for the events in force (once per event), or None. Asked by
        both rules for one trade and time, it plans once."""
        key = (p.trade_id, p.opened_at, now)
        if self._last is None or self._last[0] != key:
            self._last = (key, self._trim(p, now))
        return self._last[1]

    def _trim(self, p: OpenPosition, now: datetime) -> Trim | None:
        guidance = self.guidance_at(now)
        if not guidance.valid:  # stale/missing journal: caps new entries only, no trims
            return None
        events = [f"decision@{guidance.decided_at.isoformat()}"]
        overnight = overnight_since(guidance, now, self.overnight_at)
        if overnight is not None:
            events.append(f"overnight@{overnight.isoformat()}")
        keys = tuple(events)
        if all(k in self.memory.marks(p) for k in keys):
            return None
        if keys not in self._plans:
            self._plans.clear()  # only the event in force matters
            self._plans[keys] = self._plan(guidance, overnight, keys)
        caps, plan = self._plans[keys]
        self.memory.mark(p, keys)
        trim = plan.get(p.trade_id)
        if trim is not None and caps.rank < self.sized_rank(p):
            self.memory.resize(p, caps.rank)
        return trim

    def _plan(self, guidance: Any, overnight: datetime | None,
              keys: tuple[str, ...]) -> tuple[Caps, dict[int, Trim]]:
        positions, equity = self.portfolio()
        limits = self.settings.limits
        caps = Caps(
            decided_at=guidance.decided_at,
            rank=guidance.risk_level.rank,
            focus=guidance.focus,
            max_position=min(limits.max_stake_per_trade, guidance.max_position) * equity,
            max_exposure=min(limits.max_total_exposure, guidance.max_exposure) * equity,
            multipliers=[self.settings.multiplier(level) for level in RiskLevel],
            close_unfocused=self.settings.oracle.derisk_closes_unfocused,
            overnight_since=overnight,
            overnight_exposure=guidance.overnight_target * equity,
        )
        held = [Position(p.trade_id, p.pair, p.stake, p.opened_at, self.sized_rank(p))
                for p in positions]
        skip = frozenset(p.trade_id for p in positions
                         if all(k in self.memory.marks(p) for k in keys))
        return caps, plan_trims(held, caps, skip)


class _SteeringRule(PositionRule):
    name = "oracle steering"
    announced = True

    def __init__(self, steering: OracleSteering) -> None:
        self.steering = steering

    def wants(self, position: OpenPosition, now: datetime) -> Sell | None:
        trim = self.steering.trim(position, now)
        if trim is None or trim.tag != self.tag:
            return None
        return Sell(position.stake - trim.target, self.tag)


class OracleDerisk(_SteeringRule):
    """A new decision lowered the risk level, ``max_position`` or ``max_exposure``: the
    trades opened before it are sold down to its caps, once (tag ``oracle_derisk``)."""

    tag = DERISK

    def short_desc(self) -> str:
        return (f"oracle de-risk: a decision that lowers the risk level or the caps sells the "
                f"trades opened before it down to them, once (tag {self.tag})")


class OvernightTrim(_SteeringRule):
    """After the overnight mark, total exposure is cut to the decision's
    ``overnight_target``, once per mark (tag ``overnight_trim``)."""

    tag = OVERNIGHT

    def short_desc(self) -> str:
        at = self.steering.overnight_at
        when = f"{at:%H:%M} UTC" if at is not None else "the overnight mark"
        return (f"overnight trim: after {when}, exposure cut to the decision's "
                f"overnight_target, once per mark (tag {self.tag})")
