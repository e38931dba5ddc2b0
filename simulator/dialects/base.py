"""What every API dialect shares: the request, derived ids, time parsing, listing order, page faults, truth."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode

from ..clock import from_ms
from ..events import EventTruth, StoredEvent
from ..faults import Fault
from ..responses import Response, json_response

if TYPE_CHECKING:
    from ..server import RequestRecord
    from .hub import DialectHub

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A dialect's endpoints: kind ("list", "token") -> (HTTP method, path pattern).
Endpoints = dict[str, tuple[str, re.Pattern[str]]]
FOREIGN_HOST = "127.0.0.2"


class BadRequest(Exception):
    """A malformed query; the dialect turns the message into its own error body."""


# -- the request -----------------------------------------------------------------------------------


@dataclass
class Request:
    """One request to a dialect endpoint, with the query kept in order and with every repeated value."""

    method: str
    kind: str  # the endpoint within the dialect: "list" or "token"
    path: str
    pairs: list[tuple[str, str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    now_ms: int
    base_url: str

    def arg(self, name: str) -> str | None:
        values = self.args(name)
        return values[-1] if values else None

    def args(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def link(self, replace: dict[str, str | None] | None = None, *, foreign: bool = False) -> str:
        """This request's absolute URL with some parameters replaced (None removes one), optionally on another host.

        A replaced parameter keeps its place; a new one goes last.
        """
        replace = replace or {}
        done: set[str] = set()
        pairs: list[tuple[str, str]] = []
        for key, value in self.pairs:
            if key not in replace:
                pairs.append((key, value))
            elif key not in done:
                done.add(key)
                if replace[key] is not None:
                    pairs.append((key, str(replace[key])))
        pairs += [(k, str(v)) for k, v in replace.items() if k not in done and v is not None]
        base = self.base_url
        if foreign:
            scheme, _, rest = base.partition("://")
            base = f"{scheme}://{FOREIGN_HOST}:{rest.rpartition(':')[2]}"
        query = urlencode(pairs, quote_via=quote, safe="$'*")
        return f"{base}{self.path}?{query}" if query else f"{base}{self.path}"


# -- derived ids and values ----------------------------------------------------------------------------


def digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()


@functools.lru_cache(maxsize=1 << 18)
def uuid_for(namespace: str, store_id: str) -> str:
    """A version-4-shaped UUID derived from the store id, as Okta's uuid or a tenant id look."""
    return str(uuid.UUID(bytes=digest(namespace, store_id)[:16], version=4))


@functools.lru_cache(maxsize=1 << 18)
def hex_for(namespace: str, store_id: str, length: int = 32) -> str:
    return digest(namespace, store_id).hex()[:length]


@functools.lru_cache(maxsize=1 << 18)
def number_for(namespace: str, store_id: str, modulus: int) -> int:
    return int.from_bytes(digest(namespace, store_id)[:8], "big") % modulus


def secret_for(api_key: str, label: str, length: int = 40) -> str:
    """A dialect credential derived from the simulator's API key, so that it is known out of process too."""
    raw = base64.urlsafe_b64encode(digest("secret", api_key, label)).decode().rstrip("=")
    return raw[:length]


def pick(namespace: str, store_id: str, choices: list[Any] | tuple[Any, ...]) -> Any:
    return choices[number_for(namespace, store_id, len(choices))]


