"""How backtest time grows for the full pack (TA + ML + oracle), with pairs and with time.

Each point is one ``freqtrade backtesting`` of HybridAIStrategy with FreqAI training
walk-forward from scratch (fresh user dir) and the oracle replayed from a heuristic
backfill, next to freqtrade's ``SampleStrategy`` on the same pairs and timerange in the same
run. Pairs: 1, 3, 9 over one month; time: 1, 3 and 6.5 months on 3 pairs. The shared
candles (2024-01-01 to 09-06) leave 6.5 months after FreqAI's 30 training days and the
1h informative start-up, so the longest point is 6.5 months, not 8. Real candles only.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Results
from bench.strategy_speed import backtest_seconds, strategy_dirs
from lab.demo import backfill_oracle
from lab.project import shared_data
from local_exchange.market_data import MarketData
from local_exchange.server import BinanceApi, LocalExchangeServer

ALL_PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT", "AVAX/USDT",
             "LINK/USDT", "LTC/USDT", "TRX/USDT"]
END = "20240901"
MONTH_STARTS = {"1m": "20240801", "3m": "20240601", "6.5m": "20240215"}


def points(quick: bool) -> list[tuple[str, list[str], str]]:
    """(label, pairs, timerange) of each point of both curves."""
    pts = [(f"{n}p_1m", ALL_PAIRS[:n], f"{MONTH_STARTS['1m']}-{END}") for n in (1, 3, 9)]
    pts += [(f"3p_{m}", ALL_PAIRS[:3], f"{start}-{END}")
            for m, start in MONTH_STARTS.items() if m != "1m"]
    return pts[:2] if quick else pts


def run(results: Results, quick: bool = False) -> None:
    datadir = shared_data()
    if datadir is None:
        print("cost_curve: skipped, needs the shared real candles (HYBRID_AI_SHARED_DATA)")
        return
    with tempfile.TemporaryDirectory() as tmpname:
        tmp = Path(tmpname)
        backfill_oracle(datadir, f"{MONTH_STARTS['6.5m']}-{END}", tmp / "oracle")
        journal = (tmp / "oracle" / "journal.jsonl").resolve()
        dirs = strategy_dirs(tmp)
        server = LocalExchangeServer(BinanceApi(MarketData.load(datadir)), port=0)
        server.start_in_thread()
        try:
            for label, pairs, timerange in points(quick):
                sample = backtest_seconds("SampleStrategy", dirs["SampleStrategy"], datadir,
                                          timerange, server.url, tmp, pairs=pairs)
                pack = backtest_seconds("HybridAIStrategy", dirs["HybridAIStrategy"], datadir,
                                        timerange, server.url, tmp, ml=True, pairs=pairs,
                                        oracle_journal=journal)
                results.add(f"cost_curve_{label}", pack, "s", sample,
                            f"full pack, {len(pairs)} pairs, {timerange}; baseline "
                            "SampleStrategy")
        finally:
            server.stop()
