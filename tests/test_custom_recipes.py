"""The Custom recipes of the integration README, run end to end: each recipe's parameter block, as the README gives
it, fetches over several runs from a stand-in for that API that answers in the documented shape (auth header, time
filter, status filter, sort, paging, item paths). Every matching item must become exactly one incident."""

from __future__ import annotations

import base64
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import EventFetcher as ef
import pytest

README = Path(__file__).resolve().parent.parent / "Packs/EventFetcher/Integrations/EventFetcher/README.md"
T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
SECRET = "recipe-secret-5b1d"
PAGE_CAP = 2  # each stand-in serves at most this many items a page, as APIs may, so that every listing pages


def recipes() -> dict[str, dict[str, Any]]:
    """The parameter block of every `### Recipe: <name>` section of the README."""
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"^### Recipe: (.+?)\n.*?```json\n(.*?)\n```", text, flags=re.M | re.S)
    return {name.strip(): json.loads(block) for name, block in found}


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Alert:
    """One item of the stand-in's store, in neutral form."""

    number: int
    created: datetime
    status: str  # the API's own word
    visible_at: datetime
    severity: str


@dataclass
class StandIn:
    """A stand-in for one API: its store, its clock, and what its requests carried."""

    now: datetime = T0
    alerts: list[Alert] = field(default_factory=list)
    requests: int = 0

    def visible(self) -> list[Alert]:
        return [alert for alert in self.alerts if alert.visible_at <= self.now]

    def date_header(self) -> dict[str, str]:
        return {"Date": format_datetime(self.now, usegmt=True)}


def token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def offset_of(cursor: str | None) -> int:
    return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"]) if cursor else 0


def query_of(request: Any) -> dict[str, str]:
    """The query exactly as sent (requests-mock's own `qs` lowercases values)."""
    return {key: values[-1] for key, values in parse_qs(urlsplit(request.url).query, keep_blank_values=True).items()}


def refuse(context: Any, status: int, body: dict[str, Any]) -> dict[str, Any]:
    context.status_code = status
    return body


# --- Opsgenie: GET /v2/alerts, GenieKey, a `query` search string with createdAt in epoch ms, offset paging ----------


def opsgenie(api: StandIn) -> Callable[[Any, Any], dict[str, Any]]:
    def handle(request: Any, context: Any) -> dict[str, Any]:
        api.requests += 1
        context.headers.update(api.date_header())
        if request.headers.get("Authorization") != f"GenieKey {SECRET}":
            return refuse(context, 401, {"message": "Could not authenticate", "took": 0.0, "requestId": "r"})
        query = query_of(request)
        match = re.fullmatch(r"createdAt>=(\d+) AND createdAt<(\d+) AND status:(\w+)", query.get("query", ""))
        limit = int(query.get("limit", "20"))
        if match is None or query.get("sort") != "createdAt" or query.get("order") != "asc" or not 1 <= limit <= 100:
            return refuse(context, 422, {"message": "Invalid query", "took": 0.0, "requestId": "r"})
        low, high, status = int(match[1]), int(match[2]), match[3]
        chosen = sorted((a for a in api.visible() if low <= epoch_ms(a.created) < high and a.status == status),
                        key=lambda a: (a.created, a.number))
        offset = int(query.get("offset", "0"))
        page = chosen[offset:offset + min(limit, PAGE_CAP)]
        paging: dict[str, str] = {}
        if offset + len(page) < len(chosen):
            paging["next"] = f"https://api.opsgenie.com/v2/alerts?offset={offset + len(page)}&limit={limit}"
        data = [{"id": f"{a.number:08d}-1b4c-4c7e-9f7a-5e1d2c3b4a59", "tinyId": str(a.number), "message":
                 f"Alert {a.number}", "status": a.status, "acknowledged": False, "createdAt": iso_ms(a.created),
                 "priority": a.severity} for a in page]
        return {"data": data, "paging": paging, "took": 0.01, "requestId": "r"}

    return handle


def epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


# --- Datadog: GET /api/v2/security_monitoring/signals, two key headers, filter[...], cursor meta.page.after -----------


def datadog(api: StandIn) -> Callable[[Any, Any], dict[str, Any]]:
    def handle(request: Any, context: Any) -> dict[str, Any]:
        api.requests += 1
        context.headers.update(api.date_header())
        if request.headers.get("DD-API-KEY") != "api-key-7c1e" or request.headers.get("DD-APPLICATION-KEY") != SECRET:
            return refuse(context, 403, {"errors": ["Forbidden"]})
        query = query_of(request)
        limit = int(query.get("page[limit]", "10"))
        state = query.get("filter[query]", "").removeprefix("@workflow.triage.state:")
        if query.get("sort") != "timestamp" or not 1 <= limit <= 1000 or not query.get("filter[query]", "").startswith(
                "@workflow.triage.state:"):
            return refuse(context, 400, {"errors": ["Bad request"]})
        low, high = parse_iso(query["filter[from]"]), parse_iso(query["filter[to]"])  # both inclusive here
        chosen = sorted((a for a in api.visible() if low <= a.created <= high and a.status == state),
                        key=lambda a: (a.created, a.number))
        offset = offset_of(query.get("page[cursor]"))
        page = chosen[offset:offset + min(limit, PAGE_CAP)]
        body: dict[str, Any] = {"data": [
            {"id": f"AQAAAY{a.number:06d}", "type": "signal", "attributes": {
                "timestamp": iso_ms(a.created), "message": f"Signal {a.number} details", "tags": ["source:cloudtrail"],
                "attributes": {"title": f"Signal {a.number}", "status": a.severity,
                               "workflow": {"triage": {"state": a.status}}}}} for a in page], "meta": {"page": {}}}
        if offset + len(page) < len(chosen):
            body["meta"]["page"]["after"] = token(offset + len(page))
            body["links"] = {"next": f"https://api.datadoghq.com/api/v2/security_monitoring/signals?page[cursor]="
                                     f"{token(offset + len(page))}"}
        return body

    return handle


# --- SentinelOne: GET /web/api/v2.1/threats, ApiToken, createdAt__gte/__lte, any order, pagination.nextCursor ---


def sentinelone(api: StandIn) -> Callable[[Any, Any], dict[str, Any]]:
    def handle(request: Any, context: Any) -> dict[str, Any]:
        api.requests += 1
        context.headers.update(api.date_header())
        if request.headers.get("Authorization") != f"ApiToken {SECRET}":
            return refuse(context, 401, {"errors": [{"code": 4010010, "title": "Authentication Failed"}]})
        query = query_of(request)
        limit = int(query.get("limit", "10"))
        if not 1 <= limit <= 1000:
            return refuse(context, 400, {"errors": [{"title": "Validation Error"}]})
        low, high = parse_iso(query["createdAt__gte"]), parse_iso(query["createdAt__lte"])
        chosen = [a for a in api.visible() if low <= a.created <= high]  # every status: the engine filters
        random.Random(query["createdAt__gte"] + query["createdAt__lte"]).shuffle(chosen)  # no order to rely on
        offset = offset_of(query.get("cursor"))
        page = chosen[offset:offset + min(limit, PAGE_CAP)]
        more = offset + len(page) < len(chosen)
        data = [{"id": str(1_700_000_000_000_000_000 + a.number), "threatInfo": {
            "createdAt": a.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),  # microseconds, as seen
            "threatName": f"Threat {a.number}", "confidenceLevel": a.severity, "incidentStatus": a.status},
            "agentRealtimeInfo": {"agentComputerName": f"host-{a.number}"}} for a in page]
        return {"data": data, "pagination": {"nextCursor": token(offset + len(page)) if more else None,
                                             "totalItems": len(chosen)}}

    return handle


