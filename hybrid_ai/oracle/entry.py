"""The oracle's word on new entries: the hard limits it tightens and the entries it refuses.

Both only ever restrict: ``entry_limits`` lowers the caps of ``hybrid_ai.risk.StakeSizing``
(never above the config's hard limits), ``oracle_refusal`` refuses an entry in
``confirm_trade_entry``. Neither can loosen what the execution layer allows.
"""

from __future__ import annotations

from typing import Any

from hybrid_ai.oracle.feed import Guidance
from hybrid_ai.settings import HardLimits, OracleGate


def entry_limits(limits: HardLimits, guidance: Any, overnight: bool) -> HardLimits:
    """The hard limits tightened by the oracle's decision in force (``guidance``: its
    ``max_position``, ``max_exposure``, and after the overnight mark, until the next
    decision, its ``overnight_target``), so entries cannot undo a trim."""
    exposure = min(limits.max_total_exposure, guidance.max_exposure)
    if guidance.valid and overnight:
        exposure = min(exposure, guidance.overnight_target)
    return limits.model_copy(update={
        "max_total_exposure": exposure,
        "max_stake_per_trade": min(limits.max_stake_per_trade, guidance.max_position)})


def oracle_refusal(guidance: Guidance, pair: str, oracle: OracleGate,
                   open_trades: int) -> str | None:
    """Why the oracle's latest word refuses an entry in ``pair`` now (None: it does not):
    the pair is outside its focus, or its risk level's open-trade slots are taken."""
    if not guidance.allows(pair, oracle.require_focus):
        return "not in the oracle's focus"
    slots = oracle.max_open_trades[guidance.risk_level]
    if open_trades >= slots:
        return f"{guidance.risk_level.value} risk allows {slots} open trades"
    return None
