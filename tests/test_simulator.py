"""Behaviour of the Event Source simulator that clients rely on, checked over real HTTP on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from simulator import FAULT_KINDS, MISSING, ManualClock, SimConfig, Simulator, format_time

pytest_plugins = ["simulator.pytest_plugin"]

T0 = datetime(2026, 11, 26, 6, 0, 0, tzinfo=UTC)
TIMEOUT = 10.0
REPO = Path(__file__).resolve().parents[1]


# -- helpers -------------------------------------------------------------------------------------


def call(
    sim: Simulator, path: str, *, key: str | None = "", timeout: float = TIMEOUT, **params: Any
) -> requests.Response:
    """GET ``path`` with the simulator's key (``key=None`` sends none, a string overrides it)."""
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key or sim.api_key}"
    return requests.get(sim.url + path, headers=headers, params=params, timeout=timeout)


def page(sim: Simulator, **params: Any) -> dict[str, Any]:
    response = call(sim, "/api/v1/events", **params)
    assert response.status_code == 200, response.text
    return response.json()


def list_all(sim: Simulator, **params: Any) -> tuple[list[str], int]:
    """Follow cursors to the end; returns the ids and the number of pages."""
    ids: list[str] = []
    pages = 0
    cursor = params.pop("cursor", None)
    while True:
        body = page(sim, **params, **({"cursor": cursor} if cursor else {}))
        pages += 1
        ids += [e["id"] for e in body["events"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 10_000


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def sim(make_simulator: Callable[..., Simulator]) -> Simulator:
    """A quiet simulator whose clock starts at a fixed time, T0 + 1 hour."""
    return make_simulator(clock=ManualClock(at(3600)))


# -- authentication and basics --------------------------------------------------------------------


def test_health_with_key(sim: Simulator) -> None:
    response = call(sim, "/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": "1"}


@pytest.mark.parametrize("key", [None, "wrong-key"], ids=["missing", "wrong"])
@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/events", "/api/v1/events/evt-000001", "/_sim/stats"])
def test_missing_or_wrong_key_gets_401(sim: Simulator, key: str | None, path: str) -> None:
    sim.add_event(at(0))
    response = call(sim, path, key=key)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid or missing API key"}


def test_non_bearer_scheme_is_rejected(sim: Simulator) -> None:
    response = requests.get(
        sim.url + "/api/v1/health", headers={"Authorization": f"Basic {sim.api_key}"}, timeout=TIMEOUT
    )
    assert response.status_code == 401


def test_unknown_path_is_json_404(sim: Simulator) -> None:
    response = call(sim, "/api/v2/nothing")
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


def test_api_keys_are_random_by_default(make_simulator: Callable[..., Simulator]) -> None:
    assert make_simulator().api_key != make_simulator().api_key
    assert make_simulator(api_key="fixed").api_key == "fixed"


def test_times_are_rendered_utc_with_milliseconds(sim: Simulator) -> None:
    sim.add_event(datetime(2026, 11, 26, 7, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))), id="evt-x")
    event = call(sim, "/api/v1/events/evt-x").json()
    assert event["created_time"] == "2026-11-26T06:00:00.123Z"
    assert format_time(at(0.5)) == "2026-11-26T06:00:00.500Z"


# -- listing ----------------------------------------------------------------------------------------


def test_listing_is_ordered_by_created_time_then_id_as_strings(sim: Simulator) -> None:
    sim.add_event(at(2), id="evt-b")
    sim.add_event(at(1), id="evt-9")
    sim.add_event(at(1), id="evt-10")
    sim.add_event(at(1), id="evt-1")
    body = page(sim)
    assert [e["id"] for e in body["events"]] == ["evt-1", "evt-10", "evt-9", "evt-b"]
    assert body["next_cursor"] is None


