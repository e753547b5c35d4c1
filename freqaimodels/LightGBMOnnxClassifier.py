"""LightGBMOnnxClassifier: FreqAI's LightGBM classifier, served through ONNX Runtime.

Use with ``--freqaimodel LightGBMOnnxClassifier`` (config: ``"freqaimodel_path":
"freqaimodels/"``). FreqAI's pipeline, dissimilarity index, saving and walk-forward
retraining work as with its stock ``LightGBMClassifier``; what changes:

* the label is the trade's outcome under the strategy's exits (``hybrid_ai.ml.labels``):
  ``&s-win`` (did it win after fees) and ``&-trade_return`` (its net return);
* ``train`` blanks the window's last ``label_period_candles`` + 1 labels (their trades end
  after the window); ``fit`` purges the train split's last ``label_period_candles`` + 1 rows
  plus an embargo (their labels reach into the test split), trains LightGBM with early
  stopping on the first third of FreqAI's test split, and keeps the rest for what
  early stopping never saw: a Platt calibration and the skill check (cross-fitted Brier
  skill score against the base rate, ``hybrid_ai.ml.skill``). It returns, per window, the
  skill flag, the base rate and the mean winning / losing trade returns of the training
  rows as FreqAI ``extra_returns_per_train`` columns; the strategy turns them into an
  expected value (``hybrid_ai.ml.signals``). It exports the model to ONNX, refuses the
  export unless it matches LightGBM within 1e-5 on held-out rows and writes
  ``<model>_model.onnx`` beside FreqAI's files for inspection. The stored model (pickled
  by FreqAI) carries the ONNX bytes, so restarts load it without LightGBM.
* ``predict`` runs one onnxruntime call (default 1 thread) per dataframe, and names the
  pair and the features when the dataframe does not match the model.
* Live, the candle history FreqAI keeps in memory gets its ``date`` column repaired after
  each update (freqtrade 2026.9 + pandas 3: stored and fresh candles carry different UTC
  objects, the concatenation turns ``date`` into ``object`` and every retraining after the
  first candle fails with "Can only use .dt accessor with datetimelike values").
* With ``hybrid_ai.ml.frozen_models`` set, ``train`` loads a saved model instead of fitting
  one (``hybrid_ai.ml.frozen``): a backtest of an unchanged model on later candles.
* What FreqAI saves under ``user_data/models/<identifier>`` (models, backtest predictions)
  is reused only when everything that shaped it is unchanged: the first ``start`` records
  its inputs (``hybrid_ai_inputs.json``: model and label code, strategy source, exit
  rules, the freqai keys, freqtrade's version, the data directory) and compares them with
  the folder's record. A difference is refused naming the inputs that changed, or with
  ``hybrid_ai.ml.stale_models: "rebuild"`` the folder's results are deleted and retrained.
* Backtest windows without candles (a pair delisted or listed late) predict nothing and
  say so once; a training window holding less than ``hybrid_ai.ml.min_train_coverage`` of
  ``train_period_days`` of candles is skipped with a warning (its pair's ML gate stays
  closed for the next window), one holding less than all of it is trained with a warning.
"""

from __future__ import annotations

import inspect
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import freqtrade
import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
from freqtrade.exceptions import OperationalException
from freqtrade.exchange import timeframe_to_minutes
from freqtrade.freqai.base_models.BaseClassifierModel import BaseClassifierModel
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen
from pandas import DataFrame

import hybrid_ai
from hybrid_ai import fingerprint
from hybrid_ai.frames import utc_dates
from hybrid_ai.ml import frozen as frozen_model
from hybrid_ai.ml.features import LOSS, RETURN_LABEL, WIN, WIN_LABEL
from hybrid_ai.ml.onnx_model import (
    OnnxClassifier,
    OnnxModelError,
    check_parity,
    export_lightgbm,
)
from hybrid_ai.ml.pipeline import SampledDissimilarityIndex
from hybrid_ai.ml.signals import BASE_RATE, MEAN_LOSS, MEAN_WIN, SKILL, TRAINING_VALUES
from hybrid_ai.ml.skill import MIN_ROWS, detectable_auc, held_out_skill, needed_rows
from hybrid_ai.settings import load_settings

