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
* The oracle's two rules (``OracleDerisk``, ``OvernightTrim``) and what they remember per
  trade live with the rest of the oracle's strategy side, in ``hybrid_ai.oracle.steering``.

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
from datetime import datetime
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from hybrid_ai.columns import ML_EXIT, ORACLE_EXIT, PARTIAL_TP
from hybrid_ai.exits import sellable_cut
from llm_oracle.once import Once

logger = logging.getLogger(__name__)



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
    _failed: Once = field(default_factory=lambda: Once(logger))
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
            self._failed.clear(rule.name)
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
        self._failed.say(rule.name, f"{rule.name} failed ({type(exc).__name__}: {exc}): open "
                         "trades keep their size; stops and exits work as usual", logging.ERROR)

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


__all__ = ["ML_EXIT", "ORACLE_EXIT", "PARTIAL_TP", "CustomData", "ExitSignal", "OpenPosition",
           "PartialTakeProfit", "PositionRule", "PositionRules", "Sell", "exit_columns"]
