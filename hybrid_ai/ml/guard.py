"""Reuse what FreqAI saved only when everything that shaped it is unchanged.

FreqAI reuses whatever lies under ``user_data/models/<freqai.identifier>`` (models, backtest
predictions). The model's first ``start`` records the inputs that shaped them
(``hybrid_ai_inputs.json``, names -> digests, ``hybrid_ai.fingerprint``) and compares them
with the folder's record: a difference is refused naming the inputs that changed, or, with
``hybrid_ai.ml.stale_models: "rebuild"``, the folder's results are deleted and retrained.

The inputs, by the name a user sees in the refusal:

``model and label code``
    Derived, not listed: the FreqAI model's file and every pack source file that it or the
    strategy imports, followed transitively (``code_files``). The label's exits, the
    features and the indicators they read are code the strategy or the model imports, so a
    module added, renamed or moved into a subpackage is covered without a list to keep. The
    strategy's own files are in ``strategy source`` instead, so an edit names one of the two.
``strategy source``
    The source files of the strategy class and its bases outside freqtrade (a user's
    subclass and ``HybridAIStrategy``).
``exit rules (the label)``, ``wallet (the label's partial take-profit)``
    What the label is computed from: the strategy's exits (stoploss, trail, time exit,
    take-profit) and the wallet keys its take-profit share depends on.
``freqai.<key>``, ``freqaimodel``, ``timeframe``, ``hybrid_ai.ml.<key>``, ``freqtrade version``
    What shapes the features, the splits, the training and the predictions
    (``freqai.feature_parameters`` holds ``label_period_candles``).
``datadir``
    Backtests only: where the candles come from.
"""

from __future__ import annotations

import ast
import inspect
import logging
import shutil
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import freqtrade
from freqtrade.exceptions import OperationalException

import hybrid_ai
from hybrid_ai import fingerprint
from hybrid_ai.settings import MLSettings, load_settings

logger = logging.getLogger(__name__)

INPUTS_FILE = "hybrid_ai_inputs.json"  # what shaped the models in an identifier's folder
# The directory holding the pack's packages, and the packages whose imports are followed.
PACK_ROOT = Path(hybrid_ai.__file__).resolve().parent.parent
PACKAGES = ("hybrid_ai", "llm_oracle")
# freqai keys that shape a model or its predictions (the rest: housekeeping, live timing).
SHAPING_FREQAI_KEYS = ("feature_parameters", "data_split_parameters",
                       "model_training_parameters", "train_period_days",
                       "backtest_period_days", "continual_learning")
# Config keys the label's partial take-profit depends on (a typical stake vs the minimum).
WALLET_KEYS = ("dry_run_wallet", "stake_amount", "max_open_trades", "tradable_balance_ratio")


