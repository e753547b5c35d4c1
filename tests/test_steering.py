"""The oracle steers open trades: de-risk on a downgrade, trim to the overnight target.

The rules alone (``hybrid_ai.oracle.steering.plan_trims``), then a scripted journal on real shared
candles through freqtrade's own backtester (tests/strategies/SteeringProbe.py enters three
pairs at 08:00 on a calm day; everything else is HybridAIStrategy's).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import pytest
from conftest import backtest_in_process

from hybrid_ai.oracle.steering import DERISK, OVERNIGHT, Caps, Position, overnight_mark, plan_trims
from llm_oracle.schema import OracleDecision

T0 = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)
MULTIPLIERS = (0.5, 1.0, 1.5)


def caps(**kw) -> Caps:
    base = {"decided_at": T0 + timedelta(hours=2), "rank": 1, "focus": frozenset({"A", "B"}),
            "max_position": 1000.0, "max_exposure": 1000.0, "multipliers": MULTIPLIERS}
    return Caps(**{**base, **kw})


def pos(trade_id: int, stake: float, rank: int = 1, opened: datetime = T0,
        pair: str = "A") -> Position:
    return Position(trade_id, pair, stake, opened, rank)


def test_a_downgrade_scales_trades_by_the_level_multipliers():
    plan = plan_trims([pos(1, 200, rank=2), pos(2, 100, rank=1)], caps(rank=0))
    assert plan[1].target == pytest.approx(200 * 0.5 / 1.5) and plan[1].tag == DERISK
    assert plan[2].target == pytest.approx(50)


def test_per_trade_and_total_caps_cut_pro_rata():
    positions = [pos(1, 300), pos(2, 200), pos(3, 100)]
    plan = plan_trims(positions, caps(max_position=250, max_exposure=450))
    targets = {i: plan[i].target if i in plan else p.stake
               for i, p in zip((1, 2, 3), positions, strict=True)}
    assert targets[1] / targets[2] == pytest.approx(250 / 200)  # per-trade cap, then pro rata
    assert sum(targets.values()) == pytest.approx(450)


def test_trades_opened_after_the_event_or_already_steered_are_not_cut():
    late = pos(2, 400, opened=T0 + timedelta(hours=3))
    plan = plan_trims([pos(1, 400), late, pos(3, 400)], caps(max_exposure=800),
                      skip=frozenset({3}))
    assert set(plan) == {1}  # the late trade and the already-steered one keep their stake
    assert plan[1].target == pytest.approx(0.0)  # ... so the excess falls on trade 1


def test_small_cuts_and_upgrades_place_no_order():
    assert plan_trims([pos(1, 100, rank=0)], caps(rank=2)) == {}  # never adds exposure
    assert plan_trims([pos(1, 100)], caps(max_position=97)) == {}  # a 3 % cut: not worth it


def test_overnight_target_trims_total_exposure():
    mark = T0 + timedelta(hours=8)
    plan = plan_trims([pos(1, 300), pos(2, 300)],
                      caps(overnight_since=mark, overnight_exposure=300))
    assert {p.tag for p in plan.values()} == {OVERNIGHT}
    assert sum(p.target for p in plan.values()) == pytest.approx(300)


def test_unfocused_trades_close_on_a_downgrade_when_configured():
    positions = [pos(1, 100, pair="A"), pos(2, 100, pair="C")]
    plan = plan_trims(positions, caps(rank=0, focus=frozenset({"A"}), close_unfocused=True))
    assert plan[2].target == 0.0 and plan[1].target == pytest.approx(50)


def test_overnight_mark_is_the_latest_passed():
    at = time(18, 15)
    assert overnight_mark(datetime(2024, 6, 10, 19, tzinfo=UTC), at) == datetime(
        2024, 6, 10, 18, 15, tzinfo=UTC)
    assert overnight_mark(datetime(2024, 6, 10, 3, tzinfo=UTC), at) == datetime(
        2024, 6, 9, 18, 15, tzinfo=UTC)
    assert overnight_mark(T0, None) is None


# --- through freqtrade's backtester on real candles ------------------------------------------
PAIRS = ["BTC/USDT", "ETH/USDT", "TRX/USDT"]


def decision(hhmm: str, level: str, exposure: float, position: float,
             overnight: float, bias: dict[str, float] | None = None) -> OracleDecision:
    at = datetime.combine(T0.date(), time.fromisoformat(hhmm), tzinfo=UTC)
    return OracleDecision(decided_at=at, valid_until=at + timedelta(hours=8), session=hhmm,
                          focus_pairs=PAIRS, risk_level=level, max_exposure=exposure,
                          max_position=position, overnight_target=overnight,
                          pair_bias=bias or {}, provider="test")


SCRIPT = [
    decision("07:00", "moderate", 0.9, 0.25, 0.9),
    decision("10:00", "moderate", 0.7, 0.22, 0.7),  # caps lowered: de-risk
    decision("12:00", "conservative", 0.7, 0.22, 0.7),  # level lowered: sell down
    decision("15:30", "conservative", 0.7, 0.22, 0.5),  # overnight target: trim at 15:45
]


def steered_backtest(datadir: Path, url: str, tmp: Path, journal: list[OracleDecision] | None,
                     **oracle) -> list[dict]:
    source = tmp / "journal.jsonl"
    if journal is not None:
        source.write_text("".join(d.model_dump_json() + "\n" for d in journal))
    return backtest_in_process("SteeringProbe", datadir, url, tmp, {
        "exchange": {"pair_whitelist": PAIRS},
        "max_open_trades": 3,
        "freqai": {"enabled": False},
        "hybrid_ai": {
            "stake_multipliers": {"conservative": 0.9, "moderate": 1.0, "aggressive": 1.5},
            "oracle": {"enabled": True, "source": str(source), "overnight_at": "15:45",
                       "exit_bias": None, **oracle},
            "observe_only": [],  # the oracle deciding (the shipped config observes it)
        },
        "llm_oracle": {"sessions": ["07:00", "10:00", "12:00", "15:30"]},
    }, "20240609-20240611")


def exits(trade: dict, tag: str) -> list[dict]:
    return [o for o in trade["orders"] if not o["ft_is_entry"] and o["ft_order_tag"] == tag]


def stake_after(trade: dict, when: pd.Timestamp) -> float:
    """The trade's stake (cost basis) once every order filled by ``when`` is counted."""
    amount = sum((o["amount"] if o["ft_is_entry"] else -o["amount"]) for o in trade["orders"]
                 if pd.Timestamp(o["order_filled_timestamp"], unit="ms", tz="UTC") <= when)
    return amount * trade["open_rate"]


