"""Answers small models send that look almost right, and files that must read back as
written (issue #31: a Python literal, NaN, pair spellings). Each case goes through the real
path: the ``openai`` client against a loopback server, then validation, journal, profile
and, where the strategy would see it, its feed."""

from __future__ import annotations

import json
import logging
import math
from datetime import timedelta
from pathlib import Path

import pytest
from fake_openai import AT, UNIVERSE, Reply, answer, make_oracle, profile

from hybrid_ai.oracle.feed import OracleFeed
from hybrid_ai.settings import OracleGate
from llm_oracle import store
from llm_oracle.schema import OracleDecision, RiskLevel

LATER = AT + timedelta(hours=6)


def journal(out: Path) -> list[OracleDecision]:
    return store.read_journal(out / store.JOURNAL)


def feed_at(out: Path, when) -> object:
    """What the strategy's feed follows at ``when``, reading the oracle's journal."""
    feed = OracleFeed(OracleGate(enabled=True, source=str(out / store.JOURNAL)))
    assert feed.refresh()
    return feed.at(when)


def store_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "llm_oracle.store" and r.levelno >= logging.WARNING]


# --- 2. a Python literal ------------------------------------------------------------------
PYTHON_ANSWER = ("{'focus_pairs': ['BTC/USDT', 'ETH/USDT'], 'risk_level': 'moderate', "
                 "'max_exposure': 0.5, 'max_position': 0.2, 'overnight_target': 0.3, "
                 "'pair_bias': None, 'hedged': False, "
                 "'reasoning': 'BTC holds its range {low} } and it\\'s calm'}")


def test_a_python_literal_answer_is_read_safely_and_noted(market, tmp_path, fake, caplog):
    fake.default = Reply(content="Here is my answer:\n" + PYTHON_ANSWER)
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok", decision.rejected_reason
    assert decision.focus_pairs == ["BTC/USDT", "ETH/USDT"]
    assert decision.max_exposure == 0.5 and decision.risk_level is RiskLevel.MODERATE
    assert decision.pair_bias == {}  # None: no bias, the schema's default
    assert decision.reasoning == "BTC holds its range {low} } and it's calm"  # a } in '...'
    assert "read as a Python literal" in decision.notes
    assert journal(tmp_path) == [decision] and profile(tmp_path) == decision
    assert not store_warnings(caplog)


def test_a_python_literal_with_json_words_is_read_too(market, tmp_path, fake):
    fake.default = Reply(content="{'focus_pairs': ['SOL/USDT'], 'risk_level': 'conservative', "
                                 "'max_exposure': 0.3, 'overnight_target': 0.1, "
                                 "'pair_bias': null, 'trend': true, 'reasoning': 'null true'}")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok", decision.rejected_reason
    assert decision.focus_pairs == ["SOL/USDT"] and decision.pair_bias == {}
    assert decision.reasoning == "null true"  # words inside strings are left alone
    assert "read as a Python literal" in decision.notes


def test_a_python_literal_is_never_evaluated(market, tmp_path, fake):
    marker = tmp_path / "evaluated"
    fake.default = Reply(content="{'focus_pairs': __import__('pathlib').Path("
                                 f"{str(marker)!r}).touch(), 'risk_level': 'moderate'}}")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "rejected" and not marker.exists()
    assert "the answer's object at char 0 does not parse" in decision.rejected_reason
    assert "as a Python literal" in decision.rejected_reason


def test_an_answer_that_does_not_parse_names_its_parse_error(market, tmp_path, fake):
    broken = ('{"focus_pairs": ["BTC/USDT"] "risk_level": "moderate", "max_exposure": 0.5, '
              '"overnight_target": 0.2}')
    fake.default = Reply(content="Keys {like this}. My answer: " + broken)
    oracle = make_oracle(market, tmp_path, fake)
    decision = oracle.run_session(AT, "12:00Z")
    at = len("Keys {like this}. My answer: ")
    assert decision.status == "rejected"
    assert decision.rejected_reason == (f"the answer's object at char {at} does not parse: "
                                        "Expecting ',' delimiter: line 1 column 30")
    fake.default = Reply(content="I cannot decide today.")  # no brace at all: as before
    plain = oracle.run_session(LATER, "18:00Z")
    assert plain.rejected_reason.startswith("no JSON object in the answer")


