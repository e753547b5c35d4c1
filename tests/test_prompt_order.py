"""The prompt's layout privileges no pair (issue #31, item 7): the pairs are listed in a
seeded shuffle per session (``llm_oracle.prompt_order``), replayable from the session time
and the seed, journaled as the decision's ``prompt_order``; the heuristic decides the same
whatever the order; a model that names "the first pairs shown" is reported as following
the layout (``lab.journal_stats.position_bias``, the report's "Who answered" table,
``lab.llm_eval.order_sensitivity``). Through the real path: oracle sessions against a
loopback OpenAI-compatible server that reads the prompt it is sent."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fake_openai import AT, FakeOpenAI, Reply, answer

from lab.journal_stats import journal_stats, layout_verdict, position_bias
from lab.llm_eval import order_sensitivity
from lab.report import layout_lines
from llm_oracle import store
from llm_oracle.context import (
    SYSTEM_PROMPT,
    MarketView,
    build_context,
    load_news,
    prompt_order,
    render_prompt,
)
from llm_oracle.oracle import Oracle
from llm_oracle.providers import HeuristicProvider
from llm_oracle.schema import OracleAnswer, OracleDecision
from llm_oracle.settings import OracleSettings
from local_exchange.synthetic import DEFAULT_PAIRS

PAIRS = [spec.pair for spec in DEFAULT_PAIRS]  # the market fixture's nine pairs
DAYS = 2  # 8 sessions: enough for a verdict (layout_verdict wants 5)


def oracle(market: Path, out: Path, fake: FakeOpenAI | None, universe: list[str] = PAIRS,
           **overrides: Any) -> Oracle:
    """An oracle over the nine synthetic pairs asking ``fake`` (None: the heuristic)."""
    options = {"provider": "openai" if fake else "heuristic",
               "base_url": fake.base_url if fake else None, "model": "gpt-4o-mini",
               "output_dir": out, "timeout_s": 5.0, "max_retries": 1, **overrides}
    return Oracle(OracleSettings(**options), universe, MarketView(market, universe),
                  load_news(None), cache_dir=out / "cache")


def shown(request: dict[str, Any]) -> dict[str, Any]:
    """The context JSON a request's prompt showed."""
    return json.loads(request["messages"][1]["content"].split("\n", 1)[1])


def first_two(request: dict[str, Any]) -> str:
    """A model that reads the layout, not the market: the first two pairs listed."""
    names = shown(request)["universe"][:2]
    return answer(focus_pairs=names, pair_bias=[{"pair": p, "bias": 0.5} for p in names],
                  reasoning="the first two")


def backfill(o: Oracle) -> list[OracleDecision]:
    return o.backfill(AT, AT + timedelta(days=DAYS), progress=False)


# --- (a) the layout: a seeded shuffle per session, replayable, journaled --------------------
def test_the_order_is_shuffled_per_session_and_replayable(market, tmp_path, fake):
    decisions = backfill(oracle(market, tmp_path / "a", fake))
    orders = [shown(r)["universe"] for r in fake.requests]
    assert all(sorted(o) == sorted(PAIRS) for o in orders)
    assert len({tuple(o) for o in orders}) == len(orders)  # every session its own order
    assert orders[0] != PAIRS  # not the whitelist's order
    for request, order, decision in zip(fake.requests, orders, decisions, strict=True):
        context = shown(request)
        assert list(context["markets"]) == order  # the markets follow it, ...
        enum = request["response_format"]["json_schema"]["schema"]["properties"][
            "focus_pairs"]["items"]["enum"]
        assert enum == order  # ... and the answer schema's enum
        assert decision.prompt_order == order  # journaled
    # The same session and seed: the same prompt (a rerun of the backfill replays it, from
    # the cache); another seed, or the session 6 hours later, lists the pairs otherwise.
    sent = len(fake.requests)
    again = oracle(market, tmp_path / "a", fake)
    journal = (tmp_path / "a" / store.JOURNAL).read_bytes()
    backfill(again)
    assert again.cache_hits == len(decisions) and again.calls == 0
    assert len(fake.requests) == sent
    assert (tmp_path / "a" / store.JOURNAL).read_bytes() == journal
    fresh = oracle(market, tmp_path / "b", fake)
    fresh.decide(AT, "12:00Z")
    assert fake.requests[-1]["messages"] == fake.requests[0]["messages"]
    other = oracle(market, tmp_path / "c", fake, prompt_order_seed="another")
    assert other.decide(AT, "12:00Z").prompt_order != orders[0]
    # The whitelist's own order never reaches the prompt: reversed, the same prompt.
    oracle(market, tmp_path / "d", fake, list(reversed(PAIRS))).decide(AT, "12:00Z")
    assert fake.requests[-1]["messages"] == fake.requests[0]["messages"]
    # The old layout on request: the whitelist's order, journaled as such.
    old = oracle(market, tmp_path / "e", fake, prompt_order="universe").decide(AT, "12:00Z")
    assert shown(fake.requests[-1])["universe"] == PAIRS == old.prompt_order