def test_since_is_inclusive(sim: Simulator) -> None:
    sim.add_event(at(0.999), id="before")
    sim.add_event(at(1), id="exact")
    sim.add_event(at(2), id="after")
    assert [e["id"] for e in page(sim, since=format_time(at(1)))["events"]] == ["exact", "after"]


def test_until_is_exclusive(sim: Simulator) -> None:
    sim.add_event(at(0), id="a")
    sim.add_event(at(1), id="b")
    sim.add_event(at(0.999), id="c")
    assert [e["id"] for e in page(sim, until=format_time(at(1)))["events"]] == ["a", "c"]


def test_time_parameters_accept_offsets_and_no_milliseconds(sim: Simulator) -> None:
    sim.add_event(at(0), id="a")
    sim.add_event(at(60), id="b")
    assert [e["id"] for e in page(sim, since="2026-11-26T07:01:00+01:00")["events"]] == ["b"]
    assert [e["id"] for e in page(sim, until="2026-11-26T06:01:00Z")["events"]] == ["a"]


def test_status_filter_is_exact(sim: Simulator) -> None:
    sim.add_event(at(0), id="new")
    sim.add_event(at(1), id="busy", status="In Progress")
    sim.add_event(at(2), id="done", status="Closed")
    assert [e["id"] for e in page(sim, status="In Progress")["events"]] == ["busy"]
    assert [e["id"] for e in page(sim, status="new")["events"]] == []


def test_severity_filter_takes_a_comma_list_and_skips_missing_or_odd(sim: Simulator) -> None:
    for i, severity in enumerate(["low", "medium", "high", "critical", "HIGH", MISSING, None]):
        sim.add_event(at(i), id=f"e{i}", severity=severity)
    assert [e["id"] for e in page(sim, severity="high,low")["events"]] == ["e0", "e2"]
    assert [e["id"] for e in page(sim, severity="critical")["events"]] == ["e3"]
    assert "severity" not in call(sim, "/api/v1/events/e5").json()


def test_added_events_can_have_missing_null_or_empty_names_and_extra_fields(sim: Simulator) -> None:
    sim.add_event(at(0), id="a", name=MISSING)
    sim.add_event(at(1), id="b", name=None)
    sim.add_event(at(2), id="c", name="", raw={"nested": [1, {"deep": True}]})
    events = {e["id"]: e for e in page(sim)["events"]}
    assert "name" not in events["a"]
    assert events["b"]["name"] is None
    assert events["c"]["name"] == "" and events["c"]["raw"] == {"nested": [1, {"deep": True}]}
    with pytest.raises(ValueError):
        sim.add_event(at(3), id="a")


def test_default_limit_is_100_and_pages_are_capped_at_500(sim: Simulator) -> None:
    for i in range(620):
        sim.add_event(at(i))
    assert len(page(sim)["events"]) == 100
    assert len(page(sim, limit=1000)["events"]) == 500
    assert len(page(sim, limit=7)["events"]) == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("limit", "abc"),
        ("limit", "0"),
        ("limit", "-5"),
        ("limit", "1.5"),
        ("limit", ""),
        ("since", "yesterday"),
        ("since", "2026-11-26T06:00:00"),
        ("since", "2026-11-26"),
        ("until", "2026-13-01T00:00:00Z"),
        ("severity", "urgent"),
        ("severity", "high,"),
        ("severity", "HIGH"),
        ("severity", ""),
    ],
)
def test_malformed_parameters_get_400(sim: Simulator, name: str, value: str) -> None:
    response = call(sim, "/api/v1/events", **{name: value})
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)


