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
