"""Execution-layer speed: HybridAIStrategy against freqtrade's SampleStrategy template.

* backtest wall time of ``freqtrade backtesting`` (subprocess, local exchange), same data,
  pairs and timerange for both strategies, measured alternately in one run;
* one pair's analysis as a live bot does it on every new candle (indicators + signals
  over the 1000-candle dataframe), median of many runs;
* the same, amortised per candle.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import freqtrade
from freqtrade.configuration import Configuration
from freqtrade.data.dataprovider import DataProvider
from freqtrade.data.history import load_pair_history
from freqtrade.enums import CandleType, RunMode
from freqtrade.resolvers import ExchangeResolver, StrategyResolver

from bench.common import REPO, Results, candles_or_synthetic
from lab.demo import backfill_oracle
from lab.project import PACK_CONFIGS, config_args
from local_exchange.market_data import MarketData
from local_exchange.overlay import write_overlay
from local_exchange.server import BinanceApi, LocalExchangeServer

SAMPLE_TEMPLATE = Path(freqtrade.__file__).parent / "templates" / "sample_strategy.py"
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
LIVE_CANDLES = 1000  # Binance's candle limit: the dataframe size a live bot analyses


# Freqtrade's own floor for a strategy with partial exits: SampleStrategy with position
# adjustment on and an adjust_trade_position that never adjusts (freqtrade then calls it,
# through its safe wrapper, for every open trade on every candle).
SAMPLE_ADJUST = """

class SampleAdjustStrategy(SampleStrategy):
    position_adjustment_enable = True

    def adjust_trade_position(self, trade, current_time, current_rate, current_profit,
                              min_stake, max_stake, current_entry_rate, current_exit_rate,
                              current_entry_profit, current_exit_profit, **kwargs):
        return None
