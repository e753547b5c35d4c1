"""Position sizing under hard caps. Pure functions: the strategy passes in the numbers."""

from __future__ import annotations

import math

from hybrid_ai.settings import HardLimits


def capped_stake(
    proposed: float,
    multiplier: float,
    equity: float,
    open_exposure: float,
    limits: HardLimits,
    min_stake: float | None,
    max_stake: float,
) -> float:
    """Stake for a new trade, or 0.0 when no valid stake fits under the caps.

    :param proposed: freqtrade's proposed stake (e.g. equal share of the wallet)
    :param multiplier: risk-level multiplier (and later the ML target position)
    :param equity: total equity in stake currency (free + in trades)
    :param open_exposure: stake already committed to open trades
    :param min_stake: exchange minimum for this pair (None: no minimum known)
    :param max_stake: the most freqtrade/the exchange allow right now
    """
    stake = proposed * max(multiplier, 0.0)
    per_trade_cap = limits.max_stake_per_trade * equity
    exposure_room = limits.max_total_exposure * equity - open_exposure
    stake = min(stake, per_trade_cap, exposure_room, max_stake)
    if not math.isfinite(stake) or stake <= 0 or (min_stake is not None and stake < min_stake):
        return 0.0
    return stake
