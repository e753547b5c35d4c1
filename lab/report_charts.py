"""The report's charts (PNG, matplotlib without a display): equity and drawdown of every
variant beside buy & hold, the oracle's decisions and caps on the same timeline, the ML
layer's calibration. Each takes what ``lab.report_compute`` computed and writes one file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lab.render import pyplot, save
from lab.variants import TA_ML_ORACLE
from llm_oracle.store import read_journal


def chart_equity(curves: dict[str, pd.Series], journal: Path, out: Path) -> Path:
    """Every curve (daily equity by name) as a return in %, above the oracle's decisions of
    ``journal`` over the same days (risk level, number of focus pairs)."""
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
    ax.set_title(f"Exposure vs the oracle's caps ({TA_ML_ORACLE.name})")
    return save(fig, out)


def chart_drawdown(curves: dict[str, pd.Series], out: Path) -> Path:
    """Every curve's drawdown from its running peak, in %."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 3.5))
    for name, curve in curves.items():
        ax.plot(curve.index, -(1 - curve / curve.cummax()) * 100, label=name, lw=1.2)
    ax.set_ylabel("drawdown %")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("Drawdown")
    return save(fig, out)


def chart_calibration(calibration: pd.DataFrame, out: Path) -> Path:
    """Predicted win probability vs realised win rate per bin (``predicted``, ``realised``,
    ``rows``: ``lab.ml_quality``'s reliability table)."""
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