@pytest.fixture(scope="module")
def scripted(real_datadir, module_exchange, tmp_path_factory) -> list[dict]:
    url = module_exchange(real_datadir).url
    return steered_backtest(real_datadir, url, tmp_path_factory.mktemp("steer"), SCRIPT)


def test_scripted_day_trims_at_each_event_within_the_caps(scripted):
    assert sorted(t["pair"] for t in scripted) == PAIRS
    equity = 1000 * 0.99
    lot = 1.005  # exit amounts round down to the exchange's lot step (BTC: 0.00001 = 0.7 USDT)
    for trade in scripted:
        derisk = exits(trade, DERISK)
        overnight = exits(trade, OVERNIGHT)
        when = [pd.Timestamp(o["order_filled_timestamp"], unit="ms", tz="UTC")
                for o in derisk + overnight]
        # The first candles after 10:00 and 12:00, and the overnight mark 15:45.
        assert [w.strftime("%H:%M") for w in when] == ["10:00", "12:00", "15:45"], trade["pair"]
        assert stake_after(trade, when[0]) <= 0.22 * equity * lot
        ratio = stake_after(trade, when[1]) / stake_after(trade, when[0])
        assert ratio == pytest.approx(0.9, rel=0.01)  # moderate 1.0 -> conservative 0.9
    for event, cap in ((1, 0.7), (2, 0.7), (3, 0.5)):
        when = pd.Timestamp(T0.date()).tz_localize("UTC") + pd.Timedelta(
            {1: "10:00:00", 2: "12:00:00", 3: "15:45:00"}[event])
        total = sum(stake_after(t, when) for t in scripted)
        assert total <= cap * equity * lot
    assert total == pytest.approx(0.5 * equity, rel=0.01)  # trimmed to the target, not below


