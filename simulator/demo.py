"""`make run`: the integration's fetch-incidents on a schedule, against the bundled simulator or a real API.

Without --params it starts a realistic simulator on loopback speaking the --source API (the Event Source by default;
graph, okta, servicenow, pagerduty, jira or custom, each with its awkward behaviours on), fetches for a few cycles
seconds apart, shows what came in as an analyst would see it (the incident type the pack's classifier picks and the
fields its incoming mapper fills), and checks the inbox against the simulator's ground truth in that API's ids: no
item twice, none the source does not hold. With --params it runs the same loop against the API those instance
parameters point at, keeping state between invocations. Either way it runs what users upload,
Integrations/integration-EventFetcher.yml, as the server runs it (demisto_mock.py's unified-YAML mode), every cycle
in one reused process.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import demisto_mock  # noqa: E402  (needs ROOT on sys.path first)
from simulator import RealClock, SimConfig, Simulator, format_time  # noqa: E402
from simulator.dialects import DIALECT_NAMES, instance_params  # noqa: E402
from xsoar_mapping import PackMapping  # noqa: E402

RUN_FOLDER = ROOT / "run"
# What users upload, run as the server runs it: every fetch in one reused process, as in the server's container.
UNIFIED = ROOT / "Integrations" / "integration-EventFetcher.yml"
SHOWN_PER_CYCLE = 5
SEVERITY_NAMES = {0: "unknown", 0.5: "info", 1: "low", 2: "medium", 3: "high", 4: "critical"}
SOURCES = ("event_source", *DIALECT_NAMES)
SHOWN_ID_WIDTH = 14
SHOWN_VALUE_WIDTH = 48
# What each API does that a client must survive, switched on for `make run SOURCE=<source>` (simulator/README.md),
# besides the realistic store (late items, ties, status changes, rare random faults) they all share.
AWKWARD = {
    "event_source": "a 429 and a 503 first",
    "graph": "two 429s (Retry-After) and a 503 first, fractions of 7 digits, no @odata.nextLink on the last page, "
             "tokens that expire after 20 seconds and all revoked after cycle 2",
    "okta": "two 429s (X-Rate-Limit-Reset, no Retry-After) and a 503 first, an empty page that still links onwards",
    "servicenow": "two 429s (Retry-After, X-RateLimit-*) and a 503 first, short pages that shift offsets, "
                  "whole-second times",
    "pagerduty": "two 429s (ratelimit-reset only) and a 503 first, short pages, whole-second times",
    "jira": "two 429s (Retry-After, X-RateLimit-Reset) and a 503 first, times in the Jira user's zone "
            "(Asia/Kolkata), an empty page that still gives a token",
    "custom": "two 429s (Retry-After) and a 503 first, items in no order, short pages",
}


def read_inbox(inbox: Path) -> list[dict[str, Any]]:
    if not inbox.exists():
        return []
    return [json.loads(line) for line in inbox.read_text(encoding="utf-8").splitlines() if line.strip()]


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def field_text(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def show_incidents(incidents: list[dict[str, Any]], pack: PackMapping, instance_type: str) -> None:
    """A few of a cycle's incidents as a small table, the oldest first as they were created, each with the incident
    type the classifier picks and the fields the incoming mapper fills, as the incident lands on the server."""
    for incident in incidents[:SHOWN_PER_CYCLE]:
        severity = SEVERITY_NAMES.get(incident.get("severity", 0), "?")
        shown_id = shorten(incident["dbotMirrorId"], SHOWN_ID_WIDTH)
        print(f"    {incident['occurred']}  {severity:<8}  {shown_id:<{SHOWN_ID_WIDTH}}  {incident['name'][:60]}")
        incident_type, fields = pack.land(incident, instance_type)
        mapped = "; ".join(f"{name}: {shorten(field_text(value), SHOWN_VALUE_WIDTH)}"
                           for name, value in fields.items() if name != "dbotMirrorId")
        print(f"      [{incident_type or 'no type: unclassified, and the instance sets none'}] {mapped}")
    if len(incidents) > SHOWN_PER_CYCLE:
        print(f"    ... and {len(incidents) - SHOWN_PER_CYCLE} more")


def show_landing(incidents: list[dict[str, Any]], pack: PackMapping, instance_type: str) -> None:
    """How the whole inbox lands: how many incidents of each type, and how often each field was filled."""
    types: dict[str, int] = {}
    filled: dict[str, dict[str, int]] = {}
    for incident in incidents:
        incident_type, fields = pack.land(incident, instance_type)
        types[incident_type] = types.get(incident_type, 0) + 1
        counts = filled.setdefault(incident_type, {})
        for name in fields:
            counts[name] = counts.get(name, 0) + 1
    for incident_type, count in types.items():
        shown = ", ".join(f"{name} {n}/{count}" for name, n in filled[incident_type].items()) or "no field mapped"
        landed = incident_type or "no incident type (a Custom source's items keep the instance's, none here)"
        print(f"landed as {landed}: {count} incidents; fields filled: {shown}")


def fetch_on_schedule(params: Path, folder: Path, cycles: int, every: float,
                      between_cycles: Callable[[int], None] | None = None) -> list[demisto_mock.CycleRecord]:
    """Runs the unified YAML's fetch-incidents once per cycle, all cycles in one reused process as the server's
    container runs them, printing each cycle and the incidents it created; ``between_cycles`` gets each cycle's
    number once it has run."""
    inbox, state = folder / "inbox.jsonl", folder / "state.json"
    shown = len(read_inbox(inbox))
    pack = PackMapping.load()
    instance_type = str(json.loads(params.read_text(encoding="utf-8")).get("incidentType") or "")

    def show_new_incidents(record: demisto_mock.CycleRecord) -> None:
        nonlocal shown
        incidents = read_inbox(inbox)
        show_incidents(incidents[shown:], pack, instance_type)
        shown = len(incidents)
        if between_cycles is not None:
            between_cycles(record.cycle)

    records = demisto_mock.run_schedule(params=params, integration=UNIFIED, state=state, inbox=inbox, cycles=cycles,
                                        every=every, process="reused", debug=True, err=io.StringIO(),
                                        on_record=show_new_incidents)
    show_landing(read_inbox(inbox), pack, instance_type)
    print(f"inbox: {shown_path(inbox)}  state: {shown_path(state)}")
    return records


def shown_path(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def ground_truth(simulator: Simulator, source: str, first_fetch: datetime) -> tuple[set[str], set[str]]:
    """(ids of the visible items created since the first fetch that still match the filter, ids of every item), in
    the source's own ids: what the inbox should hold once caught up, and all it may hold."""
    if source == "event_source":
        truths = [(t.id, t.visible, t.created_time, t.event.get("status") == "New") for t in simulator.truth()]
    else:
        new = simulator.dialects[source].status("New")  # None: the API has no status, every item comes
        truths = [(t.id, t.visible, t.created_time,
                   new is None or (bool(t.status_history) and t.status_history[-1][1] == new))
                  for t in simulator.dialects.truth(source)]
    still_new = {item_id for item_id, visible, created, is_new in truths
                 if visible and is_new and created >= first_fetch}
    return still_new, {item_id for item_id, *_ in truths}