"""


def strategy_dirs(tmp: Path) -> dict[str, Path]:
    sample_dir = tmp / "sample"
    sample_dir.mkdir()
    shutil.copy(SAMPLE_TEMPLATE, sample_dir / "sample_strategy.py")
    adjust_dir = tmp / "sample_adjust"
    adjust_dir.mkdir()
    (adjust_dir / "sample_adjust.py").write_text(SAMPLE_TEMPLATE.read_text() + SAMPLE_ADJUST)
    return {"HybridAIStrategy": REPO / "strategies", "SampleStrategy": sample_dir,
            "SampleAdjustStrategy": adjust_dir}


def backtest_seconds(name: str, strategy_path: Path, datadir: Path, timerange: str,
                     url: str, tmp: Path, ml: bool = False, pairs: list[str] = PAIRS,
                     oracle_journal: Path | None = None,
                     extra: dict | None = None,
                     configs: Sequence[Path] = PACK_CONFIGS) -> float:
    """Wall time of one ``freqtrade backtesting`` in a fresh user dir (FreqAI trains anew);
    ``configs``: the base (default: HybridAIStrategy's 5m families, ``PACK_CONFIGS``),
    ``extra``: config keys on top (e.g. ``timeframe``)."""
    overlay = write_overlay(tmp / "offline.json", url)
    oracle = ({"enabled": True, "source": str(oracle_journal)} if oracle_journal
              else {"enabled": False})
    layers = tmp / f"layers_{ml}_{bool(oracle_journal)}.json"
    # With a journal the oracle decides (the shipped config observes it): gates, exits, trims.
    layers.write_text(json.dumps({"freqai": {"enabled": ml}, "hybrid_ai": {
        "oracle": oracle, "observe_only": [] if oracle_journal else ["oracle"]},
        **(extra or {})}))
    userdir = Path(tempfile.mkdtemp(prefix=f"ud_{name}_", dir=tmp))
    cmd = [sys.executable, "-m", "freqtrade", "backtesting",
           *config_args([*configs, overlay, layers]), "--userdir", str(userdir), "--strategy", name,
           "--strategy-path", str(strategy_path), "--datadir", str(datadir),
           "--timerange", timerange, "--pairs", *pairs, "--cache", "none", "--export", "none",
           "--enable-protections"]  # as live runs (SampleStrategy defines none: no cost there)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{name} backtest failed:\n{proc.stderr[-2000:]}")
    return elapsed


def load_strategy(name: str, strategy_path: Path, datadir: Path, overlay: Path,
                  configs: Sequence[Path] = PACK_CONFIGS):
    """The strategy as freqtrade builds it (on ``configs``, then ``overlay``), with a data
    provider on the local exchange."""
    config = Configuration.from_files([*map(str, configs), str(overlay)])
    config["freqai"]["enabled"] = False  # the execution layer alone (the ML bench is separate)
    config["hybrid_ai"]["oracle"]["enabled"] = False
    config.update(strategy=name, strategy_path=str(strategy_path), datadir=datadir,
                  runmode=RunMode.BACKTEST, candle_type_def=CandleType.SPOT)
    strategy = StrategyResolver.load_strategy(config)
    exchange = ExchangeResolver.load_exchange(config, load_leverage_tiers=False)
    strategy.dp = DataProvider(config, exchange)
    return strategy


def analyse_seconds(strategy, df, pair: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        frame = df.copy()
        start = time.perf_counter()
        out = strategy.advise_indicators(frame, {"pair": pair})
        strategy.ft_advise_signals(out, {"pair": pair})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(results: Results, quick: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmpname:
        tmp = Path(tmpname)
        datadir, real = candles_or_synthetic(tmp, days=120)
        timerange, label = (("20240301-20240601", "real 3 months") if real
                            else ("20250315-20250615", "synthetic 3 months"))
        if quick:  # one month instead of three
            timerange = timerange[:9] + timerange[:4] + str(int(timerange[4:6]) + 1).zfill(2) + "15"
        dirs = strategy_dirs(tmp)
        journal = backfill_oracle(datadir, timerange, tmp / "oracle").parent / "journal.jsonl"
        server = LocalExchangeServer(BinanceApi(MarketData.load(datadir)), port=0)
        server.start_in_thread()
        runs = {"HybridAIStrategy": None, "HybridAIStrategy+oracle": journal,
                "SampleStrategy": None, "SampleAdjustStrategy": None}
        try:
            walls: dict[str, list[float]] = {n: [] for n in runs}
            for _ in range(1 if quick else 2):
                for run_name, oracle_journal in runs.items():
                    name = run_name.split("+")[0]
                    walls[run_name].append(backtest_seconds(
                        name, dirs[name], datadir, timerange, server.url, tmp,
                        oracle_journal=oracle_journal))
            full_pack = backtest_seconds("HybridAIStrategy", dirs["HybridAIStrategy"], datadir,
                                         timerange, server.url, tmp, ml=True)
            df = load_pair_history(pair="BTC/USDT", timeframe="5m", datadir=datadir)
            df = df.tail(LIVE_CANDLES)
            per_call = {}
            for name in ("HybridAIStrategy", "SampleStrategy"):
                strategy = load_strategy(name, dirs[name], datadir, tmp / "offline.json")
                analyse_seconds(strategy, df, "BTC/USDT", 3)  # warm caches (1h data load)
                per_call[name] = analyse_seconds(strategy, df, "BTC/USDT", 10 if quick else 40)
        finally:
            server.stop()
        best = {name: min(w) for name, w in walls.items()}
        hybrid, sample = best["HybridAIStrategy"], best["SampleStrategy"]
        note = f"{label}, {len(PAIRS)} pairs, {timerange}, best of {len(walls['SampleStrategy'])}"
        results.add("backtest_wall_ta_layer_vs_sample", hybrid, "s", sample, note)
        results.add("backtest_wall_ta_oracle_vs_sample", best["HybridAIStrategy+oracle"], "s",
                    sample, "same, oracle on (heuristic journal: gates, exits, steering)")
        results.add("backtest_wall_ta_oracle_vs_adjust_floor", best["HybridAIStrategy+oracle"],
                    "s", best["SampleAdjustStrategy"], "oracle on vs SampleStrategy with "
                    "position adjustment on and a no-op adjust_trade_position (freqtrade's "
                    "floor for partial exits); goal <= 1.15")
        results.add("backtest_wall_ta_ml_vs_sample", full_pack, "s", sample,
                    "same, with FreqAI training LightGBM weekly (one run)")
        h, s = per_call["HybridAIStrategy"], per_call["SampleStrategy"]
        results.add("live_analyse_per_pair_ms", h * 1e3, "ms", s * 1e3,
                    f"{LIVE_CANDLES} candles, indicators + signals, median")
        results.add("analyse_per_candle_us", h / LIVE_CANDLES * 1e6, "us",
                    s / LIVE_CANDLES * 1e6, "amortised over the dataframe")
