"""One oracle session, end to end: context -> provider -> validation -> journal and files."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
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
from llm_oracle.masking import Mask
from llm_oracle.providers import (
    CUT_OFF,
    REASONING_FIELDS,
    REASONING_PARSER,
    HeuristicProvider,
    Provider,
    ProviderError,
    ProviderReply,
    make_provider,
)
from llm_oracle.schema import (
    RECEIVED_MAX_CHARS,
    THINKING_MAX_CHARS,
    OracleDecision,
    RiskLevel,
)
from llm_oracle.settings import OracleSettings
from llm_oracle.validate import AnswerError, limit_step_up, parse_answer

logger = logging.getLogger(__name__)


@dataclass
class Oracle:
    settings: OracleSettings
    universe: list[str]
    view: MarketView
    news: pd.DataFrame
    provider: Provider | None = None
    cache_dir: Path | None = None  # backfill: validated replies by prompt hash (pay once)
    bot: BotView | None = None  # live sessions: the bot's REST API
    cancel: threading.Event = field(default_factory=threading.Event)  # set on shutdown

    def __post_init__(self) -> None:
        self.provider = self.provider or make_provider(self.settings, self.cancel)
        self.fallback = HeuristicProvider(self.settings)
        self.calls = 0  # provider calls actually made (not served from the cache)
        self.cache_hits = 0
        self.fallbacks = 0  # sessions the heuristic answered instead (budget, no price)
        self._spent: dict[Any, float] | None = None  # USD per wall-clock UTC day
        self._cache_entries: int | None = None  # files in cache_dir, counted once

    @property
    def out(self) -> Path:
        return self.settings.output_dir

    def limits(self) -> dict[str, float]:
        return {"max_exposure_cap": self.settings.max_exposure_cap,
                "max_position_cap": self.settings.max_position_cap,
                "max_focus_pairs": self.settings.max_focus_pairs}

    # -- cost ---------------------------------------------------------------------------
    def cost(self, reply: ProviderReply) -> float:
        """Priced by the configured model (the server's snapshot name maps to it)."""
        price = self.settings.price(self.settings.model) or self.settings.price(reply.model)
        if price is None:  # only reachable if the server changed the model under us
            return float("inf")
        return (reply.tokens_in * price[0] + reply.tokens_out * price[1]) / 1e6

    def spent_today(self) -> float:
        """USD spent on provider calls made today (wall clock, UTC), from the journal."""
        if self._spent is None:
            self._spent = {}
            for d in store.read_journal(self.out / store.JOURNAL):
                if d.asked_at is not None:
                    day = d.asked_at.date()
                    self._spent[day] = self._spent.get(day, 0.0) + d.cost_usd
        return self._spent.get(datetime.now(UTC).date(), 0.0)

    def _spend(self, usd: float) -> None:
        self.spent_today()
        day = datetime.now(UTC).date()
        self._spent[day] = self._spent.get(day, 0.0) + usd  # type: ignore[index]

    def _why_not_paid(self, provider: Provider) -> str | None:
        """Why the heuristic must answer instead of ``provider`` (None: ask it)."""
        if provider.name == self.fallback.name:
            return None
        if self.settings.price(self.settings.model) is None:
            return (f"model {self.settings.model!r} has no price in llm_oracle.prices: "
                    "treated as over budget (add it, [0, 0] for a free local model)")
        if self.spent_today() >= self.settings.daily_budget_usd:
            return f"daily LLM budget of ${self.settings.daily_budget_usd:.2f} spent"
        return None

    # -- the reply cache (backfill only) --------------------------------------------------
    def _cached(self, phash: str) -> tuple[ProviderReply, dict[str, Any]] | None:
        """A validated reply and what it cost when it was asked (replayed as such: the
        journal of a re-run is identical, and the budget is not charged twice)."""
        path = self.cache_dir / f"{phash}.json" if self.cache_dir else None
        if path is None or not path.exists():
            return None
        try:
            entry = json.loads(path.read_text())
            return ProviderReply(**entry["reply"]), entry["paid"]
        except (OSError, ValueError, TypeError, KeyError):
            return None  # a damaged or old-format entry is asked again

    def _cache(self, phash: str, reply: ProviderReply, paid: dict[str, Any]) -> None:
        if self.cache_dir is None or self.settings.cache_max_entries == 0:
            return
        store.atomic_write_json(self.cache_dir / f"{phash}.json",
                                {"reply": reply.__dict__, "paid": paid})
        if self._cache_entries is None:
            self._cache_entries = sum(1 for _ in self.cache_dir.glob("*.json"))
        else:
            self._cache_entries += 1
        if self._cache_entries > self.settings.cache_max_entries:  # evict the oldest
            entries = sorted(self.cache_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
            excess = entries[: len(entries) - self.settings.cache_max_entries]
            for old in excess:
                old.unlink(missing_ok=True)
            self._cache_entries = len(entries) - len(excess)

    # -- a session -----------------------------------------------------------------------
    def last_usable(self) -> OracleDecision | None:
        return next((d for d in reversed(store.read_journal(self.out / store.JOURNAL))
                     if d.usable), None)

    def decide(self, at: datetime, session: str, live: bool = False,
               previous: OracleDecision | None = None,
               use_cache: bool = False) -> OracleDecision:
        """The decision for a session at ``at`` (UTC); never raises for provider trouble.

        ``live`` sessions also read the news feed and the bot's API; backfills never do
        (what they would return is not knowable for a past time). ``previous``: the last
        usable decision, from which risk may rise only step by step. ``use_cache``
        (backfill): validated replies are reused by prompt hash.
        """
        news, bot = self.news, None
        if live:
            if self.settings.news_url:
                news = pd.concat([self.news, fetch_feed(self.settings.news_url)],
                                 ignore_index=True)
            if self.bot is not None:
                bot = self.bot.snapshot(self.universe)
        shuffled = self.settings.prompt_order == "shuffled"
        context = build_context(self.view, news, at, self.limits(), bot,
                                self.settings.prompt_order_seed if shuffled else None)
        mask = (Mask.for_universe(self.universe, self.settings.mask_seed)
                if self.settings.masked and not live else None)
        shown = (context if mask is None
                 else mask.context(context, self.settings.mask_news, keep_order=shuffled))
        # The order the prompt listed the pairs in, in real names (journaled).
        back = {} if mask is None else mask.to_pair
        order = [back.get(name, name) for name in shown["universe"]]
        provider: Provider = self.provider  # type: ignore[assignment]
        status, notes = "ok", [] if mask is None else ["masked prompt"]
        why = self._why_not_paid(provider)
        if why:
            logger.warning("session %s: %s: the heuristic answers", session, why)
            provider, status = self.fallback, "fallback"
            notes.append(why)
            self.fallbacks += 1
        messages = render_prompt(shown, self.settings.max_prompt_chars)
        request = ({"base_url": self.settings.base_url, "seed": self.settings.seed,
                    "response_format": self.settings.response_format,
                    "max_tokens": self.settings.max_tokens}
                   if provider.name != self.fallback.name else None)
        phash = prompt_hash(provider.name, provider.model, messages, request)
        base: dict[str, Any] = {
            "decided_at": at, "valid_until": at + timedelta(hours=self.settings.validity_hours),
            "session": session, "provider": provider.name, "model": provider.model,
            "prompt_hash": phash, "context_until": context["data_until"],
            "prompt_order": order}
        paid = provider.name != self.fallback.name
        cached = self._cached(phash) if use_cache and paid else None
        if cached is not None:
            reply, paid_then = cached
            self.cache_hits += 1
            base.update(model=reply.model, tokens_in=reply.tokens_in,
                        tokens_out=reply.tokens_out, latency_s=round(reply.latency_s, 3),
                        **paid_then)
            if reply.usage_estimated:
                notes.append("no usage in the reply: tokens estimated from characters")
        else:
            asked_at = datetime.now(UTC)
            try:
                reply = provider.ask(messages, shown)
            except ProviderError as exc:
                logger.warning("session %s at %s: no answer (%s)", session, at, exc)
                if exc.reasoning:
                    base["model_reasoning"] = exc.reasoning[:THINKING_MAX_CHARS]
                return self._rejected(base, f"provider error: {exc}", notes,
                                      received=exc.received or None)
            except Exception as exc:  # a provider bug must not take the daemon down
                logger.exception("session %s at %s: provider failed", session, at)
                return self._rejected(base, f"provider failed: {type(exc).__name__}: {exc}")
            finally:
                self.calls += paid
            cost = self.cost(reply) if paid else 0.0
            if paid:
                self._spend(cost)
            base.update(model=reply.model, tokens_in=reply.tokens_in,
                        tokens_out=reply.tokens_out, cost_usd=round(cost, 8),
                        latency_s=round(reply.latency_s, 3),
                        asked_at=asked_at if paid else None)
            if reply.usage_estimated:
                notes.append("no usage in the reply: tokens estimated from characters")
        cut_off = reply.finish_reason == "length"
        notes += reply.notes
        try:
            answer, clamped, thinking = parse_answer(reply.text, self.universe, self.settings,
                                                     None if mask is None else mask.answer)
        except AnswerError as exc:
            reason = f"{exc}; {CUT_OFF}" if cut_off else str(exc)
            if reply.source in REASONING_FIELDS:
                reason = (f"the message's content was empty and its {reply.source} held no "
                          f"valid answer ({REASONING_PARSER}): {reason}")
            elif reply.source != "content":
                reason = f"the answer arrived as a {reply.source}: {reason}"
            logger.warning("session %s at %s: answer rejected (%s)", session, at, reason)
            if reply.reasoning:
                base["model_reasoning"] = reply.reasoning[:THINKING_MAX_CHARS]
            # Where the text came from, when not the content: "tool call 'name': {...}".
            came = reply.text if reply.source == "content" else f"{reply.source}: {reply.text}"
            return self._rejected(base, reason, notes,
                                  received=came[:RECEIVED_MAX_CHARS] or None)
        thinking = "\n".join(t for t in (reply.reasoning, thinking) if t)
        if thinking:
            base["model_reasoning"] = thinking[:THINKING_MAX_CHARS]
        if cut_off:
            notes.append("the reply was cut off at the token limit after a valid answer")
        answer, ramped = limit_step_up(answer, previous, self.settings)
        notes += clamped + ramped
        if notes:  # journaled either way; a backfill would print one line per session
            logger.log(logging.INFO if live else logging.DEBUG, "session %s: %s", session,
                       "; ".join(notes))
        if use_cache and paid and cached is None:  # only answers that passed validation
            self._cache(phash, reply, {"cost_usd": base.get("cost_usd", 0.0),
                                       "asked_at": base["asked_at"].isoformat()})
        return OracleDecision(**base, status=status, focus_pairs=answer.focus_pairs,
                              risk_level=answer.risk_level, max_exposure=answer.max_exposure,
                              max_position=answer.max_position,
                              overnight_target=answer.overnight_target,
                              pair_bias=answer.pair_bias, reasoning=answer.reasoning,
                              notes="; ".join(notes)[:1000] or None)

    @staticmethod
    def _rejected(base: dict[str, Any], reason: str, notes: list[str] | None = None,
                  received: str | None = None) -> OracleDecision:
        """A rejection, journaled with why, the notes so far and what was received."""
        return OracleDecision(**base, status="rejected", focus_pairs=[], received=received,
                              risk_level=RiskLevel.CONSERVATIVE, max_exposure=0.0,
                              overnight_target=0.0, rejected_reason=reason[:500],
                              notes="; ".join(notes or [])[:1000] or None)

    def run_session(self, at: datetime, session: str, live: bool = True,
                    stamp_arrival: bool = False) -> OracleDecision:
        """Decide, journal it, and publish it unless it was rejected (the last good stays).

        ``stamp_arrival`` (sessions run now, on the wall clock): ``decided_at`` is when the
        answer arrived, so no candle that closed while the LLM was still answering sees it.
        """
        decision = self.decide(at, session, live=live, previous=self.last_usable())
        arrived = datetime.now(UTC)
        if stamp_arrival and arrived > decision.decided_at:
            decision = decision.model_copy(update={"decided_at": arrived})
        store.append_journal(self.out / store.JOURNAL, decision)
        if decision.usable:
            self.publish(decision)
        return decision

    def publish(self, decision: OracleDecision) -> None:
        store.atomic_write_json(self.out / store.PROFILE, decision.model_dump(mode="json"),
                                reader=OracleDecision.model_validate_json)
        store.atomic_write_json(self.out / store.PAIRLIST,
                                decision.pairlist(self.settings.refresh_period))

    def backfill_summary(self, decisions: list[OracleDecision]) -> str:
        """One line on a backfill: decisions, rejections, who answered, the journal."""
        rejected = sum(not d.usable for d in decisions)
        return (f"{len(decisions)} decisions ({rejected} rejected): {self.calls} provider "
                f"calls, {self.cache_hits} replayed from the cache, {self.fallbacks} answered "
                f"by the heuristic (budget or unpriced model); journal {self.out / store.JOURNAL}")

    # -- schedule ------------------------------------------------------------------------
    def session_times(self, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
        """The scheduled sessions that start in [start, end), with their names."""
        return [(slot.start, slot.name) for slot in self.settings.schedule.slots(start, end)]

    def backfill(self, start: datetime, end: datetime,
                 progress: bool = True) -> list[OracleDecision]:
        """Decisions for every scheduled session in [start, end), journaled in time order.

        Journal lines outside the range are kept; the file is replaced atomically, so the
        same cache gives a byte-identical journal.
        """
        times = self.session_times(start, end)
        journal = self.out / store.JOURNAL
        existing = store.read_journal(journal)
        previous = next((d for d in reversed(existing) if d.usable and d.decided_at < start),
                        None)
        decisions = []
        for i, (at, name) in enumerate(times, 1):
            decision = self.decide(at, name, previous=previous, use_cache=True)
            lag = max(self.settings.backfill_latency_s, decision.latency_s)
            decision = decision.model_copy(update={"decided_at": at + timedelta(seconds=lag)})
            decisions.append(decision)
            previous = decision if decision.usable else previous
            if progress and (i % 100 == 0 or i == len(times)):
                print(f"backfill: {i}/{len(times)} sessions, {self.calls} provider calls, "
                      f"{self.cache_hits} from cache, {self.fallbacks} heuristic fallbacks",
                      flush=True)
        kept = [d for d in existing if not start <= d.decided_at < end]
        merged = sorted(kept + decisions, key=lambda d: d.decided_at)
        text = "".join(store.journal_line(d) for d in merged)  # each read back first
        journal.parent.mkdir(parents=True, exist_ok=True)
        tmp = journal.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(journal)
        usable = [d for d in merged if d.usable]
        if usable:
            self.publish(usable[-1])
        return decisions
