"""The simulator's API dialects (Graph, Okta, ServiceNow, PagerDuty, Jira, Custom) over real HTTP on loopback.

Each dialect is checked for its auth, its filters at its own time precision, its order, paging to the end, its
switches and faults, and ground truth in its own ids. Deterministic: a ManualClock, seed 0, no sleeps.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests

from simulator import ManualClock, SimConfig, Simulator
from simulator.dialects import DIALECT_NAMES, instance_params

pytest_plugins = ["simulator.pytest_plugin"]

T0 = datetime(2026, 11, 26, 6, 0, 0, tzinfo=UTC)
TIMEOUT = 10.0
PATHS = {
    "graph": "/v1.0/security/alerts_v2",
    "okta": "/api/v1/logs",
    "servicenow": "/api/now/table/incident",
    "pagerduty": "/incidents",
    "jira": "/rest/api/3/search/jql",
    "custom": "/api/v2/alerts",
}
NEW = {"graph": "new", "servicenow": "1", "pagerduty": "triggered", "jira": "To Do", "custom": "open"}
PD_ACCEPT = "application/vnd.pagerduty+json;version=2"
_tokens: weakref.WeakKeyDictionary[Simulator, str] = weakref.WeakKeyDictionary()


# -- helpers ------------------------------------------------------------------------------------------------


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def epoch_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def graph_token(sim: Simulator, *, fresh: bool = False) -> str:
    if fresh or sim not in _tokens:
        params = instance_params(sim, "graph")
        response = requests.post(
            params["token_url"],
            data={
                "grant_type": "client_credentials",
                "client_id": params["credentials"]["identifier"],
                "client_secret": params["credentials"]["password"],
                "scope": params["scope"],
            },
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        _tokens[sim] = response.json()["access_token"]
    return _tokens[sim]


def call(
    sim: Simulator,
    dialect: str,
    params: Any = None,
    *,
    url: str | None = None,
    auth: bool = True,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """GET the dialect's listing (or ``url``) with its credentials, as its API expects them."""
    sent = dict(headers or {})
    basic = None
    credentials = instance_params(sim, dialect)["credentials"]
    if auth:
        if dialect == "graph":
            sent.setdefault("Authorization", "Bearer " + graph_token(sim))
        elif dialect == "okta":
            sent.setdefault("Authorization", "SSWS " + credentials["password"])
        elif dialect in ("servicenow", "jira"):
            basic = (credentials["identifier"], credentials["password"])
        elif dialect == "pagerduty":
            sent.setdefault("Authorization", "Token token=" + credentials["password"])
            sent.setdefault("Accept", PD_ACCEPT)
        else:
            sent.setdefault("X-API-Key", credentials["password"])
    target = url or sim.url + PATHS[dialect]
    return requests.get(target, params=None if url else params, headers=sent, auth=basic, timeout=TIMEOUT)


def window(dialect: str, start: datetime, end: datetime, limit: int, *, zone: str = "Asia/Kolkata") -> Any:
    """The query the integration's profile sends for ``[start, end)`` and new items only."""
    if dialect == "graph":
        where = f"createdDateTime ge {iso(start)} and createdDateTime lt {iso(end)} and status eq 'new'"
        return {"$filter": where, "$top": str(limit)}
    if dialect == "okta":
        return {"since": iso(start), "until": iso(end), "sortOrder": "ASCENDING", "limit": str(limit)}
    if dialect == "servicenow":
        fmt = "%Y-%m-%d %H:%M:%S"
        query = (
            f"sys_created_on>={start.strftime(fmt)}^sys_created_on<{end.strftime(fmt)}^state=1"
            "^ORDERBYsys_created_on^ORDERBYsys_id"
        )
        return {"sysparm_query": query, "sysparm_limit": str(limit), "sysparm_display_value": "false"}
    if dialect == "pagerduty":
        return [
            ("since", iso(start)),
            ("until", iso(end)),
            ("statuses[]", "triggered"),
            ("sort_by", "created_at:asc"),
            ("limit", str(limit)),
        ]
    if dialect == "jira":
        local = ZoneInfo(zone)
        lo, hi = (t.astimezone(local).strftime("%Y/%m/%d %H:%M") for t in (start, end))
        jql = f'created >= "{lo}" AND created < "{hi}" AND status = "To Do" ORDER BY created ASC'
        return {"jql": jql, "fields": "*navigable", "maxResults": str(limit)}
    return {"from": str(epoch_ms(start)), "to": str(epoch_ms(end)), "state": "open", "per_page": str(limit)}


def item_id(dialect: str, item: dict[str, Any]) -> str:
    if dialect == "okta":
        return str(item["uuid"])
    if dialect == "servicenow":
        return str(item["sys_id"])
    if dialect == "custom":
        return str(item["ref"]["id"])
    return str(item["id"])


