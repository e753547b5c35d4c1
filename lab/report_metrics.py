"""Numbers of the ablation report, all computed one way for strategies and benchmarks.

Equity is the starting balance plus the profit of closed trades (freqtrade's own
``plot-profit`` view), sampled daily; buy-and-hold is the price index. From a daily
equity series: total and annualised return (CAGR), max drawdown, Sharpe and Sortino
(daily returns, x sqrt(365), no risk-free rate), Calmar (CAGR / max drawdown).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from freqtrade.data.btanalysis import (
    load_backtest_analysis_data,
    load_backtest_data,
    load_backtest_stats,
)
from freqtrade.data.history import load_pair_history

STRATEGY = "HybridAIStrategy"


@dataclass
class Run:
    """One variant's freqtrade results."""

    name: str
    trades: pd.DataFrame
    stats: dict
    signals: dict[str, pd.DataFrame]
    start: pd.Timestamp
    end: pd.Timestamp
    starting_balance: float


def load_run(name: str, result_dir: Path) -> Run:
    stats = load_backtest_stats(result_dir)["strategy"][STRATEGY]
    trades = load_backtest_data(result_dir, STRATEGY)
    try:
        signals = load_backtest_analysis_data(result_dir, "signals").get(STRATEGY, {})
    except (FileNotFoundError, ValueError):
        signals = {}
    return Run(name, trades, stats, signals,
               pd.Timestamp(stats["backtest_start"], tz="UTC"),
               pd.Timestamp(stats["backtest_end"], tz="UTC"),
               float(stats["starting_balance"]))


def daily_equity(run: Run) -> pd.Series:
    days = pd.date_range(run.start.normalize(), run.end.normalize(), freq="D", tz="UTC")
    if run.trades.empty:
        return pd.Series(run.starting_balance, index=days)
    pnl = run.trades.set_index("close_date")["profit_abs"].sort_index()
    daily = pnl.groupby(pnl.index.normalize()).sum().reindex(days, fill_value=0.0)
    return run.starting_balance + daily.cumsum()


def buy_and_hold(datadir: Path, pairs: list[str], start: pd.Timestamp,
                 end: pd.Timestamp) -> pd.Series:
    """Equal-weight basket of ``pairs`` bought at ``start``, daily closes, index 1.0."""
    curves = []
    for pair in pairs:
        df = load_pair_history(pair=pair, timeframe="1h", datadir=datadir)
        close = df.set_index("date")["close"]
        close = close[(close.index >= start) & (close.index <= end)]
        if close.empty:
            continue
        daily = close.resample("1D").last().ffill()
        curves.append(daily / daily.iloc[0])
    if not curves:
        raise ValueError(f"no candles for {pairs} between {start} and {end}")
    return pd.concat(curves, axis=1).ffill().mean(axis=1)


def series_metrics(equity: pd.Series) -> dict[str, float]:
    equity = equity.dropna()
    returns = equity.pct_change().dropna()
    days = max((equity.index[-1] - equity.index[0]).days, 1)
    total = equity.iloc[-1] / equity.iloc[0] - 1
    cagr = (1 + total) ** (365 / days) - 1 if total > -1 else -1.0
    drawdown = 1 - equity / equity.cummax()
    max_dd = float(drawdown.max())
    std = returns.std()
    downside = returns[returns < 0]
    down_std = float(np.sqrt((downside**2).sum() / max(len(returns), 1)))
    return {
        "total_return": float(total),
        "cagr": float(cagr),
        "max_drawdown": max_dd,
        "sharpe": float(returns.mean() / std * np.sqrt(365)) if std > 0 else 0.0,
        "sortino": float(returns.mean() / down_std * np.sqrt(365)) if down_std > 0 else 0.0,
        "calmar": float(cagr / max_dd) if max_dd > 0 else 0.0,
    }


def trade_metrics(run: Run) -> dict[str, float]:
    t = run.trades
    span = (run.end - run.start).total_seconds()
    if t.empty:
        return {"trades": 0, "win_rate": 0.0, "exposure": 0.0, "avg_hold_h": 0.0,
                "fees": 0.0}
    held = (t["close_date"] - t["open_date"]).dt.total_seconds()
    exit_value = t["stake_amount"] + t["profit_abs"]
    fees = (t["fee_open"] * t["stake_amount"] + t["fee_close"] * exit_value).sum()
    return {
        "trades": len(t),
        "win_rate": float((t["profit_abs"] > 0).mean()),
        # Capital in the market, time-weighted, as a share of the starting balance.
        "exposure": float((t["stake_amount"] * held).sum() / (run.starting_balance * span)),
        "avg_hold_h": float(held.mean() / 3600),
        "fees": float(fees),
    }


def variant_row(run: Run) -> dict[str, float | str]:
    return {"variant": run.name, **series_metrics(daily_equity(run)), **trade_metrics(run)}


