"""The benchmark's world: planned event arrivals with ground truth, clocks, simulators and child processes.

Nothing here measures; `run_bench.py` does. Everything random is seeded.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import subprocess
import sys
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
for folder in (ROOT, BENCH_DIR):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from simulator import ManualClock, SimConfig, Simulator  # noqa: E402  (needs ROOT on sys.path first)
from simulator.clock import format_ms, to_ms  # noqa: E402

NAIVE_PAGE_SIZE = 100  # the API's default page size, which the naive fetch gets since it asks for no limit
T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)  # the benchmark's "now" wherever the clock is simulated
MINUTE_MS = 60_000

_HOSTS = ["vpn-gw-1", "vpn-gw-2", "web-01", "web-02", "db-01", "mail-01", "fs-03", "laptop-4821"]
_KINDS = [
    ("Authentication", "Suspicious login from {ip}", ["vpn", "brute-force"], "Five failed logins then a success."),
    ("Malware", "Malware detected on {host}", ["edr", "malware"], "The endpoint agent quarantined a file."),
    ("Network", "Port scan from {ip}", ["ids", "network"], "Repeated connections matching a known pattern."),
    ("Policy", "Unapproved software on {host}", ["policy"], "A configuration rule did not pass."),
]
_SEVERITIES = ["low", "medium", "high", "critical"]
_SEVERITY_WEIGHTS = [40, 35, 18, 7]


def parse_api_time_ms(text: str) -> int:
    """An API time (`2026-11-26T06:00:00.123Z`) as milliseconds since the epoch."""
    return to_ms(datetime.fromisoformat(text))


class SettableClock:
    """A simulator clock the benchmark sets to any time, backwards too, so that one simulator filled with a
    planned scenario replays it for several fetch configurations. Safe only without generated traffic or
    scheduled status changes (the planned scenarios have neither)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment


@dataclass(frozen=True)
class Planned:
    """One planned event and when it becomes visible: the ground truth the fetches are checked against."""

    created_ms: int
    event_id: str
    visible_ms: int

    @property
    def key(self) -> tuple[int, str]:
        return (self.created_ms, self.event_id)


@dataclass(frozen=True)
class Arrivals:
    """A steady source: Poisson arrivals, some of them bursts sharing one millisecond, some visible late."""

    events_per_day: float
    tie_probability: float = 0.005  # as the simulator's realistic profile
    tie_size: int = 120
    late_fraction: float = 0.05
    max_delay_seconds: float = 240.0  # inside the default look-back of 5 minutes


class PlannedWorld:
    """A simulator holding a planned scenario, with its ground truth sorted in listing order."""

    def __init__(self, arrivals: Arrivals, start: datetime, minutes: int, seed: int) -> None:
        self.arrivals = arrivals
        self.clock = SettableClock(start)
        self.sim = Simulator(SimConfig(request_log_limit=1_000), seed=seed, clock=self.clock)
        self.plan = plan_arrivals(arrivals, to_ms(start), to_ms(start) + minutes * MINUTE_MS, random.Random(seed))
        rng = random.Random(seed + 1)
        for item in self.plan:
            self.sim.add_event(format_ms(item.created_ms), id=item.event_id,
                               delay_seconds=(item.visible_ms - item.created_ms) / 1000, **event_fields(rng))
        self.last_visible_ms = max((item.visible_ms for item in self.plan), default=to_ms(start))

    def __enter__(self) -> PlannedWorld:
        self.sim.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sim.stop()

    def visible_ids(self, now_ms: int) -> set[str]:
        return {item.event_id for item in self.plan if item.visible_ms <= now_ms}


def plan_arrivals(arrivals: Arrivals, start_ms: int, end_ms: int, rng: random.Random) -> list[Planned]:
    """Events created in [start_ms, end_ms), sorted by (created_time, id); ids follow creation order."""
    mean_burst = 1 + arrivals.tie_probability * (arrivals.tie_size - 1)
    bursts_per_ms = arrivals.events_per_day / mean_burst / 86_400_000
    plan: list[Planned] = []
    moment = float(start_ms)
    while True:
        moment += rng.expovariate(bursts_per_ms)
        created_ms = int(moment)
        if created_ms >= end_ms:
            break
        size = arrivals.tie_size if rng.random() < arrivals.tie_probability else 1
        for _ in range(size):
            delay_ms = 0
            if rng.random() < arrivals.late_fraction:
                delay_ms = int(rng.uniform(0, arrivals.max_delay_seconds) * 1000)
            plan.append(Planned(created_ms, f"evt-{len(plan) + 1:07d}", created_ms + delay_ms))
    return plan


