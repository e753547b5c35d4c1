"""``make report``: does each layer earn its place? A walk-forward ablation on real candles.

Runs the variants of ``lab.variants`` with freqtrade's own backtesting against the
local exchange, then writes ``user_data/reports/<timestamp>/``: ``report.html`` (open it
in a browser), ``summary.md``, PNG charts and ``metrics.json``. Every figure is computed
from freqtrade's result files; the verdicts are written from the numbers, whatever they say.

Four steps: plan (``plan.json``: pairs, range, data, overlays), run (the backtests; their
results stay under ``<out>/work``, wall times and analyses in ``run.json``), compute (from
those files only) and render (one document as HTML, Markdown and JSON). ``--from-run DIR``
does the last two again from a finished run's folder, without freqtrade.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from hybrid_ai import momentum
from lab import ablation, preamble, report_compute, report_document
from lab.demo import backfill_oracle
from lab.project import PACK_CONFIGS, REPO, default_timerange, shared_data
from lab.render import render, to_markdown
from lab.report_plan import ReportPlan, RunDirError, RunRecord

# The sentences other tools and tests read, where they always were.
from lab.report_verdicts import layout_lines as layout_lines
from lab.report_verdicts import probe_line as probe_line


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datadir", type=Path,
                   default=shared_data() or REPO / "user_data/data/binance")
    p.add_argument("--timerange", help="YYYYMMDD-YYYYMMDD (default: the data after "
                   "FreqAI's first training period, at most 200 days)")
    p.add_argument("--pairs", nargs="+", help="default: the config's whitelist")
    p.add_argument("--llm-journal", type=Path,
                   help="an oracle journal written by an LLM provider, replayed as a "
                        "fourth variant")
    p.add_argument("--llm-masked-journal", type=Path,
                   help="the same LLM's journal with masked prompts (make llm-journal "
                        "LLM_JOURNAL_ARGS=--masked): the memorisation probe")
    p.add_argument("--late-weeks", type=int, default=8,
                   help="length of the frozen-model check at the end of the range")
    p.add_argument("-c", "--config", type=Path, action="append", default=[],
                   help="a config overlay on top of config.json for every variant (e.g. "
                        "user_data/config.history.json: monthly retraining for years of "
                        "candles); may repeat")
    p.add_argument("--baseline-sma-days", type=int,
                   help="the trend baseline's moving average in days (default: the "
                        "textbook 200; shorten only for data too short to warm it up)")
    p.add_argument("--no-analyses", action="store_true",
                   help="skip freqtrade's lookahead- and recursive-analysis")
    p.add_argument("--out", type=Path, help="default: user_data/reports/<timestamp> (with "
                   "--from-run: the run's folder)")
    p.add_argument("--from-run", type=Path, metavar="DIR",
                   help="recompute and re-render the report of the finished run in DIR (an "
                        "earlier --out) from its saved results, without running freqtrade; "
                        "the plan is DIR/plan.json (a run made before plan.json: give the "
                        "arguments it ran with)")
    return p


def plan_from_args(args: argparse.Namespace, out: Path,
                   market: preamble.Market) -> ReportPlan:
    """The plan of the command line: ``market``'s pairs, the range (default: the last 200
    days of the data after FreqAI's first training period)."""
    timerange = args.timerange or default_timerange(market.data, 200, market.config)
    return ReportPlan(out, args.datadir, timerange, market.pairs, tuple(args.config),
                      args.llm_journal, args.llm_masked_journal, args.late_weeks,
                      args.baseline_sma_days, not args.no_analyses)


def saved_run(args: argparse.Namespace) -> tuple[ReportPlan, RunRecord]:
    """The plan and record of the run in ``args.from_run``; a folder without ``plan.json``
    (a run made before it existed) is planned again from the arguments, as it ran."""
    run_dir = args.from_run
    if (run_dir / "plan.json").exists():
        return ReportPlan.load(run_dir), RunRecord.load(run_dir)
    if not (run_dir / "work" / "runs").is_dir():
        raise RunDirError(f"{run_dir}: neither plan.json nor work/runs: not a report's folder")
    market = preamble.load_market(args.datadir, args.pairs, [*PACK_CONFIGS, *args.config])
    return plan_from_args(args, run_dir, market), RunRecord.load(run_dir)


def run(plan: ReportPlan, market: preamble.Market, started: float) -> RunRecord:
    """The run step: the oracle's heuristic backfill, the pair pauses around the data's long
    holes, every variant's backtest and freqtrade's analyses against one local exchange;
    the results stay under ``plan.workdir``, the record is saved as ``run.json``
    (``ablation.AblationError`` when a backtest fails)."""
    plan.workdir.mkdir(parents=True, exist_ok=True)
    print(f"report: {len(plan.pairs)} pairs, {plan.timerange}, data {plan.datadir}, writing "
          f"{plan.out}", flush=True)
    backfill_oracle(plan.datadir, plan.timerange, plan.workdir / "oracle")
    # Holes in the candle files: listed, and a pair with a hole of a day or more is paused
    # around it in every variant (hybrid_ai.pair_pauses), so no trade is carried across it.
    holes = preamble.holes(plan.datadir, plan.pairs, market.config["timeframe"],
                           *preamble.timerange_bounds(plan.timerange))
    configs = plan.configs
    if holes.pauses:
        configs += (preamble.pauses_overlay(plan.pauses_file, holes.pauses),)
    variants = plan.variants()
    with preamble.local_exchange(market.data) as url:
        for variant in variants:
            ablation.run_variant(variant, plan.workdir, plan.datadir, url, plan.pairs, configs)
        # As many pairs as the shipped top-k gate needs for a cross-section (fewer: no
        # entries, and lookahead-analysis would find no trade to check).
        analyses = {} if not plan.analyses else ablation.run_analyses(
            plan.workdir, plan.datadir, url, _last_days(plan.timerange, 60),
            plan.pairs[:momentum.MIN_PAIRS])
    record = RunRecord(time.monotonic() - started, {v.name: v.wall_s for v in variants},
                       analyses)
    record.save(plan.out)
    return record


def _last_days(timerange: str, days: int) -> str:
    """The last ``days`` whole days of the range (its end day may be cut short by the data)."""
    end = datetime.strptime(timerange.partition("-")[2], "%Y%m%d") - pd.Timedelta(days=1)
    return f"{(end - pd.Timedelta(days=days)):%Y%m%d}-{end:%Y%m%d}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.from_run:
        try:
            plan, record = saved_run(args)
        except RunDirError as exc:
            print(f"report: error: {exc}", file=sys.stderr)
            return 2
        out = args.out or args.from_run
    else:
        started = time.monotonic()
        market = preamble.load_market(args.datadir, args.pairs, [*PACK_CONFIGS, *args.config])
        out = args.out or (REPO / "user_data" / "reports"
                           / datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
        plan = plan_from_args(args, out, market)
        plan.save()
        record = run(plan, market, started)
    try:
        figures = report_compute.compute(plan, record)
    except RunDirError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    doc = report_document.document(figures)
    render(doc, out)
    print(to_markdown(doc).rstrip("\n"))
    print(f"\nreport: {out / 'report.html'} ({report_document.seconds(figures.wall_s)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
