"""``make report``: does each layer earn its place? A walk-forward ablation on real candles.

Runs the variants of ``lab.ablation`` with freqtrade's own backtesting against the
local exchange, then writes ``user_data/reports/<timestamp>/``: ``report.html`` (open it
in a browser), ``summary.md``, PNG charts and ``metrics.json``. Every figure is computed
from freqtrade's result files; the verdicts are written from the numbers, whatever they say.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybrid_ai import momentum
from lab import ablation, data_holes, ml_offline, ml_quality, robustness
from lab import acceptance as bar
from lab import report_metrics as rm
from lab.demo import backfill_oracle
from lab.journal_stats import compare_journals, journal_stats
from lab.project import (
    CONFIG,
    OVERSOLD_PRESET,
    REPO,
    default_timerange,
    load_config,
    shared_data,
    whitelist,
)
from llm_oracle.store import read_journal
from local_exchange.market_data import MarketData
from local_exchange.server import BinanceApi, LocalExchangeServer

PCT = ("total_return", "cagr", "max_drawdown", "win_rate", "exposure")


def pyplot():
    """matplotlib without a display (PNG files only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, out: Path) -> Path:
    """Lay out, write the PNG and free the figure."""
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    pyplot().close(fig)
    return out


def fmt_table(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if col in PCT:
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v * 100:.2f} %")
        elif out[col].dtype.kind == "f":
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    return out


def md_table(df: pd.DataFrame) -> str:
    df = fmt_table(df)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.to_numpy()]
    return "\n".join(lines)


def verdicts(table: pd.DataFrame, curves: dict[str, pd.Series]) -> list[str]:
    """Plain statements from the numbers: does each layer improve on the one below? Each
    difference carries its bootstrap 90 % interval; spanning zero means "inconclusive"."""
    rows = table.set_index("variant")
    said = []
    for lower, upper, layer in (("ta", "ta+ml", "The ML layer"),
                                ("ta+ml", "ta+ml wide", "Widening the ML layer's candidates"),
                                ("ta+ml", "ta+ml+oracle", "The oracle (heuristic)"),
                                ("ta+ml", "ta+ml+llm", "The oracle (LLM journal)"),
                                ("mom", "mom top-3", "The top-3 gate on momentum"),
                                ("mom top-3", "mom top-3 +ml", "The ML layer on momentum"),
                                ("mom top-3 +ml", "mom top-3 +ml+oracle",
                                 "The oracle on momentum"),
                                ("ta+ml+oracle", "mom top-3 +ml+oracle",
                                 "Momentum instead of oversold recovery (full packs)"),
                                *[(name, full, f"The full pack ({full}) against the {name}")
                                  for name in rows.index if name.startswith(ablation.BASELINE)
                                  for family in bar.FAMILIES
                                  for full in family.full[-1:] if full in rows.index]):
        if lower not in rows.index or upper not in rows.index:
            continue
        a, b = rows.loc[lower], rows.loc[upper]
        diff = rm.compare(curves[lower], curves[upper])
        calls = {"return": rm.call(diff["return"], "higher"),
                 "drawdown": rm.call(diff["drawdown"], "lower"),
                 "Sharpe": rm.call(diff["sharpe"], "higher")}
        parts = []
        for (name, (point, low, high)), unit in zip(diff.items(), ("%", "pp", ""), strict=True):
            scale = 1 if name == "sharpe" else 100
            parts.append(f"{name} {point * scale:+.2f}{unit} [{low * scale:+.2f}, "
                         f"{high * scale:+.2f}] {calls[name.replace('sharpe', 'Sharpe')]}")
        if all(c == "inconclusive" for c in calls.values()):
            verdict = "makes no difference the data can tell (inconclusive)"
        else:
            verdict = "; ".join(f"{k} {v}" for k, v in calls.items() if v != "inconclusive")
        said.append(
            f"{layer}: {verdict}. {upper} vs {lower} (daily mark-to-market, 90 % block "
            f"bootstrap): {'; '.join(parts)}. {upper} {b['total_return'] * 100:+.2f} %, "
            f"{b['trades']:.0f} trades, exposure {b['exposure'] * 100:.1f} %; {lower} "
            f"{a['total_return'] * 100:+.2f} %, {a['trades']:.0f} trades, exposure "
            f"{a['exposure'] * 100:.1f} %.")
    return said


