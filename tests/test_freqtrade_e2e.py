"""freqtrade itself, as a subprocess, against the local exchange on real candles.

Slow (tens of seconds each) but part of CI: they prove the commands a user runs work
offline and that the strategy has no lookahead or recursive bias.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Every way a HybridAIStrategy trade can end (partial_tp is an order tag, not an exit).
STRATEGY_EXIT_REASONS = {"stop_loss", "trailing_stop_loss", "ta_reversal", "force_exit"}
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "LINK/USDT"]

pytestmark = pytest.mark.slow


def load_trades(userdir: Path) -> list[dict]:
    results = userdir / "backtest_results"
    last = json.loads((results / ".last_result.json").read_text())["latest_backtest"]
    with zipfile.ZipFile(results / last) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".json") and "_config" not in n
                    and "_market_change" not in n)
        stats = json.loads(zf.read(name))
    return stats["strategy"]["HybridAIStrategy"]["trades"]


def test_backtesting_on_real_candles(real_datadir, module_exchange, freqtrade, tmp_path):
    server = module_exchange(real_datadir)
    proc = freqtrade(
        ["backtesting", "--datadir", str(real_datadir), "--timerange", "20240301-20240415",
         "--pairs", *PAIRS, "--export", "trades", "--cache", "none"],
        server.url, tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "HybridAIStrategy" in proc.stdout and "STRATEGY SUMMARY" in proc.stdout
    trades = load_trades(tmp_path)
    assert len(trades) >= 10
    assert {t["exit_reason"] for t in trades} <= STRATEGY_EXIT_REASONS
    assert {t["enter_tag"] for t in trades} == {"ta"}
    assert {t["pair"] for t in trades} <= set(PAIRS)
    for t in trades:
        # Hard stop: no trade loses much more than 10 % (plus fees and the stop candle's gap).
        assert t["profit_ratio"] > -0.125, t
        tags = [o["ft_order_tag"] for o in t["orders"] if not o["ft_is_entry"]]
        assert tags.count("partial_tp") <= 1
    # The request log shows freqtrade only needed the market list from the exchange.
    assert server.api.requests["/api/v3/exchangeInfo"] >= 1


def test_hyperopt_runs_a_few_epochs(real_datadir, module_exchange, freqtrade, tmp_path):
    server = module_exchange(real_datadir)
    proc = freqtrade(
        ["hyperopt", "--datadir", str(real_datadir), "--timerange", "20240301-20240401",
         "--pairs", "BTC/USDT", "ETH/USDT", "--hyperopt-loss", "SharpeHyperOptLossDaily",
         "--spaces", "buy", "sell", "--epochs", "4", "-j", "1", "--random-state", "1",
         "--disable-param-export", "--print-json"],
        server.url, tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = list((tmp_path / "hyperopt_results").glob("*.fthypt"))
    assert len(results) == 1
    epochs = [json.loads(line) for line in results[0].read_text().splitlines() if line.strip()]
    assert len(epochs) == 4
    params = epochs[0]["params_dict"]
    assert {"buy_rsi", "buy_macd_window", "sell_rsi", "sell_partial_tp"} <= set(params)
    assert not (REPO / "strategies" / "HybridAIStrategy.json").exists()


def test_lookahead_analysis_finds_no_bias(real_datadir, module_exchange, freqtrade, tmp_path):
    server = module_exchange(real_datadir)
    export = tmp_path / "lookahead.csv"
    proc = freqtrade(
        ["lookahead-analysis", "--datadir", str(real_datadir), "--timerange",
         "20240201-20240401", "--pairs", "BTC/USDT", "ETH/USDT", "SOL/USDT",
         "--lookahead-analysis-exportfilename", str(export)],
        server.url, tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(export.open()))
    row = next(r for r in rows if r["strategy"] == "HybridAIStrategy")
    assert int(row["total_signals"]) >= 10  # enough signals were actually checked
    assert row["has_bias"] == "False"
    assert int(row["biased_entry_signals"]) == 0 and int(row["biased_exit_signals"]) == 0
    assert row["biased_indicators"] in ("", "[]")


def test_recursive_analysis_finds_no_variance(real_datadir, module_exchange, freqtrade, tmp_path):
    server = module_exchange(real_datadir)
    proc = freqtrade(
        ["recursive-analysis", "--datadir", str(real_datadir), "--timerange",
         "20240301-20240320", "--pairs", "BTC/USDT"],
        server.url, tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "found lookahead in indicator" not in out
    assert "No lookahead bias on indicators found" in out
    table = [line for line in out.splitlines() if line.startswith("│")]
    assert any("rsi" in line for line in table)  # the table was printed
    for line in table:
        for value in re.findall(r"(-?\d+\.\d+)%", line):
            # Recursive indicators (RSI, MACD, ATR) converge within the startup candles.
            assert abs(float(value)) < 0.001, line


def test_demo_runs_offline_on_a_fresh_synthetic_market(tmp_path):
    datadir = tmp_path / "binance"
    (tmp_path / "ud").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "hybrid_ai.demo", "--datadir", str(datadir), "--days", "45",
         "--", "--userdir", str(tmp_path / "ud")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SYNTHETIC MARKET" in proc.stdout
    summary = re.search(r"│\s+HybridAIStrategy\s+│\s+(\d+)\s+│", proc.stdout)
    assert summary and int(summary.group(1)) > 0  # the report has trades


def test_demo_names_missing_files(real_datadir, tmp_path):
    datadir = tmp_path / "binance"
    datadir.mkdir()
    real = real_datadir / "BTC_USDT-5m.feather"
    (datadir / real.name).write_bytes(real.read_bytes())
    proc = subprocess.run([sys.executable, "-m", "hybrid_ai.demo", "--datadir", str(datadir)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "BTC_USDT-1h.feather" in proc.stderr and "download-data" in proc.stderr
    assert "Traceback" not in proc.stderr
