"""Run a Python program on the fast replay clock of ``local_exchange serve --speed``.

    python -m local_exchange.fastclock --data-start MS --anchor MS --speed 60 \\
        freqtrade trade -c config.json ...

``time.time()``, ``datetime.now()`` and friends (patched in C by ``time-machine``) return
the exchange's data time, which runs ``speed`` times faster than the wall clock from
``--anchor``; ``time.sleep`` sleeps ``speed`` times shorter. To the program, a day of 5m
candles passes in 24 h / speed while every interval, throttle and timeout keeps its
meaning. ``time.monotonic()`` and ``threading.Event.wait`` stay real (asyncio and network
timeouts keep working). Used by ``make live --speed``; never in backtests.
"""

from __future__ import annotations

import argparse
import runpy
import sys
import time

import time_machine

from local_exchange.clock import scaled_now_ms


def install(data_start_ms: int, anchor_wall_ms: int, speed: float) -> None:
    """Patch this process's clock; lasts until the process ends."""
    if speed <= 0:
        raise ValueError("speed must be > 0")
    real_time_ns = time_machine.escape_hatch.time.time_ns  # the wall clock, unpatched
    real_sleep = time.sleep
    traveller = time_machine.travel(data_start_ms / 1000, tick=False).start()

    def fast_time_ns() -> int:
        wall_ms = real_time_ns() / 1e6
        return int(scaled_now_ms(data_start_ms, anchor_wall_ms, speed, wall_ms) * 1_000_000)

    traveller.time_ns = fast_time_ns  # time-machine asks the traveller for every reading

    def fast_sleep(seconds: float) -> None:
        real_sleep(max(0.0, seconds) / speed)

    time.sleep = fast_sleep


def stretch_api_tokens(speed: float) -> None:
    """freqtrade's REST API tokens expire after 15 clock minutes (30 days for refresh
    tokens): at 300x that is 3 real seconds, and FreqUI drowns in 401s. Issue them with
    lifetimes ``speed`` times longer on the fast clock, i.e. the usual lifetimes in real
    time."""
    from freqtrade.rpc.api_server import api_auth

    original = api_auth.create_token

    def create_token(data: dict, secret_key: str, token_type: str = "access") -> str:
        token = original(data, secret_key, token_type)
        claims = api_auth.jwt.decode(token, secret_key, algorithms=[api_auth.ALGORITHM],
                                     options={"verify_exp": False})
        claims["exp"] = claims["iat"] + (claims["exp"] - claims["iat"]) * speed
        return api_auth.jwt.encode(claims, secret_key, algorithm=api_auth.ALGORITHM)

    api_auth.create_token = create_token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_exchange.fastclock",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-start", type=int, required=True, metavar="MS",
                        help="data time (epoch ms) shown at the anchor")
    parser.add_argument("--anchor", type=int, required=True, metavar="WALL_MS",
                        help="wall time (epoch ms) of --data-start")
    parser.add_argument("--speed", type=float, required=True)
    parser.add_argument("module", help="the Python module to run, e.g. freqtrade")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    install(args.data_start, args.anchor, args.speed)
    if args.module == "freqtrade":
        stretch_api_tokens(args.speed)
    sys.argv = [args.module, *args.args]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