def chart_equity(curves: dict[str, pd.Series], journal: Path, out: Path) -> Path:
    plt = pyplot()
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    for name, curve in curves.items():
        style = "--" if name.startswith("buy & hold") else "-"
        ax.plot(curve.index, (curve / curve.iloc[0] - 1) * 100, style, label=name, lw=1.4)
    ax.set_ylabel("return %")
    ax.axhline(0, color="grey", lw=0.6)
    ax.legend(loc="best", fontsize=8)
    ax.set_title("Equity (marked to market) vs buy & hold")
    decisions = [d for d in read_journal(journal) if d.usable]
    start, end = next(iter(curves.values())).index[[0, -1]]
    decisions = [d for d in decisions if start <= pd.Timestamp(d.decided_at) <= end]
    if decisions:
        when = [d.decided_at for d in decisions]
        ax2.step(when, [d.risk_level.rank for d in decisions], where="post", color="crimson",
                 label="risk level (0 cons., 1 mod., 2 aggr.)")
        ax2.step(when, [len(d.focus_pairs) / 4 for d in decisions], where="post",
                 color="goldenrod", label="focus pairs / 4", lw=0.8)
        ax2.legend(loc="upper left", fontsize=7)
    ax2.set_title("Oracle decisions (heuristic backfill)", fontsize=9)
    return save(fig, out)


def chart_exposure(exposure: pd.Series, journal: Path, out: Path) -> Path:
    """The full pack's exposure against the oracle's caps on the decision timeline."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 3.5))
    ax.fill_between(exposure.index, exposure * 100, step="post", alpha=0.4,
                    label="exposure (stake in open trades)")
    start, end = exposure.index[[0, -1]]
    decisions = [d for d in read_journal(journal)
                 if d.usable and start <= pd.Timestamp(d.decided_at) <= end]
    if decisions:
        when = [d.decided_at for d in decisions]
        ax.step(when, [d.max_exposure * 100 for d in decisions], where="post",
                color="slateblue", lw=0.9, label="oracle max_exposure")
        ax.step(when, [d.overnight_target * 100 for d in decisions], where="post",
                color="darkorange", lw=0.7, ls=":", label="oracle overnight_target")
    ax.set_ylabel("% of starting balance")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Exposure vs the oracle's caps (ta+ml+oracle)")
    return save(fig, out)


def chart_drawdown(curves: dict[str, pd.Series], out: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 3.5))
    for name, curve in curves.items():
        ax.plot(curve.index, -(1 - curve / curve.cummax()) * 100, label=name, lw=1.2)
    ax.set_ylabel("drawdown %")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("Drawdown")
    return save(fig, out)


def chart_calibration(calibration: pd.DataFrame, out: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, label="perfect")
    ax.plot(calibration["predicted"], calibration["realised"], "o-", label="ML layer")
    for _, row in calibration.iterrows():
        ax.annotate(f"{int(row['rows'])}", (row["predicted"], row["realised"]), fontsize=7,
                    textcoords="offset points", xytext=(4, -10))
    ax.set_xlabel("predicted win probability (out of sample)")
    ax.set_ylabel("realised share of winning trades")
    ax.set_title("ML calibration (rows per bin annotated)")
    ax.legend()
    return save(fig, out)


def probe_line(probe: dict[str, float]) -> str:
    """The memorisation probe's verdict: do masked and unmasked decisions differ?"""
    n = int(probe["sessions"])
    if n == 0:
        return "Memorisation probe: no session answered both masked and unmasked."
    same, apart = probe["same_risk_level"], probe["mean_abs_exposure_diff"]
    verdict = ("The decisions do not depend on names, dates or price levels here."
               if same == 1.0 and apart == 0 and probe["mean_focus_jaccard"] == 1.0 else
               "The decisions differ: they depend on what masking hides (names, dates, price "
               "levels: possibly memory of the period, possibly mere wording; `make llm-eval "
               "LLM_EVAL_ARGS=--probe` sets this beside two maskings with different aliases). "
               "Prefer the masked journal for backtests.")
    return (f"Memorisation probe ({n} sessions asked unmasked and masked: pairs renamed, "
            f"dates and price levels hidden): the same risk level in {same:.0%}, exposure "
            f"caps {apart:.2f} apart on average, focus overlap "
            f"{probe['mean_focus_jaccard']:.2f}. {verdict}")


