"""Figures of the benchmarks: each with the baseline measured in the same run and the ratio.

Results print as one table and merge into ``user_data/bench/latest.json`` as
``{"name": {"value": v, "unit": u, "baseline": b, "ratio": r}}`` (ratio = value / baseline).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.project import REPO, shared_data

LATEST = REPO / "user_data" / "bench" / "latest.json"


@dataclass
class Figure:
    value: float
    unit: str
    baseline: float | None
    ratio: float | None
    note: str = ""


class Results:
    def __init__(self) -> None:
        self.figures: dict[str, Figure] = {}

    def add(self, name: str, value: float, unit: str, baseline: float | None = None,
            note: str = "") -> None:
        ratio = value / baseline if baseline else None
        self.figures[name] = Figure(value, unit, baseline, ratio, note)

    def print_table(self) -> None:
        width = max((len(n) for n in self.figures), default=10)
        print(f"\n{'figure':<{width}}  {'value':>12}  {'baseline':>12}  {'ratio':>7}  unit / note")
        for name, f in self.figures.items():
            base = f"{f.baseline:12.4g}" if f.baseline is not None else " " * 12
            ratio = f"{f.ratio:7.3g}" if f.ratio is not None else " " * 7
            print(f"{name:<{width}}  {f.value:12.4g}  {base}  {ratio}  {f.unit}"
                  + (f"  ({f.note})" if f.note else ""))

    def save(self, path: Path = LATEST) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged.update({k: asdict(v) for k, v in self.figures.items()})
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(merged, indent=2) + "\n")
        os.replace(tmp, path)
        return path


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 0) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def candles_or_synthetic(tmp: Path, days: int) -> tuple[Path, bool]:
    """The shared real candles when present, else a seeded synthetic market in ``tmp``;
    the flag says which (True: real)."""
    real = shared_data()
    if real is not None:
        return real, True
    from local_exchange.synthetic import write_market

    write_market(tmp / "synthetic", days=days, seed=42)
    return tmp / "synthetic", False


