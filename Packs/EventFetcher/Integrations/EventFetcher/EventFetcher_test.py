"""Unit tests of EventFetcher: configuration, the pure fetch logic and the fetch over a model API without HTTP,
then the client and the commands with requests-mock."""

import json
import random
import zlib
from collections.abc import Iterator
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


def base_params(**overrides: Any) -> dict[str, Any]:
    params = {"url": BASE_URL, "credentials": {"identifier": "", "password": API_KEY}, "first_fetch": "3 days",
              "max_fetch": "50", "look_back": "5", "isFetch": True}
    params.update(overrides)
    return params


def custom_params(**overrides: Any) -> dict[str, Any]:
    """A Custom source with every Collect value of its own."""
    values = {"source": "Custom", "auth_type": "bearer", "endpoint": "/api/alerts",
              "query": "from={start}&to={end}&size={limit}", "time_format": "iso", "items_path": "data.alerts",
              "id_path": "alert_id", "time_path": "ts", "name_path": "title", "severity_path": "level",
              "severity_map": "P1=critical,P2=high,P3=medium,P4=low,P5=informational", "status_path": "state",
              "status": "open", "order": "ascending", "pagination": "page", "page_param": "page", "page_size": "100"}
    return base_params(**{**values, **overrides})


EVENT_SOURCE = ef.parse_settings(base_params(), T0)
READER = ef.ItemReader(EVENT_SOURCE.source, frozenset())


def event(event_id: str, created: datetime, **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "created_time": ef.format_time(created), "status": "New", **fields}


def read(raw_items: list[Any]) -> list[ef.Item]:
    items = [READER.read(raw) for raw in raw_items]
    return [item for item in items if type(item) is ef.Item]


def run_once(state: ef.FetchState, pages: list[list[dict[str, Any]]], max_fetch: int = 50,
             look_back: timedelta = timedelta(0), now: datetime = LATER) -> tuple[list[str], ef.FetchState]:
    """One pure fetch run of an oldest-first listing: the ids delivered and the next state after a JSON round trip,
    as the server keeps it."""
    window = ef.plan_window(state, look_back, EVENT_SOURCE.source, now)
    run = ef.FetchRun(state, max_fetch, look_back, now, window.end)
    whole = True
    for number, page in enumerate(pages, 1):
        run.take(read(page))
        if run.full or run.reached_end:
            whole = run.reached_end or number == len(pages)
            break
    stored = json.loads(json.dumps(ef.dump_state(run.next_state(whole))))
    return [item.position.item_id for item in run.new_items], ef.load_state(stored, T0)


def listing_from(events: list[dict[str, Any]], since: datetime, page_size: int = 500) -> list[list[dict[str, Any]]]:
    """The API's answer to a listing from `since`: inclusive, ascending by (created_time, id), in pages."""
    chosen = sorted((e for e in events if ef.parse_timestamp(e["created_time"]) >= since),
                    key=lambda e: (e["created_time"], e["id"]))
    return [chosen[i:i + page_size] for i in range(0, len(chosen), page_size)] or [[]]


def fetch_all(events: list[dict[str, Any]], state: ef.FetchState, max_fetch: int, look_back: timedelta,
              page_size: int = 500, now: datetime = LATER) -> tuple[list[str], ef.FetchState]:
    since = ef.plan_window(state, look_back, EVENT_SOURCE.source, now).start
    return run_once(state, listing_from(events, since, page_size), max_fetch, look_back, now)


# --- times and parameters --------------------------------------------------------------------------


def test_item_times_are_read_at_any_precision_offset_or_epoch_and_cut_to_milliseconds() -> None:
    assert ef.format_time(datetime(2026, 11, 26, 7, 0, 0, 123456, tzinfo=UTC)) == "2026-11-26T07:00:00.123Z"
    expected = datetime(2026, 11, 26, 7, 0, 0, 123000, tzinfo=UTC)
    assert ef.parse_timestamp("2026-11-26T08:00:00.123+01:00") == expected
    assert ef.parse_timestamp("2026-11-26T07:00:00.1239999Z") == expected  # Graph's 7 digits, cut not rounded
    assert ef.parse_timestamp("2026-11-26T12:30:00.123+0530") == expected  # Jira's offset without a colon
    assert ef.parse_timestamp(1795676400123) == expected  # epoch milliseconds
    assert ef.parse_timestamp("1795676400123") == expected
    assert ef.parse_timestamp(1795676400) == expected.replace(microsecond=0)  # epoch seconds
    assert ef.parse_timestamp("2026-11-26T07:00:00") == datetime(2026, 11, 26, 7, tzinfo=UTC)
    assert ef.parse_timestamp("2026-11-26 07:00:00") == datetime(2026, 11, 26, 7, tzinfo=UTC)  # ServiceNow
    for unreadable in ("not a time", "", None, True, float("nan"), {"t": 1}, 10**20):
        assert ef.parse_timestamp(unreadable) is None


def test_a_pattern_time_is_read_and_written_in_its_time_zone() -> None:
    kolkata = ef.parse_zone("Asia/Kolkata")
    minutes = ef.parse_time_format("%Y/%m/%d %H:%M", kolkata)
    assert minutes.unit == timedelta(minutes=1)
    assert minutes.write(datetime(2026, 11, 26, 4, 31, 59, 999000, tzinfo=UTC)) == "2026/11/26 10:01"
    assert ef.parse_timestamp("26.11.2026 10:01", kolkata, "%d.%m.%Y %H:%M") == datetime(2026, 11, 26, 4, 31,
                                                                                         tzinfo=UTC)
    assert ef.parse_timestamp("2026-11-26T10:01:00", kolkata) == datetime(2026, 11, 26, 4, 31, tzinfo=UTC)


@pytest.mark.parametrize(("name", "written", "unit"), [
    ("iso", "2026-11-26T06:00:01.234Z", timedelta(milliseconds=1)),
    ("iso_seconds", "2026-11-26T06:00:01Z", timedelta(seconds=1)),
    ("epoch_seconds", "1795672801", timedelta(seconds=1)),
    ("epoch_millis", "1795672801234", timedelta(milliseconds=1)),
    ("%Y-%m-%d %H:%M:%S", "2026-11-26 06:00:01", timedelta(seconds=1)),
    ("%Y-%m-%d %H:%M", "2026-11-26 06:00", timedelta(minutes=1)),
    ("%Y-%m-%d", "2026-11-26", timedelta(days=1)),
])
def test_each_time_format_writes_a_time_cut_to_its_precision(name: str, written: str, unit: timedelta) -> None:
    time_format = ef.parse_time_format(name, UTC)
    assert time_format.write(at(1.2345)) == written
    assert time_format.unit == unit


@pytest.mark.parametrize("name", ["iso", "iso_seconds", "epoch_seconds", "%Y-%m-%d %H:%M"])
def test_the_asked_window_is_one_step_wider_on_each_side_so_no_bound_loses_an_item(name: str) -> None:
    time_format = ef.parse_time_format(name, UTC)
    window = ef.Window(at(90.5), at(150.25))
    values = window.query_values(time_format, LATER)
    start = ef.parse_timestamp(values["start"], UTC, time_format.pattern)
    end = ef.parse_timestamp(values["end"], UTC, time_format.pattern)
    assert start < window.start and end > window.end  # so exclusive and inclusive bounds alike hold every item
    assert window.start - start <= 2 * time_format.unit and end - window.end <= 2 * time_format.unit


