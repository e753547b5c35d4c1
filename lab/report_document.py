"""The report as one ``lab.render.Document``: its sections (the HTML page, and the Markdown
summary where a section has a Markdown heading or text) and its JSON data (``metrics.json``),
laid out from the computed ``Figures``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lab import data_holes
from lab import report_metrics as rm
from lab.ml_quality import summary_line
from lab.render import (
    Block,
    Bullets,
    Chart,
    Document,
    Heading,
    Html,
    Pre,
    Records,
    Section,
    Table,
    Text,
)
from lab.report_charts import chart_calibration, chart_drawdown, chart_equity, chart_exposure
from lab.report_compute import Figures
from lab.variants import TA, TA_ML, TA_ML_ORACLE

ANSWERS_NOTE = (
    "<p>Per oracle variant, over the report's range: sessions journaled, those the "
    "bot could use, rejected answers (the last good decision stays in force), "
    "answers validation clamped to the limits, masked prompts "
    "(<code>llm_oracle.masked</code>), latency and cost. Position bias: the share of "
    "focus pairs that were among the first len(focus) pairs the prompt listed (its "
    "journaled <code>prompt_order</code>, shuffled per session), beside what a "
    "choice blind to the order gets (chance); a variant with at least 5 such "
    "sessions, a share of at least 0.8 and halfway from chance to 1 is reported as "
    "'follows the layout': its decisions follow the prompt's order, not the market. "
    "Empty, 'n/a': no <code>prompt_order</code> journaled (older journals).</p>")
ATTRIBUTION_NOTE = (
    f"<p>From the <code>{TA.name}</code> run, where ML and oracle are observed: the gate of "
    "each layer at the signal candle of every technical trade.</p>")
TRIMS_NOTE = (
    "<p>Each trimmed part against holding it to the trade's final exit; saved &gt; 0: "
    "the trim sold above the final exit. Interval: bootstrap 90 % of the mean.</p>")
EXITS_NOTE = (
    "<p>Each ml_exit against holding the trade to its next stop, trail, reversal or "
    "time exit (same stop state; later partial take-profits left out); saved &gt; 0: "
    "the exit sold above that. Interval: bootstrap 90 % of the mean.</p>")


def seconds(value: float | None) -> str:
    """``123 s``, or ``unknown`` for a time the run did not record."""
    return "unknown" if value is None else f"{value:.0f} s"


def title(fig: Figures) -> str:
    return f"Hybrid-AI ablation, {len(fig.plan.pairs)} pairs, {fig.plan.timerange}"


def performance(fig: Figures) -> list[Section]:
    """The verdict, the variants against buy & hold, the acceptance bar, per year, who
    answered the oracle, the equity and drawdown charts."""
    journal = fig.plan.journal
    return [
        Section("Verdict", [Bullets(fig.said)]),
        Section("Variants vs buy & hold", [Table(fig.table)]),
        Section("Acceptance (issue #24), as measured", [
            Table(fig.accepted),
            Html(f"<p>Deflated Sharpe: each variant's daily Sharpe against the best of "
                 f"{fig.trials} unskilled trials (the variants of this report; the spread of "
                 f"their Sharpe ratios as the trials' variance).</p>")], "Acceptance"),
        Section("Per year, with 90 % block-bootstrap intervals", [
            Table(fig.yearly),
            Html("<p>Daily mark-to-market equity; trades opened in the span; "
                 "exposure time-weighted within it.</p>")], "Per year"),
        Section("Who answered the oracle's sessions", [Table(fig.answers), Html(ANSWERS_NOTE)],
                "Who answered the oracle"),
        Section("Equity and oracle timeline", [
            Chart("equity.png", lambda path: chart_equity(fig.curves, journal, path))]),
        Section("Drawdown", [Chart("drawdown.png", lambda path: chart_drawdown(fig.curves,
                                                                                path))]),
    ]


def layers(fig: Figures) -> list[Section]:
    """What each layer blocked, the oracle's trims, the ML exits, the ML scores and the
    frozen-model check."""
    q, exposure, journal = fig.quality, fig.exposure, fig.plan.journal
    trims: list[Block] = [] if exposure is None else [
        Chart("exposure.png", lambda path: chart_exposure(exposure, journal, path))]
    return [
        Section("Per-layer attribution (technical entries each layer would block)", [
            Table(fig.attribution, html_empty="No technical entries in this range.",
                  md_empty="none"), Html(ATTRIBUTION_NOTE)], "Attribution"),
        Section(f"Oracle trims of open trades ({TA_ML_ORACLE.name})", [
            *trims, Table(fig.trims, html_empty="No trims in this range.", md_empty="none"),
            Html(TRIMS_NOTE)], "Oracle trims"),
        Section(f"ML exits ({TA_ML.name})", [
            Table(fig.exits, html_empty="No ml_exit in this range.", md_empty="none"),
            Html(EXITS_NOTE)], "ML exits"),
        Section("ML scores and calibration", [
            Text(f"Label: {q.label}."), Text(summary_line(q)),
            Chart("calibration.png", lambda path: chart_calibration(q.reliability, path)),
            Table(q.reliability),
            Heading("Expected-value gate on every predicted candle (moderate margin)"),
            Table(q.ev_gate), Heading("Per walk-forward window"),
            Table(q.per_window, only="html")], "ML"),
        Section("Frozen model vs walk-forward", [Text(fig.late_line),
                                                 Table(fig.late_table, md_empty="")],
                "Frozen model"),
    ]


def provenance(fig: Figures) -> list[Section]:
    """The data holes and pauses, freqtrade's analyses, how the report was made."""
    holes, freqai = fig.holes, fig.freqai
    paused: list[Block] = [] if not holes.pauses else [
        Heading("Pairs paused (hybrid_ai.pair_pauses, every variant)"),
        Table(pd.DataFrame(holes.pauses), formatted=False, only="html")]
    if fig.analyses is None:
        analyses: list[Block] = [Html("<p>Not recorded with this run (made before run.json "
                                      "kept freqtrade's analyses).</p>")]
    else:
        analyses = [b for k, v in fig.analyses.items() for b in (Heading(k), Pre(v))] or [
            Html("<p>Skipped (--no-analyses).</p>")]
    walls = ", ".join(f"{name} {seconds(s)}" for name, s in fig.walls.items())
    how = (f"freqtrade backtesting per variant against the local exchange; FreqAI "
           f"walk-forward ({freqai['train_period_days']} days training, retrained every "
           f"{freqai['backtest_period_days']} days). Wall time {seconds(fig.wall_s)} "
           f"({walls}). Metrics: {rm.__doc__.split(chr(10))[2]}")
    return [
        Section("Data holes", [
            Table(holes.found, html_empty="None: every candle of the range is in the files.",
                  only="html"), *paused,
            Text(data_holes.__doc__.split(chr(10), 2)[2], only="html")]),
        Section("Lookahead and recursive analysis (technical layer)", analyses),
        Section("How this was made", [Text(how, only="html")]),
        Section("", [Text(f"Wall time {seconds(fig.wall_s)}.", only="md")]),
    ]


