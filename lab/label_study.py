"""Which training set predicts the trade label best? A fast walk-forward study.

``python -m lab.label_study`` (``make label-study``) trains the ML layer's LightGBM (its
``DEFAULT_PARAMS``, 100 trees, no early stopping; or, ``--learner logistic``, an L2-regularised
logistic regression on standardised features: does a simpler learner rank better where the trees
find nothing?) walk-forward per pair on the trade-outcome label
(``hybrid_ai.ml.labels``, the strategy's exits) and scores every test week, for three
training sets:

* ``all``      every candle (what the FreqAI model trains on);
* ``trend``    only candles that meet the looser technical precondition (1h close above
               its 1h SMA50, the strategy's trend filter);
* ``weighted`` every candle, the technical entry signal's candles weighted ``--weight``x;
* ``pooled``   (``--pooled``) every candle of *every* pair in one model per week, scored
               per pair: what FreqAI's one-model-per-pair layout leaves on the table.

Scores on the test weeks, for every candle, for the trend candles and for the technical
signal's candles (where the gate decides): AUC, the Brier skill score against each training
window's base rate, and the realised mean return of the half the model ranks higher minus the
half it ranks lower (block-bootstrap 90 % interval over pair-weeks); and each model as a
*ranker* across pairs: the cross-sectional rank IC (Spearman, per candle, averaged per test
window, bootstrap 90 % over windows), what a top-k choice among the whitelist would need.
Base-timeframe features of the pair only (FreqAI adds 1h and BTC/ETH); raw model
probabilities (no calibration, so the trees' Brier skill is a lower bound): this ranks
training sets, it is not the layer's score (``make ml-quality`` is). Nothing here sets a
parameter.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from freqtrade.data.history import load_pair_history
from freqtrade.strategy import merge_informative_pair
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hybrid_ai import entries
from hybrid_ai.indicators import add_ta_indicators
from hybrid_ai.ml import skill
from hybrid_ai.ml.features import RETURN_LABEL
from lab import data_holes, ml_offline
from lab.project import DEFAULT_DATADIR, load_config, shared_data, whitelist
from lab.robustness import rank_ic

DAY = pd.Timedelta(days=1)
SETS = ("all", "trend", "weighted")
LEARNERS = ("lightgbm", "logistic")


def learner(name: str, params: dict):
    """A fresh classifier: the layer's LightGBM (100 trees) or a regularised logistic
    regression (C=0.1 on standardised features, a fixed choice, not searched)."""
    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))
    return lgb.LGBMClassifier(**{**params, "n_estimators": 100})


def fit_predict(name: str, params: dict, train: pd.DataFrame, test: pd.DataFrame,
                features: list[str], weight: np.ndarray | None = None) -> np.ndarray:
    """Win probabilities on ``test`` of a ``name`` learner fitted on ``train``."""
    model = learner(name, params)
    x, y = train[features].to_numpy(np.float32), (train[RETURN_LABEL] > 0).to_numpy(int)
    if name == "logistic":
        model.fit(x, y, logisticregression__sample_weight=weight)
    else:
        model.fit(x, y, sample_weight=weight)
    return model.predict_proba(test[features].to_numpy(np.float32))[:, 1]


def pair_frame(datadir: Path, pair: str, strat) -> pd.DataFrame:
    """Features, label, the trend precondition and the technical signal of one pair."""
    candles = load_pair_history(pair=pair, timeframe="5m", datadir=datadir)
    hourly = load_pair_history(pair=pair, timeframe="1h", datadir=datadir)
    hourly["sma50"] = hourly["close"].rolling(50).mean()
    ind = add_ta_indicators(candles.copy())
    # point-in-time: each 5m candle sees the last *closed* hour, as informative pairs do
    ind = merge_informative_pair(ind, hourly[["date", "close", "sma50"]], "5m", "1h",
                                 ffill=True)
    trend = ind["close_1h"] > ind["sma50_1h"]
    signal = entries.signal(
        ind, strat.buy_family.value, rsi_level=strat.buy_rsi.value,
        pullback_rsi=strat.buy_pullback_rsi.value, lookback=strat.buy_rsi_lookback.value,
        macd_window=strat.buy_macd_window.value, volume_ratio=strat.buy_volume_ratio.value)
    frame = ml_offline.feature_frame(candles, strat=strat)
    flags = pd.DataFrame({"date": ind["date"], "trend": trend.to_numpy(),
                          "signal": (signal & trend).to_numpy()})
    return frame.merge(flags, on="date", how="left")


def week_split(frame: pd.DataFrame, t: pd.Timestamp, train_days: int, test_days: int,
               horizon: int, features: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training window before week ``t`` (its last ``horizon + 1`` labels purged: their
    trades end inside the test week) and the test week, rows with a label and features."""
    train = frame[(frame["date"] >= t - train_days * DAY) & (frame["date"] < t)]
    train = train.iloc[: -(horizon + 1)].dropna(subset=[RETURN_LABEL, *features])
    test = frame[(frame["date"] >= t) & (frame["date"] < t + test_days * DAY)]
    return train, test.dropna(subset=[RETURN_LABEL, *features])


