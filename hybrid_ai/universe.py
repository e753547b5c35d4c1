"""The pairs a cross-sectional rule looks across (the momentum ranking, the trend core's book).

One definition, so that every rule that weighs a pair against the others sees the same set.
"""

from __future__ import annotations

from typing import Any

from freqtrade.exceptions import OperationalException


def universe(dp: Any, config: dict[str, Any]) -> list[str]:
    """The bot's whitelist (the config's where freqtrade's data provider has no pairlist:
    plot-dataframe, tools) and the run's pair list (``config["pairs"]``: ``--pairs`` or the
    config's), sorted. They agree, except in freqtrade's lookahead-analysis, which re-runs
    each checked trade with only its pair whitelisted: across the run's pairs, the cut run
    sees the full run's cross-section.

    :param dp: freqtrade's ``DataProvider`` (None or without a pairlist: the config's)
    """
    try:
        pairs = dp.current_whitelist()
    except (AttributeError, OperationalException):
        pairs = config.get("exchange", {}).get("pair_whitelist", [])
    return sorted({*pairs, *(config.get("pairs") or [])})
