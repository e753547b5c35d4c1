"""Selling part of an open trade within the exchange's minimum order size.

Freqtrade drops a partial exit whose remainder would be worth less than the exchange's
minimum stake (backtest: silently; live: one log line every loop, and nothing is sold).
Every rule that sells part of a trade (partial take-profit, the oracle's trims) sizes its
cut here, so what it asks for is what freqtrade executes: the cut, a smaller cut that
leaves a sellable rest, or the whole trade. Pure functions on numbers, in the stake
currency at the current exit rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Head-room over the exchange minimum for what stays open: the price moves between the
# decision and the fill, and amounts are rounded to the exchange's precision.
MIN_MARGIN = 0.02


@dataclass(frozen=True)
class Cut:
    """What to sell of a position worth ``value``: ``amount`` (stake currency), and why it
    differs from what was asked (empty when it does not)."""

    amount: float
    value: float
    why: str = ""

    @property
    def whole(self) -> bool:
        return self.amount >= self.value

    @property
    def fraction(self) -> float:
        """Share of the position sold, 0..1."""
        return min(1.0, self.amount / self.value) if self.value > 0 else 1.0


def sellable_cut(wanted: float, value: float, minimum: float | None, *,
                 shrink: bool) -> Cut | None:
    """The sale that freqtrade and the exchange will execute for a wish to sell ``wanted``
    of a position worth ``value`` (both in stake currency at the exit rate), or None when
    nothing should be sold.

    :param minimum: the exchange's minimum stake for an exit of this pair (None or 0: none)
    :param shrink: when the rest would fall below the minimum, sell less so that a sellable
        rest stays open (partial take-profit); False: sell the whole position instead
        (a trim towards a target smaller than the minimum)
    :returns: the cut; the whole position when neither a part nor the rest could stand
        alone; None when the cut itself is below the minimum and the rest is not
    """
    if wanted <= 0:
        return None
    if wanted >= value:
        return Cut(value, value)
    if not minimum:
        return Cut(wanted, value)
    floor = minimum * (1.0 + MIN_MARGIN)
    rest = value - wanted
    if rest >= floor:
        return Cut(wanted, value) if wanted >= minimum else None
    why = (f"the rest ({rest:.2f}) would be below the exchange minimum of {minimum:.2f}")
    if shrink and value - floor >= minimum:
        return Cut(value - floor, value, why + f": selling {value - floor:.2f} instead")
    return Cut(value, value, why + ": selling the whole position")


def exit_minimum(exchange: Any, pair: str | None, rate: float | None, stoploss: float,
                 known: float | None = None) -> float | None:
    """The exchange's minimum stake for an exit of ``pair`` at ``rate``, as freqtrade checks
    it before a partial exit (its stoploss reserve included; live it is higher than the
    ``min_stake`` freqtrade hands the callbacks); ``known``: a minimum freqtrade passed.
    None when neither is known (no market info: a delisted pair)."""
    computed = None
    if exchange is not None and pair and rate:
        try:
            computed = exchange.get_min_pair_stake_amount(pair, rate, stoploss)
        except Exception:  # no market for the pair: what freqtrade passed, if anything
            computed = None
    return max((m for m in (known, computed) if m), default=None)


def typical_stake(config: dict[str, Any], equity: float | None,
                  max_stake_per_trade: float) -> float | None:
    """A full-size trade's stake for this wallet (stake currency): freqtrade's proposal
    (``stake_amount``, or an equal share of the tradable wallet for "unlimited") capped by
    ``max_stake_per_trade`` x equity; None when the wallet is unknown."""
    wallet = equity if equity is not None else config.get("dry_run_wallet")
    if not isinstance(wallet, int | float) or wallet <= 0:
        return None
    stake = config.get("stake_amount")
    if not isinstance(stake, int | float):  # "unlimited": an equal share of the wallet
        slots = config.get("max_open_trades") or 1
        slots = slots if 0 < slots < float("inf") else 1
        stake = wallet * config.get("tradable_balance_ratio", 0.99) / slots
    return min(float(stake), max_stake_per_trade * wallet)


def take_profit_share(fraction: float, gain: float, stake: float | None,
                      minimum: float | None) -> float:
    """The share a partial take-profit of ``fraction`` at ``gain`` really sells for a trade
    of ``stake``: ``fraction``, less, or 1.0 (the whole trade) — the ML label uses it."""
    if not stake or not minimum:
        return fraction
    value = stake * (1 + gain)
    cut = sellable_cut(value * fraction, value, minimum, shrink=True)
    return cut.fraction if cut is not None else fraction
