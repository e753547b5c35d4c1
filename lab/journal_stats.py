"""What an oracle journal says about who answered: the report's table of each oracle
variant (the heuristic backfill, an LLM's journal), and whether its decisions follow the
prompt's layout (``position_bias``: the focus names the first pairs listed) rather than
the market."""

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
    answered, the commonest rejection reason, and the position bias (``position_bias``'s
    share and chance, NaN without a journaled ``prompt_order``) with its ``layout_verdict``.
    Raises ``FileNotFoundError``."""
    if not path.exists():
        raise FileNotFoundError(f"no oracle journal at {path}")
    decisions = [d for d in read_journal(path)
                 if (start is None or d.decided_at >= start)
                 and (end is None or d.decided_at < end)]
    n = len(decisions)
    rejected = [d for d in decisions if not d.usable]
    usable = [d for d in decisions if d.usable]
    reasons = Counter((d.rejected_reason or "").split(":")[0] for d in rejected)
    layout = position_bias(decisions)
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
        # NaN, not None, so the report's table shows an empty cell for old journals.
        "position_bias": layout["share"] if layout["share"] is not None else float("nan"),
        "position_chance": layout["chance"] if layout["chance"] is not None else float("nan"),
        "layout": layout_verdict(layout),
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


# ``layout_verdict``: "follows the layout" from this many informative sessions on, when the
# position-bias share reaches LAYOUT_SHARE and at least half the way from chance to 1.
LAYOUT_MIN_SESSIONS = 5
LAYOUT_SHARE = 0.8
LAYOUT_LIFT = 0.5


def position_bias(decisions: list[OracleDecision],
                  k: int | None = None) -> dict[str, float | int | None]:
    """How much the focus lists follow the prompt's layout, not the market.

    Over usable decisions with a journaled ``prompt_order`` (the pairs as the prompt listed
    them) whose focus names some but not every pair listed (an empty or full list says
    nothing about positions): ``share``, the focus pairs that were among the first ``k``
    pairs listed (``k`` None: each focus list's own length) over all focus pairs, and
    ``chance``, what a choice blind to the order gets on average (``k / n`` per session for
    ``n`` pairs listed, weighted like the share). A model picking "the first pairs shown"
    scores 1.0 whatever the market; one reading the data, about ``chance`` under shuffled
    orders. Returns ``{"sessions": int, "share": float | None, "chance": float | None}``
    (None: no session to judge).
    """
    hits = picked = 0
    expected = 0.0
    sessions = 0
    for d in decisions:
        order = d.prompt_order
        focus = list(dict.fromkeys(d.focus_pairs))
        if not d.usable or not order or not focus:
            continue
        first = len(focus) if k is None else k
        if first >= len(order) or len(focus) >= len(order):
            continue
        shown_first = set(order[:first])
        sessions += 1
        hits += sum(p in shown_first for p in focus)
        picked += len(focus)
        expected += len(focus) * first / len(order)
    if not picked:
        return {"sessions": 0, "share": None, "chance": None}
    return {"sessions": sessions, "share": hits / picked, "chance": expected / picked}


def layout_verdict(bias: dict[str, float | int | None]) -> str:
    """"follows the layout" (at least ``LAYOUT_MIN_SESSIONS`` sessions, a share of at least
    ``LAYOUT_SHARE`` and at least ``LAYOUT_LIFT`` of the way from chance to 1), "not the
    layout", or "n/a" (no journaled ``prompt_order``, or too few sessions to say)."""
    sessions, share, chance = bias.get("sessions") or 0, bias.get("share"), bias.get("chance")
    if share is None or chance is None or sessions < LAYOUT_MIN_SESSIONS:
        return "n/a" if not sessions else f"n/a ({sessions} sessions)"
    lift = (share - chance) / (1 - chance) if chance < 1 else 0.0
    if share >= LAYOUT_SHARE and lift >= LAYOUT_LIFT:
        return "follows the layout"
    return "not the layout"