@pytest.mark.parametrize(("text", "expected"), [
    ("3 days", T0 - timedelta(days=3)),
    ("12 hours ago", T0 - timedelta(hours=12)),
    ("1 week", T0 - timedelta(weeks=1)),
    ("90 minutes", T0 - timedelta(minutes=90)),
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01T05:30:00Z", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ("1795672800", T0),
])
def test_first_fetch_accepts_relative_iso_and_epoch_forms(text: str, expected: datetime) -> None:
    assert ef.parse_time_expression(text, T0, "First fetch time") == expected


def test_settings_defaults_are_the_event_source_profile() -> None:
    settings_ = ef.parse_settings({"url": BASE_URL + "/api/v1/", "credentials": {"password": API_KEY}}, T0)
    assert settings_.base_url == BASE_URL
    assert settings_.first_fetch == T0 - timedelta(days=3)
    assert settings_.max_fetch == 50
    assert settings_.look_back == timedelta(minutes=5)
    assert settings_.severities == frozenset()
    assert settings_.verify_tls and not settings_.use_proxy
    source = settings_.source
    assert (source.profile, source.endpoint, source.status, source.order, source.pagination, source.page_size) == (
        "Event Source", "/api/v1/events", "New", "ascending", "cursor", 500)
    assert settings_.auth.kind == "bearer"
    assert API_KEY not in repr(settings_)


@pytest.mark.parametrize("profile", [name for name in ef.PROFILES if name != ef.CUSTOM])
def test_every_profile_parses_with_only_url_and_credentials(profile: str) -> None:
    params = base_params(source=profile, credentials={"identifier": "client-or-user", "password": API_KEY},
                         token_url="https://login.example.com/tenant/oauth2/v2.0/token")
    settings_ = ef.parse_settings(params, T0)
    assert settings_.source.profile == profile
    assert settings_.source.id_path and settings_.source.time_path
    assert API_KEY not in repr(settings_)


def test_a_filled_in_parameter_wins_over_the_profile_and_a_blank_one_takes_it() -> None:
    params = base_params(source="Okta System Log", page_size="200", endpoint="  ", settle="30", status="")
    source = ef.parse_settings(params, T0).source
    assert (source.page_size, source.endpoint, source.settle) == (200, "/api/v1/logs", timedelta(seconds=30))
    assert source.query.render({"start": "S", "end": "E", "limit": "200"}) == [
        ("since", "S"), ("until", "E"), ("sortOrder", "ASCENDING"), ("limit", "200")]


def test_a_custom_source_reads_every_collect_value_from_the_instance() -> None:
    source = ef.parse_settings(custom_params(more_path="!meta.last", headers="X-Tenant: 42\n"), T0).source
    assert source.items_path == ("data", "alerts")
    assert (source.more_path, source.more_negated) == (("meta", "last"), True)
    assert source.severity_map["p1"] == 4 and source.severity_map["p5"] == 0.5
    assert source.headers == (("X-Tenant", "42"),)
    assert (source.pagination, source.page_param, source.status) == ("page", "page", "open")


def test_paths_take_dots_list_indexes_and_bracketed_keys() -> None:
    body = {"@odata.nextLink": "https://next", "items": [{"id": 7}], "fields": {"status": {"name": "To Do"}}}
    assert ef.read_path(body, ef.parse_path("[@odata.nextLink]", "p")) == "https://next"
    assert ef.read_path(body, ef.parse_path("items.0.id", "p")) == 7
    assert ef.read_path(body, ef.parse_path("fields.status.name", "p")) == "To Do"
    assert ef.read_path(body, ef.parse_path("items.3.id", "p")) is None
    assert ef.read_path(body, ef.parse_path("fields.status.name.more", "p")) is None
    assert ef.read_path([1, 2], ()) == [1, 2]


def test_the_query_template_encodes_after_substitution_repeats_keys_and_drops_an_empty_lone_placeholder() -> None:
    template = ef.parse_query("statuses[]={status}&statuses[]=acknowledged&q=a {start}&severity={severity}")
    assert template.render({"status": "triggered", "start": "S&T", "severity": ""}) == [
        ("statuses[]", "triggered"), ("statuses[]", "acknowledged"), ("q", "a S&T")]
    session = requests.Session()
    prepared = session.prepare_request(requests.Request("GET", BASE_URL, params=template.render(
        {"status": "x y", "start": "<&>"})))
    assert prepared.url.endswith("?statuses%5B%5D=x+y&statuses%5B%5D=acknowledged&q=a+%3C%26%3E")


def test_rich_text_details_become_their_text_a_paragraph_a_line() -> None:
    document = {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "Disk "}, {"type": "text", "text": "full"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "on db-01."}]}]}
    assert ef.text_of(document) == "Disk full\non db-01."
    assert ef.text_of("plain") == "plain" and ef.text_of(None) == "" and ef.text_of(7) == ""


@pytest.mark.parametrize(("text", "level"), [("P1", 4), ("p2", 3), (" P5 ", 0.5), ("high", 3), ("Critical", 4),
                                             ("informational", 0.5), ("2", 2), ("odd", 0), (None, 0), ({"x": 1}, 0)])
def test_severity_goes_through_the_map_then_level_names_and_numbers(text: Any, level: float) -> None:
    assert ef.item_severity(text, ef.parse_severity_map("P1=critical, P2=high,P5=0.5")) == level


BARE_CUSTOM = {"source": "Custom", "endpoint": "/x", "id_path": "id", "time_path": "t"}


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
    ({"source": "Splunk"}, 'Source must be one of Event Source, Microsoft Graph Security alerts, Okta System Log'),
    ({"source": "Custom"}, "Endpoint is missing; the Custom source needs it (endpoint)."),
    ({"source": "Custom", "endpoint": "/x"}, "ID path is missing; the Custom source needs it (id_path)."),
    ({"source": "Custom", "endpoint": "/x", "id_path": "id"}, "Time path is missing"),
    ({"auth_type": "kerberos"}, 'Authentication type must be one of bearer, header, basic, oauth2, none, not'),
    ({"pagination": "scroll"}, "Pagination must be one of none, cursor, next_url, link_header, offset, page"),
    ({"order": "random"}, "Order must be one of ascending, descending, unordered"),
    ({"time_format": "unix"}, "Time format must be iso, iso_seconds, epoch_seconds, epoch_millis or a strftime"),
    ({"time_format": "%Q"}, "Time format must be"),
    ({"time_zone": "Mars/Olympus"}, "Time zone must be an IANA time zone"),
    ({"query": "since={since}"}, "Query has an unknown placeholder {since}"),
    ({"query": "since={start"}, "Query must be key=value pairs joined by &"),
    ({"severity_map": "P1=urgent"}, 'Severity map must be value=level pairs'),
    ({"severity_map": "P1"}, 'Severity map must be value=level pairs'),
    ({"headers": "X-Tenant 42"}, 'Headers must hold one "Name: value" per line; line 1 is not.'),
    ({"auth_type": "header", "auth_header": "Authorization SSWS"}, "Authentication header must hold one"),
    ({"auth_type": "header", "auth_header": "X-Key: {secret}"}, "Authentication header has an unknown placeholder"),
    ({"auth_type": "header"}, "Authentication header is missing"),
    ({"auth_type": "basic"}, "basic authentication needs a user name and a password"),
    ({"auth_type": "oauth2", "credentials": {"identifier": "id", "password": "s"}}, "Token URL is missing"),
    ({"items_path": "a..b"}, "Items path must be dot-separated keys"),
    ({**BARE_CUSTOM, "pagination": "cursor"}, "Next path is missing"),
    ({**BARE_CUSTOM, "pagination": "offset"}, "Page parameter is missing"),
    ({"page_size": "0"}, "Page size must be a whole number from 1 to"),
    ({"window": "5"}, "Window (minutes) must be longer than the look-back"),
    ({"settle": "-1"}, "Settle (seconds) must be a whole number"),
])
def test_each_bad_parameter_gets_one_clear_sentence(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ef.ConfigError) as caught:
        ef.parse_settings(base_params(**overrides), T0)
    message = str(caught.value)
    assert fragment in message
    assert message.endswith(".") and "\n" not in message
    assert API_KEY not in message


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"first_fetch": "9" * 5000 + " days"}, "First fetch time goes back further than a calendar allows"),
    ({"credentials": {"password": "abc\ndef"}}, "API Key contains spaces or control characters"),
    ({"credentials": {"password": "abc def"}}, "API Key contains spaces or control characters"),
    ({"url": "https://user:secret@events.example.com"}, "must not hold a user name or password"),
    ({"auth_type": "oauth2", "credentials": {"identifier": "id", "password": "secret"},
      "token_url": "https://id:secret@login.example.com/token"}, "Token URL must not hold a user name or password"),
    ({"auth_type": "basic", "credentials": {"identifier": "me\x00", "password": "secret"}},
     "Credentials contain control characters"),
])
def test_parameters_that_could_crash_or_mislead_get_a_clear_sentence(overrides: dict[str, Any],
                                                                     fragment: str) -> None:
    with pytest.raises(ef.ConfigError) as caught:
        ef.parse_settings(base_params(**overrides), T0)
    assert fragment in str(caught.value) and "secret" not in str(caught.value)


