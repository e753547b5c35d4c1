"""The position rules on plain data (``hybrid_ai.positions``): each rule alone, their order
of precedence, the exchange minimum, failures, and the per-trade memory across a restart.
The same rules through freqtrade's backtester and a dry-run bot: tests/test_protections.py,
tests/test_steering.py, tests/test_live.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
import pytest

from hybrid_ai.oracle.steering import (
    DERISK,
    OVERNIGHT,
    OracleDerisk,
    OracleSteering,
    OvernightTrim,
    TradeMemory,
)
from hybrid_ai.positions import (
    PARTIAL_TP,
    ExitSignal,
    OpenPosition,
    PartialTakeProfit,
    PositionRule,
    PositionRules,
    Sell,
    exit_columns,
)
from hybrid_ai.settings import RiskLevel, load_settings

T0 = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)


@dataclass
class CustomData:
    """What the rules need of freqtrade's ``Trade``: its custom data (here a dict)."""

    data: dict[str, Any] = field(default_factory=dict)

    def get_custom_data(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set_custom_data(self, key: str, value: Any) -> None:
        self.data[key] = value


@dataclass(frozen=True)
class Guidance:
    """The oracle's word as ``OracleFeed.at`` returns it."""

    valid: bool
    risk_level: RiskLevel
    decided_at: datetime | None
    max_exposure: float = 0.9
    max_position: float = 1.0
    overnight_target: float = 1.0
    focus: frozenset[str] = frozenset({"A/USDT", "B/USDT"})


def position(trade_id: int = 1, stake: float = 200.0, profit: float = 0.0,
             value: float | None = None, **kw: Any) -> OpenPosition:
    return OpenPosition(trade_id, kw.pop("pair", "A/USDT"), kw.pop("opened_at", T0), stake,
                        value=stake if value is None else value, profit=profit, **kw)


# --- the partial take-profit ----------------------------------------------------------------
def test_partial_take_profit_fires_once_at_its_gain():
    rule = PartialTakeProfit(0.04, 0.5)
    assert rule.wants(position(profit=0.039), T0) is None
    assert rule.wants(position(profit=0.04), T0) == Sell(100.0, PARTIAL_TP)
    assert rule.wants(position(profit=0.08, took_profit=True), T0) is None
    gain = [0.04]
    live = PartialTakeProfit(lambda: gain[0], 0.5)  # a hyperopt parameter, read each time
    gain[0] = 0.06
    assert live.wants(position(profit=0.05), T0) is None


# --- the rule set: precedence, open orders, the exchange minimum, failures --------------------
class Always(PositionRule):
    """A stand-in rule with a fixed wish (tests the rule set, not a rule)."""

    fires_with_open_orders = False

    def __init__(self, tag: str, stake: float, shrink: bool = False) -> None:
        self.tag, self.name, self.stake, self.shrink = tag, tag, stake, shrink

    def wants(self, p: OpenPosition, now: datetime) -> Sell | None:
        return Sell(self.stake, self.tag)


def test_the_first_rule_in_precedence_wins():
    rules = PositionRules([Always(DERISK, 50), Always(PARTIAL_TP, 100, shrink=True)])
    assert rules.adjust(position(), T0, None) == (-50.0, DERISK)


def test_the_sales_of_announced_rules_are_told_with_what_the_minimum_left():
    told: list[tuple] = []
    derisk = Always(DERISK, 7.0)
    derisk.announced = True  # as the oracle's trims are
    rules = PositionRules([derisk, Always(PARTIAL_TP, 100, shrink=True)], live=True,
                          announce=lambda *sale: told.append(sale))
    rules.adjust(position(stake=12.0), T0, 5.83)  # 7 of 12 would leave 5 < 5.83: all of it
    assert told == [("A/USDT", DERISK, 12.0, pytest.approx(0.0), T0)]
    PositionRules([Always(PARTIAL_TP, 6.0, shrink=True)], live=True,
                  announce=lambda *sale: told.append(sale)).adjust(position(stake=12.0), T0,
                                                                   None)
    assert len(told) == 1  # a take-profit is the user's own rule: not announced


def test_precedence_is_the_order_of_the_list_and_each_rule_says_what_it_does():
    first_tp = PositionRules([Always(PARTIAL_TP, 100, shrink=True), Always(DERISK, 50)])
    assert first_tp.adjust(position(), T0, None) == (-100.0, PARTIAL_TP)
    lines = PositionRules([Always(DERISK, 50), PartialTakeProfit(0.04, 0.5)]).describe()
    assert lines == [f"1. {DERISK} (tag {DERISK})",
                     "2. partial take-profit: sells 50% once at +4.0% (tag partial_tp)"]


def test_no_rule_fires_while_an_order_is_open():
    rules = PositionRules([PartialTakeProfit(0.04, 0.5)])
    assert rules.adjust(position(profit=0.1, has_open_orders=True), T0, None) is None


def test_the_exchange_minimum_shrinks_a_take_profit_and_closes_a_trim():
    # Worth 10.40 at +4 %: half would leave 5.20 under the 5.83 minimum.
    tp = PositionRules([PartialTakeProfit(0.04, 0.5)])
    assert tp.adjust(position(stake=10.0, value=10.4, profit=0.04), T0, 5.83) == (
        pytest.approx(-10.0), PARTIAL_TP)  # the whole trade
    # Worth 12: half leaves 6.00, above the minimum + 2 % head-room: half it is.
    assert tp.adjust(position(stake=12.0, value=12.0, profit=0.04), T0, 5.83) == (
        pytest.approx(-6.0), PARTIAL_TP)
    trim = PositionRules([Always(DERISK, 7.0)])
    assert trim.adjust(position(stake=12.0), T0, 5.83) == (pytest.approx(-12.0), DERISK)
    assert trim.adjust(position(stake=100.0), T0, 7.5) is None  # the cut alone too small


def test_a_cut_too_small_passes_to_the_next_rule():
    rules = PositionRules([Always(DERISK, 3.0), PartialTakeProfit(0.04, 0.5)])
    assert rules.adjust(position(stake=100.0, profit=0.05), T0, 5.83) == (-50.0, PARTIAL_TP)


def test_a_rule_that_raises_is_logged_once_and_skipped(caplog):
    class Broken(Always):
        def wants(self, p: OpenPosition, now: datetime) -> Sell | None:
            raise RuntimeError("planner bug")

    rules = PositionRules([Broken(DERISK, 0), PartialTakeProfit(0.04, 0.5)])
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            assert rules.adjust(position(profit=0.05), T0, None) == (-100.0, PARTIAL_TP)
    assert [r.getMessage() for r in caplog.records].count(
        "oracle_derisk failed (RuntimeError: planner bug): open trades keep their size; "
        "stops and exits work as usual") == 1


# --- the memory a restart keeps ----------------------------------------------------------------
def test_marks_and_sized_ranks_survive_a_restart():
    custom = CustomData()
    p = position(custom=custom)
    memory = TradeMemory()
    memory.mark(p, ("decision@2024-06-10T10:00:00+00:00",))
    memory.resize(p, 0)
    for hour in range(10):  # only the newest events are kept in the trade
        memory.mark(p, (f"decision@2024-06-11T{hour:02d}:00:00+00:00",))
    after_restart = TradeMemory()
    assert len(custom.data["steered"]) == TradeMemory.KEEP_MARKS
    assert "decision@2024-06-11T09:00:00+00:00" in after_restart.marks(p)
    assert after_restart.sized_rank(p, default=lambda: 2) == 0


# --- the oracle's trims ------------------------------------------------------------------------
def steering(journal: dict[datetime, Guidance], trades: list[OpenPosition],
             overnight_at: time | None = None) -> tuple[OracleSteering, PositionRules]:
    def guidance_at(at: datetime) -> Guidance:
        times = [t for t in journal if t <= at]
        return journal[max(times)] if times else Guidance(False, RiskLevel.CONSERVATIVE, None)

    plan = OracleSteering(load_settings({}), guidance_at, lambda: (trades, 1000.0),
                          overnight_at, TradeMemory())
    return plan, PositionRules([OracleDerisk(plan), OvernightTrim(plan),
                                PartialTakeProfit(0.04, 0.5)])


def test_a_downgrade_sells_the_trades_down_once():
    trades = [position(1, 200.0, custom=CustomData()), position(2, 100.0, custom=CustomData())]
    decided = T0 + timedelta(hours=1)
    _, rules = steering({T0 - timedelta(hours=1): Guidance(True, RiskLevel.MODERATE, T0),
                         decided: Guidance(True, RiskLevel.CONSERVATIVE, decided)}, trades)
    now = decided + timedelta(minutes=5)
    assert rules.adjust(trades[0], now, None) == (pytest.approx(-100.0), DERISK)  # 1.0 -> 0.5
    assert rules.adjust(trades[1], now, None) == (pytest.approx(-50.0), DERISK)
    assert rules.adjust(trades[0], now + timedelta(minutes=5), None) is None  # once
    assert trades[0].custom.data["sized_rank"] == 0


def test_the_overnight_mark_trims_total_exposure_to_the_target():
    trades = [position(1, 300.0, custom=CustomData()), position(2, 300.0, custom=CustomData())]
    _, rules = steering({T0: Guidance(True, RiskLevel.MODERATE, T0, overnight_target=0.3)},
                        trades, overnight_at=time(20, 0))
    assert rules.adjust(trades[0], T0 + timedelta(hours=1), None) is None  # before the mark
    night = T0 + timedelta(hours=12, minutes=5)
    assert rules.adjust(trades[0], night, None) == (pytest.approx(-150.0), OVERNIGHT)


def test_without_a_valid_decision_nothing_is_trimmed():
    trades = [position(1, 300.0, profit=0.01, custom=CustomData())]
    _, rules = steering({}, trades)
    assert rules.adjust(trades[0], T0, None) is None


# --- exit signals ------------------------------------------------------------------------------
def test_exit_signals_are_named_in_their_order_of_precedence():
    ta = np.array([True, False, False, False])
    ml = np.array([True, True, False, False])
    oracle = np.array([True, True, True, False])
    exit_long, tag = exit_columns([ExitSignal("ta_reversal", ta), ExitSignal("ml_exit", ml),
                                   ExitSignal("oracle_exit", oracle)])
    assert exit_long.tolist() == [1, 1, 1, 0]
    assert tag.tolist() == ["ta_reversal", "ml_exit", "oracle_exit", None]
    # the list's order is the precedence: the same signals, the oracle's first
    _, tag = exit_columns([ExitSignal("oracle_exit", oracle), ExitSignal("ta_reversal", ta)])
    assert tag.tolist() == ["oracle_exit", "oracle_exit", "oracle_exit", None]
    with pytest.raises(ValueError, match="at least one"):
        exit_columns([])
