"""Hourly candles are enough: the shipped strategy, FreqAI included, with ``timeframe`` 1h as
its only change and only 1h files on disk (many users have years of hourly data and no 5m)."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

pytestmark = pytest.mark.slow

PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"]


def test_the_pack_backtests_on_hourly_files_alone_switched_by_the_timeframe(
        real_datadir, module_exchange, freqtrade, tmp_path):
    hourly = tmp_path / "data"
    hourly.mkdir()
    for path in real_datadir.glob("*-1h.feather"):
        shutil.copy(path, hourly)
    assert not list(hourly.glob("*-5m.feather"))
    server = module_exchange(hourly)
    proc = freqtrade(
        ["backtesting", "--datadir", str(hourly), "--timerange", "20240501-20240801",
         "--pairs", *PAIRS, "--export", "trades", "--cache", "none"],
        server.url, tmp_path, timeout=420,
        extra_config={"timeframe": "1h", "freqai": {"identifier": "hourly-test"},
                      "hybrid_ai": {"oracle": {"enabled": False}}})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # the label horizon follows the time exit in the timeframe in use: a week of hours
    assert "label_period_candles: 168 (the time exit in 1h candles)" in out
    models = tmp_path / "models" / "hourly-test"
    assert {p.name.split("-")[2].split("_")[0] for p in models.glob("sub-train-*")} == \
        {p.split("/")[0] for p in PAIRS}  # FreqAI trained every pair on 1h candles
    results = tmp_path / "backtest_results"
    last = json.loads((results / ".last_result.json").read_text())["latest_backtest"]
    with zipfile.ZipFile(results / last) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".json") and "_config" not in n
                    and "_market_change" not in n)
        result = json.loads(zf.read(name))["strategy"]["HybridAIStrategy"]
    assert result["timeframe"] == "1h" and result["trades"]
    assert {t["enter_tag"] for t in result["trades"]} == {"ta+ml"}  # as shipped