def test_all_severities_means_no_filter_so_unknown_severities_are_fetched_too() -> None:
    assert ef.parse_severities(["low", "medium", "high", "critical"], "s") == frozenset()
    assert ef.parse_severities("", "s") == frozenset()
    assert ef.parse_severities("critical, HIGH", "s") == frozenset({3, 4})


def test_the_reader_skips_unusable_items_with_a_reason_and_drops_filtered_ones() -> None:
    reader = ef.ItemReader(ef.parse_settings(custom_params(), T0).source, frozenset({3, 4}))
    good = {"alert_id": "a1", "ts": 1795672800000, "state": "OPEN", "level": "P2"}
    assert reader.read(good) == ef.Item(ef.Position(T0, "a1"), good, 3)
    assert reader.read({**good, "state": "closed"}) is None
    assert reader.read({**good, "level": "P4"}) is None
    assert reader.read({**good, "alert_id": True}) == "an item without an id at alert_id"
    assert reader.read({**good, "ts": "soon"}) == "item a1 with a missing or malformed time at ts"
    assert reader.read(["a"]) == "a list instead of an item object"


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
    ids, state = run_once(ef.FetchState.first(T0), [[{"id": "no-time"}, {"created_time": ef.format_time(at(50))},
                                                     "junk", {"id": "bad-time", "created_time": "yesterday"},
                                                     event("good", at(10))]])
    assert ids == ["good"]
    assert state.watermark == at(10)


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
    state = ef.FetchState(at(10), at(8), ef.Position(at(5), "x"), {"a": at(6), "b": at(6), "c": at(10.5)},
                          timedelta(minutes=3))
    stored = ef.dump_state(state)
    assert stored == {"version": 2, "watermark": "2026-11-26T06:00:10.000Z", "listed_until": "2026-11-26T06:00:08.000Z",
                      "floor": ["2026-11-26T06:00:05.000Z", "x"], "seen_ids": {"1000": ["a", "b"], "5500": ["c"]},
                      "span_ms": 180000}
    assert ef.load_state(json.loads(json.dumps(stored)), T0) == state


def test_a_last_run_of_version_1_is_continued_without_refetching_or_skipping() -> None:
    """An instance upgraded from 1.0.0 goes on from its last run as 1.0.0 would have."""
    version_1 = {"version": 1, "watermark": "2026-11-26T06:00:10.000Z", "floor": ["2026-11-26T06:00:05.000Z", ""],
                 "seen_ids": {"2026-11-26T06:00:06.000Z": ["a", "b"], "2026-11-26T06:00:10.000Z": ["c"]}}
    state = ef.load_state(version_1, T0)
    assert state == ef.FetchState(at(10), at(10), ef.Position(at(5), ""), {"a": at(6), "b": at(6), "c": at(10)})
    events = [event("a", at(6)), event("b", at(6)), event("late", at(7)), event("c", at(10)), event("d", at(10)),
              event("e", at(11))]
    ids, state = fetch_all(events, state, 50, timedelta(seconds=5))
    assert ids == ["late", "d", "e"]
    assert ef.dump_state(state)["version"] == 2


def test_a_remembered_id_of_36_characters_costs_under_60_bytes_in_the_last_run() -> None:
    ids = [f"{i:08x}-8c5b-4bd2-9f0e-3c2a1b0d9e7f" for i in range(500)]
    seen = {item_id: at(60) + timedelta(milliseconds=1234 * i) for i, item_id in enumerate(ids)}
    state = ef.FetchState(at(660), at(660), ef.Position(at(60), ""), seen)
    empty = ef.FetchState(at(660), at(660), ef.Position(at(60), ""), {})
    size = len(json.dumps(ef.dump_state(state))) - len(json.dumps(ef.dump_state(empty)))
    assert size / len(ids) < 60


@pytest.mark.parametrize("stored", [
    ["not", "an", "object"],
    {"version": 1, "watermark": "0001-01-01T00:00:00.000Z", "floor": ["0001-01-01T00:00:00.000Z", ""],
     "seen_ids": {}},
    {"version": 99, "watermark": "2026-11-26T06:00:10.000Z"},
    {"start_time": "2026-11-26T06:00:10"},
    {"version": 1, "watermark": "2026-11-26T06:00:10.000Z"},
    {"version": 1, "watermark": "soon", "floor": ["2026-11-26T06:00:05.000Z", ""], "seen_ids": {}},
    {"version": 1, "watermark": "2026-11-26T06:00:10.000Z", "floor": "x", "seen_ids": {}},
    {"version": 2, "watermark": "2026-11-26T06:00:10.000Z", "floor": ["2026-11-26T06:00:05.000Z", ""],
     "seen_ids": {}},
    {"version": 2, "watermark": "2026-11-26T06:00:10.000Z", "listed_until": "2026-11-26T06:00:10.000Z",
     "floor": ["2026-11-26T06:00:05.000Z", ""], "seen_ids": {"soon": ["a"]}},
    {"version": 2, "watermark": "2026-11-26T06:00:10.000Z", "listed_until": "2026-11-26T06:00:10.000Z",
     "floor": ["2026-11-26T06:00:05.000Z", ""], "seen_ids": {}, "span_ms": -5},
    {"version": 2, "watermark": "2026-11-26T06:00:10.000Z", "listed_until": "2026-11-26T06:00:10.000Z",
     "floor": ["2026-11-26T06:00:05.000Z", ""], "seen_ids": {"9" * 400: ["a"]}},
])
def test_an_unreadable_last_run_is_an_error_that_says_how_to_recover(stored: Any) -> None:
    with pytest.raises(ef.StateError, match="reset the last run"):
        ef.load_state(stored, T0)




# --- windows, orders and spans ------------------------------------------------------------------------------


def source_with(**overrides: Any) -> ef.Source:
    return ef.parse_settings(custom_params(**overrides), T0).source


