"""`make bench`: what a fetch run costs, measured against the simulator on loopback with faults off.

Prints one report and writes the same figures to bench/results/latest.json:
1. CPU per event of a fetch run, next to the JSON floor (json.loads of the pages + json.dumps of each event);
2. requests per run against the fewest the API allows for the same work;
3. last-run size against the events in the look-back window and the largest tie;
4. catch-up of a 10^5-event backlog through the runner, a fresh process per run as the server does;
5. the naive fetch of the original fetching guide (bench/naive_fetch.py) side by side, with its duplicates
   and misses counted against the simulator's ground truth.

    .venv/bin/python bench/run_bench.py [--quick] [--json PATH] [--profile] [--integration PATH]

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
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
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
import requests_mock  # noqa: E402
from world import (  # noqa: E402
    API_PAGE_SIZE,
    MINUTE_MS,
    NAIVE_PAGE_SIZE,
    T0,
    Arrivals,
    PlannedWorld,
    at_minute,
    minimum_pages,
    parse_api_time_ms,
    run_child,
    simulator_process,
)

from simulator import ManualClock, SimConfig, Simulator  # noqa: E402
from simulator.clock import to_ms  # noqa: E402

SEED = 20261126
RESULTS = ROOT / "bench" / "results" / "latest.json"
INTEGRATION = ROOT / "Packs" / "EventFetcher" / "Integrations" / "EventFetcher" / "EventFetcher.py"
JSON_TYPE = "application/json; charset=utf-8"
DEFAULT_LOOK_BACK = 5


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full plan is the reference; --quick is a smoke test of the benchmark."""

    cpu_sizes: tuple[int, ...] = (100, 1_000, 10_000)
    cpu_repeats: tuple[int, ...] = (15, 11, 9)  # samples of about 2,000 events each (at least one run)
    rates: tuple[float, ...] = (1e4, 1e5, 1e6)  # events a day
    drained_rates: tuple[float, ...] = (1e4, 1e5)  # scenarios replayed to the end to count misses
    look_backs: tuple[int, ...] = (0, 5)
    max_fetches: tuple[int, ...] = (10, 50, 200)
    warm_up_runs: int = 8
    measured_runs: int = 20
    drain_cap_runs: int = 400
    window_sizes: tuple[int, ...] = (100, 1_000, 10_000, 20_000, 50_000, 100_000)
    backlog: int = 100_000
    backlog_max_fetch: int = 200
    sample_runs: int = 50  # runs at the start and at the end of the drain compared for flatness (a tenth)


QUICK = Plan(cpu_sizes=(100, 1_000), cpu_repeats=(7, 5), rates=(1e5,), drained_rates=(1e5,), max_fetches=(50, 200),
             warm_up_runs=6, measured_runs=8, window_sizes=(100, 1_000, 20_000, 30_000), backlog=10_000,
             sample_runs=10)


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


def settings_for(url: str, api_key: str, now: datetime, first_fetch: str, max_fetch: int,
                 look_back: int) -> ef.Settings:
    """Settings as the integration parses them; max_fetch set directly, since the benchmark goes past 200."""
    params = {"url": url, "credentials": {"identifier": "", "password": api_key}, "first_fetch": first_fetch,
              "max_fetch": "1", "look_back": str(look_back), "isFetch": True}
    return replace(ef.parse_settings(params, now), max_fetch=max_fetch)


def new_runtime() -> None:
    """A fresh demisto runtime per in-process run, as a fresh process would have."""
    demisto_mock.reset(command="fetch-incidents")


def median_cpu(functions: dict[str, tuple[Callable[[], Any], int]], repeats: int) -> dict[str, dict[str, Any]]:
    """CPU seconds of one call of each function: the median of `repeats` samples. Each sample times `batch`
    calls back to back (long enough to measure well), with the garbage collector on as in a real run; the
    functions take turns, so that a drift of the machine during the measurement touches them all alike."""
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, (function, batch) in functions.items():
            gc.collect()
            started = time.process_time()
            for _ in range(batch):
                function()
            samples[name].append((time.process_time() - started) / batch)
    return {name: {"median": statistics.median(values), "samples": values} for name, values in samples.items()}


# ---------------------------------------------------------------------------------------------------------
# 1. CPU per event
# ---------------------------------------------------------------------------------------------------------


def read_listing(url: str, api_key: str, query: dict[str, Any]) -> list[tuple[str | None, bytes]]:
    """The raw bodies of a whole listing, each with the cursor that asks for it (None: the first page)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    pages: list[tuple[str | None, bytes]] = []
    cursor: str | None = None
    while True:
        response = session.get(url + ef.EVENTS_PATH, params={**query, "cursor": cursor} if cursor else query)
        response.raise_for_status()
        pages.append((cursor, response.content))
        cursor = response.json()["next_cursor"]
        if cursor is None or "limit" not in query:  # the naive fetch reads one page
            return pages


def prerendered(url: str, pages: list[tuple[str | None, bytes]], expected_since: str) -> requests_mock.Adapter:
    """Serves recorded pages by cursor without a server, so that only the client's CPU is measured."""
    bodies = dict(pages)

    def answer(request: Any, context: Any) -> bytes:
        query = request.qs
        if query.get("since") != [expected_since]:
            raise AssertionError(f"unexpected listing start {query.get('since')}, expected {expected_since}")
        context.headers["Content-Type"] = JSON_TYPE
        return bodies[query.get("cursor", [None])[0]]

    adapter = requests_mock.Adapter(case_sensitive=True)
    adapter.register_uri("GET", url + ef.EVENTS_PATH, content=answer)
    return adapter


