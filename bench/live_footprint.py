"""Footprint of `make live` on this machine: the three processes at idle and at a candle close.

Starts ``python -m lab.live`` (all nine pairs, ML and oracle on) on free ports, waits
for the REST API and the first analysed candles, then for FreqAI's start-up training to
finish (nine models on disk). Then it samples CPU and resident memory of the local
exchange, the oracle daemon and freqtrade for 30 s between two 5-minute boundaries (idle),
and the CPU seconds each spends from 5 s before to 25 s after the next boundary (one
candle close: new candles fetched, nine pairs analysed and predicted). The baseline is
the launcher's own CPU, measured in the same run. ``--quick``: idle only, 10 s.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.common import REPO, Results, candles_or_synthetic

NAMES = {"local_exchange": "exchange", "llm_oracle": "oracle", "freqtrade": "freqtrade"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seconds_to_boundary(minutes: int = 5) -> float:
    """Wall seconds until the next candle boundary (replay keeps the wall clock's minutes)."""
    now = datetime.now(UTC)
    return (minutes - now.minute % minutes) * 60 - now.second - now.microsecond / 1e6


def run(results: Results, quick: bool = False) -> None:
    from freqtrade_client import FtRestClient

    with tempfile.TemporaryDirectory() as tmpname:
        tmp = Path(tmpname)
        datadir, _ = candles_or_synthetic(tmp, days=60)
        api_port = free_port()
        env = {**os.environ, "FREQTRADE__API_SERVER__USERNAME": "bench",
               "FREQTRADE__API_SERVER__PASSWORD": "bench-pass-1",
               "FREQTRADE__API_SERVER__JWT_SECRET_KEY": "x" * 40}
        started = time.perf_counter()
        launcher = subprocess.Popen(
            [sys.executable, "-m", "lab.live", "--datadir", str(datadir),
             "--exchange-port", str(free_port()), "--api-port", str(api_port),
             "--userdir", str(tmp / "ud")],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            client = FtRestClient(f"http://127.0.0.1:{api_port}", "bench", "bench-pass-1")
            ready = None
            while time.perf_counter() - started < 300:
                try:
                    candles = client.pair_candles("BTC/USDT", "5m", limit=1)
                    if candles and candles.get("data"):
                        ready = time.perf_counter() - started
                        break
                except Exception:  # not up yet
                    pass
                time.sleep(1)
            if ready is None:
                raise RuntimeError("make live did not analyse candles within 300 s")
            procs = {}
            for child in psutil.Process(launcher.pid).children(recursive=True):
                cmd = " ".join(child.cmdline())
                for key, name in NAMES.items():
                    if f"-m {key}" in cmd:
                        procs[name] = child
            me = psutil.Process(launcher.pid)
            results.add("live_ready_s", ready, "s", None,
                        "make live start to first analysed candles (9 pairs, FreqAI trains)")
            models = tmp / "ud" / "models"
            deadline = time.perf_counter() + 300
            while (len(list(models.glob("*/sub-train-*/*_model.joblib"))) < 9
                   and time.perf_counter() < deadline):
                time.sleep(2)
            results.add("live_trained_s", time.perf_counter() - started, "s", None,
                        "make live start to nine trained models")
            window = 10 if quick else 30
            if seconds_to_boundary() < window + 10:  # keep candle closes out of the idle sample
                time.sleep(seconds_to_boundary() + 30)
            for p in [me, *procs.values()]:
                p.cpu_percent(None)
            time.sleep(window)
            launcher_cpu = me.cpu_percent(None)
            for name, p in procs.items():
                results.add(f"live_idle_cpu_{name}_pct", p.cpu_percent(None), "% of one core",
                            launcher_cpu or None, f"{window}s between candles; baseline: "
                            "the launcher")
                results.add(f"live_rss_{name}_mb", p.memory_info().rss / 2**20, "MiB")
            if quick:
                return
            time.sleep(max(0.0, seconds_to_boundary() - 5))
            before = {n: sum(p.cpu_times()[:2]) for n, p in [("launcher", me), *procs.items()]}
            time.sleep(30)
            spent = {n: sum(p.cpu_times()[:2]) - before[n]
                     for n, p in [("launcher", me), *procs.items()]}
            for name in procs:
                results.add(f"live_candle_close_cpu_s_{name}", spent[name], "CPU s",
                            spent["launcher"] or None,
                            "from 5 s before to 25 s after a 5m boundary (9 pairs)")
                results.add(f"live_candle_close_rss_{name}_mb",
                            procs[name].memory_info().rss / 2**20, "MiB")
        finally:
            os.killpg(launcher.pid, signal.SIGTERM)
            launcher.wait(timeout=60)
