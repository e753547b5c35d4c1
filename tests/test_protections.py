"""Protection rules on hand-built candles, through freqtrade's own backtesting engine.

Three pairs, each a scripted price path after a forced entry at 100 (see
tests/strategies/ProtectionProbe.py); the local exchange serves their markets.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import backtest_in_process, backtesting_in_process

from llm_oracle.schema import OracleDecision
from local_exchange.synthetic import resample

ENTRY_SIGNAL = pd.Timestamp("2024-01-03 00:00", tz="UTC")
FLAT = (100.0, 100.05, 99.95, 100.0)

# Candles from the entry candle on: (open, high, low, close).
SCENARIOS: dict[str, list[tuple[float, float, float, float]]] = {
    # A -12 % candle: the hard stop sells at exactly -10 % (90).
    "HARD/USDT": [FLAT, FLAT, (100.0, 100.05, 88.0, 89.0)],
    # Up to a high of 110 (trailing armed past +6 %), then a pull-back below 110 * 0.95.
    "TRAIL/USDT": [
        FLAT,
        (100.0, 102.0, 99.9, 102.0),
        (102.0, 104.0, 101.9, 104.0),
        (104.0, 106.0, 103.9, 106.0),
        (106.0, 108.0, 105.9, 108.0),
        (108.0, 110.0, 107.9, 109.5),
        (109.5, 109.6, 104.0, 104.2),
    ],
    # Up 5 % and hovering there for hours: half is sold once, never twice.
    "PTP/USDT": [FLAT, (100.0, 103.0, 99.9, 103.0), (103.0, 105.2, 102.9, 105.0)]
    + [(105.0, 105.3, 104.8, 105.0)] * 60,
}


def build_candles(path: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    dates = pd.date_range("2023-12-01", "2024-01-03 12:00", freq="5min", tz="UTC")
    entry_idx = int(dates.get_loc(ENTRY_SIGNAL)) + 1
    rows = [FLAT] * entry_idx + path
    last_close = path[-1][3]
    rows += [(last_close, last_close, last_close, last_close)] * (len(dates) - len(rows))
    df = pd.DataFrame(rows[: len(dates)], columns=["open", "high", "low", "close"])
    df.insert(0, "date", dates)
    df["volume"] = 1000.0
    return df


@pytest.fixture(scope="module")
def scenario_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    datadir = tmp_path_factory.mktemp("scenarios") / "binance"
    datadir.mkdir()
    for pair, path in SCENARIOS.items():
        df = build_candles(path)
        stem = pair.replace("/", "_")
        df.to_feather(datadir / f"{stem}-5m.feather")
        resample(df, "1h").to_feather(datadir / f"{stem}-1h.feather")
    return datadir


def backtest(scenario_dir: Path, url: str, tmp: Path, hybrid_ai: dict | None = None) -> dict:
    """Run freqtrade's Backtesting in-process; return {pair: trade dict}."""
    trades = backtest_in_process("ProtectionProbe", scenario_dir, url, tmp, {
        "exchange": {"pair_whitelist": list(SCENARIOS)},
        "freqai": {"enabled": False},  # the execution layer's rules alone
        "hybrid_ai": {"oracle": {"enabled": False}, **(hybrid_ai or {})},
    }, "20240102-20240104")
    return {t["pair"]: t for t in trades}


@pytest.fixture(scope="module")
def moderate(scenario_dir, module_exchange, tmp_path_factory) -> dict:
    server = module_exchange(scenario_dir)
    return backtest(scenario_dir, server.url, tmp_path_factory.mktemp("bt_moderate"))


def test_every_scenario_entered_at_100(moderate):
    assert set(moderate) == set(SCENARIOS)
    for trade in moderate.values():
        assert trade["open_rate"] == pytest.approx(100.0)
        assert pd.Timestamp(trade["open_date"]) == ENTRY_SIGNAL + pd.Timedelta(minutes=5)


def test_hard_stop_sells_at_minus_ten_percent(moderate):
    trade = moderate["HARD/USDT"]
    assert trade["exit_reason"] == "stop_loss"
    assert trade["close_rate"] == pytest.approx(90.0)
    assert pd.Timestamp(trade["close_date"]) == ENTRY_SIGNAL + pd.Timedelta(minutes=15)


def test_trailing_stop_sells_five_percent_below_the_high(moderate):
    trade = moderate["TRAIL/USDT"]
    assert trade["exit_reason"] == "trailing_stop_loss"
    assert trade["close_rate"] == pytest.approx(110.0 * 0.95)
    assert trade["profit_ratio"] > 0  # trailing locked in a gain


def partial_exits(trade: dict) -> list[dict]:
    exits = [o for o in trade["orders"] if not o["ft_is_entry"]]
    return [o for o in exits if o["ft_order_tag"] == "partial_tp"]


