"""The trend core (Zarattini, Pagani and Barbon 2025): its rules on constructed closes, the
strategy's columns with no lookahead, and one backtest through freqtrade itself."""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_ai import trend_core as tc

REPO = Path(__file__).resolve().parent.parent


def first_long(state: np.ndarray) -> int:
    return int(np.argmax(state > 0)) if state.any() else -1


def test_a_breakout_turns_a_rule_long_and_a_close_below_the_stop_turns_it_flat():
    close = np.r_[np.full(10, 100.0), 101.0, 106.0, 108.0, 110.0, 103.0, 100.0]
    state, stop = tc.donchian_rule(close, 5)
    assert not state[:10].any()  # no close above the previous five's highest
    assert state[10] == 1.0  # 101 > 100: the breakout
    # the stop: the higher of the last stop and the midpoint of the last five closes
    assert stop[10:14] == pytest.approx([100.5, 103.0, 104.0, 105.0])
    assert state[14] == 0.0 and np.isnan(stop[14])  # 103 < 105: flat
    assert state[15] == 0.0  # no new breakout


def test_a_close_above_yesterdays_stop_holds_and_raises_the_stop():
    close = np.r_[np.full(10, 100.0), 101.0, 106.0, 108.0, 110.0, 105.5, 104.9]
    state, stop = tc.donchian_rule(close, 5)
    assert stop[13] == pytest.approx(105.0)
    assert state[14] == 1.0  # 105.5 >= yesterday's 105: held
    assert stop[14] == pytest.approx((110 + 101) / 2)  # the stop moves up to 105.5
    assert state[15] == 0.0  # 104.9 < 105.5


def test_the_stop_never_falls_while_long():
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0.002, 0.03, 1500)))
    for n in tc.LOOKBACKS:
        state, stop = tc.donchian_rule(close, n)
        held = (state[1:] > 0) & (state[:-1] > 0)
        assert (np.diff(stop)[held] >= 0).all(), n
        assert np.isnan(stop[state == 0]).all()
        # held through a close only at or above the stop it had the day before
        assert (close[1:][held] >= stop[:-1][held]).all(), n
        out = (state[1:] == 0) & (state[:-1] > 0)
        assert (close[1:][out] < stop[:-1][out]).all(), n  # and out below it


def test_a_short_rule_reacts_before_a_long_one_and_a_rule_waits_for_its_channel():
    days = 900
    close = np.r_[np.linspace(200, 100, 500), np.linspace(100, 300, days - 500)]
    firsts = {n: first_long(tc.donchian_rule(close, n)[0]) for n in tc.LOOKBACKS}
    assert firsts[5] < firsts[60] < firsts[360]
    assert firsts[5] >= 500 and firsts[360] > 500
    short = np.linspace(100, 200, 300)  # rising, but 300 days of closes only
    assert not tc.donchian_rule(short, 360)[0].any()


def test_the_share_is_the_mean_of_nine_rules_in_zero_one():
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0, 0.04, 1200)))
    share = tc.ensemble_share(close)
    states = tc.rule_states(close)
    assert states.shape == (1200, 9)
    assert ((share >= 0) & (share <= 1)).all()
    assert np.allclose(share * 9, np.round(share * 9))  # steps of one ninth
    assert share.max() > 0.5 and share.min() == 0


def test_sigma_is_annualised_daily_log_volatility_over_ninety_days():
    rng = np.random.default_rng(9)
    daily = 0.03
    close = 100 * np.exp(np.cumsum(rng.normal(0, daily, 2000)))
    sigma = tc.realised_vol(close)
    assert np.isnan(sigma[: tc.VOL_DAYS]).all() and np.isfinite(sigma[tc.VOL_DAYS])
    assert np.nanmean(sigma) == pytest.approx(daily * np.sqrt(365), rel=0.05)


