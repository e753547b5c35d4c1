"""The report's sentences, written from the numbers whatever they say: each layer against the
one below with its bootstrap interval, the acceptance bar, the ML scores, the frozen-model
check, the data holes, the oracle's memorisation probe and prompt-layout bias."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lab import acceptance as bar
from lab import report_metrics as rm
from lab.preamble import Holes
from lab.variants import (
    BASELINE,
    MOM,
    MOM_TOP3,
    MOM_TOP3_ML,
    MOM_TOP3_ML_ORACLE,
    TA,
    TA_ML,
    TA_ML_LLM,
    TA_ML_ORACLE,
    TA_ML_WIDE,
    VariantDef,
)

# Each layer against the variant below it: (lower, upper, what the difference measures).
LAYER_STEPS: tuple[tuple[VariantDef, VariantDef, str], ...] = (
    (TA, TA_ML, "The ML layer"),
    (TA_ML, TA_ML_WIDE, "Widening the ML layer's candidates"),
    (TA_ML, TA_ML_ORACLE, "The oracle (heuristic)"),
    (TA_ML, TA_ML_LLM, "The oracle (LLM journal)"),
    (MOM, MOM_TOP3, "The top-3 gate on momentum"),
    (MOM_TOP3, MOM_TOP3_ML, "The ML layer on momentum"),
    (MOM_TOP3_ML, MOM_TOP3_ML_ORACLE, "The oracle on momentum"),
    (TA_ML_ORACLE, MOM_TOP3_ML_ORACLE, "Momentum instead of oversold recovery (full packs)"),
)


def verdicts(table: pd.DataFrame, curves: dict[str, pd.Series]) -> list[str]:
    """Plain statements from the numbers: does each layer improve on the one below? Each
    difference carries its bootstrap 90 % interval; spanning zero means "inconclusive"."""
    rows = table.set_index("variant")
    said = []
    steps = [(lower.name, upper.name, layer) for lower, upper, layer in LAYER_STEPS]
    steps += [(name, full.name, f"The full pack ({full.name}) against the {name}")
              for name in rows.index if name.startswith(BASELINE)
              for family in bar.FAMILIES
              for full in family.full[-1:] if full.name in rows.index]
    for lower, upper, layer in steps:
        if lower not in rows.index or upper not in rows.index:
            continue
        a, b = rows.loc[lower], rows.loc[upper]
        diff = rm.compare(curves[lower], curves[upper])
        calls = {"return": rm.call(diff["return"], "higher"),
                 "drawdown": rm.call(diff["drawdown"], "lower"),
                 "Sharpe": rm.call(diff["sharpe"], "higher")}
        parts = []
        for (name, (point, low, high)), unit in zip(diff.items(), ("%", "pp", ""), strict=True):
            scale = 1 if name == "sharpe" else 100
            parts.append(f"{name} {point * scale:+.2f}{unit} [{low * scale:+.2f}, "
                         f"{high * scale:+.2f}] {calls[name.replace('sharpe', 'Sharpe')]}")
        if all(c == "inconclusive" for c in calls.values()):
            verdict = "makes no difference the data can tell (inconclusive)"
        else:
            verdict = "; ".join(f"{k} {v}" for k, v in calls.items() if v != "inconclusive")
        said.append(
            f"{layer}: {verdict}. {upper} vs {lower} (daily mark-to-market, 90 % block "
            f"bootstrap): {'; '.join(parts)}. {upper} {b['total_return'] * 100:+.2f} %, "
            f"{b['trades']:.0f} trades, exposure {b['exposure'] * 100:.1f} %; {lower} "
            f"{a['total_return'] * 100:+.2f} %, {a['trades']:.0f} trades, exposure "
            f"{a['exposure'] * 100:.1f} %.")
    return said


def probe_line(probe: dict[str, float]) -> str:
    """The memorisation probe's verdict: do masked and unmasked decisions differ?"""
    n = int(probe["sessions"])
    if n == 0:
        return "Memorisation probe: no session answered both masked and unmasked."
    same, apart = probe["same_risk_level"], probe["mean_abs_exposure_diff"]
    verdict = ("The decisions do not depend on names, dates or price levels here."
               if same == 1.0 and apart == 0 and probe["mean_focus_jaccard"] == 1.0 else
               "The decisions differ: they depend on what masking hides (names, dates, price "
               "levels: possibly memory of the period, possibly mere wording; `make llm-eval "
               "LLM_EVAL_ARGS=--probe` sets this beside two maskings with different aliases). "
               "Prefer the masked journal for backtests.")
    return (f"Memorisation probe ({n} sessions asked unmasked and masked: pairs renamed, "
            f"dates and price levels hidden): the same risk level in {same:.0%}, exposure "
            f"caps {apart:.2f} apart on average, focus overlap "
            f"{probe['mean_focus_jaccard']:.2f}. {verdict}")


