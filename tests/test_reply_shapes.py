"""Answers in unusual places and dialects, as real servers and proxies send them (issue #31,
second round): each is read, with a note, or refused with the true reason and journaled with
what was received. Every case goes through the real path: the ``openai`` client against a
loopback HTTP server, then validation, journal and profile."""

from __future__ import annotations

import json
import logging

from fake_openai import AT, Reply, answer, make_oracle, profile

from llm_oracle import store
from llm_oracle.providers import OpenAIProvider
from llm_oracle.schema import RiskLevel
from llm_oracle.settings import OracleSettings


def last(out):
    return store.read_journal(out / store.JOURNAL)[-1]


# --- 1. the whole reply in reasoning_content (vLLM --reasoning-parser, vllm #22507) -------
def test_an_answer_only_in_reasoning_content_is_read_and_noted(market, tmp_path, fake):
    thinking = "BTC holds its SMA50, alts lag. " + answer(risk_level="conservative")
    fake.default = Reply(message={"role": "assistant", "content": None,
                                  "reasoning_content": thinking})
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok" and decision.risk_level is RiskLevel.CONSERVATIVE
    assert "read from the reasoning_content" in decision.notes
    assert "--reasoning-parser" in decision.notes
    assert last(tmp_path).model_reasoning == thinking and profile(tmp_path) == decision


def test_reasoning_without_an_answer_is_refused_saying_why_and_kept(market, tmp_path, fake):
    fake.default = Reply(message={"role": "assistant", "content": None,
                                  "reasoning": "Markets look mixed; I would stay careful."})
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "rejected"
    assert "content was empty" in decision.rejected_reason
    assert "--reasoning-parser" in decision.rejected_reason
    journaled = last(tmp_path)
    assert journaled.model_reasoning == "Markets look mixed; I would stay careful."
    assert journaled.received == "reasoning: Markets look mixed; I would stay careful."


# --- 3. a streamed body for a non-streaming request (9router #3492) ------------------------
def sse(text: str, pieces: int = 4) -> str:
    size = -(-len(text) // pieces)
    chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
               "choices": [{"index": 0, "delta": {"content": text[i:i + size]},
                            "finish_reason": None}]} for i in range(0, len(text), size)]
    chunks[-1]["choices"][0]["finish_reason"] = "stop"
    chunks.append({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                   "choices": [], "usage": {"prompt_tokens": 900, "completion_tokens": 80,
                                            "total_tokens": 980}})
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def test_an_event_stream_to_a_non_streaming_request_is_read_from_the_stream(
        market, tmp_path, fake):
    fake.default = Reply(raw=sse(answer(max_exposure=0.45)), content_type="text/event-stream")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert fake.requests[-1].get("stream") in (None, False)
    assert decision.status == "ok" and decision.max_exposure == 0.45
    assert "streamed its reply (SSE)" in decision.notes
    assert (decision.tokens_in, decision.tokens_out) == (900, 80)  # the stream's usage


def test_an_event_stream_labelled_json_with_reasoning_deltas_is_read_too(
        market, tmp_path, fake):
    # Some proxies keep "application/json" on the streamed body; the thinking comes as
    # reasoning_content deltas before the answer.
    think = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"reasoning_content": "alts lag; "},
                          "finish_reason": None}]}
    body = f"data: {json.dumps(think)}\n\n" + sse(answer(risk_level="conservative"))
    fake.default = Reply(raw=body.replace("data: ", "data:"))  # no space after the colon
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok" and decision.risk_level is RiskLevel.CONSERVATIVE
    assert "streamed its reply (SSE)" in decision.notes
    assert last(tmp_path).model_reasoning == "alts lag; "


def test_an_empty_event_stream_or_a_text_body_is_refused_with_what_came(
        market, tmp_path, fake):
    fake.default = Reply(raw="data: [DONE]\n\n", content_type="text/event-stream")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "rejected"
    assert "event stream with no completion chunk" in decision.rejected_reason
    assert last(tmp_path).received == "data: [DONE]\n\n"
    fake.default = Reply(raw="upstream timed out", content_type="text/plain")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "18:00Z")
    assert "not a chat completion (text" in decision.rejected_reason
    assert last(tmp_path).received == "upstream timed out"


# --- 4. an answer as a tool call (LiteLLM-style proxies); every refusal journals the reply ---
def tool_call(arguments: str) -> Reply:
    return Reply(message={"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "oracle_answer", "arguments": arguments}}]},
        finish_reason="tool_calls")


def test_an_answer_delivered_as_a_tool_call_is_read_and_noted(market, tmp_path, fake):
    fake.default = tool_call(answer(risk_level="conservative"))
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "ok" and decision.risk_level is RiskLevel.CONSERVATIVE
    assert "tool call 'oracle_answer'" in decision.notes


def test_a_tool_call_that_is_no_answer_is_refused_and_journaled_as_received(
        market, tmp_path, fake):
    fake.default = tool_call('{"symbol": "BTCUSDT", "side": "buy"}')
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "rejected"
    assert "tool call 'oracle_answer'" in decision.rejected_reason
    assert last(tmp_path).received == \
        'tool call \'oracle_answer\': {"symbol": "BTCUSDT", "side": "buy"}'


def test_every_refused_reply_shape_is_journaled_with_what_was_received(
        market, tmp_path, fake):
    shapes = [Reply(choices=[]), Reply(message={"role": "assistant", "content": None}),
              Reply(content="I cannot help with trading."),
              Reply(raw="<html>502 Bad Gateway</html>", content_type="text/html"),
              Reply(raw="<html>504 Gateway Timeout</html>")]  # labelled application/json
    oracle = make_oracle(market, tmp_path, fake)
    for i, shape in enumerate(shapes):
        fake.default = shape
        decision = oracle.run_session(AT, f"s{i}")
        assert decision.status == "rejected"
        assert last(tmp_path).received, (shape, decision.rejected_reason)
    received = [d.received for d in store.read_journal(tmp_path / store.JOURNAL)]
    assert received[2] == "I cannot help with trading."
    assert "502 Bad Gateway" in received[3]
    assert received[4] == "<html>504 Gateway Timeout</html>"


# --- 9. no API key for a hosted endpoint (gptscript #17) ---------------------------------
def test_an_empty_key_for_a_hosted_endpoint_is_said_once_at_start(monkeypatch, caplog):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="llm_oracle.providers"):
        # Built only: no request is ever sent to this address.
        OpenAIProvider(OracleSettings(provider="openai",
                                      base_url="https://api.example.invalid/v1"))
        for local in ("http://127.0.0.1:9/v1", "http://localhost:9/v1", "http://[::1]:9/v1",
                      "http://127.1.2.3:9/v1"):
            OpenAIProvider(OracleSettings(provider="openai", base_url=local))
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "$OPENAI_API_KEY is unset or empty" in said[0]
    assert "api.example.invalid" in said[0]


def test_a_401_with_the_key_unset_names_the_variable(market, tmp_path, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "")
    fake.default = Reply(status=401, error="Incorrect API key provided")
    decision = make_oracle(market, tmp_path, fake).run_session(AT, "12:00Z")
    assert decision.status == "rejected"
    assert "$OPENAI_API_KEY is unset or empty" in decision.rejected_reason
