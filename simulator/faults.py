"""Fault injection: a deterministic scripted queue for tests and seeded per-request probabilities for soak runs.

Kinds and their options (anything not given is chosen by the seeded fault RNG for probabilistic
faults, or takes the default shown for scripted ones):

- ``rate_limit``: 429 JSON. ``retry_after`` = ``"seconds"`` (default) | ``"date"`` | ``"missing"``;
  ``value`` = seconds to wait (int, default 1, 0 allowed).
- ``server_error``: ``status`` = 500 | 502 | 503 (default) | 504;
  ``body`` = ``"json"`` (default) | ``"html"`` | ``"empty"``.
- ``slow``: the normal answer after ``seconds`` (default 5.0); ``stop()`` cuts the wait short.
- ``drop``: the connection is closed without any response.
- ``truncated``: the normal status with the body cut at ``fraction`` (default 0.5) of its bytes.
- ``cursor_expired``: only on requests carrying a cursor; 400 invalid cursor. ``invalidate`` (default
  True) also forgets the cursor server-side, as a real expiry would.
- ``short_page``: only on listings; a page of ``size`` events, or else of ``fraction`` (default random,
  so possibly 0) of what was due, always fewer than due; ``next_cursor`` is non-null and the rest follow.

Kinds for the API dialects' listings only (``simulator.dialects``), never for the Event Source API:

- ``empty_page``: no items, yet the page links on (a next link, a token, ``more``/``has_more`` true) to
  where this page should have started, as Okta's polling does.
- ``repeat_link``: the page's items as usual, but its next link or token is the one of the request itself.
  Only where the API hands out links or tokens: graph, okta, servicenow, jira.
- ``foreign_link``: the page's items as usual, but its next link points at another host
  (``127.0.0.2``, same port and path) that a client must not follow. Only graph, okta, servicenow.

Every kind also takes ``endpoint`` to restrict which requests it applies to: ``"health"`` | ``"list"`` |
``"get"`` | ``"events"`` (list or get) for the Event Source API, a dialect's name (``"okta"``: all its
endpoints) or one endpoint of it (``"graph.list"``, ``"graph.token"``).
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "slow",
    "drop",
    "truncated",
    "cursor_expired",
    "short_page",
    "empty_page",
    "repeat_link",
    "foreign_link",
)
SERVER_ERROR_STATUSES = (500, 502, 503, 504)
SERVER_ERROR_BODIES = ("json", "html", "empty")
RETRY_AFTER_FORMS = ("seconds", "date", "missing")
ENDPOINTS = ("health", "list", "get", "events")
# The API dialects' endpoints (``simulator.dialects``): ``<dialect>.<kind>``.
DIALECT_ENDPOINTS = (
    "graph.token",
    "graph.list",
    "okta.list",
    "servicenow.list",
    "pagerduty.list",
    "jira.list",
    "custom.list",
)
DIALECTS = tuple(sorted({e.split(".")[0] for e in DIALECT_ENDPOINTS}))
DIALECT_LISTS = frozenset(e for e in DIALECT_ENDPOINTS if e.endswith(".list"))
# Dialect listings whose pages carry a next link or token (repeat_link), and a next URL (foreign_link).
LINKING_LISTS = frozenset({"graph.list", "okta.list", "servicenow.list", "jira.list"})
URL_LINKING_LISTS = frozenset({"graph.list", "okta.list", "servicenow.list"})

_DEFAULTS: dict[str, dict[str, Any]] = {
    "rate_limit": {"retry_after": "seconds", "value": 1},
    "server_error": {"status": 503, "body": "json"},
    "slow": {"seconds": 5.0},
    "drop": {},
    "truncated": {"fraction": 0.5},
    "cursor_expired": {"invalidate": True},
    "short_page": {"size": None, "fraction": None},
    "empty_page": {},
    "repeat_link": {},
    "foreign_link": {},
}
_ALLOWED_OPTIONS: dict[str, set[str]] = {kind: set(opts) | {"endpoint"} for kind, opts in _DEFAULTS.items()}


@dataclass
class Fault:
    """A fault chosen for one request, with fully resolved options."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    scripted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "options": dict(self.options), "scripted": self.scripted}


@dataclass
class _Scripted:
    kind: str
    remaining: int
    options: dict[str, Any]


def validate(kind: str, options: dict[str, Any]) -> None:
    """Reject unknown kinds, unknown options and out-of-range option values early."""
    if kind not in _DEFAULTS:
        raise ValueError(f"unknown fault kind {kind!r}; choose one of {list(FAULT_KINDS)}")
    unknown = set(options) - _ALLOWED_OPTIONS[kind]
    if unknown:
        raise ValueError(f"unknown option(s) for {kind}: {sorted(unknown)}")
    if "endpoint" in options and options["endpoint"] not in (*ENDPOINTS, *DIALECTS, *DIALECT_ENDPOINTS, None):
        raise ValueError(f"endpoint must be one of {[*ENDPOINTS, *DIALECTS, *DIALECT_ENDPOINTS]}")
    if kind == "rate_limit":
        if options.get("retry_after", "seconds") not in RETRY_AFTER_FORMS:
            raise ValueError(f"retry_after must be one of {list(RETRY_AFTER_FORMS)}")
        if int(options.get("value", 0)) < 0:
            raise ValueError("retry_after value must not be negative")
    if kind == "server_error":
        if options.get("status", 503) not in SERVER_ERROR_STATUSES:
            raise ValueError(f"status must be one of {list(SERVER_ERROR_STATUSES)}")
        if options.get("body", "json") not in SERVER_ERROR_BODIES:
            raise ValueError(f"body must be one of {list(SERVER_ERROR_BODIES)}")
    if kind == "truncated" and not 0.0 <= float(options.get("fraction", 0.5)) < 1.0:
        raise ValueError("fraction must be in [0, 1)")
    if kind == "short_page":
        if options.get("size") is not None and int(options["size"]) < 0:
            raise ValueError("size must not be negative")
        if options.get("fraction") is not None and not 0.0 <= float(options["fraction"]) < 1.0:
            raise ValueError("fraction must be in [0, 1)")