def test_the_window_ends_settle_before_now_and_is_capped_by_the_window_and_the_span() -> None:
    state = ef.FetchState(at(600), at(500), ef.Position(at(300), ""), {}, timedelta(minutes=2))
    look_back = timedelta(minutes=5)
    assert ef.plan_window(state, look_back, source_with(), at(900)) == ef.Window(at(300), None)
    assert ef.plan_window(state, look_back, source_with(settle="60"), at(900)) == ef.Window(at(300), at(840))
    assert ef.plan_window(state, look_back, source_with(window="6"), at(900)) == ef.Window(at(300), at(660))
    # the span counts for sources read whole, from the progress: the later of watermark and listed_until
    assert ef.plan_window(state, look_back, source_with(order="descending"), at(900)) == ef.Window(at(300), at(720))


def test_a_capped_window_read_whole_moves_listed_until_to_its_end_even_when_it_held_nothing() -> None:
    source = source_with(window="10")
    state = ef.FetchState.first(T0)
    for expected_end in (at(600), at(1200)):
        window = ef.plan_window(state, timedelta(0), source, LATER)
        assert window.end == expected_end
        run = ef.FetchRun(state, 5, timedelta(0), LATER, window.end)
        run.take([])
        state = run.next_state(window_read_whole=True)
        assert state.listed_until == expected_end and state.watermark == T0


def test_left_over_items_set_the_next_span_just_past_the_max_fetch_th_of_them() -> None:
    items = [ef.Item(ef.Position(at(i * 10), f"i{i:02d}"), {}, 0) for i in range(20)]
    state = ef.FetchState.first(T0)
    run = ef.FetchRun(state, 4, timedelta(0), LATER, None)
    run.take(items)
    assert [item.position.item_id for item in run.new_items] == ["i00", "i01", "i02", "i03"]
    assert run.left_over == [at(40), at(50), at(60), at(70)]
    span = ef.next_span(run, False, ef.MILLISECOND)
    assert span == at(70) + ef.MILLISECOND - at(30)
    assert run.next_state(True, span).listed_until == T0  # not everything was delivered


def test_a_window_too_large_to_read_narrows_past_the_oldest_item_read_or_halves() -> None:
    state = ef.FetchState(at(100), at(100), ef.Position(at(100), ""), {})
    window = ef.Window(at(100), at(1100))
    assert ef.narrowed_span(state, window, at(700), "descending", LATER, ef.MILLISECOND) == timedelta(
        seconds=600, milliseconds=1)
    assert ef.narrowed_span(state, window, at(700), "unordered", LATER, ef.MILLISECOND) == timedelta(seconds=500)
    assert ef.narrowed_span(state, window, None, "descending", LATER, ef.MILLISECOND) == timedelta(seconds=500)
    tiny = ef.Window(at(100), at(100.001))
    assert ef.narrowed_span(state, tiny, None, "unordered", LATER, ef.MILLISECOND) == ef.MILLISECOND


def test_a_reading_that_lost_an_id_of_the_one_before_calls_for_another() -> None:
    def items(*names: str) -> list[ef.Item]:
        return [ef.Item(ef.Position(at(int(name[1:])), name), {}, 0) for name in names]

    assert ef.holds_every_id(items("a1", "a2", "a3"), items("a1", "a2", "a3", "a4"), None)
    assert not ef.holds_every_id(items("a1", "a2", "a3"), items("a1", "a3"), None)
    assert ef.holds_every_id(items("a1", "a2", "a9"), items("a1", "a2"), at(5))  # a9 is past the later one's reach


# --- exactly once, over any schedule, order and paging, against a model of the API ---------------------------


@dataclass(frozen=True)
class ModelEvent:
    event_id: str
    created: datetime
    visible_at: datetime
    new_until: datetime | None  # when its status leaves New, if it does

    def listed_at(self, now: datetime) -> bool:
        return self.visible_at <= now and (self.new_until is None or now < self.new_until)


class ModelAPI:
    """The source of fetch_incidents without HTTP: lists the model's New events at its own clock, in the order and
    paging the scenario draws, answering the written bounds inclusively or exclusively. The clock moves on with
    each page, so events leave the filter and late ones come in mid-listing, and offsets shift."""

    def __init__(self, events: list[ModelEvent], source: ef.Source, scenario: dict[str, Any]) -> None:
        self.events = events
        self.source = source
        self.api_page_size = scenario["page_size"]
        self.page_gap = timedelta(seconds=scenario["page_gap"])
        self.start_inclusive, self.end_inclusive = scenario["bounds"]
        self.clock = at(-30)
        self.fault_after: int | None = None  # pages served before a fault, in the current run
        self.source_now: datetime | None = None  # the Date header of the run's first answer, cut to the second
        self.pages = 0
        self.retries = 0
        self.tokens_fetched = 0

    def key(self, event: ModelEvent) -> tuple[Any, ...]:
        if self.source.order == "ascending":
            return (event.created, event.event_id)
        if self.source.order == "descending":
            return (-(event.created - T0) // ef.MILLISECOND, event.event_id)
        return (zlib.crc32(event.event_id.encode()), event.event_id)

    def in_bounds(self, event: ModelEvent, start: datetime, end: datetime) -> bool:
        after_start = event.created >= start if self.start_inclusive else event.created > start
        before_end = event.created <= end if self.end_inclusive else event.created < end
        return after_start and before_end

    def list_pages(self, values: dict[str, str]) -> Iterator[ef.Page]:
        pattern = self.source.time_format.pattern
        start = ef.parse_timestamp(values["start"], UTC, pattern)
        end = ef.parse_timestamp(values["end"], UTC, pattern)
        assert start is not None and end is not None
        limit = min(int(values["limit"]), self.api_page_size)
        offset, after, served = 0, None, 0
        while True:
            if self.fault_after is not None and served >= self.fault_after:
                raise ef.SourceError("The model API failed.")
            listing = sorted((e for e in self.events if e.listed_at(self.clock) and self.in_bounds(e, start, end)),
                             key=self.key)
            if self.source.pagination == "offset":
                page = listing[offset:offset + limit]
                more = offset + len(page) < len(listing)
            else:  # a cursor continues after the last item served, by the listing's order
                rest = [e for e in listing if after is None or self.key(e) > after]
                page, more = rest[:limit], len(rest) > limit
            served += 1
            self.pages += 1
            if self.source_now is None:
                self.source_now = self.clock.replace(microsecond=0)
            self.clock += self.page_gap
            yield ef.Page([{"alert_id": e.event_id, "ts": ef.format_time(e.created)} for e in page], last=not more)
            offset += len(page)
            after = self.key(page[-1]) if page else after


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(0, 40))
    events = []
    for i in range(count):
        created = at(draw(st.integers(0, 12)) * 30 + draw(st.sampled_from([0, 0, 0, 0.001, 0.5, 59.999])))
        late = draw(st.sampled_from([0, 0, 0, 10, 60, 240, 300, 900]))
        status_change = draw(st.one_of(st.none(), st.none(), st.integers(0, 600)))
        events.append(ModelEvent(f"ev-{draw(st.integers(0, 9))}{i:03d}", created, created + timedelta(seconds=late),
                                 None if status_change is None else created + timedelta(seconds=status_change)))
    return {
        "events": events,
        "order": draw(st.sampled_from(["ascending", "descending", "unordered"])),
        "pagination": draw(st.sampled_from(["offset", "cursor"])),
        "time_format": draw(st.sampled_from(["iso", "iso_seconds", "%Y-%m-%d %H:%M"])),
        "bounds": draw(st.sampled_from([(True, False), (False, False), (True, True), (False, True)])),
        "look_back": draw(st.sampled_from([0, 1, 5])),
        "settle": draw(st.sampled_from([0, 0, 20])),
        "window": draw(st.sampled_from([0, 0, 8])),
        "max_fetch": draw(st.integers(1, 6)),
        "page_size": draw(st.integers(1, 8)),
        "page_gap": draw(st.sampled_from([0, 0, 5, 20, 45])),
        "run_every": draw(st.sampled_from([15, 60, 90])),
        "faults": draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), max_size=30)),
        "first_fetch": at(draw(st.sampled_from([0, 30, 60]))),
        "cap": draw(st.sampled_from([3, 10, 20_000])),
        "skew": draw(st.sampled_from([0, 0, 0, 3600, -30])),  # how far the integration's clock is ahead of the API's
    }


