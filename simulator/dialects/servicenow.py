"""ServiceNow Table API on the incident table: ``GET /api/now/table/incident`` with basic auth.

``sysparm_query`` is an encoded query (``field<op>value`` terms joined by ``^``, ``ORDERBY``/``ORDERBYDESC``);
``sys_created_on`` holds whole seconds (``YYYY-MM-DD HH:MM:SS``, UTC), so sub-second ties become ties and
conditions compare at the second. ``sysparm_limit`` (default 10,000) and ``sysparm_offset`` page through the
result, counted again on every request (status changes shift offsets); ``X-Total-Count`` and a ``Link`` header
(first, prev, next, last) come with every page. A condition on a field the table does not have is ignored, as
ServiceNow does by default.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from ..clock import from_ms
from ..events import StoredEvent
from ..faults import Fault
from ..responses import Response
from .base import (
    EPOCH,
    Dialect,
    Endpoints,
    Interval,
    Options,
    Request,
    basic_credentials,
    description_of,
    hex_for,
    link_fault,
    retry_after,
    same_secret,
    shape_page,
    source_of,
    user_of,
)

if TYPE_CHECKING:
    from ..server import RequestRecord

STATE_LABELS = {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved", "7": "Closed", "8": "Canceled"}
PRIORITY_LABELS = {"1": "1 - Critical", "2": "2 - High", "3": "3 - Moderate", "4": "4 - Low", "5": "5 - Planning"}
LEVEL_LABELS = {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"}
# severity -> (impact, urgency, priority) by ServiceNow's default priority lookup.
_LEVELS = {"critical": ("1", "1", "1"), "high": ("1", "2", "2"), "medium": ("2", "2", "3"), "low": ("2", "3", "4")}
_CATEGORY = {"Authentication": "inquiry", "Malware": "software", "Network": "network", "DataLoss": "database"}
_TERM = re.compile(r"([a-z_][a-z0-9_.]*?)(>=|<=|!=|NOT IN|NOT LIKE|STARTSWITH|ENDSWITH|LIKE|IN|>|<|=)(.*)", re.S)
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})(?: (\d{2}:\d{2}:\d{2}))?")
_DATE_GENERATE = re.compile(r"javascript:gs\.dateGenerate\('(\d{4}-\d{2}-\d{2})','(\d{2}:\d{2}:\d{2})'\)")
_NUMERIC = ("state", "incident_state", "priority", "impact", "urgency", "severity")


@dataclass
class ServiceNowOptions(Options):
    default_limit: int = 10_000
    # Largest sysparm_limit honoured (None: whatever is asked, as documented).
    max_limit: int | None = None
    # The API user's time zone: only sysparm_display_value=true/all shows times in it.
    user_time_zone: str = "UTC"

    def validate(self) -> None:
        ZoneInfo(self.user_time_zone)


@dataclass
class _Query:
    seconds: Interval
    checks: list[Callable[[dict[str, Any]], bool]]
    order: list[tuple[str, bool]]  # (field, descending)


class ServiceNowIncidents(Dialect):
    name = "servicenow"
    profile = "ServiceNow incidents"
    endpoints: ClassVar[Endpoints] = {"list": ("GET", re.compile(r"/api/now/table/incident"))}
    statuses: ClassVar[dict[str, str]] = {"New": "1", "In Progress": "2", "Closed": "7"}
    options_class = ServiceNowOptions
    options: ServiceNowOptions
    username = "xsoar.integration"

    @property
    def password(self) -> str:
        return self.hub.secret("servicenow-password", 24)

    def credentials(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}

    def instance_params(self) -> dict[str, Any]:
        return {
            "source": self.profile,
            "url": self.hub.sim.url,
            "credentials": {"identifier": self.username, "password": self.password},
        }

    def status(self, store_status: str) -> str | None:
        return self.statuses.get(store_status, "3")  # any other state: On Hold

    # -- errors --------------------------------------------------------------------------------------------------

    def error(self, status: int, message: str) -> Response:
        headers = {"WWW-Authenticate": 'BASIC realm="Service-now"'} if status == 401 else {}
        detail = "Required to provide Auth information" if status == 401 else None
        return self.json(status, {"error": {"message": message, "detail": detail}, "status": "failure"}, headers)

    def rate_limited(self, req: Request, form: str, value: int) -> Response:
        headers = {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Reset": str(req.now_ms // 1000 + value),
            "X-RateLimit-Rule": hex_for("servicenow-rule", "rest"),
            **retry_after(form, value, self.now(req)),
        }
        body = {
            "error": {
                "message": "Rate limit exceeded",
                "detail": "The request exceeded the rate limit of the rule for this user; try again later.",
            },
            "status": "failure",
        }
        return self.json(429, body, headers)

    def authorize(self, req: Request) -> Response | None:
        user, password = basic_credentials(req)
        if user != self.username or not same_secret(password, self.password):
            return self.error(401, "User Not Authenticated")
        return None

    # -- the record -------------------------------------------------------------------------------------------------

    def item_id(self, event: StoredEvent) -> str:
        return hex_for("servicenow-sys-id", event.id)

    def number(self, event: StoredEvent) -> str:
        return f"INC{10_000 + event.ordinal:07d}"

    @staticmethod
    def seconds(event: StoredEvent) -> int:
        return event.created_ms // 1000

    def _fields(self, event: StoredEvent, now_ms: int) -> dict[str, Any]:
        """The values the encoded query can test and order by, as the table holds them."""
        severity = event.body.get("severity")
        impact, urgency, priority = _LEVELS.get(str(severity), ("3", "3", "5"))
        state = self.status(event.status_at(now_ms)) or "3"
        return {
            "sys_created_on": self.seconds(event),
            "sys_id": self.item_id(event),
            "number": self.number(event),
            "state": state,
            "incident_state": state,
            "impact": impact,
            "urgency": urgency,
            "priority": priority,
            "severity": impact,
            "active": "false" if state in ("6", "7", "8") else "true",
            "category": _CATEGORY.get(str(event.body.get("type")), "software"),
        }

    def item(self, event: StoredEvent, now_ms: int, display: str = "false") -> dict[str, Any]:
        base_url = self.hub.sim.url
        values = self._fields(event, now_ms)
        host, _ = source_of(event)
        user = user_of(event)
        history = [(t, s) for t, s in event.history if t <= now_ms]
        updated = history[-1][0] if history else event.created_ms
        state = values["state"]
        closed = from_ms(updated) if state in ("6", "7") else None

        def ref(table: str, key: str | None) -> dict[str, str] | str:
            if key is None:
                return ""
            sys_id = hex_for(f"servicenow-{table}", key)
            return {"link": f"{base_url}/api/now/table/{table}/{sys_id}", "value": sys_id}

        record: dict[str, Any] = {
            "sys_id": values["sys_id"],
            "number": values["number"],
            "sys_created_on": self._time(event.created_ms),
            "sys_updated_on": self._time(updated),
            "opened_at": self._time(event.created_ms),
            "sys_created_by": "admin",
            "sys_updated_by": "admin",
            "sys_class_name": "incident",
            "sys_mod_count": str(len(history) - 1),
            "state": state,
            "incident_state": state,
            "impact": values["impact"],
            "urgency": values["urgency"],
            "priority": values["priority"],
            "severity": values["severity"],
            "active": values["active"],
            "category": values["category"],
            "subcategory": "",
        }
        if "name" in event.body:
            record["short_description"] = event.body["name"]
        record.update(
            {
                "description": description_of(event) or "",
                "cmdb_ci": ref("cmdb_ci", host),
                "caller_id": ref("sys_user", user),
                "opened_by": ref("sys_user", "admin"),
                "assignment_group": "",
                "assigned_to": "",
                "contact_type": "integration",
                "close_code": "Solved (Permanently)" if closed else "",
                "closed_at": self._time(updated) if closed else "",
                "resolved_at": self._time(updated) if closed else "",
                "sys_domain": {"link": f"{base_url}/api/now/table/sys_user_group/global", "value": "global"},
            }
        )
        if display == "false":
            return record
        labels = {
            "state": STATE_LABELS,
            "incident_state": STATE_LABELS,
            "priority": PRIORITY_LABELS,
            "impact": LEVEL_LABELS,
            "urgency": LEVEL_LABELS,
            "severity": LEVEL_LABELS,
        }
        names = {"cmdb_ci": host, "caller_id": user, "opened_by": "System Administrator", "sys_domain": "global"}
        shown: dict[str, Any] = {}
        for key, value in record.items():
            if key in labels:
                text = labels[key].get(value, value)
            elif isinstance(value, dict):
                text = names.get(key) or ""
            elif key in ("sys_created_on", "sys_updated_on", "opened_at", "closed_at", "resolved_at") and value:
                text = self._local(value)
            else:
                text = value
            if display == "all":
                shown[key] = {"display_value": text, "value": value["value"] if isinstance(value, dict) else value}
                if isinstance(value, dict):
                    shown[key]["link"] = value["link"]
            else:
                shown[key] = text
        return shown

    @staticmethod
    def _time(ms: int) -> str:
        return from_ms(ms).strftime("%Y-%m-%d %H:%M:%S")

    def _local(self, utc_text: str) -> str:
        dt = datetime.strptime(utc_text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=EPOCH.tzinfo)
        return dt.astimezone(ZoneInfo(self.options.user_time_zone)).strftime("%Y-%m-%d %H:%M:%S")

    # -- listing ------------------------------------------------------------------------------------------------

    def handle(self, req: Request, fault: Fault | None, record: RequestRecord) -> Response:
        query = self._parse_query(req.arg("sysparm_query") or "")
        limit = self._int_arg(req, "sysparm_limit", self.options.default_limit, minimum=1)
        if self.options.max_limit is not None:
            limit = min(limit, self.options.max_limit)
        offset = self._int_arg(req, "sysparm_offset", 0, minimum=0)
        display = (req.arg("sysparm_display_value") or "false").lower()
        display = display if display in ("true", "all") else "false"
        wanted = [f.strip() for f in (req.arg("sysparm_fields") or "").split(",") if f.strip()]
        with self.hub.lock:
            now_ms = self.hub.sync()
            lo_ms, hi_ms = query.seconds.ms_range()
            matches: list[tuple[StoredEvent, dict[str, Any]]] = []
            for event in self.hub.store.events_between(lo_ms, hi_ms):
                if event.visible_ms > now_ms or self.seconds(event) not in query.seconds:
                    continue
                values = self._fields(event, now_ms)
                if all(check(values) for check in query.checks):
                    matches.append((event, values))
            for key, descending in reversed(query.order):  # stable sorts, the last key first
                matches.sort(key=functools.partial(self._sort_value, key), reverse=descending)
            total = len(matches)
            page, shaped = shape_page([e for e, _ in matches[offset : offset + limit]], fault)
            items = [self.item(e, now_ms, display) for e in page]
        if wanted:
            items = [{k: v for k, v in item.items() if k in wanted} for item in items]
        more = offset + limit < total
        next_offset = offset + (len(page) if shaped == "short_page" else limit)
        linking = link_fault(fault)
        links = [
            (req.link({"sysparm_offset": "0", "sysparm_limit": str(limit)}), "first"),
            (req.link({"sysparm_offset": str(offset - limit), "sysparm_limit": str(limit)}), "prev"),
        ]
        next_link: str | None = None
        if linking == "repeat_link":
            next_link = req.link()
        elif linking == "foreign_link" or more or shaped is not None:
            next_link = req.link(
                {"sysparm_offset": str(next_offset), "sysparm_limit": str(limit)}, foreign=linking == "foreign_link"
            )
        if next_link is not None:
            links.append((next_link, "next"))
        last = max(0, total - limit)
        links.append((req.link({"sysparm_offset": str(last), "sysparm_limit": str(limit)}), "last"))
        if shaped == "short_page" and fault is not None:
            record.fault, record.fault_options = fault.kind, dict(fault.options)
        record.event_ids = [e.id for e in page]
        record.next_cursor = next_link
        headers = {"X-Total-Count": str(total), "Link": ",".join(f'<{url}>;rel="{rel}"' for url, rel in links)}
        return self.json(200, {"result": items}, headers)

    @staticmethod
    def _int_arg(req: Request, name: str, default: int, *, minimum: int) -> int:
        raw = req.arg(name)
        if raw is None or not raw.strip().lstrip("-").isdigit():
            return default
        return max(minimum, int(raw))

    @staticmethod
    def _sort_value(key: str, match: tuple[StoredEvent, dict[str, Any]]) -> Any:
        value = match[1].get(key, "")
        return int(value) if key in _NUMERIC and str(value).isdigit() else value

    def _parse_query(self, text: str) -> _Query:
        query = _Query(Interval(1), [], [])
        for term in (t for t in text.split("^") if t):
            if term.startswith(("OR", "NQ", "EQ")) and not term.startswith("ORDERBY"):
                continue  # OR and new-query terms are beyond this simulator; ignored like unknown fields
            if term.startswith("ORDERBYDESC"):
                query.order.append((term[len("ORDERBYDESC") :], True))
                continue
            if term.startswith("ORDERBY"):
                query.order.append((term[len("ORDERBY") :], False))
                continue
            match = _TERM.fullmatch(term)
            if not match:
                continue
            field, op, value = match.groups()
            if field == "sys_created_on":
                self._time_term(query, op, value)
            elif field in ("sys_id", "number", "active", "category", *_NUMERIC):
                query.checks.append(self._value_term(field, op, value))
            # any other field: ignored, as ServiceNow ignores conditions on fields it does not know
        return query

    @staticmethod
    def _time_term(query: _Query, op: str, value: str) -> None:
        generated = _DATE_GENERATE.fullmatch(value)
        match = _DATETIME.fullmatch(value) if generated is None else None
        if generated is None and match is None:
            query.checks.append(lambda _v: False)  # an unreadable date matches nothing
            return
        date, time = generated.groups() if generated is not None else match.groups()  # type: ignore[union-attr]
        moment = datetime.fromisoformat(f"{date}T{time or '00:00:00'}+00:00")
        second = Fraction(int((moment - EPOCH).total_seconds()))
        if op == ">=":
            query.seconds.ge(second)
        elif op == ">":
            query.seconds.gt(second)
        elif op == "<":
            query.seconds.lt(second)
        elif op == "<=":
            query.seconds.le(second)
        elif op == "=":
            query.seconds.ge(second)
            query.seconds.le(second)
        elif op == "!=":
            query.checks.append(lambda v: v["sys_created_on"] != int(second))

    @staticmethod
    def _value_term(field: str, op: str, value: str) -> Callable[[dict[str, Any]], bool]:
        def numeric(v: Any) -> float | None:
            return float(v) if str(v).lstrip("-").isdigit() else None

        def test(values: dict[str, Any]) -> bool:
            have = str(values[field])
            if op == "=":
                return have == value
            if op == "!=":
                return have != value
            if op in ("IN", "NOT IN"):
                return (have in value.split(",")) == (op == "IN")
            if op == "STARTSWITH":
                return have.startswith(value)
            if op == "ENDSWITH":
                return have.endswith(value)
            if op in ("LIKE", "NOT LIKE"):
                return (value.lower() in have.lower()) == (op == "LIKE")
            a, b = numeric(have), numeric(value)
            if a is None or b is None:
                a, b = have, value  # type: ignore[assignment]
            return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]  # type: ignore[operator]

        return test
