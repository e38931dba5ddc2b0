"""Unit tests of EventFetcher: the pure fetch logic without HTTP, the client and commands with requests-mock."""

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import EventFetcher as ef
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
BASE_URL = "https://events.example.com"
API_KEY = "unit-test-key-7f3a9c"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


LATER = at(86_400)  # the clock of runs whose events are all in the past


def event(event_id: str, created: datetime, **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "created_time": ef.format_time(created), "status": "New", **fields}


def run_once(state: ef.FetchState, pages: list[list[dict[str, Any]]], max_fetch: int = 50,
             look_back: timedelta = timedelta(0), now: datetime = LATER) -> tuple[list[str], ef.FetchState]:
    """One pure fetch run: the ids delivered and the next state after a JSON round trip, as the server keeps it."""
    run = ef.FetchRun(state, max_fetch, look_back, now)
    for page in pages:
        run.take(page)
        if run.full:
            break
    stored = json.loads(json.dumps(ef.dump_state(run.next_state())))
    return [e["id"] for e in run.new_events], ef.load_state(stored, T0)


def listing_from(events: list[dict[str, Any]], since: datetime, page_size: int = 500) -> list[list[dict[str, Any]]]:
    """The API's answer to a listing from `since`: inclusive, ascending by (created_time, id), in pages."""
    chosen = sorted((e for e in events if ef.parse_timestamp(e["created_time"]) >= since),
                    key=lambda e: (e["created_time"], e["id"]))
    return [chosen[i:i + page_size] for i in range(0, len(chosen), page_size)] or [[]]


def fetch_all(events: list[dict[str, Any]], state: ef.FetchState, max_fetch: int, look_back: timedelta,
              page_size: int = 500, now: datetime = LATER) -> tuple[list[str], ef.FetchState]:
    run = ef.FetchRun(state, max_fetch, look_back, now)
    return run_once(state, listing_from(events, run.since, page_size), max_fetch, look_back, now)


# --- time and parameters --------------------------------------------------------------------------


def test_times_are_utc_with_milliseconds_and_naive_input_is_taken_as_utc() -> None:
    assert ef.format_time(datetime(2026, 11, 26, 7, 0, 0, 123456, tzinfo=UTC)) == "2026-11-26T07:00:00.123Z"
    assert ef.parse_timestamp("2026-11-26T08:00:00.123+01:00") == datetime(2026, 11, 26, 7, 0, 0, 123000, tzinfo=UTC)
    assert ef.parse_timestamp("2026-11-26T07:00:00") == datetime(2026, 11, 26, 7, tzinfo=UTC)
    assert ef.parse_timestamp("not a time") is None
    assert ef.parse_timestamp(1764136800) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("3 days", T0 - timedelta(days=3)),
    ("12 hours ago", T0 - timedelta(hours=12)),
    ("1 week", T0 - timedelta(weeks=1)),
    ("90 minutes", T0 - timedelta(minutes=90)),
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01T05:30:00Z", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ("1764136800", datetime.fromtimestamp(1764136800, UTC)),
])
def test_first_fetch_accepts_relative_iso_and_epoch_forms(text: str, expected: datetime) -> None:
    assert ef.parse_time_expression(text, T0, "First fetch time") == expected


def base_params(**overrides: Any) -> dict[str, Any]:
    params = {"url": BASE_URL, "credentials": {"identifier": "", "password": API_KEY}, "first_fetch": "3 days",
              "max_fetch": "50", "look_back": "5", "isFetch": True}
    params.update(overrides)
    return params


def test_settings_defaults() -> None:
    settings = ef.parse_settings({"url": BASE_URL + "/", "credentials": {"password": API_KEY}}, T0)
    assert settings.base_url == BASE_URL
    assert settings.first_fetch == T0 - timedelta(days=3)
    assert settings.max_fetch == 50
    assert settings.look_back == timedelta(minutes=5)
    assert settings.status == "New"
    assert settings.severities == ()
    assert settings.verify_tls and not settings.use_proxy
    assert API_KEY not in repr(settings)


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"url": ""}, "Server URL is missing"),
    ({"url": "events.example.com"}, "must start with https://"),
    ({"credentials": {"password": ""}}, "API Key is missing"),
    ({"first_fetch": "yesterday-ish"}, "First fetch time must be like"),
    ({"first_fetch": "3 fortnights"}, "First fetch time must be like"),
    ({"first_fetch": "2999-01-01T00:00:00Z"}, "in the future"),
    ({"max_fetch": ""}, "Maximum number of incidents per fetch must be a whole number from 1 to 200; it is empty"),
    ({"max_fetch": "0"}, "not 0"),
    ({"max_fetch": "-5"}, "not -5"),
    ({"max_fetch": "201"}, "not 201"),
    ({"max_fetch": "fifty"}, 'not "fifty"'),
    ({"look_back": "1441"}, "Look-back (minutes) must be a whole number from 0 to 1440"),
    ({"look_back": "-1"}, "Look-back (minutes)"),
    ({"severity": ["high", "urgent"]}, 'unknown value "urgent"'),
    ({"status": "Open"}, "Status to fetch must be one of"),
])
def test_each_bad_parameter_gets_one_clear_sentence(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ef.ConfigError) as caught:
        ef.parse_settings(base_params(**overrides), T0)
    message = str(caught.value)
    assert fragment in message
    assert message.endswith(".") and "\n" not in message
    assert API_KEY not in message


