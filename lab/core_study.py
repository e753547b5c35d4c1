"""``make core-study``: the trend core's declared alternatives against what a user would do
instead (issue #32), each a plain ``freqtrade backtesting`` run on the local exchange.

Rows: the alternatives of ``lab.variants.CORE_ALTERNATIVES`` (declared before they ran, each
a trial of the Deflated Sharpe), ``strategies/TrendBaseline.py`` (the 200-day rule), the
equal-weight basket and BTC bought and held. Per row, from freqtrade's result files: the
marked daily equity's return, Sharpe (freqtrade's ``calculate_sharpe_from_balance``) and
maximum drawdown (freqtrade's, and peak to trough) with 90 % block-bootstrap intervals, per
calendar year too; time-weighted exposure (stake at cost in the market / the starting
balance); turnover (orders' value per year / the mean equity) and fees paid; trades,
rebalance orders and what each protection did (exits by reason, partial take-profits); the
Deflated Sharpe over every alternative tried. Then paired differences against the core and
of the core against the 200-day rule and the basket, and the declared rules' picks of the
shipped protections and of the shipped sizing.

Writes ``<out>/core_study.md`` and ``<out>/core_study.json``; the backtests stay under
``<out>/work``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from freqtrade.data.metrics import calculate_max_drawdown_from_balance

from lab import ablation, preamble, robustness
from lab import report_metrics as rm
from lab.demo import backfill_oracle
from lab.project import CONFIG, REPO
from lab.render import md_table
from lab.variants import (
    CORE,
    CORE_ALTERNATIVES,
    CORE_PROTECTIONS,
    CORE_SIZINGS,
    SIZING_BARS,
    Inputs,
)

HISTORY = REPO.parent / "shared" / "data" / "history" / "binance"
HISTORY_RANGE = "20220301-20240901"


def plan(timerange: str, pairs: list[str], journal: Path) -> list[ablation.Variant]:
    """The alternatives (one slot per pair), then the trend baseline, over ``timerange``;
    ``journal``: the heuristic oracle's backfill the oracle's alternative replays."""
    inputs = Inputs(journal, None, Path(), "", "")
    runs = [ablation.build(kind, inputs, timerange) for kind in CORE_ALTERNATIVES]
    for run in runs:
        run.overlay["max_open_trades"] = len(pairs)
    return [*runs, ablation.trend_baseline(timerange, pairs)]


def order_figures(run: rm.Run, equity: pd.Series) -> dict[str, float]:
    """Counts and costs from the trades' orders: ``rebalances`` (orders tagged so),
    ``partial_tp`` (filled partial take-profits), ``fees`` (stake currency: every filled
    order's cost x its side's fee) and ``turnover`` (filled orders' value per year / the mean
    marked equity)."""
    tags: Counter[str] = Counter()
    value = fees = 0.0
    for _, trade in run.trades.iterrows():
        for order in trade.get("orders") or []:
            if not order.get("order_filled_timestamp"):
                continue
            cost = float(order["amount"]) * float(order["safe_price"])
            value += cost
            fees += cost * float(trade["fee_open" if order["ft_is_entry"] else "fee_close"])
            tags[order.get("ft_order_tag") or ""] += 1
    years = max((run.end - run.start).days, 1) / 365
    return {"rebalances": tags["rebalance"], "partial_tp": tags["partial_tp"], "fees": fees,
            "turnover": value / years / float(equity.mean())}


def peak_to_trough(equity: pd.Series) -> float:
    """The deepest fall from a peak, as a fraction of that peak (freqtrade's
    ``calculate_max_drawdown_from_balance(relative=True)``; its default, the ``max_drawdown``
    column, is the relative size of the largest *absolute* fall, smaller once equity grew)."""
    try:
        return float(calculate_max_drawdown_from_balance(
            rm.balance_frame(equity.dropna()), relative=True).relative_account_drawdown)
    except ValueError:  # flat: no drawdown
        return 0.0


def run_row(run: rm.Run) -> tuple[dict[str, object], pd.Series]:
    """One strategy's row and its marked daily equity."""
    equity = rm.daily_equity(run)
    daily = equity.pct_change().dropna().to_numpy()
    ci = robustness.bootstrap(daily)
    exits = run.trades["exit_reason"].value_counts().to_dict() if len(run.trades) else {}
    return {"variant": run.name, **rm.series_metrics(equity),
            "peak_to_trough": peak_to_trough(equity),
            "sharpe_ci90": f"[{ci['sharpe'][0]:+.2f}, {ci['sharpe'][1]:+.2f}]",
            "exposure": float(rm.exposure_series(run).mean()), "trades": len(run.trades),
            **order_figures(run, equity),
            "exits": ", ".join(f"{k} {v}" for k, v in sorted(exits.items()))}, equity