def layout_lines(answers: pd.DataFrame) -> list[str]:
    """A verdict per oracle variant of the "Who answered" table whose decisions follow the
    prompt's layout (``lab.journal_stats.layout_verdict``): its focus names the first pairs
    listed, not the best ones."""
    said = []
    for row in answers.to_dict(orient="records"):
        if row.get("layout") == "follows the layout":
            said.append(f"The {row['variant']} oracle's decisions follow the prompt's layout, "
                        f"not the market: {row['position_bias']:.0%} of its focus pairs were "
                        f"the first ones the prompt listed (an order-blind choice: "
                        f"{row['position_chance']:.0%}). Its focus steers nothing.")
    return said


def momentum_ml_line(scores: dict[str, float]) -> str:
    """The momentum family's own models, out of sample (``ml_quality``'s pooled scores)."""
    return (f"The momentum family's own ML models ({bar.FAMILIES[1].ml.name}), out of "
            f"sample: AUC {scores.get('model_auc', np.nan):.3f}, Brier skill "
            f"{scores.get('model_brier_skill', np.nan):+.4f}, rank IC "
            f"{scores.get('rank_ic', np.nan):+.3f} "
            f"[{scores.get('rank_ic_low', np.nan):+.3f}"
            f", {scores.get('rank_ic_high', np.nan):+.3f}].")


def holes_line(holes: Holes) -> str:
    """How many holes the candle files have inside the range, and how many paused a pair."""
    found = holes.found
    return (f"{len(found)} holes in the candle files of {found['pair'].nunique()} "
            f"pairs inside the range ({int(found['missing'].sum())} candles in all; "
            f"listed under 'Data holes'); {len(holes.pauses)} of a day or more paused their "
            f"pair around them in every variant: not bridged, see there how.")


def late_line(walk_forward: pd.Series, frozen: pd.Series, since: pd.Timestamp,
              auc: dict[str, float], retrain_days: int) -> str:
    """The frozen-model check: the two late rows (``rm.variant_row``), the late span's start
    and the out-of-sample AUC of each (``walk-forward``, ``frozen``) over it."""
    wf, fr = walk_forward, frozen
    return (f"Frozen models (trained before {since:%Y-%m-%d}, never retrained) "
            f"{fr['total_return'] * 100:+.2f} % / {fr['trades']:.0f} trades vs "
            f"walk-forward retraining every {retrain_days} days "
            f"{wf['total_return'] * 100:+.2f} % / "
            f"{wf['trades']:.0f} trades over the same weeks; out-of-sample AUC "
            f"{auc['frozen']:.3f} frozen vs {auc['walk-forward']:.3f} "
            f"retrained.")


def statements(table: pd.DataFrame, curves: dict[str, pd.Series], accepted: pd.DataFrame,
               family_ml: dict[str, dict[str, float]], baseline: rm.Run, start: pd.Timestamp,
               holes: Holes, probe: dict[str, float] | None,
               answers: pd.DataFrame) -> list[str]:
    """The report's verdict, in order: the acceptance bar per family, each layer against the
    one below (``verdicts``), the momentum models' scores, a late-starting baseline, the data
    holes, the memorisation probe and any oracle that follows the prompt's layout."""
    said = verdicts(table, curves)
    for i, (name, rows) in enumerate(accepted.groupby("family", sort=False)):
        said.insert(i, (f"{name}: " if i else "") + bar.overall(rows))
    if (mom_ml := family_ml.get(bar.FAMILIES[1].name)) is not None:
        said.append(momentum_ml_line(mom_ml))
    if baseline.start > start + pd.Timedelta(days=1):
        said.append(f"The {baseline.name} trades only from {baseline.start:%Y-%m-%d}: its "
                    f"moving average needs that many days of candles before it means anything "
                    f"(--baseline-sma-days shortens it for short data).")
    if not holes.found.empty:
        said.append(holes_line(holes))
    if probe is not None:
        said.append(probe_line(probe))
    said += layout_lines(answers)
    return said
