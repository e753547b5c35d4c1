"""ML layer: ONNX export and serving, FreqAI train/save/load round trip, features, gate."""

from __future__ import annotations

import pickle
from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnx
import pandas as pd
import pytest

from hybrid_ai.ml import features as ml_features
from hybrid_ai.ml.onnx_model import (
    Calibration,
    OnnxClassifier,
    OnnxModelError,
    check_parity,
    export_lightgbm,
)
from hybrid_ai.ml.signals import RISK_RANK, add_ml_columns, ml_exit_signal
from hybrid_ai.settings import MLSettings, SettingsError, load_settings
from lab import ml_offline
from lab.project import OVERSOLD_PRESET
from local_exchange.synthetic import generate

PAIR = "BTC/USDT"


@pytest.fixture(scope="module")
def toy() -> tuple[lgb.LGBMClassifier, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 30)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=1.0, size=4000) > 0.6).astype(int)
    model = lgb.LGBMClassifier(n_estimators=200, num_leaves=31, verbose=-1, random_state=1)
    model.fit(x[:3000], y[:3000])
    return model, x, y


def onnx_of(model, n=30) -> OnnxClassifier:
    return OnnxClassifier(export_lightgbm(model, n), np.array(["loss", "win"], dtype=object),
                          [f"%-f{i}" for i in range(n)])


def test_onnx_matches_lightgbm_on_held_out_rows(toy):
    model, x, _ = toy
    clf = onnx_of(model)
    assert check_parity(model, clf, x[3000:]) <= 1e-5
    native = model.predict_proba(x[3000:])
    assert np.allclose(clf.predict_proba(x[3000:]), native, atol=1e-5)
    assert list(clf.predict(x[3000:3005])) == ["win" if p > 0.5 else "loss"
                                               for p in native[:5, 1]]


def test_export_is_exact_when_thresholds_fall_between_float32_neighbours():
    # Prices like XRP's 0.6 move in steps near float32 resolution: LightGBM's double
    # thresholds then sit between two adjacent float32 values. A plain ONNX export rounds
    # them to float32 and flips those splits; the float32-safe export does not.
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    rng = np.random.default_rng(0)
    base = np.float32(0.6)
    level = (base + np.arange(2000) * np.spacing(base)).astype(np.float32)
    x = np.stack([level, rng.normal(size=2000).astype(np.float32)], axis=1)
    rng.shuffle(x)
    y = (x[:, 0] > level[1000]).astype(int)
    model = lgb.LGBMClassifier(n_estimators=20, min_child_samples=5, verbose=-1).fit(x, y)
    plain = convert_lightgbm(model, initial_types=[("input", FloatTensorType([None, 2]))],
                             zipmap=False, target_opset=15).SerializeToString()
    names = np.array(["down", "up"], dtype=object)
    plain_delta = np.abs(OnnxClassifier(plain, names, ["a", "b"]).raw_proba(x)
                         - model.predict_proba(x)).max()
    assert plain_delta > 0.1  # the problem is real
    assert check_parity(model, OnnxClassifier(export_lightgbm(model, 2), names, ["a", "b"]),
                        x) <= 1e-6


def test_parity_check_refuses_a_wrong_export(toy):
    model, x, y = toy
    other = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(x[:3000], 1 - y[:3000])
    with pytest.raises(OnnxModelError, match="refusing the ONNX model"):
        check_parity(model, onnx_of(other), x[3000:])


def test_pickle_round_trip_rebuilds_the_session(toy):
    model, x, _ = toy
    clf = onnx_of(model)
    before = clf.predict_proba(x[:50])
    restored = pickle.loads(pickle.dumps(clf))
    assert restored._session is None
    assert np.array_equal(restored.predict_proba(x[:50]), before)