def fetch_schedule(scenario: dict[str, Any]) -> tuple[list[str], list[int], int]:
    """Runs fetch after fetch against the model until it is drained; the ids delivered, the incidents of each run
    and the largest last run in bytes."""
    events: list[ModelEvent] = scenario["events"]
    params = custom_params(order=scenario["order"], pagination=scenario["pagination"], page_param="after",
                           next_path="next", time_format=scenario["time_format"], look_back=str(scenario["look_back"]),
                           settle=str(scenario["settle"]), window=str(scenario["window"]), status="",
                           max_fetch=str(scenario["max_fetch"]), page_size="8",
                           first_fetch=ef.format_time(scenario["first_fetch"]))
    settings_ = ef.parse_settings(params, at(3600))
    api = ModelAPI(events, settings_.source, scenario)
    faults = list(scenario["faults"])
    last_visible = max((e.visible_at for e in events), default=T0)
    delivered: list[str] = []
    per_run: list[int] = []
    last_run: dict[str, Any] = {}
    largest = idle_runs = 0
    while api.clock <= last_visible + timedelta(minutes=45) or idle_runs < 3:
        assert len(per_run) < 400, "the fetch does not drain"
        api.clock += timedelta(seconds=scenario["run_every"])
        api.fault_after = faults.pop(0) if faults and api.clock <= last_visible else None
        api.source_now = None
        now = api.clock + timedelta(seconds=scenario.get("skew", 0))
        try:
            outcome = ef.fetch_incidents(api, settings_, last_run, now)  # type: ignore[arg-type]
        except ef.SourceError:
            per_run.append(0)
            idle_runs = 0
            continue
        per_run.append(len(outcome.incidents))
        delivered += [json.loads(incident["rawJSON"])["alert_id"] for incident in outcome.incidents]
        stored = json.loads(json.dumps(outcome.last_run))
        idle_runs = 0 if outcome.incidents else idle_runs + 1
        last_run = stored
        largest = max(largest, len(json.dumps(last_run)))
        assert sum(len(ids) for ids in last_run["seen_ids"].values()) <= ef.MAX_SEEN_IDS
    return delivered, per_run, largest


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_exactly_once_over_any_schedule_order_and_paging(scenario: dict[str, Any]) -> None:
    """Every event that stays New, is created after the first-fetch time and arrives late by at most the look-back
    becomes exactly one incident; no event ever becomes two, whatever the order, paging, bounds, time precision,
    ties, shifting offsets, faults, settle, window and status changes."""
    events: list[ModelEvent] = scenario["events"]
    ef.MAX_SEEN_IDS, saved_cap = scenario["cap"], ef.MAX_SEEN_IDS
    try:
        delivered, _, _ = fetch_schedule(scenario)
    finally:
        ef.MAX_SEEN_IDS = saved_cap
    assert len(delivered) == len(set(delivered)), "an event became two incidents"
    eligible = {e.event_id for e in events if e.created >= scenario["first_fetch"]}
    assert set(delivered) <= eligible
    on_time = timedelta(minutes=scenario["look_back"]) if scenario["cap"] >= len(events) else timedelta(0)
    must = {e.event_id for e in events
            if e.event_id in eligible and e.new_until is None and e.visible_at - e.created <= on_time}
    assert must <= set(delivered), f"lost: {sorted(must - set(delivered))}"


@pytest.mark.parametrize("order", ["ascending", "descending", "unordered"])
def test_an_item_that_leaves_the_filter_mid_listing_shifts_offsets_yet_none_is_missed(order: str) -> None:
    """Page 1 is served, then its second item leaves the filter: every offset after it moves back by one, so page 2
    skips the item that slid onto page 1. Reading the listing again until a reading holds every id of the one
    before finds it, with no look-back to hide the loss."""
    clock = at(600)
    names = ((1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"))
    probe = ModelAPI([], ef.parse_settings(custom_params(order=order), clock).source, {
        "page_size": 2, "page_gap": 0, "bounds": (True, False)})
    second = sorted((ModelEvent(name, at(seconds), T0, None) for seconds, name in names), key=probe.key)[1].event_id
    events = [ModelEvent(name, at(seconds), at(seconds), clock + timedelta(seconds=5) if name == second else None)
              for seconds, name in names]
    scenario = {"events": events, "order": order, "pagination": "offset", "time_format": "iso",
                "bounds": (True, False), "look_back": 0, "settle": 0, "window": 0, "max_fetch": 10, "page_size": 2,
                "page_gap": 10, "run_every": 60, "faults": [], "first_fetch": T0, "cap": 20_000}
    settings_ = ef.parse_settings(custom_params(order=order, pagination="offset", page_param="offset", status="",
                                                look_back="0", max_fetch="10", first_fetch=ef.format_time(T0)), clock)
    api = ModelAPI(events, settings_.source, scenario)
    api.clock = clock
    outcome = ef.fetch_incidents(api, settings_, {}, clock + timedelta(days=1))  # our clock a day ahead of the API's  # type: ignore[arg-type]
    delivered = [json.loads(incident["rawJSON"])["alert_id"] for incident in outcome.incidents]
    assert sorted(delivered) == ["a", "b", "c", "d", "e"]
    assert "readings=3" in outcome.figures


def test_an_empty_last_page_can_hide_the_item_that_slid_back_so_it_still_calls_for_another_reading() -> None:
    """Three items, pages of two: b leaves after page 1, c slides onto page 1's last place, and page 2 at offset 2
    comes back empty. The listing looks complete, yet c was never served."""
    clock = at(600)
    events = [ModelEvent("a", at(1), at(1), None), ModelEvent("b", at(2), at(2), clock + timedelta(seconds=5)),
              ModelEvent("c", at(3), at(3), None)]
    scenario = {"page_size": 2, "page_gap": 10, "bounds": (True, False)}
    settings_ = ef.parse_settings(custom_params(pagination="offset", page_param="offset", status="", look_back="0",
                                                first_fetch=ef.format_time(T0)), clock)
    api = ModelAPI(events, settings_.source, scenario)
    api.clock = clock
    outcome = ef.fetch_incidents(api, settings_, {}, clock)  # type: ignore[arg-type]
    assert sorted(json.loads(incident["rawJSON"])["alert_id"] for incident in outcome.incidents) == ["a", "b", "c"]


@pytest.mark.parametrize("order", ["ascending", "descending", "unordered"])
def test_a_backlog_on_any_order_drains_oldest_first_in_about_the_fewest_runs(order: str) -> None:
    rng = random.Random(7)
    created = [at(-rng.randrange(60_000, 86_400_000) / 1000) for _ in range(600)]
    events = [ModelEvent(f"b{i:04d}", moment, moment, None) for i, moment in enumerate(created)]
    scenario = {"events": events, "order": order, "pagination": "offset", "time_format": "iso",
                "bounds": (True, False), "look_back": 5, "settle": 0, "window": 0, "max_fetch": 50, "page_size": 8,
                "page_gap": 0, "run_every": 60, "faults": [], "first_fetch": at(-86_400), "cap": 20_000}
    delivered, per_run, largest = fetch_schedule(scenario)
    assert sorted(delivered) == sorted(e.event_id for e in events)
    times = {e.event_id: e.created for e in events}
    assert [times[i] for i in delivered] == sorted(times.values())  # oldest first, across runs
    runs_to_drain = max(number for number, count in enumerate(per_run, 1) if count)
    assert runs_to_drain <= (12 if order == "ascending" else 18)  # ceil(600 / 50), and 1.5 times that
    assert largest < 10_000


# --- the client, over HTTP mocked by requests-mock ------------------------------------------------------------


@pytest.fixture
def client_settings() -> ef.Settings:
    return ef.parse_settings(base_params(), T0)


class RecordedSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_client(settings_: ef.Settings, sleep: RecordedSleep | None = None) -> ef.SourceClient:
    return ef.SourceClient(settings_, sleep=sleep or RecordedSleep())


def page(events: list[dict[str, Any]], next_cursor: str | None = None) -> dict[str, Any]:
    return {"json": {"events": events, "next_cursor": next_cursor}, "status_code": 200}


def listing(client: ef.SourceClient, settings_: ef.Settings, start: datetime = T0) -> list[list[Any]]:
    values = ef.query_values(settings_, ef.Window(start, None), LATER, settings_.source.page_size)
    return [p.items for p in client.list_pages(values)]


EVENTS_URL = BASE_URL + "/api/v1/events"
HEALTH_URL = BASE_URL + "/api/v1/health"


def test_the_key_travels_only_in_the_authorization_header(requests_mock: Any) -> None:
    settings_ = ef.parse_settings(base_params(severity="high"), T0)
    requests_mock.get(EVENTS_URL, [page([event("a", at(1))])])
    listing(make_client(settings_), settings_)
    request = requests_mock.request_history[0]
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in request.url
    assert request.qs == {"since": ["2026-11-26t05:59:59.999z"], "limit": ["500"], "status": ["new"],
                          "severity": ["high"]}


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"auth_type": "header", "auth_header": "Authorization: SSWS {password}\nX-User: {identifier}"},
     {"Authorization": f"SSWS {API_KEY}", "X-User": "me@example.com"}),
    ({"auth_type": "basic"}, {"Authorization": "Basic bWVAZXhhbXBsZS5jb206dW5pdC10ZXN0LWtleS03ZjNhOWM="}),
    ({"auth_type": "none", "headers": "X-Tenant: 42"}, {"X-Tenant": "42"}),
])
def test_each_auth_type_sends_its_header_and_no_secret_in_the_url(requests_mock: Any, overrides: dict[str, Any],
                                                                   expected: dict[str, str]) -> None:
    settings_ = ef.parse_settings(base_params(credentials={"identifier": "me@example.com", "password": API_KEY},
                                              **overrides), T0)
    requests_mock.get(EVENTS_URL, [page([])])
    listing(make_client(settings_), settings_)
    request = requests_mock.request_history[0]
    assert {name: request.headers.get(name) for name in expected} == expected
    assert API_KEY not in request.url
    if overrides["auth_type"] == "none":
        assert "Authorization" not in request.headers