def test_the_weight_scales_inversely_with_sigma_and_is_capped():
    share = np.array([1.0, 1.0, 1.0, 0.5, 0.0, 1.0, 1.0])
    sigma = np.array([0.5, 1.0, 0.05, 0.5, 0.5, np.nan, 0.0])
    w = tc.pair_weight(share, sigma, n_pairs=10)
    assert w[0] == pytest.approx(0.25 / 0.5 / 10)
    assert w[1] == pytest.approx(w[0] / 2)  # twice the volatility, half the weight
    assert w[2] == pytest.approx(tc.PAIR_CAP / 10)  # capped at twice the equal share
    assert w[3] == pytest.approx(w[0] / 2) and w[4] == 0
    assert w[5] == 0 and w[6] == 0  # no sigma, no weight


def test_the_budget_scales_the_whitelist_down_only_when_over():
    weights = pd.DataFrame({"A": [0.1, 0.6, np.nan], "B": [0.2, 0.9, 0.1]})
    scale = tc.budget_scale(weights)
    assert scale.tolist() == pytest.approx([1.0, 1 / 1.5, 1.0])
    assert (weights.fillna(0).mul(scale, axis=0).sum(axis=1) <= 1 + 1e-12).all()


def days_of(share: list[float], sigma: list[float]) -> pd.DataFrame:
    dates = pd.date_range("2023-01-01", periods=len(share), freq="1D", tz="UTC")
    return pd.DataFrame({"date": dates, "share": share, "sigma": sigma})


def test_the_book_gives_the_flat_pairs_budget_to_the_pairs_that_trend():
    # day 0: all four fully long; day 1: only A; day 2: A and half of B; day 3: A, no sigma
    n = 4
    days = {"A": days_of([1, 1, 1, 1], [0.5, 0.5, 0.5, np.nan]),
            "B": days_of([1, 0, 0.5, 0], [0.5] * 4),
            "C": days_of([1, 0, 0, 0], [0.5] * 4), "D": days_of([1, 0, 0, 0], [0.5] * 4)}
    published = tc.book_weights(days, n, sizing="published")
    pooled = tc.book_weights(days, n, sizing="pooled")
    full = 0.25 / 0.5 / n  # share 1 x scalar 0.5 / N
    assert published.iloc[0].tolist() == pytest.approx([full] * 4)
    assert pooled.iloc[0].tolist() == pytest.approx([full] * 4)  # S = N: the paper's split
    assert published.iloc[1].tolist() == pytest.approx([full, 0, 0, 0])  # the rest in cash
    assert pooled.iloc[1, 0] == pytest.approx(min(0.5, tc.PAIR_CAP / n))  # S = 1, capped
    assert pooled.iloc[2, 0] == pytest.approx(0.5 / 1.5) and pooled.iloc[2, 1] == \
        pytest.approx(0.5 * 0.5 / 1.5)  # S = 1.5, in proportion to the shares
    assert pooled.iloc[3].tolist() == [0, 0, 0, 0]  # a pair without sigma holds nothing
    assert (pooled.sum(axis=1) <= 1 + 1e-12).all() and (pooled <= tc.PAIR_CAP / n).all().all()


def test_the_book_target_scales_the_published_book_by_its_own_volatility():
    # one pair held at 0.1 of equity, daily returns alternating +-r: the book's returns are
    # +-0.1 r, its realised volatility 0.1 r sqrt(365) (std with ddof 1 over 90 days)
    days_n = tc.VOL_DAYS + 20
    idx = pd.date_range("2023-01-01", periods=days_n, freq="1D", tz="UTC")
    weights = pd.DataFrame({"A": 0.1}, index=idx)
    for r, expected in ((0.01, tc.PAIR_CAP), (0.5, None)):  # a calm book, a wild one
        returns = np.where(np.arange(days_n) % 2 == 0, r, -r)
        returns[0] = 0.0
        closes = pd.DataFrame({"A": 100 * np.cumprod(1 + returns)}, index=idx)
        scale = tc.book_vol_scale(weights, closes)
        assert (scale.iloc[:tc.VOL_DAYS] == 1.0).all()  # too few returns: the published book
        sigma = pd.Series(0.1 * returns[-tc.VOL_DAYS:]).std() * np.sqrt(tc.DAYS_PER_YEAR)
        want = expected if expected is not None else tc.TARGET_VOL / sigma
        assert scale.iloc[-1] == pytest.approx(want, rel=1e-9)
        assert expected is not None or scale.iloc[-1] < 1  # a wild book is scaled down
        # point in time: a day's scale is the same without the days after it
        assert tc.book_vol_scale(weights.iloc[:-10], closes.iloc[:-10]).equals(scale.iloc[:-10])


