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
import pandas as pd

from hybrid_ai import fingerprint
from lab import ablation, preamble
from lab import report_metrics as rm
from lab.preamble import Market
from lab.project import (
    DEFAULT_DATADIR,
    PACK_CONFIGS,
    REPO,
    STRATEGY,
    STRATEGY_FILE,
    DemoError,
    shared_data,
    strategy_with_params,
)
from lab.walkforward_summary import summarise
from local_exchange.market_data import MarketDataError
from local_exchange.overlay import offline_overlay

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
        "config.json": fingerprint.files_digest(list(PACK_CONFIGS), REPO),
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab.walkforward", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datadir", type=Path, default=shared_data() or DEFAULT_DATADIR)
    p.add_argument("--timerange", help="YYYYMMDD-YYYYMMDD (default: the whole data, "
                   "after a few days of indicator warm-up)")
    p.add_argument("--pairs", nargs="+", help="default: the config's whitelist")
    p.add_argument("--is-days", type=int, default=60, help="in-sample length")
    p.add_argument("--oos-days", type=int, default=30, help="out-of-sample length")
    p.add_argument("--step-days", type=int, help="default: --oos-days")
    p.add_argument("--anchored", action="store_true",
                   help="in-sample always from the start (default: rolling)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("--loss", default="SharpeHyperOptLossDaily",
                   help="a freqtrade hyperopt loss (SharpeHyperOptLossDaily, "
                        "SortinoHyperOptLossDaily, CalmarHyperOptLoss, ...)")
    p.add_argument("--min-trades", type=int, default=15,
                   help="in-sample epochs with fewer trades are not chosen")
    p.add_argument("--spaces", nargs="+", default=list(DEFAULT_SPACES))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--baseline-sma-days", type=int,
                   help="the trend baseline's moving average in days (default: the "
                        "textbook 200; shorten only for data too short to warm it up)")
    p.add_argument("--out", type=Path)
    return p


def plan(args: argparse.Namespace) -> tuple[Market, list[Window], datetime, datetime]:
    """The market (config, pairs, candles), the windows and the range they tile (default:
    the whole data after ``STARTUP_DAYS``; sets ``args.timerange``). ``DemoError``,
    ``MarketDataError``, ``WalkForwardError`` or ``ValueError``: what to change."""
    market = preamble.load_market(args.datadir, args.pairs, list(PACK_CONFIGS))
    first = datetime.fromtimestamp(market.data.first_time() / 1000, tz=UTC)
    last = datetime.fromtimestamp(market.data.last_close_time() / 1000, tz=UTC)
    if args.timerange:
        s, _, e = args.timerange.partition("-")
        start, end = (datetime.strptime(x, "%Y%m%d").replace(tzinfo=UTC) for x in (s, e))
    else:
        start = (first + timedelta(days=STARTUP_DAYS)).replace(hour=0, minute=0)
        end = last.replace(hour=0, minute=0, second=0, microsecond=0)
        args.timerange = f"{start:%Y%m%d}-{end:%Y%m%d}"
    windows = plan_windows(start, end, args.is_days, args.oos_days, args.step_days,
                           args.anchored)
    return market, windows, start, end


def window_configs(out: Path, exchange_url: str, market: Market, datadir: Path,
                   start: datetime, end: datetime) -> list[Path]:
    """config.json, the overlay pointing freqtrade at the local exchange with ML and oracle
    off, and the pair pauses (written under ``out``; the last of the list)."""
    overlay = out / "walkforward.config.json"
    overlay.write_text(json.dumps({**offline_overlay(exchange_url), **EXECUTION_ONLY},
                                  indent=2))
    # A pair is paused around every hole of a day or more in its candles, as in make
    # report (lab.data_holes): no trade carried across candles that do not exist.
    holes = preamble.holes(datadir, market.pairs, market.config["timeframe"],
                           pd.Timestamp(start), pd.Timestamp(end))
    return [*PACK_CONFIGS, overlay, preamble.pauses_overlay(out / "pauses.json", holes.pauses)]


