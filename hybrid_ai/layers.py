"""The upper layers (ML, oracle) as the execution layer sees them.

``UpperLayers`` turns them into columns of each pair's candles — the oracle's decision in
force at each candle (point-in-time), the risk rank it sets, the ML gate at that risk level
and the approval gate over every deciding layer — re-applies a new oracle decision to the
analysed frames live, and contains their failures: when the entry side breaks, the pair
makes no new entry and one line says why (freqtrade's own wrappers would *allow* the entry
on an exception, hence the catch here); exits and stops never pass through here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from freqtrade.exchange import timeframe_to_minutes
from pandas import DataFrame, Series

from hybrid_ai import columns as col
from hybrid_ai import gates, pauses
from hybrid_ai.ml import features as ml_features
from hybrid_ai.ml.signals import RISK_RANK, TRAINING_VALUES, add_ml_columns
from hybrid_ai.oracle.announce import Announcer
from hybrid_ai.oracle.feed import OracleFeed
from hybrid_ai.settings import PackSettings
from llm_oracle.once import Once

logger = logging.getLogger(__name__)

UPPER_LAYERS = "the upper layers (oracle feed, ML columns)"
# Columns FreqAI leaves on an analysed frame that the upper layers read again live.
_ML_INPUTS = ("date", ml_features.WIN, ml_features.LOSS, "do_predict", "DI_values",
              *TRAINING_VALUES)


class UpperLayers:
    """The ML and oracle layers of one strategy.

    :param oracle: the oracle's feed (None: no oracle)
    :param di_threshold: FreqAI's dissimilarity threshold (``freqai.feature_parameters``)
    :param timeframe: the strategy's candle length
    :param live: dry-run or live (backtests: False)
    :param send: live, freqtrade's ``DataProvider.send_msg``: each new decision the bot
        follows and each trim it causes is announced once (``hybrid_ai.oracle.announce``)
    :param currency: the stake currency, for the announcements
    """

    def __init__(self, settings: PackSettings, oracle: OracleFeed | None, ml_enabled: bool,
                 di_threshold: float, timeframe: timedelta, live: bool,
                 send: Callable[[str], None] | None = None, currency: str = "") -> None:
        self.settings, self.oracle, self.ml_enabled = settings, oracle, ml_enabled
        self.di_threshold, self.timeframe, self.live = di_threshold, timeframe, live
        self.announcer = Announcer(send if live else None)
        self.currency = currency
        self._said = Once(logger)  # entry-side failures and model errors, each said once
        self._unpredicted: dict[str, int] = {}  # pairs whose newest candle has no prediction
        self._oracle_was_valid: bool | None = None

    @classmethod
    def of_strategy(cls, strategy: Any, oracle: OracleFeed | None) -> UpperLayers:
        """The layers of a freqtrade strategy (its config, timeframe, run mode, messaging)."""
        dp = getattr(strategy, "dp", None)
        live = dp is not None and dp.runmode.value in ("dry_run", "live")
        config = strategy.config
        di = config.get("freqai", {}).get("feature_parameters", {}).get("DI_threshold", 0)
        return cls(strategy.settings, oracle, strategy.ml_enabled, di,
                   timedelta(minutes=timeframe_to_minutes(strategy.timeframe)), live,
                   dp.send_msg if live else None, config.get("stake_currency", ""))

    @property
    def oracle_decides(self) -> bool:
        return self.oracle is not None and self.settings.decides("oracle")

    # -- columns ------------------------------------------------------------------------------
    def columns(self, df: DataFrame, pair: str, now: datetime | None) -> DataFrame:
        """The one place the upper layers become columns (``now``: live, the last candle
        stands for now; backtests: None, each candle's close)."""
        df[RISK_RANK] = self.settings.risk_level.rank
        if self.oracle is not None:
            df = self.oracle.merge(df, pair, self.timeframe, now=now)
            if self.oracle_decides:
                df[RISK_RANK] = df[col.ORACLE_RISK_LEVEL]
        if self.ml_enabled:
            df = add_ml_columns(df, self.settings.ml, self.di_threshold,
                                self.settings.limits.max_stake_per_trade)
            if self.live:
                self._report_predictions(pair, df[col.ML_PREDICTED])
        if any(p.pair == pair for p in self.settings.pair_pauses):
            df[col.PAUSED] = pauses.paused(df["date"], pair, self.settings.pair_pauses)
            df[col.GATE_PAUSE] = ~df[col.PAUSED]
        return gates.approve(df, self.settings.observe_only)

    def gated(self, df: DataFrame, pair: str, now: datetime | None) -> DataFrame:
        """``columns``, failing closed: on any error the TA columns and exits stay and the
        entries are gated shut."""
        try:
            return self.columns(df, pair, now)
        except Exception as exc:
            self.fault(UPPER_LAYERS, pair, exc)
            df[gates.APPROVED] = False
            return df

    def reapply(self, frame: DataFrame, pair: str, now: datetime) -> None:
        """Recompute the upper layers' columns of an analysed frame in place (its last
        candle takes the decision in force now); the caller re-derives the signals."""
        inputs = [c for c in _ML_INPUTS if c in frame]
        try:
            updated = self.columns(frame[inputs].copy(), pair, now)
        except Exception as exc:  # fail closed: no entries from a frame we cannot gate
            self.fault(UPPER_LAYERS, pair, exc)
            updated = frame[inputs].assign(**{gates.APPROVED: False})
        for column in updated.columns.drop(inputs):
            frame[column] = updated[column].to_numpy()

    def reapply_all(self, frames: dict[str, DataFrame], now: datetime,
                    *resignal: Callable[[DataFrame], None]) -> None:
        """``reapply`` to every analysed frame the oracle's columns are on, then the
        signal functions (entries, exits) whose input columns it has."""
        for pair, frame in frames.items():
            if frame.empty or col.ORACLE_FOCUS not in frame:
                continue
            self.reapply(frame, pair, now)
            for column, signal in zip((col.TA_SIGNAL, col.TA_EXIT), resignal, strict=False):
                if column in frame:
                    signal(frame)

    # -- live ---------------------------------------------------------------------------------
    def refresh(self, now: datetime) -> bool:
        """Re-read the oracle's journal (one stat call when unchanged); live, say once when
        a valid decision starts or stops being in force. True: a new decision arrived."""
        if self.oracle is None:
            return False
        changed = self.oracle.refresh()
        valid = self.oracle.at(now).valid
        if self.live and valid != self._oracle_was_valid:
            observed = "" if self.oracle_decides else " (observed only: hybrid_ai.observe_only)"
            if valid:
                logger.info("oracle: valid decision in force, %s", "following it"
                            if self.oracle_decides else "observed, not followed")
            else:
                logger.warning("oracle: no valid decision (stale, missing or unreadable "
                               "journal): conservative mode within the hard limits%s", observed)
            self._oracle_was_valid = valid
        if self.live and valid and self.oracle_decides:
            self.announcer.decision(self.oracle.at(now))
        return changed

    def announce_trim(self, pair: str, tag: str, stake_before: float, stake_after: float,
                      now: datetime) -> None:
        """Live: tell the user once that the oracle's decision in force trimmed a trade."""
        if self.live and self.oracle is not None:
            self.announcer.trim(pair, tag, stake_before, stake_after, self.oracle.at(now),
                                self.currency)

    def predict(self, start: Callable[[], DataFrame], df: DataFrame, pair: str,
                identifier: str) -> DataFrame:
        """FreqAI's predictions (``start``); live, a broken model closes only this pair's
        ML gate (no prediction columns: ``gate_ml`` False) while its TA columns, exits and
        stops keep working. Backtests fail loudly."""
        if not self.live:
            return start()
        try:
            result = start()
        except Exception as exc:  # any model failure: contained to this pair
            self._said.say(("ml", pair), (
                f"{pair}: ML layer unavailable ({type(exc).__name__}: {exc}). New entries for "
                "this pair are blocked; exits and stops keep working. FreqAI retrains it "
                "within freqai.live_retrain_hours; to retrain now, stop the bot and delete "
                f"user_data/models/{identifier}/sub-train-{pair.split('/')[0]}_*."),
                logging.ERROR)
            return df
        self._said.clear(("ml", pair), f"{pair}: ML layer predicting again")
        return result

    # -- failures -----------------------------------------------------------------------------
    def fault(self, where: str, pair: str, exc: Exception) -> None:
        """Fail closed: no new entry for ``pair``; one error line per distinct problem (not
        one per loop)."""
        problem = f"{where}: {type(exc).__name__}: {exc}"
        if problem not in self._said:  # once per distinct problem, whichever pair hit it
            self._said.say(problem, (
                f"{pair}: no new entries while {where} failed ({type(exc).__name__}: {exc}). "
                "Exits and stops keep working. Fix the cause named here; the pack retries "
                "every candle."), logging.ERROR)

    def _report_predictions(self, pair: str, predicted: Series) -> None:
        """Live: one line when the newest candle of a pair has no ML prediction (its gate
        closed), one when predictions are back; not one per loop."""
        missing = not bool(predicted.iloc[-1]) if len(predicted) else False
        if missing and pair not in self._unpredicted:
            self._unpredicted[pair] = int((~predicted.tail(288)).sum())
            logger.warning("%s: no ML prediction for the newest candle (%d of the last 288 "
                           "lack one): ML gate closed, no entries until FreqAI predicts",
                           pair, self._unpredicted[pair])
        elif not missing and pair in self._unpredicted:
            del self._unpredicted[pair]
            logger.info("%s: ML predictions back", pair)