def data(fig: Figures) -> dict[str, Any]:
    """``metrics.json``: every table as rows (NaN as null where the report always wrote
    null), the verdict and what the run was."""
    q = fig.quality
    return {
        "timerange": fig.plan.timerange, "pairs": fig.plan.pairs, "wall_s": fig.wall_s,
        "variants": Records(fig.table), "late": Records(fig.late_table),
        "attribution": Records(fig.attribution), "trims": Records(fig.trims),
        "acceptance": Records(fig.accepted, nan_as_null=False),
        "per_year": Records(fig.yearly), "oracle_answers": Records(fig.answers),
        "memorisation_probe": fig.probe,
        "deflated_sharpe": fig.deflated, "baseline": fig.baseline,
        "holes": Records(fig.holes.found.astype(str), nan_as_null=False),
        "pair_pauses": fig.holes.pauses,
        "ml_exits": Records(fig.exits),
        "ml": {"label": q.label, **q.overall,
               "per_window": Records(q.per_window, nan_as_null=False),
               "reliability": Records(q.reliability, nan_as_null=False),
               "ev_gate": Records(q.ev_gate, nan_as_null=False)},
        "verdicts": fig.said}


def document(fig: Figures) -> Document:
    """The whole report, ready for ``lab.render.render``."""
    return Document(title(fig), [*performance(fig), *layers(fig), *provenance(fig)], data(fig))
