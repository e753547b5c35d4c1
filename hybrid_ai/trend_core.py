"""The trend core: an ensemble of Donchian trend rules with volatility-targeted weights.

Source: Zarattini, Pagani and Barbon (2025), "Catching Crypto Trends; A Tactical Approach for
Bitcoin and Altcoins", SSRN 5209907. Parameters are the paper's, fixed in advance, never
tuned on our data:

* nine long-only rules, one per lookback ``n`` in ``LOOKBACKS`` (days): a rule goes long at a
  daily close above the highest close of the previous ``n`` days; while long, its trailing
  stop is the higher of its previous stop and the channel's midpoint (highest + lowest close
  of the last ``n`` days, that day included, halved); it is out at the first close below
  the stop it had the day before;
* the pair's ensemble ``share`` = the mean of the nine rules' states (0..1);
* the pair's weight of equity = ``share x min(PAIR_CAP, TARGET_VOL / sigma) / N``, ``sigma``
  the realised volatility of the last ``VOL_DAYS`` daily log returns, annualised with
  sqrt(365), ``N`` the whitelist's pair count. ``PAIR_CAP`` 2 is the paper's 200 % cap on
  the volatility scalar: a trending pair may take up to twice its equal share, the budget a
  flat pair leaves unused; spot, so the whitelist's total is scaled down to the budget
  (``budget_scale``) when it would exceed it.

Our choices, fixed before any run: a rule is flat until its ``n``-day channel is complete
(no partial windows; with too little history the share counts it as flat), ``sigma`` needs
all ``VOL_DAYS`` returns (no weight before), a held position is traded back to its target
only when off by more than ``BAND`` of it (relative), once a day.

How the whitelist shares the budget (``trend_core.sizing``, ``book_weights``):

* ``"published"``: the paper's split, ``share x scalar / N``; the flat pairs' budget stays
  in cash;
* ``"pooled"`` (declared on 2026-12-07 before its first run, after the published split had
  been measured once): the whitelist's risk budget is ``N`` positions at the volatility
  target; where pairs are flat, their part goes to the pairs that trend. A pair's weight is
  ``share x scalar / max(1, S)`` with ``S`` the sum of the shares that day of the
  whitelist's pairs with a volatility (``S = N`` when every rule of every pair is long: the
  published ``/ N``), capped at ``PAIR_CAP / N`` of equity per pair;
* ``"book_target"`` (declared on 2026-12-07 after the two above had run, and after a
  throwaway daily-close sketch of it on the same history: not out of sample there): the
  published split, the whole book scaled by the paper's rule once more, now at the book's
  level: ``min(PAIR_CAP, TARGET_VOL / sigma_book)``, ``sigma_book`` the realised volatility
  of the published book's last ``VOL_DAYS`` daily returns (yesterday's weights x today's
  returns, annualised x sqrt 365); 1 until that many returns exist. Every pair keeps its
  share of the book (no concentration in the few pairs that trend), the budget is used.

Each within ``PAIR_CAP / N`` per pair, the config's hard limits and the budget.

Pure functions on plain numpy/pandas: daily rows in, columns out. A value on day ``t`` uses
closes up to ``t`` only.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hybrid_ai.exits import sellable_cut
from hybrid_ai.settings import SettingsError, describe_errors

LOOKBACKS = (5, 10, 20, 30, 60, 90, 150, 250, 360)  # days (the paper's ensemble)
TARGET_VOL = 0.25  # annualised volatility each position is scaled to (the paper)
VOL_DAYS = 90  # days of daily log returns in sigma (the paper)
DAYS_PER_YEAR = 365  # crypto trades every day
PAIR_CAP = 2.0  # the volatility scalar's cap (the paper's 200 %): weight <= 2 / N
BAND = 0.20  # rebalance only when |value - target| > 20 % of the target (ours, fixed)
# sigma and the weights are rounded to 1e-12: rolling sums and the book's sum over pairs
# differ in the last bits with the loaded history's first candle and the pairs' order, and
# freqtrade's lookahead-analysis compares exact values (1e-12 of equity is nothing to trade)
DECIMALS = 12

Floats = npt.NDArray[np.float64]
Sizing = Literal["published", "pooled", "book_target"]
CONFIG_SECTION = "trend_core"
STARTUP_DAYS = 200  # the longest warm-up freqtrade fetches on Binance 1h (< 5 x 1000 candles)


class PartialTakeProfit(BaseModel):
    """Sell ``fraction`` of a trade once at ``gain`` above its average entry; afterwards the
    trade's target is the rest (``1 - fraction`` of the core's): rebalances may sell down to
    it, never buy back what the take-profit sold."""

    model_config = ConfigDict(extra="forbid")
    gain: float = Field(gt=0)  # 0.5 = +50 %
    fraction: float = Field(gt=0, lt=1)


class CoreSettings(BaseModel):
    """The config's ``trend_core`` section (absent: the shipped core). The hard stop and the
    trailing stop are freqtrade's own keys (``stoploss``, ``trailing_stop``,
    ``trailing_stop_positive``, ``trailing_stop_positive_offset``,
    ``trailing_only_offset_is_reached``), which override the strategy's attributes."""

    model_config = ConfigDict(extra="forbid")
    startup_days: int = Field(STARTUP_DAYS, ge=1)  # daily closes loaded before the first decision
    # how the whitelist shares the budget (book_weights); "book_target" as shipped: the pick
    # of the rule declared with it (lab.variants.CORE_SIZINGS; `make core-study`)
    sizing: Sizing = "book_target"
    partial_tp: PartialTakeProfit | None = None  # off unless set