def json_floor(pages: list[tuple[str | None, bytes]], delivered: int) -> Callable[[], None]:
    """The least any fetch must do with these pages: parse them and serialise each delivered event."""
    bodies = [body for _, body in pages]

    def floor() -> None:
        left = delivered
        for body in bodies:
            for event in json.loads(body)["events"][:left]:
                json.dumps(event)
                left -= 1

    return floor


def fixed_cost_per_run() -> dict[str, float]:
    """CPU seconds of a run that finds nothing (one empty page): what every run pays before any event."""
    url, api_key = "http://127.0.0.1:9", "bench-key"
    settings = settings_for(url, api_key, T0, "1 day", 50, DEFAULT_LOOK_BACK)
    empty = [(None, b'{"events": [], "next_cursor": null}')]
    adapter = prerendered(url, empty, ef.format_time(settings.first_fetch))
    naive_adapter = prerendered(url, empty, (T0 - timedelta(days=1)).isoformat())

    def ours() -> None:
        adapter.reset()
        client = ef.EventSourceClient(settings)
        client.session.mount(url, adapter)
        ef.fetch_incidents(client, settings, {}, T0)

    def naive() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {api_key}"
        naive_adapter.reset()
        session.mount(url, naive_adapter)
        naive_fetch.fetch_incidents(session, url, {}, lambda: T0)

    new_runtime()
    ours()
    naive()
    measured = median_cpu({"ours": (ours, 50), "naive": (naive, 50)}, 11)
    return {name: figures["median"] for name, figures in measured.items()}


