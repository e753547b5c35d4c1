"""Pair pauses: dates between which a pair is not traded.

``hybrid_ai.pair_pauses`` in the config, a list of ``{"pair": "ADA/USDT", "from":
"2023-10-29T00:00:00Z", "to": "2024-09-01T00:00:00Z", "reason": "no 5m candles"}``: inside
``[from, to)`` the pair makes no new entry (its ``gate_pair_pause`` is closed) and a trade of
it still open exits at the next candle's open (exit signal ``pair_pause``). Live, for an
announced delisting or a maintenance window; in research, ``make report`` pauses every
pair around each hole of a day or more in its candle files (``lab.data_holes``), so that no
trade is carried silently across candles that do not exist. Known in advance by
definition: a pause is configuration, not a market signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator


class PairPause(BaseModel):
    """One pause: ``pair`` (as in the whitelist), ``from`` and ``to`` (ISO 8601, UTC when no
    offset is given), ``reason`` (said in the log and the report)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    pair: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    reason: str = ""

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _ordered(self) -> PairPause:
        if self.end <= self.start:
            raise ValueError(f"pair pause of {self.pair}: 'to' ({self.end:%Y-%m-%d %H:%M}) "
                             f"must be after 'from' ({self.start:%Y-%m-%d %H:%M})")
        return self


def from_config(config: dict[str, Any]) -> list[PairPause]:
    """The validated ``hybrid_ai.pair_pauses`` of a freqtrade config ([] when absent);
    pydantic's ValidationError names the entry and field to fix."""
    raw = config.get("hybrid_ai", {}).get("pair_pauses", [])
    return TypeAdapter(list[PairPause]).validate_python(raw)


def paused(dates: pd.Series, pair: str, pauses: Sequence[PairPause]) -> npt.NDArray[np.bool_]:
    """True for each candle date (UTC) of ``pair`` inside one of its pauses."""
    out = np.zeros(len(dates), dtype=bool)
    stamps = pd.to_datetime(dates, utc=True)
    for pause in pauses:
        if pause.pair == pair:
            out |= ((stamps >= pd.Timestamp(pause.start)) & (stamps < pd.Timestamp(pause.end))
                    ).to_numpy(dtype=bool)
    return out
