"""`make live`: the three layers as real processes, offline, driven through the REST API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from llm_oracle.schema import OracleDecision

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, proc: subprocess.Popen, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"make live exited while waiting for {what}"
        try:
            value = predicate()
        except Exception:  # API not up yet
            value = None
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


def decide(journal: Path, focus: list[str], level: str) -> None:
    """Append a decision in force from now, as the oracle daemon would."""
    now = datetime.now(UTC)
    with journal.open("a") as fh:
        fh.write(OracleDecision(decided_at=now - timedelta(seconds=1),
                                valid_until=now + timedelta(hours=8), session="test",
                                focus_pairs=focus, risk_level=level, max_exposure=0.5,
                                overnight_target=0.1, provider="test").model_dump_json() + "\n")


def last_row(client, pair: str) -> dict:
    candles = client.pair_candles(pair, "5m", limit=1)
    return dict(zip(candles["columns"], candles["data"][-1], strict=False))


def test_live_system_follows_an_oracle_change_and_stops_cleanly(real_datadir, tmp_path):
    from freqtrade_client import FtRestClient

    api_port = free_port()
    env = {**os.environ, "FREQTRADE__API_SERVER__USERNAME": "tester",
           "FREQTRADE__API_SERVER__PASSWORD": "pw-from-env-123",
           "FREQTRADE__API_SERVER__JWT_SECRET_KEY": "k" * 40}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "hybrid_ai.live", "--datadir", str(real_datadir),
         "--exchange-port", str(free_port()), "--api-port", str(api_port),
         "--pairs", "BTC/USDT", "ETH/USDT", "--userdir", str(tmp_path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    children: list[psutil.Process] = []
    try:
        client = FtRestClient(f"http://127.0.0.1:{api_port}", "tester", "pw-from-env-123")
        wait_for(lambda: client.ping() == {"status": "pong"}, 90, launcher, "the REST API")
        children = psutil.Process(launcher.pid).children(recursive=True)
        assert len(children) >= 3
        assert sorted(client.whitelist()["whitelist"]) == ["BTC/USDT", "ETH/USDT"]
        assert isinstance(client.status(), list)
        # All three layers are in the analysed dataframe.
        row = wait_for(lambda: (r := last_row(client, "ETH/USDT")) and "ml_buy_prob" in r
                       and r.get("oracle_valid") and r, 180, launcher, "analysed candles")
        for column in ("rsi", "macd", "bb_middleband", "ml_buy_prob", "ml_confidence",
                       "do_predict", "oracle_risk_level", "oracle_focus", "gate_approved"):
            assert column in row
        # Two new oracle decisions; the bot follows each on its next loop (5 s).
        journal = tmp_path / "oracle-live" / "journal.jsonl"
        decide(journal, ["BTC/USDT", "ETH/USDT"], "aggressive")
        wait_for(lambda: (r := last_row(client, "ETH/USDT"))["oracle_focus"] is True
                 and r["oracle_risk_level"] == 2, 60, launcher, "the first decision")
        decide(journal, ["BTC/USDT"], "conservative")
        start = time.monotonic()
        flipped = wait_for(lambda: (r := last_row(client, "ETH/USDT"))
                           and r["oracle_focus"] is False and r["oracle_risk_level"] == 0
                           and r, 60, launcher, "the oracle change in /pair_candles")
        latency = time.monotonic() - start
        print(f"oracle change visible after {latency:.1f}s")
        assert flipped["gate_oracle"] is False
        assert last_row(client, "BTC/USDT")["oracle_focus"] is True

        # Faults: the journal deleted, then corrupted: the bot keeps the last good decision.
        journal.unlink()
        time.sleep(7)
        journal.write_text("{torn line without an end\n\x00\x01garbage\n")
        time.sleep(7)
        kept = last_row(client, "ETH/USDT")
        assert kept["oracle_focus"] is False and kept["oracle_risk_level"] == 0
        assert client.ping() == {"status": "pong"}  # still running
        # The oracle silent past valid_until (+ grace): conservative mode, trading on.
        now = datetime.now(UTC)
        journal.write_text(OracleDecision(
            decided_at=now - timedelta(hours=9), valid_until=now - timedelta(hours=1),
            session="old", focus_pairs=["ETH/USDT"], risk_level="aggressive",
            max_exposure=0.9, overnight_target=0.5, provider="test").model_dump_json() + "\n")
        stale = wait_for(lambda: (r := last_row(client, "ETH/USDT"))
                         and r["oracle_valid"] is False and r, 60, launcher, "conservative mode")
        assert stale["oracle_risk_level"] == 0 and stale["oracle_max_exposure"] == 0.3
        assert stale["gate_oracle"] is True  # no valid focus list: not a reason to stop trading

        # The REST API listens on loopback only.
        bot = next(p for p in children if "freqtrade" in " ".join(p.cmdline()))
        listening = [c.laddr for c in bot.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening)
        bad = FtRestClient(f"http://127.0.0.1:{api_port}", "tester", "wrong")
        assert bad.status() in (None, {"detail": "Unauthorized"}) or "detail" in str(bad.status())
    finally:
        os.killpg(launcher.pid, signal.SIGTERM) if launcher.poll() is None else None
        out, _ = launcher.communicate(timeout=60)
    assert "all processes stopped" in out
    assert "oracle: no valid decision" in out  # the stale phase was announced
    assert "pw-from-env-123" not in out  # the password from the environment is never printed
    time.sleep(1)
    assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_two_bots_follow_one_served_oracle_and_survive_its_outage(real_datadir, start_exchange,
                                                                   tmp_path):
    """Two dry-run bots with different pairs read one `python -m llm_oracle serve` over HTTP:
    both follow a new decision; with the server down they keep the last good one."""
    import json

    from freqtrade_client import FtRestClient

    from local_exchange.clock import ReplayClock
    from local_exchange.overlay import offline_overlay

    exchange = start_exchange(real_datadir, ReplayClock.starting_at(
        int(datetime(2024, 8, 20, tzinfo=UTC).timestamp() * 1000)))
    oracle_dir = tmp_path / "oracle"
    oracle_dir.mkdir()
    journal = oracle_dir / "journal.jsonl"
    decide(journal, ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "aggressive")
    oracle_port = free_port()
    (tmp_path / "serve.json").write_text(json.dumps({
        "exchange": {"pair_whitelist": ["BTC/USDT"]}, "llm_oracle": {"serve_port": oracle_port}}))
    serve = subprocess.Popen([sys.executable, "-m", "llm_oracle", "-c",
                              str(tmp_path / "serve.json"), "--output-dir", str(oracle_dir),
                              "serve"], cwd=REPO, stderr=subprocess.DEVNULL)
    bots, env = [], {**os.environ, "FREQTRADE__API_SERVER__USERNAME": "bots",
                     "FREQTRADE__API_SERVER__PASSWORD": "pw-bots-456",
                     "FREQTRADE__API_SERVER__JWT_SECRET_KEY": "b" * 40}
    try:
        clients = []
        for name, pairs in (("a", ["BTC/USDT", "ETH/USDT"]), ("b", ["SOL/USDT", "ETH/USDT"])):
            port = free_port()
            overlay = offline_overlay(exchange.url)
            overlay.update({
                "exchange": {**overlay["exchange"], "pair_whitelist": pairs},
                "freqai": {"enabled": False},
                "hybrid_ai": {"oracle": {
                    "enabled": True, "source": f"http://127.0.0.1:{oracle_port}/journal.jsonl"}},
                "api_server": {"enabled": True, "listen_ip_address": "127.0.0.1",
                               "listen_port": port, "ws_token": ""},
                "internals": {"process_throttle_secs": 2},
            })
            cfg = tmp_path / f"bot_{name}.json"
            cfg.write_text(json.dumps(overlay))
            (tmp_path / name).mkdir()
            bots.append(subprocess.Popen(
                [sys.executable, "-m", "freqtrade", "trade", "-c", str(REPO / "config.json"),
                 "-c", str(cfg), "--userdir", str(tmp_path / name),
                 "--db-url", f"sqlite:///{tmp_path / name / 'trades.sqlite'}"],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            clients.append(FtRestClient(f"http://127.0.0.1:{port}", "bots", "pw-bots-456"))

        def eth_focus(client) -> bool | None:
            return last_row(client, "ETH/USDT")["oracle_focus"]

        for client, bot in zip(clients, bots, strict=True):
            wait_for(lambda c=client: eth_focus(c) is True, 120, bot, "the first decision")
        decide(journal, ["BTC/USDT", "SOL/USDT"], "conservative")  # ETH out, for both bots
        for client, bot in zip(clients, bots, strict=True):
            wait_for(lambda c=client: eth_focus(c) is False, 60, bot, "the change")
        serve.terminate()
        serve.wait(timeout=10)
        time.sleep(6)  # a few loops without the server
        for client, bot in zip(clients, bots, strict=True):
            assert bot.poll() is None
            row = last_row(client, "ETH/USDT")
            assert row["oracle_focus"] is False and row["oracle_valid"] is True  # last good kept
    finally:
        for proc in [*bots, serve]:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
