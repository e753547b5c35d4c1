"""Trends over days (hybrid_ai.momentum): the momentum family, the top-k gate, the horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from freqtrade.data.history import load_pair_history
from freqtrade.strategy import merge_informative_pair

from hybrid_ai import entries, momentum, positions
from hybrid_ai.hyperopt import HOLD_HOURS, ProtectiveExitSpaces, roi_table
from hybrid_ai.indicators import add_ta_indicators


def hourly(closes: list[float] | np.ndarray, start: str = "2024-01-01") -> pd.DataFrame:
    closes = np.asarray(closes, dtype=float)
    return pd.DataFrame({"date": pd.date_range(start, periods=len(closes), freq="1h", tz="UTC"),
                         "open": closes, "high": closes, "low": closes, "close": closes,
                         "volume": 1.0})


def trending(slope: float, hours: int = 800) -> pd.DataFrame:
    return hourly(100.0 * np.exp(slope * np.arange(hours)))


def test_trends_use_no_future_candles(real_datadir):
    candles = load_pair_history(pair="BTC/USDT", timeframe="1h", datadir=real_datadir)
    full = momentum.add_trends(candles.copy())
    cut = momentum.add_trends(candles.iloc[:1500].copy())
    cols = [f"sma_{d}d" for d in momentum.TREND_DAYS]
    pd.testing.assert_frame_equal(full[cols].iloc[:1500], cut[cols])
    pd.testing.assert_frame_equal(momentum.returns(candles).iloc[:1500],
                                  momentum.returns(candles.iloc[:1500]))
    # a month of hours before the 30-day figures exist, then always
    assert full["sma_30d"].iloc[:719].isna().all() and full["sma_30d"].iloc[719:].notna().all()


def test_pairs_rank_by_their_return_and_one_or_two_pairs_are_no_cross_section():
    by_pair = {p: momentum.returns(trending(s)) for p, s in
               (("UP/USDT", 0.002), ("FLAT/USDT", 0.0), ("DOWN/USDT", -0.002))}
    ranks = momentum.rank_table(by_pair)
    last = {p: r["rank_30d"].iloc[-1] for p, r in ranks.items()}
    assert last == {"UP/USDT": 1, "FLAT/USDT": 2, "DOWN/USDT": 3}
    assert ranks["UP/USDT"]["rank_30d"].iloc[:720].isna().all()  # no 30-day return yet
    assert ranks["UP/USDT"]["rank_7d"].iloc[200:].eq(1).all()
    two = {p: by_pair[p] for p in ("UP/USDT", "DOWN/USDT")}
    assert momentum.rank_table(two)["UP/USDT"]["rank_7d"].isna().all()


def test_the_cross_section_is_computed_once_per_new_hour_for_all_pairs():
    frames = {p: trending(s) for p, s in (("A/USDT", 0.001), ("B/USDT", 0.0),
                                           ("C/USDT", -0.001))}
    asked: list[str] = []

    def candles(pair: str) -> pd.DataFrame:
        asked.append(pair)
        return frames[pair]

    cross = momentum.CrossSection(candles)
    first = cross.ranks("A/USDT", frames["A/USDT"], frames)
    second = cross.ranks("B/USDT", frames["B/USDT"], frames)
    third = cross.ranks("C/USDT", frames["C/USDT"], frames)
    # one pass over the others for the whole whitelist (the caller's own frame is at hand) ...
    assert sorted(asked) == ["B/USDT", "C/USDT"]
    # ... and every pair is ranked against all three
    assert [r["rank_7d"].iloc[-1] for r in (first, second, third)] == [1, 2, 3]
    assert len(first) == len(frames["A/USDT"])
    frames = {p: f.iloc[:-1] for p, f in frames.items()}  # another last hour: recomputed
    cross.ranks("A/USDT", frames["A/USDT"], frames)
    assert len(asked) == 4


def test_a_whitelist_too_small_to_rank_is_said_once_with_what_to_change(caplog):
    frames = {p: trending(s) for p, s in (("A/USDT", 0.001), ("B/USDT", 0.0))}
    cross = momentum.CrossSection(frames.__getitem__)
    with caplog.at_level("WARNING"):
        for _ in range(3):
            for pair in frames:
                ranks = cross.ranks(pair, frames[pair], frames, (7,))
                assert ranks["rank_7d"].isna().all()  # no cross-section: no entries
    said = [r.getMessage() for r in caplog.records if "top-k gate" in r.getMessage()]
    assert len(said) == 1
    assert "holds 2 pair(s) (A/USDT, B/USDT)" in said[0] and "buy_top_k 0" in said[0]


def test_the_label_sees_the_trend_the_strategy_sees(real_datadir):
    """The ML label's path resamples the 5m candles to hours; the strategy merges the
    exchange's 1h candles. Where the 5m file has no hole they agree."""
    five = load_pair_history(pair="ETH/USDT", timeframe="5m", datadir=real_datadir)
    one = load_pair_history(pair="ETH/USDT", timeframe="1h", datadir=real_datadir)
    from_5m = momentum.trend_columns(five, "5m")
    informative = momentum.add_trends(one.copy())[["date", "close", "sma_30d"]]
    from_1h = merge_informative_pair(five[["date"]].copy(), informative, "5m", "1h", ffill=True)
    both = from_1h["sma_30d_1h"].notna()
    assert both.sum() > len(five) / 2
    np.testing.assert_allclose(from_5m.loc[both, "sma_30d_1h"], from_1h.loc[both, "sma_30d_1h"],
                               rtol=1e-9)
    np.testing.assert_allclose(from_5m["close_1h"], from_1h["close_1h"], rtol=1e-12)