def test_no_second_trim_for_the_same_decision(scripted):
    # The 15:30 decision holds 8 h (to the end of the data): one overnight trim, no more.
    for trade in scripted:
        assert len(exits(trade, OVERNIGHT)) == 1
        assert trade["exit_reason"] == "force_exit"  # the rest stays open


def test_without_a_journal_nothing_is_trimmed(real_datadir, module_exchange, tmp_path):
    url = module_exchange(real_datadir).url
    trades = steered_backtest(real_datadir, url, tmp_path, None)
    # Conservative fallback: smaller stakes for new entries, but no trim storm.
    assert trades and all(not exits(t, DERISK) and not exits(t, OVERNIGHT) for t in trades)
    assert all(t["stake_amount"] <= 0.3 * 1000 for t in trades)


def test_steering_can_be_switched_off(real_datadir, module_exchange, tmp_path):
    url = module_exchange(real_datadir).url
    trades = steered_backtest(real_datadir, url, tmp_path, SCRIPT, steer_open_trades=False)
    assert trades and all(not exits(t, DERISK) and not exits(t, OVERNIGHT) for t in trades)


def test_report_attributes_each_trim_against_holding_to_the_final_exit(scripted):
    from lab.report_metrics import Run, trim_attribution

    run = Run("steered", pd.DataFrame(scripted), {}, {}, pd.Timestamp(T0), pd.Timestamp(T0),
              1000.0)
    table = trim_attribution(run).set_index("trim")
    assert table.loc[DERISK, "trims"] == 6 and table.loc[DERISK, "trades"] == 3
    assert table.loc[OVERNIGHT, "trims"] == 3
    # saved = trimmed amount x (trim price - final exit price), summed over the trims.
    expected = sum(o["amount"] * (o["safe_price"] - t["close_rate"])
                   for t in scripted for o in exits(t, OVERNIGHT))
    assert table.loc[OVERNIGHT, "saved_abs"] == pytest.approx(expected)
    low, high = table.loc[DERISK, ["ci90_low_pct", "ci90_high_pct"]]
    assert low <= table.loc[DERISK, "mean_saved_pct"] <= high


def test_exposure_series_follows_the_trims(scripted):
    from lab.report_metrics import Run, exposure_series

    day = pd.Timestamp(T0.date()).tz_localize("UTC")
    run = Run("steered", pd.DataFrame(scripted), {}, {}, day, day + pd.Timedelta(hours=20),
              1000.0)
    exposure = exposure_series(run, "15min")
    at = {h: exposure[day + pd.Timedelta(f"{h}:00")] for h in ("07:45", "09:00", "10:15", "16:00")}
    assert at["07:45"] == 0.0
    assert at["09:00"] == pytest.approx(3 * 247.5 / 1000, rel=0.01)
    assert at["10:15"] <= 0.7 * 0.99 * 1.005 and at["16:00"] == pytest.approx(0.5 * 0.99, rel=0.01)


def test_oracle_exit_is_a_signal_that_closes_the_pair_it_turns_against(
        real_datadir, module_exchange, tmp_path):
    url = module_exchange(real_datadir).url
    journal = [decision("07:00", "moderate", 0.9, 0.25, 0.9),
               decision("12:00", "moderate", 0.9, 0.25, 0.9, bias={"ETH/USDT": -0.8})]
    trades = {t["pair"]: t for t in steered_backtest(real_datadir, url, tmp_path, journal,
                                                     exit_bias=-0.5)}
    eth = trades["ETH/USDT"]
    assert eth["exit_reason"] == "oracle_exit"
    # The 11:55 candle closes at 12:00, when the decision is known: exit at the 12:00 open.
    assert pd.Timestamp(eth["close_date"]) == pd.Timestamp("2024-06-10 12:00", tz="UTC")
    assert trades["BTC/USDT"]["exit_reason"] == "force_exit"  # not biased against: held
