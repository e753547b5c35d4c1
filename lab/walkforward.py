"""``make walkforward``: walk-forward optimisation of the execution layer, on freqtrade's own
hyperopt and backtesting, without peeking.

Rolling windows over a timerange: for each, ``freqtrade hyperopt`` on the in-sample (IS)
part only (spaces ``buy sell trailing stoploss protection`` by default: the entry family and
its thresholds, the reversal exit and partial take-profit, the trail and the hard stop
within sane bounds, the protections), then ``freqtrade backtesting`` of the chosen
parameters on the out-of-sample (OOS) part that follows. The ML layer and the oracle are
off here (they are evaluated walk-forward by ``make report``); protections are on, as live.

Output (``--out``, default ``user_data/walkforward/<timerange>-<is>-<oos>``): ``report.html``,
``walkforward.json``, the stitched OOS equity (marked to market, from freqtrade's wallet
snapshots) against buy-and-hold, per-window IS vs OOS figures, walk-forward efficiency
(annualised OOS return / annualised IS return) and how stable each chosen parameter is.
Each finished window is saved in its own folder: re-running the same command resumes, and a
window that ran with another strategy, pack code, config, data, freqtrade version or hyperopt
setting runs again.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import freqtrade
import numpy as np
import pandas as pd

from hybrid_ai import fingerprint
from lab import ablation, data_holes, robustness
from lab import report_metrics as rm
from lab.project import (
    CONFIG,
    DEFAULT_DATADIR,
    REPO,
    STRATEGY,
    STRATEGY_FILE,
    DemoError,
    load_config,
    shared_data,
    strategy_with_params,
)
from local_exchange.market_data import MarketData, MarketDataError
from local_exchange.overlay import offline_overlay
from local_exchange.server import BinanceApi, LocalExchangeServer

DEFAULT_SPACES = ("buy", "sell", "roi", "trailing", "stoploss", "protection")
# The execution layer alone: no FreqAI, no oracle (their own walk-forward is make report's).
EXECUTION_ONLY = {"freqai": {"enabled": False}, "hybrid_ai": {"oracle": {"enabled": False}}}
STARTUP_DAYS = 3  # candles freqtrade loads before a window (400 x 5m, 1h SMA50)


class WalkForwardError(RuntimeError):
    """A window cannot run; the message says what to change."""


@dataclass
class Window:
    index: int
    is_start: datetime
    is_end: datetime
    oos_end: datetime

    @property
    def is_range(self) -> str:
        return f"{self.is_start:%Y%m%d}-{self.is_end:%Y%m%d}"

    @property
    def oos_range(self) -> str:
        return f"{self.is_end:%Y%m%d}-{self.oos_end:%Y%m%d}"


def plan_windows(start: datetime, end: datetime, is_days: int, oos_days: int,
                 step_days: int, anchored: bool) -> list[Window]:
    """Rolling (or anchored: IS always from ``start``) windows whose OOS parts tile the
    range after the first IS period. Too short for one window: a clear error."""
    windows: list[Window] = []
    is_start, is_end = start, start + timedelta(days=is_days)
    while is_end + timedelta(days=oos_days) <= end:
        windows.append(Window(len(windows) + 1, is_start, is_end,
                              is_end + timedelta(days=oos_days)))
        is_end += timedelta(days=step_days)
        if not anchored:
            is_start += timedelta(days=step_days)
    if not windows:
        need = is_days + oos_days
        raise WalkForwardError(
            f"timerange {start:%Y-%m-%d} to {end:%Y-%m-%d} is {(end - start).days} days: too "
            f"short for one window of {is_days} in-sample + {oos_days} out-of-sample days "
            f"({need} days). Lengthen --timerange or shorten --is-days / --oos-days.")
    return windows


def _freqtrade(args: list[str], configs: list[Path], log: Path) -> None:
    cmd = [sys.executable, "-m", "freqtrade", args[0]]
    for c in configs:
        cmd += ["-c", str(c)]
    cmd += args[1:]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "250"})
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise WalkForwardError(f"freqtrade {args[0]} failed (log: {log}):\n"
                               f"{proc.stderr[-2500:]}")


def best_epoch(userdir: Path, min_trades: int) -> dict[str, Any]:
    """The lowest-loss hyperopt epoch with at least ``min_trades`` trades, from freqtrade's
    own results file."""
    from freqtrade.optimize.hyperopt_tools import HyperoptTools

    files = sorted((userdir / "hyperopt_results").glob("*.fthypt"),
                   key=lambda p: p.stat().st_mtime)
    if not files:
        raise WalkForwardError(f"no hyperopt results in {userdir / 'hyperopt_results'}")
    epochs, _ = HyperoptTools.load_filtered_results(files[-1], {})
    valid = [e for e in epochs
             if e["results_metrics"].get("total_trades", 0) >= min_trades and e["loss"] < 1e5]
    if not valid:
        raise WalkForwardError(f"no hyperopt epoch reached {min_trades} trades in-sample: "
                               "lower --min-trades or lengthen --is-days")
    return min(valid, key=lambda e: e["loss"])


DAILY_SHARPE_LOSS = "SharpeHyperOptLossDaily"


def trial_sharpes(userdir: Path, loss: str) -> list[float]:
    """The in-sample daily Sharpe ratio (annualised) of every epoch the window's hyperopt
    evaluated: the trials its choice was made among. With ``SharpeHyperOptLossDaily`` that
    is minus each epoch's loss (freqtrade's daily Sharpe of the epoch); with another loss,
    freqtrade's trade-based ``sharpe`` (a different scale: the Deflated Sharpe then says
    less). Epochs freqtrade scored as failed (loss >= 1e5) are left out."""
    from freqtrade.optimize.hyperopt_tools import HyperoptTools

    files = sorted((userdir / "hyperopt_results").glob("*.fthypt"),
                   key=lambda p: p.stat().st_mtime)
    epochs, _ = HyperoptTools.load_filtered_results(files[-1], {}) if files else ([], 0)
    return [float(-e["loss"] if loss == DAILY_SHARPE_LOSS
                  else e["results_metrics"].get("sharpe", 0.0) or 0.0)
            for e in epochs if e["loss"] < 1e5]


def flat_params(epoch: dict[str, Any]) -> dict[str, Any]:
    """Chosen parameters, one level deep (``buy_family``, ``stoploss``, ...); the ``roi``
    table as its time exit, ``max_hold_hours`` (the holding horizon)."""
    out: dict[str, Any] = {}
    for name, space in epoch["params_details"].items():
        if name == "roi" and isinstance(space, dict):
            exits = [int(k) for k, v in space.items() if float(v) == -1]
            out["max_hold_hours"] = min(exits) / 60 if exits else None
        elif isinstance(space, dict):
            out.update({k: v for k, v in space.items() if not isinstance(v, dict)})
    return out


def inputs_fingerprint(args: argparse.Namespace, pairs: list[str],
                       datadir: Path) -> fingerprint.Inputs:
    """What a window's result depends on besides its dates, by name: the strategy and the
    pack code it imports, the config, the pairs' candle files (by size), freqtrade's version
    and the hyperopt settings. A saved window with another value of any is stale and runs
    again, and the names say why."""
    data = [f"{p.name}:{p.stat().st_size}" for pair in pairs
            for p in sorted(datadir.glob(f"{pair.replace('/', '_')}-*.feather"))]
    return {
        "strategy source": fingerprint.files_digest([STRATEGY_FILE], REPO),
        "pack code": fingerprint.files_digest((REPO / "hybrid_ai").rglob("*.py"), REPO),
        "config.json": fingerprint.files_digest([CONFIG], REPO),
        "candle files": fingerprint.digest(data),
        "freqtrade version": fingerprint.digest(freqtrade.__version__),
        "pairs": fingerprint.digest(pairs),
        **{f"--{name.replace('_', '-')}": fingerprint.digest(value) for name, value in (
            ("epochs", args.epochs), ("hyperopt_loss", args.loss),
            ("min_trades", args.min_trades), ("spaces", sorted(args.spaces)),
            ("seed", args.seed))},
    }


def _saved_window(path: Path) -> dict[str, Any]:
    """A finished window's record, or {} when it is unreadable (then the window runs again)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def run_window(w: Window, wdir: Path, configs: list[Path], datadir: Path,
               pairs: list[str], args: argparse.Namespace,
               inputs: fingerprint.Inputs) -> dict[str, Any]:
    """Hyperopt IS, then backtest the chosen parameters OOS; saved to ``wdir/window.json``
    with the ``inputs`` fingerprint it ran with."""

    started = time.monotonic()
    shutil.rmtree(wdir, ignore_errors=True)  # an interrupted window starts over
    userdir = wdir / "user_data"
    for sub in ("hyperopt_results", "backtest_results", "strategies"):
        (userdir / sub).mkdir(parents=True, exist_ok=True)
    common = ["--userdir", str(userdir), "--datadir", str(datadir), "--pairs", *pairs,
              "--strategy", STRATEGY, "--enable-protections"]
    _freqtrade(["hyperopt", *common, "--strategy-path", str(STRATEGY_FILE.parent),
                "--timerange", w.is_range, "--spaces", *args.spaces, "-e", str(args.epochs),
                "-j", str(args.jobs), "--hyperopt-loss", args.loss, "--min-trades",
                str(args.min_trades), "--random-state", str(args.seed),
                "--disable-param-export", "--print-json", "--no-color"],
               configs, wdir / "hyperopt.log")
    epoch = best_epoch(userdir, args.min_trades)
    # The chosen parameters beside a copy of the strategy: freqtrade loads them from there.
    strategy_dir = strategy_with_params(userdir / "strategies", epoch)
    result_dir = wdir / "oos"
    result_dir.mkdir()
    _freqtrade(["backtesting", *common, "--strategy-path", str(strategy_dir), "--timerange",
                w.oos_range, "--cache", "none", "--export", "trades", "--backtest-directory",
                str(result_dir)], configs, wdir / "oos.log")
    oos = rm.load_run("oos", result_dir)
    is_m = epoch["results_metrics"]
    is_days, oos_days = (w.is_end - w.is_start).days, (w.oos_end - w.is_end).days
    row = rm.variant_row(oos)
    record = {
        "window": asdict(w) | {"is_range": w.is_range, "oos_range": w.oos_range},
        "inputs": inputs,
        "params": flat_params(epoch),
        "loss": epoch["loss"],
        "trial_sharpes": trial_sharpes(userdir, args.loss),
        "is": {"total_return": is_m.get("profit_total", 0.0),
               "trades": is_m.get("total_trades", 0), "sharpe": is_m.get("sharpe", 0.0),
               "max_drawdown": is_m.get("max_drawdown_account", 0.0),
               "annualised": _annualised(is_m.get("profit_total", 0.0), is_days)},
        "oos": {k: row[k] for k in ("total_return", "trades", "sharpe", "max_drawdown",
                                     "exposure", "win_rate")}
        | {"annualised": _annualised(row["total_return"], oos_days),
           "sharpe_trades": oos.stats.get("sharpe", 0.0)},
        "wall_s": time.monotonic() - started,
    }
    is_ann = record["is"]["annualised"]
    record["wfe"] = record["oos"]["annualised"] / is_ann if is_ann > 0 else None
    daily = rm.daily_equity(oos)
    record["oos_daily_equity"] = {d.strftime("%Y-%m-%d"): float(v) for d, v in daily.items()}
    (wdir / "window.json").write_text(json.dumps(record, indent=2, default=str))
    return record


