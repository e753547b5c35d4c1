"""Numbers of the ablation report, all from freqtrade's own results and metric functions.

Equity is marked to market: freqtrade's backtest wallet snapshots (every open position at
the candle's open rate, exported as ``*_wallet.feather``), the same series freqtrade's own
"wallet based metrics" come from. Sharpe, Sortino, Calmar and max drawdown are freqtrade's
(``freqtrade.data.metrics.*_from_balance``), for the strategies and for buy-and-hold alike;
total return is freqtrade's ``profit_total``. Differences between variants carry a block
bootstrap interval (``compare``), and a difference whose interval spans zero is
"inconclusive".
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from freqtrade.data.btanalysis import (
    get_backtest_wallet_change,
    get_latest_backtest_filename,
    load_backtest_analysis_data,
    load_backtest_data,
    load_backtest_stats,
)
from freqtrade.data.history import load_pair_history
from freqtrade.data.metrics import (
    calculate_cagr,
    calculate_calmar_from_balance,
    calculate_max_drawdown_from_balance,
    calculate_sharpe_from_balance,
    calculate_sortino_from_balance,
)

from hybrid_ai.ml.labels import ExitRules
from lab.project import STRATEGY

BLOCK_DAYS = 7  # bootstrap blocks keep a week of daily returns together (autocorrelation)
RESAMPLES = 2000


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
    equity: pd.Series | None = None  # mark-to-market wallet value per snapshot


def load_run(name: str, result_dir: Path, strategy: str = STRATEGY) -> Run:
    """One backtest's results from ``result_dir`` (freqtrade's export of ``strategy``)."""
    stats = load_backtest_stats(result_dir)["strategy"][strategy]
    trades = load_backtest_data(result_dir, strategy)
    zip_path = result_dir / get_latest_backtest_filename(result_dir)
    signals = {}
    with zipfile.ZipFile(zip_path) as archive:  # only runs exported with --export signals
        has_signals = any(n.endswith("_signals.pkl") for n in archive.namelist())
    if has_signals:
        signals = load_backtest_analysis_data(result_dir, "signals").get(strategy, {})
    wallet = get_backtest_wallet_change(zip_path, strategy)
    equity = None
    if wallet is not None and len(wallet):
        equity = (wallet.assign(total_quote=wallet["rate"] * wallet["balance"])
                  .groupby("date")["total_quote"].sum().sort_index())
    return Run(name, trades, stats, signals,
               pd.Timestamp(stats["backtest_start"], tz="UTC"),
               pd.Timestamp(stats["backtest_end"], tz="UTC"),
               float(stats["starting_balance"]), equity)


def daily_equity(run: Run) -> pd.Series:
    """End-of-day mark-to-market equity (open positions valued at that day's last candle)."""
    days = pd.date_range(run.start.normalize(), run.end.normalize(), freq="D", tz="UTC")
    if run.equity is None or run.equity.empty:  # no snapshot at all: nothing ever traded
        return pd.Series(run.starting_balance, index=days)
    daily = run.equity.resample("1D").last()
    return daily.reindex(days).ffill().fillna(run.starting_balance)


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


def balance_frame(equity: pd.Series) -> pd.DataFrame:
    """An equity series in the shape freqtrade's balance metrics read."""
    return pd.DataFrame({"date": equity.index, "total_quote": equity.to_numpy(dtype=float)})


def series_metrics(equity: pd.Series, total_return: float | None = None) -> dict[str, float]:
    """freqtrade's balance-based metrics of an equity series (snapshots or daily marks)."""
    equity = equity.dropna()
    wallet = balance_frame(equity)
    start, end = float(equity.iloc[0]), float(equity.iloc[-1])
    days = max((equity.index[-1] - equity.index[0]).days, 1)
    total = end / start - 1 if total_return is None else total_return
    try:
        max_dd = float(calculate_max_drawdown_from_balance(wallet).relative_account_drawdown)
    except ValueError:  # flat or too short: no drawdown to speak of
        max_dd = 0.0
    flat = equity.nunique() <= 1  # no trade: freqtrade's ratios say -100, not "undefined"
    return {
        "total_return": float(total),
        "cagr": float(calculate_cagr(days, start, start * (1 + total))),
        "max_drawdown": max_dd,
        "sharpe": np.nan if flat else float(calculate_sharpe_from_balance(wallet)),
        "sortino": np.nan if flat else float(calculate_sortino_from_balance(wallet)),
        "calmar": np.nan if flat else float(calculate_calmar_from_balance(wallet)),
    }


def trade_metrics(run: Run) -> dict[str, float]:
    t = run.trades
    span = (run.end - run.start).total_seconds()
    months = span / (30.44 * 86400)
    if t.empty:
        return {"trades": 0, "trades_per_month": 0.0, "win_rate": 0.0, "exposure": 0.0,
                "avg_hold_h": 0.0, "fees": 0.0}
    held = (t["close_date"] - t["open_date"]).dt.total_seconds()
    exit_value = t["stake_amount"] + t["profit_abs"]
    fees = (t["fee_open"] * t["stake_amount"] + t["fee_close"] * exit_value).sum()
    return {
        "trades": len(t),
        "trades_per_month": len(t) / months if months > 0 else np.nan,
        "win_rate": float((t["profit_abs"] > 0).mean()),
        # Capital in the market, time-weighted, as a share of the starting balance.
        "exposure": float((t["stake_amount"] * held).sum() / (run.starting_balance * span)),
        "avg_hold_h": float(held.mean() / 3600),
        "fees": float(fees),
    }


def variant_row(run: Run) -> dict[str, float | str]:
    """freqtrade's figures for one run: profit_total and its wallet-based (mark-to-market)
    metrics, as ``freqtrade backtesting`` prints them, plus exposure and trade counts."""
    equity = run.equity if run.equity is not None and len(run.equity) > 1 else daily_equity(run)
    return {"variant": run.name,
            **series_metrics(equity, total_return=float(run.stats["profit_total"])),
            **trade_metrics(run)}


def benchmark_row(name: str, index: pd.Series) -> dict[str, float | str]:
    return {"variant": name, **series_metrics(index), "trades": np.nan,
            "trades_per_month": np.nan, "win_rate": np.nan,
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
            "passed": len(passed),
            "passed_profit_abs": float(passed["profit_abs"].sum()),
            "passed_mean_profit_pct": float(passed["profit_ratio"].mean() * 100)
            if len(passed) else np.nan,
        })
        diff = mean_difference(passed["profit_ratio"].to_numpy(),
                               blocked["profit_ratio"].to_numpy())
        rows[-1].update({"passed_minus_blocked_pct": diff[0] * 100,
                         "ci90_low_pct": diff[1] * 100, "ci90_high_pct": diff[2] * 100,
                         "selection": call(diff, "higher")})
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


