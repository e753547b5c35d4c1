"""Packaged local models measured as the oracle uses them, and the memorisation probe.

``python -m lab.llm_eval --models smollm2-135m qwen2.5-coder-0.5b`` starts each model behind
llama.cpp's server (``python -m llm_oracle model serve``'s command), asks it the oracle's
real sessions on the shared candles (point-in-time contexts, 12:00 UTC, spread over the
data) and reports per model: the valid-answer rate, the clamp rate (answers validation had
to bring inside the limits), stability at temperature 0 (the same session asked twice),
latency and output tokens, and how varied the answers are (a model that always says the
same thing steers nothing). ``--probe`` adds, per session, two masked prompts with
different aliases (``llm_oracle.masking``): unmasked vs masked agreement beside masked vs
masked agreement (what a mere rewording changes) is the memorisation probe.

Order sensitivity (on unless ``--no-order``): every session is asked once more with the pairs
listed in another seeded order (``llm_oracle.prompt_order_seed``); ``order_sensitivity``
reports how much of the decision the layout alone changes (focus overlap, risk level and
exposure changes) and the position bias (the share of focus pairs that were the first ones
listed, beside chance). A model that reads the data changes nothing; one that reads the
layout names the first pairs whatever they are.

Figures go to stdout and ``user_data/llm-eval/<model>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lab.journal_stats import agreement, layout_verdict, position_bias
from lab.project import CONFIG, DEFAULT_DATADIR, load_config, whitelist
from llm_oracle import local_model as lm
from llm_oracle.context import MarketView, load_news
from llm_oracle.oracle import Oracle
from llm_oracle.schema import OracleDecision
from llm_oracle.settings import load_oracle_settings

OUT = Path("user_data/llm-eval")


def session_times(view: MarketView, n: int) -> list[datetime]:
    """``n`` sessions at 12:00 UTC, evenly spread from 35 days after the data start (the
    context needs a month of candles) to its end."""
    if not view.frames:
        raise RuntimeError(f"no 1h candles in {view.datadir}: pass --datadir (make llm-eval "
                           "passes the shared candles)")
    starts = [f["date"].iloc[0] for f in view.frames.values()]
    ends = [f["date"].iloc[-1] for f in view.frames.values()]
    first = (max(starts) + timedelta(days=35)).to_pydatetime()
    last = (min(ends) - timedelta(days=1)).to_pydatetime()
    step = (last - first) / max(1, n - 1)
    return [(first + i * step).replace(hour=12, minute=0, second=0, microsecond=0,
                                       tzinfo=UTC) for i in range(n)]


def same(a: OracleDecision, b: OracleDecision) -> bool:
    """The same decision (what steers the bot), reasoning aside."""
    keys = ("status", "risk_level", "focus_pairs", "max_exposure", "max_position",
            "overnight_target")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


# The second order ``order_sensitivity`` asks each session in (the first: the configured seed).
OTHER_ORDER_SEED = "llm-eval-reordered"


def order_sensitivity(a: list[OracleDecision],
                      b: list[OracleDecision]) -> dict[str, float | int | str | None]:
    """The same sessions asked with the pairs listed in two orders (``a[i]``, ``b[i]``: one
    session each): what the layout alone changes.

    Usable on both sides only: ``sessions``, ``mean_focus_jaccard`` (1: the same focus
    whatever the order), ``risk_level_changed`` and ``mean_abs_exposure_diff`` (shares and
    mean of the pairs of decisions); over both orders' decisions, ``position_bias`` and
    ``position_chance`` (``lab.journal_stats.position_bias``: the share of focus pairs that
    were the first ones listed, and what an order-blind choice gets) and ``layout``
    (``layout_verdict``). Shape: a flat dict of those keys (``{"sessions": 0}`` when no
    session is usable on both sides).
    """
    same = agreement(a, b)
    if not same["sessions"]:
        return {"sessions": 0}
    both = [d for x, y in zip(a, b, strict=True) if x.usable and y.usable for d in (x, y)]
    bias = position_bias(both)
    return {
        "sessions": same["sessions"],
        "mean_focus_jaccard": same["mean_focus_jaccard"],
        "risk_level_changed": 1.0 - same["same_risk_level"],
        "mean_abs_exposure_diff": same["mean_abs_exposure_diff"],
        "position_bias": bias["share"],
        "position_chance": bias["chance"],
        "layout": layout_verdict(bias),
    }


@dataclass
class Server:
    """One model behind llama.cpp's server, for the duration of a ``with``."""

    name: str
    port: int
    threads: int

    def __enter__(self) -> Server:
        command = lm.prepare_serve(self.name, None, self.port, self.threads, lm.DEFAULT_CTX,
                                   OUT / f"overlay-{self.name}.json", 600.0)
        self.log = (OUT / f"server-{self.name}.log").open("w")
        # The server dies with this process, even when it is killed before __exit__.
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=lm.die_with_parent)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server for {self.name} exited; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/models",
                                            timeout=2):
                    return self
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"the server for {self.name} did not answer within 300 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def oracle_for(name: str, port: int, datadir: Path, out: Path, **changes: Any) -> Oracle:
    config = load_config([CONFIG])
    universe = whitelist(config)
    section = {**config["llm_oracle"], **lm.overlay(name, port, 600.0)["llm_oracle"],
               "output_dir": out, **changes}
    settings = load_oracle_settings({**config, "llm_oracle": section})
    return Oracle(settings, universe, MarketView(datadir, universe), load_news(None))


