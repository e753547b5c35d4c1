"""Rules that act on an open trade, behind one interface — freqtrade's protections, for positions.

Freqtrade's answer to several independent rules acting on one thing is
``plugins/protections``: one small class per rule behind ``IProtection``, composed by a
manager. Here the thing is an open trade, and the manager is ``PositionRules``:

* ``PositionRule``: given the trade as plain numbers (``OpenPosition``) and the time, a rule
  answers nothing or ``Sell(stake, tag)`` (selling the whole stake is an exit). Each rule
  states whether it may fire while an order of the trade is open
  (``fires_with_open_orders``) and how it treats a rest below the exchange minimum
  (``shrink``: sell less so a sellable rest stays; otherwise sell the whole trade) — one
  helper applies that for all (``hybrid_ai.exits.sellable_cut``).
* ``PositionRules``: the rules in their order of precedence, which is the order of the list
  (as freqtrade's ``ProtectionManager`` orders protections); the first whose sale the
  exchange can execute wins. Each rule says what it does in one line (``short_desc``),
  printed at start (``describe``). A rule that raises is logged once and skipped:
  the stops, the trailing stop and the exit signals never depend on a rule.
* ``TradeMemory``: what the rules remember per trade (which events already steered it, the
  risk rank its size reflects), kept in freqtrade's ``Trade`` custom data so that a restart
  changes nothing.

Exits that are signal columns (freqtrade acts on them at the next candle's open, for every
open trade of the pair) are not per-trade callbacks: each is an ``ExitSignal`` (tag, mask)
and ``exit_columns`` names a candle's exit after the first signal of the list that fires.
The strategy lists them: the entry family's own exits (``hybrid_ai.entries.exit_signals``:
``rank_drop``, then ``trend_break`` or ``ta_reversal``), then ``ml_exit``, then
``oracle_exit``, then a pause of the pair (``hybrid_ai.pauses``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from hybrid_ai.exits import sellable_cut
from hybrid_ai.settings import PackSettings, RiskLevel
from hybrid_ai.steering import DERISK, OVERNIGHT, Caps, Position, Trim, overnight_since, plan_trims

logger = logging.getLogger(__name__)

PARTIAL_TP = "partial_tp"
ML_EXIT = "ml_exit"
ORACLE_EXIT = "oracle_exit"


class CustomData(Protocol):
    """Where a trade's memory lives: freqtrade's ``Trade`` (custom data) satisfies it."""

    def get_custom_data(self, key: str, default: Any = None) -> Any: ...

    def set_custom_data(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class OpenPosition:
    """An open trade as the rules see it (stake currency; ratios as fractions)."""

    trade_id: int
    pair: str
    opened_at: datetime
    stake: float  # committed stake (cost basis)
    value: float = 0.0  # amount x the exit rate (0: not priced; planners read stakes only)
    profit: float = 0.0  # at the exit rate, 0.04 = +4 %
    has_open_orders: bool = False
    took_profit: bool = False  # a partial take-profit already filled
    custom: CustomData | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of_trade(cls, trade: Any, rate: float | None = None,
                 profit: float = 0.0) -> OpenPosition:
        """A freqtrade ``Trade`` at the exit ``rate`` (None: not priced, stakes only); its
        custom data is the rules' memory."""
        return cls(trade.id, trade.pair, trade.open_date_utc, trade.stake_amount,
                   value=trade.amount * rate if rate else 0.0, profit=profit,
                   has_open_orders=bool(trade.has_open_orders) if rate else False,
                   took_profit=took_profit(trade) if rate else False, custom=trade)


def took_profit(trade: Any) -> bool:
    """Whether a partial take-profit of ``trade`` (a freqtrade ``Trade``) already filled."""
    return trade.nr_of_successful_exits > 0 and any(
        o.ft_order_tag == PARTIAL_TP and o.ft_order_side == trade.exit_side
        and o.status == "closed" for o in trade.orders)


@dataclass(frozen=True)
class Sell:
    """Sell ``stake`` of the position's committed stake (all of it: exit), tagged ``tag``."""

    stake: float
    tag: str


class PositionRule(ABC):
    """One rule acting on an open trade."""

    tag: ClassVar[str]
    name: ClassVar[str]  # for the log: one line per distinct failure of a name
    fires_with_open_orders: ClassVar[bool] = False
    shrink: ClassVar[bool] = False  # rest below the minimum: sell less (True) or all (False)
    announced: ClassVar[bool] = False  # live, each sale is told to the user (``announce``)

    @abstractmethod
    def wants(self, position: OpenPosition, now: datetime) -> Sell | None:
        """The sale this rule asks for now, or None."""

    def short_desc(self) -> str:
        """What the rule does, in one line (printed at start, as freqtrade's protections
        print theirs)."""
        return f"{self.name} (tag {self.tag})"