def test_corrupt_payload_and_wrong_shape_are_clear_errors(toy):
    model, x, _ = toy
    bad = onnx_of(model)
    bad.onnx_bytes = b"definitely not a protobuf"
    with pytest.raises(OnnxModelError, match="corrupt"):
        bad.predict_proba(x[:2])
    with pytest.raises(OnnxModelError, match="takes 30 features"):
        onnx_of(model).predict_proba(x[:2, :10])
    empty = onnx_of(model)
    empty.onnx_bytes = b""
    with pytest.raises(OnnxModelError, match="no ONNX payload"):
        empty.predict_proba(x[:2])


def test_calibration_improves_brier_score():
    rng = np.random.default_rng(3)
    true_p = rng.uniform(0.05, 0.6, size=5000)
    y = (rng.uniform(size=5000) < true_p).astype(int)
    overconfident = 1 / (1 + np.exp(-3 * np.log(true_p / (1 - true_p)) - 1.0))
    cal = Calibration.fit(overconfident[:2500], y[:2500])
    brier_raw = np.mean((overconfident[2500:] - y[2500:]) ** 2)
    brier_cal = np.mean((cal.apply(overconfident[2500:]) - y[2500:]) ** 2)
    assert brier_cal < brier_raw * 0.9
    assert Calibration.fit(np.full(10, 0.5), np.zeros(10, dtype=int)).apply(np.array([0.3])) == 0.3


# --- features and target --------------------------------------------------------------
@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return generate(days=20, seed=5)[PAIR]


def test_features_use_no_future_candles(candles):
    def feats(df):
        df = ml_features.expand_all(df.copy(), 14)
        df = ml_features.expand_basic(df)
        return ml_features.standard(df)

    full, cut = feats(candles), feats(candles.iloc[:3000])
    cols = [c for c in full.columns if c.startswith("%")]
    assert len(cols) >= 15
    pd.testing.assert_frame_equal(full.loc[:2999, cols], cut[cols])


# --- the gate ----------------------------------------------------------------------------
def gate_frame(risk_rank: int, skill: float = 1.0, base_rate: float = 0.5) -> pd.DataFrame:
    probs = np.linspace(0.2, 0.8, 61)
    return pd.DataFrame({"win": probs, "loss": 1 - probs, "do_predict": 1, "DI_values": 0.2,
                         RISK_RANK: risk_rank, "ml_skill": skill, "ml_base_rate": base_rate,
                         "ml_mean_win": 0.02, "ml_mean_loss": 0.02})


def gated(df: pd.DataFrame, ml: MLSettings | None = None) -> pd.DataFrame:
    return add_ml_columns(df, ml or MLSettings(), 1.0, max_stake=0.25)


def test_ml_gate_is_expected_value_above_a_margin_that_widens_when_conservative():
    passed = [gated(gate_frame(r))["gate_ml"].sum() for r in (0, 1, 2)]
    assert passed[0] < passed[1] < passed[2]  # conservative < moderate < aggressive
    df = gated(gate_frame(1))
    ev = df["ml_buy_prob"] * 0.02 - (1 - df["ml_buy_prob"]) * 0.02
    assert np.allclose(df["ml_expected_return"], ev)
    assert (df.loc[df["gate_ml"], "ml_expected_return"] > 0.002).all()  # moderate margin
    assert (df.loc[~df["gate_ml"], "ml_expected_return"] <= 0.002).all()
    assert (df.loc[~df["gate_ml"], "ml_target_position"] == 0).all()


def test_target_position_is_a_capped_fractional_kelly_of_the_edge():
    df = gated(gate_frame(2))
    pos = df.loc[df["gate_ml"], "ml_target_position"]
    assert pos.is_monotonic_increasing and pos.min() > 0 and pos.max() == 1.0
    # p = 0.505, win = loss = 2 %: edge 0.0002, Kelly share edge / (W x L) = 0.5 of equity;
    # a quarter of it is 0.125 of equity = half the allowed stake (25 % of equity).
    row = gated(gate_frame(2).assign(win=0.505, loss=0.495)).iloc[0]
    assert row["ml_target_position"] == pytest.approx(0.25 * (0.0002 / 0.0004) / 0.25)
    small = MLSettings(kelly_fraction=0.1)
    assert gated(gate_frame(2).assign(win=0.505, loss=0.495), small).iloc[0][
        "ml_target_position"] == pytest.approx(0.2)


