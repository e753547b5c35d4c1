"""The saved-model guard: what shaped a model, and which change marks saved models stale.

Real code paths throughout: the pack's own files (copied when edited), freqtrade's config
and the strategy as freqtrade loads them, ``hybrid_ai.ml.guard`` on a models folder.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from freqtrade.exceptions import OperationalException

from hybrid_ai import fingerprint
from hybrid_ai.ml import compat, guard
from lab import ml_offline

REPO = guard.PACK_ROOT
MODEL_FILE = ml_offline.MODEL_FILE
STRATEGY_FILE = REPO / "strategies" / "HybridAIStrategy.py"
SAVED_MODEL = "sub-train-BTC_1709251200"


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict[str, Any]:
    return ml_offline.load_config(tmp_path_factory.mktemp("guard_ud"), "guard-test")


@pytest.fixture(scope="module")
def strat(config) -> Any:
    return ml_offline.strategy(config)


def copy_pack(dest: Path) -> Path:
    """The pack's packages, the FreqAI model and the strategies, copied under ``dest``."""
    for name in (*guard.PACKAGES, "freqaimodels", "strategies"):
        shutil.copytree(REPO / name, dest / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def saved_folder(tmp_path: Path, inputs: fingerprint.Inputs) -> Path:
    """A models folder holding one model saved under ``inputs``."""
    folder = tmp_path / "models" / "guard-test"
    assert guard.check(folder, inputs) is False  # a new folder: its inputs recorded
    (folder / SAVED_MODEL).mkdir()  # then FreqAI saves a model there
    return folder


def assert_refused(folder: Path, now: fingerprint.Inputs, names: list[str]) -> None:
    """Stale: refused naming ``names``, nothing deleted; then rebuilt on request."""
    with pytest.raises(OperationalException, match=re.escape(f"(changed: {', '.join(names)})")):
        guard.check(folder, now)
    assert (folder / SAVED_MODEL).exists()
    assert guard.check(folder, now, "rebuild") is True
    assert not (folder / SAVED_MODEL).exists()


# -- (a) the code a model depends on is derived from the imports ----------------------------
def label_and_feature_modules(strat: Any) -> set[Path]:
    """Where the label (the strategy's exit rules) and the features live today, and the
    module the hand-kept list missed (the trend and rank columns the label's exits read)."""
    return {Path(inspect.getfile(type(strat.exit_rules()))).resolve(),
            Path(ml_offline.ml_features.__file__).resolve(), REPO / "hybrid_ai" / "momentum.py"}


def test_the_derived_code_reaches_what_the_label_and_the_features_import(strat):
    reached = guard.code_files([MODEL_FILE, STRATEGY_FILE])
    assert label_and_feature_modules(strat) | {MODEL_FILE, STRATEGY_FILE} <= set(reached)
    assert REPO / "hybrid_ai" / "__init__.py" in reached  # packages run on the way
    assert all(p.is_relative_to(REPO) and p.suffix == ".py" for p in reached)
    names = [str(p.relative_to(REPO)) for p in reached]
    assert not any(name.startswith(("lab/", "bench/", "local_exchange/")) for name in names)


def test_imports_are_followed_through_packages_relative_imports_and_functions(tmp_path):
    """No module name is known in advance: a module moved into a subpackage, reached by a
    relative import or imported inside a function is followed all the same."""
    files = {
        "hybrid_ai/__init__.py": "",
        "hybrid_ai/oracle/__init__.py": "from .feed import Feed\n",
        "hybrid_ai/oracle/feed.py": "from ..frames import join\n\nclass Feed: ...\n",
        "hybrid_ai/frames.py": "def join():\n    from hybrid_ai import lazy\n",
        "hybrid_ai/lazy.py": "import numpy\n",
        "hybrid_ai/unused.py": "",
        "llm_oracle/schema.py": "",  # a namespace package (no __init__.py)
        "lab/tool.py": "",
        "strategies/S.py": "import numpy\nfrom hybrid_ai.oracle import Feed\n"
                           "import llm_oracle.schema\nfrom lab import tool\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    reached = guard.code_files([tmp_path / "strategies/S.py"], tmp_path)
    assert [str(p.relative_to(tmp_path)) for p in reached] == [
        "hybrid_ai/__init__.py", "hybrid_ai/frames.py", "hybrid_ai/lazy.py",
        "hybrid_ai/oracle/__init__.py", "hybrid_ai/oracle/feed.py", "llm_oracle/schema.py",
        "strategies/S.py"]


@pytest.mark.parametrize(("edited", "names"), [
    ("hybrid_ai/momentum.py", ["model and label code"]),  # the strategy's trends and ranks
    ("the label module", ["model and label code"]),
    ("the features module", ["model and label code"]),
    ("freqaimodels/LightGBMOnnxClassifier.py", ["model and label code"]),
    ("strategies/HybridAIStrategy.py", ["strategy source"]),
    ("hybrid_ai/not_imported.py", []),  # a new module nothing imports shapes nothing
])
def test_editing_a_pack_module_marks_saved_models_stale_naming_it(tmp_path, config, strat,
                                                                  edited, names):
    edited = {"the label module": inspect.getfile(type(strat.exit_rules())),
              "the features module": ml_offline.ml_features.__file__}.get(edited, edited)
    edited = str(Path(edited).resolve().relative_to(REPO)) if Path(edited).is_absolute() \
        else edited
    pack = copy_pack(tmp_path / "pack")
    model_file = pack / "freqaimodels" / MODEL_FILE.name
    strategy_files = [pack / "strategies" / STRATEGY_FILE.name]

    def now() -> fingerprint.Inputs:
        return guard.inputs(config, strat, model_file, root=pack,
                            strategy_files=strategy_files)

    reached = guard.code_files([model_file, *strategy_files], pack)
    assert pack / "hybrid_ai" / "momentum.py" in reached
    assert all(p.is_relative_to(pack) for p in reached)  # the copy, never the real tree
    before = now()
    folder = saved_folder(tmp_path, before)
    path = pack / edited
    path.write_text((path.read_text() if path.exists() else "") + "\n# an edit\n")
    after = now()
    assert fingerprint.changed(before, after) == names
    if names:
        assert_refused(folder, after, names)
    else:
        assert guard.check(folder, after) is False and (folder / SAVED_MODEL).exists()


# -- (b) what else the label or the features are made of ------------------------------------
def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        section = config
        for name in parents:
            section = section.setdefault(name, {})
        section[key] = value
    return change


@pytest.mark.parametrize(("change", "names"), [
    (_set("freqai.feature_parameters.label_period_candles", 144),
     ["freqai.feature_parameters"]),
    (_set("freqai.feature_parameters.DI_threshold", 0.5), ["freqai.feature_parameters"]),
    (_set("freqai.feature_parameters.include_shifted_candles", 3),
     ["freqai.feature_parameters"]),
    (_set("freqai.data_split_parameters.test_size", 0.2), ["freqai.data_split_parameters"]),
    (_set("freqai.train_period_days", 30), ["freqai.train_period_days"]),
    (_set("freqai.model_training_parameters.num_leaves", 31),
     ["freqai.model_training_parameters"]),
    (_set("hybrid_ai.ml.di_sample_rows", 500), ["hybrid_ai.ml.di_sample_rows"]),
    (_set("stake_amount", 50), ["wallet (the label's partial take-profit)"]),
    (_set("timeframe", "15m"), ["timeframe"]),
])
def test_a_config_input_of_the_label_or_the_features_marks_saved_models_stale(
        tmp_path, config, strat, change, names):
    before = guard.inputs(config, strat, MODEL_FILE)
    folder = saved_folder(tmp_path, before)
    changed = copy.deepcopy(config)
    change(changed)
    after = guard.inputs(changed, strat, MODEL_FILE)
    assert fingerprint.changed(before, after) == names
    assert_refused(folder, after, names)


@pytest.mark.parametrize(("attribute", "value"), [
    ("stoploss", -0.3),  # where the label's trade stops out
    ("minimal_roi", {"0": 0.5, "720": -1}),  # its time exit: the label's horizon
    ("trailing_stop", False),  # no trail: the label holds on
])
def test_a_strategy_exit_marks_saved_models_stale(tmp_path, config, strat, monkeypatch,
                                                  attribute, value):
    before = guard.inputs(config, strat, MODEL_FILE)
    folder = saved_folder(tmp_path, before)
    assert getattr(strat, attribute) != value
    monkeypatch.setattr(strat, attribute, value)
    after = guard.inputs(config, strat, MODEL_FILE)
    assert fingerprint.changed(before, after) == ["exit rules (the label)"]
    assert_refused(folder, after, ["exit rules (the label)"])


def test_a_folder_saved_without_a_record_is_refused(tmp_path, config, strat):
    folder = tmp_path / "models"
    (folder / SAVED_MODEL).mkdir(parents=True)
    with pytest.raises(OperationalException, match="without a record of their inputs"):
        guard.check(folder, guard.inputs(config, strat, MODEL_FILE))


# -- (c) nothing changed, nothing stale --------------------------------------------------------
def test_an_unchanged_tree_gives_an_identical_fingerprint(tmp_path, config, strat):
    real = guard.inputs(config, strat, MODEL_FILE)
    assert guard.inputs(copy.deepcopy(config), strat, MODEL_FILE) == real
    assert {"model and label code", "strategy source", "exit rules (the label)",
            "freqai.feature_parameters", "freqtrade version", "datadir"} <= set(real)
    pack = copy_pack(tmp_path / "pack")  # names are relative to the pack: a copy is the same
    assert guard.inputs(config, strat, pack / "freqaimodels" / MODEL_FILE.name, root=pack,
                        strategy_files=[pack / "strategies" / STRATEGY_FILE.name]) == real
    folder = saved_folder(tmp_path, real)
    assert guard.check(folder, real) is False and (folder / SAVED_MODEL).exists()


def test_the_strategy_source_is_the_strategy_class_and_its_bases(strat):
    sources = guard.strategy_sources(type(strat))
    assert STRATEGY_FILE in sources and all(p.is_relative_to(REPO) for p in sources)


def test_every_workaround_names_the_freqtrade_version_it_was_written_against():
    workarounds = {name for name, obj in vars(compat).items()
                   if inspect.isfunction(obj) and obj.__module__ == compat.__name__
                   and name not in ("unverified", "warn_if_unverified")}
    assert set(compat.WRITTEN_AGAINST) == workarounds
    for name, version in compat.WRITTEN_AGAINST.items():
        assert f"freqtrade {version}" in inspect.getdoc(getattr(compat, name))
    assert compat.unverified("0.0") == sorted(workarounds)


def test_continual_learning_is_refused(tmp_path):
    from lab.ml_offline import load_config, model_class

    config = load_config(tmp_path, "cl-test")
    config["freqai"]["continual_learning"] = True
    from freqtrade.exceptions import OperationalException

    with pytest.raises(OperationalException, match="continual_learning"):
        model_class()(config=config)


def test_an_identifier_folder_built_with_other_inputs_is_refused_or_rebuilt(tmp_path):
    """FreqAI would reuse whatever lies under models/<identifier>; the model compares what
    shaped it with today's inputs first."""
    from freqtrade.exceptions import OperationalException

    from lab.ml_offline import load_config, model_class, strategy

    config = load_config(tmp_path, "inputs-test")

    def check(config):  # as the bot: the strategy starts (its label horizon set) first
        strat = strategy(config)
        model_class()(config=copy.deepcopy(config))._check_saved_inputs(strat)

    folder = tmp_path / "models" / "inputs-test"
    check(config)
    record = json.loads((folder / "hybrid_ai_inputs.json").read_text())
    assert {"model and label code", "strategy source", "exit rules (the label)",
            "freqai.train_period_days", "freqtrade version"} <= set(record)
    (folder / "sub-train-BTC_1709251200").mkdir()  # a model saved under those inputs
    check(config)  # same

    changed = copy.deepcopy(config)
    changed["freqai"]["train_period_days"] = 30
    changed["freqai"]["feature_parameters"]["DI_threshold"] = 0.5
    with pytest.raises(OperationalException, match=r"changed: freqai.feature_parameters, "
                                                   r"freqai.train_period_days\)"):
        check(changed)
    assert (folder / "sub-train-BTC_1709251200").exists()  # refused: nothing deleted

    changed["hybrid_ai"]["ml"]["stale_models"] = "rebuild"
    check(changed)
    assert not (folder / "sub-train-BTC_1709251200").exists()  # deleted, to be retrained
    assert json.loads((folder / "hybrid_ai_inputs.json").read_text()) != record

    (folder / "hybrid_ai_inputs.json").unlink()  # results from before records existed
    (folder / "sub-train-ETH_1709251200").mkdir()
    with pytest.raises(OperationalException, match="without a record of their inputs"):
        check(config)