def benchmark_row(name: str, index: pd.Series) -> dict[str, float | str]:
    return {"variant": name, **series_metrics(index), "trades": np.nan, "win_rate": np.nan,
            "exposure": 1.0, "avg_hold_h": np.nan, "fees": np.nan}


def attribution(ta: Run, timeframe: pd.Timedelta) -> pd.DataFrame:
    """Per upper layer: the technical entries it would have blocked and what they returned.

    ``ta`` is the run with ML and oracle observed; its signal candles (freqtrade's
    ``--export signals``: the candle before each trade's open) hold each layer's gate.
    """
    t = ta.trades.copy()
    if t.empty:
        return pd.DataFrame()
    t["signal_date"] = t["open_date"] - timeframe
    gates = []
    for pair, candles in ta.signals.items():
        if candles is None or candles.empty:
            continue
        cols = [c for c in ("gate_ml", "gate_oracle") if c in candles]
        g = candles[["date", *cols]].drop_duplicates("date").assign(pair=pair)
        gates.append(g)
    if not gates:
        return pd.DataFrame()
    merged = t.merge(pd.concat(gates, ignore_index=True), left_on=["pair", "signal_date"],
                     right_on=["pair", "date"], how="left")
    rows = []
    for layer in ("ml", "oracle"):
        col = f"gate_{layer}"
        if col not in merged:
            continue
        blocked = merged[merged[col].fillna(False).astype(bool).eq(False)]
        passed = merged[merged[col].fillna(False).astype(bool)]
        rows.append({
            "layer": layer,
            "ta_entries": len(merged),
            "blocked": len(blocked),
            "blocked_profit_abs": float(blocked["profit_abs"].sum()),
            "blocked_win_rate": float((blocked["profit_abs"] > 0).mean()) if len(blocked)
            else np.nan,
            "blocked_mean_profit_pct": float(blocked["profit_ratio"].mean() * 100)
            if len(blocked) else np.nan,
            "passed_profit_abs": float(passed["profit_abs"].sum()),
            "passed_mean_profit_pct": float(passed["profit_ratio"].mean() * 100)
            if len(passed) else np.nan,
        })
    return pd.DataFrame(rows)


TRIM_TAGS = ("oracle_derisk", "overnight_trim")


def trim_attribution(run: Run, seed: int = 0, resamples: int = 2000) -> pd.DataFrame:
    """What the oracle's trims of open trades did: each trimmed part against holding it to
    the trade's final exit (same amount, sold at the trade's close rate instead).

    ``saved_abs`` > 0: the trim sold above where the trade finally closed. With trade and
    trim counts and a bootstrap 90 % interval of the mean saved (% of the trimmed stake).
    """
    rows = []
    if run.trades.empty or "orders" not in run.trades:
        return pd.DataFrame()
    rng = np.random.default_rng(seed)
    for tag in TRIM_TAGS:
        saved, pct, trades = [], [], set()
        for _, trade in run.trades.iterrows():
            for order in trade["orders"] or []:
                if order.get("ft_is_entry") or order.get("ft_order_tag") != tag:
                    continue
                amount, price = float(order["amount"]), float(order["safe_price"])
                saved.append(amount * (price - float(trade["close_rate"])))
                pct.append((price - float(trade["close_rate"])) / float(trade["open_rate"]))
                trades.add((trade["pair"], str(trade["open_date"])))
        if not saved:
            continue
        means = rng.choice(np.array(pct), (resamples, len(pct))).mean(axis=1)
        low, high = np.percentile(means, [5, 95])
        rows.append({"trim": tag, "trims": len(saved), "trades": len(trades),
                     "saved_abs": float(np.sum(saved)), "mean_saved_pct": float(np.mean(pct)) * 100,
                     "ci90_low_pct": float(low) * 100, "ci90_high_pct": float(high) * 100,
                     "verdict": "inconclusive" if low <= 0 <= high
                     else ("helped" if low > 0 else "hurt")})
    return pd.DataFrame(rows)


def exposure_series(run: Run, freq: str = "1h") -> pd.Series:
    """Stake committed to open trades (cost basis) over time, as a share of the starting
    balance: the measure the oracle's caps and trims use."""
    events: list[tuple[pd.Timestamp, float]] = []
    for _, trade in run.trades.iterrows():
        for order in trade.get("orders") or []:
            if not order.get("order_filled_timestamp"):
                continue
            when = pd.Timestamp(order["order_filled_timestamp"], unit="ms", tz="UTC")
            sign = 1.0 if order.get("ft_is_entry") else -1.0
            events.append((when, sign * float(order["amount"]) * float(trade["open_rate"])))
    index = pd.date_range(run.start, run.end, freq=freq)
    if not events:
        return pd.Series(0.0, index=index)
    flows = pd.Series([v for _, v in events], index=[t for t, _ in events]).sort_index()
    held = flows.groupby(level=0).sum().cumsum().clip(lower=0)
    return (held.reindex(index.union(held.index)).ffill().fillna(0.0).reindex(index)
            / run.starting_balance)
