"""Microsoft Graph security alerts (v2) with the Microsoft identity platform's client-credentials token endpoint.

``POST /{tenant}/oauth2/v2.0/token`` issues Bearer tokens that expire; ``GET /v1.0/security/alerts_v2`` lists
alerts newest first with OData ``$filter`` (createdDateTime ge/gt/le/lt/eq, status and severity eq/ne, joined
by ``and``), ``$top``, ``$skip``, ``$count`` and an absolute ``@odata.nextLink`` carrying ``$skip``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl

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
    encode_token,
    link_fault,
    number_for,
    ordered,
    parse_instant,
    pick,
    retry_after,
    shape_page,
    source_of,
    user_of,
    uuid_for,
)

if TYPE_CHECKING:
    from ..server import RequestRecord
    from .hub import DialectHub

TICKS = 10_000_000  # createdDateTime has 100 ns precision: 7 fraction digits
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
STATUSES = ("unknown", "new", "inProgress", "resolved", "unknownFutureValue")
SEVERITIES = ("unknown", "informational", "low", "medium", "high", "unknownFutureValue")
_SEVERITY = {"low": "low", "medium": "medium", "high": "high", "critical": "high"}
_CATEGORY = {
    "Authentication": ("InitialAccess", "azureAdIdentityProtection", "azureAdIdentityProtection"),
    "Malware": ("Execution", "microsoftDefenderForEndpoint", "antivirus"),
    "Network": ("CommandAndControl", "microsoftDefenderForEndpoint", "microsoftDefenderForEndpoint"),
    "DataLoss": ("Exfiltration", "dataLossPrevention", "microsoftDataLossPrevention"),
    "Policy": ("DefenseEvasion", "microsoftDefenderForCloudApps", "cloudAppSecurity"),
}
_ERROR_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Forbidden",
    404: "ResourceNotFound",
    405: "MethodNotAllowed",
    500: "generalException",
    502: "UnknownError",
    503: "serviceNotAvailable",
    504: "timeout",
}
_CLAUSE = re.compile(r"(\w+)\s+(eq|ne|gt|ge|lt|le)\s+(.+)", re.IGNORECASE)


@dataclass
class GraphOptions(Options):
    # Lifetime of an access token; expires_in says so, and an expired token gets 401.
    token_ttl_seconds: float = 3599.0
    # Fraction digits of createdDateTime before trailing zeros are dropped (7 as Graph; 3: milliseconds only).
    fraction_digits: int = 7
    # Page size without $top, and the largest $top honoured (a larger one is cut to it).
    default_top: int = 100
    max_top: int = 1000
    # A $skip above this gets 400 (documented for the legacy alerts API, 500; None: no limit).
    max_skip: int | None = None

    def validate(self) -> None:
        if not 0 <= self.fraction_digits <= 7:
            raise ValueError("fraction_digits must be between 0 and 7")
        if self.token_ttl_seconds <= 0 or self.default_top < 1 or self.max_top < 1:
            raise ValueError("token_ttl_seconds, default_top and max_top must be positive")


@dataclass
class _Filter:
    times: Interval
    checks: list[Callable[[str | None, str], bool]]


class GraphAlerts(Dialect):
    name = "graph"
    profile = "Microsoft Graph Security alerts"
    endpoints: ClassVar[Endpoints] = {
        "token": ("POST", re.compile(r"/([^/]+)/oauth2/v2\.0/token")),
        "list": ("GET", re.compile(r"/v1\.0/security/alerts_v2")),
    }
    statuses: ClassVar[dict[str, str]] = {"New": "new", "In Progress": "inProgress", "Closed": "resolved"}
    options_class = GraphOptions
    options: GraphOptions

    def __init__(self, hub: DialectHub) -> None:
        super().__init__(hub)
        self._tokens: dict[str, int] = {}  # access token -> expiry in ms
        self.tokens_issued = 0

    # -- credentials and tokens ------------------------------------------------------------------------

    @property
    def tenant_id(self) -> str:
        return uuid_for("graph-tenant", self.hub.sim.api_key)

    @property
    def client_id(self) -> str:
        return uuid_for("graph-client", self.hub.sim.api_key)

    @property
    def client_secret(self) -> str:
        return self.hub.secret("graph-client-secret")

    def credentials(self) -> dict[str, str]:
        return {"tenant_id": self.tenant_id, "client_id": self.client_id, "client_secret": self.client_secret}

    def instance_params(self) -> dict[str, Any]:
        url = self.hub.sim.url
        return {
            "source": self.profile,
            "url": url,
            "credentials": {"identifier": self.client_id, "password": self.client_secret},
            "token_url": f"{url}/{self.tenant_id}/oauth2/v2.0/token",
            "scope": GRAPH_SCOPE,
        }

    def expire_tokens(self) -> int:
        """Make every token issued so far expired; returns how many there were."""
        with self.hub.lock:
            count = len(self._tokens)
            self._tokens = {token: 0 for token in self._tokens}
            return count

    def _token(self, req: Request) -> Response:
        form = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
        tenant = req.path.split("/")[1]
        if tenant != self.tenant_id:
            return self._aad_error(req, 400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return self._aad_error(
                req, 400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        client_id = form.get("client_id", "")
        if not client_id:
            return self._aad_error(
                req,
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        if client_id != self.client_id:
            return self._aad_error(
                req,
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        secret = form.get("client_secret", "")
        if not secret:
            return self._aad_error(
                req,
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if not secrets.compare_digest(secret.encode(), self.client_secret.encode()):
            return self._aad_error(
                req,
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                f"value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        scope = form.get("scope", "")
        if not scope:
            return self._aad_error(
                req, 400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."
            )
        if scope != GRAPH_SCOPE:
            return self._aad_error(
                req,
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
                "value with /.default suffixed to the resource identifier (application ID URI).",
            )
        ttl = self.options.token_ttl_seconds
        issued_s = req.now_ms // 1000
        header = encode_token({"typ": "JWT", "alg": "RS256", "kid": "sim"})
        claims = encode_token(
            {
                "aud": "https://graph.microsoft.com",
                "tid": tenant,
                "appid": client_id,
                "iat": issued_s,
                "exp": issued_s + int(ttl),
            }
        )
        token = f"{header}.{claims}.{secrets.token_urlsafe(32)}"
        with self.hub.lock:
            self._tokens[token] = req.now_ms + round(ttl * 1000)
            self.tokens_issued += 1
        body = {"token_type": "Bearer", "expires_in": int(ttl), "ext_expires_in": int(ttl), "access_token": token}
        return self.json(200, body, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def _aad_error(self, req: Request, status: int, error: str, code: int, message: str) -> Response:
        now = self.now(req)
        trace, correlation = uuid_for("trace", str(req.now_ms)), uuid_for("correlation", str(req.now_ms))
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        description = f"AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}"
        body = {
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }
        return self.json(status, body)

    def status(self, store_status: str) -> str | None:
        return self.statuses.get(store_status, "inProgress")  # any other store status: being worked on

    def authorize(self, req: Request) -> Response | None:
        if req.kind == "token":
            return None  # the token endpoint checks the client credentials in the form itself
        scheme, _, token = (req.header("Authorization") or "").strip().partition(" ")
        if not token or scheme.lower() != "bearer":
            return self.error(401, "Access token is empty.")
        with self.hub.lock:
            expires_ms = self._tokens.get(token.strip())
        if expires_ms is None:
            return self.error(401, "Access token validation failure. Invalid audience.")
        if req.now_ms >= expires_ms:
            return self.error(401, "Access token has expired or is not yet valid.")
        return None

    # -- errors ---------------------------------------------------------------------------------------

    def _error_body(self, code: str, message: str, req_ms: int | None = None) -> dict[str, Any]:
        request_id = uuid_for("request", secrets.token_hex(8))
        inner = {"request-id": request_id, "client-request-id": request_id}
        if req_ms is not None:
            inner["date"] = from_ms(req_ms).strftime("%Y-%m-%dT%H:%M:%S")
        return {"error": {"code": code, "message": message, "innerError": inner}}

    def error(self, status: int, message: str) -> Response:
        return self.json(status, self._error_body(_ERROR_CODES.get(status, "UnknownError"), message))

    def rate_limited(self, req: Request, form: str, value: int) -> Response:
        body = self._error_body(
            "TooManyRequests", "Too many requests from Identifier. Please try again later.", req.now_ms
        )
        return self.json(429, body, retry_after(form, value, self.now(req)))

    # -- the alert --------------------------------------------------------------------------------------

    def item_id(self, event: StoredEvent) -> str:
        first = number_for("graph-id", event.id, 10**18)
        second = number_for("graph-id-2", event.id, 2**32) - 2**31
        return f"da{first:018d}_{second}"

    def ticks(self, event: StoredEvent) -> int:
        """createdDateTime in 100 ns ticks: the stored millisecond plus sub-millisecond digits derived from the id."""
        ticks = event.created_ms * 10_000 + number_for("graph-fraction", event.id, 10_000)
        keep = 10 ** (7 - self.options.fraction_digits)
        return ticks - ticks % keep

    @staticmethod
    def format_ticks(ticks: int) -> str:
        """``2026-11-26T06:00:00.1234567Z`` with trailing zeros (and a bare dot) dropped, as Graph writes it."""
        seconds, fraction = divmod(ticks, TICKS)
        text = from_ms(seconds * 1000).strftime("%Y-%m-%dT%H:%M:%S")
        digits = f"{fraction:07d}".rstrip("0")
        return f"{text}.{digits}Z" if digits else f"{text}Z"

    def item(self, event: StoredEvent, now_ms: int) -> dict[str, Any]:
        alert_id = self.item_id(event)
        tenant = self.tenant_id
        body = event.body
        category, service, detection = _CATEGORY.get(
            str(body.get("type")), ("SuspiciousActivity", "microsoft365Defender", "microsoft365Defender")
        )
        created = self.format_ticks(self.ticks(event))
        history = [(t, s) for t, s in event.history if t <= now_ms]
        status = self.status(history[-1][1]) if history else "new"
        last_change = history[-1][0] if history else event.created_ms
        incident_id = str(10_000 + number_for("graph-incident", event.id, 90_000))
        mitre = body.get("mitre")
        techniques = mitre.get("techniques") if isinstance(mitre, dict) else None
        if not isinstance(techniques, list):
            techniques = []
        item: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.security.alert",
            "id": alert_id,
            "providerAlertId": alert_id,
            "incidentId": incident_id,
            "status": status,
            "severity": self.item_severity(event),
            "classification": "unknown",
            "determination": "unknown",
            "serviceSource": service,
            "detectionSource": detection,
            "detectorId": uuid_for("graph-detector", str(body.get("type"))),
            "tenantId": tenant,
        }
        if "name" in body:
            item["title"] = body["name"]
        item.update(
            {
                "description": description_of(event),
                "recommendedActions": "Review the evidence and contain the affected entities.",
                "category": category,
                "assignedTo": None,
                "alertWebUrl": f"https://security.microsoft.com/alerts/{alert_id}?tid={tenant}",
                "incidentWebUrl": f"https://security.microsoft.com/incidents/{incident_id}?tid={tenant}",
                "actorDisplayName": None,
                "threatDisplayName": None,
                "threatFamilyName": None,
                "mitreTechniques": [t for t in techniques or [] if isinstance(t, str)],
                "createdDateTime": created,
                "lastUpdateDateTime": self.format_ticks(last_change * 10_000),
                "resolvedDateTime": self.format_ticks(last_change * 10_000) if status == "resolved" else None,
                "firstActivityDateTime": self.format_ticks(event.created_ms * 10_000),
                "lastActivityDateTime": self.format_ticks(event.created_ms * 10_000),
                "comments": [],
                "evidence": self._evidence(event, created),
                "systemTags": [],
            }
        )
        return item

    def _evidence(self, event: StoredEvent, created: str) -> list[dict[str, Any]]:
        host, ip = source_of(event)
        user = user_of(event)
        common = {"createdDateTime": created, "verdict": "suspicious", "remediationStatus": "none", "tags": []}
        evidence: list[dict[str, Any]] = []
        if host:
            evidence.append(
                {
                    "@odata.type": "#microsoft.graph.security.deviceEvidence",
                    **common,
                    "roles": ["compromised"],
                    "mdeDeviceId": uuid_for("graph-device", host).replace("-", ""),
                    "deviceDnsName": host,
                    "osPlatform": pick("graph-os", host, ["Windows10", "Windows11", "Linux", "macOS"]),
                }
            )
        if ip:
            evidence.append({"@odata.type": "#microsoft.graph.security.ipEvidence", **common, "ipAddress": ip})
        if user:
            account = {
                "accountName": user,
                "domainName": "CORP",
                "userSid": f"S-1-5-21-{number_for('graph-sid', user, 10**9)}",
                "azureAdUserId": uuid_for("graph-aad-user", user),
                "userPrincipalName": f"{user}@corp.example.com",
                "displayName": user,
            }
            evidence.append({"@odata.type": "#microsoft.graph.security.userEvidence", **common, "userAccount": account})
        return evidence

    # -- listing -----------------------------------------------------------------------------------------

    def handle(self, req: Request, fault: Fault | None, record: RequestRecord) -> Response:
        if req.kind == "token":
            return self._token(req)
        try:
            where = self._parse_filter(req.arg("$filter"))
            top = min(self._count_arg(req, "$top", self.options.default_top), self.options.max_top)
            if top == 0:
                raise BadRequest("Invalid value '0' for query option $top: at least 1 is expected.")
            skip = self._count_arg(req, "$skip", 0)
            count = (req.arg("$count") or "false").lower()
            if count not in ("true", "false"):
                raise BadRequest("Invalid value for $count: true or false")
            if self.options.max_skip is not None and skip > self.options.max_skip:
                raise BadRequest(f"$skip is limited to {self.options.max_skip}")
        except BadRequest as exc:
            return self.error(400, str(exc))
        with self.hub.lock:
            now_ms = self.hub.sync()
            lo_ms, hi_ms = where.times.ms_range()
            events = reversed(self.hub.store.events_between(lo_ms, hi_ms))

            def accept(event: StoredEvent) -> bool:
                if event.visible_ms > now_ms or self.ticks(event) not in where.times:
                    return False
                status = self.status(event.status_at(now_ms))
                severity = self.item_severity(event)
                return all(check(status, severity) for check in where.checks)

            found = ordered(
                events,
                accept,
                group=lambda e: e.created_ms,
                key=lambda e: (self.ticks(e), self.item_id(e)),
                need=None if count == "true" else skip + top + 1,
                reverse=True,
            )
            page, shaped = shape_page(found[skip : skip + top], fault)
            items = [self.item(e, now_ms) for e in page]
        more = len(found) > skip + top
        next_skip = skip + (len(page) if shaped == "short_page" else top)
        next_link: str | None = None
        linking = link_fault(fault)
        if linking == "repeat_link":
            next_link = req.link()
        elif linking == "foreign_link" or more or shaped is not None:
            next_link = req.link({"$skip": str(next_skip)}, foreign=linking == "foreign_link")
        if shaped == "short_page" and fault is not None:
            record.fault, record.fault_options = fault.kind, dict(fault.options)
        record.event_ids = [e.id for e in page]
        record.next_cursor = next_link
        body: dict[str, Any] = {"@odata.context": f"{req.base_url}/v1.0/$metadata#security/alerts_v2"}
        if count == "true":
            body["@odata.count"] = len(found)
        if next_link is not None:
            body["@odata.nextLink"] = next_link
        body["value"] = items
        return self.json(200, body)

    @staticmethod
    def item_severity(event: StoredEvent) -> str:
        """Graph has no critical: critical is high; a missing severity is unknown, an odd one informational."""
        severity = event.body.get("severity")
        return "unknown" if severity is None else _SEVERITY.get(str(severity), "informational")

    @staticmethod
    def _count_arg(req: Request, name: str, default: int) -> int:
        raw = req.arg(name)
        if raw is None:
            return default
        if not raw.isdigit() or len(raw) > 9:
            raise BadRequest(f"Invalid value '{raw}' for query option {name}: a non-negative integer is expected.")
        return int(raw)

    def _parse_filter(self, text: str | None) -> _Filter:
        where = _Filter(Interval(TICKS), [])
        if not text or not text.strip():
            return where
        for raw in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
            clause = raw.strip()
            while clause.startswith("(") and clause.endswith(")"):
                clause = clause[1:-1].strip()
            match = _CLAUSE.fullmatch(clause)
            if not match:
                raise BadRequest(f"Invalid filter clause: '{raw.strip()}'.")
            prop, op, value = match.group(1), match.group(2).lower(), match.group(3).strip()
            if prop.lower() == "createddatetime":
                self._time_clause(where.times, op, value)
            elif prop.lower() in ("status", "severity"):
                where.checks.append(self._enum_clause(prop.lower(), op, value))
            else:
                raise BadRequest(f"Invalid filter clause: the property '{prop}' is not supported in $filter.")
        return where

    @staticmethod
    def _time_clause(times: Interval, op: str, value: str) -> None:
        instant = parse_instant(value.strip("'"))
        if op == "eq":
            times.ge(instant)
            times.le(instant)
        elif op == "ne":
            raise BadRequest("Invalid filter clause: 'ne' is not supported on createdDateTime.")
        else:
            getattr(times, op)(instant)

    @staticmethod
    def _enum_clause(prop: str, op: str, value: str) -> Callable[[str | None, str], bool]:
        if op not in ("eq", "ne"):
            raise BadRequest(f"Invalid filter clause: the operator '{op}' is not supported on {prop}.")
        if len(value) < 2 or value[0] != "'" or value[-1] != "'":
            raise BadRequest(f"Invalid filter clause: {prop} takes a quoted value such as '{prop} eq 'new''.")
        wanted = value[1:-1]
        members = {m.lower(): m for m in (STATUSES if prop == "status" else SEVERITIES)}
        if wanted.lower() not in members:
            raise BadRequest(f"The value '{wanted}' is not a valid member of the {prop} enumeration.")
        member = members[wanted.lower()]
        if prop == "status":
            return (lambda s, _v: s == member) if op == "eq" else (lambda s, _v: s != member)
        return (lambda _s, v: v == member) if op == "eq" else (lambda _s, v: v != member)
