"""LightGBMOnnxClassifier: FreqAI's LightGBM classifier, served through ONNX Runtime.

Use with ``--freqaimodel LightGBMOnnxClassifier`` (``"freqaimodel_path": "freqaimodels/"``).
``fit`` trains LightGBM on the trade-outcome label (``hybrid_ai.ml.labels``) over purged
splits (``hybrid_ai.ml.splits``), exports it to ONNX (``hybrid_ai.ml.onnx_model``: refused
unless it matches LightGBM within 1e-5; restarts load it without LightGBM) and calibrates
and judges it on held-out rows (``hybrid_ai.ml.skill``); ``predict`` is one onnxruntime
call per dataframe. Hooks hand over to ``hybrid_ai.ml.guard`` (saved models reused only if
what shaped them is unchanged), ``.frozen`` (frozen models) and ``.compat`` (workarounds).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from freqtrade.exceptions import OperationalException
from freqtrade.freqai.base_models.BaseClassifierModel import BaseClassifierModel
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen
from pandas import DataFrame

from hybrid_ai.ml import compat, frozen, guard, onnx_model, pipeline, skill, splits
from hybrid_ai.ml.features import LOSS, RETURN_LABEL, WIN, WIN_LABEL
from hybrid_ai.ml.onnx_model import OnnxClassifier, OnnxModelError
from hybrid_ai.ml.signals import MEAN_LOSS, MEAN_WIN, TRAINING_VALUES
from hybrid_ai.settings import MLSettings, load_settings

# The model's hyperparameters (freqai.model_training_parameters overrides any): small,
# strongly regularised trees, as a trade's outcome is a noisy target (README, ML section).
DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 400, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 200,
    "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.5, "reg_lambda": 5.0,
    "random_state": 42, "n_jobs": 2, "deterministic": True, "force_row_wise": True, "verbose": -1}
EARLY_STOPPING_ROUNDS = 40


class LightGBMOnnxClassifier(BaseClassifierModel):
    """LightGBM trained by FreqAI, predicted by onnxruntime."""

    def __init__(self, **kwargs) -> None:
        # fit()'s per-window values reach the strategy as extra_returns_per_train columns.
        declared = kwargs["config"]["freqai"].setdefault("extra_returns_per_train", {})
        for name in TRAINING_VALUES:
            declared.setdefault(name, 0.0)
        super().__init__(**kwargs)
        if self.freqai_info.get("continual_learning", False):
            # fit() always trains afresh per window: ignoring the setting would mislead.
            raise OperationalException(
                "LightGBMOnnxClassifier does not support freqai.continual_learning: every "
                "window trains a fresh model. Set freqai.continual_learning to false.")
        compat.warn_if_unverified()
        compat.keep_history_dates_utc(self.dd)

    @cached_property
    def ml(self) -> MLSettings:
        """``hybrid_ai.ml``, parsed once."""
        return load_settings(self.config).ml

    @cached_property
    def _frozen(self) -> frozen.SavedModels | None:
        return frozen.SavedModels.of(self.ml.frozen_models)

    def start(self, dataframe: DataFrame, metadata: dict, strategy) -> DataFrame:
        if not getattr(self, "_inputs_checked", False):
            self._check_saved_inputs(strategy)
            self._inputs_checked = True
        return super().start(dataframe, metadata, strategy)

    def _check_saved_inputs(self, strategy) -> None:
        """Refuse (or rebuild) an identifier's folder whose results other inputs shaped."""
        now = guard.inputs(self.config, strategy, Path(__file__), ml=self.ml)
        if guard.check(Path(self.full_path), now, self.ml.stale_models):
            self.dd.pair_dict = {}

    def ensure_data_exists(self, len_dataframe_backtest: int, tr_backtest, pair: str) -> bool:
        return compat.has_candles(len_dataframe_backtest, tr_backtest, pair) and \
            super().ensure_data_exists(len_dataframe_backtest, tr_backtest, pair)

    def _append_null_backtesting_predictions(self, dk: FreqaiDataKitchen, dataframe_backtest):
        compat.unique_classes(dk)
        super()._append_null_backtesting_predictions(dk, dataframe_backtest)

    def define_data_pipeline(self, threads: int = -1):
        # FreqAI's pipeline, with its dissimilarity index on a sample of training rows.
        return pipeline.with_sampled_di(super().define_data_pipeline(threads=1),
                                        self.ml.di_sample_rows)

    def train(self, unfiltered_df: DataFrame, pair: str, dk: FreqaiDataKitchen, **kwargs):
        if self._frozen is not None:  # a saved model instead of a fit
            return self._frozen.use(pair, dk)
        if splits.too_thin(unfiltered_df, pair, self.freqai_info.get("train_period_days"),
                           self.config["timeframe"], self.ml.min_train_coverage,
                           guard.live_run(self.config)):
            return None  # its pair's ML gate stays closed for the next window
        horizon = splits.label_horizon(self.freqai_info)
        return super().train(splits.blank_unknown_end(unfiltered_df, dk.label_list, horizon),
                             pair, dk, **kwargs)

    def fit(self, data_dictionary: dict, dk: FreqaiDataKitchen, **kwargs) -> OnnxClassifier:
        params = {**DEFAULT_PARAMS, **self.model_training_parameters}
        stopping_rounds = int(params.pop("early_stopping_rounds", EARLY_STOPPING_ROUNDS))
        horizon = splits.label_horizon(self.freqai_info)
        rows = splits.purged(data_dictionary, horizon)
        train, early, held_out = rows.train, rows.early, rows.held_out
        dropped = pipeline.di_dropped(dk.feature_pipeline)  # of the test split, by the DI filter
        if len(train) < 2 * skill.MIN_ROWS:
            raise OperationalException(
                f"{dk.pair}: {len(train)} training rows after purging {rows.gap} candles per "
                f"split: too few. Raise freqai.train_period_days.")
        model = lgb.LGBMClassifier(**params)
        if len(early) >= skill.MIN_ROWS and len(np.unique(early.y)) == 2:
            model.fit(train.x, train.y, sample_weight=train.w, eval_X=(early.x,),
                      eval_y=(early.y,), eval_sample_weight=[early.w],
                      callbacks=[lgb.early_stopping(stopping_rounds, verbose=False)])
        else:
            model.fit(train.x, train.y, sample_weight=train.w)
        clf = OnnxClassifier(
            onnx_bytes=onnx_model.export_lightgbm(model, train.x.shape[1]),
            classes_=np.array([LOSS, WIN], dtype=object),  # index = the booster's 0/1 label
            feature_names=list(dk.training_features_list), positive_class=WIN,
            threads=self.ml.onnx_threads, best_iteration=model.best_iteration_ or None)
        parity = onnx_model.check_parity(model, clf, held_out.x if len(held_out)
                                         else train.x[-2000:])
        judged = skill.held_out_skill(clf.raw_proba(held_out.x)[:, 1] if len(held_out) else [],
                                      held_out.y, horizon)
        clf.calibration = judged.calibration
        dk.data["extra_returns_per_train"] = skill.training_values(judged.skill, train)
        onnx_model.write_file(clf, Path(dk.data_path), dk.model_filename)
        dk.data["onnx"] = skill.training_report(
            dk.pair, clf, parity, rows, judged, horizon, dropped,
            clf.best_iteration or params["n_estimators"], self.ml.no_skill)
        return clf

    def predict(self, unfiltered_df: DataFrame, dk: FreqaiDataKitchen,
                **kwargs) -> tuple[DataFrame, npt.NDArray[np.int_]]:
        model = onnx_model.servable(self.model, dk.pair, dk.data_path)
        dk.find_features(unfiltered_df)
        onnx_model.require_features(model, dk.pair, list(unfiltered_df.columns))
        filtered_df, _ = dk.filter_features(
            unfiltered_df, dk.training_features_list, training_filter=False)
        features, outliers, _ = dk.feature_pipeline.transform(filtered_df, outlier_check=True)
        try:
            proba = model.predict_proba(features.to_numpy(dtype=np.float32))
        except OnnxModelError as exc:
            raise OnnxModelError(f"{dk.pair}: {exc}") from exc
        pred_df = DataFrame(proba, columns=list(model.classes_))
        pred_df.insert(0, WIN_LABEL, model.classes_[np.argmax(proba, axis=1)])
        # The return label's prediction: the trade's expected net return by this model.
        trained = dk.data.get("extra_returns_per_train", {})
        win_p = pred_df[WIN].to_numpy()
        pred_df.insert(0, RETURN_LABEL, win_p * trained.get(MEAN_WIN, 0.0)
                       - (1.0 - win_p) * trained.get(MEAN_LOSS, 0.0))
        dk.DI_values = (dk.feature_pipeline["di"].di_values if "di" in dk.feature_pipeline
                        else np.zeros(len(outliers)))
        dk.do_predict = outliers
        return pred_df, dk.do_predict
