"""What shaped a saved result, by name, so a stale one is never reused in silence.

Anything the pack saves and reuses (FreqAI's models and backtest predictions under a
``freqai.identifier``, walk-forward windows) is saved with its inputs: a mapping from a
name a user recognises (``freqai.train_period_days``, ``strategy source``, ``exit rules``)
to a short digest of its value. Before reuse, ``changed`` compares the saved mapping with
today's and names what differs; the caller rebuilds or refuses, saying those names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from llm_oracle.store import atomic_write_json

Inputs = dict[str, str]


def digest(value: Any) -> str:
    """A short, stable digest of a JSON-able value (keys sorted; other objects by repr)."""
    blob = json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def files_digest(paths: Iterable[Path], root: Path | None = None) -> str:
    """A digest of files' names and contents, in path order: a name is the path relative
    to ``root``, or the file's bare name without ``root`` or for a file outside it (a user's
    strategy elsewhere). Raises ``OSError`` for a file that cannot be read."""
    h = hashlib.sha256()
    for path in sorted(paths):
        name = str(path.relative_to(root)) if root and path.is_relative_to(root) \
            else path.name
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def changed(saved: Mapping[str, Any] | None, now: Mapping[str, str]) -> list[str]:
    """The names whose digest differs, was added or was dropped (sorted); every name of
    ``now`` when nothing usable was saved."""
    if not isinstance(saved, Mapping):
        return sorted(now)
    return sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))


def read(path: Path) -> dict[str, Any] | None:
    """A saved inputs record, or None when it is missing or unreadable."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write(path: Path, inputs: Inputs) -> None:
    atomic_write_json(path, inputs)