def hold_on(candles: pd.DataFrame, reversal: pd.Series, trade: pd.Series,
            rules: ExitRules) -> tuple[float, pd.Timestamp | None]:
    """Where the rest of ``trade`` would have been sold had it not exited when it did: at
    its next stop, trail, technical reversal or time exit (``rules``: the strategy's), with
    the stop state (entry, highest high) it had. Partial take-profits after the exit are
    left out. Returns (rate, date); (nan, None) when the data end first."""
    dates = candles["date"]
    open_, high, low = (candles[c].to_numpy(float) for c in ("open", "high", "low"))
    signal = reversal.to_numpy(bool)
    entry, opened = float(trade["open_rate"]), pd.Timestamp(trade["open_date"])
    closed = pd.Timestamp(trade["close_date"])
    first = int(dates.searchsorted(opened))
    start = int(dates.searchsorted(closed))  # the candle the trade exited in
    last = first + rules.max_hold  # freqtrade's time exit: the open after max_hold candles
    if start >= len(dates) or last >= len(dates):
        return float("nan"), None
    peak = float(np.max(high[first:start])) if start > first else entry
    floor, arm = entry * (1 + rules.stoploss), entry * (1 + rules.trailing_offset)
    for j in range(start, last):
        if j > start and signal[j - 1]:
            return open_[j], dates.iloc[j]
        peak = max(peak, high[j])
        stop = floor
        if rules.trailing is not None and peak >= arm:
            stop = max(floor, peak * (1 - rules.trailing))
        if low[j] <= stop:
            return (open_[j] if open_[j] < stop else stop), dates.iloc[j]
    return open_[last], dates.iloc[last]