def compare_with_ground_truth(simulator: Simulator, source: str, inbox: Path, first_fetch: datetime) -> bool:
    """Duplicates, misses and strangers of the inbox against what the simulator holds; True when exactly once held."""
    fetched = [incident["dbotMirrorId"] for incident in read_inbox(inbox)]
    still_new, every_item = ground_truth(simulator, source, first_fetch)
    duplicates = len(fetched) - len(set(fetched))
    strangers = set(fetched) - every_item
    print(f"ground truth ({source}): {len(still_new)} visible items still new since {format_time(first_fetch)}; "
          f"{len(fetched)} incidents, {duplicates} duplicates, {len(strangers)} not in the source, "
          f"{len(still_new - set(fetched))} of them not fetched yet")
    return duplicates == 0 and not strangers


def make_awkward(simulator: Simulator, source: str) -> Callable[[int], None] | None:
    """Switch on what the source's API does that a client must survive (AWKWARD); returns what to do between cycles."""
    endpoint = "list" if source == "event_source" else f"{source}.list"
    # a rate limit (in the API's own signalling) and a server error on the first requests: the first cycle retries
    simulator.inject("rate_limit", count=1 if source == "event_source" else 2, retry_after="seconds", value=1,
                     endpoint=endpoint)
    simulator.inject("server_error", status=503, body="html", endpoint=endpoint)
    if source in ("okta", "jira"):
        simulator.inject("empty_page", endpoint=endpoint)
    if source in ("servicenow", "pagerduty", "custom"):
        simulator.inject("short_page", count=2, fraction=0.5, endpoint=endpoint)
    if source == "graph":
        simulator.dialects.configure("graph", token_ttl_seconds=20, fraction_digits=7)
        graph = simulator.dialects["graph"]

        def revoke_tokens(cycle: int) -> None:
            if cycle == 2:
                graph.expire_tokens()  # the next request meets a 401: one new token, and the fetch goes on

        return revoke_tokens
    return None