def test_partial_take_profit_sells_half_exactly_once(moderate):
    trade = moderate["PTP/USDT"]
    partials = partial_exits(trade)
    entry_amount = next(o["amount"] for o in trade["orders"] if o["ft_is_entry"])
    assert len(partials) == 1
    assert partials[0]["amount"] == pytest.approx(entry_amount / 2, rel=1e-3)
    assert partials[0]["safe_price"] == pytest.approx(105.0)  # first candle open >= +4 %
    assert trade["exit_reason"] == "force_exit"  # the rest stays open to the end
    assert trade["amount"] == pytest.approx(entry_amount / 2, rel=1e-3)


def test_trailing_scenario_also_took_partial_profit_first(moderate):
    partials = partial_exits(moderate["TRAIL/USDT"])
    assert len(partials) == 1 and partials[0]["safe_price"] == pytest.approx(106.0)


def test_stakes_follow_risk_level_within_hard_caps(moderate, scenario_dir, module_exchange,
                                                   tmp_path_factory):
    # Moderate: freqtrade's equal share (990 / 4 slots), also the 25 % per-trade cap
    # (the exchange's lot step of 0.01 at price 100 rounds it down by up to 1 USDT).
    moderate_stake = moderate["HARD/USDT"]["stake_amount"]
    assert moderate_stake == pytest.approx(990 / 4, abs=1.0)
    url = module_exchange(scenario_dir).url
    conservative = backtest(scenario_dir, url, tmp_path_factory.mktemp("bt_cons"),
                            {"risk_level": "conservative"})
    assert conservative["HARD/USDT"]["stake_amount"] == pytest.approx(990 / 8, abs=1.0)
    # Aggressive asks 1.5x, but max_stake_per_trade (10 % here) caps it.
    capped = backtest(scenario_dir, url, tmp_path_factory.mktemp("bt_aggr"),
                      {"risk_level": "aggressive", "limits": {"max_stake_per_trade": 0.10}})
    for trade in capped.values():
        assert trade["stake_amount"] <= 0.10 * 1000 + 1e-6


# --- faults: the entry side fails closed, the exit side keeps the stops -----------------------
def fault_backtest(scenario_dir: Path, url: str, tmp: Path, fault: str,
                   caplog: pytest.LogCaptureFixture) -> dict:
    journal = tmp / "journal.jsonl"
    journal.write_text(OracleDecision(
        decided_at=ENTRY_SIGNAL - pd.Timedelta(days=1), valid_until=ENTRY_SIGNAL
        + pd.Timedelta(days=2), session="t", focus_pairs=list(SCENARIOS), risk_level="moderate",
        max_exposure=0.9, overnight_target=0.9, provider="test").model_dump_json() + "\n")
    trades = backtest_in_process("FaultProbe", scenario_dir, url, tmp, {
        "fault_probe": fault,
        "exchange": {"pair_whitelist": list(SCENARIOS)},
        "freqai": {"enabled": False},
        "hybrid_ai": {"oracle": {"enabled": True, "source": str(journal),
                                 "overnight_at": None}, "observe_only": []},
    }, "20240102-20240104")
    return {t["pair"]: t for t in trades}


def test_without_a_fault_the_probe_enters_every_pair(scenario_dir, module_exchange, tmp_path,
                                                     caplog):
    # The control for the fault runs below: the same gate, sizing and confirmation pass.
    trades = fault_backtest(scenario_dir, module_exchange(scenario_dir).url, tmp_path, "none",
                            caplog)
    assert set(trades) == set(SCENARIOS)


@pytest.mark.parametrize(("fault", "where"), [
    ("merge", "the upper layers"),
    ("ml_column", "the upper layers"),
    ("stake", "stake sizing"),
    ("confirm_map", "the entry confirmation"),
])
def test_entry_side_faults_mean_no_entry_and_one_line_saying_why(
        scenario_dir, module_exchange, tmp_path, caplog, fault, where):
    url = module_exchange(scenario_dir).url
    with caplog.at_level("ERROR"):
        trades = fault_backtest(scenario_dir, url, tmp_path, fault, caplog)
    assert trades == {}  # freqtrade's wrappers would have let these entries through
    lines = [r.getMessage() for r in caplog.records if "no new entries" in r.getMessage()]
    assert lines and all(where in line for line in lines)
    assert len(lines) == len(set(lines))  # one line per distinct problem, not per candle


def test_a_broken_exit_side_never_blocks_the_stops(scenario_dir, module_exchange, tmp_path,
                                                    caplog):
    url = module_exchange(scenario_dir).url
    with caplog.at_level("ERROR"):
        trades = fault_backtest(scenario_dir, url, tmp_path, "steer", caplog)
    assert trades["HARD/USDT"]["exit_reason"] == "stop_loss"
    assert trades["HARD/USDT"]["close_rate"] == pytest.approx(90.0)
    assert trades["TRAIL/USDT"]["exit_reason"] == "trailing_stop_loss"
    steering = [r for r in caplog.records if "oracle steering failed" in r.getMessage()]
    assert len(steering) == 1  # once, although every candle of every trade hit it