def items_of(dialect: str, response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    return {
        "graph": lambda: body["value"],
        "okta": lambda: body,
        "servicenow": lambda: body["result"],
        "pagerduty": lambda: body["incidents"],
        "jira": lambda: body["issues"],
        "custom": lambda: body["data"]["alerts"],
    }[dialect]()


def read_all(sim: Simulator, dialect: str, params: Any) -> tuple[list[dict[str, Any]], int]:
    """Follow the dialect's paging to the end; returns the items and the number of pages."""
    items: list[dict[str, Any]] = []
    response = call(sim, dialect, params)
    for pages in range(1, 1000):
        page = items_of(dialect, response)
        items += page
        body = response.json()
        if dialect == "graph":
            if "@odata.nextLink" not in body:
                return items, pages
            response = call(sim, dialect, url=body["@odata.nextLink"])
        elif dialect in ("okta", "servicenow"):
            if "next" not in response.links or not page:
                return items, pages
            response = call(sim, dialect, url=response.links["next"]["url"])
        elif dialect == "pagerduty":
            if not body["more"]:
                return items, pages
            pairs = [(k, v) for k, v in params if k != "offset"] + [("offset", str(body["offset"] + len(page)))]
            response = call(sim, dialect, pairs)
        elif dialect == "jira":
            if body["isLast"]:
                return items, pages
            response = call(sim, dialect, {**params, "nextPageToken": body["nextPageToken"]})
        else:
            if not body["meta"]["has_more"]:
                return items, pages
            response = call(sim, dialect, {**params, "page": str(body["meta"]["page"] + 1)})
    raise AssertionError("paging did not end")


def expected(sim: Simulator, dialect: str, start: datetime, end: datetime) -> set[str]:
    """Ids of the visible events in ``[start, end)`` that are new now (all of them for Okta): from ground truth."""
    return {
        t.id
        for t in sim.dialects.truth(dialect)
        if t.visible
        and start <= t.created_time < end
        and (dialect == "okta" or t.status_history[-1][1] == NEW[dialect])
    }


def populate(sim: Simulator) -> list[dict[str, Any]]:
    """A small mixed store: spread events, a tie of five, one closed, one in progress, odd and missing data."""
    events = [sim.add_event(at(i * 37.25), severity=["low", "medium", "high", "critical"][i % 4]) for i in range(12)]
    events += sim.add_events(5, at=at(200.5), severity="high")
    events.append(sim.add_event(at(300), status="Closed"))
    events.append(sim.add_event(at(301), status="In Progress"))
    events.append(sim.add_event(at(302), severity="sev3", name=None, description="No name, odd severity."))
    return events


@pytest.fixture
def sim(make_simulator: Callable[..., Simulator]) -> Simulator:
    """A quiet simulator whose clock starts at T0 + 1 hour."""
    return make_simulator(clock=ManualClock(at(3600)))


# -- every dialect -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_paging_to_the_end_serves_each_visible_matching_event_once(sim: Simulator, dialect: str) -> None:
    populate(sim)
    sim.add_event(at(400), delay_seconds=7200)  # not visible yet
    items, pages = read_all(sim, dialect, window(dialect, T0, at(3600), 4))
    ids = [item_id(dialect, i) for i in items]
    assert pages > 2
    assert len(ids) == len(set(ids))
    assert set(ids) == expected(sim, dialect, T0, at(3600))
    assert sim.served_ids(dialect) == ids
    assert sim.served_ids() == []  # the Event Source API served nothing


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_truth_items_have_the_dialect_shape_and_ids(sim: Simulator, dialect: str) -> None:
    populate(sim)
    served = {item_id(dialect, i): i for i in read_all(sim, dialect, window(dialect, T0, at(3600), 100))[0]}
    truth = {t.id: t for t in sim.dialects.truth(dialect)}
    assert served and set(served) <= set(truth)
    for key, item in served.items():
        assert truth[key].event == item
        assert truth[key].store_id.startswith("evt-")
        assert sim.dialects.item_id(dialect, truth[key].store_id) == key


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_credentials_are_required(sim: Simulator, dialect: str) -> None:
    populate(sim)
    refused = call(sim, dialect, window(dialect, T0, at(3600), 10), auth=False)
    assert refused.status_code == 401
    assert refused.json()  # an error body in the API's own shape
    wrong = {
        "graph": {"Authorization": "Bearer not-a-token"},
        "okta": {"Authorization": "Bearer " + instance_params(sim, "okta")["credentials"]["password"]},
        "servicenow": {"Authorization": "Basic eHNvYXI6d3Jvbmc="},
        "pagerduty": {"Authorization": "Token token=wrong", "Accept": PD_ACCEPT},
        "jira": {"Authorization": "Basic eHNvYXI6d3Jvbmc="},
        "custom": {"X-API-Key": "wrong"},
    }[dialect]
    assert call(sim, dialect, window(dialect, T0, at(3600), 10), auth=False, headers=wrong).status_code == 401
    assert call(sim, dialect, window(dialect, T0, at(3600), 10)).status_code == 200
    assert "." not in "".join(sim.served_ids())  # dialect traffic is not Event Source traffic


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_server_error_drop_and_truncation_hit_every_dialect(sim: Simulator, dialect: str) -> None:
    populate(sim)
    params = window(dialect, T0, at(3600), 10)
    if dialect == "graph":
        graph_token(sim)  # the faults below are for the listing, not the token endpoint
    sim.inject("server_error", status=503, body="json", endpoint=dialect)
    failed = call(sim, dialect, params)
    assert failed.status_code == 503 and failed.json()
    sim.inject("drop", endpoint=dialect)
    with pytest.raises(requests.ConnectionError):
        call(sim, dialect, params)
    sim.inject("truncated", fraction=0.5, endpoint=dialect)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, json.JSONDecodeError, ValueError)):
        call(sim, dialect, params).json()
    assert call(sim, dialect, params).status_code == 200
    assert sim.served_ids(dialect) == [item_id(dialect, i) for i in items_of(dialect, call(sim, dialect, params))][
        : len(sim.served_ids(dialect))
    ]


