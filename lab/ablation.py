"""The layers switched on one by one, each a plain ``freqtrade backtesting`` run.

Every variant backtests the same pairs and timerange against one local exchange, in one
work directory, so FreqAI trains the ML layer walk-forward once (a model per
``backtest_period_days`` window, trained on the ``train_period_days`` before it) and the
later variants reuse its saved predictions: no variant sees its test window in training.

The earlier defaults first, 5m oversold recovery held a day at most
(``user_data/presets/oversold-recovery.json``, its own FreqAI models):

* ``ta``            technical entries; ML and oracle *observed* (computed, not deciding),
                    so the report can say which of these entries each layer would block;
* ``ta+ml``         the ML gate and sizing decide;
* ``ta+ml+oracle``  plus the oracle, replayed from a heuristic backfill (point-in-time);
* ``ta+ml+llm``     plus the oracle replayed from a journal an LLM wrote, when one is given;
* ``ta+ml wide``    the ML gate choosing among a wider candidate set: every candle of a 1h
                    uptrend (entry family ``trend``) instead of the technical signal's;
* ``frozen`` / ``walk-forward (late)``  the last weeks twice: once with the models frozen
  at their start (``hybrid_ai.ml.frozen_models``), once retrained weekly as usual;
* ``trend baseline``  what a user would run instead: ``strategies/TrendBaseline.py`` (200-day
  SMA trend rule, inverse-volatility stakes, textbook parameters), through freqtrade too.

And the shipped defaults, time-series momentum over days (``hybrid_ai.momentum``), with
parameters fixed before any run (a 30-day average, the top 3 of the whitelist by 30-day return,
a week's holding at most), each layer added in turn as above:

* ``mom``                   momentum alone (ML and oracle off);
* ``mom top-3``             only the three strongest pairs (the cross-sectional gate);
* ``mom top-3 +ml``         FreqAI meta-labels these entries, trained on the outcome of a
                            momentum trade held up to a week (its label follows the family's
                            exits and horizon); the oracle observed: the shipped defaults;
* ``mom top-3 +ml+oracle``  plus the oracle deciding (heuristic backfill).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from freqtrade.misc import deep_merge_dicts

from lab.project import (
    CONFIG,
    OVERSOLD_PRESET,
    REPO,
    STRATEGY,
    load_config,
    strategy_with_params,
)
from local_exchange.overlay import offline_overlay


@dataclass
class Variant:
    name: str
    overlay: dict[str, Any]
    timerange: str
    description: str
    # strategy parameters by hyperopt space, e.g. {"buy": {"buy_family": "trend"}}: the
    # variant runs a copy of the strategy with them beside it (freqtrade's params file)
    params: dict[str, dict[str, Any]] | None = None
    strategy: str = STRATEGY
    result_dir: Path | None = None
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class AblationError(RuntimeError):
    """A backtest failed; the message holds the end of freqtrade's output."""


def oracle_overlay(journal: Path, observe: list[str] | None = None) -> dict[str, Any]:
    """The oracle replayed from ``journal``, deciding unless it is in ``observe`` (the
    shipped config observes it: every variant says which layers decide)."""
    return {"hybrid_ai": {"oracle": {"enabled": True, "source": str(journal.resolve())},
                          "observe_only": list(observe or [])}}


