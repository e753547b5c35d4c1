"""``make live``: the three layers as real processes, offline.

1. the local exchange in replay mode (candles re-timed so they arrive in real time),
2. the LLM oracle daemon (``python -m llm_oracle run``; heuristic unless an endpoint is
   configured), reading fresh candles from that exchange,
3. ``freqtrade trade --dry-run`` with the strategy, the ML layer and the oracle's journal,
   its REST API (and FreqUI, if installed) on 127.0.0.1.

API credentials come from FREQTRADE__API_SERVER__USERNAME / _PASSWORD / _JWT_SECRET_KEY, or
are generated once into ``user_data/live/credentials.json`` (git-ignored, mode 600) and
passed to freqtrade through its environment, never through a config file or the command
line. Ctrl-C (or SIGTERM) stops all three, freqtrade first.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hybrid_ai.demo import CONFIG, DEFAULT_DATADIR, REPO, DemoError, prepare_data, whitelist
from local_exchange.market_data import MarketData, MarketDataError
from local_exchange.overlay import DEFAULT_HOST, offline_overlay

ENV_USER = "FREQTRADE__API_SERVER__USERNAME"
ENV_PASSWORD = "FREQTRADE__API_SERVER__PASSWORD"
ENV_JWT = "FREQTRADE__API_SERVER__JWT_SECRET_KEY"


def credentials(live_dir: Path) -> tuple[dict[str, str], bool]:
    """API credentials from the environment, else from (or newly into) credentials.json."""
    if os.environ.get(ENV_USER) and os.environ.get(ENV_PASSWORD):
        return {ENV_USER: os.environ[ENV_USER], ENV_PASSWORD: os.environ[ENV_PASSWORD],
                ENV_JWT: os.environ.get(ENV_JWT) or secrets.token_urlsafe(32)}, False
    path = live_dir / "credentials.json"
    if path.exists():
        return json.loads(path.read_text()), False
    creds = {ENV_USER: "freqtrader", ENV_PASSWORD: secrets.token_urlsafe(18),
             ENV_JWT: secrets.token_urlsafe(32)}
    live_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh)
    return creds, True


def live_overlay(exchange_url: str, api_port: int, oracle_dir: Path, pairs: list[str] | None,
                 userdir: Path) -> dict:
    overlay = offline_overlay(exchange_url)
    overlay.update({
        "api_server": {"enabled": True, "listen_ip_address": DEFAULT_HOST,
                       "listen_port": api_port, "verbosity": "error",
                       "enable_openapi": False, "CORS_origins": [], "ws_token": ""},
        "internals": {"process_throttle_secs": 5},
        "hybrid_ai": {"oracle": {"enabled": True,
                                 "source": str((oracle_dir / "journal.jsonl").resolve())}},
        "llm_oracle": {"output_dir": str(oracle_dir.resolve())},
        "user_data_dir": str(userdir),
    })
    if pairs:
        overlay["exchange"]["pair_whitelist"] = pairs
        overlay["freqai"] = {"feature_parameters": {"include_corr_pairlist": [
            p for p in ("BTC/USDT", "ETH/USDT") if p in pairs]}}
    return overlay


class Supervisor:
    """Starts the processes, stops them all (last started first) on a signal or a death."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.stop = threading.Event()

    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        print(f"live: starting {name}", flush=True)
        # Own session: a terminal's Ctrl-C reaches only us; we stop the children in order.
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})},
                                start_new_session=True)
        self.procs.append((name, proc))

    def watch(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop.set())
        while not self.stop.wait(1.0):
            dead = [(n, p.returncode) for n, p in self.procs if p.poll() is not None]
            if dead:
                print(f"live: {dead[0][0]} exited with {dead[0][1]}; stopping the rest",
                      file=sys.stderr, flush=True)
                self.shutdown()
                return 1
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    print(f"live: {name} did not stop, killing it", file=sys.stderr)
                    proc.kill()
                    proc.wait()
        print("live: all processes stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybrid_ai.live", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datadir", type=Path, default=DEFAULT_DATADIR)
    parser.add_argument("--replay-start", help="data date shown as now (default: 2 days "
                        "before the data's end)")
    parser.add_argument("--exchange-port", type=int, default=18731)
    parser.add_argument("--api-port", type=int, default=8080)
    parser.add_argument("--pairs", nargs="*", help="a subset of the whitelist")
    parser.add_argument("--userdir", type=Path, default=REPO / "user_data")
    args = parser.parse_args(argv)
    live_dir = args.userdir / "live"
    oracle_dir = args.userdir / "oracle-live"
    try:
        prepare_data(args.datadir, args.pairs or whitelist(), days=180, seed=42)
        data = MarketData.load(args.datadir)
    except (DemoError, MarketDataError) as exc:
        print(f"live: error: {exc}", file=sys.stderr)
        return 2
    end = datetime.fromtimestamp(data.last_close_time() / 1000, tz=UTC)
    start = args.replay_start or (end - timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    creds, created = credentials(live_dir)
    exchange_url = f"http://{DEFAULT_HOST}:{args.exchange_port}"
    overlay_path = live_dir / "config.live.json"
    live_dir.mkdir(parents=True, exist_ok=True)
    overlay_path.write_text(json.dumps(live_overlay(exchange_url, args.api_port, oracle_dir,
                                                    args.pairs, args.userdir), indent=2))
    configs = ["-c", str(CONFIG), "-c", str(overlay_path)]
    sup = Supervisor()
    sup.spawn("local exchange", [sys.executable, "-m", "local_exchange", "serve",
                                 "--mode", "replay", "--replay-start", start,
                                 "--datadir", str(args.datadir), "--port",
                                 str(args.exchange_port)])
    sup.spawn("oracle", [sys.executable, "-m", "llm_oracle", *configs, "run"])
    sup.spawn("freqtrade", [sys.executable, "-m", "freqtrade", "trade", *configs,
                            "--db-url", f"sqlite:///{(live_dir / 'dryrun.sqlite').resolve()}"],
              env=creds)
    print(f"live: FreqUI / REST API at http://{DEFAULT_HOST}:{args.api_port} "
          f"(user {creds[ENV_USER]}; " + (f"password {creds[ENV_PASSWORD]}, saved in "
          f"{live_dir / 'credentials.json'}" if created else "password from "
          + ("the environment" if os.environ.get(ENV_PASSWORD) else
             str(live_dir / "credentials.json"))) + "). No UI installed? On a machine with "
          "internet: `freqtrade install-ui`. Ctrl-C stops everything.", flush=True)
    return sup.watch()


if __name__ == "__main__":
    sys.exit(main())
