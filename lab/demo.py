"""``make demo``: an offline ``freqtrade backtesting`` of the shipped defaults (config.json:
the trend core, ``strategies/TrendCore.py``; ``-c user_data/presets/hybrid.config.json`` for
HybridAIStrategy's 5m families).

1. Uses the candles in ``user_data/data/binance``; when that holds none, writes a seeded
   synthetic market there and says so loudly (before and after the report).
2. Checks that every whitelisted pair has the candle files the config's timeframe needs
   (1h alone for the core; 5m and 1h for the 5m families).
3. Backfills the LLM oracle's journal for the backtest range with the deterministic
   heuristic provider (point-in-time, no network), unless ``hybrid_ai.oracle`` is off.
4. Starts the local exchange on the port of ``user_data/config.offline.json`` and runs
   freqtrade's own backtesting against it (with FreqAI on, it trains the ML layer
   walk-forward); freqtrade prints its normal report.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from lab.project import (
    CONFIG,
    DEFAULT_DATADIR,
    DEMO_OVERLAY,
    OVERLAY,
    REPO,
    TIMEFRAMES,
    DemoError,
    config_args,
    default_timerange,
    load_config,
    needed_timeframes,
    whitelist,
)
from local_exchange.market_data import MarketData, MarketDataError
from local_exchange.overlay import DEFAULT_HOST, DEFAULT_PORT
from local_exchange.server import BinanceApi, LocalExchangeServer, PortInUseError
from local_exchange.synthetic import SYNTHETIC_MARKER, has_candles, is_synthetic, write_market


def missing_files(datadir: Path, pairs: list[str],
                  timeframes: tuple[str, ...] = TIMEFRAMES) -> list[str]:
    """The candle files of ``pairs`` x ``timeframes`` that ``datadir`` lacks."""
    return [
        f"{pair.replace('/', '_')}-{tf}.feather"
        for pair in pairs
        for tf in timeframes
        if not (datadir / f"{pair.replace('/', '_')}-{tf}.feather").exists()
    ]


def prepare_data(datadir: Path, pairs: list[str], days: int, seed: int,
                 timeframes: tuple[str, ...] = TIMEFRAMES) -> bool:
    """Make sure ``datadir`` holds ``timeframes`` candles for ``pairs``; returns True if they
    are synthetic.

    :raises DemoError: naming the missing files and how to download them
    """
    missing = missing_files(datadir, pairs, timeframes)
    if not has_candles(datadir) or (missing and is_synthetic(datadir)):
        # an empty directory, or our own synthetic one written for another timeframe
        print(f"demo: {datadir} holds no {'/'.join(timeframes)} candles, generating a "
              f"synthetic market ({days} days, seed {seed})...", flush=True)
        write_market(datadir, days=days, seed=seed, timeframes=timeframes)
        missing = missing_files(datadir, pairs, timeframes)
    if missing:
        raise DemoError(
            f"{datadir} lacks {len(missing)} candle file(s) for the whitelist: "
            f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}. Download them with "
            f"`freqtrade download-data -c config.json --datadir {datadir} "
            f"-t {' '.join(timeframes)}` (online), "
            f"or empty the directory to use the synthetic market."
        )
    return is_synthetic(datadir)


def backfill_oracle(datadir: Path, timerange: str, oracle_dir: Path) -> Path:
    """Heuristic oracle decisions for the range (from a day before it), and a config overlay
    pointing the strategy at them."""
    start, _, end = timerange.partition("-")
    day_before = (datetime.strptime(start, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")
    subprocess.run([sys.executable, "-m", "llm_oracle", "-c", str(CONFIG), "--output-dir",
                    str(oracle_dir), "backfill", "--provider", "heuristic", "--datadir",
                    str(datadir), "--timerange", f"{day_before}-{end}"], cwd=REPO, check=True)
    overlay = oracle_dir / "demo-oracle.json"
    overlay.write_text(json.dumps({"hybrid_ai": {"oracle": {
        "source": str((oracle_dir / "journal.jsonl").resolve())}}}))
    return overlay


def oracle_enabled(config: dict) -> bool:
    return bool(config.get("hybrid_ai", {}).get("oracle", {}).get("enabled", False))


def run_backtest(datadir: Path, timerange: str | None, backtest_days: int,
                 extra: list[str], oracle_dir: Path, overlays: list[Path]) -> int:
    data = MarketData.load(datadir)
    config = load_config([CONFIG, *overlays, OVERLAY])
    timerange = timerange or default_timerange(data, backtest_days, config)
    configs = config_args([CONFIG, *overlays, OVERLAY, DEMO_OVERLAY])
    if oracle_enabled(config):
        configs += ["-c", str(backfill_oracle(datadir, timerange, oracle_dir))]
    server = LocalExchangeServer(BinanceApi(data), host=DEFAULT_HOST, port=DEFAULT_PORT)
    server.start_in_thread()
    cmd = [
        sys.executable, "-m", "freqtrade", "backtesting", *configs,
        "--datadir", str(datadir), "--cache", "none", "--export", "trades",
        "--timerange", timerange,
        "--enable-protections",  # as the live bot always runs them
    ]
    try:
        return subprocess.call([*cmd, *extra], cwd=REPO)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datadir", type=Path, default=DEFAULT_DATADIR)
    parser.add_argument("--timerange", help="freqtrade timerange, e.g. 20240301-20240601 "
                        "(default: the last --backtest-days of the data)")
    parser.add_argument("--backtest-days", type=int, default=90)
    parser.add_argument("--oracle-dir", type=Path, default=REPO / "user_data" / "oracle",
                        help="where the oracle's backfilled journal goes")
    parser.add_argument("-c", "--config", type=Path, action="append", default=[],
                        help="a config overlay on top of config.json (e.g. "
                        "user_data/presets/hybrid.config.json); may repeat")
    parser.add_argument("--days", type=int, default=400, help="length of a synthetic market "
                        "(the core's 200-day startup, then the backtest)")
    parser.add_argument("--seed", type=int, default=42, help="seed of a synthetic market")
    parser.add_argument("freqtrade_args", nargs="*", help="passed on to freqtrade backtesting")
    args = parser.parse_args(argv)
    try:
        config = load_config([CONFIG, *args.config])
        synthetic = prepare_data(args.datadir, whitelist(config), args.days, args.seed,
                                 needed_timeframes(config["timeframe"]))
        marker = args.datadir / SYNTHETIC_MARKER
        banner = f"*** {marker.read_text().strip()} ***" if synthetic else ""
        print(banner, flush=True)
        code = run_backtest(args.datadir, args.timerange, args.backtest_days,
                            args.freqtrade_args, args.oracle_dir, args.config)
    except (DemoError, MarketDataError, PortInUseError, subprocess.CalledProcessError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    print(banner, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