def load_core_settings(config: dict[str, Any]) -> CoreSettings:
    """Parse ``config["trend_core"]``.

    :raises SettingsError: naming the key to fix
    """
    try:
        return CoreSettings.model_validate(config.get(CONFIG_SECTION) or {})
    except ValidationError as exc:
        raise SettingsError(describe_errors(CONFIG_SECTION, exc)) from exc


def daily_candles(hourly: pd.DataFrame) -> pd.DataFrame:
    """Days from hourly candles (``date`` UTC, open/high/low/close/volume): one row per
    calendar day, ``date`` its midnight; a day's close is its last hourly close. The last
    row may be a day still in progress: ``merge_informative_pair`` shows a day's row only
    from its last hourly candle on, so a partial day is never seen."""
    return (hourly.resample("1D", on="date")
            .agg({"open": "first", "high": "max", "low": "min", "close": "last",
                  "volume": "sum"}).dropna().reset_index())


def donchian_rule(close: npt.ArrayLike, lookback: int) -> tuple[Floats, Floats]:
    """One rule over daily closes.

    :param close: daily closes, shape (T,), oldest first (price)
    :param lookback: ``n``, days
    :returns: ``state`` (T,): 1.0 long, 0.0 flat, decided at each day's close; ``stop`` (T,):
        the trailing stop after that close (price), NaN while flat
    """
    c = np.asarray(close, dtype=float)
    s = pd.Series(c)
    upper = s.shift(1).rolling(lookback, min_periods=lookback).max().to_numpy()
    window = s.rolling(lookback, min_periods=lookback)
    mid = ((window.max() + window.min()) / 2).to_numpy()
    state = np.zeros(len(c))
    stop = np.full(len(c), np.nan)
    long, level = False, np.nan
    for t in range(len(c)):
        if long and c[t] < level:  # below yesterday's stop: out
            long, level = False, np.nan
        elif long:
            level = max(level, mid[t]) if np.isfinite(mid[t]) else level
        elif np.isfinite(upper[t]) and c[t] > upper[t]:  # breakout above the previous n
            long, level = True, mid[t]
        state[t], stop[t] = float(long), level
    return state, stop


def rule_states(close: npt.ArrayLike, lookbacks: tuple[int, ...] = LOOKBACKS) -> pd.DataFrame:
    """Every rule's state, shape (T, len(lookbacks)), columns ``rule_<n>`` (0/1)."""
    return pd.DataFrame({f"rule_{n}": donchian_rule(close, n)[0] for n in lookbacks})


