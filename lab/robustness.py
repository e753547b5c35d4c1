"""How much to believe a backtest: figures per calendar year with intervals, and the Sharpe
ratio deflated for the number of configurations tried.

* ``per_year``: for every curve (a variant, a baseline, buy-and-hold), each calendar year
  and the whole range: return, freqtrade's Sharpe and max drawdown of the daily
  mark-to-market equity, the trades opened and the exposure in that span, and a 90 %
  moving-block bootstrap interval of the return and the Sharpe.
* ``deflated_sharpe``: Bailey and López de Prado, "The Deflated Sharpe Ratio: Correcting for
  Selection Bias, Backtest Overfitting and Non-Normality" (Journal of Portfolio Management,
  2014): the probability that the true Sharpe ratio is above what the best of ``trials``
  unskilled configurations would show by luck, given the spread of the trials' Sharpe
  ratios and the returns' length, skew and kurtosis. Above 0.95: the selection survives its
  own multiple testing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from lab import report_metrics as rm

EULER_GAMMA = 0.5772156649015329
DAYS_PER_YEAR = 365  # crypto trades every day; freqtrade annualises daily ratios the same way


def expected_max_sharpe(trials: int, trial_sharpe_var: float) -> float:
    """E[max Sharpe] of ``trials`` unskilled configurations whose Sharpe ratios (per period,
    not annualised) have variance ``trial_sharpe_var`` (Bailey and López de Prado, eq. 6)."""
    if trials <= 1 or trial_sharpe_var <= 0:
        return 0.0
    z1 = stats.norm.ppf(1 - 1 / trials)
    z2 = stats.norm.ppf(1 - 1 / (trials * math.e))
    return math.sqrt(trial_sharpe_var) * ((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def probabilistic_sharpe(sharpe: float, benchmark: float, observations: int, skew: float,
                         kurtosis: float) -> float:
    """P(true Sharpe > ``benchmark``) from an observed per-period ``sharpe`` over
    ``observations`` returns with this ``skew`` and (non-excess) ``kurtosis``."""
    if observations < 2:
        return float("nan")
    denominator = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe ** 2
    if denominator <= 0:
        return float("nan")
    return float(stats.norm.cdf((sharpe - benchmark) * math.sqrt(observations - 1)
                                / math.sqrt(denominator)))


def deflated_sharpe(returns: np.ndarray | pd.Series, trials: int,
                    trial_sharpe_var: float) -> dict[str, float]:
    """The Deflated Sharpe Ratio of per-period ``returns`` (daily fractions) chosen among
    ``trials`` configurations whose per-period Sharpe ratios had variance
    ``trial_sharpe_var``. Returns the per-period and annualised Sharpe, the luck threshold
    ``sharpe0`` (annualised) and ``dsr`` (a probability; nan when fewer than 2 returns)."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    sd = r.std(ddof=1) if len(r) > 1 else 0.0
    sharpe = float(r.mean() / sd) if sd > 0 else 0.0
    skew = float(stats.skew(r)) if sd > 0 else 0.0
    kurt = float(stats.kurtosis(r, fisher=False)) if sd > 0 else 3.0
    sharpe0 = expected_max_sharpe(trials, trial_sharpe_var)
    return {"sharpe": sharpe * math.sqrt(DAYS_PER_YEAR),
            "sharpe0": sharpe0 * math.sqrt(DAYS_PER_YEAR),
            "trials": trials, "observations": len(r), "skew": skew, "kurtosis": kurt,
            "dsr": probabilistic_sharpe(sharpe, sharpe0, len(r), skew, kurt)}


def annual_to_period_var(annual_sharpes: list[float] | np.ndarray) -> float:
    """Variance of per-period (daily) Sharpe ratios from annualised ones."""
    values = np.asarray([s for s in annual_sharpes if s is not None and np.isfinite(s)])
    if len(values) < 2:
        return 0.0
    return float(np.var(values / math.sqrt(DAYS_PER_YEAR), ddof=1))


def bootstrap(daily: np.ndarray, seed: int = 0) -> dict[str, tuple[float, float]]:
    """90 % moving-block bootstrap bounds (5th, 95th percentile) of the total return and the
    annualised Sharpe of daily returns ``daily`` (fractions); nan with fewer than 2."""
    if len(daily) < 2:
        return {"return": (np.nan, np.nan), "sharpe": (np.nan, np.nan)}
    boot = daily[rm._blocks(len(daily), np.random.default_rng(seed), rm.RESAMPLES)]
    total = np.prod(1 + boot, axis=1) - 1
    sd = boot.std(axis=1)
    sharpe = np.where(sd > 0, boot.mean(axis=1) / np.where(sd > 0, sd, 1), 0.0)
    sharpe = sharpe * math.sqrt(DAYS_PER_YEAR)
    return {"return": tuple(np.percentile(total, [5, 95])),
            "sharpe": tuple(np.percentile(sharpe, [5, 95]))}