@dataclass(frozen=True)
class Api:
    """How a recipe's API is stood in for: its handler, its URL, credentials and its words."""

    make: Callable[[StandIn], Callable[[Any, Any], dict[str, Any]]]
    url: str
    credentials: dict[str, str]
    new: str
    other: str  # a status that must not be fetched
    severities: tuple[str, ...]
    item_id: Callable[[int], str]


APIS = {
    "Opsgenie alerts": Api(opsgenie, "https://api.opsgenie.com", {"identifier": "", "password": SECRET}, "open",
                           "closed", ("P1", "P2", "P3", "P4", "P5"),
                           lambda number: f"{number:08d}-1b4c-4c7e-9f7a-5e1d2c3b4a59"),
    "Datadog security signals": Api(datadog, "https://api.datadoghq.com",
                                    {"identifier": "api-key-7c1e", "password": SECRET}, "open", "archived",
                                    ("info", "low", "medium", "high", "critical"),
                                    lambda number: f"AQAAAY{number:06d}"),
    "SentinelOne threats": Api(sentinelone, "https://acme.sentinelone.net", {"identifier": "", "password": SECRET},
                               "unresolved", "resolved", ("malicious", "suspicious"),
                               lambda number: str(1_700_000_000_000_000_000 + number)),
}


def test_the_readme_has_at_least_three_recipes_all_run_here() -> None:
    assert len(recipes()) >= 3
    assert set(recipes()) == set(APIS)


@pytest.mark.parametrize("name", sorted(APIS))
def test_a_readme_recipe_fetches_every_matching_item_exactly_once(requests_mock: Any, name: str) -> None:
    api, recipe = APIS[name], recipes()[name]
    stand_in = StandIn()
    endpoint = api.url + recipe["endpoint"]
    requests_mock.get(re.compile("^" + re.escape(endpoint) + r"(\?|$)"), json=api.make(stand_in))
    params = {**recipe, "url": api.url, "credentials": api.credentials, "isFetch": True, "first_fetch": "2 hours",
              "max_fetch": "3", "look_back": "5"}
    settings = ef.parse_settings(params, T0)

    numbers = iter(range(1, 1000))

    def add(count: int, created: datetime, status: str = api.new, late_by: float = 0) -> list[int]:
        added = []
        for _ in range(count):
            number = next(numbers)
            severity = api.severities[number % len(api.severities)]
            stand_in.alerts.append(Alert(number, created, status, created + timedelta(seconds=late_by), severity))
            added.append(number)
        return added

    wanted = add(4, T0 - timedelta(minutes=50))  # a tie bigger than a page
    wanted += [n for minute in (40, 30, 20) for n in add(1, T0 - timedelta(minutes=minute, milliseconds=minute))]
    add(2, T0 - timedelta(minutes=35), status=api.other)  # never fetched
    add(1, T0 - timedelta(hours=3))  # before the first fetch time
    delivered: list[str] = []
    last_run: dict[str, Any] = {}
    idle = 0
    for run in range(40):
        if run == 2:  # new items, and one that shows up two minutes late, behind what was already fetched
            wanted += add(2, stand_in.now - timedelta(seconds=30))
            wanted += add(1, stand_in.now - timedelta(seconds=90), late_by=120)
        outcome = ef.fetch_incidents(ef.SourceClient(settings, sleep=lambda _: None), settings, last_run,
                                     stand_in.now)
        delivered += [incident["dbotMirrorId"] for incident in outcome.incidents]
        last_run = outcome.last_run
        idle = idle + 1 if not outcome.incidents else 0
        if run > 4 and idle >= 2:
            break
        stand_in.now += timedelta(minutes=1)
    assert len(delivered) == len(set(delivered)), "an item became two incidents"
    assert set(delivered) == {api.item_id(number) for number in wanted}
    assert stand_in.requests > len(wanted) // PAGE_CAP  # every listing paged
