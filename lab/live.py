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

``--speed N`` replays N times faster than real time: the exchange shows the data's own
timestamps and freqtrade and the oracle run on the same fast clock
(``local_exchange.fastclock``), so a day of 5m candles passes in 24 h / N. A fast replay
starts afresh each time (its own dry-run database and oracle directory).

If the exchange or the oracle dies, it is restarted (the exchange on the same timeline);
if freqtrade dies, everything stops.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lab.demo import prepare_data
from lab.project import (
    CONFIG,
    DEFAULT_DATADIR,
    REPO,
    DemoError,
    load_config,
    needed_timeframes,
    whitelist,
)
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


@dataclass
class Child:
    name: str
    cmd: list[str]
    env: dict[str, str]
    restartable: bool
    proc: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)  # monotonic times of restarts


class Supervisor:
    """Starts the processes; restarts the restartable ones when they die (at most
    ``max_restarts`` in ``restart_window`` seconds), stops them all (last started first) on a
    signal or when a process that cannot be restarted dies."""

    def __init__(self, max_restarts: int = 5, restart_window: float = 600.0) -> None:
        self.children: list[Child] = []
        self.stop = threading.Event()
        self.max_restarts = max_restarts
        self.restart_window = restart_window

    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None,
              restartable: bool = False) -> None:
        child = Child(name, cmd, env or {}, restartable)
        self.children.append(child)
        self._start(child)

    def _start(self, child: Child) -> None:
        print(f"live: starting {child.name}", flush=True)
        # Own session: a terminal's Ctrl-C reaches only us; we stop the children in order.
        # And they die with us, even when we are SIGKILLed: no orphan keeps the ports.
        child.proc = subprocess.Popen(child.cmd, cwd=REPO, env={**os.environ, **child.env},
                                      start_new_session=True, preexec_fn=die_with_parent)

    def watch(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop.set())
        while not self.stop.wait(1.0):
            for child in self.children:
                code = child.proc.poll()
                if code is None:
                    continue
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < self.restart_window]
                if child.restartable and len(child.restarts) < self.max_restarts:
                    print(f"live: {child.name} exited with {code}; restarting it",
                          file=sys.stderr, flush=True)
                    child.restarts.append(now)
                    self._start(child)
                    continue
                print(f"live: {child.name} exited with {code}; stopping the rest",
                      file=sys.stderr, flush=True)
                self.shutdown()
                return 1
        self.shutdown()
        return 0

    def shutdown(self, grace: float = 20.0) -> None:
        """Stop the children, last started first (freqtrade before its exchange); whoever
        has not stopped ``grace`` seconds after SIGTERM is killed with its process group, so
        shutdown takes bounded time even when a child hangs."""
        for child in reversed(self.children):
            name, proc = child.name, child.proc
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    print(f"live: {name} did not stop within {grace:.0f} s, killing it",
                          file=sys.stderr, flush=True)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        print("live: all processes stopped", flush=True)


