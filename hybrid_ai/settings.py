"""The pack's section of the freqtrade config (``"hybrid_ai"``): one place for its keys.

Hard risk limits live here and in freqtrade's own keys (``stoploss``, ``max_open_trades``);
the strategy's callbacks enforce them and no upper layer (ML, oracle) can raise them.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# The oracle owns its contract (risk levels, config error messages); the strategy reads it.
from hybrid_ai.pauses import PairPause
from llm_oracle.schedule import parse_hhmm
from llm_oracle.schema import RiskLevel
from llm_oracle.settings import CONFIG_SECTION as ORACLE_SECTION
from llm_oracle.settings import OracleSettings, describe_errors

CONFIG_SECTION = "hybrid_ai"
__all__ = ["CONFIG_SECTION", "RiskLevel", "describe_errors"]


class HardLimits(BaseModel):
    """Caps no layer above the execution layer can exceed (fractions of total equity)."""

    model_config = ConfigDict(extra="forbid")

    max_stake_per_trade: float = Field(0.25, gt=0, le=1,
                                       description="largest stake of one trade")
    max_total_exposure: float = Field(0.90, gt=0, le=1,
                                      description="all open trades' stakes together")


class FrozenModels(BaseModel):
    """Predict with models saved earlier instead of retraining (see hybrid_ai.ml.frozen)."""

    model_config = ConfigDict(extra="forbid")

    dir: str = Field(description="user_data/models/<identifier> of the run that trained them")
    trained_before: datetime | None = Field(
        None, description="newest model per pair trained before this time (default: newest)")


class MLSettings(BaseModel):
    """How the ML layer's prediction gates and sizes entries (FreqAI sets the model itself)."""

    model_config = ConfigDict(extra="forbid")

    # Enter only when the trade's expected net return (calibrated win probability x mean
    # win - loss probability x mean loss, both measured on the training window's trade
    # outcomes, fees included) exceeds this margin: wider when more conservative.
    ev_margin: dict[RiskLevel, float] = Field(
        default_factory=lambda: {
            RiskLevel.CONSERVATIVE: 0.004,
            RiskLevel.MODERATE: 0.002,
            RiskLevel.AGGRESSIVE: 0.0,
        }
    )
    # ml_target_position = this fraction of the Kelly stake for that edge, as a share of
    # limits.max_stake_per_trade (capped at 1; the hard limits cap the stake itself).
    kelly_fraction: float = Field(0.25, gt=0, le=1)
    # Every entry the ML gate approves gets at least this share of the allowed stake.
    min_position: float = Field(0.0, ge=0, le=1)
    # A window whose model shows no skill on its own held-out data (Brier skill <= 0 against
    # the base rate, cross-fitted): "prior" gates and sizes with the training base rate
    # (the expected value of any entry in the last train_period_days), "closed" blocks.
    no_skill: Literal["prior", "closed"] = "prior"
    # Exit open trades (tag ml_exit) when the expected value of holding falls below minus
    # the strategy's sell_ml_exit_band (a hyperopt parameter); false: never.
    ml_exit: bool = True
    # onnxruntime threads per model; 1 leaves the second core to freqtrade.
    onnx_threads: int = Field(1, ge=1, le=16)
    # Rows of training data FreqAI's dissimilarity index compares against.
    di_sample_rows: int = Field(2000, ge=100)
    # Test saved models on later candles, no training (null: FreqAI retrains as usual).
    frozen_models: FrozenModels | None = None
    # Models and predictions under freqai.identifier that other inputs shaped (code,
    # strategy, exits, freqai keys, data): "refuse" stops with the inputs that changed,
    # "rebuild" deletes them and trains again.
    stale_models: Literal["refuse", "rebuild"] = "refuse"
    # A backtest training window with less than this share of train_period_days of
    # candles (a pair listed late, a hole in the data) is skipped: no predictions for the
    # window after it. Below 1, training on a shorter window is logged.
    min_train_coverage: float = Field(0.75, ge=0, le=1)

    @model_validator(mode="after")
    def _margins_widen_when_conservative(self) -> MLSettings:
        check_levels("ev_margin", self.ev_margin, bolder="smaller")
        if not all(-1 <= v <= 1 for v in self.ev_margin.values()):
            raise ValueError("ev_margin values are returns per trade: keep them in [-1, 1]")
        return self

    def margins_by_rank(self) -> list[float]:
        return [self.ev_margin[lvl] for lvl in RiskLevel]


