"""Command line: serve the simulated Event Source until SIGINT/SIGTERM.

Prints one JSON line ``{"url": ..., "api_key": ...}`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from .clock import Clock, ManualClock, RealClock
from .config import SimConfig
from .server import Simulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 lets the OS choose (default)")
    parser.add_argument("--profile", choices=["quiet", "realistic"], default="realistic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--api-key", default=None, help="API key to require (default: random)")
    clock = parser.add_mutually_exclusive_group()
    clock.add_argument(
        "--real-clock", dest="real_clock", action="store_true", default=True, help="follow wall time (default)"
    )
    clock.add_argument(
        "--manual-clock", dest="real_clock", action="store_false", help="time moves only through POST /_sim/advance"
    )
    parser.add_argument("--backlog", type=int, default=None, help="override the profile's backlog")
    parser.add_argument("--rate", type=float, default=None, help="override the profile's events per second")
    parser.add_argument("--no-faults", action="store_true", help="disable the profile's fault probabilities")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = SimConfig.profile(args.profile)
    if args.backlog is not None:
        config.backlog = args.backlog
    if args.rate is not None:
        config.rate_per_second = args.rate
    if args.no_faults:
        config.fault_probabilities = {}
    try:
        config.validate()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    clock: Clock = RealClock() if args.real_clock else ManualClock()
    try:
        sim = Simulator(config, seed=args.seed, clock=clock, api_key=args.api_key, host=args.host, port=args.port)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sim.start()
    try:
        print(json.dumps({"url": sim.url, "api_key": sim.api_key}), flush=True)
        while not done.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
