"""EventFetcher: turns Event Source events into Cortex XSOAR incidents, each exactly once.

Read top to bottom: constants and parameters, the API client, the pure fetch logic,
incident conversion, commands, main().
"""

import json
import os
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

import demistomock as demisto
import requests

# ---------------------------------------------------------------------------------------------
# Constants and parameters
# ---------------------------------------------------------------------------------------------

CONTEXT_PREFIX = "EventFetcher.Event"
EVENTS_PATH = "/api/v1/events"
HEALTH_PATH = "/api/v1/health"

API_PAGE_SIZE = 500  # the API's largest page: fewest requests for the same events
SEVERITIES = ("low", "medium", "high", "critical")
INCIDENT_SEVERITY = {"low": 1, "medium": 2, "high": 3, "critical": 4}
STATUSES = ("New", "In Progress", "Closed")

DEFAULT_FIRST_FETCH = "3 days"
DEFAULT_MAX_FETCH = 50
MAX_FETCH_LIMIT = 200
DEFAULT_LOOK_BACK_MINUTES = 5
MAX_LOOK_BACK_MINUTES = 1440
DEFAULT_REQUEST_TIMEOUT = 30
MAX_REQUEST_TIMEOUT = 300
DEFAULT_FETCH_TIME_LIMIT = 50
MAX_FETCH_TIME_LIMIT = 600

LAST_RUN_VERSION = 1
MAX_SEEN_IDS = 20_000  # keeps the last run near or under the server's 1 MB warning

MAX_ATTEMPTS = 5  # per request, the first try included
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
DEFAULT_RETRY_AFTER_SECONDS = 5.0  # when a 429 carries no usable Retry-After
MAX_RETRY_AFTER_SECONDS = 60.0
MAX_LISTING_RESTARTS = 3  # after invalid cursors
MAX_SKIPPED_LOGGED = 10  # unusable events named one by one in a run's log; the rest are counted

EARLIEST_FIRST_FETCH = datetime(1970, 1, 1, tzinfo=UTC)
TIME_UNITS = {"minute": 1, "hour": 60, "day": 1440, "week": 10080}


class UserError(Exception):
    """A problem the user can fix; its message is one sentence shown as it is."""


class ConfigError(UserError):
    """An instance parameter or command argument is wrong."""


class StateError(UserError):
    """The stored last run cannot be read by this version."""


class EventSourceError(UserError):
    """The Event Source could not give what was asked."""


class AuthError(EventSourceError):
    """The key was refused: retrying cannot help."""


class InvalidCursor(EventSourceError):
    """The listing's cursor expired or is unknown: the listing must start again."""


class TimeLimitReached(EventSourceError):
    """The run's time budget is spent."""


@dataclass(frozen=True)
class Settings:
    """The instance parameters, parsed and validated once."""

    base_url: str
    api_key: str = field(repr=False)
    verify_tls: bool
    use_proxy: bool
    is_fetch: bool
    first_fetch: datetime
    max_fetch: int
    look_back: timedelta
    status: str
    severities: tuple[str, ...]  # empty: no severity filter, so events of any severity are fetched
    incident_type: str
    request_timeout: float
    fetch_time_limit: float


def format_time(moment: datetime) -> str:
    """The API's time format: UTC, milliseconds, Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def is_api_time(text: str) -> bool:
    """Exactly the API's own shape (`2026-11-26T06:00:00.123Z`): UTC at milliseconds, needing no conversion."""
    return (len(text) == 24 and text[4] == "-" and text[7] == "-" and text[10] == "T" and text[13] == ":"
            and text[16] == ":" and text[19] == "." and text[23] == "Z")


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime at millisecond precision; None when malformed."""
    if not isinstance(value, str):
        return None
    if is_api_time(value):  # the common case, read once per event: skip the conversions
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        if moment.tzinfo is None:  # a time without a zone is taken as UTC, the API's zone
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


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
    moment = parse_timestamp(text)
    if moment is None:
        raise ConfigError(expected)
    return moment


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


def parse_severities(value: Any, what: str) -> tuple[str, ...]:
    """A list or comma-separated text of severities; all four (or none) means no filter."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    chosen = {str(item).strip().lower() for item in items if str(item).strip()}
    unknown = sorted(chosen - set(SEVERITIES))
    if unknown:
        raise ConfigError(f'{what} has an unknown value "{unknown[0]}"; choose from {", ".join(SEVERITIES)}.')
    if chosen == set(SEVERITIES):
        return ()
    return tuple(severity for severity in SEVERITIES if severity in chosen)


