"""Event store with ground truth, a seeded event generator, and the listing/cursor logic of the API."""

from __future__ import annotations

import bisect
import copy
import math
import random
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clock import format_ms, from_ms, to_ms
from .config import SimConfig

STATUSES = ("New", "In Progress", "Closed")
SEVERITIES = ("low", "medium", "high", "critical")
ODD_SEVERITIES = ("HIGH", "informational", "", "sev3", "Critical ", "unknown")


class _Missing:
    """Marker for "leave this field out of the event" (distinct from ``None``, which renders as null)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
# Default for ``add_event(name=...)``: a readable name derived from the id.
AUTO_NAME = "\x00auto-name"


class InvalidCursor(Exception):
    """The cursor is unknown, malformed, expired or was issued for other filters."""


@dataclass
class StoredEvent:
    """One event as the server keeps it: the public fields minus status, plus timing and history."""

    id: str
    created_ms: int
    visible_ms: int
    body: dict[str, Any]
    # (time in ms, status), ascending; entries in the future are scheduled changes.
    history: list[tuple[int, str]]
    # 1, 2, 3... in order of insertion into the store: a stable base for sequential ids of the API dialects.
    ordinal: int = 0

    @property
    def key(self) -> tuple[int, str]:
        return (self.created_ms, self.id)

    def status_at(self, now_ms: int) -> str:
        current = self.history[0][1]
        for when, status in self.history:
            if when > now_ms:
                break
            current = status
        return current

    def public(self, now_ms: int, *, detached: bool = True) -> dict[str, Any]:
        """The Event object at ``now_ms``; ``detached=False`` shares nested values (only for serialising)."""
        event = _copy_json(self.body) if detached else dict(self.body)
        event["status"] = self.status_at(now_ms)
        return event


def _copy_json(value: Any) -> Any:
    """Deep copy of JSON-like data, several times faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