# --- 5. NaN and infinities ----------------------------------------------------------------
def test_a_nan_bias_is_dropped_with_a_note_and_everything_reads_back(
        market, tmp_path, fake, caplog):
    oracle = make_oracle(market, tmp_path, fake)
    first = oracle.run_session(AT, "12:00Z")
    fake.default = Reply(content=answer(max_exposure=0.4, pair_bias=[
        {"pair": "BTC/USDT", "bias": float("nan")}, {"pair": "ETH/USDT", "bias": 0.3}]))
    assert "NaN" in fake.default.content
    second = oracle.run_session(LATER, "18:00Z")
    assert second.status == "ok" and second.pair_bias == {"ETH/USDT": 0.3}
    assert "dropped non-finite bias: BTC/USDT nan" in second.notes
    # The journal reads back whole, the profile is JSON, and the strategy follows the new
    # decision, as the profile does.
    assert journal(tmp_path) == [first, second]
    assert not store_warnings(caplog)
    text = (tmp_path / store.PROFILE).read_text()
    assert "NaN" not in text and profile(tmp_path) == second
    followed = feed_at(tmp_path, LATER + timedelta(minutes=5))
    assert followed.decided_at == second.decided_at and followed.max_exposure == 0.4
    assert followed.bias == {"ETH/USDT": 0.3}


@pytest.mark.parametrize(("key", "value"), [
    ("max_exposure", float("nan")), ("max_exposure", float("inf")),
    ("overnight_target", float("-inf")), ("overnight_target", float("nan")),
], ids=["exposure-nan", "exposure-inf", "overnight-minus-inf", "overnight-nan"])
def test_a_non_finite_exposure_rejects_the_answer_naming_the_key(
        market, tmp_path, fake, key, value):
    oracle = make_oracle(market, tmp_path, fake)
    good = oracle.run_session(AT, "12:00Z")
    fake.default = Reply(content=answer(**{key: value}))
    bad = oracle.run_session(LATER, "18:00Z")
    assert bad.status == "rejected"
    assert bad.rejected_reason == f"{key} is {value}: not a finite number"
    assert profile(tmp_path) == good and journal(tmp_path) == [good, bad]


def test_a_huge_number_is_an_infinity_too(market, tmp_path, fake):
    fake.default = Reply(content=answer(max_exposure=0.5).replace("0.5", "1e999"))
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "rejected"
    assert decision.rejected_reason == "max_exposure is inf: not a finite number"


def test_a_non_finite_max_position_is_set_to_the_cap_with_a_note(market, tmp_path, fake):
    fake.default = Reply(content=answer(max_position=float("nan")))
    decision = make_oracle(market, tmp_path, fake, max_position_cap=0.15).run_session(
        AT, "12:00Z")
    assert decision.status == "ok" and decision.max_position == 0.15
    assert "max_position nan is not a finite number: set to the cap 0.15" in decision.notes
    assert journal(tmp_path) == [decision] and profile(tmp_path) == decision


def test_no_file_is_written_that_its_reader_refuses(market, tmp_path, fake):
    oracle = make_oracle(market, tmp_path, fake)
    good = oracle.run_session(AT, "12:00Z")
    before = (tmp_path / store.JOURNAL).read_bytes(), (tmp_path / store.PROFILE).read_bytes()
    # A NaN set past validation (model_copy does not validate), as a later bug might.
    poisoned = good.model_copy(update={"decided_at": LATER, "max_exposure": math.nan})
    with pytest.raises(store.UnreadableWriteError, match="max_exposure"):
        store.append_journal(tmp_path / store.JOURNAL, poisoned)
    with pytest.raises(store.UnreadableWriteError, match=r"risk_profile\.json"):
        oracle.publish(poisoned)
    biased = good.model_copy(update={"pair_bias": {"BTC/USDT": math.inf}})
    with pytest.raises(store.UnreadableWriteError, match="pair_bias"):
        oracle.publish(biased)
    assert ((tmp_path / store.JOURNAL).read_bytes(),
            (tmp_path / store.PROFILE).read_bytes()) == before
    target = tmp_path / "plain.json"
    with pytest.raises(store.UnreadableWriteError, match=r"plain\.json.*in stats\.sharpe"):
        store.atomic_write_json(target, {"stats": {"sharpe": math.nan}})
    assert not target.exists() and not list(tmp_path.glob(".plain.json.*"))
    with pytest.raises(store.UnreadableWriteError, match="reader refuses"):
        store.atomic_write_json(target, {"a": 1}, reader=OracleDecision.model_validate_json)
    assert not target.exists()