class OracleGate(BaseModel):
    """How the strategy follows the LLM oracle (``llm_oracle/``)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # The oracle's journal: a file path, or the http(s) URL of `python -m llm_oracle serve`.
    source: str = "user_data/oracle/journal.jsonl"
    require_focus: bool = True  # entries only in the oracle's focus pairs
    grace_minutes: float = Field(30.0, ge=0)  # a decision holds this long past valid_until
    # Without a valid decision (stale, missing, corrupt): conservative, at most this exposure.
    fallback_max_exposure: float = Field(0.3, ge=0, le=1)
    # Exit an open trade (tag "oracle_exit") when the decision in force biases its pair at
    # or below this (pair_bias runs -1 .. +1); null: the oracle never closes trades.
    exit_bias: float | None = Field(-0.5, ge=-1, le=0)
    # Open trades allowed per risk level (config max_open_trades stays the hard cap).
    max_open_trades: dict[RiskLevel, int] = Field(
        default_factory=lambda: {
            RiskLevel.CONSERVATIVE: 2,
            RiskLevel.MODERATE: 3,
            RiskLevel.AGGRESSIVE: 4,
        }
    )
    # Steering open positions (hybrid_ai.oracle.steering): a new decision that lowers the risk
    # level, max_exposure or max_position trims the trades already open (tag oracle_derisk).
    steer_open_trades: bool = True
    # With steering on, a downgrade of the risk level also closes open trades whose pair
    # left the focus list.
    derisk_closes_unfocused: bool = False
    # "HH:MM" (UTC) when exposure is trimmed to the decision's overnight_target (tag
    # overnight_trim); "auto": 15 minutes after the last llm_oracle session; null: never.
    overnight_at: str | None = "auto"

    @model_validator(mode="after")
    def _overnight_hhmm(self) -> OracleGate:
        if self.overnight_at not in (None, "auto"):
            parse_hhmm(self.overnight_at)
        check_levels("max_open_trades", self.max_open_trades, bolder="larger")
        if any(v < 0 for v in self.max_open_trades.values()):
            raise ValueError("max_open_trades must be >= 0")
        return self

    def overnight_time(self, config: dict[str, Any]) -> time | None:
        """When the overnight trim runs, or None when it is off."""
        if self.overnight_at is None:
            return None
        if self.overnight_at != "auto":
            return parse_hhmm(self.overnight_at)
        sessions = (config.get(ORACLE_SECTION) or {}).get("sessions")
        if not sessions:
            sessions = OracleSettings.model_fields["sessions"].default_factory()
        last = max(parse_hhmm(s) for s in sessions)
        moment = datetime.combine(datetime(2000, 1, 1), last) + timedelta(minutes=15)
        return moment.time()


def check_levels(name: str, values: dict[RiskLevel, Any], bolder: str) -> None:
    """A per-risk-level map names every level, and conservative is never looser than
    aggressive (``bolder``: "larger" or "smaller" values are the looser ones)."""
    missing = [lvl.value for lvl in RiskLevel if lvl not in values]
    if missing:
        raise ValueError(f"{name} lacks risk levels {missing} (give conservative, moderate "
                         "and aggressive)")
    ordered = [values[lvl] for lvl in RiskLevel]
    if ordered != sorted(ordered, reverse=bolder == "smaller"):
        relation = "<=" if bolder == "larger" else ">="
        raise ValueError(f"{name} must not loosen as the risk level gets more conservative "
                         f"(conservative {relation} moderate {relation} aggressive), got "
                         + ", ".join(f"{lvl.value} {values[lvl]}" for lvl in RiskLevel))


class PackSettings(BaseModel):
    """Validated ``hybrid_ai`` config section."""

    model_config = ConfigDict(extra="forbid")

    risk_level: RiskLevel = RiskLevel.MODERATE
    # Stake = freqtrade's proposed stake x this multiplier, then capped by the hard limits.
    stake_multipliers: dict[RiskLevel, float] = Field(
        default_factory=lambda: {
            RiskLevel.CONSERVATIVE: 0.5,
            RiskLevel.MODERATE: 1.0,
            RiskLevel.AGGRESSIVE: 1.5,
        }
    )
    limits: HardLimits = Field(default_factory=HardLimits)
    ml: MLSettings = Field(default_factory=MLSettings)
    oracle: OracleGate = Field(default_factory=OracleGate)
    # Layers computed and plotted but not deciding: no gate, no sizing, no entry check, no
    # oracle exits, trims or announcements. The shipped config observes the oracle (it did
    # not earn its place on three years); ``make report`` runs its technical baseline this
    # way to attribute blocked entries.
    observe_only: list[Literal["ml", "oracle"]] = Field(default_factory=list)
    # Dates a pair is not traded (hybrid_ai.pauses): no entry, open trades exit.
    pair_pauses: list[PairPause] = Field(default_factory=list)

    @model_validator(mode="after")
    def _all_levels_priced(self) -> PackSettings:
        check_levels("stake_multipliers", self.stake_multipliers, bolder="larger")
        if any(m < 0 for m in self.stake_multipliers.values()):
            raise ValueError("stake_multipliers must be >= 0")
        return self

    def decides(self, layer: str) -> bool:
        return layer not in self.observe_only

    def multiplier(self, level: RiskLevel) -> float:
        return self.stake_multipliers[level]


class SettingsError(ValueError):
    """The ``hybrid_ai`` config section is invalid; the message names the key to fix."""


def load_settings(config: dict[str, Any]) -> PackSettings:
    """Parse ``config["hybrid_ai"]`` (absent: defaults) with a message that says what to fix."""
    section = config.get(CONFIG_SECTION, {}) or {}
    try:
        return PackSettings.model_validate(section)
    except ValidationError as exc:
        raise SettingsError(describe_errors(CONFIG_SECTION, exc)) from exc

