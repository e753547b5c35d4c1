"""Turn FreqAI's prediction columns into the ML layer's signals and its gate.

Columns added (per candle, knowable at its close):
  ml_buy_prob         calibrated probability that the trade clears its costs (FreqAI's ``up``)
  ml_confidence       probability margin x dissimilarity factor, 0 where FreqAI says do_predict=0
  ml_target_position  fraction of the allowed stake, 0 where the gate is closed
  gate_ml             do_predict == 1 and ml_buy_prob above the risk level's threshold
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybrid_ai.frames import join_columns
from hybrid_ai.ml.features import DOWN, UP
from hybrid_ai.settings import MLSettings

RISK_RANK = "risk_rank"


def add_ml_columns(df: pd.DataFrame, ml: MLSettings, di_threshold: float) -> pd.DataFrame:
    """Needs FreqAI's ``up`` / ``do_predict`` columns and the ``risk_rank`` column.

    A candle FreqAI did not predict (it fills such rows with zeros: ``up`` and ``down`` both
    0) is *no prediction*: NaN in the ML columns (a gap in FreqUI's chart), gate closed,
    ``ml_predicted`` False; never a probability of 0.
    """
    prob = df[UP].astype(float) if UP in df else pd.Series(np.nan, index=df.index)
    # Real class probabilities sum to 1; FreqAI's zero fill sums to 0.
    predicted = (prob + df[DOWN].astype(float)) > 0.5 if DOWN in df else prob.notna()
    prob = prob.where(predicted)
    ok = ((df["do_predict"] == 1) if "do_predict" in df
          else pd.Series(False, index=df.index)) & predicted
    margin = (2.0 * prob - 1.0).abs()
    if di_threshold > 0 and "DI_values" in df:
        di_factor = (1.0 - df["DI_values"].astype(float) / di_threshold).clip(0.0, 1.0)
    else:
        di_factor = 1.0
    confidence = (margin * di_factor).where(ok, 0.0).fillna(0.0).where(predicted)

    thresholds = np.asarray(ml.thresholds_by_rank())
    threshold = pd.Series(thresholds[df[RISK_RANK].to_numpy(dtype=int)], index=df.index)
    gate = ok & (prob > threshold)
    # Position grows with the edge over the threshold and with confidence: a bare pass
    # gets a quarter of the allowed stake, a sure call the whole of it.
    edge = ((prob - threshold) / (1.0 - threshold)).clip(0.0, 1.0)
    position = (0.25 + 0.75 * edge) * (0.5 + 0.5 * confidence)
    return join_columns(df, {
        "ml_buy_prob": prob,
        "ml_confidence": confidence,
        "ml_target_position": position.where(gate, 0.0).fillna(0.0).clip(0.0, 1.0)
        .where(predicted),
        "gate_ml": gate.fillna(False).astype(bool),
        "ml_predicted": predicted.astype(bool),
    })
