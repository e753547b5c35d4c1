"""The report's variants, each defined once: its name (its row in every table of the report),
its config overlay, the span it backtests and what it tests. ``lab.ablation`` plans and runs
them; ``lab.acceptance``, the report and the walk-forward refer to them by these constants,
never by their names.

The earlier defaults first, 5m oversold recovery held a day at most
(``user_data/presets/oversold-recovery.json``, its own FreqAI models):

* ``TA``            ``ta``: technical entries; ML and oracle *observed* (computed, not
                    deciding), so the report can say which of these entries each layer would
                    block;
* ``TA_ML``         ``ta+ml``: the ML gate and sizing decide;
* ``TA_ML_ORACLE``  ``ta+ml+oracle``: plus the oracle, replayed from a heuristic backfill
                    (point-in-time);
* ``TA_ML_LLM``     ``ta+ml+llm``: plus the oracle replayed from a journal an LLM wrote, when
                    one is given;
* ``TA_ML_WIDE``    ``ta+ml wide``: the ML gate choosing among a wider candidate set: every
                    candle of a 1h uptrend (entry family ``trend``) instead of the technical
                    signal's;
* ``WALK_FORWARD_LATE`` / ``FROZEN_LATE``  ``walk-forward (late)`` / ``frozen (late)``: the
  last weeks twice, both derived from ``TA_ML`` by ``late``: once retrained every window as
  usual, once with the models frozen at the late span's start
  (``hybrid_ai.ml.frozen_models``);
* the trend baseline (``BASELINE``): what a user would run instead,
  ``strategies/TrendBaseline.py`` (200-day SMA trend rule, inverse-volatility stakes, textbook
  parameters), through freqtrade too (``lab.ablation.trend_baseline``).

And the shipped defaults, time-series momentum over days (``hybrid_ai.momentum``), with
parameters fixed before any run (a 30-day average, the top 3 of the whitelist by 30-day return,
a week's holding at most), each layer added in turn as above:

* ``MOM``                 ``mom``: momentum alone (ML and oracle off);
* ``MOM_TOP3``            ``mom top-3``: only the three strongest pairs (the cross-sectional
                          gate);
* ``MOM_TOP3_ML``         ``mom top-3 +ml``: FreqAI meta-labels these entries, trained on the
                          outcome of a momentum trade held up to a week (its label follows the
                          family's exits and horizon); the oracle observed: the shipped
                          defaults;
* ``MOM_TOP3_ML_ORACLE``  ``mom top-3 +ml+oracle``: plus the oracle deciding (heuristic
                          backfill).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from freqtrade.misc import deep_merge_dicts

from lab.project import OVERSOLD_PRESET, STRATEGY, Preset

Span = Literal["full", "late"]  # the report's whole timerange, or its last weeks only
LATE_SUFFIX = " (late)"  # the name of a variant over the late span: "<name> (late)"


@dataclass(frozen=True)
class Inputs:
    """What the variants' overlays are built from, known once a report is planned.

    ``heuristic_journal``: the heuristic backfill's ``journal.jsonl``; ``llm_journal``: an
    LLM's journal (``--llm-journal``) or None; ``models_dir``: FreqAI's models
    (``<userdir>/models``); ``identifier``: the oversold preset's FreqAI identifier;
    ``late_start``: the late span's first day, ``YYYYMMDD``."""

    heuristic_journal: Path
    llm_journal: Path | None
    models_dir: Path
    identifier: str
    late_start: str


Overlay = Callable[[Inputs], dict[str, Any]]


@dataclass(frozen=True)
class VariantDef:
    """One variant of the report: ``name`` (its row), ``description``, ``overlay`` (its own
    config keys, built from the plan's ``Inputs``), ``span``, the strategy ``params`` by
    hyperopt space (freqtrade's params file beside a copy of the strategy; None: as shipped),
    the ``preset`` its overlay goes on top of (None: the shipped config) and whether it needs
    an LLM journal (it runs only when one is given)."""

    name: str
    description: str
    overlay: Overlay
    span: Span = "full"
    params: dict[str, dict[str, Any]] | None = None
    preset: Preset | None = None
    needs_llm: bool = False
    strategy: str = STRATEGY

    @property
    def late(self) -> bool:
        """Backtests the late span only (the frozen-model check)."""
        return self.span == "late"


def oracle_overlay(journal: Path, observe: list[str] | None = None) -> dict[str, Any]:
    """The oracle replayed from ``journal``, deciding unless it is in ``observe`` (the
    shipped config observes it: every variant says which layers decide)."""
    return {"hybrid_ai": {"oracle": {"enabled": True, "source": str(journal.resolve())},
                          "observe_only": list(observe or [])}}


def late(base: VariantDef, name: str, description: str,
         extra: Overlay | None = None) -> VariantDef:
    """``base`` over the late span only, named ``<name> (late)``, with ``extra`` (if any)
    merged on top of ``base``'s overlay (its keys win)."""

    def overlay(inputs: Inputs) -> dict[str, Any]:
        own = base.overlay(inputs)
        return deep_merge_dicts(extra(inputs), own) if extra else own

    return replace(base, name=f"{name}{LATE_SUFFIX}", description=description,
                   overlay=overlay, span="late")


