"""HybridAIStrategy with entries forced at one candle, to test how the oracle steers open trades.

Only the entry signal is replaced (and the technical reversal exit switched off); sizing,
the oracle's caps, its trims, its exit signal and the partial take-profit are
HybridAIStrategy's own.
"""

import sys
from pathlib import Path

import pandas as pd
from pandas import DataFrame

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "strategies"))
from HybridAIStrategy import HybridAIStrategy

# Candle whose close gives the entry signal; the entries fill at the next candle's open.
ENTRY_SIGNAL = pd.Timestamp("2024-06-10 07:55", tz="UTC")


class SteeringProbe(HybridAIStrategy):
    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["ta_exit"] = 0  # no technical reversal; the oracle's exits stay
        self.pack.set_exits(dataframe)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[dataframe["date"] == ENTRY_SIGNAL, ["enter_long", "enter_tag"]] = (1, "probe")
        return dataframe
