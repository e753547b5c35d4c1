"""FreqUI in a real browser against the live stack: what a user must see.

Debian's Chromium driven headless by Python Playwright; FreqUI is the build in
``../shared/frequi/dist``, installed into this venv's freqtrade as ``freqtrade install-ui``
would. Skipped (with the reason) only outside CI when Chromium, Playwright or the build is
missing; in CI (``CI=true``) that is an error. Screenshots of a failing run are kept in
``user_data/test-artifacts/frequi/``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import freqtrade
import pytest
from pace import limit
from test_live import CREDS, Live, decide, hand_held_oracle, last_row

from local_exchange.market_data import MarketData

REPO = Path(__file__).resolve().parent.parent
FREQUI = REPO.parent / "shared" / "frequi" / "dist"
UI_DIR = Path(freqtrade.__file__).parent / "rpc" / "api_server" / "ui" / "installed"
ARTIFACTS = REPO / "user_data" / "test-artifacts" / "frequi"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE_NOISE = "ERR_NAME_NOT_RESOLVED"  # FreqUI's icons come from the internet
# FreqUI's chart may ask for candles before it has restored its pair and timeframe (a race in
# FreqUI itself, ``ftbotwrapper-*.js``: it rejects the call in the browser, no request reaches
# the bot, and the next refresh has both). Seen on a loaded CI machine, after ``page.reload()``
# and on the first load of /graph; the chart's data is checked below regardless.
FREQUI_RACE = "pair or timeframe not specified"

pytestmark = pytest.mark.slow


def wait_until(page, predicate, what: str, timeout: float = 60.0):
    """Poll ``predicate`` while the page keeps running its scripts (``timeout`` stretched by
    the machine's pace)."""
    allowed = limit(timeout)
    deadline = time.monotonic() + allowed
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        page.wait_for_timeout(500)
    raise AssertionError(f"timed out waiting for {what} ({allowed:.0f}s)")


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed"
    if CHROMIUM is None:
        return "no chromium on PATH (Debian: apt-get install chromium)"
    if not (FREQUI / "index.html").exists():
        return f"no FreqUI build at {FREQUI}"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    UI_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copytree(FREQUI, UI_DIR, dirs_exist_ok=True)  # what `freqtrade install-ui` does
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def test_dashboard_shows_every_layer_the_trades_and_a_new_oracle_decision(
        browser, real_datadir, tmp_path):
    extra = tmp_path / "ui.json"
    # ML observed (computed and plotted, not sizing), the oracle deciding: the forced trade
    # below gets a stake whatever the model says, and no exit signal closes it before the
    # test does. A fast replay (60x): candles every 5 s, and API tokens that must still last
    # their real-time minutes.
    extra.write_text(json.dumps({"force_entry_enable": True, "use_exit_signal": False,
                                 "hybrid_ai": {"observe_only": ["ml"]}}))
    replay_start = datetime.fromtimestamp(  # as `make live` picks it: two days before the end
        MarketData.load(real_datadir).last_close_time() / 1000, tz=UTC) - timedelta(days=2)
    live = Live(real_datadir, tmp_path, "--pairs", "BTC/USDT", "ETH/USDT", "--speed", "60",
                "-c", str(extra),
                "-c", str(hand_held_oracle(tmp_path / "hand-held.json", replay_start)))
    client = live.client
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    console: list[str] = []
    statuses: list[int] = []
    candles: list[dict] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))

    trades_seen: list[dict] = []

    def on_response(response) -> None:
        statuses.append(response.status)
        if response.status != 200:
            return
        try:
            if "/pair_candles" in response.url:
                candles.append(response.json() | {"url": response.url})
            elif "/api/v1/trades" in response.url:
                trades_seen.append(response.json())
        except Exception:  # a body gone with a page navigation: the next poll has it
            pass

    page.on("response", on_response)
    try:
        # The ML layer trained and predicting; one closed trade (forced: its markers and
        # tags are what the chart must show).
        live.wait(lambda: (r := last_row(client, "BTC/USDT"))
                  and (r.get("ml_buy_prob") or 0) > 0, 300, "BTC's first prediction")
        client.forceenter("BTC/USDT", "long", order_type="market")
        live.wait(lambda: (t := client.status()) and t[0]["amount"] > 0
                  and not t[0]["has_open_orders"], 60, "the entry filled")
        client.forceexit(client.status()[0]["trade_id"], ordertype="market")
        live.wait(lambda: client.trades()["trades"], 60, "the closed trade")
        plot_config = client.plot_config()

        page.goto(f"http://127.0.0.1:{live.api_port}/login")
        page.get_by_placeholder("Freqtrader").fill(CREDS["FREQTRADE__API_SERVER__USERNAME"])
        page.locator("input[type=password]").fill(CREDS["FREQTRADE__API_SERVER__PASSWORD"])
        page.get_by_role("button", name="Submit").click()
        page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)
        # The one-time "Plot configurator -> From strategy -> Save", as FreqUI stores it.
        page.evaluate("c => localStorage.setItem('ftPlotConfig', JSON.stringify("
                      "{plotConfigName: 'default', customPlotConfigs: {default: c}}))",
                      plot_config)
        page.goto(f"http://127.0.0.1:{live.api_port}/graph")
        wait_until(page, lambda: candles and any("Initialized" in c for c in console),
                   "the chart")
        page.screenshot(path=str(tmp_path / "graph.png"))  # the panels are canvas drawings

        # The chart asked for every plot_config column, and found each one with data
        # (FreqUI logs the columns it cannot find).
        wanted = set(plot_config["main_plot"]) | {
            c for panel in plot_config["subplots"].values() for c in panel}
        requested = next(c for c in console if "Refreshing OHLCV for pair: BTC/USDT" in c)
        assert all(column in requested for column in wanted), requested
        assert not [c for c in console if "was not found in the columns" in c], console
        data = candles[-1]
        columns = data["columns"]
        assert wanted <= set(columns)
        rows = [dict(zip(columns, row, strict=False)) for row in data["data"]]
        for column in wanted:
            assert any(r[column] is not None for r in rows), f"{column} has no data"
        # The trade the chart marks (entry and exit markers), with its tags, as the
        # dashboard received it.
        wait_until(page, lambda: trades_seen and trades_seen[-1]["trades"], "the trades")
        trade = trades_seen[-1]["trades"][0]
        assert trade["pair"] == "BTC/USDT" and trade["enter_tag"] == "force_entry"
        assert trade["exit_reason"] == "force_exit"

        # A new oracle decision reaches the dashboard: the oracle panel's data changes.
        before = rows[-1]["oracle_risk_level"]
        level = "aggressive" if before != 2 else "conservative"
        bot_now = datetime.fromisoformat(rows[-1]["date"].replace("Z", "+00:00"))
        decide(tmp_path / "oracle-fast" / "journal.jsonl", ["BTC/USDT", "ETH/USDT"], level,
               now=bot_now)  # the replay's clock, not the wall clock
        live.wait(lambda: last_row(client, "BTC/USDT")["oracle_risk_level"]
                  == {"aggressive": 2, "conservative": 0}[level], 60, "the decision")
        expected = {"aggressive": 2, "conservative": 0}[level]

        def level_shown() -> bool:
            for data in candles[seen:]:
                last = dict(zip(data["columns"], data["data"][-1], strict=False))
                if data.get("pair") == "BTC/USDT" and last["oracle_risk_level"] == expected:
                    return True
            return False

        seen = len(candles)
        page.reload()  # what a user does; FreqUI also refreshes by itself on a new candle
        wait_until(page, level_shown, "the new decision in the chart's data")

        errors = [c for c in console if c.startswith("error")
                  and OFFLINE_NOISE not in c and FREQUI_RACE not in c]
        assert not errors, errors
        assert statuses.count(401) <= 1  # no token storm
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        page.screenshot(path=str(ARTIFACTS / f"failure-{stamp}.png"), full_page=True)
        (ARTIFACTS / f"console-{stamp}.txt").write_text("\n".join(console))
        raise
    finally:
        page.close()
        live.stop()

