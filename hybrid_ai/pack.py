"""The composition root: what the strategy's hooks hand over to, built once in ``bot_start``.

``Pack`` wires the pack's parts for one strategy from its config and its hyperopt
parameters (read through the strategy on every call: hyperopt changes them per epoch):

* the entry and exit columns (``hybrid_ai.entries`` + the upper layers' gates,
  ``hybrid_ai.positions.exit_columns`` over the list of exit signals);
* the stake of a new trade (``hybrid_ai.risk.StakeSizing``: risk level x the oracle's
  guidance x the ML target position, within the hard limits);
* the last check before an entry (``hybrid_ai.oracle.entry.oracle_refusal``);
* the position rules on open trades, in their order of precedence (the oracle's trims
  when it decides, then the partial take-profit);
* the 1h informative columns (``hybrid_ai.momentum``: trends over days and the whitelist's
  ranks, only where something reads them) and the exits as the ML label sees them
  (``exit_rules``, ``technical_exit``).

Which layers decide (``hybrid_ai.observe_only``) is read here once; the hooks never branch on
it. Shapes: every ``df`` is one pair's analysed frame (one row per candle, freqtrade's
columns plus ``hybrid_ai.columns``); stakes are in the stake currency.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import numpy as np
from freqtrade.enums import RunMode
from freqtrade.exceptions import OperationalException
from pandas import DataFrame, Series

from hybrid_ai import columns as col
from hybrid_ai import entries, momentum, positions
from hybrid_ai.exits import exit_minimum, take_profit_share, typical_stake
from hybrid_ai.gates import entry_tag
from hybrid_ai.indicators import add_hourly_indicators, add_ta_indicators
from hybrid_ai.layers import UpperLayers
from hybrid_ai.ml import features as ml_features
from hybrid_ai.ml.labels import ExitRules
from hybrid_ai.ml.signals import ml_exit_signal
from hybrid_ai.oracle import steering
from hybrid_ai.oracle.entry import entry_limits, oracle_refusal
from hybrid_ai.oracle.feed import OracleFeed
from hybrid_ai.positions import OpenPosition, PositionRule, PositionRules
from hybrid_ai.risk import StakeRefusals, StakeSizing
from hybrid_ai.universe import universe

logger = logging.getLogger(__name__)

DEFAULT_FEE = 0.001  # per side, when the config sets no "fee" (Binance spot's taker fee)


class Pack:
    """The pack's parts for one ``HybridAIStrategy`` (its parameters, config, wallets, data
    provider and trades are read through ``strategy``).

    :param oracle: the oracle's feed (None: no oracle)
    :param trades: freqtrade's ``Trade`` (open trades and their count)
    """

    def __init__(self, strategy: Any, oracle: OracleFeed | None, trades: Any) -> None:
        self.strategy, self.trades = strategy, trades
        self.settings = strategy.settings
        self.layers = UpperLayers.of_strategy(strategy, oracle)
        self.overnight_at = self.settings.oracle.overnight_time(strategy.config)
        self.refusals = StakeRefusals()
        self.ml_decides = strategy.ml_enabled and self.settings.decides("ml")
        self.steering: steering.OracleSteering | None = None
        self.position_rules = PositionRules(self._position_rules(), self.layers.live,
                                            self.layers.announce_trim)
        self.cross_section = momentum.CrossSection(
            lambda pair: strategy.dp.get_pair_dataframe(pair, "1h"))

    # -- indicators -----------------------------------------------------------------------------
    def hourly_indicators(self, df: DataFrame, pair: str) -> DataFrame:
        """The 1h informative columns (freqtrade merges them as ``rsi_1h``, ``sma50_1h``,
        ``close_1h``, ``sma_{d}d_1h``, ``rank_{d}d_1h``): RSI and SMA 50, and the trends over
        days only where something reads them (the merge onto 5m candles costs)."""
        df = add_hourly_indicators(df)
        if lookbacks := self._trend_lookbacks():
            df = momentum.add_trends(df, lookbacks)
            if self.strategy.buy_top_k.value > 0 or self._hyperopting:
                pairs = universe(getattr(self.strategy, "dp", None), self.strategy.config)
                ranks = self.cross_section.ranks(pair, df, pairs, lookbacks)
                df = df.join(ranks.set_index(df.index))
        return df

    def _trend_lookbacks(self) -> tuple[int, ...]:
        """Every lookback while hyperopt searches them; the one in use when the family or
        the top-k gate needs it; none otherwise."""
        s = self.strategy
        if self._hyperopting:
            return momentum.TREND_DAYS
        if s.buy_family.value == "momentum" or s.buy_top_k.value > 0:
            return (s.buy_trend_days.value,)
        return ()

    @property
    def _hyperopting(self) -> bool:
        return self.strategy.config.get("runmode") == RunMode.HYPEROPT

    # -- the exits as the ML label sees them ----------------------------------------------------
    def exit_rules(self, pair: str | None = None, price: float | None = None) -> ExitRules:
        """The exits from the strategy's own parameters (change a stop, the trail, the
        take-profit or the time exit and the label follows). With ``pair`` and ``price`` the
        take-profit's share follows the exchange-minimum rule the trade follows
        (``hybrid_ai.exits``) for a typical stake of this wallet.

        :raises OperationalException: no time exit in the strategy's ``minimal_roi``
        """
        s = self.strategy
        share = s.partial_tp_fraction
        if pair and price:
            wallets = getattr(s, "wallets", None)
            share = take_profit_share(share, s.sell_partial_tp.value, typical_stake(
                s.config, wallets.get_total_stake_amount() if wallets else None,
                self.settings.limits.max_stake_per_trade), self.exit_minimum(pair, price))
        try:
            return ExitRules.of_strategy(s, share, float(s.config.get("fee") or DEFAULT_FEE))
        except ValueError as exc:
            raise OperationalException(str(exc)) from exc

    def technical_exit(self, candles: DataFrame) -> Series:
        """The entry family's own exit from raw candles (FreqAI's target hook and the tools
        see OHLCV only, not the strategy's indicator columns): the reversal, or the trend
        break with its 1h columns resampled from the candles. Not the top-k gate's rank
        drop: it needs the other pairs' candles, so the label ignores it."""
        s = self.strategy
        indicators = add_ta_indicators(candles[["date", "open", "high", "low", "close",
                                                "volume"]].copy())
        if s.buy_family.value == "momentum":
            indicators = indicators.join(momentum.trend_columns(
                indicators, s.timeframe, (s.buy_trend_days.value,)))
        return entries.technical_exit(indicators, s.buy_family.value,
                                      rsi_level=s.sell_rsi.value,
                                      trend_days=s.buy_trend_days.value)

    def label_horizon(self) -> int:
        """``freqai.feature_parameters.label_period_candles``; where the config sets none, the
        time exit in candles of the timeframe in use, written into the config for FreqAI's
        model to read (one fact: ``timeframe`` alone switches 5m to 1h)."""
        features = self.strategy.config["freqai"]["feature_parameters"]
        if features.get("label_period_candles") is None:
            features["label_period_candles"] = self.exit_rules().max_hold
            logger.info("freqai.feature_parameters.label_period_candles: %d (the time exit "
                        "in %s candles)", features["label_period_candles"],
                        self.strategy.timeframe)
        return features["label_period_candles"]

    def check_ml_config(self) -> None:
        """Stop the bot, saying what to set, when FreqAI would train on the wrong thing or
        nothing: a label horizon other than the maximum holding time (FreqAI purges by
        label_period_candles; ``label_horizon``), or correlated pairs quoted in another stake
        currency.

        :raises OperationalException: with what to set
        """
        config = self.strategy.config
        configured = self.label_horizon()
        if problem := (self.exit_rules().horizon_mismatch(configured)
                       or ml_features.corr_pairs_problem(config)):
            raise OperationalException(problem)

    # -- signals ------------------------------------------------------------------------------
    def entry_signal(self, df: DataFrame) -> None:
        """``ta_signal``: the entry family's signal (with the 1h trend filter), then the
        entries where every deciding layer's gate approves."""
        s = self.strategy
        signal = entries.signal(
            df, s.buy_family.value, rsi_level=s.buy_rsi.value,
            pullback_rsi=s.buy_pullback_rsi.value, lookback=s.buy_rsi_lookback.value,
            macd_window=s.buy_macd_window.value, volume_ratio=s.buy_volume_ratio.value,
            trend_days=s.buy_trend_days.value, top_k=s.buy_top_k.value)
        if s.buy_trend_filter.value:
            signal &= df["close_1h"] > df["sma50_1h"]
        df[col.TA_SIGNAL] = signal.astype(int)
        self.set_entries(df)

    def set_entries(self, df: DataFrame) -> None:
        """Enter where the technical signal and every deciding layer's gate agree."""
        enter = (df[col.TA_SIGNAL] == 1).to_numpy() & df[col.APPROVED].to_numpy(bool)
        df["enter_long"] = enter.astype(int)
        df["enter_tag"] = np.where(enter, entry_tag(df, self.settings.observe_only), None)

    def exit_signal(self, df: DataFrame) -> None:
        """``ta_exit``: the family's own exits, then every exit signal of the list."""
        family = self._family_exits(df)
        df[col.TA_EXIT] = entries.any_signal(family).astype(int)
        self.set_exits(df, family)

    def _family_exits(self, df: DataFrame) -> list[tuple[str, Series]]:
        s = self.strategy
        return entries.exit_signals(df, s.buy_family.value, rsi_level=s.sell_rsi.value,
                                    trend_days=s.buy_trend_days.value, top_k=s.buy_top_k.value)

    def set_exits(self, df: DataFrame, family: list[tuple[str, Series]] | None = None) -> None:
        """Exit signals (freqtrade exits at the next open, every open trade of the pair), the
        first of the list naming the exit: the entry family's own (``rank_drop``, then
        ``trend_break`` or ``ta_reversal``), ``ml_exit`` (a skilled model expects holding to
        lose), ``oracle_exit`` (the decision in force biases the pair at or below
        ``hybrid_ai.oracle.exit_bias``), a pause of the pair. ``family``: the family's exit
        signals when the caller has them (None: computed here, e.g. live re-gating)."""
        s, no = self.strategy, np.zeros(len(df), bool)
        ml_exit = (ml_exit_signal(df, s.sell_ml_exit_band.value).to_numpy(bool)
                   if self.ml_decides and self.settings.ml.ml_exit else no)
        oracle_exit = (df[col.ORACLE_EXIT].to_numpy(bool)
                       if self.layers.oracle_decides and col.ORACLE_EXIT in df else no)
        df[col.ML_EXIT] = ml_exit.astype(int)
        paused = df[col.PAUSED].to_numpy(bool) if col.PAUSED in df else no
        ta_exit = (df[col.TA_EXIT] == 1).to_numpy()  # the family's exits, named by signal
        named = [positions.ExitSignal(tag, mask.to_numpy(bool) & ta_exit)
                 for tag, mask in family or self._family_exits(df)]
        df["exit_long"], df["exit_tag"] = positions.exit_columns([
            *named, positions.ExitSignal(col.ML_EXIT, ml_exit),
            positions.ExitSignal(col.ORACLE_EXIT, oracle_exit),
            positions.ExitSignal(col.PAUSE_EXIT, paused)])

    # -- a new trade --------------------------------------------------------------------------
    def stake(self, pair: str, now: datetime, proposed_stake: float,
              min_stake: float | None, max_stake: float) -> float:
        """Freqtrade's stake x risk-level multiplier x ML target position, within the hard
        caps tightened by the oracle's decision (0: no stake fits, said once why)."""
        level, limits = self.settings.risk_level, self.settings.limits
        if self.layers.oracle_decides:
            guidance = self.layers.oracle.at(now)
            level = guidance.risk_level
            overnight = steering.overnight_since(guidance, now, self.overnight_at) is not None
            limits = entry_limits(limits, guidance, overnight)
        multiplier = self.settings.multiplier(level)
        if self.ml_decides:
            df, _ = self.strategy.dp.get_analyzed_dataframe(pair, self.strategy.timeframe)
            if df.empty or col.ML_TARGET_POSITION not in df:
                return 0.0
            multiplier *= float(df[col.ML_TARGET_POSITION].iloc[-1])
        wallets = self.strategy.wallets
        sizing = StakeSizing(
            proposed=proposed_stake, multiplier=multiplier,
            equity=wallets.get_total_stake_amount() if wallets else proposed_stake,
            open_exposure=sum(t.stake_amount for t in self.trades.get_open_trades()),
            limits=limits, min_stake=min_stake, max_stake=max_stake)
        self.refusals.say(pair, sizing, self.strategy.config.get("stake_currency", ""))
        return sizing.stake

    def refusal(self, pair: str, now: datetime) -> str | None:
        """Why the oracle's latest word refuses an entry in ``pair`` now (None: it does not,
        or the oracle does not decide)."""
        if not self.layers.oracle_decides:
            return None
        return oracle_refusal(self.layers.oracle.at(now), pair, self.settings.oracle,
                              self.trades.get_open_trade_count())

    # -- open trades --------------------------------------------------------------------------
    def exit_minimum(self, pair: str | None, rate: float | None,
                     known: float | None = None) -> float | None:
        """The exchange's minimum stake for an exit (backtests: the one freqtrade passed)."""
        if known is not None and not self.layers.live:
            return known
        exchange = getattr(getattr(self.strategy, "dp", None), "_exchange", None)
        return exit_minimum(exchange, pair, rate, self.strategy.stoploss, known)

    def adjust(self, trade: Any, now: datetime, rate: float, profit: float,
               min_stake: float | None) -> tuple[float, str] | None:
        """The position rules for one open trade at the exit ``rate``: (-stake, tag) or None."""
        minimum = self.exit_minimum(trade.pair, rate, min_stake)
        return self.position_rules.adjust(OpenPosition.of_trade(trade, rate, profit), now,
                                          minimum)

    def _position_rules(self) -> list[PositionRule]:
        """The oracle's trims (``hybrid_ai.oracle.steer_open_trades``), then the take-profit."""
        rules: list[PositionRule] = []
        if self.layers.oracle_decides and self.settings.oracle.steer_open_trades:
            self.steering = steering.OracleSteering(
                self.settings, self.layers.oracle.at, self._portfolio, self.overnight_at,
                steering.TradeMemory())
            rules += [steering.OracleDerisk(self.steering),
                      steering.OvernightTrim(self.steering)]
        s = self.strategy
        return [*rules, positions.PartialTakeProfit(lambda: s.sell_partial_tp.value,
                                                    s.partial_tp_fraction)]

    def _portfolio(self) -> tuple[list[OpenPosition], float]:
        """Every open trade (its committed stake), and the equity (stake currency)."""
        return ([OpenPosition.of_trade(t) for t in self.trades.get_open_trades()],
                self.strategy.wallets.get_total_stake_amount())
