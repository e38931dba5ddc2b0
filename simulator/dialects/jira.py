"""Jira Cloud enhanced search: ``GET /rest/api/3/search/jql`` with basic auth (email and API token).

JQL dates (``created >= "2026/11/26 10:00"``) are read in the Jira user's time zone at minute precision and
compared with ``created`` to the millisecond; ``created`` is written in that zone (``...000+0530``). Without
``fields`` only ids come back. Pages follow ``nextPageToken`` until ``isLast``; a page holds at most
``maxResults`` issues (5,000; 100 when fields are asked). Statuses: To Do, In Progress, Done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

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
    basic_credentials,
    decode_token,
    description_of,
    digest,
    encode_token,
    link_fault,
    ordered,
    retry_after,
    same_secret,
    shape_page,
    tags_of,
)

if TYPE_CHECKING:
    from ..server import RequestRecord
    from .hub import DialectHub

STATUSES = {
    # name: (status id, category id, category key, category colour)
    "To Do": ("10000", 2, "new", "blue-gray"),
    "In Progress": ("3", 4, "indeterminate", "yellow"),
    "Done": ("10001", 3, "done", "green"),
}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
_PRIORITY = {"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low"}
NAVIGABLE = (
    "summary",
    "created",
    "updated",
    "status",
    "statuscategorychangedate",
    "priority",
    "issuetype",
    "labels",
    "description",
    "project",
    "reporter",
    "assignee",
    "resolution",
    "resolutiondate",
    "environment",
    "duedate",
    "components",
)
_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
_PERIOD = re.compile(r"([-+]?)(\d+)([wdhm])")
_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>>=|<=|!=|=|>|<|\(|\)|,)|(?P<word>[^\s=!<>(),"']+))"""
)


def _created(event: StoredEvent) -> int:
    return event.created_ms


def _ordinal(event: StoredEvent) -> int:
    return event.ordinal


@dataclass
class JiraOptions(Options):
    # The time zone of the Jira user the API token belongs to: JQL dates are read in it, times written in it.
    time_zone: str = "Asia/Kolkata"
    default_max_results: int = 50
    max_results: int = 5000
    # Jira returns fewer issues per page when fields are asked: at most this many.
    max_results_with_fields: int = 100
    # What nextPageToken continues from: "offset" (a position, shifted by changes) or "keyset" (after an issue).
    token_mode: str = "offset"
    project_key: str = "SEC"

    def validate(self) -> None:
        ZoneInfo(self.time_zone)
        if self.token_mode not in ("offset", "keyset"):
            raise ValueError("token_mode must be offset or keyset")


@dataclass
class _Jql:
    created: Interval
    checks: list[Any]
    order: list[tuple[str, bool]]  # (created | key | id, descending)
    text: str