def layout_lines(answers: pd.DataFrame) -> list[str]:
    """A verdict per oracle variant of the "Who answered" table whose decisions follow the
    prompt's layout (``lab.journal_stats.layout_verdict``): its focus names the first pairs
    listed, not the best ones."""
    said = []
    for row in answers.to_dict(orient="records"):
        if row.get("layout") == "follows the layout":
            said.append(f"The {row['variant']} oracle's decisions follow the prompt's layout, "
                        f"not the market: {row['position_bias']:.0%} of its focus pairs were "
                        f"the first ones the prompt listed (an order-blind choice: "
                        f"{row['position_chance']:.0%}). Its focus steers nothing.")
    return said


def img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{path.stem}" src="data:image/png;base64,{data}">'


def write_html(out: Path, title: str, sections: list[tuple[str, str]]) -> Path:
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{content}" for h, content in sections)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:auto;padding:1em}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 7px;
text-align:right}}th{{background:#f3f3f3}}pre{{background:#f7f7f7;padding:.5em;overflow:auto;
font-size:11px}}img{{max-width:100%}}</style></head>
<body><h1 id="title">{html.escape(title)}</h1>
{body}
</body></html>"""
    path = out / "report.html"
    path.write_text(page)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datadir", type=Path,
                        default=shared_data() or REPO / "user_data/data/binance")
    parser.add_argument("--timerange", help="YYYYMMDD-YYYYMMDD (default: the data after "
                        "FreqAI's first training period, at most 200 days)")
    parser.add_argument("--pairs", nargs="+", help="default: the config's whitelist")
    parser.add_argument("--llm-journal", type=Path,
                        help="an oracle journal written by an LLM provider, replayed as a "
                             "fourth variant")
    parser.add_argument("--llm-masked-journal", type=Path,
                        help="the same LLM's journal with masked prompts (make llm-journal "
                             "LLM_JOURNAL_ARGS=--masked): the memorisation probe")
    parser.add_argument("--late-weeks", type=int, default=8,
                        help="length of the frozen-model check at the end of the range")
    parser.add_argument("-c", "--config", type=Path, action="append", default=[],
                        help="a config overlay on top of config.json for every variant (e.g. "
                             "user_data/config.history.json: monthly retraining for years of "
                             "candles); may repeat")
    parser.add_argument("--baseline-sma-days", type=int,
                        help="the trend baseline's moving average in days (default: the "
                             "textbook 200; shorten only for data too short to warm it up)")
    parser.add_argument("--no-analyses", action="store_true",
                        help="skip freqtrade's lookahead- and recursive-analysis")
    parser.add_argument("--out", type=Path, help="default: user_data/reports/<timestamp>")
    args = parser.parse_args(argv)

    started = time.monotonic()
    config = load_config([CONFIG, *args.config])
    pairs = args.pairs or whitelist(config)
    data = MarketData.load(args.datadir, pairs)
    timerange = args.timerange or default_timerange(data, 200, config)
    out = args.out or REPO / "user_data" / "reports" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    workdir = out / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"report: {len(pairs)} pairs, {timerange}, data {args.datadir}, writing {out}",
          flush=True)
    backfill_oracle(args.datadir, timerange, workdir / "oracle")
    # Holes in the candle files: listed, and a pair with a hole of a day or more is paused
    # around it in every variant (hybrid_ai.pair_pauses), so no trade is carried across it.
    first, _, last = timerange.partition("-")
    holes = pd.concat([data_holes.holes(args.datadir, pairs, tf, pd.Timestamp(first, tz="UTC"),
                                        pd.Timestamp(last, tz="UTC"))
                       for tf in (config["timeframe"], "1h")], ignore_index=True)
    paused = data_holes.pair_pauses(holes, config["timeframe"])
    configs = tuple(args.config)
    if paused:
        (workdir / "pauses.json").write_text(json.dumps({"hybrid_ai": {"pair_pauses": paused}},
                                                        indent=2))
        configs += (workdir / "pauses.json",)
    journal = workdir / "oracle" / "journal.jsonl"
    variants = ablation.plan(timerange, journal, args.llm_journal, workdir / "models",
                             args.late_weeks, configs)
    variants.append(ablation.trend_baseline(timerange, pairs, args.baseline_sma_days))
    server = LocalExchangeServer(BinanceApi(data), port=0)
    server.start_in_thread()
    try:
        for variant in variants:
            ablation.run_variant(variant, workdir, args.datadir, server.url, pairs, configs)
        # As many pairs as the shipped top-k gate needs for a cross-section (fewer: no
        # entries, and lookahead-analysis would find no trade to check).
        analyses = {} if args.no_analyses else ablation.run_analyses(
            workdir, args.datadir, server.url, _last_days(timerange, 60),
            pairs[:momentum.MIN_PAIRS])
    finally:
        server.stop()

    runs = {v.name: rm.load_run(v.name, v.result_dir, v.strategy) for v in variants}
    baseline = variants[-1].name
    main_runs = [r for n, r in runs.items() if not n.endswith("(late)")]
    start, end = main_runs[0].start, main_runs[0].end
    basket = rm.buy_and_hold(args.datadir, pairs, start, end)
    btc = rm.buy_and_hold(args.datadir, ["BTC/USDT"], start, end)
    table = pd.DataFrame([rm.variant_row(r) for r in main_runs]
                         + [rm.benchmark_row("buy & hold basket", basket),
                            rm.benchmark_row("buy & hold BTC", btc)])
    late = [runs[n] for n in runs if n.endswith("(late)")]
    late_table = pd.DataFrame([rm.variant_row(r) for r in late])
    tf = pd.Timedelta(config["timeframe"])
    attribution = rm.attribution(runs["ta"], tf)
    trims = rm.trim_attribution(runs["ta+ml+oracle"]) if "ta+ml+oracle" in runs else None
    trims = trims if trims is not None else pd.DataFrame()
    curves = {r.name: rm.daily_equity(r) for r in main_runs}
    curves["buy & hold basket"] = basket * main_runs[0].starting_balance
    curves["buy & hold BTC"] = btc * main_runs[0].starting_balance
    charts = {
        "equity": chart_equity(curves, journal, out / "equity.png"),
        "drawdown": chart_drawdown(curves, out / "drawdown.png"),
    }
    if "ta+ml+oracle" in runs:
        charts["exposure"] = chart_exposure(rm.exposure_series(runs["ta+ml+oracle"]), journal,
                                            out / "exposure.png")
    freqai = config["freqai"]
    # The oversold variants' models (the preset's identifier), scored on their own label;
    # the momentum family's are the shipped config's.
    oversold_id = load_config([OVERSOLD_PRESET.config_file])["freqai"]["identifier"]
    oversold_strat = ml_offline.strategy(preset=OVERSOLD_PRESET)
    quality = ml_quality.evaluate(workdir / "models" / oversold_id, args.datadir, pairs,
                                  strat=oversold_strat)
    calibration, overall = quality.reliability, quality.overall
    family_ml = {bar.FAMILIES[0].name: overall}
    if "mom top-3 +ml" in runs:
        mom = ml_quality.evaluate(workdir / "models" / freqai["identifier"], args.datadir,
                                  pairs)
        family_ml[bar.FAMILIES[1].name] = mom.overall
    charts["calibration"] = chart_calibration(calibration, out / "calibration.png")
    exits = (ml_exits(runs["ta+ml"], args.datadir, pairs, oversold_strat) if "ta+ml" in runs
             else pd.DataFrame())
    said = verdicts(table, curves)
    strategies = [r.name for r in main_runs]
    trial_var = robustness.annual_to_period_var(
        [table.set_index("variant").loc[n, "sharpe"] for n in strategies])
    deflated = {n: robustness.deflated_sharpe(curves[n].pct_change().dropna(),
                                              len(strategies), trial_var) for n in strategies}
    accepted = pd.concat([bar.criteria(table, family_ml[f.name], baseline, deflated, f)
                          .assign(family=f.name) for f in bar.FAMILIES
                          if f.ta in table["variant"].values], ignore_index=True)
    for i, (name, rows) in enumerate(accepted.groupby("family", sort=False)):
        said.insert(i, (f"{name}: " if i else "") + bar.overall(rows))
    if (mom_ml := family_ml.get(bar.FAMILIES[1].name)) is not None:
        said.append(f"The momentum family's own ML models ({bar.FAMILIES[1].ml}), out of "
                    f"sample: AUC {mom_ml.get('model_auc', np.nan):.3f}, Brier skill "
                    f"{mom_ml.get('model_brier_skill', np.nan):+.4f}, rank IC "
                    f"{mom_ml.get('rank_ic', np.nan):+.3f} "
                    f"[{mom_ml.get('rank_ic_low', np.nan):+.3f}"
                    f", {mom_ml.get('rank_ic_high', np.nan):+.3f}].")
    if runs[baseline].start > start + pd.Timedelta(days=1):
        said.append(f"The {baseline} trades only from {runs[baseline].start:%Y-%m-%d}: its "
                    f"moving average needs that many days of candles before it means anything "
                    f"(--baseline-sma-days shortens it for short data).")
    if not holes.empty:
        said.append(f"{len(holes)} holes in the candle files of {holes['pair'].nunique()} "
                    f"pairs inside the range ({int(holes['missing'].sum())} candles in all; "
                    f"listed under 'Data holes'); {len(paused)} of a day or more paused their "
                    f"pair around them in every variant: not bridged, see there how.")
    yearly = robustness.per_year(curves, {r.name: r.trades for r in main_runs})
    oracle_journals = {"ta+ml+oracle": journal, "ta+ml+llm": args.llm_journal}
    answers = pd.DataFrame([journal_stats(n, p, start, end)
                            for n, p in oracle_journals.items() if n in runs and p])
    probe = (compare_journals(args.llm_journal, args.llm_masked_journal, start, end)
             if args.llm_journal and args.llm_masked_journal else None)
    if probe is not None:
        answers = pd.concat([answers, pd.DataFrame(
            [journal_stats("masked (probe only)", args.llm_masked_journal, start, end)])],
            ignore_index=True)
        said.append(probe_line(probe))
    said += layout_lines(answers)
    wall = time.monotonic() - started

    title = f"Hybrid-AI ablation, {len(pairs)} pairs, {timerange}"
    ml_line = ml_quality.summary_line(quality)
    late_line = ""
    if len(late_table) == 2:
        # Prediction quality over the same late candles: frozen models vs retraining.
        late_auc = {}
        for name, ident in (("walk-forward", oversold_id), ("frozen", f"{oversold_id}-frozen")):
            late_auc[name] = ml_quality.evaluate(
                workdir / "models" / ident, args.datadir, pairs, since=late[0].start,
                strat=oversold_strat).overall["model_auc"]
        wf, fr = late_table.iloc[0], late_table.iloc[1]
        late_line = (f"Frozen models (trained before {late[0].start:%Y-%m-%d}, never retrained) "
                     f"{fr['total_return'] * 100:+.2f} % / {fr['trades']:.0f} trades vs "
                     f"walk-forward retraining every {freqai['backtest_period_days']} days "
                     f"{wf['total_return'] * 100:+.2f} % / "
                     f"{wf['trades']:.0f} trades over the same weeks; out-of-sample AUC "
                     f"{late_auc['frozen']:.3f} frozen vs {late_auc['walk-forward']:.3f} "
                     f"retrained.")
    walls = ", ".join(f"{v.name} {v.wall_s:.0f} s" for v in variants)
    sections = [
        ("Verdict", "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in said) + "</ul>"),
        ("Variants vs buy & hold", fmt_table(table).to_html(index=False)),
        ("Acceptance (issue #24), as measured", fmt_table(accepted).to_html(index=False)
         + f"<p>Deflated Sharpe: each variant's daily Sharpe against the best of "
           f"{len(strategies)} unskilled trials (the variants of this report; the spread of "
           f"their Sharpe ratios as the trials' variance).</p>"),
        ("Per year, with 90 % block-bootstrap intervals", fmt_table(yearly).to_html(
            index=False) + "<p>Daily mark-to-market equity; trades opened in the span; "
                           "exposure time-weighted within it.</p>"),
        ("Who answered the oracle's sessions", fmt_table(answers).to_html(index=False)
         + "<p>Per oracle variant, over the report's range: sessions journaled, those the "
           "bot could use, rejected answers (the last good decision stays in force), "
           "answers validation clamped to the limits, masked prompts "
           "(<code>llm_oracle.masked</code>), latency and cost. Position bias: the share of "
           "focus pairs that were among the first len(focus) pairs the prompt listed (its "
           "journaled <code>prompt_order</code>, shuffled per session), beside what a "
           "choice blind to the order gets (chance); a variant with at least 5 such "
           "sessions, a share of at least 0.8 and halfway from chance to 1 is reported as "
           "'follows the layout': its decisions follow the prompt's order, not the market. "
           "Empty, 'n/a': no <code>prompt_order</code> journaled (older journals).</p>"),
        ("Equity and oracle timeline", img(charts["equity"])),
        ("Drawdown", img(charts["drawdown"])),
        ("Per-layer attribution (technical entries each layer would block)",
         (fmt_table(attribution).to_html(index=False) if not attribution.empty
          else "<p>No technical entries in this range.</p>")
         + "<p>From the <code>ta</code> run, where ML and oracle are observed: the gate of "
           "each layer at the signal candle of every technical trade.</p>"),
        ("Oracle trims of open trades (ta+ml+oracle)",
         (img(charts["exposure"]) if "exposure" in charts else "")
         + (fmt_table(trims).to_html(index=False) if not trims.empty
            else "<p>No trims in this range.</p>")
         + "<p>Each trimmed part against holding it to the trade's final exit; saved &gt; 0: "
           "the trim sold above the final exit. Interval: bootstrap 90 % of the mean.</p>"),
        ("ML exits (ta+ml)",
         (fmt_table(exits).to_html(index=False) if not exits.empty
          else "<p>No ml_exit in this range.</p>")
         + "<p>Each ml_exit against holding the trade to its next stop, trail, reversal or "
           "time exit (same stop state; later partial take-profits left out); saved &gt; 0: "
           "the exit sold above that. Interval: bootstrap 90 % of the mean.</p>"),
        ("ML scores and calibration", f"<p>Label: {html.escape(quality.label)}.</p>"
         f"<p>{html.escape(ml_line)}</p>" + img(charts["calibration"])
         + fmt_table(calibration).to_html(index=False)
         + "<h3>Expected-value gate on every predicted candle (moderate margin)</h3>"
         + fmt_table(quality.ev_gate).to_html(index=False)
         + "<h3>Per walk-forward window</h3>"
         + fmt_table(quality.per_window).to_html(index=False)),
        ("Frozen model vs walk-forward", f"<p>{html.escape(late_line)}</p>"
         + fmt_table(late_table).to_html(index=False)),
        ("Data holes", (fmt_table(holes).to_html(index=False) if not holes.empty
                        else "<p>None: every candle of the range is in the files.</p>")
         + ("<h3>Pairs paused (hybrid_ai.pair_pauses, every variant)</h3>"
            + pd.DataFrame(paused).to_html(index=False) if paused else "")
         + f"<p>{html.escape(data_holes.__doc__.split(chr(10), 2)[2])}</p>"),
        ("Lookahead and recursive analysis (technical layer)",
         "".join(f"<h3>{html.escape(k)}</h3><pre>{html.escape(v)}</pre>"
                 for k, v in analyses.items()) or "<p>Skipped (--no-analyses).</p>"),
        ("How this was made", f"<p>freqtrade backtesting per variant against the local "
         f"exchange; FreqAI walk-forward ({freqai['train_period_days']} days training, "
         f"retrained every {freqai['backtest_period_days']} days). Wall time {wall:.0f} s "
         f"({html.escape(walls)}). Metrics: {html.escape(rm.__doc__.split(chr(10))[2])}</p>"),
    ]
    write_html(out, title, sections)
    md = [f"# {title}", "", *[f"- {s}" for s in said], "", md_table(table), "",
          "## Acceptance", "", md_table(accepted), "",
          "## Per year", "", md_table(yearly), "",
          "## Who answered the oracle", "", md_table(answers), "",
          "## Attribution", "", md_table(attribution) if not attribution.empty else "none", "",
          "## Oracle trims", "", md_table(trims) if not trims.empty else "none", "",
          "## ML exits", "", md_table(exits) if not exits.empty else "none", "",
          "## ML", "", f"Label: {quality.label}.", "", ml_line, "", md_table(calibration), "",
          md_table(quality.ev_gate), "", "## Frozen model", "", late_line, "",
          md_table(late_table) if len(late_table) else "", "", f"Wall time {wall:.0f} s."]
    (out / "summary.md").write_text("\n".join(md) + "\n")
    (out / "metrics.json").write_text(json.dumps({
        "timerange": timerange, "pairs": pairs, "wall_s": wall,
        "variants": table.replace({np.nan: None}).to_dict(orient="records"),
        "late": late_table.replace({np.nan: None}).to_dict(orient="records"),
        "attribution": attribution.replace({np.nan: None}).to_dict(orient="records"),
        "trims": trims.replace({np.nan: None}).to_dict(orient="records"),
        "acceptance": accepted.to_dict(orient="records"),
        "per_year": yearly.replace({np.nan: None}).to_dict(orient="records"),
        "oracle_answers": answers.replace({np.nan: None}).to_dict(orient="records"),
        "memorisation_probe": probe,
        "deflated_sharpe": deflated, "baseline": baseline,
        "holes": holes.astype(str).to_dict(orient="records"), "pair_pauses": paused,
        "ml_exits": exits.replace({np.nan: None}).to_dict(orient="records"),
        "ml": {"label": quality.label, **overall,
               "per_window": quality.per_window.to_dict(orient="records"),
               "reliability": calibration.to_dict(orient="records"),
               "ev_gate": quality.ev_gate.to_dict(orient="records")},
        "verdicts": said}, indent=2, default=str))
    print("\n".join(md))
    print(f"\nreport: {out / 'report.html'} ({wall:.0f} s)")
    return 0


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


def _last_days(timerange: str, days: int) -> str:
    """The last ``days`` whole days of the range (its end day may be cut short by the data)."""
    end = datetime.strptime(timerange.partition("-")[2], "%Y%m%d") - pd.Timedelta(days=1)
    return f"{(end - pd.Timedelta(days=days)):%Y%m%d}-{end:%Y%m%d}"


if __name__ == "__main__":
    sys.exit(main())
