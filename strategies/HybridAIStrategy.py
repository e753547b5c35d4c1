# pragma pylint: disable=missing-docstring, invalid-name, too-many-arguments
"""HybridAIStrategy: the execution layer of the hybrid-AI pack.

Every candle:
  1. TA-Lib indicators on 5m candles, plus a 1h trend (informative timeframe).
  2. ML layer (when ``freqai.enabled``): FreqAI trains LightGBM on the features below to
     predict whether a trade entered at a candle would win under this strategy's own exits
     (``exit_rules``), and predicts through ONNX Runtime
     (``freqaimodels/LightGBMOnnxClassifier.py``): ``ml_buy_prob``, ``ml_expected_return``,
     ``ml_target_position`` (fractional Kelly) and the ``gate_ml`` column; the same expected
     value re-scores open trades (exit tag ``ml_exit``).
  3. A technical entry signal from one rule family (``hybrid_ai.entries``: oversold
     recovery, breakout, pullback in trend; enough volume, 1h trend up).
  4. The approval gate: upper layers (ML, LLM oracle) add ``gate_*`` columns; the signal
     trades only where all of them approve (see ``hybrid_ai.gates``).
  5. Capital protection that no upper layer can loosen: hard stoploss -10 %, trailing
     stop 5 % off the trade's high, partial take-profit (half the position, once), a time
     exit after 24 h, stakes scaled by the risk level and the ML target position, capped by
     the config's hard limits.

Thresholds are hyperopt parameters (``buy`` / ``sell`` spaces, the ML exit band included);
the risk level, the ML gate's margins and the hard limits come from the config's
``hybrid_ai`` section (``hybrid_ai.settings``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import talib.abstract as ta
from freqtrade.exceptions import OperationalException
from freqtrade.exchange import timeframe_to_minutes
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

from hybrid_ai import entries, gates, redaction
from hybrid_ai.exits import Cut, sellable_cut
from hybrid_ai.indicators import add_ta_indicators
from hybrid_ai.ml import features as ml_features
from hybrid_ai.ml.labels import ExitRules
from hybrid_ai.ml.signals import RISK_RANK, TRAINING_VALUES, add_ml_columns, ml_exit_signal
from hybrid_ai.oracle_feed import OracleFeed
from hybrid_ai.risk import StakeSizing
from hybrid_ai.settings import HardLimits, PackSettings, RiskLevel, load_settings
from hybrid_ai.steering import Caps, Position, overnight_mark, plan_trims

logger = logging.getLogger(__name__)

DEFAULT_FEE = 0.001  # per side, when the config sets no "fee" (Binance spot's taker fee)


class HybridAIStrategy(IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "5m"
    can_short = False

    # No profit targets in the ROI table, only freqtrade's time exit: a trade still open
    # after 24 hours exits at the next open (ROI -1). The ML layer's label is the trade's
    # outcome under these exits, so every label spans at most this holding time and
    # freqai.feature_parameters.label_period_candles must equal it (checked at start).
    minimal_roi = {"0": 100.0, "1440": -1}

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

    oracle: OracleFeed | None = None  # set in bot_start when hybrid_ai.oracle.enabled

    process_only_new_candles = True
    # Long enough that RSI/MACD/ATR (recursive formulas) and the 1h SMA50 have converged:
    # freqtrade's recursive-analysis finds no variance at this startup.
    startup_candle_count: int = 400

    order_types = {
        "entry": "limit",
        "exit": "limit",
        "stoploss": "market",
        "stoploss_on_exchange": False,
    }
    order_time_in_force = {"entry": "GTC", "exit": "GTC"}

    # --- hyperopt parameters ------------------------------------------------------------
    # Which entry rule family proposes trades (hybrid_ai.entries); walk-forward optimisation
    # (make walkforward) chooses it and the thresholds on in-sample windows only.
    buy_family = CategoricalParameter(list(entries.FAMILIES), default="oversold_recovery",
                                      space="buy")
    buy_rsi = IntParameter(20, 45, default=35, space="buy")
    buy_pullback_rsi = IntParameter(35, 55, default=45, space="buy")
    buy_rsi_lookback = IntParameter(3, 24, default=12, space="buy")
    buy_macd_window = IntParameter(1, 6, default=3, space="buy")
    buy_volume_ratio = DecimalParameter(0.5, 2.0, default=0.8, decimals=1, space="buy")
    buy_trend_filter = BooleanParameter(default=True, space="buy")

    sell_rsi = IntParameter(55, 85, default=68, space="sell")
    sell_partial_tp = DecimalParameter(0.02, 0.10, default=0.04, decimals=3, space="sell")
    # ML exit hysteresis: an open trade exits (tag ml_exit) when a skilled model expects
    # holding it to return below -band (entries need +margin; hybrid_ai.ml.ml_exit: off).
    sell_ml_exit_band = DecimalParameter(0.0, 0.02, default=0.005, decimals=3, space="sell")

    protect_cooldown = IntParameter(1, 12, default=3, space="protection")
    protect_stop_limit = IntParameter(2, 6, default=3, space="protection")
    protect_stop_candles = IntParameter(24, 144, default=72, space="protection")

    class HyperOpt:
        """Sane bounds for the protective exits when hyperopt tunes them: the hard stop
        between -15 % and -6 %, the trail 3-8 % off the high, armed 0.5-5 % above that."""

        @staticmethod
        def stoploss_space():
            from freqtrade.optimize.space import SKDecimal

            return [SKDecimal(-0.15, -0.06, decimals=3, name="stoploss")]

        @staticmethod
        def trailing_space():
            from freqtrade.optimize.space import Categorical, SKDecimal

            return [
                Categorical([True], name="trailing_stop"),
                SKDecimal(0.03, 0.08, decimals=3, name="trailing_stop_positive"),
                SKDecimal(0.005, 0.05, decimals=3, name="trailing_stop_positive_offset_p1"),
                Categorical([True], name="trailing_only_offset_is_reached"),
            ]

    @property
    def protections(self) -> list[dict]:
        # Active in backtests with --enable-protections, always in dry-run/live.
        return [
            {"method": "CooldownPeriod", "stop_duration_candles": self.protect_cooldown.value},
            {
                "method": "StoplossGuard",
                "lookback_period_candles": 288,
                "trade_limit": self.protect_stop_limit.value,
                "stop_duration_candles": self.protect_stop_candles.value,
                "only_per_pair": False,
            },
        ]

    plot_config = {
        "main_plot": {
            "bb_upperband": {"color": "rgba(100,149,237,0.6)"},
            "bb_middleband": {"color": "cornflowerblue"},
            "bb_lowerband": {"color": "rgba(100,149,237,0.6)",
                             "fill_to": "bb_upperband", "fill_color": "rgba(100,149,237,0.08)"},
            "sma20": {"color": "orange"},
            "sma50": {"color": "purple"},
            "sma50_1h": {"color": "black"},
        },
        "subplots": {
            "RSI": {"rsi": {"color": "red"}, "rsi_1h": {"color": "darkred"}},
            "MACD": {
                "macd": {"color": "blue"},
                "macdsignal": {"color": "orange"},
                "macdhist": {"type": "bar", "color": "grey"},
            },
            # Each panel mixes lines and bars so 0/1 series never hide one another.
            "ML": {
                "ml_buy_prob": {"color": "teal"},
                "ml_confidence": {"color": "darkcyan"},
                "ml_target_position": {"type": "bar", "color": "rgba(128,128,0,0.5)"},
            },
            "ML edge": {
                "ml_expected_return": {"color": "darkgreen"},
                "ml_exit": {"type": "bar", "color": "rgba(178,34,34,0.5)"},
            },
            "ML status": {
                "ml_predicted": {"type": "bar", "color": "rgba(128,128,128,0.4)"},
                "ml_skill": {"color": "purple"},
                "do_predict": {"color": "black"},
            },
            "Oracle": {
                "oracle_risk_level": {"color": "crimson"},
                "oracle_max_exposure": {"color": "slateblue"},
                "oracle_focus": {"type": "bar", "color": "rgba(255,215,0,0.5)"},
                "oracle_exit": {"type": "bar", "color": "rgba(0,0,0,0.6)"},
            },
            "Layer gates": {"gate_ml": {"color": "teal"},
                            "gate_oracle": {"type": "bar", "color": "rgba(255,215,0,0.5)"}},
            "Entry gate": {"gate_approved": {"type": "bar", "color": "green"}},
        },
    }

    # --- lifecycle ----------------------------------------------------------------------
    def __init__(self, config: dict) -> None:
        super().__init__(config)
        mode = str(getattr(config.get("trading_mode", "spot"), "value",
                           config.get("trading_mode", "spot")) or "spot")
        if mode != "spot":
            # Before freqtrade's pairlist runs: it would silently drop every /USDT pair on a
            # futures market, and against a real futures exchange the bot would trade.
            raise OperationalException(
                f"HybridAIStrategy trades spot markets, long only, but trading_mode is "
                f"{mode!r}: set \"trading_mode\": \"spot\" and \"margin_mode\": \"\" in the "
                f"config (its stops, sizing and ML label assume spot).")

    def bot_start(self, **kwargs) -> None:
        """Validate the pack's config section once; a bad value stops the bot with a clear error."""
        redaction.install()  # no API token or password in any log line (FreqUI's Logs too)
        self._settings = load_settings(self.config)
        self.risk_level: RiskLevel = self.settings.risk_level
        self.oracle: OracleFeed | None = None
        self._ml_failures: dict[str, str] = {}  # pair -> last error logged (once each)
        self._overnight_at = self.settings.oracle.overnight_time(self.config)
        # Steering caches (hybrid_ai.steering): plans per event, marks and sized risk
        # ranks per trade (also kept in freqtrade's trade custom data, for restarts).
        self._plans: dict[tuple[str, ...], tuple[Caps, dict]] = {}
        self._steered: dict[tuple[int, datetime], set[str]] = {}
        self._sized: dict[tuple[int, datetime], int] = {}
        self._steer_failure: str | None = None
        self._entry_faults: set[str] = set()  # entry-side failures already logged
        if self.ml_enabled:
            self._check_label_horizon()
        if self.settings.oracle.enabled:
            self.oracle = OracleFeed(self.settings.oracle, base_dir=Path.cwd())
            self.oracle.refresh()

    def bot_loop_start(self, current_time: datetime, **kwargs) -> None:
        if self.oracle is None:
            return
        # Cheap when nothing changed (one stat call); picks up new oracle decisions live.
        if self.oracle.refresh() and self._trading_live():
            # FreqAI requires process_only_new_candles, so the dataframes are analysed once a
            # candle. Apply a new decision to the analysed frames now (FreqUI shows it, the
            # next entry check sees it) instead of up to one candle later.
            for pair in self.dp.current_whitelist():
                frame, _ = self.dp.get_analyzed_dataframe(pair, self.timeframe)
                if not frame.empty and "oracle_focus" in frame:
                    self._apply_upper_layers(frame, pair, current_time)
        valid = self.oracle.at(current_time).valid
        if valid != getattr(self, "_oracle_was_valid", None) and self._trading_live():
            # One line per change of state, not one per loop.
            if valid:
                logger.info("oracle: valid decision in force, following it")
            else:
                logger.warning("oracle: no valid decision (stale, missing or unreadable "
                               "journal): conservative mode within the hard limits")
            self._oracle_was_valid = valid

    def _check_label_horizon(self) -> None:
        """The ML label spans the strategy's maximum holding time; FreqAI purges by
        label_period_candles. One number, so a mismatch stops the bot with what to set."""
        configured = self.config["freqai"]["feature_parameters"].get("label_period_candles")
        wanted = self.exit_rules().max_hold
        if configured != wanted:
            raise OperationalException(
                f"freqai.feature_parameters.label_period_candles is {configured}, but the "
                f"strategy holds a trade at most {wanted} candles (its minimal_roi time exit): "
                f"set label_period_candles to {wanted} so the ML label and its purge match "
                f"the trades.")

    def exit_rules(self, pair: str | None = None, price: float | None = None) -> ExitRules:
        """The exits as the ML label sees them, read from this strategy's own parameters
        (change a stop, the trail, the take-profit or the time exit and the label follows).

        With ``pair`` and ``price``, the partial take-profit's share follows the same
        exchange-minimum rule the live trade does (``hybrid_ai.exits``) for a typical stake
        of this wallet: a stake too small to split closes whole at the take-profit."""
        tf = timeframe_to_minutes(self.timeframe)
        time_exits = [int(k) for k, v in self.minimal_roi.items() if float(v) == -1]
        if not time_exits:
            raise OperationalException("minimal_roi needs a time exit (a -1 entry): the ML "
                                       "label needs a maximum holding time")
        trailing = None
        if self.trailing_stop:
            trailing = self.trailing_stop_positive or -self.stoploss
        return ExitRules(
            stoploss=self.stoploss,
            max_hold=max(1, min(time_exits) // tf),
            trailing=trailing,
            trailing_offset=(self.trailing_stop_positive_offset or 0.0)
            if self.trailing_only_offset_is_reached else 0.0,
            partial_tp=self.sell_partial_tp.value,
            partial_fraction=self._label_partial_fraction(pair, price),
            fee=float(self.config.get("fee") or DEFAULT_FEE),
        )

    def _typical_stake(self) -> float | None:
        """The stake of a full-size trade for this wallet (stake currency): freqtrade's
        proposal capped by ``max_stake_per_trade``; None when the wallet is unknown."""
        wallet = (self.wallets.get_total_stake_amount() if self.wallets
                  else self.config.get("dry_run_wallet"))
        if not isinstance(wallet, int | float) or wallet <= 0:
            return None
        stake = self.config.get("stake_amount")
        if not isinstance(stake, int | float):  # "unlimited": an equal share of the wallet
            slots = self.config.get("max_open_trades") or 1
            slots = slots if 0 < slots < float("inf") else 1
            stake = wallet * self.config.get("tradable_balance_ratio", 0.99) / slots
        return min(float(stake), self.settings.limits.max_stake_per_trade * wallet)

    def _label_partial_fraction(self, pair: str | None, price: float | None) -> float:
        """``partial_tp_fraction``, or 1.0 when a typical trade of this wallet could not
        keep a sellable rest after the partial take-profit."""
        stake = self._typical_stake() if pair and price else None
        minimum = self._exit_minimum(pair, price) if stake else None
        if not stake or not minimum:
            return self.partial_tp_fraction
        value = stake * (1 + self.sell_partial_tp.value)
        cut = sellable_cut(value * self.partial_tp_fraction, value, minimum, shrink=True)
        return cut.fraction if cut is not None else self.partial_tp_fraction

    def _exit_minimum(self, pair: str | None, rate: float | None,
                      known: float | None = None) -> float | None:
        """The exchange's minimum stake for an exit, as freqtrade checks it before a
        partial exit (its stoploss reserve included); ``known``: the one freqtrade passed."""
        exchange = getattr(self.dp, "_exchange", None) if self.dp is not None else None
        computed = None
        if exchange is not None and pair and rate:
            try:
                computed = exchange.get_min_pair_stake_amount(pair, rate, self.stoploss)
            except Exception:  # no market info (delisted pair): what freqtrade passed
                computed = None
        return max((m for m in (known, computed) if m), default=None)

    def _entry_fault(self, where: str, pair: str, exc: Exception) -> None:
        """Fail closed: the entry side broke, so no new entry for ``pair``; one error line
        per distinct problem (not one per loop). Exits and stops do not pass through here.
        Freqtrade's own wrapper would *allow* the entry on an exception, hence the catch."""
        problem = f"{where}: {type(exc).__name__}: {exc}"
        if problem not in getattr(self, "_entry_faults", set()):
            self.__dict__.setdefault("_entry_faults", set()).add(problem)
            logger.error("%s: no new entries while %s failed (%s: %s). Exits and stops keep "
                         "working. Fix the cause named here; the pack retries every candle.",
                         pair, where, type(exc).__name__, exc)

    def _trading_live(self) -> bool:
        return self.dp is not None and self.dp.runmode.value in ("dry_run", "live")

    def _apply_upper_layers(self, frame: DataFrame, pair: str, now: datetime) -> None:
        """Recompute the upper layers' columns and the signals of an analysed frame, in
        place; its last candle takes the decision in force now."""
        inputs = [c for c in ("date", ml_features.WIN, ml_features.LOSS, "do_predict",
                              "DI_values", *TRAINING_VALUES) if c in frame]
        try:
            updated = self._upper_layers(frame[inputs].copy(), pair, now)
        except Exception as exc:  # fail closed: no entries from a frame we cannot gate
            self._entry_fault("the upper layers (oracle feed, ML columns)", pair, exc)
            updated = frame[inputs].assign(**{gates.APPROVED: False})
        for column in updated.columns.drop(inputs):
            frame[column] = updated[column].to_numpy()
        if "ta_signal" in frame:
            self._set_entries(frame)
        if "ta_exit" in frame:
            self._set_exits(frame)

    def _upper_layers(self, dataframe: DataFrame, pair: str, now: datetime | None) -> DataFrame:
        """The one place the upper layers become columns: the oracle's decision in force at
        each candle (point-in-time), the risk rank it sets, the ML gate at that risk level,
        and the approval gate over every deciding layer."""
        dataframe[RISK_RANK] = getattr(self, "risk_level", self.settings.risk_level).rank
        if getattr(self, "oracle", None) is not None:
            tf = timedelta(minutes=timeframe_to_minutes(self.timeframe))
            dataframe = self.oracle.merge(dataframe, pair, tf, now=now)
            if self._oracle_decides:
                dataframe[RISK_RANK] = dataframe["oracle_risk_level"]
        if self.ml_enabled:
            di_threshold = self.config["freqai"]["feature_parameters"].get("DI_threshold", 0)
            dataframe = add_ml_columns(dataframe, self.settings.ml, di_threshold,
                                       self.settings.limits.max_stake_per_trade)
            if self._trading_live():
                self._report_predictions(pair, dataframe["ml_predicted"])
        return gates.approve(dataframe, self.settings.observe_only)

    def _report_predictions(self, pair: str, predicted) -> None:
        """Live: one line when the newest candle of a pair has no ML prediction (its gate
        closed), one when predictions are back; not one per loop."""
        missing = not bool(predicted.iloc[-1]) if len(predicted) else False
        was = self.__dict__.setdefault("_unpredicted", {})
        if missing and pair not in was:
            was[pair] = int((~predicted.tail(288)).sum())
            logger.warning("%s: no ML prediction for the newest candle (%d of the last 288 "
                           "lack one): ML gate closed, no entries until FreqAI predicts",
                           pair, was[pair])
        elif not missing and pair in was:
            del was[pair]
            logger.info("%s: ML predictions back", pair)

    @property
    def settings(self) -> PackSettings:
        if getattr(self, "_settings", None) is None:
            self._settings = load_settings(self.config)
        return self._settings

    @property
    def _oracle_decides(self) -> bool:
        return self.oracle is not None and self.settings.decides("oracle")

    @property
    def ml_enabled(self) -> bool:
        return bool(self.config.get("freqai", {}).get("enabled", False))

    # --- indicators ---------------------------------------------------------------------
    @informative("1h")
    def populate_indicators_1h(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # Merged as rsi_1h / sma50_1h / close_1h, shifted so a 5m candle only sees the
        # last *closed* 1h candle.
        dataframe["rsi"] = ta.RSI(dataframe, timeperiod=14)
        dataframe["sma50"] = ta.SMA(dataframe, timeperiod=50)
        return dataframe

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # ML layer first: FreqAI copies every column it is handed into its feature frames,
        # so it gets the bare candles (its features come from the feature_engineering_* hooks).
        if self.ml_enabled:
            dataframe = self._start_freqai(dataframe, metadata)
        dataframe = add_ta_indicators(dataframe)
        # Upper layers add their gate_* columns (ML, oracle); then the gate combines them.
        # Live, the last candle stands for "now" (entries happen now); backtests use each
        # candle's close only.
        now = datetime.now(UTC) if self._trading_live() else None
        try:
            return self._upper_layers(dataframe, metadata["pair"], now)
        except Exception as exc:  # fail closed: TA and exits stay, entries are gated shut
            self._entry_fault("the upper layers (oracle feed, ML columns)", metadata["pair"],
                              exc)
            dataframe[gates.APPROVED] = False
            return dataframe

    def _start_freqai(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        """FreqAI's predictions; live, a broken model closes only this pair's ML gate.

        A corrupt or unreadable model file must not take the pair's TA indicators and exit
        signals down with it: the pair trades no new entries (no ``up`` column, so
        ``gate_ml`` is False) while its exits and stops keep working. Backtests fail loudly.
        """
        if not self._trading_live():
            return self.freqai.start(dataframe, metadata, self)
        pair = metadata["pair"]
        try:
            result = self.freqai.start(dataframe, metadata, self)
        except Exception as exc:  # any model failure: contained to this pair
            message = f"{type(exc).__name__}: {exc}"
            if self._ml_failures.get(pair) != message:
                identifier = self.config["freqai"].get("identifier", "")
                logger.error(
                    "%s: ML layer unavailable (%s). New entries for this pair are blocked; "
                    "exits and stops keep working. FreqAI retrains it within "
                    "freqai.live_retrain_hours; to retrain now, stop the bot and delete "
                    "user_data/models/%s/sub-train-%s_*.", pair, message, identifier,
                    pair.split("/")[0])
                self._ml_failures[pair] = message
            return dataframe
        if self._ml_failures.pop(pair, None) is not None:
            logger.info("%s: ML layer predicting again", pair)
        return result

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
        # exits, the technical reversal included (hybrid_ai.ml.labels).
        rules = self.exit_rules(metadata.get("pair"), float(dataframe["close"].iloc[-1])
                                if len(dataframe) else None)
        return ml_features.targets(dataframe, rules, self.technical_exit(dataframe))

    def technical_exit(self, candles: DataFrame) -> Series:
        """The technical reversal exit from raw candles (FreqAI's target hook and the tools
        see OHLCV only, not this strategy's indicator columns)."""
        indicators = add_ta_indicators(candles[["open", "high", "low", "close",
                                                "volume"]].copy())
        return entries.reversal(indicators, self.sell_rsi.value)

    # --- signals ------------------------------------------------------------------------
    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        ta_signal = entries.signal(
            dataframe, self.buy_family.value, rsi_level=self.buy_rsi.value,
            pullback_rsi=self.buy_pullback_rsi.value, lookback=self.buy_rsi_lookback.value,
            macd_window=self.buy_macd_window.value, volume_ratio=self.buy_volume_ratio.value)
        if self.buy_trend_filter.value:
            ta_signal &= dataframe["close_1h"] > dataframe["sma50_1h"]
        dataframe["ta_signal"] = ta_signal.astype(int)
        self._set_entries(dataframe)
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # Technical reversal: MACD crosses down while RSI is stretched.
        dataframe["ta_exit"] = entries.reversal(dataframe, self.sell_rsi.value).astype(int)
        self._set_exits(dataframe)
        return dataframe

    def _set_entries(self, df: DataFrame) -> None:
        """Enter where the technical signal and every deciding layer's gate agree."""
        entries = (df["ta_signal"] == 1).to_numpy() & df[gates.APPROVED].to_numpy(bool)
        df["enter_long"] = entries.astype(int)
        df["enter_tag"] = np.where(entries, gates.entry_tag(df, self.settings.observe_only),
                                   None)

    def _set_exits(self, df: DataFrame) -> None:
        """Exit on a technical reversal, where a skilled ML model expects holding to lose
        (``ml_exit``), or where the oracle's decision in force biases the pair at or below
        ``hybrid_ai.oracle.exit_bias``. Signal columns: freqtrade exits at the next candle's
        open, with no per-candle callback, and every open trade of the pair is re-scored."""
        ta_exit = (df["ta_exit"] == 1).to_numpy()
        no = np.zeros(len(df), bool)
        ml_exit = (ml_exit_signal(df, self.sell_ml_exit_band.value).to_numpy(bool)
                   if self.ml_enabled and self.settings.decides("ml")
                   and self.settings.ml.ml_exit else no)
        oracle_exit = (df["oracle_exit"].to_numpy(bool)
                       if self._oracle_decides and "oracle_exit" in df else no)
        df["ml_exit"] = ml_exit.astype(int)
        df["exit_long"] = (ta_exit | ml_exit | oracle_exit).astype(int)
        df["exit_tag"] = np.where(ta_exit, "ta_reversal", np.where(
            ml_exit, "ml_exit", np.where(oracle_exit, "oracle_exit", None)))

    # --- sizing and protection ----------------------------------------------------------
    def custom_stake_amount(
        self,
        pair: str,
        current_time: datetime,
        current_rate: float,
        proposed_stake: float,
        min_stake: float | None,
        max_stake: float,
        leverage: float,
        entry_tag: str | None,
        side: str,
        **kwargs,
    ) -> float:
        """Freqtrade's stake x risk-level multiplier x ML target position, within the hard
        caps, tightened by the oracle's max_exposure (0 = skip; any failure: 0)."""
        try:
            return self._stake(pair, current_time, proposed_stake, min_stake, max_stake)
        except Exception as exc:
            self._entry_fault("stake sizing", pair, exc)
            return 0.0

    def _stake(self, pair: str, current_time: datetime, proposed_stake: float,
               min_stake: float | None, max_stake: float) -> float:
        level, limits = self.risk_level, self.settings.limits
        if self._oracle_decides:
            level = self.oracle.at(current_time).risk_level
            limits = self._entry_limits(current_time)
        multiplier = self.settings.multiplier(level)
        if self.ml_enabled and self.settings.decides("ml"):
            df, _ = self.dp.get_analyzed_dataframe(pair, self.timeframe)
            if df.empty or "ml_target_position" not in df:
                return 0.0
            multiplier *= float(df["ml_target_position"].iloc[-1])
        open_exposure = sum(t.stake_amount for t in Trade.get_open_trades())
        sizing = StakeSizing(
            proposed=proposed_stake,
            multiplier=multiplier,
            equity=self.wallets.get_total_stake_amount() if self.wallets else proposed_stake,
            open_exposure=open_exposure,
            limits=limits,
            min_stake=min_stake,
            max_stake=max_stake,
        )
        refused = self.__dict__.setdefault("_stake_refusals", set())
        refusal = sizing.refusal(self.config.get("stake_currency", ""))
        if refusal is None:
            refused.clear()  # a stake fits again: the next refusal is news
        elif refusal[0] not in refused:  # once per reason, not once per pair and loop
            refused.add(refusal[0])
            config_fault = refusal[0] in ("minimum_above_cap", "below_minimum")
            logger.log(logging.WARNING if config_fault else logging.INFO,
                       "%s: no entry, no stake fits: %s", pair, refusal[1])
        return sizing.stake

    def _entry_limits(self, now: datetime) -> HardLimits:
        """The hard limits tightened by the decision in force: its max_position and
        max_exposure, and overnight (after the mark, until the next decision) its
        overnight_target, so entries cannot undo a trim."""
        guidance, limits = self.oracle.at(now), self.settings.limits
        exposure = min(limits.max_total_exposure, guidance.max_exposure)
        if guidance.valid and self._overnight_since(guidance, now) is not None:
            exposure = min(exposure, guidance.overnight_target)
        return limits.model_copy(update={
            "max_total_exposure": exposure,
            "max_stake_per_trade": min(limits.max_stake_per_trade, guidance.max_position)})

    def _overnight_since(self, guidance, now: datetime) -> datetime | None:
        """The overnight mark in force at ``now``: passed, and no decision since."""
        mark = overnight_mark(now, self._overnight_at)
        if mark is None or guidance.decided_at is None or guidance.decided_at > mark:
            return None
        return mark

    def confirm_trade_entry(self, pair: str, order_type: str, amount: float, rate: float,
                            time_in_force: str, current_time: datetime, entry_tag: str | None,
                            side: str, **kwargs) -> bool:
        """Last check against the oracle's latest word: focus and open-trade slots (any
        failure: refused)."""
        try:
            return self._confirm(pair, current_time)
        except Exception as exc:
            self._entry_fault("the entry confirmation", pair, exc)
            return False

    def _confirm(self, pair: str, current_time: datetime) -> bool:
        if not self._oracle_decides:
            return True
        guidance = self.oracle.at(current_time)
        if not guidance.allows(pair, self.settings.oracle.require_focus):
            logger.info("%s: entry refused, not in the oracle's focus", pair)
            return False
        slots = self.settings.oracle.max_open_trades[guidance.risk_level]
        if Trade.get_open_trade_count() >= slots:
            logger.info("%s: entry refused, %s risk allows %d open trades", pair,
                        guidance.risk_level.value, slots)
            return False
        return True

    def adjust_trade_position(
        self,
        trade: Trade,
        current_time: datetime,
        current_rate: float,
        current_profit: float,
        min_stake: float | None,
        max_stake: float,
        current_entry_rate: float,
        current_exit_rate: float,
        current_entry_profit: float,
        current_exit_profit: float,
        **kwargs,
    ) -> float | tuple[float | None, str | None] | None:
        """Oracle trims first (``hybrid_ai.steering``), then the partial take-profit: half
        the position, once, at the configured gain. Both sell what the exchange minimum
        lets stay open (``hybrid_ai.exits``): a smaller cut or the whole trade."""
        if trade.has_open_orders:
            return None
        minimum = self._exit_minimum(trade.pair, current_exit_rate, min_stake)
        trim = self._steer(trade, current_time, current_exit_rate, minimum)
        if trim is not None:
            return trim
        if current_exit_profit >= self.sell_partial_tp.value and not self._took_profit(trade):
            value = trade.amount * current_exit_rate
            cut = sellable_cut(value * self.partial_tp_fraction, value, minimum, shrink=True)
            if cut is None:
                return None
            self._say_once(trade, "partial_tp", self.partial_tp_fraction, cut)
            return -(trade.stake_amount * cut.fraction), "partial_tp"
        return None

    def _say_once(self, trade: Trade, tag: str, asked: float, cut: Cut) -> None:
        """One line per trade when the exchange minimum changed what ``tag`` sells."""
        said = self.__dict__.setdefault("_cut_notes", set())
        if cut.why and (trade.id, trade.open_date_utc, tag) not in said:
            said.add((trade.id, trade.open_date_utc, tag))
            logger.info("%s: %s sells %.0f%% of the trade, not the %.0f%% asked: %s",
                        trade.pair, tag, 100 * cut.fraction, 100 * asked, cut.why)

    @staticmethod
    def _took_profit(trade: Trade) -> bool:
        return trade.nr_of_successful_exits > 0 and any(
            o.ft_order_tag == "partial_tp" and o.ft_order_side == trade.exit_side
            and o.status == "closed" for o in trade.orders)

    # --- steering open trades (the oracle's trims) ----------------------------------------
    def _steer(self, trade: Trade, now: datetime, rate: float,
               min_stake: float | None) -> tuple[float, str] | None:
        """A trim of ``trade`` the decision in force asks for, as (-stake, tag), or None.

        Exit side: a failure here logs once and trims nothing; stops keep working."""
        if not (self._oracle_decides and self.settings.oracle.steer_open_trades):
            return None
        try:
            trim = self._trim_for(trade, now, rate, min_stake)
        except Exception as exc:  # never let steering take the exits down
            message = f"{type(exc).__name__}: {exc}"
            if message != self._steer_failure:
                logger.error("oracle steering failed (%s): open trades keep their size; "
                             "stops and exits work as usual", message)
                self._steer_failure = message
            return None
        self._steer_failure = None
        return trim

    def _trim_for(self, trade: Trade, now: datetime, rate: float,
                  min_stake: float | None) -> tuple[float, str] | None:
        guidance = self.oracle.at(now)
        if not guidance.valid:  # stale/missing journal: caps new entries only, no trims
            return None
        events = [f"decision@{guidance.decided_at.isoformat()}"]
        overnight = self._overnight_since(guidance, now)
        if overnight is not None:
            events.append(f"overnight@{overnight.isoformat()}")
        keys = tuple(events)
        if all(k in self._marks(trade) for k in keys):
            return None
        if keys not in self._plans:
            self._plans.clear()  # only the event in force matters
            self._plans[keys] = self._plan(guidance, overnight, keys)
        caps, plan = self._plans[keys]
        self._mark(trade, keys)
        trim = plan.get(trade.id)
        if trim is None:
            return None
        if caps.rank < self._sized_rank(trade):
            self._sized[(trade.id, trade.open_date_utc)] = caps.rank
            trade.set_custom_data("sized_rank", caps.rank)
        # The trim in value at the exit rate, as freqtrade checks it: a rest below the
        # exchange minimum could never be sold, so the whole trade goes instead.
        value = trade.amount * rate
        wanted = (trade.stake_amount - trim.target) / trade.stake_amount * value
        sale = sellable_cut(wanted, value, min_stake, shrink=False)
        if sale is None:
            return None
        cut = trade.stake_amount * sale.fraction
        logger.log(logging.INFO if self._trading_live() else logging.DEBUG,
                   "%s: %s, stake %.2f -> %.2f%s", trade.pair, trim.tag, trade.stake_amount,
                   trade.stake_amount - cut, f" ({sale.why})" if sale.why else "")
        return -cut, trim.tag

    def _plan(self, guidance, overnight: datetime | None, keys: tuple[str, ...]):
        trades = Trade.get_open_trades()
        equity = self.wallets.get_total_stake_amount()
        limits = self.settings.limits
        caps = Caps(
            decided_at=guidance.decided_at,
            rank=guidance.risk_level.rank,
            focus=guidance.focus,
            max_position=min(limits.max_stake_per_trade, guidance.max_position) * equity,
            max_exposure=min(limits.max_total_exposure, guidance.max_exposure) * equity,
            multipliers=[self.settings.multiplier(level) for level in RiskLevel],
            close_unfocused=self.settings.oracle.derisk_closes_unfocused,
            overnight_since=overnight,
            overnight_exposure=guidance.overnight_target * equity,
        )
        positions = [Position(t.id, t.pair, t.stake_amount, t.open_date_utc,
                              self._sized_rank(t)) for t in trades]
        skip = frozenset(t.id for t in trades if all(k in self._marks(t) for k in keys))
        return caps, plan_trims(positions, caps, skip)

    def _marks(self, trade: Trade) -> set[str]:
        """Events that already steered this trade (memory first, then its custom data)."""
        key = (trade.id, trade.open_date_utc)
        if key not in self._steered:
            self._steered[key] = set(trade.get_custom_data("steered", default=[]) or [])
        return self._steered[key]

    def _mark(self, trade: Trade, keys: tuple[str, ...]) -> None:
        marks = self._marks(trade)
        if not set(keys) <= marks:
            marks.update(keys)
            trade.set_custom_data("steered",
                                  sorted(marks, key=lambda k: k.partition("@")[2])[-8:])

    def _sized_rank(self, trade: Trade) -> int:
        """The risk rank a trade's size reflects: the level in force when it opened, or
        the level of the trim that last cut it."""
        key = (trade.id, trade.open_date_utc)
        if key not in self._sized:
            stored = trade.get_custom_data("sized_rank")
            self._sized[key] = (int(stored) if stored is not None
                                else self.oracle.at(trade.open_date_utc).risk_level.rank)
        return self._sized[key]
