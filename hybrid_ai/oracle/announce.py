"""The oracle's decisions and the trims they cause, told where the user looks.

Live (dry-run or live) only: each new decision the bot adopts and each trim it causes goes
once through freqtrade's own messaging (``DataProvider.send_msg``: Telegram, webhooks with
``allow_custom_messages``), with the risk level, the caps, the focus pairs and the first
lines of the model's reasoning. Backtests never announce.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from hybrid_ai.oracle.feed import Guidance

logger = logging.getLogger(__name__)

REASONING_LINES = 3  # of the model's reasoning, in a message
REASONING_CHARS = 400
MESSAGE_CHARS = 4000  # freqtrade's send_msg limit is 4096 (Telegram's)


def reasoning_excerpt(text: str) -> str:
    """The first ``REASONING_LINES`` non-empty lines, at most ``REASONING_CHARS`` characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()][:REASONING_LINES]
    excerpt = " / ".join(lines)
    return excerpt if len(excerpt) <= REASONING_CHARS else excerpt[:REASONING_CHARS - 1] + "…"


def _at(when: datetime | None) -> str:
    return f"{when:%Y-%m-%d %H:%M} UTC" if when else "?"


def decision_message(g: Guidance) -> str:
    """One decision in force, in a line or three: who decided when, the level, the caps,
    the focus pairs and why."""
    focus = ", ".join(sorted(g.focus)) or "none (no pair favoured)"
    text = (f"Oracle decision {g.session or ''} ({g.source or 'unknown source'}, "
            f"{_at(g.decided_at)}): risk {g.risk_level.value}, exposure <= "
            f"{g.max_exposure:.0%}, per trade <= {g.max_position:.0%}, overnight "
            f"{g.overnight_target:.0%}; focus {focus}.")
    if why := reasoning_excerpt(g.reasoning):
        text += f"\nWhy: {why}"
    return text[:MESSAGE_CHARS]


def trim_message(pair: str, tag: str, stake_before: float, stake_after: float,
                 g: Guidance, currency: str) -> str:
    """A trim of an open trade (stakes in ``currency``) and the decision that caused it."""
    sold = 1 - stake_after / stake_before if stake_before > 0 else 1.0
    action = "closes" if stake_after <= 0 else f"sells {sold:.0%} of"
    return (f"{pair}: {tag} {action} the trade (stake {stake_before:.2f} -> "
            f"{stake_after:.2f} {currency}), following the oracle decision of "
            f"{_at(g.decided_at)}: risk {g.risk_level.value}, per trade <= "
            f"{g.max_position:.0%}, overnight {g.overnight_target:.0%}.")[:MESSAGE_CHARS]


class Announcer:
    """Sends each message once (a decision by its time, a trim by its text); a failing
    ``send`` is logged once and never reaches the bot loop.

    :param send: freqtrade's ``DataProvider.send_msg`` (None: announce nothing)
    """

    def __init__(self, send: Callable[[str], None] | None) -> None:
        self.send = send
        self._decided: datetime | None = None
        self._sent: set[str] = set()
        self._failed = False

    def decision(self, g: Guidance) -> None:
        if g.valid and g.decided_at != self._decided:
            self._decided = g.decided_at
            self._say(decision_message(g))

    def trim(self, pair: str, tag: str, stake_before: float, stake_after: float,
             g: Guidance, currency: str) -> None:
        message = trim_message(pair, tag, stake_before, stake_after, g, currency)
        if message not in self._sent:
            self._sent.add(message)
            self._say(message)

    def _say(self, message: str) -> None:
        if self.send is None:
            return
        try:
            self.send(message)
        except Exception as exc:  # messaging must never stop trading
            if not self._failed:
                logger.warning("cannot send the oracle's message (%s: %s); trading goes on",
                               type(exc).__name__, exc)
                self._failed = True