def test_an_unreadable_journal_line_is_named_with_its_number_and_error(
        market, tmp_path, fake, caplog):
    oracle = make_oracle(market, tmp_path, fake)
    good = oracle.run_session(AT, "12:00Z")
    path = tmp_path / store.JOURNAL
    line = json.loads(path.read_text())
    line["max_exposure"] = None  # what pydantic wrote for a NaN before
    with path.open("a") as fh:
        fh.write(json.dumps(line) + "\n\n" + '{"torn": \n')
    assert journal(tmp_path) == [good]
    warnings = store_warnings(caplog)
    assert f"{path} line 2: max_exposure: Input should be a valid number (skipped)" in warnings
    assert any(w.startswith(f"{path} line 4: Invalid JSON") for w in warnings), warnings
    caplog.clear()
    feed = OracleFeed(OracleGate(enabled=True, source=str(path)))  # the strategy's reader
    assert feed.refresh()
    assert any("journal.jsonl line 2: max_exposure" in w for w in store_warnings(caplog))


# --- 6. pair spellings --------------------------------------------------------------------
def test_bare_bases_map_to_the_one_pair_with_that_base(market, tmp_path, fake):
    fake.default = Reply(content=answer(focus_pairs=["BTC", "eth"]))
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok" and decision.focus_pairs == ["BTC/USDT", "ETH/USDT"]
    assert "focus_pairs: pairs respelled as in the universe: ['BTC->BTC/USDT', " \
           "'eth->ETH/USDT']" in decision.notes


def test_pair_bias_keys_are_respelled_and_every_drop_is_noted(market, tmp_path, fake):
    bias = {"SOL-USDT": -0.9, "xrp_usdt": 0.2, "ETHUSDT": 0.1, "DOGE/USDT": 0.5}
    fake.default = Reply(content=answer(pair_bias=bias))
    oracle = make_oracle(market, tmp_path, fake)
    decision = oracle.run_session(AT, "12:00Z")
    assert decision.status == "ok"
    assert decision.pair_bias == {"SOL/USDT": -0.9, "XRP/USDT": 0.2, "ETH/USDT": 0.1}
    assert ("pair_bias: pairs respelled as in the universe: ['SOL-USDT->SOL/USDT', "
            "'xrp_usdt->XRP/USDT', 'ETHUSDT->ETH/USDT']") in decision.notes
    assert "pair_bias: dropped pairs outside the universe: ['DOGE/USDT']" in decision.notes
    # The exit signal reaches the strategy: SOL/USDT is biased below exit_bias (-0.5).
    assert feed_at(tmp_path, AT + timedelta(minutes=5)).bias["SOL/USDT"] == -0.9


def test_an_ambiguous_base_is_dropped_naming_the_candidates(market, tmp_path, fake):
    fake.default = Reply(content=answer(focus_pairs=["BTC", "ETH"],
                                        pair_bias=[{"pair": "btc", "bias": -0.8}]))
    oracle = make_oracle(market, tmp_path, fake)
    oracle.universe = [*UNIVERSE, "BTC/USDC"]
    decision = oracle.run_session(AT, "12:00Z")
    assert decision.status == "ok" and decision.focus_pairs == ["ETH/USDT"]
    assert decision.pair_bias == {}
    assert ("focus_pairs: dropped 'BTC': ambiguous, the universe has BTC/USDT and BTC/USDC"
            in decision.notes)
    assert ("pair_bias: dropped 'btc': ambiguous, the universe has BTC/USDT and BTC/USDC"
            in decision.notes)


def test_a_focus_entirely_outside_the_universe_is_a_rejection(market, tmp_path, fake):
    oracle = make_oracle(market, tmp_path, fake)
    good = oracle.run_session(AT, "06:00Z")
    fake.default = Reply(content=answer(focus_pairs=["DOGE", "PEPE/USDT"]))
    bad = oracle.run_session(LATER, "12:00Z")
    assert bad.status == "rejected"
    assert bad.rejected_reason == ("every focus pair named is outside the universe: "
                                   f"['DOGE', 'PEPE/USDT'] (the universe: {UNIVERSE})")
    assert profile(tmp_path) == good
    # An explicitly empty focus is an answer (no pair worth an entry), as before.
    fake.default = Reply(content=answer(focus_pairs=[]))
    empty = oracle.run_session(LATER + timedelta(hours=6), "18:00Z")
    assert empty.status == "ok" and empty.focus_pairs == [] and profile(tmp_path) == empty
