"""End to end for every source: each profile and Custom, fetched by fresh demisto_mock.py processes from the
simulator speaking that API's dialect over real HTTP on loopback, checked against the ground truth in that API's
ids; and an instance upgraded from 1.0.0 that goes on from the last run 1.0.0 left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import EventFetcher as ef
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fetch_e2e import RUN_TIMEOUT, Instance, a_day_ago, ago, play, release_1_0_0

import demisto_mock
from simulator import SimConfig, Simulator, format_time
from simulator.dialects import DIALECT_NAMES, instance_params

ROOT = Path(__file__).resolve().parent.parent
# Generated schedules per source and test run; raise it for a longer soak, e.g. SOURCE_E2E_EXAMPLES=40 make test.
SOURCE_E2E_EXAMPLES = int(os.environ.get("SOURCE_E2E_EXAMPLES", "3"))

# Faults every dialect's listing can meet, and what each API does that the engine must survive.
FAULTS = [
    ("rate_limit", {"retry_after": "seconds", "value": 0}),
    ("server_error", {"status": 503, "body": "json"}),
    ("drop", {}),
    ("truncated", {}),
    ("short_page", {"fraction": 0.3}),
    ("empty_page", {}),
    ("repeat_link", {}),
    ("foreign_link", {}),
]

steps = st.one_of(
    st.tuples(st.just("add"), st.integers(1, 30), st.booleans(), st.sampled_from([0, 0, 30, 120, 300, 400])),
    st.tuples(st.just("advance"), st.sampled_from([1, 30, 60, 120, 400])),
    st.tuples(st.just("fetch")),
    st.tuples(st.just("fault"), st.integers(0, len(FAULTS) - 1), st.integers(1, 2)),
    st.tuples(st.just("churn"), st.sampled_from(["In Progress", "Closed"])),
)

FIGURES: dict[str, dict[str, int]] = {}


def source_instance(sim: Simulator, dialect: str, folder: Path, **overrides: Any) -> Instance:
    params = {**instance_params(sim, dialect), "isFetch": True,
              "first_fetch": format_time(sim.clock.now() - timedelta(hours=1)), "max_fetch": "50", "look_back": "5",
              "request_timeout": "2", "fetch_time_limit": "60", **overrides}
    return Instance(sim, folder, params)


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
@settings(max_examples=SOURCE_E2E_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(steps, min_size=3, max_size=12), max_fetch=st.sampled_from([3, 25, 200]),
       look_back=st.sampled_from([0, 5]), page_size=st.sampled_from(["", "7"]), seed=st.integers(0, 2**16))
def test_exactly_once_from_every_source_over_generated_schedules(
        make_simulator: Callable[..., Simulator], tmp_path_factory: Any, dialect: str,
        schedule: list[tuple[Any, ...]], max_fetch: int, look_back: int, page_size: str, seed: int) -> None:
    """Ties, bursts, late items, items leaving the filter before they are fetched (which shifts offsets), API
    faults and each API's paging quirks, in any order: every item that stayed new and came late by at most the
    look-back becomes exactly one incident, in the API's own ids; none becomes two; the last run stays small."""
    sim = make_simulator(SimConfig(), seed=seed, clock=a_day_ago())
    instance = source_instance(sim, dialect, tmp_path_factory.mktemp(dialect), max_fetch=str(max_fetch),
                               look_back=str(look_back), page_size=page_size)
    played = play(schedule, sim, instance.fetch, seed=seed, faults=FAULTS, endpoint=dialect)
    lateness, left_the_filter, faults = played.lateness, played.changed, played.faults
    # Runs come at intervals, so the API's clock moves on: a listing with an end (a profile's window or settle)
    # leaves the API's last second (its Date header is cut to the second) to the next run.
    sim.advance(2)
    instance.drain()
    # A run that finds nothing new in a window sized from the runs before (a source read whole) drops that size, so
    # the run after it lists to the present: only a second run that creates nothing shows the fetch caught up.
    instance.drain()

    ids = instance.incident_ids()
    item_id = {store_id: sim.dialects.item_id(dialect, store_id) for store_id in lateness}
    must = {item_id[store_id] for store_id, late in lateness.items()
            if late <= look_back * 60 and (store_id not in left_the_filter or dialect == "okta")}
    duplicates = len(ids) - len(set(ids))
    missed = must - set(ids)
    figures = FIGURES.setdefault(dialect, {"examples": 0, "runs": 0, "items": 0, "faults": 0, "duplicates": 0,
                                           "missed": 0, "largest_last_run_bytes": 0})
    figures.update(examples=figures["examples"] + 1, runs=figures["runs"] + len(instance.runs),
                   items=figures["items"] + len(lateness), faults=figures["faults"] + faults,
                   duplicates=figures["duplicates"] + duplicates, missed=figures["missed"] + len(missed),
                   largest_last_run_bytes=max(figures["largest_last_run_bytes"], instance.largest_last_run))
    print(f"exactly-once figures of {dialect} so far: {figures}")
    assert duplicates == 0, "an item became two incidents"
    assert not missed, f"lost: {sorted(missed)}"
    assert set(ids) <= set(item_id.values())
    assert instance.largest_last_run <= 60 * max(1, len(lateness)) + 300
    assert all(sim.api_key not in run.stdout + run.stderr for run in instance.runs)


