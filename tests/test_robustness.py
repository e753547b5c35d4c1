"""Per-year figures and the Deflated Sharpe Ratio (lab.robustness), on plain data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lab.robustness import (
    annual_to_period_var,
    deflated_sharpe,
    expected_max_sharpe,
    per_year,
    probabilistic_sharpe,
)


def test_deflated_sharpe_reproduces_the_papers_worked_example():
    # Bailey and López de Prado (2014), section 5: 100 trials whose annualised Sharpe ratios
    # vary by 1/2, a best annualised Sharpe of 2.5 over 1 250 daily returns (250 a year),
    # skew -3, kurtosis 10: the luck threshold is 0.1132 a day and the DSR 0.9004.
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=1e-4)
    assert probabilistic_sharpe(2.5 / math.sqrt(250), sr0, 1250, -3, 10) == pytest.approx(
        0.9004, abs=1e-4)


def test_more_trials_deflate_more_and_one_trial_is_the_probabilistic_sharpe():
    rng = np.random.default_rng(1)
    returns = rng.normal(0.004, 0.02, 900)  # a real edge: ~3.8 annualised
    one = deflated_sharpe(returns, 1, 0.0)
    many = [deflated_sharpe(returns, n, annual_to_period_var([-1.0, 0.0, 1.0, 2.0]))["dsr"]
            for n in (10, 100, 1000)]
    assert one["sharpe0"] == 0.0 and one["dsr"] > 0.99
    assert many[0] > many[1] > many[2]
    noise = deflated_sharpe(rng.normal(0, 0.02, 900), 200, annual_to_period_var([-1, 1]))
    assert noise["dsr"] < 0.5


def test_per_year_splits_calendar_years_and_compounds_back_to_the_whole():
    days = pd.date_range("2022-06-01", "2024-03-31", freq="D", tz="UTC")
    rng = np.random.default_rng(0)
    curve = pd.Series(1000 * np.cumprod(1 + rng.normal(0.0005, 0.01, len(days))), index=days)
    trades = pd.DataFrame({
        "open_date": pd.to_datetime(["2022-07-01", "2023-12-30", "2024-02-01"], utc=True),
        "close_date": pd.to_datetime(["2022-07-11", "2024-01-03", "2024-02-02"], utc=True),
        "stake_amount": [500.0, 100.0, 240.0]})
    table = per_year({"pack": curve, "basket": curve}, {"pack": trades, "basket": None})
    pack = table[table["variant"] == "pack"].set_index("span")
    assert list(pack.index) == ["2022", "2023", "2024", "all"]
    assert np.prod(1 + pack.loc[["2022", "2023", "2024"], "total_return"]) - 1 == \
        pytest.approx(pack.loc["all", "total_return"], rel=1e-9)
    assert pack.loc["2022", "trades"] == 1 and pack.loc["2023", "trades"] == 1
    assert pack.loc["2024", "trades"] == 1 and pack.loc["all", "trades"] == 3
    # 500 held 10 days of 2022's 214: the exposure is time-weighted within the span
    assert pack.loc["2022", "exposure"] == pytest.approx(500 * 10 / (1000 * 214), rel=0.01)
    assert (table[table["variant"] == "basket"]["exposure"] == 1.0).all()
    assert pack["sharpe_ci90"].str.match(r"\[[+-]\d").all()
