"""``make core-study`` end to end on the shared 8-month candles: every declared alternative,
the 200-day rule and buy and hold, each through freqtrade, and the figures they yield."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lab import core_study
from lab.variants import (
    CORE,
    CORE_ALTERNATIVES,
    CORE_BOOK_TARGET,
    CORE_PROTECTIONS,
    CORE_PUBLISHED,
    CORE_SIZINGS,
)

PAIRS = ["BTC/USDT", "SOL/USDT", "DOGE/USDT"]


def sizing_rows(**figures: tuple[float, float, float]) -> pd.DataFrame:
    """Rows of the study's table: variant -> (max drawdown, exposure, Deflated Sharpe)."""
    rows = [{"variant": name, "max_drawdown": dd, "exposure": exp, "dsr": dsr}
            for name, (dd, exp, dsr) in figures.items()]
    return pd.DataFrame([*rows, {"variant": "basket (buy and hold)", "max_drawdown": 0.6,
                                 "exposure": 1.0, "dsr": float("nan")}])


def test_the_sizing_rule_takes_the_best_deflated_sharpe_among_those_meeting_the_bars():
    pub, pooled, book = (k.name for k in CORE_SIZINGS)
    # the published split has the best DSR but too little exposure: the next best that passes
    rows = sizing_rows(**{pub: (0.07, 0.16, 0.9), pooled: (0.19, 0.44, 0.8),
                          book: (0.15, 0.30, 0.85)})
    assert core_study.pick_sizing(rows) == book
    # a drawdown over 25 % (or over half the basket's) rules a sizing out
    rows = sizing_rows(**{pub: (0.07, 0.16, 0.9), pooled: (0.19, 0.44, 0.8),
                          book: (0.26, 0.30, 0.85)})
    assert core_study.pick_sizing(rows) == pooled
    # none passes: the pooled core stays
    rows = sizing_rows(**{pub: (0.07, 0.16, 0.9), pooled: (0.31, 0.44, 0.8),
                          book: (0.26, 0.30, 0.85)})
    assert core_study.pick_sizing(rows) == CORE.name == pooled


@pytest.mark.slow
def test_the_core_study_runs_every_alternative_and_reports_what_each_did(real_datadir,
                                                                        tmp_path):
    short = tmp_path / "short.json"  # 8 months of data: a 100-day warm-up, not 200
    short.write_text(json.dumps({"trend_core": {"startup_days": 100}}))
    assert core_study.main(["--datadir", str(real_datadir), "--timerange",
                            "20240415-20240905", "--pairs", *PAIRS, "-c", str(short),
                            "--out", str(tmp_path / "out")]) == 0
    saved = json.loads((tmp_path / "out" / "core_study.json").read_text())
    rows = {r["variant"]: r for r in saved["table"]}
    names = [k.name for k in CORE_ALTERNATIVES]
    assert list(rows) == [*names, "trend baseline", "basket (buy and hold)",
                          "BTC (buy and hold)"]
    for name in names:
        row = rows[name]
        assert row["trades"] > 0 and row["rebalances"] > 0 and row["turnover"] > 0
        assert 0 <= row["dsr"] <= 1 and 0 < row["exposure"] < 1
        assert row["fees"] > 0 and "trend_off" in row["exits"]
    # the flat pairs' budget goes to the pairs that trend: never less in the market
    assert rows[CORE.name]["exposure"] > rows[CORE_PUBLISHED.name]["exposure"]
    # a calm book scaled up to the volatility target: more in the market than published
    assert rows[CORE_BOOK_TARGET.name]["exposure"] > rows[CORE_PUBLISHED.name]["exposure"]
    assert saved["sizing"] in {k.name for k in CORE_SIZINGS}
    assert set(saved["pick"]) <= {k.name for k in CORE_PROTECTIONS}
    spans = {(r["variant"], r["span"]) for r in saved["years"]}
    assert all((name, "all") in spans and (name, "2024") in spans for name in rows)
    text = (tmp_path / "out" / "core_study.md").read_text()
    assert "Protections picked by the declared rule" in text and CORE.name in text
    assert "Sizing picked by the declared rule" in text
