"""What an OpenAI-compatible server's error means, and what the user should change.

Real servers answer the same fault in many shapes: llama.cpp refuses ``json_schema`` with
HTTP 500, vLLM and LiteLLM with 400, OpenAI's rate limits come as 429 with ``Retry-After``
(or only "try again in 20s" in the message), an exhausted quota is also a 429 but must not
be retried, a proxy may wrap an error in a 200. ``classify`` turns any of them into one
``Fault``: a kind, the server's own words, whether retrying can help, how long the server
asked us to wait, and the config key to change. The journal and the log carry
``Fault.describe()``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

SERVER_MESSAGE_CHARS = 300


class FaultKind(StrEnum):
    FORMAT_UNSUPPORTED = "format unsupported"  # the requested response_format is refused
    CONTEXT_TOO_LONG = "prompt too long"  # the prompt does not fit the model's context
    RATE_LIMITED = "rate limited"  # 429: retry after the server's wait
    QUOTA = "quota exhausted"  # 429 insufficient_quota: retrying cannot help
    OVERLOADED = "overloaded"  # 502/503/504/529, "loading model", "no slot available"
    SERVER_ERROR = "server error"  # other 5xx
    AUTH = "authentication"  # 401/403
    NOT_FOUND = "not found"  # 404: wrong model name or base_url path
    BAD_REQUEST = "bad request"  # other 4xx
    ERROR_BODY = "error in a 200 reply"  # a proxy answered 200 with {"error": ...}
    CONNECTION = "connection"  # refused, reset, DNS
    TIMEOUT = "timeout"


RETRYABLE = {FaultKind.RATE_LIMITED, FaultKind.OVERLOADED, FaultKind.SERVER_ERROR,
             FaultKind.CONNECTION}

# What to change, by kind (config keys as spelled in the freqtrade config file).
HINTS: dict[FaultKind, str] = {
    FaultKind.FORMAT_UNSUPPORTED: (
        "the oracle steps down to a simpler response format; pin the one the server "
        "supports with llm_oracle.response_format (schema | grammar | json | text) to skip "
        "the probe"),
    FaultKind.CONTEXT_TOO_LONG: (
        "lower llm_oracle.max_prompt_chars or start the server with a larger context "
        "(llama.cpp --n_ctx, vLLM --max-model-len, Ollama num_ctx)"),
    FaultKind.RATE_LIMITED: (
        "retried after the server's wait while llm_oracle.timeout_s lasts; fewer "
        "llm_oracle.sessions or a higher rate limit on the account"),
    FaultKind.QUOTA: "the account's quota or billing is exhausted: top it up or change "
                     "llm_oracle.base_url / llm_oracle.model",
    FaultKind.OVERLOADED: "the server is busy or still loading the model; retried while "
                          "llm_oracle.timeout_s lasts",
    FaultKind.SERVER_ERROR: "retried up to llm_oracle.max_retries; see the server's log",
    FaultKind.AUTH: "set the API key in the environment variable named by "
                    "llm_oracle.api_key_env",
    FaultKind.NOT_FOUND: "check llm_oracle.model (the server's model name) and "
                         "llm_oracle.base_url (usually ends in /v1)",
    FaultKind.BAD_REQUEST: "the server rejected the request; its message says which field",
    FaultKind.ERROR_BODY: "the server (or a proxy) answered 200 with an error; see its message",
    FaultKind.CONNECTION: "is the server running at llm_oracle.base_url?",
    FaultKind.TIMEOUT: "raise llm_oracle.timeout_s or use a faster model",
}

_FORMAT = re.compile(r"response_format|json_schema|json_object|structured output|"
                     r"guided_json|grammar", re.IGNORECASE)
_CONTEXT = re.compile(r"context[ _-]?(length|size|window)|maximum context|n_ctx|"
                      r"too many tokens|prompt is too long|exceed[s]? the (available )?context|"
                      r"reduce the length", re.IGNORECASE)
_QUOTA = re.compile(r"insufficient_quota|exceeded your current quota|billing", re.IGNORECASE)
_OVERLOADED = re.compile(r"overloaded|loading model|no slot|unavailable|capacity",
                         re.IGNORECASE)
_TRY_AGAIN = re.compile(r"try again in\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|sec|seconds?|"
                        r"m|min|minutes?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    server_message: str
    status: int | None = None
    retry_after_s: float | None = None  # the server's own wait, when it named one
    what_to_do: str | None = None  # a hint that knows more than the kind (e.g. no API key)

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    @property
    def hint(self) -> str:
        return self.what_to_do or HINTS[self.kind]

    def describe(self) -> str:
        """One line: kind, HTTP status, the server's words, what to change."""
        status = f"HTTP {self.status} " if self.status else ""
        return f"{self.kind.value} ({status}{self.server_message!r}): {self.hint}"


