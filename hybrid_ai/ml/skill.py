"""Does a probability mean what it says? Scores of the ML layer's win probabilities.

One place for the scores the model uses to decide whether it has skill (at training time,
on its own held-out rows) and the tools report (``make ml-quality``, ``make report``):
AUC, log-loss, Brier score and the Brier skill score against a base rate, plus a
reliability table; and what a training window reports (``training_values`` for the
strategy, ``training_report`` for FreqAI's metadata and the log).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn import metrics
from sklearn.metrics import brier_score_loss, roc_auc_score

from hybrid_ai.ml.onnx_model import Calibration, OnnxClassifier
from hybrid_ai.ml.signals import BASE_RATE, MEAN_LOSS, MEAN_WIN, SKILL

if TYPE_CHECKING:
    from hybrid_ai.ml.splits import PurgedSplits, Split

logger = logging.getLogger(__name__)

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


def training_values(skill: bool, train: Split) -> dict[str, float]:
    """The per-window values the strategy reads (FreqAI returns them as
    ``extra_returns_per_train`` columns): the skill flag, the base rate of winners among
    the training rows, and their mean winning and losing net returns (the losing one as a
    positive number; 0.0 without any)."""
    wins, losses = train.ret[train.ret > 0], train.ret[train.ret <= 0]
    return {
        SKILL: float(skill),
        BASE_RATE: float(train.y.mean()),
        MEAN_WIN: float(wins.mean()) if len(wins) else 0.0,
        MEAN_LOSS: float(-losses.mean()) if len(losses) else 0.0,
    }


def training_report(pair: str, model: OnnxClassifier, parity: float, splits: PurgedSplits,
                    judged: HeldOut, horizon: int, di_dropped: int, trees: int,
                    no_skill: str) -> dict[str, Any]:
    """What one training window measured, as FreqAI's ``dk.data["onnx"]`` metadata, logged
    with the check's power: the ONNX ``parity``, the rows of each purged split, the held-out
    verdict, the test rows the dissimilarity filter dropped and the smallest AUC the
    held-out rows can tell from none. ``trees``: the trees kept."""
    train, held_out = splits.train, splits.held_out
    metadata = {
        "parity_max_abs_diff": parity,
        "best_iteration": model.best_iteration,
        "calibration": [model.calibration.a, model.calibration.b],
        "train_rows": len(train), "early_stopping_rows": len(splits.early),
        "held_out_rows": len(held_out), "purged_per_split": splits.gap,
        "held_out_scores": judged.scores.as_dict() if judged.scores else None,
        "di_dropped_test_rows": di_dropped, "skill_check_needs_rows": needed_rows(horizon),
        "detectable_auc": detectable_auc(len(held_out), horizon, float(train.y.mean())),
    }
    if judged.scores:
        verdict = f"held-out Brier skill {judged.scores.brier_skill:.4f}"
    else:
        verdict = (f"not judged: {len(held_out)} held-out rows, the check needs "
                   f"{needed_rows(horizon)} (10 label horizons)")
    detectable = metadata["detectable_auc"]
    power = (f"can only tell an AUC above {detectable:.2f} from none (one-sided 95 %)"
             if np.isfinite(detectable) else
             "hold less than one finished trade of each outcome: no AUC can be told from "
             "none (a label horizon this long needs a longer train_period_days)")
    logger.info(
        "%s: ONNX model ready (parity %.1e, %s trees); %s -> %s. Power: the DI filter "
        "(DI_threshold) dropped %d of %d test rows; %d held-out rows %s", pair, parity,
        trees, verdict, "skill" if judged.skill else f"no skill, gate uses {no_skill}",
        di_dropped, len(splits.test) + di_dropped, len(held_out), power)
    return metadata
