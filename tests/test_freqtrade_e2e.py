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

import numpy as np
import pandas as pd
import pytest
from conftest import MODEL_ID
from freqtrade.data.btanalysis.bt_fileutils import load_backtest_analysis_data
from pace import limit

from lab.project import OVERSOLD_PRESET, PACK_CONFIGS, DemoError, config_args
from local_exchange.overlay import write_overlay
from local_exchange.synthetic import SYNTHETIC_MARKER

REPO = Path(__file__).resolve().parent.parent
# Every way a HybridAIStrategy trade can end (partial_tp is an order tag, not an exit).
# "roi" is the time exit (minimal_roi's -1 entry: a week, a day in the oversold preset), the
# ML label's horizon; trend_break and rank_drop are the momentum family's own exits.
STRATEGY_EXIT_REASONS = {"stop_loss", "trailing_stop_loss", "ta_reversal", "roi", "ml_exit",
                         "force_exit", "trend_break", "rank_drop"}
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "LINK/USDT"]
NO_ORACLE = {"hybrid_ai": {"oracle": {"enabled": False}}}
TA_ONLY = {"freqai": {"enabled": False}, **NO_ORACLE}  # the execution layer alone

pytestmark = pytest.mark.slow


def load_trades(userdir: Path, strategy: str = "HybridAIStrategy") -> list[dict]:
    results = userdir / "backtest_results"
    last = json.loads((results / ".last_result.json").read_text())["latest_backtest"]
    with zipfile.ZipFile(results / last) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".json") and "_config" not in n
                    and "_market_change" not in n)
        stats = json.loads(zf.read(name))
    return stats["strategy"][strategy]["trades"]


def load_signal_candles(userdir: Path) -> dict[str, pd.DataFrame]:
    """The analysed candles at which trades entered (freqtrade's `--export signals`)."""
    data = load_backtest_analysis_data(userdir / "backtest_results", "signals")
    return data["HybridAIStrategy"]


