"""What an exit may sell within the exchange minimum (hybrid_ai.exits)."""

from __future__ import annotations

import pytest

from hybrid_ai.exits import sellable_cut


def test_a_cut_leaves_a_sellable_rest_or_takes_the_whole_position():
    assert sellable_cut(50, 100, 5.83, shrink=True).amount == 50  # both halves sellable
    assert sellable_cut(50, 100, None, shrink=True).amount == 50  # no minimum known
    whole = sellable_cut(5.2, 10.4, 5.83, shrink=True)  # a 10 USDT stake at +4 %
    assert whole.whole and whole.fraction == 1.0 and "below the exchange minimum" in whole.why
    shrunk = sellable_cut(6.1, 12.0, 5.83, shrink=True)  # rest 5.90 < 5.83 + 2 % head-room
    assert not shrunk.whole and shrunk.amount == pytest.approx(12.0 - 5.83 * 1.02)
    assert 12.0 - shrunk.amount >= 5.83 and shrunk.amount >= 5.83
    trim = sellable_cut(6.1, 12.0, 5.83, shrink=False)  # a trim never keeps more than asked
    assert trim.whole
    assert sellable_cut(3.0, 100, 5.83, shrink=False) is None  # the cut itself too small
    assert sellable_cut(0.0, 100, 5.83, shrink=True) is None