def test_prompt_order_is_a_permutation_independent_of_the_input_order():
    order = prompt_order(PAIRS, AT, "s")
    assert sorted(order) == sorted(PAIRS)
    assert prompt_order(list(reversed(PAIRS)), AT, "s") == order
    assert prompt_order(PAIRS, AT, "s") == order
    assert prompt_order(PAIRS, AT, "t") != order
    assert prompt_order(PAIRS, AT + timedelta(hours=6), "s") != order
    # No position is privileged: over many sessions each pair leads about equally often.
    leads = [prompt_order(PAIRS, AT + timedelta(hours=6 * i))[0] for i in range(900)]
    counts = [leads.count(p) for p in PAIRS]
    assert min(counts) > 60 and max(counts) < 140  # 100 each on average


def test_trimming_drops_markets_from_the_end_of_the_shown_order(market):
    context = build_context(MarketView(market, PAIRS), load_news(None), AT, {}, None, "")
    order = context["universe"]
    assert order == prompt_order(PAIRS, AT, "") and list(context["markets"]) == order
    size = len(json.dumps(context, separators=(",", ":")))
    messages = render_prompt(context, size - 200)
    assert render_prompt(context, size - 200) == messages  # deterministic
    parsed = json.loads(messages[1]["content"].split("\n", 1)[1])
    kept = list(parsed["markets"])
    assert kept == order[: len(kept)] and len(kept) < len(order)
    assert parsed["omitted"] == [f"markets.{p}" for p in reversed(order[len(kept):])]
    assert parsed["universe"] == order  # the list itself stays whole


def test_a_masked_prompt_shuffles_the_aliases_too(market, tmp_path, fake):
    fake.default = Reply(respond=first_two)
    decisions = backfill(oracle(market, tmp_path, fake, masked=True))
    orders = [shown(r)["universe"] for r in fake.requests]
    assert all(o[0].startswith("ASSET_") for o in orders)
    assert len({o[0] for o in orders}) > 1  # not ASSET_A first every session
    assert len({tuple(o) for o in orders}) == len(orders)
    for decision, order in zip(decisions, orders, strict=True):
        assert "BTC/USDT" not in json.dumps(order)
        # Journaled in real pairs; the model's "first two aliases" are the first two shown.
        assert decision.focus_pairs == decision.prompt_order[:2]
        assert len(decision.prompt_order) == len(order) == len(PAIRS)
    row = journal_stats("masked", tmp_path / store.JOURNAL)
    assert row["position_bias"] == 1.0 and row["layout"] == "follows the layout"


# --- (b) what a model can assess pair by pair ----------------------------------------------
def test_the_prompt_asks_for_each_pair_on_its_own_numbers_and_the_answer_is_unchanged():
    assert "Assess each pair from its own numbers" in SYSTEM_PROMPT
    assert "order in which the pairs are listed\ncarries no meaning" in SYSTEM_PROMPT
    assert set(OracleAnswer.model_fields) == {
        "focus_pairs", "risk_level", "max_exposure", "overnight_target", "max_position",
        "pair_bias", "reasoning"}


def test_the_heuristic_decides_the_same_whatever_the_order(market, tmp_path):
    # The old layout (the whitelist's order reaches the prompt): only the order differs.
    forward = backfill(oracle(market, tmp_path / "f", None, prompt_order="universe"))
    backward = backfill(oracle(market, tmp_path / "b", None, list(reversed(PAIRS)),
                               prompt_order="universe"))
    assert any(d.focus_pairs for d in forward)
    for a, b in zip(forward, backward, strict=True):
        assert a.prompt_order == PAIRS and b.prompt_order == PAIRS[::-1]
        keep = {"prompt_order", "prompt_hash"}
        assert a.model_dump(exclude=keep) == b.model_dump(exclude=keep)
    # Shuffled (the default): the whole decision is identical, prompt and order included.
    shuffled = backfill(oracle(market, tmp_path / "s", None))
    reversed_ = backfill(oracle(market, tmp_path / "r", None, list(reversed(PAIRS))))
    assert [d.model_dump() for d in shuffled] == [d.model_dump() for d in reversed_]
    # And the provider itself, on one context with its markets listed backwards.
    context = build_context(MarketView(market, PAIRS), load_news(None), AT, {})
    backwards = {**context, "markets": dict(reversed(context["markets"].items()))}
    heuristic = HeuristicProvider(OracleSettings())
    assert heuristic.ask([], context).text == heuristic.ask([], backwards).text