@dataclass
class EventTruth:
    """Ground truth about one event, visible or not."""

    event: dict[str, Any]
    created_time: datetime
    visible_at: datetime
    status_history: list[tuple[datetime, str]]
    visible: bool

    @property
    def id(self) -> str:
        return str(self.event["id"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "created_time": format_ms(to_ms(self.created_time)),
            "visible_at": format_ms(to_ms(self.visible_at)),
            "status_history": [[format_ms(to_ms(t)), s] for t, s in self.status_history],
            "visible": self.visible,
        }


@dataclass(frozen=True)
class Filters:
    """Parsed filter parameters of a listing; a cursor remembers the filters it was issued for."""

    status: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    severities: frozenset[str] | None = None

    def matches(self, event: StoredEvent, now_ms: int) -> bool:
        if self.status is not None and event.status_at(now_ms) != self.status:
            return False
        return not (self.severities is not None and event.body.get("severity") not in self.severities)


@dataclass
class CursorState:
    after: tuple[int, str] | None  # None: nothing consumed yet, start at ``since``
    filters: Filters
    issued_ms: int


@dataclass
class Page:
    events: list[dict[str, Any]]
    next_cursor: str | None
    short: bool = False


_TYPES: list[tuple[str, list[str], list[str], str]] = [
    (
        "Authentication",
        ["Suspicious login from {ip}", "Impossible travel for {user}", "Connexion suspecte depuis {ip}"],
        ["vpn", "brute-force", "identity"],
        "Five failed logins followed by a success.",
    ),
    (
        "Malware",
        ["Malware detected on {host}", "Ransomware behaviour on {host}"],
        ["edr", "malware"],
        "The endpoint agent quarantined a file.",
    ),
    (
        "Network",
        ["Port scan from {ip}", "Beaconing from {host} to {ip}"],
        ["ids", "network"],
        "Repeated connections matching a known pattern.",
    ),
    (
        "DataLoss",
        ["Large upload from {host}", "Sensitive file shared externally by {user}"],
        ["dlp", "exfiltration"],
        "Volume above the daily baseline.",
    ),
    (
        "Policy",
        ["Policy violation by {user}", "Unapproved software on {host}"],
        ["policy"],
        "A configuration rule did not pass.",
    ),
]
_HOSTS = ["vpn-gw-1", "vpn-gw-2", "web-01", "web-02", "db-01", "mail-01", "fs-03", "laptop-4821", "laptop-7730"]
_USERS = ["alice", "bob", "carol", "dave", "eve", "mallory", "renée"]
_NETS = ["203.0.113.", "198.51.100.", "192.0.2."]
_TACTICS = ["initial-access", "execution", "persistence", "lateral-movement", "exfiltration"]


class EventGenerator:
    """Produces realistic event bodies from a seeded RNG, following the config's quirk fractions."""

    def __init__(self, config: SimConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng

    def body(self) -> dict[str, Any]:
        rng, cfg = self.rng, self.config
        etype, names, tags, description = rng.choice(_TYPES)
        ip = rng.choice(_NETS) + str(rng.randint(1, 254))
        host = rng.choice(_HOSTS)
        user = rng.choice(_USERS)
        body: dict[str, Any] = {}
        roll = rng.random()
        if roll < cfg.missing_name_fraction:
            variant = rng.choice(["missing", "null", "empty"])
            if variant != "missing":
                body["name"] = None if variant == "null" else ""
        else:
            body["name"] = rng.choice(names).format(ip=ip, host=host, user=user)
        roll = rng.random()
        if roll < cfg.missing_severity_fraction:
            pass
        elif roll < cfg.missing_severity_fraction + cfg.odd_severity_fraction:
            body["severity"] = rng.choice(ODD_SEVERITIES)
        else:
            weights = [max(0.0, cfg.severity_weights.get(s, 0.0)) for s in SEVERITIES]
            body["severity"] = rng.choices(SEVERITIES, weights=weights)[0] if sum(weights) > 0 else "medium"
        body["type"] = etype
        body["description"] = description
        body["source"] = {"host": host, "ip": ip}
        body["tags"] = rng.sample(tags, k=rng.randint(1, len(tags)))
        if rng.random() < cfg.extra_fields_fraction:
            body.update(self._extra(user, host))
        if rng.random() < cfg.malformed_field_fraction:
            self._malform(body)
        return body

    def _extra(self, user: str, host: str) -> dict[str, Any]:
        rng = self.rng
        extra: dict[str, Any] = {}
        if rng.random() < 0.6:
            extra["user"] = {"name": user, "domain": "CORP", "groups": rng.sample(["admins", "vpn", "finance"], k=2)}
        if rng.random() < 0.5:
            extra["mitre"] = {"tactic": rng.choice(_TACTICS), "techniques": [f"T{rng.randint(1000, 1600)}"]}
        if rng.random() < 0.4:
            extra["raw"] = {"vendor_id": rng.randint(10**5, 10**6), "sensor": {"name": host, "version": "4.2.1"}}
        extra["count"] = rng.randint(1, 50)
        return extra

    def _malform(self, body: dict[str, Any]) -> None:
        choice = self.rng.choice(["tags", "source", "description", "source_ip"])
        if choice == "tags":
            body["tags"] = ",".join(body.get("tags", []))
        elif choice == "source":
            body["source"] = None
        elif choice == "description":
            body["description"] = 12345
        else:
            body["source"] = {"host": body["source"]["host"], "ip": "not-an-ip"}

    def delay_ms(self) -> int:
        if self.config.late_fraction > 0 and self.rng.random() < self.config.late_fraction:
            return int(self.rng.uniform(0.0, self.config.max_delay_seconds) * 1000)
        return 0

    def history(self, created_ms: int, visible_ms: int) -> list[tuple[int, str]]:
        """Status history from creation, with later changes scheduled ahead of time."""
        cfg, rng = self.config, self.rng
        history = [(created_ms, "New")]
        if cfg.status_change_probability > 0 and rng.random() < cfg.status_change_probability:
            lo, hi = cfg.status_change_min_seconds, max(cfg.status_change_min_seconds, cfg.status_change_max_seconds)
            in_progress = visible_ms + int(rng.uniform(lo, hi) * 1000)
            history.append((in_progress, "In Progress"))
            if rng.random() < cfg.close_probability:
                history.append((in_progress + int(rng.uniform(lo, hi) * 1000), "Closed"))
        return history


class EventStore:
    """All events ever created, sorted by (created_time, id), plus cursors. Not thread-safe by itself."""

    def __init__(self, config: SimConfig, seed: int, start_ms: int) -> None:
        self.config = config
        self._rng = random.Random(f"events:{seed}")
        self.generator = EventGenerator(config, self._rng)
        self._events: list[StoredEvent] = []
        self._keys: list[tuple[int, str]] = []
        self._by_id: dict[str, StoredEvent] = {}
        self._cursors: dict[str, CursorState] = {}
        self._seq = 0
        self._inserted = 0
        self._generated_until_ms = start_ms
        self._next_arrival_s: float | None = None
        if config.rate_per_second > 0:
            self._next_arrival_s = start_ms / 1000 + self._rng.expovariate(config.rate_per_second)
        self._make_backlog(start_ms)

    # -- creation ------------------------------------------------------------------------------

    def _next_id(self) -> str:
        while True:
            self._seq += 1
            candidate = f"evt-{self._seq:06d}"
            if candidate not in self._by_id:
                return candidate

    def _insert(self, event: StoredEvent) -> None:
        self._inserted += 1
        event.ordinal = self._inserted
        index = bisect.bisect_left(self._keys, event.key)
        self._keys.insert(index, event.key)
        self._events.insert(index, event)
        self._by_id[event.id] = event

    def _generate_at(self, created_ms: int, count: int) -> None:
        for _ in range(count):
            event_id = self._next_id()
            body = {"id": event_id, "created_time": format_ms(created_ms)}
            body.update(self.generator.body())
            visible_ms = created_ms + self.generator.delay_ms()
            history = self.generator.history(created_ms, visible_ms)
            self._insert(StoredEvent(event_id, created_ms, visible_ms, body, history))

    def _burst_size(self) -> int:
        cfg = self.config
        if cfg.tie_probability > 0 and self._rng.random() < cfg.tie_probability:
            return max(1, cfg.tie_size)
        return 1

    def _make_backlog(self, start_ms: int) -> None:
        cfg = self.config
        if cfg.backlog <= 0:
            return
        span_ms = max(1, int(cfg.backlog_span_seconds * 1000))
        bursts: list[tuple[int, int]] = []
        remaining = cfg.backlog
        while remaining > 0:
            size = min(remaining, self._burst_size())
            bursts.append((start_ms - 1 - self._rng.randrange(span_ms), size))
            remaining -= size
        # Ids follow creation order, as a source numbering events on arrival would.
        bursts.sort(key=lambda b: b[0])
        for created_ms, size in bursts:
            self._generate_at(created_ms, size)

    def generate_until(self, now_ms: int) -> None:
        """Create the Poisson arrivals due up to ``now_ms``; independent of how often it is called."""
        if self._next_arrival_s is None or now_ms <= self._generated_until_ms:
            return
        while True:
            arrival_ms = math.floor(self._next_arrival_s * 1000)
            if arrival_ms > now_ms:
                break
            self._generate_at(arrival_ms, self._burst_size())
            self._next_arrival_s += self._rng.expovariate(self.config.rate_per_second)
        self._generated_until_ms = now_ms

    def add_event(
        self,
        now_ms: int,
        created_ms: int | None,
        *,
        event_id: str | None,
        delay_seconds: float,
        status: str,
        severity: Any,
        name: Any,
        fields: dict[str, Any],
    ) -> StoredEvent:
        if event_id is None:
            event_id = self._next_id()
        elif event_id in self._by_id:
            raise ValueError(f"duplicate event id {event_id!r}")
        created = now_ms if created_ms is None else created_ms
        body: dict[str, Any] = {"id": event_id, "created_time": format_ms(created)}
        if name is not MISSING:
            body["name"] = f"Test event {event_id}" if name == AUTO_NAME else name
        if severity is not MISSING:
            body["severity"] = severity
        body.update(copy.deepcopy(fields))
        body.pop("status", None)
        body["id"], body["created_time"] = event_id, format_ms(created)
        visible_ms = created + round(delay_seconds * 1000)
        event = StoredEvent(event_id, created, visible_ms, body, [(created, status)])
        self._insert(event)
        return event

    def set_status(self, event_id: str, status: str, now_ms: int) -> None:
        event = self._by_id[event_id]
        # An explicit change replaces whatever was scheduled for the future.
        event.history = [h for h in event.history if h[0] <= now_ms]
        event.history.append((max(now_ms, event.history[-1][0]), status))

    # -- reading --------------------------------------------------------------------------------

    def get(self, event_id: str) -> StoredEvent | None:
        return self._by_id.get(event_id)

    def __len__(self) -> int:
        return len(self._events)

    def events_between(self, lo_ms: int | None, hi_ms: int | None) -> list[StoredEvent]:
        """Events created in ``[lo_ms, hi_ms)`` (None: unbounded), visible or not, in (created_time, id) order."""
        lo = 0 if lo_ms is None else bisect.bisect_left(self._keys, (lo_ms, ""))
        hi = len(self._keys) if hi_ms is None else bisect.bisect_left(self._keys, (hi_ms, ""))
        return self._events[lo:hi]

    def truth(self, now_ms: int) -> list[EventTruth]:
        return [
            EventTruth(
                event=e.public(now_ms),
                created_time=from_ms(e.created_ms),
                visible_at=from_ms(e.visible_ms),
                status_history=[(from_ms(t), s) for t, s in e.history if t <= now_ms],
                visible=e.visible_ms <= now_ms,
            )
            for e in self._events
        ]

    # -- listing ---------------------------------------------------------------------------------

    def _cursor_state(self, token: str, filters: Filters, now_ms: int) -> CursorState:
        state = self._cursors.get(token)
        if state is None:
            raise InvalidCursor(token)
        if now_ms - state.issued_ms > self.config.cursor_ttl_seconds * 1000:
            del self._cursors[token]
            raise InvalidCursor(token)
        if self.config.strict_cursor_filters and state.filters != filters:
            raise InvalidCursor(token)
        return state

    def count_visible(self, now_ms: int) -> int:
        return sum(1 for e in self._events if e.visible_ms <= now_ms)

    def open_cursors(self) -> int:
        return len(self._cursors)

    def expire_cursor(self, token: str) -> None:
        self._cursors.pop(token, None)

    def expire_cursors(self) -> int:
        count = len(self._cursors)
        self._cursors.clear()
        return count

    def _issue_cursor(self, after: tuple[int, str] | None, filters: Filters, now_ms: int) -> str:
        if len(self._cursors) > 10_000:
            ttl_ms = self.config.cursor_ttl_seconds * 1000
            self._cursors = {k: v for k, v in self._cursors.items() if now_ms - v.issued_ms <= ttl_ms}
        token = secrets.token_urlsafe(18)
        self._cursors[token] = CursorState(after, filters, now_ms)
        return token

    def list_page(
        self,
        filters: Filters,
        limit: int,
        cursor: str | None,
        now_ms: int,
        short: dict[str, Any] | None = None,
    ) -> Page:
        """One page of the listing; ``short`` (options of a short_page fault) cuts it short on purpose."""
        after: tuple[int, str] | None = None
        if cursor is not None:
            after = self._cursor_state(cursor, filters, now_ms).after
        if after is not None:
            index = bisect.bisect_right(self._keys, after)
        elif filters.since_us is not None:
            index = bisect.bisect_left(self._keys, (-(-filters.since_us // 1000), ""))
        else:
            index = 0
        found: list[StoredEvent] = []
        more = False
        until_us = filters.until_us
        events = self._events
        for position in range(index, len(events)):
            event = events[position]
            if until_us is not None and event.created_ms * 1000 >= until_us:
                break
            if event.visible_ms > now_ms or not filters.matches(event, now_ms):
                continue
            if len(found) == limit:
                more = True
                break
            found.append(event)
        if short is not None:
            if short.get("size") is not None:
                size = int(short["size"])
            else:
                size = math.floor(float(short.get("fraction") or 0.0) * len(found))
            found = found[: max(0, min(size, len(found) - 1))]
            more = True
        next_cursor = None
        if more:
            next_cursor = self._issue_cursor(found[-1].key if found else after, filters, now_ms)
        return Page([e.public(now_ms, detached=False) for e in found], next_cursor, short is not None)
