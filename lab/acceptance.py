"""The pack's acceptance bar (issue #24), each criterion stated with what was measured.

Out of sample only: every figure comes from a walk-forward run (the report's variants, FreqAI
retrained window by window); nothing here feeds back into a parameter. A criterion whose
variant did not run is "n/a", never "yes".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lab.variants import (
    MOM_TOP3,
    MOM_TOP3_ML,
    MOM_TOP3_ML_ORACLE,
    TA,
    TA_ML,
    TA_ML_LLM,
    TA_ML_ORACLE,
    VariantDef,
)

FULL_PACK = (TA_ML_LLM, TA_ML_ORACLE)


@dataclass(frozen=True)
class Family:
    """One entry family's variants in the report, layer by layer: technical alone, with the
    ML layer, the full pack (the first of ``full`` that ran)."""

    name: str
    ta: VariantDef
    ml: VariantDef
    full: tuple[VariantDef, ...]


FAMILIES = (Family("oversold recovery", TA, TA_ML, FULL_PACK),
            Family("momentum top-3", MOM_TOP3, MOM_TOP3_ML, (MOM_TOP3_ML_ORACLE,)))
MIN_TRADES = 100
MIN_EXPOSURE = 0.20
MIN_AUC = 0.55


def _row(criterion: str, measured: str, met: bool | None) -> dict[str, str]:
    return {"criterion": criterion, "measured": measured,
            "met": "n/a" if met is None else ("yes" if met else "no")}


def criteria(table: pd.DataFrame, ml: dict[str, float], baseline: str | None,
             deflated: dict[str, dict[str, float]] | None = None,
             family: Family = FAMILIES[0]) -> pd.DataFrame:
    """One row per criterion: ``criterion``, ``measured``, ``met`` (yes / no / n/a), for one
    entry ``family``'s variants.

    ``table``: the report's variant rows (``variant``, ``sharpe``, ``max_drawdown``,
    ``exposure``, ``trades``), with ``buy & hold basket`` and the ``baseline`` row;
    ``ml``: ``model_brier_skill`` and ``model_auc`` pooled out of sample (the family's models);
    ``deflated``: ``lab.robustness.deflated_sharpe`` by variant."""
    rows = table.set_index("variant")
    out = []
    full = next((v.name for v in family.full if v.name in rows.index), None)
    basket = rows.loc["buy & hold basket"] if "buy & hold basket" in rows.index else None

    def figures(name: str) -> str:
        r = rows.loc[name]
        return (f"{name}: Sharpe {r['sharpe']:.2f}, max DD {r['max_drawdown'] * 100:.1f} %, "
                f"{r['trades']:.0f} trades, exposure {r['exposure'] * 100:.1f} %")

    if full is None or basket is None:
        for name in ("Sharpe > 0 and above the basket's", "max drawdown <= half the basket's",
                     f"exposure >= {MIN_EXPOSURE:.0%}", f">= {MIN_TRADES} trades"):
            out.append(_row(f"full pack: {name}", "full pack or basket not run", None))
    else:
        f = rows.loc[full]
        out.append(_row("full pack: Sharpe > 0 and above the basket's",
                        f"{full} {f['sharpe']:.2f} vs basket {basket['sharpe']:.2f}",
                        bool(f["sharpe"] > 0 and f["sharpe"] > basket["sharpe"])))
        out.append(_row("full pack: max drawdown <= half the basket's",
                        f"{f['max_drawdown'] * 100:.1f} % vs basket "
                        f"{basket['max_drawdown'] * 100:.1f} %",
                        bool(f["max_drawdown"] <= basket["max_drawdown"] / 2)))
        out.append(_row(f"full pack: exposure >= {MIN_EXPOSURE:.0%}",
                        f"{f['exposure'] * 100:.1f} %", bool(f["exposure"] >= MIN_EXPOSURE)))
        out.append(_row(f"full pack: >= {MIN_TRADES} trades", f"{f['trades']:.0f}",
                        bool(f["trades"] >= MIN_TRADES)))
    skill = ml.get("model_brier_skill", np.nan)
    auc = ml.get("model_auc", np.nan)
    out.append(_row(f"ML gate: pooled Brier skill > 0 and AUC >= {MIN_AUC}",
                    f"Brier skill {skill:+.4f}, AUC {auc:.3f}",
                    None if np.isnan(skill) else bool(skill > 0 and auc >= MIN_AUC)))
    for lower, upper, what in ((family.ta.name, family.ml.name, "ML layer: ta+ml Sharpe >= ta's"),
                               (family.ml.name, full, "oracle: full pack Sharpe >= ta+ml's")):
        if upper is None or lower not in rows.index or upper not in rows.index:
            out.append(_row(what, "not run", None))
            continue
        out.append(_row(what, f"{figures(upper)}; {figures(lower)}",
                        bool(rows.loc[upper, "sharpe"] >= rows.loc[lower, "sharpe"])))
    if full is not None and baseline in rows.index:
        b = rows.loc[baseline]
        winner = full if rows.loc[full, "sharpe"] > b["sharpe"] else baseline
        out.append(_row(f"full pack Sharpe above the {baseline}'s",
                        f"{full} {rows.loc[full, 'sharpe']:.2f} vs {b['sharpe']:.2f} "
                        f"({b['trades']:.0f} trades, exposure {b['exposure'] * 100:.1f} %): "
                        f"{winner} wins", bool(winner == full)))
    else:
        out.append(_row("full pack Sharpe above the trend baseline's", "not run", None))
    if deflated and full in deflated:
        d = deflated[full]
        out.append(_row("full pack: Deflated Sharpe Ratio >= 0.95",
                        f"DSR {d['dsr']:.3f}: Sharpe {d['sharpe']:.2f} vs {d['sharpe0']:.2f} "
                        f"expected from the best of {d['trials']} unskilled trials",
                        None if np.isnan(d["dsr"]) else bool(d["dsr"] >= 0.95)))
    return pd.DataFrame(out)


def overall(accepted: pd.DataFrame) -> str:
    """One sentence: the bar met, or plainly not."""
    missed = accepted[accepted["met"] == "no"]["criterion"].tolist()
    unknown = accepted[accepted["met"] == "n/a"]["criterion"].tolist()
    if not missed and not unknown:
        return "Every acceptance criterion is met on this range."
    said = (f"Nothing meets the bar: {len(missed)} of {len(accepted)} criteria missed "
            f"({'; '.join(missed)})." if missed else "No criterion was missed.")
    if unknown:
        said += f" Not measured here: {'; '.join(unknown)}."
    return said
