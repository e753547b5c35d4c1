"""`make live`: the three layers as real processes, offline, driven through the REST API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from conftest import MODEL_ID
from pace import limit, pace

from lab.project import HYBRID_CONFIG, PACK_CONFIGS, config_args
from llm_oracle.schema import OracleDecision

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, proc: subprocess.Popen, what: str,
             log: Path | None = None):
    """Poll ``predicate`` until it returns something truthy; ``timeout`` seconds on a quiet
    machine, stretched by the machine's pace (``tests/pace.py``). A timeout's message ends
    with the last lines of ``log`` (what the processes were doing)."""
    allowed = limit(timeout)
    deadline = time.monotonic() + allowed
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"make live exited while waiting for {what}"
        try:
            value = predicate()
        except Exception:  # API not up yet
            value = None
        if value:
            return value
        time.sleep(2)
    tail = ""
    if log is not None and log.exists():
        tail = "\nlast lines of the log:\n" + "\n".join(
            log.read_text(errors="replace").splitlines()[-40:])
    raise AssertionError(f"timed out waiting for {what} ({allowed:.0f}s: {timeout:.0f}s x the "
                         f"machine's pace){tail}")


def decide(journal: Path, focus: list[str], level: str, max_exposure: float = 0.5,
           max_position: float | None = None, overnight_target: float = 0.1,
           now: datetime | None = None) -> None:
    """Append a decision in force from ``now`` (the bot's clock; default: the wall clock),
    as the oracle daemon would."""
    now = now or datetime.now(UTC)
    with journal.open("a") as fh:
        fh.write(OracleDecision(decided_at=now - timedelta(seconds=1),
                                valid_until=now + timedelta(hours=8), session="test",
                                focus_pairs=focus, risk_level=level, max_exposure=max_exposure,
                                max_position=max_position, overnight_target=overnight_target,
                                provider="test", reasoning=f"test decision: risk {level}\n"
                                f"focus {', '.join(focus)}").model_dump_json() + "\n")


def hand_held_oracle(path: Path, clock: datetime | None = None) -> Path:
    """A config overlay for tests that write the decisions themselves: the daemon still runs
    (its startup session included) but its next scheduled session is 12 hours of the replay's
    clock after ``clock`` (default: now) and no price move triggers an event session, so no
    decision of its own lands among the test's."""
    at = (clock or datetime.now(UTC)) + timedelta(hours=12)
    path.write_text(json.dumps({"llm_oracle": {"sessions": [f"{at:%H:%M}"],
                                               "event_move": 100.0}}))
    return path


def last_rows(client, pair: str, limit: int) -> list[dict]:
    candles = client.pair_candles(pair, "5m", limit=limit)
    return [dict(zip(candles["columns"], row, strict=False)) for row in candles["data"]]


def last_row(client, pair: str) -> dict:
    return last_rows(client, pair, 1)[-1]


CREDS = {"FREQTRADE__API_SERVER__USERNAME": "tester",
         "FREQTRADE__API_SERVER__PASSWORD": "pw-from-env-123",
         "FREQTRADE__API_SERVER__JWT_SECRET_KEY": "k" * 40}


# Processes of the live stack (a test may run others, e.g. a browser, beside it).
STACK = ("freqtrade", "local_exchange", "llm_oracle")


class Live:
    """`python -m lab.live` as a user starts it; its output goes to a log file (a pipe
    nobody reads would fill up and block the processes)."""

    def __init__(self, datadir: Path, userdir: Path, *args: str,
                 preset: Path | None = HYBRID_CONFIG) -> None:
        """``args`` after ``-c preset`` (default: HybridAIStrategy's 5m families; None: the
        shipped defaults, config.json alone)."""
        from freqtrade_client import FtRestClient

        self.api_port = free_port()
        self.log = userdir / f"live-{time.monotonic_ns()}.log"
        userdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lab.live", "--datadir", str(datadir),
                 "--exchange-port", str(free_port()), "--api-port", str(self.api_port),
                 "--userdir", str(userdir), *(["-c", str(preset)] if preset else []), *args],
                cwd=REPO, env={**os.environ, **CREDS}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.client = FtRestClient(f"http://127.0.0.1:{self.api_port}", "tester",
                                   "pw-from-env-123")
        self.children: list[psutil.Process] = []
        self.wait(lambda: self.client.ping() == {"status": "pong"}, 120, "the REST API")
        self.children = psutil.Process(self.proc.pid).children(recursive=True)

    def wait(self, predicate, timeout: float, what: str):
        return wait_for(predicate, timeout, self.proc, what, self.log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def child(self, marker: str) -> psutil.Process:
        """The running child whose command line contains ``marker``."""
        for proc in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if marker in " ".join(proc.cmdline()):
                    return proc
            except psutil.Error:  # a dead child not yet reaped by the supervisor
                continue
        raise LookupError(marker)

    def stop(self) -> str:
        """SIGTERM as Ctrl-C would; every process gone afterwards."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=90)
        time.sleep(1)
        children = self.children + psutil.Process(os.getpid()).children(recursive=True)
        left = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                and any(part in " ".join(p.cmdline()) for part in STACK)]
        out = self.output()
        assert "all processes stopped" in out
        assert not left, f"processes left: {[p.cmdline() for p in left]}"
        assert "pw-from-env-123" not in out  # the password from the environment never printed
        return out


def test_live_system_follows_an_oracle_change_and_stops_cleanly(real_datadir, tmp_path):
    from freqtrade_client import FtRestClient

    live = Live(real_datadir, tmp_path, "--pairs", "BTC/USDT", "ETH/USDT",
                "-c", str(hand_held_oracle(tmp_path / "hand-held.json")))
    client = live.client
    try:
        assert len(live.children) >= 3
        assert sorted(client.whitelist()["whitelist"]) == ["BTC/USDT", "ETH/USDT"]
        assert isinstance(client.status(), list)
        # All three layers are in the analysed dataframe.
        row = live.wait(lambda: (r := last_row(client, "ETH/USDT")) and "ml_buy_prob" in r
                        and r.get("oracle_valid") and r, 180, "analysed candles")
        for column in ("rsi", "macd", "bb_middleband", "ml_buy_prob", "ml_confidence",
                       "do_predict", "oracle_risk_level", "oracle_focus", "gate_approved"):
            assert column in row
        # Two new oracle decisions; the bot follows each on its next loop (5 s).
        journal = tmp_path / "oracle-live" / "journal.jsonl"
        decide(journal, ["BTC/USDT", "ETH/USDT"], "aggressive")
        live.wait(lambda: (r := last_row(client, "ETH/USDT"))["oracle_focus"] is True
                  and r["oracle_risk_level"] == 2, 60, "the first decision")
        decide(journal, ["BTC/USDT"], "conservative")
        start = time.monotonic()
        flipped = live.wait(lambda: (r := last_row(client, "ETH/USDT"))
                            and r["oracle_focus"] is False and r["oracle_risk_level"] == 0
                            and r, 60, "the oracle change in /pair_candles")
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
        stale = live.wait(lambda: (r := last_row(client, "ETH/USDT"))
                          and r["oracle_valid"] is False and r, 60, "conservative mode")
        assert stale["oracle_risk_level"] == 0 and stale["oracle_max_exposure"] == 0.3
        assert stale["gate_oracle"] is True  # no valid focus list: not a reason to stop trading

        # The REST API listens on loopback only and refuses a wrong password.
        bot = live.child("freqtrade")
        listening = [c.laddr for c in bot.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening)
        bad = FtRestClient(f"http://127.0.0.1:{live.api_port}", "tester", "wrong")
        assert bad.status() in (None, {"detail": "Unauthorized"}) or "detail" in str(bad.status())
        # Both models trained and saved before the restart below.
        models = tmp_path / "models" / MODEL_ID
        live.wait(lambda: len(list(models.glob("sub-train-*/*_model.joblib"))) >= 2, 240,
                  "both models on disk")
    finally:
        out = live.stop()
    assert "oracle: no valid decision" in out  # the stale phase was announced

    # Fault: a model file corrupted on disk, found by the next start. The pair's ML layer
    # is reported unavailable and its entries blocked; its TA (exits) and the other pair
    # keep working.
    eth_model = max(models.glob("sub-train-ETH_*/*_model.joblib"), key=lambda p: p.stat().st_mtime)
    eth_model.write_bytes(b"\x00 not a pickle, a torn write \x00" * 10)
    live = Live(real_datadir, tmp_path, "--pairs", "BTC/USDT", "ETH/USDT")
    try:
        live.wait(lambda: "ETH/USDT: ML layer unavailable" in live.output(), 180,
                  "the model error")
        eth = live.wait(lambda: (r := last_row(live.client, "ETH/USDT")) and r.get("rsi")
                        and r, 60, "ETH analysed")
        assert eth["gate_ml"] is False and eth["gate_approved"] is False
        assert eth["macd"] is not None  # TA (and with it the exit signal) still computed
        # BTC's model loaded and predicts the newest candle (a probability; FreqAI's null
        # values would be 0). Older rows may lack predictions across the restart's downtime.
        btc = live.wait(lambda: (r := last_row(live.client, "BTC/USDT"))
                        and (r.get("ml_buy_prob") or 0) > 0 and r, 120, "BTC predicting")
        assert btc["rsi"] is not None
        assert "BTC/USDT: ML layer unavailable" not in live.output()
        assert live.output().count("ETH/USDT: ML layer unavailable") == 1  # once, not per loop
    finally:
        live.stop()


def copy_pairs(src: Path, dst: Path, pairs: list[str]) -> None:
    dst.mkdir(parents=True)
    for pair in pairs:
        for tf in ("5m", "1h"):
            name = f"{pair.replace('/', '_')}-{tf}.feather"
            shutil.copy(src / name, dst / name)


def test_fast_replay_trades_and_survives_an_exchange_restart_and_a_candle_gap(real_datadir,
                                                                              tmp_path):
    """`make live SPEED=300`: a dry-run trade within minutes; the exchange killed and
    restarted under the running bot; a hole in the exchange's candles."""
    import pandas as pd

    # Three pairs above their 30-day average that day: the shipped momentum top-3 can enter.
    datadir = tmp_path / "data"
    pairs = ["XRP/USDT", "LTC/USDT", "TRX/USDT"]
    copy_pairs(real_datadir, datadir, pairs)
    gap = (pd.Timestamp("2024-08-20 08:00", tz="UTC"), pd.Timestamp("2024-08-20 08:30", tz="UTC"))
    ltc = datadir / "LTC_USDT-5m.feather"
    frame = pd.read_feather(ltc)
    frame[(frame["date"] < gap[0]) | (frame["date"] >= gap[1])].reset_index(drop=True) \
        .to_feather(ltc)
    # 300x on a quiet machine (a 5-minute candle a second); slower on a busy one, where a
    # bot loop longer than a candle leaves FreqAI's predictions and the entries behind.
    speed = str(max(30, round(300 / pace())))
    live = Live(datadir, tmp_path / "user", "--pairs", *pairs, "--speed", speed,
                "--replay-start", "2024-08-20 06:00", "-c", str(REPO / "user_data" /
                                                                "config.eager.json"))
    client = live.client
    try:
        started = time.monotonic()
        trades = live.wait(lambda: (t := client.trades())["trades_count"] and t["trades"], 360,
                           "a dry-run trade")
        print(f"first trade after {time.monotonic() - started:.0f}s: {trades[0]['open_date']} "
              f"{trades[0]['pair']} {trades[0]['enter_tag']}")
        assert trades[0]["enter_tag"] == "ta+ml"  # the oracle observed, as shipped
        assert trades[0]["open_date"] >= "2024-08-20"  # the bot lives on the replay's clock

        # The candle gap: freqtrade fills the missing candles flat, with no volume; no entry
        # signal on them; the bot keeps going.
        candles = live.wait(lambda: (c := client.pair_candles("LTC/USDT", "5m", limit=500))
                            and c["data"][-1][0] > "2024-08-20T09" and c, 120, "past the gap")
        rows = [dict(zip(candles["columns"], r, strict=False)) for r in candles["data"]]
        holes = [r for r in rows if "2024-08-20T08:00" <= r["date"] < "2024-08-20T08:30"]
        assert len(holes) == 6 and all(r["volume"] == 0 for r in holes)
        assert not any(r.get("enter_long") == 1 for r in holes)

        # The exchange killed: the supervisor restarts it on the same timeline; the bot
        # rides it out (same process), its clock and candles go on, no order is duplicated.
        bot_pid = live.child("freqtrade").pid
        exchange = live.child("local_exchange serve")
        before = last_row(client, "XRP/USDT")["date"]
        exchange.kill()
        live.wait(lambda: "local exchange exited with -9; restarting it" in live.output(), 30,
                  "the exchange restart")
        live.wait(lambda: live.child("local_exchange serve").pid != exchange.pid, 30,
                  "a new exchange process")
        live.wait(lambda: last_row(client, "XRP/USDT")["date"] > before, 120,
                  "new candles after the restart")
        assert live.child("freqtrade").pid == bot_pid
        orders = [o["order_id"] for t in client.trades()["trades"] for o in t["orders"]]
        assert len(orders) == len(set(orders))
    finally:
        live.stop()


def test_trend_core_dry_run_on_hourly_candles_alone_enters_and_rebalances(real_datadir,
                                                                         tmp_path):
    """The shipped defaults (the trend core, config.json alone) as a user runs them on a
    data directory holding 1h files only: at the day's close it enters at the target stake,
    and the next day's decision sells a pair back to its lowered target (orders
    ``rebalance``);
    FreqUI gets the target weight, the ensemble's share and the core's plot."""
    datadir = tmp_path / "data"
    datadir.mkdir()
    pairs = ["XRP/USDT", "LTC/USDT", "TRX/USDT"]  # all three trend on 2024-08-19's close
    for pair in pairs:
        name = f"{pair.replace('/', '_')}-1h.feather"
        shutil.copy(real_datadir / name, datadir / name)
    # 1200x: an hourly candle every 3 s on a quiet machine, slower on a busy one (a bot
    # loop longer than a candle would miss the day's decision candle).
    speed = str(max(300, round(1200 / pace())))
    live = Live(datadir, tmp_path / "user", "--pairs", *pairs, "--speed", speed,
                "--replay-start", "2024-08-19 12:00", preset=None)
    client = live.client

    def orders(tag: str, side: str) -> list[dict]:
        return [(t["pair"], o) for t in client.status() for o in t["orders"]
                if o["ft_order_tag"] == tag and o["ft_order_side"] == side
                and o["status"] == "closed"]

    try:
        entries = live.wait(lambda: len(o := orders("trend_core", "buy")) == 3 and o, 240,
                            "three entries at 2024-08-19's close")
        balance = client.balance()["total"]
        opened = {t["pair"]: t for t in client.status()}
        assert all(t["open_date"] >= "2024-08-20 00:00" for t in opened.values())
        # each at its target: the day's weight x the tradable balance, the book within it
        for pair, order in entries:
            candles = client.pair_candles(pair, "1h", limit=30)
            rows = [dict(zip(candles["columns"], r, strict=False)) for r in candles["data"]]
            decided = next(r for r in rows if r["date"].startswith("2024-08-19T23"))
            assert decided["tc_decide"] and decided["tc_weight"] > 0 and decided["tc_share"] > 0
            assert order["cost"] == pytest.approx(decided["tc_weight"] * balance * 0.99,
                                                  rel=0.05)
        assert sum(o["cost"] for _, o in entries) <= balance
        plot = client.plot_config()
        assert set(plot["subplots"]["trend core"]) == {"tc_weight", "tc_share", "tc_book"}

        # 2024-08-20's close: LTC's share of rules long halves, and so does its target: sold
        # down to it (the trade stays open: one per pair, resized in place); XRP and TRX stay
        # within the band (no order).
        sells = live.wait(lambda: [o for p, o in orders("rebalance", "sell") if p == "LTC/USDT"],
                          240, "LTC's rebalance sale")
        held = {t["pair"]: t for t in client.status()}
        ltc = held["LTC/USDT"]
        assert [o["ft_order_tag"] for o in ltc["orders"]][:2] == ["trend_core", "rebalance"]
        first = ltc["orders"][0]["filled"]
        assert sells[0]["filled"] == pytest.approx(first / 2, rel=0.25)  # about half sold
        assert not orders("rebalance", "buy")
    finally:
        live.stop()


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
                [sys.executable, "-m", "freqtrade", "trade", *config_args(PACK_CONFIGS),
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


class Webhook:
    """A webhook receiver on loopback: the JSON bodies freqtrade's webhook RPC posts."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def config(self) -> dict:
        """freqtrade's webhook section: the strategy's own messages, as JSON."""
        return {"enabled": True, "url": self.url, "format": "json",
                "allow_custom_messages": True, "strategy_msg": {"text": "{msg}"}}

    def texts(self) -> list[str]:
        return [body["text"] for body in self.received if "text" in body]

    def close(self) -> None:
        self.server.shutdown()


def test_dry_run_bot_trims_an_open_trade_after_a_downgrade(real_datadir, tmp_path):
    """Steering open trades live: a downgrade in the journal becomes a trim order within two
    bot loops (process_throttle_secs 5); each decision and the trim reach freqtrade's
    messaging (a webhook here; Telegram takes the same messages) once."""
    hook = Webhook()
    extra = tmp_path / "steer.json"
    # The oracle deciding (the shipped config observes it); no exit signal, so the forced
    # trade stays open whatever its trend.
    extra.write_text(json.dumps({"freqai": {"enabled": False}, "force_entry_enable": True,
                                 "use_exit_signal": False,
                                 "hybrid_ai": {"oracle": {"overnight_at": None},
                                               "observe_only": []},
                                 "webhook": hook.config()}))
    live = Live(real_datadir, tmp_path, "--pairs", "BTC/USDT", "ETH/USDT", "-c", str(extra),
                "-c", str(hand_held_oracle(tmp_path / "hand-held.json")))
    client = live.client
    journal = tmp_path / "oracle-live" / "journal.jsonl"
    try:
        live.wait(lambda: (r := last_row(client, "BTC/USDT")) and r.get("oracle_valid"), 180,
                  "analysed candles with the oracle")
        decide(journal, ["BTC/USDT", "ETH/USDT"], "aggressive", 0.9, 0.25, 0.9)
        live.wait(lambda: last_row(client, "BTC/USDT")["oracle_risk_level"] == 2, 60,
                  "the aggressive decision")
        client.forceenter("BTC/USDT", "long", order_type="market")
        trade = live.wait(lambda: (t := client.status()) and t[0]["amount"] > 0
                          and not t[0]["has_open_orders"] and t[0], 60, "the entry filled")
        stake = trade["stake_amount"]
        time.sleep(2)  # the decision comes after the entry (trims never touch later trades)
        decide(journal, ["BTC/USDT", "ETH/USDT"], "conservative", 0.9, 0.05, 0.9)
        start = time.monotonic()

        def trim_order():
            orders = client.status()[0]["orders"]
            return next((o for o in orders if o["ft_order_tag"] == "oracle_derisk"), None)

        order = live.wait(trim_order, 60, "the oracle_derisk order")
        latency = time.monotonic() - start
        print(f"trim order placed {latency:.1f}s after the journal changed")
        assert latency <= 2 * 5 + 4  # two bot loops, plus the test's 2 s polling
        # Sells down to max_position (5 % of equity), a partial exit, not a close.
        assert order["ft_order_side"] == "sell"
        assert order["amount"] * trade["open_rate"] == pytest.approx(stake - 0.05 * 990, rel=0.05)
        time.sleep(12)  # two more loops: one trim per decision, no second order
        orders = client.status()[0]["orders"]
        assert sum(o["ft_order_tag"] == "oracle_derisk" for o in orders) == 1
        # What the user reads: each decision once, with level, caps and reasons; the trim.
        live.wait(lambda: any("oracle_derisk sells" in t for t in hook.texts()), 30,
                  "the trim's message")
    finally:
        out = live.stop()
        hook.close()
    assert out.count("BTC/USDT: oracle_derisk, stake") == 1  # the log line, once
    texts = hook.texts()
    decisions = [t for t in texts if t.startswith("Oracle decision")]
    assert sum("risk aggressive" in t for t in decisions) == 1
    downgrade = [t for t in decisions if "risk conservative" in t and "per trade <= 5%" in t]
    assert len(downgrade) == 1 and "(test, " in downgrade[0]
    assert "Why: test decision: risk conservative" in downgrade[0]
    trims = [t for t in texts if "oracle_derisk" in t]
    assert len(trims) == 1 and trims[0].startswith("BTC/USDT: oracle_derisk sells ")
    assert "risk conservative, per trade <= 5%" in trims[0]


def test_no_process_outlives_a_killed_supervisor(real_datadir, tmp_path):
    """A service manager's SIGKILL of `make live` (no chance to clean up): the kernel takes
    the exchange, the oracle and freqtrade with it, and the ports are free again."""
    extra = tmp_path / "no-ml.json"
    extra.write_text(json.dumps({"freqai": {"enabled": False}}))
    live = Live(real_datadir, tmp_path, "--pairs", "BTC/USDT", "-c", str(extra))
    children = psutil.Process(live.proc.pid).children(recursive=True)
    assert len(children) >= 3
    os.kill(live.proc.pid, signal.SIGKILL)
    live.proc.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"orphans: {[p.cmdline() for p in alive]}"
    with socket.socket() as sock:  # no listener left: a new server binds the API port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind(("127.0.0.1", live.api_port))
        sock.listen()
