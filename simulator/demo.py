"""`make run`: the integration's fetch-incidents on a schedule, against the bundled simulator or a real API.

Without --params it starts a realistic simulator on loopback, fetches for a few cycles seconds apart, shows
what came in, and checks the inbox against the simulator's ground truth. With --params it runs the same
loop against the API those instance parameters point at, keeping state between invocations. Either way it runs
what users upload, Integrations/integration-EventFetcher.yml, as the server runs it (demisto_mock.py's unified-YAML
mode), every cycle in one reused process.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import demisto_mock  # noqa: E402  (needs ROOT on sys.path first)
from simulator import RealClock, SimConfig, Simulator, format_time  # noqa: E402

RUN_FOLDER = ROOT / "run"
# What users upload, run as the server runs it: every fetch in one reused process, as in the server's container.
UNIFIED = ROOT / "Integrations" / "integration-EventFetcher.yml"
SHOWN_PER_CYCLE = 5
SEVERITY_NAMES = {0: "unknown", 1: "low", 2: "medium", 3: "high", 4: "critical"}


def read_inbox(inbox: Path) -> list[dict[str, Any]]:
    if not inbox.exists():
        return []
    return [json.loads(line) for line in inbox.read_text(encoding="utf-8").splitlines() if line.strip()]


def show_incidents(incidents: list[dict[str, Any]]) -> None:
    """A few of a cycle's incidents as a small table: the oldest first, as they were created."""
    for incident in incidents[:SHOWN_PER_CYCLE]:
        severity = SEVERITY_NAMES.get(incident.get("severity", 0), "?")
        print(f"    {incident['occurred']}  {severity:<8}  {incident['dbotMirrorId']:<12}  {incident['name'][:60]}")
    if len(incidents) > SHOWN_PER_CYCLE:
        print(f"    ... and {len(incidents) - SHOWN_PER_CYCLE} more")


def fetch_on_schedule(params: Path, folder: Path, cycles: int, every: float) -> list[demisto_mock.CycleRecord]:
    """Runs the unified YAML's fetch-incidents once per cycle, all cycles in one reused process as the server's
    container runs them, printing each cycle and the incidents it created."""
    inbox, state = folder / "inbox.jsonl", folder / "state.json"
    shown = len(read_inbox(inbox))

    def show_new_incidents(record: demisto_mock.CycleRecord) -> None:
        nonlocal shown
        incidents = read_inbox(inbox)
        show_incidents(incidents[shown:])
        shown = len(incidents)

    records = demisto_mock.run_schedule(params=params, integration=UNIFIED, state=state, inbox=inbox, cycles=cycles,
                                        every=every, process="reused", debug=True, err=io.StringIO(),
                                        on_record=show_new_incidents)
    print(f"inbox: {inbox.relative_to(ROOT)}  state: {state.relative_to(ROOT)}")
    return records


def compare_with_ground_truth(simulator: Simulator, inbox: Path, first_fetch: str) -> None:
    """Duplicates and misses of the inbox against what the simulator holds."""
    fetched = [incident["dbotMirrorId"] for incident in read_inbox(inbox)]
    still_new = {truth.id for truth in simulator.truth()
                 if truth.visible and truth.event.get("status") == "New" and truth.event["created_time"] >= first_fetch}
    print(f"ground truth: {len(still_new)} visible events still New since {first_fetch}; "
          f"{len(fetched)} incidents, {len(fetched) - len(set(fetched))} duplicates, "
          f"{len(still_new - set(fetched))} of them not fetched yet")


def run_against_simulator(cycles: int, every: float) -> int:
    folder = RUN_FOLDER / "simulator"
    shutil.rmtree(folder, ignore_errors=True)  # a new simulator has new events: start from a first run
    folder.mkdir(parents=True)
    with Simulator(SimConfig.realistic(), seed=7, clock=RealClock()) as simulator:
        first_fetch = format_time(simulator.clock.now() - timedelta(hours=1))
        params = {"url": simulator.url, "credentials": {"identifier": "", "password": simulator.api_key},
                  "isFetch": True, "first_fetch": first_fetch, "max_fetch": "200", "look_back": "5",
                  "incidentType": "Event Source Event"}
        params_path = folder / "params.json"
        params_path.write_text(json.dumps(params, indent=2), encoding="utf-8")
        # a rate limit and a server error on the first requests, so the first cycle shows its retries
        simulator.inject("rate_limit", retry_after="seconds", value=1, endpoint="list")
        simulator.inject("server_error", status=503, body="html", endpoint="list")
        print(f"simulator at {simulator.url}: realistic profile (backlog, ties, late events, status changes, "
              f"rare faults, a 429 and a 503 first); fetching events created since {first_fetch}")
        records = fetch_on_schedule(params_path, folder, cycles, every)
        compare_with_ground_truth(simulator, folder / "inbox.jsonl", first_fetch)
        stats = simulator.stats()
        print(f"simulator served {stats['requests_total']} requests; faults injected: {stats['by_fault'] or 'none'}")
    return 0 if all(record.ok for record in records) else 1


def run_against_real_api(params: Path, cycles: int, every: float) -> int:
    if not params.is_file():
        print(f"error: the parameters file {params} does not exist.", file=sys.stderr)
        return 2
    folder = RUN_FOLDER / params.stem
    folder.mkdir(parents=True, exist_ok=True)  # state carries over between invocations, as on a server
    print(f"fetching with the instance parameters in {params}; state and inbox in {folder.relative_to(ROOT)}")
    records = fetch_on_schedule(params.resolve(), folder, cycles, every)
    return 0 if all(record.ok for record in records) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, help="instance parameters (JSON) of a real Event Source")
    parser.add_argument("--cycles", type=int, default=8, help="fetch runs (default 8)")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between runs (default 2)")
    options = parser.parse_args(argv)
    if options.params:
        return run_against_real_api(options.params, options.cycles, options.every)
    return run_against_simulator(options.cycles, options.every)


if __name__ == "__main__":
    sys.exit(main())