def scored(name: str, week: pd.Timestamp, p: np.ndarray, train: pd.DataFrame,
           test: pd.DataFrame) -> pd.DataFrame:
    """One training set's predictions on a test week, beside what they are scored against."""
    return pd.DataFrame({"set": name, "week": week, "date": test["date"].to_numpy(), "p": p,
                         "base": float((train[RETURN_LABEL] > 0).mean()),
                         "ret": test[RETURN_LABEL].to_numpy(),
                         "trend": test["trend"].to_numpy(bool),
                         "signal": test["signal"].to_numpy(bool)})


MIN_ROWS = 288  # a window with less than a day of labelled candles is not scored


def touches(pauses: list[dict[str, str]], first: pd.Timestamp, last: pd.Timestamp) -> bool:
    """Does any pause (``data_holes.pair_pauses``) overlap [first, last)?"""
    return any(pd.Timestamp(p["from"]) < last and pd.Timestamp(p["to"]) > first
               for p in pauses)


def walk(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, train_days: int,
         test_days: int, horizon: int, weight: float, params: dict,
         learner_name: str = "lightgbm",
         pauses: list[dict[str, str]] | None = None) -> tuple[pd.DataFrame, int]:
    """Test-week predictions of each training set (one model per set and week), and how
    many weeks were skipped: a hole of a day or more in the candles (``pauses``) touches
    the week or its training window, or either holds less than ``MIN_ROWS`` labelled rows
    (freqtrade's fill-up would otherwise bridge the hole with flat candles)."""
    features = [c for c in frame.columns if c.startswith("%")]
    out, skipped = [], 0
    t = start
    while t + test_days * DAY <= end:
        train, test = week_split(frame, t, train_days, test_days, horizon, features)
        if (touches(pauses or [], t - train_days * DAY, t + test_days * DAY)
                or len(train) < MIN_ROWS or len(test) < MIN_ROWS):
            skipped += 1
            t += test_days * DAY
            continue
        for name in SETS:
            rows = train[train["trend"]] if name == "trend" else train
            w = np.where(rows["signal"], weight, 1.0) if name == "weighted" else None
            p = fit_predict(learner_name, params, rows, test, features, w)
            out.append(scored(name, t, p, rows, test))
        t += test_days * DAY
    return (pd.concat(out, ignore_index=True) if out else pd.DataFrame()), skipped