def test_backtesting_on_real_candles(real_datadir, module_exchange, freqtrade, tmp_path):
    """The oversold-recovery preset (the earlier defaults, run as the README says): 5m
    entries, every exit the pack has, nothing held past its day."""
    server = module_exchange(real_datadir)
    proc = freqtrade(
        ["backtesting", "--datadir", str(real_datadir), "--timerange", "20240301-20240415",
         "--pairs", *PAIRS, "--export", "trades", "--cache", "none"],
        server.url, tmp_path, extra_config=TA_ONLY, preset=OVERSOLD_PRESET,
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
        # The time exit: no trade outlives the label's 24 h horizon.
        assert t["trade_duration"] <= 24 * 60, t
    assert "roi" in {t["exit_reason"] for t in trades}
    # The request log shows freqtrade only needed the market list from the exchange.
    assert server.api.requests["/api/v3/exchangeInfo"] >= 1


def test_momentum_top_k_holds_the_strongest_pairs_for_days(real_datadir, module_exchange,
                                                          freqtrade, tmp_path):
    """The shipped defaults' technical layer, momentum with the top-3 gate and a week's
    horizon, through freqtrade: each entry's pair ranked among the three strongest by 30-day
    return at the last closed hour (recomputed here from the 1h files, independently of the
    strategy's code); the family's own exits; no trade held past the horizon."""
    server = module_exchange(real_datadir)
    proc = freqtrade(
        ["backtesting", "--datadir", str(real_datadir), "--timerange", "20240301-20240601",
         "--pairs", *PAIRS, "--export", "trades", "--cache", "none"],
        server.url, tmp_path, extra_config=TA_ONLY,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trades = load_trades(tmp_path)
    assert len(trades) >= 10
    reasons = {t["exit_reason"] for t in trades}
    assert "trend_break" in reasons and "ta_reversal" not in reasons
    assert reasons <= {"stop_loss", "trailing_stop_loss", "trend_break", "rank_drop", "roi",
                       "force_exit"}
    assert max(t["trade_duration"] for t in trades) <= 7 * 24 * 60
    closes = pd.DataFrame({p: pd.read_feather(real_datadir / f"{p.replace('/', '_')}-1h.feather")
                           .set_index("date")["close"] for p in PAIRS})
    rank = (closes / closes.shift(30 * 24) - 1).rank(axis=1, ascending=False)
    for t in trades:
        opened = pd.Timestamp(t["open_date"])
        seen = (opened - pd.Timedelta(hours=1)).floor("1h")  # the last hour closed by then
        assert rank.loc[seen, t["pair"]] <= 3, (t["pair"], opened, rank.loc[seen].to_dict())
    assert len({t["pair"] for t in trades}) >= 2  # the top 3 changes over three months


def test_ml_backtest_trains_onnx_models_and_gates_entries(real_datadir, module_exchange,
                                                          freqtrade, tmp_path):
    server = module_exchange(real_datadir)
    pairs = ["SOL/USDT", "ETH/USDT", "LINK/USDT"]
    proc = freqtrade(
        ["backtesting", "--datadir", str(real_datadir), "--timerange", "20240301-20240401",
         "--pairs", *pairs, "--freqaimodel", "LightGBMOnnxClassifier",
         "--export", "signals", "--cache", "none"],
        server.url, tmp_path, extra_config=NO_ORACLE,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    models = tmp_path / "models" / MODEL_ID
    onnx_files = sorted(models.glob("sub-train-*/*_model.onnx"))
    # One model per pair per weekly window (5 windows over March), each exported to ONNX.
    assert len(onnx_files) == len(pairs) * 5
    assert "ONNX model ready" in proc.stdout + proc.stderr
    preds = pd.concat(pd.read_feather(f) for f in models.glob("backtesting_predictions/*"))
    assert preds["win"].between(0, 1).all() and np.allclose(preds["win"] + preds["loss"], 1)
    # per window: the skill flag, the base rate and the payoffs measured in training
    assert set(preds["ml_skill"].unique()) <= {0.0, 1.0}
    assert (preds["ml_mean_win"] > 0).all() and (preds["ml_mean_loss"] > 0).all()
    assert set(preds["do_predict"].unique()) <= {0, 1}
    trades = load_trades(tmp_path)
    assert len(trades) >= 3
    assert {t["enter_tag"] for t in trades} == {"ta+ml"}
    signals = pd.concat(load_signal_candles(tmp_path).values())
    assert len(signals) >= len(trades)
    # Every entry happened where the ML gate was open: expected return above the moderate
    # margin, from the model's probability (skill) or the window's base rate (no skill).
    assert signals["gate_ml"].all() and signals["gate_approved"].all()
    assert (signals["do_predict"] == 1).all() and (signals["ml_expected_return"] > 0.002).all()
    used = signals["win"].where(signals["ml_skill"] > 0.5, signals["ml_base_rate"])
    assert np.allclose(signals["ml_buy_prob"], used)
    assert (signals["ml_target_position"] > 0).all()


def test_oracle_journal_gates_pairs_and_sizes_stakes(real_datadir, module_exchange, freqtrade,
                                                    tmp_path):
    """A hand-written journal: ETH/USDT out of focus and risk conservative from March 5 to 15,
    all pairs and aggressive otherwise. The backtest must follow it candle by candle (the
    oversold preset: its 5m entries trade every pair often, and its oracle decides)."""
    from llm_oracle.schema import OracleDecision

    window = (pd.Timestamp("2024-03-05", tz="UTC"), pd.Timestamp("2024-03-15", tz="UTC"))
    lines = []
    for day in pd.date_range("2024-02-28", "2024-04-15", freq="1D", tz="UTC"):
        inside = window[0] <= day < window[1]
        lines.append(OracleDecision(
            decided_at=day, valid_until=day + pd.Timedelta(hours=25), session="00:00Z",
            focus_pairs=[p for p in PAIRS if not (inside and p == "ETH/USDT")],
            risk_level="conservative" if inside else "aggressive",
            max_exposure=0.5 if inside else 0.9, overnight_target=0.3, provider="test",
        ).model_dump_json())
    journal = tmp_path / "journal.jsonl"
    journal.write_text("\n".join(lines) + "\n")
    server = module_exchange(real_datadir)
    args = ["backtesting", "--datadir", str(real_datadir), "--timerange", "20240301-20240415",
            "--pairs", *PAIRS, "--export", "trades", "--cache", "none"]
    baseline_dir, oracle_dir = tmp_path / "baseline", tmp_path / "oracle"
    baseline_dir.mkdir()
    oracle_dir.mkdir()
    assert freqtrade(args, server.url, baseline_dir, extra_config=TA_ONLY,
                     preset=OVERSOLD_PRESET).returncode == 0
    proc = freqtrade(args, server.url, oracle_dir, extra_config={
        "freqai": {"enabled": False},
        "hybrid_ai": {"oracle": {"enabled": True, "source": str(journal)}}},
        preset=OVERSOLD_PRESET)
    assert proc.returncode == 0, proc.stderr[-3000:]

    def in_window(t: dict) -> bool:
        return window[0] <= pd.Timestamp(t["open_date"]) < window[1]

    baseline, trades = load_trades(baseline_dir), load_trades(oracle_dir)
    assert any(t["pair"] == "ETH/USDT" and in_window(t) for t in baseline)  # it would trade
    assert not any(t["pair"] == "ETH/USDT" and in_window(t) for t in trades)
    assert any(t["pair"] == "ETH/USDT" and not in_window(t) for t in trades)
    assert {t["enter_tag"] for t in trades} == {"ta+oracle"}
    # Entry stakes (max_stake_amount: trims and the partial take-profit shrink a trade later).
    inside = [t["max_stake_amount"] for t in trades if in_window(t)]
    outside = [t["max_stake_amount"] for t in trades if not in_window(t)]
    # Equal share of a ~1000 USDT wallet over 4 slots is ~250: conservative takes half of it
    # at most, aggressive asks 1.5x and meets the 25 % per-trade cap.
    assert inside and outside
    assert max(inside) < 0.55 * 250 and max(outside) > 200
    assert sum(inside) / len(inside) < sum(outside) / len(outside)


def test_hyperopt_runs_a_few_epochs(real_datadir, module_exchange, freqtrade, tmp_path):
    server = module_exchange(real_datadir)
    proc = freqtrade(
        ["hyperopt", "--datadir", str(real_datadir), "--timerange", "20240301-20240401",
         "--pairs", "BTC/USDT", "ETH/USDT", "--hyperopt-loss", "SharpeHyperOptLossDaily",
         "--spaces", "buy", "sell", "--epochs", "4", "-j", "1", "--random-state", "1",
         "--disable-param-export", "--print-json"],
        server.url, tmp_path, extra_config=TA_ONLY,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = list((tmp_path / "hyperopt_results").glob("*.fthypt"))
    assert len(results) == 1
    epochs = [json.loads(line) for line in results[0].read_text().splitlines() if line.strip()]
    assert len(epochs) == 4
    params = epochs[0]["params_dict"]
    assert {"buy_rsi", "buy_macd_window", "sell_rsi", "sell_partial_tp"} <= set(params)
    assert not (REPO / "strategies" / "HybridAIStrategy.json").exists()


def lookahead(freqtrade, url: str, datadir: Path, tmp: Path, pairs: list[str], timerange: str,
              signals: int, extra_config: dict | None = None,
              strategy: str = "HybridAIStrategy") -> dict:
    export = tmp / "lookahead.csv"
    proc = freqtrade(
        ["lookahead-analysis", "--datadir", str(datadir), "--timerange", timerange,
         # freqtrade exports a row only when more signals than the minimum were checked
         "--pairs", *pairs, "--minimum-trade-amount", str(signals - 1),
         "--targeted-trade-amount", str(signals), "--lookahead-analysis-exportfilename",
         str(export), "--strategy", strategy],
        url, tmp, extra_config=extra_config,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(export.open()))
    row = next(r for r in rows if r["strategy"] == strategy)
    assert int(row["total_signals"]) >= signals, row  # enough signals were actually checked
    assert int(row["biased_entry_signals"]) == 0 and int(row["biased_exit_signals"]) == 0, row
    return row


def test_lookahead_analysis_ta_layer_has_no_bias(real_datadir, module_exchange, freqtrade,
                                                 tmp_path):
    row = lookahead(freqtrade, module_exchange(real_datadir).url, real_datadir, tmp_path,
                    ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "20240201-20240401", 20, TA_ONLY)
    assert row["has_bias"] == "False" and row["biased_indicators"] in ("", "[]")


# The trend baseline on 1h candles resampled to days: a 20-day average here (the textbook 200
# needs more candles than the tests' 8 months hold; the code path is the same).
BASELINE = {"timeframe": "1h", "max_open_trades": 3, "freqai": {"enabled": False},
            "trend_baseline": {"sma_days": 20}}


def test_the_trend_baseline_has_no_lookahead_and_no_recursive_variance(
        real_datadir, module_exchange, freqtrade, tmp_path):
    url = module_exchange(real_datadir).url
    row = lookahead(freqtrade, url, real_datadir, tmp_path, ["BTC/USDT", "ETH/USDT", "SOL/USDT"],
                    "20240201-20240801", 8, BASELINE, strategy="TrendBaseline")
    assert row["has_bias"] == "False" and row["biased_indicators"] in ("", "[]")
    proc = freqtrade(["recursive-analysis", "--datadir", str(real_datadir), "--timerange",
                      "20240501-20240601", "--pairs", "BTC/USDT", "--strategy", "TrendBaseline",
                      "--startup-candle", "600", "900"], url, tmp_path, extra_config=BASELINE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert not re.findall(r"found lookahead in indicator (\S+)", out), out[-3000:]
    for line in (line for line in out.splitlines() if line.startswith("│")):
        for value in re.findall(r"(-?\d+\.\d+)%", line):
            assert abs(float(value)) < 0.001, line  # a simple average: no recursion at all


# FreqAI never predicts the very last candle of a backtest (it slices its backtest windows
# with date < end while freqtrade loads the end candle), so lookahead-analysis's shortened
# runs see 0 in the prediction columns of their final candle. Those columns may be listed,
# and so may enter_long/enter_tag: that final candle is the checked trade's entry candle,
# and where the full run has a second, consecutive entry signal there, the shortened run's
# closed gate (no prediction) drops it. The checked signals themselves must not move
# (biased_entry_signals == 0 in ``lookahead``), and the next test proves the predictions
# are point-in-time, including a cut hours into a window.
FREQAI_OUTPUTS = {"&s-win", "&-trade_return", "&-trade_return_mean", "&-trade_return_std",
                  "win", "loss", "win_mean", "win_std", "loss_mean", "loss_std", "do_predict",
                  "DI_values", "ml_skill", "ml_base_rate", "ml_mean_win", "ml_mean_loss",
                  "ml_buy_prob", "ml_expected_return", "ml_confidence", "ml_target_position",
                  "ml_predicted", "ml_rescores", "ml_exit", "gate_ml", "gate_approved",
                  "enter_long", "enter_tag"}


def test_lookahead_analysis_with_ml_layer(real_datadir, module_exchange, freqtrade, tmp_path):
    row = lookahead(freqtrade, module_exchange(real_datadir).url, real_datadir, tmp_path,
                    ["SOL/USDT", "ETH/USDT", "LINK/USDT"], "20240301-20240501", 6, NO_ORACLE)
    flagged = {c.strip() for c in row["biased_indicators"].strip("[]").replace("'", "").split(",")}
    assert flagged - {""} <= FREQAI_OUTPUTS, row


def test_ml_predictions_do_not_change_when_the_future_is_cut(real_datadir, module_exchange,
                                                            freqtrade, tmp_path):
    """Walk-forward predictions for a candle are the same whether the backtest ends hours
    into a window or a week later: nothing after a candle reaches its prediction (nor the
    model's training: labels whose trade ends after the training window are blanked)."""
    url = module_exchange(real_datadir).url
    runs = {}
    cut = "1710472800"  # 2024-03-15 03:20 UTC, three hours into the window of 15 March
    for end in (cut, "20240320"):
        userdir = tmp_path / end
        userdir.mkdir()
        proc = freqtrade(["backtesting", "--datadir", str(real_datadir), "--timerange",
                          f"20240301-{end}", "--pairs", "SOL/USDT", "--cache", "none",
                          "--export", "none"], url, userdir, extra_config=NO_ORACLE)
        assert proc.returncode == 0, proc.stderr[-3000:]
        files = (userdir / "models" / MODEL_ID).glob("backtesting_predictions/*")
        runs[end] = pd.concat(pd.read_feather(f) for f in files).set_index("date").sort_index()
    short, long_ = runs[cut], runs["20240320"]
    common = short.index[short.index < pd.Timestamp("2024-03-15 03:15", tz="UTC")]
    assert len(common) > 2000
    assert (common >= pd.Timestamp("2024-03-15", tz="UTC")).sum() >= 30  # the new window
    cols = ["win", "loss", "do_predict", "DI_values", "ml_skill", "ml_base_rate", "ml_mean_win",
            "ml_mean_loss"]
    pd.testing.assert_frame_equal(short.loc[common, cols], long_.loc[common, cols])


@pytest.mark.parametrize("layers", ["ta", "ta+ml"])
def test_recursive_analysis_finds_no_variance(real_datadir, module_exchange, freqtrade, tmp_path,
                                              layers):
    server = module_exchange(real_datadir)
    proc = freqtrade(
        ["recursive-analysis", "--datadir", str(real_datadir), "--timerange",
         "20240301-20240320", "--pairs", "BTC/USDT"],
        server.url, tmp_path, extra_config=TA_ONLY if layers == "ta" else NO_ORACLE,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    # Its indicator-lookahead check compares the last candle of a short run: with the ML
    # layer on, that is FreqAI's unpredicted final candle (see FREQAI_OUTPUTS).
    flagged = set(re.findall(r"found lookahead in indicator (\S+)", out))
    allowed = FREQAI_OUTPUTS if layers == "ta+ml" else set()
    assert flagged <= allowed, flagged
    table = [line for line in out.splitlines() if line.startswith("│")]
    assert any("sma20" in line for line in table)  # the table was printed
    for line in table:
        for value in re.findall(r"(-?\d+\.\d+)%", line):
            # Recursive indicators (RSI, MACD, ATR) converge within the startup candles.
            assert abs(float(value)) < 0.001, line


def test_demo_runs_offline_on_a_fresh_synthetic_market(tmp_path):
    """``make demo`` on a machine with no candles: the shipped defaults (the trend core, 1h
    files alone) on a seeded synthetic market, past the core's 200-day startup."""
    datadir = tmp_path / "binance"
    (tmp_path / "ud").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "lab.demo", "--datadir", str(datadir), "--days", "300",
         "--oracle-dir", str(tmp_path / "oracle"), "--", "--userdir", str(tmp_path / "ud")],
        cwd=REPO, capture_output=True, text=True, timeout=limit(600),
        env={**os.environ, "COLUMNS": "250"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SYNTHETIC MARKET" in proc.stdout
    assert sorted(p.name for p in datadir.glob("BTC_USDT-*.feather")) == ["BTC_USDT-1h.feather"]
    summary = re.search(r"│\s+TrendCore\s+│\s+(\d+)\s+│", proc.stdout)
    assert summary and int(summary.group(1)) > 0  # the report has trades
    # As shipped: the core decides, the ML layer is off, the oracle is observed (its journal
    # backfilled and read, not gating).
    assert {t["enter_tag"] for t in load_trades(tmp_path / "ud", "TrendCore")} == {"trend_core"}
    assert (tmp_path / "oracle" / "journal.jsonl").stat().st_size > 0


def test_the_demo_writes_the_timeframes_the_config_needs_and_rewrites_its_own_market(tmp_path):
    """Hourly files alone for the core; switched to the 5m families (the hybrid preset), the
    synthetic market is written anew with 5m and 1h, never a user's own candles."""
    from lab.demo import prepare_data

    datadir = tmp_path / "binance"
    assert prepare_data(datadir, ["BTC/USDT"], 20, 3, ("1h",))
    assert sorted(p.name for p in datadir.glob("BTC_USDT-*")) == ["BTC_USDT-1h.feather"]
    assert prepare_data(datadir, ["BTC/USDT"], 20, 3, ("5m", "1h"))
    assert sorted(p.name for p in datadir.glob("BTC_USDT-*")) == [
        "BTC_USDT-1h.feather", "BTC_USDT-5m.feather"]
    (datadir / SYNTHETIC_MARKER).unlink()  # now the user's own candles
    (datadir / "BTC_USDT-5m.feather").unlink()
    with pytest.raises(DemoError, match=r"BTC_USDT-5m\.feather.*download-data"):
        prepare_data(datadir, ["BTC/USDT"], 20, 3, ("5m", "1h"))


def test_demo_names_missing_files(real_datadir, tmp_path):
    datadir = tmp_path / "binance"
    datadir.mkdir()
    real = real_datadir / "BTC_USDT-5m.feather"
    (datadir / real.name).write_bytes(real.read_bytes())
    proc = subprocess.run([sys.executable, "-m", "lab.demo", "--datadir", str(datadir)],
                          cwd=REPO, capture_output=True, text=True, timeout=limit(120))
    assert proc.returncode == 2
    assert "BTC_USDT-1h.feather" in proc.stderr and "download-data" in proc.stderr
    assert "Traceback" not in proc.stderr


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_oracle_reads_a_live_dry_run_bot_through_its_rest_api(real_datadir, start_exchange,
                                                               tmp_path, monkeypatch):
    """freqtrade trade --dry-run (ML layer on, one pair) on the replayed real candles, its REST
    API on loopback with credentials from the environment; the oracle's BotView reads the
    portfolio and the ML layer's latest signal."""
    import time as _time
    from datetime import UTC, datetime

    from llm_oracle.bot_api import BotView
    from local_exchange.clock import ReplayClock

    exchange = start_exchange(real_datadir, ReplayClock.starting_at(
        int(datetime(2024, 8, 20, tzinfo=UTC).timestamp() * 1000)))
    port = free_port()
    env = {"FREQTRADE__API_SERVER__USERNAME": "oracle", "FREQTRADE__API_SERVER__PASSWORD":
           "s3cret-from-env", "FREQTRADE__API_SERVER__JWT_SECRET_KEY": "j" * 40}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    extra = tmp_path / "live.json"
    extra.write_text(json.dumps({
        "exchange": {"pair_whitelist": ["BTC/USDT"]},
        "freqai": {"feature_parameters": {"include_corr_pairlist": []}},
        "hybrid_ai": {"oracle": {"enabled": False}},
        "api_server": {"enabled": True, "listen_ip_address": "127.0.0.1", "listen_port": port,
                       "ws_token": ""},
        "internals": {"process_throttle_secs": 2},
    }))
    overlay = write_overlay(tmp_path / "offline.json", exchange.url)
    log = (tmp_path / "bot.log").open("w")
    bot = subprocess.Popen(
        [sys.executable, "-m", "freqtrade", "trade", *config_args(PACK_CONFIGS),
         "-c", str(overlay), "-c", str(extra), "--userdir", str(tmp_path),
         "--db-url", f"sqlite:///{tmp_path / 'trades.sqlite'}"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        view = BotView(f"http://127.0.0.1:{port}", "FREQTRADE__API_SERVER__USERNAME",
                       "FREQTRADE__API_SERVER__PASSWORD", timeout=2)
        deadline, snap = _time.monotonic() + 240, {}
        while _time.monotonic() < deadline:
            assert bot.poll() is None, (tmp_path / "bot.log").read_text()[-3000:]
            snap = view.snapshot(["BTC/USDT"])
            # The newest candle's ML columns: a probability once FreqAI predicted it, null
            # ("no prediction") before its first model sees a new candle.
            if "ml_buy_prob" in snap.get("ml_signals", {}).get("BTC/USDT", {}):
                break
            _time.sleep(3)
        assert snap, (tmp_path / "bot.log").read_text()[-3000:]
        trades = snap["portfolio"]["open_trades"]
        assert trades == [] or "pair" in trades[0]
        signal = snap["ml_signals"]["BTC/USDT"]
        prob = signal["ml_buy_prob"]
        assert (prob is None or 0 <= prob <= 1) and signal["do_predict"] in (0, 1)
        wrong = BotView(f"http://127.0.0.1:{port}", "NO_SUCH_USER_ENV", "NO_SUCH_PW_ENV")
        assert wrong.snapshot(["BTC/USDT"]) == {}  # 401: left out, never fatal
        assert "s3cret-from-env" not in (tmp_path / "bot.log").read_text()
    finally:
        bot.terminate()
        bot.wait(timeout=30)
        log.close()


def test_pairs_with_missing_candles_complete_and_stale_models_are_refused(
        real_datadir, module_exchange, freqtrade, tmp_path):
    """A pair delisted mid-range (XRP ends 19 March) and one listed late (SOL starts
    1 March, 60-day training windows): the FreqAI backtest completes, the empty window and
    the short training windows are named in the log, and those candles get no prediction.
    Then the same identifier with other inputs is refused, naming what changed."""
    datadir = tmp_path / "data"
    datadir.mkdir()
    for path in real_datadir.glob("*.feather"):
        df = pd.read_feather(path)
        if path.name.startswith("XRP_USDT"):
            df = df[df["date"] < pd.Timestamp("2024-03-19", tz="UTC")]
        elif path.name.startswith("SOL_USDT"):
            df = df[df["date"] >= pd.Timestamp("2024-03-01", tz="UTC")]
        df.reset_index(drop=True).to_feather(datadir / path.name)
    url = module_exchange(real_datadir).url
    args = ["backtesting", "--datadir", str(datadir), "--timerange", "20240315-20240329",
            "--pairs", "BTC/USDT", "ETH/USDT", "XRP/USDT", "SOL/USDT", "--cache", "none",
            "--export", "signals"]
    proc = freqtrade(args, url, tmp_path, extra_config=NO_ORACLE)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "Found array with 0 sample" not in log
    assert re.search(r"XRP/USDT: no candles from 2024-03-22 00:00:00 to 2024-03-29", log)
    skipped = re.findall(r"SOL/USDT: the training window up to \S+ \S+ holds ([\d.]+) of "
                         r"freqai.train_period_days 60 days of candles .*: skipped", log)
    assert len(skipped) == 2 and all(float(days) < 30 for days in skipped), skipped
    signals = load_signal_candles(tmp_path)
    assert all(not frame["gate_ml"].any() for pair, frame in signals.items()
               if pair == "SOL/USDT")  # no model, no entry
    models = tmp_path / "models" / MODEL_ID
    assert json.loads((models / "hybrid_ai_inputs.json").read_text())
    # Same identifier, another training window: refused at start, naming the key.
    proc = freqtrade(args, url, tmp_path,
                     extra_config={**NO_ORACLE, "freqai": {"train_period_days": 45}})
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "built with other inputs (changed: freqai.train_period_days)" in log, log[-3000:]
    assert "hybrid_ai.ml.stale_models" in log
