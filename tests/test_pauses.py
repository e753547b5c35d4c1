"""Pair pauses (hybrid_ai.pauses): configuration, the mask, the exit tag, what the report
derives from holes in candle files, and a real backtest that honours them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from freqtrade.data.btanalysis import load_backtest_data
from pydantic import ValidationError

from hybrid_ai import columns as col
from hybrid_ai import pauses
from hybrid_ai.positions import ExitSignal, exit_columns
from hybrid_ai.settings import load_settings
from lab.data_holes import pair_pauses

PAUSE = {"pair": "BTC/USDT", "from": "2024-03-10", "to": "2024-03-20T00:00:00Z",
         "reason": "maintenance"}


def test_a_pause_is_validated_and_covers_from_up_to_to():
    (pause,) = pauses.from_config({"hybrid_ai": {"pair_pauses": [PAUSE]}})
    assert pause.start.tzinfo is not None and pause.reason == "maintenance"
    dates = pd.Series(pd.to_datetime(["2024-03-09 23:55", "2024-03-10 00:00",
                                      "2024-03-19 23:55", "2024-03-20 00:00"], utc=True))
    assert pauses.paused(dates, "BTC/USDT", [pause]).tolist() == [False, True, True, False]
    assert not pauses.paused(dates, "ETH/USDT", [pause]).any()
    with pytest.raises(ValidationError, match="must be after"):
        pauses.from_config({"hybrid_ai": {"pair_pauses": [PAUSE | {"to": "2024-03-01"}]}})
    with pytest.raises(ValidationError, match="pair"):
        pauses.from_config({"hybrid_ai": {"pair_pauses": [{"from": "2024-03-01"}]}})
    # the pack's settings carry them too
    assert load_settings({"hybrid_ai": {"pair_pauses": [PAUSE]}}).pair_pauses == [pause]


def test_a_paused_candle_exits_last_in_precedence():
    ta, ml, oracle = (np.array(v, bool) for v in ([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]))
    exit_long, tag = exit_columns([ExitSignal("ta_reversal", ta), ExitSignal("ml_exit", ml),
                                   ExitSignal("oracle_exit", oracle),
                                   ExitSignal(col.PAUSE_EXIT, np.array([1, 1, 1, 0], bool))])
    assert exit_long.tolist() == [1, 1, 1, 0]
    assert tag.tolist() == ["ta_reversal", "ml_exit", "pair_pause", None]


def test_holes_of_a_day_or_more_pause_their_pair_around_them():
    holes = pd.DataFrame([
        {"pair": "XRP/USDT", "timeframe": "5m", "from": pd.Timestamp("2023-10-02 13:15", tz="UTC"),
         "to": pd.Timestamp("2023-12-31 23:55", tz="UTC"), "missing": 26049},
        {"pair": "BTC/USDT", "timeframe": "5m", "from": pd.Timestamp("2023-03-24 12:40", tz="UTC"),
         "to": pd.Timestamp("2023-03-24 13:55", tz="UTC"), "missing": 16},  # an outage
    ])
    (xrp,) = pair_pauses(holes, "5m")
    assert xrp["pair"] == "XRP/USDT" and xrp["from"].startswith("2023-10-01T00:00")
    assert xrp["to"].startswith("2024-01-02T00:00") and "26049 5m candles" in xrp["reason"]


@pytest.mark.slow
def test_a_backtest_enters_nothing_in_a_pause_and_exits_what_is_open(
        real_datadir, module_exchange, freqtrade, tmp_path):
    pairs = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT", "LINK/USDT"]
    stop = [PAUSE | {"pair": pair} for pair in pairs]
    (tmp_path / "bt").mkdir()
    proc = freqtrade(
        ["backtesting", "--datadir", str(real_datadir), "--timerange", "20240301-20240401",
         "--pairs", *pairs, "--export", "trades", "--cache", "none",
         "--backtest-directory", str(tmp_path / "bt")],
        module_exchange(real_datadir).url, tmp_path,
        extra_config={"freqai": {"enabled": False},
                      "hybrid_ai": {"oracle": {"enabled": False}, "pair_pauses": stop}})
    assert proc.returncode == 0, proc.stderr[-3000:]
    trades = load_backtest_data(tmp_path / "bt", "HybridAIStrategy")
    start, end = pd.Timestamp("2024-03-10", tz="UTC"), pd.Timestamp("2024-03-20", tz="UTC")
    assert len(trades) > 0
    inside = trades[(trades["open_date"] >= start) & (trades["open_date"] < end)]
    assert inside.empty, inside[["pair", "open_date"]]
    # a trade open when the pause began exits at the next open, tagged pair_pause
    across = trades[(trades["open_date"] < start) & (trades["close_date"] > start)]
    assert (across["close_date"] <= start + pd.Timedelta(minutes=10)).all(), across
    assert set(across["exit_reason"]) <= {"pair_pause", "stop_loss", "trailing_stop_loss"}
    assert json.dumps(stop)  # the pauses were plain config
