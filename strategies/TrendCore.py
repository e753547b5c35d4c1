# pragma pylint: disable=missing-docstring, invalid-name, too-many-arguments
"""TrendCore: the published trend core, the shipped defaults (``config.json``, issue #32).

Zarattini, Pagani and Barbon (2025), "Catching Crypto Trends" (SSRN 5209907), parameters
from the paper, never tuned (``hybrid_ai/trend_core.py`` holds the rules and constants):
nine Donchian rules over 5..360 days, the pair's ensemble share long x a 25 % volatility
target (90-day sigma) / N, the whole book scaled to the same target (``trend_core.sizing``
"book_target" as shipped), each pair capped at twice the equal share and at
``hybrid_ai.limits.max_stake_per_trade``, the whitelist's total within
``hybrid_ai.limits.max_total_exposure`` of equity. Spot, long only, no stoploss, no
take-profit as shipped.

* decisions once a day: the daily values (1h candles resampled inside the strategy, merged
  so that a day shows from its last hourly candle on, as TrendBaseline) change on that
  candle only, and entries and rebalances act on it only (``tc_decide``);
* entry (tag ``trend_core``) when the target weight is positive, at the target stake
  (weight x equity); exit (``trend_off``) when it is back to zero; a held position is
  bought or sold back to its target (orders tagged ``rebalance``) only when off by more than
  ``BAND`` (20 %) of it; every order within the exchange minimum and ``max_stake``;
* how the whitelist shares the budget: ``trend_core.sizing`` (``hybrid_ai.trend_core``'s
  docstring: the published split, pooled, or the book at the volatility target), capped
  per pair;
* equity is freqtrade's ``wallets.get_total_stake_amount()`` (the tradable balance at cost)
  plus the open trades' unrealised profit at the last close: a target of marked equity;
* protections, each off as shipped and each tagged: freqtrade's hard stop (``stoploss``,
  exit ``stop_loss``) and trailing stop off the high (``trailing_stop*``, exit
  ``trailing_stop_loss``) from the config's own keys, checked on every candle (and every
  5 s live); a partial take-profit (``trend_core.partial_tp``, orders ``partial_tp``,
  judged once a day with the decision), after
  which the trade's target is the rest (``1 - fraction`` of the core's): rebalances may sell
  down to it and never buy back;
* the oracle, where it decides (``hybrid_ai.oracle.enabled`` and not in
  ``hybrid_ai.observe_only``; the shipped config observes it, so it does not steer): its
  risk level scales the volatility target by the pack's ``stake_multipliers`` (within the
  per-pair cap and the book's budget; no valid decision: conservative), and its focus list
  restricts which pairs are entered or added to; sales, exits and stops never wait for it;
* pauses as TrendBaseline (``hybrid_ai.pair_pauses``); one slot per pair
  (``max_open_trades`` >= the whitelist's length), ``stake_amount`` "unlimited".

History: a pair's days are its 1h candles resampled to UTC days where the 1h candles reach
(a day's close counts on its 23:00 candle, whenever freqtrade refreshes the 1d ones), and
freqtrade's own 1d candles (``informative_pairs``) for the days before: live the
exchange's, fetched at start with as many calls as the 1h warm-up takes (5 x 1000 days on
Binance: every day since listing), in a backtest the 1d files (freqtrade loads
``startup_candle_count`` 1d candles: every day they hold before the range). So all nine
rules see full channels live and in a backtest alike, and a run's values do not depend on
its warm-up (freqtrade's ``recursive-analysis``). Without 1d candles (a datadir of 1h files
only: ``python -m lab.daily_files`` writes them offline, ``freqtrade download-data -t 1d``
online; said once) the loaded 1h history bounds the days: ``startup_candle_count`` = 200
days (``trend_core.startup_days``; the 8-month test data shortens it), and the 250- and
360-day rules complete only once that much is loaded.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from freqtrade.enums import RunMode
from freqtrade.persistence import Trade
from freqtrade.strategy import IStrategy, merge_informative_pair
from pandas import DataFrame

from hybrid_ai import columns as col
from hybrid_ai import pauses, trend_core
from hybrid_ai.exits import exit_minimum
from hybrid_ai.oracle.feed import Guidance, OracleFeed
from hybrid_ai.positions import OpenPosition, PartialTakeProfit, PositionRules, took_profit
from hybrid_ai.settings import load_settings
from hybrid_ai.universe import universe
from llm_oracle.once import Once

logger = logging.getLogger(__name__)

COLUMNS = ["date", "close", "share", "sigma", "weight", "book"]
DAILY = "1d"  # the core's decision timeframe
CANDLE = ["date", "open", "high", "low", "close", "volume"]


class TrendCore(IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "1h"
    can_short = False
    process_only_new_candles = True
    use_exit_signal = True
    exit_profit_only = False
    minimal_roi = {"0": 100.0}  # no take-profit: the trend exit only
    stoploss = -0.99  # no stop (spot, unlevered: the worst case is the stake)
    trailing_stop = False
    max_entry_position_adjustment = -1  # the band bounds the rebalances, not a count
    startup_candle_count = (trend_core.STARTUP_DAYS + 1) * 24

    plot_config = {
        "main_plot": {"close_1d": {"color": "grey"}},
        "subplots": {"trend core": {"tc_weight": {"color": "blue"},
                                    "tc_share": {"color": "orange"},
                                    "tc_book": {"color": "green"}}},
    }

    def __init__(self, config: dict) -> None:
        super().__init__(config)
        self.core = trend_core.load_core_settings(config)
        self.startup_candle_count = (self.core.startup_days + 1) * 24
        self.pair_pauses = pauses.from_config(config)
        self._book: tuple[tuple, pd.DataFrame] | None = None
        self._n_pairs = 1
        self._adjust_now = True
        self.settings = load_settings(config)  # the pack's: oracle, risk multipliers, pauses
        self.oracle: OracleFeed | None = None
        self._faults = Once(logger)
        tp = self.core.partial_tp
        self.position_rules = PositionRules(
            [PartialTakeProfit(tp.gain, tp.fraction)] if tp else [],
            live=config.get("runmode") in (RunMode.DRY_RUN, RunMode.LIVE))

    def bot_start(self, **kwargs) -> None:
        if self.settings.oracle.enabled and self.settings.decides("oracle"):
            self.oracle = OracleFeed(self.settings.oracle, base_dir=Path.cwd())
            self.oracle.refresh()
        logger.info("TrendCore: %s; position rules: %s; oracle: %s", self.core,
                    "; ".join(self.position_rules.describe()) or "none",
                    self.settings.oracle.source if self.oracle else "off")

    @property
    def position_adjustment_enable(self) -> bool:
        """Always, live. A backtest asks ``adjust_trade_position`` on every candle for every
        open trade and deep-copies the trade with all its orders for each call (freqtrade's
        ``strategy_safe_wrapper``): three quarters of a run's time for a hook that acts once
        a day. So backtests ask only on the first candle of a UTC day, the one that shows the
        day's decision (``bot_loop_start`` keeps the candle's time)."""
        return getattr(self, "_adjust_now", True)

    def bot_loop_start(self, current_time: datetime, **kwargs) -> None:
        if self.config.get("runmode") in (RunMode.BACKTEST, RunMode.HYPEROPT):
            self._adjust_now = current_time.hour == 0
        elif self.oracle is not None:
            self.oracle.refresh()  # live: a new decision counts from the next loop on

    def informative_pairs(self) -> list[tuple[str, str]]:
        """Every whitelisted pair's 1d candles: the core's days (see the module's History)."""
        return [(p, DAILY) for p in universe(getattr(self, "dp", None), self.config)]

    def _days(self, pair: str, hourly: pd.DataFrame | None = None) -> pd.DataFrame:
        """``pair``'s daily candles (``date`` the day's midnight UTC, oldest first; the last
        row may be a day in progress, which ``merge_informative_pair`` never shows early):
        the days ``hourly`` covers (default: the data provider's 1h candles) resampled from
        it, so that a day's close counts on its last hourly candle whenever freqtrade
        refreshes the 1d ones; the days before, freqtrade's 1d candles (said once where there
        are none)."""
        if hourly is None:
            hourly = self.dp.get_pair_dataframe(pair, self.timeframe)
        days = trend_core.daily_candles(hourly)
        if days.empty:
            return days
        first = hourly["date"].iloc[0].ceil("1D")  # the first whole day of the 1h candles
        days = days[days["date"] >= first]
        daily = self.dp.get_pair_dataframe(pair, DAILY)
        if daily is None or daily.empty:
            if "no-1d" not in self._faults:  # one line for the whole run, not one per pair
                self._faults.say("no-1d", f"TrendCore: no 1d candles for {pair} (and maybe other "
                                 "pairs): its days are the 1h candles' alone, so the 250- and "
                                 "360-day rules wait for that much 1h history; 1d files give every "
                                 "day (python -m lab.daily_files DATADIR offline, freqtrade "
                                 "download-data -t 1d online)", logging.INFO)
            return days.reset_index(drop=True)
        older = daily.loc[daily["date"] < first, CANDLE].copy()
        older["date"] = older["date"].astype(days["date"].dtype)
        return pd.concat([older, days], ignore_index=True)

    def _weights(self, pair: str, days: pd.DataFrame,
                 candle: datetime) -> tuple[pd.Series, pd.Series]:
        """``pair``'s target weight per day and the book's total per day (of equity, within
        ``hybrid_ai.limits``: a pair at most ``max_stake_per_trade``, the book at most
        ``max_total_exposure``) within the whitelist's book (every pair's
        candles from the data provider, ``pair``'s own from the frame being analysed;
        computed once per hourly ``candle`` for all pairs: keyed by the day alone, live would
        keep the book of the day's first hour, its close not yet the day's)."""
        pairs = sorted({*universe(getattr(self, "dp", None), self.config), pair})
        key = (tuple(pairs), candle)
        if self._book is None or self._book[0] != key:
            by_pair = {pair: days}
            for p in pairs:
                daily = self._days(p) if p != pair else None
                if daily is not None and not daily.empty:
                    by_pair[p] = trend_core.core_days(daily, len(pairs))
            limits = self.settings.limits
            self._book = (key, trend_core.book_weights(
                by_pair, len(pairs), self.core.sizing, budget=limits.max_total_exposure,
                pair_limit=limits.max_stake_per_trade))
            self._n_pairs = len(pairs)
        book = self._book[1]
        weight = book[pair] if pair in book else pd.Series(dtype=float)
        return weight, book.sum(axis=1)

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        """Per hourly row, the last complete day's ``tc_share`` (0..1), ``tc_sigma`` (per
        year), ``tc_weight`` (the pair's target, of equity) and ``tc_book`` (the whitelist's
        total target, of equity); ``tc_decide`` on the first row showing a day's values (its
        last hourly candle)."""
        pair = metadata["pair"]
        days = trend_core.core_days(self._days(pair, dataframe), 1)
        last = dataframe["date"].iloc[-1] if len(dataframe) else None
        weight, book = self._weights(pair, days, last)
        days["weight"] = weight.reindex(days["date"]).fillna(0.0).to_numpy()
        days["book"] = book.reindex(days["date"]).fillna(0.0).to_numpy()
        merged = merge_informative_pair(dataframe, days[COLUMNS], self.timeframe, "1d",
                                        ffill=True)
        merged = merged.rename(columns={"share_1d": "tc_share", "sigma_1d": "tc_sigma",
                                        "weight_1d": "tc_weight", "book_1d": "tc_book"})
        merged["tc_decide"] = merged["date_1d"].notna() & (
            merged["date_1d"] != merged["date_1d"].shift())
        return merged

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        up = (dataframe["tc_decide"] & (dataframe["tc_weight"] > 0) & (dataframe["volume"] > 0)
              & ~pauses.paused(dataframe["date"], metadata["pair"], self.pair_pauses))
        dataframe.loc[up, ["enter_long", "enter_tag"]] = (1, "trend_core")
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[pauses.paused(dataframe["date"], metadata["pair"], self.pair_pauses),
                      ["exit_long", "exit_tag"]] = (1, col.PAUSE_EXIT)
        dataframe.loc[dataframe["tc_weight"].fillna(0) <= 0,
                      ["exit_long", "exit_tag"]] = (1, "trend_off")
        return dataframe

    def _equity(self) -> float:
        """Tradable equity marked to market at the last closes (stake currency)."""
        unrealised = 0.0
        for trade in Trade.get_open_trades():
            df, _ = self.dp.get_analyzed_dataframe(trade.pair, self.timeframe)
            if not df.empty and np.isfinite(close := float(df["close"].iat[-1])):
                unrealised += trade.amount * close - trade.stake_amount
        ratio = float(self.config.get("tradable_balance_ratio", 0.99))
        return self.wallets.get_total_stake_amount() + ratio * unrealised

    def _target(self, pair: str, decision_only: bool, now: datetime) -> float | None:
        """The pair's target value now (stake currency): its weight x the oracle's factor
        x marked equity, the factor within the book's budget (``max_total_exposure`` over
        the day's book total) and the weight within ``PAIR_CAP / N`` and
        ``max_stake_per_trade``; None when no decision is due."""
        df, _ = self.dp.get_analyzed_dataframe(pair, self.timeframe)
        if df.empty or (decision_only and not bool(df["tc_decide"].iat[-1])):
            return None  # called every candle: the cheap check first
        weight = float(df["tc_weight"].iat[-1])
        if not np.isfinite(weight) or weight <= 0:
            return 0.0
        limits = self.settings.limits
        factor = self._risk_factor(now)
        book = float(df["tc_book"].iat[-1])
        if factor > 1 and np.isfinite(book) and book > 0:
            factor = max(1.0, min(factor, limits.max_total_exposure / book))
        weight = min(weight * factor, trend_core.PAIR_CAP / self._n_pairs,
                     limits.max_stake_per_trade)
        return weight * self._equity()

    def _guidance(self, now: datetime) -> Guidance | None:
        return self.oracle.at(now) if self.oracle is not None else None

    def _risk_factor(self, now: datetime) -> float:
        """The oracle's risk level as a factor on the volatility target: the pack's
        ``hybrid_ai.stake_multipliers`` (conservative 0.5, moderate 1, aggressive 1.5 as
        shipped; without a valid decision, conservative); 1 without an oracle."""
        guidance = self._guidance(now)
        return 1.0 if guidance is None else self.settings.multiplier(guidance.risk_level)

    def _may_add(self, pair: str, now: datetime) -> bool:
        """Whether the oracle lets the book add to ``pair`` (its focus list, when
        ``hybrid_ai.oracle.require_focus``); sales and exits never wait for it."""
        guidance = self._guidance(now)
        return guidance is None or guidance.allows(pair, self.settings.oracle.require_focus)

    def custom_stake_amount(self, pair: str, current_time: datetime, current_rate: float,
                            proposed_stake: float, min_stake: float | None, max_stake: float,
                            leverage: float, entry_tag: str | None, side: str,
                            **kwargs) -> float:
        """The target stake, within ``max_stake``; 0 (no entry) below the exchange minimum,
        outside the oracle's focus, or on any failure (freqtrade would fall back to its own
        stake: the entry side fails closed)."""
        try:
            if not self._may_add(pair, current_time):
                return 0.0
            stake = min(self._target(pair, False, current_time) or 0.0, max_stake)
            fits = trend_core.fits_minimum(stake, min_stake,
                                           self._step_value(pair, current_rate))
        except Exception as exc:  # any failure: no entry, said once
            self._faults.say(f"stake:{type(exc).__name__}", f"{pair}: stake sizing failed "
                             f"({type(exc).__name__}: {exc}): no entry", logging.ERROR)
            return 0.0
        return stake if fits else 0.0

    def _step_value(self, pair: str, rate: float) -> float:
        """One amount step of ``pair`` at ``rate`` (stake currency): what truncation may cut."""
        exchange = getattr(self.dp, "_exchange", None)
        if exchange is None:
            return 0.0
        step = trend_core.amount_step(exchange.get_precision_amount(pair),
                                      exchange.precisionMode)
        return step * rate

    def adjust_trade_position(self, trade: Trade, current_time: datetime, current_rate: float,
                              current_profit: float, min_stake: float | None, max_stake: float,
                              current_entry_rate: float, current_exit_rate: float,
                              current_entry_profit: float, current_exit_profit: float,
                              **kwargs) -> tuple[float | None, str | None] | None:
        """Once a day, on the decision: the partial take-profit (when configured; judged on
        the core's time scale), else back to the target when off by more than the band."""
        if trade.has_open_orders or not trade.amount:
            return None
        target = self._target(trade.pair, True, current_time)
        if target is None:
            return None  # not the day's decision
        minimum = exit_minimum(getattr(self.dp, "_exchange", None), trade.pair,
                               current_exit_rate, self.stoploss, min_stake)
        position = OpenPosition.of_trade(trade, current_exit_rate, current_exit_profit)
        if sale := self.position_rules.adjust(position, current_time, minimum):
            return sale
        if not target:
            return None
        took = self.core.partial_tp is not None and took_profit(trade)
        if took:  # the rest is the position now: sold down to it, never bought back
            target *= 1.0 - self.core.partial_tp.fraction
        value = trade.amount * current_exit_rate
        order = trend_core.rebalance(value, target, min_stake if target > value else minimum,
                                     max_stake,
                                     step_value=self._step_value(trade.pair, current_exit_rate))
        if order is None or (order > 0 and (took or not self._may_add(trade.pair,
                                                                       current_time))):
            return None
        if order > 0:
            return order, "rebalance"
        return -trade.stake_amount * (-order / value), "rebalance"