logger = logging.getLogger(__name__)

# The one place for the model's hyperparameters; freqai.model_training_parameters in the
# config overrides any of them (the shipped config.json leaves them here).
DEFAULT_PARAMS: dict[str, Any] = {
    # Small, strongly regularised trees: a trade's outcome is a noisy target (see the
    # README's ML section for what the walk-forward scores say).
    "n_estimators": 400,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 200,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.5,
    "reg_lambda": 5.0,
    "random_state": 42,
    "n_jobs": 2,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}
EARLY_STOPPING_ROUNDS = 40
EMBARGO_CANDLES = 12  # one hour of 5m candles between purged splits
INPUTS_FILE = "hybrid_ai_inputs.json"  # what shaped the models in an identifier's folder
# freqai keys that shape a model or its predictions (the rest: housekeeping, live timing).
SHAPING_FREQAI_KEYS = ("feature_parameters", "data_split_parameters",
                       "model_training_parameters", "train_period_days",
                       "backtest_period_days", "continual_learning")
# Config keys the label's partial take-profit depends on (a typical stake vs the minimum).
WALLET_KEYS = ("dry_run_wallet", "stake_amount", "max_open_trades", "tradable_balance_ratio")


@dataclass
class _Split:
    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int32]  # 1 = the trade won after fees
    w: npt.NDArray[np.float64]
    ret: npt.NDArray[np.float64]  # its net return

    def __len__(self) -> int:
        return len(self.y)

    def rows(self, start: int, stop: int) -> _Split:
        """Rows ``start`` .. ``stop`` (clamped to the split)."""
        s = slice(max(start, 0), max(stop, 0))
        return _Split(self.x[s], self.y[s], self.w[s], self.ret[s])


def _rows(data: dict, split: str) -> _Split:
    """One of FreqAI's splits as arrays (an empty split when test_size is 0)."""
    features = data.get(f"{split}_features")
    if features is None or len(features) == 0:
        return _Split(np.empty((0, 0), np.float32), np.empty(0, np.int32), np.empty(0),
                      np.empty(0))
    labels = data[f"{split}_labels"]
    return _Split(features.to_numpy(dtype=np.float32),
                  (labels[WIN_LABEL].to_numpy() == WIN).astype(np.int32),
                  np.asarray(data[f"{split}_weights"], dtype=np.float64),
                  labels[RETURN_LABEL].to_numpy(dtype=np.float64))


def _source_file(cls: type) -> Path | None:
    """A class's source file: freqtrade's resolver sets ``__file__`` on what it loads (the
    module is not importable by name), the rest are ordinary imports."""
    path = cls.__dict__.get("__file__")
    if path is None:
        try:
            path = inspect.getfile(cls)
        except TypeError:
            return None
    return Path(path).resolve()