def split_late(timerange: str, late_weeks: int, window_days: int) -> str:
    """The start of the late period: whole FreqAI windows after the timerange's start, so
    the walk-forward windows of the full run and of the late run coincide."""
    start_s, _, end_s = timerange.partition("-")
    start, end = (datetime.strptime(x, "%Y%m%d").replace(tzinfo=UTC) for x in (start_s, end_s))
    windows = max(1, ((end - start).days - late_weeks * 7) // window_days)
    late = start + timedelta(days=windows * window_days)
    if late >= end:
        raise AblationError(f"timerange {timerange} is too short for a late period")
    return late.strftime("%Y%m%d")


# The earlier defaults, 5m oversold recovery held a day at most, kept as a preset a user can
# run (see the README); the report's `ta...` variants run exactly it.
OVERSOLD = OVERSOLD_PRESET.params
WIDE = {"buy": {**OVERSOLD["buy"], "buy_family": "trend"}}
# The shipped defaults are momentum (30-day average and ranking, the top 3, a week at most):
# its variants run the strategy as shipped, `mom` only without the top-k gate.
MOMENTUM_NO_TOP = {"buy": {"buy_top_k": 0}}


def oversold(overlay: dict[str, Any], oversold_config: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` on top of the oversold preset (its label horizon, model identifier and
    deciding oracle) and its time exit; the variant's own keys win."""
    base = {"minimal_roi": OVERSOLD_PRESET.roi, **copy.deepcopy(oversold_config)}
    return deep_merge_dicts(copy.deepcopy(overlay), base)


def plan(timerange: str, heuristic_journal: Path, llm_journal: Path | None,
         models_dir: Path, late_weeks: int = 8,
         configs: tuple[Path, ...] = ()) -> list[Variant]:
    config = load_config([CONFIG, *configs])
    preset = load_config([OVERSOLD_PRESET.config_file])
    identifier = preset["freqai"]["identifier"]
    late = split_late(timerange, late_weeks, config["freqai"]["backtest_period_days"])
    end = timerange.partition("-")[2]
    no_oracle = {"hybrid_ai": {"oracle": {"enabled": False}}}

    def ta(name: str, overlay: dict[str, Any], description: str, span: str = timerange,
           params: dict[str, dict[str, Any]] = OVERSOLD) -> Variant:
        return Variant(name, oversold(overlay, preset), span, description, params=params)

    variants = [
        ta("ta+ml", no_oracle, "TA entries gated and sized by the ML layer"),
        ta("ta", oracle_overlay(heuristic_journal, ["ml", "oracle"]),
           "TA entries only (ML and oracle observed, not deciding)"),
        ta("ta+ml+oracle", oracle_overlay(heuristic_journal),
           "ML plus the oracle (heuristic provider, backfilled point-in-time)"),
        ta("ta+ml wide", no_oracle, "the ML gate choosing among every candle of a 1h uptrend "
           "(entry family 'trend') instead of the technical signal's", params=WIDE),
    ]
    if llm_journal is not None:
        variants.append(ta("ta+ml+llm", oracle_overlay(llm_journal),
                           f"ML plus the oracle replayed from {llm_journal.name}"))
    variants += momentum_variants(timerange, heuristic_journal)
    variants += [
        ta("walk-forward (late)", no_oracle, "TA+ML on the late period, retrained every window",
           span=f"{late}-{end}"),
        ta("frozen (late)", {
            # Nothing new to save: the frozen model is loaded again for every window.
            "freqai": {"identifier": f"{identifier}-frozen", "save_backtest_models": False},
            "hybrid_ai": {"oracle": {"enabled": False}, "ml": {"frozen_models": {
                "dir": str((models_dir / identifier).resolve()),
                "trained_before": datetime.strptime(late, "%Y%m%d").replace(
                    tzinfo=UTC).isoformat()}}},
        }, "TA+ML on the late period with the models frozen at its start", span=f"{late}-{end}"),
    ]
    return variants


def momentum_variants(timerange: str, journal: Path) -> list[Variant]:
    """The momentum family (the shipped defaults) with each layer added in turn (see the
    module doc)."""
    off = {"freqai": {"enabled": False}, "hybrid_ai": {"oracle": {"enabled": False}}}
    return [
        Variant("mom", off, timerange, "time-series momentum: long while the hourly close is "
                "above its 30-day average, out below it, a week at most",
                params=MOMENTUM_NO_TOP),
        Variant("mom top-3", off, timerange, "momentum, only the 3 strongest pairs by 30-day "
                "return (out when one falls below the top 6)"),
        Variant("mom top-3 +ml", oracle_overlay(journal, ["oracle"]), timerange,
                "the shipped defaults: momentum top-3 meta-labelled by its ML models (label: a "
                "momentum trade held up to a week), the oracle observed"),
        Variant("mom top-3 +ml+oracle", oracle_overlay(journal), timerange,
                "momentum top-3, ML and the oracle deciding (heuristic backfill)"),
    ]


BASELINE = "trend baseline"
BASELINE_STRATEGY = "TrendBaseline"


def trend_baseline(timerange: str, pairs: list[str], sma_days: int | None = None) -> Variant:
    """``strategies/TrendBaseline.py`` over ``timerange``: 1h candles, one slot per pair, no
    FreqAI (its SMA warm-up is loaded before the range, as freqtrade does). ``sma_days``
    shortens the textbook 200 days only for data too short to warm it up; the row says so."""
    overlay: dict[str, Any] = {"timeframe": "1h", "max_open_trades": len(pairs),
                               "freqai": {"enabled": False}}
    if sma_days:
        overlay["trend_baseline"] = {"sma_days": sma_days}
    days = sma_days or 200
    name = BASELINE if days == 200 else f"{BASELINE} (SMA {days} d)"
    return Variant(name, overlay, timerange,
                   f"long while the close is above its {days}-day SMA, inverse-volatility "
                   "stakes (textbook parameters, not tuned)", strategy=BASELINE_STRATEGY)


def strategy_copy(vdir: Path, params: dict[str, dict[str, Any]]) -> Path:
    """The strategy with ``params`` (by hyperopt space) in its parameter file."""
    return strategy_with_params(vdir / "strategy",
                                {"params_details": params, "params_not_optimized": {}})


def offline_config(workdir: Path, exchange_url: str) -> Path:
    """The overlay pointing freqtrade at this report's local exchange (its port changes)."""
    path = workdir / "offline.json"
    path.write_text(json.dumps(offline_overlay(exchange_url), indent=2))
    return path


def run_variant(variant: Variant, workdir: Path, datadir: Path, exchange_url: str,
                pairs: list[str] | None, configs: tuple[Path, ...] = ()) -> Variant:
    """``freqtrade backtesting`` of ``variant``: the pack's config, then ``configs`` (the
    user's overlays, e.g. ``user_data/config.history.json``), the local exchange and the
    variant's own overlay, each later one winning."""
    slug = re.sub(r"[^a-z0-9]+", "_", variant.name).strip("_")
    vdir = workdir / "runs" / slug
    vdir.mkdir(parents=True, exist_ok=True)
    overlay = vdir / "variant.json"
    overlay.write_text(json.dumps(variant.overlay, indent=2))
    offline = offline_config(workdir, exchange_url)
    cmd = [sys.executable, "-m", "freqtrade", "backtesting", "-c", str(CONFIG),
           *[arg for c in configs for arg in ("-c", str(c))],
           "-c", str(offline), "-c", str(overlay), "--userdir", str(workdir),
           "--datadir", str(datadir), "--timerange", variant.timerange, "--cache", "none",
           "--export", "signals", "--backtest-directory", str(vdir),
           "--enable-protections"]  # as the live bot always runs them
    if variant.params:
        cmd += ["--strategy-path", str(strategy_copy(vdir, variant.params))]
    if variant.strategy != STRATEGY:
        cmd += ["--strategy", variant.strategy]
    if pairs:
        cmd += ["--pairs", *pairs]
    started = time.monotonic()
    # Wide "terminal": freqtrade's rich log lines stay whole in the saved log.
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "250"})
    variant.wall_s = time.monotonic() - started
    (vdir / "freqtrade.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise AblationError(f"backtest of {variant.name} failed (log: {vdir / 'freqtrade.log'})"
                            f":\n{proc.stderr[-2500:]}")
    variant.result_dir = vdir
    print(f"report: {variant.name:<22} {variant.timerange}  {variant.wall_s:6.1f} s", flush=True)
    return variant


def run_analyses(workdir: Path, datadir: Path, exchange_url: str, timerange: str,
                 pairs: list[str]) -> dict[str, str]:
    """freqtrade's lookahead-analysis and recursive-analysis of the technical layer (the ML
    layer's point-in-time property has its own test: FreqAI never predicts a backtest's
    last candle, which these tools would flag)."""
    offline = offline_config(workdir, exchange_url)
    # Own user dir: both tools delete models/<freqai.identifier> of the one they are given,
    # which would take the walk-forward models the report still scores.
    userdir = workdir / "analyses"
    userdir.mkdir(exist_ok=True)
    ta_only = workdir / "ta_only.json"
    ta_only.write_text(json.dumps({"freqai": {"enabled": False},
                                   "hybrid_ai": {"oracle": {"enabled": False}}}))
    outputs = {}
    for name, extra in (("lookahead-analysis", ["--minimum-trade-amount", "2",
                                                "--targeted-trade-amount", "10"]),
                        ("recursive-analysis", ["--startup-candle", "400", "1000"])):
        cmd = [sys.executable, "-m", "freqtrade", name, "-c", str(CONFIG), "-c", str(offline),
               "-c", str(ta_only), "--userdir", str(userdir), "--datadir", str(datadir),
               "--timerange", timerange, "--pairs", *pairs, *extra]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "250"})
        text = proc.stdout + proc.stderr
        tables = [ln for ln in text.splitlines() if ln.startswith(("┃", "│", "┏", "┡", "└",
                                                                     "|", "+"))]
        outputs[name] = ("\n".join(tables) if tables else text[-3000:]) + (
            "" if proc.returncode == 0 else f"\n(exit code {proc.returncode})")
    return outputs
