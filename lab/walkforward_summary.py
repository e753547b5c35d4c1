"""The walk-forward's figures, from its windows' saved records (``window-NN/window.json``) and
their freqtrade results: the stitched out-of-sample equity against buy & hold and the trend
baseline, per-window IS vs OOS figures, walk-forward efficiency, how stable each chosen
parameter is and the Deflated Sharpe Ratio for every configuration the hyperopts tried;
written as one ``lab.render.Document`` (``report.html``, ``walkforward.json``).
"""

from __future__ import annotations

import argparse
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lab import report_metrics as rm
from lab import robustness
from lab.render import (
    Chart,
    Document,
    Files,
    Records,
    Section,
    Table,
    Text,
    plain,
    pyplot,
    render,
    save,
)

BALANCE = 1000.0  # the stitched curve's (and the basket's) starting value, quote currency


def stitch(records: list[dict[str, Any]], balance: float) -> pd.Series:
    """One OOS equity curve: each window's daily mark-to-market returns, compounded."""
    growth = []
    for r in records:
        eq = pd.Series(r["oos_daily_equity"])
        eq.index = pd.to_datetime(eq.index, utc=True)
        growth.append(eq / eq.shift(1).fillna(balance))  # each window starts at the balance
    # A window's last mark and the next window's first fall on the same date: compound both.
    joined = pd.concat(growth).groupby(level=0).prod().sort_index()
    start = pd.Series([1.0], index=[joined.index[0] - pd.Timedelta(days=1)])
    return balance * pd.concat([start, joined]).cumprod()  # from the balance, the day before