# -- the pack code a model depends on ----------------------------------------------------------
def _module_name(path: Path, root: Path) -> str | None:
    """The dotted module name of a file under ``root`` (``hybrid_ai/ml/__init__.py`` ->
    ``hybrid_ai.ml``); None for a file outside it."""
    if not path.is_relative_to(root):
        return None
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, root: Path) -> set[str]:
    """Every dotted name an ``import`` statement of ``path`` may load, anywhere in the file
    (function-level and ``TYPE_CHECKING`` imports too): ``import a.b`` gives ``a.b``;
    ``from a.b import c`` gives ``a.b`` and ``a.b.c`` (``c`` may be a submodule); relative
    imports are resolved against ``path``'s package under ``root``. Raises ``SyntaxError``
    for a file Python could not import either."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    module = _module_name(path, root)
    package = None if module is None else (
        module if path.name == "__init__.py" else module.rpartition(".")[0])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if package is None or node.level > len(parts):
                    continue  # not in a package under root: Python could not resolve it
                base = ".".join([*parts[:len(parts) - node.level + 1],
                                 *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return {name.strip(".") for name in names if name.strip(".")}


def module_files(name: str, root: Path) -> list[Path]:
    """The files under ``root`` that importing dotted ``name`` runs: each package's
    ``__init__.py`` on the way, then the module; none past a part that is no package or
    module (a class or constant imported from a module)."""
    files, here = [], root
    for part in name.split("."):
        here = here / part
        if (here / "__init__.py").is_file():
            files.append(here / "__init__.py")
        elif here.with_suffix(".py").is_file():
            files.append(here.with_suffix(".py"))
            break
        elif not here.is_dir():  # a directory without __init__.py: a namespace package
            break
    return files


def code_files(entries: Iterable[Path], root: Path = PACK_ROOT,
               packages: Collection[str] = PACKAGES) -> list[Path]:
    """``entries`` and every source file of ``packages`` (under ``root``) they import,
    directly or through each other; sorted, resolved paths. Only static ``import``
    statements are followed (no ``importlib`` calls, no data files)."""
    root = root.resolve()
    seen: set[Path] = set()
    todo = [Path(p).resolve() for p in entries]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path, root):
            if name.split(".")[0] in packages:
                todo.extend(module_files(name, root))
    return sorted(seen)


def source_file(cls: type) -> Path | None:
    """A class's source file: freqtrade's resolver sets ``__file__`` on what it loads (the
    module is not importable by name), the rest are ordinary imports."""
    path = cls.__dict__.get("__file__")
    if path is None:
        try:
            path = inspect.getfile(cls)
        except TypeError:
            return None
    return Path(path).resolve()


def strategy_sources(strategy_cls: type) -> set[Path]:
    """The source files of a strategy class and its bases outside freqtrade."""
    files = {source_file(cls) for cls in strategy_cls.__mro__
             if not cls.__module__.startswith(("freqtrade", "builtins", "abc"))}
    return {path for path in files if path is not None}


# -- the record ----------------------------------------------------------------------------------
def live_run(config: Mapping[str, Any]) -> bool:
    """A dry or live bot (not a backtest, hyperopt or tool)."""
    return config.get("runmode") is not None and \
        getattr(config["runmode"], "value", "") in ("dry_run", "live")


def inputs(config: dict[str, Any], strategy: Any, model_file: Path, *,
           ml: MLSettings | None = None, root: Path = PACK_ROOT,
           strategy_files: Iterable[Path] | None = None) -> fingerprint.Inputs:
    """What shapes an identifier's models and predictions: name -> 16-hex digest.

    ``config`` is freqtrade's (with ``freqai``), ``strategy`` the loaded strategy (its
    ``exit_rules()`` and class), ``model_file`` the FreqAI model's source file, ``ml`` the
    parsed ``hybrid_ai.ml`` settings (parsed from ``config`` when None). ``root`` is where
    the pack's packages are looked up and the name files are hashed under;
    ``strategy_files`` replaces the strategy class's own files (a copy of the pack)."""
    ml = load_settings(config).ml if ml is None else ml
    root = root.resolve()
    strategy_set = {Path(p).resolve() for p in (
        strategy_sources(type(strategy)) if strategy_files is None else strategy_files)}
    code = [p for p in code_files([model_file, *strategy_set], root)
            if p not in strategy_set]
    freqai = config["freqai"]
    now = {
        "model and label code": fingerprint.files_digest(code, root),
        "strategy source": fingerprint.files_digest(strategy_set, root),
        "exit rules (the label)": fingerprint.digest(asdict(strategy.exit_rules())),
        "wallet (the label's partial take-profit)": fingerprint.digest(
            {k: config.get(k) for k in WALLET_KEYS}),
        "freqaimodel": fingerprint.digest(config.get("freqaimodel")),
        "timeframe": fingerprint.digest(config.get("timeframe")),
        "hybrid_ai.ml.di_sample_rows": fingerprint.digest(ml.di_sample_rows),
        "hybrid_ai.ml.frozen_models": fingerprint.digest(
            ml.frozen_models.model_dump(mode="json") if ml.frozen_models else None),
        "freqtrade version": fingerprint.digest(freqtrade.__version__),
        **{f"freqai.{key}": fingerprint.digest(freqai.get(key))
           for key in SHAPING_FREQAI_KEYS},
    }
    if not live_run(config):  # a backtest's candles come from the data directory
        now["datadir"] = fingerprint.digest(str(Path(config["datadir"]).resolve()))
    return now


def saved_results(folder: Path) -> list[Path]:
    """What FreqAI reuses from an identifier's folder: trained models, backtest predictions."""
    return [*folder.glob("sub-train-*"), *folder.glob("backtesting_predictions/*")]


def check(folder: Path, now: fingerprint.Inputs, stale_models: str = "refuse") -> bool:
    """Refuse (or, ``stale_models == "rebuild"``, delete) the results in ``folder`` that
    other inputs than ``now`` shaped, then record ``now`` there.

    Returns True when results were deleted (the caller forgets FreqAI's pair dictionary).
    Raises ``OperationalException`` naming the changed inputs when refusing."""
    record = folder / INPUTS_FILE
    saved = fingerprint.read(record)
    results = saved_results(folder)
    stale = fingerprint.changed(saved, now) if results else []
    rebuilt = False
    if stale:
        why = (f"changed: {', '.join(stale)}" if saved is not None else
               "saved without a record of their inputs (an older pack version)")
        if stale_models != "rebuild":
            raise OperationalException(
                f"{folder} holds FreqAI models and predictions built with other inputs "
                f"({why}); reusing them would mix stale results in. Set a new "
                f"freqai.identifier, delete that folder, or set "
                f"hybrid_ai.ml.stale_models to \"rebuild\".")
        logger.warning("%s: models and predictions built with other inputs (%s): "
                       "deleting them and training again "
                       "(hybrid_ai.ml.stale_models: rebuild)", folder, why)
        for path in results:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        (folder / "pair_dictionary.json").unlink(missing_ok=True)
        rebuilt = True
    folder.mkdir(parents=True, exist_ok=True)
    fingerprint.write(record, now)
    return rebuilt
