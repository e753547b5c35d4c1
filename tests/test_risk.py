"""Stake sizing within the hard limits (hybrid_ai.risk)."""

from __future__ import annotations

from hybrid_ai.risk import StakeSizing, capped_stake
from hybrid_ai.settings import HardLimits

LIMITS = HardLimits(max_stake_per_trade=0.25, max_total_exposure=0.9)


def test_stake_scales_with_the_multiplier():
    assert capped_stake(100, 0.5, 1000, 0, LIMITS, 5, 1000) == 50
    assert capped_stake(100, 1.0, 1000, 0, LIMITS, 5, 1000) == 100


def test_stake_never_exceeds_the_hard_caps():
    assert capped_stake(400, 1.5, 1000, 0, LIMITS, 5, 1000) == 250  # per-trade cap
    assert capped_stake(200, 1.0, 1000, 800, LIMITS, 5, 1000) == 100  # exposure room
    assert capped_stake(200, 1.0, 1000, 0, LIMITS, 5, 120) == 120  # freqtrade's max


def test_no_stake_when_nothing_fits():
    assert capped_stake(200, 1.0, 1000, 900, LIMITS, 5, 1000) == 0.0  # exposure full
    assert capped_stake(4, 1.0, 1000, 0, LIMITS, 5, 1000) == 0.0  # below exchange minimum
    assert capped_stake(100, 0.0, 1000, 0, LIMITS, None, 1000) == 0.0


def test_a_refused_stake_says_which_limit_and_what_to_change():
    tiny = StakeSizing(4.95, 1.0, 20, 0, LIMITS, 5.83, 1000)
    kind, text = tiny.refusal("USDT")
    assert tiny.stake == 0 and kind == "minimum_above_cap"
    assert "5.83 USDT is above the per-trade cap 5.00 USDT" in text and "23.32 USDT" in text
    assert StakeSizing(200, 1.0, 1000, 900, LIMITS, 5, 1000).refusal()[0] == "exposure_full"
    assert StakeSizing(4, 1.0, 1000, 0, LIMITS, 5, 1000).refusal()[0] == "below_minimum"
    assert StakeSizing(100, 0.0, 1000, 0, LIMITS, None, 1000).refusal()[0] == "no_size"
    assert StakeSizing(100, 1.0, 1000, 0, LIMITS, 5, 1000).refusal() is None
