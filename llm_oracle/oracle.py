"""One oracle session, end to end: context -> provider -> validation -> journal and files."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from llm_oracle import store
from llm_oracle.bot_api import BotView
from llm_oracle.context import (
    MarketView,
    build_context,
    fetch_feed,
    prompt_hash,
    render_prompt,
)
from llm_oracle.providers import (
    HeuristicProvider,
    Provider,
    ProviderError,
    ProviderReply,
    make_provider,
)
from llm_oracle.schema import OracleDecision, RiskLevel
from llm_oracle.settings import OracleSettings
from llm_oracle.validate import AnswerError, extract_json, validate_answer

logger = logging.getLogger(__name__)


@dataclass
class Oracle:
    settings: OracleSettings
    universe: list[str]
    view: MarketView
    news: pd.DataFrame
    provider: Provider | None = None
    cache_dir: Path | None = None  # replies by prompt hash (backfill: pay once, replay free)
    bot: BotView | None = None  # live sessions: the bot's REST API

    def __post_init__(self) -> None:
        self.provider = self.provider or make_provider(self.settings)
        self.fallback = HeuristicProvider(self.settings)
        self.calls = 0  # provider calls actually made (not served from the cache)
        self._spent: dict[Any, float] | None = None  # USD per UTC day, from the journal

    @property
    def out(self) -> Path:
        return self.settings.output_dir

    def limits(self) -> dict[str, float]:
        return {"max_exposure_cap": self.settings.max_exposure_cap,
                "max_position_cap": self.settings.max_position_cap,
                "max_focus_pairs": self.settings.max_focus_pairs}

    # -- cost ---------------------------------------------------------------------------
    def cost(self, reply: ProviderReply) -> float:
        price_in, price_out = self.settings.price(reply.model)
        return (reply.tokens_in * price_in + reply.tokens_out * price_out) / 1e6

    def spent_on(self, day: datetime) -> float:
        if self._spent is None:
            self._spent = {}
            for d in store.read_journal(self.out / store.JOURNAL):
                day_ = d.decided_at.date()
                self._spent[day_] = self._spent.get(day_, 0.0) + d.cost_usd
        return self._spent.get(day.date(), 0.0)

    # -- a session -----------------------------------------------------------------------
    def _ask(self, provider: Provider, messages: list[dict[str, str]],
             context: dict[str, Any], phash: str) -> ProviderReply:
        # The heuristic is free and deterministic: only paid answers are cached.
        cached = (self.cache_dir / f"{phash}.json"
                  if self.cache_dir and provider.name != self.fallback.name else None)
        if cached is not None and cached.exists():
            return ProviderReply(**json.loads(cached.read_text()))
        reply = provider.ask(messages, context)
        self.calls += 1
        if cached is not None:
            store.atomic_write_json(cached, reply.__dict__)
        return reply

    def decide(self, at: datetime, session: str, live: bool = False) -> OracleDecision:
        """The decision for a session at ``at`` (UTC); never raises for provider trouble.

        ``live`` sessions also read the news feed and the bot's API; backfills never do
        (what they would return is not knowable for a past time).
        """
        news, bot = self.news, None
        if live:
            if self.settings.news_url:
                news = pd.concat([self.news, fetch_feed(self.settings.news_url)],
                                 ignore_index=True)
            if self.bot is not None:
                bot = self.bot.snapshot(self.universe)
        context = build_context(self.view, news, at, self.limits(), bot)
        provider: Provider = self.provider  # type: ignore[assignment]
        status = "ok"
        if (provider.name != self.fallback.name and self.settings.daily_budget_usd >= 0
                and self.spent_on(at) >= self.settings.daily_budget_usd):
            logger.warning("daily LLM budget of $%.2f spent: heuristic until tomorrow",
                           self.settings.daily_budget_usd)
            provider, status = self.fallback, "fallback"
        messages = render_prompt(context, self.settings.max_prompt_chars)
        phash = prompt_hash(provider.name, provider.model, messages)
        base = {"decided_at": at, "valid_until": at + timedelta(hours=self.settings.validity_hours),
                "session": session, "provider": provider.name, "model": provider.model,
                "prompt_hash": phash, "context_until": context["data_until"]}
        try:
            reply = self._ask(provider, messages, context, phash)
        except ProviderError as exc:
            logger.warning("session %s at %s: no answer (%s)", session, at, exc)
            return self._rejected(base, f"provider error: {exc}")
        base.update(model=reply.model, tokens_in=reply.tokens_in, tokens_out=reply.tokens_out,
                    cost_usd=round(self.cost(reply), 8), latency_s=round(reply.latency_s, 3))
        if self._spent is not None:
            self._spent[at.date()] = self._spent.get(at.date(), 0.0) + base["cost_usd"]
        try:
            answer, notes = validate_answer(extract_json(reply.text), self.universe, self.settings)
        except AnswerError as exc:
            logger.warning("session %s at %s: answer rejected (%s)", session, at, exc)
            return self._rejected(base, str(exc))
        if notes:
            logger.info("session %s: %s", session, "; ".join(notes))
        return OracleDecision(**base, status=status, focus_pairs=answer.focus_pairs,
                              risk_level=answer.risk_level, max_exposure=answer.max_exposure,
                              max_position=answer.max_position,
                              overnight_target=answer.overnight_target,
                              pair_bias=answer.pair_bias, reasoning=answer.reasoning,
                              rejected_reason="; ".join(notes) or None)

    @staticmethod
    def _rejected(base: dict[str, Any], reason: str) -> OracleDecision:
        return OracleDecision(**base, status="rejected", focus_pairs=[],
                              risk_level=RiskLevel.CONSERVATIVE, max_exposure=0.0,
                              overnight_target=0.0, rejected_reason=reason[:500])

    def run_session(self, at: datetime, session: str, live: bool = True) -> OracleDecision:
        """Decide, journal it, and publish it unless it was rejected (the last good stays)."""
        decision = self.decide(at, session, live=live)
        store.append_journal(self.out / store.JOURNAL, decision)
        if decision.usable:
            self.publish(decision)
        return decision

    def publish(self, decision: OracleDecision) -> None:
        store.atomic_write_json(self.out / store.PROFILE, decision.model_dump(mode="json"))
        store.atomic_write_json(self.out / store.PAIRLIST,
                                decision.pairlist(self.settings.refresh_period))

    # -- schedule ------------------------------------------------------------------------
    def session_times(self, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
        out = []
        day = datetime(start.year, start.month, start.day, tzinfo=UTC)
        while day < end:
            for hhmm in self.settings.sessions:
                hh, mm = map(int, hhmm.split(":"))
                at = day + timedelta(hours=hh, minutes=mm)
                if start <= at < end:
                    out.append((at, f"{hhmm}Z"))
            day += timedelta(days=1)
        return out

    def backfill(self, start: datetime, end: datetime,
                 progress: bool = True) -> list[OracleDecision]:
        """Decisions for every scheduled session in [start, end), journaled in time order.

        Journal lines outside the range are kept; the file is replaced atomically, so the
        same cache gives a byte-identical journal.
        """
        times = self.session_times(start, end)
        decisions = []
        for i, (at, name) in enumerate(times, 1):
            decisions.append(self.decide(at, name))
            if progress and (i % 100 == 0 or i == len(times)):
                print(f"backfill: {i}/{len(times)} sessions, {self.calls} provider calls",
                      flush=True)
        journal = self.out / store.JOURNAL
        kept = [d for d in store.read_journal(journal) if not start <= d.decided_at < end]
        merged = sorted(kept + decisions, key=lambda d: d.decided_at)
        text = "".join(d.model_dump_json() + "\n" for d in merged)
        journal.parent.mkdir(parents=True, exist_ok=True)
        tmp = journal.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(journal)
        usable = [d for d in merged if d.usable]
        if usable:
            self.publish(usable[-1])
        return decisions