def test_the_book_target_keeps_each_pairs_share_of_the_published_book():
    n = 4
    dates = pd.date_range("2023-01-01", periods=tc.VOL_DAYS + 5, freq="1D", tz="UTC")
    calm = 100 * np.cumprod(1 + np.where(np.arange(len(dates)) % 2 == 0, 0.002, -0.002))
    days = {p: pd.DataFrame({"date": dates, "share": share, "sigma": 0.5, "close": calm})
            for p, share in (("A", 1.0), ("B", 0.5), ("C", 0.0), ("D", 0.0))}
    published = tc.book_weights(days, n, sizing="published")
    target = tc.book_weights(days, n, sizing="book_target", budget=0.9, pair_limit=0.25)
    assert target.iloc[0].tolist() == pytest.approx(published.iloc[0].tolist())  # no sigma yet
    last = target.iloc[-1]  # a calm book: twice the published weights, C and D still flat
    assert last.tolist() == pytest.approx((published.iloc[-1] * tc.PAIR_CAP).tolist())
    assert last["A"] == pytest.approx(2 * last["B"]) and last["C"] == last["D"] == 0
    with pytest.raises(ValueError, match="sizing must be one of"):
        tc.book_weights(days, n, sizing="levered")


def test_the_book_stays_within_the_configs_hard_limits():
    # three pairs fully long at a low sigma: each would take 2/N of equity, the book 2
    n = 3
    days = {p: days_of([1, 1], [0.05, 0.05]) for p in "ABC"}
    free = tc.book_weights(days, n, sizing="pooled")
    assert free.iloc[0].sum() == pytest.approx(1.0)  # the tradable balance, scaled down
    held = tc.book_weights(days, n, sizing="pooled", budget=0.9, pair_limit=0.25)
    assert (held <= 0.25 + 1e-12).all().all()  # hybrid_ai.limits.max_stake_per_trade
    assert held.iloc[0].sum() <= 0.9 + 1e-12  # max_total_exposure
    assert held.iloc[0].tolist() == pytest.approx([0.25] * 3)


def test_the_shipped_defaults_are_the_core_on_hourly_candles_and_the_5m_families_a_preset():
    """config.json alone runs the core on 1h files alone, ML off (the core unsized), the
    oracle observed; the hybrid preset on top brings back the 5m families with FreqAI."""
    from lab.project import CONFIG, PACK_CONFIGS, load_config, needed_timeframes, warmup_days

    shipped = load_config([CONFIG])
    assert (shipped["strategy"], shipped["timeframe"]) == ("TrendCore", "1h")
    assert needed_timeframes(shipped["timeframe"]) == ("1h",)
    assert not shipped["freqai"]["enabled"] and shipped["hybrid_ai"]["observe_only"] == ["oracle"]
    assert shipped["max_open_trades"] >= len(shipped["exchange"]["pair_whitelist"])
    assert warmup_days(shipped) == (tc.STARTUP_DAYS + 1, "the trend core's startup")
    hybrid = load_config(PACK_CONFIGS)
    assert (hybrid["strategy"], hybrid["timeframe"]) == ("HybridAIStrategy", "5m")
    assert hybrid["freqai"]["enabled"] and needed_timeframes(hybrid["timeframe"]) == ("5m", "1h")
    assert warmup_days(hybrid) == (hybrid["freqai"]["train_period_days"] + 1, "FreqAI training")


