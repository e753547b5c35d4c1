# pragma pylint: disable=missing-docstring, invalid-name, too-many-arguments
"""HybridAIStrategy: the execution layer of the hybrid-AI pack (hooks; logic in hybrid_ai/).

Every candle: TA-Lib indicators on 5m and a 1h trend (``hybrid_ai.indicators``); the ML layer
(``freqai.enabled``: LightGBM trained on this strategy's own trade outcomes, ``exit_rules``,
served by ONNX Runtime, ``freqaimodels/``) and the LLM oracle's decision become ``gate_*``
columns (``hybrid_ai.layers``); a technical signal (``hybrid_ai.entries``; by default
momentum over 30 days among the whitelist's top 3) enters where every deciding layer's gate
approves (``hybrid_ai.gates``; a layer in ``hybrid_ai.observe_only`` is computed, not
deciding: the shipped config observes the oracle). Protection no upper layer can loosen: hard
stoploss -10 %, trailing stop 5 % off the high, a time exit after a week, stakes within the
config's hard limits (``hybrid_ai.risk``) and the position rules on open trades
(``hybrid_ai.positions``: the oracle's trims when it decides, then the partial
take-profit). Thresholds are hyperopt parameters; the risk level, margins and hard limits
come from the config's ``hybrid_ai`` section.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from freqtrade.exceptions import OperationalException
from freqtrade.persistence import Trade
from freqtrade.strategy import (
    BooleanParameter,
    CategoricalParameter,
    DecimalParameter,
    IntParameter,
    IStrategy,
    informative,
)
from pandas import DataFrame, Series

from hybrid_ai import entries, momentum, redaction
from hybrid_ai.hyperopt import ProtectiveExitSpaces
from hybrid_ai.indicators import add_ta_indicators
from hybrid_ai.layers import UpperLayers
from hybrid_ai.ml import features as ml_features
from hybrid_ai.ml.labels import ExitRules
from hybrid_ai.oracle.feed import OracleFeed
from hybrid_ai.pack import Pack
from hybrid_ai.plot import PLOT_CONFIG
from hybrid_ai.settings import PackSettings, load_settings

logger = logging.getLogger(__name__)

class HybridAIStrategy(IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "5m"
    can_short = False

    # No profit targets in the ROI table, only freqtrade's time exit: a trade still open
    # after a week exits at the next open (ROI -1). The ML layer's label is the trade's
    # outcome under these exits, so every label spans at most this holding time and
    # freqai.feature_parameters.label_period_candles must equal it (checked at start).
    # Hyperopt's `roi` space searches this horizon (hybrid_ai/hyperopt.py).
    minimal_roi = {"0": 100.0, "10080": -1}

    # Hard stop: -10 % from the entry price, until the trailing stop takes over.
    stoploss = -0.10
    # Trailing stop 5 % below the trade's highest price, armed once the trade has gained
    # 6 % (from then on the stop locks in at least +0.7 %). Armed at once, a 5 % trail
    # would make the -10 % hard stop unreachable after the first up-tick. Freqtrade's
    # built-in trailing (not custom_stoploss): backtests evaluate it with freqtrade's own
    # candle high/low rules, the same logic dry-run and live use; hyperopt's `trailing`
    # space can tune it.
    trailing_stop = True
    trailing_stop_positive = 0.05
    trailing_stop_positive_offset = 0.06
    trailing_only_offset_is_reached = True

    use_exit_signal = True
    exit_profit_only = False
    ignore_roi_if_entry_signal = False

    # Partial take-profit uses freqtrade's position adjustment; no DCA entries.
    position_adjustment_enable = True
    max_entry_position_adjustment = 0
    partial_tp_fraction = 0.5

    process_only_new_candles = True
    # Long enough that RSI/MACD/ATR (recursive formulas) and the 1h SMA50 have converged
    # (freqtrade's recursive-analysis finds no variance at 400) and, on the 1h informative
    # candles (freqtrade loads as many of each timeframe), for the 30-day trend.
    startup_candle_count: int = momentum.WARMUP_HOURS

    order_types = {"entry": "limit", "exit": "limit", "stoploss": "market",
                   "stoploss_on_exchange": False}
    order_time_in_force = {"entry": "GTC", "exit": "GTC"}

    # --- hyperopt parameters ------------------------------------------------------------
    # Which entry rule family proposes trades (hybrid_ai.entries); walk-forward optimisation
    # (make walkforward) chooses it and the thresholds on in-sample windows only. The
    # defaults (momentum over 30 days, the top 3 pairs, a week's holding) are the most
    # robust configuration measured on three years (best Deflated Sharpe; README, "Three years");
    # user_data/presets/oversold-recovery.json restores the earlier 5m oversold entries.
    buy_family = CategoricalParameter(list(entries.FAMILIES), default="momentum", space="buy")
    buy_rsi = IntParameter(20, 45, default=35, space="buy")
    buy_pullback_rsi = IntParameter(35, 55, default=45, space="buy")
    buy_rsi_lookback = IntParameter(3, 24, default=12, space="buy")
    buy_macd_window = IntParameter(1, 6, default=3, space="buy")
    buy_volume_ratio = DecimalParameter(0.5, 2.0, default=0.8, decimals=1, space="buy")
    buy_trend_filter = BooleanParameter(default=True, space="buy")
    # Trends over days (hybrid_ai.momentum): the lookback of the `momentum` family and of the
    # cross-sectional gate, which enters only the top_k strongest pairs (0: off).
    buy_trend_days = CategoricalParameter(list(momentum.TREND_DAYS), default=30, space="buy")
    buy_top_k = IntParameter(0, 5, default=3, space="buy")

    sell_rsi = IntParameter(55, 85, default=68, space="sell")
    sell_partial_tp = DecimalParameter(0.02, 0.10, default=0.04, decimals=3, space="sell")
    # ML exit hysteresis: an open trade exits (tag ml_exit) when a skilled model expects
    # holding it to return below -band (entries need +margin; hybrid_ai.ml.ml_exit: off).
    sell_ml_exit_band = DecimalParameter(0.0, 0.02, default=0.005, decimals=3, space="sell")

    protect_cooldown = IntParameter(1, 12, default=3, space="protection")
    protect_stop_limit = IntParameter(2, 6, default=3, space="protection")
    protect_stop_candles = IntParameter(24, 144, default=72, space="protection")

    # Sane bounds for the protective exits when hyperopt tunes them (hybrid_ai/hyperopt.py):
    # the hard stop between -15 % and -6 %, the trail 3-8 % off the high, armed 0.5-5 % above.
    HyperOpt = ProtectiveExitSpaces

    @property
    def protections(self) -> list[dict]:
        # Active in backtests with --enable-protections, always in dry-run/live.
        return [
            {"method": "CooldownPeriod", "stop_duration_candles": self.protect_cooldown.value},
            {"method": "StoplossGuard", "lookback_period_candles": 288,
             "trade_limit": self.protect_stop_limit.value,
             "stop_duration_candles": self.protect_stop_candles.value, "only_per_pair": False},
        ]

    plot_config = PLOT_CONFIG  # hybrid_ai/plot.py

    # --- lifecycle ----------------------------------------------------------------------
    def __init__(self, config: dict) -> None:
        super().__init__(config)
        mode = getattr(config.get("trading_mode"), "value", config.get("trading_mode"))
        if (mode or "spot") != "spot":  # before freqtrade's pairlist drops every spot pair
            raise OperationalException(
                f"HybridAIStrategy trades spot markets, long only, but trading_mode is {mode!r}: "
                f"set \"trading_mode\": \"spot\" and \"margin_mode\": \"\" in the config.")

    def bot_start(self, **kwargs) -> None:
        """Validate the pack's config once (a bad value stops the bot with a clear error)
        and set up the upper layers and the position rules."""
        redaction.install()  # no API token or password in any log line (FreqUI's Logs too)
        self._settings = load_settings(self.config)
        oracle = None
        if self.settings.oracle.enabled:
            oracle = OracleFeed(self.settings.oracle, base_dir=Path.cwd())
            oracle.refresh()
        self._pack = Pack(self, oracle, Trade)  # hybrid_ai/pack.py: what the hooks call
        if self.ml_enabled:
            self.pack.check_ml_config()
        logger.info("position rules, first match wins: %s",
                    "; ".join(self.pack.position_rules.describe()))

    def bot_loop_start(self, current_time: datetime, **kwargs) -> None:
        # Cheap when nothing changed (one stat call). Live, a new decision is applied to the
        # analysed frames at once (FreqUI shows it, the next entry check sees it), not up to
        # one candle later (FreqAI needs process_only_new_candles).
        if self.layers.refresh(current_time) and self.layers.live:
            frames = {p: self.dp.get_analyzed_dataframe(p, self.timeframe)[0]
                      for p in self.dp.current_whitelist()}
            self.layers.reapply_all(frames, current_time, self.pack.set_entries,
                                     self.pack.set_exits)

    def exit_rules(self, pair: str | None = None, price: float | None = None) -> ExitRules:
        """The exits as the ML label sees them (``Pack.exit_rules``; tools call it here)."""
        return self.pack.exit_rules(pair, price)

    @property
    def settings(self) -> PackSettings:
        if getattr(self, "_settings", None) is None:
            self._settings = load_settings(self.config)
        return self._settings

    @property
    def pack(self) -> Pack:
        if getattr(self, "_pack", None) is None:  # analysed before bot_start (tools)
            self._pack = Pack(self, None, Trade)
        return self._pack

    @property
    def layers(self) -> UpperLayers:
        return self.pack.layers

    @property
    def oracle(self) -> OracleFeed | None:
        return self.layers.oracle

    @property
    def ml_enabled(self) -> bool:
        return bool(self.config.get("freqai", {}).get("enabled", False))

    # --- indicators ---------------------------------------------------------------------
    @informative("1h")
    def populate_indicators_1h(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # Merged as rsi_1h / sma50_1h / close_1h (sma_30d_1h, rank_30d_1h where read),
        # shifted so a 5m candle only sees the last *closed* 1h candle.
        return self.pack.hourly_indicators(dataframe, metadata["pair"])

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # ML layer first: FreqAI copies every column it is handed into its feature frames,
        # so it gets the bare candles (its features come from the feature_engineering_* hooks).
        if self.ml_enabled:
            dataframe = self._start_freqai(dataframe, metadata)
        dataframe = add_ta_indicators(dataframe)
        # The upper layers' gate_* columns and the gate over them; live, the last candle
        # stands for "now" (entries happen now), backtests use each candle's close only.
        now = datetime.now(UTC) if self.layers.live else None
        return self.layers.gated(dataframe, metadata["pair"], now)

    def _start_freqai(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        """FreqAI's predictions; live, a broken model closes only this pair's ML gate."""
        return self.layers.predict(lambda: self.freqai.start(dataframe, metadata, self), dataframe,
                                   metadata["pair"], self.config["freqai"].get("identifier", ""))

    # --- FreqAI hooks (ML layer): features and target, see hybrid_ai.ml.features--------
    def feature_engineering_expand_all(self, dataframe: DataFrame, period: int,
                                       metadata: dict, **kwargs) -> DataFrame:
        return ml_features.expand_all(dataframe, period)

    def feature_engineering_expand_basic(self, dataframe: DataFrame, metadata: dict,
                                         **kwargs) -> DataFrame:
        return ml_features.expand_basic(dataframe)

    def feature_engineering_standard(self, dataframe: DataFrame, metadata: dict,
                                     **kwargs) -> DataFrame:
        return ml_features.standard(dataframe)

    def set_freqai_targets(self, dataframe: DataFrame, metadata: dict, **kwargs) -> DataFrame:
        # The label: the outcome of a trade entered after each candle under this strategy's
        # exits, the family's own exit signal included (hybrid_ai.ml.labels).
        rules = self.exit_rules(metadata.get("pair"), float(dataframe["close"].iloc[-1])
                                if len(dataframe) else None)
        return ml_features.targets(dataframe, rules, self.technical_exit(dataframe))

    def technical_exit(self, candles: DataFrame) -> Series:
        """The family's own exit from raw candles (``Pack.technical_exit``)."""
        return self.pack.technical_exit(candles)

    # --- signals ------------------------------------------------------------------------
    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        self.pack.entry_signal(dataframe)  # ta_signal, then the gates (hybrid_ai/pack.py)
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        self.pack.exit_signal(dataframe)  # ta_exit, then the list of exit signals
        return dataframe

    # --- sizing and entry confirmation --------------------------------------------------
    def custom_stake_amount(self, pair: str, current_time: datetime, current_rate: float,
                            proposed_stake: float, min_stake: float | None, max_stake: float,
                            leverage: float, entry_tag: str | None, side: str,
                            **kwargs) -> float:
        """Freqtrade's stake x risk-level multiplier x ML target position, within the hard
        caps tightened by the oracle's decision (0 = skip; any failure: 0)."""
        try:
            return self.pack.stake(pair, current_time, proposed_stake, min_stake, max_stake)
        except Exception as exc:
            self.layers.fault("stake sizing", pair, exc)
            return 0.0

    def confirm_trade_entry(self, pair: str, order_type: str, amount: float, rate: float,
                            time_in_force: str, current_time: datetime, entry_tag: str | None,
                            side: str, **kwargs) -> bool:
        """Last check against the oracle's latest word: focus and open-trade slots (any
        failure: refused)."""
        try:
            refusal = self.pack.refusal(pair, current_time)
        except Exception as exc:
            self.layers.fault("the entry confirmation", pair, exc)
            return False
        if refusal:
            logger.info("%s: entry refused, %s", pair, refusal)
        return refusal is None

    # --- open trades: the position rules (hybrid_ai.positions) ---------------------------
    def adjust_trade_position(self, trade: Trade, current_time: datetime, current_rate: float,
                              current_profit: float, min_stake: float | None, max_stake: float,
                              current_entry_rate: float, current_exit_rate: float,
                              current_entry_profit: float, current_exit_profit: float,
                              **kwargs) -> float | tuple[float | None, str | None] | None:
        """The position rules in their order of precedence (the oracle's trims, then the
        partial take-profit), each selling what the exchange minimum lets stay open."""
        return self.pack.adjust(trade, current_time, current_exit_rate, current_exit_profit,
                                min_stake)