@pytest.mark.parametrize("dialect", ["graph", "custom"])
def test_a_tie_larger_than_max_fetch_on_a_source_read_whole_drains_while_its_clock_stands_still(
        make_simulator: Callable[..., Simulator], tmp_path: Path, dialect: str) -> None:
    """Items created this very millisecond, more than max_fetch of them, on a newest-first or unordered API whose
    clock does not move between the runs: each run takes the oldest, none waits for the clock to pass them."""
    sim = make_simulator(seed=2, clock=a_day_ago())
    tie = sim.add_events(10, at=ago(sim, 0))
    instance = source_instance(sim, dialect, tmp_path, max_fetch="3", look_back="0")
    created = [instance.fetch_ok() for _ in range(4)]
    instance.drain()
    assert created == [3, 3, 3, 1]
    assert sorted(instance.incident_ids()) == sorted(sim.dialects.item_id(dialect, e["id"]) for e in tie)


@pytest.mark.parametrize("dialect", ["graph", "custom"])
def test_after_a_tie_the_next_item_comes_in_the_next_run_not_one_later(
        make_simulator: Callable[..., Simulator], tmp_path: Path, dialect: str) -> None:
    """A narrow window that held only the tie's rest is followed by one that reaches the newer item at once."""
    sim = make_simulator(seed=3, clock=a_day_ago())
    tie = sim.add_events(6, at=ago(sim, 0.5))
    sim.advance(1)
    newer = sim.add_event(ago(sim, 0))
    instance = source_instance(sim, dialect, tmp_path, max_fetch="3", look_back="0")
    assert [instance.fetch_ok() for _ in range(3)] == [3, 3, 1]
    assert sorted(instance.incident_ids()) == sorted(sim.dialects.item_id(dialect, e["id"]) for e in [*tie, newer])


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_each_source_previews_and_tests_its_configuration(make_simulator: Callable[..., Simulator], tmp_path: Path,
                                                          dialect: str) -> None:
    sim = make_simulator(seed=4, clock=a_day_ago())
    sim.add_events(3, at=ago(sim, 600))
    instance = source_instance(sim, dialect, tmp_path)
    params_path = tmp_path / "params.json"
    params_path.write_text(json.dumps(instance.params), encoding="utf-8")

    def run(command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(ROOT / "demisto_mock.py"), "--params", str(params_path), "--state",
                               str(tmp_path / "state.json"), command, *args], capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, cwd=ROOT, check=False)

    tested = run("test-module")
    assert (tested.returncode, tested.stdout.strip()) == (0, "ok"), tested.stderr
    preview = run("event-fetcher-get-events", "since=2 days", "limit=5")
    assert preview.returncode == 0, preview.stderr
    for store_id in ("evt-000001", "evt-000002", "evt-000003"):
        assert sim.dialects.item_id(dialect, store_id) in preview.stdout


