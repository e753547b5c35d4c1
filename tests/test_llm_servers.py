"""The oracle against what real OpenAI-compatible servers send: reasoning models that think
aloud, JSON inside prose, servers that refuse a response format or rate-limit, errors in
every shape. Each case goes through the real path: the ``openai`` client against a
loopback HTTP server, then validation, journal and profile."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fake_openai import AT, Reply, answer, formats, make_oracle, profile

from llm_oracle import store
from llm_oracle.faults import FaultKind, classify_status, retry_after
from llm_oracle.schema import RiskLevel


def journal(out):
    return store.read_journal(out / store.JOURNAL)


# --- 1. reasoning models: the thinking is never the answer -------------------------------
def test_a_brace_in_the_thinking_does_not_hide_the_answer(market, tmp_path, fake):
    fake.default = Reply(content="<think>The answer needs keys {focus_pairs, risk_level}; "
                                 "markets look calm.</think>\n" + answer())
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok" and decision.risk_level is RiskLevel.MODERATE
    assert "keys {focus_pairs, risk_level}" in decision.model_reasoning


def test_a_draft_in_the_thinking_is_never_adopted(market, tmp_path, fake):
    draft = answer(risk_level="aggressive", max_exposure=0.9)
    final = answer(risk_level="conservative", max_exposure=0.3)
    fake.default = Reply(content=f"<think>Draft:\n```json\n{draft}\n```\nToo bold; the "
                                 f"market fell.</think>\n```json\n{final}\n```")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok"
    assert decision.risk_level is RiskLevel.CONSERVATIVE and decision.max_exposure == 0.3
    assert "Too bold" in decision.model_reasoning and profile(tmp_path) == decision


def test_reasoning_sent_apart_from_the_content_is_journaled(market, tmp_path, fake):
    fake.default = Reply(message={"role": "assistant", "content": answer(),
                                  "reasoning_content": "BTC above its SMA50; {draft: 1}"})
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok"
    assert journal(tmp_path)[-1].model_reasoning == "BTC above its SMA50; {draft: 1}"


def test_a_template_that_opens_the_thinking_in_the_prompt(market, tmp_path, fake):
    # DeepSeek-R1-style templates put "<think>" in the prompt: the reply only closes it.
    draft = answer(risk_level="aggressive")
    fake.default = Reply(content=f"Let me draft {draft} ... no.</think>\n"
                                 + answer(risk_level="conservative"))
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok" and decision.risk_level is RiskLevel.CONSERVATIVE


def test_thinking_cut_off_by_the_token_limit_says_so(market, tmp_path, fake):
    fake.default = Reply(content="<think>Considering " + answer() + " but", finish_reason="length")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "rejected"
    assert "after the model's thinking" in decision.rejected_reason
    assert "finish_reason 'length'" in decision.rejected_reason
    assert "llm_oracle.max_tokens" in decision.rejected_reason


# --- 2. JSON inside prose ---------------------------------------------------------------
def test_json_inside_prose_is_found(market, tmp_path, fake):
    fake.default = Reply(content="Here is my assessment: " + answer(risk_level="conservative")
                                 + " Let me know if you want {focus_pairs, risk_level} changed.")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok" and decision.risk_level is RiskLevel.CONSERVATIVE


def test_of_several_objects_the_last_valid_one_wins_and_the_note_says_so(
        market, tmp_path, fake):
    fake.default = Reply(content="Option A: " + answer(risk_level="aggressive")
                                 + "\nOn reflection, option B: " + answer(max_exposure=0.4)
                                 + '\nFormat reminder: {"risk_level": "one of three"}')
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok" and decision.max_exposure == 0.4
    assert decision.risk_level is RiskLevel.MODERATE
    assert "3 JSON objects" in decision.notes and "#2" in decision.notes


# --- 3. a server that refuses structured output -----------------------------------------
LLAMA_CPP_REFUSAL = ('response_format type must be one of "text" or "json_object", '
                     'but got: json_schema')


def test_llama_cpp_500_on_json_schema_steps_down_to_its_grammar_mode_once(
        market, tmp_path, fake):
    fake.default = Reply(content=answer(), refuse_formats=("json_schema",), refuse_status=500,
                         refuse_message=LLAMA_CPP_REFUSAL)
    oracle = make_oracle(market, tmp_path, fake, max_retries=3)
    first = oracle.run_session(AT, "06:00Z")
    second = oracle.run_session(AT + timedelta(hours=6), "12:00Z")
    assert first.status == second.status == "ok"
    # One refused request, not four (a format error is not retried as a server error),
    # and the next session asks for the grammar-constrained object straight away.
    assert formats(fake) == ["json_schema", "json_object+schema", "json_object+schema"]
    schema = fake.requests[1]["response_format"]["schema"]
    props = schema["properties"]
    # Bounded: a grammar-constrained answer cannot be cut off mid-string or mid-list, and
    # names only pairs of the universe.
    assert props["reasoning"]["maxLength"] > 0
    assert props["focus_pairs"]["maxItems"] == 6
    assert props["pair_bias"]["maxItems"] == len(props["focus_pairs"]["items"]["enum"])
    assert set(props["focus_pairs"]["items"]["enum"]) == set(oracle.universe)


def test_a_server_that_refuses_a_schema_inside_json_mode_gets_plain_json_mode(
        market, tmp_path, fake):
    fake.default = Reply(content=answer(), refuse_formats=("json_schema", "json_object+schema"),
                         refuse_message="Additional properties are not allowed ('schema' was "
                                        "unexpected) - 'response_format'")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "x")
    assert decision.status == "ok"
    assert formats(fake) == ["json_schema", "json_object+schema", "json_object"]


def test_the_format_step_down_does_not_outlive_its_condition(market, tmp_path, fake):
    fake.script.append(Reply(refuse_formats=("json_schema",), refuse_status=500,
                             refuse_message=LLAMA_CPP_REFUSAL))
    oracle = make_oracle(market, tmp_path, fake, format_recheck_hours=1e-6)
    oracle.run_session(AT, "06:00Z")
    oracle.run_session(AT, "12:00Z")  # the recheck time has passed: schema again
    assert formats(fake) == ["json_schema", "json_object+schema", "json_schema"]


def test_a_pinned_format_wastes_no_request(market, tmp_path, fake):
    fake.default = Reply(content="Sure. " + answer(), refuse_formats=("json_schema",
                                                                     "json_object"))
    decision = make_oracle(market, tmp_path, fake, response_format="text").run_session(AT, "x")
    assert decision.status == "ok" and len(fake.requests) == 1
    assert "response_format" not in fake.requests[0]


def test_a_pinned_format_the_server_refuses_names_the_key(market, tmp_path, fake):
    fake.default = Reply(content=answer(), refuse_formats=("json_schema",), refuse_status=500,
                         refuse_message=LLAMA_CPP_REFUSAL)
    decision = make_oracle(market, tmp_path, fake, response_format="schema").run_session(AT, "x")
    assert decision.status == "rejected" and len(fake.requests) == 1
    assert "format unsupported" in decision.rejected_reason
    assert "pinned to 'schema'" in decision.rejected_reason
    assert "json_schema" in decision.rejected_reason  # the server's own words


def test_a_400_that_is_not_about_the_format_keeps_the_format(market, tmp_path, fake):
    fake.script.append(Reply(status=400, error="This model's maximum context length is 4096 "
                                               "tokens. However, you requested 9000 tokens."))
    oracle = make_oracle(market, tmp_path, fake)
    rejected = oracle.run_session(AT, "06:00Z")
    assert rejected.status == "rejected" and "prompt too long" in rejected.rejected_reason
    assert "llm_oracle.max_prompt_chars" in rejected.rejected_reason
    assert "maximum context length is 4096" in rejected.rejected_reason
    oracle.run_session(AT, "12:00Z")
    assert formats(fake) == ["json_schema", "json_schema"]  # not retried, format unchanged


# --- 4. rate limits: the server's wait, within the deadline ------------------------------
def test_429_with_retry_after_waits_what_the_server_asked(market, tmp_path, fake):
    fake.script += [Reply(status=429, error="Rate limit reached", headers={"Retry-After": "1"})]
    oracle = make_oracle(market, tmp_path, fake, timeout_s=10, max_retries=0)
    decision = oracle.run_session(AT, "12:00Z")
    assert decision.status == "ok" and len(fake.requests) == 2
    assert fake.times[1] - fake.times[0] >= 0.95  # the server's second, not a 0.5 s backoff


def test_openai_style_try_again_in_the_message_is_honoured(market, tmp_path, fake):
    fake.script += [Reply(status=429, error="Rate limit reached for gpt-4o-mini on requests "
                                            "per min. Please try again in 1.2s.")] * 3
    decision = make_oracle(market, tmp_path, fake, timeout_s=10,
                           max_retries=0).run_session(AT, "12:00Z")
    assert decision.status == "ok" and len(fake.requests) == 4
    gaps = [b - a for a, b in zip(fake.times, fake.times[1:], strict=False)]
    assert all(gap >= 1.15 for gap in gaps), gaps


def test_a_wait_beyond_the_deadline_gives_up_at_once_and_says_why(market, tmp_path, fake):
    fake.default = Reply(status=429, error="slow down", headers={"Retry-After": "30"})
    decision = make_oracle(market, tmp_path, fake, timeout_s=5).run_session(AT, "12:00Z")
    assert decision.status == "rejected" and len(fake.requests) == 1
    assert "rate limited" in decision.rejected_reason
    assert "asked to wait 30.0s" in decision.rejected_reason
    assert "llm_oracle.timeout_s" in decision.rejected_reason


def test_an_exhausted_quota_is_not_retried(market, tmp_path, fake):
    fake.default = Reply(status=429, error="You exceeded your current quota, please check "
                                           "your plan and billing details.")
    decision = make_oracle(market, tmp_path, fake, max_retries=3).run_session(AT, "x")
    assert decision.status == "rejected" and len(fake.requests) == 1
    assert "quota exhausted" in decision.rejected_reason


# --- 5. every error classified, with the server's words and the key to change -----------
@pytest.mark.parametrize(("reply", "kind", "key"), [
    (Reply(status=401, error="Incorrect API key provided: sk-...abc"), "authentication",
     "llm_oracle.api_key_env"),
    (Reply(status=404, error="model 'qwen3:8b' not found, try pulling it first"), "not found",
     "llm_oracle.model"),
    (Reply(status=400, error="the request exceeds the available context size, try "
                             "increasing it"), "prompt too long", "llm_oracle.max_prompt_chars"),
    (Reply(status=503, error="Loading model"), "overloaded", "llm_oracle.timeout_s"),
    (Reply(status=422, error="temperature: must be > 0"), "bad request", "which field"),
    (Reply(raw=json.dumps({"error": {"message": "upstream provider unavailable",
                                     "code": 502}})), "error in a 200 reply", "see its message"),
], ids=["auth", "model-not-found", "llama-context", "loading", "bad-request", "error-200"])
def test_every_server_error_is_classified_with_what_to_change(
        market, tmp_path, fake, caplog, reply, kind, key):
    fake.default = reply
    decision = make_oracle(market, tmp_path, fake, max_retries=0).run_session(AT, "12:00Z")
    reason = decision.rejected_reason
    assert decision.status == "rejected" and reason.startswith(f"provider error: {kind}")
    assert key in reason
    server_words = reply.error if reply.raw is None else "upstream provider unavailable"
    assert server_words in reason  # the server's own message
    assert server_words in caplog.text  # and the log carries it too
    assert journal(tmp_path)[-1].rejected_reason == reason


def test_a_complete_answer_before_the_cut_is_used_with_a_note(market, tmp_path, fake):
    fake.default = Reply(content=answer() + "\nLet me also explain", finish_reason="length")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok" and "cut off" in decision.notes


def test_retry_after_forms():
    assert retry_after({"retry-after-ms": "1500"}, "") == 1.5
    assert retry_after({"retry-after": "8"}, "") == 8.0
    assert retry_after({}, "Please try again in 350ms.") == pytest.approx(0.35)
    assert retry_after({}, "try again in 2 minutes") == 120.0
    assert retry_after({}, "slow down") is None
    assert classify_status(500, {"message": LLAMA_CPP_REFUSAL}).kind is \
        FaultKind.FORMAT_UNSUPPORTED
    assert classify_status(500, {"message": "CUDA out of memory"}).kind is FaultKind.SERVER_ERROR


# --- more of the same kinds, as other servers and small models send them ----------------
@pytest.mark.parametrize("content", [
    # gpt-oss through a server that does not parse its harmony channels
    "<|channel|>analysis<|message|>Draft: " + answer(risk_level="aggressive")
    + "<|end|><|start|>assistant<|channel|>final<|message|>"
    + answer(risk_level="conservative") + "<|return|>",
    # Magistral's [THINK] and Kimi's ◁think▷
    "[THINK]maybe " + answer(risk_level="aggressive") + "[/THINK]"
    + answer(risk_level="conservative"),
    "◁think▷maybe " + answer(risk_level="aggressive") + "◁/think▷"
    + answer(risk_level="conservative"),
], ids=["harmony", "bracket-think", "kimi-think"])
def test_other_thinking_formats_are_never_the_answer(market, tmp_path, fake, content):
    fake.default = Reply(content=content)
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok" and decision.risk_level is RiskLevel.CONSERVATIVE
    assert "aggressive" in decision.model_reasoning


def test_what_small_models_get_almost_right_is_read_and_noted(market, tmp_path, fake):
    sloppy = ('Answer:\n```json\n{\n  // my view\n  "focus_pairs": ["btcusdt", "ETH-USDT"],\n'
              '  "risk_level": "Moderate",\n  "max_exposure": "0.6",\n'
              '  "overnight_target": 0.3,\n  "reasoning": "ok",\n}\n```')
    fake.default = Reply(content=sloppy)
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok", decision.rejected_reason
    assert decision.focus_pairs == ["BTC/USDT", "ETH/USDT"]
    assert decision.risk_level is RiskLevel.MODERATE and decision.max_exposure == 0.6
    assert "respelled" in decision.notes and "read as a number" in decision.notes


def test_an_overnight_target_above_the_exposure_cap_is_brought_down_to_it(
        market, tmp_path, fake):
    # Seen from the local 0.5B model: max_exposure 0.9, overnight_target 0.954.
    fake.default = Reply(content=answer(max_exposure=0.9, overnight_target=0.954))
    decision = make_oracle(market, tmp_path, fake, max_exposure_step_up=1.0).run_session(
        AT, "12:00Z")
    assert decision.max_exposure == 0.9 and decision.overnight_target == 0.9
    assert "overnight_target 0.954 clamped to max_exposure 0.9" in decision.notes


def test_a_vllm_error_object_in_a_200_is_classified(market, tmp_path, fake):
    fake.default = Reply(raw=json.dumps({"object": "error", "message": "The model `x` does "
                                         "not exist.", "type": "NotFoundError", "code": 404}))
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "rejected"
    assert "error in a 200 reply" in decision.rejected_reason
    assert "does not exist" in decision.rejected_reason


def test_openai_rate_limit_reset_headers_are_honoured(market, tmp_path, fake):
    fake.script.append(Reply(status=429, error="Rate limit reached",
                             headers={"x-ratelimit-reset-requests": "1s",
                                      "x-ratelimit-reset-tokens": "120ms"}))
    decision = make_oracle(market, tmp_path, fake, timeout_s=10,
                           max_retries=0).run_session(AT, "12:00Z")
    assert decision.status == "ok" and fake.times[1] - fake.times[0] >= 0.95


def test_a_content_filtered_reply_says_so(market, tmp_path, fake):
    fake.default = Reply(message={"role": "assistant", "content": None},
                         finish_reason="content_filter")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "rejected" and "content filter" in decision.rejected_reason


@pytest.mark.parametrize("reply", [
    Reply(message={"role": "assistant", "content": [{"type": "text", "text": "Here: "},
                                                    {"type": "text", "text": answer()}]}),
    Reply(content=json.dumps(answer())),  # the answer JSON-encoded twice
], ids=["content-parts", "double-encoded"])
def test_other_reply_shapes_that_carry_a_valid_answer(market, tmp_path, fake, reply):
    fake.default = reply
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok", decision.rejected_reason


def test_a_server_that_is_not_running_says_where_it_looked(market, tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    oracle = make_oracle(market, tmp_path, None, provider="openai",
                         base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    decision = oracle.run_session(AT, "12:00Z")
    assert decision.status == "rejected" and "connection" in decision.rejected_reason
    assert "llm_oracle.base_url" in decision.rejected_reason