class LightGBMOnnxClassifier(BaseClassifierModel):
    """LightGBM trained by FreqAI, predicted by onnxruntime."""

    def __init__(self, **kwargs) -> None:
        # The values fit() measures per window reach the strategy as columns through
        # FreqAI's extra_returns_per_train; declared before FreqAI builds its data kitchens.
        declared = kwargs["config"]["freqai"].setdefault("extra_returns_per_train", {})
        for name in TRAINING_VALUES:
            declared.setdefault(name, 0.0)
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

    # -- reuse only what the same inputs shaped ----------------------------------------------
    def start(self, dataframe: DataFrame, metadata: dict, strategy) -> DataFrame:
        if not getattr(self, "_inputs_checked", False):
            self._check_saved_inputs(strategy)
            self._inputs_checked = True
        return super().start(dataframe, metadata, strategy)

    def inputs(self, strategy) -> fingerprint.Inputs:
        """What shapes this identifier's models and predictions, by name."""
        code_root = Path(hybrid_ai.__file__).resolve().parent
        model_code = [Path(__file__).resolve(), *sorted((code_root / "ml").glob("*.py")),
                      *(code_root / name for name in ("indicators.py", "entries.py",
                                                       "frames.py", "exits.py"))]
        strategy_files = {_source_file(cls) for cls in type(strategy).__mro__
                          if not cls.__module__.startswith(("freqtrade", "builtins", "abc"))}
        strategy_files.discard(None)
        freqai = self.config["freqai"]
        ml = load_settings(self.config).ml
        inputs = {
            "model and label code": fingerprint.files_digest(model_code),
            "strategy source": fingerprint.files_digest(strategy_files),
            "exit rules (the label)": fingerprint.digest(asdict(strategy.exit_rules())),
            "wallet (the label's partial take-profit)": fingerprint.digest(
                {k: self.config.get(k) for k in WALLET_KEYS}),
            "freqaimodel": fingerprint.digest(self.config.get("freqaimodel")),
            "timeframe": fingerprint.digest(self.config.get("timeframe")),
            "hybrid_ai.ml.di_sample_rows": fingerprint.digest(ml.di_sample_rows),
            "hybrid_ai.ml.frozen_models": fingerprint.digest(
                ml.frozen_models.model_dump(mode="json") if ml.frozen_models else None),
            "freqtrade version": fingerprint.digest(freqtrade.__version__),
            **{f"freqai.{key}": fingerprint.digest(freqai.get(key))
               for key in SHAPING_FREQAI_KEYS},
        }
        if not self.live_mode:  # a backtest's candles come from the data directory
            inputs["datadir"] = fingerprint.digest(str(Path(self.config["datadir"]).resolve()))
        return inputs

    @property
    def live_mode(self) -> bool:
        return self.config.get("runmode") is not None and \
            getattr(self.config["runmode"], "value", "") in ("dry_run", "live")

    def _saved_results(self) -> list[Path]:
        folder = Path(self.full_path)
        return [*folder.glob("sub-train-*"), *folder.glob("backtesting_predictions/*")]

    def _check_saved_inputs(self, strategy) -> None:
        """Refuse (or rebuild) an identifier's folder whose results other inputs shaped."""
        folder = Path(self.full_path)
        record = folder / INPUTS_FILE
        now = self.inputs(strategy)
        saved = fingerprint.read(record)
        results = self._saved_results()
        stale = fingerprint.changed(saved, now) if results else []
        if stale:
            why = (f"changed: {', '.join(stale)}" if saved is not None else
                   "saved without a record of their inputs (an older pack version)")
            if load_settings(self.config).ml.stale_models == "rebuild":
                logger.warning("%s: models and predictions built with other inputs (%s): "
                               "deleting them and training again "
                               "(hybrid_ai.ml.stale_models: rebuild)", folder, why)
                for path in results:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
                (folder / "pair_dictionary.json").unlink(missing_ok=True)
                self.dd.pair_dict = {}
            else:
                raise OperationalException(
                    f"{folder} holds FreqAI models and predictions built with other inputs "
                    f"({why}); reusing them would mix stale results in. Set a new "
                    f"freqai.identifier, delete that folder, or set "
                    f"hybrid_ai.ml.stale_models to \"rebuild\".")
        folder.mkdir(parents=True, exist_ok=True)
        fingerprint.write(record, now)

    # -- windows with missing candles --------------------------------------------------------
    def ensure_data_exists(self, len_dataframe_backtest: int, tr_backtest, pair: str) -> bool:
        """A backtest window without candles of this pair (delisted, listed later) predicts
        nothing; said once per pair and window."""
        if len_dataframe_backtest == 0:
            logger.warning("%s: no candles from %s to %s (delisted, not listed yet, or a hole): "
                           "no ML predictions there, its gate stays closed", pair,
                           tr_backtest.start_fmt, tr_backtest.stop_fmt)
            return False
        return super().ensure_data_exists(len_dataframe_backtest, tr_backtest, pair)

    def _train_coverage(self, df: DataFrame) -> float:
        """Candles in the training window / the candles ``train_period_days`` holds."""
        days = float(self.freqai_info.get("train_period_days", 0) or 0)
        if days <= 0 or "date" not in df:
            return 1.0
        start = df["date"].max() - pd.Timedelta(days=days)
        have = int((df["date"] > start).sum())
        return have / (days * 24 * 60 / timeframe_to_minutes(self.config["timeframe"]))

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
        ml = load_settings(self.config).ml
        frozen = ml.frozen_models
        coverage = self._train_coverage(unfiltered_df) if frozen is None else 1.0
        if coverage < 0.99:
            days = self.freqai_info.get("train_period_days")
            skip = coverage < ml.min_train_coverage and not self.live_mode
            end = unfiltered_df["date"].max() if len(unfiltered_df) else None
            logger.warning(
                "%s: the training window up to %s holds %.1f of freqai.train_period_days %s "
                "days of candles (listed late, or a hole)%s", pair,
                f"{end:%Y-%m-%d %H:%M}" if end is not None else "?", coverage * days, days,
                f": skipped, below hybrid_ai.ml.min_train_coverage {ml.min_train_coverage:g};"
                " no ML predictions for the next window" if skip
                else ": trained on what there is")
            if skip:
                return None
        if frozen is None:
            return super().train(self._unknown_at_the_end(unfiltered_df, dk), pair, dk,
                                 **kwargs)
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

    @property
    def _horizon(self) -> int:
        """Candles a label spans: the strategy's maximum holding time (checked at start)."""
        return int(self.freqai_info["feature_parameters"].get("label_period_candles", 0))

    def _unknown_at_the_end(self, df: DataFrame, dk: FreqaiDataKitchen) -> DataFrame:
        """The training window's last ``label_period_candles`` + 1 labels as NaN.

        Their trades end after the window: live their outcome is unknown (already NaN); a
        backtest computes targets once over the whole range, so there they would carry
        prices from the window being predicted. Blanking them here makes both the same, and
        makes the rows FreqAI keeps, splits and scales the same whatever comes after the
        window (freqtrade's lookahead-analysis cuts the data right there)."""
        horizon = self._horizon
        labels = [c for c in dk.label_list if c in df]
        if horizon <= 0 or not labels:
            return df
        df = df.copy()
        df.loc[df.index[-(horizon + 1):], labels] = np.nan
        return df

    def fit(self, data_dictionary: dict, dk: FreqaiDataKitchen, **kwargs) -> OnnxClassifier:
        ml = load_settings(self.config).ml
        params = {**DEFAULT_PARAMS, **self.model_training_parameters}
        stopping_rounds = int(params.pop("early_stopping_rounds", EARLY_STOPPING_ROUNDS))
        # A label spans the trade: label_period_candles (the strategy's maximum holding
        # time) plus the entry candle. Rows whose label reaches into the next split are
        # purged, and an embargo keeps the slowest features from bridging the gap.
        horizon = self._horizon
        gap = horizon + 1 + EMBARGO_CANDLES

        train = _rows(data_dictionary, "train")
        test = _rows(data_dictionary, "test")
        train = train.rows(0, len(train) - gap)  # its last labels look into the test split
        # (The test split's own last labels, which would look past the training data, are
        # NaN already: ``train`` blanks them.) The test split splits in two, with a gap:
        # early stopping on the first third, calibration and the skill check on the rest.
        early = test.rows(0, len(test) // 3)
        held_out = test.rows(len(early) + gap, len(test))
        # What the dissimilarity filter took from the test split (its last transform).
        di = dict(dk.feature_pipeline.steps).get("di")
        di_values = getattr(di, "di_values", None)
        di_dropped = (int((np.asarray(di_values) >= di.di_threshold).sum())
                      if di_values is not None and len(di_values) else 0)
        if len(train) < 2 * MIN_ROWS:
            raise OperationalException(
                f"{dk.pair}: {len(train)} training rows after purging {gap} candles per split: "
                f"too few. Raise freqai.train_period_days.")

        model = lgb.LGBMClassifier(**params)
        if len(early) >= MIN_ROWS and len(np.unique(early.y)) == 2:
            model.fit(train.x, train.y, sample_weight=train.w, eval_X=(early.x,),
                      eval_y=(early.y,), eval_sample_weight=[early.w],
                      callbacks=[lgb.early_stopping(stopping_rounds, verbose=False)])
        else:
            model.fit(train.x, train.y, sample_weight=train.w)

        clf = OnnxClassifier(
            onnx_bytes=export_lightgbm(model, train.x.shape[1]),
            classes_=np.array([LOSS, WIN], dtype=object),  # index = the booster's 0/1 label
            feature_names=list(dk.training_features_list),
            positive_class=WIN,
            threads=ml.onnx_threads,
            best_iteration=model.best_iteration_ or None,
        )
        parity_rows = held_out.x if len(held_out) else train.x[-2000:]
        parity = check_parity(model, clf, parity_rows)
        judged = held_out_skill(clf.raw_proba(held_out.x)[:, 1] if len(held_out) else [],
                                held_out.y, horizon)
        clf.calibration = judged.calibration
        wins, losses = train.ret[train.ret > 0], train.ret[train.ret <= 0]
        # Per-window values the strategy reads (FreqAI returns them as columns).
        dk.data["extra_returns_per_train"] = {
            SKILL: float(judged.skill),
            BASE_RATE: float(train.y.mean()),
            MEAN_WIN: float(wins.mean()) if len(wins) else 0.0,
            MEAN_LOSS: float(-losses.mean()) if len(losses) else 0.0,
        }
        self._write_onnx_file(clf, dk)
        dk.data["onnx"] = {
            "parity_max_abs_diff": parity,
            "best_iteration": clf.best_iteration,
            "calibration": [clf.calibration.a, clf.calibration.b],
            "train_rows": len(train), "early_stopping_rows": len(early),
            "held_out_rows": len(held_out), "purged_per_split": gap,
            "held_out_scores": judged.scores.as_dict() if judged.scores else None,
            "di_dropped_test_rows": di_dropped, "skill_check_needs_rows": needed_rows(horizon),
            "detectable_auc": detectable_auc(len(held_out), horizon, float(train.y.mean())),
        }
        if judged.scores:
            verdict = f"held-out Brier skill {judged.scores.brier_skill:.4f}"
        else:
            verdict = (f"not judged: {len(held_out)} held-out rows, the check needs "
                       f"{needed_rows(horizon)} (10 label horizons)")
        detectable = dk.data["onnx"]["detectable_auc"]
        power = (f"can only tell an AUC above {detectable:.2f} from none (one-sided 95 %)"
                 if np.isfinite(detectable) else
                 "hold less than one finished trade of each outcome: no AUC can be told from "
                 "none (a label horizon this long needs a longer train_period_days)")
        logger.info(
            "%s: ONNX model ready (parity %.1e, %s trees); %s -> %s. Power: the DI filter "
            "(DI_threshold) dropped %d of %d test rows; %d held-out rows %s", dk.pair, parity,
            clf.best_iteration or params["n_estimators"], verdict,
            "skill" if judged.skill else f"no skill, gate uses {ml.no_skill}", di_dropped,
            len(test) + di_dropped, len(held_out), power)
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
        pred_df.insert(0, WIN_LABEL, labels)
        # The return label's prediction: the trade's expected net return by this model.
        trained = dk.data.get("extra_returns_per_train", {})
        win_p = pred_df[WIN].to_numpy()
        pred_df.insert(0, RETURN_LABEL, win_p * trained.get(MEAN_WIN, 0.0)
                       - (1.0 - win_p) * trained.get(MEAN_LOSS, 0.0))
        if "di" in dk.feature_pipeline:
            dk.DI_values = dk.feature_pipeline["di"].di_values
        else:
            dk.DI_values = np.zeros(len(outliers))
        dk.do_predict = outliers
        return pred_df, dk.do_predict
