"""Who answers a session: any OpenAI-compatible endpoint, or a deterministic heuristic.

Both return the same JSON answer (``llm_oracle.schema.OracleAnswer``) as text; validation
happens afterwards, identically for both.
"""

from __future__ import annotations

import json
import os
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


class ProviderError(RuntimeError):
    """The provider gave no answer (network, timeout, HTTP error after retries)."""


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
    """The official ``openai`` client against any OpenAI-compatible ``base_url``."""

    name = "openai"

    def __init__(self, settings: OracleSettings) -> None:
        import openai

        self._openai = openai
        self.model = settings.model
        self.settings = settings
        # Local servers (vLLM, Ollama) accept any key; OpenAI needs the real one, read from
        # the environment and never written anywhere.
        api_key = os.environ.get(settings.api_key_env) or "unused-local-key"
        self.client = openai.OpenAI(base_url=settings.base_url, api_key=api_key,
                                    timeout=settings.timeout_s,
                                    max_retries=settings.max_retries)  # backoff on 429/5xx
        self._format_index = 0  # remembers what the server supports

    def ask(self, messages: list[dict[str, str]], context: dict[str, Any]) -> ProviderReply:
        openai = self._openai
        start = time.perf_counter()
        while True:
            fmt = RESPONSE_FORMATS[self._format_index]
            kwargs: dict[str, Any] = {"model": self.model, "messages": messages,
                                      "temperature": 0, "seed": self.settings.seed}
            if fmt is not None:
                kwargs["response_format"] = fmt
            try:
                resp = self.client.chat.completions.create(**kwargs)
                break
            except openai.BadRequestError as exc:
                if fmt is None or self._format_index + 1 >= len(RESPONSE_FORMATS):
                    raise ProviderError(f"endpoint refused the request: {exc}") from exc
                self._format_index += 1  # no structured output there: try the next mode
            except openai.APITimeoutError as exc:
                raise ProviderError(f"timed out after {self.settings.timeout_s}s") from exc
            except openai.APIError as exc:  # connection errors, 429/5xx after retries
                raise ProviderError(f"{type(exc).__name__}: {exc}") from exc
        usage = resp.usage
        return ProviderReply(
            text=resp.choices[0].message.content or "",
            provider=self.name,
            model=resp.model or self.model,
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            latency_s=time.perf_counter() - start,
        )


def make_provider(settings: OracleSettings) -> Provider:
    if settings.provider == "openai":
        return OpenAIProvider(settings)
    return HeuristicProvider(settings)