def walk_pooled(frames: dict[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp,
                train_days: int, test_days: int, horizon: int, params: dict,
                learner_name: str = "lightgbm",
                pauses: dict[str, list[dict[str, str]]] | None = None) -> pd.DataFrame:
    """Test-week predictions of one model trained on every pair's candles (a pair's weeks
    touched by a hole of a day or more left out)."""
    features = [c for c in next(iter(frames.values())).columns if c.startswith("%")]
    out = []
    t = start
    while t + test_days * DAY <= end:
        train, test = [], []
        for pair, frame in frames.items():
            if touches((pauses or {}).get(pair, []), t - train_days * DAY,
                       t + test_days * DAY):
                continue
            rows, week = week_split(frame, t, train_days, test_days, horizon, features)
            train.append(rows)
            test.append(week.assign(pair=pair))
        if not train or sum(map(len, train)) < MIN_ROWS or sum(map(len, test)) < MIN_ROWS:
            t += test_days * DAY  # every pair's window touched by a hole
            continue
        tr, te = pd.concat(train), pd.concat(test)
        p = fit_predict(learner_name, params, tr, te, features)
        out.append(scored("pooled", t, p, tr, te).assign(pair=te["pair"].to_numpy()))
        t += test_days * DAY
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def ranked_spread(df: pd.DataFrame, seed: int = 0, resamples: int = 1000) -> tuple:
    """Mean return of the upper half of predictions minus the lower half, per pair-week
    (so every week ranks within itself), with a bootstrap 90 % interval over pair-weeks."""
    spreads = []
    for _, g in df.groupby(["pair", "week"]):
        if len(g) < 4:
            continue
        upper = g["p"] >= g["p"].median()
        if upper.all() or not upper.any():
            continue
        spreads.append(g.loc[upper, "ret"].mean() - g.loc[~upper, "ret"].mean())
    if not spreads:
        return (np.nan, np.nan, np.nan, 0)
    arr = np.array(spreads)
    means = np.random.default_rng(seed).choice(arr, (resamples, len(arr))).mean(axis=1)
    low, high = np.percentile(means, [5, 95])
    return (float(arr.mean()), float(low), float(high), len(arr))


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab.label_study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datadir", type=Path, default=shared_data() or DEFAULT_DATADIR)
    parser.add_argument("--pairs", nargs="+", help="default: the config's whitelist")
    parser.add_argument("--start", default="2024-03-01", help="first test week (UTC date)")
    parser.add_argument("--end", default="2024-05-01")
    parser.add_argument("--train-days", type=int, default=60)
    parser.add_argument("--test-days", type=int, default=7)
    parser.add_argument("--weight", type=float, default=20.0,
                        help="weight of the technical signal's candles in 'weighted'")
    parser.add_argument("--pooled", action="store_true",
                        help="also train one model over all pairs per week")
    parser.add_argument("--learner", choices=LEARNERS, default="lightgbm")
    return parser


def score_sets(df: pd.DataFrame, sets: tuple[str, ...]) -> list[dict]:
    """Per training set and scope (all candles, 1h uptrend, technical signal): AUC, Brier
    skill and the ranked upper-minus-lower half spread with its interval."""
    rows = []
    for name in sets:
        for scope in ("all", "trend", "signal"):
            s = df[df["set"] == name]
            s = s if scope == "all" else s[s[scope]]
            spread, low, high, weeks = ranked_spread(s)
            rows.append({"trained on": name, "scored on": scope, "rows": len(s),
                         "auc": skill.auc(s["ret"] > 0, s["p"]),
                         "bss": skill.scores(s["ret"] > 0, s["p"], s["base"]).brier_skill,
                         "upper-lower half %": spread * 100, "ci90 low": low * 100,
                         "ci90 high": high * 100, "pair-weeks": weeks})
    return rows


def rank_ics(df: pd.DataFrame, sets: tuple[str, ...]) -> list[dict]:
    """Each training set as a ranker across pairs (cross-sectional rank IC), beside the
    per-pair models minus each pair's base rate and the base rate alone."""
    every = df[df["set"] == "all"]
    rankers = {name: df[df["set"] == name] for name in sets}
    # What the per-pair models' ranking holds beyond each pair's own recent win rate (the
    # training window's base rate: a plain cross-sectional momentum ranker), and that
    # ranker alone, the simple thing to beat.
    rankers["all minus base rate"] = every.assign(p=every["p"] - every["base"])
    rankers["base rate alone"] = every.assign(p=every["base"])
    ics = []
    for name, scores in rankers.items():
        mean, low, high, windows, candles = rank_ic(scores)
        ics.append({"model": name, "rank IC": mean, "ci90 low": low, "ci90 high": high,
                    "windows": windows, "candles": candles})
    return ics


def print_results(args: argparse.Namespace, strat, rows: list[dict], ics: list[dict],
                  skipped: dict[str, int], pauses: dict[str, list[dict[str, str]]]) -> None:
    pd.set_option("display.width", 200)
    print(f"\nTest weeks {args.start} .. {args.end}, {args.train_days} days training each, "
          f"learner {args.learner}, label: {strat.exit_rules()}")
    print(pd.DataFrame(rows).round(4).to_string(index=False))
    print("\nAs a ranker across pairs (cross-sectional Spearman IC of predicted win "
          "probability vs realised label return, per candle, averaged per window; a ranker "
          "earns its place with an interval above 0):")
    print(pd.DataFrame(ics).round(4).to_string(index=False))
    if any(skipped.values()):
        print("\nWeeks skipped (a hole of a day or more in the 5m candles touches the week or "
              "its training window, or too few labelled rows): "
              + ", ".join(f"{p} {n}" for p, n in skipped.items() if n))
        for pause in (p for ps in pauses.values() for p in ps):
            print(f"  {pause['pair']}: {pause['reason']}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    strat = ml_offline.strategy()
    params = {**ml_offline.model_module().DEFAULT_PARAMS}
    start, end = (pd.Timestamp(x, tz="UTC") for x in (args.start, args.end))
    horizon = strat.exit_rules().max_hold
    results, frames, skipped = [], {}, {}
    pairs = args.pairs or whitelist(load_config())
    found = data_holes.holes(args.datadir, pairs, "5m", start - args.train_days * DAY, end)
    pauses = {pair: [p for p in data_holes.pair_pauses(found, "5m") if p["pair"] == pair]
              for pair in pairs}
    for pair in pairs:
        frames[pair] = pair_frame(args.datadir, pair, strat)
        scores, skipped[pair] = walk(frames[pair], start, end, args.train_days,
                                     args.test_days, horizon, args.weight, params,
                                     args.learner, pauses[pair])
        results.append(scores.assign(pair=pair))
        print(f"label-study: {pair} done ({skipped[pair]} weeks skipped)", flush=True)
    sets = SETS
    if args.pooled:
        results.append(walk_pooled(frames, start, end, args.train_days, args.test_days,
                                   horizon, params, args.learner, pauses))
        sets = (*SETS, "pooled")
    df = pd.concat(results, ignore_index=True)
    print_results(args, strat, score_sets(df, sets), rank_ics(df, sets), skipped, pauses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
