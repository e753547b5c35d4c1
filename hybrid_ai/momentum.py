"""Trends over days: time-series momentum and the cross-sectional ranking of the whitelist.

Computed on 1h candles (the strategy's informative timeframe, merged on its 5m candles with
freqtrade's ``merge_informative_pair``, so a 5m candle sees the last *closed* hour) for each
lookback of ``TREND_DAYS`` when hyperopt runs (it computes indicators once per run, and the
lookback, ``buy_trend_days``, is one of its parameters), otherwise only for the lookback in
use, and only where the strategy's family or top-k gate reads them.

* ``sma_{d}d``: the simple moving average of the hourly closes over ``d`` days (price);
* ``rank_{d}d``: the pair's rank among the whitelist by its return over ``d`` days (close /
  close ``24 d`` hours earlier - 1) at that hour (1: the
  strongest; NaN where the pair or too few pairs have a value): what the top-k entry gate
  and its exit read (Jegadeesh and Titman 1993; in crypto, Liu, Tsyvinski and Wu 2022, "Common
  risk factors in cryptocurrency", find one- to four-week momentum).

The entry family ``momentum`` (``hybrid_ai.entries``) is long while the hourly close is above
its ``d``-day average (Moskowitz, Ooi and Pedersen 2012, "Time series momentum", with a moving
average as the trend signal); its exit is the close falling back below it (``trend_break``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import talib.abstract as ta
from freqtrade.strategy import merge_informative_pair

logger = logging.getLogger(__name__)

TREND_DAYS = (7, 14, 30)
HOURS_PER_DAY = 24
# Hourly candles the longest lookback needs before its first value.
WARMUP_HOURS = max(TREND_DAYS) * HOURS_PER_DAY + 1
# A rank needs this many pairs with a value at that hour (one pair is not a cross-section).
MIN_PAIRS = 3


def add_trends(hourly: pd.DataFrame, lookbacks: Iterable[int] = TREND_DAYS) -> pd.DataFrame:
    """``sma_{d}d`` for every ``d`` in ``lookbacks`` on a frame of hourly candles (column
    ``close``; returned with the new columns)."""
    for days in lookbacks:
        hourly[f"sma_{days}d"] = ta.SMA(hourly, timeperiod=days * HOURS_PER_DAY)
    return hourly


def returns(hourly: pd.DataFrame, lookbacks: Iterable[int] = TREND_DAYS) -> pd.DataFrame:
    """``ret_{d}d`` of one pair's hourly candles, indexed by ``date``."""
    out = pd.DataFrame(index=pd.DatetimeIndex(hourly["date"]))
    close = hourly["close"].to_numpy()
    for days in lookbacks:
        hours = days * HOURS_PER_DAY
        past = pd.Series(close).shift(hours).to_numpy()
        out[f"ret_{days}d"] = close / past - 1.0
    return out


def rank_table(by_pair: dict[str, pd.DataFrame],
               lookbacks: Iterable[int] = TREND_DAYS) -> dict[str, pd.DataFrame]:
    """``rank_{d}d`` of every pair in ``by_pair`` (pair -> ``returns``), by date: 1 for the
    highest return at that hour, NaN where the pair has none or fewer than ``MIN_PAIRS`` do."""
    index = pd.DatetimeIndex(sorted(set().union(*(r.index for r in by_pair.values()))))
    out: dict[str, pd.DataFrame] = {p: pd.DataFrame(index=index) for p in by_pair}
    for days in lookbacks:
        col = f"ret_{days}d"
        table = pd.DataFrame({p: r[col] for p, r in by_pair.items()}).reindex(index)
        enough = table.notna().sum(axis=1) >= MIN_PAIRS
        ranked = table.rank(axis=1, ascending=False, method="min").where(enough, axis=0)
        for pair in by_pair:
            out[pair][f"rank_{days}d"] = ranked[pair]
    return out


class CrossSection:
    """The whitelist's ranks, computed once per new hour for all its pairs.

    :param candles: pair -> its hourly candles (freqtrade's ``DataProvider.get_pair_dataframe``
        for the informative timeframe: history in backtests, the exchange's latest closed
        candles live)
    """

    def __init__(self, candles: Callable[[str], pd.DataFrame]) -> None:
        self._candles = candles
        self._key: tuple | None = None
        self._ranks: dict[str, pd.DataFrame] = {}
        self._too_few: set[tuple[str, ...]] = set()

    def ranks(self, pair: str, hourly: pd.DataFrame, whitelist: Iterable[str],
              lookbacks: tuple[int, ...] = TREND_DAYS) -> pd.DataFrame:
        """``rank_{d}d`` of ``pair`` on the rows of its ``hourly`` frame (same order)."""
        pairs = sorted(set(whitelist) | {pair})
        if len(pairs) < MIN_PAIRS and tuple(pairs) not in self._too_few:
            self._too_few.add(tuple(pairs))
            logger.warning("top-k gate: the whitelist holds %d pair(s) (%s), a ranking needs "
                           "at least %d: no entries. Add pairs to the whitelist or set "
                           "buy_top_k 0.", len(pairs), ", ".join(pairs), MIN_PAIRS)
        key = (tuple(pairs), lookbacks, hourly["date"].iloc[-1] if len(hourly) else None)
        if key != self._key:  # a new hour (live) or another range (tools): recompute
            by_pair = {p: returns(self._candles(p), lookbacks) for p in pairs if p != pair}
            by_pair[pair] = returns(hourly, lookbacks)  # the frame the caller is analysing
            self._ranks = rank_table({p: r for p, r in by_pair.items() if len(r)}, lookbacks)
            self._key = key
        mine = self._ranks.get(pair)
        if mine is None:
            return pd.DataFrame({f"rank_{d}d": np.nan for d in lookbacks},
                                index=range(len(hourly)))
        return mine.reindex(pd.DatetimeIndex(hourly["date"])).reset_index(drop=True)


def trend_columns(candles: pd.DataFrame, timeframe: str,
                  lookbacks: Iterable[int] = TREND_DAYS) -> pd.DataFrame:
    """``close_1h`` and ``sma_{d}d_1h`` on a frame of ``timeframe`` candles, resampled to hours
    and merged back as the strategy's informative merge gives them (the ML label's path,
    which sees raw candles only)."""
    lookbacks = tuple(lookbacks)
    hourly = (candles.resample("1h", on="date")
              .agg({"open": "first", "high": "max", "low": "min", "close": "last",
                    "volume": "sum"}).dropna().reset_index())
    hourly = add_trends(hourly, lookbacks)
    cols = ["date", "close", *(f"sma_{d}d" for d in lookbacks)]
    merged = merge_informative_pair(candles[["date"]].copy(), hourly[cols], timeframe, "1h",
                                    ffill=True)
    return merged.drop(columns=["date"]).set_index(candles.index)
