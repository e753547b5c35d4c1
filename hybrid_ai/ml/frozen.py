"""Load a model FreqAI saved earlier, to test it on later candles without retraining.

FreqAI backtests always retrain walk-forward (freqtrade issue #10826), yet a trader checks
a live model by running it, unchanged, over candles it has never seen. With
``hybrid_ai.ml.frozen_models`` set, ``LightGBMOnnxClassifier.train`` returns the model saved
in ``dir`` (the newest one per pair trained before ``trained_before``) instead of fitting:
FreqAI's windows still advance, every window predicts with that one model, its fitted
feature pipeline (scaler, dissimilarity index) and its feature list. ``SavedModels``
loads each pair's model once and hands it to FreqAI's data kitchen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cloudpickle
import rapidjson

logger = logging.getLogger(__name__)


class FrozenModelError(RuntimeError):
    """No usable saved model; the message says where it looked and what to do."""


@dataclass
class SavedModel:
    path: Path
    trained_until: datetime
    metadata: dict[str, Any]
    feature_pipeline: Any
    label_pipeline: Any
    model: Any


def find(models_dir: Path, pair: str, trained_before: datetime | None = None) -> Path:
    """The newest ``sub-train-<COIN>_<timestamp>`` directory, trained before the cutoff."""
    coin = pair.split("/")[0]
    candidates = []
    for path in models_dir.glob(f"sub-train-{coin}_*"):
        stamp = path.name.rsplit("_", 1)[-1]
        if stamp.isdigit() and (trained_before is None
                                or int(stamp) <= trained_before.timestamp()):
            candidates.append((int(stamp), path))
    if not candidates:
        cutoff = f" trained before {trained_before:%Y-%m-%d %H:%M}" if trained_before else ""
        raise FrozenModelError(
            f"{pair}: no saved model{cutoff} in {models_dir} (looked for sub-train-{coin}_*). "
            f"Point hybrid_ai.ml.frozen_models.dir at user_data/models/<identifier> of a bot "
            f"or backtest that trained this pair (freqai.save_backtest_models: true).")
    return max(candidates)[1]


def load(models_dir: Path, pair: str, trained_before: datetime | None = None) -> SavedModel:
    path = find(models_dir, pair, trained_before)
    try:
        (meta_file,) = path.glob("*_metadata.json")
        stem = meta_file.name.removesuffix("_metadata.json")
        metadata = rapidjson.loads(meta_file.read_text())
        with (path / f"{stem}_feature_pipeline.pkl").open("rb") as fh:
            feature_pipeline = cloudpickle.load(fh)
        with (path / f"{stem}_label_pipeline.pkl").open("rb") as fh:
            label_pipeline = cloudpickle.load(fh)
        with (path / f"{stem}_model.joblib").open("rb") as fh:
            model = cloudpickle.load(fh)
    except (ValueError, OSError, EOFError, cloudpickle.pickle.UnpicklingError) as exc:
        raise FrozenModelError(f"{pair}: the saved model in {path} is incomplete or corrupt "
                               f"({type(exc).__name__}: {exc})") from exc
    stamp = int(path.name.rsplit("_", 1)[-1])
    return SavedModel(path, datetime.fromtimestamp(stamp, tz=UTC), metadata,
                      feature_pipeline, label_pipeline, model)


class SavedModels:
    """The saved models a backtest predicts with, one load per pair (not one per window)."""

    def __init__(self, models_dir: Path, trained_before: datetime | None = None) -> None:
        self.models_dir, self.trained_before = models_dir, trained_before
        self._saved: dict[str, SavedModel] = {}

    @classmethod
    def of(cls, settings: Any) -> SavedModels | None:
        """From ``hybrid_ai.ml.frozen_models`` (``dir``, ``trained_before``); None unset."""
        return None if settings is None else cls(Path(settings.dir), settings.trained_before)

    def use(self, pair: str, dk: Any) -> Any:
        """The saved model of ``pair``, its metadata, feature list, labels and pipelines set
        on FreqAI's data kitchen ``dk`` as training would have; ``FrozenModelError`` when
        there is none."""
        if pair not in self._saved:
            self._saved[pair] = load(self.models_dir, pair, self.trained_before)
        saved = self._saved[pair]
        dk.data.update(saved.metadata)
        dk.training_features_list = saved.metadata["training_features_list"]
        dk.label_list = saved.metadata["label_list"]
        dk.feature_pipeline, dk.label_pipeline = saved.feature_pipeline, saved.label_pipeline
        logger.info("%s: frozen model from %s (trained until %s), no training", pair,
                    saved.path, saved.trained_until)
        return saved.model