def bench_cpu(plan: Plan, profile: bool) -> dict[str, Any]:
    rows = []
    profile_text = ""
    fixed = fixed_cost_per_run()
    for size, repeats in zip(plan.cpu_sizes, plan.cpu_repeats, strict=True):
        # one event a second, about the pace of a source with 10^5 events a day
        config = {"backlog": size, "backlog_span_seconds": float(size)}
        with simulator_process(config, SEED + size, T0) as (url, api_key):
            settings = settings_for(url, api_key, T0, "1 day", size, DEFAULT_LOOK_BACK)
            since = ef.format_time(settings.first_fetch)
            pages = read_listing(url, api_key, {"since": since, "limit": API_PAGE_SIZE, "status": "New"})
            naive_since = (T0 - timedelta(days=1)).isoformat()
            naive_pages = read_listing(url, api_key, {"status": "New", "since": naive_since})
            served = sum(len(json.loads(body)["events"]) for _, body in pages)
            if served != size:
                raise RuntimeError(f"the simulator listed {served} events, not {size}")
            naive_delivered = len(json.loads(naive_pages[0][1])["events"])
            adapter = prerendered(url, pages, since)
            naive_adapter = prerendered(url, naive_pages, naive_since)

            def ours_mocked(settings: ef.Settings = settings, adapter: requests_mock.Adapter = adapter,
                            url: str = url, size: int = size) -> None:
                adapter.reset()  # requests-mock keeps a history of requests
                client = ef.EventSourceClient(settings)
                client.session.mount(url, adapter)
                if len(ef.fetch_incidents(client, settings, {}, T0).incidents) != size:
                    raise RuntimeError("the fetch did not deliver every event")

            def ours_http(settings: ef.Settings = settings, size: int = size) -> None:
                client = ef.EventSourceClient(settings)
                if len(ef.fetch_incidents(client, settings, {}, T0).incidents) != size:
                    raise RuntimeError("the fetch did not deliver every event")

            def naive(adapter: requests_mock.Adapter | None, url: str = url, api_key: str = api_key,
                      expected: int = naive_delivered) -> None:
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {api_key}"
                if adapter is not None:
                    adapter.reset()
                    session.mount(url, adapter)
                incidents, _ = naive_fetch.fetch_incidents(session, url, {}, lambda: T0)
                if len(incidents) != expected:
                    raise RuntimeError("the naive fetch did not deliver its page")

            new_runtime()
            ours_mocked()  # warm caches and imports before measuring
            naive(naive_adapter)
            batch = max(1, 2_000 // size)
            naive_batch = max(1, 2_000 // naive_delivered)
            timed = median_cpu({
                "fetch_mocked": (ours_mocked, batch),
                "fetch_http": (ours_http, batch),
                "floor": (json_floor(pages, size), batch),
                "naive_mocked": (lambda a=naive_adapter: naive(a), naive_batch),
                "naive_http": (lambda: naive(None), naive_batch),
                "naive_floor": (json_floor(naive_pages, naive_delivered), naive_batch),
            }, repeats)
            measured = {name: figures["median"] for name, figures in timed.items()}
            if profile and size == max(plan.cpu_sizes):
                profile_text = profile_call(ours_mocked)
        page_bytes = sum(len(body) for _, body in pages)
        rows.append({
            "events": size,
            "pages": len(pages),
            "bytes_per_event": page_bytes / size,
            "repeats": repeats,
            "fetch_us": measured["fetch_mocked"] / size * 1e6,
            "fetch_http_us": measured["fetch_http"] / size * 1e6,
            "floor_us": measured["floor"] / size * 1e6,
            "ratio": measured["fetch_mocked"] / measured["floor"],
            "ratio_http": measured["fetch_http"] / measured["floor"],
            "naive_events": naive_delivered,
            "naive_us": measured["naive_mocked"] / naive_delivered * 1e6,
            "naive_http_us": measured["naive_http"] / naive_delivered * 1e6,
            "naive_floor_us": measured["naive_floor"] / naive_delivered * 1e6,
            "naive_ratio": measured["naive_mocked"] / measured["naive_floor"],
            "samples_seconds": {name: figures["samples"] for name, figures in timed.items()},
        })
    return {"rows": rows, "fixed_seconds": fixed, "profile": profile_text}


def profile_call(function: Callable[[], Any]) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(function)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(15)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------
# 2 and 5. Requests per run in steady state, duplicates and misses, ours and the naive fetch
# ---------------------------------------------------------------------------------------------------------


def steady_ours(place: PlannedWorld, look_back: int, max_fetch: int, plan: Plan, drain: bool) -> dict[str, Any]:
    """Runs a minute apart over the planned scenario, the last run carried as JSON; the measured runs follow
    the warm-up (the look-back window fills in 5 runs). With `drain`, runs go on until every event is visible
    and a run finds nothing new, and misses are counted."""
    settings = settings_for(place.sim.url, place.sim.api_key, T0, T0.isoformat(), max_fetch, look_back)
    first_fetch_ms = to_ms(settings.first_fetch)
    last_run_text = "{}"
    delivered: Counter[str] = Counter()
    runs: list[dict[str, Any]] = []
    arrival_runs = plan.warm_up_runs + plan.measured_runs
    drained = False
    for minute in range(1, arrival_runs + plan.drain_cap_runs + 1):
        now = at_minute(T0, minute)
        place.clock.set(now)
        now_ms = to_ms(now)
        last_run = json.loads(last_run_text)
        since_ms = first_fetch_ms
        if last_run:
            since_ms = max(first_fetch_ms, parse_api_time_ms(last_run["watermark"]) - look_back * MINUTE_MS)
        before = place.requests_served()
        new_runtime()
        outcome = ef.fetch_incidents(ef.EventSourceClient(settings), settings, last_run, now)
        requests_made = place.requests_served() - before
        ids = [incident["dbotMirrorId"] for incident in outcome.incidents]
        delivered.update(ids)
        last_taken = None
        if len(ids) >= max_fetch:
            last_taken = (parse_api_time_ms(outcome.incidents[-1]["occurred"]), ids[-1])
        needed = place.events_to_read(since_ms, now_ms, last_taken)
        last_run_text = json.dumps(outcome.last_run)
        figures = demisto_mock.parse_fetch_figures([("debug", outcome.figures)])
        runs.append({
            "minute": minute,
            "incidents": len(ids),
            "events_read": int(figures["events_read"]),
            "requests": requests_made,
            "minimum": minimum_pages(needed),
            "last_run_bytes": len(last_run_text),
            "lag_minutes": (now_ms - parse_api_time_ms(outcome.last_run["watermark"])) / MINUTE_MS,
        })
        if minute >= arrival_runs and (not drain or (now_ms > place.last_visible_ms and not ids)):
            drained = drain
            break
    measured = runs[plan.warm_up_runs:arrival_runs]
    total = sum(run["requests"] for run in measured)
    minimum = sum(run["minimum"] for run in measured)
    final_now = to_ms(place.clock.now())
    return {
        "look_back": look_back,
        "max_fetch": max_fetch,
        "incidents_per_run": statistics.mean(run["incidents"] for run in measured),
        "events_read_per_run": statistics.mean(run["events_read"] for run in measured),
        "requests_per_run": total / len(measured),
        "minimum_per_run": minimum / len(measured),
        "ratio": total / minimum,
        "max_requests": max(run["requests"] for run in measured),
        "runs_over_minimum": sum(1 for run in measured if run["requests"] > run["minimum"]),
        "last_run_bytes_min": min(run["last_run_bytes"] for run in measured),
        "last_run_bytes_max": max(run["last_run_bytes"] for run in measured),
        "lag_minutes_end": measured[-1]["lag_minutes"],
        "keeps_up": measured[-1]["lag_minutes"] <= 2,
        "delivered": sum(delivered.values()),
        "duplicates": sum(count - 1 for count in delivered.values()),
        "drained": drained,
        "runs_total": len(runs),
        "misses": len(place.visible_ids(final_now) - delivered.keys()) if drained else None,
        "runs": runs,
    }


def steady_naive(place: PlannedWorld, plan: Plan) -> dict[str, Any]:
    """The guide's fetch on the same scenario, a minute apart, replayed until every event is visible."""
    last_run: dict[str, Any] = {}
    delivered: Counter[str] = Counter()
    runs: list[dict[str, Any]] = []
    arrival_runs = plan.warm_up_runs + plan.measured_runs
    for minute in range(1, arrival_runs + plan.drain_cap_runs + 1):
        now = at_minute(T0, minute)
        place.clock.set(now)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {place.sim.api_key}"
        before = place.requests_served()
        incidents, last_run = naive_fetch.fetch_incidents(session, place.sim.url, json.loads(json.dumps(last_run)),
                                                          place.clock.now)
        ids = [json.loads(incident["rawJSON"])["id"] for incident in incidents]
        delivered.update(ids)
        runs.append({"minute": minute, "incidents": len(ids), "requests": place.requests_served() - before,
                     "last_run_bytes": len(json.dumps(last_run))})
        if minute >= arrival_runs and to_ms(now) > place.last_visible_ms and not ids:
            break
    measured = runs[plan.warm_up_runs:arrival_runs]
    visible = place.visible_ids(to_ms(place.clock.now()))
    return {
        "incidents_per_run": statistics.mean(run["incidents"] for run in measured),
        "requests_per_run": statistics.mean(run["requests"] for run in measured),
        "full_pages": sum(1 for run in runs if run["incidents"] >= NAIVE_PAGE_SIZE),
        "last_run_bytes_max": max(run["last_run_bytes"] for run in runs),
        "delivered": sum(delivered.values()),
        "duplicates": sum(count - 1 for count in delivered.values()),
        "misses": len(visible - delivered.keys()),
        "runs_total": len(runs),
    }


def bench_steady(plan: Plan) -> dict[str, Any]:
    scenarios = []
    for rate in plan.rates:
        drain = rate in plan.drained_rates
        with PlannedWorld(Arrivals(rate), T0, plan.warm_up_runs + plan.measured_runs, SEED + int(rate)) as place:
            rows = [steady_ours(place, look_back, max_fetch, plan, drain)
                    for look_back in plan.look_backs for max_fetch in plan.max_fetches]
            naive = steady_naive(place, plan) if drain else None
            served_ids = {truth.id for truth in place.sim.truth()}
            if served_ids != {item.event_id for item in place.plan}:
                raise RuntimeError("the simulator's ground truth differs from the planned events")
            scenarios.append({"events_per_day": rate, "events": len(place.plan), "ours": rows, "naive": naive,
                              "arrivals": vars(place.arrivals)})
    return {"scenarios": scenarios}


# ---------------------------------------------------------------------------------------------------------
# 3. Last-run size
# ---------------------------------------------------------------------------------------------------------


def last_run_size(events: int, tie: bool, id_length: int) -> dict[str, Any]:
    """The last run after one fetch delivered `events` events that all lie in the look-back window: spread
    one per millisecond slot across the window, or all on one millisecond (a tie)."""
    look_back = timedelta(minutes=DEFAULT_LOOK_BACK)
    newest = T0
    step_ms = 0 if tie else (DEFAULT_LOOK_BACK * MINUTE_MS) // events
    batch = []
    for index in range(events):
        created = newest - timedelta(milliseconds=step_ms * (events - 1 - index))
        event_id = f"evt-{index:06d}" if id_length == 10 else str(uuid.UUID(int=index + 1))
        batch.append({"id": event_id, "created_time": ef.format_time(created), "status": "New"})
    new_runtime()
    run = ef.FetchRun(ef.FetchState.first(T0 - timedelta(days=1)), events, look_back, newest)
    run.take(batch)
    text = json.dumps(ef.dump_state(run.next_state()))
    remembered = sum(len(ids) for ids in json.loads(text)["seen_ids"].values())
    return {"events": events, "tie": tie, "id_length": id_length, "bytes": len(text), "remembered": remembered,
            "bytes_per_remembered": len(text) / remembered if remembered else None}


def bench_last_run(plan: Plan) -> dict[str, Any]:
    rows = []
    for events in plan.window_sizes:
        rows.append(last_run_size(events, tie=False, id_length=10))
        rows.append(last_run_size(events, tie=True, id_length=10))
        if events <= ef.MAX_SEEN_IDS:
            rows.append(last_run_size(events, tie=False, id_length=36))
    naive_bytes = len(json.dumps({"start_time": T0.isoformat()}))
    return {"rows": rows, "cap": ef.MAX_SEEN_IDS, "naive_bytes": naive_bytes}


# ---------------------------------------------------------------------------------------------------------
# 4. Backlog catch-up through the runner
# ---------------------------------------------------------------------------------------------------------


def runner_command(folder: Path, integration: Path, name: str) -> list[str]:
    command = [sys.executable, str(ROOT / "demisto_mock.py"), "--integration", str(integration)]
    return [*command, "--params", str(folder / "params.json"), "--state", str(folder / f"{name}-state.json"),
            "--inbox", str(folder / f"{name}-inbox.jsonl"), "--report", str(folder / f"{name}-report.json"),
            "fetch-incidents"]


def drain_through_runner(folder: Path, name: str, integration: Path, max_runs: int,
                         progress: Callable[[int, int], None]) -> list[dict[str, Any]]:
    """Runs fetch-incidents in a fresh process per run until a run creates nothing."""
    command = runner_command(folder, integration, name)
    state_path, inbox_path, report_path = (folder / f"{name}-{part}" for part in
                                           ("state.json", "inbox.jsonl", "report.json"))
    runs: list[dict[str, Any]] = []
    offset = 0
    delivered = 0
    for number in range(1, max_runs + 1):
        previous = json.loads(state_path.read_text())["last_run"] if state_path.exists() else {}
        usage = run_child(command, folder / f"{name}-output.txt")
        report = json.loads(report_path.read_text())
        if usage.exit_code != 0 or not report["ok"]:
            raise RuntimeError(f"{name} run {number} failed: {report.get('error')} {usage.output[-500:]}")
        incidents = []
        if inbox_path.exists():
            with inbox_path.open(encoding="utf-8") as inbox:
                inbox.seek(offset)
                incidents = [json.loads(line) for line in inbox.read().splitlines()]
                offset = inbox.tell()
        ids = [incident.get("dbotMirrorId") or json.loads(incident["rawJSON"])["id"] for incident in incidents]
        last_run = json.loads(state_path.read_text())["last_run"]
        figures = demisto_mock.parse_fetch_figures(report["logs"])
        delivered += len(ids)
        runs.append({
            "run": number,
            "incidents": len(ids),
            "ids": ids,
            "last": (parse_api_time_ms(incidents[-1]["occurred"]), ids[-1]) if incidents else None,
            "previous_watermark": previous.get("watermark"),
            "pages": int(figures["pages"]) if "pages" in figures else None,
            "last_run_bytes": len(json.dumps(last_run)),
            "wall_seconds": usage.wall_seconds,
            "run_seconds": report["duration_seconds"],
            "cpu_seconds": usage.cpu_seconds,
            "max_rss_kib": usage.max_rss_kib,
        })
        progress(number, delivered)
        if not ids:
            break
    return runs


def bench_backlog(plan: Plan, folder: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    config = SimConfig(backlog=plan.backlog, request_log_limit=1_000)
    sim = Simulator(config, seed=SEED, clock=ManualClock()).start()
    try:
        params = {"url": sim.url, "credentials": {"identifier": "", "password": sim.api_key},
                  "first_fetch": "2 days", "max_fetch": str(plan.backlog_max_fetch),
                  "look_back": str(DEFAULT_LOOK_BACK), "isFetch": True}
        (folder / "params.json").write_text(json.dumps(params))
        baseline = run_child([sys.executable, "-c", "import json, requests"], folder / "baseline.txt")

        def report(number: int, delivered: int) -> None:
            if number % 50 == 0:
                progress(f"backlog drain: run {number}, {delivered} incidents")

        max_runs = plan.backlog // plan.backlog_max_fetch + 50
        ours = drain_through_runner(folder, "ours", Path(ef.__file__), max_runs, report)
        naive = drain_through_runner(folder, "naive", ROOT / "bench" / "naive_fetch.py", 10, lambda n, d: None)
        keys = sorted((to_ms(truth.created_time), truth.id) for truth in sim.truth() if truth.visible)
    finally:
        sim.stop()
    # The fewest requests each run could have made: the look-back window behind the previous watermark plus
    # the new events, up to the last one taken, in pages of 500.
    for run in ours:
        since = 0
        if run["previous_watermark"]:
            since = parse_api_time_ms(run["previous_watermark"]) - DEFAULT_LOOK_BACK * MINUTE_MS
        start = bisect.bisect_left(keys, (since, ""))
        end = bisect.bisect_right(keys, run["last"]) if run["incidents"] >= plan.backlog_max_fetch else len(keys)
        run["minimum"] = minimum_pages(max(0, end - start))
    all_ids = {event_id for _, event_id in keys}
    return {
        "backlog": plan.backlog,
        "max_fetch": plan.backlog_max_fetch,
        "baseline_rss_kib": baseline.max_rss_kib,
        "ours": summarise_drain(ours, all_ids, plan),
        "naive": summarise_drain(naive, all_ids, plan),
    }


def summarise_drain(runs: list[dict[str, Any]], all_ids: set[str], plan: Plan) -> dict[str, Any]:
    working = [run for run in runs if run["incidents"]]
    delivered = Counter(event_id for run in runs for event_id in run["ids"])
    sample = max(1, min(plan.sample_runs, len(working) // 2))
    start, end = working[:sample], working[-sample:]

    def median(part: list[dict[str, Any]], key: str) -> float:
        return statistics.median(run[key] for run in part)

    with_minimum = [run for run in runs if "minimum" in run]
    return {
        "runs": len(runs),
        "runs_with_incidents": len(working),
        "minimum_runs": -(-len(all_ids) // plan.backlog_max_fetch),
        "delivered": sum(delivered.values()),
        "duplicates": sum(count - 1 for count in delivered.values()),
        "misses": len(all_ids - delivered.keys()),
        "sample": sample,
        "wall_start": median(start, "wall_seconds"),
        "wall_end": median(end, "wall_seconds"),
        "run_start": median(start, "run_seconds"),
        "run_end": median(end, "run_seconds"),
        "cpu_start": median(start, "cpu_seconds"),
        "cpu_end": median(end, "cpu_seconds"),
        "rss_start_kib": median(start, "max_rss_kib"),
        "rss_end_kib": median(end, "max_rss_kib"),
        "rss_peak_kib": max(run["max_rss_kib"] for run in runs),
        "last_run_bytes": [runs[0]["last_run_bytes"], runs[len(runs) // 2]["last_run_bytes"],
                           runs[-1]["last_run_bytes"]],
        "last_run_bytes_max": max(run["last_run_bytes"] for run in runs),
        "last_run_bytes_median": statistics.median(run["last_run_bytes"] for run in runs),
        "requests": sum(run["pages"] or 0 for run in runs) if with_minimum else None,
        "minimum_requests": sum(run["minimum"] for run in with_minimum) if with_minimum else None,
        "wall_total": sum(run["wall_seconds"] for run in runs),
        "wall_by_tenth": [median(working[len(working) * tenth // 10:len(working) * (tenth + 1) // 10], "wall_seconds")
                          for tenth in range(10)] if len(working) >= 10 else [],
        "per_run": [{key: value for key, value in run.items() if key not in ("ids", "last")} for run in runs],
    }


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


def rate_name(rate: float) -> str:
    return f"10^{round(math.log10(rate))}/day"


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def report(results: dict[str, Any]) -> str:
    out: list[str] = []
    cpu, steady, sizes, backlog = (results[key] for key in ("cpu", "steady", "last_run", "backlog"))
    out.append("1. CPU per event of a fetch run (time.process_time, median), next to the JSON floor")
    out.append("   floor = json.loads of the same pages + json.dumps of each delivered event. 'mocked': pages")
    out.append("   pre-rendered and served by requests-mock in process (client CPU only); 'http': real requests over")
    out.append("   loopback to a simulator in another process (client CPU, sockets included, server not counted).")
    out.append("   A run = new client + fetch_incidents from an empty last run; ~1 event/s; max_fetch = events.")
    out.append(table(
        ["events/run", "pages", "B/event", "fetch us/ev", "floor us/ev", "ratio", "http us/ev", "ratio",
         "naive ev", "naive us/ev", "its floor", "ratio"],
        [[f"{row['events']:,}", row["pages"], f"{row['bytes_per_event']:.0f}", f"{row['fetch_us']:.1f}",
          f"{row['floor_us']:.1f}", f"{row['ratio']:.2f}x", f"{row['fetch_http_us']:.1f}",
          f"{row['ratio_http']:.2f}x", row["naive_events"], f"{row['naive_us']:.1f}",
          f"{row['naive_floor_us']:.1f}", f"{row['naive_ratio']:.2f}x"] for row in cpu["rows"]]))
    out.append("   naive: one page of the API's default 100 events whatever the backlog; 'naive us/ev' is per"
               " delivered event.")
    fixed = cpu["fixed_seconds"]
    out.append(f"   A run that finds nothing (new client, one empty page, mocked) costs {fixed['ours'] * 1e3:.2f} ms;"
               f" the naive one {fixed['naive'] * 1e3:.2f} ms.")
    out.append("")
    out.append("2. Requests per run in steady state against the fewest the API allows for the same work")
    out.append(f"   minimum = pages of {API_PAGE_SIZE} to read the look-back window behind the previous watermark plus"
               " the new events,")
    out.append("   counted from the planned ground truth; requests counted by the simulator. Runs a minute apart,"
               " last run")
    out.append("   carried as JSON; ~0.5% of arrivals are ties of 120 events, 5% of events visible up to 4 min late.")
    plan_text = results["plan"]
    out.append(f"   {plan_text['warm_up_runs']} warm-up runs, then {plan_text['measured_runs']} measured runs;"
               " 'misses' after replaying until all is visible.")
    rows = []
    for scenario in steady["scenarios"]:
        for row in scenario["ours"]:
            misses = "n/a" if row["misses"] is None else row["misses"]
            rows.append([rate_name(scenario["events_per_day"]), row["look_back"], row["max_fetch"],
                         f"{row['incidents_per_run']:.1f}", f"{row['events_read_per_run']:.0f}",
                         f"{row['requests_per_run']:.2f}", f"{row['minimum_per_run']:.2f}", f"{row['ratio']:.2f}x",
                         "yes" if row["keeps_up"] else f"no, {row['lag_minutes_end']:.0f} min behind",
                         f"{row['last_run_bytes_min']}-{row['last_run_bytes_max']}", row["duplicates"], misses])
        naive = scenario["naive"]
        if naive:
            rows.append([rate_name(scenario["events_per_day"]), "naive", NAIVE_PAGE_SIZE,
                         f"{naive['incidents_per_run']:.1f}", f"<={NAIVE_PAGE_SIZE}",
                         f"{naive['requests_per_run']:.2f}", "-", "-", "never looks back",
                         f"{naive['last_run_bytes_max']}", naive["duplicates"], naive["misses"]])
    out.append(table(["source", "look_back", "max_fetch", "inc/run", "read/run", "req/run", "min/run", "ratio",
                      "keeps up", "last-run B", "dups", "misses"], rows))
    out.append("   look_back 0 trades late events for fewer reads: misses there are events that arrived late, by"
               " design.")
    out.append("   max_fetch 200 a minute caps any fetch at 288,000 events a day: at 10^6/day every setting falls"
               " behind, and the")
    out.append("   rows show what a run costs meanwhile (the whole look-back window is read again on each run).")
    out.append("")
    out.append("3. Last-run size: len(json.dumps(last run)) after a run that delivered events all inside the"
               f" {DEFAULT_LOOK_BACK}-minute")
    out.append(f"   look-back window; remembered ids are capped at MAX_SEEN_IDS = {sizes['cap']:,}: over it the"
               " oldest are dropped and")
    out.append("   the floor rises past them (events arriving late behind it are then not fetched).")
    size_rows = []
    for row in sizes["rows"]:
        shape = "one tie" if row["tie"] else "1 per ms slot"
        dropped = row["events"] - row["remembered"]
        size_rows.append([f"{row['events']:,}", shape, row["id_length"], f"{row['bytes']:,}",
                          f"{row['remembered']:,}", f"{dropped:,}" if dropped else "0",
                          f"{row['bytes_per_remembered']:.1f}"])
    out.append(table(["events in window", "spread", "id chars", "bytes", "remembered", "dropped (cap)",
                      "B/remembered"], size_rows))
    out.append(f"   naive: {sizes['naive_bytes']} bytes always (it remembers no event).")
    out.append("")
    ours, naive = backlog["ours"], backlog["naive"]
    out.append(f"4. Backlog catch-up: {backlog['backlog']:,} events over a day, max_fetch {backlog['max_fetch']},"
               f" look_back {DEFAULT_LOOK_BACK}, every run through")
    out.append("   demisto_mock.py in a fresh process, as the server runs it (simulator in this process, on loopback).")
    out.append(f"   Medians of the first and last {ours['sample']} runs: the process's wall time, the run inside it"
               " (runner's report),")
    out.append("   the process's CPU; peak = the child's ru_maxrss from wait4, spawned from a small launcher so that"
               " it is its own.")
    out.append(f"   baseline: a process that only imports json and requests peaks at "
               f"{backlog['baseline_rss_kib'] / 1024:.1f} MiB.")
    drain_rows = []
    for name, part in (("EventFetcher", ours), ("naive", naive)):
        drain_rows.append([name, part["runs_with_incidents"], part["minimum_runs"] if part is ours else "-",
                           f"{part['wall_start']:.3f} -> {part['wall_end']:.3f}",
                           f"{part['run_start']:.3f} -> {part['run_end']:.3f}",
                           f"{part['cpu_start']:.3f} -> {part['cpu_end']:.3f}",
                           f"{part['rss_peak_kib'] / 1024:.1f}",
                           " / ".join(f"{size:,}" for size in part["last_run_bytes"]),
                           part["duplicates"], f"{part['misses']:,}"])
    out.append(table(["fetch", "runs", "min runs", "process s start->end", "in-run s", "CPU s", "peak MiB",
                      "last-run B first/mid/last", "dups", "misses"], drain_rows))
    out.append(f"   requests over the drain: {ours['requests']:,} against a minimum of {ours['minimum_requests']:,};"
               f" the runs took {ours['wall_total']:.0f} s in all.")
    if ours["wall_by_tenth"]:
        out.append("   process seconds per run, median of each tenth of the drain: "
                   + " ".join(f"{seconds:.3f}" for seconds in ours["wall_by_tenth"]))
    out.append("   naive: one page, then 'now' as the next start: the rest of the backlog is never fetched.")
    out.append("")
    out.append("5. Side by side, and the targets")
    out.append(summary_table(results))
    return "\n".join(out)


def targets(results: dict[str, Any]) -> dict[str, bool]:
    cpu_rows = results["cpu"]["rows"]
    rows = [row for scenario in results["steady"]["scenarios"] for row in scenario["ours"]]
    sizes = [row for row in results["last_run"]["rows"] if row["id_length"] == 10]
    ours = results["backlog"]["ours"]
    flat_bytes = ours["last_run_bytes_max"] <= 1.5 * ours["last_run_bytes_median"]
    return {
        "cpu_within_2x_floor": all(row["ratio"] <= 2.0 for row in cpu_rows),
        "requests_equal_minimum": all(row["ratio"] == 1.0 for row in rows)
        and ours["requests"] == ours["minimum_requests"],
        "last_run_at_most_60_bytes_per_event": all(row["bytes_per_remembered"] <= 60 for row in sizes),
        "last_run_flat_in_history": flat_bytes,
        "run_time_flat_across_drain": ours["wall_end"] <= 1.2 * ours["wall_start"],
        "backlog_in_minimum_runs": ours["runs_with_incidents"] == ours["minimum_runs"],
        "no_duplicates_no_misses": ours["duplicates"] == 0 and ours["misses"] == 0
        and all(row["duplicates"] == 0 for row in rows)
        and all(row["misses"] == 0 for row in rows if row["look_back"] > 0 and row["misses"] is not None),
    }


def summary_table(results: dict[str, Any]) -> str:
    cpu = results["cpu"]["rows"][-1]
    compared = [scenario for scenario in results["steady"]["scenarios"] if scenario["naive"]]
    default = next((scenario for scenario in compared if scenario["events_per_day"] == 1e5), compared[-1])
    ours_row = next(row for row in default["ours"] if row["look_back"] == DEFAULT_LOOK_BACK
                    and row["max_fetch"] == max(row["max_fetch"] for row in default["ours"]))
    naive_row = default["naive"]
    ours, naive = results["backlog"]["ours"], results["backlog"]["naive"]
    sizes = [row for row in results["last_run"]["rows"] if row["id_length"] == 10]
    worst_bytes = max(row["bytes_per_remembered"] for row in sizes)
    long_ids = max(row["bytes_per_remembered"] for row in results["last_run"]["rows"] if row["id_length"] == 36)
    worst_ratio = max(row["ratio"] for row in results["cpu"]["rows"])
    all_rows = [row for scenario in results["steady"]["scenarios"] for row in scenario["ours"]]
    worst_requests = max(row["ratio"] for row in all_rows)
    met = targets(results)
    rate = rate_name(default["events_per_day"])
    rows = [
        [f"CPU per event, {cpu['events']:,} events/run", f"{cpu['fetch_us']:.1f} us ({cpu['ratio']:.2f}x floor)",
         f"{results['cpu']['rows'][0]['naive_us']:.1f} us ({results['cpu']['rows'][0]['naive_ratio']:.2f}x),"
         f" {NAIVE_PAGE_SIZE} ev max", f"<= 2x floor (worst {worst_ratio:.2f}x)", verdict(met["cpu_within_2x_floor"])],
        ["requests per run / minimum", f"{ours_row['requests_per_run']:.2f} / {ours_row['minimum_per_run']:.2f}"
         f" ({rate}, max_fetch {ours_row['max_fetch']})", f"{naive_row['requests_per_run']:.2f} (one page only)",
         f"= minimum (worst {worst_requests:.2f}x)", verdict(met["requests_equal_minimum"])],
        ["last-run bytes per remembered event", f"<= {worst_bytes:.1f}; {long_ids:.1f} if ids had 36 chars",
         f"{results['last_run']['naive_bytes']} B total", "<= ~60",
         verdict(met["last_run_at_most_60_bytes_per_event"])],
        [f"last run over a {ours['delivered']:,}-event history", " / ".join(f"{b:,}" for b in ours["last_run_bytes"])
         + " B", f"{naive['last_run_bytes_max']} B", "flat", verdict(met["last_run_flat_in_history"])],
        [f"backlog of {results['backlog']['backlog']:,}: runs", f"{ours['runs_with_incidents']}"
         f" (minimum {ours['minimum_runs']})", f"{naive['runs_with_incidents']}, then idle with"
         f" {naive['misses']:,} never fetched", "= minimum", verdict(met["backlog_in_minimum_runs"])],
        ["time per run, drain start -> end", f"{ours['wall_start']:.3f} -> {ours['wall_end']:.3f} s",
         f"{naive['wall_start']:.3f} s", "flat (within 20%)", verdict(met["run_time_flat_across_drain"])],
        ["peak memory of a run", f"{ours['rss_peak_kib'] / 1024:.1f} MiB", f"{naive['rss_peak_kib'] / 1024:.1f} MiB",
         "-", "-"],
        [f"duplicates / misses ({rate}, and the backlog)",
         f"{ours_row['duplicates']} / {ours_row['misses']}, {ours['duplicates']} / {ours['misses']}",
         f"{naive_row['duplicates']} / {naive_row['misses']:,}, {naive['duplicates']} / {naive['misses']:,}",
         "0 / 0", verdict(met["no_duplicates_no_misses"])],
    ]
    return table(["figure", "EventFetcher", "naive fetch (guide)", "target", ""], rows, left=5)


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
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the largest CPU run")
    parser.add_argument("--integration", type=Path, default=INTEGRATION,
                        help="the EventFetcher.py to measure (default: the pack's)")
    options = parser.parse_args(argv)
    global ef
    ef = load_integration(options.integration.resolve())
    plan = QUICK if options.quick else Plan()
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {message}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {"plan": vars(plan), "quick": options.quick, "environment": environment(),
                               "integration": str(options.integration)}
    progress("1/4 CPU per event")
    results["cpu"] = bench_cpu(plan, options.profile)
    progress("2/4 requests per run in steady state, and the naive fetch on the same scenarios")
    results["steady"] = bench_steady(plan)
    progress("3/4 last-run size")
    results["last_run"] = bench_last_run(plan)
    progress("4/4 backlog catch-up through the runner")
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        results["backlog"] = bench_backlog(plan, Path(folder), progress)
    results["targets"] = targets(results)
    results["seconds"] = time.monotonic() - started
    text = report(results)
    title = "EventFetcher benchmark" + (" (--quick: a smoke run, not reference figures)" if options.quick else "")
    print(f"{title}: Python {platform.python_version()}, {os.cpu_count()} CPUs, commit "
          f"{results['environment']['commit']}, {results['seconds']:.0f} s\n")
    print(text)
    if options.profile and results["cpu"]["profile"]:
        print("\ncProfile of the largest mocked fetch run (by own time):\n" + results["cpu"]["profile"])
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"\nfigures: {options.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