def test_only_the_api_time_shape_takes_the_fast_path() -> None:
    assert ef.is_api_time("2026-11-26T06:00:00.123Z")
    assert not ef.is_api_time("2026-W48-4T06:00:00.12Z")
    assert ef.parse_timestamp("2026-W48-4T06:00:00.123") == datetime(2026, 11, 26, 6, 0, 0, 123000, tzinfo=UTC)
    assert ef.parse_timestamp("2026-11-26T06:00:00.1234567Z") == datetime(2026, 11, 26, 6, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"first_fetch": "9" * 5000 + " days"}, "First fetch time goes back further than a calendar allows"),
    ({"credentials": {"password": "abc\ndef"}}, "API Key contains spaces or control characters"),
    ({"credentials": {"password": "abc def"}}, "API Key contains spaces or control characters"),
    ({"url": "https://user:secret@events.example.com"}, "must not hold a user name or password"),
])
def test_parameters_that_could_crash_or_mislead_get_a_clear_sentence(overrides: dict[str, Any],
                                                                     fragment: str) -> None:
    with pytest.raises(ef.ConfigError) as caught:
        ef.parse_settings(base_params(**overrides), T0)
    assert fragment in str(caught.value) and "secret" not in str(caught.value)


def test_all_severities_means_no_filter_so_unknown_severities_are_fetched_too() -> None:
    assert ef.parse_severities(["low", "medium", "high", "critical"], "s") == ()
    assert ef.parse_severities("critical, HIGH", "s") == ("high", "critical")


# --- the pure fetch logic: each bug that public integrations shipped ------------------------------------


def test_events_sharing_the_boundary_time_are_neither_lost_nor_duplicated() -> None:
    events = [event(f"e{i}", at(10)) for i in range(4)]
    state = ef.FetchState.first(T0)
    first, state = fetch_all(events[:2], state, 50, timedelta(0))
    # two more events appear on the very millisecond of the watermark
    second, state = fetch_all(events, state, 50, timedelta(0))
    assert first == ["e0", "e1"]
    assert second == ["e2", "e3"]


def test_a_page_of_nothing_but_fetched_events_keeps_the_tie_memory() -> None:
    events = [event(f"e{i}", at(10)) for i in range(3)]
    state = ef.FetchState.first(T0)
    delivered, state = fetch_all(events, state, 50, timedelta(0))
    repeat, state = fetch_all(events, state, 50, timedelta(0))  # every event read is a duplicate
    again, state = fetch_all(events, state, 50, timedelta(0))
    assert delivered == ["e0", "e1", "e2"]
    assert repeat == [] and again == []
    assert set(state.seen_ids) == {"e0", "e1", "e2"}


def test_a_tie_larger_than_max_fetch_and_a_page_drains_without_sticking() -> None:
    tie = [event(f"t{i:03d}", at(5)) for i in range(23)]
    state = ef.FetchState.first(T0)
    delivered: list[str] = []
    for _ in range(6):
        ids, state = fetch_all(tie, state, max_fetch=5, look_back=timedelta(0), page_size=4)
        delivered += ids
    assert delivered == sorted(e["id"] for e in tie)


def test_the_watermark_is_the_newest_delivered_event_not_the_time_of_the_run() -> None:
    state = ef.FetchState.first(T0)
    _, state = fetch_all([event("a", at(30))], state, 50, timedelta(0))
    assert state.watermark == at(30)
    # an event created before the run finished but listed only later is still ahead of the watermark
    ids, _ = fetch_all([event("a", at(30)), event("b", at(31))], state, 50, timedelta(0))
    assert ids == ["b"]


