"""Hyperopt search spaces of the pack's protective exits (freqtrade's ``HyperOpt`` nested
class, shared here so the strategy file stays hooks and parameters)."""

from __future__ import annotations


class ProtectiveExitSpaces:
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