def parse_status(value: Any, what: str) -> str:
    text = str(value or "").strip()
    for status in STATUSES:
        if text.lower() == status.lower():
            return status
    raise ConfigError(f'{what} must be one of {", ".join(STATUSES)}, not "{text}".')


def parse_url(value: Any) -> str:
    url = str(value or "").strip().rstrip("/")
    if not url:
        raise ConfigError("Server URL is missing; enter the Event Source address, e.g. https://events.example.com.")
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
        raise ConfigError(f'Server URL must start with https:// or http:// and name a host, not "{url}".')
    if "@" in rest.split("/", 1)[0]:  # said without the URL, which holds a password
        raise ConfigError("Server URL must not hold a user name or password; put the key in the API Key field.")
    return url.removesuffix("/api/v1")  # the address of the API's root is accepted too


def parse_settings(params: dict[str, Any], now: datetime) -> Settings:
    """Validates every instance parameter; the first problem found is raised as one sentence."""
    credentials = params.get("credentials") or {}
    api_key = str(credentials.get("password") or "").strip() if isinstance(credentials, dict) else ""
    if not api_key:
        raise ConfigError("API Key is missing; enter the Event Source API key.")
    if not api_key.isprintable() or " " in api_key:
        raise ConfigError("API Key contains spaces or control characters; paste the key alone.")
    first_fetch = parse_time_expression(params.get("first_fetch") or DEFAULT_FIRST_FETCH, now, "First fetch time")
    if first_fetch > now:
        raise ConfigError(f"First fetch time {format_time(first_fetch)} is in the future; choose a past time.")
    if first_fetch < EARLIEST_FIRST_FETCH:
        raise ConfigError(f"First fetch time {format_time(first_fetch)} is before 1970; choose a later time.")
    look_back = parse_int(params.get("look_back"), "Look-back (minutes)", 0, MAX_LOOK_BACK_MINUTES,
                          DEFAULT_LOOK_BACK_MINUTES)
    return Settings(
        base_url=parse_url(params.get("url")),
        api_key=api_key,
        verify_tls=not parse_bool(params.get("insecure")),
        use_proxy=parse_bool(params.get("proxy")),
        is_fetch=parse_bool(params.get("isFetch")),
        first_fetch=first_fetch,
        max_fetch=parse_int(params.get("max_fetch", DEFAULT_MAX_FETCH), "Maximum number of incidents per fetch",
                            1, MAX_FETCH_LIMIT),
        look_back=timedelta(minutes=look_back),
        status=parse_status(params.get("status") or "New", "Status to fetch"),
        severities=parse_severities(params.get("severity"), "Severities to fetch"),
        incident_type=str(params.get("incidentType") or "").strip(),
        request_timeout=parse_int(params.get("request_timeout"), "Request timeout (seconds)", 1,
                                  MAX_REQUEST_TIMEOUT, DEFAULT_REQUEST_TIMEOUT),
        fetch_time_limit=parse_int(params.get("fetch_time_limit"), "Fetch time limit (seconds)", 10,
                                   MAX_FETCH_TIME_LIMIT, DEFAULT_FETCH_TIME_LIMIT),
    )


