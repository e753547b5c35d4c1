"""What a report runs and what its run left behind, both saved in its folder.

``ReportPlan`` (``plan.json``): the pairs, the range, the data, the user's config overlays, the
journals, the frozen-model span and the baseline's moving average; the variants follow from it
(``ReportPlan.variants``). ``RunRecord`` (``run.json``): what only the run itself knows, its wall
times and freqtrade's lookahead- and recursive-analysis output. Every figure of the report is
computed from these two and the files the run left under ``<out>/work`` (freqtrade's results per
variant in ``work/runs/<slug>``, FreqAI's models and predictions in ``work/models``, the oracle's
journal in ``work/oracle``), so ``python -m lab.report --from-run <out>`` recomputes them
without running freqtrade again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import ablation
from lab.ablation import Variant
from lab.project import PACK_CONFIGS, load_config

PLAN_FILE = "plan.json"
RUN_FILE = "run.json"


class RunDirError(RuntimeError):
    """A folder that does not hold a finished report run; the message says what is missing."""


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


@dataclass
class ReportPlan:
    """One report: ``out`` (its folder; freqtrade's files under ``out/work``), ``datadir``
    (the candles), ``timerange`` (``YYYYMMDD-YYYYMMDD``), ``pairs``, ``configs`` (overlays on
    top of config.json for every variant), the LLM journals (None: not given), ``late_weeks``
    (the frozen-model check's span), ``baseline_sma_days`` (None: the textbook 200) and
    whether freqtrade's lookahead- and recursive-analysis run."""

    out: Path
    datadir: Path
    timerange: str
    pairs: list[str]
    configs: tuple[Path, ...] = ()
    llm_journal: Path | None = None
    llm_masked_journal: Path | None = None
    late_weeks: int = 8
    baseline_sma_days: int | None = None
    analyses: bool = True

    @property
    def workdir(self) -> Path:
        """freqtrade's user dir for every variant (results, models, the oracle's journal)."""
        return self.out / "work"

    @property
    def journal(self) -> Path:
        """The heuristic oracle's journal (backfilled point-in-time before the backtests)."""
        return self.workdir / "oracle" / "journal.jsonl"

    @property
    def models_dir(self) -> Path:
        return self.workdir / "models"

    @property
    def pauses_file(self) -> Path:
        """The pair-pauses overlay (written only when a pair is paused)."""
        return self.workdir / "pauses.json"

    def config(self) -> dict[str, Any]:
        """config.json with the plan's overlays, validated (``DemoError`` otherwise)."""
        return load_config([*PACK_CONFIGS, *self.configs])

    def variants(self) -> list[Variant]:
        """Every variant, in the order they run: the ablation's (``lab.variants``), then the
        trend baseline."""
        variants = ablation.plan(self.timerange, self.journal, self.llm_journal,
                                 self.models_dir, self.late_weeks, self.configs)
        variants.append(ablation.trend_baseline(self.timerange, self.pairs,
                                                self.baseline_sma_days))
        return variants

    def to_json(self) -> dict[str, Any]:
        """The plan as saved: paths absolute (as this process resolved them)."""
        opt = {k: None if v is None else str(v.resolve()) for k, v in (
            ("llm_journal", self.llm_journal), ("llm_masked_journal", self.llm_masked_journal))}
        return {"datadir": str(self.datadir.resolve()), "timerange": self.timerange,
                "pairs": self.pairs, "configs": [str(c.resolve()) for c in self.configs], **opt,
                "late_weeks": self.late_weeks, "baseline_sma_days": self.baseline_sma_days,
                "analyses": self.analyses}

    def save(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / PLAN_FILE
        path.write_text(json.dumps(self.to_json(), indent=2))
        return path

    @classmethod
    def load(cls, out: Path) -> ReportPlan:
        """The plan saved in ``out`` (``RunDirError`` when there is none)."""
        try:
            raw = json.loads((out / PLAN_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{out}: no readable {PLAN_FILE} ({exc})") from exc
        return cls(out, Path(raw["datadir"]), raw["timerange"], list(raw["pairs"]),
                   tuple(Path(c) for c in raw["configs"]), _path(raw["llm_journal"]),
                   _path(raw["llm_masked_journal"]), int(raw["late_weeks"]),
                   raw["baseline_sma_days"], bool(raw["analyses"]))


@dataclass
class RunRecord:
    """What a finished run knows beyond its files: ``wall_s`` (seconds from the start of the
    report to the end of its backtests and analyses), ``variant_walls`` (seconds per
    variant's backtest, by name) and ``analyses`` (freqtrade's lookahead- and
    recursive-analysis tables by tool; {}: skipped). None: not recorded (a run made before
    ``run.json`` existed)."""

    wall_s: float | None = None
    variant_walls: dict[str, float] = field(default_factory=dict)
    analyses: dict[str, str] | None = None

    def save(self, out: Path) -> Path:
        path = out / RUN_FILE
        path.write_text(json.dumps({"wall_s": self.wall_s, "variant_walls": self.variant_walls,
                                    "analyses": self.analyses}, indent=2, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, out: Path) -> RunRecord:
        """The record saved in ``out``; an empty one (nothing known) where there is none."""
        path = out / RUN_FILE
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls(raw["wall_s"], dict(raw["variant_walls"]), raw["analyses"])


def finished_variants(plan: ReportPlan, record: RunRecord) -> list[Variant]:
    """The plan's variants with their saved results (``result_dir``) and wall times;
    ``RunDirError`` when one has no freqtrade results in ``plan.workdir``."""
    variants = plan.variants()
    for v in variants:
        result_dir = ablation.variant_dir(plan.workdir, v.name)
        if not (result_dir / ".last_result.json").exists():
            raise RunDirError(f"{result_dir}: no freqtrade results of the variant {v.name!r} "
                              f"(was {plan.out} made by a finished report with these "
                              "arguments?)")
        v.result_dir = result_dir
        v.wall_s = record.variant_walls.get(v.name, 0.0)
    return variants