def event_fields(rng: random.Random) -> dict[str, Any]:
    """The body of a plausible event (besides id, created_time and status)."""
    kind, name, tags, description = rng.choice(_KINDS)
    host = rng.choice(_HOSTS)
    ip = f"203.0.113.{rng.randint(1, 254)}"
    return {
        "name": name.format(ip=ip, host=host),
        "severity": rng.choices(_SEVERITIES, weights=_SEVERITY_WEIGHTS)[0],
        "type": kind,
        "description": description,
        "source": {"host": host, "ip": ip},
        "tags": tags,
    }


# ---------------------------------------------------------------------------------------------------------
# A simulator in another process, so that its CPU is not counted as the client's
# ---------------------------------------------------------------------------------------------------------

EVENT_SOURCE = "event_source"  # the Event Source API itself, beside the dialects of simulator/dialects


def source_truth(sim: Simulator, source: str) -> list[tuple[int, str, int]]:
    """(created ms, id as the source shows it, visible-from ms) of every stored event, in store order."""
    rows = []
    for truth in sim.truth():
        store_id = truth.id
        item_id = store_id if source == EVENT_SOURCE else sim.dialects.item_id(source, store_id)
        rows.append((to_ms(truth.created_time), item_id, to_ms(truth.visible_at)))
    return rows


def _serve(config: dict[str, Any], seed: int, start: datetime, connection: Connection) -> None:
    sim = Simulator(SimConfig(**config), seed=seed, clock=ManualClock(start)).start()
    try:
        connection.send((sim.url, sim.api_key))
        while True:  # commands until "stop" or the benchmark closing its end
            command, argument = connection.recv()
            if command == "stop":
                break
            if command == "params":
                connection.send(sim.dialects.instance_params(argument))
            elif command == "truth":
                connection.send(source_truth(sim, argument))
            elif command == "stats":
                connection.send(sim.stats())
            else:
                connection.send(None)
    except EOFError:
        pass
    finally:
        sim.stop()


class SimulatorProcess:
    """A simulator serving from a separate process (ManualClock at `start`), asked over a pipe for the instance
    parameters of a source, its ground truth and its request counters."""

    def __init__(self, config: dict[str, Any], seed: int, start: datetime) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(config, seed, start, theirs), daemon=True)
        self._process.start()
        if not self._connection.poll(120):
            self.close()
            raise RuntimeError("the simulator process did not start")
        self.url, self.api_key = self._connection.recv()

    def _ask(self, command: str, argument: Any = None) -> Any:
        self._connection.send((command, argument))
        return self._connection.recv()

    def instance_params(self, source: str) -> dict[str, Any]:
        return dict(self._ask("params", source))

    def truth(self, source: str) -> list[tuple[int, str, int]]:
        return list(self._ask("truth", source))

    def stats(self) -> dict[str, Any]:
        return dict(self._ask("stats"))

    def close(self) -> None:
        with suppress(OSError):
            self._connection.send(("stop", None))
        self._process.join(30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------------------
# One command in a fresh process, with its own resource use
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildUsage:
    exit_code: int
    wall_seconds: float
    cpu_seconds: float
    max_rss_kib: int
    output: str


def run_child(command: list[str], output: Path) -> ChildUsage:
    """Runs `command` from the small launcher `child_rusage.py`, so that its peak RSS is its own."""
    launcher = [sys.executable, "-S", str(BENCH_DIR / "child_rusage.py"), str(output)]
    done = subprocess.run(launcher + command, capture_output=True, text=True, check=True, timeout=600)
    usage = json.loads(done.stdout)
    return ChildUsage(usage["exit_code"], usage["wall_seconds"], usage["cpu_seconds"], usage["max_rss_kib"],
                      output.read_text(encoding="utf-8", errors="replace"))


def at_minute(start: datetime, minute: int) -> datetime:
    return start + timedelta(minutes=minute)
