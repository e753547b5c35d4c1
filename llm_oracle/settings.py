"""The ``llm_oracle`` section of the freqtrade config: one place for the oracle's keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm_oracle.schedule import Schedule, parse_hhmm

CONFIG_SECTION = "llm_oracle"


def describe_errors(section: str, exc: ValidationError) -> str:
    """One line naming every bad key as it is spelled in the config file."""
    def where(loc: tuple) -> str:
        return ".".join([section, *(str(p) for p in loc)])

    problems = "; ".join(f"{where(err['loc'])}: {err['msg']}" for err in exc.errors())
    return f"Invalid '{section}' config section: {problems}"


class OracleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["heuristic", "openai"] = "heuristic"
    # Any OpenAI-compatible server: OpenAI, vLLM, Ollama (http://127.0.0.1:11434/v1), ...
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"  # the key itself never lives in a file
    timeout_s: float = Field(60.0, gt=0)
    # Retries of a transient fault without a server-named wait; a wait the server names
    # (Retry-After, "try again in 8s") is honoured while timeout_s lasts.
    max_retries: int = Field(3, ge=0, le=10)
    # How to ask for JSON: "schema" (OpenAI structured output), "grammar" (llama.cpp's
    # json_object with a bounded schema), "json" (JSON mode), "text" (the answer is found in
    # the prose), or "auto": the richest first, one step down when the server refuses a
    # format by name, retried after format_recheck_hours.
    response_format: Literal["auto", "schema", "grammar", "json", "text"] = "auto"
    format_recheck_hours: float = Field(24.0, gt=0)
    max_tokens: int | None = Field(None, ge=16)  # the reply's token limit (server default)
    seed: int = 7
    # Sessions (UTC, HH:MM); each decision holds until the next session plus a margin.
    sessions: list[str] = Field(default_factory=lambda: ["00:00", "06:00", "12:00", "18:00"])
    validity_hours: float = Field(8.0, gt=0)
    # Backfilled decisions count as made this long after their session (or the measured
    # latency, if longer): a candle that closed while the LLM was still answering never
    # sees the answer. Live sessions stamp the real arrival time.
    backfill_latency_s: float = Field(60.0, ge=0)
    # Event trigger: an extra session when a focus pair moves this much within an hour.
    event_move: float = Field(0.05, gt=0)
    event_min_spacing_minutes: float = Field(60.0, ge=0)
    # Hard caps the answer is clamped to (the strategy's own caps apply on top).
    max_exposure_cap: float = Field(0.9, gt=0, le=1)
    max_position_cap: float = Field(0.25, gt=0, le=1)  # one trade's share of equity
    min_focus_pairs: int = Field(0, ge=0)
    max_focus_pairs: int = Field(6, ge=1)
    daily_budget_usd: float = Field(1.0, ge=0)
    # USD per 1M tokens: [input, output], by the configured model's name; dated snapshot
    # names the server returns (gpt-4o-mini-2024-07-18) map to their base name. A model
    # without a price counts as over budget (the heuristic answers): list free local models
    # here with [0, 0].
    prices: dict[str, tuple[float, float]] = Field(default_factory=lambda: {
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4o": (2.50, 10.00),
        "gpt-4.1-mini": (0.40, 1.60),
    })
    # An answer may lower risk at once but raise it at most this many levels, and
    # max_exposure at most this much, per session (a bold or injected answer ramps up
    # slowly; the reason is journaled in the decision's notes).
    max_risk_step_up: int = Field(1, ge=0, le=2)
    max_exposure_step_up: float = Field(0.2, ge=0, le=1)
    # Backfills only: the prompt shows neutral aliases, relative times and no price levels
    # (``llm_oracle.masking``), so a model cannot answer from memory of the period;
    # mask_seed picks the aliases, mask_news keeps headlines (names replaced) instead of
    # dropping them. Live sessions always see the real market.
    masked: bool = False
    mask_seed: str = ""
    mask_news: bool = False
    # The order of the pairs in the prompt (the universe list, the markets object and the
    # answer schema's enum): "shuffled", a seeded shuffle per session, deterministic from
    # the session time and prompt_order_seed (a backfill replays and its cache still hits;
    # the order used is journaled as the decision's prompt_order), so no whitelist position
    # is privileged; "universe": the whitelist's order, the layout before (a small model
    # then picks the first pairs listed, not the best).
    prompt_order: Literal["shuffled", "universe"] = "shuffled"
    prompt_order_seed: str = ""
    # Backfill's reply cache (validated answers only), oldest entries evicted beyond this.
    cache_max_entries: int = Field(5000, ge=0)
    output_dir: Path = Path("user_data/oracle")
    datadir: Path | None = None  # candles for the context (default: freqtrade's datadir)
    news_file: Path | None = None  # JSON lines: {"time": ISO-8601, "title": ..., "source": ...}
    news_url: str | None = None  # an RSS or Atom feed, read at live sessions
    # The bot's REST API (live sessions): portfolio, P&L, the ML layer's latest signals.
    bot_api_url: str | None = None
    bot_api_username_env: str = "FREQTRADE__API_SERVER__USERNAME"
    bot_api_password_env: str = "FREQTRADE__API_SERVER__PASSWORD"
    max_prompt_chars: int = Field(12_000, ge=1000)
    refresh_period: int = Field(1800, ge=60)  # RemotePairList refresh
    serve_host: str = "127.0.0.1"
    serve_port: int = 18740

    @field_validator("sessions")
    @classmethod
    def _hhmm(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                parse_hhmm(item)
            except ValueError as exc:
                raise ValueError(f"session time {exc}") from None
        return sorted(value)

    @property
    def schedule(self) -> Schedule:
        """The sessions as slots (``llm_oracle.schedule``)."""
        return Schedule(self.sessions)

    def price(self, model: str) -> tuple[float, float] | None:
        """USD per 1M tokens for ``model`` or its dated snapshot name; None: unpriced."""
        if model in self.prices:
            return self.prices[model]
        bases = [name for name in self.prices if model.startswith(name + "-")]
        return self.prices[max(bases, key=len)] if bases else None


class OracleSettingsError(ValueError):
    """Invalid ``llm_oracle`` section; the message names the key."""


def load_oracle_settings(config: dict[str, Any]) -> OracleSettings:
    section = dict(config.get(CONFIG_SECTION, {}) or {})
    section.setdefault("datadir", config.get("datadir"))
    try:
        return OracleSettings.model_validate(section)
    except ValidationError as exc:
        raise OracleSettingsError(describe_errors(CONFIG_SECTION, exc)) from exc