def die_with_parent() -> None:
    """In a child, before exec (Linux): the kernel SIGKILLs it when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


PR_SET_PDEATHSIG = 1


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab.live", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datadir", type=Path, default=DEFAULT_DATADIR)
    parser.add_argument("--replay-start", help="data date shown as now (default: 2 days "
                        "before the data's end)")
    parser.add_argument("--speed", type=float, help="replay N times faster than real time")
    parser.add_argument("--exchange-port", type=int, default=18731)
    parser.add_argument("--api-port", type=int, default=8080)
    parser.add_argument("--pairs", nargs="*", help="a subset of the whitelist")
    parser.add_argument("-c", "--config", type=Path, action="append", default=[],
                        help="extra freqtrade config overlay(s), applied last")
    parser.add_argument("--userdir", type=Path, default=REPO / "user_data")
    return parser


def fast_replay(args: argparse.Namespace, config: dict, overlay: dict, live_dir: Path,
                oracle_dir: Path, start: datetime, anchor: int, exchange_cmd: list[str],
                python: list[str]) -> Path:
    """Sets up a replay faster than real time (a fresh timeline: no trades, oracle decisions
    or models of another replay); extends ``exchange_cmd``, ``python`` and ``overlay`` in
    place and returns the dry-run database."""
    # Fresh timeline: no trades or oracle decisions from another replay.
    db = live_dir / "dryrun-fast.sqlite"
    db.unlink(missing_ok=True)
    shutil.rmtree(oracle_dir, ignore_errors=True)
    # Models of an earlier fast replay were trained on candles after this start.
    identifier = f"{config['freqai']['identifier']}-fast"
    overlay.setdefault("freqai", {})["identifier"] = identifier
    shutil.rmtree(args.userdir / "models" / identifier, ignore_errors=True)
    exchange_cmd += ["--speed", str(args.speed)]
    python += ["local_exchange.fastclock", "--data-start",
               str(int(start.timestamp() * 1000)), "--anchor", str(anchor),
               "--speed", str(args.speed)]
    # Loops at most about once a real second (freqtrade's throttle is in clock seconds).
    throttle = max(5, int(args.speed))
    overlay["internals"]["process_throttle_secs"] = throttle
    overlay["unfilledtimeout"] = fill_window(config.get("unfilledtimeout") or {}, throttle)
    return db


def fill_window(timeout: dict, throttle_s: float, loops: int = 3) -> dict:
    """``unfilledtimeout`` for a fast replay: each order waits at least ``loops`` bot loops
    for its fill (a dry-run limit order fills on a later loop's price). At 2400x a loop is
    40 clock minutes, so a 10-minute timeout would cancel every order before any loop could
    see it fill."""
    per_unit = 60.0 if timeout.get("unit", "minutes") == "minutes" else 1.0
    least = math.ceil(loops * throttle_s / per_unit)  # whole units: FreqUI's schema wants ints
    return {**timeout, **{side: max(int(timeout.get(side, 0)), least)
                          for side in ("entry", "exit")}}


def announce(args: argparse.Namespace, creds: dict[str, str], created: bool, live_dir: Path,
             start: datetime, fast: bool) -> None:
    print(f"live: FreqUI / REST API at http://{DEFAULT_HOST}:{args.api_port} "
          f"(user {creds[ENV_USER]}; " + (f"password {creds[ENV_PASSWORD]}, saved in "
          f"{live_dir / 'credentials.json'}" if created else "password from "
          + ("the environment" if os.environ.get(ENV_PASSWORD) else
             str(live_dir / "credentials.json"))) + "). No UI installed? On a machine with "
          "internet: `freqtrade install-ui`. Ctrl-C stops everything."
          + (f" Replaying from {start:%Y-%m-%d %H:%M} UTC at {args.speed:g}x." if fast else ""),
          flush=True)


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if args.speed is not None and args.speed <= 0:
        cli.error("--speed must be > 0")
    fast = bool(args.speed and args.speed != 1)
    live_dir = args.userdir / "live"
    oracle_dir = args.userdir / ("oracle-fast" if fast else "oracle-live")
    try:
        config = load_config([CONFIG, *args.config])  # refuse what the bot would refuse
        prepare_data(args.datadir, args.pairs or whitelist(config), days=180, seed=42,
                     timeframes=needed_timeframes(config.get("timeframe")))
        data = MarketData.load(args.datadir)
    except (DemoError, MarketDataError) as exc:
        print(f"live: error: {exc}", file=sys.stderr)
        return 2
    end = datetime.fromtimestamp(data.last_close_time() / 1000, tz=UTC)
    start = (datetime.fromisoformat(args.replay_start).replace(tzinfo=UTC)
             if args.replay_start else end - timedelta(days=2))
    creds, created = credentials(live_dir)
    exchange_url = f"http://{DEFAULT_HOST}:{args.exchange_port}"
    overlay_path = live_dir / "config.live.json"
    live_dir.mkdir(parents=True, exist_ok=True)
    overlay = live_overlay(exchange_url, args.api_port, oracle_dir, args.pairs, args.userdir)
    db = live_dir / "dryrun.sqlite"
    anchor = int(time.time() * 1000)  # one timeline for every (re)start of every process
    exchange_cmd = [sys.executable, "-m", "local_exchange", "serve", "--mode", "replay",
                    "--replay-start", start.strftime("%Y-%m-%d %H:%M"),
                    "--clock-anchor", str(anchor), "--datadir", str(args.datadir),
                    "--port", str(args.exchange_port)]
    python = [sys.executable, "-m"]
    if fast:
        db = fast_replay(args, config, overlay, live_dir, oracle_dir, start, anchor,
                         exchange_cmd, python)
    overlay_path.write_text(json.dumps(overlay, indent=2))
    configs = ["-c", str(CONFIG), "-c", str(overlay_path)]
    for extra in args.config:
        configs += ["-c", str(extra.resolve())]
    sup = Supervisor()
    sup.spawn("local exchange", exchange_cmd, restartable=True)
    sup.spawn("oracle", [*python, "llm_oracle", *configs, "run"]
              + (["--poll", "1"] if fast else []), restartable=True)
    sup.spawn("freqtrade", [*python, "freqtrade", "trade", *configs,
                            "--db-url", f"sqlite:///{db.resolve()}"], env=creds)
    announce(args, creds, created, live_dir, start, fast)
    return sup.watch()


if __name__ == "__main__":
    sys.exit(main())
