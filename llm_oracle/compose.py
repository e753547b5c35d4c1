"""The composition root: config files -> settings -> market view, bot view and oracle.

The one place that decides which parts a command runs with; the CLI (``__main__``) only
parses arguments and calls in here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_oracle.bot_api import BotView
from llm_oracle.context import MarketView, load_news
from llm_oracle.oracle import Oracle
from llm_oracle.settings import OracleSettings, load_oracle_settings

DEFAULT_DATADIR = Path("user_data/data/binance")


def load_config(paths: list[Path]) -> dict[str, Any]:
    """The freqtrade config from ``paths``, merged as freqtrade merges them."""
    from freqtrade.configuration.load_config import load_from_files

    return load_from_files([str(p) for p in paths])


def load_settings(config: dict[str, Any], provider: str | None = None,
                  output_dir: Path | None = None, masked: bool = False,
                  mask_seed: str | None = None) -> OracleSettings:
    """The ``llm_oracle`` section with the command line's overrides (None/False: the
    config's value)."""
    settings = load_oracle_settings(config)
    update: dict[str, Any] = {}
    if provider:
        update["provider"] = provider
    if output_dir:
        update["output_dir"] = output_dir
    if masked:
        update["masked"] = True
    if mask_seed is not None:
        update["mask_seed"] = mask_seed
    return settings.model_copy(update=update) if update else settings


def build_oracle(config_paths: list[Path], live: bool, provider: str | None = None,
                 output_dir: Path | None = None, datadir: Path | None = None,
                 masked: bool = False, mask_seed: str | None = None) -> Oracle:
    """The oracle, its provider, market view, news, bot view and reply cache.

    ``live`` (the daemon, ``once``): without a datadir (``datadir`` or
    ``llm_oracle.datadir``), candles come fresh from the config's exchange (the local one
    offline); a backfill always reads a datadir (default ``DEFAULT_DATADIR``).
    """
    config = load_config(config_paths)
    settings = load_settings(config, provider, output_dir, masked, mask_seed)
    universe = list(config["exchange"]["pair_whitelist"])
    if live and not (datadir or settings.datadir):
        view = MarketView.from_exchange(config["exchange"], universe)
    else:
        view = MarketView(Path(datadir or settings.datadir or DEFAULT_DATADIR), universe)
    bot = (BotView(settings.bot_api_url, settings.bot_api_username_env,
                   settings.bot_api_password_env, config.get("timeframe", "5m"))
           if settings.bot_api_url else None)
    return Oracle(settings, universe, view, load_news(settings.news_file),
                  cache_dir=settings.output_dir / "cache", bot=bot)