def server_message(body: Any, fallback: str = "") -> str:
    """The human part of an error body: ``{"error": {"message": ...}}``, ``{"message": ...}``,
    ``{"error": "..."}``, ``{"detail": ...}`` or plain text; cut to a readable length."""
    value: Any = body
    for _ in range(3):  # error -> message nesting, as servers send it
        if isinstance(value, dict):
            value = next((value[k] for k in ("error", "message", "detail", "msg")
                          if value.get(k) not in (None, "")), value)
        else:
            break
    text = value if isinstance(value, str) else (str(value) if value else fallback)
    return " ".join(text.split())[:SERVER_MESSAGE_CHARS]


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def _duration(text: str) -> float | None:
    """OpenAI's rate-limit reset durations ("1s", "6m0s", "20ms") in seconds."""
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def retry_after(headers: Any, message: str) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, ``Retry-After`` (seconds
    or an HTTP date), OpenAI's "try again in 20s" / "in 350ms" in the message, or its
    ``x-ratelimit-reset-requests`` / ``-tokens`` headers ("6m0s")."""
    if headers is not None:
        ms = headers.get("retry-after-ms")
        try:
            if ms is not None:
                return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
        value = headers.get("retry-after")
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                try:
                    return max(0.0, (parsedate_to_datetime(value)
                                     - datetime.now(UTC)).total_seconds())
                except (TypeError, ValueError):
                    pass
    match = _TRY_AGAIN.search(message)
    if match:
        unit = match.group(2).lower()
        scale = 0.001 if unit.startswith("ms") or unit.startswith("milli") else (
            60.0 if unit in ("m", "min", "minute", "minutes") else 1.0)
        return float(match.group(1)) * scale
    if headers is not None:
        resets = [_duration(str(headers.get(name))) for name in
                  ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
                  if headers.get(name) is not None]
        if any(r is not None for r in resets):
            return max(r for r in resets if r is not None)
    return None


def classify_status(status: int, body: Any, headers: Any = None) -> Fault:
    """A fault from an HTTP status, the error body and the response headers."""
    message = server_message(body, f"HTTP {status}")
    wait = retry_after(headers, message)
    if status in (400, 422, 500) and _FORMAT.search(message):
        kind = FaultKind.FORMAT_UNSUPPORTED
    elif status in (400, 413, 422, 500) and _CONTEXT.search(message):
        kind = FaultKind.CONTEXT_TOO_LONG
    elif status == 429:
        kind = FaultKind.QUOTA if _QUOTA.search(message) else FaultKind.RATE_LIMITED
    elif status in (401, 403):
        kind = FaultKind.AUTH
    elif status == 404:
        kind = FaultKind.NOT_FOUND
    elif status in (502, 503, 504, 529) or (status >= 500 and _OVERLOADED.search(message)):
        kind = FaultKind.OVERLOADED
    elif status >= 500:
        kind = FaultKind.SERVER_ERROR
    else:
        kind = FaultKind.BAD_REQUEST
    return Fault(kind, message, status, wait)


def classify(exc: BaseException) -> Fault:
    """A fault from whatever the ``openai`` client raised."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return Fault(FaultKind.TIMEOUT, "no reply in time")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return Fault(FaultKind.CONNECTION, server_message(str(cause), "connection failed"))
    if isinstance(exc, openai.APIStatusError):
        return classify_status(exc.status_code, exc.body if exc.body is not None
                               else exc.message, exc.response.headers)
    if isinstance(exc, openai.APIError):  # e.g. a malformed body on a 2xx
        return Fault(FaultKind.BAD_REQUEST, server_message(exc.body, str(exc)))
    return Fault(FaultKind.BAD_REQUEST, server_message(str(exc), type(exc).__name__))
