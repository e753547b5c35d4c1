"""Entry rule families of the execution layer: the technical signals a trader would try.

Each family is one small function over the indicator columns (``hybrid_ai.indicators`` plus
the 1h trend), returning a boolean series; the strategy picks one with the hyperopt
parameter ``buy_family`` and walk-forward optimisation (``make walkforward``) chooses it on
in-sample data only. Every rule uses candles up to its own row (no lookahead).

* ``oversold_recovery``: RSI was oversold lately and turns up, MACD crossed up recently,
  price back above the Bollinger middle band (the pack's original rule);
* ``breakout``: the close breaks above the upper Bollinger band with MACD above its signal
  and RSI not yet exhausted (momentum / trend-following);
* ``pullback``: in a 5m uptrend (SMA20 above SMA50, close above SMA50), RSI dipped and turns
  up with the MACD histogram rising (buy the dip within the trend);
* ``trend``: the loosest precondition, every candle (with volume) once the 1h trend filter
  holds: the candidate set for an ML layer that chooses among candles itself. Alone, without
  an ML gate, it buys every uptrend candle it can.

All need volume above its average; the 1h trend filter (1h close above its SMA50) is applied
by the strategy on top, as a parameter of its own.
"""

from __future__ import annotations

import pandas as pd

FAMILIES = ("oversold_recovery", "breakout", "pullback", "trend")


def oversold_recovery(df: pd.DataFrame, rsi_level: float, lookback: int,
                      macd_window: int) -> pd.Series:
    rsi = df["rsi"]
    return ((rsi.rolling(lookback).min() < rsi_level)  # was oversold
            & (rsi > rsi.shift(1))  # ... and is recovering
            & (df["macd_cross_up"].rolling(macd_window).max() > 0)
            & (df["close"] > df["bb_middleband"]))  # back above the Bollinger middle


def breakout(df: pd.DataFrame, rsi_max: float = 75.0) -> pd.Series:
    close, upper = df["close"], df["bb_upperband"]
    return ((close > upper) & (close.shift(1) <= upper.shift(1))  # breaks out on this candle
            & (df["macd"] > df["macdsignal"])
            & (df["rsi"] < rsi_max))


def pullback(df: pd.DataFrame, rsi_level: float, lookback: int) -> pd.Series:
    rsi, hist = df["rsi"], df["macdhist"]
    return ((df["sma20"] > df["sma50"]) & (df["close"] > df["sma50"])  # 5m uptrend
            & (rsi.rolling(lookback).min() < rsi_level) & (rsi > rsi.shift(1))  # dip, turning
            & (hist > hist.shift(1)))  # momentum returning


def signal(df: pd.DataFrame, family: str, *, rsi_level: float, pullback_rsi: float,
           lookback: int, macd_window: int, volume_ratio: float) -> pd.Series:
    """The chosen family's entry signal, with the volume condition every family shares."""
    if family == "oversold_recovery":
        core = oversold_recovery(df, rsi_level, lookback, macd_window)
    elif family == "breakout":
        core = breakout(df)
    elif family == "pullback":
        core = pullback(df, pullback_rsi, lookback)
    elif family == "trend":
        core = pd.Series(True, index=df.index)
    else:
        raise ValueError(f"unknown entry family {family!r}; choose one of {FAMILIES}")
    return core & (df["volume_ratio"] > volume_ratio) & (df["volume"] > 0)


def reversal(df: pd.DataFrame, rsi_level: float) -> pd.Series:
    """The technical exit: MACD crosses down while RSI is stretched above ``rsi_level``."""
    return df["macd_cross_down"] & (df["rsi"] > rsi_level)
