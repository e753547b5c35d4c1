"""`make walkforward` on real candles, small: three pairs (the top-k gate needs a cross-section),
two windows, a few epochs."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pace import limit

from hybrid_ai.fingerprint import changed
from lab.walkforward import (
    WalkForwardError,
    _saved_window,
    inputs_fingerprint,
    plan_windows,
)

REPO = Path(__file__).resolve().parent.parent
ARGS = ["--pairs", "BTC/USDT", "ETH/USDT", "SOL/USDT", "--timerange", "20240301-20240329",
        "--is-days", "14", "--oos-days", "7", "--epochs", "6", "--min-trades", "2",
        "--baseline-sma-days", "10"]  # 8 months of candles cannot warm up the textbook 200


def walkforward(real_datadir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.walkforward", "--datadir",
                           str(real_datadir), *ARGS, "--out", str(out), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=limit(900))


def test_windows_tile_the_range_and_a_short_range_says_what_to_change():
    day = datetime(2024, 3, 1, tzinfo=UTC)
    rolling = plan_windows(day, datetime(2024, 5, 1, tzinfo=UTC), 30, 15, 15, anchored=False)
    assert [(w.is_range, w.oos_range) for w in rolling[:2]] == [
        ("20240301-20240331", "20240331-20240415"), ("20240316-20240415", "20240415-20240430")]
    anchored = plan_windows(day, datetime(2024, 5, 1, tzinfo=UTC), 30, 15, 15, anchored=True)
    assert all(w.is_start == day for w in anchored)
    with pytest.raises(WalkForwardError, match="too short for one window"):
        plan_windows(day, datetime(2024, 3, 20, tzinfo=UTC), 14, 7, 7, anchored=False)


@pytest.mark.slow
def test_walkforward_optimises_in_sample_tests_out_of_sample_and_resumes(real_datadir,
                                                                        tmp_path):
    out = tmp_path / "wf"
    first = walkforward(real_datadir, out)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "window 2/2" in first.stdout and "ETA" in first.stdout
    result = json.loads((out / "walkforward.json").read_text())
    assert [w["in-sample"] for w in result["windows"]] == ["20240301-20240315",
                                                          "20240308-20240322"]
    assert [w["out-of-sample"] for w in result["windows"]] == ["20240315-20240322",
                                                              "20240322-20240329"]
    stitched = result["stitched"]
    assert stitched["trades"] == sum(w["OOS trades"] for w in result["windows"])
    low, high = stitched["sharpe_ci90"]
    assert low <= stitched["sharpe_daily"] <= high
    assert any(word in result["verdict"] for word in ("Inconclusive", "No entry family",
                                                      "Positive"))
    # Honest about the search: every epoch of both hyperopts counted, the trend baseline run
    # through freqtrade over the same out-of-sample span, figures per year with intervals.
    assert 0 < result["deflated_sharpe"]["trials"] <= 12  # 2 x 6 epochs, less failed ones
    assert 0.0 <= result["deflated_sharpe"]["dsr"] <= 1.0
    assert "trend baseline (SMA 10 d)" in result["against_baseline"]
    years = {(row["variant"], row["span"]) for row in result["per_year"]}
    assert {("walk-forward (stitched OOS)", "2024"), ("trend baseline (SMA 10 d)", "all"),
            ("buy & hold basket", "all")} <= years
    assert list((out / "baseline" / "runs").glob("trend_baseline*/freqtrade.log"))
    families = {row["parameter"] for row in result["stability"]}
    assert {"buy_family", "stoploss", "trailing_stop_positive"} <= families
    # Each window's parameters were chosen in-sample and written beside a strategy copy.
    params = json.loads((out / "window-01" / "user_data" / "strategies"
                         / "HybridAIStrategy.json").read_text())
    assert params["strategy_name"] == "HybridAIStrategy" and "buy" in params["params"]
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 1
    # Interrupted or re-run: finished windows are reused, not optimised again.
    again = walkforward(real_datadir, out)
    assert again.returncode == 0 and again.stdout.count("done earlier, reused") == 2
    assert json.loads((out / "walkforward.json").read_text())["stitched"] == stitched
    # A window saved by another strategy or setting (its fingerprint differs) is not mixed
    # into the stitched result: it runs again, the others are still reused.
    saved = out / "window-02" / "window.json"
    stale = json.loads(saved.read_text())
    saved.write_text(json.dumps(stale | {"inputs": stale["inputs"] | {"--seed": "other"}}))
    third = walkforward(real_datadir, out)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "window 1/2 done earlier, reused" in third.stdout
    assert "window 2/2 ran with other inputs (changed: --seed)" in third.stdout
    assert json.loads(saved.read_text())["inputs"] == stale["inputs"]


def test_the_inputs_fingerprint_follows_what_a_window_result_depends_on(real_datadir):
    args = argparse.Namespace(epochs=6, loss="SharpeHyperOptLossDaily", min_trades=2,
                              spaces=["buy", "sell"], seed=42)
    pairs = ["BTC/USDT", "ETH/USDT"]
    base = inputs_fingerprint(args, pairs, real_datadir)
    assert inputs_fingerprint(args, list(pairs), real_datadir) == base
    seeded = inputs_fingerprint(argparse.Namespace(**{**vars(args), "seed": 7}), pairs,
                                real_datadir)
    assert changed(base, seeded) == ["--seed"]
    assert inputs_fingerprint(argparse.Namespace(**{**vars(args), "spaces": ["sell", "buy"]}),
                              pairs, real_datadir) == base
    assert changed(base, inputs_fingerprint(args, ["BTC/USDT"], real_datadir)) == [
        "candle files", "pairs"]
    assert changed("an older record", base) == sorted(base)


def test_a_half_written_window_record_reads_as_not_done(tmp_path):
    saved = tmp_path / "window.json"
    saved.write_text('{"inputs": {"pairs": "abc"}, "oos": {')  # killed while writing
    assert _saved_window(saved) == {}
    saved.write_text('{"inputs": {"pairs": "abc"}}')
    assert _saved_window(saved) == {"inputs": {"pairs": "abc"}}


def test_walkforward_refuses_a_range_too_short(real_datadir, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lab.walkforward", "--datadir",
                           str(real_datadir), "--pairs", "BTC/USDT", "--timerange",
                           "20240301-20240310", "--is-days", "14", "--oos-days", "7",
                           "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "too short for one window" in proc.stderr