def test_a_late_event_within_the_look_back_is_fetched_once() -> None:
    look_back = timedelta(minutes=5)
    state = ef.FetchState.first(T0)
    _, state = fetch_all([event("new", at(600))], state, 50, look_back)
    late = event("late", at(400))  # created before the watermark, visible only now
    ids, state = fetch_all([late, event("new", at(600))], state, 50, look_back)
    again, state = fetch_all([late, event("new", at(600))], state, 50, look_back)
    assert ids == ["late"] and again == []


def test_a_late_event_behind_the_look_back_is_not_fetched() -> None:
    look_back = timedelta(minutes=1)
    state = ef.FetchState.first(T0)
    _, state = fetch_all([event("new", at(600))], state, 50, look_back)
    ids, _ = fetch_all([event("too-late", at(500)), event("new", at(600))], state, 50, look_back)
    assert ids == []


def test_the_watermark_never_moves_back_when_a_run_delivers_only_late_events() -> None:
    look_back = timedelta(minutes=5)
    state = ef.FetchState.first(T0)
    _, state = fetch_all([event("b", at(600))], state, 50, look_back)
    _, state = fetch_all([event("a", at(450)), event("b", at(600))], state, 50, look_back)
    assert state.watermark == at(600)


def test_max_fetch_takes_the_oldest_first_and_the_backlog_drains() -> None:
    backlog = [event(f"e{i:03d}", at(i)) for i in range(12)]
    state = ef.FetchState.first(T0)
    runs = []
    for _ in range(4):
        ids, state = fetch_all(backlog, state, max_fetch=5, look_back=timedelta(minutes=5))
        runs.append(ids)
    assert runs == [[f"e{i:03d}" for i in range(5)], [f"e{i:03d}" for i in range(5, 10)], ["e010", "e011"], []]


def test_the_last_run_forgets_ids_that_left_the_look_back_window() -> None:
    look_back = timedelta(minutes=1)
    state = ef.FetchState.first(T0)
    old = [event(f"old{i}", at(i)) for i in range(10)]
    _, state = fetch_all(old, state, 50, look_back)
    _, state = fetch_all([*old, event("recent", at(3600))], state, 50, look_back)
    assert set(state.seen_ids) == {"recent"}
    assert state.floor.created == at(3600) - look_back


def test_events_before_the_first_fetch_time_are_never_fetched() -> None:
    state = ef.FetchState.first(at(100))
    ids, _ = fetch_all([event("before", at(99.999)), event("on", at(100))], state, 50, timedelta(minutes=5))
    assert ids == ["on"]


def test_unusable_events_are_skipped_and_do_not_move_the_watermark() -> None:
    state = ef.FetchState.first(T0)
    run = ef.FetchRun(state, 50, timedelta(0), LATER)
    run.take([{"id": "no-time"}, {"created_time": ef.format_time(at(50))}, "junk",
              {"id": "bad-time", "created_time": "yesterday"}, event("good", at(10))])
    assert [e["id"] for e in run.new_events] == ["good"]
    assert run.next_state().watermark == at(10)
    assert run.invalid == ["event no-time with a missing or malformed created_time", "an event without an id",
                           "a str instead of an event object",
                           "event bad-time with a missing or malformed created_time"]


def test_an_event_dated_in_the_future_does_not_hold_back_the_events_after_it() -> None:
    look_back = timedelta(minutes=5)
    state = ef.FetchState.first(T0)
    skewed = event("skewed", at(86_400))  # a source clock a day ahead
    ids, state = fetch_all([event("a", at(10)), skewed], state, 50, look_back, now=at(60))
    assert ids == ["a", "skewed"] and state.watermark == at(60)
    ids, state = fetch_all([event("a", at(10)), event("b", at(180)), skewed], state, 50, look_back, now=at(240))
    assert ids == ["b"]
    assert "skewed" in state.seen_ids  # remembered until the window passes it: never fetched twice


def test_over_the_cap_the_oldest_ids_are_shed_and_the_floor_rises_without_duplicates(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ef, "MAX_SEEN_IDS", 10)
    tie = [event(f"t{i:03d}", at(5)) for i in range(40)]
    state = ef.FetchState.first(T0)
    delivered: list[str] = []
    for _ in range(10):
        ids, state = fetch_all(tie, state, max_fetch=7, look_back=timedelta(minutes=5))
        delivered += ids
        assert len(state.seen_ids) <= 10
    assert delivered == sorted(e["id"] for e in tie)