TOKEN_URL = "https://login.example.com/tenant-1/oauth2/v2.0/token"
CLIENT_SECRET = "client-secret-9d8c7b"


def oauth_settings(**overrides: Any) -> ef.Settings:
    return ef.parse_settings(base_params(auth_type="oauth2", token_url=TOKEN_URL, scope="api://events/.default",
                                         credentials={"identifier": "client-1", "password": CLIENT_SECRET},
                                         **overrides), T0)


def test_an_oauth_token_is_fetched_once_kept_in_the_integration_context_and_reused(requests_mock: Any,
                                                                                   demisto: Any) -> None:
    token_route = requests_mock.post(TOKEN_URL, json={"token_type": "Bearer", "expires_in": 3599,
                                                      "access_token": "access-token-1"})
    requests_mock.get(EVENTS_URL, [page([])])
    settings_ = oauth_settings()
    listing(make_client(settings_), settings_)
    listing(make_client(settings_), settings_)  # the next run, with the context the first one left
    assert token_route.call_count == 1
    form = dict(pair.split("=") for pair in token_route.last_request.text.split("&"))
    assert form == {"grant_type": "client_credentials", "client_id": "client-1", "client_secret": CLIENT_SECRET,
                    "scope": "api%3A%2F%2Fevents%2F.default"}
    assert all(r.headers["Authorization"] == "Bearer access-token-1" for r in requests_mock.request_history[1:])
    assert demisto.integration_context["oauth"]["access_token"] == "access-token-1"
    assert CLIENT_SECRET not in json.dumps(demisto.integration_context)


def test_an_expired_oauth_token_is_fetched_again_once_on_a_401(requests_mock: Any, demisto: Any) -> None:
    requests_mock.post(TOKEN_URL, [{"json": {"access_token": "old", "expires_in": 3599}},
                                   {"json": {"access_token": "new", "expires_in": 3599}}])
    requests_mock.get(EVENTS_URL, [{"status_code": 401, "json": {"error": "token expired"}}, page([event("a", at(1))])])
    settings_ = oauth_settings()
    assert listing(make_client(settings_), settings_) == [[event("a", at(1))]]
    assert [r.headers.get("Authorization") for r in requests_mock.request_history if r.method == "GET"] == [
        "Bearer old", "Bearer new"]


def test_a_token_endpoint_that_refuses_the_client_is_one_sentence_without_the_secret(requests_mock: Any) -> None:
    requests_mock.post(TOKEN_URL, status_code=401, json={"error": "invalid_client",
                                                          "error_description": "AADSTS7000215: Invalid secret."})
    settings_ = oauth_settings()
    with pytest.raises(ef.AuthError) as caught:
        listing(make_client(settings_), settings_)
    assert str(caught.value) == ("The token endpoint refused the client (HTTP 401: AADSTS7000215: Invalid secret.); "
                                 "check the client ID and secret in Credentials, the Token URL and the Scope.")
    assert requests_mock.call_count == 1


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
    assert listing(client, settings_) == [[event("a", at(1))]]
    assert sleep.waits == [expected_wait]
    assert client.retries == 1


def test_429_honours_retry_after_as_an_http_date_and_a_reset_time() -> None:
    when = datetime(2026, 11, 26, 6, 0, 30, tzinfo=UTC)
    assert ef.retry_after_seconds("Thu, 26 Nov 2026 06:00:30 GMT", when - timedelta(seconds=12)) == 12.0
    assert ef.retry_after_seconds("Thu, 26 Nov 2026 06:00:30 GMT", when + timedelta(seconds=5)) == 0.0
    assert ef.retry_after_seconds("soon", when) is None
    reset = str(int(when.timestamp()))
    assert ef.rate_limit_wait({"X-Rate-Limit-Reset": reset}, when - timedelta(seconds=20)) == 20.0


