"""Every column and tag the pack writes, by name: the one place their spelling lives.

Columns land on each pair's analysed frame (FreqUI plots them, ``freqtrade backtesting
--export signals`` exports them, ``make report`` reads them back); tags name entries
(``enter_tag``), exits (``exit_tag``) and partial exits (the order's ``ft_order_tag``).
Outside this module only the plot config (``hybrid_ai.plot``) spells them out, since
freqtrade's ``plot_config`` is itself a table of column names. FreqAI's own columns
(``do_predict``, ``DI_values``, the ``&``-labels of ``hybrid_ai.ml.features``) are named by
FreqAI.
"""

from __future__ import annotations

# --- the technical layer ------------------------------------------------------------------
TA_SIGNAL = "ta_signal"  # 0/1: the entry family's signal, before the upper layers' gates
TA_EXIT = "ta_exit"  # 0/1: the family's own exits (any of its exit signals)
INFORMATIVE = "_1h"  # freqtrade's suffix of the 1h informative columns merged onto 5m


def trend_sma(days: int) -> str:
    """The ``days``-day average of hourly closes, as merged from the 1h candles."""
    return f"sma_{days}d{INFORMATIVE}"


def trend_rank(days: int) -> str:
    """The pair's rank (1 = strongest) by ``days``-day return in the whitelist, 1h merge."""
    return f"rank_{days}d{INFORMATIVE}"


# --- the gates (hybrid_ai.gates): one boolean column per layer, ANDed ---------------------
GATE_PREFIX = "gate_"
APPROVED = "gate_approved"
GATE_ML = "gate_ml"
GATE_ORACLE = "gate_oracle"
GATE_PAUSE = "gate_pair_pause"
RISK_RANK = "risk_rank"  # the risk level in force (0 conservative .. 2 aggressive)

# --- the ML layer (hybrid_ai.ml.signals) --------------------------------------------------
ML_BUY_PROB = "ml_buy_prob"  # calibrated probability that the trade wins after fees
ML_EXPECTED_RETURN = "ml_expected_return"  # its expected net return (fraction)
ML_CONFIDENCE = "ml_confidence"
ML_TARGET_POSITION = "ml_target_position"  # share of the allowed stake, 0..1
ML_RESCORES = "ml_rescores"  # a skilled model re-scores open trades here
ML_PREDICTED = "ml_predicted"  # FreqAI predicted this candle
ML_EXIT = "ml_exit"  # 0/1 column and exit tag: a skilled model expects holding to lose
# Per-window values the FreqAI model returns (config freqai.extra_returns_per_train).
ML_SKILL, ML_BASE_RATE = "ml_skill", "ml_base_rate"
ML_MEAN_WIN, ML_MEAN_LOSS = "ml_mean_win", "ml_mean_loss"

# --- the oracle (hybrid_ai.oracle.feed) ---------------------------------------------------
ORACLE_VALID = "oracle_valid"
ORACLE_RISK_LEVEL = "oracle_risk_level"
ORACLE_FOCUS = "oracle_focus"
ORACLE_MAX_EXPOSURE = "oracle_max_exposure"
ORACLE_EXIT = "oracle_exit"  # column and exit tag: the decision's bias says get out

# --- pauses (hybrid_ai.pauses) ------------------------------------------------------------
PAUSED = "pair_paused"
PAUSE_EXIT = "pair_pause"  # exit tag (and the gate's layer name, not a layer in entry tags)

# --- exit and partial-exit tags -----------------------------------------------------------
REVERSAL = "ta_reversal"  # MACD crosses down with RSI stretched (the 5m families)
TREND_BREAK = "trend_break"  # the close falls below its trend (momentum)
RANK_DROP = "rank_drop"  # the pair fell out of the whitelist's top 2 k
PARTIAL_TP = "partial_tp"
DERISK = "oracle_derisk"
OVERNIGHT = "overnight_trim"