def frozen_identifier(identifier: str) -> str:
    """The FreqAI identifier of the frozen-model run (its own models folder)."""
    return f"{identifier}-frozen"


# The earlier defaults, 5m oversold recovery held a day at most, kept as a preset a user can
# run (see the README); the report's `ta...` variants run exactly it.
OVERSOLD = OVERSOLD_PRESET.params
WIDE = {"buy": {**OVERSOLD["buy"], "buy_family": "trend"}}
# The shipped defaults are momentum (30-day average and ranking, the top 3, a week at most):
# its variants run the strategy as shipped, `mom` only without the top-k gate.
MOMENTUM_NO_TOP = {"buy": {"buy_top_k": 0}}


def _no_oracle(_: Inputs) -> dict[str, Any]:
    return {"hybrid_ai": {"oracle": {"enabled": False}}}


def _no_ml_no_oracle(_: Inputs) -> dict[str, Any]:
    return {"freqai": {"enabled": False}, "hybrid_ai": {"oracle": {"enabled": False}}}


def _frozen_models(inputs: Inputs) -> dict[str, Any]:
    """The models of ``inputs.identifier`` frozen at the late span's start; nothing new to
    save (the frozen model is loaded again for every window)."""
    trained_before = datetime.strptime(inputs.late_start, "%Y%m%d").replace(tzinfo=UTC)
    return {"freqai": {"identifier": frozen_identifier(inputs.identifier),
                       "save_backtest_models": False},
            "hybrid_ai": {"ml": {"frozen_models": {
                "dir": str((inputs.models_dir / inputs.identifier).resolve()),
                "trained_before": trained_before.isoformat()}}}}


def _llm_oracle(inputs: Inputs) -> dict[str, Any]:
    if inputs.llm_journal is None:
        raise ValueError("the ta+ml+llm variant needs an LLM journal (--llm-journal)")
    return oracle_overlay(inputs.llm_journal)


def _oversold(name: str, description: str, overlay: Overlay,
              params: dict[str, dict[str, Any]] = OVERSOLD, **kw: Any) -> VariantDef:
    return VariantDef(name, description, overlay, params=params, preset=OVERSOLD_PRESET, **kw)


TA_ML = _oversold("ta+ml", "TA entries gated and sized by the ML layer", _no_oracle)
TA = _oversold("ta", "TA entries only (ML and oracle observed, not deciding)",
               lambda i: oracle_overlay(i.heuristic_journal, ["ml", "oracle"]))
TA_ML_ORACLE = _oversold("ta+ml+oracle",
                         "ML plus the oracle (heuristic provider, backfilled point-in-time)",
                         lambda i: oracle_overlay(i.heuristic_journal))
TA_ML_WIDE = _oversold("ta+ml wide", "the ML gate choosing among every candle of a 1h uptrend "
                       "(entry family 'trend') instead of the technical signal's", _no_oracle,
                       params=WIDE)
TA_ML_LLM = _oversold("ta+ml+llm", "ML plus the oracle replayed from the LLM's journal "
                      "(--llm-journal)", _llm_oracle, needs_llm=True)
MOM = VariantDef("mom", "time-series momentum: long while the hourly close is above its 30-day "
                 "average, out below it, a week at most", _no_ml_no_oracle,
                 params=MOMENTUM_NO_TOP)
MOM_TOP3 = VariantDef("mom top-3", "momentum, only the 3 strongest pairs by 30-day return (out "
                      "when one falls below the top 6)", _no_ml_no_oracle)
MOM_TOP3_ML = VariantDef("mom top-3 +ml", "the shipped defaults: momentum top-3 meta-labelled "
                         "by its ML models (label: a momentum trade held up to a week), the "
                         "oracle observed", lambda i: oracle_overlay(i.heuristic_journal,
                                                                    ["oracle"]))
MOM_TOP3_ML_ORACLE = VariantDef("mom top-3 +ml+oracle", "momentum top-3, ML and the oracle "
                                "deciding (heuristic backfill)",
                                lambda i: oracle_overlay(i.heuristic_journal))
WALK_FORWARD_LATE = late(TA_ML, "walk-forward", "TA+ML on the late period, retrained every "
                         "window")
FROZEN_LATE = late(TA_ML, "frozen", "TA+ML on the late period with the models frozen at its "
                   "start", extra=_frozen_models)

# Every variant of the ablation, in the order they run and their rows appear (the trend
# baseline, ``lab.ablation.trend_baseline``, runs last).
ABLATION = (TA_ML, TA, TA_ML_ORACLE, TA_ML_WIDE, TA_ML_LLM, MOM, MOM_TOP3, MOM_TOP3_ML,
            MOM_TOP3_ML_ORACLE, WALK_FORWARD_LATE, FROZEN_LATE)

BASELINE = "trend baseline"
BASELINE_STRATEGY = "TrendBaseline"
BASELINE_SMA_DAYS = 200  # the textbook moving average


