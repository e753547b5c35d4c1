"""``make bench``: run every benchmark, print one table, write user_data/bench/latest.json."""

from __future__ import annotations

import argparse
import time

from bench import (
    core_speed,
    cost_curve,
    live_footprint,
    ml_inference,
    oracle_speed,
    strategy_speed,
)
from bench.common import Results

BENCHMARKS = {
    "strategy": strategy_speed.run,
    "core": core_speed.run,
    "ml": ml_inference.run,
    "oracle": oracle_speed.run,
    "live": live_footprint.run,
    "cost": cost_curve.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", choices=sorted(BENCHMARKS), nargs="*")
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier)")
    args = parser.parse_args()
    results = Results()
    for name, bench in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        bench(results, quick=args.quick)
        print(f"bench {name}: {time.perf_counter() - start:.1f}s", flush=True)
    results.print_table()
    print(f"\nwritten to {results.save()}")


if __name__ == "__main__":
    main()
