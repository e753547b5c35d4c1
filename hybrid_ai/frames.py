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