def test_the_core_settings_name_the_key_to_fix():
    from hybrid_ai.settings import SettingsError

    shipped = tc.load_core_settings({})
    assert shipped.partial_tp is None and shipped.startup_days == 200
    assert shipped.sizing in tc.Sizing.__args__
    tp = tc.load_core_settings({"trend_core": {"partial_tp": {"gain": 0.5, "fraction": 0.33}}})
    assert tp.partial_tp.gain == 0.5
    with pytest.raises(SettingsError, match=r"trend_core\.partial_tp\.fraction"):
        tc.load_core_settings({"trend_core": {"partial_tp": {"gain": 0.5, "fraction": 1.5}}})
    with pytest.raises(SettingsError, match=r"trend_core\.pol"):
        tc.load_core_settings({"trend_core": {"pol": False}})
    with pytest.raises(SettingsError, match=r"trend_core\.sizing"):
        tc.load_core_settings({"trend_core": {"sizing": "levered"}})


def test_rebalance_holds_inside_the_band_and_respects_the_minimum_and_max_stake():
    assert tc.rebalance(110, 100, 5, 1000) is None  # 10 % off: inside 20 %
    assert tc.rebalance(100, 100 * 1.2, 5, 1000) is None  # exactly the band: hold
    assert tc.rebalance(70, 100, 5, 1000) == pytest.approx(30)
    assert tc.rebalance(70, 100, 5, 12) == pytest.approx(12)  # never above max_stake
    assert tc.rebalance(70, 100, 40, 1000) is None  # buy below the exchange minimum
    assert tc.rebalance(150, 100, 5, 1000) == pytest.approx(-50)
    assert tc.rebalance(30, 20, 11, 1000) is None  # the sale would be under the minimum
    sale = tc.rebalance(30, 10, 11, 1000)  # rest must stay sellable: 11 x 1.02 kept
    assert sale == pytest.approx(-(30 - 11 * 1.02))
    assert tc.rebalance(15, 5, 10, 1000) is None  # only the whole could be sold: hold
    assert tc.rebalance(50, 0, 5, 1000) is None  # zero target: the exit signal's job


def test_orders_stay_above_the_minimum_after_the_amount_is_truncated():
    # 0.1 LINK at 20 USDT: truncation may cut 2 USDT off an order sized at the minimum
    step = tc.amount_step(0.1, 4) * 20.0
    assert step == pytest.approx(2.0) and tc.amount_step(2, 2) == pytest.approx(0.01)
    assert tc.amount_step(None, 4) == 0.0
    assert tc.rebalance(24, 31, 5.8, 1000) == pytest.approx(7)  # no step known
    assert tc.rebalance(24, 31, 5.8, 1000, step_value=step) is None  # 7 - 2 < 5.8
    assert tc.rebalance(24, 32, 5.8, 1000, step_value=step) == pytest.approx(8)
    assert tc.rebalance(40, 33, 5.8, 1000, step_value=step) is None  # sale of 7 likewise
    assert not tc.fits_minimum(6.0, 5.8, step) and tc.fits_minimum(7.8, 5.8, step)


# -- the strategy's columns, computed as freqtrade does, on a cut frame and the full one --

def synthetic_hours(seed: int, days: int = 450) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = days * 24
    trend = np.sin(np.linspace(0, 6 * np.pi, n)) * 0.002
    close = 100 * np.exp(np.cumsum(trend / 24 + rng.normal(0, 0.008, n)))
    dates = pd.date_range("2022-01-01", periods=n, freq="1h", tz="UTC")
    return pd.DataFrame({"date": dates, "open": close, "high": close * 1.004,
                         "low": close * 0.996, "close": close, "volume": 1.0})


class FakeDataProvider:
    def __init__(self, frames: dict[str, pd.DataFrame]):
        self.frames = frames

    def current_whitelist(self) -> list[str]:
        return list(self.frames)

    def get_pair_dataframe(self, pair: str, timeframe: str) -> pd.DataFrame:
        """The hourly frames; no 1d candles (the strategy resamples the hourly ones)."""
        return self.frames[pair].copy() if timeframe == "1h" else pd.DataFrame()


