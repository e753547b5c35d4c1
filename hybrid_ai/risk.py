"""Position sizing under hard caps. Pure functions: the strategy passes in the numbers."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from hybrid_ai.settings import HardLimits

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StakeSizing:
    """The numbers a new trade's stake is the minimum of, and the exchange's floor (all in
    stake currency): ``stake`` is the result, ``refusal`` says why it is 0 and what to
    change."""

    proposed: float  # freqtrade's proposed stake (e.g. equal share of the wallet)
    multiplier: float  # risk level x ML target position
    equity: float  # free + in trades
    open_exposure: float  # stake already committed to open trades
    limits: HardLimits
    min_stake: float | None  # exchange minimum for this pair (None: unknown)
    max_stake: float  # the most freqtrade / the exchange allow right now

    @property
    def per_trade_cap(self) -> float:
        return self.limits.max_stake_per_trade * self.equity

    @property
    def exposure_room(self) -> float:
        return self.limits.max_total_exposure * self.equity - self.open_exposure

    @property
    def wanted(self) -> float:
        return self.proposed * max(self.multiplier, 0.0)

    @property
    def capped(self) -> float:
        """The wanted stake within every cap, before the exchange minimum."""
        return min(self.wanted, self.per_trade_cap, self.exposure_room, self.max_stake)

    @property
    def stake(self) -> float:
        """The stake for the new trade, or 0.0 when no valid stake fits under the caps."""
        stake = self.capped
        if (not math.isfinite(stake) or stake <= 0
                or (self.min_stake is not None and stake < self.min_stake)):
            return 0.0
        return stake

    def refusal(self, currency: str = "") -> tuple[str, str] | None:
        """(kind, sentence with the numbers and what to change) when ``stake`` is 0;
        None when a stake fits. Kinds: ``minimum_above_cap``, ``exposure_full``,
        ``no_size``, ``below_minimum``."""
        if self.stake > 0:
            return None
        cur = f" {currency}" if currency else ""
        limits, minimum = self.limits, self.min_stake or 0.0
        if minimum > self.per_trade_cap:
            return "minimum_above_cap", (
                f"the exchange minimum {minimum:.2f}{cur} is above the per-trade cap "
                f"{self.per_trade_cap:.2f}{cur} = hybrid_ai.limits.max_stake_per_trade "
                f"{limits.max_stake_per_trade:g} x equity {self.equity:.2f}{cur}: raise "
                f"max_stake_per_trade to at least {minimum / self.equity:.2f} or fund the "
                f"wallet with at least {minimum / limits.max_stake_per_trade:.2f}{cur}")
        if self.exposure_room < max(minimum, 1e-12):
            return "exposure_full", (
                f"open trades hold {self.open_exposure:.2f}{cur} of the total cap "
                f"{limits.max_total_exposure * self.equity:.2f}{cur} = "
                f"hybrid_ai.limits.max_total_exposure {limits.max_total_exposure:g} x equity "
                f"{self.equity:.2f}{cur}: no room for another trade until one closes")
        if self.wanted <= 0:
            return "no_size", (f"the stake multiplier is {self.multiplier:g} (risk level x "
                               "ML target position): nothing to buy")
        return "below_minimum", (
            f"the stake {self.capped:.2f}{cur} "
            f"(freqtrade's {self.proposed:.2f}{cur} x multiplier {self.multiplier:g}, within "
            f"the caps) is below the exchange minimum {minimum:.2f}{cur}: raise the wallet, "
            f"lower max_open_trades or choose a bolder risk level")


def capped_stake(
    proposed: float,
    multiplier: float,
    equity: float,
    open_exposure: float,
    limits: HardLimits,
    min_stake: float | None,
    max_stake: float,
) -> float:
    """Stake for a new trade, or 0.0 when no valid stake fits under the caps (see
    ``StakeSizing`` for the parameters)."""
    return StakeSizing(proposed, multiplier, equity, open_exposure, limits, min_stake,
                       max_stake).stake


class StakeRefusals:
    """Says why no stake fits, once per reason (not once per pair and loop), until a stake
    fits again; configuration faults (the exchange minimum above the caps) as warnings."""

    CONFIG_FAULTS = ("minimum_above_cap", "below_minimum")

    def __init__(self) -> None:
        self._said: set[str] = set()

    def say(self, pair: str, sizing: StakeSizing, currency: str = "") -> None:
        refusal = sizing.refusal(currency)
        if refusal is None:
            self._said.clear()  # a stake fits again: the next refusal is news
        elif refusal[0] not in self._said:
            self._said.add(refusal[0])
            level = logging.WARNING if refusal[0] in self.CONFIG_FAULTS else logging.INFO
            logger.log(level, "%s: no entry, no stake fits: %s", pair, refusal[1])
