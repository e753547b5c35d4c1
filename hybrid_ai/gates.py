"""The approval gate: a technical entry signal trades only if every layer approves.

The technical signal proposes; each upper layer (ML, oracle) adds one boolean column
named ``gate_<layer>`` in ``populate_indicators``. The gate is the AND of all such
columns present (none yet: always open), so adding a layer is adding a column, never a
rewrite of the entry logic. The entry tag names the layers that decided, e.g.
``ta+ml+oracle``.

A layer can be *observed* instead (``hybrid_ai.observe_only``): its columns are computed
and plotted but its gate does not block, its sizing does not apply and the entry tag leaves
it out. ``make report`` uses that to see which technical entries each layer would block.
"""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from hybrid_ai.columns import APPROVED, GATE_PAUSE, GATE_PREFIX
from hybrid_ai.frames import join_columns


def gate_columns(df: pd.DataFrame, observed: Collection[str] = ()) -> list[str]:
    """The ``gate_*`` columns of the layers that decide (not the observed ones)."""
    skip = {GATE_PREFIX + layer for layer in observed} | {APPROVED}
    return [c for c in df.columns if c.startswith(GATE_PREFIX) and c not in skip]


def approve(df: pd.DataFrame, observed: Collection[str] = ()) -> pd.DataFrame:
    """Set ``gate_approved`` = AND of the deciding gate columns (missing values: "no")."""
    cols = gate_columns(df, observed)
    approved = pd.Series(True, index=df.index)
    for col in cols:
        approved &= df[col].fillna(False).astype(bool)
    return join_columns(df, {APPROVED: approved})


LAYER_ORDER = ("ml", "oracle")  # how entry tags list the layers, whatever the column order


def entry_tag(df: pd.DataFrame, observed: Collection[str] = ()) -> str:
    """Which layers decided, bottom up: ``ta``, ``ta+ml``, ``ta+ml+oracle``."""
    layers = [c.removeprefix(GATE_PREFIX) for c in gate_columns(df, observed)
              if c != GATE_PAUSE]  # a pause is not a layer
    rank = {name: i for i, name in enumerate(LAYER_ORDER)}
    return "+".join(["ta", *sorted(layers, key=lambda n: (rank.get(n, len(rank)), n))])