def strategy_columns(frames: dict[str, pd.DataFrame], pair: str) -> pd.DataFrame:
    sys.path.insert(0, str(REPO / "strategies"))
    from TrendCore import TrendCore

    strategy = TrendCore({})
    strategy.dp = FakeDataProvider(frames)
    return strategy.populate_indicators(frames[pair].copy(), {"pair": pair})


COLUMNS = ["tc_share", "tc_sigma", "tc_weight", "tc_decide", "close_1d"]


def test_no_lookahead_values_on_an_hour_are_the_same_without_the_later_candles():
    full_frames = {"AAA/USDT": synthetic_hours(1), "BBB/USDT": synthetic_hours(2)}
    full = strategy_columns(full_frames, "AAA/USDT")
    assert full["tc_weight"].max() > 0 and full["tc_share"].max() > 0.5
    for cut in ("2022-09-14 13:00", "2022-11-30 23:00", "2023-01-02 00:00"):
        at = pd.Timestamp(cut, tz="UTC")
        cut_frames = {p: f[f["date"] <= at].reset_index(drop=True)
                      for p, f in full_frames.items()}
        part = strategy_columns(cut_frames, "AAA/USDT")
        same = full[full["date"] <= at].reset_index(drop=True)
        pd.testing.assert_frame_equal(part[COLUMNS], same[COLUMNS], check_dtype=False)
    # a day's values appear on its last hour: the 23:00 candle, whose close is the day's
    decide = full[full["tc_decide"]]
    assert (decide["date"].dt.hour == 23).all()
    assert np.allclose(decide["close"], decide["close_1d"])

def test_live_candle_by_candle_the_decision_uses_the_days_close():
    """One strategy instance fed hour by hour, as ``freqtrade trade`` feeds it: the book is
    recomputed on every candle, so a day's decision (its 23:00 candle) is the day's close's,
    not that of the day's first hour (the book was once cached per day)."""
    sys.path.insert(0, str(REPO / "strategies"))
    from TrendCore import TrendCore

    full_frames = {"AAA/USDT": synthetic_hours(1), "BBB/USDT": synthetic_hours(2)}
    full = strategy_columns(full_frames, "AAA/USDT").set_index("date")
    strategy = TrendCore({})
    start = pd.Timestamp("2022-09-10 00:00", tz="UTC")
    for hour in pd.date_range(start, start + pd.Timedelta(hours=71), freq="1h"):
        strategy.dp = FakeDataProvider({p: f[f["date"] <= hour].reset_index(drop=True)
                                        for p, f in full_frames.items()})
        live = strategy.populate_indicators(strategy.dp.frames["AAA/USDT"].copy(),
                                            {"pair": "AAA/USDT"})
        assert live["tc_weight"].iat[-1] == full.loc[hour, "tc_weight"], hour
    assert full.loc[start:hour, "tc_weight"].nunique() > 1  # the span holds decisions



# -- freqtrade itself, on the shared 8-month candles --

E2E_PAIRS = ["BTC/USDT", "SOL/USDT", "DOGE/USDT"]
# 100 days of warm-up on 8 months of data: sigma (90 days) and the rules up to 90 days
# complete; the 150..360-day rules stay flat (their channels need more history).
E2E_CONFIG = {"timeframe": "1h", "max_open_trades": len(E2E_PAIRS), "stake_amount": "unlimited",
              "freqai": {"enabled": False}, "hybrid_ai": {"oracle": {"enabled": False}},
              "trend_core": {"startup_days": 100}}


def load_result(userdir: Path, strategy: str) -> dict:
    results = userdir / "backtest_results"
    last = json.loads((results / ".last_result.json").read_text())["latest_backtest"]
    with zipfile.ZipFile(results / last) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".json") and "_config" not in n
                    and "_market_change" not in n)
        return json.loads(zf.read(name))["strategy"][strategy]


