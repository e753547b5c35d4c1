"""Fast unit tests of the pack's pure pieces: settings, sizing, gate, indicators, synthetic."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hybrid_ai import gates
from hybrid_ai.indicators import add_ta_indicators
from hybrid_ai.risk import capped_stake
from hybrid_ai.settings import HardLimits, RiskLevel, SettingsError, load_settings
from local_exchange.synthetic import generate


def test_settings_defaults_and_config_values():
    assert load_settings({}).risk_level is RiskLevel.MODERATE
    s = load_settings({"hybrid_ai": {"risk_level": "aggressive",
                                     "limits": {"max_stake_per_trade": 0.1}}})
    assert s.risk_level is RiskLevel.AGGRESSIVE and s.limits.max_stake_per_trade == 0.1
    assert s.multiplier(RiskLevel.CONSERVATIVE) == 0.5
    assert [lvl.rank for lvl in RiskLevel] == [0, 1, 2]


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"risk_level": "yolo"}, "hybrid_ai.risk_level"),
        ({"limits": {"max_total_exposure": 1.5}}, "hybrid_ai.limits.max_total_exposure"),
        ({"limits": {"max_stake": 0.1}}, "hybrid_ai.limits.max_stake"),
        ({"stake_multipliers": {"moderate": 1.0}}, "lacks risk levels"),
        ({"stake_multipliers": {"conservative": 2, "moderate": 1, "aggressive": 1.5}},
         "stake_multipliers must not loosen"),
        ({"oracle": {"max_open_trades": {"conservative": 2, "moderate": 3}}},
         "max_open_trades lacks risk levels"),
        ({"oracle": {"max_open_trades": {"conservative": 5, "moderate": 3, "aggressive": 4}}},
         "max_open_trades must not loosen"),
        ({"ml": {"ev_margin": {"conservative": 0.0, "moderate": 0.002,
                               "aggressive": 0.0}}}, "ev_margin must not"),
        ({"oracle": {"grace": 5}}, "hybrid_ai.oracle.grace"),
        ({"oracle": {"overnight_at": "25:00"}}, "not HH:MM"),
    ],
)
def test_bad_settings_name_the_key_to_fix(section, fragment):
    with pytest.raises(SettingsError, match=fragment.replace(".", r"\.")):
        load_settings({"hybrid_ai": section})


def test_settings_unknown_oracle_keys_are_refused():
    from llm_oracle.settings import OracleSettingsError, load_oracle_settings

    with pytest.raises(OracleSettingsError, match=r"llm_oracle\.grace_minutes"):
        load_oracle_settings({"llm_oracle": {"grace_minutes": 30}})  # nothing read it


def test_continual_learning_is_refused(tmp_path):
    from lab.ml_offline import load_config, model_class

    config = load_config(tmp_path, "cl-test")
    config["freqai"]["continual_learning"] = True
    from freqtrade.exceptions import OperationalException

    with pytest.raises(OperationalException, match="continual_learning"):
        model_class()(config=config)


LIMITS = HardLimits(max_stake_per_trade=0.25, max_total_exposure=0.9)


def test_stake_scales_with_the_multiplier():
    assert capped_stake(100, 0.5, 1000, 0, LIMITS, 5, 1000) == 50
    assert capped_stake(100, 1.0, 1000, 0, LIMITS, 5, 1000) == 100


def test_stake_never_exceeds_the_hard_caps():
    assert capped_stake(400, 1.5, 1000, 0, LIMITS, 5, 1000) == 250  # per-trade cap
    assert capped_stake(200, 1.0, 1000, 800, LIMITS, 5, 1000) == 100  # exposure room
    assert capped_stake(200, 1.0, 1000, 0, LIMITS, 5, 120) == 120  # freqtrade's max


def test_no_stake_when_nothing_fits():
    assert capped_stake(200, 1.0, 1000, 900, LIMITS, 5, 1000) == 0.0  # exposure full
    assert capped_stake(4, 1.0, 1000, 0, LIMITS, 5, 1000) == 0.0  # below exchange minimum
    assert capped_stake(100, 0.0, 1000, 0, LIMITS, None, 1000) == 0.0


def test_gate_is_the_and_of_layer_columns():
    df = pd.DataFrame({"close": [1, 2, 3, 4]})
    assert gates.approve(df)[gates.APPROVED].all() and gates.entry_tag(df) == "ta"
    df["gate_ml"] = [True, True, False, np.nan]
    df["gate_oracle"] = [True, False, True, True]
    assert gates.approve(df)[gates.APPROVED].tolist() == [True, False, False, False]
    assert gates.entry_tag(df) == "ta+ml+oracle"


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return generate(days=5, seed=1)["BTC/USDT"]


def test_indicators_use_no_future_candles(candles):
    full = add_ta_indicators(candles.copy())
    cut = add_ta_indicators(candles.iloc[:1000].copy())
    cols = ["rsi", "macd", "macdsignal", "sma20", "sma50", "bb_upperband", "atr", "volume_ratio"]
    pd.testing.assert_frame_equal(full.loc[:999, cols], cut[cols])


def test_macd_crossings_match_the_lines(candles):
    df = add_ta_indicators(candles.copy())
    up = df.index[df["macd_cross_up"]]
    assert len(up) > 5
    for i in up:
        assert df.at[i, "macd"] > df.at[i, "macdsignal"]
        assert df.at[i - 1, "macd"] <= df.at[i - 1, "macdsignal"]


def test_bollinger_and_rsi_ranges(candles):
    df = add_ta_indicators(candles.copy()).dropna()
    assert ((df["rsi"] >= 0) & (df["rsi"] <= 100)).all()
    assert (df["bb_lowerband"] <= df["bb_middleband"]).all()
    assert np.allclose(df["bb_middleband"], df["sma20"])


def test_synthetic_market_is_reproducible_and_correlated():
    a, b = generate(days=20, seed=3), generate(days=20, seed=3)
    for pair in a:
        pd.testing.assert_frame_equal(a[pair], b[pair])
    assert not generate(days=20, seed=4)["BTC/USDT"].equals(a["BTC/USDT"])
    btc = np.log(a["BTC/USDT"]["close"]).diff()
    eth = np.log(a["ETH/USDT"]["close"]).diff()
    assert 0.4 < btc.corr(eth) < 0.95
    df = a["SOL/USDT"]
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df["date"].diff().dropna() == pd.Timedelta(minutes=5)).all()


@pytest.mark.parametrize("family", ["oversold_recovery", "breakout", "pullback"])
def test_entry_families_fire_and_use_no_future_candles(candles, family):
    from hybrid_ai import entries

    params = {"rsi_level": 40, "pullback_rsi": 50, "lookback": 12, "macd_window": 3,
              "volume_ratio": 0.5}
    full = entries.signal(add_ta_indicators(candles.copy()), family, **params)
    cut = entries.signal(add_ta_indicators(candles.iloc[:1000].copy()), family, **params)
    assert full.iloc[:1000].equals(cut)
    assert 0 < full.sum() < len(full) / 5  # it proposes trades, not every candle


def test_the_trend_family_is_the_wide_candidate_set(candles):
    from hybrid_ai import entries

    df = add_ta_indicators(candles.copy())
    wide = entries.signal(df, "trend", rsi_level=40, pullback_rsi=50, lookback=12,
                          macd_window=3, volume_ratio=0.5)
    narrow = entries.signal(df, "oversold_recovery", rsi_level=40, pullback_rsi=50,
                            lookback=12, macd_window=3, volume_ratio=0.5)
    assert (narrow <= wide).all()  # every technical entry is a candidate, and many more
    assert wide.sum() > 5 * narrow.sum()


def test_a_report_variant_runs_a_strategy_copy_with_its_parameters(tmp_path):
    import json

    from lab.ablation import WIDE, strategy_copy

    path = strategy_copy(tmp_path, WIDE)
    assert (path / "HybridAIStrategy.py").read_text().startswith("# pragma")
    saved = json.loads((path / "HybridAIStrategy.json").read_text())
    assert saved["strategy_name"] == "HybridAIStrategy" and saved["params"] == WIDE


def test_an_unknown_entry_family_names_the_choices(candles):
    from hybrid_ai import entries

    with pytest.raises(ValueError, match="oversold_recovery"):
        entries.signal(add_ta_indicators(candles.copy()), "moonshot", rsi_level=30,
                       pullback_rsi=45, lookback=12, macd_window=3, volume_ratio=1.0)


def test_a_cut_leaves_a_sellable_rest_or_takes_the_whole_position():
    from hybrid_ai.exits import sellable_cut

    assert sellable_cut(50, 100, 5.83, shrink=True).amount == 50  # both halves sellable
    assert sellable_cut(50, 100, None, shrink=True).amount == 50  # no minimum known
    whole = sellable_cut(5.2, 10.4, 5.83, shrink=True)  # a 10 USDT stake at +4 %
    assert whole.whole and whole.fraction == 1.0 and "below the exchange minimum" in whole.why
    shrunk = sellable_cut(6.1, 12.0, 5.83, shrink=True)  # rest 5.90 < 5.83 + 2 % head-room
    assert not shrunk.whole and shrunk.amount == pytest.approx(12.0 - 5.83 * 1.02)
    assert 12.0 - shrunk.amount >= 5.83 and shrunk.amount >= 5.83
    trim = sellable_cut(6.1, 12.0, 5.83, shrink=False)  # a trim never keeps more than asked
    assert trim.whole
    assert sellable_cut(3.0, 100, 5.83, shrink=False) is None  # the cut itself too small
    assert sellable_cut(0.0, 100, 5.83, shrink=True) is None


def test_a_refused_stake_says_which_limit_and_what_to_change():
    from hybrid_ai.risk import StakeSizing

    tiny = StakeSizing(4.95, 1.0, 20, 0, LIMITS, 5.83, 1000)
    kind, text = tiny.refusal("USDT")
    assert tiny.stake == 0 and kind == "minimum_above_cap"
    assert "5.83 USDT is above the per-trade cap 5.00 USDT" in text and "23.32 USDT" in text
    assert StakeSizing(200, 1.0, 1000, 900, LIMITS, 5, 1000).refusal()[0] == "exposure_full"
    assert StakeSizing(4, 1.0, 1000, 0, LIMITS, 5, 1000).refusal()[0] == "below_minimum"
    assert StakeSizing(100, 0.0, 1000, 0, LIMITS, None, 1000).refusal()[0] == "no_size"
    assert StakeSizing(100, 1.0, 1000, 0, LIMITS, 5, 1000).refusal() is None


def test_an_identifier_folder_built_with_other_inputs_is_refused_or_rebuilt(tmp_path):
    """FreqAI would reuse whatever lies under models/<identifier>; the model compares what
    shaped it with today's inputs first."""
    import copy

    from freqtrade.exceptions import OperationalException

    from lab.ml_offline import load_config, model_class, strategy

    config = load_config(tmp_path, "inputs-test")
    folder = tmp_path / "models" / "inputs-test"
    model_class()(config=copy.deepcopy(config))._check_saved_inputs(strategy(config))
    record = json.loads((folder / "hybrid_ai_inputs.json").read_text())
    assert {"model and label code", "strategy source", "exit rules (the label)",
            "freqai.train_period_days", "freqtrade version"} <= set(record)
    (folder / "sub-train-BTC_1709251200").mkdir()  # a model saved under those inputs
    model_class()(config=copy.deepcopy(config))._check_saved_inputs(strategy(config))  # same

    changed = copy.deepcopy(config)
    changed["freqai"]["train_period_days"] = 30
    changed["freqai"]["feature_parameters"]["DI_threshold"] = 0.5
    with pytest.raises(OperationalException, match=r"changed: freqai.feature_parameters, "
                                                   r"freqai.train_period_days\)"):
        model_class()(config=copy.deepcopy(changed))._check_saved_inputs(strategy(changed))
    assert (folder / "sub-train-BTC_1709251200").exists()  # refused: nothing deleted

    changed["hybrid_ai"]["ml"]["stale_models"] = "rebuild"
    model_class()(config=copy.deepcopy(changed))._check_saved_inputs(strategy(changed))
    assert not (folder / "sub-train-BTC_1709251200").exists()  # deleted, to be retrained
    assert json.loads((folder / "hybrid_ai_inputs.json").read_text()) != record

    (folder / "hybrid_ai_inputs.json").unlink()  # results from before records existed
    (folder / "sub-train-ETH_1709251200").mkdir()
    with pytest.raises(OperationalException, match="without a record of their inputs"):
        model_class()(config=copy.deepcopy(config))._check_saved_inputs(strategy(config))
