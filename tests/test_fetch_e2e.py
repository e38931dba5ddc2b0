"""End to end: fetch-incidents run through demisto_mock.py, a fresh process per run as on the server, against the
simulator over real HTTP on loopback; exactly-once is checked against the simulator's ground truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import ManualClock, Simulator, format_time

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 120  # seconds; generous for a loaded 2-core machine
# Generated schedules per test run; raise it for a longer soak, e.g. E2E_EXAMPLES=200 make test.
E2E_EXAMPLES = int(os.environ.get("E2E_EXAMPLES", "12"))


@dataclass
class Instance:
    """One integration instance: its parameters, its persisted state and the incidents it created."""

    simulator: Simulator
    folder: Path
    params: dict[str, Any]
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)
    largest_last_run: int = 0
    integration: Path | None = None  # another copy of the integration to run, e.g. an earlier release

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    @property
    def inbox_path(self) -> Path:
        return self.folder / "inbox.jsonl"

    def fetch(self) -> subprocess.CompletedProcess[str]:
        params_path = self.folder / "params.json"
        params_path.write_text(json.dumps(self.params), encoding="utf-8")
        integration = ["--integration", str(self.integration)] if self.integration else []
        run = subprocess.run(
            [sys.executable, str(ROOT / "demisto_mock.py"), *integration, "--params", str(params_path), "--state",
             str(self.state_path), "--inbox", str(self.inbox_path), "--debug", "fetch-incidents"],
            capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=ROOT, check=False)
        self.runs.append(run)
        if self.state_path.exists():
            self.largest_last_run = max(self.largest_last_run, len(json.dumps(self.last_run())))
        return run

    def fetch_ok(self) -> int:
        """Runs one fetch that must succeed; returns how many incidents it created."""
        before = len(self.incident_ids())
        run = self.fetch()
        assert run.returncode == 0, run.stderr
        return len(self.incident_ids()) - before

    def drain(self, limit: int = 60) -> None:
        """Fetches until a successful run creates nothing."""
        for _ in range(limit):
            run = self.fetch()
            if run.returncode == 0 and "incidents=0 " in run.stderr:
                return
        raise AssertionError("the fetch never caught up")

    def incident_ids(self) -> list[str]:
        if not self.inbox_path.exists():
            return []
        lines = self.inbox_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["dbotMirrorId"] for line in lines if line]

    def last_run(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text(encoding="utf-8"))["last_run"]


def a_day_ago() -> ManualClock:
    """The simulator's clock starts a day behind the integration's, so that however far a test moves it, its
    events stay in the past for the integration, as a source's events are."""
    return ManualClock(datetime.now(UTC) - timedelta(days=1))


@pytest.fixture
def instance(make_simulator: Callable[..., Simulator], tmp_path: Path) -> Instance:
    return new_instance(make_simulator(seed=1, clock=a_day_ago()), tmp_path)


def new_instance(simulator: Simulator, folder: Path, **overrides: Any) -> Instance:
    first_fetch = format_time(simulator.clock.now() - timedelta(hours=1))
    params = {"url": simulator.url, "credentials": {"identifier": "", "password": simulator.api_key},
              "isFetch": True, "first_fetch": first_fetch, "max_fetch": "50", "look_back": "5",
              "request_timeout": "5", "fetch_time_limit": "60", **overrides}
    return Instance(simulator, folder, params)


def ago(simulator: Simulator, seconds: float) -> str:
    return format_time(simulator.clock.now() - timedelta(seconds=seconds))


def assert_exactly_once(instance: Instance, expected: set[str]) -> None:
    ids = instance.incident_ids()
    assert len(ids) == len(set(ids)), "an event became two incidents"
    assert set(ids) == expected


# --- scenarios ------------------------------------------------------------------------------------------------


def test_a_tie_larger_than_a_page_and_max_fetch_drains_exactly_once(instance: Instance) -> None:
    instance.params["max_fetch"] = "200"
    tie = instance.simulator.add_events(700, at=ago(instance.simulator, 60))
    created = [instance.fetch_ok() for _ in range(4)]
    assert created == [200, 200, 200, 100]
    instance.drain()
    assert_exactly_once(instance, {event["id"] for event in tie})


