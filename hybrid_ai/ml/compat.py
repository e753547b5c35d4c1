"""Workarounds on freqtrade and pandas internals, each with the version it was written for.

Every function here reaches into a private detail of FreqAI (a data drawer method, a data
kitchen attribute, a hook's default) that a freqtrade release may change. Each names the
version it was written against in ``WRITTEN_AGAINST``; ``unverified`` says which of them
the installed freqtrade (``freqtrade.__version__``) was not checked with, and the model
logs that once per model. On a freqtrade upgrade, check each workaround still applies (a
test named in its docstring shows the breakage) and update its version, or delete it once
freqtrade fixes the behaviour.
"""

from __future__ import annotations

import logging
from typing import Any

import freqtrade
from freqtrade.freqai.data_drawer import FreqaiDataDrawer
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen

from hybrid_ai.frames import utc_dates

logger = logging.getLogger(__name__)

# Workaround -> the freqtrade version it was written against (pandas 3.1 beside it).
WRITTEN_AGAINST = {
    "keep_history_dates_utc": "2026.9",
    "has_candles": "2026.9",
    "unique_classes": "2026.9",
}


def unverified(installed: str = freqtrade.__version__) -> list[str]:
    """The workarounds written against another freqtrade version than ``installed``."""
    return sorted(name for name, version in WRITTEN_AGAINST.items() if version != installed)


def warn_if_unverified() -> None:
    """Log, once per call, which workarounds the installed freqtrade was not checked with."""
    if names := unverified():
        logger.warning("hybrid_ai.ml.compat: %s written against freqtrade %s, running %s: "
                       "check they still apply", ", ".join(names),
                       "/".join(sorted(set(WRITTEN_AGAINST.values()))), freqtrade.__version__)


def keep_history_dates_utc(dd: FreqaiDataDrawer) -> None:
    """Repair the ``date`` column of FreqAI's in-memory candle history after each update.

    Written against freqtrade 2026.9 with pandas 3.1. Live, ``dd.update_historic_data``
    concatenates stored candles (feather: ``ZoneInfo("UTC")``) with fresh ones from the
    exchange (``datetime.timezone.utc``); pandas 3 keeps the two apart and makes ``date`` an
    ``object`` column, and every retraining after the first new candle fails with "Can only
    use .dt accessor with datetimelike values". Wraps the drawer's bound method (a
    monkeypatch of this one instance); ``hybrid_ai.frames.utc_dates`` converts only a
    column that is not datetime already (tests/test_live_units.py shows the breakage).
    """
    update = dd.update_historic_data

    def update_keeping_dates(strategy: Any, dk: FreqaiDataKitchen) -> None:
        update(strategy, dk)
        with dd.history_lock:
            for frames in dd.historic_data.values():
                for frame in frames.values():
                    utc_dates(frame)

    dd.update_historic_data = update_keeping_dates  # type: ignore[method-assign]


def has_candles(len_dataframe_backtest: int, tr_backtest: Any, pair: str) -> bool:
    """False, said once per pair and window, for a backtest window without candles.

    Written against freqtrade 2026.9: ``IFreqaiModel.ensure_data_exists`` only skips an
    empty window with ``freqai_backtest_live_models``; otherwise FreqAI goes on to predict
    an empty frame (a pair delisted, or listed after the window). ``tr_backtest`` is the
    window's ``TimeRange``. True: let FreqAI's own check decide (test_freqtrade_e2e's
    ``test_pairs_with_missing_candles_complete_and_stale_models_are_refused``)."""
    if len_dataframe_backtest == 0:
        logger.warning("%s: no candles from %s to %s (delisted, not listed yet, or a hole): "
                       "no ML predictions there, its gate stays closed", pair,
                       tr_backtest.start_fmt, tr_backtest.stop_fmt)
        return False
    return True


def unique_classes(dk: FreqaiDataKitchen) -> None:
    """De-duplicate ``dk.unique_class_list``, in order, before FreqAI writes the neutral
    predictions of a window whose training failed (``_append_null_backtesting_predictions``).

    Written against freqtrade 2026.9: the list grows by the classes of every window, so
    those predictions get duplicate columns and crash the backtest."""
    dk.unique_class_list = list(dict.fromkeys(dk.unique_class_list))
