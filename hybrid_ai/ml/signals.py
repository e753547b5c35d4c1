"""Turn FreqAI's predictions into the ML layer's signals: an expected-value gate, a Kelly
position and an exit for open trades.

FreqAI hands the strategy, per candle, the calibrated probability that a trade entered
there wins (``win``, see ``hybrid_ai.ml.labels``) and, per trained window, what the model
measured in training (``extra_returns_per_train``): the mean winning and losing trade
returns after fees, the base rate of winners, and whether the model showed skill on its
own held-out data. Columns added (per candle, knowable at its close):

  ml_buy_prob         the win probability the layer acts on: the model's, or the window's
                      base rate when the model has no skill (``hybrid_ai.ml.no_skill``)
  ml_expected_return  p x mean win - (1 - p) x mean loss: the trade's expected net return
  ml_confidence       probability margin x dissimilarity factor, 0 where do_predict != 1
  ml_target_position  fractional Kelly stake for that edge, as a share of the allowed stake
  gate_ml             a prediction, do_predict == 1 and an expected return above the risk
                      level's margin
  ml_rescores         the model has skill and predicted this candle: its expected return
                      also judges the trades already open (``ml_exit_signal``)
  ml_predicted        FreqAI predicted this candle
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybrid_ai import columns as col
from hybrid_ai.frames import join_columns
from hybrid_ai.ml.features import LOSS, WIN
from hybrid_ai.settings import MLSettings

# Per-window values the FreqAI model returns (config freqai.extra_returns_per_train).
SKILL, BASE_RATE = col.ML_SKILL, col.ML_BASE_RATE
MEAN_WIN, MEAN_LOSS = col.ML_MEAN_WIN, col.ML_MEAN_LOSS
RISK_RANK = col.RISK_RANK
TRAINING_VALUES = (SKILL, BASE_RATE, MEAN_WIN, MEAN_LOSS)


def expected_return(p: pd.Series, mean_win: pd.Series, mean_loss: pd.Series) -> pd.Series:
    """Expected net return of a trade that wins ``mean_win`` with probability ``p`` and
    loses ``mean_loss`` (a positive number) otherwise."""
    return p * mean_win - (1.0 - p) * mean_loss


def kelly_position(edge: pd.Series, mean_win: pd.Series, mean_loss: pd.Series,
                   fraction: float, max_stake: float) -> pd.Series:
    """Share of the allowed stake (``max_stake`` of equity) for ``fraction`` x the Kelly
    bet. For a win of W and a loss of L the Kelly share of equity is edge / (W x L)."""
    denominator = (mean_win * mean_loss).where(lambda v: v > 0)
    kelly = edge / denominator
    return (fraction * kelly / max_stake).clip(0.0, 1.0).fillna(0.0)


def add_ml_columns(df: pd.DataFrame, ml: MLSettings, di_threshold: float,
                   max_stake: float) -> pd.DataFrame:
    """Needs FreqAI's ``win`` / ``loss`` / ``do_predict`` columns, the training values and
    the ``risk_rank`` column.

    A candle FreqAI did not predict (it fills such rows with zeros: ``win`` and ``loss``
    both 0) is *no prediction*: NaN in the ML columns (a gap in FreqUI's chart), gate
    closed, ``ml_predicted`` False; never a probability of 0.
    """
    nan = pd.Series(np.nan, index=df.index)
    model_p = df[WIN].astype(float) if WIN in df else nan
    # Real class probabilities sum to 1; FreqAI's zero fill sums to 0.
    predicted = ((model_p + df[LOSS].astype(float)) > 0.5 if LOSS in df
                 else model_p.notna())
    values = {k: df[k].astype(float) if k in df else nan for k in TRAINING_VALUES}
    skilled = values[SKILL] > 0.5
    mean_win, mean_loss = values[MEAN_WIN], values[MEAN_LOSS]
    # Trained payoffs are needed for any expected value; a window without them predicts
    # nothing usable.
    predicted &= (mean_win > 0) & (mean_loss > 0)

    if ml.no_skill == "prior":
        prob = model_p.where(skilled, values[BASE_RATE])
    else:
        prob = model_p.where(skilled)
    prob = prob.where(predicted)
    ok = ((df["do_predict"] == 1) if "do_predict" in df
          else pd.Series(False, index=df.index)) & predicted & prob.notna()
    ev = expected_return(prob, mean_win, mean_loss)

    margin = (2.0 * prob - 1.0).abs()
    if di_threshold > 0 and "DI_values" in df:
        di_factor = (1.0 - df["DI_values"].astype(float) / di_threshold).clip(0.0, 1.0)
    else:
        di_factor = 1.0
    confidence = (margin * di_factor).where(ok, 0.0).fillna(0.0).where(predicted)

    margins = np.asarray(ml.margins_by_rank())
    required = pd.Series(margins[df[RISK_RANK].to_numpy(dtype=int)], index=df.index)
    gate = ok & (ev > required)
    position = kelly_position(ev, mean_win, mean_loss, ml.kelly_fraction,
                              max_stake).clip(lower=ml.min_position)
    # Only a model with skill re-scores open trades (the base rate says nothing about one
    # candle): ml_exit_signal reads this column.
    rescoring = ok & skilled
    return join_columns(df, {
        col.ML_BUY_PROB: prob,
        col.ML_EXPECTED_RETURN: ev,
        col.ML_CONFIDENCE: confidence,
        col.ML_TARGET_POSITION: position.where(gate, 0.0).where(predicted),
        col.GATE_ML: gate.fillna(False).astype(bool),
        col.ML_RESCORES: rescoring.fillna(False).astype(bool),
        col.ML_PREDICTED: predicted.astype(bool),
    })


def ml_exit_signal(df: pd.DataFrame, band: float) -> pd.Series:
    """Exit open trades where a skilled model expects holding to lose more than ``band``.

    Hysteresis: entries need an expected return above a margin >= 0, exits one below
    ``-band``, so a trade is not closed by the same noise that opened it. Computed from the
    columns of ``add_ml_columns`` in the exit hook, so hyperopt can tune ``band``. A candle
    without a usable prediction never exits (missing data must not close trades).
    """
    if col.ML_RESCORES not in df or col.ML_EXPECTED_RETURN not in df:
        return pd.Series(False, index=df.index)
    return df[col.ML_RESCORES].astype(bool) & (df[col.ML_EXPECTED_RETURN] < -band).fillna(False)
