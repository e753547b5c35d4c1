"""HybridAIStrategy with entries forced at fixed candles, to test its protection rules.

Only the entry signal is replaced (and TA exits switched off); stops, trailing, partial
take-profit and stake sizing are HybridAIStrategy's own.
"""

import sys
from pathlib import Path

import pandas as pd
from pandas import DataFrame

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "strategies"))
from HybridAIStrategy import HybridAIStrategy

# Candle whose close gives the entry signal; the entry fills at the next candle's open.
ENTRY_SIGNAL = pd.Timestamp("2024-01-03 00:00", tz="UTC")


class ProtectionProbe(HybridAIStrategy):
    use_exit_signal = False

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[dataframe["date"] == ENTRY_SIGNAL, ["enter_long", "enter_tag"]] = (1, "probe")
        return dataframe
