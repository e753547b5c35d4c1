"""Dataframe helpers shared by the layers."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd


def join_columns(df: pd.DataFrame, columns: Mapping[str, object]) -> pd.DataFrame:
    """Set many columns in one step (one-by-one inserts fragment wide frames).

    Existing columns of the same name are replaced.
    """
    new = pd.DataFrame(dict(columns), index=df.index)
    return pd.concat([df.drop(columns=[c for c in new.columns if c in df.columns]), new], axis=1)


def utc_dates(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a datetime64 UTC ``date`` column, converting it only when it is not one.

    pandas 3 keeps the tz objects apart: candles loaded from feather carry
    ``ZoneInfo("UTC")``, candles from the exchange ``datetime.timezone.utc``, and
    concatenating the two gives an ``object`` column that breaks ``.dt`` and date slicing.
    """
    if "date" in df and not isinstance(df["date"].dtype, pd.DatetimeTZDtype):
        df["date"] = pd.to_datetime(df["date"], utc=True)
    return df
