"""LightGBMOnnxClassifier: FreqAI's LightGBM classifier, served through ONNX Runtime.

Use with ``--freqaimodel LightGBMOnnxClassifier`` (config: ``"freqaimodel_path":
"freqaimodels/"``). FreqAI's pipeline, dissimilarity index, saving and walk-forward
retraining work as with its stock ``LightGBMClassifier``; what changes:

* ``fit`` purges the last ``label_period_candles`` training rows (their labels would look
  into the test split), trains LightGBM with early stopping on FreqAI's test split, exports
  it to ONNX, refuses the export unless it matches LightGBM within 1e-5 on held-out rows,
  fits a Platt calibration on the test split and writes ``<model>_model.onnx`` beside
  FreqAI's files for inspection. The stored model (pickled by FreqAI) carries the ONNX
  bytes, so restarts load it without LightGBM.
* ``predict`` runs one onnxruntime call (default 1 thread) per dataframe, and names the
  pair and the features when the dataframe does not match the model.
* Live, the candle history FreqAI keeps in memory gets its ``date`` column repaired after
  each update (freqtrade 2026.9 + pandas 3: stored and fresh candles carry different UTC
  objects, the concatenation turns ``date`` into ``object`` and every retraining after the
  first candle fails with "Can only use .dt accessor with datetimelike values").
* With ``hybrid_ai.ml.frozen_models`` set, ``train`` loads a saved model instead of fitting
  one (``hybrid_ai.ml.frozen``): a backtest of an unchanged model on later candles.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from freqtrade.exceptions import OperationalException
from freqtrade.freqai.base_models.BaseClassifierModel import BaseClassifierModel
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen
from pandas import DataFrame

from hybrid_ai.frames import utc_dates
from hybrid_ai.ml import frozen as frozen_model
from hybrid_ai.ml.features import DOWN, UP
from hybrid_ai.ml.onnx_model import (
    Calibration,
    OnnxClassifier,
    OnnxModelError,
    check_parity,
    export_lightgbm,
)
from hybrid_ai.ml.pipeline import SampledDissimilarityIndex
from hybrid_ai.settings import load_settings

logger = logging.getLogger(__name__)

# The one place for the model's hyperparameters; freqai.model_training_parameters in the
# config overrides any of them (the shipped config.json leaves them here).
DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 400,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "random_state": 42,
    "n_jobs": 2,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}
EARLY_STOPPING_ROUNDS = 40


class LightGBMOnnxClassifier(BaseClassifierModel):
    """LightGBM trained by FreqAI, predicted by onnxruntime."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.freqai_info.get("continual_learning", False):
            # FreqAI would hand fit() the previous model to continue from; this model always
            # trains afresh per window, so silently ignoring the setting would mislead.
            raise OperationalException(
                "LightGBMOnnxClassifier does not support freqai.continual_learning: every "
                "window trains a fresh model. Set freqai.continual_learning to false.")
        self._frozen: dict[str, frozen_model.SavedModel] = {}
        update = self.dd.update_historic_data

        def update_keeping_dates(strategy, dk: FreqaiDataKitchen) -> None:
            update(strategy, dk)
            with self.dd.history_lock:
                for frames in self.dd.historic_data.values():
                    for frame in frames.values():
                        utc_dates(frame)

        self.dd.update_historic_data = update_keeping_dates

    def define_data_pipeline(self, threads: int = -1):
        # FreqAI's pipeline, with its dissimilarity index on a sample of training rows.
        pipeline = super().define_data_pipeline(threads=1)
        ml = load_settings(self.config).ml
        pipeline.steps = [
            (name, SampledDissimilarityIndex(step.di_threshold, max_rows=ml.di_sample_rows))
            if name == "di" else (name, step)
            for name, step in pipeline.steps
        ]
        return pipeline

    def train(self, unfiltered_df: DataFrame, pair: str, dk: FreqaiDataKitchen, **kwargs):
        frozen = load_settings(self.config).ml.frozen_models
        if frozen is None:
            return super().train(unfiltered_df, pair, dk, **kwargs)
        if pair not in self._frozen:  # one load per pair, not one per FreqAI window
            self._frozen[pair] = frozen_model.load(Path(frozen.dir), pair, frozen.trained_before)
        saved = self._frozen[pair]
        dk.data.update(saved.metadata)
        dk.training_features_list = saved.metadata["training_features_list"]
        dk.label_list = saved.metadata["label_list"]
        dk.feature_pipeline, dk.label_pipeline = saved.feature_pipeline, saved.label_pipeline
        logger.info("%s: frozen model from %s (trained until %s), no training", pair,
                    saved.path, saved.trained_until)
        return saved.model

    def fit(self, data_dictionary: dict, dk: FreqaiDataKitchen, **kwargs) -> OnnxClassifier:
        ml = load_settings(self.config).ml
        params = {**DEFAULT_PARAMS, **self.model_training_parameters}
        stopping_rounds = int(params.pop("early_stopping_rounds", EARLY_STOPPING_ROUNDS))

        x = data_dictionary["train_features"].to_numpy(dtype=np.float32)
        # Binary target: 1 = "up" (the trade would clear its costs), 0 = "down".
        y = (data_dictionary["train_labels"].to_numpy()[:, 0] == UP).astype(np.int32)
        w = np.asarray(data_dictionary["train_weights"])
        # Purge: the last `horizon` training labels are computed from candles inside the
        # test split; drop them so training never sees the test window's prices.
        horizon = int(self.freqai_info["feature_parameters"].get("label_period_candles", 0))
        has_test = len(data_dictionary.get("test_features", [])) > 0
        if has_test and horizon > 0:
            x, y, w = x[:-horizon], y[:-horizon], w[:-horizon]

        model = lgb.LGBMClassifier(**params)
        if has_test:
            x_test = data_dictionary["test_features"].to_numpy(dtype=np.float32)
            y_test = (data_dictionary["test_labels"].to_numpy()[:, 0] == UP).astype(np.int32)
            model.fit(x, y, sample_weight=w, eval_X=(x_test,), eval_y=(y_test,),
                      eval_sample_weight=[np.asarray(data_dictionary["test_weights"])],
                      callbacks=[lgb.early_stopping(stopping_rounds, verbose=False)])
        else:
            x_test, y_test = x[-2000:], y[-2000:]
            model.fit(x, y, sample_weight=w)

        clf = OnnxClassifier(
            onnx_bytes=export_lightgbm(model, x.shape[1]),
            classes_=np.array([DOWN, UP], dtype=object),  # index = the booster's 0/1 label
            feature_names=list(dk.training_features_list),
            positive_class=UP,
            threads=ml.onnx_threads,
            best_iteration=model.best_iteration_ or None,
        )
        parity = check_parity(model, clf, x_test)
        if has_test and clf.positive_index is not None:
            raw = clf.raw_proba(x_test)[:, clf.positive_index].astype(np.float64)
            clf.calibration = Calibration.fit(raw, y_test)
        self._write_onnx_file(clf, dk)
        dk.data["onnx"] = {
            "parity_max_abs_diff": parity,
            "best_iteration": clf.best_iteration,
            "calibration": [clf.calibration.a, clf.calibration.b],
            "train_rows": len(x),
            "test_rows": len(x_test) if has_test else 0,
        }
        logger.info("%s: ONNX model ready (parity %.1e, %s trees)", dk.pair, parity,
                    clf.best_iteration or params["n_estimators"])
        return clf

    def _append_null_backtesting_predictions(self, dk: FreqaiDataKitchen, dataframe_backtest):
        # freqtrade 2026.9: dk.unique_class_list grows by the classes of every window, so the
        # neutral predictions written for a window whose training failed get duplicate
        # columns and crash the backtest. De-duplicate, then let FreqAI do its part.
        dk.unique_class_list = list(dict.fromkeys(dk.unique_class_list))
        super()._append_null_backtesting_predictions(dk, dataframe_backtest)

    @staticmethod
    def _write_onnx_file(clf: OnnxClassifier, dk: FreqaiDataKitchen) -> None:
        path = Path(dk.data_path)
        path.mkdir(parents=True, exist_ok=True)
        target = path / f"{dk.model_filename}_model.onnx"
        tmp = target.with_suffix(".onnx.tmp")
        tmp.write_bytes(clf.onnx_bytes)
        tmp.replace(target)

    def predict(
        self, unfiltered_df: DataFrame, dk: FreqaiDataKitchen, **kwargs
    ) -> tuple[DataFrame, npt.NDArray[np.int_]]:
        model = self.model
        if not isinstance(model, OnnxClassifier):
            raise OnnxModelError(
                f"{dk.pair}: the loaded model is {type(model).__name__}, not an ONNX model "
                f"trained by LightGBMOnnxClassifier; delete {dk.data_path} and retrain"
            )
        dk.find_features(unfiltered_df)
        missing = model.missing_features(list(unfiltered_df.columns))
        if missing:
            raise OnnxModelError(
                f"{dk.pair}: the dataframe lacks {len(missing)} feature(s) the model was "
                f"trained on: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}. "
                f"The strategy's feature_engineering_* hooks or freqai.feature_parameters "
                f"changed since training: retrain (new freqai.identifier)."
            )
        filtered_df, _ = dk.filter_features(
            unfiltered_df, dk.training_features_list, training_filter=False
        )
        features, outliers, _ = dk.feature_pipeline.transform(filtered_df, outlier_check=True)
        try:
            proba = model.predict_proba(features.to_numpy(dtype=np.float32))
        except OnnxModelError as exc:
            raise OnnxModelError(f"{dk.pair}: {exc}") from exc
        labels = model.classes_[np.argmax(proba, axis=1)]
        pred_df = DataFrame(proba, columns=list(model.classes_))
        pred_df.insert(0, dk.label_list[0], labels)
        if "di" in dk.feature_pipeline:
            dk.DI_values = dk.feature_pipeline["di"].di_values
        else:
            dk.DI_values = np.zeros(len(outliers))
        dk.do_predict = outliers
        return pred_df, dk.do_predict
