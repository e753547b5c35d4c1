"""HybridAIStrategy with one fault injected (config key ``fault_probe``), to prove that the
entry side fails closed and the exit side keeps the protective exits.

Entries come from a forced technical signal that still has to pass the strategy's own gate,
sizing and confirmation; everything else is HybridAIStrategy's. Faults:
``merge`` the oracle feed raises while merging, ``ml_column`` FreqAI hands over a ``win``
column the ML layer cannot read, ``stake`` sizing raises, ``confirm_map`` the per-level
open-trade map loses a level at run time, ``steer`` the trim planner raises.
"""

import sys
from pathlib import Path

import pandas as pd
from pandas import DataFrame

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "strategies"))
from HybridAIStrategy import HybridAIStrategy

from llm_oracle.schema import RiskLevel

ENTRY_SIGNAL = pd.Timestamp("2024-01-03 00:00", tz="UTC")


def raising(message: str):
    def fail(*args, **kwargs):
        raise RuntimeError(message)

    return fail


class FaultProbe(HybridAIStrategy):
    use_exit_signal = False

    @property
    def fault(self) -> str | None:
        return self.config.get("fault_probe")

    @property
    def ml_enabled(self) -> bool:
        return self.fault == "ml_column" or super().ml_enabled

    def bot_start(self, **kwargs) -> None:
        super().bot_start(**kwargs)
        if self.fault == "merge":
            self.oracle.merge = raising("injected: journal table unreadable")
        elif self.fault == "stake":
            self.pack.stake = raising("injected: sizing bug")
        elif self.fault == "confirm_map":
            del self.settings.oracle.max_open_trades[RiskLevel.MODERATE]
        elif self.fault == "steer":
            self.pack.steering.trim = raising("injected: trim planner bug")

    def _start_freqai(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # FreqAI's output as a broken model would leave it: predictions that are not numbers.
        return dataframe.assign(win="n/a", loss="n/a", do_predict=1)

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["ta_signal"] = (dataframe["date"] == ENTRY_SIGNAL).astype(int)
        self.pack.set_entries(dataframe)
        return dataframe