def stability(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per parameter: its value in each window, and how much it moved."""
    params = pd.DataFrame([r["params"] for r in records],
                          index=[f"w{r['window']['index']}" for r in records])
    rows = []
    for name in params.columns:
        values = params[name].dropna().tolist()
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric and len(values) > 1 and statistics.fmean(values) != 0:
            spread = statistics.pstdev(values) / abs(statistics.fmean(values))
            summary = f"mean {statistics.fmean(values):.4g}, cv {spread:.2f}"
        else:
            mode = max(set(map(str, values)), key=list(map(str, values)).count)
            share = list(map(str, values)).count(mode) / len(values)
            summary = f"{mode} in {share:.0%} of windows"
        rows.append({"parameter": name, **{c: params.at[c, name] for c in params.index},
                     "stability": summary})
    return pd.DataFrame(rows)


def interval(equity: pd.Series, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Total return and Sharpe of the stitched OOS curve, with block-bootstrap 90 % bounds."""
    r = equity.pct_change().dropna().to_numpy()
    bounds = robustness.bootstrap(r, seed)
    point_sd = r.std()
    point = (float(np.prod(1 + r) - 1),
             float(r.mean() / point_sd * np.sqrt(365)) if point_sd > 0 else 0.0)
    return {"total_return": (point[0], *map(float, bounds["return"])),
            "sharpe": (point[1], *map(float, bounds["sharpe"]))}


def oos_trades(records: list[dict[str, Any]], out: Path) -> pd.DataFrame:
    """Every out-of-sample trade of the windows, from their freqtrade results."""
    frames = []
    for r in records:
        result = out / f"window-{r['window']['index']:02d}" / "oos"
        if result.exists():
            frames.append(rm.load_run("oos", result).trades)
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def honesty(records: list[dict[str, Any]], args: argparse.Namespace, equity: pd.Series,
            baseline: rm.Run, basket: pd.Series, trades: pd.DataFrame,
            balance: float) -> tuple[dict[str, float], pd.DataFrame, str]:
    """The Deflated Sharpe Ratio of the stitched curve for every configuration the windows'
    hyperopts evaluated, the per-year table (stitched, trend baseline, basket), and the
    comparison with the trend baseline as a sentence."""
    # The trials' spread on the same data: each window's epochs, the variances averaged
    # (pooling the windows would add the regimes' differences to the luck of the search).
    spreads = [robustness.annual_to_period_var(r["trial_sharpes"]) for r in records
               if len(r.get("trial_sharpes") or []) > 1]
    trials = sum(len(r.get("trial_sharpes") or []) or args.epochs for r in records)
    deflated = robustness.deflated_sharpe(equity.pct_change().dropna(), trials,
                                          float(np.mean(spreads)) if spreads else 0.0)
    base_curve = rm.daily_equity(baseline)
    base_curve = base_curve / base_curve.iloc[0] * balance
    yearly = robustness.per_year(
        {"walk-forward (stitched OOS)": equity, baseline.name: base_curve,
         "buy & hold basket": basket},
        {"walk-forward (stitched OOS)": trades, baseline.name: baseline.trades})
    diff = rm.compare(base_curve.reindex(equity.index).ffill().bfill(), equity)
    point, low, high = diff["sharpe"]
    base = rm.variant_row(baseline)
    sentence = (f"Against the {baseline.name} ({base['trades']:.0f} trades, Sharpe "
                f"{base['sharpe']:.2f}, return {base['total_return'] * 100:+.2f} %, max "
                f"drawdown {base['max_drawdown'] * 100:.1f} %, exposure "
                f"{base['exposure'] * 100:.1f} %): Sharpe difference {point:+.2f} "
                f"[{low:+.2f}, {high:+.2f}], {rm.call(diff['sharpe'], 'higher')}. Deflated "
                f"Sharpe Ratio {deflated['dsr']:.3f} for {trials} configurations tried (the "
                f"best of as many unskilled ones would show Sharpe {deflated['sharpe0']:.2f}).")
    return deflated, yearly, sentence


def verdict_of(sharpe_ci: tuple[float, float, float]) -> str:
    """The verdict from the stitched out-of-sample Sharpe (point, 90 % low, high)."""
    if sharpe_ci[1] > 0:
        return ("Positive out-of-sample Sharpe, interval above zero: the walk-forward "
                "choice of entry family and parameters had an edge on this data.")
    if sharpe_ci[2] < 0:
        return ("No entry family found positive out-of-sample expectancy on this data: "
                "the stitched out-of-sample Sharpe is negative with its interval below zero.")
    if sharpe_ci[0] <= 0:
        return ("No entry family found positive out-of-sample expectancy on this data: the "
                f"stitched out-of-sample Sharpe is {sharpe_ci[0]:.2f}; its interval spans "
                "zero, so the loss itself is inconclusive.")
    return ("Inconclusive: a positive stitched out-of-sample Sharpe whose interval spans "
            "zero; this data cannot tell an edge from luck.")


def windows_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per window: its spans, the chosen entry family, IS and OOS figures, WFE."""
    return pd.DataFrame([{
        "window": r["window"]["index"], "in-sample": r["window"]["is_range"],
        "out-of-sample": r["window"]["oos_range"], "family": r["params"].get("buy_family"),
        "IS return": r["is"]["total_return"], "IS trades": r["is"]["trades"],
        "IS Sharpe": r["is"]["sharpe"], "OOS return": r["oos"]["total_return"],
        "OOS trades": r["oos"]["trades"], "OOS Sharpe": r["oos"]["sharpe"],
        "OOS max DD": r["oos"]["max_drawdown"], "OOS exposure": r["oos"]["exposure"],
        "WFE": r["wfe"], "wall s": r["wall_s"]} for r in records])


def chart_stitched(equity: pd.Series, basket: pd.Series, records: list[dict[str, Any]],
                   balance: float, out: Path) -> Path:
    """The stitched OOS equity against the basket, in % of ``balance``; a line per window."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(equity.index, (equity / balance - 1) * 100, label="stitched out-of-sample")
    ax.plot(basket.index, (basket / balance - 1) * 100, "--", label="buy & hold basket")
    for r in records:
        ax.axvline(pd.Timestamp(r["window"]["is_end"]), color="grey", lw=0.5)
    ax.set_ylabel("return %")
    ax.legend(fontsize=8)
    ax.set_title("Walk-forward: out-of-sample windows stitched (marked to market)")
    return save(fig, out)


def how_made(args: argparse.Namespace, wall: float) -> str:
    """How the walk-forward was made: the hyperopt and window settings, the wall time."""
    return (f"freqtrade hyperopt per window on the in-sample part ({args.epochs} epochs, "
            f"-j {args.jobs}, loss {args.loss}, at least {args.min_trades} trades, spaces "
            f"{' '.join(args.spaces)}, random state {args.seed}), then freqtrade backtesting of "
            f"the best epoch on the following out-of-sample part; ML and oracle off, "
            f"protections on; {'anchored' if args.anchored else 'rolling'} windows of "
            f"{args.is_days} + {args.oos_days} days, step {args.step_days}. Wall time "
            f"{wall:.0f} s on this machine.")


def summarise(records: list[dict[str, Any]], datadir: Path, pairs: list[str], out: Path,
              args: argparse.Namespace, wall: float,
              baseline: rm.Run | None = None) -> dict[str, Any]:
    """The walk-forward's figures from its windows' records (and the trend baseline's run,
    if it ran), written as ``report.html`` and ``walkforward.json`` under ``out``; returns
    the JSON's content."""
    balance = BALANCE
    equity = stitch(records, balance)
    start, end = equity.index[0], equity.index[-1]
    basket = rm.buy_and_hold(datadir, pairs, start, end) * balance
    trades_oos = oos_trades(records, out)
    deflated, yearly, against = ({}, pd.DataFrame(), "") if baseline is None else honesty(
        records, args, equity, baseline, basket, trades_oos, balance)
    stitched = rm.series_metrics(equity)
    bh = rm.series_metrics(basket)
    trades = sum(r["oos"]["trades"] for r in records)
    days = [(datetime.fromisoformat(str(r["window"]["oos_end"]))
             - datetime.fromisoformat(str(r["window"]["is_end"]))).days for r in records]
    exposure = float(np.average([r["oos"]["exposure"] for r in records], weights=days))
    ci = interval(equity)
    sharpe_ci = ci["sharpe"]
    verdict = verdict_of(sharpe_ci)
    wfes = [r["wfe"] for r in records if r["wfe"] is not None]
    table = windows_table(records)
    stable = stability(records)
    headline = (f"Stitched out-of-sample, {len(records)} windows, {equity.index[0]:%Y-%m-%d} to "
                f"{equity.index[-1]:%Y-%m-%d}: return {stitched['total_return'] * 100:+.2f} % "
                f"[{ci['total_return'][1] * 100:+.2f}, {ci['total_return'][2] * 100:+.2f}], "
                f"Sharpe {sharpe_ci[0]:.2f} [{sharpe_ci[1]:.2f}, {sharpe_ci[2]:.2f}] (90 % block "
                f"bootstrap), max drawdown {stitched['max_drawdown'] * 100:.2f} %, {trades} "
                f"trades, exposure {exposure * 100:.1f} %; buy & hold basket "
                f"{bh['total_return'] * 100:+.2f} % (Sharpe {bh['sharpe']:.2f}, max drawdown "
                f"{bh['max_drawdown'] * 100:.2f} %). Median walk-forward efficiency "
                f"{statistics.median(wfes):.2f}" if wfes else "")
    how = how_made(args, wall)
    doc = Document(f"Walk-forward optimisation, {len(pairs)} pairs, {args.timerange}", [
        Section("Verdict", [Text(verdict), Text(headline), Text(against)]),
        Section("Per year, with 90 % block-bootstrap intervals",
                [Table(yearly, html_empty="No baseline run.")]),
        Section("Stitched out-of-sample equity", [Chart("equity.png", lambda path: (
            chart_stitched(equity, basket, records, balance, path)))]),
        Section("Windows: in-sample vs out-of-sample", [Table(table)]),
        Section("Parameter stability", [Table(stable, formatted=False)]),
        Section("How this was made", [Text(how)]),
    ], {"verdict": verdict, "headline": headline, "how": how, "pairs": pairs,
        "timerange": args.timerange, "windows": Records(table),
        "stability": Records(stable.astype(str), nan_as_null=False), "stitched": stitched | {
            "trades": trades, "exposure": exposure,
            "total_return_ci90": ci["total_return"][1:],
            "sharpe_daily": sharpe_ci[0], "sharpe_ci90": sharpe_ci[1:]},
        "buy_and_hold": bh, "params_last_window": records[-1]["params"],
        "against_baseline": against, "deflated_sharpe": deflated,
        "per_year": Records(yearly), "wall_s": wall})
    render(doc, out, Files(md=None, json="walkforward.json"))
    return plain(doc.data)