def run_against_simulator(source: str, cycles: int, every: float) -> int:
    folder = RUN_FOLDER / ("simulator" if source == "event_source" else f"simulator-{source}")
    shutil.rmtree(folder, ignore_errors=True)  # a new simulator has new events: start from a first run
    folder.mkdir(parents=True)
    with Simulator(SimConfig.realistic(), seed=7, clock=RealClock()) as simulator:
        start = simulator.clock.now() - timedelta(hours=1)
        first_fetch = format_time(start)
        params: dict[str, Any] = {**instance_params(simulator, source), "isFetch": True, "first_fetch": first_fetch,
                                  "max_fetch": "200", "look_back": "5"}
        if source != "custom":
            # what a new instance holds until the user changes it; the classifier gives each API's items their type,
            # and a Custom source's items take the instance's
            params["incidentType"] = "Event Source Event"
        params_path = folder / "params.json"
        params_path.write_text(json.dumps(params, indent=2), encoding="utf-8")
        between_cycles = make_awkward(simulator, source)
        api = "the Event Source API" if source == "event_source" else f"the {params['source']} API"
        print(f"simulator at {simulator.url} speaking {api}: realistic profile (backlog, ties, late items, status "
              f"changes, rare faults) and {AWKWARD[source]}; fetching items created since {first_fetch}")
        records = fetch_on_schedule(params_path, folder, cycles, every, between_cycles)
        exactly_once = compare_with_ground_truth(simulator, source, folder / "inbox.jsonl", start)
        stats = simulator.stats()
        print(f"simulator served {stats['requests_total']} requests; faults injected: {stats['by_fault'] or 'none'}")
        if source == "graph":
            print(f"Graph access tokens issued: {simulator.dialects['graph'].tokens_issued}")
    return 0 if exactly_once and all(record.ok for record in records) else 1


def run_against_real_api(params: Path, cycles: int, every: float) -> int:
    if not params.is_file():
        print(f"error: the parameters file {params} does not exist.", file=sys.stderr)
        return 2
    folder = RUN_FOLDER / params.stem
    folder.mkdir(parents=True, exist_ok=True)  # state carries over between invocations, as on a server
    print(f"fetching with the instance parameters in {params}; state and inbox in {shown_path(folder)}")
    records = fetch_on_schedule(params.resolve(), folder, cycles, every)
    return 0 if all(record.ok for record in records) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, help="instance parameters (JSON) of a real source")
    parser.add_argument("--source", choices=SOURCES, default="event_source",
                        help="the API the simulator speaks, with its awkward behaviours on (default event_source)")
    parser.add_argument("--cycles", type=int, default=8, help="fetch runs (default 8)")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between runs (default 2)")
    options = parser.parse_args(argv)
    if options.params:
        return run_against_real_api(options.params, options.cycles, options.every)
    return run_against_simulator(options.source, options.cycles, options.every)


if __name__ == "__main__":
    sys.exit(main())
