"""Daily candle files resampled from hourly ones, for a datadir that holds 1h files only.

The trend core decides on daily closes and reads freqtrade's 1d candles (``TrendCore``'s
History): with them every rule sees every day the files hold; without them the days come
from the 1h candles a run loads, so the 250- and 360-day rules wait for that much warm-up
and a run's values depend on it (freqtrade's ``recursive-analysis`` shows it). Online,
``freqtrade download-data -t 1d`` fetches the exchange's; offline this writes them from the
1h files: a day is the UTC calendar day (Binance's 1d candle), its close the last hourly
close, an unfinished last day left out.

Usage::

    python -m lab.daily_files DATADIR              # 1d files next to the 1h ones
    python -m lab.daily_files DATADIR --out DIR    # a read-only DATADIR: DIR gets the 1d
                                                   # files and links to the other files

An existing 1d file is kept (it may be the exchange's); ``--force`` replaces it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from freqtrade.data.history import get_datahandler
from freqtrade.enums import CandleType, TradingMode

from hybrid_ai.trend_core import daily_candles

SOURCE, TARGET = "1h", "1d"


def complete_days(hourly: pd.DataFrame) -> pd.DataFrame:
    """Daily candles of ``hourly`` (freqtrade's columns, ``date`` UTC), without a last day
    whose 23:00 candle is missing (a file's day is a finished day)."""
    days = daily_candles(hourly)
    if len(hourly) and hourly["date"].iloc[-1].hour != 23 and len(days):
        days = days.iloc[:-1]
    return days.reset_index(drop=True)


def write_daily_files(datadir: Path, out: Path | None = None,
                      force: bool = False) -> list[Path]:
    """Write ``<pair>-1d.feather`` for every ``<pair>-1h.feather`` of ``datadir`` into
    ``out`` (default ``datadir``); where ``out`` is another folder, every other candle file
    of ``datadir`` is linked into it, so that ``out`` serves as freqtrade's ``--datadir``.

    :returns: the 1d files written
    :raises FileNotFoundError: ``datadir`` holds no 1h feather files (names what to fix)
    """
    datadir, out = Path(datadir), Path(out or datadir)
    available = get_datahandler(datadir, "feather").ohlcv_get_available_data(
        datadir, TradingMode.SPOT)
    pairs = [pair for pair, tf, candle in available
             if tf == SOURCE and candle == CandleType.SPOT]
    if not pairs:
        raise FileNotFoundError(f"{datadir} holds no {SOURCE} feather candles "
                                f"(<BASE>_<QUOTE>-{SOURCE}.feather): point it at a datadir")
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != datadir.resolve():
        for path in datadir.iterdir():
            link = out / path.name
            if path.is_file() and not link.exists() and not path.name.endswith(
                    f"-{TARGET}.feather"):
                link.symlink_to(path.resolve())
    source, target = get_datahandler(datadir, "feather"), get_datahandler(out, "feather")
    written = []
    for pair in sorted(pairs):
        path = out / f"{pair.replace('/', '_')}-{TARGET}.feather"
        if path.exists() and not force:
            continue
        hourly = source.ohlcv_load(pair, SOURCE, CandleType.SPOT, fill_missing=False)
        days = complete_days(hourly)
        if days.empty:
            continue
        target.ohlcv_store(pair, TARGET, days, CandleType.SPOT)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.daily_files",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("datadir", type=Path, help="a freqtrade datadir with 1h feather files")
    parser.add_argument("--out", type=Path, help="write here instead (links the other files)")
    parser.add_argument("--force", action="store_true", help="replace existing 1d files")
    args = parser.parse_args(argv)
    try:
        written = write_daily_files(args.datadir, args.out, args.force)
    except FileNotFoundError as exc:
        parser.exit(2, f"daily_files: {exc}\n")
    print(f"daily_files: {len(written)} 1d files written to {args.out or args.datadir}")


if __name__ == "__main__":
    main()