def test_without_skill_the_gate_uses_the_base_rate_or_closes():
    # The model's probabilities vary, but it showed no skill on its held-out rows.
    prior = gated(gate_frame(1, skill=0.0, base_rate=0.6))
    assert (prior["ml_buy_prob"] == 0.6).all()  # the base rate, whatever the model says
    assert prior["gate_ml"].all()  # 0.6 x 2 % - 0.4 x 2 % = 0.4 % > the 0.2 % margin
    assert not prior["ml_rescores"].any()  # and it never judges open trades
    losing = gated(gate_frame(1, skill=0.0, base_rate=0.5))
    assert not losing["gate_ml"].any()
    closed = gated(gate_frame(1, skill=0.0, base_rate=0.6), MLSettings(no_skill="closed"))
    assert not closed["gate_ml"].any() and closed["ml_buy_prob"].isna().all()


def test_ml_exit_fires_below_minus_the_band_with_a_skilled_model_only():
    df = gated(gate_frame(1))
    exits = ml_exit_signal(df, band=0.005)
    assert (exits == (df["ml_expected_return"] < -0.005)).all() and exits.any()
    # hysteresis: no candle both enters and exits, and a band of 0.005 leaves a hold zone
    assert not (exits & df["gate_ml"]).any()
    hold = ~exits & ~df["gate_ml"]
    assert hold.sum() > 0
    assert not ml_exit_signal(gated(gate_frame(1, skill=0.0)), band=0.005).any()
    unpredicted = gate_frame(1)
    unpredicted[["win", "loss"]] = 0.0
    assert not ml_exit_signal(gated(unpredicted), band=0.005).any()


def test_do_predict_zero_closes_gate_and_zeroes_confidence():
    df = gate_frame(2)
    df.loc[40:, "do_predict"] = 0
    out = gated(df)
    assert not out.loc[40:, "gate_ml"].any()
    assert (out.loc[40:, "ml_confidence"] == 0).all()
    assert not ml_exit_signal(out, band=0.0).loc[40:].any()
    # A dissimilar candle (DI near the threshold) has little confidence.
    df2 = gate_frame(2)
    df2["DI_values"] = 0.95
    assert gated(df2)["ml_confidence"].max() < 0.05


def test_a_candle_without_prediction_is_a_gap_and_a_closed_gate_not_a_zero():
    df = gate_frame(2)
    df.loc[10:19, ["win", "loss", "DI_values"]] = 0.0  # FreqAI's fill for unpredicted rows
    df.loc[10:19, "do_predict"] = 0
    out = gated(df)
    missing = out.loc[10:19]
    assert missing["ml_buy_prob"].isna().all() and missing["ml_confidence"].isna().all()
    assert missing["ml_expected_return"].isna().all()
    assert not missing["gate_ml"].any() and not missing["ml_predicted"].any()
    assert out.loc[40:, "ml_predicted"].all() and out.loc[40:, "gate_ml"].any()


def test_ml_settings_refuse_loosening_margins():
    with pytest.raises(SettingsError, match="conservative >= moderate >= aggressive"):
        load_settings({"hybrid_ai": {"ml": {"ev_margin": {
            "conservative": 0.0, "moderate": 0.002, "aggressive": 0.0}}}})


# --- FreqAI: train, save, load, predict ----------------------------------------------------
# A day's label horizon (the oversold preset): 20 days of candles hold held-out rows for it,
# not for the shipped week.
@pytest.fixture(scope="module")
def feature_frame(candles) -> pd.DataFrame:
    return ml_offline.feature_frame(candles, periods=(14,),
                                    strat=ml_offline.strategy(preset=OVERSOLD_PRESET))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, feature_frame):
    config = ml_offline.load_config(tmp_path_factory.mktemp("freqai_ud"), "unit",
                                    preset=OVERSOLD_PRESET)
    t = ml_offline.train(config, feature_frame, PAIR)
    return t.model, t.dk, t.model.model


