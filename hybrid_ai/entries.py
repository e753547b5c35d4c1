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
* ``momentum``: time-series momentum over days (``hybrid_ai.momentum``): long while the last
  closed hour is above its ``trend_days``-day average; its own exit is the close falling back
  below it (``trend_break``), not the 5m reversal, and it is meant for holding days.

Beside any family, a cross-sectional gate (``top_k``): enter only a pair among the ``k``
strongest of the whitelist by ``trend_days``-day return; ``rank_drop`` exits it once it falls
out of the top ``2 k`` (a buffer, so a pair at the edge does not churn).

All need volume above its average; the 1h trend filter (1h close above its SMA50) is applied
by the strategy on top, as a parameter of its own.
"""

from __future__ import annotations

import pandas as pd

from hybrid_ai.columns import RANK_DROP, REVERSAL, TREND_BREAK, trend_rank, trend_sma

FAMILIES = ("oversold_recovery", "breakout", "pullback", "trend", "momentum")
# Each family's own exit tag: the trend break for momentum, the 5m reversal for the others.
EXIT_TAGS = {family: TREND_BREAK if family == "momentum" else REVERSAL for family in FAMILIES}


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


def momentum(df: pd.DataFrame, trend_days: int) -> pd.Series:
    """The last closed hour above its ``trend_days``-day average (columns of the 1h merge)."""
    return df["close_1h"] > df[trend_sma(trend_days)]


def signal(df: pd.DataFrame, family: str, *, rsi_level: float, pullback_rsi: float,
           lookback: int, macd_window: int, volume_ratio: float, trend_days: int = 30,
           top_k: int = 0) -> pd.Series:
    """The chosen family's entry signal, with the volume condition every family shares and,
    with ``top_k`` > 0, only while the pair ranks among the ``top_k`` strongest by
    ``trend_days``-day return (NaN rank: no entry)."""
    if family == "oversold_recovery":
        core = oversold_recovery(df, rsi_level, lookback, macd_window)
    elif family == "breakout":
        core = breakout(df)
    elif family == "pullback":
        core = pullback(df, pullback_rsi, lookback)
    elif family == "trend":
        core = pd.Series(True, index=df.index)
    elif family == "momentum":
        core = momentum(df, trend_days)
    else:
        raise ValueError(f"unknown entry family {family!r}; choose one of {FAMILIES}")
    core &= (df["volume_ratio"] > volume_ratio) & (df["volume"] > 0)
    if top_k > 0:
        core &= df[trend_rank(trend_days)] <= top_k
    return core


def technical_exit(df: pd.DataFrame, family: str, *, rsi_level: float, trend_days: int,
                   top_k: int = 0) -> pd.Series:
    """The family's own exit signal: ``trend_break`` for ``momentum``, the 5m ``reversal``
    for the others; with ``top_k`` > 0 also ``rank_drop`` (any of ``exit_signals``)."""
    return any_signal(exit_signals(df, family, rsi_level=rsi_level, trend_days=trend_days,
                                   top_k=top_k))


def any_signal(signals: list[tuple[str, pd.Series]]) -> pd.Series:
    """True where any of the (tag, signal) pairs fires."""
    out = signals[0][1]
    for _, signal in signals[1:]:
        out = out | signal
    return out


def exit_signals(df: pd.DataFrame, family: str, *, rsi_level: float, trend_days: int,
                 top_k: int = 0) -> list[tuple[str, pd.Series]]:
    """``technical_exit`` as (tag, signal) pairs, first match names the exit: ``rank_drop``
    (with ``top_k`` > 0 and the rank column present), then the family's own exit
    (``EXIT_TAGS``)."""
    own = (trend_break(df, trend_days) if family == "momentum" else reversal(df, rsi_level))
    signals = [(EXIT_TAGS[family], own)]
    if top_k > 0 and trend_rank(trend_days) in df:
        signals.insert(0, (RANK_DROP, rank_drop(df, trend_days, top_k)))
    return signals


def trend_break(df: pd.DataFrame, trend_days: int) -> pd.Series:
    """The last closed hour below its ``trend_days``-day average: the momentum trade's exit."""
    return df["close_1h"] < df[trend_sma(trend_days)]


def rank_drop(df: pd.DataFrame, trend_days: int, top_k: int) -> pd.Series:
    """The pair fell out of the top ``2 top_k`` of the whitelist (a known rank only)."""
    return df[trend_rank(trend_days)] > 2 * top_k


def reversal(df: pd.DataFrame, rsi_level: float) -> pd.Series:
    """The technical exit: MACD crosses down while RSI is stretched above ``rsi_level``."""
    return df["macd_cross_down"] & (df["rsi"] > rsi_level)
