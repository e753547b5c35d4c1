"""Where the repo, the config, the offline overlay and the data live: the one place the tools
ask. The config is loaded as freqtrade loads it (``-c`` files merged in order) and validated
by the same loaders the bot and the oracle use, so a tool never runs on a config the bot
would refuse."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hybrid_ai.settings import SettingsError, load_settings
from llm_oracle.settings import OracleSettingsError, load_oracle_settings
from local_exchange.market_data import MarketData

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config.json"  # the shipped defaults: the trend core (strategies/TrendCore.py)
PRESETS = REPO / "user_data" / "presets"
# The pack's 5m families (HybridAIStrategy, the ML gate), the shipped defaults before #32, on
# top of config.json: what the research tools (report, walk-forward, ML quality) study.
HYBRID_CONFIG = PRESETS / "hybrid.config.json"
PACK_CONFIGS = (CONFIG, HYBRID_CONFIG)
STRATEGY = "HybridAIStrategy"
STRATEGY_FILE = REPO / "strategies" / f"{STRATEGY}.py"
OVERLAY = REPO / "user_data" / "config.offline.json"
DEMO_OVERLAY = REPO / "user_data" / "config.demo.json"  # make demo: stale models rebuilt
DEFAULT_DATADIR = REPO / "user_data" / "data" / "binance"
TIMEFRAMES = ("5m", "1h")  # HybridAIStrategy's timeframe and its informative timeframe
INFORMATIVE_TIMEFRAME = "1h"  # every family reads hourly candles (trends, ranks, daily closes)
SHARED_DATA_ENV = "HYBRID_AI_SHARED_DATA"


@dataclass(frozen=True)
class Preset:
    """A named configuration other than the shipped defaults (``user_data/presets``):
    freqtrade's parameter file ``<name>.json`` (copied beside the strategy, or read by the
    tools) and the config overlay ``<name>.config.json`` that goes with it (label horizon,
    model identifier, layers)."""

    name: str

    @property
    def params_file(self) -> Path:
        return PRESETS / f"{self.name}.json"

    @property
    def config_file(self) -> Path:
        return PRESETS / f"{self.name}.config.json"

    @property
    def params(self) -> dict[str, dict[str, Any]]:
        """The strategy parameters by hyperopt space, the time exit (``roi``) left out."""
        params = json.loads(self.params_file.read_text())["params"]
        return {space: values for space, values in params.items() if space != "roi"}

    @property
    def roi(self) -> dict[str, float]:
        """``minimal_roi`` (minutes -> return): its time exit is the label's horizon."""
        return json.loads(self.params_file.read_text())["params"]["roi"]


# The earlier defaults: 5m oversold recovery held a day at most, the oracle deciding.
OVERSOLD_PRESET = Preset("oversold-recovery")


class DemoError(RuntimeError):
    """Something the user must fix before a tool can run."""


def shared_data() -> Path | None:
    """The real candles beside the repo (``../shared``, or $HYBRID_AI_SHARED_DATA), if any."""
    path = Path(os.environ.get(SHARED_DATA_ENV, REPO.parent / "shared" / "data" / "binance"))
    return path if any(path.glob("*-5m.feather")) else None


def load_config(paths: Sequence[Path] = PACK_CONFIGS) -> dict[str, Any]:
    """The merged config of ``paths`` (default: HybridAIStrategy's, ``PACK_CONFIGS``), with
    the pack's and the oracle's sections validated."""
    from freqtrade.configuration.load_config import load_from_files

    config = load_from_files([str(p) for p in paths])
    try:
        load_settings(config)
        load_oracle_settings(config)
    except (SettingsError, OracleSettingsError) as exc:
        raise DemoError(f"{', '.join(str(p) for p in paths)}: {exc}") from exc
    return config


def whitelist(config: dict[str, Any] | None = None) -> list[str]:
    return list((config or load_config())["exchange"]["pair_whitelist"])


def strategy_with_params(directory: Path, epoch: dict[str, Any]) -> Path:
    """A copy of the strategy with a hyperopt epoch's parameters beside it (freqtrade's
    parameter file, loaded with the strategy); returns the directory for --strategy-path."""
    from freqtrade.optimize.hyperopt_tools import HyperoptTools

    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(STRATEGY_FILE, directory / STRATEGY_FILE.name)
    HyperoptTools.export_params(epoch, STRATEGY, directory / f"{STRATEGY}.json")
    return directory


def warmup_days(config: dict[str, Any]) -> tuple[int, str]:
    """Days of candles a backtest of ``config`` needs before its first candle, and why: the
    trend core's startup (``trend_core.startup_days``, TrendCore) or FreqAI's training
    period (``freqai.train_period_days``, when enabled), whichever is longer, plus a day."""
    from hybrid_ai.trend_core import load_core_settings

    needs = [(0, "no warm-up")]
    if config.get("strategy") == "TrendCore":
        needs.append((load_core_settings(config).startup_days, "the trend core's startup"))
    freqai = config.get("freqai", {})
    if freqai.get("enabled"):
        needs.append((int(freqai.get("train_period_days", 0)), "FreqAI training"))
    days, why = max(needs)
    return days + 1, why


def default_timerange(data: MarketData, backtest_days: int,
                      config: dict[str, Any] | None = None) -> str:
    """The last ``backtest_days`` of the data, leaving the run its warm-up before
    (``warmup_days``: the trend core's startup, FreqAI's training period).

    :raises DemoError: when the data is too short, saying for what
    """
    config = config or load_config()
    warmup, why = warmup_days(config)
    first = datetime.fromtimestamp(data.first_time() / 1000, tz=UTC)
    end = datetime.fromtimestamp(data.last_close_time() / 1000, tz=UTC)
    start = max(end - timedelta(days=backtest_days), first + timedelta(days=warmup))
    if start >= end:
        raise DemoError(
            f"{data.datadir} covers {first:%Y-%m-%d} to {end:%Y-%m-%d}: too short for "
            f"{warmup} days of warm-up ({why}) before a backtest. Add older candles."
        )
    return f"{start:%Y%m%d}-{end:%Y%m%d}"


def config_args(paths: Sequence[Path]) -> list[str]:
    """``-c <path>`` for each of ``paths``, in order (freqtrade merges them so)."""
    return [arg for path in paths for arg in ("-c", str(path))]


def needed_timeframes(timeframe: str | None = None) -> tuple[str, ...]:
    """The candle files a run on ``timeframe`` (default: HybridAIStrategy's) reads: its own and
    the hourly informative ones (``("1h",)`` on 1h: hourly candles are enough)."""
    return tuple(dict.fromkeys((timeframe or TIMEFRAMES[0], INFORMATIVE_TIMEFRAME)))
