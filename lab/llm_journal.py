"""``make llm-journal``: an oracle journal written by a local model, for ``make report``.

Starts the packaged model behind llama.cpp's server (as ``make llm-server`` does), backfills
every scheduled session of ``--timerange`` point-in-time (each decision usable only from its
session plus the measured latency, as today), stops the server, and prints the report
command that replays the journal as the ``ta+ml+llm`` variant beside the heuristic oracle.
``--masked`` asks with masked prompts (``llm_oracle.masking``).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from lab.llm_eval import Server, oracle_for
from lab.project import DEFAULT_DATADIR
from llm_oracle import local_model as lm
from llm_oracle.store import JOURNAL

OUT = Path("user_data/llm-journal")


def day(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.llm_journal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=lm.DEFAULT_MODEL, choices=list(lm.PACKAGED))
    parser.add_argument("--timerange", required=True, help="YYYYMMDD-YYYYMMDD (UTC)")
    parser.add_argument("--datadir", type=Path, default=DEFAULT_DATADIR)
    parser.add_argument("--masked", action="store_true")
    parser.add_argument("--port", type=int, default=lm.DEFAULT_PORT + 2)
    parser.add_argument("--threads", type=int, default=lm.DEFAULT_THREADS)
    parser.add_argument("--out", type=Path, help=f"default {OUT}/<model>[-masked]")
    args = parser.parse_args(argv)
    first, _, last = args.timerange.partition("-")
    out = args.out or OUT / (args.model + ("-masked" if args.masked else ""))
    started = time.monotonic()
    try:
        with Server(args.model, args.port, args.threads):
            oracle = oracle_for(args.model, args.port, args.datadir, out, masked=args.masked)
            decisions = oracle.backfill(day(first), day(last))
    except (lm.LocalModelError, RuntimeError) as exc:
        print(f"llm_journal: error: {exc}")
        return 2
    print(f"llm_journal: {oracle.backfill_summary(decisions)}, in "
          f"{time.monotonic() - started:.0f} s\nreplay it: make report REPORT_ARGS=\"--timerange "
          f"{args.timerange} --llm-journal {out / JOURNAL}\"")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
