"""The strategy's view of the LLM oracle: its journal, merged point-in-time.

The same code serves backtests and live bots: each candle sees the decision in force at
its close (the newest decision with ``decided_at`` <= close, while ``valid_until`` + grace
has not passed). Live, ``refresh()`` runs every bot loop and re-reads the journal only
when the file (or the HTTP endpoint's ETag) changed: a stat call otherwise.
Trouble with the oracle never raises: the last good journal stays, and without a valid
decision the bot trades in conservative mode, warned once.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from hybrid_ai import columns as col
from hybrid_ai.frames import join_columns
from hybrid_ai.settings import OracleGate, RiskLevel
from llm_oracle.store import parse_journal

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Guidance:
    """What the oracle says at one moment (or the conservative default)."""

    valid: bool
    risk_level: RiskLevel
    focus: frozenset[str]
    max_exposure: float
    bias: dict[str, float] = field(default_factory=dict)  # -1 (get out) .. +1 (favour)
    max_position: float = 1.0  # one trade's share of equity (1.0: only the hard limit)
    overnight_target: float = 1.0  # exposure to hold overnight (1.0: no trim)
    decided_at: datetime | None = None  # identifies the decision (None: no valid one)
    session: str = ""  # the oracle session that decided it ("12:00Z", "event:BTC/USDT")
    source: str = ""  # who decided: provider/model
    reasoning: str = ""  # the answer's own justification

    def allows(self, pair: str, require_focus: bool) -> bool:
        return not (self.valid and require_focus) or pair in self.focus


class OracleFeed:
    def __init__(self, settings: OracleGate, base_dir: Path | None = None) -> None:
        self.settings = settings
        self.source = settings.source
        self.is_http = self.source.startswith(("http://", "https://"))
        path = Path(self.source)
        self.path = path if path.is_absolute() or base_dir is None else base_dir / path
        self._stamp: object = None
        self._problem: str | None = None
        self.table = pd.DataFrame({"decided_at": pd.to_datetime([], utc=True),
                                   "valid_until": pd.to_datetime([], utc=True),
                                   "risk_rank": [], "max_exposure": [], "max_position": [],
                                   "overnight_target": [], "focus": [], "bias": [],
                                   "session": [], "source": [], "reasoning": []})
        self._index()
        self.loads = 0

    def _index(self) -> None:
        """Nanosecond arrays for lookups that cost a binary search, not a pandas call."""
        self._by_row: dict[int, Guidance] = {}
        self._fallback = Guidance(False, RiskLevel.CONSERVATIVE, frozenset(),
                                  self.settings.fallback_max_exposure)
        self._decided_ns = self.table["decided_at"].dt.as_unit("ns").astype("int64").to_numpy()
        self._valid_ns = self.table["valid_until"].dt.as_unit("ns").astype("int64").to_numpy()

    # -- reading -------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Re-read the journal if it changed; True when new decisions were loaded."""
        try:
            text = self._read_http() if self.is_http else self._read_file()
        except (OSError, urllib.error.URLError, ValueError) as exc:
            self._report(f"cannot read the oracle journal {self.source}: {exc}")
            return False
        if text is None:
            return False
        decisions = [d for d in parse_journal(text, self.source) if d.usable]
        if not decisions and text.strip():
            self._report(f"oracle journal {self.source} holds no readable decision")
            return False
        self.table = pd.DataFrame({
            "decided_at": pd.to_datetime([d.decided_at for d in decisions], utc=True),
            "valid_until": pd.to_datetime([d.valid_until for d in decisions], utc=True),
            "risk_rank": [d.risk_level.rank for d in decisions],
            "max_exposure": [d.max_exposure for d in decisions],
            "max_position": [1.0 if d.max_position is None else d.max_position
                             for d in decisions],
            "overnight_target": [d.overnight_target for d in decisions],
            "focus": [frozenset(d.focus_pairs) for d in decisions],
            "bias": [dict(d.pair_bias) for d in decisions],
            "session": [d.session for d in decisions],
            "source": [f"{d.provider}/{d.model}" if d.model else d.provider for d in decisions],
            "reasoning": [d.reasoning for d in decisions],
        }).sort_values("decided_at", kind="stable").reset_index(drop=True)
        self._index()
        self.loads += 1
        if self._problem:
            logger.info("oracle journal readable again: %d decisions", len(self.table))
            self._problem = None
        return True

    def _read_file(self) -> str | None:
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return None
        text = self.path.read_text(errors="replace")
        self._stamp = stamp
        return text

    def _read_http(self) -> str | None:
        request = urllib.request.Request(self.source)
        if isinstance(self._stamp, str):
            request.add_header("If-None-Match", self._stamp)
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
                text = resp.read().decode(errors="replace")
                self._stamp = resp.headers.get("ETag")
                return text
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return None
            raise

    def _report(self, problem: str) -> None:
        if problem != self._problem:
            logger.warning("%s; keeping the last good decisions (%d), conservative when none "
                           "is valid", problem, len(self.table))
            self._problem = problem

    # -- point-in-time -------------------------------------------------------------------
    def at(self, when: datetime) -> Guidance:
        """The guidance in force at ``when``."""
        t_ns = pd.Timestamp(when).as_unit("ns").value
        idx = int(np.searchsorted(self._decided_ns, t_ns, side="right")) - 1
        grace_ns = int(self.settings.grace_minutes * 60e9)
        if idx >= 0 and t_ns <= self._valid_ns[idx] + grace_ns:
            return self._guidance(idx)
        return self._fallback

    def _guidance(self, idx: int) -> Guidance:
        """Guidance of journal row ``idx``, built once (callbacks ask every candle)."""
        cached = self._by_row.get(idx)
        if cached is None:
            row = self.table.iloc[idx]
            cached = self._by_row[idx] = Guidance(
                True, list(RiskLevel)[int(row["risk_rank"])], row["focus"],
                float(row["max_exposure"]), row["bias"],
                max_position=float(row["max_position"]),
                overnight_target=float(row["overnight_target"]),
                decided_at=row["decided_at"].to_pydatetime(), session=row["session"],
                source=row["source"], reasoning=row["reasoning"])
        return cached

    def merge(self, df: pd.DataFrame, pair: str, timeframe: timedelta,
              now: datetime | None = None) -> pd.DataFrame:
        """Per-candle oracle columns, each from the decision in force at the candle's close.

        ``now`` (live bots between candles): the last candle stands for the present moment,
        so it takes the decision in force now.
        """
        close_time = (df["date"] + timeframe).astype("datetime64[ns, UTC]")
        if now is not None and len(close_time):
            close_time.iloc[-1] = max(close_time.iloc[-1], pd.Timestamp(now))
        left = pd.DataFrame({"close_time": close_time, "row": np.arange(len(df))})
        table = self.table.assign(decided_at=self.table["decided_at"].astype("datetime64[ns, UTC]"))
        merged = pd.merge_asof(left.sort_values("close_time"), table, left_on="close_time",
                               right_on="decided_at", direction="backward").sort_values("row")
        grace = pd.Timedelta(minutes=self.settings.grace_minutes)
        valid = (merged["decided_at"].notna()
                 & (merged["close_time"] <= merged["valid_until"] + grace)).to_numpy()
        in_focus = np.array([isinstance(f, frozenset) and pair in f for f in merged["focus"]])
        rank = np.where(valid, merged["risk_rank"].fillna(0), RiskLevel.CONSERVATIVE.rank)
        exposure = np.where(valid, merged["max_exposure"].fillna(0),
                            self.settings.fallback_max_exposure)
        focus_gate = in_focus | ~valid if self.settings.require_focus else np.ones(len(df), bool)
        exit_bias = self.settings.exit_bias
        wants_out = (np.array([isinstance(b, dict) and b.get(pair, 0.0) <= exit_bias
                               for b in merged["bias"]], dtype=bool) & valid
                     if exit_bias is not None else np.zeros(len(df), bool))
        return join_columns(df, {
            col.ORACLE_VALID: valid,
            col.ORACLE_RISK_LEVEL: rank.astype(int),
            col.ORACLE_FOCUS: in_focus & valid,
            col.ORACLE_MAX_EXPOSURE: exposure.astype(float),
            col.GATE_ORACLE: focus_gate,
            col.ORACLE_EXIT: wants_out,
        })
