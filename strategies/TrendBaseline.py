# pragma pylint: disable=missing-docstring, invalid-name, too-many-arguments
"""TrendBaseline: the plain trend rule a user would pick instead of the pack.

Textbook parameters, fixed in advance and never tuned on our data:

* long while the daily close is above its 200-day simple moving average (Faber, "A
  Quantitative Approach to Tactical Asset Allocation", 2007: the 10-month / 200-day trend
  filter), out when a day closes below; checked once a day, on the day's close;
* each position sized by inverse volatility: ``equity / N x min(1, 40 % / sigma)``, where
  ``sigma`` is the pair's realised volatility of the last 30 daily returns, annualised, and
  ``N`` the
  number of pairs in the whitelist (Moskowitz, Ooi and Pedersen, "Time series momentum",
  2012, scale every position to 40 % annual volatility); no leverage, never more than an
  equal share;
* no stoploss, no take-profit, no trailing stop: the trend exit is the only exit (and a
  pause of the pair, ``hybrid_ai.pair_pauses``, as for the pack).

Runs on 1h candles, resampled to days inside the strategy (freqtrade's
``merge_informative_pair`` places each day's figures on the day's last hourly candle, whose
close is the day's close: nothing a candle sees is from its future), so a backtest needs only
the 1h files. The report and the walk-forward run it through freqtrade
itself beside buy-and-hold (``lab.baseline``); it needs one slot per pair
(``max_open_trades`` = the whitelist's length) and no FreqAI. A data set shorter than
200 days (the tests' 8 months) may shorten the average with the config key
``trend_baseline.sma_days``; the report never does.
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import talib.abstract as ta
from freqtrade.strategy import IStrategy, merge_informative_pair
from pandas import DataFrame

from hybrid_ai import columns as col
from hybrid_ai import pauses

logger = logging.getLogger(__name__)

SMA_DAYS = 200  # Faber (2007)
VOL_DAYS = 30
TARGET_VOL = 0.40  # Moskowitz, Ooi and Pedersen (2012)
DAYS_PER_YEAR = 365


class TrendBaseline(IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "1h"
    can_short = False
    process_only_new_candles = True
    use_exit_signal = True
    exit_profit_only = False
    minimal_roi = {"0": 100.0}  # no take-profit: the trend exit only
    stoploss = -0.99  # no stop (spot, unlevered: the worst case is the stake)
    trailing_stop = False
    startup_candle_count = (SMA_DAYS + 1) * 24

    def __init__(self, config: dict) -> None:
        super().__init__(config)
        self.startup_candle_count = (self.sma_days + 1) * 24
        self.pair_pauses = pauses.from_config(config)  # as the pack: no entry, open trades exit

    plot_config = {
        "main_plot": {"trend_sma": {"color": "orange"}, "close_1d": {"color": "grey"}},
        "subplots": {"volatility": {"sigma_annual": {"color": "grey"}}},
    }

    @property
    def sma_days(self) -> int:
        return int(self.config.get("trend_baseline", {}).get("sma_days", SMA_DAYS))

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        """``close_1d``, ``trend_sma`` (price) and ``sigma_annual`` (fraction per year) of the
        last complete day, on every hourly row from that day's last hour on."""
        days = (dataframe.resample("1D", on="date")
                .agg({"open": "first", "high": "max", "low": "min", "close": "last",
                      "volume": "sum"}).dropna().reset_index())
        days["trend_sma"] = ta.SMA(days, timeperiod=self.sma_days)
        days["sigma_annual"] = (np.log(days["close"]).diff().rolling(VOL_DAYS).std()
                                * np.sqrt(DAYS_PER_YEAR))
        merged = merge_informative_pair(dataframe, days[["date", "close", "trend_sma",
                                                         "sigma_annual"]],
                                        self.timeframe, "1d", ffill=True)
        return merged.rename(columns={"trend_sma_1d": "trend_sma",
                                      "sigma_annual_1d": "sigma_annual"})

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        up = ((dataframe["close_1d"] > dataframe["trend_sma"])
              & (dataframe["sigma_annual"] > 0) & (dataframe["volume"] > 0)
              & ~pauses.paused(dataframe["date"], metadata["pair"], self.pair_pauses))
        dataframe.loc[up, ["enter_long", "enter_tag"]] = (1, "trend")
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[pauses.paused(dataframe["date"], metadata["pair"], self.pair_pauses),
                      ["exit_long", "exit_tag"]] = (1, col.PAUSE_EXIT)
        dataframe.loc[dataframe["close_1d"] < dataframe["trend_sma"],
                      ["exit_long", "exit_tag"]] = (1, "below_trend")
        return dataframe

    def custom_stake_amount(self, pair: str, current_time: datetime, current_rate: float,
                            proposed_stake: float, min_stake: float | None, max_stake: float,
                            leverage: float, entry_tag: str | None, side: str,
                            **kwargs) -> float:
        """Inverse-volatility stake in the stake currency; 0 (no entry) when sigma is unknown
        or the stake would be below the exchange minimum."""
        df, _ = self.dp.get_analyzed_dataframe(pair, self.timeframe)
        if df.empty or not np.isfinite(sigma := float(df["sigma_annual"].iloc[-1])) \
                or sigma <= 0:
            return 0.0
        pairs = max(len(self.dp.current_whitelist()), 1)
        stake = self.wallets.get_total_stake_amount() / pairs * min(1.0, TARGET_VOL / sigma)
        stake = min(stake, max_stake)
        if min_stake is not None and stake < min_stake:
            return 0.0
        return stake