def test_the_last_run_is_versioned_json_and_survives_a_round_trip() -> None:
    state = ef.FetchState(at(10), ef.Position(at(5), "x"), {"a": at(6), "b": at(6), "c": at(10)})
    stored = ef.dump_state(state)
    assert stored == {"version": 1, "watermark": "2026-11-26T06:00:10.000Z",
                      "floor": ["2026-11-26T06:00:05.000Z", "x"],
                      "seen_ids": {"2026-11-26T06:00:06.000Z": ["a", "b"], "2026-11-26T06:00:10.000Z": ["c"]}}
    assert ef.load_state(json.loads(json.dumps(stored)), T0) == state


@pytest.mark.parametrize("stored", [
    ["not", "an", "object"],
    {"version": 1, "watermark": "0001-01-01T00:00:00.000Z", "floor": ["0001-01-01T00:00:00.000Z", ""],
     "seen_ids": {}},
    {"version": 99, "watermark": "2026-11-26T06:00:10.000Z"},
    {"start_time": "2026-11-26T06:00:10"},
    {"version": 1, "watermark": "2026-11-26T06:00:10.000Z"},
    {"version": 1, "watermark": "soon", "floor": ["2026-11-26T06:00:05.000Z", ""], "seen_ids": {}},
    {"version": 1, "watermark": "2026-11-26T06:00:10.000Z", "floor": "x", "seen_ids": {}},
])
def test_an_unreadable_last_run_is_an_error_that_says_how_to_recover(stored: Any) -> None:
    with pytest.raises(ef.StateError, match="reset the last run"):
        ef.load_state(stored, T0)


# --- exactly once, over any schedule, against a model of the API ------------------------------------------


@dataclass(frozen=True)
class ModelEvent:
    event_id: str
    created: datetime
    visible_at: datetime
    new_until: datetime | None  # when its status leaves New, if it does

    def listed_at(self, now: datetime) -> bool:
        return self.visible_at <= now and (self.new_until is None or now < self.new_until)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    look_back = timedelta(minutes=draw(st.sampled_from([0, 1, 5])))
    count = draw(st.integers(0, 40))
    events = []
    for i in range(count):
        created = at(draw(st.integers(0, 12)) * 30 + draw(st.sampled_from([0, 0, 0, 0.001, 0.5])))
        late = draw(st.sampled_from([0, 0, 0, 10, 60, 240, 300, 900]))
        status_change = draw(st.one_of(st.none(), st.integers(0, 600)))
        events.append(ModelEvent(f"ev-{draw(st.integers(0, 9))}{i:03d}", created, created + timedelta(seconds=late),
                                 None if status_change is None else created + timedelta(seconds=status_change)))
    return {
        "look_back": look_back,
        "events": events,
        "max_fetch": draw(st.integers(1, 6)),
        "page_size": draw(st.integers(1, 8)),
        "run_every": draw(st.sampled_from([15, 60, 90])),
        "faults": draw(st.lists(st.integers(0, 3), min_size=0, max_size=30)),  # pages read before a fault, per run
        "first_fetch": at(draw(st.sampled_from([0, 30, 60]))),
        "cap": draw(st.sampled_from([3, 10, 20_000])),
    }


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_exactly_once_over_any_schedule(scenario: dict[str, Any]) -> None:
    """Every event that stays New, is created after the first-fetch time and arrives late by at most the look-back
    becomes exactly one incident; no event ever becomes two, whatever the ties, pages, faults and status changes."""
    events: list[ModelEvent] = scenario["events"]
    look_back: timedelta = scenario["look_back"]
    ef.MAX_SEEN_IDS, saved_cap = scenario["cap"], ef.MAX_SEEN_IDS
    try:
        delivered: list[str] = []
        last_run: dict[str, Any] = {}
        faults = list(scenario["faults"])
        now = at(-30)
        last_visible = max((e.visible_at for e in events), default=T0)
        idle_runs = 0
        while now <= last_visible or idle_runs < 2:
            now += timedelta(seconds=scenario["run_every"])
            run = ef.FetchRun(ef.load_state(last_run, scenario["first_fetch"]), scenario["max_fetch"], look_back, now)
            listed = sorted((e for e in events if e.listed_at(now) and e.created >= run.since),
                            key=lambda e: (e.created, e.event_id))
            pages = [[event(e.event_id, e.created) for e in listed[i:i + scenario["page_size"]]]
                     for i in range(0, len(listed), scenario["page_size"])]
            pages_before_fault = faults.pop(0) if faults and now <= last_visible else len(pages)
            for page in pages[:pages_before_fault]:
                run.take(page)
                if run.full:
                    break
            faulted = pages_before_fault < len(pages) and not run.full
            if faulted and not run.new_events:
                continue  # the run fails and the last run stays as it was
            delivered += [e["id"] for e in run.new_events]
            last_run = json.loads(json.dumps(ef.dump_state(run.next_state())))
            idle_runs = 0 if run.new_events or faulted else idle_runs + 1
            assert len(last_run["seen_ids"]) <= len(events)
            assert sum(len(ids) for ids in last_run["seen_ids"].values()) <= ef.MAX_SEEN_IDS
    finally:
        ef.MAX_SEEN_IDS = saved_cap

    assert len(delivered) == len(set(delivered)), "an event became two incidents"
    eligible = {e.event_id for e in events if e.created >= scenario["first_fetch"]}
    assert set(delivered) <= eligible
    on_time = look_back if scenario["cap"] >= len(events) else timedelta(0)  # under the cap, late ones may drop
    must = {e.event_id for e in events
            if e.event_id in eligible and e.new_until is None and e.visible_at - e.created <= on_time}
    assert must <= set(delivered), f"lost: {sorted(must - set(delivered))}"