def test_429_honours_pagerduty_ratelimit_reset_as_seconds_to_wait(requests_mock: Any) -> None:
    """PagerDuty signals a 429 with ratelimit-reset, the seconds until the limit resets, and no Retry-After."""
    settings_ = replace(ef.parse_settings(base_params(), T0), fetch_time_limit=600)
    limited = {"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": "9"}
    requests_mock.get(EVENTS_URL, [{"status_code": 429, "json": {"error": {"message": "Rate Limit Exceeded"}},
                                    "headers": limited}, page([event("a", at(1))])])
    sleep = RecordedSleep()
    assert listing(make_client(settings_, sleep), settings_) == [[event("a", at(1))]]
    assert sleep.waits == [9.0]
    when = datetime(2026, 11, 26, 6, 0, 30, tzinfo=UTC)
    headers = requests.structures.CaseInsensitiveDict(
        {"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": "7"})
    assert ef.rate_limit_wait(headers, when) == 7.0
    both = requests.structures.CaseInsensitiveDict({"Retry-After": "3", "ratelimit-reset": "7"})
    assert ef.rate_limit_wait(both, when) == 3.0  # Retry-After, where an API sends it, comes first
    assert ef.rate_limit_wait(requests.structures.CaseInsensitiveDict({"ratelimit-reset": "soon"}), when) is None


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
    assert listing(client, client_settings) == [[event("a", at(1))]]
    assert sleep.waits == [0.5, 1.0, 2.0]


def test_retries_are_bounded_and_end_in_one_clear_sentence(requests_mock: Any, client_settings: ef.Settings) -> None:
    requests_mock.get(EVENTS_URL, status_code=503, text="")
    sleep = RecordedSleep()
    with pytest.raises(ef.SourceError) as caught:
        listing(make_client(client_settings, sleep), client_settings)
    assert str(caught.value) == "The Event Source had a server error (HTTP 503), still after 5 attempts."
    assert sleep.waits == [0.5, 1.0, 2.0, 4.0]
    assert requests_mock.call_count == ef.MAX_ATTEMPTS


def test_a_wait_longer_than_the_time_budget_stops_the_run(requests_mock: Any) -> None:
    settings_ = replace(ef.parse_settings(base_params(), T0), fetch_time_limit=10)
    requests_mock.get(EVENTS_URL, status_code=429, headers={"Retry-After": "30"}, json={"error": "later"})
    sleep = RecordedSleep()
    with pytest.raises(ef.TimeLimitReached, match="would pass the fetch time limit of 10 seconds"):
        listing(make_client(settings_, sleep), settings_)
    assert sleep.waits == []


def test_an_invalid_cursor_restarts_the_listing(requests_mock: Any, client_settings: ef.Settings) -> None:
    requests_mock.get(EVENTS_URL, [page([event("a", at(1))], "c1"),
                                   {"status_code": 400, "json": {"error": "invalid cursor"}},
                                   page([event("a", at(1))], "c2"), page([event("b", at(2))])])
    pages = listing(make_client(client_settings), client_settings)
    assert [[e["id"] for e in p] for p in pages] == [["a"], ["a"], ["b"]]
    assert "cursor" not in requests_mock.request_history[2].qs
    assert requests_mock.request_history[3].qs["cursor"] == ["c2"]


def paged_settings(pagination: str, **overrides: Any) -> ef.Settings:
    return ef.parse_settings(custom_params(pagination=pagination, page_param="after", next_path="links.next",
                                           status="", query="from={start}&size={limit}", page_size="2",
                                           **overrides), T0)


ALERTS_URL = BASE_URL + "/api/alerts"


def alerts(*ids: str, **extra: Any) -> dict[str, Any]:
    return {"json": {"data": {"alerts": [{"alert_id": i, "ts": 1795672800000} for i in ids]}, **extra},
            "status_code": 200}


def test_link_header_paging_follows_rel_next_and_ends_on_an_empty_page_that_still_links_on(requests_mock: Any) -> None:
    settings_ = paged_settings("link_header")
    requests_mock.get(ALERTS_URL, [
        {**alerts("a", "b"), "headers": {"Link": f'<{ALERTS_URL}?after=b>; rel="next", <{ALERTS_URL}>; rel="self"'}},
        {**alerts("c"), "headers": {"Link": '</api/alerts?after=c>; rel="next"'}},  # relative, on the same host
        {**alerts(), "headers": {"Link": f'<{ALERTS_URL}?after=c>; rel="next"'}},
    ])
    pages = listing(make_client(settings_), settings_)
    assert [[item["alert_id"] for item in p] for p in pages] == [["a", "b"], ["c"], []]
    assert [r.qs.get("after") for r in requests_mock.request_history] == [None, ["b"], ["c"]]


def test_a_next_link_to_another_host_is_not_followed(requests_mock: Any, demisto: Any) -> None:
    settings_ = paged_settings("next_url")
    requests_mock.get(ALERTS_URL, [alerts("a", links={"next": "https://collector.example.net/steal?after=a"})])
    elsewhere = requests_mock.get("https://collector.example.net/steal", json={})
    pages = listing(make_client(settings_), settings_)
    assert [[item["alert_id"] for item in p] for p in pages] == [["a"]]
    assert elsewhere.call_count == 0
    assert any("another host (collector.example.net)" in message for _, message in demisto.logs)


def test_a_repeated_cursor_ends_the_listing_instead_of_looping(requests_mock: Any) -> None:
    settings_ = paged_settings("cursor")
    requests_mock.get(ALERTS_URL, [alerts("a", links={"next": "k1"}), alerts("b", links={"next": "k1"}),
                                   alerts("c", links={"next": "k2"})])
    pages = listing(make_client(settings_), settings_)
    assert [[item["alert_id"] for item in p] for p in pages] == [["a"], ["b"]]


@pytest.mark.parametrize(("pagination", "more_path", "sent"), [
    ("offset", "", [None, ["2"], ["3"], ["4"]]),
    ("page", "", [["1"], ["2"], ["3"], ["4"]]),
    ("offset", "!meta.last", [None, ["2"], ["3"]]),
])
def test_offset_and_page_paging_advance_by_what_came_and_end_on_an_empty_page_or_more(
        requests_mock: Any, pagination: str, more_path: str, sent: list[Any]) -> None:
    settings_ = paged_settings(pagination, more_path=more_path)
    requests_mock.get(ALERTS_URL, [alerts("a", "b", meta={"last": False}), alerts("c", meta={"last": False}),
                                   alerts("d", meta={"last": True}), alerts(meta={"last": True})])
    pages = listing(make_client(settings_), settings_)
    assert [r.qs.get("after") for r in requests_mock.request_history] == sent
    assert [item["alert_id"] for p in pages for item in p] == ["a", "b", "c", "d"]


@pytest.mark.parametrize(("body", "fragment"), [
    ({"data": {"items": []}}, "no list of items at data.alerts (Items path); the keys there are items."),
    ({"data": []}, "no list of items at data.alerts (Items path); the answer is a dict."),
    ([], "no list of items at data.alerts (Items path); the answer is a list."),
])
def test_a_body_without_items_at_the_path_names_what_is_there(requests_mock: Any, body: Any, fragment: str) -> None:
    settings_ = paged_settings("none")
    requests_mock.get(ALERTS_URL, json=body)
    with pytest.raises(ef.SourceError) as caught:
        listing(make_client(settings_), settings_)
    assert str(caught.value).endswith(fragment)


@pytest.mark.parametrize(("response", "fragment"), [
    ({"status_code": 401, "json": {"error": "invalid or missing API key"}}, "refused the API key (HTTP 401)"),
    ({"status_code": 403, "json": {"error": "forbidden"}}, "refused the API key (HTTP 403)"),
    ({"status_code": 302, "headers": {"Location": "https://elsewhere.example.org/api/v1/events"}},
     "redirects elsewhere"),
    ({"status_code": 200, "text": "<html>welcome</html>", "headers": {"Content-Type": "text/html"}},
     "answered with a web page"),
    ({"status_code": 404, "text": "<html>not here</html>", "headers": {"Content-Type": "text/html"}},
     "does not serve the API at /api/v1/events (HTTP 404); check the Server URL and the Endpoint."),
    ({"status_code": 400, "json": {"error": "malformed since"}}, "rejected the request (HTTP 400): malformed since"),
    ({"status_code": 400, "json": {"errorMessages": ["bad JQL", "really"]}}, "(HTTP 400): bad JQL; really."),
    ({"status_code": 200, "json": {"items": []}}, "no list of items at events (Items path)"),
])
def test_answers_that_retrying_cannot_fix_fail_at_once(requests_mock: Any, client_settings: ef.Settings,
                                                        response: dict[str, Any], fragment: str) -> None:
    requests_mock.get(EVENTS_URL, [response])
    with pytest.raises(ef.SourceError) as caught:
        listing(make_client(client_settings), client_settings)
    assert fragment in str(caught.value)
    assert requests_mock.call_count == 1


