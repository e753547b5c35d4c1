"""Does a probability mean what it says? Scores of the ML layer's win probabilities.

One place for the scores the model uses to decide whether it has skill (at training time,
on its own held-out rows) and the tools report (``make ml-quality``, ``make report``):
AUC, log-loss, Brier score and the Brier skill score against a base rate, plus a
reliability table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn import metrics
from sklearn.metrics import brier_score_loss, roc_auc_score

from hybrid_ai.ml.onnx_model import Calibration

EPS = 1e-6


def auc(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Area under the ROC curve; NaN when ``y`` holds one class only."""
    y = np.asarray(y, dtype=bool)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def log_loss(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    return float(metrics.log_loss(np.asarray(y, dtype=np.float64),
                                  np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS),
                                  labels=[0, 1]))


def brier(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    return float(brier_score_loss(np.asarray(y, dtype=np.float64), p))


@dataclass(frozen=True)
class Scores:
    rows: int
    win_rate: float
    base_rate: float
    auc: float
    log_loss: float
    log_loss_base: float
    brier: float
    brier_base: float

    @property
    def brier_skill(self) -> float:
        """1 - Brier / Brier of the base rate: > 0 beats always saying the base rate."""
        return 1.0 - self.brier / self.brier_base if self.brier_base > 0 else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "brier_skill": self.brier_skill}


def scores(y: npt.ArrayLike, p: npt.ArrayLike, base_rate: npt.ArrayLike | float) -> Scores:
    """Scores of ``p`` against outcomes ``y`` and of the base rate (scalar or per row)."""
    y = np.asarray(y, dtype=np.float64)
    base = np.broadcast_to(np.asarray(base_rate, dtype=np.float64), y.shape)
    return Scores(
        rows=len(y), win_rate=float(y.mean()) if len(y) else float("nan"),
        base_rate=float(base.mean()) if len(y) else float("nan"),
        auc=auc(y, p), log_loss=log_loss(y, p), log_loss_base=log_loss(y, base),
        brier=brier(y, p), brier_base=brier(y, base))


def reliability(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Predicted probability bins vs the realised win rate (rows per bin)."""
    df = pd.DataFrame({"y": np.asarray(y, dtype=np.float64),
                       "p": np.asarray(p, dtype=np.float64)})
    cut = pd.cut(df["p"], bins=np.linspace(0, 1, bins + 1), include_lowest=True)
    table = df.groupby(cut, observed=True).agg(rows=("y", "size"), predicted=("p", "mean"),
                                               realised=("y", "mean"))
    table.index = table.index.astype(str)
    return table.rename_axis("bin").reset_index()


@dataclass(frozen=True)
class HeldOut:
    """What the model's own held-out rows say: its calibration and whether it has skill."""

    calibration: Calibration
    skill: bool
    scores: Scores | None  # cross-fitted calibrated scores; None: too few rows to judge


MIN_ROWS = 200  # per held-out split; fewer and no skill is claimed
# Labels that overlap in time are not independent: a day of 5m candles whose trades are
# held a day carries about one outcome. Skill is only claimed on at least this many
# label horizons of held-out rows.
MIN_HORIZONS = 10


def needed_rows(horizon: int) -> int:
    """Held-out rows below which ``held_out_skill`` claims nothing (``MIN_HORIZONS`` label
    horizons of ``horizon`` candles, at least ``MIN_ROWS``)."""
    return max(MIN_ROWS, MIN_HORIZONS * (horizon + 1))


def detectable_auc(rows: int, horizon: int, base_rate: float, z: float = 1.645) -> float:
    """The power of a held-out check: the smallest AUC a one-sided 95 % test can tell from
    0.5 on ``rows`` held-out rows whose labels span ``horizon`` candles (so about
    ``rows / (horizon + 1)`` independent outcomes, ``base_rate`` of them wins); Hanley and
    McNeil's (1982) variance of the AUC under no skill. NaN when one class is empty."""
    outcomes = rows / (horizon + 1)
    wins, losses = outcomes * base_rate, outcomes * (1 - base_rate)
    if wins < 1 or losses < 1:
        return float("nan")
    return 0.5 + z * float(np.sqrt((wins + losses + 1) / (12 * wins * losses)))


def held_out_skill(p_raw: npt.ArrayLike, y: npt.ArrayLike, horizon: int = 0) -> HeldOut:
    """Calibrate on held-out rows and judge skill without scoring a fit on its own rows.

    Two chronological halves: a Platt calibration fitted on one half scores the other,
    against the other half's base rate (and the other way round). Skill = the cross-fitted
    Brier skill score is positive, i.e. the model beats "always the base rate" on rows
    neither it nor its calibration saw. The calibration kept is fitted on all rows. A
    calibration that inverts the model (negative slope) is no skill either. With fewer than
    ``MIN_HORIZONS`` label horizons (``horizon`` candles each) of rows nothing is claimed.
    """
    p_raw, y = np.asarray(p_raw, dtype=np.float64), np.asarray(y, dtype=np.int32)
    if len(y) < needed_rows(horizon) or len(np.unique(y)) < 2:
        return HeldOut(Calibration(), False, None)
    half = len(y) // 2
    parts = [(slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))]
    calibrated, base = np.empty(len(y)), np.empty(len(y))
    for scored, fitted in parts:
        calibrated[scored] = Calibration.fit(p_raw[fitted], y[fitted]).apply(p_raw[scored])
        base[scored] = y[fitted].mean()
    cross = scores(y, calibrated, base)
    calibration = Calibration.fit(p_raw, y)
    return HeldOut(calibration, bool(cross.brier_skill > 0 and calibration.a > 0), cross)