# --- the client and the commands, over HTTP mocked by requests-mock ------------------------------------------


@pytest.fixture
def client_settings() -> ef.Settings:
    return ef.parse_settings(base_params(), T0)


class RecordedSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_client(settings: ef.Settings, sleep: RecordedSleep | None = None) -> ef.EventSourceClient:
    return ef.EventSourceClient(settings, sleep=sleep or RecordedSleep())


def page(events: list[dict[str, Any]], next_cursor: str | None = None) -> dict[str, Any]:
    return {"json": {"events": events, "next_cursor": next_cursor}, "status_code": 200}


EVENTS_URL = BASE_URL + ef.EVENTS_PATH


def test_the_key_travels_only_in_the_authorization_header(requests_mock: Any, client_settings: ef.Settings) -> None:
    requests_mock.get(EVENTS_URL, [page([event("a", at(1))])])
    list(make_client(client_settings).iter_pages(at(0), "New", ("high",)))
    request = requests_mock.request_history[0]
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in request.url
    assert request.qs == {"since": ["2026-11-26t06:00:00.000z"], "limit": ["500"], "status": ["new"],
                          "severity": ["high"]}


@pytest.mark.parametrize(("header", "expected_wait"), [
    ({"Retry-After": "7"}, 7.0),
    ({}, ef.DEFAULT_RETRY_AFTER_SECONDS),
    ({"Retry-After": "3600"}, ef.MAX_RETRY_AFTER_SECONDS),
])
def test_429_honours_retry_after_in_seconds_or_a_bounded_default(requests_mock: Any, header: dict[str, str],
                                                                   expected_wait: float) -> None:
    settings_ = replace(ef.parse_settings(base_params(), T0), fetch_time_limit=600)
    requests_mock.get(EVENTS_URL, [{"status_code": 429, "json": {"error": "slow down"}, "headers": header},
                                   page([event("a", at(1))])])
    sleep = RecordedSleep()
    client = make_client(settings_, sleep)
    assert list(client.iter_pages(at(0), "New", ())) == [[event("a", at(1))]]
    assert sleep.waits == [expected_wait]
    assert client.retries == 1


def test_429_honours_retry_after_as_an_http_date() -> None:
    when = datetime(2026, 11, 26, 6, 0, 30, tzinfo=UTC)
    assert ef.retry_after_seconds("Thu, 26 Nov 2026 06:00:30 GMT", when - timedelta(seconds=12)) == 12.0
    assert ef.retry_after_seconds("Thu, 26 Nov 2026 06:00:30 GMT", when + timedelta(seconds=5)) == 0.0
    assert ef.retry_after_seconds("soon", when) is None


@pytest.mark.parametrize("fault", [
    {"status_code": 500, "json": {"error": "boom"}},
    {"status_code": 502, "text": "<html>bad gateway</html>", "headers": {"Content-Type": "text/html"}},
    {"status_code": 503, "text": ""},
    {"status_code": 504, "text": ""},
    {"exc": requests.exceptions.ConnectTimeout},
    {"exc": requests.exceptions.ReadTimeout},
    {"exc": requests.exceptions.ConnectionError},
    {"status_code": 200, "text": '{"events": [{"id": "a", "crea', "headers": {"Content-Type": "application/json"}},
])
def test_transient_faults_are_retried_with_exponential_backoff(requests_mock: Any, client_settings: ef.Settings,
                                                               fault: dict[str, Any]) -> None:
    requests_mock.get(EVENTS_URL, [fault, fault, fault, page([event("a", at(1))])])
    sleep = RecordedSleep()
    client = make_client(client_settings, sleep)
    assert list(client.iter_pages(at(0), "New", ())) == [[event("a", at(1))]]
    assert sleep.waits == [0.5, 1.0, 2.0]


