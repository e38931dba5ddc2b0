"""PagerDuty REST API v2 incidents: ``GET /incidents`` with ``Authorization: Token token=<key>``.

``since``/``until`` bound ``created_at`` (whole seconds: the filter compares at the second), ``statuses[]``
filters, ``sort_by=created_at:asc`` orders, and classic pagination pages: ``limit`` (at most 100), ``offset``,
``more``, and ``total`` (null unless ``total=true``). The list is counted again on every request, so offsets shift
when an incident is acknowledged or a late one comes in; ``offset + limit`` may not pass 10,000.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..clock import from_ms
from ..events import StoredEvent
from ..faults import Fault
from ..responses import Response
from .base import (
    BadRequest,
    Dialect,
    Endpoints,
    Interval,
    Options,
    Request,
    description_of,
    hex_for,
    ordered,
    parse_instant,
    pick,
    same_secret,
    shape_page,
)

if TYPE_CHECKING:
    from ..server import RequestRecord

ACCEPT = "application/vnd.pagerduty+json;version=2"
STATUSES = ("triggered", "acknowledged", "resolved")
_URGENCY = {"critical": "high", "high": "high", "medium": "low", "low": "low"}
_PRIORITY = {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"}
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SERVICES = ["Identity Gateway", "Endpoint Protection", "Edge Network", "Data Platform", "Compliance"]


@dataclass
class PagerDutyOptions(Options):
    default_limit: int = 25
    max_limit: int = 100
    # offset + limit beyond this gets 400 (the documented cap of classic pagination; None: no cap).
    max_offset: int | None = 10_000
    # A since..until span longer than this gets 400 (documented: 6 months; None: no cap).
    max_range_days: float | None = 180.0
    # Refuse requests without the version-2 Accept header.
    require_accept: bool = True
    subdomain: str = "acme"


class PagerDutyIncidents(Dialect):
    name = "pagerduty"
    profile = "PagerDuty incidents"
    endpoints: ClassVar[Endpoints] = {"list": ("GET", re.compile(r"/incidents"))}
    statuses: ClassVar[dict[str, str]] = {"New": "triggered", "In Progress": "acknowledged", "Closed": "resolved"}
    options_class = PagerDutyOptions
    options: PagerDutyOptions

    @property
    def key(self) -> str:
        return "u+" + self.hub.secret("pagerduty-api-key", 18)

    def credentials(self) -> dict[str, str]:
        return {"api_key": self.key}

    def instance_params(self) -> dict[str, Any]:
        credentials = {"identifier": "", "password": self.key}
        return {"source": self.profile, "url": self.hub.sim.url, "credentials": credentials}

    def status(self, store_status: str) -> str | None:
        return self.statuses.get(store_status, "acknowledged")

    # -- errors ------------------------------------------------------------------------------------------------

    def error(self, status: int, message: str, code: int = 2001, errors: list[str] | None = None) -> Response:
        if status == 401:
            return self.json(401, {"error": {"message": "Authentication failed", "code": 2006}})
        if status >= 500:
            return self.json(status, {"error": {"message": message}})
        return self.json(status, {"error": {"message": "Invalid Input Provided", "code": code, "errors": [message]}})

    def rate_limited(self, req: Request, form: str, value: int) -> Response:
        """PagerDuty's signal: ``ratelimit-reset``, the seconds to wait (no Retry-After)."""
        headers = {"ratelimit-limit": "960", "ratelimit-remaining": "0"}
        if form != "missing":
            headers["ratelimit-reset"] = str(value)
        return self.json(429, {"error": {"message": "Rate Limit Exceeded"}}, headers)

    def authorize(self, req: Request) -> Response | None:
        header = (req.header("Authorization") or "").strip()
        prefix = "Token token="
        if not header.startswith(prefix) or not same_secret(header[len(prefix) :], self.key):
            return self.error(401, "Authentication failed")
        if self.options.require_accept and ACCEPT not in (req.header("Accept") or "").replace(" ", ""):
            return self.error(400, f"The Accept header must be {ACCEPT}")
        return None

    # -- the incident --------------------------------------------------------------------------------------

    def item_id(self, event: StoredEvent) -> str:
        """``P`` and six base-36 characters: an affine bijection of the store ordinal, so never a collision."""
        value = (event.ordinal * 1_000_003 + 7_654_321) % 36**6
        chars = ""
        for _ in range(6):
            value, digit = divmod(value, 36)
            chars = _ALPHABET[digit] + chars
        return "P" + chars

    def _time(self, ms: int, zone: ZoneInfo | None) -> str:
        dt = from_ms(ms - ms % 1000)
        if zone is None:
            return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        return dt.astimezone(zone).isoformat()

    def item(self, event: StoredEvent, now_ms: int, zone: ZoneInfo | None = None) -> dict[str, Any]:
        base_url, subdomain = self.hub.sim.url, self.options.subdomain
        incident_id = self.item_id(event)
        number = event.ordinal
        history = [(t, s) for t, s in event.history if t <= now_ms]
        status = self.status(history[-1][1]) if history else "triggered"
        changed = history[-1][0] if history else event.created_ms
        severity = str(event.body.get("severity"))
        service = pick("pagerduty-service", str(event.body.get("type")), _SERVICES)
        service_id = "PS" + hex_for("pagerduty-service", service, 5).upper()
        title = event.body.get("name")
        resolved = int(status == "resolved")
        alert_counts = {"all": 1, "triggered": 1 - resolved, "resolved": resolved}
        incident: dict[str, Any] = {
            "id": incident_id,
            "type": "incident",
            "summary": f"[#{number}] {title or ''}".rstrip(),
            "self": f"{base_url}/incidents/{incident_id}",
            "html_url": f"https://{subdomain}.pagerduty.com/incidents/{incident_id}",
            "incident_number": number,
        }
        if "name" in event.body:
            incident["title"] = title
        incident.update(
            {
                "description": title,
                "created_at": self._time(event.created_ms, zone),
                "updated_at": self._time(changed, zone),
                "status": status,
                "incident_key": hex_for("pagerduty-key", event.id),
                "service": {
                    "id": service_id,
                    "type": "service_reference",
                    "summary": service,
                    "self": f"{base_url}/services/{service_id}",
                    "html_url": f"https://{subdomain}.pagerduty.com/service-directory/{service_id}",
                },
                "assignments": [],
                "assigned_via": "escalation_policy",
                "last_status_change_at": self._time(changed, zone),
                "resolved_at": self._time(changed, zone) if status == "resolved" else None,
                "alert_counts": alert_counts,
                "is_mergeable": True,
                "urgency": _URGENCY.get(severity, "low"),
                "priority": None
                if severity not in _PRIORITY
                else {"id": "PPRI" + _PRIORITY[severity], "type": "priority", "summary": _PRIORITY[severity]},
                "incident_type": {"name": "incident_default"},
                "body": {"type": "incident_body", "details": description_of(event)},
            }
        )
        return incident

    # -- listing ------------------------------------------------------------------------------------------------

    def handle(self, req: Request, fault: Fault | None, record: RequestRecord) -> Response:
        try:
            seconds, statuses, urgencies, by_number, descending, zone = self._filters(req)
            limit = max(1, min(self._int(req, "limit", self.options.default_limit), self.options.max_limit))
            offset = self._int(req, "offset", 0)
            if self.options.max_offset is not None and offset + limit > self.options.max_offset:
                raise BadRequest(f"offset + limit must not exceed {self.options.max_offset}")
        except BadRequest as exc:
            return self.error(400, str(exc))
        want_total = (req.arg("total") or "false").lower() == "true"
        with self.hub.lock:
            now_ms = self.hub.sync()
            lo_ms, hi_ms = seconds.ms_range()
            events = self.hub.store.events_between(lo_ms, hi_ms)

            def accept(e: StoredEvent) -> bool:
                return (
                    e.visible_ms <= now_ms
                    and e.created_ms // 1000 in seconds
                    and (statuses is None or self.status(e.status_at(now_ms)) in statuses)
                    and (urgencies is None or _URGENCY.get(str(e.body.get("severity")), "low") in urgencies)
                )

            if by_number:
                matches = sorted(filter(accept, events), key=lambda e: e.ordinal, reverse=descending)
            else:
                # created_at holds whole seconds: within one, incidents come in the order they were made.
                matches = ordered(
                    reversed(events) if descending else events,
                    accept,
                    group=lambda e: e.created_ms // 1000,
                    key=lambda e: (e.created_ms // 1000, e.ordinal),
                    need=None if want_total else offset + limit + 1,
                    reverse=descending,
                )
            page, shaped = shape_page(matches[offset : offset + limit], fault)
            items = [self.item(e, now_ms, zone) for e in page]
        more = shaped is not None or offset + limit < len(matches)
        if shaped == "short_page" and fault is not None:
            record.fault, record.fault_options = fault.kind, dict(fault.options)
        record.event_ids = [e.id for e in page]
        record.next_cursor = str(offset + len(page)) if more else None
        body = {
            "incidents": items,
            "limit": limit,
            "offset": offset,
            "more": more,
            "total": len(matches) if want_total else None,
        }
        return self.json(200, body, {"ratelimit-limit": "960", "ratelimit-remaining": "959", "ratelimit-reset": "60"})

    @staticmethod
    def _int(req: Request, name: str, default: int) -> int:
        raw = req.arg(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit():
            raise BadRequest(f"{name} must be a non-negative integer")
        return int(raw)

    def _filters(self, req: Request) -> tuple[Interval, set[str] | None, set[str] | None, bool, bool, ZoneInfo | None]:
        zone = None
        if req.arg("time_zone"):
            try:
                zone = ZoneInfo(req.arg("time_zone") or "UTC")
            except (ZoneInfoNotFoundError, ValueError):
                raise BadRequest("time_zone is not a valid time zone") from None
        seconds = Interval(1)
        if (req.arg("date_range") or "") != "all":
            now = Fraction(req.now_ms, 1000)
            since = self._instant(req, "since")
            until = self._instant(req, "until")
            if since is None and until is None:
                since, until = now - 30 * 86_400, now
            elif until is None:
                until = now
            elif since is None:
                since = until - 30 * 86_400
            assert since is not None and until is not None
            if until < since:
                raise BadRequest("since must be before until")
            max_days = self.options.max_range_days
            if max_days is not None and until - since > Fraction(max_days) * 86_400:
                raise BadRequest(f"the date range must not exceed {self.options.max_range_days:g} days")
            seconds.ge(since)
            seconds.lt(until)
        statuses = set(req.args("statuses[]") + req.args("statuses")) or None
        if statuses is not None and not statuses <= set(STATUSES):
            raise BadRequest(f"statuses must be among {', '.join(STATUSES)}")
        urgencies = set(req.args("urgencies[]") + req.args("urgencies")) or None
        sort = (req.arg("sort_by") or req.arg("sort_by[]") or "created_at:asc").lower()
        field, _, direction = sort.partition(":")
        if field not in ("created_at", "incident_number") or direction not in ("", "asc", "desc"):
            raise BadRequest("sort_by must be created_at or incident_number, with :asc or :desc")
        return seconds, statuses, urgencies, field == "incident_number", direction == "desc", zone

    @staticmethod
    def _instant(req: Request, name: str) -> Fraction | None:
        """A time in ISO 8601 (date only, or without offset: UTC)."""
        raw = req.arg(name)
        if raw is None or raw == "":
            return None
        try:
            return parse_instant(raw, zone_required=False, time_required=False)
        except BadRequest:
            raise BadRequest(f"Invalid '{name}' parameter: {raw!r} is not an ISO 8601 date") from None