def evaluate(name: str, datadir: Path, n: int, port: int, threads: int,
             probe: bool, order: bool = True) -> dict[str, Any]:
    with Server(name, port, threads):
        oracle = oracle_for(name, port, datadir, OUT / name)
        times = session_times(oracle.view, n)
        first, second = [], []
        for at in times:
            first.append(oracle.decide(at, "eval"))
            second.append(oracle.decide(at, "eval"))
            print(f"{name} {at:%Y-%m-%d}: {first[-1].status} {first[-1].risk_level.value} "
                  f"{first[-1].latency_s:.1f}s", flush=True)
        reordered: list[OracleDecision] = []
        if order:  # the same sessions, the pairs listed in another order
            other = oracle_for(name, port, datadir, OUT / f"{name}-reordered",
                               prompt_order="shuffled", prompt_order_seed=OTHER_ORDER_SEED)
            reordered = [other.decide(at, "eval") for at in times]
        masked: dict[str, list[OracleDecision]] = {}
        if probe:
            for seed in ("a", "b"):
                masked_oracle = oracle_for(name, port, datadir, OUT / f"{name}-masked-{seed}",
                                           masked=True, mask_seed=seed)
                masked[seed] = [masked_oracle.decide(at, "eval") for at in times]
    runs = first + second
    ok = [d for d in runs if d.usable]
    result: dict[str, Any] = {
        "model": name, "sessions": len(times), "calls": len(runs),
        "session_times": [t.isoformat() for t in times],
        "valid_rate": len(ok) / len(runs),
        "clamp_rate": (sum("clamped" in (d.notes or "") for d in ok) / len(ok)) if ok else None,
        "stable_rate": sum(same(a, b) for a, b in zip(first, second, strict=True)) / len(times),
        "latency_s_median": statistics.median(d.latency_s for d in runs),
        "latency_s_max": max(d.latency_s for d in runs),
        "tokens_out_median": statistics.median(d.tokens_out for d in runs),
        "risk_levels": sorted({d.risk_level.value for d in ok}),
        "mean_focus_pairs": statistics.fmean(len(d.focus_pairs) for d in ok) if ok else None,
        "rejections": [d.rejected_reason for d in runs if not d.usable],
        "cost_usd": sum(d.cost_usd for d in runs),
    }
    if order:
        result["order_sensitivity"] = order_sensitivity(first, reordered)
    if probe:
        result["probe"] = {"unmasked_vs_masked": agreement(first, masked["a"]),
                           "masked_vs_masked_other_aliases": agreement(masked["a"],
                                                                       masked["b"])}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.llm_eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(lm.PACKAGED))
    parser.add_argument("--datadir", type=Path, default=DEFAULT_DATADIR)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--port", type=int, default=lm.DEFAULT_PORT + 1)
    parser.add_argument("--threads", type=int, default=lm.DEFAULT_THREADS)
    parser.add_argument("--probe", action="store_true",
                        help="also ask each session masked, twice (two alias sets)")
    parser.add_argument("--no-order", action="store_true",
                        help="skip the order-sensitivity figure (each session asked once "
                             "more with the pairs listed in another order)")
    args = parser.parse_args(argv)
    for name in args.models:
        try:
            result = evaluate(name, args.datadir, args.sessions, args.port, args.threads,
                              args.probe, not args.no_order)
        except (lm.LocalModelError, RuntimeError) as exc:
            print(f"llm_eval: {name}: {exc}")
            continue
        print(json.dumps({k: v for k, v in result.items() if k != "session_times"},
                         indent=2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
