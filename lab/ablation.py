"""The layers switched on one by one, each a plain ``freqtrade backtesting`` run.

Every variant backtests the same pairs and timerange against one local exchange, in one
work directory, so FreqAI trains the ML layer walk-forward once (a model per
``backtest_period_days`` window, trained on the ``train_period_days`` before it) and the
later variants reuse its saved predictions: no variant sees its test window in training.

The variants themselves (names, overlays, spans, what each tests) are defined once, in
``lab.variants``; here they are planned (``plan``: overlays built for one report's range and
files) and run (``run_variant``: results in ``<workdir>/runs/<slug>``).
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
    OVERSOLD_PRESET,
    PACK_CONFIGS,
    REPO,
    STRATEGY,
    Preset,
    config_args,
    load_config,
    strategy_with_params,
)
from lab.variants import (
    ABLATION,
    BASELINE_SMA_DAYS,
    BASELINE_STRATEGY,
    Inputs,
    VariantDef,
    baseline_name,
)
from lab.variants import WIDE as WIDE  # re-exported: the wide variant's parameters
from local_exchange.overlay import offline_overlay


@dataclass
class Variant:
    """One planned backtest: ``name`` (its row), the full config ``overlay``, ``timerange``
    (``YYYYMMDD-YYYYMMDD``), the strategy ``params`` by hyperopt space (None: as shipped) and
    ``strategy``; ``kind``: its definition in ``lab.variants`` (None: the trend baseline).
    Once run: ``result_dir`` (freqtrade's results) and ``wall_s`` (seconds)."""

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
    kind: VariantDef | None = None

    @property
    def late(self) -> bool:
        """Backtests the late span only (the frozen-model check), not the whole range."""
        return self.kind is not None and self.kind.late


class AblationError(RuntimeError):
    """A backtest failed; the message holds the end of freqtrade's output."""


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


def on_preset(overlay: dict[str, Any], preset: Preset) -> dict[str, Any]:
    """``overlay`` on top of ``preset``'s config (e.g. the oversold preset's label horizon,
    model identifier and deciding oracle) and its time exit; the variant's own keys win."""
    base = {"minimal_roi": preset.roi, **load_config([preset.config_file])}
    return deep_merge_dicts(copy.deepcopy(overlay), base)


def build(kind: VariantDef, inputs: Inputs, timerange: str) -> Variant:
    """The ``Variant`` of ``kind`` over ``timerange``: its overlay built from ``inputs``, on
    top of its preset's config when it has one."""
    overlay = kind.overlay(inputs)
    if kind.preset is not None:
        overlay = on_preset(overlay, kind.preset)
    return Variant(kind.name, overlay, timerange, kind.description, params=kind.params,
                   strategy=kind.strategy, kind=kind)


def plan(timerange: str, heuristic_journal: Path, llm_journal: Path | None,
         models_dir: Path, late_weeks: int = 8,
         configs: tuple[Path, ...] = ()) -> list[Variant]:
    """Every variant of ``lab.variants.ABLATION`` over ``timerange`` (the late ones over its
    last ``late_weeks``, in whole FreqAI windows), ``ta+ml+llm`` only with an
    ``llm_journal``; ``configs``: the user's overlays on top of ``PACK_CONFIGS``."""
    config = load_config([*PACK_CONFIGS, *configs])
    preset = load_config([OVERSOLD_PRESET.config_file])
    late = split_late(timerange, late_weeks, config["freqai"]["backtest_period_days"])
    inputs = Inputs(heuristic_journal, llm_journal, models_dir,
                    preset["freqai"]["identifier"], late)
    spans = {"full": timerange, "late": f"{late}-{timerange.partition('-')[2]}"}
    return [build(kind, inputs, spans[kind.span]) for kind in ABLATION
            if llm_journal is not None or not kind.needs_llm]


def trend_baseline(timerange: str, pairs: list[str], sma_days: int | None = None) -> Variant:
    """``strategies/TrendBaseline.py`` over ``timerange``: 1h candles, one slot per pair, no
    FreqAI (its SMA warm-up is loaded before the range, as freqtrade does). ``sma_days``
    shortens the textbook 200 days only for data too short to warm it up; the row says so."""
    overlay: dict[str, Any] = {"timeframe": "1h", "max_open_trades": len(pairs),
                               "freqai": {"enabled": False}}
    if sma_days:
        overlay["trend_baseline"] = {"sma_days": sma_days}
    days = sma_days or BASELINE_SMA_DAYS
    return Variant(baseline_name(sma_days), overlay, timerange,
                   f"long while the close is above its {days}-day SMA, inverse-volatility "
                   "stakes (textbook parameters, not tuned)", strategy=BASELINE_STRATEGY)


def variant_dir(workdir: Path, name: str) -> Path:
    """Where ``run_variant`` keeps the variant ``name``'s files and freqtrade's results."""
    return workdir / "runs" / re.sub(r"[^a-z0-9]+", "_", name).strip("_")


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
                pairs: list[str] | None, configs: tuple[Path, ...] = (),
                base: tuple[Path, ...] = PACK_CONFIGS) -> Variant:
    """``freqtrade backtesting`` of ``variant``: ``base`` (HybridAIStrategy's config as
    default; ``(CONFIG,)`` the shipped defaults), then ``configs`` (the user's overlays, e.g.
    ``user_data/config.history.json``), the local exchange and the variant's own overlay,
    each later one winning; the variant's strategy named on the command line."""
    vdir = variant_dir(workdir, variant.name)
    vdir.mkdir(parents=True, exist_ok=True)
    overlay = vdir / "variant.json"
    overlay.write_text(json.dumps(variant.overlay, indent=2))
    offline = offline_config(workdir, exchange_url)
    cmd = [sys.executable, "-m", "freqtrade", "backtesting", *config_args([*base, *configs]),
           "-c", str(offline), "-c", str(overlay), "--userdir", str(workdir),
           "--datadir", str(datadir), "--timerange", variant.timerange, "--cache", "none",
           "--export", "signals", "--backtest-directory", str(vdir),
           "--enable-protections"]  # as the live bot always runs them
    if variant.params:
        cmd += ["--strategy-path", str(strategy_copy(vdir, variant.params))]
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
        cmd = [sys.executable, "-m", "freqtrade", name, *config_args(PACK_CONFIGS),
               "-c", str(offline),
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
