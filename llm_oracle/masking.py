"""Masked prompts for backfills: the model sees no name, date or price level it could
remember from its training data.

A model trained after 2024 may know how BTC moved in 2024; asked about "BTC/USDT on
2024-08-05" it can answer from memory, and a backfill would then credit the LLM layer with
hindsight. ``Mask`` renames the pairs to neutral aliases (``ASSET_A`` ...; the assignment is
a seeded shuffle, so the universe's order leaks nothing, and the prompt lists the aliases in
the session's shuffled order, ``llm_oracle.prompt_order``, not alphabetically), replaces
absolute times by hours before the session and drops price levels (``close``), keeping the
returns, volatility and indicators that are relative already. News headlines are dropped,
or kept with the pairs' coin names replaced (``llm_oracle.mask_news``) and their times made
relative. The answer is mapped back to the real pairs before validation against the hard
limits.

The memorisation probe (``lab.llm_probe``) compares masked and unmasked decisions on the
same sessions, beside two maskings with different aliases (what a mere rewording changes).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ALIAS_PREFIX = "ASSET_"
# What a masked summary keeps: relative figures only (no price level).
MASKED_MARKET_KEYS = ("ret_1d", "ret_7d", "volatility_1d", "rsi_1h", "trend_vs_sma50",
                      "volume_change", "drawdown_30d")


def _letters(i: int) -> str:
    out = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        out = chr(ord("A") + rem) + out
    return out


@dataclass(frozen=True)
class Mask:
    """Pairs <-> aliases for one universe; ``seed`` picks the assignment."""

    to_alias: dict[str, str]

    @classmethod
    def for_universe(cls, universe: list[str], seed: str = "") -> Mask:
        order = sorted(universe, key=lambda p: hashlib.sha256(f"{seed}|{p}".encode()).digest())
        return cls({pair: f"{ALIAS_PREFIX}{_letters(i)}" for i, pair in enumerate(order)})

    @property
    def to_pair(self) -> dict[str, str]:
        return {alias: pair for pair, alias in self.to_alias.items()}

    @property
    def aliases(self) -> list[str]:
        return sorted(self.to_alias.values(), key=lambda a: (len(a), a))

    def _text(self, text: str) -> str:
        """Pair names and their coin names replaced by aliases (whole words only)."""
        for pair, alias in sorted(self.to_alias.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(pair, alias)
            base = pair.split("/")[0]
            text = re.sub(rf"\b{re.escape(base)}\b", alias, text, flags=re.IGNORECASE)
        return text

    def context(self, context: dict[str, Any], keep_news: bool = False,
                keep_order: bool = True) -> dict[str, Any]:
        """The context as a masked prompt shows it (``build_context``'s shape).

        ``keep_order``: the aliases follow the order of ``context["universe"]`` (the
        session's shuffled order, ``llm_oracle.prompt_order``: no alias keeps the first
        place session after session); False: sorted aliases (``ASSET_A`` first), the layout
        before the prompt order was shuffled.
        """
        at = datetime.fromisoformat(context["time"])

        def hours_before(iso: str | None) -> float | None:
            if iso is None:
                return None
            return round((at - datetime.fromisoformat(iso)).total_seconds() / 3600, 1)

        markets = {self.to_alias[pair]: {k: v for k, v in summary.items()
                                         if k in MASKED_MARKET_KEYS}
                   for pair, summary in (context.get("markets") or {}).items()
                   if pair in self.to_alias}
        if keep_order:
            shown = [self.to_alias[p] for p in context.get("universe") or []
                     if p in self.to_alias]
            universe = [*shown, *(a for a in self.aliases if a not in shown)]
        else:
            universe = self.aliases
        place = {alias: i for i, alias in enumerate(universe)}
        out: dict[str, Any] = {
            "time": "the session (all times are hours before it)",
            "universe": universe,
            "limits": context["limits"],
            "markets": dict(sorted(markets.items(), key=lambda kv: place[kv[0]])),
            "news": [{"hours_before": hours_before(item["time"]),
                      "title": self._text(item["title"])}
                     for item in context.get("news") or []] if keep_news else [],
            "data_until_hours_before": hours_before(context.get("data_until")),
        }
        return out

    def answer(self, data: Any) -> Any:
        """An answer's JSON object with aliases mapped back to pairs (anything else kept:
        an unknown name stays unknown and validation drops it)."""
        if not isinstance(data, dict):
            return data
        back = self.to_pair
        out = dict(data)
        if isinstance(out.get("focus_pairs"), list):
            out["focus_pairs"] = [back.get(p, p) if isinstance(p, str) else p
                                  for p in out["focus_pairs"]]
        bias = out.get("pair_bias")
        if isinstance(bias, dict):
            out["pair_bias"] = {back.get(k, k): v for k, v in bias.items()}
        elif isinstance(bias, list):
            out["pair_bias"] = [{**item, "pair": back.get(item.get("pair"), item.get("pair"))}
                                if isinstance(item, dict) else item for item in bias]
        if isinstance(out.get("reasoning"), str):
            out["reasoning"] = re.sub(rf"\b{ALIAS_PREFIX}[A-Z]+\b",
                                      lambda m: back.get(m.group(0), m.group(0)),
                                      out["reasoning"])
        return out
