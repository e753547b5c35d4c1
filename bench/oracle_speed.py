"""LLM-oracle costs that are ours, not the provider's.

* one session's overhead (context from candles, prompt, validation, journal and atomic
  writes) with the heuristic provider, against the bare heuristic call as baseline;
* the strategy's per-loop journal check: unchanged (a stat call) vs changed (re-parse);
* merging a year of four-a-day decisions into a year of 5m candles for 9 pairs;
* replaying a cached year of backfill (no provider call) vs building it the first time;
* the prompt size of a real nine-pair session, for the cost estimate of an LLM day.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from bench.common import Results, median_seconds
from hybrid_ai.oracle.feed import OracleFeed
from hybrid_ai.settings import OracleGate
from llm_oracle.context import MarketView, build_context, load_news, render_prompt
from llm_oracle.oracle import Oracle
from llm_oracle.providers import HeuristicProvider
from llm_oracle.schema import OracleDecision
from llm_oracle.settings import OracleSettings
from local_exchange.synthetic import DEFAULT_PAIRS, write_market

PAIRS = [p.pair for p in DEFAULT_PAIRS]


class CachedAnswer(HeuristicProvider):
    """Stands in for a paid provider (so the oracle caches it) without any network."""

    name = "cached-llm"
    model = "bench"


def run(results: Results, quick: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmpname:
        tmp = Path(tmpname)
        datadir = tmp / "binance"
        write_market(datadir, days=380, seed=3)
        settings = OracleSettings(output_dir=tmp / "oracle")
        view = MarketView(datadir, PAIRS)
        oracle = Oracle(settings, PAIRS, view, load_news(None), cache_dir=tmp / "oracle/cache")
        end = datetime(2025, 7, 1, tzinfo=UTC)
        at = end - timedelta(days=2)

        context = build_context(view, load_news(None), at, oracle.limits())
        messages = render_prompt(context, settings.max_prompt_chars)
        bare = median_seconds(lambda: oracle.provider.ask(messages, context), 50)
        full = median_seconds(lambda: oracle.run_session(at, "bench"), 10 if quick else 30)
        results.add("oracle_session_overhead_ms", full * 1e3, "ms", bare * 1e3,
                    "heuristic session end to end (context, validate, journal, atomic files) "
                    "vs the heuristic call alone")
        prompt_chars = sum(len(m["content"]) for m in messages)
        answer_chars = len(oracle.provider.ask(messages, context).text)
        results.add("oracle_prompt_chars", prompt_chars, "chars", None,
                    f"9 pairs, no news; answer {answer_chars} chars; ~4 chars per token")

        # A year of four-a-day decisions.
        year = [OracleDecision(decided_at=end - timedelta(hours=6 * i),
                               valid_until=end - timedelta(hours=6 * i - 8), session="s",
                               focus_pairs=PAIRS[: 1 + i % 5], risk_level="moderate",
                               max_exposure=0.7, overnight_target=0.3, provider="bench")
                for i in range(365 * 4)][::-1]
        journal = tmp / "year.jsonl"
        journal.write_text("".join(d.model_dump_json() + "\n" for d in year))
        feed = OracleFeed(OracleGate(enabled=True, source=str(journal)))
        feed.refresh()
        unchanged = median_seconds(feed.refresh, 2000)

        def changed() -> None:
            feed._stamp = None  # as after a write
            feed.refresh()

        reparse = median_seconds(changed, 5 if quick else 20)
        results.add("oracle_loop_check_unchanged_us", unchanged * 1e6, "us", reparse * 1e6,
                    "strategy bot_loop_start: journal unchanged (stat) vs changed "
                    "(re-parse a year, 1460 decisions)")

        candles = pd.DataFrame({"date": pd.date_range(end - timedelta(days=365), end,
                                                      freq="5min", tz="UTC", inclusive="left")})
        merge = median_seconds(lambda: [feed.merge(candles, p, timedelta(minutes=5))
                                     for p in PAIRS], 2 if quick else 5)
        results.add("oracle_merge_year_9_pairs_s", merge, "s", None,
                    f"{len(candles)} 5m candles x 9 pairs, 1460 decisions")

        # Backfill a year through the cache: first build (cache writes) vs replay.
        settings_y = OracleSettings(output_dir=tmp / "backfill")
        cached = Oracle(settings_y, PAIRS, view, load_news(None), provider=CachedAnswer(settings_y),
                        cache_dir=tmp / "backfill/cache")
        start_y = end - timedelta(days=365 if not quick else 60)
        t0 = time.perf_counter()
        cached.backfill(start_y, end, progress=False)
        first = time.perf_counter() - t0
        replay = Oracle(settings_y, PAIRS, view, load_news(None), provider=CachedAnswer(settings_y),
                        cache_dir=tmp / "backfill/cache")
        t0 = time.perf_counter()
        replay.backfill(start_y, end, progress=False)
        again = time.perf_counter() - t0
        assert replay.calls == 0
        days = (end - start_y).days
        results.add("oracle_backfill_replay_s", again, "s", first,
                    f"{days} days x 4 sessions from the prompt-hash cache (0 provider calls) "
                    "vs first build")
