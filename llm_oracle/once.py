"""Say a problem once, and once when it is over: the pack's one helper for edge-triggered logs.

A bot loop runs every 5 s and a problem (a stale journal, a broken model, a refused stake)
lasts for many of them; a line per loop would bury the log. ``Once`` keeps, per key (a
pair, a rule, a "where"), the last message said: a message is logged when it differs from
the last one said for that key (a new problem, or the same key failing differently), and
``clear`` logs one line when a key that had a problem has none any more. Freqtrade's own
``LoggingMixin.log_once`` is time-based (it says a message again after an hour); these are
state-based, which is what "say it when it changes" needs.

It lives at the bottom layer (``llm_oracle``) so that the oracle daemon and the strategy
side (``hybrid_ai``) share it without the oracle importing anything of the strategy.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable


class Once:
    """Edge-triggered messages for ``logger``, one state per key.

    :param logger: where the lines go
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._said: dict[Hashable, str] = {}

    def say(self, key: Hashable, message: str, level: int = logging.WARNING) -> bool:
        """Log ``message`` unless it is the last one said for ``key``; True when logged."""
        if self._said.get(key) == message:
            return False
        self._said[key] = message
        self.logger.log(level, "%s", message)
        return True

    def clear(self, key: Hashable, message: str | None = None,
              level: int = logging.INFO) -> bool:
        """Forget ``key``'s problem; if it had one, log ``message`` (None: nothing) and
        return True."""
        if self._said.pop(key, None) is None:
            return False
        if message is not None:
            self.logger.log(level, "%s", message)
        return True

    def __contains__(self, key: Hashable) -> bool:
        """Whether ``key`` has a problem said and not cleared."""
        return key in self._said

    def last(self, key: Hashable) -> str | None:
        """The message last said for ``key`` (None: none in force)."""
        return self._said.get(key)
