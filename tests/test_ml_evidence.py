"""The ML layer's evidence in `make report` / `make label-study`: the counterfactual of an
ml_exit, the acceptance table and the training-set ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybrid_ai.ml import skill
from hybrid_ai.ml.labels import ExitRules
from lab import acceptance as bar
from lab import report_metrics as rm
from lab.label_study import LEARNERS, fit_predict, ranked_spread, walk

RULES = ExitRules(stoploss=-0.10, max_hold=24, trailing=0.05, trailing_offset=0.06,
                  partial_tp=0.04)


def candles(closes: list[float]) -> pd.DataFrame:
    closes = np.array(closes, dtype=float)
    opens = np.r_[closes[0], closes[:-1]]
    dates = pd.date_range("2024-03-01", periods=len(closes), freq="5min", tz="UTC")
    return pd.DataFrame({"date": dates, "open": opens, "high": np.maximum(opens, closes),
                         "low": np.minimum(opens, closes), "close": closes})


def trade(c: pd.DataFrame, opened: int, closed: int, rate: float, **extra) -> pd.Series:
    return pd.Series({"pair": "BTC/USDT", "open_rate": 100.0, "open_date": c["date"][opened],
                      "close_date": c["date"][closed], "close_rate": rate, "amount": 2.0,
                      "profit_ratio": rate / 100 - 1, "exit_reason": "ml_exit", **extra})


def test_holding_on_after_an_exit_meets_the_next_stop():
    # entered at 100, sold by ml_exit at 101 (candle 3); the price then falls to 85: the
    # -10 % stop at 90 would have sold the rest
    c = candles([100, 100, 101, 101, 100, 96, 92, 89, 85] + [85] * 30)
    rate, when = rm.hold_on(c, pd.Series(False, index=c.index), trade(c, 1, 3, 101.0), RULES)
    assert rate == pytest.approx(90.0) and when == c["date"][7]


def test_holding_on_meets_the_trail_of_the_high_the_trade_had_reached():
    # the trade reached 110 before the exit: its trail (5 % under the high) was armed, so
    # holding on sells at 104.5 on the way down, not at the -10 % stop
    c = candles([100, 104, 108, 110, 109, 107, 103, 100] + [100] * 30)
    rate, _ = rm.hold_on(c, pd.Series(False, index=c.index), trade(c, 1, 5, 107.0), RULES)
    assert rate == pytest.approx(110 * 0.95)


def test_holding_on_meets_a_reversal_signal_or_the_time_exit():
    c = candles([100] * 5 + [102] * 40)
    reversal = pd.Series(False, index=c.index)
    reversal[10] = True
    rate, when = rm.hold_on(c, reversal, trade(c, 1, 3, 100.0), RULES)
    assert when == c["date"][11] and rate == pytest.approx(102.0)  # next open
    rate, when = rm.hold_on(c, pd.Series(False, index=c.index), trade(c, 1, 3, 100.0), RULES)
    assert when == c["date"][1 + RULES.max_hold]  # the open after max_hold candles


def test_exit_attribution_counts_saved_against_holding_on():
    c = candles([100, 100, 101, 101, 100, 96, 92, 89, 85] + [85] * 30)
    run = rm.Run.__new__(rm.Run)
    run.trades = pd.DataFrame([trade(c, 1, 3, 101.0), trade(c, 1, 3, 101.0)])
    table = rm.exit_attribution(run, {"BTC/USDT": c},
                                {"BTC/USDT": pd.Series(False, index=c.index)}, RULES)
    row = table.iloc[0]
    assert (row["exits"], row["trades"]) == (2, 2)
    assert row["mean_saved_pct"] == pytest.approx((101 - 90) / 100 * 100)
    assert row["saved_abs"] == pytest.approx(2 * 2.0 * 11.0)
    assert row["verdict"] == "helped"


def test_acceptance_states_every_criterion_with_its_measure():
    def row(name, sharpe, dd, trades, exposure):
        return {"variant": name, "sharpe": sharpe, "max_drawdown": dd, "trades": trades,
                "exposure": exposure}

    table = pd.DataFrame([
        row("ta", -1.0, 0.5, 1000, 0.4), row("ta+ml", -0.5, 0.2, 300, 0.1),
        row("ta+ml+oracle", 0.2, 0.1, 120, 0.05), row("trend baseline", 0.7, 0.3, 140, 0.3),
        row("buy & hold basket", 0.3, 0.65, np.nan, 1.0)])
    ml = {"model_brier_skill": -0.01, "model_auc": 0.52}
    deflated = {"ta+ml+oracle": {"dsr": 0.4, "sharpe": 0.2, "sharpe0": 0.8, "trials": 5}}
    accepted = bar.criteria(table, ml, "trend baseline", deflated)
    got = dict(zip(accepted["criterion"], accepted["met"], strict=True))
    # Sharpe above the basket's no, DD <= half yes, exposure no, trades yes, ML skill no,
    # ta+ml >= ta yes, oracle >= ta+ml yes, above the baseline no, DSR no
    assert list(got.values()) == ["no", "yes", "no", "yes", "no", "yes", "yes", "no", "no"]
    assert "trend baseline wins" in accepted["measured"].iloc[7]
    said = bar.overall(accepted)
    assert said.startswith("Nothing meets the bar: 5 of 9 criteria missed")
    # a variant that did not run is n/a, never yes
    partial = bar.criteria(table[table["variant"] != "ta"], ml, None)
    assert (partial["met"] == "n/a").sum() == 2 and "Not measured here" in bar.overall(partial)


def test_ranked_spread_finds_a_real_ordering_and_says_when_there_is_none():
    rng = np.random.default_rng(0)
    rows = []
    for week in range(30):
        p = rng.random(200)
        rows.append(pd.DataFrame({"pair": "X", "week": week, "p": p,
                                  "ret": 0.01 * p + rng.normal(0, 0.002, 200)}))
    ordered = pd.concat(rows)
    spread, low, high, weeks = ranked_spread(ordered)
    assert weeks == 30 and low > 0 and spread == pytest.approx(0.005, abs=0.001)
    shuffled = ordered.assign(ret=rng.permutation(ordered["ret"].to_numpy()))
    _, low, high, _ = ranked_spread(shuffled)
    assert low < 0 < high


@pytest.mark.parametrize("name", LEARNERS)
def test_label_study_learners_rank_a_learnable_label_and_honour_weights(name):
    # the trade wins when feature a is high; feature b is noise. Both learners must rank
    # held-out rows by a, and a weight on the rows of one class must raise its probability
    rng = np.random.default_rng(1)

    def rows(n: int) -> pd.DataFrame:
        a, b = rng.normal(size=n), rng.normal(size=n)
        ret = 0.01 * a + rng.normal(0, 0.01, n)
        return pd.DataFrame({"%-a": a, "%-b": b, "&-trade_return": ret})

    train, test = rows(4000), rows(1000)
    features = ["%-a", "%-b"]
    p = fit_predict(name, {"verbose": -1}, train, test, features)
    assert skill.auc(test["&-trade_return"] > 0, p) > 0.65
    wins = (train["&-trade_return"] > 0).to_numpy()
    heavy = fit_predict(name, {"verbose": -1}, train, test, features, np.where(wins, 5.0, 1.0))
    assert heavy.mean() > p.mean() + 0.1


def test_label_study_skips_the_weeks_a_hole_touches_instead_of_crashing():
    # 50 days of 5m rows with the file ending on day 40 (as ADA's 5m ends early): weeks
    # after it have no rows, and the pause around the end covers the weeks that reach it.
    rng = np.random.default_rng(2)
    dates = pd.date_range("2024-01-01", periods=40 * 288, freq="5min", tz="UTC")
    a = rng.normal(size=len(dates))
    frame = pd.DataFrame({"date": dates, "%-a": a, "&-trade_return": 0.01 * a,
                          "trend": True, "signal": False})
    pauses = [{"pair": "X", "from": "2024-02-08T00:00:00+00:00",
               "to": "2024-03-01T00:00:00+00:00", "reason": "file ends"}]
    start, end = pd.Timestamp("2024-01-22", tz="UTC"), pd.Timestamp("2024-02-19", tz="UTC")
    scores, skipped = walk(frame, start, end, 14, 7, 12, 1.0, {"verbose": -1}, "logistic",
                           pauses)
    assert sorted(scores["week"].unique()) == [pd.Timestamp("2024-01-22", tz="UTC"),
                                               pd.Timestamp("2024-01-29", tz="UTC")]
    assert skipped == 2  # the week touching the pause and the empty week after the file ends
    none, skipped = walk(frame, pd.Timestamp("2024-02-12", tz="UTC"), end, 14, 7, 12, 1.0,
                         {"verbose": -1}, "logistic")
    assert none.empty and skipped == 1  # no pause given: the empty week is still skipped


def test_rank_ic_sees_a_ranker_across_pairs_and_not_a_coin_flip():
    from lab.robustness import rank_ic

    rng = np.random.default_rng(3)
    dates = pd.date_range("2024-01-01", periods=300, freq="1h", tz="UTC")
    rows = []
    for pair in ("A", "B", "C", "D", "E"):
        p = rng.random(len(dates))
        rows.append(pd.DataFrame({"pair": pair, "date": dates, "week": dates.floor("7D"),
                                  "p": p, "ret": 0.01 * p + rng.normal(0, 0.003, len(dates))}))
    skilled = pd.concat(rows, ignore_index=True)
    mean, low, high, windows, candles = rank_ic(skilled)
    assert mean > low > 0.5 and candles == 300 and windows == skilled["week"].nunique()
    noise = skilled.assign(ret=rng.permutation(skilled["ret"].to_numpy()))
    _, low, high, *_ = rank_ic(noise)
    assert low < 0 < high
    assert np.isnan(rank_ic(skilled[skilled["pair"].isin(["A", "B"])])[0])  # two pairs: none
