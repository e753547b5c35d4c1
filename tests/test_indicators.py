"""TA-Lib indicators of the execution layer (hybrid_ai.indicators)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybrid_ai.indicators import add_ta_indicators
from local_exchange.synthetic import generate


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return generate(days=5, seed=1)["BTC/USDT"]


def test_indicators_use_no_future_candles(candles):
    full = add_ta_indicators(candles.copy())
    cut = add_ta_indicators(candles.iloc[:1000].copy())
    cols = ["rsi", "macd", "macdsignal", "sma20", "sma50", "bb_upperband", "atr", "volume_ratio"]
    pd.testing.assert_frame_equal(full.loc[:999, cols], cut[cols])


def test_macd_crossings_match_the_lines(candles):
    df = add_ta_indicators(candles.copy())
    up = df.index[df["macd_cross_up"]]
    assert len(up) > 5
    for i in up:
        assert df.at[i, "macd"] > df.at[i, "macdsignal"]
        assert df.at[i - 1, "macd"] <= df.at[i - 1, "macdsignal"]


def test_bollinger_and_rsi_ranges(candles):
    df = add_ta_indicators(candles.copy()).dropna()
    assert ((df["rsi"] >= 0) & (df["rsi"] <= 100)).all()
    assert (df["bb_lowerband"] <= df["bb_middleband"]).all()
    assert np.allclose(df["bb_middleband"], df["sma20"])
