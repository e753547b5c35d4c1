"""``python -m local_exchange``: serve candles as a Binance-compatible REST API on loopback.

Commands:
  serve    run the server until Ctrl-C (static or replay mode)
  run      start the server, run one command against it (e.g. freqtrade backtesting), stop
  synth    write a reproducible synthetic market into a data directory
  overlay  print (or write) the freqtrade config overlay for a given port
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from local_exchange.clock import ReplayClock, ScaledClock, StaticClock, wall_ms
from local_exchange.market_data import MarketData, MarketDataError
from local_exchange.overlay import DEFAULT_HOST, DEFAULT_PORT, offline_overlay, write_overlay
from local_exchange.server import BinanceApi, LocalExchangeServer, PortInUseError
from local_exchange.synthetic import has_candles, is_synthetic, write_market

DEFAULT_DATADIR = Path("user_data/data/binance")
SYNTHETIC_BANNER = (
    "*** SYNTHETIC MARKET: {datadir} holds generated candles (seeded), not real prices. ***"
)


def _parse_date(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--datadir", type=Path, default=DEFAULT_DATADIR,
                   help="freqtrade data directory with PAIR-TF.feather files")
    p.add_argument("--host", default=DEFAULT_HOST, help="bind address (default: loopback)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--pairs", nargs="*", help="only these pairs, e.g. BTC/USDT ETH/USDT")
    p.add_argument("--mode", choices=("static", "replay"), default="static",
                   help="static: all candles as stored; replay: re-timed so candles arrive live")
    p.add_argument("--replay-start", type=_parse_date,
                   help="data date shown as 'now' in replay mode (default: 3 days before the end)")
    p.add_argument("--speed", type=float,
                   help="replay this many times faster than real time, on the data's own "
                        "timestamps; clients need the same clock (local_exchange.fastclock)")
    p.add_argument("--clock-anchor", type=int, metavar="WALL_MS",
                   help="wall time (epoch ms) at which the replay stood at --replay-start; "
                        "a restarted server given the same anchor continues the same timeline")


def build_server(args: argparse.Namespace) -> LocalExchangeServer:
    data = MarketData.load(args.datadir, args.pairs)
    if args.mode == "replay":
        start = (int(args.replay_start.timestamp() * 1000) if args.replay_start
                 else data.last_close_time() - 3 * 86_400_000)
        anchor = args.clock_anchor if args.clock_anchor is not None else wall_ms()
        if args.speed:
            clock = ScaledClock(start, anchor, args.speed)
        else:
            clock = ReplayClock.starting_at(start, anchor)
    else:
        clock = StaticClock()
    return LocalExchangeServer(BinanceApi(data, clock), host=args.host, port=args.port)


def _banner(args: argparse.Namespace, server: LocalExchangeServer) -> None:
    api = server.api
    pairs = ", ".join(sorted(s.pair for s in api.data.symbols.values()))
    print(f"local_exchange: {args.mode} mode on {server.url}/api/v3 serving {pairs} "
          f"from {args.datadir}", file=sys.stderr, flush=True)
    if is_synthetic(args.datadir):
        print(SYNTHETIC_BANNER.format(datadir=args.datadir), file=sys.stderr, flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    server = build_server(args)
    _banner(args, server)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start_in_thread()
    stop.wait()
    server.stop()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("local_exchange run: give the command after --", file=sys.stderr)
        return 2
    server = build_server(args)
    _banner(args, server)
    if args.write_overlay:  # the port is known now, also when --port 0 chose a free one
        write_overlay(args.write_overlay, server.url)
    server.start_in_thread()
    env = {**os.environ, "LOCAL_EXCHANGE_URL": server.url}
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        server.stop()


def cmd_synth(args: argparse.Namespace) -> int:
    if args.if_empty and has_candles(args.datadir):
        kind = "synthetic" if is_synthetic(args.datadir) else "real"
        print(f"local_exchange synth: {args.datadir} already holds {kind} candles; kept them.",
              file=sys.stderr)
        return 0
    paths = write_market(args.datadir, days=args.days, seed=args.seed)
    print(f"local_exchange synth: wrote {len(paths)} files to {args.datadir}", file=sys.stderr)
    print(SYNTHETIC_BANNER.format(datadir=args.datadir), file=sys.stderr)
    return 0


def cmd_overlay(args: argparse.Namespace) -> int:
    url = f"http://{args.host}:{args.port}"
    if args.output:
        write_overlay(args.output, url)
    else:
        print(json.dumps(offline_overlay(url), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_exchange", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("serve", help="serve until interrupted")
    _add_server_args(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("run", help="serve while one command runs, e.g. run -- freqtrade ...")
    _add_server_args(p)
    p.add_argument("--write-overlay", type=Path, metavar="FILE",
                   help="write the freqtrade config overlay for this server to FILE first")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("synth", help="write a synthetic market")
    p.add_argument("--datadir", type=Path, default=DEFAULT_DATADIR)
    p.add_argument("--days", type=int, default=180)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--if-empty", action="store_true",
                   help="do nothing when the directory already holds candles")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("overlay", help="print the freqtrade config overlay")
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("-o", "--output", type=Path)
    p.set_defaults(func=cmd_overlay)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except (MarketDataError, PortInUseError) as exc:
        print(f"local_exchange: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
