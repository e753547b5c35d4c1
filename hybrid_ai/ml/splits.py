"""The training window's rows: what it holds, which labels it cannot know, purge and embargo.

A label is the outcome of a trade entered at a candle (``hybrid_ai.ml.labels``): it spans
``label_period_candles`` (the strategy's maximum holding time) plus the entry candle, so
rows near the end of a window or split carry information from after it.

* ``blank_unknown_end``: the window's last ``label_period_candles`` + 1 labels are NaN
  (their trades end after the window), in a backtest as live.
* ``purged``: the train split loses its last ``label_period_candles`` + 1 rows plus an
  embargo of ``EMBARGO_CANDLES`` (their labels reach into the test split); FreqAI's test
  split splits in two with the same gap: early stopping on its first third, calibration
  and the skill check on the rest (``hybrid_ai.ml.skill``).
* ``too_thin``: a window holding less than ``hybrid_ai.ml.min_train_coverage`` of
  ``train_period_days`` of candles (a pair listed late, a hole) is skipped in backtests,
  one holding less than all of it is trained with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from freqtrade.exchange import timeframe_to_minutes
from pandas import DataFrame

from hybrid_ai.ml.features import RETURN_LABEL, WIN, WIN_LABEL

logger = logging.getLogger(__name__)

EMBARGO_CANDLES = 12  # one hour of 5m candles between purged splits


def label_horizon(freqai_info: dict[str, Any]) -> int:
    """Candles a label spans: ``freqai.feature_parameters.label_period_candles`` (the
    strategy's maximum holding time, checked at start), 0 when unset."""
    return int(freqai_info["feature_parameters"].get("label_period_candles", 0))


@dataclass
class Split:
    """Rows of one of FreqAI's splits: features [n, k] float32, outcome [n], weight [n]."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int32]  # 1 = the trade won after fees
    w: npt.NDArray[np.float64]
    ret: npt.NDArray[np.float64]  # its net return

    def __len__(self) -> int:
        return len(self.y)

    def rows(self, start: int, stop: int) -> Split:
        """Rows ``start`` .. ``stop`` (clamped to the split)."""
        s = slice(max(start, 0), max(stop, 0))
        return Split(self.x[s], self.y[s], self.w[s], self.ret[s])


def split_rows(data: dict, split: str) -> Split:
    """FreqAI's ``split`` ("train" or "test") of its data dictionary as arrays (an empty
    split when test_size is 0)."""
    features = data.get(f"{split}_features")
    if features is None or len(features) == 0:
        return Split(np.empty((0, 0), np.float32), np.empty(0, np.int32), np.empty(0),
                     np.empty(0))
    labels = data[f"{split}_labels"]
    return Split(features.to_numpy(dtype=np.float32),
                 (labels[WIN_LABEL].to_numpy() == WIN).astype(np.int32),
                 np.asarray(data[f"{split}_weights"], dtype=np.float64),
                 labels[RETURN_LABEL].to_numpy(dtype=np.float64))


@dataclass(frozen=True)
class PurgedSplits:
    train: Split  # the train split less its last ``gap`` rows
    test: Split  # FreqAI's whole test split
    early: Split  # its first third: early stopping
    held_out: Split  # the rest after ``gap`` rows: calibration and the skill check
    gap: int  # rows purged per split: label horizon + 1 + embargo


def purged(data: dict, horizon: int) -> PurgedSplits:
    """FreqAI's splits with every row whose label reaches into the next split purged, and
    an embargo that keeps the slowest features from bridging the gap. ``horizon``: candles
    a label spans (``label_horizon``)."""
    gap = horizon + 1 + EMBARGO_CANDLES
    train = split_rows(data, "train")
    test = split_rows(data, "test")
    train = train.rows(0, len(train) - gap)  # its last labels look into the test split
    # (The test split's own last labels, which would look past the training data, are
    # NaN already: ``blank_unknown_end``.)
    early = test.rows(0, len(test) // 3)
    held_out = test.rows(len(early) + gap, len(test))
    return PurgedSplits(train, test, early, held_out, gap)


def blank_unknown_end(df: DataFrame, label_list: list[str], horizon: int) -> DataFrame:
    """The training window's last ``horizon`` + 1 labels as NaN (a copy; ``df`` itself when
    there is nothing to blank).

    Their trades end after the window: live their outcome is unknown (already NaN); a
    backtest computes targets once over the whole range, so there they would carry
    prices from the window being predicted. Blanking them here makes both the same, and
    makes the rows FreqAI keeps, splits and scales the same whatever comes after the
    window (freqtrade's lookahead-analysis cuts the data right there)."""
    labels = [c for c in label_list if c in df]
    if horizon <= 0 or not labels:
        return df
    df = df.copy()
    df.loc[df.index[-(horizon + 1):], labels] = np.nan
    return df


def train_coverage(df: DataFrame, train_period_days: Any, timeframe: str) -> float:
    """Candles in the training window / the candles ``train_period_days`` holds (1.0 when
    unset or without a ``date`` column)."""
    days = float(train_period_days or 0)
    if days <= 0 or "date" not in df:
        return 1.0
    start = df["date"].max() - pd.Timedelta(days=days)
    have = int((df["date"] > start).sum())
    return have / (days * 24 * 60 / timeframe_to_minutes(timeframe))


def too_thin(df: DataFrame, pair: str, train_period_days: Any, timeframe: str,
             min_coverage: float, live: bool) -> bool:
    """Whether to skip this training window (a backtest's below ``min_coverage``); warns
    for any window holding less than 99 % of ``train_period_days`` of candles."""
    coverage = train_coverage(df, train_period_days, timeframe)
    if coverage >= 0.99:
        return False
    days = train_period_days
    skip = coverage < min_coverage and not live
    end = df["date"].max() if len(df) else None
    logger.warning(
        "%s: the training window up to %s holds %.1f of freqai.train_period_days %s "
        "days of candles (listed late, or a hole)%s", pair,
        f"{end:%Y-%m-%d %H:%M}" if end is not None else "?", coverage * days, days,
        f": skipped, below hybrid_ai.ml.min_train_coverage {min_coverage:g};"
        " no ML predictions for the next window" if skip
        else ": trained on what there is")
    return skip