def test_retries_are_bounded_and_end_in_one_clear_sentence(requests_mock: Any, client_settings: ef.Settings) -> None:
    requests_mock.get(EVENTS_URL, status_code=503, text="")
    sleep = RecordedSleep()
    with pytest.raises(ef.EventSourceError) as caught:
        list(make_client(client_settings, sleep).iter_pages(at(0), "New", ()))
    assert str(caught.value) == "The Event Source had a server error (HTTP 503), still after 5 attempts."
    assert sleep.waits == [0.5, 1.0, 2.0, 4.0]
    assert requests_mock.call_count == ef.MAX_ATTEMPTS


def test_a_wait_longer_than_the_time_budget_stops_the_run(requests_mock: Any) -> None:
    settings_ = replace(ef.parse_settings(base_params(), T0), fetch_time_limit=10)
    requests_mock.get(EVENTS_URL, status_code=429, headers={"Retry-After": "30"}, json={"error": "later"})
    sleep = RecordedSleep()
    with pytest.raises(ef.TimeLimitReached, match="would pass the fetch time limit of 10 seconds"):
        list(make_client(settings_, sleep).iter_pages(at(0), "New", ()))
    assert sleep.waits == []


def test_an_invalid_cursor_restarts_the_listing(requests_mock: Any, client_settings: ef.Settings) -> None:
    requests_mock.get(EVENTS_URL, [page([event("a", at(1))], "c1"),
                                   {"status_code": 400, "json": {"error": "invalid cursor"}},
                                   page([event("a", at(1))], "c2"), page([event("b", at(2))])])
    pages = list(make_client(client_settings).iter_pages(at(0), "New", ()))
    assert [[e["id"] for e in p] for p in pages] == [["a"], ["a"], ["b"]]
    assert "cursor" not in requests_mock.request_history[2].qs
    assert requests_mock.request_history[3].qs["cursor"] == ["c2"]


@pytest.mark.parametrize(("response", "fragment"), [
    ({"status_code": 401, "json": {"error": "invalid or missing API key"}}, "refused the API key (HTTP 401)"),
    ({"status_code": 403, "json": {"error": "forbidden"}}, "refused the API key (HTTP 403)"),
    ({"status_code": 302, "headers": {"Location": "https://elsewhere.example.org/api/v1/events"}},
     "redirects elsewhere"),
    ({"status_code": 200, "text": "<html>welcome</html>", "headers": {"Content-Type": "text/html"}},
     "answered with a web page"),
    ({"status_code": 404, "text": "<html>not here</html>", "headers": {"Content-Type": "text/html"}},
     "does not serve the Event Source API"),
    ({"status_code": 400, "json": {"error": "malformed since"}}, "rejected the request (HTTP 400): malformed since"),
    ({"status_code": 200, "json": {"items": []}}, "no list of events"),
    ({"status_code": 200, "json": {"events": [], "next_cursor": 5}}, "next_cursor is not a text"),
])
def test_answers_that_retrying_cannot_fix_fail_at_once(requests_mock: Any, client_settings: ef.Settings,
                                                        response: dict[str, Any], fragment: str) -> None:
    requests_mock.get(EVENTS_URL, [response])
    with pytest.raises(ef.EventSourceError) as caught:
        list(make_client(client_settings).iter_pages(at(0), "New", ()))
    assert fragment in str(caught.value)
    assert requests_mock.call_count == 1


# --- the commands, through main() as the server calls it ----------------------------------------------------

HEALTH_URL = BASE_URL + ef.HEALTH_PATH


def full_event(event_id: str, created: datetime, **fields: Any) -> dict[str, Any]:
    defaults = {"name": f"Suspicious login {event_id}", "severity": "high", "type": "Authentication",
                "description": "Five failed logins followed by a success.",
                "source": {"host": "vpn-gw-2", "ip": "203.0.113.7"}, "tags": ["vpn"]}
    return event(event_id, created, **{**defaults, **fields})