def ensemble_share(close: npt.ArrayLike, lookbacks: tuple[int, ...] = LOOKBACKS) -> Floats:
    """The share long, shape (T,): the mean of the rules' states, 0..1."""
    return rule_states(close, lookbacks).mean(axis=1).to_numpy()


def realised_vol(close: npt.ArrayLike, days: int = VOL_DAYS) -> Floats:
    """sigma, shape (T,): the standard deviation of the last ``days`` daily log returns,
    annualised (x sqrt 365), as a fraction per year; NaN until ``days`` returns exist."""
    logs = np.log(pd.Series(np.asarray(close, dtype=float))).diff()
    sigma = logs.rolling(days, min_periods=days).std() * np.sqrt(DAYS_PER_YEAR)
    return sigma.round(DECIMALS).to_numpy()


def pair_weight(share: npt.ArrayLike, sigma: npt.ArrayLike, n_pairs: int,
                cap: float = PAIR_CAP, target_vol: float = TARGET_VOL) -> Floats:
    """Target weight of equity, shape (T,): ``share x min(cap, target_vol / sigma) / n_pairs``,
    in [0, cap / n_pairs]; 0 where sigma is unknown or not positive."""
    scalar = vol_scalar(sigma, cap, target_vol)
    return np.nan_to_num(np.asarray(share, dtype=float)) * scalar / max(n_pairs, 1)


def vol_scalar(sigma: npt.ArrayLike, cap: float = PAIR_CAP,
               target_vol: float = TARGET_VOL) -> Floats:
    """``min(cap, target_vol / sigma)``, shape of ``sigma``; 0 where sigma is unknown or not
    positive (no weight before ``VOL_DAYS`` returns)."""
    sig = np.asarray(sigma, dtype=float)
    ok = np.isfinite(sig) & (sig > 0)
    return np.where(ok, np.minimum(cap, target_vol / np.where(ok, sig, 1.0)), 0.0)


def book_weights(days: dict[str, pd.DataFrame], n_pairs: int, sizing: Sizing,
                 cap: float = PAIR_CAP, budget: float = 1.0,
                 pair_limit: float = 1.0) -> pd.DataFrame:
    """Every pair's target weight of equity per day, shape (days, pairs), 0 where a pair has
    no value yet.

    :param days: pair -> its ``core_days`` (``date``, ``share``, ``sigma``; ``close`` for
        ``"book_target"``)
    :param n_pairs: ``N``, the whitelist's length (the budget is ``N`` positions)
    :param sizing: how the whitelist shares the budget (the module's docstring; the
        shipped one is ``CoreSettings.sizing``'s default, the one place it is set)
    :param budget: the book's total at most, of equity (the config's
        ``hybrid_ai.limits.max_total_exposure``)
    :param pair_limit: one pair's weight at most, of equity (the config's
        ``hybrid_ai.limits.max_stake_per_trade``), besides ``cap / N``
    """
    if not days:
        return pd.DataFrame()
    pairs = sorted(days)
    share = pd.DataFrame({p: days[p].set_index("date")["share"] for p in pairs})
    sigma = pd.DataFrame({p: days[p].set_index("date")["sigma"] for p in pairs})
    share = share.fillna(0.0)
    raw = share * vol_scalar(sigma.to_numpy(), cap)
    n = max(n_pairs, 1)
    if sizing == "pooled":
        held = (share.where(raw > 0, 0.0).sum(axis=1)).clip(lower=1.0)
        weights = raw.div(held, axis=0).clip(upper=cap / n)
    elif sizing == "book_target":
        closes = pd.DataFrame({p: days[p].set_index("date")["close"] for p in pairs})
        weights = (raw / n).mul(book_vol_scale(raw / n, closes, cap), axis=0)
        weights = weights.clip(upper=cap / n)
    elif sizing == "published":
        weights = raw / n
    else:
        raise ValueError(f"sizing must be one of {get_args(Sizing)}, not {sizing!r}")
    weights = weights.clip(upper=pair_limit)
    return weights.mul(budget_scale(weights, budget), axis=0).round(DECIMALS)


