"""TA-Lib indicators of the execution layer. Every value uses candles up to its own row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib.abstract as ta


def crossed_above(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a > b) & (a.shift(1) <= b.shift(1))


def crossed_below(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a < b) & (a.shift(1) >= b.shift(1))


def add_ta_indicators(df: pd.DataFrame) -> pd.DataFrame:
    """RSI(14), MACD(12,26,9) with crossings, SMA(20/50), Bollinger(20,2), ATR(14), volume ratio."""
    df["rsi"] = ta.RSI(df, timeperiod=14)
    macd = ta.MACD(df, fastperiod=12, slowperiod=26, signalperiod=9)
    df["macd"] = macd["macd"]
    df["macdsignal"] = macd["macdsignal"]
    df["macdhist"] = macd["macdhist"]
    df["macd_cross_up"] = crossed_above(df["macd"], df["macdsignal"])
    df["macd_cross_down"] = crossed_below(df["macd"], df["macdsignal"])
    df["sma20"] = ta.SMA(df, timeperiod=20)
    df["sma50"] = ta.SMA(df, timeperiod=50)
    bb = ta.BBANDS(df, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    df["bb_upperband"] = bb["upperband"]
    df["bb_middleband"] = bb["middleband"]
    df["bb_lowerband"] = bb["lowerband"]
    df["atr"] = ta.ATR(df, timeperiod=14)
    volume_mean = df["volume"].rolling(20, min_periods=20).mean()
    df["volume_ratio"] = (df["volume"] / volume_mean).replace([np.inf, -np.inf], np.nan)
    return df


def add_hourly_indicators(hourly: pd.DataFrame) -> pd.DataFrame:
    """The 1h informative candles' ``rsi`` (14) and ``sma50`` (50 hours, price), added in
    place; the strategy's trend filter reads them merged as ``rsi_1h``/``sma50_1h``."""
    hourly["rsi"] = ta.RSI(hourly, timeperiod=14)
    hourly["sma50"] = ta.SMA(hourly, timeperiod=50)
    return hourly