def encode_token(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> Any:
    """Inverse of :func:`encode_token`; BadRequest for anything else."""
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("malformed token") from None


def source_of(event: StoredEvent) -> tuple[str | None, str | None]:
    """(host, ip) of an event, None where its ``source`` is missing or malformed."""
    source = event.body.get("source")
    if not isinstance(source, dict):
        return None, None
    host, ip = source.get("host"), source.get("ip")
    return (host if isinstance(host, str) else None), (ip if isinstance(ip, str) else None)


def user_of(event: StoredEvent) -> str | None:
    user = event.body.get("user")
    if isinstance(user, dict) and isinstance(user.get("name"), str):
        return str(user["name"])
    return None


def tags_of(event: StoredEvent) -> list[str]:
    tags = event.body.get("tags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def description_of(event: StoredEvent) -> str | None:
    value = event.body.get("description")
    return value if isinstance(value, str) else None


def basic_credentials(req: Request) -> tuple[str, str]:
    """(user, password) of an ``Authorization: Basic`` header; empty strings when there is none or it is malformed."""
    scheme, _, encoded = (req.header("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


def same_secret(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


# -- time -------------------------------------------------------------------------------------------

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_instant(value: str, *, zone_required: bool = True, time_required: bool = True) -> Fraction:
    """An ISO 8601 / RFC 3339 time as exact seconds since the epoch, whatever its fraction digits."""
    match = _ISO.fullmatch(value.strip())
    if not match:
        raise BadRequest(f"not an ISO 8601 time: {value!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if hour is None and time_required:
        raise BadRequest(f"not an ISO 8601 date and time: {value!r}")
    if zone is None and zone_required:
        raise BadRequest(f"no time zone offset in {value!r}")
    try:
        dt = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=UTC)
    except ValueError:
        raise BadRequest(f"not a valid time: {value!r}") from None
    seconds = Fraction(int((dt - EPOCH).total_seconds()))
    if fraction:
        seconds += Fraction(int(fraction), 10 ** len(fraction))
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + (int(digits[2:4]) * 60 if len(digits) > 2 else 0)
        seconds -= sign * offset
    return seconds


def http_date(dt: datetime) -> str:
    return format_datetime(dt, usegmt=True)


@dataclass
class Interval:
    """A half-open span ``[lo, hi)`` of integers in some unit of time (ms, seconds, 100 ns ticks)."""

    unit: int  # units per second
    lo: int | None = None
    hi: int | None = None

    def ge(self, t: Fraction) -> None:
        self._lo(math.ceil(t * self.unit))

    def gt(self, t: Fraction) -> None:
        self._lo(math.floor(t * self.unit) + 1)

    def lt(self, t: Fraction) -> None:
        self._hi(math.ceil(t * self.unit))

    def le(self, t: Fraction) -> None:
        self._hi(math.floor(t * self.unit) + 1)

    def _lo(self, value: int) -> None:
        self.lo = value if self.lo is None else max(self.lo, value)

    def _hi(self, value: int) -> None:
        self.hi = value if self.hi is None else min(self.hi, value)

    def __contains__(self, value: int) -> bool:
        return (self.lo is None or value >= self.lo) and (self.hi is None or value < self.hi)

    def ms_range(self) -> tuple[int | None, int | None]:
        """Creation times in ms that can hold a match, widened by a second for units coarser or finer than ms."""
        lo = None if self.lo is None else math.floor(Fraction(self.lo * 1000, self.unit)) - 1000
        hi = None if self.hi is None else math.ceil(Fraction(self.hi * 1000, self.unit)) + 1000
        return lo, hi


# -- listing order and page faults ------------------------------------------------------------------------


def ordered(
    events: Iterable[StoredEvent],
    accept: Callable[[StoredEvent], bool],
    *,
    group: Callable[[StoredEvent], Any],
    key: Callable[[StoredEvent], Any],
    need: int | None = None,
    reverse: bool = False,
) -> list[StoredEvent]:
    """The accepted events in the dialect's order, at least the first ``need`` of them (all when None).

    ``events`` come in store order (or its reverse, with ``reverse``); a dialect orders within a ``group``
    (a millisecond, a second) by ``key``, so the walk stops only once ``need`` are found and the group ends.
    """
    found: list[StoredEvent] = []
    last_group: Any = None
    for event in events:
        if need is not None and len(found) >= need and group(event) != last_group:
            break
        if accept(event):
            found.append(event)
            last_group = group(event)
    found.sort(key=key, reverse=reverse)
    return found


def shape_page(due: list[Any], fault: Fault | None) -> tuple[list[Any], str | None]:
    """The page after a ``short_page`` or ``empty_page`` fault, and which of them shaped it (None: as due)."""
    if fault is None:
        return due, None
    if fault.kind == "empty_page":
        return [], "empty_page"
    if fault.kind == "short_page":
        if fault.options.get("size") is not None:
            size = int(fault.options["size"])
        else:
            size = math.floor(float(fault.options.get("fraction") or 0.0) * len(due))
        return due[: max(0, min(size, len(due) - 1))], "short_page"
    return due, None


def link_fault(fault: Fault | None) -> str | None:
    """``repeat_link`` or ``foreign_link`` when the fault is one of them."""
    return fault.kind if fault is not None and fault.kind in ("repeat_link", "foreign_link") else None


def retry_after(form: str, value: int, now: datetime) -> dict[str, str]:
    """The standard ``Retry-After`` header in the form a rate-limit fault asks for."""
    if form == "seconds":
        return {"Retry-After": str(value)}
    if form == "date":
        return {"Retry-After": http_date(now + timedelta(seconds=value))}
    return {}


# -- ground truth ----------------------------------------------------------------------------------------


@dataclass
class DialectTruth(EventTruth):
    """Ground truth about one event as a dialect shows it: ``event`` is the dialect's item, ``id`` its id,
    ``status_history`` in the dialect's status values (None for Okta, which has no status)."""

    dialect: str = ""
    item_id: str = ""
    store_id: str = ""

    @property
    def id(self) -> str:
        return self.item_id

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "dialect": self.dialect, "id": self.item_id, "store_id": self.store_id}


# -- the dialect ---------------------------------------------------------------------------------------------


@dataclass
class Options:
    """Switches of one dialect; subclasses add theirs. All default to the realistic, quiet setting."""

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown option {name!r}; choose among {sorted(known)}")
            setattr(self, name, value)
        self.validate()

    def validate(self) -> None:
        pass

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Dialect(ABC):
    """One API's dialect over the shared event store. Subclasses fill in the class attributes and the methods."""

    name: ClassVar[str]
    profile: ClassVar[str]  # the integration's ``source`` value for this dialect
    endpoints: ClassVar[Endpoints]
    statuses: ClassVar[dict[str, str]] = {}  # store status -> dialect status
    options_class: ClassVar[type[Options]] = Options

    def __init__(self, hub: DialectHub) -> None:
        self.hub = hub
        self.options = self.options_class()

    # -- the item ------------------------------------------------------------------------------------

    @abstractmethod
    def item_id(self, event: StoredEvent) -> str:
        """The dialect's id for an event, derived deterministically from the store."""

    @abstractmethod
    def item(self, event: StoredEvent, now_ms: int) -> dict[str, Any]:
        """The event as this API shows it at ``now_ms``."""

    def status(self, store_status: str) -> str | None:
        """The dialect's status for a store status (New, In Progress, Closed, or another set by a test)."""
        return self.statuses.get(store_status, store_status)

    # -- the protocol ----------------------------------------------------------------------------------

    @abstractmethod
    def authorize(self, req: Request) -> Response | None:
        """None when the request's credentials are good, else the API's refusal."""

    @abstractmethod
    def handle(self, req: Request, fault: Fault | None, record: RequestRecord) -> Response:
        """Answer a request that passed authorization and was not replaced by a fault."""

    @abstractmethod
    def error(self, status: int, message: str) -> Response:
        """An error in the API's own body shape."""

    @abstractmethod
    def rate_limited(self, req: Request, form: str, value: int) -> Response:
        """A 429 with the API's own rate-limit signalling (``form`` as the rate_limit fault's ``retry_after``)."""

    @abstractmethod
    def credentials(self) -> dict[str, str]:
        """What a client needs to sign in, by name (``client_id``, ``token``, ``username``...)."""

    @abstractmethod
    def instance_params(self) -> dict[str, Any]:
        """The integration's instance parameters for this dialect against this simulator."""

    # -- helpers ----------------------------------------------------------------------------------------

    def json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
        return json_response(status, obj, headers)

    def now(self, req: Request) -> datetime:
        return from_ms(req.now_ms)

    def truth(self, event: StoredEvent, base: EventTruth, now_ms: int) -> DialectTruth:
        return DialectTruth(
            event=self.item(event, now_ms),
            created_time=base.created_time,
            visible_at=base.visible_at,
            status_history=[(t, s) for t, s in ((t, self.status(s)) for t, s in base.status_history) if s is not None],
            visible=base.visible,
            dialect=self.name,
            item_id=self.item_id(event),
            store_id=event.id,
        )