def applies(kind: str, options: dict[str, Any], endpoint: str, has_cursor: bool) -> bool:
    """Whether a fault of ``kind`` can hit a request to ``endpoint``."""
    wanted = options.get("endpoint")
    if wanted == "events" and endpoint not in ("list", "get"):
        return False
    if wanted not in (None, "events") and wanted != endpoint and not endpoint.startswith(f"{wanted}."):
        return False
    if kind == "cursor_expired":
        return endpoint == "list" and has_cursor
    if kind == "short_page":
        return endpoint == "list" or endpoint in DIALECT_LISTS
    if kind == "empty_page":
        return endpoint in DIALECT_LISTS
    if kind == "repeat_link":
        return endpoint in LINKING_LISTS
    if kind == "foreign_link":
        return endpoint in URL_LINKING_LISTS
    return True


class FaultInjector:
    """Decides, per API request, which fault (if any) to inject. Thread-safe."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self.rng = random.Random(f"faults:{seed}")
        self._queue: deque[_Scripted] = deque()
        self._probabilities: dict[str, float] = {}
        self._options: dict[str, dict[str, Any]] = {}

    def set_probabilities(self, probabilities: dict[str, float], options: dict[str, dict[str, Any]] | None) -> None:
        for kind, p in probabilities.items():
            validate(kind, {})
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"probability of {kind} must be in [0, 1]")
        for kind, opts in (options or {}).items():
            validate(kind, opts)
        if sum(float(p) for p in probabilities.values()) > 1.0:
            raise ValueError("fault probabilities must add up to at most 1")
        with self._lock:
            self._probabilities = {k: float(v) for k, v in probabilities.items() if float(v) > 0}
            self._options = {k: dict(v) for k, v in (options or {}).items()}

    def probabilities(self) -> dict[str, float]:
        with self._lock:
            return dict(self._probabilities)

    def inject(self, kind: str, count: int = 1, **options: Any) -> None:
        validate(kind, options)
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._queue.append(_Scripted(kind, count, dict(options)))

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"kind": s.kind, "remaining": s.remaining, "options": dict(s.options)} for s in self._queue]

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._probabilities = {}
            self._options = {}

    def decide(self, endpoint: str, has_cursor: bool) -> Fault | None:
        """The scripted queue wins; otherwise one draw of the seeded RNG against the probabilities."""
        with self._lock:
            for entry in self._queue:
                if applies(entry.kind, entry.options, endpoint, has_cursor):
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        self._queue.remove(entry)
                    options = {**_DEFAULTS[entry.kind], **entry.options}
                    options.pop("endpoint", None)
                    self._resolve_short_page(entry.kind, options)
                    return Fault(entry.kind, options, scripted=True)
            if not self._probabilities:
                return None
            draw = self.rng.random()
            total = 0.0
            for kind in FAULT_KINDS:
                p = self._probabilities.get(kind, 0.0)
                if p <= 0:
                    continue
                total += p
                if draw < total:
                    options = self._options.get(kind, {})
                    if not applies(kind, options, endpoint, has_cursor):
                        return None
                    return Fault(kind, self._random_options(kind, options))
            return None

    def _random_options(self, kind: str, given: dict[str, Any]) -> dict[str, Any]:
        """Fill options not fixed by the caller with seeded random choices, for variety in soak runs."""
        rng = self.rng
        chosen: dict[str, Any]
        if kind == "rate_limit":
            chosen = {"retry_after": rng.choice(RETRY_AFTER_FORMS), "value": rng.randint(0, 2)}
        elif kind == "server_error":
            chosen = {"status": rng.choice(SERVER_ERROR_STATUSES), "body": rng.choice(SERVER_ERROR_BODIES)}
        elif kind == "slow":
            chosen = {"seconds": round(rng.uniform(0.5, 3.0), 3)}
        elif kind == "truncated":
            chosen = {"fraction": round(rng.uniform(0.05, 0.95), 3)}
        else:
            chosen = dict(_DEFAULTS[kind])
        chosen.update(given)
        chosen.pop("endpoint", None)
        self._resolve_short_page(kind, chosen)
        return chosen

    def _resolve_short_page(self, kind: str, options: dict[str, Any]) -> None:
        """Draw a short page's size as a fraction here, under the lock, so the RNG sequence stays seeded."""
        if kind == "short_page" and options.get("size") is None and options.get("fraction") is None:
            options["fraction"] = round(self.rng.random(), 3)
