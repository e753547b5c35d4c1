"""Who answers a session: any OpenAI-compatible endpoint, or a deterministic heuristic.

Both return the same JSON answer (``llm_oracle.schema.OracleAnswer``) as text; validation
happens afterwards, identically for both.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from statistics import median
from typing import Any, Protocol

from llm_oracle.schema import answer_json_schema
from llm_oracle.settings import OracleSettings


@dataclass
class ProviderReply:
    text: str
    provider: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    usage_estimated: bool = False  # the reply had no usage block: tokens from characters


CHARS_PER_TOKEN = 4  # a rough English/JSON figure; used only when the server reports no usage


def estimate_tokens(text: str) -> int:
    return max(1, -(-len(text) // CHARS_PER_TOKEN))


class ProviderError(RuntimeError):
    """The provider gave no usable reply (network, timeout, HTTP error, malformed reply)."""


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


# Structured output first; servers without it get JSON mode, then plain text (the answer
# is then parsed from a fenced JSON block).
RESPONSE_FORMATS: list[dict[str, Any] | None] = [
    {"type": "json_schema",
     "json_schema": {"name": "oracle_answer", "strict": True, "schema": answer_json_schema()}},
    {"type": "json_object"},
    None,
]


class OpenAIProvider:
    """The official ``openai`` client against any OpenAI-compatible ``base_url``.

    One deadline per session (``timeout_s``, retries included): 429/5xx/connection errors
    are retried with backoff while time is left. The request runs in a daemon thread so a
    shutdown (``cancel`` set, e.g. by SIGTERM) returns within a fraction of a second, even
    mid-request. Whatever the reply looks like, ``ask`` returns text or raises
    ``ProviderError`` with the reason: it never raises anything else.
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
        api_key = os.environ.get(settings.api_key_env) or "unused-local-key"
        # Retries are ours (within the session's deadline), not the client's.
        self.client = openai.OpenAI(base_url=settings.base_url, api_key=api_key,
                                    timeout=settings.timeout_s, max_retries=0)
        self._format_index = 0  # remembers what the server supports

    def ask(self, messages: list[dict[str, str]], context: dict[str, Any]) -> ProviderReply:
        openai = self._openai
        start = time.monotonic()
        deadline = start + self.settings.timeout_s
        retries = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProviderError(f"timed out after {self.settings.timeout_s}s "
                                    f"({retries} retries)")
            fmt = RESPONSE_FORMATS[self._format_index]
            kwargs: dict[str, Any] = {"model": self.model, "messages": messages,
                                      "temperature": 0, "seed": self.settings.seed,
                                      "timeout": left}
            if fmt is not None:
                kwargs["response_format"] = fmt
            try:
                resp = self._call(kwargs, left)
                break
            except openai.BadRequestError as exc:
                if fmt is None or self._format_index + 1 >= len(RESPONSE_FORMATS):
                    raise ProviderError(f"endpoint refused the request: {exc}") from exc
                self._format_index += 1  # no structured output there: try the next mode
            except openai.APITimeoutError as exc:
                raise ProviderError(f"timed out after {self.settings.timeout_s}s") from exc
            except (openai.RateLimitError, openai.InternalServerError,
                    openai.APIConnectionError) as exc:
                if retries >= self.settings.max_retries:
                    raise ProviderError(f"{type(exc).__name__} after {retries} retries: "
                                        f"{exc}") from exc
                backoff = min(2.0 ** retries * 0.5, max(0.0, deadline - time.monotonic()))
                retries += 1
                if self.cancel.wait(backoff):
                    raise ProviderError("interrupted by shutdown") from exc
            except openai.APIError as exc:  # other HTTP errors, a malformed completion, ...
                raise ProviderError(f"{type(exc).__name__}: {exc}") from exc
            except ValueError as exc:  # a 200 whose body is not JSON at all
                raise ProviderError(f"malformed reply: the body is not JSON ({exc})") from exc
        text = reply_text(resp)
        usage = getattr(resp, "usage", None)
        tokens_in = getattr(usage, "prompt_tokens", None)
        tokens_out = getattr(usage, "completion_tokens", None)
        estimated = not isinstance(tokens_in, int) or not isinstance(tokens_out, int)
        if estimated:
            tokens_in = estimate_tokens("".join(m["content"] for m in messages))
            tokens_out = estimate_tokens(text)
        model = getattr(resp, "model", None)
        return ProviderReply(text=text, provider=self.name,
                             model=model if isinstance(model, str) and model else self.model,
                             tokens_in=tokens_in, tokens_out=tokens_out,
                             latency_s=time.monotonic() - start, usage_estimated=estimated)

    def _call(self, kwargs: dict[str, Any], left: float) -> Any:
        """The request in a daemon thread; returns its result, re-raises its error, or gives
        up on shutdown or a hung connection (the thread dies with the process)."""
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["resp"] = self.client.chat.completions.create(**kwargs)
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


def reply_text(resp: Any) -> str:
    """The assistant's text from a chat completion, or ``ProviderError`` saying what the
    reply lacked (no choices, no message, no content, a tool call, not a completion)."""
    choices = getattr(resp, "choices", None)
    if not isinstance(choices, list):
        raise ProviderError(f"malformed reply: not a chat completion ({type(resp).__name__})")
    if not choices:
        raise ProviderError("malformed reply: no choices")
    message = getattr(choices[0], "message", None)
    if message is None:
        raise ProviderError("malformed reply: choice without a message")
    content = getattr(message, "content", None)
    if isinstance(content, str) and content.strip():
        return content
    if getattr(message, "tool_calls", None):
        raise ProviderError("malformed reply: a tool call instead of content")
    if getattr(message, "refusal", None):
        raise ProviderError(f"the model refused: {str(message.refusal)[:200]}")
    raise ProviderError("malformed reply: empty content")


def make_provider(settings: OracleSettings, cancel: threading.Event | None = None) -> Provider:
    if settings.provider == "openai":
        return OpenAIProvider(settings, cancel)
    return HeuristicProvider(settings)
