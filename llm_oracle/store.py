"""Crash-safe files: atomic JSON replace and an append-only, fsynced JSON-lines journal."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from llm_oracle.schema import OracleDecision

logger = logging.getLogger(__name__)

PROFILE = "risk_profile.json"
PAIRLIST = "pairlist.json"
JOURNAL = "journal.jsonl"


def atomic_write_json(path: Path, payload: Any) -> None:
    """Write to a temp file in the same directory, fsync, then rename over ``path``.

    A reader (or a crash) sees the old file or the new one, never half of either.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_journal(path: Path, decision: OracleDecision) -> None:
    """One JSON line per decision, flushed to disk before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = decision.model_dump_json() + "\n"
    with path.open("a") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def parse_journal(text: str, source: str = "journal") -> list[OracleDecision]:
    """Decisions in file order; damaged lines (e.g. a torn last line) are skipped, counted."""
    decisions, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            decisions.append(OracleDecision.model_validate_json(line))
        except ValueError:
            bad += 1
    if bad:
        logger.warning("%s: skipped %d unreadable line(s)", source, bad)
    return decisions


def read_journal(path: Path) -> list[OracleDecision]:
    if not path.exists():
        return []
    return parse_journal(path.read_text(errors="replace"), str(path))
