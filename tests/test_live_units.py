"""Fast tests of the pieces `make live` and `make report` are built from: the fast replay
clock, the supervisor's restart policy, oracle exits, observed layers, FreqAI's history
dates and frozen models."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from hybrid_ai import gates
from hybrid_ai.frames import utc_dates
from hybrid_ai.ml import frozen as frozen_model
from hybrid_ai.oracle.feed import OracleFeed
from hybrid_ai.settings import OracleGate, load_settings
from lab.live import Supervisor
from llm_oracle.schema import OracleDecision
from local_exchange.clock import ScaledClock, wall_ms
from local_exchange.market_data import MarketData
from local_exchange.server import BinanceApi, LocalExchangeServer

REPO = Path(__file__).resolve().parent.parent
DATA_START = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp() * 1000)


def test_scaled_clock_runs_speed_times_faster_from_its_anchor():
    anchor = wall_ms()
    clock = ScaledClock(DATA_START, anchor, speed=600)
    time.sleep(0.2)
    elapsed = clock.now() - DATA_START
    assert 100_000 <= elapsed <= 200_000  # 0.2 s wall x 600, with scheduling slack
    assert clock.cursor() == pytest.approx(clock.now(), abs=2_000)


def test_the_exchange_on_a_scaled_clock_serves_data_time(synthetic_datadir):
    data = MarketData.load(synthetic_datadir, ["BTC/USDT"])
    start = data.first_time() + 10 * 86_400_000
    server = LocalExchangeServer(BinanceApi(data, ScaledClock(start, wall_ms(), 60)), port=0)
    server.start_in_thread()
    try:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{server.url}/api/v3/time") as resp:
            now = json.load(resp)["serverTime"]
        with urllib.request.urlopen(f"{server.url}/api/v3/klines?symbol=BTCUSDT&interval=5m"
                                    "&limit=3") as resp:
            klines = json.load(resp)
    finally:
        server.stop()
    assert 0 <= now - start < 60_000
    assert klines[-1][0] <= now < klines[-1][0] + 300_000  # the newest candle is forming now


def test_fastclock_gives_a_program_the_replay_clock(tmp_path):
    (tmp_path / "probe.py").write_text(
        "import time, datetime\n"
        "t0 = time.time(); time.sleep(120); t1 = time.time()\n"
        "print(int(t0), int(t1 - t0), datetime.datetime.now(datetime.UTC).year)\n")
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "local_exchange.fastclock", "--data-start", str(DATA_START),
         "--anchor", str(wall_ms()), "--speed", "120", "probe"],
        cwd=REPO, env={"PYTHONPATH": f"{tmp_path}:{REPO}"}, capture_output=True, text=True,
        check=True).stdout.split()
    t0, slept, year = map(int, out)
    assert abs(t0 - DATA_START / 1000) < 600  # the data's time, not today's
    assert 119 <= slept <= 180 and year == 2024
    assert time.monotonic() - started < 30  # two clock minutes took about one real second


def test_supervisor_restarts_a_dying_child_then_gives_up(capsys):
    sup = Supervisor(max_restarts=2, restart_window=60)
    sup.spawn("flaky", [sys.executable, "-c", "import sys; sys.exit(3)"], restartable=True)
    assert sup.watch() == 1
    err = capsys.readouterr().err
    assert err.count("flaky exited with 3; restarting it") == 2
    assert "flaky exited with 3; stopping the rest" in err


AT = datetime(2024, 6, 1, 12, tzinfo=UTC)


def test_the_oracle_closes_trades_only_through_a_strong_negative_bias(tmp_path):
    journal = tmp_path / "journal.jsonl"
    journal.write_text(OracleDecision(
        decided_at=AT, valid_until=AT + timedelta(hours=6), session="t", focus_pairs=[],
        risk_level="conservative", max_exposure=0.3, overnight_target=0.0, provider="t",
        pair_bias={"ETH/USDT": -0.8, "BTC/USDT": -0.2}).model_dump_json() + "\n")
    candles = pd.DataFrame({"date": pd.to_datetime([AT + timedelta(hours=1),
                                                    AT + timedelta(hours=7)], utc=True)})

    def exits(pair: str, exit_bias: float | None) -> list[bool]:
        feed = OracleFeed(OracleGate(enabled=True, source=str(journal), grace_minutes=0,
                                     exit_bias=exit_bias))
        feed.refresh()
        return feed.merge(candles.copy(), pair, timedelta(minutes=5))["oracle_exit"].tolist()

    assert exits("ETH/USDT", -0.5) == [True, False]  # in force, then stale: no say
    assert exits("BTC/USDT", -0.5) == [False, False]
    assert exits("ETH/USDT", None) == [False, False]  # exits switched off
    assert load_settings({}).oracle.exit_bias == -0.5


def test_observed_layers_neither_gate_nor_tag():
    df = pd.DataFrame({"gate_ml": [False, True], "gate_oracle": [True, True]})
    assert gates.approve(df)[gates.APPROVED].tolist() == [False, True]
    assert gates.approve(df, ["ml"])[gates.APPROVED].tolist() == [True, True]
    assert gates.entry_tag(df, ["ml", "oracle"]) == "ta"
    assert gates.entry_tag(df, ["oracle"]) == "ta+ml"
    assert load_settings({"hybrid_ai": {"observe_only": ["ml"]}}).decides("oracle")
    with pytest.raises(ValueError, match="observe_only"):
        load_settings({"hybrid_ai": {"observe_only": ["llm"]}})


def test_history_dates_stay_datetime_when_stored_and_fresh_candles_meet(tmp_path):
    # Candles as freqtrade stores them (feather) and reads them back: ZoneInfo("UTC").
    pd.DataFrame({"date": pd.date_range("2024-06-01", periods=2, freq="5min", tz="UTC",
                                        unit="ms"),
                  "close": 1.0}).to_feather(tmp_path / "c.feather")
    stored = pd.read_feather(tmp_path / "c.feather")
    assert isinstance(stored["date"].dt.tz, ZoneInfo)
    fresh = pd.DataFrame({"date": pd.date_range("2024-06-01 00:10", periods=1, freq="5min",
                                                tz=dt.UTC), "close": 2.0})
    joined = pd.concat([stored, fresh], ignore_index=True)
    assert joined["date"].dtype == object  # what FreqAI's update_historic_data produced
    fixed = utc_dates(joined)
    assert isinstance(fixed["date"].dtype, pd.DatetimeTZDtype)
    assert fixed["date"].is_monotonic_increasing
    again = pd.concat([fixed, fresh.assign(date=fresh["date"] + pd.Timedelta("5min"))])
    assert isinstance(again["date"].dtype, pd.DatetimeTZDtype)  # repaired once, stays so


def test_frozen_models_pick_the_newest_before_the_cutoff_or_say_what_is_missing(tmp_path):
    for stamp in (1_717_200_000, 1_717_804_800, 1_718_409_600):  # 1, 8, 15 June 2024
        (tmp_path / f"sub-train-ETH_{stamp}").mkdir()
    cutoff = datetime(2024, 6, 10, tzinfo=UTC)
    assert frozen_model.find(tmp_path, "ETH/USDT", cutoff).name == "sub-train-ETH_1717804800"
    assert frozen_model.find(tmp_path, "ETH/USDT").name == "sub-train-ETH_1718409600"
    with pytest.raises(frozen_model.FrozenModelError, match="sub-train-BTC_"):
        frozen_model.find(tmp_path, "BTC/USDT")
    with pytest.raises(frozen_model.FrozenModelError, match="incomplete or corrupt"):
        frozen_model.load(tmp_path, "ETH/USDT", cutoff)  # an empty directory


def test_log_lines_never_carry_tokens_or_passwords():
    import io
    import logging

    from hybrid_ai import redaction

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        redaction.install()
        redaction.install()  # idempotent
        logging.getLogger("uvicorn.error").warning(
            '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000",
            "/api/v1/message/ws?token=eyJhbGciOi.secret.part&x=1")
        logging.getLogger("x").warning("login with password=hunter2 ok")
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert "eyJhbGciOi" not in text and "hunter2" not in text
    assert "token=<redacted>&x=1" in text and "password=<redacted>" in text


def test_api_tokens_live_their_usual_real_time_under_the_fast_clock(monkeypatch):
    from freqtrade.rpc.api_server import api_auth

    from local_exchange.fastclock import stretch_api_tokens

    monkeypatch.setattr(api_auth, "create_token", api_auth.create_token)  # restored after
    stretch_api_tokens(300)
    token = api_auth.create_token({"identity": {"u": "x"}}, "k" * 40)
    claims = api_auth.jwt.decode(token, "k" * 40, algorithms=[api_auth.ALGORITHM])
    assert claims["exp"] - claims["iat"] == 15 * 60 * 300  # 15 real minutes at 300x
    assert api_auth.get_user_from_token(token, "k" * 40) == "x"