# --- the commands, through main() as the server calls it ----------------------------------------------------


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
                     "details": "Five failed logins followed by a success."}  # the type is the classifier's
    assert (second["name"], second["severity"], second["details"]) == ("Event Source item evt-2", 0, "")
    assert (third["name"], third["severity"]) == ("Event Source item evt-3", 4)
    assert demisto.last_run["watermark"] == "2026-11-26T06:00:00.123Z"
    assert demisto.last_run["floor"] == ["2026-11-26T05:55:00.123Z", ""]
    assert demisto.last_run["seen_ids"] == {"300000": ["evt-1", "evt-2", "evt-3"]}


def test_fetch_logs_one_line_of_figures(requests_mock: Any, demisto: Any) -> None:
    demisto.last_run = ef.dump_state(ef.FetchState.first(at(0)))
    requests_mock.get(EVENTS_URL, [page([event("a", at(1))], "c1"), page([event("b", at(2)), {"id": "x"}])])
    run_main(demisto, "fetch-incidents")
    figures = [message for _, message in demisto.logs if message.startswith("fetch figures:")]
    assert len(figures) == 1
    assert figures[0].startswith("fetch figures: items_read=2 incidents=2 duplicates=0 behind_floor=0 invalid=1 "
                                 "filtered=0 future_dated=0 pages=2 readings=1 retries=0 "
                                 "watermark=2026-11-26T06:00:02.000Z listed_until=2026-11-26T06:00:00.000Z ")
    assert ("info", "Skipped item x with a missing or malformed time at created_time.") in demisto.logs


def test_a_flood_of_unusable_events_is_summed_up_in_the_log(requests_mock: Any, demisto: Any) -> None:
    requests_mock.get(EVENTS_URL, [page([{"id": f"x{i:02d}"} for i in range(15)])])
    run_main(demisto, "fetch-incidents")
    skipped = [message for _, message in demisto.logs if message.startswith("Skipped")]
    assert skipped[:2] == ["Skipped item x00 with a missing or malformed time at created_time.",
                           "Skipped item x01 with a missing or malformed time at created_time."]
    assert skipped[10:] == ["Skipped 5 more unusable items."]


def test_a_failed_fetch_raises_one_sentence_and_keeps_the_last_run(requests_mock: Any, demisto: Any) -> None:
    stored = ef.dump_state(ef.FetchState.first(at(0)))
    demisto.last_run = stored
    requests_mock.get(EVENTS_URL, status_code=401, json={"error": "invalid or missing API key"})
    with pytest.raises(Exception, match=r"^No incident fetched: The Event Source refused the API key \(HTTP 401\); "
                                        r"check the Credentials parameter\.$"):
        run_main(demisto, "fetch-incidents")
    assert "setLastRun" not in demisto.calls and "incidents" not in demisto.calls
    assert demisto.last_run == stored


def test_a_bad_parameter_fails_fetch_without_touching_the_last_run(demisto: Any) -> None:
    demisto.last_run = {"kept": True}
    with pytest.raises(Exception, match=r"^Maximum number of incidents per fetch must be a whole number"):
        run_main(demisto, "fetch-incidents", base_params(max_fetch="500"))
    assert demisto.set_last_run_calls == []


def test_test_module_checks_health_the_listing_and_runs_a_dry_fetch_of_one_event(requests_mock: Any,
                                                                                  demisto: Any) -> None:
    requests_mock.get(HEALTH_URL, json={"status": "ok", "version": "1"})
    events_route = requests_mock.get(EVENTS_URL, [page([event("a", at(1)), event("b", at(2))])])
    run_main(demisto, "test-module")
    assert [entry["Contents"] for entry in demisto.entries] == ["ok"]
    assert events_route.call_count == 2
    assert events_route.request_history[0].qs["limit"] == ["1"]
    assert demisto.set_last_run_calls == [] and demisto.incidents_created == []


def test_test_module_without_fetching_checks_url_key_and_one_item(requests_mock: Any, demisto: Any) -> None:
    requests_mock.get(HEALTH_URL, json={"status": "ok", "version": "1"})
    events_route = requests_mock.get(EVENTS_URL, [page([])])
    run_main(demisto, "test-module", base_params(isFetch=False))
    assert [entry["Contents"] for entry in demisto.entries] == ["ok"]
    assert events_route.call_count == 1


@pytest.mark.parametrize(("item", "fragment"), [
    ({"id": "a1", "ts": 1795672800000}, "the first has no id at alert_id (ID path); its keys are id, ts."),
    ({"alert_id": "a1", "time": "2026-11-26T06:00:00Z"},
     "the first has no readable time at ts (Time path); its keys are alert_id, time."),
])
def test_test_module_names_the_path_that_finds_nothing_and_the_keys_there(
        requests_mock: Any, demisto: Any, item: dict[str, Any], fragment: str) -> None:
    requests_mock.get(ALERTS_URL, json={"data": {"alerts": [item]}})
    run_main(demisto, "test-module", custom_params(isFetch=False))
    [entry] = demisto.errors()
    assert entry["Contents"] == f"Failed to execute test-module: The source lists items, but {fragment}"


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
    events = [full_event("evt-1", at(1)), full_event("evt-2", at(2), name="a | b", severity="low")]
    route = requests_mock.get(EVENTS_URL, [page(events)])
    run_main(demisto, "event-fetcher-get-events", since="2026-11-26T05:00:00Z", severity="high", limit="2")
    [entry] = demisto.entries
    assert entry["Contents"] == events[:1]  # the API filtered too; the engine drops what the filter does not want
    assert entry["EntryContext"]["EventFetcher.Event(val.id && val.id == obj.id)"] == [
        {"id": "evt-1", "time": "2026-11-26T06:00:01.000Z", "name": "Suspicious login evt-1", "severity": "high",
         "status": "New", "raw": events[0]}]
    assert entry["HumanReadable"].splitlines()[1:3] == ["|id|time|name|severity|status|", "|---|---|---|---|---|"]
    assert route.last_request.qs == {"since": ["2026-11-26t04:59:59.999z"], "limit": ["2"], "severity": ["high"],
                                     "status": ["new"]}
    assert "getLastRun" not in demisto.calls and "setLastRun" not in demisto.calls


def test_get_events_escapes_table_cells(requests_mock: Any, demisto: Any) -> None:
    requests_mock.get(EVENTS_URL, [page([full_event("evt-2", at(2), name="a | b\nc")])])
    run_main(demisto, "event-fetcher-get-events", since="2026-11-26T05:00:00Z")
    assert "a \\| b c" in demisto.entries[0]["HumanReadable"]


@pytest.mark.parametrize(("args", "fragment"), [
    ({"limit": "0"}, "limit must be a whole number from 1 to 1000, not 0."),
    ({"limit": "many"}, 'limit must be a whole number from 1 to 1000, not "many".'),
    ({"since": "later"}, "since must be like"),
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
