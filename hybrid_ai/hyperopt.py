"""Hyperopt search spaces of the pack's exits (freqtrade's ``HyperOpt`` nested class, shared
here so the strategy file stays hooks and parameters): the protective exits' bounds and the
holding horizon as the ``roi`` space."""

from __future__ import annotations


class ProtectiveExitSpaces:
    """Sane bounds for the protective exits when hyperopt tunes them: the hard stop
    between -15 % and -6 %, the trail 3-8 % off the high, armed 0.5-5 % above that; the
    holding horizon (``roi``) one of ``HOLD_HOURS``."""

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

    @staticmethod
    def roi_space():
        """The holding horizon, hours to days: freqtrade's ``roi`` space as one dimension,
        the time exit (no profit targets). The ML label follows it (``ExitRules`` reads the
        time exit from ``minimal_roi``; ``label_period_candles`` must match, checked at start)."""
        from freqtrade.optimize.space import Categorical

        return [Categorical(list(HOLD_HOURS), name="max_hold_hours")]

    @staticmethod
    def generate_roi_table(params: dict) -> dict[int, float]:
        return roi_table(int(params["max_hold_hours"]))


# Holding horizons the search may choose (hours): a quarter day, a day, three days, a week.
HOLD_HOURS = (6, 24, 72, 168)


def roi_table(hold_hours: int) -> dict[int, float]:
    """``minimal_roi`` with no profit target and a time exit after ``hold_hours`` (the trade
    exits at the next open: ROI -1)."""
    return {0: 100.0, hold_hours * 60: -1}