def test_late_events_within_the_look_back_are_fetched_and_later_ones_are_not(instance: Instance) -> None:
    sim = instance.simulator
    sim.add_event(ago(sim, 10), id="on-time")
    instance.fetch_ok()
    sim.advance(60)
    sim.add_event(ago(sim, 4 * 60), id="late-4-min")  # becomes visible now, four minutes after its time
    sim.add_event(ago(sim, 6 * 60 + 70), id="late-7-min")  # later than the five-minute look-back
    sim.add_event(created_time=sim.clock.now(), id="ingested-later", delay_seconds=200)
    instance.fetch_ok()
    sim.advance(200)
    instance.drain()
    assert_exactly_once(instance, {"on-time", "late-4-min", "ingested-later"})


def test_a_status_change_after_the_fetch_does_not_duplicate(instance: Instance) -> None:
    sim = instance.simulator
    sim.add_event(ago(sim, 30), id="a")
    instance.fetch_ok()
    sim.set_status("a", "In Progress")
    sim.advance(30)
    instance.fetch_ok()
    sim.set_status("a", "New")  # reopened inside the look-back window: still the same incident
    sim.advance(30)
    instance.drain()
    assert_exactly_once(instance, {"a"})


def test_only_events_matching_status_and_severity_become_incidents(instance: Instance) -> None:
    sim = instance.simulator
    instance.params["severity"] = ["high", "critical"]
    sim.add_event(ago(sim, 50), id="high", severity="high")
    sim.add_event(ago(sim, 40), id="low", severity="low")
    sim.add_event(ago(sim, 30), id="closed", severity="critical", status="Closed")
    sim.add_event(ago(sim, 20), id="critical", severity="critical")
    instance.drain()
    assert_exactly_once(instance, {"high", "critical"})


def test_a_run_that_cannot_progress_fails_clearly_and_changes_nothing(instance: Instance) -> None:
    sim = instance.simulator
    sim.add_event(ago(sim, 30), id="a")
    instance.fetch_ok()
    state_before = instance.state_path.read_bytes()
    sim.add_event(ago(sim, 20), id="b")
    sim.inject("server_error", count=5, status=503, body="html", endpoint="list")
    run = instance.fetch()
    assert run.returncode == 1
    assert "error: No incident fetched: The Event Source had a server error (HTTP 503), still after 5 attempts." \
        in run.stderr
    assert instance.state_path.read_bytes() == state_before
    assert instance.incident_ids() == ["a"]
    instance.drain()
    assert_exactly_once(instance, {"a", "b"})


def test_a_fault_after_the_first_page_delivers_that_page_and_the_rest_next_run(instance: Instance) -> None:
    sim = instance.simulator
    instance.params["max_fetch"] = "200"
    events = sim.add_events(300, at=ago(sim, 50))
    sim.inject("short_page", count=1, size=100, endpoint="list")
    sim.inject("drop", count=5, endpoint="list")  # every attempt at the second page fails
    assert instance.fetch_ok() == 100
    assert "Fetch stopped early and delivers the 100 incidents read so far" in instance.runs[-1].stderr
    instance.drain()
    assert_exactly_once(instance, {event["id"] for event in events})


def test_an_expired_cursor_restarts_the_listing_without_duplicates(instance: Instance) -> None:
    sim = instance.simulator
    instance.params["max_fetch"] = "200"
    events = sim.add_events(150, at=ago(sim, 50)) + sim.add_events(450, at=ago(sim, 40))
    sim.inject("short_page", count=1, size=100, endpoint="list")
    sim.inject("cursor_expired", count=1)
    assert instance.fetch_ok() == 200
    instance.drain()
    assert_exactly_once(instance, {event["id"] for event in events})