def test_an_instance_upgraded_from_1_0_0_goes_on_without_refetching_or_skipping(
        make_simulator: Callable[..., Simulator], tmp_path: Path) -> None:
    """1.0.0 fetches part of a backlog and leaves its last run of version 1; this version goes on from it."""
    old_integration = release_1_0_0(tmp_path)
    sim = make_simulator(seed=9, clock=a_day_ago())
    instance = source_instance(sim, "event_source", tmp_path, max_fetch="40")
    tie = sim.add_events(70, at=ago(sim, 900))
    spread = [sim.add_event(ago(sim, 900 - i)) for i in range(60)]
    params_path = tmp_path / "params.json"
    params_path.write_text(json.dumps(instance.params), encoding="utf-8")
    for _ in range(2):  # 1.0.0 delivers 80 of the 130 and stops inside the tie's remainder
        old_run = subprocess.run([sys.executable, str(ROOT / "demisto_mock.py"), "--integration", str(old_integration),
                                  "--params", str(params_path), "--state", str(instance.state_path), "--inbox",
                                  str(instance.inbox_path), "fetch-incidents"], capture_output=True, text=True,
                                 timeout=RUN_TIMEOUT, cwd=ROOT, check=False)
        assert old_run.returncode == 0, old_run.stderr
    assert instance.last_run()["version"] == 1
    assert len(instance.incident_ids()) == 80
    late = sim.add_event(ago(sim, 200))  # late, within the look-back of where 1.0.0 got to
    instance.drain()
    assert instance.last_run()["version"] == 2
    ids = instance.incident_ids()
    assert len(ids) == len(set(ids))
    assert set(ids) == {event["id"] for event in [*tie, *spread, late]}


def test_no_secret_of_any_auth_type_appears_anywhere(make_simulator: Callable[..., Simulator]) -> None:
    """Bearer, header, basic and OAuth 2.0 credentials, and the OAuth access token: through every command, with
    right and wrong credentials, none appears in logs, entries, incidents, the last run, errors or any URL asked.
    The access token lives only in the integration context."""
    sim = make_simulator(seed=6, clock=a_day_ago())
    sim.add_events(5, at=ago(sim, 600))
    everything: list[str] = []
    secrets: set[str] = set()
    for dialect in ("event_source", *DIALECT_NAMES):
        params = {**instance_params(sim, dialect), "isFetch": True, "max_fetch": "3",
                  "first_fetch": format_time(sim.clock.now() - timedelta(hours=1))}
        credentials = params["credentials"]
        secrets.add(credentials["password"])
        wrong = {**params, "credentials": {**credentials, "password": credentials["password"] + "-wrong"}}
        secrets.add(wrong["credentials"]["password"])
        context: dict[str, Any] = {}
        for instance_params_ in (params, wrong):
            for command in ("test-module", "fetch-incidents", "event-fetcher-get-events", "event-fetcher-unknown"):
                runtime = demisto_mock.reset(command=command, params=instance_params_, args={"since": "2 days"},
                                             last_run={})
                runtime.integration_context = context
                try:
                    ef.main()
                    error = ""
                except Exception as raised:  # what the server shows for a failed fetch
                    error = str(raised)
                context = runtime.integration_context
                everything.append(json.dumps([runtime.logs, runtime.entries, runtime.incidents_created,
                                              runtime.set_last_run_calls, runtime.warnings, error], default=str))
        token = context.get("oauth", {}).get("access_token")
        assert bool(token) == (dialect == "graph"), "an OAuth token is kept in the integration context only"
        if token:
            secrets.add(token)
    everything += [json.dumps([record.path, record.query]) for record in sim.request_log()]
    assert len(secrets) >= 2 * 4 + 1, "every auth type and an access token were exercised"
    leaks = [(secret[:4], text[:200]) for secret in secrets for text in everything if secret in text]
    assert not leaks