def _trade_figures(trades: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                   balance: float) -> tuple[float, float]:
    """Trades opened in [start, end) and their time-weighted exposure within it (stake held /
    ``balance``)."""
    if trades is None or trades.empty:
        return 0.0, 0.0
    opened = int(((trades["open_date"] >= start) & (trades["open_date"] < end)).sum())
    held_from = trades["open_date"].clip(lower=start)
    held_to = trades["close_date"].clip(upper=end)
    held = (held_to - held_from).dt.total_seconds().clip(lower=0)
    span = (end - start).total_seconds()
    return float(opened), float((trades["stake_amount"] * held).sum() / (balance * span))


def per_year(curves: dict[str, pd.Series], trades: dict[str, pd.DataFrame | None],
             seed: int = 0) -> pd.DataFrame:
    """One row per curve and span (each calendar year in the data, then ``all``).

    ``curves``: daily mark-to-market equity by name (index: UTC days); ``trades``:
    freqtrade's trades by the same name, or None for a benchmark (exposure 100 %, no
    trades). Columns: variant, span, days, total_return (+ ci90), sharpe (+ ci90),
    max_drawdown, trades, exposure."""
    rows = []
    for name, curve in curves.items():
        curve = curve.dropna()
        spans = [(str(y), pd.Timestamp(f"{y}-01-01", tz="UTC"),
                  pd.Timestamp(f"{y + 1}-01-01", tz="UTC"))
                 for y in sorted(set(curve.index.year))]
        spans.append(("all", curve.index[0], curve.index[-1] + pd.Timedelta(days=1)))
        for span, start, end in spans:
            # the mark of the day before the span is its starting point
            part = curve[(curve.index >= start - pd.Timedelta(days=1)) & (curve.index < end)]
            if len(part) < 3:
                continue
            daily = part.pct_change().dropna().to_numpy()
            metrics = rm.series_metrics(part)
            ci = bootstrap(daily, seed)
            run_trades = trades.get(name)
            if run_trades is None:
                count, exposure = np.nan, 1.0
            else:
                count, exposure = _trade_figures(run_trades, max(start, curve.index[0]),
                                                 min(end, curve.index[-1]), float(curve.iloc[0]))
            rows.append({"variant": name, "span": span, "days": len(daily),
                         "total_return": metrics["total_return"],
                         "return_ci90": f"[{ci['return'][0] * 100:+.1f}, "
                                        f"{ci['return'][1] * 100:+.1f}] %",
                         "sharpe": metrics["sharpe"],
                         "sharpe_ci90": f"[{ci['sharpe'][0]:+.2f}, {ci['sharpe'][1]:+.2f}]",
                         "max_drawdown": metrics["max_drawdown"], "trades": count,
                         "exposure": exposure})
    return pd.DataFrame(rows)


def rank_ic(df: pd.DataFrame, seed: int = 0, resamples: int = 1000) -> tuple:
    """The model as a ranker: at each candle, the Spearman correlation across pairs (three
    or more) between predicted win probability and realised label return; averaged per
    test window, with a bootstrap 90 % interval over windows. (mean, low, high, windows,
    candles)."""
    d = df[df.groupby("date")["p"].transform("size") >= 3]
    if d.empty:
        return (np.nan, np.nan, np.nan, 0, 0)
    ranks = pd.DataFrame({"date": d["date"], "a": d.groupby("date")["p"].rank(),
                          "b": d.groupby("date")["ret"].rank()})
    for col in ("a", "b"):
        ranks[col] -= ranks.groupby("date")[col].transform("mean")
    by = ranks.groupby("date")
    cov = (ranks["a"] * ranks["b"]).groupby(ranks["date"]).sum()
    scale = np.sqrt(by["a"].apply(lambda x: (x * x).sum()) * by["b"].apply(
        lambda x: (x * x).sum()))
    ic = (cov / scale.replace(0, np.nan)).dropna()
    per_window = ic.groupby(d.groupby("date")["week"].first().reindex(ic.index)).mean()
    arr = per_window.to_numpy()
    means = np.random.default_rng(seed).choice(arr, (resamples, len(arr))).mean(axis=1)
    low, high = np.percentile(means, [5, 95])
    return (float(arr.mean()), float(low), float(high), len(arr), len(ic))
