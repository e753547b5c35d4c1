"""Train and load a LightGBMOnnxClassifier outside a running bot.

For benchmarks, tests and inspection: the same FreqAI objects a bot uses (config loaded by
freqtrade, data kitchen, data drawer, pipeline), driven directly on one feature frame.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from freqtrade.configuration import setup_utils_configuration
from freqtrade.enums import RunMode
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen

from hybrid_ai.ml import features as ml_features
from lab.project import PACK_CONFIGS, REPO, Preset

MODEL_FILE = REPO / "freqaimodels" / "LightGBMOnnxClassifier.py"


def model_module() -> Any:
    """The FreqAI model's module, loaded from its file as freqtrade's resolver does."""
    spec = importlib.util.spec_from_file_location("LightGBMOnnxClassifier", MODEL_FILE)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def model_class() -> type:
    """The FreqAI model class (``LightGBMOnnxClassifier``)."""
    return model_module().LightGBMOnnxClassifier


def load_config(userdir: Path, identifier: str, training: dict[str, Any] | None = None,
                preset: Preset | None = None) -> dict[str, Any]:
    """config.json (and ``preset``'s overlay) as freqtrade loads it, FreqAI pointed at
    ``userdir``/models/``identifier``."""
    configs = [*map(str, PACK_CONFIGS), *([str(preset.config_file)] if preset else [])]
    config = setup_utils_configuration(
        {"config": configs, "user_data_dir": str(userdir), "timerange": "20240101-20240201"},
        RunMode.BACKTEST,
    )
    config["freqai"]["identifier"] = identifier
    if training:
        config["freqai"]["model_training_parameters"].update(training)
    (Path(userdir) / "models" / identifier).mkdir(parents=True, exist_ok=True)
    return config


def strategy(config: dict[str, Any] | None = None,
             params: dict[str, dict[str, Any]] | None = None,
             minimal_roi: dict[str, float] | None = None,
             preset: Preset | None = None) -> Any:
    """The configured strategy, loaded as freqtrade loads it (its exits define the label),
    with hyperopt ``params`` (by space, as a variant's parameter file) and ``minimal_roi``
    (its time exit: the label's horizon) set on it; a ``preset`` sets both, and its config
    overlay is loaded too."""
    from freqtrade.resolvers import StrategyResolver

    if preset is not None:
        params, minimal_roi = {**preset.params, **(params or {})}, minimal_roi or preset.roi
    if config is None:
        configs = [*map(str, PACK_CONFIGS), *([str(preset.config_file)] if preset else [])]
        config = setup_utils_configuration(
            {"config": configs, "timerange": "20240101-20240201"}, RunMode.BACKTEST)
    strat = StrategyResolver.load_strategy(config)
    for values in (params or {}).values():
        for name, value in values.items():
            getattr(strat, name).value = value
    if minimal_roi is not None:
        strat.minimal_roi = minimal_roi
    if config.get("freqai", {}).get("enabled"):
        strat.pack.label_horizon()  # as the bot's start sets it (its time exit, if unset)
    return strat


def feature_frame(candles: pd.DataFrame, periods: tuple[int, ...] = (14, 48),
                  strat: Any = None) -> pd.DataFrame:
    """One pair's base-timeframe features and targets, as FreqAI's hooks would build them
    (the targets with ``strat``'s exits, by default the configured strategy's)."""
    strat = strat or strategy()
    df = candles.copy()
    for period in periods:
        expanded = ml_features.expand_all(candles.copy(), period)
        new = [c for c in expanded.columns if c.startswith("%")]
        df = pd.concat([df, expanded[new].add_suffix(f"_{period}")], axis=1)
    df = ml_features.expand_basic(df)
    df = ml_features.standard(df)
    df = ml_features.targets(df, strat.exit_rules(), strat.technical_exit(candles))
    return df.iloc[max(periods) * 3:].reset_index(drop=True)


@dataclass
class Trained:
    model: Any  # LightGBMOnnxClassifier with .model set
    dk: FreqaiDataKitchen
    config: dict[str, Any]


def train(config: dict[str, Any], frame: pd.DataFrame, pair: str) -> Trained:
    """Run FreqAI's train() (pipeline, fit, ONNX export, parity) and save like a bot does.

    The training window is ``frame``, whatever its length: ``train_period_days`` is set to
    its whole days, so the model's coverage check sees a full window."""
    span = frame["date"].iloc[-1] - frame["date"].iloc[0]
    config = {**config, "freqai": {**config["freqai"], "train_period_days": max(1, span.days)}}
    model = model_class()(config=config)
    dk = FreqaiDataKitchen(config, live=False, pair=pair)
    ts = int(frame["date"].iloc[-1].timestamp())
    dk.set_paths(pair, ts)
    dk.set_new_model_names(pair, ts)
    dk.find_features(frame)
    dk.find_labels(frame)
    dk.get_unique_classes_from_labels(frame)
    clf = model.train(frame, pair, dk)
    model.dd.get_pair_dict_info(pair)  # registers the pair, as FreqAI does before training
    model.dd.save_data(clf, pair, dk)
    model.model = clf
    return Trained(model, dk, config)


def load_live(config: dict[str, Any], pair: str) -> Trained:
    """A fresh model object that loads the saved model from disk, as a restarted bot does."""
    model = model_class()(config=config)
    dk = FreqaiDataKitchen(config, live=True, pair=pair)
    model.model = model.dd.load_data(pair, dk)
    return Trained(model, dk, config)