def reused(w: Window, wdir: Path, inputs: fingerprint.Inputs, n: int) -> dict[str, Any] | None:
    """The window's saved record when it finished earlier with the same ``inputs``; None
    (saying why) when it must run (again)."""
    saved = wdir / "window.json"
    if not saved.exists():
        return None
    record = _saved_window(saved)
    stale = fingerprint.changed(record.get("inputs"), inputs)
    if not stale:
        print(f"walkforward: window {w.index}/{n} done earlier, reused", flush=True)
        return record
    why = (f"changed: {', '.join(stale)}" if isinstance(record.get("inputs"), dict)
           else "its record is unreadable or from an older version")
    print(f"walkforward: window {w.index}/{n} ran with other inputs ({why}); running it again",
          flush=True)
    return None


def run_windows(windows: list[Window], out: Path, configs: list[Path], pairs: list[str],
                args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every window's record: reused when it finished earlier with the same inputs, else
    run (``WalkForwardError`` when one cannot)."""
    inputs = inputs_fingerprint(args, pairs, args.datadir)
    records, spent = [], []
    for w in windows:
        wdir = out / f"window-{w.index:02d}"
        if (record := reused(w, wdir, inputs, len(windows))) is not None:
            records.append(record)
            continue
        record = run_window(w, wdir, configs, args.datadir, pairs, args, inputs)
        records.append(record)
        spent.append(record["wall_s"])
        eta = statistics.fmean(spent) * (len(windows) - w.index)
        print(f"walkforward: window {w.index}/{len(windows)} IS {w.is_range} OOS "
              f"{w.oos_range}: {record['params'].get('buy_family')}, OOS "
              f"{record['oos']['total_return'] * 100:+.2f} % ({record['oos']['trades']} "
              f"trades) in {record['wall_s']:.0f} s; ETA {eta / 60:.1f} min", flush=True)
    return records


def run_baseline(windows: list[Window], out: Path, exchange_url: str, pairs: list[str],
                 args: argparse.Namespace, pauses: Path) -> rm.Run | None:
    """The plain trend rule over the same out-of-sample span, through freqtrade too; None
    (saying why) when it cannot run, e.g. too few candles for its moving average."""
    base = ablation.trend_baseline(f"{windows[0].is_end:%Y%m%d}-{windows[-1].oos_end:%Y%m%d}",
                                   pairs, args.baseline_sma_days)
    try:
        ablation.run_variant(base, out / "baseline", args.datadir, exchange_url, pairs,
                             (pauses,))
        return rm.load_run(base.name, base.result_dir, base.strategy)
    except ablation.AblationError as exc:
        print(f"walkforward: the trend baseline did not run ({str(exc)[-400:]}); "
              "--baseline-sma-days shortens its warm-up for short data", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.step_days = args.step_days or args.oos_days
    try:
        market, windows, start, end = plan(args)
    except (DemoError, MarketDataError, WalkForwardError, ValueError) as exc:
        print(f"walkforward: error: {exc}", file=sys.stderr)
        return 2
    out = args.out or (REPO / "user_data" / "walkforward"
                       / f"{args.timerange}-{args.is_days}-{args.oos_days}")
    out.mkdir(parents=True, exist_ok=True)
    print(f"walkforward: {len(windows)} windows, {len(market.pairs)} pairs, {args.timerange}, "
          f"IS {args.is_days} d / OOS {args.oos_days} d, {args.epochs} epochs each; {out}",
          flush=True)
    with preamble.local_exchange(market.data) as url:
        started = time.monotonic()
        try:
            configs = window_configs(out, url, market, args.datadir, start, end)
            records = run_windows(windows, out, configs, market.pairs, args)
            baseline = run_baseline(windows, out, url, market.pairs, args, configs[-1])
        except WalkForwardError as exc:
            print(f"walkforward: error: {exc}", file=sys.stderr)
            return 2
    summary = summarise(records, args.datadir, market.pairs, out, args,
                        time.monotonic() - started, baseline)
    print(summary["verdict"])
    print(summary["headline"])
    print(summary["against_baseline"])
    print(f"walkforward: {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
