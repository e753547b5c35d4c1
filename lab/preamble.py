"""What ``make report`` and ``make walkforward`` do before any backtest, in one place: the
config loaded and validated (``lab.project.load_config``), the pairs and their candles, the
local exchange serving them, the holes in the candle files and the pair pauses around the long
ones (``lab.data_holes``: no trade carried across candles that do not exist).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lab import data_holes
from lab.project import load_config, needed_timeframes, whitelist
from local_exchange.market_data import MarketData
from local_exchange.server import BinanceApi, LocalExchangeServer


@dataclass
class Market:
    """The merged, validated ``config``, the ``pairs`` (its whitelist unless given) and their
    candles (``data``, as the local exchange serves them)."""

    config: dict[str, Any]
    pairs: list[str]
    data: MarketData


def load_market(datadir: Path, pairs: list[str] | None, configs: Sequence[Path]) -> Market:
    """``configs`` merged in order and validated (``DemoError`` for what the bot would
    refuse), and the candles of ``pairs`` (default: the whitelist) under ``datadir``
    (``MarketDataError`` when files are missing)."""
    config = load_config(configs)
    pairs = list(pairs or whitelist(config))
    return Market(config, pairs, MarketData.load(datadir, pairs))


@contextmanager
def local_exchange(data: MarketData) -> Iterator[str]:
    """The local exchange serving ``data`` on a free port, for the ``with`` block; yields its
    URL (for ``local_exchange.overlay.offline_overlay``) and stops it after."""
    server = LocalExchangeServer(BinanceApi(data), port=0)
    server.start_in_thread()
    try:
        yield server.url
    finally:
        server.stop()


@dataclass
class Holes:
    """The holes in the candle files (``found``: ``lab.data_holes.holes``' rows for the
    strategy's timeframe and the informative one) and the ``hybrid_ai.pair_pauses`` entries
    for those of a day or more (``pauses``: one dict per pause, ``pair``, ``from``, ``to``
    ISO times, ``reason``)."""

    found: pd.DataFrame
    pauses: list[dict[str, str]]


def holes(datadir: Path, pairs: list[str], timeframe: str, start: pd.Timestamp,
          end: pd.Timestamp) -> Holes:
    """The holes of ``pairs``' ``timeframe`` and 1h candles between ``start`` and ``end``
    (UTC) and the pauses of the ``timeframe`` ones of a day or more."""
    frames = [data_holes.holes(datadir, pairs, tf, start, end)
              for tf in needed_timeframes(timeframe)]
    found = pd.concat(frames, ignore_index=True)
    return Holes(found, data_holes.pair_pauses(found, timeframe))


def pauses_overlay(path: Path, pauses: list[dict[str, str]]) -> Path:
    """The config overlay pausing the pairs (``hybrid_ai.pair_pauses``), written to ``path``."""
    path.write_text(json.dumps({"hybrid_ai": {"pair_pauses": pauses}}, indent=2))
    return path


def timerange_bounds(timerange: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``YYYYMMDD-YYYYMMDD`` as two UTC timestamps (its first and end day, midnight)."""
    first, _, last = timerange.partition("-")
    return pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC")
