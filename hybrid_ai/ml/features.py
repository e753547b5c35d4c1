"""FreqAI feature and target definitions of the ML layer.

FreqAI calls these (through the strategy's hooks) on every timeframe and correlated pair
it is configured for. Every feature uses candles up to its own row; only the targets
look ahead (the trade's outcome), and FreqAI uses targets for training alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import talib.abstract as ta

from hybrid_ai.frames import join_columns as _join
from hybrid_ai.ml.labels import ExitRules, outcome_frame

# FreqAI's label columns ("&" prefix) and the classifier's classes.
WIN_LABEL = "&s-win"  # the class: did the trade win after fees?
RETURN_LABEL = "&-trade_return"  # its net return (the model reads payoffs from it)
WIN, LOSS = "win", "loss"


def corr_pairs_problem(config: dict[str, Any]) -> str | None:
    """Why FreqAI's correlated pairs cannot work with this config (None: they can).

    ``freqai.feature_parameters.include_corr_pairlist`` names pairs whose candles every
    pair's features read. Quoted in another currency than ``stake_currency`` (the shipped
    BTC/USDT and ETH/USDT under a USDC stake), they are not in the data a user downloads for
    the whitelist: every training then fails with freqtrade's "you likely did not download
    enough data", the run makes no trade and exits 0 (freqtrade #7039, #11707). The message
    names the key and the pairs to put there instead.
    """
    stake = str(config.get("stake_currency") or "")
    corr = (config.get("freqai", {}).get("feature_parameters", {})
            .get("include_corr_pairlist") or [])
    foreign = [p for p in corr if p.split("/")[-1].split(":")[0] != stake]
    if not stake or not foreign:
        return None
    respelled = [f"{p.split('/')[0]}/{stake}" for p in corr]
    return (f"freqai.feature_parameters.include_corr_pairlist names {foreign}, quoted in "
            f"another currency than stake_currency {stake!r}: FreqAI would find no candles "
            f"for them and train nothing (0 trades). Set it to pairs quoted in {stake}, e.g. "
            f"{respelled}, or to [] for no correlated pairs")


def expand_all(df: pd.DataFrame, period: int) -> pd.DataFrame:
    """Features computed for each indicator period, timeframe and correlated pair."""
    sma = ta.SMA(df, timeperiod=period)
    bb = ta.BBANDS(df, timeperiod=period, nbdevup=2.0, nbdevdn=2.0)
    return _join(df, {
        "%-rsi-period": ta.RSI(df, timeperiod=period),
        "%-mfi-period": ta.MFI(df, timeperiod=period),
        "%-adx-period": ta.ADX(df, timeperiod=period),
        "%-roc-period": ta.ROC(df, timeperiod=period),
        "%-close_sma-period": df["close"] / sma - 1.0,
        "%-bb_width-period": (bb["upperband"] - bb["lowerband"]) / bb["middleband"],
        "%-bb_pos-period": (df["close"] - bb["lowerband"]) / (bb["upperband"] - bb["lowerband"]),
        "%-natr-period": ta.NATR(df, timeperiod=period),
        "%-relative_volume-period": df["volume"] / df["volume"].rolling(period).mean(),
    })


def expand_basic(df: pd.DataFrame) -> pd.DataFrame:
    """Features computed for each timeframe and correlated pair (no period)."""
    return _join(df, {
        "%-pct-change": df["close"].pct_change(),
        "%-range": (df["high"] - df["low"]) / df["close"],
    })


def standard(df: pd.DataFrame) -> pd.DataFrame:
    """Features computed once, on the base timeframe of the traded pair."""
    hour = df["date"].dt.hour + df["date"].dt.minute / 60.0
    macd = ta.MACD(df, fastperiod=12, slowperiod=26, signalperiod=9)
    return _join(df, {
        "%-hour_sin": np.sin(2 * np.pi * hour / 24.0),
        "%-hour_cos": np.cos(2 * np.pi * hour / 24.0),
        "%-day_of_week": (df["date"].dt.day_of_week + 1) / 7.0,
        "%-macdhist_norm": macd["macdhist"] / df["close"],
    })


def targets(df: pd.DataFrame, rules: ExitRules, exit_signal: pd.Series) -> pd.DataFrame:
    """The ML layer's two labels (``hybrid_ai.ml.labels``): the net return of a trade entered
    after each candle under the strategy's exits (``&-trade_return``) and whether it won
    (``&s-win``: ``win`` / ``loss``). NaN where the trade would end past the data."""
    out = outcome_frame(df, exit_signal, rules)
    ret = out["ret"]
    win = pd.Series(np.where(ret > 0.0, WIN, LOSS), index=df.index, dtype=object)
    return _join(df, {RETURN_LABEL: ret, WIN_LABEL: win.where(ret.notna())})
