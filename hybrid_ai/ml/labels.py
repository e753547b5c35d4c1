"""The ML layer's label: what a trade entered at a candle would return under the strategy's
own exits (a triple-barrier / meta-label).

For every candle ``i`` a long trade enters at the next candle's open, as freqtrade does
after a signal, and is walked forward with the exits ``ExitRules`` describes, in the order
freqtrade's backtester applies them on each candle:

1. the exit signal of the previous candle closes the trade at this candle's open;
2. the partial take-profit sells ``partial_fraction`` at the open once the open is
   ``partial_tp`` above the entry (freqtrade evaluates ``adjust_trade_position`` there);
   1.0 when the stake is too small for a sellable rest (``hybrid_ai.exits``): the whole
   trade closes there;
3. the stop: the hard stop ``stoploss`` below the entry, raised to ``trailing`` below the
   highest high once that high is ``trailing_offset`` above the entry; the candle's low
   touching it exits at the stop (at the open when the candle gaps below it);
4. after ``max_hold`` candles the rest exits at the open (the strategy's ROI table has
   ``-1`` at that age, freqtrade's time exit).

The return is net of ``fee`` on each side. Candles whose trade cannot finish inside the data
(the last ``max_hold + 1``) get NaN: no label is ever made of unknown prices, and FreqAI
drops NaN labels from training. The walk is vectorised over candles: one numpy step per
candle of holding time (``max_hold`` steps), never a Python loop per candle of data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from freqtrade.exchange import timeframe_to_minutes

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ExitRules:
    """The strategy's exit parameters; the strategy builds this from its own attributes."""

    stoploss: float  # e.g. -0.10
    max_hold: int  # candles
    trailing: float | None = None  # distance below the high, e.g. 0.05; None: no trail
    trailing_offset: float = 0.0  # armed once the high is this far above the entry
    partial_tp: float | None = None  # gain at which part of the position is sold
    partial_fraction: float = 0.5  # 1.0: the take-profit closes the whole trade
    fee: float = 0.001  # per side

    def __post_init__(self) -> None:
        if not -1 < self.stoploss < 0:
            raise ValueError(f"stoploss must lie in (-1, 0), got {self.stoploss}")
        if self.max_hold < 1:
            raise ValueError(f"max_hold must be at least 1 candle, got {self.max_hold}")
        if not 0 <= self.partial_fraction <= 1:
            raise ValueError("partial_fraction must lie in [0, 1]")


    def horizon_mismatch(self, label_period_candles: Any) -> str | None:
        """Why FreqAI's ``label_period_candles`` does not fit this holding time (None: it
        does): labels span the holding time and FreqAI purges by that number."""
        if label_period_candles == self.max_hold:
            return None
        return (f"freqai.feature_parameters.label_period_candles is {label_period_candles}, "
                f"but the strategy holds a trade at most {self.max_hold} candles (its "
                f"minimal_roi time exit): set label_period_candles to {self.max_hold} so the "
                f"ML label and its purge match the trades.")

    @classmethod
    def of_strategy(cls, strategy: Any, partial_fraction: float, fee: float) -> ExitRules:
        """The exits of a freqtrade strategy: its ``stoploss``, trailing settings,
        ``sell_partial_tp`` parameter and ``minimal_roi``'s time exit (a ``-1`` entry, in
        minutes of its ``timeframe``); ``ValueError`` when it has no time exit."""
        time_exits = [int(k) for k, v in strategy.minimal_roi.items() if float(v) == -1]
        if not time_exits:
            raise ValueError("minimal_roi needs a time exit (a -1 entry): the ML label "
                             "needs a maximum holding time")
        trailing = None
        if strategy.trailing_stop:
            trailing = strategy.trailing_stop_positive or -strategy.stoploss
        return cls(
            stoploss=strategy.stoploss,
            max_hold=max(1, min(time_exits) // timeframe_to_minutes(strategy.timeframe)),
            trailing=trailing,
            trailing_offset=(strategy.trailing_stop_positive_offset or 0.0)
            if strategy.trailing_only_offset_is_reached else 0.0,
            partial_tp=strategy.sell_partial_tp.value,
            partial_fraction=partial_fraction,
            fee=fee,
        )


@dataclass(frozen=True)
class Outcomes:
    """Per candle: the trade's net return and how many candles it was held (NaN: unknown)."""

    ret: FloatArray
    held: FloatArray
    reason: npt.NDArray[np.int8]  # EXIT_* codes, -1 where unknown


EXIT_SIGNAL, EXIT_STOP, EXIT_TIME, EXIT_TAKE_PROFIT = 0, 1, 2, 3


def trade_outcomes(open_: FloatArray, high: FloatArray, low: FloatArray,
                   exit_signal: npt.NDArray[np.bool_], rules: ExitRules) -> Outcomes:
    """Net return of a trade entered at the open after each candle (see the module doc)."""
    n = len(open_)
    # Padded once, so "the candle k rows ahead of every row" is a view, not a new array per
    # step: row i of ahead(a, k) holds a[i + k] (NaN / False past the end).
    tail = rules.max_hold + 2
    open_, high, low = (np.concatenate([np.asarray(a, dtype=np.float64), np.full(tail, np.nan)])
                        for a in (open_, high, low))
    signal = np.concatenate([np.asarray(exit_signal, dtype=bool), np.zeros(tail, bool)])

    def ahead(a: npt.NDArray, k: int) -> npt.NDArray:
        return a[k:k + n]

    entry = ahead(open_, 1)
    stop_floor = entry * (1.0 + rules.stoploss)
    arm = entry * (1.0 + rules.trailing_offset)
    tp_level = entry * (1.0 + rules.partial_tp) if rules.partial_tp is not None else None

    alive = np.isfinite(entry)
    held_fraction = np.ones(n)  # of the position still open
    proceeds = np.zeros(n)  # sum of fraction x exit price / entry over the sells so far
    peak = entry.copy()
    held = np.full(n, np.nan)
    reason = np.full(n, -1, dtype=np.int8)

    def close(rows: npt.NDArray[np.bool_], price: FloatArray, step: int, why: int) -> None:
        proceeds[rows] += held_fraction[rows] * price[rows] / entry[rows]
        held_fraction[rows] = 0.0
        held[rows] = step
        reason[rows] = why
        alive[rows] = False

    for m in range(rules.max_hold):
        o, h, lo = ahead(open_, m + 1), ahead(high, m + 1), ahead(low, m + 1)
        alive &= np.isfinite(o)
        if m > 0:  # 1. the previous candle's exit signal: out at this open
            close(alive & ahead(signal, m), o, m, EXIT_SIGNAL)
        if tp_level is not None:  # 2. partial take-profit at the open, once
            take = alive & (held_fraction == 1.0) & (o >= tp_level)
            if rules.partial_fraction >= 1.0:  # too small to split: the whole trade
                close(take, o, m, EXIT_TAKE_PROFIT)
            else:
                proceeds[take] += rules.partial_fraction * o[take] / entry[take]
                held_fraction[take] -= rules.partial_fraction
        # 3. stops: the high raises the trail first (as freqtrade's backtester does)
        peak = np.where(alive, np.fmax(peak, h), peak)
        stop = stop_floor
        if rules.trailing is not None:
            trail = peak * (1.0 - rules.trailing)
            stop = np.where(peak >= arm, np.fmax(stop_floor, trail), stop_floor)
        hit = alive & (lo <= stop)
        close(hit, np.where(o < stop, o, stop), m, EXIT_STOP)
    # 4. time exit at the open after max_hold candles
    o = ahead(open_, rules.max_hold + 1)
    close(alive & np.isfinite(o), o, rules.max_hold, EXIT_TIME)

    known = np.isfinite(held) & np.isfinite(o)
    ret = np.where(known, proceeds - 1.0 - 2.0 * rules.fee, np.nan)
    return Outcomes(ret=ret, held=np.where(known, held, np.nan),
                    reason=np.where(known, reason, -1).astype(np.int8))


def outcome_frame(df: pd.DataFrame, exit_signal: pd.Series, rules: ExitRules) -> pd.DataFrame:
    """``trade_outcomes`` of a candle frame, as columns ``ret``, ``held``, ``reason``."""
    out = trade_outcomes(df["open"].to_numpy(), df["high"].to_numpy(), df["low"].to_numpy(),
                         exit_signal.fillna(False).to_numpy(bool), rules)
    return pd.DataFrame({"ret": out.ret, "held": out.held, "reason": out.reason},
                        index=df.index)
