"""Setups that used to start without a word and then do nothing, tried as a user would:
freqtrade's own backtester against the local exchange, on real candles respelled for the
setup. Each must either work or stop at once saying which key to change."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_freqtrade

from hybrid_ai.ml.features import corr_pairs_problem
from lab.project import load_config

PAIRS = ("BTC", "ETH", "SOL")


def usdc_datadir(real: Path, tmp: Path) -> Path:
    """The shared USDT candles under USDC names (the prices differ by cents in reality)."""
    out = tmp / "usdc" / "binance"
    out.mkdir(parents=True)
    for base in PAIRS:
        for tf in ("5m", "1h"):
            (out / f"{base}_USDC-{tf}.feather").symlink_to(real / f"{base}_USDT-{tf}.feather")
    return out


@pytest.mark.slow
def test_a_usdc_stake_with_the_shipped_usdt_corr_pairs_stops_at_start_naming_the_key(
        real_datadir, start_exchange, tmp_path):
    # freqtrade #7039, #11707: before, every FreqAI training failed with "you likely did not
    # download enough data", the run made 0 trades and exited 0 without a word from the pack.
    datadir = usdc_datadir(real_datadir, tmp_path)
    exchange = start_exchange(datadir)
    whitelist = [f"{b}/USDC" for b in PAIRS]
    done = run_freqtrade(
        ["backtesting", "--datadir", str(datadir), "--timerange", "20240801-20240810",
         "--export", "none"], exchange.url, tmp_path,
        {"stake_currency": "USDC", "exchange": {"pair_whitelist": whitelist},
         "hybrid_ai": {"oracle": {"enabled": False}}}, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-3000:]
    assert "include_corr_pairlist" in out and "'USDC'" in out, out[-3000:]
    assert "['BTC/USDC', 'ETH/USDC']" in out  # what to put there instead
    assert "Backtesting with data from" not in out  # stopped before any data or training


def test_corr_pairs_in_the_stake_currency_or_none_pass():
    shipped = load_config()
    assert corr_pairs_problem(shipped) is None  # USDT stake, USDT corr pairs
    usdc = {**shipped, "stake_currency": "USDC"}
    assert "BTC/USDC" in corr_pairs_problem(usdc)
    usdc["freqai"] = {"feature_parameters": {"include_corr_pairlist": ["BTC/USDC"]}}
    assert corr_pairs_problem(usdc) is None
    usdc["freqai"] = {"feature_parameters": {"include_corr_pairlist": []}}
    assert corr_pairs_problem(usdc) is None


def test_make_demo_installs_only_the_pack(tmp_path):
    # Before, `make demo` installed the test extra and so compiled llama.cpp (~6 min on 2
    # cores) for a demo that never starts a language model. make's dry run on a venv that
    # does not exist yet prints every install step it would take.
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    steps = subprocess.run(["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"], cwd=repo,
                           capture_output=True, text=True, check=True).stdout
    assert "pip install" in steps and "lab.demo" in steps
    assert "llama" not in steps and "[test]" not in steps and "[llm]" not in steps
    tests = subprocess.run(["make", "-n", "test", f"VENV={tmp_path / 'venv'}"], cwd=repo,
                           capture_output=True, text=True, check=True).stdout
    assert "[test]" in tests and "llama-cpp-python" in tests  # the suite has the real model