def test_train_writes_an_onnx_file_standard_tools_accept(trained):
    _, dk, clf = trained
    path = Path(dk.data_path) / f"{dk.model_filename}_model.onnx"
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    assert path.read_bytes() == clf.onnx_bytes
    assert dk.data["onnx"]["parity_max_abs_diff"] <= 1e-5
    info = dk.data["onnx"]
    assert info["train_rows"] > 0 and info["held_out_rows"] > 0 and info["early_stopping_rows"]
    # every split loses its last label horizon + 1 + embargo rows (label period 288)
    assert info["purged_per_split"] == 288 + 1 + 12
    trained_values = dk.data["extra_returns_per_train"]
    assert set(trained_values) == {"ml_skill", "ml_base_rate", "ml_mean_win", "ml_mean_loss"}
    assert trained_values["ml_mean_win"] > 0 and trained_values["ml_mean_loss"] > 0
    assert 0 < trained_values["ml_base_rate"] < 1
    # 20 days of candles leave far fewer held-out rows than ten 1-day label horizons:
    # no skill is claimed on them
    assert trained_values["ml_skill"] == 0.0 and info["held_out_scores"] is None
    # ... and the metadata says why, with the check's power and what the DI filter took
    assert info["skill_check_needs_rows"] == 10 * 289 > info["held_out_rows"]
    assert info["detectable_auc"] > 0.8 and info["di_dropped_test_rows"] >= 0


def test_the_skill_checks_power_follows_the_independent_outcomes():
    from hybrid_ai.ml.skill import detectable_auc, needed_rows

    assert needed_rows(288) == 2890 and needed_rows(0) == 200
    # ten independent 1-day outcomes can only notice a huge edge; a year of them a real one
    assert detectable_auc(2890, 288, 0.5) == pytest.approx(0.5 + 1.645 * (11 / 300) ** 0.5)
    assert detectable_auc(365 * 289, 288, 0.5) < 0.55 < detectable_auc(60 * 289, 288, 0.5)
    assert np.isnan(detectable_auc(289, 288, 0.5))  # one outcome: one class is empty


def test_save_load_round_trip_through_the_data_drawer(trained, feature_frame):
    model, dk, _ = trained
    tail = feature_frame.tail(300).reset_index(drop=True)
    expected, expected_do = model.predict(tail, dk)

    live = ml_offline.load_live(model.config, PAIR)  # a new object reads the drawer from disk
    assert isinstance(live.model.model, OnnxClassifier)
    got, got_do = live.model.predict(tail, live.dk)
    pd.testing.assert_frame_equal(got, expected)
    assert np.array_equal(got_do, expected_do)
    assert got["win"].between(0, 1).all()
    assert np.allclose(got["win"] + got["loss"], 1.0)
    values = live.dk.data["extra_returns_per_train"]  # restored from the saved metadata
    assert np.allclose(got["&-trade_return"], got["win"] * values["ml_mean_win"]
                       - got["loss"] * values["ml_mean_loss"])


def test_predict_names_pair_and_missing_features(trained, feature_frame):
    model, dk, _ = trained
    broken = feature_frame.tail(50).drop(columns=["%-rsi-period_14", "%-adx-period_14"])
    with pytest.raises(OnnxModelError, match=r"BTC/USDT.*%-rsi-period_14"):
        model.predict(broken, dk)


def test_predict_refuses_a_model_that_is_not_onnx(trained, feature_frame):
    model, dk, _ = trained
    impostor = ml_offline.model_class()(config=model.config)
    impostor.model = lgb.LGBMClassifier()
    with pytest.raises(OnnxModelError, match="not an ONNX model"):
        impostor.predict(feature_frame.tail(5), dk)