def baseline_name(sma_days: int | None = None) -> str:
    """The trend baseline's row: ``trend baseline``, or ``trend baseline (SMA <n> d)`` when
    its moving average was shortened from the textbook 200 days."""
    days = sma_days or BASELINE_SMA_DAYS
    return BASELINE if days == BASELINE_SMA_DAYS else f"{BASELINE} (SMA {days} d)"


# -- the trend core (strategies/TrendCore.py, hybrid_ai.trend_core; issue #32) -----------------
# The alternatives, declared on 2026-12-07 before any of them ran (only the published /N split
# had run, once, the session before); each is a trial of the Deflated Sharpe. All on 1h
# candles, one slot per pair (``lab.core_study`` sets max_open_trades), ML and oracle off.
# The protections' levels are on the core's time scale (daily trends of pairs whose daily
# volatility is 3-5 %), fixed here, not tuned:
CORE_STOP = -0.20  # the hard stop, 20 % below the average entry
CORE_TRAIL = {"trailing_stop": True, "trailing_stop_positive": 0.25,
              "trailing_stop_positive_offset": 0.30, "trailing_only_offset_is_reached": True}
CORE_TP = {"gain": 0.50, "fraction": 1 / 3}  # a third sold once at +50 %
# The rule that picks the shipped protections, declared with them: a protection is on by
# default only if, over the history, it raises the core's marked Sharpe in every calendar
# year and does not deepen its maximum drawdown; otherwise it stays off (available).
CORE_STRATEGY = "TrendCore"


def _core(extra: dict[str, Any] | None = None, sizing: str = "pooled",
          partial_tp: dict[str, float] | None = None) -> Overlay:
    def overlay(_: Inputs) -> dict[str, Any]:
        section: dict[str, Any] = {"sizing": sizing}
        if partial_tp:
            section["partial_tp"] = partial_tp
        return {"timeframe": "1h", "stake_amount": "unlimited",
                "freqai": {"enabled": False}, "hybrid_ai": {"oracle": {"enabled": False}},
                "trend_core": section, **(extra or {})}

    return overlay


def _core_variant(name: str, description: str, overlay: Overlay) -> VariantDef:
    return VariantDef(name, description, overlay, strategy=CORE_STRATEGY)


CORE_PUBLISHED = _core_variant("core published", "the published split: each pair share x 25 % "
                               "/ sigma / N, the flat pairs' budget in cash",
                               _core(sizing="published"))
CORE = _core_variant("core", "the core as pooled: the flat pairs' budget to the pairs that trend "
                     "(capped at 2/N each)", _core())
CORE_HARD_STOP = _core_variant("core +stop", "plus a hard stop 20 % below the entry",
                               _core({"stoploss": CORE_STOP}))
CORE_TRAILING = _core_variant("core +trail", "plus a trailing stop 25 % off the high, armed at "
                              "+30 %", _core(CORE_TRAIL))
CORE_PARTIAL_TP = _core_variant("core +tp", "plus a partial take-profit: a third once at +50 % "
                                "(the rest held, never bought back)", _core(partial_tp=CORE_TP))
CORE_ALL = _core_variant("core +stop+trail+tp", "plus all three protections",
                         _core({"stoploss": CORE_STOP, **CORE_TRAIL}, partial_tp=CORE_TP))
# Declared on 2026-12-07 after the six above had run, before it ran itself: the core with
# the heuristic oracle deciding (backfilled point-in-time), judged against the core.
CORE_ORACLE = _core_variant(
    "core +oracle", "the core steered by the oracle (heuristic backfill): its risk level "
    "scales the volatility target, its focus restricts what is added",
    lambda i: deep_merge_dicts(oracle_overlay(i.heuristic_journal), _core()(i)))
# Declared on 2026-12-07 after the seven above had run and after a throwaway sketch of it on
# daily closes of the same history (so not out of sample here; the last of the eight
# alternatives the issue allows): the published split with the whole book scaled to the
# paper's volatility target (hybrid_ai.trend_core: "book_target").
CORE_BOOK_TARGET = _core_variant(
    "core book target", "the published split, the whole book scaled by min(2, 25 % / its own "
    "90-day volatility)", _core(sizing="book_target"))
# In the order they run; every one counts as a trial.
CORE_ALTERNATIVES = (CORE_PUBLISHED, CORE, CORE_HARD_STOP, CORE_TRAILING, CORE_PARTIAL_TP,
                     CORE_ALL, CORE_ORACLE, CORE_BOOK_TARGET)
# The rule that picks the shipped sizing, declared with the last alternative, before it
# ran: of the three sizings, the highest Deflated Sharpe (over all eight) among those
# meeting the bars on the history: maximum drawdown <= 25 % and <= half the
# basket's, time-weighted exposure >= 20 %; none meeting them: the pooled core stays.
CORE_SIZINGS = (CORE_PUBLISHED, CORE, CORE_BOOK_TARGET)
SIZING_BARS = {"max_drawdown": 0.25, "of_basket_drawdown": 0.5, "exposure": 0.20}
CORE_PROTECTIONS = (CORE_HARD_STOP, CORE_TRAILING, CORE_PARTIAL_TP)
