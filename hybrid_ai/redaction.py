"""Keep secrets out of the bot's logs (and so out of FreqUI's Logs view).

uvicorn logs every accepted websocket with its URL, and FreqUI's message socket carries the
JWT in the query string (``/api/v1/message/ws?token=...``). A filter on freqtrade's log
handlers rewrites such values before any handler formats them.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = re.compile(r"((?:token|access_token|refresh_token|password|api_key|key|secret)"
                           r"=)[^&\s\"']+", re.IGNORECASE)
REDACTED = r"\1<redacted>"


class SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = SECRET_PARAMS.sub(REDACTED, message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install() -> None:
    """Add the filter to every handler of the root logger (freqtrade's console, file and
    the API's log buffer) and to uvicorn's loggers; idempotent."""
    targets: list[logging.Filterer] = list(logging.getLogger().handlers)
    targets += [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error",
                                                     "uvicorn.access")]
    for target in targets:
        if not any(isinstance(f, SecretFilter) for f in target.filters):
            target.addFilter(SecretFilter())
