"""Out-of-sample quality of the ML layer, from a FreqAI walk-forward backtest.

``python -m lab.ml_quality --timerange 20240301-20240701`` runs ``freqtrade
backtesting`` with the ML layer (FreqAI retrains every ``backtest_period_days`` on the
``train_period_days`` before each window, so no window is seen in training), then scores
the predictions FreqAI saved for every window against what actually happened:

* AUC, log-loss and Brier score per window, next to the base-rate baseline (a constant
  prediction equal to the share of "up" labels in that window's training period);
* a calibration table (predicted probability bins vs realised frequency).

Nothing is tuned on these numbers; they are reported as measured.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from freqtrade.data.history import load_pair_history
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from lab.project import CONFIG, DEFAULT_DATADIR, REPO, load_config, shared_data

DAY = pd.Timedelta(days=1)


def realised_labels(datadir: Path, pair: str, horizon: int, cost: float) -> pd.Series:
    candles = load_pair_history(pair=pair, timeframe="5m", datadir=datadir)
    close = candles.set_index("date")["close"]
    forward = close.shift(-horizon) / close - 1.0
    return (forward > cost).astype(float).where(forward.notna())


def load_predictions(models_dir: Path) -> pd.DataFrame:
    """FreqAI's saved per-window predictions: one row per candle, with pair and window."""
    frames = []
    for path in sorted(models_dir.glob("backtesting_predictions/*_prediction.feather")):
        # cb_<coin>_<train-end-timestamp>_prediction.feather
        parts = path.stem.split("_")
        df = pd.read_feather(path)
        df["coin"] = parts[1].upper()
        df["window"] = pd.Timestamp(int(parts[2]), unit="s", tz="UTC")
        frames.append(df)
    if not frames:
        raise FileNotFoundError(f"no FreqAI backtesting predictions under {models_dir}")
    return pd.concat(frames, ignore_index=True)


def score(df: pd.DataFrame, base_rate: float) -> dict[str, float]:
    y, p = df["label"].to_numpy(), np.clip(df["up"].to_numpy(), 1e-6, 1 - 1e-6)
    base = np.full_like(p, np.clip(base_rate, 1e-6, 1 - 1e-6))
    two_classes = len(np.unique(y)) == 2
    return {
        "rows": len(df),
        "up_rate": float(y.mean()),
        "auc": float(roc_auc_score(y, p)) if two_classes else float("nan"),
        "logloss": float(log_loss(y, p, labels=[0, 1])),
        "logloss_base": float(log_loss(y, base, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "brier_base": float(brier_score_loss(y, base)),
    }


def evaluate(models_dir: Path, datadir: Path, pairs: list[str], horizon: int, cost: float,
             train_days: int, since: pd.Timestamp | None = None,
             ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Scores of the predictions saved under ``models_dir`` (only candles from ``since``)."""
    preds = load_predictions(models_dir)
    if since is not None:
        preds = preds[preds["date"] >= since]
    rows, scored = [], []
    for pair in pairs:
        coin = pair.split("/")[0].upper()
        labels = realised_labels(datadir, pair, horizon, cost)
        p = preds[(preds["coin"] == coin) & (preds["do_predict"] == 1)].copy()
        p["label"] = labels.reindex(pd.DatetimeIndex(p["date"])).to_numpy()
        p = p.dropna(subset=["label"])
        for window, w in p.groupby("window"):
            train = labels[(labels.index >= window - train_days * DAY) & (labels.index < window)]
            base_rate = float(train.dropna().mean())
            rows.append({"pair": pair, "window": window.date(), **score(w, base_rate)})
            w = w.assign(base_rate=base_rate)
            scored.append(w)
    per_window = pd.DataFrame(rows)
    allrows = pd.concat(scored, ignore_index=True)
    overall = score(allrows, 0.0)
    overall["logloss_base"] = float(log_loss(
        allrows["label"], np.clip(allrows["base_rate"], 1e-6, 1 - 1e-6), labels=[0, 1]))
    overall["brier_base"] = float(brier_score_loss(allrows["label"], allrows["base_rate"]))
    bins = pd.cut(allrows["up"], bins=np.linspace(0, 1, 11), include_lowest=True)
    calibration = allrows.groupby(bins, observed=True).agg(
        rows=("label", "size"), predicted=("up", "mean"), realised=("label", "mean"))
    return per_window, calibration, overall


def run_backtest(datadir: Path, userdir: Path, timerange: str, pairs: list[str]) -> None:
    userdir.mkdir(parents=True, exist_ok=True)
    ml_only = userdir / "ml_only.json"  # the ML layer judged alone, without the oracle
    ml_only.write_text(json.dumps({"hybrid_ai": {"oracle": {"enabled": False}}}))
    cmd = [sys.executable, "-m", "local_exchange", "run", "--datadir", str(datadir),
           "--port", "0", "--write-overlay", str(userdir / "offline.json"),
           "--", sys.executable, "-m", "freqtrade", "backtesting",
           "-c", str(CONFIG), "-c", str(userdir / "offline.json"),
           "-c", str(ml_only),
           "--userdir", str(userdir), "--datadir", str(datadir), "--timerange", timerange,
           "--pairs", *pairs, "--cache", "none", "--export", "none"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"freqtrade backtesting failed:\n{proc.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.ml_quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datadir", type=Path, default=shared_data() or DEFAULT_DATADIR)
    parser.add_argument("--userdir", type=Path, default=REPO / "user_data/reports/ml_quality")
    parser.add_argument("--timerange", default="20240301-20240701")
    parser.add_argument("--pairs", nargs="+", default=["BTC/USDT", "ETH/USDT", "SOL/USDT",
                                                        "XRP/USDT"])
    parser.add_argument("--no-run", action="store_true", help="score an existing run")
    args = parser.parse_args(argv)
    config = load_config([CONFIG])
    freqai = config["freqai"]
    if not args.no_run:
        run_backtest(args.datadir, args.userdir, args.timerange, args.pairs)
    per_window, calibration, overall = evaluate(
        args.userdir / "models" / freqai["identifier"], args.datadir, args.pairs,
        freqai["feature_parameters"]["label_period_candles"],
        config.get("hybrid_ai", {}).get("ml", {}).get("label_cost", 0.004),
        freqai["train_period_days"],
    )
    pd.set_option("display.width", 160)
    print("Per window (out of sample, do_predict == 1):")
    print(per_window.round(4).to_string(index=False))
    print("\nCalibration (all windows):")
    print(calibration.round(3).to_string())
    print("\nOverall:", json.dumps({k: round(v, 4) for k, v in overall.items()}))
    report = args.userdir / "ml_quality.json"
    report.write_text(json.dumps({
        "overall": overall,
        "per_window": json.loads(per_window.to_json(orient="records", date_format="iso")),
        "calibration": json.loads(calibration.reset_index().astype({"up": str}).to_json(
            orient="records")),
    }, indent=2))
    print(f"\nwritten to {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
