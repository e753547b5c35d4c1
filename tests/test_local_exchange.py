"""The local exchange, tested through ccxt itself (the client freqtrade uses)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import ccxt
import numpy as np
import pandas as pd
import pytest

from local_exchange.clock import DAY_MS, ReplayClock, wall_ms
from local_exchange.market_data import MarketData, MarketDataError, Precision
from local_exchange.overlay import DEFAULT_URL, offline_overlay
from local_exchange.server import LocalExchangeServer, PortInUseError
from local_exchange.synthetic import generate

REPO = Path(__file__).resolve().parent.parent


def ccxt_client(url: str) -> ccxt.binance:
    ccxt_config = offline_overlay(url)["exchange"]["ccxt_config"]
    return ccxt.binance({**ccxt_config, "enableRateLimit": False})


@pytest.fixture
def client(synthetic_datadir, start_exchange):
    server = start_exchange(synthetic_datadir)
    return ccxt_client(server.url)


def test_load_markets_gives_spot_markets_with_realistic_limits(client):
    markets = client.load_markets()
    assert set(markets) == {
        "BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT",
        "LINK/USDT", "AVAX/USDT", "LTC/USDT", "TRX/USDT",
    }
    btc = markets["BTC/USDT"]
    assert btc["spot"] and btc["active"] and btc["base"] == "BTC" and btc["quote"] == "USDT"
    assert btc["precision"]["price"] == 0.01
    assert btc["precision"]["amount"] == 1e-05
    assert btc["limits"]["cost"]["min"] == 5.0
    assert btc["taker"] == 0.001  # Binance's spot fee, from ccxt's market defaults
    doge = markets["DOGE/USDT"]
    assert doge["precision"]["amount"] >= 1.0 > doge["precision"]["price"]


def test_fetch_ohlcv_pages_through_the_file_exactly(client, synthetic_datadir):
    stored = pd.read_feather(synthetic_datadir / "ETH_USDT-5m.feather")
    since = int(stored["date"].iloc[100].timestamp() * 1000)
    first = client.fetch_ohlcv("ETH/USDT", "5m", since=since, limit=1000)
    second = client.fetch_ohlcv("ETH/USDT", "5m", since=first[-1][0] + 1, limit=1000)
    got = first + second
    assert len(first) == 1000 and len(got) == 2000
    times = [c[0] for c in got]
    assert times == sorted(set(times)) and np.all(np.diff(times) == 300_000)
    expected = stored.iloc[100:2100]
    assert np.allclose([c[4] for c in got], expected["close"].to_numpy())
    assert np.allclose([c[2] for c in got], expected["high"].to_numpy())


def test_fetch_ohlcv_latest_and_resampled_interval(client, synthetic_datadir):
    stored = pd.read_feather(synthetic_datadir / "BTC_USDT-1h.feather")
    latest = client.fetch_ohlcv("BTC/USDT", "1h", limit=5)
    assert [c[0] for c in latest] == [int(d.timestamp() * 1000) for d in stored["date"].iloc[-5:]]
    four_h = client.fetch_ohlcv("BTC/USDT", "4h", limit=3)  # not on disk: resampled from 1h
    last4 = stored.iloc[-4:]
    assert four_h[-1][2] == pytest.approx(last4["high"].max())
    assert four_h[-1][4] == pytest.approx(last4["close"].iloc[-1])


def test_tickers_order_book_and_time(client):
    ticker = client.fetch_ticker("SOL/USDT")
    assert ticker["bid"] < ticker["last"] < ticker["ask"]
    tickers = client.fetch_tickers()
    assert len(tickers) == 9 and tickers["SOL/USDT"]["last"] == ticker["last"]
    book = client.fetch_order_book("SOL/USDT", limit=10)
    assert len(book["bids"]) == len(book["asks"]) == 10
    assert book["bids"][0][0] < ticker["last"] < book["asks"][0][0]
    assert all(a[0] < b[0] for a, b in zip(book["asks"], book["asks"][1:], strict=False))
    assert abs(client.fetch_time() - wall_ms()) < 5_000


def test_unknown_symbol_and_private_calls_are_clean_errors(client):
    client.load_markets()
    with pytest.raises(ccxt.BadSymbol):
        client.fetch_ticker("FOO/USDT")
    status, body = client_raw(client, "/api/v3/klines?symbol=NOPEUSDT&interval=5m")
    assert status == 400 and body["code"] == -1121


def client_raw(client: ccxt.binance, path: str) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    base = client.urls["api"]["public"].removesuffix("/api/v3")
    try:
        with urllib.request.urlopen(base + path) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_replay_mode_hides_the_future(synthetic_datadir, start_exchange):
    data = MarketData.load(synthetic_datadir)
    start = data.first_time() + 10 * DAY_MS
    clock = ReplayClock.starting_at(start)
    client = ccxt_client(start_exchange(synthetic_datadir, clock).url)
    before = wall_ms()
    candles = client.fetch_ohlcv("BTC/USDT", "5m", limit=1000)
    now = wall_ms()
    # the last one was forming during the call (a 5-minute boundary may fall inside it)
    assert candles[-1][0] <= now and before < candles[-1][0] + 300_000
    assert candles[-2][0] + 300_000 <= now  # the one before has closed
    assert candles[0][0] % 300_000 == 0 and clock.shift_ms % DAY_MS == 0
    forming = candles[-1]
    assert forming[1] == forming[2] == forming[3] == forming[4] and forming[5] == 0
    # Closed candles are the stored ones, shifted by whole days.
    stored = pd.read_feather(synthetic_datadir / "BTC_USDT-5m.feather").set_index("date")
    data_time = pd.Timestamp(candles[-2][0] - clock.shift_ms, unit="ms", tz="UTC")
    assert candles[-2][4] == pytest.approx(stored.loc[data_time, "close"])
    # Asking beyond "now" returns nothing newer than the forming candle.
    later = client.fetch_ohlcv("BTC/USDT", "5m", since=now + 3_600_000, limit=10)
    assert later == []
    ticker = client.fetch_ticker("BTC/USDT")
    assert ticker["last"] == pytest.approx(candles[-2][4])


def test_port_in_use_is_a_clear_error(synthetic_datadir, start_exchange):
    server = start_exchange(synthetic_datadir)
    port = server.server_address[1]
    with pytest.raises(PortInUseError, match=f"Port {port} .* already in use"):
        start_exchange(synthetic_datadir, port=port)


def test_cli_reports_port_in_use_without_traceback(synthetic_datadir):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "local_exchange", "serve", "--datadir",
             str(synthetic_datadir), "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 2
    assert "already in use" in proc.stderr and "Traceback" not in proc.stderr


def test_empty_or_missing_datadir_says_how_to_fix(tmp_path):
    with pytest.raises(MarketDataError, match="download-data"):
        MarketData.load(tmp_path)
    with pytest.raises(MarketDataError, match="does not exist"):
        MarketData.load(tmp_path / "nope")


def test_missing_pair_is_named(synthetic_datadir):
    with pytest.raises(MarketDataError, match=r"PEPE/USDT"):
        MarketData.load(synthetic_datadir, pairs=["BTC/USDT", "PEPE/USDT"])


def test_malformed_candle_file_is_named(tmp_path):
    (tmp_path / "BTC_USDT-5m.feather").write_bytes(b"this is not arrow data")
    with pytest.raises(MarketDataError, match=r"BTC_USDT-5m\.feather"):
        MarketData.load(tmp_path)
    pd.DataFrame({"date": [1], "close": [1.0]}).to_feather(tmp_path / "BTC_USDT-5m.feather")
    with pytest.raises(MarketDataError, match="lacks columns"):
        MarketData.load(tmp_path)


def test_precision_follows_price_level():
    assert Precision.for_price(60_000, "USDT") == Precision(0.01, 1e-05, 5.0)
    assert Precision.for_price(0.15, "USDT").step_size == 1.0
    assert Precision.for_price(0.05, "BTC").min_notional == 0.0001


def test_committed_overlay_matches_the_generator():
    committed = json.loads((REPO / "user_data/config.offline.json").read_text())
    assert committed == offline_overlay(DEFAULT_URL)


def test_server_binds_loopback_by_default(synthetic_datadir):
    from local_exchange.server import BinanceApi

    server = LocalExchangeServer(BinanceApi(MarketData.load(synthetic_datadir)))
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_synthetic_market_is_reproducible_and_correlated():
    a, b = generate(days=20, seed=3), generate(days=20, seed=3)
    for pair in a:
        pd.testing.assert_frame_equal(a[pair], b[pair])
    assert not generate(days=20, seed=4)["BTC/USDT"].equals(a["BTC/USDT"])
    btc = np.log(a["BTC/USDT"]["close"]).diff()
    eth = np.log(a["ETH/USDT"]["close"]).diff()
    assert 0.4 < btc.corr(eth) < 0.95
    df = a["SOL/USDT"]
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df["date"].diff().dropna() == pd.Timedelta(minutes=5)).all()