# --- real wallets: exchange minimums, small stakes, the wrong market type ---------------------
def test_a_small_wallet_still_takes_profit_and_says_how_once(
        scenario_dir, module_exchange, tmp_path, caplog):
    # 40 USDT: stakes of 9.90 (990/4 slots). Half a position worth 10.40 at +4 % would leave
    # 5.20, below the exchange minimum (5 USDT notional + freqtrade's reserve = 5.83), so
    # freqtrade would drop the partial exit; the pack closes the whole trade instead.
    url = module_exchange(scenario_dir).url
    with caplog.at_level("INFO"):
        trades = {t["pair"]: t for t in backtest_in_process(
            "ProtectionProbe", scenario_dir, url, tmp_path, {
                "dry_run_wallet": 40, "exchange": {"pair_whitelist": list(SCENARIOS)},
                "freqai": {"enabled": False}, "hybrid_ai": {"oracle": {"enabled": False}},
            }, "20240102-20240104")}
    trade = trades["PTP/USDT"]
    assert trade["stake_amount"] == pytest.approx(9.9, abs=1.0)
    partials = partial_exits(trade)
    assert len(partials) == 1 and partials[0]["safe_price"] == pytest.approx(105.0)
    assert trade["exit_reason"] == "partial_tp" and trade["close_rate"] == pytest.approx(105.0)
    said = [r.getMessage() for r in caplog.records
            if "partial_tp sells 100% of the trade" in r.getMessage()]
    assert len(said) == 2  # PTP and TRAIL, once each although hours of candles followed
    assert all("below the exchange minimum of 5.83" in line for line in said)


def test_a_wallet_too_small_for_any_trade_says_why_once_with_the_numbers(
        scenario_dir, module_exchange, tmp_path, caplog):
    url = module_exchange(scenario_dir).url
    with caplog.at_level("INFO"):
        trades = backtest_in_process("ProtectionProbe", scenario_dir, url, tmp_path, {
            "dry_run_wallet": 20, "exchange": {"pair_whitelist": list(SCENARIOS)},
            "freqai": {"enabled": False}, "hybrid_ai": {"oracle": {"enabled": False}},
        }, "20240102-20240104")
    assert trades == []
    lines = [r for r in caplog.records if "no stake fits" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "WARNING"
    message = lines[0].getMessage()
    numbers = re.search(r"exchange minimum ([\d.]+) USDT is above the per-trade cap ([\d.]+) "
                        r"USDT = hybrid_ai.limits.max_stake_per_trade 0.25 x equity ([\d.]+) "
                        r"USDT: raise max_stake_per_trade to at least ([\d.]+)", message)
    assert numbers, message
    minimum, cap, equity, needed = map(float, numbers.groups())
    assert minimum > cap == pytest.approx(0.25 * equity, abs=0.01) and equity <= 20
    assert needed == pytest.approx(minimum / equity, abs=0.01)


def test_a_futures_config_is_refused_at_start(scenario_dir, module_exchange, tmp_path):
    from freqtrade.exceptions import OperationalException

    url = module_exchange(scenario_dir).url
    with pytest.raises(OperationalException, match=r"trades spot markets, long only.*'futures'"):
        backtest_in_process("ProtectionProbe", scenario_dir, url, tmp_path, {
            "trading_mode": "futures", "margin_mode": "isolated",
            "exchange": {"pair_whitelist": list(SCENARIOS)},
            "freqai": {"enabled": False}, "hybrid_ai": {"oracle": {"enabled": False}},
        }, "20240102-20240104")


@pytest.mark.parametrize(("wallet", "fraction"), [(1000, 0.5), (40, 1.0)])
def test_the_ml_label_sells_what_the_wallet_can_sell(scenario_dir, module_exchange, tmp_path,
                                                     wallet, fraction):
    # The label's partial take-profit follows the same exchange-minimum rule as the trade:
    # FreqAI's target hook asks exit_rules(pair, price) of the strategy freqtrade loaded.
    bt = backtesting_in_process("ProtectionProbe", scenario_dir,
                                module_exchange(scenario_dir).url, tmp_path, {
                                    "dry_run_wallet": wallet,
                                    "exchange": {"pair_whitelist": list(SCENARIOS)},
                                    "freqai": {"enabled": False},
                                    "hybrid_ai": {"oracle": {"enabled": False}},
                                }, "20240102-20240104")
    bt._set_strategy(bt.strategylist[0])  # as freqtrade does before a run: dp, wallets
    assert bt.strategy.exit_rules("PTP/USDT", 100.0).partial_fraction == fraction
    assert bt.strategy.exit_rules().partial_fraction == 0.5  # no pair: the configured share