RATE_LIMIT_SIGNALS = {
    "graph": ("Retry-After", "7"),
    "okta": ("X-Rate-Limit-Reset", str(epoch_ms(at(3600)) // 1000 + 7)),
    "servicenow": ("Retry-After", "7"),
    "pagerduty": ("ratelimit-reset", "7"),
    "jira": ("Retry-After", "7"),
    "custom": ("Retry-After", "7"),
}


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_rate_limit_speaks_each_dialects_signal(sim: Simulator, dialect: str) -> None:
    if dialect == "graph":
        graph_token(sim)
    sim.inject("rate_limit", retry_after="seconds", value=7, endpoint=f"{dialect}.list")
    response = call(sim, dialect, window(dialect, T0, at(3600), 10))
    assert response.status_code == 429
    header, value = RATE_LIMIT_SIGNALS[dialect]
    assert response.headers[header] == value
    if dialect in ("okta", "pagerduty"):
        assert "Retry-After" not in response.headers  # neither documents one
    body = response.json()
    assert {"graph": "error", "okta": "errorCode", "servicenow": "error", "pagerduty": "error"}.get(
        dialect, "errorMessages" if dialect == "jira" else "errors"
    ) in body


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_short_page_links_on_and_the_rest_follow(sim: Simulator, dialect: str) -> None:
    populate(sim)
    params = window(dialect, T0, at(3600), 6)
    if dialect == "graph":
        graph_token(sim)
    sim.inject("short_page", size=2, endpoint=f"{dialect}.list")
    first = items_of(dialect, call(sim, dialect, params))
    assert len(first) == 2
    sim.clear_log()
    items, _ = read_all(sim, dialect, params)
    ids = [item_id(dialect, i) for i in items]
    assert len(ids) == len(set(ids)) and set(ids) == expected(sim, dialect, T0, at(3600))


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_empty_page_still_links_on(sim: Simulator, dialect: str) -> None:
    populate(sim)
    if dialect == "graph":
        graph_token(sim)
    sim.inject("empty_page", endpoint=f"{dialect}.list")
    response = call(sim, dialect, window(dialect, T0, at(3600), 6))
    assert items_of(dialect, response) == []
    body = response.json()
    links_on = {
        "graph": lambda: "@odata.nextLink" in body,
        "okta": lambda: "next" in response.links,
        "servicenow": lambda: "next" in response.links,
        "pagerduty": lambda: body["more"] is True,
        "jira": lambda: body["isLast"] is False and bool(body["nextPageToken"]),
        "custom": lambda: body["meta"]["has_more"] is True,
    }[dialect]()
    assert links_on
    assert sim.request_log()[-1].fault == "empty_page"


@pytest.mark.parametrize("dialect", ["graph", "okta", "servicenow"])
def test_foreign_link_points_at_another_host(sim: Simulator, dialect: str) -> None:
    populate(sim)
    if dialect == "graph":
        graph_token(sim)
    sim.inject("foreign_link", endpoint=f"{dialect}.list")
    response = call(sim, dialect, window(dialect, T0, at(3600), 100))  # one page holds everything
    link = response.json()["@odata.nextLink"] if dialect == "graph" else response.links["next"]["url"]
    parts = urlsplit(link)
    assert parts.hostname == "127.0.0.2" and parts.port == sim.port and parts.path == PATHS[dialect]
    assert items_of(dialect, response)  # the page itself is as usual


@pytest.mark.parametrize("dialect", ["graph", "okta", "servicenow", "jira"])
def test_repeat_link_hands_back_the_same_link(sim: Simulator, dialect: str) -> None:
    populate(sim)
    params = window(dialect, T0, at(3600), 4)
    first = call(sim, dialect, params)
    if dialect == "jira":
        token = first.json()["nextPageToken"]
        sim.inject("repeat_link", endpoint="jira.list")
        second = call(sim, dialect, {**params, "nextPageToken": token})
        assert second.json()["nextPageToken"] == token and items_of(dialect, second)
        return
    link = first.json()["@odata.nextLink"] if dialect == "graph" else first.links["next"]["url"]
    sim.inject("repeat_link", endpoint=f"{dialect}.list")
    second = call(sim, dialect, url=link)
    again = second.json()["@odata.nextLink"] if dialect == "graph" else second.links["next"]["url"]
    assert again == link
    assert items_of(dialect, second)


def test_instance_params_for_each_profile(sim: Simulator) -> None:
    profiles = {
        "graph": "Microsoft Graph Security alerts",
        "okta": "Okta System Log",
        "servicenow": "ServiceNow incidents",
        "pagerduty": "PagerDuty incidents",
        "jira": "Jira issues",
        "custom": "Custom",
    }
    for dialect, profile in profiles.items():
        params = instance_params(sim, dialect)
        assert params["source"] == profile and params["url"] == sim.url
        assert set(params["credentials"]) == {"identifier", "password"} and params["credentials"]["password"]
    graph = instance_params(sim, "graph")
    assert graph["scope"] == "https://graph.microsoft.com/.default"
    assert graph["token_url"].startswith(sim.url + "/") and graph["token_url"].endswith("/oauth2/v2.0/token")
    assert instance_params(sim, "jira")["time_zone"] == "Asia/Kolkata"
    custom = instance_params(sim, "custom")
    for name in (
        "auth_type",
        "auth_header",
        "endpoint",
        "query",
        "time_format",
        "items_path",
        "id_path",
        "time_path",
        "name_path",
        "severity_path",
        "status_path",
        "severity_map",
        "status",
        "order",
        "pagination",
        "page_param",
        "more_path",
        "page_size",
    ):
        assert custom[name], name
    assert instance_params(sim, "event_source") == {
        "source": "Event Source",
        "url": sim.url,
        "credentials": {"identifier": "", "password": sim.api_key},
    }


def test_dialect_ids_are_deterministic_and_distinct(make_simulator: Callable[..., Simulator]) -> None:
    one, two = (make_simulator(SimConfig(backlog=300), clock=ManualClock(at(3600)), seed=5) for _ in range(2))
    for dialect in DIALECT_NAMES:
        ids = [t.id for t in one.dialects.truth(dialect)]
        assert ids == [t.id for t in two.dialects.truth(dialect)]
        assert len(set(ids)) == 300
    assert all(len(i) == 7 and i.startswith("P") for i in (t.id for t in one.dialects.truth("pagerduty")))
    assert all(len(i) == 32 for i in (t.id for t in one.dialects.truth("servicenow")))
    assert all(len(i) == 36 for i in (t.id for t in one.dialects.truth("okta")))


def test_options_through_config_hub_and_control_api(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(SimConfig(dialect_options={"jira": {"time_zone": "Europe/Paris"}}), clock=ManualClock(T0))
    assert instance_params(sim, "jira")["time_zone"] == "Europe/Paris"
    with pytest.raises(ValueError, match="unknown option"):
        sim.dialects.configure("okta", always_linking=True)
    with pytest.raises(ValueError):
        make_simulator(SimConfig(dialect_options={"nosuch": {}}))
    control = {"Authorization": f"Bearer {sim.api_key}"}
    response = requests.post(
        sim.url + "/_sim/dialects/graph/options", json={"fraction_digits": 3}, headers=control, timeout=TIMEOUT
    )
    assert response.status_code == 200 and response.json()["fraction_digits"] == 3
    assert sim.dialects["graph"].options.fraction_digits == 3
    params = requests.get(sim.url + "/_sim/dialects/custom/params", headers=control, timeout=TIMEOUT).json()
    assert params == instance_params(sim, "custom")
    sim.add_event(T0)
    truth = requests.get(sim.url + "/_sim/dialects/okta/truth", headers=control, timeout=TIMEOUT).json()
    assert truth["events"][0]["id"] == sim.dialects.truth("okta")[0].id
    assert requests.get(sim.url + "/_sim/dialects/nosuch/truth", headers=control, timeout=TIMEOUT).status_code == 404
    served = requests.get(sim.url + "/_sim/dialects/okta/served", headers=control, timeout=TIMEOUT).json()
    assert served == {"ids": []}


def test_event_source_api_is_unchanged_beside_the_dialects(sim: Simulator) -> None:
    populate(sim)
    bearer = {"Authorization": f"Bearer {sim.api_key}"}
    events = requests.get(sim.url + "/api/v1/events", headers=bearer, params={"limit": 3}, timeout=TIMEOUT).json()
    assert [e["id"] for e in events["events"]] == ["evt-000001", "evt-000002", "evt-000003"]
    assert requests.get(sim.url + "/api/v1/other", headers=bearer, timeout=TIMEOUT).status_code == 404
    assert sim.served_ids() == ["evt-000001", "evt-000002", "evt-000003"]
    okta = call(sim, "okta", {"limit": "1"})  # /api/v1/logs is Okta's, with Okta's auth
    assert okta.status_code == 200
    assert requests.get(sim.url + "/api/v1/logs", headers=bearer, timeout=TIMEOUT).status_code == 401
    assert sim.served_ids() == ["evt-000001", "evt-000002", "evt-000003"]
    assert sim.stats()["by_endpoint"] == {"list": 1, "unknown": 1, "okta.list": 2}


# -- Microsoft Graph ----------------------------------------------------------------------------------------------


def test_graph_token_endpoint_issues_counts_and_refuses(sim: Simulator) -> None:
    params = instance_params(sim, "graph")
    good = {
        "grant_type": "client_credentials",
        "client_id": params["credentials"]["identifier"],
        "client_secret": params["credentials"]["password"],
        "scope": params["scope"],
    }
    issued = requests.post(params["token_url"], data=good, timeout=TIMEOUT)
    assert issued.status_code == 200
    assert issued.json()["token_type"] == "Bearer" and issued.json()["expires_in"] == 3599
    assert sim.dialects["graph"].tokens_issued == 1
    cases = [
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"client_id": "00000000-0000-4000-8000-000000000000"}, 400, "unauthorized_client", 700016),
        ({"scope": "https://graph.microsoft.com/SecurityAlert.Read.All"}, 400, "invalid_scope", 1002012),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ]
    for change, status, error, code in cases:
        refused = requests.post(params["token_url"], data={**good, **change}, timeout=TIMEOUT)
        assert refused.status_code == status, change
        body = refused.json()
        assert body["error"] == error and body["error_codes"] == [code]
        assert body["error_description"].startswith(f"AADSTS{code}:") and "trace_id" in body
        assert params["credentials"]["password"] not in refused.text
    wrong_tenant = params["token_url"].replace(sim.dialects["graph"].credentials()["tenant_id"], "contoso")
    assert requests.post(wrong_tenant, data=good, timeout=TIMEOUT).status_code == 400
    assert sim.dialects["graph"].tokens_issued == 1
    assert sim.stats()["by_endpoint"]["graph.token"] == 6


def test_graph_tokens_expire_after_their_ttl(sim: Simulator) -> None:
    sim.dialects.configure("graph", token_ttl_seconds=60)
    sim.add_event(at(10))
    token = graph_token(sim, fresh=True)
    query = window("graph", T0, at(3600), 10)
    assert call(sim, "graph", query).status_code == 200
    sim.advance(59.999)
    assert call(sim, "graph", query).status_code == 200
    sim.advance(0.001)
    expired = call(sim, "graph", query)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "expired" in expired.json()["error"]["message"]
    assert graph_token(sim, fresh=True) != token
    assert call(sim, "graph", query).status_code == 200
    assert sim.dialects["graph"].tokens_issued == 2
    assert sim.dialects["graph"].expire_tokens() == 2
    assert call(sim, "graph", query).status_code == 401


def test_graph_lists_newest_first_with_seven_fraction_digits(sim: Simulator) -> None:
    populate(sim)
    items, _ = read_all(sim, "graph", window("graph", T0, at(3600), 3))
    times = [i["createdDateTime"] for i in items]
    instants = [datetime.fromisoformat(t[:26].rstrip("Z") + "+00:00") for t in times]
    assert instants == sorted(instants, reverse=True)
    assert any(len(t.split(".")[1]) == 8 for t in times if "." in t)  # 7 digits and the Z
    assert all(not t.split(".")[-1].rstrip("Z").endswith("0") for t in times)  # trailing zeros dropped
    tie = [i for i in items if i["createdDateTime"].startswith("2026-11-26T06:03:20.5")]
    assert len(tie) == 5 and len({i["createdDateTime"] for i in tie}) == 5  # sub-ms digits tell them apart
    sim.dialects.configure("graph", fraction_digits=3)
    short = [i["createdDateTime"] for i in items_of("graph", call(sim, "graph", window("graph", T0, at(3600), 50)))]
    assert all(len(t.rsplit(".", 1)[-1]) <= 4 for t in short if "." in t)


def test_graph_filter_compares_at_full_precision_in_any_clause_order(sim: Simulator) -> None:
    sim.add_event(at(60))
    alert = sim.dialects.truth("graph")[0].event
    created = alert["createdDateTime"]
    whole, fraction = created.rstrip("Z").split(".")
    padded = fraction.ljust(7, "0")
    token = graph_token(sim)

    def ids(where: str) -> list[str]:
        response = call(sim, "graph", {"$filter": where}, headers={"Authorization": f"Bearer {token}"})
        return [a["id"] for a in items_of("graph", response)]

    assert ids(f"createdDateTime ge {created}") == [alert["id"]]
    assert ids(f"createdDateTime gt {created}") == []
    assert ids(f"createdDateTime ge {whole}.{padded}00Z and status eq 'new'") == [alert["id"]]
    assert ids(f"status eq 'new' and createdDateTime lt {whole}.{padded}01Z") == [alert["id"]]
    assert ids(f"createdDateTime lt {created}") == []
    assert ids(f"(createdDateTime ge {whole}Z) and (createdDateTime le {created})") == [alert["id"]]
    assert ids(f"createdDateTime ge {whole}.{padded[:3]}Z and createdDateTime lt {whole}.{padded[:3]}999999Z") == [
        alert["id"]
    ]
    assert ids("status eq 'resolved'") == []
    bad = call(sim, "graph", {"$filter": "title eq 'x'"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"
    assert call(sim, "graph", {"$filter": "status eq 'open'"}).status_code == 400


def test_graph_offsets_shift_when_an_alert_leaves_the_filter(sim: Simulator) -> None:
    for i in range(6):
        sim.add_event(at(i))
    query = window("graph", T0, at(3600), 3)
    first = call(sim, "graph", query).json()
    assert "@odata.nextLink" in first and "$skip=3" in first["@odata.nextLink"]
    taken = first["value"][0]
    store_id = next(t.store_id for t in sim.dialects.truth("graph") if t.id == taken["id"])
    sim.set_status(store_id, "In Progress")
    second = call(sim, "graph", url=first["@odata.nextLink"]).json()
    assert "@odata.nextLink" not in second  # the last page has none
    seen = {a["id"] for a in first["value"] + second["value"]}
    assert len(seen) == 5  # the alert that moved up into page 1 was skipped by this pass
    assert expected(sim, "graph", T0, at(3600)) - seen


def test_graph_count_and_top_cap(sim: Simulator) -> None:
    sim.dialects.configure("graph", max_top=4)
    for i in range(7):
        sim.add_event(at(i))
    body = call(sim, "graph", {"$top": "50", "$count": "true"}).json()
    assert len(body["value"]) == 4 and body["@odata.count"] == 7 and "$skip=4" in body["@odata.nextLink"]
    sim.dialects.configure("graph", max_skip=3)
    assert call(sim, "graph", url=body["@odata.nextLink"]).status_code == 400


# -- Okta -------------------------------------------------------------------------------------------------------


def test_okta_bounded_request_lists_in_order_and_its_last_page_has_no_next(sim: Simulator) -> None:
    populate(sim)
    items, pages = read_all(sim, "okta", window("okta", T0, at(3600), 4))
    published = [i["published"] for i in items]
    assert published == sorted(published) and pages == 5  # 20 events: the fifth page is full and the last
    last = call(sim, "okta", window("okta", at(300), at(3600), 10))
    assert "self" in last.links and "next" not in last.links
    assert {i["severity"] for i in items} <= {"DEBUG", "INFO", "WARN", "ERROR"}
    closed = next(t for t in sim.dialects.truth("okta") if t.store_id == "evt-000018")
    assert closed.id in {i["uuid"] for i in items}  # Okta has no status: every event is served
    sim.dialects.configure("okta", always_next=True)
    linked = call(sim, "okta", window("okta", at(300), at(3600), 10))
    assert "next" in linked.links
    assert call(sim, "okta", url=linked.links["next"]["url"]).json() == []


def test_okta_since_is_inclusive_and_until_exclusive_at_the_millisecond(sim: Simulator) -> None:
    sim.add_event("2026-11-26T06:00:00.123Z")
    since = call(sim, "okta", {"since": "2026-11-26T06:00:00.123Z", "until": "2026-11-26T06:00:00.124Z"})
    assert len(since.json()) == 1
    until = call(sim, "okta", {"since": "2026-11-26T06:00:00.000Z", "until": "2026-11-26T06:00:00.123Z"})
    assert until.json() == []
    offset = call(sim, "okta", {"since": "2026-11-26T07:00:00.123+01:00", "until": "2026-11-26T06:00:01Z"})
    assert len(offset.json()) == 1
    assert call(sim, "okta", {"limit": "1001"}).json()["errorCode"] == "E0000001"


def test_okta_descending_pages_backwards(sim: Simulator) -> None:
    for i in range(5):
        sim.add_event(at(i))
    query = {"since": iso(T0), "until": iso(at(60)), "sortOrder": "DESCENDING", "limit": "2"}
    items, pages = read_all(sim, "okta", query)
    published = [i["published"] for i in items]
    assert published == sorted(published, reverse=True) and len(published) == 5 and pages == 3


def test_okta_polling_always_links_on_and_orders_by_arrival(sim: Simulator) -> None:
    sim.add_event(at(3500))
    sim.add_event(at(3400), delay_seconds=300)  # published earlier, arrives later
    poll = call(sim, "okta", {"since": iso(at(3300)), "sortOrder": "ASCENDING", "limit": "10"})
    assert len(poll.json()) == 1 and "next" in poll.links
    empty = call(sim, "okta", url=poll.links["next"]["url"])
    assert empty.json() == [] and empty.links["next"]["url"] == poll.links["next"]["url"]
    sim.advance(200)
    late = call(sim, "okta", url=empty.links["next"]["url"]).json()
    assert [e["published"] for e in late] == ["2026-11-26T06:56:40.000Z"]  # older than what came before


def test_okta_requests_carry_rate_limit_headers(sim: Simulator) -> None:
    first = call(sim, "okta", {"limit": "1"})
    second = call(sim, "okta", {"limit": "1"})
    assert first.headers["X-Rate-Limit-Limit"] == "120"
    assert int(second.headers["X-Rate-Limit-Remaining"]) == int(first.headers["X-Rate-Limit-Remaining"]) - 1
    sim.inject("rate_limit", retry_after="missing", value=3, endpoint="okta")
    limited = call(sim, "okta", {"limit": "1"})
    assert limited.status_code == 429 and "X-Rate-Limit-Reset" not in limited.headers
    assert limited.json()["errorCode"] == "E0000047"


# -- ServiceNow ---------------------------------------------------------------------------------------------------


def test_servicenow_times_are_whole_seconds_and_ties_order_by_sys_id(sim: Simulator) -> None:
    sim.add_event("2026-11-26T06:00:00.900Z")
    sim.add_event("2026-11-26T06:00:00.100Z")
    sim.add_event("2026-11-26T06:00:00.500Z")
    sim.add_event("2026-11-26T06:00:01.000Z")

    def rows(query: str) -> list[dict[str, Any]]:
        return items_of("servicenow", call(sim, "servicenow", {"sysparm_query": query}))

    tie = rows("sys_created_on<2026-11-26 06:00:01^ORDERBYsys_created_on^ORDERBYsys_id")
    assert [r["sys_created_on"] for r in tie] == ["2026-11-26 06:00:00"] * 3
    assert [r["sys_id"] for r in tie] == sorted(r["sys_id"] for r in tie)
    assert len(rows("sys_created_on>=2026-11-26 06:00:00")) == 4
    assert len(rows("sys_created_on>2026-11-26 06:00:00")) == 1
    assert len(rows("sys_created_on<=2026-11-26 06:00:00")) == 3
    assert len(rows("sys_created_on>=javascript:gs.dateGenerate('2026-11-26','06:00:01')")) == 1
    assert all(r["number"].startswith("INC00") and len(r["sys_id"]) == 32 for r in tie)


def test_servicenow_state_filter_total_link_and_shifting_offsets(sim: Simulator) -> None:
    for i in range(7):
        sim.add_event(at(i))
    query = window("servicenow", T0, at(3600), 3)
    first = call(sim, "servicenow", query)
    assert first.headers["X-Total-Count"] == "7"
    assert set(first.links) == {"first", "prev", "next", "last"}
    assert "sysparm_offset=3" in first.links["next"]["url"]
    assert [r["state"] for r in first.json()["result"]] == ["1"] * 3
    closed = first.json()["result"][0]["sys_id"]
    store_id = next(t.store_id for t in sim.dialects.truth("servicenow") if t.id == closed)
    sim.set_status(store_id, "Closed")
    second = call(sim, "servicenow", url=first.links["next"]["url"])
    assert second.headers["X-Total-Count"] == "6" and "next" not in second.links
    seen = {r["sys_id"] for r in first.json()["result"] + second.json()["result"]}
    missed = expected(sim, "servicenow", T0, at(3600)) - seen
    assert len(missed) == 1  # shifted out of reach by the offset: the client must read the window again
    assert items_of("servicenow", call(sim, "servicenow", {"sysparm_query": "state=7"}))[0]["sys_id"] == closed


def test_servicenow_defaults_display_values_and_ignored_fields(sim: Simulator) -> None:
    for i in range(3):
        sim.add_event(at(i), severity="critical")
    everything = items_of("servicenow", call(sim, "servicenow"))  # no sysparm_limit: 10,000 by default
    assert len(everything) == 3 and everything[0]["priority"] == "1" and everything[0]["urgency"] == "1"
    shown = items_of("servicenow", call(sim, "servicenow", {"sysparm_display_value": "true"}))[0]
    assert shown["state"] == "New" and shown["priority"] == "1 - Critical"
    both = items_of("servicenow", call(sim, "servicenow", {"sysparm_display_value": "all"}))[0]
    assert both["state"] == {"display_value": "New", "value": "1"}
    assert len(items_of("servicenow", call(sim, "servicenow", {"sysparm_query": "u_nosuch=1^state=1"}))) == 3
    fields = items_of("servicenow", call(sim, "servicenow", {"sysparm_fields": "sys_id,number"}))[0]
    assert set(fields) == {"sys_id", "number"}


# -- PagerDuty ----------------------------------------------------------------------------------------------------


def test_pagerduty_filters_at_the_whole_second(sim: Simulator) -> None:
    sim.add_event("2026-11-26T06:00:00.200Z")
    sim.add_event("2026-11-26T06:00:01.700Z")

    def created(since: str, until: str) -> list[str]:
        response = call(sim, "pagerduty", [("since", since), ("until", until)])
        return [i["created_at"] for i in items_of("pagerduty", response)]

    assert created("2026-11-26T06:00:00.000Z", "2026-11-26T06:01:00Z") == [
        "2026-11-26T06:00:00Z",
        "2026-11-26T06:00:01Z",
    ]
    assert created("2026-11-26T06:00:00.500Z", "2026-11-26T06:01:00Z") == ["2026-11-26T06:00:01Z"]
    assert created("2026-11-26T06:00:00Z", "2026-11-26T06:00:01.500Z") == [  # 06:00:01 < 06:00:01.500
        "2026-11-26T06:00:00Z",
        "2026-11-26T06:00:01Z",
    ]
    assert created("2026-11-26T06:00:00Z", "2026-11-26T06:00:01Z") == ["2026-11-26T06:00:00Z"]


def test_pagerduty_statuses_limit_more_total_and_offset_cap(sim: Simulator) -> None:
    for i in range(5):
        sim.add_event(at(i), severity="critical" if i % 2 else "low")
    sim.add_event(at(9), status="In Progress")
    body = call(sim, "pagerduty", window("pagerduty", T0, at(3600), 500)).json()
    assert body["limit"] == 100 and body["more"] is False and body["total"] is None
    assert len(body["incidents"]) == 5 and {i["status"] for i in body["incidents"]} == {"triggered"}
    assert {i["urgency"] for i in body["incidents"]} == {"high", "low"}
    page = call(sim, "pagerduty", [*window("pagerduty", T0, at(3600), 2), ("total", "true")]).json()
    assert page["more"] is True and page["total"] == 5
    acked = call(sim, "pagerduty", [("statuses[]", "acknowledged"), ("statuses[]", "resolved")]).json()
    assert [i["status"] for i in acked["incidents"]] == ["acknowledged"]
    capped = call(sim, "pagerduty", [("offset", "9950"), ("limit", "100")])
    assert capped.status_code == 400 and capped.json()["error"]["code"] == 2001
    assert call(sim, "pagerduty", [("limit", "10")], headers={"Accept": "application/json"}).status_code == 400
    too_wide = call(sim, "pagerduty", [("since", "2026-01-01T00:00:00Z"), ("until", "2026-11-26T00:00:00Z")])
    assert too_wide.status_code == 400
    assert all(len(i["id"]) == 7 and i["html_url"].endswith(i["id"]) for i in body["incidents"])


# -- Jira -------------------------------------------------------------------------------------------------------


def test_jira_reads_jql_dates_in_the_users_time_zone_at_the_minute(sim: Simulator) -> None:
    sim.add_event("2026-11-26T06:00:30.250Z")  # 11:30:30.250 in Asia/Kolkata

    def keys(jql: str) -> list[str]:
        response = call(sim, "jira", {"jql": jql, "fields": "created"})
        return [i["fields"]["created"] for i in items_of("jira", response)]

    assert keys('created >= "2026/11/26 11:30" AND created < "2026/11/26 11:31"') == ["2026-11-26T11:30:30.250+0530"]
    assert keys('created >= "2026/11/26 11:31"') == []
    assert keys('created < "2026-11-26 11:30"') == []
    assert keys('created > "2026/11/26 11:30"') == ["2026-11-26T11:30:30.250+0530"]
    sim.dialects.configure("jira", time_zone="Europe/Paris")
    assert keys('created >= "2026/11/26 07:00" AND created < "2026/11/26 07:01"') == ["2026-11-26T07:00:30.250+0100"]
    sim.dialects.configure("jira", time_zone="UTC")
    assert keys('created >= "2026/11/26 06:00" AND created < "2026/11/26 06:01"') == ["2026-11-26T06:00:30.250+0000"]


def test_jira_fields_status_and_errors(sim: Simulator) -> None:
    populate(sim)
    ids_only = items_of("jira", call(sim, "jira", {"jql": "project = SEC ORDER BY created ASC"}))
    assert ids_only[0] == {"id": "10001"} and len(ids_only) == 20
    full = items_of("jira", call(sim, "jira", {"jql": 'status = "To Do"', "fields": "*navigable"}))
    assert {i["fields"]["status"]["name"] for i in full} == {"To Do"} and len(full) == 18
    assert [i["id"] for i in full] == sorted((i["id"] for i in full), reverse=True)  # no ORDER BY: key DESC
    issue = full[0]  # the last one made: no name, a description
    assert issue["fields"]["summary"] is None  # as stored: a null name
    assert issue["key"].startswith("SEC-") and issue["self"].endswith(f"/rest/api/3/issue/{issue['id']}")
    assert issue["fields"]["description"]["type"] == "doc"  # Atlassian Document Format in API v3
    assert {"summary", "priority", "issuetype", "labels", "created"} <= set(issue["fields"])
    done = items_of("jira", call(sim, "jira", {"jql": "status IN (Done)", "fields": "status,resolution"}))
    assert [i["fields"]["resolution"]["name"] for i in done] == ["Done"]
    for jql, message in [
        ('status = "Open"', "does not exist for the field 'status'"),
        ("ORDER BY created ASC", "Unbounded JQL queries are not allowed"),
        ('created >= "26/11/2026"', "Date value '26/11/2026' for field 'created' is invalid"),
        ("assignee = currentUser()", "Field 'assignee' does not exist"),
    ]:
        refused = call(sim, "jira", {"jql": jql})
        assert refused.status_code == 400 and message in refused.json()["errorMessages"][0], jql
    stale = call(sim, "jira", {"jql": "project = SEC", "nextPageToken": "bm90LWEtdG9rZW4"})
    assert stale.status_code == 400


def test_jira_pages_are_capped_when_fields_are_asked(sim: Simulator) -> None:
    sim.add_events(130, at=at(5))
    jql = {"jql": "project = SEC ORDER BY created ASC", "maxResults": "1000"}
    assert len(items_of("jira", call(sim, "jira", jql))) == 130
    first = call(sim, "jira", {**jql, "fields": "*navigable"}).json()
    assert len(first["issues"]) == 100 and first["isLast"] is False
    rest = call(sim, "jira", {**jql, "fields": "*navigable", "nextPageToken": first["nextPageToken"]}).json()
    assert len(rest["issues"]) == 30 and rest["isLast"] is True and "nextPageToken" not in rest
    assert [i["id"] for i in first["issues"] + rest["issues"]] == [str(10_000 + n) for n in range(1, 131)]


def test_jira_keyset_tokens_do_not_shift(sim: Simulator) -> None:
    sim.dialects.configure("jira", token_mode="keyset")
    for i in range(6):
        sim.add_event(at(i))
    query = window("jira", T0, at(3600), 3)
    first = call(sim, "jira", query).json()
    store_id = next(t.store_id for t in sim.dialects.truth("jira") if t.id == first["issues"][0]["id"])
    sim.set_status(store_id, "In Progress")
    second = call(sim, "jira", {**query, "nextPageToken": first["nextPageToken"]}).json()
    assert len({i["id"] for i in first["issues"] + second["issues"]}) == 6


# -- Custom ------------------------------------------------------------------------------------------------------


def test_custom_pages_from_one_in_a_stable_order_that_is_not_time(sim: Simulator) -> None:
    for i in range(40):
        sim.add_event(at(i))
    query = window("custom", T0, at(3600), 7)
    pages = [items_of("custom", call(sim, "custom", {**query, "page": str(p)})) for p in range(1, 7)]
    assert pages[-1] == [] or len(pages[-1]) < 7
    ids = [a["ref"]["id"] for page in pages for a in page]
    assert len(ids) == 40 == len(set(ids))
    times = [a["detected_at"] for page in pages for a in page]
    assert times != sorted(times) and times != sorted(times, reverse=True)
    again = [a["ref"]["id"] for a in items_of("custom", call(sim, "custom", {**query, "page": "2"}))]
    assert again == [a["ref"]["id"] for a in pages[1]]
    other = window("custom", T0, at(3599), 40)
    assert [a["ref"]["id"] for a in items_of("custom", call(sim, "custom", other))] != ids
    assert call(sim, "custom", {**query, "page": "0"}).status_code == 400
    last = call(sim, "custom", {**query, "page": "6"}).json()["meta"]
    assert last == {"page": 6, "per_page": 7, "has_more": False}


def test_custom_bounds_are_epoch_milliseconds(sim: Simulator) -> None:
    sim.add_event("2026-11-26T06:00:00.123Z", severity="critical")
    start = epoch_ms(T0) + 123
    hit = items_of("custom", call(sim, "custom", {"from": str(start), "to": str(start + 1)}))
    assert [a["detected_at"] for a in hit] == [start] and hit[0]["level"] == "P1"
    assert items_of("custom", call(sim, "custom", {"from": str(start + 1)})) == []
    assert items_of("custom", call(sim, "custom", {"to": str(start)})) == []


# -- shared behaviour: late arrival, faults through the control API, HTTPS --------------------------------------------


def test_a_late_incident_shifts_pagerduty_offsets(sim: Simulator) -> None:
    for i in range(4):
        sim.add_event(at(3591 + i))
    late = sim.add_event(at(3590), delay_seconds=120)
    query = window("pagerduty", T0, at(3600), 2)
    first = call(sim, "pagerduty", query).json()
    sim.advance(120)  # the late one becomes visible, ahead of everything already listed
    second = call(sim, "pagerduty", [*query, ("offset", "2")]).json()
    ids = [i["id"] for i in first["incidents"] + second["incidents"]]
    assert len(ids) == 4 and len(set(ids)) == 3  # one listed twice: the client must not make it two incidents
    assert sim.dialects.item_id("pagerduty", late["id"]) not in ids
    assert sim.served_ids("pagerduty") == ids


def test_faults_and_options_through_the_http_control_api(sim: Simulator) -> None:
    control = {"Authorization": f"Bearer {sim.api_key}"}
    injected = requests.post(
        sim.url + "/_sim/inject",
        json={"kind": "empty_page", "endpoint": "custom.list"},
        headers=control,
        timeout=TIMEOUT,
    )
    assert injected.status_code == 200
    sim.add_event(at(1))
    assert call(sim, "okta", {"limit": "5"}).json() != []  # another dialect is untouched
    assert call(sim, "custom").json()["data"]["alerts"] == []
    assert call(sim, "custom").json()["data"]["alerts"] != []
    refused = requests.post(
        sim.url + "/_sim/inject", json={"kind": "repeat_link", "endpoint": "nosuch"}, headers=control, timeout=TIMEOUT
    )
    assert refused.status_code == 400
    tokens = requests.get(sim.url + "/_sim/dialects/graph/tokens", headers=control, timeout=TIMEOUT).json()
    assert tokens == {"issued": 0}


def test_links_keep_https_and_the_foreign_host_too(
    make_simulator: Callable[..., Simulator], tls_certificate: tuple[Any, Any]
) -> None:
    import ssl

    cert, key = tls_certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    sim = make_simulator(ssl_context=context, clock=ManualClock(at(3600)))
    for i in range(3):
        sim.add_event(at(i))
    token = instance_params(sim, "okta")["credentials"]["password"]
    headers = {"Authorization": f"SSWS {token}"}
    first = requests.get(sim.url + "/api/v1/logs", params={"limit": "2"}, headers=headers, verify=str(cert), timeout=10)
    assert first.links["next"]["url"].startswith(sim.url + "/api/v1/logs?")
    sim.inject("foreign_link", endpoint="okta")
    second = requests.get(first.links["next"]["url"], headers=headers, verify=str(cert), timeout=10)
    assert second.links["next"]["url"].startswith(f"https://127.0.0.2:{sim.port}/api/v1/logs?")
