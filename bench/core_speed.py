"""The trend core's speed (``strategies/TrendCore.py``, 1h candles) against freqtrade's
SampleStrategy on the same 1h candles, pairs and timerange, measured alternately in one run:

* backtest wall time (subprocess, local exchange; TrendCore rebalances through position
  adjustment, which freqtrade asks only on a day's first candle in backtests);
* one pair's analysis as a live bot does it on every new candle (1000 1h candles and the
  startup, every whitelist pair's daily book included), median of many runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from freqtrade.data.history import load_pair_history

from bench.common import REPO, Results, candles_or_synthetic
from bench.strategy_speed import (
    LIVE_CANDLES,
    PAIRS,
    analyse_seconds,
    backtest_seconds,
    load_strategy,
    strategy_dirs,
)
from lab.project import CONFIG
from local_exchange.market_data import MarketData
from local_exchange.overlay import write_overlay
from local_exchange.server import BinanceApi, LocalExchangeServer

STARTUP_HOURS = 100 * 24
HOURLY = {"timeframe": "1h", "max_open_trades": len(PAIRS), "stake_amount": "unlimited",
          "trend_core": {"startup_days": 100}}  # 8 months of candles: a 100-day warm-up


def run(results: Results, quick: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmpname:
        tmp = Path(tmpname)
        datadir, real = candles_or_synthetic(tmp, days=240)
        timerange = "20240601-20240901" if real else "20250601-20250901"
        dirs = {**strategy_dirs(tmp), "TrendCore": REPO / "strategies"}
        server = LocalExchangeServer(BinanceApi(MarketData.load(datadir)), port=0)
        server.start_in_thread()
        try:
            walls: dict[str, list[float]] = {"TrendCore": [], "SampleStrategy": []}
            for _ in range(1 if quick else 2):
                for name in walls:
                    walls[name].append(backtest_seconds(name, dirs[name], datadir, timerange,
                                                        server.url, tmp, extra=HOURLY,
                                                        configs=(CONFIG,)))
            overlay = write_overlay(tmp / "offline.json", server.url)
            df = load_pair_history(pair="BTC/USDT", timeframe="1h", datadir=datadir)
            df = df.tail(LIVE_CANDLES + STARTUP_HOURS)  # what a live bot holds and analyses
            per_call = {}
            for name in walls:
                strategy = load_strategy(name, dirs[name], datadir, overlay, (CONFIG,))
                strategy.timeframe = "1h"
                analyse_seconds(strategy, df, "BTC/USDT", 2)  # warm caches
                per_call[name] = analyse_seconds(strategy, df, "BTC/USDT", 5 if quick else 20)
        finally:
            server.stop()
        core, sample = min(walls["TrendCore"]), min(walls["SampleStrategy"])
        results.add("core_backtest_wall_vs_sample", core, "s", sample,
                    f"1h, {len(PAIRS)} pairs, {timerange}, best of {len(walls['TrendCore'])}")
        results.add("core_live_analyse_per_pair_ms", per_call["TrendCore"] * 1e3, "ms",
                    per_call["SampleStrategy"] * 1e3,
                    f"{LIVE_CANDLES} + {STARTUP_HOURS} startup 1h candles, indicators + signals "
                    "+ the book, median")