def backtest_core(freqtrade, datadir: Path, exchange_url: str, userdir: Path,
                  extra: dict) -> dict:
    """TrendCore through ``freqtrade backtesting`` on the E2E pairs and span; its results."""
    proc = freqtrade(
        ["backtesting", "--datadir", str(datadir), "--timerange", "20240415-20240905",
         "--pairs", *E2E_PAIRS, "--strategy", "TrendCore", "--strategy-path",
         str(REPO / "strategies"), "--export", "trades", "--cache", "none"],
        exchange_url, userdir, extra_config=extra, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_result(userdir, "TrendCore")


@pytest.mark.slow
def test_trend_core_backtests_enters_rebalances_and_respects_stake_limits(
        real_datadir, module_exchange, freqtrade, tmp_path):
    server = module_exchange(real_datadir)
    result = backtest_core(freqtrade, real_datadir, server.url, tmp_path, E2E_CONFIG)
    trades = result["trades"]
    assert trades, "no trade"
    assert {t["enter_tag"] for t in trades} == {"trend_core"}
    assert {t["exit_reason"] for t in trades} <= {"trend_off", "force_exit"}
    orders = [o for t in trades for o in t["orders"]]
    assert any(o["ft_order_tag"] == "rebalance" for o in orders)
    wallet = 1000.0
    for t in trades:
        first = t["orders"][0]
        assert first["ft_is_entry"] and first["ft_order_tag"] == "trend_core"
        # within the per-pair cap (2 / N of the marked equity; the wallet never doubled here)
        assert first["cost"] <= tc.PAIR_CAP / len(E2E_PAIRS) * wallet * 1.5, t
    # every order the strategy sizes (entries, rebalances), after freqtrade truncated its
    # amount, at or above the market's minimum notional (5 USDT on the loopback exchange, as
    # on Binance); a whole exit sells what is left, whatever it is worth by then
    sized = [o for o in orders if o["ft_is_entry"] or o["ft_order_tag"] == "rebalance"]
    assert min(o["cost"] for o in sized) >= 5.0, min(sized, key=lambda o: o["cost"])


def recursive_variance(freqtrade, datadir: Path, exchange_url: str, userdir: Path) -> str:
    """freqtrade's recursive-analysis of TrendCore at its own startup (30 days here: shorter
    than the 90-day sigma) on SOL's last quarter: its variance table, "" when none."""
    core = {**E2E_CONFIG, "trend_core": {"startup_days": 30}}
    proc = freqtrade(["recursive-analysis", "--datadir", str(datadir), "--timerange",
                      "20240601-20240901", "--pairs", "SOL/USDT", "--strategy", "TrendCore",
                      "--strategy-path", str(REPO / "strategies"),
                      "--startup-candle", str(31 * 24)],
                     exchange_url, userdir, extra_config=core, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert not re.findall(r"found lookahead in indicator (\S+)", out), out[-3000:]
    return "\n".join(line for line in out.splitlines() if line.startswith("│"))


def test_with_1d_candles_the_core_does_not_depend_on_its_warm_up(
        real_datadir, module_exchange, freqtrade, tmp_path):
    """With 1d files (written from the 1h ones by lab.daily_files) the core's days are every
    day they hold, whatever the 1h warm-up: recursive-analysis finds no variance; with the 1h
    files alone the days are the warm-up's, and it flags the 90-day sigma."""
    from lab.daily_files import write_daily_files

    daily = tmp_path / "with-1d"
    assert len(write_daily_files(real_datadir, daily)) >= 1
    assert (daily / "SOL_USDT-1h.feather").exists()  # linked, so it serves as the datadir
    url = module_exchange(real_datadir).url
    assert recursive_variance(freqtrade, daily, url, tmp_path / "a") == ""
    hourly_only = recursive_variance(freqtrade, real_datadir, url, tmp_path / "b")
    assert "tc_sigma" in hourly_only, hourly_only


@pytest.mark.slow
def test_the_protections_act_on_the_core_each_tagged(real_datadir, module_exchange, freqtrade,
                                                      tmp_path):
    """Tight settings (not the shipped ones) so that every protection acts in four months:
    the hard stop, the trailing stop off the high and the partial take-profit, each counted
    by its own tag, and no rebalance buys back what the take-profit sold."""
    server = module_exchange(real_datadir)
    tight = {**E2E_CONFIG, "stoploss": -0.06, "trailing_stop": True,
             "trailing_stop_positive": 0.04, "trailing_stop_positive_offset": 0.12,
             "trailing_only_offset_is_reached": True,
             "trend_core": {**E2E_CONFIG["trend_core"],
                            "partial_tp": {"gain": 0.06, "fraction": 0.3}}}
    trades = backtest_core(freqtrade, real_datadir, server.url, tmp_path, tight)["trades"]
    reasons = {t["exit_reason"] for t in trades}
    assert {"stop_loss", "trailing_stop_loss"} <= reasons, reasons
    assert reasons <= {"trend_off", "stop_loss", "trailing_stop_loss", "force_exit"}
    took = [t for t in trades if any(o["ft_order_tag"] == "partial_tp" for o in t["orders"])]
    assert took, "no partial take-profit filled"
    for t in took:
        orders = t["orders"]
        at = next(i for i, o in enumerate(orders) if o["ft_order_tag"] == "partial_tp")
        assert sum(o["ft_order_tag"] == "partial_tp" for o in orders) == 1  # once per trade
        assert not any(o["ft_is_entry"] for o in orders[at + 1:]), t  # no buy-back


@pytest.mark.slow
def test_a_deciding_oracle_scales_the_core_and_restricts_what_it_adds(
        real_datadir, module_exchange, freqtrade, tmp_path):
    """One conservative decision in force all along, BTC and SOL in focus: DOGE is never
    entered, and the first entry is half the core's (the conservative stake multiplier on
    the volatility target), against the same backtest without the oracle."""
    from datetime import UTC, datetime

    from llm_oracle.schema import OracleDecision

    server = module_exchange(real_datadir)
    journal = tmp_path / "journal.jsonl"
    journal.write_text(OracleDecision(
        decided_at=datetime(2024, 1, 1, tzinfo=UTC), valid_until=datetime(2025, 1, 1, tzinfo=UTC),
        session="test", focus_pairs=["BTC/USDT", "SOL/USDT"], risk_level="conservative",
        max_exposure=1.0, overnight_target=1.0, provider="test",
        reasoning="test: conservative all year").model_dump_json() + "\n")
    runs = {}
    for name, oracle in (("core", {"enabled": False}),
                         ("steered", {"enabled": True, "source": str(journal)})):
        userdir = tmp_path / name
        userdir.mkdir()
        extra = {**E2E_CONFIG, "hybrid_ai": {"oracle": oracle, "observe_only": []}}
        runs[name] = backtest_core(freqtrade, real_datadir, server.url, userdir,
                                   extra)["trades"]
    core, steered = runs["core"], runs["steered"]
    assert any(t["pair"] == "DOGE/USDT" for t in core)
    assert steered and not any(t["pair"] == "DOGE/USDT" for t in steered)
    first = min(core, key=lambda t: t["open_date"])
    twin = next(t for t in steered if (t["pair"], t["open_date"]) ==
                (first["pair"], first["open_date"]))
    assert twin["orders"][0]["cost"] == pytest.approx(first["orders"][0]["cost"] * 0.5, rel=0.02)


def test_daily_files_are_whole_utc_days_of_the_hourly_closes():
    """lab.daily_files' days: the UTC calendar day, its close the 23:00 candle's, an
    unfinished last day left out."""
    from lab.daily_files import complete_days

    hours = synthetic_hours(3, days=3).iloc[:-5]  # the third day ends at 18:00
    days = complete_days(hours)
    assert list(days["date"].dt.day) == [1, 2]
    assert days["close"].tolist() == hours.loc[hours["date"].dt.hour == 23, "close"].tolist()
