"""A reproducible synthetic market for the demo when no real candles are present.

Several pairs share one market factor (so they are correlated, like crypto majors), and
the factor switches between regimes: up-trend, range, crash and recovery. Each pair has
its own beta, volatility and idiosyncratic noise; volume rises with the size of moves.
The same seed always gives the same files. It is a stand-in, never a forecast: every
command that uses it says that the market is synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

SYNTHETIC_MARKER = ".synthetic"
FIVE_MIN = pd.Timedelta(minutes=5)


@dataclass(frozen=True)
class PairSpec:
    pair: str
    start_price: float
    beta: float  # exposure to the market factor
    idio_vol: float  # per-5m idiosyncratic volatility
    base_volume: float  # typical base-asset volume per 5m candle


# The same nine pairs as config.json's whitelist, at early-2024-like prices.
DEFAULT_PAIRS = (
    PairSpec("BTC/USDT", 42_000.0, 1.0, 0.0012, 120.0),
    PairSpec("ETH/USDT", 2_300.0, 1.15, 0.0016, 1_500.0),
    PairSpec("SOL/USDT", 100.0, 1.45, 0.0026, 25_000.0),
    PairSpec("XRP/USDT", 0.60, 1.25, 0.0022, 4_000_000.0),
    PairSpec("DOGE/USDT", 0.09, 1.4, 0.0028, 30_000_000.0),
    PairSpec("LINK/USDT", 15.0, 1.3, 0.0024, 150_000.0),
    PairSpec("AVAX/USDT", 36.0, 1.4, 0.0026, 60_000.0),
    PairSpec("LTC/USDT", 72.0, 1.1, 0.0018, 20_000.0),
    PairSpec("TRX/USDT", 0.11, 0.7, 0.0012, 10_000_000.0),
)

# Regime: (drift per 5m, volatility per 5m, mean duration in 5m candles)
REGIMES = {
    "uptrend": (0.00005, 0.0018, 2_000),
    "range": (0.0, 0.0016, 2_500),
    "crash": (-0.0003, 0.0035, 300),
    "recovery": (0.0001, 0.0025, 700),
}
TRANSITIONS = {
    "uptrend": (("range", 0.6), ("crash", 0.25), ("uptrend", 0.15)),
    "range": (("uptrend", 0.5), ("crash", 0.2), ("range", 0.3)),
    "crash": (("recovery", 0.7), ("range", 0.3)),
    "recovery": (("uptrend", 0.6), ("range", 0.4)),
}


def _regime_path(n: int, rng: np.random.Generator) -> list[str]:
    path: list[str] = []
    regime = "range"
    while len(path) < n:
        _, _, mean_len = REGIMES[regime]
        length = max(12, int(rng.exponential(mean_len)))
        path.extend([regime] * length)
        names, probs = zip(*TRANSITIONS[regime], strict=True)
        regime = str(rng.choice(names, p=probs))
    return path[:n]


def generate(
    days: int = 180,
    seed: int = 42,
    end: datetime = datetime(2025, 7, 1, tzinfo=UTC),
    pairs: tuple[PairSpec, ...] = DEFAULT_PAIRS,
) -> dict[str, pd.DataFrame]:
    """5m candles for each pair, keyed by pair name."""
    rng = np.random.default_rng(seed)
    n = days * 288
    dates = pd.date_range(end=pd.Timestamp(end) - FIVE_MIN, periods=n, freq="5min", tz="UTC")
    regimes = _regime_path(n, rng)
    drift = np.array([REGIMES[r][0] for r in regimes])
    vol = np.array([REGIMES[r][1] for r in regimes])
    # Intraday volatility cycle: busier around the US session.
    hours = dates.hour.to_numpy()
    vol = vol * (1.0 + 0.3 * np.exp(-((hours - 15) ** 2) / 18.0))
    market = drift + vol * rng.standard_t(df=4, size=n) / np.sqrt(2.0)

    frames: dict[str, pd.DataFrame] = {}
    for spec in pairs:
        idio = spec.idio_vol * rng.standard_t(df=4, size=n) / np.sqrt(2.0)
        log_ret = spec.beta * market + idio
        close = spec.start_price * np.exp(np.cumsum(log_ret))
        open_ = np.concatenate([[spec.start_price], close[:-1]])
        wick = np.abs(rng.normal(0.0, 0.5, size=(2, n))) * (vol * spec.beta + spec.idio_vol)
        high = np.maximum(open_, close) * np.exp(wick[0])
        low = np.minimum(open_, close) * np.exp(-wick[1])
        activity = 1.0 + 8.0 * np.abs(log_ret) / (vol * spec.beta + spec.idio_vol)
        volume = spec.base_volume * activity * rng.lognormal(0.0, 0.35, size=n)
        frames[spec.pair] = pd.DataFrame(
            {"date": dates, "open": open_, "high": high, "low": low, "close": close,
             "volume": volume}
        )
    return frames


def resample(df: pd.DataFrame, rule: str) -> pd.DataFrame:
    agg = df.set_index("date").resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return agg.dropna().reset_index()


def write_market(datadir: Path, days: int = 180, seed: int = 42,
                 timeframes: tuple[str, ...] = ("5m", "1h")) -> list[Path]:
    """Write ``timeframes`` feather files (freqtrade's format; each of "5m" and "1h", the
    hourly ones resampled from the same 5m path) and mark the directory synthetic."""
    unknown = set(timeframes) - {"5m", "1h"}
    if unknown:
        raise ValueError(f"the synthetic market has 5m and 1h candles, not {sorted(unknown)}")
    datadir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for pair, df5 in generate(days=days, seed=seed).items():
        stem = pair.replace("/", "_")
        for tf in timeframes:
            path = datadir / f"{stem}-{tf}.feather"
            df = df5 if tf == "5m" else resample(df5, tf)
            df.reset_index(drop=True).to_feather(path)
            written.append(path)
    (datadir / SYNTHETIC_MARKER).write_text(
        f"SYNTHETIC MARKET (seed={seed}, {days} days): generated candles, not real prices.\n"
    )
    return written


def is_synthetic(datadir: Path) -> bool:
    return (datadir / SYNTHETIC_MARKER).exists()


def has_candles(datadir: Path) -> bool:
    return datadir.is_dir() and any(datadir.glob("*-*.feather"))
