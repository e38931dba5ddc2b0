"""EventFetcher: turns the items of a REST API into Cortex XSOAR incidents, each exactly once.

A profile (the Event Source, Microsoft Graph security alerts, Okta, ServiceNow, PagerDuty, Jira) or the
instance's own Custom values say how to ask the API for its items and how to read them.

Read top to bottom: constants; profiles and parameters (errors, times, paths, parsing into Settings); the API
client (auth, requests with retries, paging); the pure fetch logic; incident conversion; commands; main().
"""

import json
import os
import re
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import demistomock as demisto
import requests

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

CONTEXT_PREFIX = "EventFetcher.Event"

DEFAULT_FIRST_FETCH = "3 days"
DEFAULT_MAX_FETCH = 50
MAX_FETCH_LIMIT = 200
DEFAULT_LOOK_BACK_MINUTES = 5
MAX_LOOK_BACK_MINUTES = 1440
MAX_WINDOW_MINUTES = 525_600  # a year
MAX_SETTLE_SECONDS = 86_400
MAX_PAGE_SIZE = 10_000
DEFAULT_REQUEST_TIMEOUT = 30
MAX_REQUEST_TIMEOUT = 300
DEFAULT_FETCH_TIME_LIMIT = 50
MAX_FETCH_TIME_LIMIT = 600

LAST_RUN_VERSION = 2
MAX_SEEN_IDS = 20_000  # keeps the last run near or under the server's 1 MB warning
MAX_VIEW_ITEMS = 50_000  # items one run holds to sort a newest-first or unordered window; more: the window shrinks
MAX_SPAN = timedelta(days=366)  # the widest window a source read whole is asked for
MAX_PASSES = 3  # readings of one listing whose offsets may shift, until one holds every id of the one before

MAX_ATTEMPTS = 5  # per request, the first try included
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
DEFAULT_RETRY_AFTER_SECONDS = 5.0  # when a 429 carries no usable Retry-After
MAX_RETRY_AFTER_SECONDS = 60.0
MAX_LISTING_RESTARTS = 3  # after invalid cursors
MAX_SKIPPED_LOGGED = 10  # unusable items named one by one in a run's log; the rest are counted
TOKEN_EARLY_RENEWAL_SECONDS = 60  # an OAuth token is fetched again this long before it expires

EARLIEST_FIRST_FETCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
TIME_UNITS = {"minute": 1, "hour": 60, "day": 1440, "week": 10080}
SEVERITY_LEVELS = {"unknown": 0, "informational": 0.5, "info": 0.5, "low": 1, "medium": 2, "high": 3, "critical": 4,
                   "0": 0, "0.5": 0.5, "1": 1, "2": 2, "3": 3, "4": 4}
FILTER_SEVERITIES = {"low": 1, "medium": 2, "high": 3, "critical": 4}  # the choices of the Severities filter

AUTH_TYPES = ("bearer", "header", "basic", "oauth2", "none")
ORDERS = ("ascending", "descending", "unordered")
PAGINATIONS = ("none", "cursor", "next_url", "link_header", "offset", "page")
NAMED_TIME_FORMATS = ("iso", "iso_seconds", "epoch_seconds", "epoch_millis")
PLACEHOLDERS = ("start", "end", "limit", "status", "severity")

# ---------------------------------------------------------------------------------------------
# Profiles and parameters. A profile is the values of the Connect and Collect parameters for one
# API, as plain data; a parameter the user fills in wins over its profile value, and `Custom` has
# none of its own. Every parameter is parsed and validated once, into Settings.
# ---------------------------------------------------------------------------------------------

CUSTOM = "Custom"
PROFILES: dict[str, dict[str, str]] = {
    "Event Source": {
        "label": "the Event Source",
        "auth_type": "bearer",
        "health_endpoint": "/api/v1/health",
        "endpoint": "/api/v1/events",
        "query": "status={status}&since={start}&limit={limit}&severity={severity}",
        "time_format": "iso",
        "items_path": "events", "id_path": "id", "time_path": "created_time", "name_path": "name",
        "details_path": "description", "severity_path": "severity", "status_path": "status",
        "status": "New",
        "order": "ascending", "pagination": "cursor", "next_path": "next_cursor", "page_param": "cursor",
        "page_size": "500",
    },
    "Microsoft Graph Security alerts": {
        "label": "Microsoft Graph",
        "url": "https://graph.microsoft.com",
        "auth_type": "oauth2", "scope": "https://graph.microsoft.com/.default",
        "endpoint": "/v1.0/security/alerts_v2",
        "query": "$filter=createdDateTime ge {start} and createdDateTime lt {end} and status eq '{status}'"
                 "&$top={limit}",
        "time_format": "iso",
        "items_path": "value", "id_path": "id", "time_path": "createdDateTime", "name_path": "title",
        "details_path": "description", "severity_path": "severity", "status_path": "status",
        "severity_map": "unknownFutureValue=unknown",
        "status": "new",
        "order": "unordered", "pagination": "next_url", "next_path": "[@odata.nextLink]",
        "page_size": "1000",
    },
    "Okta System Log": {
        "label": "Okta",
        "auth_type": "header", "auth_header": "Authorization: SSWS {password}",
        "endpoint": "/api/v1/logs",
        "query": "since={start}&until={end}&sortOrder=ASCENDING&limit={limit}",
        "time_format": "iso",
        "items_path": "", "id_path": "uuid", "time_path": "published", "name_path": "displayMessage",
        "details_path": "eventType", "severity_path": "severity",
        "severity_map": "DEBUG=informational,INFO=low,WARN=medium,ERROR=high",
        "order": "ascending", "pagination": "link_header",
        "page_size": "1000",
    },
    "ServiceNow incidents": {
        "label": "ServiceNow",
        "auth_type": "basic",
        "endpoint": "/api/now/table/incident",
        "query": "sysparm_query=sys_created_on>={start}^sys_created_on<{end}^state={status}"
                 "^ORDERBYsys_created_on^ORDERBYsys_id&sysparm_limit={limit}&sysparm_display_value=false",
        "time_format": "%Y-%m-%d %H:%M:%S", "time_zone": "UTC",
        "items_path": "result", "id_path": "sys_id", "time_path": "sys_created_on",
        "name_path": "short_description", "details_path": "description", "severity_path": "priority",
        "status_path": "state",
        "severity_map": "1=critical,2=high,3=medium,4=low,5=informational",
        "status": "1",
        "order": "ascending", "pagination": "offset", "page_param": "sysparm_offset",
        "page_size": "1000",
    },
    "PagerDuty incidents": {
        "label": "PagerDuty",
        "url": "https://api.pagerduty.com",
        "auth_type": "header",
        "auth_header": "Authorization: Token token={password}\nAccept: application/vnd.pagerduty+json;version=2",
        "endpoint": "/incidents",
        "query": "since={start}&until={end}&time_zone=UTC&statuses[]={status}&sort_by=created_at:asc&limit={limit}",
        "time_format": "iso",
        "items_path": "incidents", "id_path": "id", "time_path": "created_at", "name_path": "title",
        "details_path": "description", "severity_path": "urgency", "status_path": "status",
        "severity_map": "high=high,low=low",
        "status": "triggered",
        "order": "ascending", "pagination": "offset", "page_param": "offset", "more_path": "more",
        "page_size": "100", "window": "43200",
    },
    "Jira issues": {
        "label": "Jira",
        "auth_type": "basic",
        "endpoint": "/rest/api/3/search/jql",
        "query": 'jql=created >= "{start}" AND created < "{end}" AND status = "{status}" ORDER BY created ASC'
                 "&fields=*navigable&maxResults={limit}",
        "time_format": "%Y/%m/%d %H:%M", "time_zone": "UTC",
        "items_path": "issues", "id_path": "id", "time_path": "fields.created", "name_path": "fields.summary",
        "details_path": "fields.description", "severity_path": "fields.priority.name",
        "status_path": "fields.status.name",
        "severity_map": "Highest=critical,High=high,Medium=medium,Low=low,Lowest=informational",
        "status": "To Do",
        "order": "ascending", "pagination": "cursor", "next_path": "nextPageToken", "page_param": "nextPageToken",
        "more_path": "!isLast",
        "page_size": "100", "settle": "60",
    },
    CUSTOM: {"label": "the source"},
}
PROFILE_PARAMETERS = (
    "url", "auth_type", "auth_header", "token_url", "scope", "headers", "endpoint", "query", "time_format",
    "time_zone", "items_path", "id_path", "time_path", "name_path", "details_path", "severity_path", "status_path",
    "severity_map", "status", "order", "pagination", "next_path", "page_param", "more_path", "page_size", "window",
    "settle",
)


class UserError(Exception):
    """A problem the user can fix; its message is one sentence shown as it is."""


class ConfigError(UserError):
    """An instance parameter or command argument is wrong."""


class StateError(UserError):
    """The stored last run cannot be read by this version."""


class SourceError(UserError):
    """The source could not give what was asked."""


class AuthError(SourceError):
    """The credentials were refused: retrying cannot help."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status that refused them, when one did


class InvalidCursor(SourceError):
    """The listing's cursor expired or is unknown: the listing must start again."""


class TimeLimitReached(SourceError):
    """The run's time budget is spent."""


