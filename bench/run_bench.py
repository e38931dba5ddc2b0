"""`make bench`: what a fetch run costs on every source, measured against the simulator on loopback, faults off.

Each source is the integration configured by `instance_params` for the Event Source API or one of the API dialects
of simulator/dialects (Graph, Okta, ServiceNow, PagerDuty, Jira, Custom), all serving the same seeded store.
Prints one report and writes the same figures to bench/results/latest.json:
1. CPU per item of a 1,000-item run, next to the JSON floor (json.loads of the pages + json.dumps of each item);
2. steady state, runs a minute apart at 10^5 items a day, look-back 0 and 5: requests per run and items read per
   incident delivered, each against the fewest the API allows; the naive fetch of the original fetching guide
   (bench/naive_fetch.py) beside it on the Event Source;
3. last-run bytes per remembered id, with each source's own ids and time precision;
4. a backlog of 10^4 drained with max_fetch 200: runs, items read per incident, requests, run time at the start
   and the end of the drain, last-run size over it;
5. one table, figure x source, with the targets of issue 12 and whether each cell meets its target.

    .venv/bin/python bench/run_bench.py [--quick] [--json PATH] [--profile] [--integration PATH] [--sources a,b]

--integration measures another copy of EventFetcher.py (a candidate change) with the same benchmark.
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import gc
import importlib.util
import io
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import demisto_mock  # noqa: E402  (needs ROOT on sys.path first)

sys.modules["demistomock"] = demisto_mock  # before the integration and the baseline import it

import naive_fetch  # noqa: E402
import requests  # noqa: E402
from requests.adapters import BaseAdapter, HTTPAdapter  # noqa: E402
from requests.structures import CaseInsensitiveDict  # noqa: E402
from world import (  # noqa: E402
    EVENT_SOURCE,
    MINUTE_MS,
    NAIVE_PAGE_SIZE,
    T0,
    Arrivals,
    PlannedWorld,
    SimulatorProcess,
    at_minute,
    parse_api_time_ms,
    run_child,
    source_truth,
)

from simulator import SimConfig, Simulator  # noqa: E402
from simulator.clock import from_ms, to_ms  # noqa: E402
from simulator.dialects import DIALECT_NAMES  # noqa: E402

SEED = 20261126
RESULTS = ROOT / "bench" / "results" / "latest.json"
INTEGRATION = ROOT / "Packs" / "EventFetcher" / "Integrations" / "EventFetcher" / "EventFetcher.py"
SOURCES = (EVENT_SOURCE, *DIALECT_NAMES)
TITLES = {EVENT_SOURCE: "Event Source", "graph": "Graph", "okta": "Okta", "servicenow": "ServiceNow",
          "pagerduty": "PagerDuty", "jira": "Jira", "custom": "Custom"}
# Items whose time the API gives in whole seconds (simulator/README.md, "API dialects"); the others in ms or finer
# (Graph's 100 ns are cut to the millisecond by the engine, as by this benchmark).
ITEM_PRECISION_MS = {"servicenow": 1000, "pagerduty": 1000}
# Offset-paged APIs that say in each answer how many items the query holds (ServiceNow's X-Total-Count), so that a
# client can know a listing ended without asking for an empty page; PagerDuty and Custom have a `more` flag.
TELLS_TOTAL = {"servicenow"}
# Runs come a minute apart, this far past the minute: a server's schedule is not aligned on whole minutes, and an
# alignment would flatter or hurt the sources whose queries say times at the minute (Jira).
RUN_OFFSET = timedelta(seconds=23.456)
STEADY_MAX_FETCH = 200
DEFAULT_LOOK_BACK = 5


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full plan is the reference; --quick is a smoke test of the benchmark."""

    cpu_items: int = 1_000
    cpu_repeats: int = 15  # samples of 2 runs each, per source, replayed in process
    http_repeats: int = 3  # samples of 1 run over HTTP (the simulator's answer takes most of their wall time)
    rate: float = 1e5  # items a day in the steady state
    look_backs: tuple[int, ...] = (0, 5)
    warm_up_runs: int = 8
    measured_runs: int = 20
    drain_cap_runs: int = 60  # after the arrivals, runs until all is visible and fetched
    window_sizes: tuple[int, ...] = (1_000, 20_000)
    backlog: int = 10_000
    backlog_max_fetch: int = 200
    process_runs: int = 3  # per source, runs in a fresh process from the state halfway through the drain
    replays: int = 3  # per run of the drain's first and last fifth, replays taking turns, for its time


QUICK = Plan(cpu_repeats=3, http_repeats=1, warm_up_runs=4, measured_runs=6, window_sizes=(1_000,), backlog=2_000,
             process_runs=1, replays=1)


ef: Any = None  # the integration module: load_integration() in main()