# ---------------------------------------------------------------------------------------------
# The API client
# ---------------------------------------------------------------------------------------------


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """Retry-After as seconds to wait, from either of its forms; None when missing or unreadable."""
    text = (header or "").strip()
    if is_ascii_number(text):
        return float(text)
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(response: requests.Response) -> Any:
    """The body as strict JSON: NaN and Infinity are refused, as is nesting too deep to handle."""
    try:
        return json.loads(response.content, parse_constant=reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def error_message_of(response: requests.Response) -> str:
    """The API's own `{"error": ...}` text, kept short; empty when the body has none."""
    try:
        body = parse_json(response)
    except ValueError:
        return ""
    message = body.get("error") if isinstance(body, dict) else None
    return str(message)[:200] if message else ""


def is_html(response: requests.Response) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower()


@dataclass(frozen=True)
class Transient:
    """A fault worth retrying: what went wrong, and how long the server asked to wait, if it did."""

    problem: str
    asked_wait: float | None = None


@dataclass(frozen=True)
class Page:
    events: list[Any]
    next_cursor: str | None


def parse_page(body: Any) -> Page:
    """Checks the shape of a listing page; a wrong shape is an error, never a guess."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise EventSourceError("The Event Source answered with a page that has no list of events.")
    next_cursor = body.get("next_cursor")
    if next_cursor is not None and (not isinstance(next_cursor, str) or not next_cursor):
        raise EventSourceError("The Event Source answered with a page whose next_cursor is not a text.")
    return Page(body["events"], next_cursor)


class EventSourceClient:
    """HTTP access to the Event Source API: retries, rate limits and the run's time budget."""

    def __init__(
        self,
        settings: Settings,
        *,
        time_limit: float | None = None,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.base_url = settings.base_url
        self.request_timeout = settings.request_timeout
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {settings.api_key}", "Accept": "application/json"})
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

    def health(self) -> None:
        body = self._get(HEALTH_PATH, {})
        if not isinstance(body, dict) or body.get("status") != "ok":
            raise EventSourceError("The Event Source health check did not answer status ok.")

    def iter_pages(self, since: datetime, status: str | None, severities: tuple[str, ...],
                   page_size: int = API_PAGE_SIZE) -> Iterator[list[Any]]:
        """The listing from `since` (inclusive), oldest first, a page at a time."""
        query: dict[str, Any] = {"since": format_time(since), "limit": page_size}
        if status:
            query["status"] = status
        if severities:
            query["severity"] = ",".join(severities)
        cursor: str | None = None
        restarts = 0
        while True:
            try:
                body = self._get(EVENTS_PATH, {**query, "cursor": cursor} if cursor else query)
            except InvalidCursor:
                if cursor is None or restarts >= MAX_LISTING_RESTARTS:
                    raise
                restarts += 1  # start the listing again: what was already handled is skipped as seen
                cursor = None
                continue
            page = parse_page(body)
            self.pages += 1
            yield page.events
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _get(self, path: str, query: dict[str, Any]) -> Any:
        """The parsed JSON body, after retrying transient faults within the attempts and the time budget."""
        url = self.base_url + path
        for attempt in range(1, MAX_ATTEMPTS + 1):
            remaining = self.deadline - self.monotonic()
            if remaining <= 0:
                raise TimeLimitReached(f"The fetch time limit of {self.time_limit:g} seconds was reached.")
            outcome = self._try_once(url, query, timeout=min(self.request_timeout, remaining))
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
        raise EventSourceError(f"{outcome.problem}, still after {MAX_ATTEMPTS} attempts.")

    def _try_once(self, url: str, query: dict[str, Any], timeout: float) -> Any:
        """One request: the parsed body, a Transient fault worth retrying, or an error that retrying cannot fix."""
        try:
            response = self.session.get(url, params=query, timeout=timeout, allow_redirects=False)
        except requests.exceptions.SSLError:
            raise EventSourceError(f"The TLS certificate of {self.base_url} could not be verified; fix the "
                                   "certificate or tick \"Trust any certificate\".") from None
        except requests.exceptions.Timeout:
            return Transient(f"The Event Source at {self.base_url} did not answer within {timeout:g} seconds")
        except requests.exceptions.RequestException:
            return Transient(f"Could not connect to the Event Source at {self.base_url}")
        code = response.status_code
        if code == 200:
            if is_html(response):
                raise EventSourceError(f"{self.base_url} answered with a web page, not the Event Source API; "
                                       "check the Server URL.")
            try:
                return parse_json(response)
            except ValueError:
                return Transient("The Event Source answered with malformed JSON")
        if code in (401, 403):
            raise AuthError(f"The Event Source refused the API key (HTTP {code}); check the API Key parameter.")
        if code == 400 and error_message_of(response) == "invalid cursor":
            raise InvalidCursor("The Event Source no longer accepts the listing's cursor.")
        if code == 429 or code >= 500:
            told = retry_after_seconds(response.headers.get("Retry-After"), datetime.now(UTC))
            if code == 429:
                return Transient("The Event Source is rate limiting requests (HTTP 429)",
                                 DEFAULT_RETRY_AFTER_SECONDS if told is None else told)
            return Transient(f"The Event Source had a server error (HTTP {code})", told)
        if 300 <= code < 400:
            raise EventSourceError(f"{self.base_url} redirects elsewhere; set the Server URL to the API's own "
                                   "address (redirects are not followed, so that the key goes nowhere else).")
        if code == 404 or is_html(response):
            raise EventSourceError(f"{self.base_url} does not serve the Event Source API (HTTP {code}); "
                                   "check the Server URL.")
        detail = error_message_of(response)
        raise EventSourceError(f"The Event Source rejected the request (HTTP {code}){': ' + detail if detail else ''}.")


# ---------------------------------------------------------------------------------------------
# The pure fetch logic: last run + pages of events -> new events + next last run
# ---------------------------------------------------------------------------------------------


class Position(NamedTuple):
    """A place in the listing's order: by created_time, then by id (a tuple, so cheap to build and compare)."""

    created: datetime
    event_id: str


@dataclass(frozen=True)
class FetchState:
    """What one fetch run hands to the next, through the last run.

    Invariant: every delivered event placed after `floor` has its id in `seen_ids`, and no event at
    or before `floor` is ever delivered. The floor follows the watermark at the look-back's distance
    (higher only over the cap of remembered ids), so seen_ids spans that window and any tie in it.
    """

    watermark: datetime  # created_time of the newest event delivered so far, never later than its run's now
    floor: Position  # events at or before this place are never delivered again
    seen_ids: dict[str, datetime]  # delivered ids at or after the floor, with their created_time

    @classmethod
    def first(cls, first_fetch: datetime) -> "FetchState":
        return cls(first_fetch, Position(first_fetch, ""), {})

    def listing_start(self, look_back: timedelta) -> datetime:
        return max(self.floor.created, self.watermark - look_back)


RESET_ADVICE = "reset the last run (Reset the \"last run\" timestamp) to fetch again from First fetch time"


def load_state(last_run: dict[str, Any], first_fetch: datetime) -> FetchState:
    """The state from a last run; `{}` (first run, or after a reset) starts at the first-fetch time."""
    if not last_run:
        return FetchState.first(first_fetch)
    if not isinstance(last_run, dict):
        raise StateError(f"The stored last run is not an object; {RESET_ADVICE}.")
    version = last_run.get("version")
    if version != LAST_RUN_VERSION:
        raise StateError(f"The stored last run has version {version!r}, which this integration cannot read; "
                         f"{RESET_ADVICE}.")
    try:
        watermark = parse_timestamp(last_run["watermark"])
        floor_time, floor_id = last_run["floor"]
        floor = Position(parse_timestamp(floor_time), str(floor_id))  # type: ignore[arg-type]
        seen_ids = {str(event_id): parse_timestamp(created)
                    for created, ids in last_run["seen_ids"].items() for event_id in ids}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise StateError(f"The stored last run is damaged; {RESET_ADVICE}.") from None
    times = [watermark, floor.created, *seen_ids.values()]
    if None in times or min(times) < EARLIEST_FIRST_FETCH:  # type: ignore[type-var]
        raise StateError(f"The stored last run has a malformed time; {RESET_ADVICE}.")
    return FetchState(watermark, floor, seen_ids)  # type: ignore[arg-type]


def dump_state(state: FetchState) -> dict[str, Any]:
    """The last run: JSON only, ids grouped by created_time so that ties cost one key."""
    by_time: dict[datetime, list[str]] = {}
    for event_id, created in state.seen_ids.items():
        by_time.setdefault(created, []).append(event_id)
    grouped = {format_time(created): sorted(by_time[created]) for created in sorted(by_time)}
    return {
        "version": LAST_RUN_VERSION,
        "watermark": format_time(state.watermark),
        "floor": [format_time(state.floor.created), state.floor.event_id],
        "seen_ids": grouped,
    }


def event_position(event: Any) -> Position | None:
    """Where an event sorts; None for an event without a usable id or created_time."""
    if not isinstance(event, dict):
        return None
    event_id = usable_id(event.get("id"))
    created = parse_timestamp(event.get("created_time"))
    if event_id is None or created is None:
        return None
    return Position(created, event_id)


def usable_id(value: Any) -> str | None:
    """The id as text: a non-empty string, or a whole number (never a boolean)."""
    if type(value) is str:  # exact type checks: bool is an int, and this runs once per event
        return value or None
    return str(value) if type(value) is int else None


@dataclass
class FetchRun:
    """One fetch run's decisions, fed page by page; plain data and the clock in, plain data out."""

    state: FetchState
    max_fetch: int
    look_back: timedelta
    now: datetime  # no event dated later than this may move the watermark
    new_events: list[dict[str, Any]] = field(default_factory=list)
    new_positions: list[Position] = field(default_factory=list)  # where each new event sorts, read once
    events_read: int = 0
    already_delivered: int = 0  # read again inside the look-back window and skipped
    behind_floor: int = 0  # listed but at or before the floor, so never delivered
    dated_in_future: int = 0  # delivered with a created_time after `now`
    invalid: list[str] = field(default_factory=list)  # a description of each event skipped as unusable
    last_handled: Position | None = None  # the last place in the listing this run dealt with
    newest_read: datetime | None = None
    since: datetime = field(init=False)  # where the listing starts
    _seen: dict[str, datetime] = field(init=False, repr=False)
    _watermark: datetime = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.since = self.state.listing_start(self.look_back)
        self._seen = dict(self.state.seen_ids)
        self._watermark = self.state.watermark

    @property
    def full(self) -> bool:
        return len(self.new_events) >= self.max_fetch

    def take(self, events: list[Any]) -> None:
        """Takes the events of one page, in listing order, until max_fetch new ones are held."""
        for event in events:
            if self.full:
                return
            position = event_position(event)
            if position is None:
                self.invalid.append(describe_invalid(event))
                continue
            self.events_read += 1
            self.last_handled = position
            if self.newest_read is None or position.created > self.newest_read:
                self.newest_read = position.created
            if position <= self.state.floor:
                self.behind_floor += 1
                continue
            if position.event_id in self._seen:
                self.already_delivered += 1
                continue
            self.new_events.append(event)
            self.new_positions.append(position)
            self._seen[position.event_id] = position.created
            if position.created > self.now:  # a source clock ahead of ours must not push the window past now
                self.dated_in_future += 1
            self._watermark = max(self._watermark, min(position.created, self.now))

    def next_state(self) -> FetchState:
        """The state that matches exactly the events delivered by this run."""
        floor = max(self.state.floor, Position(self._watermark - self.look_back, ""))
        seen = remembered_after(floor, self._seen)
        if len(seen) > MAX_SEEN_IDS:
            floor = self._floor_over_the_cap(floor, seen)
            seen = remembered_after(floor, seen)
        return FetchState(self._watermark, floor, seen)

    def _floor_over_the_cap(self, floor: Position, seen: dict[str, datetime]) -> Position:
        """Over the cap, the floor rises past the oldest ids so they can be forgotten: late events behind it are
        lost, never duplicated. It never passes what this run handled, so no unread event is skipped."""
        ordered = sorted(Position(created, event_id) for event_id, created in seen.items())
        shed = ordered[: len(ordered) - MAX_SEEN_IDS]
        if self.last_handled is not None:
            shed = [position for position in shed if position <= self.last_handled]
        if not shed:
            return floor
        demisto.info(f"{len(shed)} remembered ids over the cap of {MAX_SEEN_IDS} were dropped; events arriving "
                     f"late before {format_time(shed[-1].created)} will not be fetched.")
        return max(floor, shed[-1])


def remembered_after(floor: Position, seen: dict[str, datetime]) -> dict[str, datetime]:
    """The delivered ids that still need remembering: those placed after the floor."""
    return {event_id: created for event_id, created in seen.items() if Position(created, event_id) > floor}


def describe_invalid(event: Any) -> str:
    if not isinstance(event, dict):
        return f"a {type(event).__name__} instead of an event object"
    event_id = usable_id(event.get("id"))
    if event_id is None:
        return "an event without an id"
    return f"event {event_id[:100]} with a missing or malformed created_time"


# ---------------------------------------------------------------------------------------------
# Incident conversion
# ---------------------------------------------------------------------------------------------


def incident_severity(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    return INCIDENT_SEVERITY.get(value) or INCIDENT_SEVERITY.get(value.strip().lower(), 0)


def event_to_incident(event: dict[str, Any], position: Position, incident_type: str) -> dict[str, Any]:
    name = event.get("name")
    if not isinstance(name, str) or not name.strip():
        kind = event.get("type")
        name = f"{kind if isinstance(kind, str) and kind.strip() else 'Event'} {position.event_id}"
    description = event.get("description")
    created = event["created_time"]
    incident: dict[str, Any] = {
        "name": name,
        "occurred": created if is_api_time(created) else format_time(position.created),
        "rawJSON": json.dumps(event),
        "severity": incident_severity(event.get("severity")),
        "dbotMirrorId": position.event_id,
        "details": description if isinstance(description, str) else "",
    }
    if incident_type:
        incident["type"] = incident_type
    return incident


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchOutcome:
    incidents: list[dict[str, Any]]
    last_run: dict[str, Any]
    figures: str


def fetch_incidents(client: EventSourceClient, settings: Settings, last_run: dict[str, Any],
                    now: datetime) -> FetchOutcome:
    """One fetch run. Delivers what it read up to a fault, with the state for exactly that; fails when
    it could deliver nothing, leaving the last run as it was."""
    run = FetchRun(load_state(last_run, settings.first_fetch), settings.max_fetch, settings.look_back, now)
    stopped_by: EventSourceError | None = None
    try:
        for events in client.iter_pages(run.since, settings.status, settings.severities):
            run.take(events)
            if run.full:
                break
    except EventSourceError as error:
        if not run.new_events:
            reread = f" after re-reading {run.events_read} events already fetched" if run.events_read else ""
            raise EventSourceError(f"No incident fetched{reread}: {error}") from None
        stopped_by = error
    log_skipped(run)
    if stopped_by is not None:
        demisto.info(f"Fetch stopped early and delivers the {len(run.new_events)} incidents read so far: {stopped_by}")
    next_state = run.next_state()
    incidents = [event_to_incident(event, position, settings.incident_type)
                 for event, position in zip(run.new_events, run.new_positions, strict=True)]
    lag = (run.newest_read - next_state.watermark).total_seconds() if run.newest_read else 0.0
    figures = (f"fetch figures: events_read={run.events_read} incidents={len(incidents)} "
               f"duplicates={run.already_delivered} behind_floor={run.behind_floor} invalid={len(run.invalid)} "
               f"future_dated={run.dated_in_future} pages={client.pages} retries={client.retries} "
               f"watermark={format_time(next_state.watermark)} lag_seconds={max(lag, 0.0):g} "
               f"remembered_ids={len(next_state.seen_ids)}")
    return FetchOutcome(incidents, dump_state(next_state), figures)


def log_skipped(run: FetchRun) -> None:
    """Unusable and future-dated events, named in the log; a flood is summed up, not repeated."""
    for description in run.invalid[:MAX_SKIPPED_LOGGED]:
        demisto.info(f"Skipped {description}.")
    if len(run.invalid) > MAX_SKIPPED_LOGGED:
        demisto.info(f"Skipped {len(run.invalid) - MAX_SKIPPED_LOGGED} more unusable events.")
    if run.dated_in_future:
        demisto.info(f"{run.dated_in_future} events are dated after {format_time(run.now)}: the Event Source's "
                     "clock may be ahead; they are fetched, and the watermark stays at the present.")


def test_module(client: EventSourceClient, settings: Settings, now: datetime) -> str:
    """`ok` when URL and key work, and with fetching on, when a dry fetch of one event works."""
    client.health()
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


EVENT_FIELDS = ["id", "name", "created_time", "severity", "status", "type"]


def get_events_command(client: EventSourceClient, args: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Previews the events the API holds; never reads or writes the last run."""
    since = parse_time_expression(args.get("since") or "1 hour", now, "since")
    status = parse_status(args["status"], "status") if str(args.get("status") or "").strip() else None
    severities = parse_severities(args.get("severity"), "severity")
    limit = parse_int(args.get("limit"), "limit", 1, 1000, 20)
    events: list[dict[str, Any]] = []
    for page in client.iter_pages(since, status, severities, page_size=min(limit, API_PAGE_SIZE)):
        events += [event for event in page if event_position(event) is not None]
        if len(events) >= limit:
            break
    events = events[:limit]
    outputs = [{key: event.get(key) for key in EVENT_FIELDS} for event in events]
    return {
        "Type": 1,
        "ContentsFormat": "json",
        "Contents": events,
        "HumanReadable": markdown_table(f"Event Source events since {format_time(since)}", outputs, EVENT_FIELDS),
        "ReadableContentsFormat": "markdown",
        "EntryContext": {f"{CONTEXT_PREFIX}(val.id && val.id == obj.id)": outputs},
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
            client = EventSourceClient(settings)
            outcome = fetch_incidents(client, settings, demisto.getLastRun(), now)
            demisto.debug(outcome.figures)
            demisto.incidents(outcome.incidents)
            demisto.setLastRun(outcome.last_run)
        elif command == "test-module":
            demisto.results(test_module(EventSourceClient(settings), settings, now))
        elif command == "event-fetcher-get-events":
            demisto.results(get_events_command(EventSourceClient(settings), demisto.args(), now))
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
