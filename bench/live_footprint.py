"""Footprint of `make live` on this machine: the three processes at idle.

Starts ``python -m hybrid_ai.live`` (all nine pairs, ML and oracle on) on free ports, waits
for the REST API and the first analysed candles, then samples CPU and resident memory of
the local exchange, the oracle daemon and freqtrade for 30 s (no candle closes in between
unless the wall clock crosses a 5-minute boundary; the sample says so). The baseline is
the launcher's own idle CPU, measured in the same run.
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
            [sys.executable, "-m", "hybrid_ai.live", "--datadir", str(datadir),
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
            for p in [me, *procs.values()]:
                p.cpu_percent(None)
            window = 10 if quick else 30
            t0 = datetime.now(UTC)
            time.sleep(window)
            crossed = (t0.minute // 5) != (datetime.now(UTC).minute // 5)
            launcher_cpu = me.cpu_percent(None)
            results.add("live_ready_s", ready, "s", None,
                        "make live start to first analysed candles (9 pairs, FreqAI trains)")
            for name, p in procs.items():
                results.add(f"live_idle_cpu_{name}_pct", p.cpu_percent(None), "% of one core",
                            launcher_cpu or None,
                            f"{window}s sample{' incl. a candle close' if crossed else ''}; "
                            "baseline: the launcher")
                results.add(f"live_rss_{name}_mb", p.memory_info().rss / 2**20, "MiB")
        finally:
            os.killpg(launcher.pid, signal.SIGTERM)
            launcher.wait(timeout=60)
