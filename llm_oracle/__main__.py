"""``python -m llm_oracle``: the oracle sidecar.

  once       run one session now and write the outputs
  run        the daemon: sessions at the configured UTC times, plus event-triggered ones
  backfill   a decision for every scheduled session of a timerange (point-in-time, cached)
  serve      HTTP on 127.0.0.1: /risk_profile.json, /pairlist.json, /journal.jsonl
  status     current profile, its age and validity, today's and total cost, last failure
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from llm_oracle import store
from llm_oracle.bot_api import BotView
from llm_oracle.context import MarketView, load_news
from llm_oracle.oracle import Oracle
from llm_oracle.settings import OracleSettings, OracleSettingsError, load_oracle_settings

logger = logging.getLogger("llm_oracle")
DEFAULT_DATADIR = Path("user_data/data/binance")


def load_config(paths: list[Path]) -> dict[str, Any]:
    from freqtrade.configuration.load_config import load_from_files

    return load_from_files([str(p) for p in paths])


def build_oracle(args: argparse.Namespace) -> Oracle:
    oracle, _ = build_oracle_and_view(args)
    return oracle


def build_oracle_and_view(args: argparse.Namespace) -> tuple[Oracle, Callable[[], MarketView]]:
    """The oracle, and how to get fresh candles for its next session."""
    config = load_config(args.config)
    settings = load_oracle_settings(config)
    if args.provider:
        settings = settings.model_copy(update={"provider": args.provider})
    if args.output_dir:
        settings = settings.model_copy(update={"output_dir": args.output_dir})
    universe = list(config["exchange"]["pair_whitelist"])

    def make_view() -> MarketView:
        if args.cmd != "backfill" and not (args.datadir or settings.datadir):
            # Live sessions read fresh candles from the exchange (the local one offline).
            return MarketView.from_exchange(config["exchange"], universe)
        return MarketView(Path(args.datadir or settings.datadir or DEFAULT_DATADIR), universe)

    view = make_view()
    bot = (BotView(settings.bot_api_url, settings.bot_api_username_env,
                   settings.bot_api_password_env, config.get("timeframe", "5m"))
           if settings.bot_api_url else None)
    oracle = Oracle(settings, universe, view, load_news(settings.news_file),
                    cache_dir=settings.output_dir / "cache", bot=bot)
    return oracle, make_view


def _parse_day(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)


def print_decision(d: Any) -> None:
    print(json.dumps({k: d.model_dump(mode="json")[k] for k in
                      ("decided_at", "status", "risk_level", "focus_pairs", "max_exposure",
                       "provider", "model", "cost_usd", "rejected_reason")}, indent=2))


def cmd_once(args: argparse.Namespace) -> int:
    oracle = build_oracle(args)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    decision = oracle.run_session(now, "manual")
    print_decision(decision)
    return 0 if decision.usable else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    start_s, _, end_s = args.timerange.partition("-")
    oracle = build_oracle(args)
    decisions = oracle.backfill(_parse_day(start_s), _parse_day(end_s))
    rejected = sum(not d.usable for d in decisions)
    print(f"backfill: {len(decisions)} decisions ({rejected} rejected), "
          f"{oracle.calls} provider calls, journal {oracle.out / store.JOURNAL}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_oracle_settings(load_config(args.config))
    out = args.output_dir or settings.output_dir
    journal = store.read_journal(out / store.JOURNAL)
    now = datetime.now(UTC)
    profile_path = out / store.PROFILE
    status: dict[str, Any] = {"output_dir": str(out), "decisions": len(journal)}
    try:
        from llm_oracle.schema import OracleDecision

        profile = OracleDecision.model_validate_json(profile_path.read_text())
        status.update(profile_age_minutes=round((now - profile.decided_at).total_seconds() / 60),
                      valid=profile.valid_until >= now, risk_level=profile.risk_level.value,
                      focus_pairs=profile.focus_pairs, provider=profile.provider)
    except (OSError, ValueError) as exc:
        status["profile_problem"] = f"{profile_path}: {exc.__class__.__name__}"
    status["cost_today_usd"] = round(sum(d.cost_usd for d in journal
                                         if d.decided_at.date() == now.date()), 6)
    status["cost_total_usd"] = round(sum(d.cost_usd for d in journal), 6)
    failures = [d for d in journal if not d.usable]
    status["last_failure"] = ({"at": failures[-1].decided_at.isoformat(),
                               "reason": failures[-1].rejected_reason} if failures else None)
    print(json.dumps(status, indent=2))
    return 0


def make_handler(out: Path) -> type[BaseHTTPRequestHandler]:
    files = {"/risk_profile.json": store.PROFILE, "/pairlist.json": store.PAIRLIST,
             "/journal.jsonl": store.JOURNAL}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = files.get(self.path.split("?")[0])
            path = out / name if name else None
            if path is None or not path.exists():
                self.send_error(404, "no such oracle file yet")
                return
            st = path.stat()
            etag = f'"{st.st_mtime_ns}-{st.st_size}"'  # changes with every write
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", self.date_time_string(st.st_mtime))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(format, *args)

    return Handler


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_oracle_settings(load_config(args.config))
    out = args.output_dir or settings.output_dir
    port = args.port if args.port is not None else settings.serve_port
    server = ThreadingHTTPServer((settings.serve_host, port), make_handler(out))
    print(f"llm_oracle: serving {out} on http://{settings.serve_host}:{server.server_port}/",
          file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait()
    server.shutdown()
    return 0


def next_session(settings: OracleSettings, now: datetime) -> datetime:
    for day in (0, 1):
        base = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=day)
        for hhmm in settings.sessions:
            hh, mm = map(int, hhmm.split(":"))
            at = base + timedelta(hours=hh, minutes=mm)
            if at > now:
                return at
    raise RuntimeError("no session time configured")


def event_move(oracle: Oracle, now: datetime) -> str | None:
    """A focus pair that moved more than ``event_move`` over its last closed hour."""
    profile = store.read_journal(oracle.out / store.JOURNAL)
    focus = next((d.focus_pairs for d in reversed(profile) if d.usable), [])
    for pair in focus:
        if pair not in oracle.view.frames:
            continue
        closed = oracle.view.closed_before(pair, now)
        if len(closed) and abs(closed["close"].iloc[-1] / closed["open"].iloc[-1] - 1) \
                >= oracle.settings.event_move:
            return pair
    return None


def cmd_run(args: argparse.Namespace) -> int:
    oracle, make_view = build_oracle_and_view(args)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    last_event = datetime.min.replace(tzinfo=UTC)
    print(f"llm_oracle: daemon with {oracle.provider.name}, sessions "  # type: ignore[union-attr]
          f"{oracle.settings.sessions} UTC, writing {oracle.out}", file=sys.stderr, flush=True)
    if not (oracle.out / store.PROFILE).exists():
        oracle.run_session(datetime.now(UTC).replace(second=0, microsecond=0), "startup")
    while not stop.is_set():
        now = datetime.now(UTC)
        due = next_session(oracle.settings, now)
        if stop.wait(timeout=min(args.poll, max(0.0, (due - now).total_seconds()))):
            break
        now = datetime.now(UTC)
        if now >= due:
            oracle.view = make_view()  # fresh candles for every session
            print_decision(oracle.run_session(due, due.strftime("%H:%MZ")))
            continue
        spacing = timedelta(minutes=oracle.settings.event_min_spacing_minutes)
        if now - last_event >= spacing:
            oracle.view = make_view()  # fresh candles
            pair = event_move(oracle, now)
            if pair:
                last_event = now
                print_decision(oracle.run_session(now.replace(second=0, microsecond=0),
                                                  f"event:{pair}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_oracle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", type=Path, action="append",
                        help="freqtrade config file(s) with an llm_oracle section "
                             "(default: config.json)")
    parser.add_argument("--output-dir", type=Path, help="override llm_oracle.output_dir")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, func in (("once", cmd_once), ("run", cmd_run), ("backfill", cmd_backfill)):
        p = sub.add_parser(name)
        p.add_argument("--provider", choices=("heuristic", "openai"))
        p.add_argument("--datadir", type=Path)
        if name == "backfill":
            p.add_argument("--timerange", required=True, help="YYYYMMDD-YYYYMMDD (UTC)")
        if name == "run":
            p.add_argument("--poll", type=float, default=60.0,
                           help="longest wait between checks for a session or an event, "
                                "seconds (1 under a fast replay clock)")
        p.set_defaults(func=func)
    p = sub.add_parser("serve")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)
    sub.add_parser("status").set_defaults(func=cmd_status)
    args = parser.parse_args(argv)
    args.config = args.config or [Path("config.json")]
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # never log request headers
    try:
        return args.func(args)
    except (OracleSettingsError, FileNotFoundError, KeyError) as exc:
        print(f"llm_oracle: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
