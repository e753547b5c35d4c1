"""The running bot, as the oracle sees it: portfolio, P&L and the ML layer's latest signals.

Read through freqtrade's REST API with the official ``freqtrade_client``; credentials come
from environment variables. Live sessions only: a backfill cannot know what a bot held then,
so its context never includes this. Any trouble leaves the section out of the context (the
session goes on, the failure is logged once per kind).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from llm_oracle.once import Once

logger = logging.getLogger(__name__)

ML_COLUMNS = ("ml_buy_prob", "ml_confidence", "do_predict")


class BotView:
    def __init__(self, url: str, username_env: str, password_env: str, timeframe: str = "5m",
                 timeout: float = 5.0) -> None:
        from freqtrade_client import FtRestClient

        self.client = FtRestClient(url, os.environ.get(username_env),
                                   os.environ.get(password_env), timeout=timeout)
        self.timeframe = timeframe
        self._problems = Once(logger)  # one line per new problem, not one per session

    def snapshot(self, pairs: list[str]) -> dict[str, Any]:
        """{"portfolio": {...}, "ml_signals": {pair: {...}}}, or {} when the bot is unreachable."""
        try:
            status = self.client.status()
            profit = self.client.profit()
            if not isinstance(status, list) or not isinstance(profit, dict):
                raise ValueError(f"unexpected answers: {str(status)[:80]} / {str(profit)[:80]}")
            portfolio = {
                "open_trades": [{"pair": t["pair"], "profit_pct": round(t["profit_pct"], 2),
                                 "stake": round(t["stake_amount"], 2)} for t in status],
                "closed_profit_pct": round(profit.get("profit_closed_percent", 0.0), 2),
                "trade_count": profit.get("trade_count", 0),
            }
            signals = {}
            for pair in pairs:
                candles = self.client.pair_candles(pair, self.timeframe, limit=1,
                                                   columns=list(ML_COLUMNS))
                cols, rows = candles.get("columns", []), candles.get("data", [])
                if rows:
                    last = dict(zip(cols, rows[-1], strict=False))
                    signals[pair] = {c: last[c] for c in ML_COLUMNS if c in last}
        except Exception as exc:  # network errors, auth, bot not running: never fatal
            problem = f"{type(exc).__name__}: {exc}"[:200]
            self._problems.say("api", f"bot API unavailable for the oracle context ({problem})")
            return {}
        self._problems.clear("api")
        return {"portfolio": portfolio, "ml_signals": signals}
