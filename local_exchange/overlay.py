"""The freqtrade config overlay that points ccxt at the local exchange.

Offline use differs from live use by this overlay alone: ``freqtrade ... -c config.json
-c user_data/config.offline.json``. The committed ``user_data/config.offline.json`` is
``offline_overlay(DEFAULT_URL)``; a test keeps the two identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 18731
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


def offline_overlay(url: str = DEFAULT_URL) -> dict[str, Any]:
    """Config keys that make freqtrade talk to the local exchange at ``url``."""
    api = f"{url.rstrip('/')}/api/v3"
    ccxt = {
        # ccxt deep-merges these into its Binance defaults: only the spot REST API moves.
        "urls": {"api": {"public": api, "private": api}},
        "options": {"fetchMarkets": {"types": ["spot"]}},
    }
    return {
        "dry_run": True,
        # No CoinGecko offline: an empty fiat currency disables the fiat conversion.
        "fiat_display_currency": "",
        "exchange": {
            "name": "binance",
            "key": "",
            "secret": "",
            "enable_ws": False,
            "ccxt_config": ccxt,
            "ccxt_async_config": ccxt,
        },
    }


def write_overlay(path: Path, url: str = DEFAULT_URL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(offline_overlay(url), indent=2) + "\n")
    return path