def load_integration(path: Path) -> Any:
    """Imports the integration file as the module EventFetcher, as the server and the tests do."""
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("EventFetcher", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["EventFetcher"] = module
    spec.loader.exec_module(module)
    return module


def settings_for(params: dict[str, Any], now: datetime, first_fetch: str, max_fetch: int, look_back: int) -> Any:
    """Settings as the integration parses them; max_fetch set directly, since the CPU figure goes past 200."""
    params = {**params, "isFetch": True, "first_fetch": first_fetch, "max_fetch": "1", "look_back": str(look_back)}
    return replace(ef.parse_settings(params, now), max_fetch=max_fetch)


def api_page_caps() -> dict[str, int]:
    """The most items one request may return, as each API documents it (the simulator's defaults): the page size
    the fewest requests are counted with. ServiceNow has no cap (sysparm_limit defaults to 10,000)."""
    sim = Simulator(SimConfig())
    options = {name: sim.dialects[name].options for name in DIALECT_NAMES}
    return {EVENT_SOURCE: sim.config.max_limit, "graph": options["graph"].max_top, "okta": options["okta"].max_limit,
            "servicenow": options["servicenow"].max_limit or options["servicenow"].default_limit,
            "pagerduty": options["pagerduty"].max_limit, "jira": options["jira"].max_results_with_fields,
            "custom": options["custom"].max_per_page}


def median_cpu(functions: dict[str, tuple[Callable[[], Any], int]], repeats: int) -> dict[str, dict[str, Any]]:
    """CPU seconds of one call of each function: the median of `repeats` samples. Each sample times `batch`
    calls back to back, with the garbage collector on as in a real run; the functions take turns, so that a
    drift of the machine during the measurement touches them all alike."""
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, (function, batch) in functions.items():
            gc.collect()
            started = time.process_time()
            for _ in range(batch):
                function()
            samples[name].append((time.process_time() - started) / batch)
    return {name: {"median": statistics.median(values), "samples": values} for name, values in samples.items()}


def profile_call(function: Callable[[], Any], lines: int = 12) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(function)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(lines)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------
# The fewest reads the API allows, from the ground truth
# ---------------------------------------------------------------------------------------------------------


class SourceTruth:
    """One source's items as its API shows them: time (at the items' precision), id, visible-from; by time."""

    def __init__(self, rows: Iterable[tuple[int, str, int]], precision_ms: int) -> None:
        ordered = sorted((created // precision_ms * precision_ms, item_id, visible) for created, item_id, visible
                         in rows)
        self.times = [row[0] for row in ordered]
        self.ids = [row[1] for row in ordered]
        self.visible = [row[2] for row in ordered]

    def needed(self, start_ms: int, now_ms: int, due_ms: int, end_ms: int, delivered: Counter[str],
               last_ms: int | None, full: bool, oldest_first: bool) -> tuple[int, bool]:
        """(items, read to the end): the fewest items a listing from `start_ms` must return to deliver what a run
        delivered, all the ids in `delivered` being delivered after it. When the run was full (max_fetch new
        items) or a visible item from `start_ms` on is still undelivered, the listing could have stopped at the
        run's last item (`last_ms`, counting the delivered items of that time), or before that undelivered item
        when the run delivered none; else it must read the whole listing, which the query can end no earlier than
        `end_ms`, and learn that it ended. Items due are those before `due_ms` (now + 1 ms, or now less the source's
        settle); `end_ms` is that time put up to the precision of the query's time format (exclusive both). An
        oldest-first listing shows its window ended with the first item past `due_ms`, so it needs no more."""
        low = bisect.bisect_left(self.times, start_ms)
        pending = last_ms if full else None
        for index in range(low, len(self.times) if pending is None else low):
            if self.times[index] >= due_ms:
                break
            if self.visible[index] <= now_ms and self.ids[index] not in delivered:
                pending = self.times[index]
                break
        if pending is None:
            due = bisect.bisect_left(self.times, due_ms)
            high = bisect.bisect_left(self.times, end_ms)
            past = sum(1 for index in range(due, high) if self.visible[index] <= now_ms)
            count = sum(1 for index in range(low, due) if self.visible[index] <= now_ms)
            return count + (min(1, past) if oldest_first else past), True
        end = last_ms if last_ms is not None else pending
        high = bisect.bisect_left(self.times, end)
        count = sum(1 for index in range(low, high) if self.visible[index] <= now_ms)
        if last_ms is not None:
            count += sum(1 for index in range(high, bisect.bisect_right(self.times, end))
                         if self.visible[index] <= now_ms and self.ids[index] in delivered)
        return count, False


def fewest_requests(items: int, read_to_end: bool, cap: int, ends_on_empty_page: bool, token: bool) -> int:
    """Pages of `cap` items; a listing read to its end takes one more (empty) page when only an empty page ends it
    (offset paging with neither a `more` flag nor a total; no source here); the OAuth token when the run needs a
    new one."""
    pages = max(1, math.ceil(items / cap))
    if read_to_end and ends_on_empty_page and items:
        pages = math.ceil(items / cap) + 1
    return pages + (1 if token else 0)


# ---------------------------------------------------------------------------------------------------------
# One instance of the integration on one source, run after run as the server runs it
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Instance:
    """An instance on a source: settings, last run (carried as JSON) and integration context between runs; each
    run measured by the simulator's counters and compared with the fewest reads the API allows."""

    source: str
    look_back: int
    settings: Any
    counters: Callable[[], dict[str, Any]]
    truth: SourceTruth
    cap: int
    last_run: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    delivered: Counter[str] = field(default_factory=Counter)
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def order(self) -> str:
        return str(self.settings.source.order)

    def window_start_ms(self, last_run: dict[str, Any]) -> int:
        """Where a listing must start: the look-back behind the progress the last run records (never before its
        floor), cut to what the query's time format can say."""
        if not last_run:
            start = to_ms(self.settings.first_fetch)
        else:
            progress = max(parse_api_time_ms(last_run["watermark"]), parse_api_time_ms(last_run["listed_until"]))
            start = max(parse_api_time_ms(last_run["floor"][0]), progress - self.look_back * MINUTE_MS)
        unit = self.settings.source.time_format.unit // timedelta(milliseconds=1)
        return start // unit * unit

    def fetch(self, now: datetime) -> dict[str, Any]:
        previous = self.last_run
        before = self.counters()
        runtime = demisto_mock.reset(command="fetch-incidents", integration_context=self.context)
        wall, cpu = time.perf_counter(), time.process_time()
        outcome = ef.fetch_incidents(ef.SourceClient(self.settings), self.settings, previous, now)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        after = self.counters()
        self.context = runtime.integration_context
        text = json.dumps(outcome.last_run)
        self.last_run = json.loads(text)
        ids = [incident["dbotMirrorId"] for incident in outcome.incidents]
        self.delivered.update(ids)
        last_ms = max((parse_api_time_ms(incident["occurred"]) for incident in outcome.incidents), default=None)
        settle_ms = self.settings.source.settle // timedelta(milliseconds=1)
        due_ms = to_ms(now) - settle_ms if settle_ms else to_ms(now) + 1
        unit = self.settings.source.time_format.unit // timedelta(milliseconds=1)
        end_ms = -(-due_ms // unit) * unit  # a query's end, too, can only say times at its format's precision
        needed, to_end = self.truth.needed(self.window_start_ms(previous), to_ms(now), due_ms, end_ms,
                                           self.delivered, last_ms, len(ids) >= self.settings.max_fetch,
                                           self.order == "ascending")
        source = self.settings.source
        fewest = fewest_requests(needed, to_end, self.cap, source.pagination in ("offset", "page")
                                 and not source.more_path and self.source not in TELLS_TOTAL,
                                 self.settings.auth.kind == "oauth2" and not self.runs)
        figures = demisto_mock.parse_fetch_figures([("debug", outcome.figures)])
        run = {
            "incidents": len(ids),
            "items": after["events_served"] - before["events_served"],
            "requests": after["requests_total"] - before["requests_total"],
            "fewest_items": needed,
            "fewest_requests": fewest,
            "readings": int(figures.get("readings", 1)),
            "last_run_bytes": len(text),
            "remembered": sum(len(group) for group in self.last_run.get("seen_ids", {}).values()),
            "wall_seconds": wall,
            "cpu_seconds": cpu,
        }
        self.runs.append(run)
        return run


def instance_for(source: str, params: dict[str, Any], now: datetime, first_fetch: str, max_fetch: int,
                 look_back: int, counters: Callable[[], dict[str, Any]], rows: list[tuple[int, str, int]],
                 caps: dict[str, int]) -> Instance:
    settings = settings_for(params, now, first_fetch, max_fetch, look_back)
    return Instance(source, look_back, settings, counters, SourceTruth(rows, ITEM_PRECISION_MS.get(source, 1)),
                    caps[source])


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else math.inf if part else 1.0


# ---------------------------------------------------------------------------------------------------------
# 1. CPU per item
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    method: str
    url: str
    status: int
    headers: dict[str, str]
    content: bytes


class Recorder(HTTPAdapter):
    """Sends for real and keeps every exchange, to be served again without a server."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[Exchange] = []

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().send(request, *args, **kwargs)
        self.exchanges.append(Exchange(request.method, request.url, response.status_code, dict(response.headers),
                                       response.content))
        return response


class Replay(BaseAdapter):
    """Serves recorded answers by method and URL (in turn, when a URL was asked several times), so that only the
    client's CPU is measured: no socket, no server."""

    def __init__(self, exchanges: list[Exchange]) -> None:
        super().__init__()
        self.answers: dict[tuple[str, str], list[Exchange]] = {}
        for exchange in exchanges:
            self.answers.setdefault((exchange.method, exchange.url), []).append(exchange)
        self.turns: Counter[tuple[str, str]] = Counter()

    def reset(self) -> None:
        self.turns.clear()

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        key = (request.method, request.url)
        answers = self.answers.get(key)
        if not answers:
            raise AssertionError(f"no recorded answer for {request.method} {request.url}")
        exchange = answers[self.turns[key] % len(answers)]
        self.turns[key] += 1
        response = requests.Response()
        response.status_code = exchange.status
        response.headers = CaseInsensitiveDict(exchange.headers)
        response._content = exchange.content
        response.url = request.url
        response.request = request
        response.reason = "OK"
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


def json_floor(bodies: list[bytes], items_path: tuple[str, ...], delivered: int) -> Callable[[], None]:
    """The least any fetch must do with a listing read once: parse its pages, serialise each delivered item."""

    def floor() -> None:
        left = delivered
        for body in bodies:
            items = json.loads(body)
            for part in items_path:
                items = items[part]
            for item in items[:left]:
                json.dumps(item)
                left -= 1

    return floor


def bench_cpu(plan: Plan, sources: tuple[str, ...], profile: bool,
              progress: Callable[[str], None]) -> dict[str, Any]:
    size = plan.cpu_items
    rows = []
    profiles: dict[str, str] = {}
    config = {"backlog": size, "backlog_span_seconds": float(size), "request_log_limit": 100}  # 1 item a second
    # the backlog ends an hour before now, so that a source's settle (Jira: a minute) leaves none of it for later
    with SimulatorProcess(config, SEED + size, T0 - timedelta(hours=1)) as sim:
        for source in sources:
            settings = settings_for(sim.instance_params(source), T0, "1 day", size, DEFAULT_LOOK_BACK)
            runtime = demisto_mock.reset(command="fetch-incidents")
            recorder = Recorder()
            client = ef.SourceClient(settings)
            client.session.mount("http://", recorder)
            if len(ef.fetch_incidents(client, settings, {}, T0).incidents) != size:
                raise RuntimeError(f"{source}: the recorded fetch did not deliver {size} items")
            context = runtime.integration_context  # OAuth: the token stays cached between runs, as on a server
            listing = [exchange for exchange in recorder.exchanges if exchange.method == "GET"]
            once: dict[str, bytes] = {}
            for exchange in listing:
                once.setdefault(exchange.url, exchange.content)
            replay = Replay(recorder.exchanges)

            def mocked(settings: Any = settings, replay: Replay = replay, source: str = source) -> None:
                replay.reset()
                client = ef.SourceClient(settings)
                client.session.mount("http://", replay)
                if len(ef.fetch_incidents(client, settings, {}, T0).incidents) != size:
                    raise RuntimeError(f"{source}: the replayed fetch did not deliver every item")

            def http(settings: Any = settings, source: str = source) -> None:
                if len(ef.fetch_incidents(ef.SourceClient(settings), settings, {}, T0).incidents) != size:
                    raise RuntimeError(f"{source}: the fetch over HTTP did not deliver every item")

            demisto_mock.reset(command="fetch-incidents", integration_context=context)
            mocked()
            http()
            batch = max(1, 2_000 // size)
            timed = median_cpu({"fetch": (mocked, batch),
                                "floor": (json_floor(list(once.values()), settings.source.items_path, size), batch)},
                               plan.cpu_repeats)
            timed.update(median_cpu({"http": (http, 1)}, plan.http_repeats))
            measured = {name: figures["median"] for name, figures in timed.items()}
            if profile:
                profiles[source] = profile_call(mocked)
            rows.append({
                "source": source,
                "order": settings.source.order,
                "items": size,
                "pages_once": len(once),
                "requests": len(recorder.exchanges),
                "bytes_per_item": sum(len(body) for body in once.values()) / size,
                "fetch_us": measured["fetch"] / size * 1e6,
                "http_us": measured["http"] / size * 1e6,
                "floor_us": measured["floor"] / size * 1e6,
                "ratio": measured["fetch"] / measured["floor"],
                "ratio_http": measured["http"] / measured["floor"],
                "samples_seconds": {name: figures["samples"] for name, figures in timed.items()},
            })
            progress(f"  CPU {TITLES[source]}: {rows[-1]['ratio']:.2f}x the floor")
        naive = bench_naive_cpu(sim, plan) if EVENT_SOURCE in sources else None
    return {"rows": rows, "naive": naive, "profiles": profiles}


def bench_naive_cpu(sim: SimulatorProcess, plan: Plan) -> dict[str, Any]:
    """The guide's fetch on the same Event Source: one page of the API's default 100, whatever the backlog."""
    recorder = Recorder()
    session = requests.Session()
    session.mount("http://", recorder)
    session.headers["Authorization"] = f"Bearer {sim.api_key}"
    delivered = len(naive_fetch.fetch_incidents(session, sim.url, {}, lambda: T0)[0])
    replay = Replay(recorder.exchanges)

    def naive() -> None:
        replay.reset()
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {sim.api_key}"
        session.mount("http://", replay)
        if len(naive_fetch.fetch_incidents(session, sim.url, {}, lambda: T0)[0]) != delivered:
            raise RuntimeError("the naive fetch did not deliver its page")

    floor = json_floor([recorder.exchanges[0].content], ("events",), delivered)
    timed = median_cpu({"naive": (naive, 20), "floor": (floor, 20)}, plan.cpu_repeats)
    return {"items": delivered, "naive_us": timed["naive"]["median"] / delivered * 1e6,
            "floor_us": timed["floor"]["median"] / delivered * 1e6,
            "ratio": timed["naive"]["median"] / timed["floor"]["median"]}


# ---------------------------------------------------------------------------------------------------------
# 2. Steady state: requests and items read per run, against the fewest the API allows
# ---------------------------------------------------------------------------------------------------------


def summarise_steady(instance: Instance, plan: Plan, drained: bool, visible: set[str]) -> dict[str, Any]:
    measured = instance.runs[plan.warm_up_runs:plan.warm_up_runs + plan.measured_runs]

    def total(key: str) -> int:
        return sum(run[key] for run in measured)

    incidents = total("incidents")
    per_id = [run["last_run_bytes"] / run["remembered"] for run in measured if run["remembered"] >= 50]
    return {
        "source": instance.source,
        "order": instance.order,
        "look_back": instance.look_back,
        "incidents_per_run": incidents / len(measured),
        "items_per_run": total("items") / len(measured),
        "items_per_incident": ratio(total("items"), incidents),
        "fewest_items_per_incident": ratio(total("fewest_items"), incidents),
        "requests_per_run": total("requests") / len(measured),
        "fewest_requests_per_run": total("fewest_requests") / len(measured),
        "requests_ratio": ratio(total("requests"), total("fewest_requests")),
        "runs_over_fewest": sum(1 for run in measured if run["requests"] > run["fewest_requests"]),
        "second_readings": sum(1 for run in measured if run["readings"] > 1),
        "last_run_bytes_min": min(run["last_run_bytes"] for run in measured),
        "last_run_bytes_max": max(run["last_run_bytes"] for run in measured),
        "bytes_per_remembered": statistics.median(per_id) if per_id else None,
        "duplicates": sum(count - 1 for count in instance.delivered.values()),
        "misses": len(visible - instance.delivered.keys()) if drained else None,
        "runs_total": len(instance.runs),
        "runs": instance.runs,
    }


def bench_steady(plan: Plan, sources: tuple[str, ...], caps: dict[str, int],
                 progress: Callable[[str], None]) -> dict[str, Any]:
    """Every source and look-back in lockstep, a minute apart, on one simulator holding a planned scenario:
    Poisson arrivals, ~0.5% of them ties of 120 items, 5% visible up to 4 minutes late, no status changes."""
    arrival_runs = plan.warm_up_runs + plan.measured_runs
    with PlannedWorld(Arrivals(plan.rate), T0, arrival_runs, SEED + int(plan.rate)) as place:
        sim = place.sim
        instances = []
        for source in sources:
            params = sim.dialects.instance_params(source)
            rows = [(item.created_ms, item.event_id if source == EVENT_SOURCE
                     else sim.dialects.item_id(source, item.event_id), item.visible_ms) for item in place.plan]
            instances += [instance_for(source, params, T0, T0.isoformat(), STEADY_MAX_FETCH, look_back, sim.stats,
                                       rows, caps) for look_back in plan.look_backs]
        naive = NaiveSteady(place) if EVENT_SOURCE in sources else None
        active = list(instances)
        done: set[int] = set()
        for minute in range(1, arrival_runs + plan.drain_cap_runs + 1):
            now = at_minute(T0, minute) + RUN_OFFSET
            place.clock.set(now)
            for instance in active:
                run = instance.fetch(now)
                if minute >= arrival_runs and to_ms(now) > place.last_visible_ms and not run["incidents"]:
                    done.add(id(instance))
            if naive is not None and not naive.done:
                naive.fetch(minute >= arrival_runs)
            active = [instance for instance in active if id(instance) not in done]
            if not active and (naive is None or naive.done):
                break
            if minute % 10 == 0:
                progress(f"  steady state: minute {minute}, {len(active)} instances still fetching")
        visible = place.visible_ids(to_ms(place.clock.now()))
        to_source = {}
        for source in sources:
            to_source[source] = visible if source == EVENT_SOURCE else {sim.dialects.item_id(source, store_id)
                                                                        for store_id in visible}
        rows = [summarise_steady(instance, plan, id(instance) in done, to_source[instance.source])
                for instance in instances]
        return {"events_per_day": plan.rate, "items": len(place.plan), "max_fetch": STEADY_MAX_FETCH,
                "arrivals": vars(place.arrivals), "rows": rows,
                "naive": naive.summary(plan, visible) if naive is not None else None}


class NaiveSteady:
    """The guide's fetch on the same scenario, a minute apart, replayed until every event is visible."""

    def __init__(self, place: PlannedWorld) -> None:
        self.place = place
        self.last_run: dict[str, Any] = {}
        self.delivered: Counter[str] = Counter()
        self.runs: list[dict[str, Any]] = []
        self.done = False

    def fetch(self, after_arrivals: bool) -> None:
        place = self.place
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {place.sim.api_key}"
        before = place.sim.stats()
        incidents, self.last_run = naive_fetch.fetch_incidents(session, place.sim.url,
                                                               json.loads(json.dumps(self.last_run)), place.clock.now)
        after = place.sim.stats()
        ids = [json.loads(incident["rawJSON"])["id"] for incident in incidents]
        self.delivered.update(ids)
        self.runs.append({"incidents": len(ids), "requests": after["requests_total"] - before["requests_total"],
                          "items": after["events_served"] - before["events_served"],
                          "last_run_bytes": len(json.dumps(self.last_run))})
        self.done = after_arrivals and to_ms(place.clock.now()) > place.last_visible_ms and not ids

    def summary(self, plan: Plan, visible: set[str]) -> dict[str, Any]:
        measured = self.runs[plan.warm_up_runs:plan.warm_up_runs + plan.measured_runs]
        incidents = sum(run["incidents"] for run in measured)
        return {
            "incidents_per_run": incidents / len(measured),
            "items_per_incident": ratio(sum(run["items"] for run in measured), incidents),
            "requests_per_run": statistics.mean(run["requests"] for run in measured),
            "full_pages": sum(1 for run in self.runs if run["incidents"] >= NAIVE_PAGE_SIZE),
            "last_run_bytes_max": max(run["last_run_bytes"] for run in self.runs),
            "duplicates": sum(count - 1 for count in self.delivered.values()),
            "misses": len(visible - self.delivered.keys()),
        }


# ---------------------------------------------------------------------------------------------------------
# 3. Last-run size with each source's ids
# ---------------------------------------------------------------------------------------------------------


def last_run_size(ids: list[str], precision_ms: int) -> dict[str, Any]:
    """The last run after one run delivered these ids, spread evenly over the look-back window behind now, their
    times cut to the source's precision (one id per millisecond key where the times allow it: the worst case)."""
    window_ms = DEFAULT_LOOK_BACK * MINUTE_MS
    now_ms = to_ms(T0)
    items = []
    for index, item_id in enumerate(ids):
        created = (now_ms - window_ms + 1 + index * (window_ms - 1) // len(ids)) // precision_ms * precision_ms
        items.append(ef.Item(ef.Position(from_ms(created), item_id), {}, 0))
    items.sort(key=lambda item: item.position)
    demisto_mock.reset(command="fetch-incidents")
    run = ef.FetchRun(ef.FetchState.first(T0 - timedelta(days=1)), len(ids), timedelta(minutes=DEFAULT_LOOK_BACK), T0)
    run.take(items)
    last_run = ef.dump_state(run.next_state(True))
    text = json.dumps(last_run)
    remembered = sum(len(group) for group in last_run["seen_ids"].values())
    return {"ids": len(ids), "id_chars": statistics.mean(len(item_id) for item_id in ids), "bytes": len(text),
            "remembered": remembered, "time_keys": len(last_run["seen_ids"]),
            "bytes_per_remembered": len(text) / remembered if remembered else None}


def bench_last_run(plan: Plan, sources: tuple[str, ...]) -> dict[str, Any]:
    largest = max(plan.window_sizes)
    sim = Simulator(SimConfig(backlog=largest), seed=SEED)
    rows = []
    for source in sources:
        ids = [item_id for _, item_id, _ in source_truth(sim, source)]
        for size in plan.window_sizes:
            rows.append({"source": source, "precision_ms": ITEM_PRECISION_MS.get(source, 1),
                         **last_run_size(ids[:size], ITEM_PRECISION_MS.get(source, 1))})
    return {"rows": rows, "cap": ef.MAX_SEEN_IDS, "naive_bytes": len(json.dumps({"start_time": T0.isoformat()}))}


# ---------------------------------------------------------------------------------------------------------
# 4. Backlog drain
# ---------------------------------------------------------------------------------------------------------


def drain_length(instance: Instance) -> int:
    """Runs up to the one that delivered the last item."""
    working = [index for index, run in enumerate(instance.runs) if run["incidents"]]
    return working[-1] + 1 if working else 0


def start_and_end(instance: Instance) -> tuple[list[int], list[int]]:
    """The runs compared for flatness: the first and the last fifth of the drain, the first run apart (it starts
    with no window to go by)."""
    drained_in = drain_length(instance)
    fifth = max(1, drained_in // 5)
    return list(range(1, min(drained_in, 1 + fifth))), list(range(max(0, drained_in - fifth), drained_in))


def replay_runs(instance: Instance, states: list[tuple[str, dict[str, Any]]], indexes: list[int],
                rounds: int) -> dict[int, dict[str, float]]:
    """Runs again from the state each of these runs started from, taking turns (start, end, start, end...), so
    that a machine busy with other work meanwhile weighs on both ends alike; the simulator does not change during
    the drain, so each replay does the work of its run. The median of `rounds` replays per run."""
    samples: dict[int, list[dict[str, float]]] = {index: [] for index in indexes}
    for _ in range(rounds):
        for index in indexes:
            last_run, context = states[index]
            before = instance.counters()
            demisto_mock.reset(command="fetch-incidents", integration_context=context)
            wall, cpu = time.perf_counter(), time.process_time()
            ef.fetch_incidents(ef.SourceClient(instance.settings), instance.settings, json.loads(last_run), T0)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            items = instance.counters()["events_served"] - before["events_served"]
            samples[index].append({"cpu_seconds": cpu, "wall_seconds": wall, "items": items})
    return {index: {key: statistics.median(sample[key] for sample in values) for key in values[0]}
            for index, values in samples.items()}


def summarise_drain(instance: Instance, backlog: int, max_fetch: int,
                    replayed: dict[int, dict[str, float]]) -> dict[str, Any]:
    runs = instance.runs
    drained_in = drain_length(instance)
    part = runs[:drained_in]
    start_runs, end_runs = start_and_end(instance)
    start, end = [replayed[index] for index in start_runs], [replayed[index] for index in end_runs]

    def median(chosen: list[dict[str, Any]], key: str) -> float:
        return statistics.median(run[key] for run in chosen) if chosen else math.nan

    def trimmed(chosen: list[Any], key: str) -> float:
        """The mean without the largest and smallest tenth: runs that read their listing twice cost about twice
        as much, so a median flips between the two kinds; the trim drops the odd pause of a busy machine."""
        values = sorted(run["cpu_seconds"] / max(1, run["items"]) if key == "cpu_per_item" else run[key]
                        for run in chosen)
        cut = len(values) // 10
        values = values[cut:len(values) - cut] or values
        return statistics.mean(values) if values else math.nan

    sizes = [run["last_run_bytes"] for run in part]
    fewest_runs = math.ceil(backlog / max_fetch)
    return {
        "source": instance.source,
        "order": instance.order,
        "runs": drained_in,
        "fewest_runs": fewest_runs,
        "runs_ratio": drained_in / fewest_runs,
        "delivered": sum(instance.delivered.values()),
        "duplicates": sum(count - 1 for count in instance.delivered.values()),
        "misses": backlog - len(instance.delivered),
        "items": sum(run["items"] for run in runs),
        "items_per_incident": ratio(sum(run["items"] for run in runs), sum(instance.delivered.values())),
        "fewest_items_per_incident": ratio(sum(run["fewest_items"] for run in runs),
                                           sum(instance.delivered.values())),
        "requests": sum(run["requests"] for run in runs),
        "fewest_requests": sum(run["fewest_requests"] for run in runs),
        "requests_ratio": ratio(sum(run["requests"] for run in runs), sum(run["fewest_requests"] for run in runs)),
        "runs_over_fewest": sum(1 for run in runs if run["requests"] > run["fewest_requests"]),
        "second_readings": sum(1 for run in runs if run["readings"] > 1),
        "first_run_seconds": runs[0]["wall_seconds"],
        "first_run_items": runs[0]["items"],
        "start_runs": start_runs,
        "end_runs": end_runs,
        "wall_start": trimmed(start, "wall_seconds"),
        "wall_end": trimmed(end, "wall_seconds"),
        "cpu_start": trimmed(start, "cpu_seconds"),
        "cpu_end": trimmed(end, "cpu_seconds"),
        "cpu_per_item_start": trimmed(start, "cpu_per_item"),
        "cpu_per_item_end": trimmed(end, "cpu_per_item"),
        "items_per_run_start": trimmed(start, "items"),
        "items_per_run_end": trimmed(end, "items"),
        "wall_by_tenth": [median(part[drained_in * k // 10:drained_in * (k + 1) // 10], "wall_seconds")
                          for k in range(10)] if drained_in >= 10 else [],
        "last_run_bytes": [sizes[0], sizes[len(sizes) // 2], sizes[-1]] if sizes else [],
        "last_run_bytes_max": max(sizes, default=0),
        "last_run_bytes_start": trimmed([runs[index] for index in start_runs], "last_run_bytes"),
        "last_run_bytes_end": trimmed([runs[index] for index in end_runs], "last_run_bytes"),
        "per_run": runs,
    }


def bench_backlog(plan: Plan, sources: tuple[str, ...], caps: dict[str, int],
                  progress: Callable[[str], None]) -> dict[str, Any]:
    """Each source drains the same backlog (spread over the day before the simulator's clock, an hour behind now;
    first fetch 2 days) back to back: no item arrives meanwhile, so the clock stays put (and an OAuth token stays
    valid, as over a real hour)."""
    backlog, max_fetch = plan.backlog, plan.backlog_max_fetch
    cap_runs = 3 * math.ceil(backlog / max_fetch) + 10
    halfway = math.ceil(backlog / max_fetch) // 2
    rows = []
    naive = None
    config = {"backlog": backlog, "request_log_limit": 100}
    # the backlog ends an hour before now, so that a source's settle (Jira: a minute) leaves none of it undue
    with SimulatorProcess(config, SEED, T0 - timedelta(hours=1)) as sim, \
            tempfile.TemporaryDirectory(prefix="bench-") as folder:
        baseline = run_child([sys.executable, "-c", "import json, requests"], Path(folder) / "baseline.txt")
        for source in sources:
            started = time.monotonic()
            params = sim.instance_params(source)
            instance = instance_for(source, params, T0, "2 days", max_fetch, DEFAULT_LOOK_BACK, sim.stats,
                                    sim.truth(source), caps)
            state = None
            states: list[tuple[str, dict[str, Any]]] = []  # what each run started from
            for _ in range(cap_runs):
                states.append((json.dumps(instance.last_run), instance.context))
                run = instance.fetch(T0)
                if len(instance.runs) == halfway:
                    state = {"last_run": instance.last_run, "integration_context": instance.context}
                if not run["incidents"] and (len(instance.delivered) >= backlog
                                             or not any(r["incidents"] for r in instance.runs[-3:])):
                    break  # done, or stuck: three runs in a row found nothing
            start_runs, end_runs = start_and_end(instance)
            order = [index for pair in zip(start_runs, end_runs, strict=False) for index in pair]
            replayed = replay_runs(instance, states, order, plan.replays)
            rows.append(summarise_drain(instance, backlog, max_fetch, replayed))
            if state is not None and plan.process_runs:
                rows[-1]["process"] = fresh_process_runs(Path(folder), source, {
                    **params, "isFetch": True, "first_fetch": "2 days", "max_fetch": str(max_fetch),
                    "look_back": str(DEFAULT_LOOK_BACK)}, state, plan.process_runs)
            progress(f"  backlog {TITLES[source]}: {rows[-1]['runs']} runs, {time.monotonic() - started:.0f} s")
        if EVENT_SOURCE in sources:
            naive = naive_drain(sim, backlog)
    return {"backlog": backlog, "max_fetch": max_fetch, "look_back": DEFAULT_LOOK_BACK, "rows": rows,
            "naive": naive, "halfway_run": halfway, "baseline_rss_kib": baseline.max_rss_kib}


def fresh_process_runs(folder: Path, source: str, params: dict[str, Any], state: dict[str, Any],
                       runs: int) -> dict[str, Any]:
    """Runs of fetch-incidents through demisto_mock.py, each in a fresh process from the same state (the last run
    and integration context halfway through the drain), as the server starts one: the process's wall time, CPU
    and peak RSS (its own: spawned from a small launcher, bench/child_rusage.py)."""
    params_path, state_path = folder / f"{source}-params.json", folder / f"{source}-state.json"
    params_path.write_text(json.dumps(params))
    command = [sys.executable, str(ROOT / "demisto_mock.py"), "--integration", str(Path(ef.__file__)), "--params",
               str(params_path), "--state", str(state_path), "--report", str(folder / f"{source}-report.json"),
               "fetch-incidents"]
    usages = []
    for _ in range(runs):
        state_path.write_text(json.dumps(state))
        usage = run_child(command, folder / f"{source}-output.txt")
        report = json.loads((folder / f"{source}-report.json").read_text())
        if usage.exit_code != 0 or not report["ok"] or not report["incidents"]:
            raise RuntimeError(f"{source}: a run in a fresh process failed: {report.get('error')} "
                               f"{usage.output[-500:]}")
        usages.append((usage, report["duration_seconds"]))
    return {"wall_seconds": statistics.median(usage.wall_seconds for usage, _ in usages),
            "run_seconds": statistics.median(seconds for _, seconds in usages),
            "cpu_seconds": statistics.median(usage.cpu_seconds for usage, _ in usages),
            "max_rss_kib": max(usage.max_rss_kib for usage, _ in usages)}


def naive_drain(sim: SimulatorProcess, backlog: int) -> dict[str, Any]:
    """The guide's fetch on the same backlog: one page, then 'now' as the next start."""
    last_run: dict[str, Any] = {}
    delivered: Counter[str] = Counter()
    runs = 0
    for runs in range(1, 4):  # noqa: B007  (the count is the result)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {sim.api_key}"
        incidents, last_run = naive_fetch.fetch_incidents(session, sim.url, last_run, lambda: T0)
        delivered.update(json.loads(incident["rawJSON"])["id"] for incident in incidents)
        if not incidents:
            break
    return {"runs": runs, "delivered": sum(delivered.values()), "misses": backlog - len(delivered)}


# ---------------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[Any]], left: int = 1) -> str:
    """Aligned columns: the first `left` columns to the left, the others (figures) to the right."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(cell.ljust(width) if index < left else cell.rjust(width)
                         for index, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()

    return "\n".join([line(cells[0]), line(["-" * width for width in widths]), *(line(row) for row in cells[1:])])


def by_source(rows: list[dict[str, Any]], **match: Any) -> dict[str, dict[str, Any]]:
    return {row["source"]: row for row in rows if all(row.get(key) == value for key, value in match.items())}


def ascending(row: dict[str, Any]) -> bool:
    return row["order"] == "ascending"


def cell(value: str, met: bool | None) -> str:
    """A figure and its verdict: met, NOT met, or nothing where the issue sets no target for this source."""
    return value if met is None else f"{value} {'met' if met else 'NOT met'}"


def summary(results: dict[str, Any]) -> tuple[list[str], list[list[str]], dict[str, dict[str, bool]]]:
    """The figure x source table and the verdict of each cell that has a target."""
    sources = results["sources"]
    cpu = by_source(results["cpu"]["rows"])
    lb0 = by_source(results["steady"]["rows"], look_back=0)
    lb5 = by_source(results["steady"]["rows"], look_back=DEFAULT_LOOK_BACK)
    sizes = by_source([row for row in results["last_run"]["rows"] if row["ids"] == max(
        r["ids"] for r in results["last_run"]["rows"])])
    drain = by_source(results["backlog"]["rows"])
    verdicts: dict[str, dict[str, bool]] = {source: {} for source in sources}
    lines: list[list[str]] = []

    def add(figure: str, target: str, render: Callable[[str], tuple[str, bool | None]]) -> None:
        row = [figure]
        for source in sources:
            text, met = render(source)
            if met is not None:
                verdicts[source][figure] = met
            row.append(cell(text, met))
        lines.append([*row, target])

    add("CPU per item / JSON floor, 1,000/run", "<= 2x",
        lambda s: (f"{cpu[s]['ratio']:.2f}x", cpu[s]["ratio"] <= 2.0))
    for name, rows in (("steady lb 0", lb0), (f"steady lb {DEFAULT_LOOK_BACK}", lb5)):
        add(f"requests per run / fewest, {name}", "= fewest",
            lambda s, rows=rows: (f"{rows[s]['requests_per_run']:.2f}/{rows[s]['fewest_requests_per_run']:.2f}",
                                  rows[s]["requests_ratio"] <= 1.0 + 1e-9))
    add("requests / fewest, backlog drain", "= fewest",
        lambda s: (f"{drain[s]['requests']}/{drain[s]['fewest_requests']}", drain[s]["requests_ratio"] <= 1.0 + 1e-9))
    add("items read / incident, steady lb 0", "<= 1.1 ascending",
        lambda s: (f"{lb0[s]['items_per_incident']:.2f}", lb0[s]["items_per_incident"] <= 1.1
                   if ascending(lb0[s]) else None))
    add("  fewest the API allows", "-", lambda s: (f"{lb0[s]['fewest_items_per_incident']:.2f}", None))
    add(f"items read / incident, steady lb {DEFAULT_LOOK_BACK}", "-",
        lambda s: (f"{lb5[s]['items_per_incident']:.2f}", None))
    add("  fewest the API allows", "-", lambda s: (f"{lb5[s]['fewest_items_per_incident']:.2f}", None))
    add("items read / incident, backlog drain", "<= 2 newest-first/unordered",
        lambda s: (f"{drain[s]['items_per_incident']:.2f}", None if ascending(drain[s])
                   else drain[s]["items_per_incident"] <= 2.0))
    add("  fewest the API allows", "-", lambda s: (f"{drain[s]['fewest_items_per_incident']:.2f}", None))
    add("last-run B per remembered id", "<= 60",
        lambda s: (f"{sizes[s]['bytes_per_remembered']:.1f}", sizes[s]["bytes_per_remembered"] <= 60))
    add("  id chars", "(36: UUID)", lambda s: (f"{sizes[s]['id_chars']:.0f}", None))
    add("last run, drain start -> end, kB", "flat (end <= 1.2 start)",
        lambda s: (f"{drain[s]['last_run_bytes_start'] / 1e3:.1f}->{drain[s]['last_run_bytes_end'] / 1e3:.1f}",
                   drain[s]["last_run_bytes_end"] <= 1.2 * drain[s]["last_run_bytes_start"]))
    backlog = results["backlog"]
    add(f"runs to drain {backlog['backlog']:,}, max_fetch {backlog['max_fetch']}",
        f"{math.ceil(backlog['backlog'] / backlog['max_fetch'])} asc., <= 1.5x others",
        lambda s: (f"{drain[s]['runs']}", drain[s]["runs"] <= drain[s]["fewest_runs"] if ascending(drain[s])
                   else drain[s]["runs"] <= 1.5 * drain[s]["fewest_runs"]))
    add("run CPU per item read, drain, us", "flat (end <= 1.2 start)",
        lambda s: (f"{drain[s]['cpu_per_item_start'] * 1e6:.0f}->{drain[s]['cpu_per_item_end'] * 1e6:.0f}",
                   drain[s]["cpu_per_item_end"] <= 1.2 * drain[s]["cpu_per_item_start"]))
    add("  run CPU, start -> end, ms", "-",
        lambda s: (f"{drain[s]['cpu_start'] * 1e3:.1f}->{drain[s]['cpu_end'] * 1e3:.1f}", None))
    add("  items read per run, start -> end", "-",
        lambda s: (f"{drain[s]['items_per_run_start']:.0f}->{drain[s]['items_per_run_end']:.0f}", None))
    add("  run wall time, start -> end, ms", "-",
        lambda s: (f"{drain[s]['wall_start'] * 1e3:.0f}->{drain[s]['wall_end'] * 1e3:.0f}", None))
    add("  first run of the drain, ms", "-", lambda s: (f"{drain[s]['first_run_seconds'] * 1e3:.0f}", None))
    if all("process" in drain[s] for s in sources):
        add("  a run in a fresh process, ms", "-",
            lambda s: (f"{drain[s]['process']['wall_seconds'] * 1e3:.0f}", None))
        add("  peak memory of that process, MiB", "-",
            lambda s: (f"{drain[s]['process']['max_rss_kib'] / 1024:.1f}", None))
    add(f"dups/misses, steady lb {DEFAULT_LOOK_BACK} and drain", "0/0",
        lambda s: (f"{lb5[s]['duplicates'] + drain[s]['duplicates']}/"
                   f"{(lb5[s]['misses'] or 0) + drain[s]['misses']}",
                   lb5[s]["duplicates"] + drain[s]["duplicates"] == 0 and lb5[s]["misses"] == 0
                   and drain[s]["misses"] == 0))
    return ["figure", *(TITLES[source] for source in sources), "target"], lines, verdicts


def report(results: dict[str, Any]) -> str:
    out: list[str] = []
    cpu, steady, sizes, backlog = (results[key] for key in ("cpu", "steady", "last_run", "backlog"))
    caps = results["page_caps"]
    out.append("1. CPU per item of a fetch run (time.process_time, median), next to the JSON floor")
    out.append("   A run = new client + fetch_incidents from an empty last run, max_fetch ="
               f" {results['plan']['cpu_items']:,} items, ~1 item/s; an OAuth token")
    out.append("   cached, as between a server's runs. 'mocked': the run's answers recorded once, then served in")
    out.append("   process without a socket (client CPU only); 'http': real requests to the simulator in another")
    out.append("   process (client CPU, sockets included). floor = json.loads of the listing's pages read once +")
    out.append("   json.dumps of each item. 'pages once': the listing's pages; 'requests': what the run asked.")
    out.append(table(
        ["source", "order", "pages once", "requests", "B/item", "fetch us/item", "floor us/item", "ratio",
         "http us/item", "ratio"],
        [[TITLES[row["source"]], row["order"], row["pages_once"], row["requests"], f"{row['bytes_per_item']:.0f}",
          f"{row['fetch_us']:.1f}", f"{row['floor_us']:.1f}", f"{row['ratio']:.2f}x", f"{row['http_us']:.1f}",
          f"{row['ratio_http']:.2f}x"] for row in cpu["rows"]]))
    if cpu["naive"]:
        naive = cpu["naive"]
        out.append(f"   naive fetch (guide), Event Source: one page of {naive['items']} whatever the backlog,"
                   f" {naive['naive_us']:.1f} us/item, {naive['ratio']:.2f}x its floor.")
    out.append("")
    out.append(f"2. Steady state: {steady['items']:,} items at 10^{round(math.log10(steady['events_per_day']))}/day"
               f" (~{steady['events_per_day'] / 1440:.0f}/min), max_fetch {steady['max_fetch']}, runs a minute apart"
               f" ({RUN_OFFSET.total_seconds():g} s past")
    out.append("   the minute), the last run carried as JSON; ~0.5% of arrivals are ties of 120 items, 5% visible up to"
               " 4 min late.")
    out.append("   "
               f"{results['plan']['warm_up_runs']} warm-up runs, then {results['plan']['measured_runs']}"
               " measured; misses after replaying until all is visible.")
    out.append("   items read = items in the answers (simulator's count); fewest = what a listing from the look-back"
               " start (cut to the query's time")
    out.append("   precision) to the run's last delivered item, or to its window's end (now, less the source's settle),"
               " must return (ground")
    out.append("   truth); fewest requests = those items")
    out.append("   in pages of the API's largest (" + ", ".join(f"{TITLES[s]} {caps[s]:,}" for s in results["sources"])
               + "),")
    out.append("   +1 token request on an OAuth instance's first run (no offset API here lacks an end signal:"
               " ServiceNow's X-Total-Count,")
    out.append("   PagerDuty's `more`, Custom's `has_more`).")
    rows = []
    for row in steady["rows"]:
        rows.append([TITLES[row["source"]], row["order"], row["look_back"], f"{row['incidents_per_run']:.1f}",
                     f"{row['items_per_run']:.0f}", f"{row['items_per_incident']:.2f}",
                     f"{row['fewest_items_per_incident']:.2f}", f"{row['requests_per_run']:.2f}",
                     f"{row['fewest_requests_per_run']:.2f}",
                     f"{row['runs_over_fewest']}/{results['plan']['measured_runs']}", row["second_readings"],
                     f"{row['last_run_bytes_min']:,}-{row['last_run_bytes_max']:,}",
                     f"{row['bytes_per_remembered']:.1f}" if row["bytes_per_remembered"] else "-", row["duplicates"],
                     "n/a" if row["misses"] is None else row["misses"]])
    naive = steady["naive"]
    if naive:
        rows.append(["naive (guide)", "ascending", "none", f"{naive['incidents_per_run']:.1f}", f"<={NAIVE_PAGE_SIZE}",
                     f"{naive['items_per_incident']:.2f}", "-", f"{naive['requests_per_run']:.2f}", "-", "-", "-",
                     f"{naive['last_run_bytes_max']}", "-", naive["duplicates"], naive["misses"]])
    out.append(table(["source", "order", "look_back", "inc/run", "read/run", "read/inc", "fewest", "req/run", "fewest",
                      "runs over", "2nd reading", "last-run B", "B/id", "dups", "misses"], rows))
    out.append("   look_back 0 trades late items for fewer reads: misses there are items that came late, by design.")
    out.append("   'runs over': measured runs with more requests than the fewest; '2nd reading': runs that read their"
               " listing again.")
    out.append("")
    out.append(f"3. Last-run size: len(json.dumps(last run)) after a run delivered N items spread over the"
               f" {DEFAULT_LOOK_BACK}-minute look-back, with")
    out.append("   each source's own ids (from the simulator) and time precision (whole seconds for ServiceNow and"
               f" PagerDuty); cap {sizes['cap']:,} ids.")
    out.append(table(["source", "ids", "id chars", "time keys", "bytes", "B/remembered id"],
                     [[TITLES[row["source"]], f"{row['ids']:,}", f"{row['id_chars']:.1f}", f"{row['time_keys']:,}",
                       f"{row['bytes']:,}", f"{row['bytes_per_remembered']:.1f}"] for row in sizes["rows"]]))
    out.append(f"   naive: {sizes['naive_bytes']} bytes always (it remembers no item).")
    out.append("")
    out.append(f"4. Backlog of {backlog['backlog']:,} items over a day ending an hour ago, first fetch 2 days,"
               f" max_fetch {backlog['max_fetch']}, look_back {backlog['look_back']}, runs back to back")
    out.append("   in this process (fresh runtime each), the simulator in another process. A run = new client +"
               " fetch_incidents; its CPU")
    out.append("   (process_time: the integration's own work) and wall time (the simulator's answers and the machine's"
               " other load included).")
    out.append("   Flatness is judged on CPU per item read, since runs differ in what they read (a second reading, a"
               " narrow window);")
    out.append("   start/end = the runs of the first and last fifth of the drain (the first run apart: it starts with"
               " no window to go by),")
    out.append(f"   each run again {results['plan']['replays']} times from the state it started from, start and end"
               " runs taking turns (the median")
    out.append("   of each run's replays; the mean over the runs without their largest and smallest tenth).")
    drain_rows = []
    for row in backlog["rows"]:
        drain_rows.append([TITLES[row["source"]], row["order"], f"{row['runs']}/{row['fewest_runs']}",
                           f"{row['items_per_incident']:.2f}", f"{row['fewest_items_per_incident']:.2f}",
                           f"{row['requests']:,}/{row['fewest_requests']:,}", row["second_readings"],
                           f"{row['first_run_seconds'] * 1e3:.0f} ({row['first_run_items']:,} items)",
                           f"{row['cpu_start'] * 1e3:.1f} -> {row['cpu_end'] * 1e3:.1f}",
                           f"{row['cpu_per_item_start'] * 1e6:.0f} -> {row['cpu_per_item_end'] * 1e6:.0f}",
                           f"{row['wall_start'] * 1e3:.0f} -> {row['wall_end'] * 1e3:.0f}",
                           " / ".join(f"{size:,}" for size in row["last_run_bytes"]), row["duplicates"],
                           row["misses"]])
    out.append(table(["source", "order", "runs/fewest", "read/inc", "fewest", "requests/fewest", "2nd reading",
                      "first run ms", "CPU ms start->end", "us/item read", "wall ms", "last-run B first/mid/last",
                      "dups", "misses"],
                     drain_rows))
    processes = [row for row in backlog["rows"] if "process" in row]
    if processes:
        out.append(f"   A run in a fresh process (demisto_mock.py, as the server starts one) from the state after run"
                   f" {backlog['halfway_run']}, median of {results['plan']['process_runs']};")
        out.append("   peak = the process's ru_maxrss (spawned from bench/child_rusage.py so that it is its own); a"
                   f" process that only imports json and requests peaks at {backlog['baseline_rss_kib'] / 1024:.1f}"
                   " MiB.")
        out.append(table(["source", "process ms", "run inside it ms", "CPU ms", "peak MiB"],
                         [[TITLES[row["source"]], f"{row['process']['wall_seconds'] * 1e3:.0f}",
                           f"{row['process']['run_seconds'] * 1e3:.0f}", f"{row['process']['cpu_seconds'] * 1e3:.0f}",
                           f"{row['process']['max_rss_kib'] / 1024:.1f}"] for row in processes]))
    if backlog["naive"]:
        naive = backlog["naive"]
        out.append(f"   naive (guide), Event Source: {naive['delivered']} delivered by its first run, then nothing:"
                   f" {naive['misses']:,} never fetched.")
    out.append("")
    out.append("5. Figure x source, with the targets of issue 12 (printed, not asserted)")
    headers, lines, _ = summary(results)
    out.append(table(headers, lines))
    return "\n".join(out)


def environment() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "commit": commit, "seed": SEED}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run to try the benchmark itself")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the figures (default {RESULTS})")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of each source's CPU run")
    parser.add_argument("--integration", type=Path, default=INTEGRATION,
                        help="the EventFetcher.py to measure (default: the pack's)")
    parser.add_argument("--sources", default=",".join(SOURCES),
                        help=f"comma-separated sources to measure (default all: {','.join(SOURCES)})")
    options = parser.parse_args(argv)
    sources = tuple(name.strip() for name in options.sources.split(",") if name.strip())
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown or not sources:
        parser.error(f"unknown source {unknown}; choose among {', '.join(SOURCES)}")
    global ef
    ef = load_integration(options.integration.resolve())
    plan = QUICK if options.quick else Plan()
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {message}", file=sys.stderr, flush=True)

    caps = api_page_caps()
    results: dict[str, Any] = {"plan": vars(plan), "quick": options.quick, "environment": environment(),
                               "integration": str(options.integration), "sources": sources, "page_caps": caps}
    progress("1/4 CPU per item")
    results["cpu"] = bench_cpu(plan, sources, options.profile, progress)
    progress("2/4 steady state, every source and look-back in lockstep")
    results["steady"] = bench_steady(plan, sources, caps, progress)
    progress("3/4 last-run size")
    results["last_run"] = bench_last_run(plan, sources)
    progress("4/4 backlog drain")
    results["backlog"] = bench_backlog(plan, sources, caps, progress)
    results["verdicts"] = summary(results)[2]
    results["seconds"] = time.monotonic() - started
    text = report(results)
    title = "EventFetcher benchmark" + (" (--quick: a smoke run, not reference figures)" if options.quick else "")
    print(f"{title}: Python {platform.python_version()}, {os.cpu_count()} CPUs, commit "
          f"{results['environment']['commit']}, {results['seconds']:.0f} s\n")
    print(text)
    for source, profile_text in results["cpu"]["profiles"].items():
        print(f"\ncProfile of a mocked {plan.cpu_items:,}-item run, {TITLES[source]} (by own time):\n{profile_text}")
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"\nfigures: {options.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