def run_main(demisto: Any, command: str, params: dict[str, Any] | None = None, **args: Any) -> None:
    demisto.command = command
    demisto.params = params or base_params(first_fetch="2026-11-26T05:00:00Z")
    demisto.args = args
    ef.main()


def test_fetch_turns_events_into_incidents_and_saves_state_last(requests_mock: Any, demisto: Any) -> None:
    created = datetime(2026, 11, 26, 6, 0, 0, 123000, tzinfo=UTC)
    events = [full_event("evt-1", created), event("evt-2", created, type="Malware", severity="odd"),
              event("evt-3", created, name="", severity="Critical")]
    requests_mock.get(EVENTS_URL, [page(events)])
    run_main(demisto, "fetch-incidents", base_params(first_fetch="2026-11-26T05:00:00Z", incidentType="Event Source"))
    assert demisto.calls[-2:] == ["incidents", "setLastRun"]
    first, second, third = demisto.incidents_created
    assert first == {"name": "Suspicious login evt-1", "occurred": "2026-11-26T06:00:00.123Z",
                     "rawJSON": json.dumps(events[0]), "severity": 3, "dbotMirrorId": "evt-1",
                     "details": "Five failed logins followed by a success.", "type": "Event Source"}
    assert (second["name"], second["severity"], second["details"]) == ("Malware evt-2", 0, "")
    assert (third["name"], third["severity"]) == ("Event evt-3", 4)
    assert demisto.last_run["watermark"] == "2026-11-26T06:00:00.123Z"
    assert demisto.last_run["seen_ids"] == {"2026-11-26T06:00:00.123Z": ["evt-1", "evt-2", "evt-3"]}


def test_fetch_logs_one_line_of_figures(requests_mock: Any, demisto: Any) -> None:
    demisto.last_run = ef.dump_state(ef.FetchState.first(at(0)))
    requests_mock.get(EVENTS_URL, [page([event("a", at(1))], "c1"), page([event("b", at(2)), {"id": "x"}])])
    run_main(demisto, "fetch-incidents")
    figures = [message for _, message in demisto.logs if message.startswith("fetch figures:")]
    assert figures == ["fetch figures: events_read=2 incidents=2 duplicates=0 behind_floor=0 invalid=1 "
                       "future_dated=0 pages=2 retries=0 watermark=2026-11-26T06:00:02.000Z lag_seconds=0 "
                       "remembered_ids=2"]
    assert ("info", "Skipped event x with a missing or malformed created_time.") in demisto.logs


def test_a_flood_of_unusable_events_is_summed_up_in_the_log(requests_mock: Any, demisto: Any) -> None:
    requests_mock.get(EVENTS_URL, [page([{"id": f"x{i}"} for i in range(15)])])
    run_main(demisto, "fetch-incidents")
    skipped = [message for _, message in demisto.logs if message.startswith("Skipped")]
    assert skipped[:2] == ["Skipped event x0 with a missing or malformed created_time.",
                           "Skipped event x1 with a missing or malformed created_time."]
    assert skipped[10:] == ["Skipped 5 more unusable events."]


def test_a_failed_fetch_raises_one_sentence_and_keeps_the_last_run(requests_mock: Any, demisto: Any) -> None:
    stored = ef.dump_state(ef.FetchState.first(at(0)))
    demisto.last_run = stored
    requests_mock.get(EVENTS_URL, status_code=401, json={"error": "invalid or missing API key"})
    with pytest.raises(Exception, match=r"^No incident fetched: The Event Source refused the API key \(HTTP 401\); "
                                        r"check the API Key parameter\.$"):
        run_main(demisto, "fetch-incidents")
    assert "setLastRun" not in demisto.calls and "incidents" not in demisto.calls
    assert demisto.last_run == stored


def test_a_bad_parameter_fails_fetch_without_touching_the_last_run(demisto: Any) -> None:
    demisto.last_run = {"kept": True}
    with pytest.raises(Exception, match=r"^Maximum number of incidents per fetch must be a whole number"):
        run_main(demisto, "fetch-incidents", base_params(max_fetch="500"))
    assert demisto.set_last_run_calls == []


def test_test_module_checks_health_and_runs_a_dry_fetch_of_one_event(requests_mock: Any, demisto: Any) -> None:
    requests_mock.get(HEALTH_URL, json={"status": "ok", "version": "1"})
    events_route = requests_mock.get(EVENTS_URL, [page([event("a", at(1)), event("b", at(2))])])
    run_main(demisto, "test-module")
    assert [entry["Contents"] for entry in demisto.entries] == ["ok"]
    assert events_route.call_count == 1
    assert demisto.set_last_run_calls == [] and demisto.incidents_created == []