class PartialTakeProfit(PositionRule):
    """Sell ``fraction`` of the position once, when the exit price is ``gain`` above the
    entry; a stake too small to split sells less or closes whole.

    :param gain: the gain, or a callable reading it (a hyperopt parameter changes per epoch)
    """

    tag = PARTIAL_TP
    name = "partial take-profit"
    shrink = True

    def __init__(self, gain: float | Callable[[], float], fraction: float) -> None:
        self._gain, self.fraction = gain, fraction

    @property
    def gain(self) -> float:
        return self._gain() if callable(self._gain) else self._gain

    def wants(self, position: OpenPosition, now: datetime) -> Sell | None:
        if position.took_profit or position.profit < self.gain:
            return None
        return Sell(position.stake * self.fraction, self.tag)

    def short_desc(self) -> str:
        return (f"{self.name}: sells {self.fraction:.0%} once at +{self.gain:.1%} "
                f"(tag {self.tag})")


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
    the overnight mark, its overnight target (``hybrid_ai.steering.plan_trims``); the
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


@dataclass
class PositionRules:
    """The rules in order of precedence (list order: the first that sells wins); ``adjust``
    asks them for one trade.

    :param live: log each sale at INFO (dry-run/live) or DEBUG (backtests list them)
    :param announce: called with (pair, tag, stake before, stake after, time) for each sale
        of a rule whose ``announced`` is set
    """

    rules: Sequence[PositionRule]
    live: bool = False
    announce: Callable[[str, str, float, float, datetime], None] | None = None
    _failed: dict[str, str] = field(default_factory=dict)
    _said: set[tuple[int, datetime, str]] = field(default_factory=set)

    def describe(self) -> list[str]:
        """One line per rule, in precedence order: ``"1. partial take-profit: ..."``."""
        return [f"{i}. {rule.short_desc()}" for i, rule in enumerate(self.rules, 1)]

    def adjust(self, position: OpenPosition, now: datetime,
               minimum: float | None) -> tuple[float, str] | None:
        """(-stake to sell, tag) for freqtrade's ``adjust_trade_position``, or None.

        :param minimum: the exchange's minimum stake for an exit of this pair (None: none)
        """
        for rule in self.rules:
            if position.has_open_orders and not rule.fires_with_open_orders:
                continue
            try:
                want = rule.wants(position, now)
            except Exception as exc:  # a rule's bug never takes the exits down
                self._fail(rule, exc)
                continue
            self._failed.pop(rule.name, None)
            if want is None:
                continue
            cut = sellable_cut(want.stake / position.stake * position.value, position.value,
                               minimum, shrink=rule.shrink)
            if cut is None:
                continue
            stake = position.stake * cut.fraction
            self._say(position, want, cut.fraction, cut.why)
            if self.announce is not None and getattr(rule, "announced", False):
                self.announce(position.pair, want.tag, position.stake,
                              position.stake - stake, now)
            return -stake, want.tag
        return None

    def _fail(self, rule: PositionRule, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if self._failed.get(rule.name) != message:
            self._failed[rule.name] = message
            logger.error("%s failed (%s): open trades keep their size; stops and exits work "
                         "as usual", rule.name, message)

    def _say(self, p: OpenPosition, want: Sell, fraction: float, why: str) -> None:
        """Each sale at INFO live (DEBUG in backtests); once per trade and tag, at INFO,
        when the exchange minimum changed what it sells."""
        asked = min(1.0, want.stake / p.stake) if p.stake > 0 else 1.0
        if why and (p.trade_id, p.opened_at, want.tag) not in self._said:
            self._said.add((p.trade_id, p.opened_at, want.tag))
            logger.info("%s: %s sells %.0f%% of the trade, not the %.0f%% asked: %s", p.pair,
                        want.tag, 100 * fraction, 100 * asked, why)
        logger.log(logging.INFO if self.live else logging.DEBUG, "%s: %s, stake %.2f -> %.2f",
                   p.pair, want.tag, p.stake, p.stake * (1 - fraction))


@dataclass(frozen=True)
class ExitSignal:
    """One exit signal column: ``mask`` (one bool per candle) exits with ``tag``."""

    tag: str
    mask: npt.NDArray[np.bool_]


def exit_columns(signals: Sequence[ExitSignal]) -> tuple[npt.NDArray, npt.NDArray]:
    """``exit_long`` (0/1) and ``exit_tag`` (None where no signal fires) from the exit
    signals; where several fire, the first of the list names the exit."""
    if not signals:
        raise ValueError("exit_columns needs at least one exit signal")
    fired = np.zeros(len(signals[0].mask), bool)
    tag = np.full(len(fired), None, dtype=object)
    for signal in reversed(signals):
        tag = np.where(signal.mask, signal.tag, tag)
        fired |= signal.mask
    return fired.astype(int), tag


__all__ = ["ML_EXIT", "ORACLE_EXIT", "PARTIAL_TP", "ExitSignal", "OpenPosition",
           "OracleDerisk", "OracleSteering", "OvernightTrim", "PartialTakeProfit",
           "PositionRule", "PositionRules", "Sell", "TradeMemory", "exit_columns"]
