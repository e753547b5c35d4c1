"""The entry families' signals (hybrid_ai.entries)."""

from __future__ import annotations

import pandas as pd
import pytest

from hybrid_ai import entries
from hybrid_ai.indicators import add_ta_indicators
from local_exchange.synthetic import generate


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return generate(days=5, seed=1)["BTC/USDT"]


@pytest.mark.parametrize("family", ["oversold_recovery", "breakout", "pullback"])
def test_entry_families_fire_and_use_no_future_candles(candles, family):
    params = {"rsi_level": 40, "pullback_rsi": 50, "lookback": 12, "macd_window": 3,
              "volume_ratio": 0.5}
    full = entries.signal(add_ta_indicators(candles.copy()), family, **params)
    cut = entries.signal(add_ta_indicators(candles.iloc[:1000].copy()), family, **params)
    assert full.iloc[:1000].equals(cut)
    assert 0 < full.sum() < len(full) / 5  # it proposes trades, not every candle


def test_the_trend_family_is_the_wide_candidate_set(candles):
    df = add_ta_indicators(candles.copy())
    wide = entries.signal(df, "trend", rsi_level=40, pullback_rsi=50, lookback=12,
                          macd_window=3, volume_ratio=0.5)
    narrow = entries.signal(df, "oversold_recovery", rsi_level=40, pullback_rsi=50,
                            lookback=12, macd_window=3, volume_ratio=0.5)
    assert (narrow <= wide).all()  # every technical entry is a candidate, and many more
    assert wide.sum() > 5 * narrow.sum()


def test_an_unknown_entry_family_names_the_choices(candles):
    with pytest.raises(ValueError, match="oversold_recovery"):
        entries.signal(add_ta_indicators(candles.copy()), "moonshot", rsi_level=30,
                       pullback_rsi=45, lookback=12, macd_window=3, volume_ratio=1.0)
