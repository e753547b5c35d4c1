"""The report's figures, computed from a finished run's saved files only: freqtrade's results
per variant, FreqAI's saved predictions, the oracle's journals and the candles (for buy &
hold, the ML labels and the data holes). Nothing here runs freqtrade, so a run's figures can
be computed again from its folder (``python -m lab.report --from-run``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lab import acceptance as bar
from lab import ml_offline, ml_quality, preamble, robustness
from lab import report_metrics as rm
from lab import report_verdicts as say
from lab.ablation import Variant
from lab.journal_stats import compare_journals, journal_stats
from lab.project import OVERSOLD_PRESET, load_config
from lab.report_plan import ReportPlan, RunDirError, RunRecord, finished_variants
from lab.variants import (
    FROZEN_LATE,
    MOM_TOP3_ML,
    TA,
    TA_ML,
    TA_ML_LLM,
    TA_ML_ORACLE,
    WALK_FORWARD_LATE,
    frozen_identifier,
)

BASKET, BTC = "buy & hold basket", "buy & hold BTC"


@dataclass
class Figures:
    """Everything the report states. Tables (``pd.DataFrame``, one row each): ``table``
    (every full-range variant, then the basket and BTC: ``rm.variant_row``'s columns),
    ``late_table`` (the late variants), ``attribution``, ``trims``, ``exits``, ``accepted``
    (the acceptance bar, per family), ``yearly`` (``robustness.per_year``), ``answers`` (who
    answered each oracle variant's sessions). ``curves``: daily equity by row name (quote
    currency); ``exposure``: the oracle variant's exposure (share of the balance) or None.
    ``wall_s``: seconds the report took (None: not recorded), ``walls``: per variant."""

    plan: ReportPlan
    freqai: dict[str, Any]
    table: pd.DataFrame
    late_table: pd.DataFrame
    attribution: pd.DataFrame
    trims: pd.DataFrame
    exits: pd.DataFrame
    accepted: pd.DataFrame
    yearly: pd.DataFrame
    answers: pd.DataFrame
    deflated: dict[str, dict[str, float]]
    trials: int
    baseline: str
    probe: dict[str, float] | None
    quality: ml_quality.Quality
    late_line: str
    holes: preamble.Holes
    said: list[str]
    curves: dict[str, pd.Series]
    exposure: pd.Series | None
    analyses: dict[str, str] | None
    wall_s: float | None
    walls: dict[str, float | None]


def ml_exits(run: rm.Run, datadir: Path, pairs: list[str], strat: Any) -> pd.DataFrame:
    """``rm.exit_attribution`` of the run's ml_exit trades, with ``strat``'s exits (the
    strategy as the run had it, ``lab.ml_offline.strategy``)."""
    from freqtrade.data.history import load_pair_history

    candles, reversals = {}, {}
    for pair in pairs:
        c = load_pair_history(pair=pair, timeframe="5m", datadir=datadir)
        candles[pair] = c
        reversals[pair] = strat.technical_exit(c)
    return rm.exit_attribution(run, candles, reversals, strat.exit_rules())


def variant_table(plan: ReportPlan, main: list[rm.Run]) -> tuple[pd.DataFrame,
                                                                 dict[str, pd.Series]]:
    """The full-range runs' rows and buy & hold's (the basket of the plan's pairs, BTC alone)
    over the first run's span, and the daily equity curves of them all."""
    start, end = main[0].start, main[0].end
    basket = rm.buy_and_hold(plan.datadir, plan.pairs, start, end)
    btc = rm.buy_and_hold(plan.datadir, ["BTC/USDT"], start, end)
    table = pd.DataFrame([rm.variant_row(r) for r in main]
                         + [rm.benchmark_row(BASKET, basket), rm.benchmark_row(BTC, btc)])
    curves = {r.name: rm.daily_equity(r) for r in main}
    curves[BASKET] = basket * main[0].starting_balance
    curves[BTC] = btc * main[0].starting_balance
    return table, curves


def oversold_identifier() -> str:
    """The FreqAI identifier of the oversold variants' models (the preset's)."""
    return load_config([OVERSOLD_PRESET.config_file])["freqai"]["identifier"]


def ml_scores(plan: ReportPlan, config: dict[str, Any], runs: dict[str, rm.Run],
              strat: Any) -> tuple[ml_quality.Quality, dict[str, dict[str, float]]]:
    """The oversold variants' models scored on their own label (``strat``: the strategy as
    they ran it), and the pooled scores by family (the momentum family's: the shipped
    config's models on the shipped label)."""
    quality = ml_quality.evaluate(plan.models_dir / oversold_identifier(), plan.datadir,
                                  plan.pairs, strat=strat)
    family_ml = {bar.FAMILIES[0].name: quality.overall}
    if MOM_TOP3_ML.name in runs:
        mom = ml_quality.evaluate(plan.models_dir / config["freqai"]["identifier"],
                                  plan.datadir, plan.pairs)
        family_ml[bar.FAMILIES[1].name] = mom.overall
    return quality, family_ml


def acceptance(table: pd.DataFrame, curves: dict[str, pd.Series], main: list[rm.Run],
               family_ml: dict[str, dict[str, float]],
               baseline: str) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """The acceptance bar of every family whose technical variant ran, and each full-range
    variant's Deflated Sharpe (the variants as the trials)."""
    strategies = [r.name for r in main]
    trial_var = robustness.annual_to_period_var(
        [table.set_index("variant").loc[n, "sharpe"] for n in strategies])
    deflated = {n: robustness.deflated_sharpe(curves[n].pct_change().dropna(),
                                              len(strategies), trial_var) for n in strategies}
    accepted = pd.concat([bar.criteria(table, family_ml[f.name], baseline, deflated, f)
                          .assign(family=f.name) for f in bar.FAMILIES
                          if f.ta.name in table["variant"].values], ignore_index=True)
    return accepted, deflated


def oracle_answers(plan: ReportPlan, runs: dict[str, rm.Run], start: pd.Timestamp,
                   end: pd.Timestamp) -> tuple[pd.DataFrame, dict[str, float] | None]:
    """Who answered each oracle variant's sessions (``journal_stats``) and, with both LLM
    journals, the memorisation probe (masked vs unmasked) and the masked journal's row."""
    journals = {TA_ML_ORACLE.name: plan.journal, TA_ML_LLM.name: plan.llm_journal}
    answers = pd.DataFrame([journal_stats(n, p, start, end)
                            for n, p in journals.items() if n in runs and p])
    probe = None
    if plan.llm_journal and plan.llm_masked_journal:
        probe = compare_journals(plan.llm_journal, plan.llm_masked_journal, start, end)
        answers = pd.concat([answers, pd.DataFrame(
            [journal_stats("masked (probe only)", plan.llm_masked_journal, start, end)])],
            ignore_index=True)
    return answers, probe


def late_check(plan: ReportPlan, config: dict[str, Any], runs: dict[str, rm.Run],
               late_table: pd.DataFrame, strat: Any) -> str:
    """The frozen-model sentence: both late runs and their models' out-of-sample AUC over the
    same late candles ("" when they did not both run)."""
    if WALK_FORWARD_LATE.name not in runs or FROZEN_LATE.name not in runs:
        return ""
    since = runs[WALK_FORWARD_LATE.name].start
    oversold_id = oversold_identifier()
    auc = {name: ml_quality.evaluate(plan.models_dir / ident, plan.datadir, plan.pairs,
                                     since=since, strat=strat).overall["model_auc"]
           for name, ident in (("walk-forward", oversold_id),
                               ("frozen", frozen_identifier(oversold_id)))}
    rows = late_table.set_index("variant")
    return say.late_line(rows.loc[WALK_FORWARD_LATE.name], rows.loc[FROZEN_LATE.name],
                         since, auc, config["freqai"]["backtest_period_days"])


def load_runs(plan: ReportPlan, variants: list[Variant]) -> dict[str, rm.Run]:
    """freqtrade's results of every finished variant, by name; ``RunDirError`` when one ran
    on other pairs or over another range than the plan says (a folder recomputed with other
    arguments than it ran with)."""
    runs = {}
    for v in variants:
        run = runs[v.name] = rm.load_run(v.name, v.result_dir, v.strategy)
        pairs, timerange = run.stats.get("pairlist", []), run.stats.get("timerange")
        if sorted(pairs) != sorted(plan.pairs) or timerange != v.timerange:
            raise RunDirError(f"{v.result_dir}: {v.name!r} ran on {', '.join(pairs)} over "
                              f"{timerange}, the plan says {', '.join(plan.pairs)} over "
                              f"{v.timerange}: give the arguments the run was made with")
    return runs


def compute(plan: ReportPlan, record: RunRecord) -> Figures:
    """Every figure of the report from the run saved under ``plan.out`` (``RunDirError``
    when a variant's results are missing or ran otherwise). ``wall_s``: the run's recorded
    wall time plus this computation's."""
    started = time.monotonic()
    config = plan.config()
    variants = finished_variants(plan, record)
    runs = load_runs(plan, variants)
    main = [runs[v.name] for v in variants if not v.late]
    late = [runs[v.name] for v in variants if v.late]
    baseline = variants[-1].name
    start, end = main[0].start, main[0].end
    table, curves = variant_table(plan, main)
    late_table = pd.DataFrame([rm.variant_row(r) for r in late])
    attribution = rm.attribution(runs[TA.name], pd.Timedelta(config["timeframe"]))
    trims = rm.trim_attribution(runs[TA_ML_ORACLE.name]) if TA_ML_ORACLE.name in runs else None
    trims = trims if trims is not None else pd.DataFrame()
    exposure = (rm.exposure_series(runs[TA_ML_ORACLE.name]) if TA_ML_ORACLE.name in runs
                else None)
    strat = ml_offline.strategy(preset=OVERSOLD_PRESET)  # as the oversold variants ran it
    quality, family_ml = ml_scores(plan, config, runs, strat)
    exits = (ml_exits(runs[TA_ML.name], plan.datadir, plan.pairs, strat)
             if TA_ML.name in runs else pd.DataFrame())
    accepted, deflated = acceptance(table, curves, main, family_ml, baseline)
    holes = preamble.holes(plan.datadir, plan.pairs, config["timeframe"],
                           *preamble.timerange_bounds(plan.timerange))
    yearly = robustness.per_year(curves, {r.name: r.trades for r in main})
    answers, probe = oracle_answers(plan, runs, start, end)
    said = say.statements(table, curves, accepted, family_ml, runs[baseline], start, holes,
                          probe, answers)
    wall = None if record.wall_s is None else record.wall_s + time.monotonic() - started
    return Figures(plan, config["freqai"], table, late_table, attribution, trims, exits,
                   accepted, yearly, answers, deflated, len(main), baseline, probe, quality,
                   late_check(plan, config, runs, late_table, strat), holes, said, curves,
                   exposure, record.analyses, wall,
                   {v.name: record.variant_walls.get(v.name) for v in variants})