class JiraIssues(Dialect):
    name = "jira"
    profile = "Jira issues"
    endpoints: ClassVar[Endpoints] = {"list": ("GET", re.compile(r"/rest/api/3/search/jql"))}
    statuses: ClassVar[dict[str, str]] = {"New": "To Do", "In Progress": "In Progress", "Closed": "Done"}
    options_class = JiraOptions
    options: JiraOptions
    email = "soc-automation@example.com"

    def __init__(self, hub: DialectHub) -> None:
        super().__init__(hub)
        self._tokens_issued = 0

    @property
    def api_token(self) -> str:
        return "ATATT3x" + self.hub.secret("jira-api-token", 40)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.options.time_zone)

    def credentials(self) -> dict[str, str]:
        return {"email": self.email, "api_token": self.api_token}

    def instance_params(self) -> dict[str, Any]:
        return {
            "source": self.profile,
            "url": self.hub.sim.url,
            "credentials": {"identifier": self.email, "password": self.api_token},
            "time_zone": self.options.time_zone,
        }

    # -- errors ------------------------------------------------------------------------------------------

    def error(self, status: int, message: str) -> Response:
        if status == 401:
            message = "Client must be authenticated to access this resource."
        return self.json(status, {"errorMessages": [message], "errors": {}})

    def rate_limited(self, req: Request, form: str, value: int) -> Response:
        reset = (self.now(req) + timedelta(seconds=value)).strftime("%Y-%m-%dT%H:%MZ")
        headers = {
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "0",
            "RateLimit-Reason": "jira-burst-based",
            **retry_after(form, value, self.now(req)),
        }
        if form != "missing":
            headers["X-RateLimit-Reset"] = reset
        return self.json(429, {"errorMessages": ["Rate limit exceeded."], "errors": {}}, headers)

    def authorize(self, req: Request) -> Response | None:
        user, token = basic_credentials(req)
        if user != self.email or not same_secret(token, self.api_token):
            return self.error(401, "")
        return None

    # -- the issue ------------------------------------------------------------------------------------------

    def item_id(self, event: StoredEvent) -> str:
        return str(10_000 + event.ordinal)

    def key(self, event: StoredEvent) -> str:
        return f"{self.options.project_key}-{event.ordinal}"

    def format_time(self, ms: int) -> str:
        """``2026-11-26T10:00:00.000+0530``: milliseconds, in the Jira user's time zone."""
        local = from_ms(ms).astimezone(self.zone)
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}" + local.strftime("%z")

    def priority_name(self, event: StoredEvent) -> str:
        return _PRIORITY.get(str(event.body.get("severity")), "Lowest")

    def item(self, event: StoredEvent, now_ms: int, wanted: tuple[str, ...] | None = NAVIGABLE) -> dict[str, Any]:
        base_url = self.hub.sim.url
        issue_id = self.item_id(event)
        issue: dict[str, Any] = {"id": issue_id}
        if wanted is None:
            return issue
        history = [(t, s) for t, s in event.history if t <= now_ms]
        status_name = self.status(history[-1][1]) if history else "To Do"
        status_id, category_id, category_key, colour = STATUSES.get(
            str(status_name), ("10002", 4, "indeterminate", "yellow")
        )
        changed = history[-1][0] if history else event.created_ms
        priority = self.priority_name(event)
        description = description_of(event)
        project = self.options.project_key
        fields: dict[str, Any] = {
            "created": self.format_time(event.created_ms),
            "updated": self.format_time(changed),
            "statuscategorychangedate": self.format_time(changed),
            "status": {
                "self": f"{base_url}/rest/api/3/status/{status_id}",
                "description": "",
                "iconUrl": f"{base_url}/images/icons/statuses/generic.png",
                "name": status_name,
                "id": status_id,
                "statusCategory": {
                    "self": f"{base_url}/rest/api/3/statuscategory/{category_id}",
                    "id": category_id,
                    "key": category_key,
                    "colorName": colour,
                    "name": "To Do" if category_key == "new" else "Done" if category_key == "done" else "In Progress",
                },
            },
            "priority": {
                "self": f"{base_url}/rest/api/3/priority/{PRIORITIES[priority]}",
                "iconUrl": f"{base_url}/images/icons/priorities/{priority.lower()}.svg",
                "name": priority,
                "id": PRIORITIES[priority],
            },
            "issuetype": {
                "self": f"{base_url}/rest/api/3/issuetype/10004",
                "id": "10004",
                "description": "A problem or error.",
                "iconUrl": f"{base_url}/images/icons/issuetypes/bug.svg",
                "name": "Bug" if event.body.get("type") in ("Malware", "Network") else "Task",
                "subtask": False,
                "hierarchyLevel": 0,
            },
            "labels": [t.replace(" ", "_") for t in tags_of(event)],
            "description": None
            if description is None
            else {
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": description}]}],
            },
            "project": {
                "self": f"{base_url}/rest/api/3/project/10000",
                "id": "10000",
                "key": project,
                "name": "Security Operations",
                "projectTypeKey": "software",
            },
            "reporter": {
                "accountId": "557058:" + digest("jira-reporter", project).hex()[:24],
                "displayName": "SOC Automation",
                "active": True,
                "timeZone": self.options.time_zone,
            },
            "assignee": None,
            "resolution": {"id": "10000", "name": "Done"} if category_key == "done" else None,
            "resolutiondate": self.format_time(changed) if category_key == "done" else None,
            "environment": None,
            "duedate": None,
            "components": [],
        }
        if "name" in event.body:
            fields["summary"] = event.body["name"]
        issue.update(
            {
                "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
                "self": f"{base_url}/rest/api/3/issue/{issue_id}",
                "key": self.key(event),
                "fields": {k: fields[k] for k in wanted if k in fields},
            }
        )
        return issue

    # -- listing --------------------------------------------------------------------------------------------

    def handle(self, req: Request, fault: Fault | None, record: RequestRecord) -> Response:
        try:
            jql = self._parse(req.arg("jql") or "", req.now_ms)
            wanted = self._fields(req)
            limit = self._max_results(req, wanted)
            token = self._read_token(req.arg("nextPageToken"), jql.text)
        except BadRequest as exc:
            return self.error(400, str(exc))
        keyset = self.options.token_mode == "keyset" and len({d for _, d in jql.order}) == 1
        descending = jql.order[0][1]

        def sort_key(e: StoredEvent) -> tuple[int, ...]:
            return tuple(e.created_ms if f == "created" else e.ordinal for f, _ in jql.order)

        with self.hub.lock:
            now_ms = self.hub.sync()
            lo_ms, hi_ms = jql.created.ms_range()
            events = self.hub.store.events_between(lo_ms, hi_ms)
            after = tuple(token["k"]) if keyset and token is not None and "k" in token else None

            def accept(event: StoredEvent) -> bool:
                if event.visible_ms > now_ms or event.created_ms not in jql.created:
                    return False
                if after is not None and (sort_key(event) >= after if descending else sort_key(event) <= after):
                    return False
                return all(check(event, now_ms) for check in jql.checks)

            offset = 0 if keyset or token is None else int(token.get("o", 0))
            simple = all(f == "created" for f, _ in jql.order) and len({d for _, d in jql.order}) == 1
            found = ordered(
                reversed(events) if descending else events,
                accept,
                group=lambda e: e.created_ms,
                key=sort_key,
                need=offset + limit + 1 if simple else None,
                reverse=descending,
            )
            if not simple:
                for field, desc in reversed(jql.order):  # stable sorts, the last key first
                    found.sort(key=_created if field == "created" else _ordinal, reverse=desc)
            due = found[offset : offset + limit]
            page, shaped = shape_page(due, fault)
            items = [self.item(e, now_ms, wanted) for e in page]
        more = len(found) > offset + limit or shaped is not None
        next_token: str | None = None
        if link_fault(fault) == "repeat_link":
            next_token = req.arg("nextPageToken") or self._issue_token({"o": offset}, jql.text)
        elif more:
            if keyset:
                anchor = page[-1] if page else None
                position: dict[str, Any] = {"k": list(sort_key(anchor))} if anchor is not None else dict(token or {})
                position.pop("q", None)
                position.pop("n", None)
            else:
                position = {"o": offset + (len(page) if shaped is not None else limit)}
                if shaped == "empty_page":
                    position = {"o": offset}
            next_token = self._issue_token(position, jql.text)
        if shaped == "short_page" and fault is not None:
            record.fault, record.fault_options = fault.kind, dict(fault.options)
        record.event_ids = [e.id for e in page]
        record.next_cursor = next_token
        body: dict[str, Any] = {"issues": items}
        if next_token is not None:
            body["nextPageToken"] = next_token
        body["isLast"] = next_token is None
        return self.json(200, body)

    def _issue_token(self, position: dict[str, Any], jql: str) -> str:
        with self.hub.lock:
            self._tokens_issued += 1
            nonce = self._tokens_issued
        return encode_token({**position, "q": digest("jql", jql).hex()[:12], "n": nonce})

    def _read_token(self, raw: str | None, jql: str) -> dict[str, Any] | None:
        if not raw:
            return None
        try:
            token = decode_token(raw)
        except BadRequest:
            token = None
        if not isinstance(token, dict) or token.get("q") != digest("jql", jql).hex()[:12]:
            raise BadRequest("The provided next page token is invalid or expired.")
        return token

    def _fields(self, req: Request) -> tuple[str, ...] | None:
        """The fields to return: None for ids only (no ``fields`` parameter), else their names."""
        raw = [f.strip() for value in req.args("fields") for f in value.split(",") if f.strip()]
        if not raw or raw == ["id"]:
            return None
        chosen: list[str] = []
        for name in raw:
            if name in ("*navigable", "*all"):
                chosen += [f for f in NAVIGABLE if f not in chosen]
            elif name.startswith("-"):
                chosen = [f for f in chosen if f != name[1:]]
            elif name not in ("id", "key") and name not in chosen:
                chosen.append(name)
        return tuple(chosen)

    def _max_results(self, req: Request, wanted: tuple[str, ...] | None) -> int:
        raw = req.arg("maxResults")
        if raw is None or raw == "":
            limit = self.options.default_max_results
        elif raw.isdigit():
            limit = int(raw)
        else:
            raise BadRequest(f"The value '{raw}' is invalid for maxResults.")
        cap = self.options.max_results if not wanted else self.options.max_results_with_fields
        return max(1, min(limit, cap))

    # -- JQL ---------------------------------------------------------------------------------------------------

    def _parse(self, text: str, now_ms: int) -> _Jql:
        tokens = self._tokenize(text)
        jql = _Jql(Interval(1000), [], [], text)
        position = 0

        def peek(offset: int = 0) -> tuple[str, str] | None:
            return tokens[position + offset] if position + offset < len(tokens) else None

        def word(token: tuple[str, str] | None, *values: str) -> bool:
            return token is not None and token[0] == "word" and token[1].upper() in values

        clauses = 0
        while position < len(tokens) and not (word(peek(), "ORDER") and word(peek(1), "BY")):
            if clauses:
                if word(peek(), "OR"):
                    raise BadRequest("This simulator's JQL supports AND only, not OR.")
                if not word(peek(), "AND"):
                    raise BadRequest(f"Error in the JQL Query: Expecting either 'OR' or 'AND' but got '{peek()[1]}'.")  # type: ignore[index]
                position += 1
            field_token = peek()
            if field_token is None:
                raise BadRequest("Error in the JQL Query: the query ends after 'AND'.")
            field = field_token[1].strip("\"'")
            position += 1
            operator = peek()
            if word(operator, "NOT") and word(peek(1), "IN"):
                op, position = "NOT IN", position + 2
            elif word(operator, "IN"):
                op, position = "IN", position + 1
            elif operator is not None and operator[0] == "op" and operator[1] not in "(),":
                op, position = operator[1], position + 1
            else:
                raise BadRequest(f"Error in the JQL Query: expecting an operator after '{field}'.")
            values: list[str] = []
            if op in ("IN", "NOT IN"):
                if peek() != ("op", "("):
                    raise BadRequest(f"Error in the JQL Query: expecting '(' after '{op}'.")
                position += 1
                while peek() is not None and peek() != ("op", ")"):
                    token = peek()
                    assert token is not None
                    if token != ("op", ","):
                        values.append(self._value(token))
                    position += 1
                position += 1
            else:
                token = peek()
                if token is None or token[0] == "op":
                    raise BadRequest(f"Error in the JQL Query: expecting a value after '{field} {op}'.")
                values.append(self._value(token))
                position += 1
            self._clause(jql, field, op, values, now_ms)
            clauses += 1
        if clauses == 0:
            raise BadRequest(
                "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
            )
        if position < len(tokens):
            position += 2  # ORDER BY
            while position < len(tokens):
                token = peek()
                assert token is not None
                if token == ("op", ","):
                    position += 1
                    continue
                field = token[1].strip("\"'").lower()
                if field == "createddate":
                    field = "created"
                if field not in ("created", "key", "id"):
                    raise BadRequest(f"This simulator's JQL orders by created, key or id, not '{token[1]}'.")
                position += 1
                descending = False
                if word(peek(), "ASC", "DESC"):
                    descending = peek()[1].upper() == "DESC"  # type: ignore[index]
                    position += 1
                jql.order.append((field, descending))
        if not jql.order:
            jql.order = [("key", True)]
        return jql

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if not match:
                character = text[position]
                raise BadRequest(f"Error in the JQL Query: the character '{character}' is a reserved JQL character.")
            kind = match.lastgroup or "word"
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return tokens

    @staticmethod
    def _value(token: tuple[str, str]) -> str:
        if token[0] == "str":
            return re.sub(r"\\(.)", r"\1", token[1][1:-1])
        return token[1]

    def _clause(self, jql: _Jql, field: str, op: str, values: list[str], now_ms: int) -> None:
        name = field.lower()
        if name in ("created", "createddate"):
            if op in ("IN", "NOT IN", "!="):
                raise BadRequest(f"The operator '{op}' is not supported by the 'created' field in this simulator.")
            instant = Fraction(self._date(values[0], now_ms), 1000)
            if op == "=":
                jql.created.ge(instant)
                jql.created.le(instant)
            else:
                {">=": jql.created.ge, ">": jql.created.gt, "<": jql.created.lt, "<=": jql.created.le}[op](instant)
        elif name == "status":
            names = {n.lower(): n for n in STATUSES}
            for value in values:
                if value.lower() not in names:
                    raise BadRequest(f"The value '{value}' does not exist for the field 'status'.")
            wanted = {names[v.lower()] for v in values}
            positive = op in ("=", "IN")
            if op not in ("=", "!=", "IN", "NOT IN"):
                raise BadRequest(f"The operator '{op}' is not supported by the 'status' field.")
            jql.checks.append(lambda e, now, w=wanted, p=positive: (self.status(e.status_at(now)) in w) == p)
        elif name == "priority":
            names = {n.lower(): n for n in PRIORITIES}
            for value in values:
                if value.lower() not in names:
                    raise BadRequest(f"The value '{value}' does not exist for the field 'priority'.")
            wanted = {names[v.lower()] for v in values}
            positive = op in ("=", "IN")
            jql.checks.append(lambda e, _now, w=wanted, p=positive: (self.priority_name(e) in w) == p)
        elif name == "project":
            for value in values:
                if value.upper() != self.options.project_key and value != "Security Operations":
                    raise BadRequest(f"The value '{value}' does not exist for the field 'project'.")
            if op in ("!=", "NOT IN"):
                jql.checks.append(lambda _e, _now: False)
        else:
            raise BadRequest(f"Field '{field}' does not exist or you do not have permission to view it.")

    def _date(self, value: str, now_ms: int) -> int:
        """A JQL date in ms since the epoch: the Jira user's local time at minute precision, or a period."""
        period = _PERIOD.fullmatch(value.strip())
        if period is not None:
            sign = -1 if period.group(1) == "-" else 1
            unit = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000}[period.group(3)]
            moment = now_ms + sign * int(period.group(2)) * unit
            return moment - moment % 60_000
        for pattern in _DATE_FORMATS:
            try:
                local = datetime.strptime(value.strip(), pattern)
            except ValueError:
                continue
            instant = local.replace(tzinfo=self.zone)  # fold=0: the earlier of two, the offset before a gap
            return int(instant.timestamp()) * 1000
        raise BadRequest(
            f"Date value '{value}' for field 'created' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
            "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
        )
