"""What an oracle journal says about who answered: the report's table of each oracle
variant (the heuristic backfill, an LLM's journal)."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import pandas as pd

from llm_oracle.store import read_journal


def journal_stats(name: str, path: Path, start: pd.Timestamp | None = None,
                  end: pd.Timestamp | None = None) -> dict[str, object]:
    """One row: sessions in [start, end), how many the bot could use, rejected and clamped
    shares, masked prompts, latency (median and max, seconds), total cost (USD), who
    answered and the commonest rejection reason. Raises ``FileNotFoundError``."""
    if not path.exists():
        raise FileNotFoundError(f"no oracle journal at {path}")
    decisions = [d for d in read_journal(path)
                 if (start is None or d.decided_at >= start)
                 and (end is None or d.decided_at < end)]
    n = len(decisions)
    rejected = [d for d in decisions if not d.usable]
    usable = [d for d in decisions if d.usable]
    reasons = Counter((d.rejected_reason or "").split(":")[0] for d in rejected)
    return {
        "variant": name,
        "sessions": n,
        "usable": len(usable),
        "rejected_share": len(rejected) / n if n else None,
        "clamped_share": (sum("clamped" in (d.notes or "") for d in usable) / len(usable)
                          if usable else None),
        "masked": sum("masked prompt" in (d.notes or "") for d in decisions),
        "latency_median_s": statistics.median(d.latency_s for d in decisions) if n else None,
        "latency_max_s": max((d.latency_s for d in decisions), default=None),
        "cost_usd": round(sum(d.cost_usd for d in decisions), 6),
        "answered_by": ", ".join(sorted({f"{d.provider}/{d.model}" for d in decisions})),
        "risk_levels": ", ".join(f"{k} {v}" for k, v in sorted(
            Counter(d.risk_level.value for d in usable).items())),
        "top_rejection": reasons.most_common(1)[0][0] if reasons else "",
    }
