"""Out-of-sample quality of the ML layer, from a FreqAI walk-forward backtest.

``python -m lab.ml_quality --timerange 20240301-20240701`` runs ``freqtrade
backtesting`` with the ML layer (FreqAI retrains every ``backtest_period_days`` on the
``train_period_days`` before each window, so no window is seen in training), then scores
the win probabilities FreqAI saved for every window against what the trade entered at each
candle actually returned (the label, ``hybrid_ai.ml.labels``, rebuilt from the candles with
the strategy's exits):

* per window: AUC, log-loss and Brier score, and the Brier skill score against the base
  rate of that window's training rows (what "no skill" falls back to), with the skill flag
  the model set on its own held-out rows at training time;
* the same pooled over all windows, for the model's probability and for the probability
  the gate used (the base rate where the model had no skill);
* a reliability table (predicted probability bins vs realised win rate);
* the expected-value gate on every predicted candle: realised mean return where it would
  pass (at the moderate margin) vs where it would block.

Nothing is tuned on these numbers; they are reported as measured.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from freqtrade.data.history import load_pair_history

from hybrid_ai.ml import skill
from hybrid_ai.ml.features import RETURN_LABEL, WIN, targets
from hybrid_ai.ml.signals import BASE_RATE, MEAN_LOSS, MEAN_WIN, RISK_RANK, SKILL, add_ml_columns
from hybrid_ai.settings import RiskLevel, load_settings
from lab.project import (
    DEFAULT_DATADIR,
    PACK_CONFIGS,
    REPO,
    config_args,
    load_config,
    shared_data,
)
from lab.robustness import rank_ic


def label_definition(rules, sell_rsi: float) -> str:
    trail = (f"a {rules.trailing:.1%} trail armed {rules.trailing_offset:.1%} above the entry"
             if rules.trailing else "no trail")
    tp = (f"{rules.partial_fraction:.0%} sold at +{rules.partial_tp:.1%}" if rules.partial_tp
          else "no partial take-profit")
    return (f"win = a long trade entered at the next open returns > 0 after {rules.fee:.2%} "
            f"fees per side under the strategy's exits: stop {rules.stoploss:.1%}, {trail}, "
            f"{tp}, the technical reversal (MACD cross down, RSI > {sell_rsi:g}) and a time "
            f"exit after {rules.max_hold} candles")


def realised(datadir: Path, pair: str, strat) -> pd.Series:
    """Net return of the trade entered after each candle (NaN: not finished in the data)."""
    candles = load_pair_history(pair=pair, timeframe="5m", datadir=datadir)
    out = targets(candles, strat.exit_rules(), strat.technical_exit(candles))
    return out.set_index(candles["date"])[RETURN_LABEL]


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


@dataclass
class Quality:
    label: str
    per_window: pd.DataFrame
    reliability: pd.DataFrame
    overall: dict[str, float]
    ev_gate: pd.DataFrame


def evaluate(models_dir: Path, datadir: Path, pairs: list[str],
             since: pd.Timestamp | None = None, strat: Any = None) -> Quality:
    """Scores of the predictions saved under ``models_dir`` (only candles from ``since``),
    against the label of ``strat``'s exits (default: the configured strategy's)."""
    from lab.ml_offline import strategy

    strat = strat or strategy()
    rules, sell_rsi = strat.exit_rules(), strat.sell_rsi.value
    settings = load_settings(load_config(PACK_CONFIGS))
    margin = settings.ml.ev_margin[RiskLevel.MODERATE]
    preds = load_predictions(models_dir)
    if since is not None:
        preds = preds[preds["date"] >= since]
    rows, scored = [], []
    for pair in pairs:
        coin = pair.split("/")[0].upper()
        ret = realised(datadir, pair, strat)
        p = preds[(preds["coin"] == coin) & (preds["do_predict"] == 1)].copy()
        p["ret"] = ret.reindex(pd.DatetimeIndex(p["date"])).to_numpy()
        p = p.dropna(subset=["ret"])
        p = p[(p[MEAN_WIN] > 0) & (p[MEAN_LOSS] > 0)]  # a trained window's rows
        p["y"] = (p["ret"] > 0).astype(float)
        for window, w in p.groupby("window"):
            sc = skill.scores(w["y"], w[WIN], w[BASE_RATE])
            rows.append({"pair": pair, "window": window.date(), "skill_flag": int(
                w[SKILL].iloc[0] > 0.5), **sc.as_dict()})
        scored.append(p)
    if not rows:
        raise ValueError(f"no scored predictions under {models_dir}")
    per_window = pd.DataFrame(rows)
    allrows = pd.concat(scored, ignore_index=True)
    # The runtime's own gate on every predicted candle, at the moderate risk level.
    gated = add_ml_columns(allrows.assign(**{RISK_RANK: RiskLevel.MODERATE.rank}),
                           settings.ml, 0.0, settings.limits.max_stake_per_trade)
    used = gated["ml_buy_prob"].fillna(allrows[BASE_RATE])  # "closed" windows: base rate
    model = skill.scores(allrows["y"], allrows[WIN], allrows[BASE_RATE])
    gate = skill.scores(allrows["y"], used, allrows[BASE_RATE])
    passed = gated["gate_ml"]
    ev_gate = pd.DataFrame([
        {"candles": name, "rows": int(m.sum()),
         "mean_return_pct": float(allrows["ret"][m].mean() * 100),
         "win_rate": float(allrows["y"][m].mean())}
        for name, m in (("gate passes", passed), ("gate blocks", ~passed))])
    # The model as a ranker across pairs (what a top-k family would use): the cross-
    # sectional rank IC per candle, averaged per walk-forward window.
    ic, ic_low, ic_high, ic_windows, _ = rank_ic(allrows.assign(week=allrows["window"],
                                                                p=allrows[WIN]))
    overall = {
        "rank_ic": ic, "rank_ic_low": ic_low, "rank_ic_high": ic_high,
        "rank_ic_windows": ic_windows,
        **{f"model_{k}": v for k, v in model.as_dict().items()},
        **{f"used_{k}": v for k, v in gate.as_dict().items()},
        "windows": len(per_window), "skilled_windows": int(per_window["skill_flag"].sum()),
        "ev_margin": margin,
    }
    return Quality(label_definition(rules, sell_rsi), per_window,
                   skill.reliability(allrows["y"], allrows[WIN]), overall, ev_gate)


def summary_line(q: Quality) -> str:
    o = q.overall
    return (f"Out of sample ({o['model_rows']} predicted candles, {o['windows']} pair-windows):"
            f" AUC {o['model_auc']:.3f}, log-loss {o['model_log_loss']:.4f} vs base rate "
            f"{o['model_log_loss_base']:.4f}, Brier {o['model_brier']:.4f} vs "
            f"{o['model_brier_base']:.4f} (Brier skill {o['model_brier_skill']:+.4f}). The model "
            f"claimed skill on its held-out rows in {o['skilled_windows']} of {o['windows']} "
            f"windows; the probability the gate used (base rate elsewhere): Brier skill "
            f"{o['used_brier_skill']:+.4f}, AUC {o['used_auc']:.3f}. As a ranker across pairs: "
            f"rank IC {o['rank_ic']:+.4f} [{o['rank_ic_low']:+.4f}, {o['rank_ic_high']:+.4f}] "
            f"over {o['rank_ic_windows']} windows.")


def run_backtest(datadir: Path, userdir: Path, timerange: str, pairs: list[str],
                 configs: tuple[Path, ...] = ()) -> None:
    """FreqAI's walk-forward backtest of the ML layer alone (``configs``: overlays on top of
    config.json, e.g. user_data/config.history.json)."""
    userdir.mkdir(parents=True, exist_ok=True)
    ml_only = userdir / "ml_only.json"  # the ML layer judged alone, without the oracle
    ml_only.write_text(json.dumps({"hybrid_ai": {"oracle": {"enabled": False}}}))
    cmd = [sys.executable, "-m", "local_exchange", "run", "--datadir", str(datadir),
           "--port", "0", "--write-overlay", str(userdir / "offline.json"),
           "--", sys.executable, "-m", "freqtrade", "backtesting",
           *config_args([*PACK_CONFIGS, *configs]),
           "-c", str(userdir / "offline.json"), "-c", str(ml_only),
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
    parser.add_argument("-c", "--config", type=Path, action="append", default=[],
                        help="a config overlay on top of config.json; may repeat")
    args = parser.parse_args(argv)
    config = load_config([*PACK_CONFIGS, *args.config])
    if not args.no_run:
        run_backtest(args.datadir, args.userdir, args.timerange, args.pairs,
                     tuple(args.config))
    q = evaluate(args.userdir / "models" / config["freqai"]["identifier"], args.datadir,
                 args.pairs)
    pd.set_option("display.width", 200)
    print("Label:", q.label)
    print("\nPer window (out of sample, do_predict == 1):")
    print(q.per_window.round(4).to_string(index=False))
    print("\nReliability (all windows, the model's probability):")
    print(q.reliability.round(3).to_string(index=False))
    print("\nExpected-value gate at the moderate margin, every predicted candle:")
    print(q.ev_gate.round(5).to_string(index=False))
    print("\n" + summary_line(q))
    report = args.userdir / "ml_quality.json"
    report.write_text(json.dumps({
        "label": q.label, "overall": q.overall,
        "per_window": json.loads(q.per_window.to_json(orient="records", date_format="iso")),
        "reliability": q.reliability.to_dict(orient="records"),
        "ev_gate": q.ev_gate.to_dict(orient="records"),
    }, indent=2, default=float))
    print(f"\nwritten to {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
