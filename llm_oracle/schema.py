"""The oracle's decision schema: the one definition the oracle writes and the strategy reads.

``OracleAnswer`` is what the LLM (or the heuristic) must answer; ``OracleDecision`` is an
answer validated against the whitelist and the hard limits, stamped with when it was
decided, how long it holds and what it cost. Journal lines, ``risk_profile.json`` and the
HTTP endpoint all carry ``OracleDecision`` JSON.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1
REASONING_MAX_CHARS = 1200
THINKING_MAX_CHARS = 4000
RECEIVED_MAX_CHARS = 2000


class RiskLevel(StrEnum):
    """How boldly to trade: the oracle's word, read by the strategy (config default otherwise)."""

    CONSERVATIVE = "conservative"
    MODERATE = "moderate"
    AGGRESSIVE = "aggressive"

    @property
    def rank(self) -> int:
        """0, 1, 2: a number FreqUI can plot; lower is more cautious."""
        return list(RiskLevel).index(self)


class OracleAnswer(BaseModel):
    """Strategic guidance for the next hours, as the model must return it.

    Numbers must be finite: NaN and Infinity (which Python's json reads) are refused.
    """

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    focus_pairs: list[str] = Field(description="pairs worth new entries, from the universe")
    risk_level: RiskLevel
    max_exposure: float = Field(ge=0.0, le=1.0,
                                description="share of equity open trades may use")
    overnight_target: float = Field(ge=0.0, le=1.0,
                                    description="share of equity to hold into the night")
    # Optional in the model so older answers and journals stay readable; validation fills
    # it with the configured cap when the model leaves it out.
    max_position: float | None = Field(None, ge=0.0, le=1.0,
                                       description="largest share of equity one trade may use")
    pair_bias: dict[str, float] = Field(default_factory=dict,
                                        description="per pair, -1 (avoid) .. 1 (favour)")
    reasoning: str = Field(default="", description="short justification")

    @field_validator("pair_bias", mode="before")
    @classmethod
    def _bias_from_list(cls, value: Any) -> Any:
        # Strict structured output cannot express free-form keys: it sends a list instead.
        if isinstance(value, list):
            return {item["pair"]: item["bias"] for item in value
                    if isinstance(item, dict) and "pair" in item and "bias" in item}
        return value


# What a length-bounded schema allows (``answer_json_schema(bounded=True)``): a grammar-
# constrained server (llama.cpp) cannot stop mid-string when every string and array has a
# bound, and a small local model cannot ramble past the reply's token limit.
ANSWER_REASONING_MAX_CHARS = 600
PAIR_NAME_MAX_CHARS = 24


def answer_json_schema(pairs: list[str] | None = None, max_focus: int | None = None,
                       bounded: bool = False) -> dict[str, Any]:
    """JSON schema of ``OracleAnswer`` for a server's structured output.

    ``pairs``: the names the prompt uses for the universe (real pairs, or a masked
    prompt's aliases); given, pair names are an ``enum``, so a constrained model cannot
    name a pair outside it. ``bounded`` (llama.cpp's grammar mode) adds ``maxLength`` to
    strings and ``maxItems`` to arrays (``max_focus`` for ``focus_pairs``); OpenAI's strict
    mode does not accept all of these, so it gets the unbounded schema.
    """
    name: dict[str, Any] = {"type": "string"}
    if pairs:
        name["enum"] = list(pairs)
    elif bounded:
        name["maxLength"] = PAIR_NAME_MAX_CHARS
    focus: dict[str, Any] = {"type": "array", "items": name}
    bias: dict[str, Any] = {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["pair", "bias"],
            "properties": {"pair": name,
                           "bias": {"type": "number", "minimum": -1, "maximum": 1}},
        },
    }
    reasoning: dict[str, Any] = {"type": "string"}
    if bounded:
        if max_focus is not None:
            focus["maxItems"] = max_focus
        bias["maxItems"] = len(pairs) if pairs else 2 * (max_focus or 6)
        reasoning["maxLength"] = ANSWER_REASONING_MAX_CHARS
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["focus_pairs", "risk_level", "max_exposure", "max_position",
                     "overnight_target", "pair_bias", "reasoning"],
        "properties": {
            "focus_pairs": focus,
            "risk_level": {"type": "string", "enum": [lvl.value for lvl in RiskLevel]},
            "max_exposure": {"type": "number", "minimum": 0, "maximum": 1},
            "max_position": {"type": "number", "minimum": 0, "maximum": 1},
            "overnight_target": {"type": "number", "minimum": 0, "maximum": 1},
            "pair_bias": bias,
            "reasoning": reasoning,
        },
    }


class OracleDecision(BaseModel):
    """A validated decision, in force from ``decided_at`` until ``valid_until``.

    Numbers must be finite: JSON has no NaN, and a journal line holding one (written as
    ``null``) could not be read back.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    schema_version: int = SCHEMA_VERSION
    decided_at: datetime
    valid_until: datetime
    session: str
    status: Literal["ok", "fallback", "rejected"] = "ok"
    focus_pairs: list[str]
    risk_level: RiskLevel
    max_exposure: float = Field(ge=0.0, le=1.0)
    overnight_target: float = Field(ge=0.0, le=1.0)
    # Per-trade cap; None in journals written before it existed (the hard limit applies).
    max_position: float | None = Field(None, ge=0.0, le=1.0)
    pair_bias: dict[str, float] = Field(default_factory=dict)
    reasoning: str = Field(default="", max_length=REASONING_MAX_CHARS)
    provider: str
    model: str = ""
    prompt_hash: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    # Wall-clock time the provider was asked (None: no paid call); the daily budget counts
    # by this day, so a backfill of past days spends today's budget.
    asked_at: datetime | None = None
    # The newest candle close or news item the decision saw: an audit of point-in-time.
    context_until: datetime | None = None
    rejected_reason: str | None = None  # why a rejected answer was not used
    notes: str | None = None  # what validation changed in an accepted one (clamps, ramps)
    # The model's thinking (a reasoning model's <think> block or the server's
    # reasoning_content), kept for the record, never parsed as the answer; cut to length.
    model_reasoning: str | None = Field(None, max_length=THINKING_MAX_CHARS)
    # What came back when a reply was refused (the body, the message, a tool call, the
    # answer text), cut to RECEIVED_MAX_CHARS, so the user can see it; None otherwise.
    received: str | None = Field(None, max_length=RECEIVED_MAX_CHARS)
    # The pairs (real names, also for a masked prompt) in the order the prompt listed them
    # (``llm_oracle.prompt_order``); None in journals written before it was recorded.
    prompt_order: list[str] | None = None

    @field_validator("decided_at", "valid_until")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamps must carry a timezone (UTC)")
        return value

    @property
    def usable(self) -> bool:
        """Rejected answers are journaled for the record but never steer the bot."""
        return self.status != "rejected"

    def pairlist(self, refresh_period: int) -> dict[str, Any]:
        """RemotePairList's format."""
        return {"pairs": list(self.focus_pairs), "refresh_period": refresh_period}