def book_vol_scale(weights: pd.DataFrame, closes: pd.DataFrame, cap: float = PAIR_CAP,
                   target_vol: float = TARGET_VOL, days: int = VOL_DAYS) -> pd.Series:
    """The book's volatility scalar per day: ``min(cap, target_vol / sigma_book)``, 1 until
    ``days`` daily returns of the book exist (or where its volatility is 0).

    :param weights: the book's weights of equity, shape (days, pairs), index the day
    :param closes: the pairs' daily closes, same shape (price)
    :returns: shape (days,); the value on day ``t`` uses closes up to ``t`` only (the
        book's return on ``t`` is the weights of ``t - 1`` times the returns of ``t``)
    """
    returns = closes.pct_change(fill_method=None)
    book = (weights.shift(1) * returns).sum(axis=1, min_count=1)  # NaN: no return yet
    sigma = (book.rolling(days, min_periods=days).std() * np.sqrt(DAYS_PER_YEAR)) \
        .round(DECIMALS)
    ok = np.isfinite(sigma) & (sigma > 0)
    scale = np.where(ok, np.minimum(cap, target_vol / sigma.where(ok, 1.0)), 1.0)
    return pd.Series(scale, index=weights.index)


def core_days(daily: pd.DataFrame, n_pairs: int) -> pd.DataFrame:
    """``daily`` (``date``, ``close``) with ``share`` (0..1), ``sigma`` (per year) and
    ``weight`` (of equity, before the whitelist's budget) added, one row per day."""
    out = daily[["date", "close"]].copy()
    out["share"] = ensemble_share(out["close"])
    out["sigma"] = realised_vol(out["close"])
    out["weight"] = pair_weight(out["share"], out["sigma"], n_pairs)
    return out


def budget_scale(weights: pd.DataFrame, budget: float = 1.0) -> pd.Series:
    """The factor (<= 1) by which every pair's weight is scaled on a day so that the
    whitelist's total stays within ``budget`` (of the tradable equity).

    :param weights: shape (days, pairs), index the day, NaN = no data (counted 0)
    """
    total = weights.fillna(0.0).sum(axis=1)
    return (budget / total.where(total > budget, budget)).clip(upper=1.0)


def amount_step(precision: float | None, mode: int) -> float:
    """One step of the exchange's amount precision, in coins (0 when unknown): ccxt's
    ``precisionMode`` TICK_SIZE (4) gives the step itself, DECIMAL_PLACES (2) a count of
    decimals. Freqtrade truncates every order's amount to it, so an order can lose up to one
    step's value after the exchange minimum was checked."""
    if precision is None or precision <= 0:
        return 0.0
    if mode == 4:
        return float(precision)
    return 10.0 ** -precision if mode == 2 else 0.0


def fits_minimum(order: float, minimum: float | None, step_value: float = 0.0) -> bool:
    """Whether an order worth ``order`` stays at or above ``minimum`` after its amount is
    truncated by one step worth ``step_value`` (stake currency)."""
    return order > 0 and (not minimum or order - step_value >= minimum)


def rebalance(value: float, target: float, minimum: float | None, max_stake: float,
              band: float = BAND, step_value: float = 0.0) -> float | None:
    """The order that moves a held position worth ``value`` toward ``target`` (both stake
    currency at the current rate): + buy, - sell (in value), None to hold.

    Holds inside the band (``|value - target| <= band x target``), for a target of zero
    (the exit signal closes the trade), and when the order, truncated to the exchange's
    amount step (worth ``step_value``), would be below the exchange ``minimum``; a buy is
    capped at ``max_stake``; a sale keeps a sellable rest open
    (``hybrid_ai.exits.sellable_cut``) and never sells the whole position.
    """
    if target <= 0 or value <= 0 or abs(value - target) <= band * target:
        return None
    if target > value:
        buy = min(target - value, max_stake)
        return buy if fits_minimum(buy, minimum, step_value) else None
    cut = sellable_cut(value - target, value, minimum, shrink=True)
    if cut is None or cut.whole or not fits_minimum(cut.amount, minimum, step_value):
        return None
    return -cut.amount
