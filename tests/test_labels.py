"""The ML label: a trade's outcome under the strategy's exits (hybrid_ai.ml.labels)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hybrid_ai.ml import features as ml_features
from hybrid_ai.ml.labels import (
    EXIT_SIGNAL,
    EXIT_STOP,
    EXIT_TAKE_PROFIT,
    EXIT_TIME,
    ExitRules,
    trade_outcomes,
)

RULES = ExitRules(stoploss=-0.10, max_hold=48, trailing=0.05, trailing_offset=0.06,
                  partial_tp=0.04, partial_fraction=0.5, fee=0.001)


def walk_one(i, o, h, lo, sig, r: ExitRules):
    """Reference: one trade, candle by candle, in plain Python (what the vector code must
    reproduce for every candle at once)."""
    n = len(o)
    if i + 1 + r.max_hold >= n:
        return math.nan, math.nan, -1
    entry = o[i + 1]
    held, proceeds, peak, took = 1.0, 0.0, entry, False
    for m in range(r.max_hold):
        j = i + 1 + m
        if m > 0 and sig[j - 1]:
            return proceeds + held * o[j] / entry - 1 - 2 * r.fee, m, EXIT_SIGNAL
        if r.partial_tp is not None and not took and o[j] >= entry * (1 + r.partial_tp):
            if r.partial_fraction == 1.0:  # a stake too small to split closes whole
                return o[j] / entry - 1 - 2 * r.fee, m, EXIT_TAKE_PROFIT
            proceeds += r.partial_fraction * o[j] / entry
            held -= r.partial_fraction
            took = True
        peak = max(peak, h[j])
        stop = entry * (1 + r.stoploss)
        if r.trailing is not None and peak >= entry * (1 + r.trailing_offset):
            stop = max(stop, peak * (1 - r.trailing))
        if lo[j] <= stop:
            price = o[j] if o[j] < stop else stop
            return proceeds + held * price / entry - 1 - 2 * r.fee, m, EXIT_STOP
    return (proceeds + held * o[i + 1 + r.max_hold] / entry - 1 - 2 * r.fee, r.max_hold,
            EXIT_TIME)


def random_candles(n: int, seed: int, vol: float = 0.02):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, vol / 4, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, vol / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, vol / 2, n)))
    signal = rng.random(n) < 0.03
    return open_, high, low, signal


@pytest.mark.parametrize(("rules", "vol"), [
    (RULES, 0.02),
    (ExitRules(stoploss=-0.03, max_hold=30, trailing=0.01, trailing_offset=0.0,
               partial_tp=None), 0.002),
    (ExitRules(stoploss=-0.2, max_hold=12, trailing=None, partial_tp=0.01,
               partial_fraction=0.25, fee=0.0), 0.02),
    (ExitRules(stoploss=-0.10, max_hold=48, trailing=0.05, trailing_offset=0.06,
               partial_tp=0.04, partial_fraction=1.0, fee=0.001), 0.02),
])
def test_vectorised_walk_equals_the_candle_by_candle_reference(rules, vol):
    o, h, lo, sig = random_candles(700, seed=rules.max_hold, vol=vol)
    got = trade_outcomes(o, h, lo, sig, rules)
    for i in range(len(o)):
        ret, held, why = walk_one(i, o, h, lo, sig, rules)
        if math.isnan(ret):
            assert np.isnan(got.ret[i]) and got.reason[i] == -1, i
        else:
            assert got.ret[i] == pytest.approx(ret, abs=1e-12), i
            assert (got.held[i], got.reason[i]) == (held, why), i
    # several exit paths occurred, so the comparison covered them
    assert len(set(got.reason.tolist()) - {-1}) >= 2


def path(prices: list[float], pad: int = 60):
    """Candles whose open = the previous close, high/low 0.1 % around the move."""
    closes = np.array(prices + [prices[-1]] * pad, dtype=float)
    opens = np.r_[closes[0], closes[:-1]]
    high = np.maximum(opens, closes) * 1.001
    low = np.minimum(opens, closes) * 0.999
    return opens, high, low


def test_a_hard_stop_loses_the_stop_plus_fees():
    o, h, lo = path([100, 100, 97, 93, 88, 85])
    out = trade_outcomes(o, h, lo, np.zeros(len(o), bool), RULES)
    # entered at the open of candle 1 (100); the -10 % stop at 90 is touched in candle 4
    assert out.reason[0] == EXIT_STOP
    assert out.ret[0] == pytest.approx(0.90 - 1 - 0.002)


def test_a_trailing_stop_locks_the_gain_and_partial_profit_was_taken():
    o, h, lo = path([100, 100, 103, 105, 108, 110, 104, 100])
    out = trade_outcomes(o, h, lo, np.zeros(len(o), bool), RULES)
    # half sold at the first open >= +4 % (105, candle 4's open), trail armed by the highs
    # above +6 %, 5 % under the peak (110 x 1.001): the low of the fall to 104 touches it
    peak = 110 * 1.001
    expected = 0.5 * 105 / 100 + 0.5 * (peak * 0.95) / 100 - 1 - 0.002
    assert out.reason[0] == EXIT_STOP
    assert out.ret[0] == pytest.approx(expected)


def test_the_exit_signal_closes_at_the_next_open_and_time_exit_caps_every_trade():
    o, h, lo = path([100] * 10)
    signal = np.zeros(len(o), bool)
    signal[5] = True
    out = trade_outcomes(o, h, lo, signal, RULES)
    assert out.reason[0] == EXIT_SIGNAL and out.held[0] == 5
    assert out.ret[0] == pytest.approx(-0.002)  # flat price: the fees
    assert out.reason[6] == EXIT_TIME and out.held[6] == RULES.max_hold
    # the last max_hold + 1 candles cannot finish a trade inside the data: no label
    assert np.isnan(out.ret[-(RULES.max_hold + 1):]).all()
    assert np.isfinite(out.ret[: -(RULES.max_hold + 1)]).all()


def test_targets_are_win_and_return_and_nan_past_the_data():
    o, h, lo, sig = random_candles(500, seed=3)
    df = pd.DataFrame({"open": o, "high": h, "low": lo, "close": o})
    out = ml_features.targets(df, RULES, pd.Series(sig))
    ret, win = out[ml_features.RETURN_LABEL], out[ml_features.WIN_LABEL]
    known = ret.notna()
    assert (win[known] == np.where(ret[known] > 0, "win", "loss")).all()
    assert win[~known].isna().all() and (~known).sum() == RULES.max_hold + 1


def test_the_label_follows_the_strategy_exit_parameters():
    from lab import ml_offline

    strategy = ml_offline.strategy()
    rules = strategy.exit_rules()
    assert (rules.stoploss, rules.trailing, rules.trailing_offset) == (
        strategy.stoploss, strategy.trailing_stop_positive,
        strategy.trailing_stop_positive_offset)
    assert rules.partial_tp == strategy.sell_partial_tp.value
    assert rules.max_hold == 2016  # minimal_roi's time exit: a week (10080 minutes) of 5m candles
    strategy.stoploss = -0.05
    strategy.sell_partial_tp.value = 0.03
    strategy.minimal_roi = {0: 100.0, 720: -1}
    changed = strategy.exit_rules()
    assert (changed.stoploss, changed.partial_tp, changed.max_hold) == (-0.05, 0.03, 144)


def test_a_label_horizon_that_differs_from_the_holding_time_stops_the_bot():
    from freqtrade.exceptions import OperationalException

    from lab import ml_offline

    strategy = ml_offline.strategy()
    strategy.config["freqai"]["feature_parameters"]["label_period_candles"] = 24
    with pytest.raises(OperationalException, match="set label_period_candles to 2016"):
        strategy.pack.check_ml_config()
