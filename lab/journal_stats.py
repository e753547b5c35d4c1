"""What an oracle journal says about who answered: the report's table of each oracle
variant (the heuristic backfill, an LLM's journal)."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import date
from pathlib import Path

import pandas as pd

from llm_oracle.schema import OracleDecision
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


def compare_journals(unmasked: Path, masked: Path, start: pd.Timestamp | None = None,
                     end: pd.Timestamp | None = None) -> dict[str, float]:
    """The memorisation probe: the same sessions asked unmasked and masked (matched by day
    and session name). Shares of sessions with the same risk level, mean absolute
    difference of ``max_exposure``, mean Jaccard overlap of the focus lists; usable
    decisions on both sides only."""

    def by_session(path: Path) -> dict[tuple[date, str], OracleDecision]:
        return {(d.decided_at.date(), d.session): d for d in read_journal(path)
                if d.usable and (start is None or d.decided_at >= start)
                and (end is None or d.decided_at < end)}

    a, b = by_session(unmasked), by_session(masked)
    both = sorted(set(a) & set(b))
    return agreement([a[k] for k in both], [b[k] for k in both])


def agreement(a: list[OracleDecision], b: list[OracleDecision]) -> dict[str, float]:
    """Decisions of the same sessions, side by side (usable on both sides only): share with
    the same risk level, mean absolute difference of ``max_exposure``, mean Jaccard overlap
    of the focus lists."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x.usable and y.usable]
    if not pairs:
        return {"sessions": 0}
    return {
        "sessions": len(pairs),
        "same_risk_level": sum(x.risk_level == y.risk_level for x, y in pairs) / len(pairs),
        "mean_abs_exposure_diff": statistics.fmean(
            abs(x.max_exposure - y.max_exposure) for x, y in pairs),
        "mean_focus_jaccard": statistics.fmean(
            jaccard(x.focus_pairs, y.focus_pairs) for x, y in pairs),
    }


def jaccard(a: list[str], b: list[str]) -> float:
    """Overlap of two focus lists (two empty lists agree: 1)."""
    union = set(a) | set(b)
    return len(set(a) & set(b)) / len(union) if union else 1.0