def benchmark(name: str, index: pd.Series, balance: float) -> tuple[dict[str, object],
                                                                     pd.Series]:
    equity = index * balance
    ci = robustness.bootstrap(equity.pct_change().dropna().to_numpy())
    return {"variant": name, **rm.series_metrics(equity),
            "peak_to_trough": peak_to_trough(equity),
            "sharpe_ci90": f"[{ci['sharpe'][0]:+.2f}, {ci['sharpe'][1]:+.2f}]",
            "exposure": 1.0, "trades": np.nan}, equity


def deflated(rows: pd.DataFrame, curves: dict[str, pd.Series]) -> pd.Series:
    """Each alternative's Deflated Sharpe over every alternative tried (their Sharpe
    ratios' variance; Bailey and López de Prado 2014)."""
    names = [kind.name for kind in CORE_ALTERNATIVES]
    var = robustness.annual_to_period_var(rows.set_index("variant").loc[names, "sharpe"])
    return pd.Series({n: robustness.deflated_sharpe(curves[n].pct_change().dropna(),
                                                    len(names), var)["dsr"] for n in names})


def pick(years: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """The declared rule (``lab.variants``): the protections that raise the core's marked
    Sharpe in every calendar year without deepening its maximum drawdown."""
    by = years[years["span"] != "all"].pivot(index="span", columns="variant", values="sharpe")
    dd = rows.set_index("variant")["max_drawdown"]
    return [k.name for k in CORE_PROTECTIONS
            if (by[k.name] > by[CORE.name]).all() and dd[k.name] <= dd[CORE.name]]


def pick_sizing(rows: pd.DataFrame) -> str:
    """The declared rule (``lab.variants``): of ``CORE_SIZINGS``, the highest Deflated
    Sharpe among those with a maximum drawdown within ``SIZING_BARS`` (absolute and of the
    basket's) and a time-weighted exposure at least its bar; none: the pooled core."""
    by = rows.set_index("variant")
    basket = by.loc["basket (buy and hold)", "max_drawdown"]
    meets = [k.name for k in CORE_SIZINGS
             if by.loc[k.name, "max_drawdown"] <= SIZING_BARS["max_drawdown"]
             and by.loc[k.name, "max_drawdown"] <= SIZING_BARS["of_basket_drawdown"] * basket
             and by.loc[k.name, "exposure"] >= SIZING_BARS["exposure"]]
    return max(meets, key=lambda name: by.loc[name, "dsr"]) if meets else CORE.name


def versus(curves: dict[str, pd.Series], baseline: str, shipped: str) -> pd.DataFrame:
    """Each alternative against the core, and the core and the ``shipped`` sizing against
    what a user would do instead: the Sharpe and drawdown differences (upper - lower) with
    90 % paired block-bootstrap intervals, and the verdict they allow."""
    pairs = [(CORE.name, k.name) for k in CORE_ALTERNATIVES if k is not CORE]
    pairs += [(other, core) for core in dict.fromkeys((CORE.name, shipped))
              for other in (baseline, "basket (buy and hold)")]
    rows = []
    for lower, upper in pairs:
        diff = rm.compare(curves[lower], curves[upper])
        rows.append({"upper": upper, "lower": lower,
                     "sharpe_diff": diff["sharpe"][0],
                     "sharpe_ci90": f"[{diff['sharpe'][1]:+.2f}, {diff['sharpe'][2]:+.2f}]",
                     "sharpe_call": rm.call(diff["sharpe"], "higher"),
                     "drawdown_diff": diff["drawdown"][0],
                     "drawdown_call": rm.call(diff["drawdown"], "lower")})
    return pd.DataFrame(rows)


def compute(runs: list[ablation.Variant], datadir: Path, pairs: list[str]) -> dict[str, object]:
    loaded = [rm.load_run(v.name, v.result_dir, v.strategy) for v in runs]
    rows, curves = zip(*(run_row(r) for r in loaded), strict=True)
    start, end, balance = loaded[0].start, loaded[0].end, loaded[0].starting_balance
    for name, group in (("basket (buy and hold)", pairs), ("BTC (buy and hold)", ["BTC/USDT"])):
        row, curve = benchmark(name, rm.buy_and_hold(datadir, group, start, end), balance)
        rows, curves = (*rows, row), (*curves, curve)
    table = pd.DataFrame(rows)
    table["exits"] = table["exits"].fillna("")
    curves_by = dict(zip(table["variant"], curves, strict=True))
    table["dsr"] = table["variant"].map(deflated(table, curves_by))
    trades = {r.name: r.trades for r in loaded}
    years = robustness.per_year(curves_by, {n: trades.get(n) for n in curves_by})
    sizing = pick_sizing(table)
    return {"table": table, "years": years, "pick": pick(years, table), "sizing": sizing,
            "versus": versus(curves_by, loaded[-1].name, sizing),
            "span": f"{start:%Y-%m-%d} -> {end:%Y-%m-%d}", "pairs": pairs}


def write(figures: dict[str, object], out: Path) -> Path:
    table, years = figures["table"], figures["years"]
    cols = ["variant", "total_return", "sharpe", "sharpe_ci90", "max_drawdown",
            "peak_to_trough", "exposure",
            "turnover", "fees", "trades", "rebalances", "partial_tp", "dsr", "exits"]
    picked = ", ".join(figures["pick"]) or "none"
    text = "\n\n".join([
        f"# The trend core's alternatives ({figures['span']}, {len(figures['pairs'])} pairs)",
        md_table(table[[c for c in cols if c in table]]),
        "Paired differences (upper - lower, marked daily equity, 90 % block bootstrap):",
        md_table(figures["versus"]),
        "Per calendar year (marked daily equity; 90 % block-bootstrap intervals):",
        md_table(years.drop(columns=["exposure"])),
        f"Protections picked by the declared rule: **{picked}**.",
        f"Sizing picked by the declared rule: **{figures['sizing']}**."]) + "\n"
    (out / "core_study.md").write_text(text)
    (out / "core_study.json").write_text(json.dumps(
        {k: (v.to_dict("records") if isinstance(v, pd.DataFrame) else v)
         for k, v in figures.items()}, indent=2, default=str))
    return out / "core_study.md"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.core_study", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datadir", type=Path, default=HISTORY)
    p.add_argument("--timerange", default=HISTORY_RANGE)
    p.add_argument("--pairs", nargs="+", help="default: the configs' whitelist")
    p.add_argument("-c", "--config", type=Path, action="append",
                   default=[REPO / "user_data" / "config.history.json"])
    p.add_argument("--out", type=Path, default=REPO / "user_data" / "reports" / "core-study")
    args = p.parse_args(argv)
    market = preamble.load_market(args.datadir, args.pairs, [CONFIG, *args.config])
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    first, last = preamble.timerange_bounds(args.timerange)
    found = preamble.holes(args.datadir, market.pairs, "1h", first, last)
    configs = (*args.config, preamble.pauses_overlay(work / "pauses.json", found.pauses))
    backfill_oracle(args.datadir, args.timerange, work / "oracle")
    with preamble.local_exchange(market.data) as url:
        runs = [ablation.run_variant(v, work, args.datadir, url, market.pairs, configs,
                                     base=(CONFIG,))
                for v in plan(args.timerange, market.pairs, work / "oracle" / "journal.jsonl")]
    print(f"core study: {write(compute(runs, args.datadir, market.pairs), args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
