"""Okta System Log: ``GET /api/v1/logs`` with an ``SSWS`` API token, a JSON list body and ``Link`` headers.

As documented, a *bounded* request (``until`` given) filters on ``published``, lists in order and has a last
page without a ``next`` link; a *polling* request (no ``until``, ``sortOrder=ASCENDING``) filters on the time
an event was stored (here: the time it became visible), may list out of ``published`` order, and always links
on, also from an empty page. Okta has no status: every event is served.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..clock import format_ms
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
    decode_token,
    digest,
    encode_token,
    link_fault,
    parse_instant,
    pick,
    shape_page,
    source_of,
    tags_of,
    user_of,
    uuid_for,
)

if TYPE_CHECKING:
    from ..server import RequestRecord
    from .hub import DialectHub

_SEVERITY = {"low": "INFO", "medium": "WARN", "high": "ERROR", "critical": "ERROR"}
_EVENT_TYPE = {
    "Authentication": ("user.session.start", "core.user_auth.login_success"),
    "Malware": ("security.threat.detected", None),
    "Network": ("security.request.blocked", None),
    "DataLoss": ("application.user_membership.add", "app.generic.provision.assign_user_to_app"),
    "Policy": ("policy.evaluate_sign_on", None),
}
_WEEK_MS = 7 * 86_400_000


@dataclass
class OktaOptions(Options):
    # Bounded requests also link on from their last page, as polling ones always do (not Okta's documented
    # behaviour for bounded requests: a switch for clients that must survive it).
    always_next: bool = False
    default_limit: int = 100
    max_limit: int = 1000
    # What X-Rate-Limit-Limit says, per minute.
    rate_limit_per_minute: int = 120


class OktaSystemLog(Dialect):
    name = "okta"
    profile = "Okta System Log"
    endpoints: ClassVar[Endpoints] = {"list": ("GET", re.compile(r"/api/v1/logs"))}
    options_class = OktaOptions
    options: OktaOptions

    def __init__(self, hub: DialectHub) -> None:
        super().__init__(hub)
        self._minute: tuple[int, int] = (0, 0)  # (clock minute, requests in it), for X-Rate-Limit-Remaining

    @property
    def token(self) -> str:
        return "00" + self.hub.secret("okta-api-token", 40)

    def credentials(self) -> dict[str, str]:
        return {"token": self.token}

    def instance_params(self) -> dict[str, Any]:
        credentials = {"identifier": "", "password": self.token}
        return {"source": self.profile, "url": self.hub.sim.url, "credentials": credentials}

    def status(self, store_status: str) -> str | None:
        return None

    # -- errors and limits ---------------------------------------------------------------------------------

    def _body(self, code: str, summary: str, causes: list[str] | None = None) -> dict[str, Any]:
        return {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae" + secrets.token_urlsafe(16),
            "errorCauses": [{"errorSummary": c} for c in causes or []],
        }

    def error(self, status: int, message: str) -> Response:
        if status == 401:
            return self.json(401, self._body("E0000011", "Invalid token provided"))
        if status == 400:
            return self.json(400, self._body("E0000001", f"Api validation failed: {message}", [message]))
        if status == 405:
            return self.json(405, self._body("E0000022", "The endpoint does not support the provided HTTP method"))
        return self.json(status, self._body("E0000009", "Internal Server Error"))

    def _limit_headers(self, req: Request, *, exhausted: int | None = None, reset: bool = True) -> dict[str, str]:
        """X-Rate-Limit-* as Okta sends them on every answer: reset in UTC epoch seconds."""
        limit = self.options.rate_limit_per_minute
        minute = req.now_ms // 60_000
        with self.hub.lock:
            count = self._minute[1] + 1 if self._minute[0] == minute else 1
            self._minute = (minute, count)
        headers = {"X-Rate-Limit-Limit": str(limit)}
        if exhausted is not None:
            headers["X-Rate-Limit-Remaining"] = "0"
            if reset:
                headers["X-Rate-Limit-Reset"] = str(req.now_ms // 1000 + exhausted)
        else:
            headers["X-Rate-Limit-Remaining"] = str(max(0, limit - count))
            headers["X-Rate-Limit-Reset"] = str((minute + 1) * 60)
        return headers

    def rate_limited(self, req: Request, form: str, value: int) -> Response:
        """Okta sends no Retry-After: X-Rate-Limit-Reset (epoch seconds) says when to come back."""
        body = self._body("E0000047", "API call exceeded rate limit due to too many requests.")
        return self.json(429, body, self._limit_headers(req, exhausted=value, reset=form != "missing"))

    def authorize(self, req: Request) -> Response | None:
        scheme, _, token = (req.header("Authorization") or "").strip().partition(" ")
        if scheme != "SSWS" or not secrets.compare_digest(token.strip().encode(), self.token.encode()):
            return self.error(401, "Invalid token provided")
        return None

    # -- the LogEvent ------------------------------------------------------------------------------------------

    def item_id(self, event: StoredEvent) -> str:
        return uuid_for("okta-uuid", event.id)

    def item(self, event: StoredEvent, now_ms: int) -> dict[str, Any]:
        body = event.body
        host, ip = source_of(event)
        user = user_of(event) or pick("okta-user", event.id, ["alice", "bob", "carol", "dave"])
        event_type, legacy = _EVENT_TYPE.get(str(body.get("type")), ("system.log.event", None))
        severity = body.get("severity")
        item: dict[str, Any] = {
            "uuid": self.item_id(event),
            "published": format_ms(event.created_ms),
            "eventType": event_type,
            "version": "0",
            "severity": _SEVERITY.get(str(severity), "DEBUG"),
            "legacyEventType": legacy,
        }
        if "name" in body:
            item["displayMessage"] = body["name"]
        outcome = "FAILURE" if body.get("type") in ("Malware", "Network") else "SUCCESS"
        item.update(
            {
                "actor": {
                    "id": "00u" + digest("okta-actor", user).hex()[:17],
                    "type": "User",
                    "alternateId": f"{user}@example.com",
                    "displayName": user,
                    "detailEntry": None,
                },
                "client": {
                    "userAgent": {"rawUserAgent": "Mozilla/5.0", "os": "Windows 10", "browser": "CHROME"},
                    "zone": "null",
                    "device": "Computer",
                    "id": None,
                    "ipAddress": ip,
                    "geographicalContext": None,
                },
                "outcome": {"result": outcome, "reason": None if outcome == "SUCCESS" else "VERIFICATION_ERROR"},
                "target": [
                    {
                        "id": "0oa" + digest("okta-target", str(host)).hex()[:17],
                        "type": "AppInstance",
                        "alternateId": host or "unknown",
                        "displayName": host or "unknown",
                        "detailEntry": None,
                    }
                ],
                "transaction": {"type": "WEB", "id": digest("okta-tx", event.id).hex()[:27], "detail": {}},
                "debugContext": {"debugData": {"requestUri": "/api/v1/authn", "tags": ",".join(tags_of(event))}},
                "authenticationContext": {"authenticationStep": 0, "externalSessionId": "trs" + event.id[-8:]},
                "securityContext": {"asNumber": None, "asOrg": None, "isp": None, "domain": None, "isProxy": None},
                "request": {"ipChain": [{"ip": ip, "version": "V4"}] if ip else []},
            }
        )
        return item

    # -- listing -----------------------------------------------------------------------------------------------

    def handle(self, req: Request, fault: Fault | None, record: RequestRecord) -> Response:
        try:
            since, until, limit, descending, after = self._parse(req)
        except BadRequest as exc:
            return self.error(400, str(exc))
        polling = until is None and not descending
        shape = (int, int, str) if polling else (int, str)
        if after is not None and [type(v) for v in after] != list(shape):
            return self.error(400, "'after': invalid value")
        with self.hub.lock:
            now_ms = self.hub.sync()
            found, key = self._select(now_ms, since, until, descending, polling, after, limit + 1)
            more = len(found) > limit
            page, shaped = shape_page(found[:limit], fault)
            items = [self.item(e, now_ms) for e in page]
        next_after = encode_token(list(key(page[-1]))) if page else req.arg("after")
        linking = link_fault(fault)
        next_link: str | None = None
        if linking == "repeat_link":
            next_link = req.link()
        elif linking == "foreign_link" or polling or more or shaped is not None or self.options.always_next:
            next_link = req.link({"after": next_after}, foreign=linking == "foreign_link")
        if shaped == "short_page" and fault is not None:
            record.fault, record.fault_options = fault.kind, dict(fault.options)
        record.event_ids = [e.id for e in page]
        record.next_cursor = next_link
        response = self.json(200, items, self._limit_headers(req))
        response.header_list.append(("Link", f'<{req.link()}>; rel="self"'))
        if next_link is not None:
            response.header_list.append(("Link", f'<{next_link}>; rel="next"'))
        return response

    def _parse(self, req: Request) -> tuple[int | None, int | None, int, bool, list[Any] | None]:
        def instant(name: str) -> int | None:
            raw = req.arg(name)
            if raw is None or raw == "":
                return None
            try:
                times = Interval(1000)
                times.ge(parse_instant(raw))
            except BadRequest:
                raise BadRequest(
                    f"'{name}': The date format in your query is not recognized. "
                    "Please enter dates using ISO8601 string format."
                ) from None
            return times.lo

        since, until = instant("since"), instant("until")
        raw_limit = req.arg("limit")
        limit = self.options.default_limit
        if raw_limit is not None:
            if not raw_limit.isdigit() or int(raw_limit) > self.options.max_limit:
                raise BadRequest(f"'limit': must be an integer between 0 and {self.options.max_limit}")
            limit = int(raw_limit)
        order = req.arg("sortOrder") or "ASCENDING"
        if order not in ("ASCENDING", "DESCENDING"):
            raise BadRequest("'sortOrder': must be ASCENDING or DESCENDING")
        after = None
        if req.arg("after"):
            decoded = decode_token(req.arg("after") or "")
            if not isinstance(decoded, list) or not decoded:
                raise BadRequest("'after': invalid value")
            after = decoded
        return since, until, limit, order == "DESCENDING", after

    def _select(
        self,
        now_ms: int,
        since: int | None,
        until: int | None,
        descending: bool,
        polling: bool,
        after: list[Any] | None,
        need: int,
    ) -> tuple[list[StoredEvent], Any]:
        """Up to ``need`` events after the ``after`` key, and the key function of this kind of request."""
        store = self.hub.store
        if polling:
            # Filtered and ordered by the time Okta stored the event: here, when it became visible.
            lower = since if since is not None else now_ms - _WEEK_MS

            def polling_key(e: StoredEvent) -> tuple[int, int, str]:
                return (e.visible_ms, e.created_ms, e.id)

            events = sorted(
                (e for e in store.events_between(None, now_ms + 1) if lower <= e.visible_ms <= now_ms),
                key=polling_key,
            )
            start = tuple(after) if after is not None else None
            return [e for e in events if start is None or polling_key(e) > start][:need], polling_key

        def bounded_key(e: StoredEvent) -> tuple[int, str]:
            return (e.created_ms, e.id)

        upper = until if until is not None else now_ms + 1
        lower = since if since is not None else upper - _WEEK_MS
        start = tuple(after) if after is not None else None
        if start is not None and isinstance(start[0], int):
            lower, upper = (lower, min(upper, start[0] + 1)) if descending else (max(lower, start[0]), upper)
        events = store.events_between(lower, upper)
        walk = reversed(events) if descending else iter(events)
        found: list[StoredEvent] = []
        for event in walk:
            if start is not None and (bounded_key(event) >= start if descending else bounded_key(event) <= start):
                continue
            if event.visible_ms <= now_ms:
                found.append(event)
                if len(found) == need:
                    break
        return found, bounded_key