def exit_attribution(run: Run, candles: dict[str, pd.DataFrame],
                     reversals: dict[str, pd.Series], rules: ExitRules, tag: str = "ml_exit",
                     seed: int = 0, resamples: int = 2000) -> pd.DataFrame:
    """What exits tagged ``tag`` did against holding each trade to its next exit
    (``hold_on``): saved > 0 means the exit sold above where the trade would have gone.
    Per exit as % of the entry price, with a bootstrap 90 % interval of the mean."""
    t = run.trades
    if t.empty or "exit_reason" not in t:
        return pd.DataFrame()
    exits = t[t["exit_reason"] == tag]
    if exits.empty:
        return pd.DataFrame()
    pct, saved, held_h = [], [], []
    for _, trade in exits.iterrows():
        pair = trade["pair"]
        rate, when = hold_on(candles[pair], reversals[pair], trade, rules)
        if when is None:
            continue
        amount = float(trade["amount"])
        pct.append((float(trade["close_rate"]) - rate) / float(trade["open_rate"]))
        saved.append(amount * (float(trade["close_rate"]) - rate))
        held_h.append((when - pd.Timestamp(trade["close_date"])).total_seconds() / 3600)
    if not pct:
        return pd.DataFrame()
    rng = np.random.default_rng(seed)
    means = rng.choice(np.array(pct), (resamples, len(pct))).mean(axis=1)
    low, high = np.percentile(means, [5, 95])
    return pd.DataFrame([{
        "exit": tag, "exits": len(pct), "trades": len(exits),
        "mean_trade_profit_pct": float(exits["profit_ratio"].mean() * 100),
        "saved_abs": float(np.sum(saved)), "mean_saved_pct": float(np.mean(pct)) * 100,
        "ci90_low_pct": float(low) * 100, "ci90_high_pct": float(high) * 100,
        "hours_to_next_exit": float(np.mean(held_h)),
        "verdict": "inconclusive" if low <= 0 <= high else ("helped" if low > 0 else "hurt"),
    }])


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


def _blocks(n: int, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Moving-block bootstrap indices, ``resamples`` x ``n``."""
    block = min(BLOCK_DAYS, n)
    starts = rng.integers(0, n - block + 1, size=(resamples, -(-n // block)))
    idx = (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]
    return idx


def _max_dd(paths: np.ndarray) -> np.ndarray:
    """Max drawdown (fraction) of each row of equity paths."""
    peak = np.maximum.accumulate(paths, axis=1)
    return (1 - paths / peak).max(axis=1)


def compare(lower: pd.Series, upper: pd.Series, seed: int = 0,
            resamples: int = RESAMPLES) -> dict[str, tuple[float, float, float]]:
    """Upper minus lower on daily mark-to-market equity: total return, max drawdown and
    Sharpe, each (point, 5 %, 95 %) from a paired moving-block bootstrap of the days."""
    a = lower.pct_change().dropna().to_numpy()
    b = upper.pct_change().dropna().reindex(lower.pct_change().dropna().index).fillna(0.0)
    b = b.to_numpy()
    idx = _blocks(len(a), np.random.default_rng(seed), resamples)
    ra, rb = a[idx], b[idx]

    def total(r: np.ndarray) -> np.ndarray:
        return np.prod(1 + r, axis=-1) - 1

    def sharpe(r: np.ndarray) -> np.ndarray:
        sd = r.std(axis=-1)
        return np.where(sd > 0, r.mean(axis=-1) / np.where(sd > 0, sd, 1) * np.sqrt(365), 0.0)

    def dd(r: np.ndarray) -> np.ndarray:
        return _max_dd(np.cumprod(1 + np.atleast_2d(r), axis=-1))

    out = {}
    for name, fn in (("return", total), ("drawdown", dd), ("sharpe", sharpe)):
        diffs = fn(rb) - fn(ra)
        point = float(np.atleast_1d(fn(b) - fn(a))[0])
        low, high = np.percentile(diffs, [5, 95])
        out[name] = (point, float(low), float(high))
    return out


def mean_difference(passed: np.ndarray, blocked: np.ndarray, seed: int = 0,
                    resamples: int = RESAMPLES) -> tuple[float, float, float]:
    """Mean of ``passed`` minus mean of ``blocked`` with a bootstrap 90 % interval."""
    if len(passed) == 0 or len(blocked) == 0:
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    p = rng.choice(passed, (resamples, len(passed))).mean(axis=1)
    b = rng.choice(blocked, (resamples, len(blocked))).mean(axis=1)
    low, high = np.percentile(p - b, [5, 95])
    return (float(passed.mean() - blocked.mean()), float(low), float(high))


def call(point_low_high: tuple[float, float, float], better_if: str) -> str:
    """'better' / 'worse' when the interval excludes zero, else 'inconclusive'."""
    _, low, high = point_low_high
    if np.isnan(low) or low <= 0 <= high:
        return "inconclusive"
    up = low > 0
    return "better" if up == (better_if == "higher") else "worse"
