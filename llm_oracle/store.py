"""Crash-safe files: atomic JSON replace and an append-only, fsynced JSON-lines journal.

Nothing is written that its own reader would refuse: every payload is read back before the
write (``UnreadableWriteError`` instead), and an unreadable journal line is named with its line
number and error when read.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llm_oracle.schema import OracleDecision

logger = logging.getLogger(__name__)

PROFILE = "risk_profile.json"
PAIRLIST = "pairlist.json"
JOURNAL = "journal.jsonl"
# Unreadable journal lines named one by one in the log; beyond this, only counted.
NAMED_BAD_LINES = 5


class UnreadableWriteError(ValueError):
    """A payload its reader would refuse (a NaN, a value the schema forbids): nothing was
    written; the message names the file and why."""


def short_error(exc: Exception) -> str:
    """One line on why a reader refused: a pydantic error's first field and message (with
    how many more), else the exception's first line."""
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if errors:
            first = errors[0]
            loc = ".".join(map(str, first["loc"]))
            text = f"{loc}: {first['msg']}" if loc else first["msg"]
            return text + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else "")
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_strict(text: str) -> Any:
    """``json.loads`` without Python's extensions: NaN, Infinity and -Infinity raise
    ``ValueError``."""
    return json.loads(text, parse_constant=_refuse_constant)


def _non_finite(value: Any, where: str = "") -> list[str]:
    """Where ``value`` holds a NaN or an infinity ("pair_bias.BTC/USDT"), in order."""
    if isinstance(value, float) and not math.isfinite(value):
        return [where or "the value"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{where}.{k}".lstrip("."))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{where}[{i}]")]
    return []


def dumps_checked(path: Path, payload: Any,
                  reader: Callable[[str], Any] = loads_strict) -> str:
    """``payload`` as the JSON text ``atomic_write_json`` writes, after ``reader`` read it
    back. Raises ``UnreadableWriteError`` naming ``path`` and why (the keys holding a NaN or
    an infinity, or the reader's error)."""
    try:
        text = json.dumps(payload, indent=2, default=str, allow_nan=False) + "\n"
    except ValueError as exc:
        where = ", ".join(_non_finite(payload)) or short_error(exc)
        raise UnreadableWriteError(f"not writing {path}: non-finite number in {where} (JSON has "
                              "no NaN or Infinity)") from exc
    try:
        reader(text)
    except ValueError as exc:  # pydantic's ValidationError is one
        raise UnreadableWriteError(f"not writing {path}: its reader refuses it: "
                              f"{short_error(exc)}") from exc
    return text


def atomic_write_json(path: Path, payload: Any,
                      reader: Callable[[str], Any] = loads_strict) -> None:
    """Write to a temp file in the same directory, fsync, then rename over ``path``.

    A reader (or a crash) sees the old file or the new one, never half of either. The
    text is read back with ``reader`` first (strict JSON by default; e.g.
    ``OracleDecision.model_validate_json`` for the profile): raises ``UnreadableWriteError``,
    and ``path`` is left as it was, when it refuses.
    """
    text = dumps_checked(path, payload, reader)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
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


def journal_line(decision: OracleDecision) -> str:
    """``decision`` as one journal line (JSON and a newline), read back as
    ``parse_journal`` reads it first. Raises ``UnreadableWriteError`` when that refuses it (a
    NaN, which pydantic writes as ``null``; a value set past validation)."""
    line = decision.model_dump_json()
    try:
        OracleDecision.model_validate_json(line)
    except ValueError as exc:
        raise UnreadableWriteError(f"not writing a journal line its reader refuses "
                              f"(session {decision.session!r}): {short_error(exc)}") from exc
    return line + "\n"


def append_journal(path: Path, decision: OracleDecision) -> None:
    """One JSON line per decision, flushed to disk before returning; raises
    ``UnreadableWriteError`` (nothing written) for a line its reader would refuse."""
    line = journal_line(decision)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def parse_journal(text: str, source: str = "journal") -> list[OracleDecision]:
    """Decisions in file order; damaged lines (e.g. a torn last line) are skipped, each
    named in a warning with its line number and error ("journal.jsonl line 3:
    max_exposure: Input should be a valid number"), the first ``NAMED_BAD_LINES`` of
    them, and counted."""
    decisions, bad = [], 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            decisions.append(OracleDecision.model_validate_json(line))
        except ValueError as exc:
            bad += 1
            if bad <= NAMED_BAD_LINES:
                logger.warning("%s line %d: %s (skipped)", source, number, short_error(exc))
    if bad > NAMED_BAD_LINES:
        logger.warning("%s: skipped %d unreadable line(s)", source, bad)
    return decisions


def read_journal(path: Path) -> list[OracleDecision]:
    if not path.exists():
        return []
    return parse_journal(path.read_text(errors="replace"), str(path))


def status(out: Path, now: datetime) -> dict[str, Any]:
    """``python -m llm_oracle status``: the profile in ``out``, its age and validity at
    ``now``, today's and total cost, the last failure."""
    journal = read_journal(out / JOURNAL)
    profile_path = out / PROFILE
    report: dict[str, Any] = {"output_dir": str(out), "decisions": len(journal)}
    try:
        profile = OracleDecision.model_validate_json(profile_path.read_text())
        report.update(profile_age_minutes=round((now - profile.decided_at).total_seconds() / 60),
                      valid=profile.valid_until >= now, risk_level=profile.risk_level.value,
                      focus_pairs=profile.focus_pairs, provider=profile.provider)
    except (OSError, ValueError) as exc:
        report["profile_problem"] = f"{profile_path}: {exc.__class__.__name__}"
    report["cost_today_usd"] = round(sum(d.cost_usd for d in journal
                                         if d.decided_at.date() == now.date()), 6)
    report["cost_total_usd"] = round(sum(d.cost_usd for d in journal), 6)
    failures = [d for d in journal if not d.usable]
    report["last_failure"] = ({"at": failures[-1].decided_at.isoformat(),
                               "reason": failures[-1].rejected_reason} if failures else None)
    return report
