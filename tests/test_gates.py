"""The entry gate over the upper layers' columns (hybrid_ai.gates)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybrid_ai import gates


def test_gate_is_the_and_of_layer_columns():
    df = pd.DataFrame({"close": [1, 2, 3, 4]})
    assert gates.approve(df)[gates.APPROVED].all() and gates.entry_tag(df) == "ta"
    df["gate_ml"] = [True, True, False, np.nan]
    df["gate_oracle"] = [True, False, True, True]
    assert gates.approve(df)[gates.APPROVED].tolist() == [True, False, False, False]
    assert gates.entry_tag(df) == "ta+ml+oracle"
