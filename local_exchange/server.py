"""A loopback HTTP server speaking the public part of Binance's spot REST API (``/api/v3``).

Only what ccxt and freqtrade ask for is served: exchangeInfo, klines, tickers, order book,
time and ping. Answers follow Binance's JSON shapes (prices as strings, times in ms), and
errors use Binance's ``{"code", "msg"}`` form so ccxt raises its usual exceptions.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from local_exchange.clock import Clock, StaticClock
from local_exchange.market_data import (
    MarketData,
    MarketDataError,
    Precision,
    Series,
    Symbol,
    timeframe_ms,
)

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
KLINES_DEFAULT_LIMIT = 500
KLINES_MAX_LIMIT = 1000
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")


class ApiError(Exception):
    """An error answered to the client in Binance's format."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class PortInUseError(RuntimeError):
    """The requested port is taken by another process."""


def _fmt(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{decimals}f}"


def _round_to(value: float, step: float) -> float:
    return round(round(value / step) * step, 10)


class BinanceApi:
    """The request handlers, independent of HTTP plumbing (easy to test and benchmark)."""

    def __init__(self, data: MarketData, clock: Clock | None = None) -> None:
        self.data = data
        self.clock: Clock = clock or StaticClock()
        self.precision: dict[str, Precision] = {
            name: Precision.for_price(float(sym.finest().close[-1]), sym.quote)
            for name, sym in data.symbols.items()
        }
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()

    # -- helpers -------------------------------------------------------------------------
    def _symbol(self, params: dict[str, str]) -> Symbol:
        name = params.get("symbol")
        if not name:
            raise ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent.")
        sym = self.data.symbols.get(name.upper())
        if sym is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return sym

    def _symbols_param(self, params: dict[str, str]) -> list[Symbol]:
        if "symbol" in params:
            return [self._symbol(params)]
        if "symbols" in params:
            try:
                names = json.loads(params["symbols"])
            except json.JSONDecodeError as exc:
                raise ApiError(400, -1100, "Illegal characters in parameter 'symbols'.") from exc
            return [self._symbol({"symbol": n}) for n in names]
        return list(self.data.symbols.values())

    def _visible(self, series: Series) -> int:
        """Number of candles of ``series`` that have opened by the clock's cursor."""
        cursor = self.clock.cursor()
        if cursor is None:
            return len(series)
        return int(np.searchsorted(series.open_time, cursor, side="right"))

    def _last_price(self, sym: Symbol) -> tuple[float, int]:
        """Last traded price and its time: the close of the newest closed candle."""
        series = sym.finest()
        n = self._visible(series)
        cursor = self.clock.cursor()
        # The candle at n-1 is still forming in replay mode: its close is not known yet.
        closed = n if cursor is None else int(
            np.searchsorted(series.open_time + series.interval_ms, cursor, side="right")
        )
        idx = max(closed - 1, 0)
        return float(series.close[idx]), int(series.open_time[idx] + series.interval_ms)

    # -- endpoints ----------------------------------------------------------------------
    def ping(self, params: dict[str, str]) -> Any:
        return {}

    def time(self, params: dict[str, str]) -> Any:
        return {"serverTime": self.clock.now()}

    def exchange_info(self, params: dict[str, str]) -> Any:
        syms = self._symbols_param(params)
        return {
            "timezone": "UTC",
            "serverTime": self.clock.now(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(s) for s in syms],
        }

    def _symbol_info(self, sym: Symbol) -> dict[str, Any]:
        p = self.precision[sym.name]
        tick, step = p.tick_size, p.step_size
        return {
            "symbol": sym.name,
            "status": "TRADING",
            "baseAsset": sym.base,
            "baseAssetPrecision": 8,
            "quoteAsset": sym.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                           "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": _fmt(tick, tick),
                 "maxPrice": _fmt(1_000_000.0, tick), "tickSize": _fmt(tick, tick)},
                {"filterType": "LOT_SIZE", "minQty": _fmt(step, step),
                 "maxQty": _fmt(9_000_000.0, step), "stepSize": _fmt(step, step)},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000",
                 "maxQty": _fmt(1_000_000.0, step), "stepSize": "0.00000000"},
                {"filterType": "NOTIONAL", "minNotional": f"{p.min_notional:.8f}",
                 "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                 "applyMaxToMarket": False, "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def klines(self, params: dict[str, str]) -> Any:
        sym = self._symbol(params)
        interval = params.get("interval")
        if interval not in INTERVALS:
            raise ApiError(400, -1120, "Invalid interval.")
        series = self.data.series(sym.name, timeframe_ms(interval))
        if series is None:
            raise ApiError(
                400, -1120,
                f"Invalid interval: no {interval} candles for {sym.pair} in {self.data.datadir} "
                f"and none finer that divide it.",
            )
        try:
            limit = int(params.get("limit", KLINES_DEFAULT_LIMIT))
        except ValueError as exc:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'limit'.") from exc
        limit = max(1, min(limit, KLINES_MAX_LIMIT))
        shift = self.clock.shift_ms
        end = self._visible(series)
        if "endTime" in params:
            end = min(end, int(np.searchsorted(series.open_time, int(params["endTime"]) - shift,
                                               side="right")))
        if "startTime" in params:
            start = int(np.searchsorted(series.open_time, int(params["startTime"]) - shift,
                                        side="left"))
            end = min(end, start + limit)
        else:
            start = max(0, end - limit)
        return [self._kline(series, i, shift) for i in range(start, end)]

    def _kline(self, s: Series, i: int, shift: int) -> list[Any]:
        cursor = self.clock.cursor()
        open_time = int(s.open_time[i])
        o, h, lo, c, v = s.open[i], s.high[i], s.low[i], s.close[i], s.volume[i]
        if cursor is not None and open_time + s.interval_ms > cursor:
            # Still forming: only its open is known, never the future high/low/close.
            h = lo = c = o
            v = 0.0
        return [
            open_time + shift, repr(float(o)), repr(float(h)), repr(float(lo)), repr(float(c)),
            repr(float(v)), open_time + shift + s.interval_ms - 1, repr(float(v * c)),
            0, repr(float(v / 2)), repr(float(v * c / 2)), "0",
        ]

    def _ticker(self, sym: Symbol) -> dict[str, Any]:
        p = self.precision[sym.name]
        series = sym.finest()
        last, last_time = self._last_price(sym)
        end_idx = int(np.searchsorted(series.open_time, last_time - series.interval_ms, "right"))
        start_idx = max(0, int(np.searchsorted(series.open_time, last_time - 86_400_000, "left")))
        window = slice(start_idx, max(end_idx, start_idx + 1))
        open_price = float(series.open[window][0])
        volume = float(series.volume[window].sum())
        quote_volume = float((series.volume[window] * series.close[window]).sum())
        bid = _round_to(last - p.tick_size, p.tick_size)
        ask = _round_to(last + p.tick_size, p.tick_size)
        shift = self.clock.shift_ms
        return {
            "symbol": sym.name,
            "priceChange": _fmt(last - open_price, p.tick_size),
            "priceChangePercent": f"{(last / open_price - 1) * 100:.3f}",
            "weightedAvgPrice": _fmt(quote_volume / volume if volume else last, p.tick_size),
            "prevClosePrice": _fmt(open_price, p.tick_size),
            "lastPrice": _fmt(last, p.tick_size),
            "lastQty": _fmt(p.step_size, p.step_size),
            "bidPrice": _fmt(bid, p.tick_size),
            "bidQty": _fmt(self._depth_qty(sym, 0), p.step_size),
            "askPrice": _fmt(ask, p.tick_size),
            "askQty": _fmt(self._depth_qty(sym, 0), p.step_size),
            "openPrice": _fmt(open_price, p.tick_size),
            "highPrice": _fmt(float(series.high[window].max()), p.tick_size),
            "lowPrice": _fmt(float(series.low[window].min()), p.tick_size),
            "volume": f"{volume:.8f}",
            "quoteVolume": f"{quote_volume:.8f}",
            "openTime": last_time - 86_400_000 + shift,
            "closeTime": last_time - 1 + shift,
            "firstId": 0,
            "lastId": 0,
            "count": int(window.stop - window.start),
        }

    def ticker_24hr(self, params: dict[str, str]) -> Any:
        if "symbol" in params:
            return self._ticker(self._symbol(params))
        return [self._ticker(s) for s in self._symbols_param(params)]

    def ticker_price(self, params: dict[str, str]) -> Any:
        def one(sym: Symbol) -> dict[str, str]:
            return {"symbol": sym.name,
                    "price": _fmt(self._last_price(sym)[0], self.precision[sym.name].tick_size)}

        if "symbol" in params:
            return one(self._symbol(params))
        return [one(s) for s in self._symbols_param(params)]

    def book_ticker(self, params: dict[str, str]) -> Any:
        def one(sym: Symbol) -> dict[str, str]:
            t = self._ticker(sym)
            return {k: t[k] for k in ("symbol", "bidPrice", "bidQty", "askPrice", "askQty")}

        if "symbol" in params:
            return one(self._symbol(params))
        return [one(s) for s in self._symbols_param(params)]

    def avg_price(self, params: dict[str, str]) -> Any:
        sym = self._symbol(params)
        last, last_time = self._last_price(sym)
        return {"mins": 5, "price": _fmt(last, self.precision[sym.name].tick_size),
                "closeTime": last_time + self.clock.shift_ms}

    def _depth_qty(self, sym: Symbol, level: int) -> float:
        """Resting size per level: a small slice of the typical candle volume, deeper = larger."""
        series = sym.finest()
        typical = float(np.median(series.volume[-288:])) if len(series) else 1.0
        p = self.precision[sym.name]
        return max(p.step_size, _round_to(typical / 20.0 * (1 + 0.25 * level), p.step_size))

    def depth(self, params: dict[str, str]) -> Any:
        sym = self._symbol(params)
        try:
            limit = int(params.get("limit", 100))
        except ValueError as exc:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'limit'.") from exc
        limit = min((lim for lim in DEPTH_LIMITS if lim >= limit), default=5000)
        p = self.precision[sym.name]
        last, last_time = self._last_price(sym)
        gap = max(p.tick_size, last * 0.0001)  # one basis point between levels
        bids = [[_fmt(_round_to(last - (i + 1) * gap, p.tick_size), p.tick_size),
                 _fmt(self._depth_qty(sym, i), p.step_size)] for i in range(limit)]
        asks = [[_fmt(_round_to(last + (i + 1) * gap, p.tick_size), p.tick_size),
                 _fmt(self._depth_qty(sym, i), p.step_size)] for i in range(limit)]
        return {"lastUpdateId": last_time + self.clock.shift_ms, "bids": bids, "asks": asks}

    ROUTES = {
        "/api/v3/ping": "ping",
        "/api/v3/time": "time",
        "/api/v3/exchangeInfo": "exchange_info",
        "/api/v3/klines": "klines",
        "/api/v3/uiKlines": "klines",
        "/api/v3/ticker/24hr": "ticker_24hr",
        "/api/v3/ticker": "ticker_24hr",
        "/api/v3/ticker/price": "ticker_price",
        "/api/v3/ticker/bookTicker": "book_ticker",
        "/api/v3/avgPrice": "avg_price",
        "/api/v3/depth": "depth",
    }

    def handle(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
        """Answer one request: (HTTP status, JSON body)."""
        with self._lock:
            self.requests[path] += 1
        if method != "GET":
            return 401, {"code": -2015, "msg": "local_exchange serves public market data only: "
                         "run freqtrade with dry_run=true against it."}
        route = self.ROUTES.get(path)
        if route is None:
            return 404, {"code": -1000, "msg": f"local_exchange does not serve {path}."}
        try:
            return 200, getattr(self, route)(params)
        except ApiError as err:
            return err.status, {"code": err.code, "msg": err.msg}
        except (MarketDataError, ValueError) as exc:
            return 400, {"code": -1100, "msg": str(exc)}


class _Handler(BaseHTTPRequestHandler):
    server: LocalExchangeServer
    protocol_version = "HTTP/1.1"

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        status, body = self.server.api.handle(method, url.path, params)
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


class LocalExchangeServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` bound to loopback, serving a ``BinanceApi``."""

    daemon_threads = True
    # SO_REUSEADDR: a restarted server rebinds at once despite its predecessor's TIME_WAIT
    # connections; a second server beside a listening one still fails (Linux refuses two
    # listeners without SO_REUSEPORT), with PortInUseError.
    allow_reuse_address = True

    def __init__(self, api: BinanceApi, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.api = api
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"Port {port} on {host} is already in use. Stop the process using it "
                    f"(`lsof -i :{port}`) or choose another port with --port."
                ) from exc
            raise

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="local-exchange", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