def test_test_module_without_fetching_checks_only_url_and_key(requests_mock: Any, demisto: Any) -> None:
    requests_mock.get(HEALTH_URL, json={"status": "ok", "version": "1"})
    events_route = requests_mock.get(EVENTS_URL, [page([])])
    run_main(demisto, "test-module", base_params(isFetch=False))
    assert [entry["Contents"] for entry in demisto.entries] == ["ok"]
    assert events_route.call_count == 0


@pytest.mark.parametrize(("params", "response", "fragment"), [
    (base_params(), {"status_code": 401, "json": {"error": "invalid or missing API key"}}, "refused the API key"),
    (base_params(first_fetch="next week"), None, "First fetch time must be like"),
    (base_params(max_fetch=""), None, "it is empty"),
    (base_params(look_back="x"), None, 'Look-back (minutes) must be a whole number from 0 to 1440, not "x".'),
])
def test_test_module_names_what_is_wrong(requests_mock: Any, demisto: Any, params: dict[str, Any],
                                         response: dict[str, Any] | None, fragment: str) -> None:
    requests_mock.get(HEALTH_URL, [response or {"json": {"status": "ok"}}])
    run_main(demisto, "test-module", params)
    [entry] = demisto.errors()
    assert entry["Contents"].startswith("Failed to execute test-module: ")
    assert fragment in entry["Contents"]
    assert API_KEY not in json.dumps(demisto.entries) + json.dumps(demisto.logs)


def test_test_module_reports_an_unreachable_url(demisto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sleep = RecordedSleep()
    monkeypatch.setattr(ef.time, "sleep", sleep)
    run_main(demisto, "test-module", base_params(url="http://127.0.0.1:9", request_timeout="1"))
    assert sleep.waits == [0.5, 1.0, 2.0, 4.0]
    [entry] = demisto.errors()
    assert entry["Contents"] == ("Failed to execute test-module: Could not connect to the Event Source at "
                                 "http://127.0.0.1:9, still after 5 attempts.")


def test_get_events_previews_without_touching_the_last_run(requests_mock: Any, demisto: Any) -> None:
    events = [full_event("evt-1", at(1)), full_event("evt-2", at(2), name="a | b")]
    route = requests_mock.get(EVENTS_URL, [page(events)])
    run_main(demisto, "event-fetcher-get-events", since="2026-11-26T05:00:00Z", severity="high", limit="2")
    [entry] = demisto.entries
    assert entry["Contents"] == events
    assert entry["EntryContext"]["EventFetcher.Event(val.id && val.id == obj.id)"] == [
        {"id": "evt-1", "name": "Suspicious login evt-1", "created_time": "2026-11-26T06:00:01.000Z",
         "severity": "high", "status": "New", "type": "Authentication"},
        {"id": "evt-2", "name": "a | b", "created_time": "2026-11-26T06:00:02.000Z", "severity": "high",
         "status": "New", "type": "Authentication"}]
    assert entry["HumanReadable"].splitlines()[1:3] == ["|id|name|created_time|severity|status|type|",
                                                         "|---|---|---|---|---|---|"]
    assert "a \\| b" in entry["HumanReadable"]
    assert route.last_request.qs == {"since": ["2026-11-26t05:00:00.000z"], "limit": ["2"], "severity": ["high"]}
    assert "getLastRun" not in demisto.calls and "setLastRun" not in demisto.calls


@pytest.mark.parametrize(("args", "fragment"), [
    ({"limit": "0"}, "limit must be a whole number from 1 to 1000, not 0."),
    ({"limit": "many"}, 'limit must be a whole number from 1 to 1000, not "many".'),
    ({"since": "later"}, "since must be like"),
    ({"status": "Open"}, "status must be one of New, In Progress, Closed"),
    ({"severity": "urgent"}, 'severity has an unknown value "urgent"'),
])
def test_get_events_names_a_bad_argument(demisto: Any, args: dict[str, str], fragment: str) -> None:
    run_main(demisto, "event-fetcher-get-events", **args)
    [entry] = demisto.errors()
    assert fragment in entry["Contents"]


def test_an_unknown_command_is_an_error_entry(demisto: Any) -> None:
    run_main(demisto, "event-fetcher-do-something")
    assert demisto.errors()[0]["Contents"] == ("Failed to execute event-fetcher-do-something: "
                                               "The command event-fetcher-do-something is not implemented.")