@pytest.mark.parametrize(("kind", "options"), [
    ("rate_limit", {"retry_after": "seconds", "value": 0}),
    ("rate_limit", {"retry_after": "date", "value": 1}),
    ("server_error", {"status": 500, "body": "json"}),
    ("server_error", {"status": 502, "body": "html"}),
    ("server_error", {"status": 504, "body": "empty"}),
    ("drop", {}),
    ("truncated", {}),
    ("slow", {"seconds": 3}),
])
def test_each_transient_fault_is_retried_without_loss_or_duplicate(
        make_simulator: Callable[..., Simulator], tmp_path: Path, kind: str, options: dict[str, Any]) -> None:
    instance = new_instance(make_simulator(seed=2, clock=a_day_ago()), tmp_path, request_timeout="1")
    sim = instance.simulator
    events = [sim.add_event(ago(sim, 30 - i)) for i in range(3)]
    sim.inject(kind, count=2, endpoint="list", **options)
    assert instance.fetch_ok() == 3
    assert "retries=2 " in instance.runs[-1].stderr
    instance.drain()
    assert_exactly_once(instance, {event["id"] for event in events})


def test_the_last_run_stays_bounded_by_the_look_back_window(instance: Instance) -> None:
    sim = instance.simulator
    instance.params["max_fetch"] = "200"
    for _ in range(5):
        sim.add_events(150, at=ago(sim, 1))
        instance.drain()
        sim.advance(10 * 60)  # everything fetched so far leaves the five-minute window
    sim.add_event(ago(sim, 1), id="last")
    instance.drain()
    last_run = instance.last_run()
    assert last_run["version"] == 2
    assert [ids for ids in last_run["seen_ids"].values()] == [["last"]]
    assert len(instance.incident_ids()) == 751
    assert len(json.dumps(last_run)) < 200


def test_a_reset_last_run_starts_again_from_the_first_fetch_time(instance: Instance) -> None:
    sim = instance.simulator
    sim.add_event(ago(sim, 30), id="a")
    instance.drain()
    instance.state_path.unlink()  # "Reset the last run timestamp"
    instance.params["first_fetch"] = ago(sim, 10)
    sim.add_event(ago(sim, 5), id="b")
    instance.drain()
    assert instance.incident_ids() == ["a", "b"]


# --- exactly once over generated schedules ------------------------------------------------------------------------

RELEASE_1_0_0 = "265bebc"  # the commit of release 1.0.0, whose last runs are of version 1