def frame_with_trend(close_1h: list[float], sma: list[float], rank: list[float]) -> pd.DataFrame:
    n = len(close_1h)
    return pd.DataFrame({"close_1h": close_1h, "sma_30d_1h": sma, "rank_30d_1h": rank,
                         "volume_ratio": [1.0] * n, "volume": [1.0] * n})


def test_momentum_enters_above_the_average_and_breaks_below_it():
    df = frame_with_trend([110, 105, 95, 120], [100, 100, 100, 100], [1, 4, 1, np.nan])
    kw = {"rsi_level": 35, "pullback_rsi": 45, "lookback": 12, "macd_window": 3,
          "volume_ratio": 0.5, "trend_days": 30}
    assert entries.signal(df, "momentum", **kw).tolist() == [True, True, False, True]
    # top 3: the 4th-ranked pair and an unknown rank make no entry
    assert entries.signal(df, "momentum", **kw, top_k=3).tolist() == [True, False, False, False]
    exits = entries.technical_exit(df, "momentum", rsi_level=68, trend_days=30)
    assert exits.tolist() == [False, False, True, False]
    # out of the top 2 k = 2: a rank drop; an unknown rank is no reason to exit
    with_rank = entries.technical_exit(df, "momentum", rsi_level=68, trend_days=30, top_k=1)
    assert with_rank.tolist() == [False, True, True, False]
    named = entries.exit_signals(df, "momentum", rsi_level=68, trend_days=30, top_k=1)
    assert [tag for tag, _ in named] == ["rank_drop", "trend_break"]
    signal, tag = positions.exit_columns([positions.ExitSignal(t, m.to_numpy(bool))
                                          for t, m in named])
    assert signal.tolist() == [0, 1, 1, 0] and tag.tolist() == [None, "rank_drop",
                                                                 "trend_break", None]


def test_other_families_keep_their_reversal_exit(real_datadir):
    candles = load_pair_history(pair="BTC/USDT", timeframe="5m", datadir=real_datadir).iloc[:3000]
    df = add_ta_indicators(candles.copy())
    exits = entries.technical_exit(df, "oversold_recovery", rsi_level=55, trend_days=30)
    assert exits.equals(entries.reversal(df, 55)) and exits.any()


@pytest.mark.parametrize("hours", HOLD_HOURS)
def test_the_holding_horizon_is_the_roi_space_and_the_label_follows_it(hours):
    from lab import ml_offline

    (dimension,) = ProtectiveExitSpaces.roi_space()
    assert list(dimension.categories) == list(HOLD_HOURS)
    table = ProtectiveExitSpaces.generate_roi_table({"max_hold_hours": hours})
    assert table == roi_table(hours) == {0: 100.0, hours * 60: -1}
    strategy = ml_offline.strategy(minimal_roi=table)
    rules = strategy.exit_rules()
    assert rules.max_hold == hours * 12  # 5m candles: the label spans the horizon
    assert rules.horizon_mismatch(hours * 12) is None
    assert f"set label_period_candles to {hours * 12}" in rules.horizon_mismatch(288 + hours)


def test_the_hybrid_and_the_oversold_presets_are_each_consistent():
    """The 5m families' label horizon (config.json + the hybrid preset) is their time exit,
    and so is the oversold preset's (the bot would refuse to start otherwise)."""
    from lab import ml_offline
    from lab.project import OVERSOLD_PRESET, load_config

    shipped = ml_offline.strategy()
    # the configs set no label horizon: the strategy's time exit is the one fact
    assert "label_period_candles" not in load_config()["freqai"]["feature_parameters"]
    assert shipped.config["freqai"]["feature_parameters"]["label_period_candles"] == \
        shipped.exit_rules().max_hold
    assert (shipped.buy_family.value, shipped.buy_top_k.value) == ("momentum", 3)
    assert shipped.exit_rules().max_hold == 7 * 24 * 12  # a week of 5m candles
    assert load_config()["hybrid_ai"]["observe_only"] == ["oracle"]  # as measured

    preset = ml_offline.strategy(preset=OVERSOLD_PRESET)
    overlay = load_config([OVERSOLD_PRESET.config_file])
    assert preset.exit_rules().horizon_mismatch(
        overlay["freqai"]["feature_parameters"]["label_period_candles"]) is None
    assert (preset.buy_family.value, preset.buy_top_k.value) == ("oversold_recovery", 0)
    assert preset.exit_rules().max_hold == 288 and overlay["hybrid_ai"]["observe_only"] == []
