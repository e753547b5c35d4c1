"""FreqAI feature and target definitions of the ML layer.

FreqAI calls these (through the strategy's hooks) on every timeframe and correlated pair
it is configured for. Every feature uses candles up to its own row; only the targets
look ahead (the trade's outcome), and FreqAI uses targets for training alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib.abstract as ta

from hybrid_ai.frames import join_columns as _join
from hybrid_ai.ml.labels import ExitRules, outcome_frame

# FreqAI's label columns ("&" prefix) and the classifier's classes.
WIN_LABEL = "&s-win"  # the class: did the trade win after fees?
RETURN_LABEL = "&-trade_return"  # its net return (the model reads payoffs from it)
WIN, LOSS = "win", "loss"


def expand_all(df: pd.DataFrame, period: int) -> pd.DataFrame:
    """Features computed for each indicator period, timeframe and correlated pair."""
    sma = ta.SMA(df, timeperiod=period)
    bb = ta.BBANDS(df, timeperiod=period, nbdevup=2.0, nbdevdn=2.0)
    return _join(df, {
        "%-rsi-period": ta.RSI(df, timeperiod=period),
        "%-mfi-period": ta.MFI(df, timeperiod=period),
        "%-adx-period": ta.ADX(df, timeperiod=period),
        "%-roc-period": ta.ROC(df, timeperiod=period),
        "%-close_sma-period": df["close"] / sma - 1.0,
        "%-bb_width-period": (bb["upperband"] - bb["lowerband"]) / bb["middleband"],
        "%-bb_pos-period": (df["close"] - bb["lowerband"]) / (bb["upperband"] - bb["lowerband"]),
        "%-natr-period": ta.NATR(df, timeperiod=period),
        "%-relative_volume-period": df["volume"] / df["volume"].rolling(period).mean(),
    })


def expand_basic(df: pd.DataFrame) -> pd.DataFrame:
    """Features computed for each timeframe and correlated pair (no period)."""
    return _join(df, {
        "%-pct-change": df["close"].pct_change(),
        "%-range": (df["high"] - df["low"]) / df["close"],
    })


def standard(df: pd.DataFrame) -> pd.DataFrame:
    """Features computed once, on the base timeframe of the traded pair."""
    hour = df["date"].dt.hour + df["date"].dt.minute / 60.0
    macd = ta.MACD(df, fastperiod=12, slowperiod=26, signalperiod=9)
    return _join(df, {
        "%-hour_sin": np.sin(2 * np.pi * hour / 24.0),
        "%-hour_cos": np.cos(2 * np.pi * hour / 24.0),
        "%-day_of_week": (df["date"].dt.day_of_week + 1) / 7.0,
        "%-macdhist_norm": macd["macdhist"] / df["close"],
    })


def targets(df: pd.DataFrame, rules: ExitRules, exit_signal: pd.Series) -> pd.DataFrame:
    """The ML layer's two labels (``hybrid_ai.ml.labels``): the net return of a trade entered
    after each candle under the strategy's exits (``&-trade_return``) and whether it won
    (``&s-win``: ``win`` / ``loss``). NaN where the trade would end past the data."""
    out = outcome_frame(df, exit_signal, rules)
    ret = out["ret"]
    win = pd.Series(np.where(ret > 0.0, WIN, LOSS), index=df.index, dtype=object)
    return _join(df, {RETURN_LABEL: ret, WIN_LABEL: win.where(ret.notna())})