# --- times -----------------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """The engine's own time format: UTC, milliseconds, Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def is_api_time(text: str) -> bool:
    """Exactly the shape `2026-11-26T06:00:00.123Z`: UTC at milliseconds, needing no conversion."""
    return (len(text) == 24 and text[4] == "-" and text[7] == "-" and text[10] == "T" and text[13] == ":"
            and text[16] == ":" and text[19] == "." and text[23] == "Z")


def to_milliseconds(moment: datetime) -> datetime:
    """Cut, never rounded, so that the engine and the API agree on which side of a bound a time lies."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def parse_timestamp(value: Any, zone: tzinfo = UTC, pattern: str = "") -> datetime | None:
    """An item's time as an aware UTC datetime at millisecond precision; None when unreadable.

    ISO 8601 at any precision and offset (no offset: `zone`), epoch seconds or milliseconds (told apart by
    size), or `pattern` (strftime) read in `zone`.
    """
    if type(value) is str and is_api_time(value):  # the common case, read once per item: skip the conversions
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    if type(value) in (int, float):
        return epoch_time(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"\d{9,16}", text):
        return epoch_time(int(text))
    if re.fullmatch(r"\d{9,16}\.\d+", text):
        return epoch_time(float(text))
    try:
        moment = datetime.fromisoformat(text.replace(" +", "+"))
    except ValueError:
        if not pattern:
            return None
        try:
            moment = datetime.strptime(text, pattern)
        except ValueError:
            return None
    try:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return to_milliseconds(moment.astimezone(UTC))
    except (OverflowError, ValueError):
        return None


def epoch_time(number: float) -> datetime | None:
    """Epoch seconds, or milliseconds when the number is too large to be seconds of this era."""
    if number != number or abs(number) >= 1e16:  # NaN, or past any calendar
        return None
    try:
        if abs(number) >= 1e11:
            return to_milliseconds(EARLIEST_FIRST_FETCH + timedelta(milliseconds=number))
        return to_milliseconds(EARLIEST_FIRST_FETCH + timedelta(seconds=number))
    except OverflowError:
        return None


@dataclass(frozen=True)
class TimeFormat:
    """How `{start}` and `{end}` are written in a query, and the precision of what is written."""

    name: str  # iso, iso_seconds, epoch_seconds, epoch_millis, or a strftime pattern
    zone: tzinfo
    unit: timedelta  # the step between two times the format can tell apart

    def write(self, moment: datetime) -> str:
        """The time, cut to the format's precision (so never later than `moment`)."""
        moment = moment.astimezone(UTC)
        if self.name == "iso":
            return format_time(moment)
        if self.name == "iso_seconds":
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.name == "epoch_seconds":
            return str((moment - EARLIEST_FIRST_FETCH) // timedelta(seconds=1))
        if self.name == "epoch_millis":
            return str((moment - EARLIEST_FIRST_FETCH) // MILLISECOND)
        return moment.astimezone(self.zone).strftime(self.name)

    @property
    def pattern(self) -> str:
        return "" if self.name in NAMED_TIME_FORMATS else self.name


def parse_time_format(value: str, zone: tzinfo) -> TimeFormat:
    if value in ("iso", "epoch_millis"):
        return TimeFormat(value, zone, MILLISECOND)
    if value in ("iso_seconds", "epoch_seconds"):
        return TimeFormat(value, zone, timedelta(seconds=1))
    directives = set(re.findall(r"%(.)", value))
    if not directives or not directives <= set("YmdHMSfzZjyIpbBaAe%T"):
        raise ConfigError(f'Time format must be iso, iso_seconds, epoch_seconds, epoch_millis or a strftime pattern '
                          f'such as %Y-%m-%d %H:%M:%S, not "{value}".')
    for letter, unit in (("f", MILLISECOND), ("S", timedelta(seconds=1)), ("T", timedelta(seconds=1)),
                         ("M", timedelta(minutes=1)), ("H", timedelta(hours=1)), ("I", timedelta(hours=1))):
        if letter in directives:
            return TimeFormat(value, zone, unit)
    return TimeFormat(value, zone, timedelta(days=1))


def parse_zone(value: str) -> tzinfo:
    if not value or value.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f'Time zone must be an IANA time zone such as UTC or Asia/Kolkata, not "{value}".') from None


def is_ascii_number(text: str) -> bool:
    """Plain digits 0-9 only: str.isdigit() also accepts characters int() refuses, such as superscripts."""
    return text.isascii() and text.isdigit()


def parse_time_expression(value: Any, now: datetime, what: str) -> datetime:
    """`<n> <minutes|hours|days|weeks> [ago]`, an ISO 8601 date or date-time, or epoch seconds."""
    text = str(value if value is not None else "").strip()
    expected = f'{what} must be like "3 days", "12 hours", an ISO 8601 date or epoch seconds, not "{text}".'
    if not text:
        raise ConfigError(f"{what} is empty; use a value like \"3 days\" or \"2026-11-01T00:00:00Z\".")
    words = text.lower().removesuffix(" ago").split()
    if len(words) == 2 and is_ascii_number(words[0]):
        unit = words[1].removesuffix("s")
        if unit not in TIME_UNITS:
            raise ConfigError(expected)
        try:
            return now - timedelta(minutes=int(words[0]) * TIME_UNITS[unit])
        except (OverflowError, ValueError):  # ValueError: more digits than int() accepts
            raise ConfigError(f"{what} goes back further than a calendar allows: \"{text}\".") from None
    if is_ascii_number(text):
        try:
            return datetime.fromtimestamp(int(text), UTC)
        except (OverflowError, OSError, ValueError):
            raise ConfigError(expected) from None
    moment = parse_timestamp(text) if not re.fullmatch(r"\d+(\.\d+)?", text) else None
    if moment is None:
        raise ConfigError(expected)
    return moment


# --- paths: where a value is in a body or an item ---------------------------------------------


Path = tuple[str, ...]


PATH_PART = r"\[([^\]]+)\]|([^.\[\]]+)"


def parse_path(text: str, what: str) -> Path:
    """`fields.status.name`, `items.0.id` (list indexes as numbers), `[@odata.nextLink]` for a key with dots."""
    text = text.strip()
    if not text:
        return ()
    if not re.fullmatch(rf"(?:{PATH_PART})(?:\.(?:{PATH_PART}))*", text):
        raise ConfigError(f'{what} must be dot-separated keys such as fields.status.name, not "{text}".')
    return tuple(bracketed or plain for bracketed, plain in re.findall(PATH_PART, text))


def read_path(value: Any, path: Path) -> Any:
    """The value at `path`, or None where it leads nowhere."""
    for part in path:
        if type(value) is dict:
            value = value.get(part)
        elif type(value) is list and is_ascii_number(part) and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def show_path(path: Path) -> str:
    return ".".join(f"[{part}]" if "." in part else part for part in path) or "(the body itself)"


# --- parameters ------------------------------------------------------------------------------


def parse_int(value: Any, what: str, low: int, high: int, default: int | None = None) -> int:
    """A whole number within bounds; blank takes the default where there is one."""
    text = str(value).strip() if value is not None else ""
    bounds = f"{what} must be a whole number from {low} to {high}"
    if not text:
        if default is None:
            raise ConfigError(f"{bounds}; it is empty.")
        return default
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(f'{bounds}, not "{text}".') from None
    if not low <= number <= high:
        raise ConfigError(f"{bounds}, not {number}.")
    return number


def parse_bool(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "yes", "1")


def parse_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value.lower() not in choices:
        raise ConfigError(f'{what} must be one of {", ".join(choices)}, not "{value}".')
    return value.lower()


def parse_severities(value: Any, what: str) -> frozenset[float]:
    """The Severities filter as incident levels; all four (or none) means no filter."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    chosen = {str(item).strip().lower() for item in items if str(item).strip()}
    unknown = sorted(chosen - set(FILTER_SEVERITIES))
    if unknown:
        raise ConfigError(f'{what} has an unknown value "{unknown[0]}"; choose from {", ".join(FILTER_SEVERITIES)}.')
    if chosen == set(FILTER_SEVERITIES):
        return frozenset()
    return frozenset(FILTER_SEVERITIES[name] for name in chosen)


def parse_severity_level(text: str) -> float | None:
    return SEVERITY_LEVELS.get(text.strip().lower())


def parse_severity_map(value: str) -> dict[str, float]:
    """`value=level` pairs, comma separated; values are matched ignoring case."""
    mapping: dict[str, float] = {}
    for pair in value.split(","):
        if not pair.strip():
            continue
        source_value, equals, level_text = pair.partition("=")
        level = parse_severity_level(level_text)
        if not equals or not source_value.strip() or level is None:
            raise ConfigError(f'Severity map must be value=level pairs separated by commas, with levels 0, 0.5, 1 '
                              f'to 4 or unknown, informational, low, medium, high, critical; "{pair.strip()}" is not.')
        mapping[source_value.strip().lower()] = level
    return mapping


def parse_header_lines(value: str, what: str) -> tuple[tuple[str, str], ...]:
    """One `Name: value` per line."""
    headers = []
    for line in value.splitlines():
        if not line.strip():
            continue
        name, colon, header_value = line.partition(":")
        if not colon or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name.strip()) or not header_value.strip():
            raise ConfigError(f'{what} must hold one "Name: value" per line; line {len(headers) + 1} is not.')
        headers.append((name.strip(), header_value.strip()))
    return tuple(headers)


@dataclass(frozen=True)
class QueryTemplate:
    """The query string as pairs; each value may hold placeholders, URL-encoded after substitution."""

    pairs: tuple[tuple[str, str], ...]

    def render(self, values: dict[str, str]) -> list[tuple[str, str]]:
        """A pair whose value is a lone placeholder with nothing to put in it is left out."""
        rendered = []
        for key, template in self.pairs:
            if re.fullmatch(r"\{\w+\}", template) and not values.get(template[1:-1]):
                continue
            rendered.append((key, re.sub(r"\{(\w+)\}", lambda match: values.get(match.group(1), ""), template)))
        return rendered


def parse_query(value: str) -> QueryTemplate:
    pairs = []
    for part in value.strip().lstrip("?").split("&"):
        if not part:
            continue
        key, _, template = part.partition("=")
        for name in re.findall(r"\{([^{}]*)\}", key + "=" + template):
            if name not in PLACEHOLDERS:
                raise ConfigError(f'Query has an unknown placeholder {{{name}}}; use {{start}}, {{end}}, {{limit}}, '
                                  f'{{status}} or {{severity}}.')
        if re.search(r"\{[^{}]*$|^[^{}]*\}", template) or not key:
            raise ConfigError(f'Query must be key=value pairs joined by &; "{part}" is not.')
        pairs.append((key, template))
    return QueryTemplate(tuple(pairs))


def parse_url(value: Any, what: str = "Server URL") -> str:
    url = str(value or "").strip().rstrip("/")
    if not url:
        raise ConfigError(f"{what} is missing; enter the API's address, e.g. https://events.example.com.")
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
        raise ConfigError(f'{what} must start with https:// or http:// and name a host, not "{url}".')
    if "@" in rest.split("/", 1)[0]:  # said without the URL, which holds a password
        raise ConfigError(f"{what} must not hold a user name or password; put them in the Credentials field.")
    return url


@dataclass(frozen=True)
class Auth:
    """How each request proves who is asking."""

    kind: str  # one of AUTH_TYPES
    identifier: str = field(repr=False)
    password: str = field(repr=False)
    header_lines: tuple[tuple[str, str], ...] = field(repr=False)  # templates, for `header`
    token_url: str = ""
    scope: str = ""


@dataclass(frozen=True)
class Source:
    """How to ask the API for its items, and how to read them."""

    profile: str
    label: str  # how messages name the API inside a sentence, e.g. "Okta" or "the Event Source"

    @property
    def subject(self) -> str:
        """The label at the start of a sentence."""
        return self.label[0].upper() + self.label[1:]
    health_endpoint: str
    endpoint: str
    headers: tuple[tuple[str, str], ...]
    query: QueryTemplate
    time_format: TimeFormat
    items_path: Path
    id_path: Path
    time_path: Path
    name_path: Path
    details_path: Path
    severity_path: Path
    status_path: Path
    severity_map: dict[str, float]
    status: str
    order: str
    pagination: str
    next_path: Path
    page_param: str
    more_path: Path
    more_negated: bool
    page_size: int
    window: timedelta | None  # the longest span one listing asks for; None: no cap
    settle: timedelta  # a listing ends this long before now


@dataclass(frozen=True)
class Settings:
    """The instance parameters with the profile's values, parsed and validated once."""

    base_url: str
    auth: Auth
    source: Source
    verify_tls: bool
    use_proxy: bool
    is_fetch: bool
    first_fetch: datetime
    max_fetch: int
    look_back: timedelta
    severities: frozenset[float]  # incident levels to fetch; empty: any severity
    request_timeout: float
    fetch_time_limit: float


def resolve_profile(params: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The profile's values with every parameter the user filled in put over them."""
    profile = str(params.get("source") or "Event Source").strip()
    if profile not in PROFILES:
        raise ConfigError(f'Source must be one of {", ".join(PROFILES)}, not "{profile}".')
    values = dict(PROFILES[profile])
    for name in PROFILE_PARAMETERS:
        given = params.get(name)
        if given is not None and str(given).strip():
            values[name] = str(given)
    return profile, values


def parse_auth(values: dict[str, str], credentials: Any) -> Auth:
    kind = parse_choice(values.get("auth_type", "").strip() or "bearer", AUTH_TYPES, "Authentication type")
    credentials = credentials if isinstance(credentials, dict) else {}
    identifier = str(credentials.get("identifier") or "").strip()
    password = str(credentials.get("password") or "").strip()
    if kind in ("bearer", "header") and (" " in password or not password.isprintable()):
        raise ConfigError("API Key contains spaces or control characters; paste the key alone.")
    if not (identifier + password).isprintable():
        raise ConfigError("Credentials contain control characters; paste the user name and password alone.")
    needs = {"bearer": (password,), "header": (password,), "basic": (identifier, password),
             "oauth2": (identifier, password), "none": ()}[kind]
    if not all(needs):
        what = {"bearer": "API Key is missing; enter the API key in the Credentials password field.",
                "header": "API Key is missing; enter the API key in the Credentials password field.",
                "basic": "Credentials are incomplete; basic authentication needs a user name and a password.",
                "oauth2": "Credentials are incomplete; OAuth 2.0 needs the client ID as user name and the client "
                          "secret as password."}[kind]
        raise ConfigError(what)
    header_lines = parse_header_lines(values.get("auth_header", ""), "Authentication header")
    if kind == "header" and not header_lines:
        raise ConfigError('Authentication header is missing; enter a line such as "Authorization: SSWS {password}".')
    for _, template in header_lines:
        unknown = set(re.findall(r"\{([^{}]*)\}", template)) - {"password", "identifier"}
        if unknown:
            raise ConfigError(f"Authentication header has an unknown placeholder {{{sorted(unknown)[0]}}}; use "
                              "{password} or {identifier}.")
    token_url = ""
    if kind == "oauth2":
        token_url = parse_url(values.get("token_url"), "Token URL")
    return Auth(kind, identifier, password, header_lines, token_url, values.get("scope", "").strip())


def parse_source(profile: str, values: dict[str, str]) -> Source:
    def text(name: str) -> str:
        return values.get(name, "").strip()

    for name, what in (("endpoint", "Endpoint"), ("id_path", "ID path"), ("time_path", "Time path")):
        if not text(name):
            raise ConfigError(f"{what} is missing; the {profile} source needs it ({name}).")
    pagination = parse_choice(text("pagination") or "none", PAGINATIONS, "Pagination")
    if pagination in ("cursor", "next_url") and not text("next_path"):
        raise ConfigError(f"Next path is missing; {pagination} pagination reads the next page from it (next_path).")
    if pagination in ("cursor", "offset", "page") and not text("page_param"):
        raise ConfigError(f"Page parameter is missing; {pagination} pagination sends it in the query (page_param).")
    zone = parse_zone(text("time_zone"))
    more = text("more_path")
    window = parse_int(values.get("window"), "Window (minutes)", 0, MAX_WINDOW_MINUTES, 0)
    endpoint = text("endpoint")
    return Source(
        profile=profile,
        label=text("label") or "the source",
        health_endpoint=text("health_endpoint"),
        endpoint=endpoint if urlsplit(endpoint).scheme else "/" + endpoint.lstrip("/"),
        headers=parse_header_lines(values.get("headers", ""), "Headers"),
        query=parse_query(values.get("query", "")),
        time_format=parse_time_format(text("time_format") or "iso", zone),
        items_path=parse_path(text("items_path"), "Items path"),
        id_path=parse_path(text("id_path"), "ID path"),
        time_path=parse_path(text("time_path"), "Time path"),
        name_path=parse_path(text("name_path"), "Name path"),
        details_path=parse_path(text("details_path"), "Details path"),
        severity_path=parse_path(text("severity_path"), "Severity path"),
        status_path=parse_path(text("status_path"), "Status path"),
        severity_map=parse_severity_map(values.get("severity_map", "")),
        status=text("status"),
        order=parse_choice(text("order") or "ascending", ORDERS, "Order"),
        pagination=pagination,
        next_path=parse_path(text("next_path"), "Next path"),
        page_param=text("page_param"),
        more_path=parse_path(more.removeprefix("!"), "More path"),
        more_negated=more.startswith("!"),
        page_size=parse_int(values.get("page_size"), "Page size", 1, MAX_PAGE_SIZE, 100),
        window=timedelta(minutes=window) if window else None,
        settle=timedelta(seconds=parse_int(values.get("settle"), "Settle (seconds)", 0, MAX_SETTLE_SECONDS, 0)),
    )


def parse_settings(params: dict[str, Any], now: datetime) -> Settings:
    """Validates every instance parameter; the first problem found is raised as one sentence."""
    profile, values = resolve_profile(params)
    source = parse_source(profile, values)
    auth = parse_auth(values, params.get("credentials"))
    base_url = parse_url(values.get("url"))
    if profile == "Event Source":
        base_url = base_url.removesuffix("/api/v1")  # the address of the API's root is accepted too
    first_fetch = parse_time_expression(params.get("first_fetch") or DEFAULT_FIRST_FETCH, now, "First fetch time")
    if first_fetch > now:
        raise ConfigError(f"First fetch time {format_time(first_fetch)} is in the future; choose a past time.")
    if first_fetch < EARLIEST_FIRST_FETCH:
        raise ConfigError(f"First fetch time {format_time(first_fetch)} is before 1970; choose a later time.")
    look_back = timedelta(minutes=parse_int(params.get("look_back"), "Look-back (minutes)", 0, MAX_LOOK_BACK_MINUTES,
                                            DEFAULT_LOOK_BACK_MINUTES))
    if source.window is not None and source.window <= look_back:
        raise ConfigError("Window (minutes) must be longer than the look-back, or 0 for no cap; a listing re-reads "
                          "the look-back and must reach past it.")
    return Settings(
        base_url=base_url,
        auth=auth,
        source=source,
        verify_tls=not parse_bool(params.get("insecure")),
        use_proxy=parse_bool(params.get("proxy")),
        is_fetch=parse_bool(params.get("isFetch")),
        first_fetch=first_fetch,
        max_fetch=parse_int(DEFAULT_MAX_FETCH if params.get("max_fetch") is None else params["max_fetch"],
                            "Maximum number of incidents per fetch", 1, MAX_FETCH_LIMIT),
        look_back=look_back,
        severities=parse_severities(params.get("severity"), "Severities to fetch"),
        request_timeout=parse_int(params.get("request_timeout"), "Request timeout (seconds)", 1,
                                  MAX_REQUEST_TIMEOUT, DEFAULT_REQUEST_TIMEOUT),
        fetch_time_limit=parse_int(params.get("fetch_time_limit"), "Fetch time limit (seconds)", 10,
                                   MAX_FETCH_TIME_LIMIT, DEFAULT_FETCH_TIME_LIMIT),
    )


# ---------------------------------------------------------------------------------------------
# The API client: auth, requests with retries, and paging
# ---------------------------------------------------------------------------------------------


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """Retry-After as seconds to wait, from either of its forms; None when missing or unreadable."""
    text = (header or "").strip()
    if is_ascii_number(text):
        return float(text)
    when = http_date(text)
    return None if when is None else max(0.0, (when - now).total_seconds())


def http_date(header: str | None) -> datetime | None:
    """An HTTP date (`Thu, 26 Nov 2026 06:00:30 GMT`) as an aware UTC datetime; None when missing or unreadable."""
    try:
        when = parsedate_to_datetime(header or "")
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def rate_limit_wait(headers: Any, now: datetime) -> float | None:
    """How long a 429 asks to wait: Retry-After, a reset time in epoch seconds (Okta's X-Rate-Limit-Reset,
    ServiceNow's X-RateLimit-Reset), or the seconds left until the limit resets (PagerDuty's ratelimit-reset)."""
    told = retry_after_seconds(headers.get("Retry-After"), now)
    reset = str(headers.get("X-Rate-Limit-Reset") or headers.get("X-RateLimit-Reset") or "").strip()
    if told is None and is_ascii_number(reset) and len(reset) < 12:
        told = max(0.0, int(reset) - now.timestamp())
    seconds_left = str(headers.get("RateLimit-Reset") or "").strip()
    if told is None and is_ascii_number(seconds_left) and len(seconds_left) < 12:
        told = float(seconds_left)
    return told


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(response: requests.Response) -> Any:
    """The body as strict JSON: NaN and Infinity are refused, as is nesting too deep to handle."""
    try:
        return json.loads(response.content, parse_constant=reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def error_message_of(response: requests.Response) -> str:
    """The API's own error text, kept short: `error` (text or `{message}`), `errorSummary`, `errorMessages`."""
    try:
        body = parse_json(response)
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    message = body.get("error_description") or body.get("error") or body.get("errorSummary") \
        or body.get("errorMessages") or body.get("message")
    if isinstance(message, dict):
        message = message.get("message") or message.get("code")
    if isinstance(message, list):
        message = "; ".join(str(part) for part in message)
    return " ".join(str(message).split())[:200] if message else ""


def is_html(response: requests.Response) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower()


def same_origin(url: str, other: str) -> bool:
    first, second = urlsplit(url), urlsplit(other)
    return (first.scheme.lower(), first.netloc.lower()) == (second.scheme.lower(), second.netloc.lower())


@dataclass(frozen=True)
class Transient:
    """A fault worth retrying: what went wrong, and how long the server asked to wait, if it did."""

    problem: str
    asked_wait: float | None = None


@dataclass(frozen=True)
class Answer:
    body: Any
    next_link: str | None  # the Link header's rel="next"


@dataclass(frozen=True)
class Page:
    items: list[Any]
    last: bool  # no page follows
    cut_short: bool = False  # the listing ended though the API linked onwards, so it is not known to be whole


Query = list[tuple[str, str]]


class SourceClient:
    """HTTP access to the source: auth, retries, rate limits, the run's time budget and paging."""

    def __init__(
        self,
        settings: Settings,
        *,
        time_limit: float | None = None,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.base_url = settings.base_url
        self.auth = settings.auth
        self.source = settings.source
        self.label = settings.source.label
        self.subject = settings.source.subject
        self.request_timeout = settings.request_timeout
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json"})
        self.session.headers.update(dict(self.source.headers))
        self.session.headers.update(self._auth_headers())
        if self.auth.kind == "basic":
            self.session.auth = (self.auth.identifier, self.auth.password)
        self.session.verify = settings.verify_tls
        if not settings.verify_tls:  # the user chose this; a warning on every request adds nothing
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
        # without "Use system proxy settings" the environment's proxies are ignored
        self.session.trust_env = settings.use_proxy
        if settings.verify_tls and not settings.use_proxy and os.environ.get("REQUESTS_CA_BUNDLE"):
            self.session.verify = os.environ["REQUESTS_CA_BUNDLE"]
        self.sleep = sleep or time.sleep
        self.monotonic = monotonic or time.monotonic
        self.time_limit = settings.fetch_time_limit if time_limit is None else time_limit
        self.deadline = self.monotonic() + self.time_limit
        self.pages = 0
        self.retries = 0
        self.tokens_fetched = 0
        self.source_now: datetime | None = None  # the API's clock, from the Date header of its first answer

    # --- auth ---

    def _auth_headers(self) -> dict[str, str]:
        if self.auth.kind == "bearer":
            return {"Authorization": f"Bearer {self.auth.password}"}
        if self.auth.kind == "header":
            return {name: value.replace("{password}", self.auth.password).replace("{identifier}", self.auth.identifier)
                    for name, value in self.auth.header_lines}
        return {}

    def _token_key(self) -> str:
        """Which client and endpoint a cached token belongs to (no secret in it)."""
        return f"{self.auth.token_url} {self.auth.identifier} {self.auth.scope}"

    def _use_token(self, renew: bool = False) -> None:
        """An OAuth 2.0 access token in the Authorization header: the cached one while it lasts, else a new one."""
        cached = demisto.getIntegrationContext() or {}
        token = cached.get("oauth") if isinstance(cached.get("oauth"), dict) else {}
        if renew or token.get("for") != self._token_key() or not isinstance(token.get("access_token"), str) \
                or float(token.get("expires_at") or 0) - TOKEN_EARLY_RENEWAL_SECONDS <= time.time():
            token = self._fetch_token()
            demisto.setIntegrationContext({**cached, "oauth": token})
        self.session.headers["Authorization"] = f"Bearer {token['access_token']}"

    def _fetch_token(self) -> dict[str, Any]:
        form = {"grant_type": "client_credentials", "client_id": self.auth.identifier,
                "client_secret": self.auth.password}
        if self.auth.scope:
            form["scope"] = self.auth.scope
        body = self._request("POST", self.auth.token_url, None, form, what="the token endpoint")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token or not token.isprintable():
            raise AuthError("The token endpoint answered without an access_token; check the Token URL.")
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if type(expires_in) in (int, float) or (
            isinstance(expires_in, str) and is_ascii_number(expires_in)) else 3600.0
        self.tokens_fetched += 1
        return {"for": self._token_key(), "access_token": token, "expires_at": time.time() + lifetime}

    # --- requests ---

    def get(self, url: str, query: Query | None) -> Answer:
        """A GET with the auth; an OAuth token refused once is fetched again once."""
        if self.auth.kind != "oauth2":
            return self._request("GET", url, query)
        if "Authorization" not in self.session.headers:
            self._use_token()
        try:
            return self._request("GET", url, query)
        except AuthError as refused:
            if refused.status != 401:
                raise
            self._use_token(renew=True)
            return self._request("GET", url, query)

    def _request(self, method: str, url: str, query: Query | None, form: dict[str, str] | None = None,
                 what: str = "") -> Any:
        """The parsed answer, after retrying transient faults within the attempts and the time budget."""
        what = what or self.label
        for attempt in range(1, MAX_ATTEMPTS + 1):
            remaining = self.deadline - self.monotonic()
            if remaining <= 0:
                raise TimeLimitReached(f"The fetch time limit of {self.time_limit:g} seconds was reached.")
            outcome = self._try_once(method, url, query, form, what, timeout=min(self.request_timeout, remaining))
            if not isinstance(outcome, Transient):
                return outcome
            if attempt == MAX_ATTEMPTS:
                break
            backoff = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
            wait = backoff if outcome.asked_wait is None else min(MAX_RETRY_AFTER_SECONDS, outcome.asked_wait)
            if wait >= self.deadline - self.monotonic():
                raise TimeLimitReached(f"{outcome.problem}, and waiting {wait:g} s to retry would pass the fetch "
                                       f"time limit of {self.time_limit:g} seconds.")
            self.retries += 1
            demisto.debug(f"{outcome.problem}; retry {attempt} of {MAX_ATTEMPTS - 1} in {wait:g} s")
            self.sleep(wait)
        raise SourceError(f"{outcome.problem}, still after {MAX_ATTEMPTS} attempts.")

    def _try_once(self, method: str, url: str, query: Query | None, form: dict[str, str] | None, what: str,
                  timeout: float) -> Any:
        """One request: the answer, a Transient fault worth retrying, or an error that retrying cannot fix."""
        host = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
        subject = what[0].upper() + what[1:]
        try:
            response = self.session.request(method, url, params=query, data=form, timeout=timeout,
                                            allow_redirects=False)
        except requests.exceptions.SSLError:
            raise SourceError(f"The TLS certificate of {host} could not be verified; fix the certificate or tick "
                              "\"Trust any certificate\".") from None
        except requests.exceptions.Timeout:
            return Transient(f"{subject} at {host} did not answer within {timeout:g} seconds")
        except requests.exceptions.RequestException:
            return Transient(f"Could not connect to {what} at {host}")
        code = response.status_code
        if code == 200:
            if is_html(response):
                raise SourceError(f"{host} answered with a web page, not the API; check the Server URL and the "
                                  "Endpoint.")
            try:
                body = parse_json(response)
            except ValueError:
                return Transient(f"{subject} answered with malformed JSON")
            if form is not None:
                return body
            if self.source_now is None:
                self.source_now = http_date(response.headers.get("Date"))
            return Answer(body, response.links.get("next", {}).get("url"))
        if form is not None and code in (400, 401, 403):
            detail = error_message_of(response)
            raise AuthError(f"The token endpoint refused the client (HTTP {code}{': ' + detail if detail else ''}); "
                            "check the client ID and secret in Credentials, the Token URL and the Scope.")
        if code in (401, 403):
            raise AuthError(f"{subject} refused the {self._credential_name()} (HTTP {code}); check the Credentials "
                            f"parameter{' and the access it grants' if code == 403 else ''}.", code)
        if code == 400 and error_message_of(response) == "invalid cursor":
            raise InvalidCursor(f"{subject} no longer accepts the listing's cursor.")
        if code == 429 or code >= 500:
            told = rate_limit_wait(response.headers, datetime.now(UTC))
            if code == 429:
                return Transient(f"{subject} is rate limiting requests (HTTP 429)",
                                 DEFAULT_RETRY_AFTER_SECONDS if told is None else told)
            return Transient(f"{subject} had a server error (HTTP {code})", told)
        if 300 <= code < 400:
            raise SourceError(f"{host} redirects elsewhere; set the Server URL to the API's own address (redirects "
                              "are not followed, so that the credentials go nowhere else).")
        if code == 404 or is_html(response):
            raise SourceError(f"{host} does not serve the API at {urlsplit(url).path} (HTTP {code}); check the "
                              "Server URL and the Endpoint.")
        detail = error_message_of(response)
        raise SourceError(f"{subject} rejected the request (HTTP {code}){': ' + detail if detail else ''}.")

    def _credential_name(self) -> str:
        return {"basic": "user name and password", "oauth2": "access token"}.get(self.auth.kind, "API key")

    # --- endpoints and paging ---

    def health(self) -> None:
        body = self.get(self.base_url + self.source.health_endpoint, None).body
        if not isinstance(body, dict) or body.get("status") != "ok":
            raise SourceError(f"{self.subject} health check did not answer status ok.")

    def list_pages(self, values: dict[str, str]) -> Iterator[Page]:
        """The listing of the query with these placeholder values, page by page, in the API's order."""
        source = self.source
        url = source.endpoint if urlsplit(source.endpoint).scheme else self.base_url + source.endpoint
        query = source.query.render(values)
        first: Query = [*query, (source.page_param, "1")] if source.pagination == "page" else query
        request: tuple[str, Query | None] = (url, first)
        items_before, pages_before, restarts = 0, 0, 0  # what the pages before this one held
        followed: set[str] = set()
        while True:
            try:
                answer = self.get(*request)
            except InvalidCursor:
                if request[1] is first or restarts >= MAX_LISTING_RESTARTS:
                    raise
                restarts += 1  # start the listing again: what was already handled is skipped as seen
                request, items_before, pages_before = (url, first), 0, 0
                continue
            items = self.items_of(answer.body)
            self.pages += 1
            link, cut_short = self._next_link(answer, items, request[0])
            if link in followed:  # the API repeats itself: the listing ends instead of looping
                demisto.debug(f"{self.subject} repeated a page link or cursor; the listing ends there.")
                link, cut_short = None, True
            yield Page(items, last=link is None, cut_short=cut_short)
            if link is None:
                return
            followed.add(link)
            items_before += len(items)
            pages_before += 1
            if source.pagination == "cursor":
                request = (url, [*query, (source.page_param, link)])
            elif source.pagination == "offset":
                request = (url, [*query, (source.page_param, str(items_before))])
            elif source.pagination == "page":
                request = (url, [*query, (source.page_param, str(pages_before + 1))])
            else:
                request = (link, None)

    def _next_link(self, answer: Answer, items: list[Any], url: str) -> tuple[str | None, bool]:
        """What leads to the next page (a cursor or URL, or for offset and page paging the page's place), and
        whether the listing is cut short: it ends though the API linked onwards (an empty page that links on, a
        link to another host), so it is not known to be whole. A link to another host is never followed, so that
        no credential goes there."""
        source = self.source
        if source.pagination == "none":
            return None, False
        more = read_path(answer.body, source.more_path) if source.more_path else None
        if isinstance(more, bool) and more == source.more_negated:
            return None, False
        claims_more = isinstance(more, bool)
        if source.pagination == "cursor":
            cursor = read_path(answer.body, source.next_path)
            if cursor is None or cursor == "":
                return None, claims_more
            if type(cursor) is not str and type(cursor) is not int:
                raise SourceError(f"{self.subject} answered with a {type(cursor).__name__} at "
                                  f"{show_path(source.next_path)} (Next path), not a cursor.")
            return str(cursor), False
        if source.pagination in ("offset", "page"):  # only an empty page (or `more` false) ends the listing
            return (f"page {self.pages}", False) if items else (None, claims_more)
        link = answer.next_link if source.pagination == "link_header" else read_path(answer.body, source.next_path)
        if not isinstance(link, str) or not link:
            return None, claims_more
        if not items:  # an empty page that still links on (Okta polls so) ends the listing
            return None, True
        link = urljoin(url, link)
        if not same_origin(link, self.base_url):
            demisto.info(f"{self.subject} linked the next page to another host ({urlsplit(link).netloc}); it is not "
                         "followed, and the listing ends here.")
            return None, True
        return link, False

    def items_of(self, body: Any) -> list[Any]:
        """The list of items at items_path; a body without one is an error naming what is there."""
        items = read_path(body, self.source.items_path)
        if isinstance(items, list):
            return items
        where = show_path(self.source.items_path)
        holder = read_path(body, self.source.items_path[:-1]) if self.source.items_path else body
        keys = f"; the keys there are {', '.join(sorted(map(str, holder))[:12])}" if isinstance(holder, dict) \
            else f"; the answer is a {type(body).__name__}"
        raise SourceError(f"{self.subject} answered with no list of items at {where} (Items path){keys}.")


# ---------------------------------------------------------------------------------------------
# The pure fetch logic: last run + pages of items + the clock -> new items + next last run
# ---------------------------------------------------------------------------------------------


class Position(NamedTuple):
    """A place in time order: by time, then by id (a tuple, so cheap to build and compare)."""

    created: datetime
    item_id: str


class Item(NamedTuple):
    position: Position
    raw: dict[str, Any]
    severity: float  # the incident severity, through the severity map


def usable_id(value: Any) -> str | None:
    """The id as text: a non-empty string, or a whole number (never a boolean)."""
    if type(value) is str:  # exact type checks: bool is an int, and this runs once per item
        return value or None
    return str(value) if type(value) is int else None


def item_severity(value: Any, severity_map: dict[str, float]) -> float:
    """The incident severity of an item's severity value: through the map, else read as a level name or number."""
    if value is None or isinstance(value, dict | list):
        return 0
    text = str(value).strip().lower()
    if text in severity_map:
        return severity_map[text]
    return SEVERITY_LEVELS.get(text, 0)


@dataclass(frozen=True)
class ItemReader:
    """Reads an item's id, time, status and severity, and says whether the filters want it."""

    source: Source
    severities: frozenset[float]  # empty: any

    def read(self, raw: Any) -> Item | str | None:
        """The item; a description of why it is unusable; or None when the status or severity filter drops it."""
        source = self.source
        if type(raw) is not dict:
            return f"a {type(raw).__name__} instead of an item object"
        item_id = usable_id(raw.get(source.id_path[0]) if len(source.id_path) == 1 else read_path(raw, source.id_path))
        if item_id is None:
            return f"an item without an id at {show_path(source.id_path)}"
        value = raw.get(source.time_path[0]) if len(source.time_path) == 1 else read_path(raw, source.time_path)
        created = parse_timestamp(value, source.time_format.zone, source.time_format.pattern)
        if created is None:
            return f"item {item_id[:100]} with a missing or malformed time at {show_path(source.time_path)}"
        if source.status and source.status_path:  # an item that shows no status is left to the API's filter
            status = read_path(raw, source.status_path)
            if status is not None and str(status).strip().lower() != source.status.lower():
                return None
        severity = item_severity(read_path(raw, source.severity_path), source.severity_map) \
            if source.severity_path else 0
        if self.severities and severity not in self.severities:
            return None
        return Item(Position(created, item_id), raw, severity)


@dataclass(frozen=True)
class FetchState:
    """What one fetch run hands to the next, through the last run.

    Invariant: every delivered item placed after `floor` has its id in `seen_ids`, and no item at or before
    `floor` is ever delivered. Every item created before `listed_until` that was visible when it was listed
    has been delivered. The floor follows the progress (the later of the two) at the look-back's distance.
    """

    watermark: datetime  # time of the newest item delivered so far, never later than its run's now
    listed_until: datetime  # the end of the last window read whole with everything new in it delivered
    floor: Position  # items at or before this place are never delivered again
    seen_ids: dict[str, datetime]  # delivered ids after the floor, with their time
    span: timedelta | None = None  # newest-first and unordered sources: how far past the progress to ask next

    @classmethod
    def first(cls, first_fetch: datetime) -> "FetchState":
        return cls(first_fetch, first_fetch, Position(first_fetch, ""), {})

    @property
    def progress(self) -> datetime:
        return max(self.watermark, self.listed_until)


@dataclass(frozen=True)
class Window:
    """The span of items one listing asks for: from start (inclusive) to end (exclusive; None: no end)."""

    start: datetime
    end: datetime | None

    def query_values(self, time_format: TimeFormat, now: datetime) -> dict[str, str]:
        """`{start}` and `{end}` one step of the format wider on each side, so that coarse times and inclusive or
        exclusive bounds lose nothing; the engine filters exactly on its side."""
        end = self.end if self.end is not None else now
        return {"start": time_format.write(self.start - time_format.unit),
                "end": time_format.write(end + time_format.unit)}


def plan_window(state: FetchState, look_back: timedelta, source: Source, now: datetime) -> Window:
    """The window of this run: the look-back behind the progress, up to now less settle, and no wider than the
    window cap and, for sources read whole, the span the previous runs found right."""
    start = max(state.floor.created, state.progress - look_back)
    ends = []
    if source.settle:
        ends.append(now - source.settle)
    if source.window is not None:
        ends.append(start + source.window)
    if state.span is not None and source.order != "ascending":
        ends.append(state.progress + state.span)
    return Window(start, min(ends) if ends else None)


@dataclass
class FetchRun:
    """One fetch run's decisions, fed items in time order; plain data and the clock in, plain data out."""

    state: FetchState
    max_fetch: int
    look_back: timedelta
    now: datetime  # no item dated later than this may move the watermark
    end: datetime | None = None  # items at or after it belong to a later run
    present: datetime | None = None  # the API's own clock less a second, once its answers told it
    new_items: list[Item] = field(default_factory=list)
    items_read: int = 0
    already_delivered: int = 0  # read again inside the look-back window and skipped
    behind_floor: int = 0  # listed but at or before the floor, so never delivered
    dated_in_future: int = 0  # delivered with a time after `now`
    reached_end: bool = False  # an item at or after `end` came, so the window was read to its end
    left_over: list[datetime] = field(default_factory=list)  # times of new items past max_fetch, up to max_fetch
    last_handled: Position | None = None  # the last place in the listing this run dealt with
    newest_read: datetime | None = None
    watermark: datetime = field(init=False)  # the newest delivered time so far, capped at now
    _seen: dict[str, datetime] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._seen = dict(self.state.seen_ids)
        self.watermark = self.state.watermark

    @property
    def full(self) -> bool:
        return len(self.new_items) >= self.max_fetch

    def take(self, items: list[Item]) -> None:
        """Takes items in time order until max_fetch new ones are held; notes the new ones left over after that."""
        for item in items:
            position = item.position
            if self.end is not None and position.created >= self.end:
                self.reached_end = True
                return
            if self.full:
                if position > self.state.floor and position.item_id not in self._seen:
                    self.left_over.append(position.created)
                    if len(self.left_over) >= self.max_fetch:
                        return
                continue
            self.items_read += 1
            self.last_handled = position
            if self.newest_read is None or position.created > self.newest_read:
                self.newest_read = position.created
            if position <= self.state.floor:
                self.behind_floor += 1
                continue
            if position.item_id in self._seen:
                self.already_delivered += 1
                continue
            self.new_items.append(item)
            self._seen[position.item_id] = position.created
            if position.created > self.now:  # a source clock ahead of ours must not push the window past now
                self.dated_in_future += 1
            self.watermark = max(self.watermark, min(position.created, self.now))

    def next_state(self, window_read_whole: bool, span: timedelta | None = None) -> FetchState:
        """The state that matches exactly the items delivered by this run. `window_read_whole`: the listing ran to
        its end (or past `end`), so with nothing left over, everything new before the window's end is delivered."""
        listed_until = self.state.listed_until
        if window_read_whole and not self.left_over and self.end is not None:  # an open listing leaves it be
            # never past the API's present: an item it creates later must not fall behind what was claimed
            listed_until = max(listed_until, min(self.end, self.now, self.present or self.now))
        floor = max(self.state.floor, Position(max(self.watermark, listed_until) - self.look_back, ""))
        seen = remembered_after(floor, self._seen)
        if len(seen) > MAX_SEEN_IDS:
            floor = self._floor_over_the_cap(floor, seen)
            seen = remembered_after(floor, seen)
        return FetchState(self.watermark, listed_until, floor, seen, span)

    def _floor_over_the_cap(self, floor: Position, seen: dict[str, datetime]) -> Position:
        """Over the cap, the floor rises past the oldest ids so they can be forgotten: late items behind it are
        lost, never duplicated. It never passes what this run handled, so no unread item is skipped."""
        ordered = sorted(Position(created, item_id) for item_id, created in seen.items())
        shed = ordered[: len(ordered) - MAX_SEEN_IDS]
        if self.last_handled is not None:
            shed = [position for position in shed if position <= self.last_handled]
        if not shed:
            return floor
        demisto.info(f"{len(shed)} remembered ids over the cap of {MAX_SEEN_IDS} were dropped; items arriving "
                     f"late before {format_time(shed[-1].created)} will not be fetched.")
        return max(floor, shed[-1])


def remembered_after(floor: Position, seen: dict[str, datetime]) -> dict[str, datetime]:
    """The delivered ids that still need remembering: those placed after the floor."""
    return {item_id: created for item_id, created in seen.items() if Position(created, item_id) > floor}


def next_span(run: FetchRun, ended_by_span: bool, unit: timedelta) -> timedelta | None:
    """For a source read whole: a window that holds about max_fetch new items, from what this run saw. Left
    over items set the next end just past the max_fetch-th of them; a span with few new items grows by how few
    they were, one with none is dropped (one listing to the present finds the next items); a window that was not
    ended by its span needs none."""
    if run.left_over:
        return max(unit, run.left_over[-1] + MILLISECOND - max(run.state.progress, run.watermark))
    found = len(run.new_items)
    if not ended_by_span or run.state.span is None or found == 0:
        return None
    if found * 2 >= run.max_fetch:
        return run.state.span
    return min(MAX_SPAN, run.state.span * min(8.0, run.max_fetch / found))


def narrowed_span(state: FetchState, window: Window, oldest_read: datetime | None, order: str, now: datetime,
                  unit: timedelta) -> timedelta:
    """After a window too large to read in one run: a newest-first listing ends the next window just past the
    oldest item read, any other halves it, so the next runs drain it bit by bit and none fails forever."""
    end = window.end if window.end is not None else now
    if order == "descending" and oldest_read is not None and oldest_read > window.start:
        end = oldest_read + MILLISECOND
    else:
        end = window.start + (end - window.start) / 2
    return max(unit, end - state.progress)


def holds_every_id(earlier: list[Item], later: list[Item], reach: datetime | None) -> bool:
    """Whether a reading holds every id that the reading before it had up to its reach (None: all)."""
    later_ids = {item.position.item_id for item in later}
    return all(item.position.item_id in later_ids for item in earlier
               if reach is None or item.position.created < reach)


def load_state(last_run: dict[str, Any], first_fetch: datetime) -> FetchState:
    """The state from a last run of version 2 or 1; `{}` (first run, or after a reset) starts at first fetch."""
    if not last_run:
        return FetchState.first(first_fetch)
    if not isinstance(last_run, dict):
        raise StateError(f"The stored last run is not an object; {RESET_ADVICE}.")
    version = last_run.get("version")
    if version not in (1, LAST_RUN_VERSION):
        raise StateError(f"The stored last run has version {version!r}, which this integration cannot read; "
                         f"{RESET_ADVICE}.")
    try:
        watermark = parse_timestamp(last_run["watermark"])
        floor_time, floor_id = last_run["floor"]
        floor = Position(parse_timestamp(floor_time), str(floor_id))  # type: ignore[arg-type]
        if version == 1:  # 1.0.0: ids grouped under their times; the watermark was the progress
            listed_until, span = watermark, None
            seen_ids = {str(item_id): parse_timestamp(created)
                        for created, ids in last_run["seen_ids"].items() for item_id in ids}
        else:
            listed_until = parse_timestamp(last_run["listed_until"])
            span_ms = last_run.get("span_ms")
            span = None if span_ms is None else timedelta(milliseconds=int(span_ms))
            seen_ids = {str(item_id): floor.created + timedelta(milliseconds=int(offset))
                        for offset, ids in last_run["seen_ids"].items() for item_id in ids}
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        raise StateError(f"The stored last run is damaged; {RESET_ADVICE}.") from None
    times = [watermark, listed_until, floor.created, *seen_ids.values()]
    if None in times or min(times) < EARLIEST_FIRST_FETCH:  # type: ignore[type-var]
        raise StateError(f"The stored last run has a malformed time; {RESET_ADVICE}.")
    if span is not None and span <= timedelta(0):
        raise StateError(f"The stored last run is damaged; {RESET_ADVICE}.")
    return FetchState(watermark, listed_until, floor, seen_ids, span)  # type: ignore[arg-type]


RESET_ADVICE = "reset the last run (Reset the \"last run\" timestamp) to fetch again from First fetch time"


def dump_state(state: FetchState) -> dict[str, Any]:
    """The last run: JSON only; ids grouped under their time in milliseconds after the floor, so that an id of 36
    characters costs under 60 bytes and a tie costs one key."""
    by_offset: dict[int, list[str]] = {}
    for item_id, created in state.seen_ids.items():
        by_offset.setdefault((created - state.floor.created) // MILLISECOND, []).append(item_id)
    last_run: dict[str, Any] = {
        "version": LAST_RUN_VERSION,
        "watermark": format_time(state.watermark),
        "listed_until": format_time(state.listed_until),
        "floor": [format_time(state.floor.created), state.floor.item_id],
        "seen_ids": {str(offset): sorted(by_offset[offset]) for offset in sorted(by_offset)},
    }
    if state.span is not None:
        last_run["span_ms"] = state.span // MILLISECOND
    return last_run


# ---------------------------------------------------------------------------------------------
# Incident conversion
# ---------------------------------------------------------------------------------------------

SEVERITY_NAMES = {0: "unknown", 0.5: "informational", 1: "low", 2: "medium", 3: "high", 4: "critical"}


def item_name(item: Item, source: Source) -> str:
    """The item's name; an item without one is named after the source and its id, so no incident is nameless."""
    name = read_path(item.raw, source.name_path) if source.name_path else None
    if isinstance(name, str) and name.strip():
        return name
    return f"{source.subject.removeprefix('The ')} item {item.position.item_id}"


def text_of(value: Any) -> str:
    """A details value as text: a string as it is; a rich-text document (Jira's Atlassian Document Format) as the
    text of its nodes, a paragraph a line."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            return value["text"]
        parts = [text_of(child) for child in value.get("content") or [] if isinstance(value.get("content"), list)]
        return ("\n" if value.get("type") in ("doc", "bulletList", "orderedList") else "").join(
            part for part in parts if part)
    return ""


def occurred(item: Item, source: Source) -> str:
    """The item's time in the engine's format: as the API sent it when it already has that form, which most do."""
    sent = item.raw.get(source.time_path[0]) if len(source.time_path) == 1 else None
    return sent if type(sent) is str and is_api_time(sent) else format_time(item.position.created)


def item_to_incident(item: Item, source: Source) -> dict[str, Any]:
    """The incident of an item. Its type is left to the server: the pack's classifier picks one per API, and the
    instance's Incident type applies otherwise."""
    details = read_path(item.raw, source.details_path) if source.details_path else None
    return {
        "name": item_name(item, source),
        "occurred": occurred(item, source),
        "rawJSON": json.dumps(item.raw),
        "severity": item.severity,
        "dbotMirrorId": item.position.item_id,
        "details": text_of(details),
    }


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def query_values(settings: Settings, window: Window, now: datetime, limit: int, status: str | None = None,
                 severities: frozenset[float] | None = None) -> dict[str, str]:
    """What the query's placeholders stand for in one listing."""
    chosen = settings.severities if severities is None else severities
    return {
        **window.query_values(settings.source.time_format, now),
        "limit": str(limit),
        "status": settings.source.status if status is None else status,
        "severity": ",".join(name for name, level in FILTER_SEVERITIES.items() if level in chosen),
    }


@dataclass
class Reading:
    """One reading of a listing: its wanted items in the API's order, and how it ended."""

    items: list[Item] = field(default_factory=list)
    pages: int = 0
    whole: bool = False  # it ran to the listing's end
    error: SourceError | None = None  # the fault that stopped it
    invalid: list[str] = field(default_factory=list)  # why each unusable item was skipped
    filtered: int = 0  # items the status or severity filter dropped

    @property
    def reach(self) -> datetime | None:
        """Up to where the reading saw the listing whole (None: all of it)."""
        return None if self.whole else max((item.position.created for item in self.items), default=None)


def read_listing(client: SourceClient, reader: ItemReader, values: dict[str, str],
                 stop: Callable[[list[Item]], bool] | None = None, max_pages: int | None = None) -> Reading:
    """Reads pages until the listing ends, `stop` says so after a page, `max_pages` or the view's cap is reached,
    or a fault; a fault is kept in the reading with what was read before it."""
    reading = Reading()
    try:
        for page in client.list_pages(values):
            reading.pages += 1
            wanted = []
            for raw in page.items:
                item = reader.read(raw)
                if type(item) is Item:
                    wanted.append(item)
                elif item is None:
                    reading.filtered += 1
                else:
                    reading.invalid.append(item)  # type: ignore[arg-type]
            reading.items += wanted
            stopped = stop is not None and stop(wanted)
            if page.last:
                reading.whole = not page.cut_short
                return reading
            if stopped or (max_pages is not None and reading.pages >= max_pages):
                return reading
            if len(reading.items) > MAX_VIEW_ITEMS:
                reading.error = SourceError(f"The window holds more than {MAX_VIEW_ITEMS} items.")
                return reading
    except SourceError as error:
        reading.error = error
    return reading


def needs_another_reading(readings: list[Reading], source: Source) -> bool:
    """Offsets shift when an item leaves the filter or a late one comes in, so a listing of several pages that
    is paged by offset, or not oldest first, is read again until a reading holds every id of the one before."""
    first, last = readings[0], readings[-1]
    if len(readings) >= MAX_PASSES or last.error is not None or first.pages < 2:
        return False
    if source.order == "ascending" and source.pagination not in ("offset", "page"):
        return False
    return len(readings) == 1 or not holds_every_id(readings[-2].items, last.items, last.reach)


def union_in_time_order(readings: list[Reading]) -> list[Item]:
    """Every item of the readings, once, in time order, up to the reach of the last (what it saw whole)."""
    reach = readings[-1].reach
    union = {item.position.item_id: item for reading in readings for item in reading.items
             if reach is None or item.position.created <= reach}
    return sorted(union.values(), key=lambda item: item.position)


def api_present(client: SourceClient) -> datetime | None:
    """The API's own present, a second short of the Date header of its first answer (which is cut to the second)."""
    return None if client.source_now is None else client.source_now - timedelta(seconds=1)


@dataclass(frozen=True)
class Fetched:
    """What the listings of one run decided: the run over what was read, and how the listing ended."""

    run: FetchRun
    readings: list[Reading]
    read_whole: bool  # the window was read to its end, so with nothing left over it is done
    span: timedelta | None  # the next window's span, for sources read whole
    stopped_by: SourceError | None = None  # the fault after which the run delivers what it read before it


def fetch_oldest_first(client: SourceClient, settings: Settings, state: FetchState, window: Window,
                       now: datetime) -> Fetched:
    """Streams an oldest-first listing, asking only for max_fetch plus the delivered ids it re-reads and stopping
    once max_fetch new items are held. A fault after new items delivers that prefix. A listing of several pages
    paged by offset is read again, and decided over every reading, so that shifting offsets lose nothing."""
    source = settings.source
    remembered = sum(1 for created in state.seen_ids.values() if created >= window.start)
    values = query_values(settings, window, now, min(source.page_size, settings.max_fetch + remembered))
    run = FetchRun(state, settings.max_fetch, settings.look_back, now, window.end)

    def streamed(items: list[Item]) -> bool:
        run.present = api_present(client)  # known from the API's first answer
        run.take(items)
        return run.full or run.reached_end

    reader = ItemReader(source, settings.severities)
    readings = [read_listing(client, reader, values, stop=streamed)]
    while needs_another_reading(readings, source):
        readings.append(read_listing(client, reader, values, max_pages=readings[0].pages))
    stopped_by = readings[0].error
    if stopped_by is not None and not run.new_items:
        reread = f" after re-reading {run.items_read} items already fetched" if run.items_read else ""
        raise SourceError(f"No incident fetched{reread}: {stopped_by}") from None
    finished = [reading for reading in readings if reading.error is None]
    if len(finished) > 1:
        run = FetchRun(state, settings.max_fetch, settings.look_back, now, window.end, api_present(client))
        run.take(union_in_time_order(finished))
    read_whole = stopped_by is None and (finished[-1].whole or run.reached_end)
    return Fetched(run, readings, read_whole, state.span, stopped_by)


def fetch_window_whole(client: SourceClient, settings: Settings, state: FetchState, window: Window,
                       now: datetime) -> Fetched:
    """Reads a newest-first or unordered window whole, again while offsets shift, and takes its oldest new items.
    A window too large to read in one run (a fault, the time limit, too many items) is narrowed for the next."""
    source = settings.source
    reader = ItemReader(source, settings.severities)
    values = query_values(settings, window, now, source.page_size)
    readings = [read_listing(client, reader, values)]
    while needs_another_reading(readings, source):
        readings.append(read_listing(client, reader, values))
    finished = [reading for reading in readings if reading.error is None]
    if not finished:
        stopped_by = readings[0].error
        if readings[0].pages == 0:
            raise SourceError(f"No incident fetched: {stopped_by}") from None
        oldest = min((item.position.created for item in readings[0].items), default=None)
        span = narrowed_span(state, window, oldest, source.order, now, source.time_format.unit)
        demisto.info(f"The window from {format_time(window.start)} could not be read whole ({stopped_by}); the next "
                     f"fetch asks for {span // MILLISECOND} ms past {format_time(state.progress)}.")
        return Fetched(FetchRun(state, settings.max_fetch, settings.look_back, now, window.end), readings, False, span)
    run = FetchRun(state, settings.max_fetch, settings.look_back, now, window.end, api_present(client))
    run.take(union_in_time_order(finished))
    ended_by_span = state.span is not None and window.end == state.progress + state.span
    return Fetched(run, readings, finished[-1].whole or run.reached_end,
                   next_span(run, ended_by_span, source.time_format.unit))


@dataclass(frozen=True)
class FetchOutcome:
    incidents: list[dict[str, Any]]
    last_run: dict[str, Any]
    figures: str


def fetch_incidents(client: SourceClient, settings: Settings, last_run: dict[str, Any], now: datetime) -> FetchOutcome:
    """One fetch run: the oldest new items of the window, as incidents, with the last run for exactly those.
    A run that could read nothing fails, leaving the last run as it was."""
    state = load_state(last_run, settings.first_fetch)
    window = plan_window(state, settings.look_back, settings.source, now)
    if window.end is not None and window.end <= window.start:  # settle or the window hold it back for now
        return FetchOutcome([], dump_state(state), "fetch figures: items_read=0 incidents=0 waiting=1")
    fetch = fetch_oldest_first if settings.source.order == "ascending" else fetch_window_whole
    fetched = fetch(client, settings, state, window, now)
    if fetched.read_whole and not fetched.run.new_items and state.span is not None and fetched.span is None:
        # a span that found nothing new is dropped; the rest is read now rather than a run later
        state = fetched.run.next_state(True, None)
        fetched = fetch(client, settings, state, plan_window(state, settings.look_back, settings.source, now), now)
    run, readings = fetched.run, fetched.readings
    log_skipped(run, readings, settings.source)
    if fetched.stopped_by is not None:
        demisto.info(f"Fetch stopped early and delivers the {len(run.new_items)} incidents read so far: "
                     f"{fetched.stopped_by}")
    next_state = run.next_state(fetched.read_whole, fetched.span)
    incidents = [item_to_incident(item, settings.source) for item in run.new_items]
    lag = (run.newest_read - next_state.watermark).total_seconds() if run.newest_read else 0.0
    figures = (f"fetch figures: items_read={sum(len(r.items) for r in readings)} incidents={len(incidents)} "
               f"duplicates={run.already_delivered} behind_floor={run.behind_floor} "
               f"invalid={sum(len(r.invalid) for r in readings)} filtered={sum(r.filtered for r in readings)} "
               f"future_dated={run.dated_in_future} pages={client.pages} readings={len(readings)} "
               f"retries={client.retries} watermark={format_time(next_state.watermark)} "
               f"listed_until={format_time(next_state.listed_until)} lag_seconds={max(lag, 0.0):g} "
               f"remembered_ids={len(next_state.seen_ids)} tokens_fetched={client.tokens_fetched}")
    return FetchOutcome(incidents, dump_state(next_state), figures)


def log_skipped(run: FetchRun, readings: list[Reading], source: Source) -> None:
    """Unusable and future-dated items, named in the log; a flood is summed up, not repeated."""
    invalid = sorted({description for reading in readings for description in reading.invalid})
    for description in invalid[:MAX_SKIPPED_LOGGED]:
        demisto.info(f"Skipped {description}.")
    if len(invalid) > MAX_SKIPPED_LOGGED:
        demisto.info(f"Skipped {len(invalid) - MAX_SKIPPED_LOGGED} more unusable items.")
    if run.dated_in_future:
        demisto.info(f"{run.dated_in_future} items are dated after {format_time(run.now)}: the clock of "
                     f"{source.label.removeprefix('the ')} may be ahead; they are fetched, and the watermark stays at "
                     "the present.")


def probe_listing(client: SourceClient, settings: Settings, now: datetime) -> None:
    """A listing of one item proves endpoint, auth and query, and that id and time are where the paths say."""
    source = settings.source
    values = query_values(settings, Window(settings.first_fetch, None), now, 1)
    page = next(client.list_pages(values))
    if not page.items:
        return
    first = page.items[0]
    if not isinstance(first, dict):
        raise SourceError(f"{source.subject} lists a {type(first).__name__} as its first item, not an object; check "
                          "the Items path.")
    keys = ", ".join(sorted(map(str, first))[:20])
    if usable_id(read_path(first, source.id_path)) is None:
        raise SourceError(f"{source.subject} lists items, but the first has no id at {show_path(source.id_path)} "
                          f"(ID path); its keys are {keys}.")
    if parse_timestamp(read_path(first, source.time_path), source.time_format.zone, source.time_format.pattern) \
            is None:
        raise SourceError(f"{source.subject} lists items, but the first has no readable time at "
                          f"{show_path(source.time_path)} (Time path); its keys are {keys}.")


def test_module(client: SourceClient, settings: Settings, now: datetime) -> str:
    """`ok` when the whole configuration works: URL, auth, endpoint and paths, and with fetching on, a dry fetch
    of one item that saves nothing."""
    if settings.source.health_endpoint:
        client.health()
    probe_listing(client, settings, now)
    if settings.is_fetch:
        fetch_incidents(client, replace(settings, max_fetch=1), {}, now)
    return "ok"


def markdown_table(title: str, rows: list[dict[str, Any]], headers: list[str]) -> str:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")

    lines = [f"### {title}"]
    if not rows:
        return "\n".join([*lines, "**No entries.**"])
    lines += ["|" + "|".join(headers) + "|", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["|" + "|".join(cell(row.get(header)) for header in headers) + "|" for row in rows]
    return "\n".join(lines)


PREVIEW_FIELDS = ["id", "time", "name", "severity", "status"]


def get_events_command(client: SourceClient, settings: Settings, args: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Shows the items the source holds as this configuration reads them; never reads or writes the last run."""
    since = parse_time_expression(args.get("since") or "1 hour", now, "since")
    status = str(args.get("status") or "").strip() or settings.source.status
    severities = parse_severities(args.get("severity"), "severity")
    limit = parse_int(args.get("limit"), "limit", 1, 1000, 20)
    source = replace(settings.source, status=status)
    reader = ItemReader(source, severities)
    values = query_values(settings, Window(since, None), now, min(limit, source.page_size), status, severities)
    items: list[Item] = []
    for page in client.list_pages(values):
        items += [item for item in map(reader.read, page.items)
                  if type(item) is Item and item.position.created >= since]
        if len(items) >= limit:
            break
    items = sorted(items[:limit], key=lambda item: item.position)
    rows = [{"id": item.position.item_id, "time": format_time(item.position.created), "name": item_name(item, source),
             "severity": SEVERITY_NAMES.get(item.severity, "unknown"),
             "status": read_path(item.raw, source.status_path) if source.status_path else None} for item in items]
    title = f"{source.subject.removeprefix('The ')} items since {format_time(since)}"
    return {
        "Type": 1,
        "ContentsFormat": "json",
        "Contents": [item.raw for item in items],
        "HumanReadable": markdown_table(title, rows, PREVIEW_FIELDS),
        "ReadableContentsFormat": "markdown",
        "EntryContext": {f"{CONTEXT_PREFIX}(val.id && val.id == obj.id)": [
            {**row, "raw": item.raw} for row, item in zip(rows, items, strict=True)]},
    }


def error_entry(message: str) -> dict[str, Any]:
    return {"Type": 4, "ContentsFormat": "text", "Contents": message}


def main() -> None:
    command = demisto.command()
    demisto.debug(f"Command being called is {command}")
    try:
        now = datetime.now(UTC)
        settings = parse_settings(demisto.params(), now)
        if command == "fetch-incidents":
            client = SourceClient(settings)
            outcome = fetch_incidents(client, settings, demisto.getLastRun(), now)
            demisto.debug(outcome.figures)
            demisto.incidents(outcome.incidents)
            demisto.setLastRun(outcome.last_run)
        elif command == "test-module":
            demisto.results(test_module(SourceClient(settings), settings, now))
        elif command == "event-fetcher-get-events":
            demisto.results(get_events_command(SourceClient(settings), settings, demisto.args(), now))
        else:
            raise UserError(f"The command {command} is not implemented.")
    except Exception as error:
        message = str(error) if isinstance(error, UserError) else f"Unexpected error: {type(error).__name__}: {error}"
        message = " ".join(message.split())  # one line, whatever the exception carried
        demisto.error(f"{command} failed: {message}")
        if not isinstance(error, UserError):
            demisto.debug(traceback.format_exc())  # for debug mode; users see the sentence only
        if command == "fetch-incidents":
            raise Exception(message) from None  # the server marks the instance as failing and shows this
        demisto.results(error_entry(f"Failed to execute {command}: {message}"))


if __name__ in ("__main__", "__builtin__", "builtins"):
    main()
