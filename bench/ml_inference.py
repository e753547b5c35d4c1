"""ML-layer inference speed: ONNX Runtime against FreqAI's stock LightGBMClassifier path.

One model (300 trees, the pack's features on real or synthetic BTC candles) trained once
through FreqAI; then, in the same run:
  (a) single-candle latency: onnxruntime vs the stock path (sklearn predict + predict_proba,
      what FreqAI's BaseClassifierModel.predict calls) vs LightGBM's native booster;
  (b) batch throughput over one backtest week of 5m candles;
  (c) FreqAI's full live predict for one pair (features, pipeline with DI, model) with
      LightGBMOnnxClassifier vs freqtrade's stock LightGBMClassifier on the same pipeline;
  model file sizes (ONNX vs FreqAI's pickled LightGBM).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import cloudpickle
import lightgbm as lgb
import numpy as np
from freqtrade.data.history import load_pair_history
from freqtrade.freqai.prediction_models.LightGBMClassifier import LightGBMClassifier

from bench.common import Results, median_seconds
from hybrid_ai.ml.features import WIN, WIN_LABEL
from hybrid_ai.ml.onnx_model import export_lightgbm
from lab import ml_offline
from lab.project import shared_data
from local_exchange.synthetic import generate

PAIR = "BTC/USDT"
TREES = 300
BACKTEST_WEEK = 7 * 288


def candles():
    datadir = shared_data()
    if datadir is not None:
        return load_pair_history(pair=PAIR, timeframe="5m", datadir=datadir).tail(40 * 288), "real"
    return generate(days=40, seed=42)[PAIR], "synthetic"


def run(results: Results, quick: bool = False) -> None:
    repeats = 300 if quick else 2000
    frame_all, label = candles()
    frame = ml_offline.feature_frame(frame_all.reset_index(drop=True))
    train_rows = frame.iloc[: 30 * 288]
    with tempfile.TemporaryDirectory() as tmp:
        config = ml_offline.load_config(
            Path(tmp), "bench",
            training={"n_estimators": TREES, "early_stopping_rounds": 10**9},
        )
        t = ml_offline.train(config, train_rows, PAIR)
        clf, dk = t.model.model, t.dk
        features = dk.feature_pipeline.transform(
            dk.filter_features(frame, dk.training_features_list, training_filter=False)[0],
            outlier_check=True,
        )[0].to_numpy(dtype=np.float32)
        x_train = dk.data_dictionary["train_features"].to_numpy(dtype=np.float32)
        y_train = (dk.data_dictionary["train_labels"][WIN_LABEL] == WIN).to_numpy(int)

        # One LightGBM model in three forms: ONNX, sklearn API (FreqAI's stock path), native.
        sk = lgb.LGBMClassifier(n_estimators=TREES, learning_rate=0.05, num_leaves=31,
                                min_child_samples=50, random_state=42, verbose=-1, n_jobs=1,
                                deterministic=True, force_row_wise=True)
        sk.fit(x_train, y_train)
        same_trees = type(clf)(export_lightgbm(sk, x_train.shape[1]), clf.classes_,
                               clf.feature_names, threads=1)
        booster = sk.booster_
        one = features[-1:]

        onnx_s = median_seconds(lambda: same_trees.predict_proba(one), repeats, warmup=20)
        stock_s = median_seconds(lambda: (sk.predict(one), sk.predict_proba(one)), repeats,
                                 warmup=20)
        native_s = median_seconds(lambda: booster.predict(one, num_threads=1), repeats, warmup=20)
        results.add("ml_single_predict_onnx_vs_stock_us", onnx_s * 1e6, "us", stock_s * 1e6,
                    f"{TREES} trees, {one.shape[1]} features, {label} BTC; stock = sklearn "
                    "predict + predict_proba")
        results.add("ml_single_predict_onnx_vs_native_us", onnx_s * 1e6, "us", native_s * 1e6,
                    "native = LightGBM Booster.predict, 1 thread")

        week = features[-BACKTEST_WEEK:]
        batches = 5 if quick else 20
        onnx_batch = median_seconds(lambda: same_trees.predict_proba(week), batches, warmup=5)
        sk_batch = median_seconds(lambda: sk.predict_proba(week), batches, warmup=5)
        results.add("ml_batch_rows_per_s_onnx_vs_stock", len(week) / onnx_batch, "rows/s",
                    len(week) / sk_batch, f"one backtest week ({len(week)} candles)")

        # (c) FreqAI's live predict: the last candle through pipeline + model.
        t.model.model = same_trees
        live_row = frame.tail(1).reset_index(drop=True)
        ours = median_seconds(lambda: t.model.predict(live_row, dk), repeats // 4, warmup=20)
        stock_model = LightGBMClassifier(config=config)
        stock_model.model = sk
        stock_dk = copy.copy(dk)  # the stock model predicts one label column (the class)
        stock_dk.label_list = [WIN_LABEL]
        stock = median_seconds(lambda: stock_model.predict(live_row, stock_dk), repeats // 4,
                               warmup=20)
        results.add("ml_freqai_live_predict_ms", ours * 1e3, "ms", stock * 1e3,
                    "one pair, one candle: features filter + pipeline (sampled DI) + model; "
                    "baseline = freqtrade's LightGBMClassifier, same pipeline")

        results.add("ml_model_bytes_onnx_vs_pickle", len(same_trees.onnx_bytes), "bytes",
                    len(cloudpickle.dumps(sk)), f"{TREES} trees")
