"""Masked prompts for backfills (``llm_oracle.masking``): the model sees no name, date or
price level; its answer comes back in real pairs. Through the real path: an oracle session
against a loopback OpenAI-compatible server."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fake_openai import AT, UNIVERSE, Reply, answer, make_oracle

from llm_oracle.masking import Mask


def test_aliases_are_neutral_and_the_seed_changes_them():
    a = Mask.for_universe(UNIVERSE, "a")
    b = Mask.for_universe(UNIVERSE, "b")
    assert sorted(a.to_alias) == sorted(UNIVERSE)
    assert a.aliases == ["ASSET_A", "ASSET_B", "ASSET_C", "ASSET_D"]
    assert a.to_alias != b.to_alias  # another wording of the same prompt
    assert Mask.for_universe(list(reversed(UNIVERSE)), "a") == a  # order leaks nothing
    many = Mask.for_universe([f"C{i}/USDT" for i in range(30)])
    assert "ASSET_AD" in many.aliases and len(set(many.aliases)) == 30


def test_a_masked_answer_maps_back_to_the_pairs_reasoning_included():
    mask = Mask.for_universe(UNIVERSE, "a")
    btc, eth = mask.to_alias["BTC/USDT"], mask.to_alias["ETH/USDT"]
    back = mask.answer({"focus_pairs": [btc, "NOPE"], "risk_level": "moderate",
                        "pair_bias": [{"pair": eth, "bias": -0.5}],
                        "reasoning": f"{btc} leads, {eth} lags"})
    assert back["focus_pairs"] == ["BTC/USDT", "NOPE"]  # unknown names stay for validation
    assert back["pair_bias"] == [{"pair": "ETH/USDT", "bias": -0.5}]
    assert back["reasoning"] == "BTC/USDT leads, ETH/USDT lags"


def test_a_masked_session_shows_no_name_date_or_price_and_decides_in_real_pairs(
        market, tmp_path, fake):
    mask = Mask.for_universe(UNIVERSE, "")
    btc, sol = mask.to_alias["BTC/USDT"], mask.to_alias["SOL/USDT"]
    fake.default = Reply(content=answer(focus_pairs=[btc, sol], reasoning=f"{btc} strong",
                                        pair_bias=[{"pair": sol, "bias": 0.4}]))
    oracle = make_oracle(market, tmp_path / "masked", fake, masked=True)
    decision = oracle.backfill(AT, AT + timedelta(hours=6), progress=False)[0]
    sent = fake.requests[0]
    prompt = sent["messages"][1]["content"]
    for leak in ("BTC", "ETH", "SOL", "XRP", "USDT", str(AT.year), '"close"'):
        assert leak not in prompt, leak
    context = json.loads(prompt.split("\n", 1)[1])
    # The aliases in the session's shuffled order (llm_oracle.prompt_order), not ASSET_A
    # first; the markets and the schema's enum follow it; the journal names it in pairs.
    assert sorted(context["universe"]) == mask.aliases
    assert list(context["markets"]) == [a for a in context["universe"]
                                        if a in context["markets"]]
    schema = sent["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["focus_pairs"]["items"]["enum"] == context["universe"]
    assert decision.prompt_order == [mask.to_pair[a] for a in context["universe"]]
    # The decision is in real pairs, says it was masked, and validated as usual.
    assert decision.status == "ok" and decision.focus_pairs == ["BTC/USDT", "SOL/USDT"]
    assert decision.pair_bias == {"SOL/USDT": 0.4}
    assert decision.reasoning == "BTC/USDT strong"
    assert "masked prompt" in decision.notes
    # Unmasked, the same session shows the real market; the two prompts hash apart.
    plain = make_oracle(market, tmp_path / "plain", fake)
    unmasked = plain.backfill(AT, AT + timedelta(hours=6), progress=False)[0]
    assert "BTC/USDT" in fake.requests[-1]["messages"][1]["content"]
    assert unmasked.prompt_hash != decision.prompt_hash  # cached apart


def test_live_sessions_are_never_masked(market, tmp_path, fake):
    fake.default = Reply(content=answer())
    oracle = make_oracle(market, tmp_path, fake, masked=True)
    decision = oracle.run_session(AT, "12:00Z", live=True)
    assert "BTC/USDT" in fake.requests[0]["messages"][1]["content"]
    assert decision.status == "ok" and "masked" not in (decision.notes or "")


def test_journal_stats_count_what_the_report_shows(market, tmp_path, fake):
    from lab.journal_stats import journal_stats

    mask = Mask.for_universe(UNIVERSE, "")
    fake.script += [Reply(content=answer(focus_pairs=[mask.to_alias["BTC/USDT"]],
                                         max_exposure=3.0)),
                    Reply(content="no JSON here")]
    fake.default = Reply(content=answer(focus_pairs=[]))
    oracle = make_oracle(market, tmp_path, fake, masked=True, max_retries=0)
    oracle.backfill(AT, AT + timedelta(days=1), progress=False)
    row = journal_stats("ta+ml+llm", tmp_path / "journal.jsonl")
    assert row["sessions"] == 4 and row["usable"] == 3 and row["rejected_share"] == 0.25
    assert row["clamped_share"] == 1 / 3 and row["masked"] == 4
    assert row["answered_by"] == "openai/gpt-4o-mini" and row["top_rejection"]
    assert row["latency_median_s"] >= 0 and row["cost_usd"] > 0


def test_the_probe_compares_the_same_sessions_masked_and_unmasked(market, tmp_path, fake):
    from lab.journal_stats import compare_journals

    mask = Mask.for_universe(UNIVERSE, "")
    fake.default = Reply(content=answer(focus_pairs=["BTC/USDT"], risk_level="moderate"))
    make_oracle(market, tmp_path / "plain", fake).backfill(AT, AT + timedelta(days=1),
                                                          progress=False)
    fake.default = Reply(content=answer(focus_pairs=[mask.to_alias["BTC/USDT"]],
                                        risk_level="conservative", max_exposure=0.3))
    make_oracle(market, tmp_path / "masked", fake, masked=True).backfill(
        AT, AT + timedelta(days=1), progress=False)
    probe = compare_journals(tmp_path / "plain" / "journal.jsonl",
                             tmp_path / "masked" / "journal.jsonl")
    assert probe == {"sessions": 4, "same_risk_level": 0.0,
                     "mean_abs_exposure_diff": pytest.approx(0.3),
                     "mean_focus_jaccard": 1.0}


def test_the_probe_verdict_says_differ_unless_everything_agrees():
    from lab.report import probe_line

    same = {"sessions": 56, "same_risk_level": 1.0, "mean_abs_exposure_diff": 0.0,
            "mean_focus_jaccard": 1.0}
    assert "do not depend" in probe_line(same)
    assert "The decisions differ" in probe_line(same | {"mean_focus_jaccard": 0.14})
    assert "no session" in probe_line({"sessions": 0})