# --- (c) position bias and order sensitivity -----------------------------------------------
def test_a_model_that_names_the_first_pairs_shown_follows_the_layout(market, tmp_path, fake):
    fake.default = Reply(respond=first_two)
    decisions = backfill(oracle(market, tmp_path / "llm", fake))
    for request, decision in zip(fake.requests, decisions, strict=True):
        assert decision.prompt_order == shown(request)["universe"]
        assert decision.focus_pairs == decision.prompt_order[:2]
    assert len({tuple(d.focus_pairs) for d in decisions}) > 1  # the pairs change, ...
    bias = position_bias(decisions)  # ... their places never
    assert bias == {"sessions": len(decisions), "share": 1.0,
                    "chance": pytest.approx(2 / len(PAIRS))}
    assert layout_verdict(bias) == "follows the layout"
    # The heuristic, over the same sessions: about chance, not the layout.
    backfill(oracle(market, tmp_path / "heuristic", None))
    rows = [journal_stats("ta+ml+llm", tmp_path / "llm" / store.JOURNAL),
            journal_stats("ta+ml+oracle", tmp_path / "heuristic" / store.JOURNAL)]
    llm, heuristic = rows
    assert llm["position_bias"] == 1.0 and llm["layout"] == "follows the layout"
    assert heuristic["position_bias"] < 0.8 and heuristic["layout"] == "not the layout"
    assert heuristic["position_bias"] < heuristic["position_chance"] + 0.25
    said = layout_lines(pd.DataFrame(rows))
    assert len(said) == 1 and said[0].startswith("The ta+ml+llm oracle's decisions follow "
                                                 "the prompt's layout")


def test_old_journals_without_a_prompt_order_stay_readable_and_say_n_a(market, tmp_path):
    backfill(oracle(market, tmp_path, None))
    path = tmp_path / store.JOURNAL
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in line.items()
                                        if k != "prompt_order"}) + "\n" for line in lines))
    assert all(d.prompt_order is None for d in store.read_journal(path))
    row = journal_stats("old", path)
    assert row["sessions"] == len(lines) and row["layout"] == "n/a"
    assert row["position_bias"] != row["position_bias"]  # NaN: an empty cell in the table
    few = position_bias(store.read_journal(path)[:0])
    assert few == {"sessions": 0, "share": None, "chance": None}
    assert layout_verdict({"sessions": 3, "share": 1.0, "chance": 0.2}) == "n/a (3 sessions)"


def test_order_sensitivity_on_the_oracle_against_a_fake_server(market, tmp_path, fake):
    # A layout-reader: asked the same sessions in two orders, its focus moves with them.
    fake.default = Reply(respond=first_two)
    a = backfill(oracle(market, tmp_path / "a", fake))
    b = backfill(oracle(market, tmp_path / "b", fake, prompt_order_seed="llm-eval-reordered"))
    reader = order_sensitivity(a, b)
    assert reader["sessions"] == len(a) == 8
    assert reader["mean_focus_jaccard"] < 0.5 and reader["risk_level_changed"] == 0.0
    assert reader["position_bias"] == 1.0 and reader["layout"] == "follows the layout"
    # A model whose answer does not depend on the order: nothing changes, no position bias.
    fake.default = Reply(content=answer(focus_pairs=["BTC/USDT", "ETH/USDT"]))
    c = backfill(oracle(market, tmp_path / "c", fake))
    d = backfill(oracle(market, tmp_path / "d", fake, prompt_order_seed="llm-eval-reordered"))
    steady = order_sensitivity(c, d)
    assert steady["mean_focus_jaccard"] == 1.0 and steady["risk_level_changed"] == 0.0
    assert steady["mean_abs_exposure_diff"] == 0.0
    assert steady["position_bias"] < 0.8 and steady["layout"] == "not the layout"
    assert order_sensitivity([], []) == {"sessions": 0}
