"""Holes in candle files: where the exchange (or the copy we have) has no candles.

freqtrade fills every hole inside a backtest's range with flat, zero-volume candles at the
last close ("Missing data fillup" in its log). Nothing in this pack enters on a zero-volume
candle, a trade open across a hole keeps its last price until candles resume, and FreqAI
skips a pair's training window holding less than ``hybrid_ai.ml.min_train_coverage`` of its
candles (saying so in the log). The report lists the holes so none is bridged silently.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from freqtrade.data.history import load_pair_history
from freqtrade.exchange import timeframe_to_minutes


def holes(datadir: Path, pairs: list[str], timeframe: str, start: pd.Timestamp,
          end: pd.Timestamp) -> pd.DataFrame:
    """Every run of missing ``timeframe`` candles between ``start`` and ``end`` (UTC), one row
    each: ``pair``, ``timeframe``, ``from`` and ``to`` (first and last missing candle),
    ``missing`` (candles). A pair whose file ends early or starts late has a hole there too."""
    step = pd.Timedelta(minutes=timeframe_to_minutes(timeframe))
    start, end = start.ceil(step), end.ceil(step)  # whole candles of this timeframe
    rows = []
    for pair in pairs:
        df = load_pair_history(pair=pair, timeframe=timeframe, datadir=datadir,
                               fill_up_missing=False)
        dates = df["date"] if not df.empty else pd.Series([], dtype="datetime64[ns, UTC]")
        dates = dates[(dates >= start) & (dates < end)]
        bounds = pd.concat([pd.Series([start - step]), dates, pd.Series([end])],
                           ignore_index=True)
        gaps = bounds.diff()
        for i in gaps.index[gaps > step]:
            first, last = bounds[i - 1] + step, bounds[i] - step
            rows.append({"pair": pair, "timeframe": timeframe, "from": first, "to": last,
                         "missing": int((last - first) / step) + 1})
    return pd.DataFrame(rows, columns=["pair", "timeframe", "from", "to", "missing"])


LONG_HOLE = pd.Timedelta(days=1)  # shorter: an exchange outage, traded through as live


def pair_pauses(found: pd.DataFrame, timeframe: str,
                margin: pd.Timedelta = LONG_HOLE) -> list[dict[str, str]]:
    """``hybrid_ai.pair_pauses`` entries for every hole of a day or more in ``found``
    (``holes``' rows of ``timeframe``): the pair is not traded from ``margin`` before the
    hole (whole days) until ``margin`` after it, so no trade is carried across it."""
    step = pd.Timedelta(minutes=timeframe_to_minutes(timeframe))
    out = []
    for row in found[found["timeframe"] == timeframe].itertuples():
        if row.missing * step < LONG_HOLE:
            continue
        start = (row[3] - margin).floor("D")  # row[3], row[4]: "from", "to"
        end = (row[4] + step + margin).ceil("D")
        out.append({"pair": row.pair, "from": start.isoformat(), "to": end.isoformat(),
                    "reason": f"{row.missing} {timeframe} candles missing from "
                              f"{row[3]:%Y-%m-%d %H:%M} to {row[4]:%Y-%m-%d %H:%M}"})
    return out