def _annualised(total: float, days: int) -> float:
    return (1 + total) ** (365 / max(days, 1)) - 1 if total > -1 else -1.0


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


def summarise(records: list[dict[str, Any]], datadir: Path, pairs: list[str], out: Path,
              args: argparse.Namespace, wall: float,
              baseline: rm.Run | None = None) -> dict[str, Any]:
    from lab.report import fmt_table, img, pyplot, save, write_html

    balance = 1000.0
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
    if sharpe_ci[1] > 0:
        verdict = ("Positive out-of-sample Sharpe, interval above zero: the walk-forward "
                   "choice of entry family and parameters had an edge on this data.")
    elif sharpe_ci[2] < 0:
        verdict = ("No entry family found positive out-of-sample expectancy on this data: "
                   "the stitched out-of-sample Sharpe is negative with its interval below zero.")
    elif sharpe_ci[0] <= 0:
        verdict = ("No entry family found positive out-of-sample expectancy on this data: the "
                   f"stitched out-of-sample Sharpe is {sharpe_ci[0]:.2f}; its interval spans "
                   "zero, so the loss itself is inconclusive.")
    else:
        verdict = ("Inconclusive: a positive stitched out-of-sample Sharpe whose interval spans "
                   "zero; this data cannot tell an edge from luck.")
    wfes = [r["wfe"] for r in records if r["wfe"] is not None]
    table = pd.DataFrame([{
        "window": r["window"]["index"], "in-sample": r["window"]["is_range"],
        "out-of-sample": r["window"]["oos_range"], "family": r["params"].get("buy_family"),
        "IS return": r["is"]["total_return"], "IS trades": r["is"]["trades"],
        "IS Sharpe": r["is"]["sharpe"], "OOS return": r["oos"]["total_return"],
        "OOS trades": r["oos"]["trades"], "OOS Sharpe": r["oos"]["sharpe"],
        "OOS max DD": r["oos"]["max_drawdown"], "OOS exposure": r["oos"]["exposure"],
        "WFE": r["wfe"], "wall s": r["wall_s"]} for r in records])
    stable = stability(records)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(equity.index, (equity / balance - 1) * 100, label="stitched out-of-sample")
    ax.plot(basket.index, (basket / balance - 1) * 100, "--", label="buy & hold basket")
    for r in records:
        ax.axvline(pd.Timestamp(r["window"]["is_end"]), color="grey", lw=0.5)
    ax.set_ylabel("return %")
    ax.legend(fontsize=8)
    ax.set_title("Walk-forward: out-of-sample windows stitched (marked to market)")
    save(fig, out / "equity.png")

    headline = (f"Stitched out-of-sample, {len(records)} windows, {equity.index[0]:%Y-%m-%d} to "
                f"{equity.index[-1]:%Y-%m-%d}: return {stitched['total_return'] * 100:+.2f} % "
                f"[{ci['total_return'][1] * 100:+.2f}, {ci['total_return'][2] * 100:+.2f}], "
                f"Sharpe {sharpe_ci[0]:.2f} [{sharpe_ci[1]:.2f}, {sharpe_ci[2]:.2f}] (90 % block "
                f"bootstrap), max drawdown {stitched['max_drawdown'] * 100:.2f} %, {trades} "
                f"trades, exposure {exposure * 100:.1f} %; buy & hold basket "
                f"{bh['total_return'] * 100:+.2f} % (Sharpe {bh['sharpe']:.2f}, max drawdown "
                f"{bh['max_drawdown'] * 100:.2f} %). Median walk-forward efficiency "
                f"{statistics.median(wfes):.2f}" if wfes else "")
    how = (f"freqtrade hyperopt per window on the in-sample part ({args.epochs} epochs, "
           f"-j {args.jobs}, loss {args.loss}, at least {args.min_trades} trades, spaces "
           f"{' '.join(args.spaces)}, random state {args.seed}), then freqtrade backtesting of "
           f"the best epoch on the following out-of-sample part; ML and oracle off, "
           f"protections on; {'anchored' if args.anchored else 'rolling'} windows of "
           f"{args.is_days} + {args.oos_days} days, step {args.step_days}. Wall time "
           f"{wall:.0f} s on this machine.")
    write_html(out, f"Walk-forward optimisation, {len(pairs)} pairs, {args.timerange}", [
        ("Verdict", f"<p>{html.escape(verdict)}</p><p>{html.escape(headline)}</p>"
                    f"<p>{html.escape(against)}</p>"),
        ("Per year, with 90 % block-bootstrap intervals", fmt_table(yearly).to_html(
            index=False) if not yearly.empty else "<p>No baseline run.</p>"),
        ("Stitched out-of-sample equity", img(out / "equity.png")),
        ("Windows: in-sample vs out-of-sample", fmt_table(table).to_html(index=False)),
        ("Parameter stability", stable.to_html(index=False)),
        ("How this was made", f"<p>{html.escape(how)}</p>"),
    ])
    summary = {"verdict": verdict, "headline": headline, "how": how, "pairs": pairs,
               "timerange": args.timerange, "windows": table.replace({np.nan: None})
               .to_dict(orient="records"), "stability": stable.astype(str)
               .to_dict(orient="records"), "stitched": stitched | {
                   "trades": trades, "exposure": exposure,
                   "total_return_ci90": ci["total_return"][1:],
                   "sharpe_daily": sharpe_ci[0], "sharpe_ci90": sharpe_ci[1:]},
               "buy_and_hold": bh, "params_last_window": records[-1]["params"],
               "against_baseline": against, "deflated_sharpe": deflated,
               "per_year": yearly.replace({np.nan: None}).to_dict(orient="records"),
               "wall_s": wall}
    (out / "walkforward.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.walkforward", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datadir", type=Path, default=shared_data() or DEFAULT_DATADIR)
    parser.add_argument("--timerange", help="YYYYMMDD-YYYYMMDD (default: the whole data, "
                        "after a few days of indicator warm-up)")
    parser.add_argument("--pairs", nargs="+", help="default: the config's whitelist")
    parser.add_argument("--is-days", type=int, default=60, help="in-sample length")
    parser.add_argument("--oos-days", type=int, default=30, help="out-of-sample length")
    parser.add_argument("--step-days", type=int, help="default: --oos-days")
    parser.add_argument("--anchored", action="store_true",
                        help="in-sample always from the start (default: rolling)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--loss", default="SharpeHyperOptLossDaily",
                        help="a freqtrade hyperopt loss (SharpeHyperOptLossDaily, "
                             "SortinoHyperOptLossDaily, CalmarHyperOptLoss, ...)")
    parser.add_argument("--min-trades", type=int, default=15,
                        help="in-sample epochs with fewer trades are not chosen")
    parser.add_argument("--spaces", nargs="+", default=list(DEFAULT_SPACES))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--baseline-sma-days", type=int,
                        help="the trend baseline's moving average in days (default: the "
                             "textbook 200; shorten only for data too short to warm it up)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    args.step_days = args.step_days or args.oos_days

    try:
        config = load_config([CONFIG])
        pairs = args.pairs or list(config["exchange"]["pair_whitelist"])
        data = MarketData.load(args.datadir, pairs)
        first = datetime.fromtimestamp(data.first_time() / 1000, tz=UTC)
        last = datetime.fromtimestamp(data.last_close_time() / 1000, tz=UTC)
        if args.timerange:
            s, _, e = args.timerange.partition("-")
            start, end = (datetime.strptime(x, "%Y%m%d").replace(tzinfo=UTC) for x in (s, e))
        else:
            start = (first + timedelta(days=STARTUP_DAYS)).replace(hour=0, minute=0)
            end = last.replace(hour=0, minute=0, second=0, microsecond=0)
            args.timerange = f"{start:%Y%m%d}-{end:%Y%m%d}"
        windows = plan_windows(start, end, args.is_days, args.oos_days, args.step_days,
                               args.anchored)
    except (DemoError, MarketDataError, WalkForwardError, ValueError) as exc:
        print(f"walkforward: error: {exc}", file=sys.stderr)
        return 2
    out = args.out or (REPO / "user_data" / "walkforward"
                       / f"{args.timerange}-{args.is_days}-{args.oos_days}")
    out.mkdir(parents=True, exist_ok=True)
    print(f"walkforward: {len(windows)} windows, {len(pairs)} pairs, {args.timerange}, "
          f"IS {args.is_days} d / OOS {args.oos_days} d, {args.epochs} epochs each; {out}",
          flush=True)
    server = LocalExchangeServer(BinanceApi(data), port=0)
    server.start_in_thread()
    started = time.monotonic()
    records, spent = [], []
    try:
        overlay = out / "walkforward.config.json"
        overlay.write_text(json.dumps({**offline_overlay(server.url), **EXECUTION_ONLY},
                                      indent=2))
        # A pair is paused around every hole of a day or more in its candles, as in make
        # report (lab.data_holes): no trade carried across candles that do not exist.
        holes = data_holes.holes(args.datadir, pairs, config["timeframe"],
                                 pd.Timestamp(start), pd.Timestamp(end))
        paused = out / "pauses.json"
        paused.write_text(json.dumps({"hybrid_ai": {"pair_pauses": data_holes.pair_pauses(
            holes, config["timeframe"])}}, indent=2))
        configs = [CONFIG, overlay, paused]
        inputs = inputs_fingerprint(args, pairs, args.datadir)
        for w in windows:
            wdir = out / f"window-{w.index:02d}"
            saved = wdir / "window.json"
            if saved.exists():  # resume: this window finished in an earlier run
                record = _saved_window(saved)
                stale = fingerprint.changed(record.get("inputs"), inputs)
                if not stale:
                    records.append(record)
                    print(f"walkforward: window {w.index}/{len(windows)} done earlier, reused",
                          flush=True)
                    continue
                why = (f"changed: {', '.join(stale)}" if isinstance(record.get("inputs"), dict)
                       else "its record is unreadable or from an older version")
                print(f"walkforward: window {w.index}/{len(windows)} ran with other inputs "
                      f"({why}); running it again", flush=True)
            record = run_window(w, wdir, configs, args.datadir, pairs, args, inputs)
            records.append(record)
            spent.append(record["wall_s"])
            left = len(windows) - w.index
            eta = statistics.fmean(spent) * left
            print(f"walkforward: window {w.index}/{len(windows)} IS {w.is_range} OOS "
                  f"{w.oos_range}: {record['params'].get('buy_family')}, OOS "
                  f"{record['oos']['total_return'] * 100:+.2f} % ({record['oos']['trades']} "
                  f"trades) in {record['wall_s']:.0f} s; ETA {eta / 60:.1f} min", flush=True)
        # The plain trend rule over the same out-of-sample span, through freqtrade too.
        base = ablation.trend_baseline(f"{windows[0].is_end:%Y%m%d}-{windows[-1].oos_end:%Y%m%d}",
                                       pairs, args.baseline_sma_days)
        try:
            ablation.run_variant(base, out / "baseline", args.datadir, server.url, pairs,
                                 (paused,))
            baseline = rm.load_run(base.name, base.result_dir, base.strategy)
        except ablation.AblationError as exc:  # e.g. too few candles for its moving average
            baseline = None
            print(f"walkforward: the trend baseline did not run ({str(exc)[-400:]}); "
                  "--baseline-sma-days shortens its warm-up for short data", file=sys.stderr)
    except WalkForwardError as exc:
        print(f"walkforward: error: {exc}", file=sys.stderr)
        return 2
    finally:
        server.stop()
    summary = summarise(records, args.datadir, pairs, out, args, time.monotonic() - started,
                        baseline)
    print(summary["verdict"])
    print(summary["headline"])
    print(summary["against_baseline"])
    print(f"walkforward: {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
