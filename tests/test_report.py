"""`make report` on real candles, small: two pairs, seven weeks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(real_datadir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    subprocess.run([sys.executable, "-m", "lab.report", "--datadir", str(real_datadir),
                    "--pairs", "BTC/USDT", "ETH/USDT", "--timerange", "20240301-20240420",
                    "--late-weeks", "2", "--out", str(out)],
                   cwd=REPO, check=True, capture_output=True, text=True)
    return out


def test_report_compares_every_variant_with_buy_and_hold(report):
    metrics = json.loads((report / "metrics.json").read_text())
    names = [v["variant"] for v in metrics["variants"]]
    assert names == ["ta+ml", "ta", "ta+ml+oracle", "buy & hold basket", "buy & hold BTC"]
    for row in metrics["variants"]:
        assert set(row) >= {"total_return", "cagr", "max_drawdown", "sharpe", "sortino",
                            "calmar", "trades", "win_rate", "exposure", "avg_hold_h", "fees"}
    ta = next(v for v in metrics["variants"] if v["variant"] == "ta")
    # Attribution covers every technical entry, per layer.
    for row in metrics["attribution"]:
        assert row["ta_entries"] == ta["trades"] and 0 <= row["blocked"] <= ta["trades"]
    assert [v["variant"] for v in metrics["late"]] == ["walk-forward (late)", "frozen (late)"]
    assert 0.0 < metrics["ml"]["auc"] < 1.0 and metrics["verdicts"]
    frozen_log = (report / "work" / "runs" / "frozen_late" / "freqtrade.log").read_text()
    assert "frozen model from" in frozen_log and "Starting training" not in frozen_log


def test_report_files_render(report):
    page = (report / "report.html").read_text()
    for section in ("Verdict", "Variants vs buy &amp; hold", "Per-layer attribution",
                    "ML calibration", "Frozen model vs walk-forward", "Lookahead"):
        assert section in page
    assert page.count("data:image/png;base64,") == 4
    assert "Oracle trims of open trades" in page
    # freqtrade's analyses ran (in their own user dir: they delete models/<identifier>).
    assert "has_bias" in page and "400 (from strategy)" in page and "exit code" not in page
    for png in ("equity.png", "drawdown.png", "calibration.png", "exposure.png"):
        assert (report / png).read_bytes()[:4] == b"\x89PNG"
    assert (report / "summary.md").read_text().startswith("# Hybrid-AI ablation")
    browser = next((b for b in ("chromium", "chromium-headless-shell", "chromium-browser",
                                "google-chrome")
                    if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no headless Chromium here: the HTML was checked as text only")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          (report / "report.html").as_uri()], capture_output=True, text=True,
                         timeout=60).stdout
    assert 'id="title"' in dom and dom.count("<img") == 3
