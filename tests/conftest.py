"""Shared fixtures: data directories, a real local exchange, and freqtrade as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, Reply, answer
from pace import limit

from lab.project import PACK_CONFIGS, STRATEGY_FILE, Preset, config_args, load_config, shared_data
from local_exchange.clock import Clock
from local_exchange.market_data import MarketData
from local_exchange.overlay import write_overlay
from local_exchange.server import BinanceApi, LocalExchangeServer
from local_exchange.synthetic import write_market

REPO = Path(__file__).resolve().parent.parent
PARAMS_FILE = REPO / "strategies" / "HybridAIStrategy.json"
# Where FreqAI keeps the shipped config's models: <userdir>/models/<MODEL_ID>.
MODEL_ID = load_config()["freqai"]["identifier"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """A freqtrade parameter file beside the strategy (a preset copied there, or what a
    hyperopt run exported) changes its defaults for every run: the tests need the shipped
    ones, so they stop at once instead of failing in confusing places."""
    if PARAMS_FILE.exists():
        pytest.exit(f"{PARAMS_FILE} overrides the strategy's shipped parameters (a preset or a "
                    f"hyperopt export): move it away to run the tests", returncode=4)


@pytest.fixture(scope="session")
def real_datadir() -> Path:
    """The shared real candles. A user's machine may lack them (the test skips); CI must
    not: there a missing ../shared/data is an error, not a quiet skip."""
    path = shared_data()
    if path is None:
        reason = "real candles absent: set HYBRID_AI_SHARED_DATA or add ../shared/data/binance"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def synthetic_datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic market (30 days, 9 pairs, 5m + 1h)."""
    path = tmp_path_factory.mktemp("synthetic") / "binance"
    write_market(path, days=30, seed=7)
    return path


@pytest.fixture(scope="session")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic market for the oracle's context (60 days, 9 pairs)."""
    datadir = tmp_path_factory.mktemp("oracle_market") / "binance"
    write_market(datadir, days=60, seed=11)
    return datadir


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """A loopback OpenAI-compatible server answering a valid answer by default."""
    server = FakeOpenAI(default=Reply(content=answer())).start()
    yield server
    server.stop()


@pytest.fixture
def start_exchange() -> Iterator[Callable[..., LocalExchangeServer]]:
    """Factory: start a local exchange on a free loopback port; all are stopped afterwards."""
    servers: list[LocalExchangeServer] = []

    def _start(datadir: Path, clock: Clock | None = None, port: int = 0) -> LocalExchangeServer:
        server = LocalExchangeServer(BinanceApi(MarketData.load(datadir), clock), port=port)
        server.start_in_thread()
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def module_exchange() -> Iterator[Callable[[Path], LocalExchangeServer]]:
    """Like ``start_exchange`` but lives for a whole test module (one server per datadir)."""
    servers: dict[Path, LocalExchangeServer] = {}

    def _start(datadir: Path) -> LocalExchangeServer:
        if datadir not in servers:
            servers[datadir] = LocalExchangeServer(BinanceApi(MarketData.load(datadir)), port=0)
            servers[datadir].start_in_thread()
        return servers[datadir]

    yield _start
    for server in servers.values():
        server.stop()


def run_freqtrade(
    args: list[str],
    exchange_url: str,
    userdir: Path,
    extra_config: dict | None = None,
    timeout: float = 600,
    preset: Preset | None = None,
) -> subprocess.CompletedProcess[str]:
    """``freqtrade <args> -c config.json -c <the hybrid preset> -c <overlay for exchange_url>
    [-c extra]`` in REPO (HybridAIStrategy's config: ``lab.project.PACK_CONFIGS``);
    with a ``preset``, as the README says to run one: its parameter file beside a copy of
    the strategy, its config overlay after config.json."""
    overlay = write_overlay(userdir / "config.offline.json", exchange_url)
    configs = [*config_args(PACK_CONFIGS), "-c", str(overlay)]
    if preset is not None:
        strategy_dir = userdir / "preset-strategy"
        strategy_dir.mkdir(exist_ok=True)
        shutil.copy(STRATEGY_FILE, strategy_dir)
        shutil.copy(preset.params_file, strategy_dir / PARAMS_FILE.name)
        configs += ["-c", str(preset.config_file)]
        args = [*args, "--strategy-path", str(strategy_dir)]
    if extra_config:
        extra = userdir / "config.extra.json"
        extra.write_text(json.dumps(extra_config))
        configs += ["-c", str(extra)]
    cmd = [sys.executable, "-m", "freqtrade", *args[:1], *configs, "--userdir", str(userdir),
           *args[1:]]
    # A wide virtual terminal: freqtrade's rich logging would otherwise wrap lines at 80.
    env = {**os.environ, "COLUMNS": "250"}
    allowed = limit(timeout)  # stretched when other jobs load the machine
    try:
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=allowed,
                              env=env)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-2000:]
        pytest.fail(f"freqtrade {args[0]} did not finish within {allowed:.0f}s ({timeout:.0f}s "
                    f"x the machine's pace); last output:\n{tail!r}", pytrace=False)


@pytest.fixture
def freqtrade() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_freqtrade


def backtesting_in_process(strategy: str, datadir: Path, exchange_url: str, tmp: Path,
                           extra_config: dict, timerange: str):
    """Freqtrade's own ``Backtesting`` object, in this process, for a probe strategy in
    tests/strategies (``PACK_CONFIGS`` + offline overlay + ``extra_config``): its exchange,
    data provider, wallets and strategy are set up, nothing has run yet."""
    from freqtrade.configuration import setup_utils_configuration
    from freqtrade.enums import RunMode
    from freqtrade.optimize.backtesting import Backtesting

    overlay = write_overlay(tmp / "offline.json", exchange_url)
    extra = tmp / "extra.json"
    extra.write_text(json.dumps(extra_config))
    args = {
        "config": [*map(str, PACK_CONFIGS), str(overlay), str(extra)],
        "strategy": strategy,
        "strategy_path": str(REPO / "tests" / "strategies"),
        "datadir": str(datadir),
        "user_data_dir": str(tmp / "user_data"),
        "timerange": timerange,
        "export": "none",
        "backtest_cache": "none",
    }
    (tmp / "user_data").mkdir(exist_ok=True)
    return Backtesting(setup_utils_configuration(args, RunMode.BACKTEST))


def backtest_in_process(strategy: str, datadir: Path, exchange_url: str, tmp: Path,
                        extra_config: dict, timerange: str) -> list[dict]:
    """``backtesting_in_process``, run; returns its trades."""
    bt = backtesting_in_process(strategy, datadir, exchange_url, tmp, extra_config, timerange)
    bt.start()
    return bt.results["strategy"][strategy]["trades"]