def test_cursor_pagination_over_many_pages_has_no_duplicates_or_gaps(sim: Simulator) -> None:
    for i in range(1234):
        sim.add_event(at(i // 3))  # groups of three share a millisecond
    expected = [t.id for t in sim.truth()]
    ids, pages = list_all(sim, limit=37)
    assert ids == expected
    assert pages == -(-1234 // 37)


def test_filters_apply_across_pages(sim: Simulator) -> None:
    for i in range(300):
        sim.add_event(at(i), severity="high" if i % 3 == 0 else "low")
    ids, _ = list_all(sim, limit=25, severity="high", since=format_time(at(30)), until=format_time(at(270)))
    assert ids == [t.id for t in sim.truth() if t.event["severity"] == "high" and 30 <= int(t.id[4:]) - 1 < 270]


def test_tie_larger_than_a_page_is_fully_listed(sim: Simulator) -> None:
    sim.add_event(at(0), id="evt-first")
    tie = sim.add_events(1200, at=at(5))
    sim.add_event(at(9), id="evt-last")
    assert {e["created_time"] for e in tie} == {format_time(at(5))}
    ids, pages = list_all(sim, limit=500)
    assert ids == ["evt-first", *sorted(e["id"] for e in tie), "evt-last"]
    assert pages == 3
    since_ids, _ = list_all(sim, limit=500, since=format_time(at(5)))
    assert since_ids == ids[1:]


def test_get_event_by_id(sim: Simulator) -> None:
    added = sim.add_event(at(0), id="evt-42", name="Suspicious login", tags=["vpn"], source={"host": "h", "ip": "x"})
    response = call(sim, "/api/v1/events/evt-42")
    assert response.status_code == 200
    assert response.json() == added
    assert added["tags"] == ["vpn"] and added["status"] == "New"


def test_unknown_event_id_is_404(sim: Simulator) -> None:
    response = call(sim, "/api/v1/events/evt-999999")
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


# -- late arrival, status changes, cursors -----------------------------------------------------------


def test_late_event_is_invisible_until_its_visible_at(sim: Simulator) -> None:
    sim.add_event(sim.clock.now() - timedelta(seconds=30), id="late", delay_seconds=90)
    assert page(sim)["events"] == []
    assert call(sim, "/api/v1/events/late").status_code == 404
    sim.advance(59.999)
    assert page(sim)["events"] == []
    sim.advance(0.001)
    assert [e["id"] for e in page(sim)["events"]] == ["late"]
    assert call(sim, "/api/v1/events/late").status_code == 200


def test_late_event_sorting_after_the_cursor_appears_on_a_later_page(sim: Simulator) -> None:
    for i in range(4):
        sim.add_event(at(i), id=f"e{i}")
    sim.add_event(at(1.5), id="late-after", delay_seconds=3600)  # sorts after e1, visible 1.5 s from now
    first = page(sim, limit=2)
    assert [e["id"] for e in first["events"]] == ["e0", "e1"]
    sim.advance(1.5)
    second = page(sim, limit=2, cursor=first["next_cursor"])
    assert [e["id"] for e in second["events"]] == ["late-after", "e2"]
    third = page(sim, limit=2, cursor=second["next_cursor"])
    assert [e["id"] for e in third["events"]] == ["e3"]
    assert third["next_cursor"] is None


def test_late_event_sorting_before_the_cursor_is_not_on_later_pages(sim: Simulator) -> None:
    for i in range(4):
        sim.add_event(at(i), id=f"e{i}")
    sim.add_event(at(0.5), id="late-before", delay_seconds=3600)  # sorts before e1, visible 0.5 s from now
    first = page(sim, limit=2)
    assert [e["id"] for e in first["events"]] == ["e0", "e1"]
    sim.advance(0.5)
    ids, _ = list_all(sim, limit=2, cursor=first["next_cursor"])
    assert ids == ["e2", "e3"]
    assert [e["id"] for e in page(sim)["events"]] == ["e0", "late-before", "e1", "e2", "e3"]


def test_status_change_shows_in_listing_and_history(sim: Simulator) -> None:
    sim.add_event(at(0), id="evt-1")
    sim.advance(60)
    sim.set_status("evt-1", "In Progress")
    assert [e["id"] for e in page(sim, status="New")["events"]] == []
    assert page(sim, status="In Progress")["events"][0]["status"] == "In Progress"
    sim.advance(30)
    sim.set_status("evt-1", "Closed")
    assert call(sim, "/api/v1/events/evt-1").json()["status"] == "Closed"
    history = sim.get_truth("evt-1").status_history
    assert history == [(at(0), "New"), (at(3660), "In Progress"), (at(3690), "Closed")]


def test_cursor_expires_after_its_ttl(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(SimConfig(cursor_ttl_seconds=60), clock=ManualClock(at(3600)))
    for i in range(6):
        sim.add_event(at(i))
    first = page(sim, limit=2)
    sim.advance(60)
    second = page(sim, limit=2, cursor=first["next_cursor"])  # still valid at exactly the TTL
    sim.advance(60.001)
    response = call(sim, "/api/v1/events", limit=2, cursor=second["next_cursor"])
    assert response.status_code == 400
    assert response.json() == {"error": "invalid cursor"}


def test_cursor_can_be_retried_within_its_ttl(sim: Simulator) -> None:
    for i in range(5):
        sim.add_event(at(i))
    first = page(sim, limit=2)
    sim.inject("server_error")
    assert call(sim, "/api/v1/events", limit=2, cursor=first["next_cursor"]).status_code == 503
    again = [page(sim, limit=2, cursor=first["next_cursor"]) for _ in range(2)]
    assert again[0]["events"] == again[1]["events"] == [sim.get_truth(f"evt-00000{i}").event for i in (3, 4)]


@pytest.mark.parametrize("cursor", ["nonsense", "", "%%%", "a" * 500])
def test_unknown_or_malformed_cursor_is_400(sim: Simulator, cursor: str) -> None:
    sim.add_event(at(0))
    response = call(sim, "/api/v1/events", cursor=cursor)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid cursor"}


def test_cursor_sent_with_other_filters_is_invalid(sim: Simulator) -> None:
    for i in range(4):
        sim.add_event(at(i))
    first = page(sim, limit=2, severity="medium")
    assert call(sim, "/api/v1/events", limit=2, cursor=first["next_cursor"]).status_code == 400
    assert call(sim, "/api/v1/events", limit=3, severity="medium", cursor=first["next_cursor"]).status_code == 200


def test_expire_cursors_invalidates_issued_cursors(sim: Simulator) -> None:
    for i in range(4):
        sim.add_event(at(i))
    cursor = page(sim, limit=2)["next_cursor"]
    assert sim.expire_cursors() == 1
    assert call(sim, "/api/v1/events", cursor=cursor).status_code == 400


# -- faults -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 7])
@pytest.mark.parametrize("form", ["seconds", "date", "missing"])
def test_rate_limit_with_each_retry_after_form(sim: Simulator, form: str, value: int) -> None:
    sim.inject("rate_limit", retry_after=form, value=value)
    response = call(sim, "/api/v1/events")
    assert response.status_code == 429
    assert "error" in response.json()
    if form == "seconds":
        assert response.headers["Retry-After"] == str(value)
    elif form == "date":
        when = parsedate_to_datetime(response.headers["Retry-After"])
        assert when == (sim.clock.now() + timedelta(seconds=value)).replace(microsecond=0)
    else:
        assert "Retry-After" not in response.headers
    assert call(sim, "/api/v1/events").status_code == 200


@pytest.mark.parametrize(
    ("status", "body"), [(500, "json"), (502, "html"), (503, "empty"), (504, "json"), (502, "empty"), (503, "html")]
)
def test_server_error_with_each_body_kind(sim: Simulator, status: int, body: str) -> None:
    sim.inject("server_error", status=status, body=body)
    response = call(sim, "/api/v1/health")
    assert response.status_code == status
    if body == "json":
        assert isinstance(response.json()["error"], str)
    elif body == "html":
        assert response.headers["Content-Type"].startswith("text/html")
        assert "<html>" in response.text
    else:
        assert response.content == b""
    assert call(sim, "/api/v1/health").status_code == 200


def test_slow_answer_makes_a_client_time_out_and_stop_stays_fast(sim: Simulator) -> None:
    sim.inject("slow", seconds=60)
    with pytest.raises(requests.Timeout):
        call(sim, "/api/v1/health", timeout=0.3)
    began = time.monotonic()
    sim.stop()
    assert time.monotonic() - began < 5


def test_slow_answer_arrives_after_the_delay(sim: Simulator) -> None:
    sim.add_event(at(0), id="evt-1")
    sim.inject("slow", seconds=0.2)
    began = time.monotonic()
    body = page(sim)
    assert time.monotonic() - began >= 0.2
    assert [e["id"] for e in body["events"]] == ["evt-1"]
    assert sim.request_log()[-1].fault == "slow"


def test_drop_closes_the_connection_without_an_answer(sim: Simulator) -> None:
    sim.inject("drop")
    with pytest.raises(requests.ConnectionError):
        call(sim, "/api/v1/events")
    assert call(sim, "/api/v1/events").status_code == 200
    assert sim.request_log()[0].status is None


def test_truncated_body_is_invalid_json_with_matching_content_length(sim: Simulator) -> None:
    for i in range(20):
        sim.add_event(at(i))
    sim.inject("truncated", fraction=0.5)
    response = call(sim, "/api/v1/events")
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content) > 0
    with pytest.raises(ValueError):
        response.json()
    full = call(sim, "/api/v1/events")
    assert len(full.content) > len(response.content)
    assert full.content.startswith(response.content)


@pytest.mark.parametrize("size", [0, 2, None])
def test_short_page_keeps_a_cursor_and_the_rest_follows(sim: Simulator, size: int | None) -> None:
    for i in range(12):
        sim.add_event(at(i))
    sim.inject("short_page", count=2, size=size)
    first = page(sim, limit=5)
    assert len(first["events"]) < 5
    assert first["next_cursor"] is not None
    ids = [e["id"] for e in first["events"]]
    more, _ = list_all(sim, limit=5, cursor=first["next_cursor"])
    assert ids + more == [t.id for t in sim.truth()]


def test_short_page_at_the_end_still_needs_one_more_request(sim: Simulator) -> None:
    sim.add_event(at(0), id="only")
    sim.inject("short_page", size=0)
    first = page(sim)
    assert first == {"events": [], "next_cursor": first["next_cursor"]} and first["next_cursor"]
    assert page(sim, cursor=first["next_cursor"]) == {"events": [sim.get_truth("only").event], "next_cursor": None}


def test_cursor_expired_fault_hits_only_requests_with_a_cursor(sim: Simulator) -> None:
    for i in range(4):
        sim.add_event(at(i))
    sim.inject("cursor_expired")
    first = page(sim, limit=2)  # no cursor: unaffected
    response = call(sim, "/api/v1/events", limit=2, cursor=first["next_cursor"])
    assert response.status_code == 400
    assert response.json() == {"error": "invalid cursor"}
    retry = call(sim, "/api/v1/events", limit=2, cursor=first["next_cursor"])
    assert retry.status_code == 400  # the cursor really is gone
    assert [r.fault for r in sim.request_log()] == [None, "cursor_expired", None]


def test_scripted_faults_apply_to_the_next_n_matching_requests_in_order(sim: Simulator) -> None:
    sim.inject("server_error", count=2, status=502, endpoint="list")
    sim.inject("rate_limit")
    assert call(sim, "/api/v1/health").status_code == 429  # the first entry only matches listings
    assert [call(sim, "/api/v1/events").status_code for _ in range(3)] == [502, 502, 200]
    assert sim.pending_faults() == []


def test_invalid_fault_requests_are_refused(sim: Simulator) -> None:
    with pytest.raises(ValueError):
        sim.inject("meteor")
    with pytest.raises(ValueError):
        sim.inject("server_error", status=418)
    with pytest.raises(ValueError):
        sim.inject("rate_limit", retry_after="later")
    with pytest.raises(ValueError):
        sim.set_faults(drop=0.7, slow=0.7)


def _fault_sequence(sim: Simulator) -> list[tuple[str | None, int | None, dict[str, Any]]]:
    sim.add_events(30, at=at(0))
    for i in range(60):
        with contextlib.suppress(requests.RequestException):
            call(sim, "/api/v1/events" if i % 2 else "/api/v1/health", limit=10, timeout=TIMEOUT)
    return [(r.fault, r.status, r.fault_options) for r in sim.request_log()]


def test_fault_probabilities_are_reproducible_for_a_seed(make_simulator: Callable[..., Simulator]) -> None:
    probabilities = {"rate_limit": 0.15, "server_error": 0.15, "drop": 0.05, "truncated": 0.05, "short_page": 0.1}
    runs = []
    for seed in (7, 7, 8):
        sim = make_simulator(seed=seed, clock=ManualClock(at(3600)))
        sim.set_faults(**probabilities)
        runs.append(_fault_sequence(sim))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    kinds = {fault for fault, _, _ in runs[0]}
    assert {"rate_limit", "server_error", None} <= kinds
    assert kinds <= {*FAULT_KINDS, None}


def test_fault_probabilities_from_config_with_fixed_options(make_simulator: Callable[..., Simulator]) -> None:
    config = SimConfig(fault_probabilities={"server_error": 1.0}, fault_options={"server_error": {"status": 504}})
    sim = make_simulator(config)
    assert {call(sim, "/api/v1/health").status_code for _ in range(5)} == {504}
    sim.clear_faults()
    assert call(sim, "/api/v1/health").status_code == 200


# -- ground truth, request log, generator -------------------------------------------------------------


def test_truth_includes_invisible_events_with_timing(sim: Simulator) -> None:
    sim.add_event(at(10), id="evt-a")
    sim.add_event(at(20), id="evt-b", delay_seconds=7200)
    truth = {t.id: t for t in sim.truth()}
    assert truth["evt-a"].visible and not truth["evt-b"].visible
    assert truth["evt-b"].created_time == at(20)
    assert truth["evt-b"].visible_at == at(7220)
    assert truth["evt-b"].status_history == [(at(20), "New")]
    assert truth["evt-b"].to_dict()["visible_at"] == "2026-11-26T08:00:20.000Z"


def test_request_log_served_ids_and_stats(sim: Simulator) -> None:
    for i in range(5):
        sim.add_event(at(i), id=f"e{i}")
    page(sim, limit=3, severity="medium")
    call(sim, "/api/v1/events/e4")
    call(sim, "/api/v1/health", key="bad")
    sim.inject("rate_limit")
    call(sim, "/api/v1/events")
    sim.inject("truncated")
    call(sim, "/api/v1/events")
    log = sim.request_log()
    assert [(r.endpoint, r.status, r.fault) for r in log] == [
        ("list", 200, None),
        ("get", 200, None),
        ("health", 401, None),
        ("list", 429, "rate_limit"),
        ("list", 200, "truncated"),
    ]
    assert log[0].query == {"limit": "3", "severity": "medium"}
    assert log[0].event_ids == ["e0", "e1", "e2"] and log[0].next_cursor
    assert log[4].event_ids == [f"e{i}" for i in range(5)]
    assert sim.served_ids() == ["e0", "e1", "e2", "e4"]
    stats = sim.stats()
    assert stats["requests_total"] == 5
    assert stats["by_endpoint"] == {"list": 3, "get": 1, "health": 1}
    assert stats["by_status"] == {200: 3, 401: 1, 429: 1}
    assert stats["by_fault"] == {"rate_limit": 1, "truncated": 1}
    assert stats["events_served"] == 4
    assert stats["events_total"] == 5


def test_request_log_can_be_capped_without_losing_counters(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(SimConfig(request_log_limit=2))
    for _ in range(5):
        call(sim, "/api/v1/health")
    assert [r.seq for r in sim.request_log()] == [4, 5]
    assert sim.stats()["requests_total"] == 5
    sim.clear_log()
    assert sim.request_log() == [] and sim.stats()["requests_total"] == 0


def test_generator_is_deterministic_for_a_seed_and_clock_schedule(make_simulator: Callable[..., Simulator]) -> None:
    config = SimConfig(backlog=300, rate_per_second=5, tie_probability=0.05, tie_size=20, late_fraction=0.2)
    a = make_simulator(config, seed=3, clock=ManualClock(T0))
    b = make_simulator(config, seed=3, clock=ManualClock(T0))
    c = make_simulator(config, seed=4, clock=ManualClock(T0))
    a.advance(30)
    for _ in range(3):
        b.advance(10)
    c.advance(30)
    assert [t.to_dict() for t in a.truth()] == [t.to_dict() for t in b.truth()]
    assert [t.event for t in a.truth()] != [t.event for t in c.truth()]
    created = [t.created_time for t in a.truth()]
    assert sum(1 for t in created if t < T0) == 300
    assert sum(1 for t in created if t >= T0) > 50


def test_generated_events_follow_the_contract(make_simulator: Callable[..., Simulator]) -> None:
    config = SimConfig.realistic()
    config.fault_probabilities = {}
    config.missing_name_fraction = config.odd_severity_fraction = config.missing_severity_fraction = 0.05
    sim = make_simulator(config, seed=1, clock=ManualClock(T0))
    ids, _ = list_all(sim, limit=500)
    truth = sim.truth()
    assert len(set(ids)) == len(ids) == sum(1 for t in truth if t.visible) > 2900
    keys = [(t.event["created_time"], t.id) for t in truth]
    assert keys == sorted(keys) and len({t.id for t in truth}) == len(truth)
    events = [t.event for t in truth]
    assert all(e["id"].startswith("evt-") and e["created_time"].endswith("Z") for e in events)
    assert any("name" not in e for e in events) and any(e.get("name") is None for e in events if "name" in e)
    assert any(e.get("severity") not in (None, "low", "medium", "high", "critical") for e in events)
    assert any("severity" not in e for e in events)
    assert any(isinstance(e.get("mitre"), dict) or isinstance(e.get("user"), dict) for e in events)
    assert max(sum(1 for t in truth if t.created_time == c) for c in {t.created_time for t in truth}) >= 100
    assert any(t.visible_at > t.created_time for t in truth)
    ips = {e["source"]["ip"] for e in events if isinstance(e.get("source"), dict)}
    assert all(ip.startswith(("203.0.113.", "198.51.100.", "192.0.2.")) or ip == "not-an-ip" for ip in ips)


def test_generated_statuses_change_over_time(make_simulator: Callable[..., Simulator]) -> None:
    config = SimConfig(
        backlog=200,
        backlog_span_seconds=60,
        status_change_probability=1.0,
        close_probability=1.0,
        status_change_min_seconds=100,
        status_change_max_seconds=200,
    )
    sim = make_simulator(config, seed=2, clock=ManualClock(T0))
    assert {e["status"] for e in page(sim, limit=500)["events"]} == {"New"}
    sim.advance(2 * config.status_change_max_seconds + 60)
    assert {e["status"] for e in page(sim, limit=500)["events"]} == {"Closed"}
    history = sim.truth()[0].status_history
    assert [s for _, s in history] == ["New", "In Progress", "Closed"]


# -- control interface, plugin fixtures, HTTPS, CLI -------------------------------------------------


def control(sim: Simulator, method: str, path: str, body: Any = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    return requests.request(method, sim.url + "/_sim" + path, headers=headers, json=body, timeout=TIMEOUT)


def test_http_control_interface(sim: Simulator) -> None:
    added = control(sim, "POST", "/events", {"events": [{"created_time": "2026-11-26T06:00:00.000Z", "id": "a"}]})
    assert added.status_code == 200 and added.json()["events"][0]["id"] == "a"
    tie = control(sim, "POST", "/events", {"count": 3, "at": "2026-11-26T06:00:01.000Z", "severity": "high"})
    assert len(tie.json()["events"]) == 3
    late = {"events": [{"created_time": "2026-11-26T06:59:00.000Z", "id": "late", "delay_seconds": 120}]}
    assert control(sim, "POST", "/events", late).status_code == 200
    assert control(sim, "POST", "/inject", {"kind": "rate_limit", "retry_after": "missing"}).status_code == 200
    assert call(sim, "/api/v1/health").status_code == 429
    assert control(sim, "POST", "/advance", {"seconds": 60}).json() == {"now": "2026-11-26T07:01:00.000Z"}
    assert control(sim, "POST", "/faults", {"server_error": 1.0, "options": {"server_error": {"status": 500}}}).ok
    assert call(sim, "/api/v1/health").status_code == 500
    assert control(sim, "POST", "/faults", {}).ok
    assert control(sim, "POST", "/status", {"id": "a", "status": "Closed"}).ok
    truth = control(sim, "GET", "/truth").json()["events"]
    assert truth[0]["event"]["id"] == "a" and truth[0]["event"]["status"] == "Closed"
    assert all(t["visible"] for t in truth)
    stats = control(sim, "GET", "/stats").json()
    assert stats["by_status"] == {"429": 1, "500": 1} and stats["events_total"] == 5
    assert len(control(sim, "GET", "/requests").json()["requests"]) == 2
    assert control(sim, "POST", "/inject", {"kind": "nope"}).status_code == 400
    assert control(sim, "GET", "/nothing").status_code == 404


def test_plugin_simulator_fixture_is_quiet_with_a_manual_clock(simulator: Simulator) -> None:
    assert isinstance(simulator.clock, ManualClock) and simulator.seed == 0
    assert page(simulator) == {"events": [], "next_cursor": None}
    simulator.advance(3600)
    assert simulator.truth() == []


def test_https_with_an_ssl_context(make_simulator: Callable[..., Simulator],
                                   tls_certificate: tuple[Path, Path]) -> None:
    cert, key = tls_certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    sim = make_simulator(ssl_context=context)
    assert sim.url.startswith("https://127.0.0.1:")
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    response = requests.get(sim.url + "/api/v1/health", headers=headers, verify=str(cert), timeout=TIMEOUT)
    assert response.json() == {"status": "ok", "version": "1"}
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(sim.url + "/api/v1/health", headers=headers, timeout=TIMEOUT)


def test_stop_closes_the_listening_socket(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator()
    url = sim.url
    with requests.Session() as session:  # an idle keep-alive connection must not hold up stop()
        session.get(url + "/api/v1/health", headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=TIMEOUT)
        sim.stop()
    assert not sim.running
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/api/v1/health", timeout=TIMEOUT)


def test_only_loopback_addresses_are_accepted() -> None:
    with pytest.raises(ValueError):
        Simulator(host="0.0.0.0")


def test_concurrent_clients_are_served(sim: Simulator) -> None:
    sim.add_events(50, at=at(0))
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            ids, _ = list_all(sim, limit=20)
            with lock:
                results.append(len(ids))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [50] * 40


def test_cli_prints_url_and_key_then_exits_cleanly_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", "0", "--profile", "quiet", "--api-key", "k-123"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the simulator printed nothing within 30 s"
        info = json.loads(proc.stdout.readline())
        assert set(info) == {"url", "api_key"} and info["api_key"] == "k-123"
        assert info["url"].startswith("http://127.0.0.1:")
        response = requests.get(
            info["url"] + "/api/v1/health", headers={"Authorization": "Bearer k-123"}, timeout=TIMEOUT
        )
        assert response.json() == {"status": "ok", "version": "1"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