def release_1_0_0(folder: Path) -> Path:
    """The integration as release 1.0.0 shipped it, from the repository's history."""
    source = f"{RELEASE_1_0_0}:Packs/EventFetcher/Integrations/EventFetcher/EventFetcher.py"
    code = subprocess.run(["git", "show", source], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    path = folder / "EventFetcher_1_0_0.py"
    path.write_text(code, encoding="utf-8")
    return path

FAULTS = [
    ("rate_limit", {"retry_after": "seconds", "value": 0}),
    ("server_error", {"status": 503, "body": "json"}),
    ("drop", {}),
    ("truncated", {}),
    ("cursor_expired", {}),
    ("short_page", {"fraction": 0.3}),
]

steps = st.one_of(
    st.tuples(st.just("add"), st.integers(1, 30), st.booleans(), st.sampled_from([0, 0, 30, 120, 300, 400])),
    st.tuples(st.just("advance"), st.sampled_from([1, 30, 60, 120, 400])),
    st.tuples(st.just("fetch")),
    st.tuples(st.just("fault"), st.integers(0, len(FAULTS) - 1), st.integers(1, 2)),
    st.tuples(st.just("status"), st.sampled_from(["In Progress", "Closed"])),
)

@dataclass
class Played:
    """What a schedule did to the simulator."""

    lateness: dict[str, float] = field(default_factory=dict)  # each added event's id: how late it came, in seconds
    changed: set[str] = field(default_factory=set)  # events whose status left New
    faults: int = 0


def play(schedule: list[tuple[Any, ...]], sim: Simulator, fetch: Callable[[], Any], *, seed: int,
         faults: list[tuple[str, dict[str, Any]]] = FAULTS, endpoint: str | None = None,
         fetched_ids: Callable[[], list[str]] = list, before_step: Callable[[int], None] | None = None) -> Played:
    """Runs a generated schedule of steps: add (a tie or a spread, late by some seconds), advance, fetch, fault,
    status (an event already fetched leaves New) and churn (any added event leaves New, fetched or not)."""
    played = Played()
    for number, step in enumerate(schedule):
        if before_step is not None:
            before_step(number)
        if step[0] == "add":
            _, count, tie, late = step
            at = ago(sim, late)
            added = sim.add_events(count, at=at) if tie else [sim.add_event(at) for _ in range(count)]
            played.lateness.update({event["id"]: late for event in added})
        elif step[0] == "advance":
            sim.advance(step[1])
        elif step[0] == "fetch":
            fetch()
        elif step[0] == "fault":
            kind, options = faults[step[1]]
            sim.inject(kind, count=step[2], **({"endpoint": endpoint} if endpoint else {}), **options)
            played.faults += step[2]
        elif step[0] == "status" and fetched_ids():
            fetched = fetched_ids()[seed % len(fetched_ids())]
            sim.set_status(fetched, step[1])  # after it was fetched: must not matter
            played.changed.add(fetched)
        elif step[0] == "churn" and played.lateness:
            store_ids = sorted(played.lateness)
            changed = store_ids[seed % len(store_ids)]
            sim.set_status(changed, step[1])  # fetched or not: either way it must not matter
            played.changed.add(changed)
    sim.clear_faults()
    return played


FIGURES: dict[str, int] = {"examples": 0, "runs": 0, "events": 0, "faults": 0, "duplicates": 0, "missed": 0,
                           "largest_last_run_bytes": 0}


@settings(max_examples=E2E_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(steps, min_size=3, max_size=14), max_fetch=st.sampled_from([3, 25, 200]),
       look_back=st.sampled_from([0, 5]), seed=st.integers(0, 2**16), upgrade=st.booleans())
def test_exactly_once_over_generated_schedules(make_simulator: Callable[..., Simulator], tmp_path_factory: Any,
                                               schedule: list[tuple[Any, ...]], max_fetch: int, look_back: int,
                                               seed: int, upgrade: bool) -> None:
    """Ties, bursts, late events, status changes and faults in any order: every event that stayed New and arrived
    late by at most the look-back becomes exactly one incident; none becomes two. With `upgrade`, release 1.0.0
    makes the fetches of the schedule's first half and this version goes on from its last run of version 1."""
    sim = make_simulator(seed=seed, clock=a_day_ago())
    folder = tmp_path_factory.mktemp("e2e")
    instance = new_instance(sim, folder, max_fetch=str(max_fetch), look_back=str(look_back), request_timeout="2")
    if upgrade:
        instance.integration = release_1_0_0(folder)

    def upgrade_halfway(number: int) -> None:
        if number == len(schedule) // 2:
            instance.integration = None

    played = play(schedule, sim, instance.fetch, seed=seed, fetched_ids=instance.incident_ids,
                  before_step=upgrade_halfway)
    lateness, changed, faults = played.lateness, played.changed, played.faults
    instance.drain()

    ids = instance.incident_ids()
    must = {event_id for event_id, late in lateness.items() if late <= look_back * 60 and event_id not in changed}
    duplicates = len(ids) - len(set(ids))
    missed = must - set(ids)
    FIGURES.update(examples=FIGURES["examples"] + 1, runs=FIGURES["runs"] + len(instance.runs),
                   events=FIGURES["events"] + len(lateness), faults=FIGURES["faults"] + faults,
                   duplicates=FIGURES["duplicates"] + duplicates, missed=FIGURES["missed"] + len(missed),
                   largest_last_run_bytes=max(FIGURES["largest_last_run_bytes"], instance.largest_last_run))
    print(f"exactly-once figures so far: {FIGURES}")
    assert duplicates == 0, "an event became two incidents"
    assert not missed, f"lost: {sorted(missed)}"
    assert set(ids) <= set(lateness)
    assert instance.largest_last_run <= 60 * max(1, len(lateness)) + 200
