"""Candles of a freqtrade data directory, indexed for fast Binance-style queries.

A data directory holds freqtrade's files ``BASE_QUOTE-TF.feather`` (or ``.json`` is not
supported: convert it with ``freqtrade convert-data``). Every file becomes one
(symbol, interval) series of numpy arrays; intervals not on disk are resampled on demand
from the finest timeframe that divides them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# Quote assets recognised when splitting a file name such as ``BTC_USDT``.
QUOTE_ASSETS = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")

_FILE_RE = re.compile(r"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)-(?P<tf>\d+[mhdwM])\.feather$")
_TF_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
REQUIRED_COLUMNS = ("date", "open", "high", "low", "close", "volume")


class MarketDataError(Exception):
    """The data directory cannot be served; the message says what to fix."""


def timeframe_ms(tf: str) -> int:
    """Milliseconds in a Binance/freqtrade interval such as ``5m`` or ``1h``."""
    match = re.fullmatch(r"(\d+)([mhdw])", tf)
    if not match:
        raise MarketDataError(f"Unsupported interval {tf!r}: use e.g. 1m, 5m, 1h, 4h, 1d.")
    return int(match.group(1)) * _TF_MS[match.group(2)]


@dataclass
class Series:
    """One symbol's candles at one interval, as parallel numpy arrays (times in ms)."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    interval_ms: int

    @classmethod
    def from_frame(cls, df: pd.DataFrame, interval_ms: int) -> Series:
        dates = pd.to_datetime(df["date"], utc=True).dt.as_unit("ms")
        open_time = dates.astype("int64").to_numpy(dtype=np.int64)
        return cls(
            open_time=open_time,
            open=df["open"].to_numpy(dtype=float),
            high=df["high"].to_numpy(dtype=float),
            low=df["low"].to_numpy(dtype=float),
            close=df["close"].to_numpy(dtype=float),
            volume=df["volume"].to_numpy(dtype=float),
            interval_ms=interval_ms,
        )

    def __len__(self) -> int:
        return len(self.open_time)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "date": pd.to_datetime(self.open_time, unit="ms", utc=True),
                "open": self.open,
                "high": self.high,
                "low": self.low,
                "close": self.close,
                "volume": self.volume,
            }
        )


@dataclass
class Symbol:
    """A tradable spot market derived from the files of one pair."""

    base: str
    quote: str
    series: dict[int, Series] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.base}{self.quote}"

    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"

    def finest(self) -> Series:
        return self.series[min(self.series)]


@dataclass(frozen=True)
class Precision:
    """Exchange filters derived from the price level, close to Binance's real ones."""

    tick_size: float
    step_size: float
    min_notional: float

    @classmethod
    def for_price(cls, price: float, quote: str) -> Precision:
        price = max(price, 1e-8)
        # About seven significant digits of price, like Binance's majors (BTC: 0.01).
        tick = 10.0 ** min(0, max(-8, math.floor(math.log10(price)) - 6))
        # One lot step is worth roughly 0.1-1 quote units (BTC: 0.00001, DOGE: 1).
        step = 10.0 ** min(0, max(-8, math.floor(math.log10(1.0 / price))))
        min_notional = 5.0 if quote in ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "EUR") else 0.0001
        return cls(tick_size=tick, step_size=step, min_notional=min_notional)


def _split_pair(stem: str) -> tuple[str, str] | None:
    match = _FILE_RE.match(stem)
    if not match:
        return None
    return match.group("base"), match.group("quote")


def _read_candles(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_feather(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise MarketDataError(
            f"Cannot read candle file {path}: {exc}. Re-download it with "
            f"`freqtrade download-data` or delete it."
        ) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise MarketDataError(
            f"Candle file {path} lacks columns {missing}; freqtrade's feather files have "
            f"{list(REQUIRED_COLUMNS)}."
        )
    df = df.loc[:, list(REQUIRED_COLUMNS)].dropna()
    if df.empty:
        raise MarketDataError(f"Candle file {path} holds no complete candle.")
    df = df.sort_values("date").drop_duplicates("date", keep="last").reset_index(drop=True)
    return df


class MarketData:
    """All symbols of one data directory."""

    def __init__(self, symbols: dict[str, Symbol], datadir: Path) -> None:
        self.symbols = symbols
        self.datadir = datadir

    @classmethod
    def load(cls, datadir: Path | str, pairs: list[str] | None = None) -> MarketData:
        """Load every ``PAIR-TF.feather`` file below ``datadir``.

        ``pairs`` (``BTC/USDT`` style) restricts the markets and must all be present.
        """
        datadir = Path(datadir)
        if not datadir.is_dir():
            raise MarketDataError(
                f"Data directory {datadir} does not exist. Create it with "
                f"`freqtrade download-data --datadir {datadir}` or `python -m local_exchange "
                f"synth --datadir {datadir}`."
            )
        wanted = {p.upper() for p in pairs} if pairs else None
        symbols: dict[str, Symbol] = {}
        for path in sorted(datadir.glob("*.feather")):
            split = _split_pair(path.name)
            if split is None:
                continue  # futures / funding files or unrelated files are not spot candles
            base, quote = split
            if wanted is not None and f"{base}/{quote}" not in wanted:
                continue
            tf = _FILE_RE.match(path.name).group("tf")  # type: ignore[union-attr]
            try:
                interval = timeframe_ms(tf)
            except MarketDataError:
                continue
            sym = symbols.setdefault(f"{base}{quote}", Symbol(base=base, quote=quote))
            sym.series[interval] = Series.from_frame(_read_candles(path), interval)
        if not symbols:
            raise MarketDataError(
                f"No spot candle files (PAIR-TF.feather, e.g. BTC_USDT-5m.feather) in {datadir}. "
                f"Fetch some with `freqtrade download-data --datadir {datadir}` or generate a "
                f"synthetic market with `python -m local_exchange synth --datadir {datadir}`."
            )
        if wanted is not None:
            missing = sorted(wanted - {s.pair for s in symbols.values()})
            if missing:
                raise MarketDataError(f"No candle files for {missing} in {datadir}.")
        return cls(symbols, datadir)

    def series(self, symbol: str, interval_ms: int) -> Series | None:
        """Candles of ``symbol`` at ``interval_ms``, resampled from a finer series if needed."""
        sym = self.symbols.get(symbol)
        if sym is None:
            return None
        if interval_ms in sym.series:
            return sym.series[interval_ms]
        finer = [i for i in sym.series if i < interval_ms and interval_ms % i == 0]
        if not finer:
            return None
        source = sym.series[max(finer)].to_frame().set_index("date")
        rule = f"{interval_ms // 60_000}min"
        agg = source.resample(rule, label="left", closed="left").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        )
        agg = agg.dropna().reset_index()
        sym.series[interval_ms] = Series.from_frame(agg, interval_ms)
        return sym.series[interval_ms]

    def first_time(self) -> int:
        return min(int(s.finest().open_time[0]) for s in self.symbols.values())

    def last_close_time(self) -> int:
        """Close time (ms) of the newest candle in the directory."""
        return max(
            int(s.finest().open_time[-1]) + s.finest().interval_ms for s in self.symbols.values()
        )
