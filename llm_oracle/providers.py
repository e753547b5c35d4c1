"""Who answers a session: any OpenAI-compatible endpoint, or a deterministic heuristic.

Both return the same JSON answer (``llm_oracle.schema.OracleAnswer``) as text; validation
happens afterwards, identically for both.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from statistics import median
from typing import Any, Protocol
from urllib.parse import urlparse

from llm_oracle.faults import Fault, FaultKind, classify, server_message
from llm_oracle.schema import RECEIVED_MAX_CHARS, answer_json_schema
from llm_oracle.settings import OracleSettings

logger = logging.getLogger(__name__)


@dataclass
class ProviderReply:
    text: str
    provider: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    usage_estimated: bool = False  # the reply had no usage block: tokens from characters
    reasoning: str = ""  # the model's thinking, when the server sends it apart from content
    finish_reason: str | None = None  # "stop", "length" (cut off), ...
    response_format: str | None = None  # the request format that got this reply
    # Where the answer text came from when not the message's content ("reasoning_content",
    # "tool call 'name'"), and what reading the reply had to do (SSE): journaled as notes.
    source: str = "content"
    notes: list[str] = field(default_factory=list)


CHARS_PER_TOKEN = 4  # a rough English/JSON figure; used only when the server reports no usage


def estimate_tokens(text: str) -> int:
    return max(1, -(-len(text) // CHARS_PER_TOKEN))


class ProviderError(RuntimeError):
    """The provider gave no usable reply (network, timeout, HTTP error, malformed reply).

    ``received``: an excerpt of what came back (the body, the message, a tool call), so the
    journal shows it; ``reasoning``: the model's thinking the server sent, if any.
    """

    def __init__(self, message: str, received: str = "", reasoning: str = "") -> None:
        super().__init__(message)
        self.received = received[:RECEIVED_MAX_CHARS]
        self.reasoning = reasoning


def is_local(base_url: str | None) -> bool:
    """Whether ``base_url`` is a server on this machine (None: OpenAI's hosted API)."""
    if not base_url:
        return False
    host = (urlparse(base_url).hostname or "").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or host.endswith(".localhost")
    return address.is_loopback or address.is_unspecified  # 127.0.0.0/8, ::1, 0.0.0.0


class Provider(Protocol):
    name: str
    model: str

    def ask(self, messages: list[dict[str, str]], context: dict[str, Any]) -> ProviderReply: ...


class HeuristicProvider:
    """Rules on the market summaries: no network, same answer for the same context."""

    name = "heuristic"
    model = "rules-v1"

    def __init__(self, settings: OracleSettings) -> None:
        self.settings = settings

    def ask(self, messages: list[dict[str, str]], context: dict[str, Any]) -> ProviderReply:
        markets: dict[str, dict[str, float]] = context["markets"]
        scores = {
            pair: 2.0 * m["trend_vs_sma50"] + m["ret_7d"] + (m["rsi_1h"] - 50) / 200
            - 0.5 * m["volatility_1d"]
            for pair, m in markets.items()
        }
        ranked = sorted(scores, key=lambda p: (-scores[p], p))
        focus = [p for p in ranked if scores[p] > 0][: self.settings.max_focus_pairs]
        trend = median(m["trend_vs_sma50"] for m in markets.values()) if markets else 0.0
        week = median(m["ret_7d"] for m in markets.values()) if markets else 0.0
        drawdown = median(m["drawdown_30d"] for m in markets.values()) if markets else 0.0
        if drawdown < -0.20 or trend < -0.02 or not markets:
            level, exposure, position = "conservative", 0.4, 0.15
        elif trend > 0.02 and week > 0.03:
            level, exposure, position = "aggressive", 0.9, 0.25
        else:
            level, exposure, position = "moderate", 0.7, 0.2
        answer = {
            "focus_pairs": focus,
            "risk_level": level,
            "max_exposure": exposure,
            "max_position": position,
            "overnight_target": round(exposure / 2, 3),
            "pair_bias": [{"pair": p, "bias": round(max(-1.0, min(1.0, 10 * scores[p])), 3)}
                          for p in ranked],
            "reasoning": (f"median trend vs SMA50 {trend:+.2%}, median 7d return {week:+.2%}, "
                          f"median 30d drawdown {drawdown:+.2%}: {level}; "
                          f"{len(focus)} pairs with positive momentum score"),
        }
        return ProviderReply(json.dumps(answer), self.name, self.model)


# The request formats, richest first: OpenAI-style structured output ("schema"), a
# grammar-constrained JSON object ("grammar": llama.cpp's ``json_object`` with a ``schema``,
# every string and array bounded), JSON mode ("json"), plain text (the answer is then found
# in the prose). ``llm_oracle.response_format`` pins one; "auto" starts at the richest and
# steps down only when the server names the format as the problem.
RESPONSE_FORMATS = ("schema", "grammar", "json", "text")


def response_format(mode: str, context: dict[str, Any]) -> dict[str, Any] | None:
    """The ``response_format`` request field for ``mode`` (None: plain text). The schema's
    pair names are the context's ``universe`` (what the prompt calls the pairs) and
    ``focus_pairs`` holds at most ``limits.max_focus_pairs`` of them."""
    if mode == "text":
        return None
    if mode == "json":
        return {"type": "json_object"}
    pairs = list(context.get("universe") or []) or None
    max_focus = (context.get("limits") or {}).get("max_focus_pairs")
    if mode == "grammar":
        return {"type": "json_object",
                "schema": answer_json_schema(pairs, int(max_focus) if max_focus else None,
                                             bounded=True)}
    return {"type": "json_schema",
            "json_schema": {"name": "oracle_answer", "strict": True,
                            "schema": answer_json_schema(pairs)}}


class OpenAIProvider:
    """The official ``openai`` client against any OpenAI-compatible ``base_url``.

    One deadline per session (``timeout_s``, retries included). Every server error is
    classified (``llm_oracle.faults``): a wait the server names (``Retry-After``, "try again
    in 8s") is honoured while the deadline lasts; other transient faults are retried with
    backoff up to ``max_retries``; a refused response format steps down to the next one
    (``auto`` mode only, and only for ``format_recheck_hours``: then the richer format is
    tried again, so a fallback never outlives the server that needed it); anything else
    fails at once with the server's words and the config key to change. The request runs
    in a daemon thread so a shutdown (``cancel`` set, e.g. by SIGTERM) returns within a
    fraction of a second, even mid-request. Whatever the reply looks like, ``ask`` returns
    text or raises ``ProviderError`` with the reason: it never raises anything else.
    """

    name = "openai"

    def __init__(self, settings: OracleSettings, cancel: threading.Event | None = None) -> None:
        import openai

        self._openai = openai
        self.model = settings.model
        self.settings = settings
        self.cancel = cancel or threading.Event()
        # Local servers (vLLM, Ollama) accept any key; OpenAI needs the real one, read from
        # the environment and never written anywhere.
        api_key = os.environ.get(settings.api_key_env, "").strip()
        self.key_missing = not api_key
        if self.key_missing and not is_local(settings.base_url):
            # gptscript #17: a placeholder key sent in silence, then a 401 that hides why.
            # The host only: a base_url may carry credentials of its own.
            host = (urlparse(settings.base_url).hostname if settings.base_url
                    else "api.openai.com")
            logger.warning("llm: $%s is unset or empty but %s is not on this machine: "
                           "its requests will likely be refused (401); export the key, or "
                           "set llm_oracle.api_key_env to the variable that holds it",
                           settings.api_key_env, host)
        api_key = api_key or "unused-local-key"
        # Retries are ours (within the session's deadline), not the client's.
        self.client = openai.OpenAI(base_url=settings.base_url, api_key=api_key,
                                    timeout=settings.timeout_s, max_retries=0)
        self._modes = (list(RESPONSE_FORMATS) if settings.response_format == "auto"
                       else [settings.response_format])
        self._mode_index = 0
        self._stepped_down_at: float | None = None  # monotonic time of the last step down

    @property
    def mode(self) -> str:
        """The response format the next request uses (schema | grammar | json | text)."""
        if (self._stepped_down_at is not None and time.monotonic() - self._stepped_down_at
                > self.settings.format_recheck_hours * 3600):
            logger.info("llm: trying response format %r again (%.0f h since the server "
                        "refused it)", self._modes[0], self.settings.format_recheck_hours)
            self._mode_index, self._stepped_down_at = 0, None
        return self._modes[self._mode_index]

    def _step_down(self, fault: Fault) -> bool:
        """Use the next simpler format after a format refusal; False when none is left
        (or the format is pinned)."""
        if self._mode_index + 1 >= len(self._modes):
            return False
        refused = self._modes[self._mode_index]
        self._mode_index += 1
        self._stepped_down_at = time.monotonic()
        logger.warning("llm: the server refused response format %r (%r): using %r for the "
                       "next %.0f h; pin it with llm_oracle.response_format", refused,
                       fault.server_message, self._modes[self._mode_index],
                       self.settings.format_recheck_hours)
        return True

    def ask(self, messages: list[dict[str, str]], context: dict[str, Any]) -> ProviderReply:
        start = time.monotonic()
        deadline = start + self.settings.timeout_s
        retries = 0
        last: Fault | None = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                why = f": last {last.describe()}" if last else ""
                raise ProviderError(f"timed out after {self.settings.timeout_s}s "
                                    f"({retries} retries){why}")
            mode = self.mode
            kwargs: dict[str, Any] = {"model": self.model, "messages": messages,
                                      "temperature": 0, "seed": self.settings.seed,
                                      "timeout": left}
            if (fmt := response_format(mode, context)) is not None:
                kwargs["response_format"] = fmt
            if self.settings.max_tokens is not None:
                kwargs["max_tokens"] = self.settings.max_tokens
            try:
                resp = self._call(kwargs, left)
                break
            except ProviderError:
                raise
            except self._openai.OpenAIError as exc:
                last = fault = classify(exc)
                if fault.kind is FaultKind.AUTH and self.key_missing:
                    fault = last = replace(
                        fault, what_to_do=f"${self.settings.api_key_env} is unset or empty: "
                                          "export the key (or set llm_oracle.api_key_env)")
            except ValueError as exc:  # the client could not read what came back
                raise ProviderError(f"malformed reply: unreadable ({exc})") from exc
            if fault.kind is FaultKind.FORMAT_UNSUPPORTED:
                if self._step_down(fault):
                    continue
                pinned = (f" (llm_oracle.response_format is pinned to {mode!r})"
                          if self.settings.response_format != "auto" else "")
                raise ProviderError(fault.describe() + pinned)
            if fault.kind is FaultKind.TIMEOUT:
                raise ProviderError(f"timed out after {self.settings.timeout_s}s: "
                                    f"{fault.hint}")
            if not fault.retryable:
                raise ProviderError(fault.describe())
            remaining = max(0.0, deadline - time.monotonic())
            wait = fault.retry_after_s
            if wait is None:  # no word from the server: bounded backoff
                if retries >= self.settings.max_retries:
                    raise ProviderError(f"{fault.describe()} (gave up after {retries} "
                                        "retries, llm_oracle.max_retries)")
                wait = min(2.0 ** retries * 0.5, remaining)
            elif wait > remaining:
                raise ProviderError(f"{fault.describe()} (the server asked to wait "
                                    f"{wait:.1f}s, more than the {remaining:.1f}s left of "
                                    "llm_oracle.timeout_s)")
            retries += 1
            if self.cancel.wait(wait):
                raise ProviderError("interrupted by shutdown")
        notes: list[str] = []
        if isinstance(resp, str):  # a body that is not JSON, as text (``_call``)
            resp = from_event_stream(resp, self._openai)
            notes.append("the server streamed its reply (SSE) to a non-streaming request: "
                         "read from the stream")
        text, reasoning, finish, source = reply_parts(resp)
        if source != "content":
            notes.append(f"the message's content was empty: the answer was read from the "
                         f"{source}" + (f" ({REASONING_PARSER})"
                                        if source in REASONING_FIELDS else ""))
        usage = getattr(resp, "usage", None)
        tokens_in = getattr(usage, "prompt_tokens", None)
        tokens_out = getattr(usage, "completion_tokens", None)
        estimated = not isinstance(tokens_in, int) or not isinstance(tokens_out, int)
        if estimated:
            tokens_in = estimate_tokens("".join(m["content"] for m in messages))
            tokens_out = estimate_tokens(reasoning + text)
        model = getattr(resp, "model", None)
        return ProviderReply(text=text, provider=self.name,
                             model=model if isinstance(model, str) and model else self.model,
                             tokens_in=tokens_in, tokens_out=tokens_out,
                             latency_s=time.monotonic() - start, usage_estimated=estimated,
                             reasoning=reasoning, finish_reason=finish, response_format=mode,
                             source=source, notes=notes)

    def _call(self, kwargs: dict[str, Any], left: float) -> Any:
        """The request in a daemon thread; returns its result (the parsed completion, or
        the body as text when it is not JSON, whatever its Content-Type says: an SSE stream,
        an HTML error page), re-raises its error, or gives up on shutdown or a hung
        connection (the thread dies with the process)."""
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                raw = self.client.chat.completions.with_raw_response.create(**kwargs)
                try:
                    box["resp"] = raw.parse()
                except ValueError:  # "application/json" but not JSON: the body as sent
                    box["resp"] = raw.text
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        worker = threading.Thread(target=work, name="llm-request", daemon=True)
        worker.start()
        give_up = time.monotonic() + left + 5.0  # the client's own timeout should win
        while worker.is_alive():
            if self.cancel.wait(0.1):
                raise ProviderError("interrupted by shutdown")
            if time.monotonic() > give_up:
                raise ProviderError(f"timed out after {self.settings.timeout_s}s")
        if "error" in box:
            raise box["error"]
        return box.get("resp")


CUT_OFF = ("the reply was cut off at the token limit (finish_reason 'length'): raise "
           "llm_oracle.max_tokens or the server's limit (llama.cpp --n_predict, Ollama "
           "num_predict)")


# vLLM's --reasoning-parser with a model that never opens <think> puts the whole reply in
# reasoning_content and leaves content null (vllm #22507, fixed upstream in PR #48865).
REASONING_FIELDS = ("reasoning_content", "reasoning")
REASONING_PARSER = ("vLLM's --reasoning-parser with a model that does not open a <think> "
                    "block sends everything there: drop the flag or use a reasoning model")


def _excerpt(value: Any) -> str:
    """What a reply (or part of one) held, as text for the journal."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    try:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text[:RECEIVED_MAX_CHARS]


def from_event_stream(body: str, openai_module: Any) -> Any:
    """A chat completion put together from a server-sent-events body (``data: {chunk}``
    lines, ``data: [DONE]``), which some proxies send even to ``"stream": false`` (9router
    #3492): content and reasoning deltas joined, the last finish_reason, usage and model.
    Raises ``ProviderError`` (with the body as received) when it is no such stream."""
    chunks = []
    for line in body.splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        try:
            chunk = json.loads(line[5:])
        except ValueError:
            continue
        if isinstance(chunk, dict):
            chunks.append(chunk)
    if not chunks:
        kind = "an event stream with no completion chunk" if "data:" in body else "text"
        raise ProviderError(f"malformed reply: not a chat completion ({kind}, not JSON)",
                            received=body)
    parts: dict[str, list[str]] = {"content": [], "reasoning_content": []}
    finish, usage, model, tool_calls = None, None, None, []
    for chunk in chunks:
        model = chunk.get("model") or model
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or choice.get("message") or {}
            for key, into in (("content", "content"), ("reasoning_content",
                                                          "reasoning_content"),
                              ("reasoning", "reasoning_content")):
                if isinstance(delta.get(key), str):
                    parts[into].append(delta[key])
            tool_calls += delta.get("tool_calls") or []
            finish = choice.get("finish_reason") or finish
    message: dict[str, Any] = {"role": "assistant", "content": "".join(parts["content"])}
    if parts["reasoning_content"]:
        message["reasoning_content"] = "".join(parts["reasoning_content"])
    if tool_calls and not message["content"]:
        message["tool_calls"] = tool_calls
    completion = {"id": chunks[0].get("id") or "sse", "object": "chat.completion",
                  "created": chunks[0].get("created") or 0, "model": model or "",
                  "choices": [{"index": 0, "finish_reason": finish or "stop",
                               "message": message}]}
    if usage:
        completion["usage"] = usage
    try:
        return openai_module.types.chat.ChatCompletion.model_validate(completion)
    except ValueError as exc:
        raise ProviderError(f"malformed reply: an event stream that is no chat completion "
                            f"({str(exc).splitlines()[0]})", received=body) from exc


def reply_parts(resp: Any) -> tuple[str, str, str | None, str]:
    """(answer text, the model's separate reasoning, finish_reason, where the answer came
    from) of a chat completion, or ``ProviderError`` saying what the reply lacked (no
    choices, no message, no content, an error body, not a completion), with what it held.

    The reasoning is what servers send beside the answer (``reasoning_content``: DeepSeek,
    vLLM, llama.cpp; ``reasoning``: Ollama, OpenRouter); it is journaled, and read as the
    answer only when ``content`` is empty (source "reasoning_content"). An answer delivered
    as a tool call (LiteLLM-style proxies) is read from its arguments (source "tool call
    'name'"); validation decides whether either is an answer.
    """
    choices = getattr(resp, "choices", None)
    if not isinstance(choices, list):
        body = {**(getattr(resp, "model_extra", None) or {}),
                "object": getattr(resp, "object", None)}
        if body.get("error") is not None or body["object"] == "error":  # vLLM's shape
            fault = Fault(FaultKind.ERROR_BODY, server_message(body))
            raise ProviderError(fault.describe(), received=_excerpt(body))
        raise ProviderError(f"malformed reply: not a chat completion ({type(resp).__name__})",
                            received=_excerpt(resp))
    if not choices:
        raise ProviderError("malformed reply: no choices", received=_excerpt(resp))
    choice = choices[0]
    message = getattr(choice, "message", None)
    if message is None:
        raise ProviderError("malformed reply: choice without a message",
                            received=_excerpt(resp))
    finish = getattr(choice, "finish_reason", None)
    extra = getattr(message, "model_extra", None) or {}
    named = next(((k, v) for k in REASONING_FIELDS
                  if isinstance(v := extra.get(k), str) and v.strip()), None)
    reasoning = named[1] if named else ""
    content = getattr(message, "content", None)
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        content = "".join(part.get("text") or "" for part in content
                          if isinstance(part, dict) and part.get("type") in ("text", None))
    if isinstance(content, str) and content.strip():
        return content, reasoning, finish, "content"
    received = _excerpt(message)
    if finish == "length":
        raise ProviderError(f"no answer: {CUT_OFF}"
                            + (" while the model was still thinking" if reasoning else ""),
                            received=received, reasoning=reasoning)
    if finish == "content_filter":
        raise ProviderError("no answer: the server's content filter withheld the reply "
                            "(finish_reason 'content_filter')", received=received,
                            reasoning=reasoning)
    calls = getattr(message, "tool_calls", None) or []
    if calls:
        function = getattr(calls[0], "function", None)
        arguments = getattr(function, "arguments", None)
        name = getattr(function, "name", None) or "?"
        if isinstance(arguments, str) and arguments.strip():
            return arguments, reasoning, finish, f"tool call {name!r}"
        raise ProviderError(f"malformed reply: a tool call ({name!r}) instead of content, "
                            "with no arguments", received=received, reasoning=reasoning)
    if getattr(message, "refusal", None):
        raise ProviderError(f"the model refused: {str(message.refusal)[:200]}",
                            received=received, reasoning=reasoning)
    if named:
        return reasoning, reasoning, finish, named[0]
    raise ProviderError("malformed reply: empty content", received=received)


def make_provider(settings: OracleSettings, cancel: threading.Event | None = None) -> Provider:
    if settings.provider == "openai":
        return OpenAIProvider(settings, cancel)
    return HeuristicProvider(settings)
