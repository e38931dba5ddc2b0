"""The simulated Event Source: an HTTP(S) server on loopback plus a Python control API for tests."""

from __future__ import annotations

import contextlib
import email.utils
import hmac
import ipaddress
import json
import re
import secrets
import socket
import ssl
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .clock import Clock, ManualClock, ensure_utc, format_ms, from_ms, to_ms
from .config import SimConfig
from .dialects import DialectHub
from .events import AUTO_NAME, SEVERITIES, EventStore, EventTruth, Filters, InvalidCursor, Page
from .faults import Fault, FaultInjector
from .responses import Response, json_response

API_PREFIX = "/api/v1"
CONTROL_PREFIX = "/_sim"
_LIMIT_RE = re.compile(r"[0-9]{1,9}")
_HTML_ERROR = (
    "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n"
    "<body><center><h1>{status} {reason}</h1></center><hr><center>nginx</center></body></html>\n"
)
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class BadRequest(Exception):
    """A malformed query parameter; the message becomes the 400 body's ``error``."""


@dataclass
class RequestRecord:
    """One API request as the server saw and answered it."""

    seq: int
    time: str
    method: str
    path: str
    query: dict[str, str]
    endpoint: str  # health | list | get | unknown
    status: int | None  # None when the connection was dropped without an answer
    fault: str | None = None
    fault_options: dict[str, Any] = field(default_factory=dict)
    event_ids: list[str] = field(default_factory=list)
    next_cursor: str | None = None

    @property
    def intact(self) -> bool:
        """Whether the client received the full response."""
        return self.status is not None and self.fault not in ("truncated", "drop")

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            "endpoint": self.endpoint,
            "status": self.status,
            "fault": self.fault,
            "fault_options": dict(self.fault_options),
            "event_ids": list(self.event_ids),
            "next_cursor": self.next_cursor,
        }


@dataclass
class _Counters:
    """Running request counters, kept apart from the (possibly capped) request log."""

    requests_total: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    by_fault: Counter[str] = field(default_factory=Counter)
    no_response: int = 0
    events_served: int = 0

    def add(self, record: RequestRecord) -> None:
        self.requests_total += 1
        self.by_endpoint[record.endpoint] += 1
        if record.status is None:
            self.no_response += 1
        else:
            self.by_status[record.status] += 1
        if record.fault:
            self.by_fault[record.fault] += 1
        if record.intact:
            self.events_served += len(record.event_ids)


_Response = Response
_json = json_response


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> _Response:
    return _json(status, {"error": message}, headers)


def parse_time(name: str, value: str) -> int:
    """An ISO 8601 time with a UTC offset (``Z`` or ``+00:00``...), as microseconds since the epoch."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 UTC time such as 2026-11-26T06:00:00.000Z") from None
    if dt.tzinfo is None or "T" not in value:
        raise BadRequest(f"{name} must be an ISO 8601 UTC time such as 2026-11-26T06:00:00.000Z")
    delta = ensure_utc(dt) - from_ms(0)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _parse_time_arg(value: datetime | str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_time("created_time", value) // 1000
    return to_ms(value)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    """Threaded HTTP server that remembers open connections so ``stop()`` can close them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, drops, TLS failures) are part of the simulation, not server errors.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "EventSource/1"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after a minute
    server: _Server

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            # The TLS handshake runs here, in the connection's own thread, so a slow client cannot block accept().
            self.connection.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        # The request log (``Simulator.request_log``) replaces stderr access logs.
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header tells the simulator's own clock, as a real server's tells its clock.
        return email.utils.formatdate(self.server.sim.clock.now().timestamp(), usegmt=True)

    def _dispatch(self) -> None:
        length = self.headers.get("Content-Length")
        body = b""
        if length and length.isdigit():
            body = self.rfile.read(int(length))
        response = self.server.sim._process(
            self.command, self.path, self.headers.get("Authorization"), body, headers=self.headers
        )
        if response.status is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = response.body if response.cut_at is None else response.body[: response.cut_at]
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            for name, value in response.header_list:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if response.cut_at is not None:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


class Simulator:
    """A local, controllable Event Source API server (see ``/work/shared/event-source-api.md``)."""

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        api_key: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the simulator only listens on loopback addresses, not {host!r}")
        self.config = config if config is not None else SimConfig()
        self.seed = seed
        self.clock: Clock = clock if clock is not None else ManualClock()
        self.api_key = api_key if api_key is not None else secrets.token_urlsafe(24)
        self.ssl_context = ssl_context
        self.host = host
        self._requested_port = port
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._store = EventStore(self.config, seed, to_ms(self.clock.now()))
        self._faults = FaultInjector(seed)
        if self.config.fault_probabilities:
            self._faults.set_probabilities(self.config.fault_probabilities, self.config.fault_options)
        self._log: deque[RequestRecord] = deque(maxlen=self.config.request_log_limit)
        self._counters = _Counters()
        self._control_requests = 0
        # The same events served in the dialects of other APIs (Graph, Okta, ServiceNow...) at their paths.
        self.dialects = DialectHub(self, self.config.dialect_options)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind and serve in a daemon thread; returns self so ``sim = Simulator().start()`` works."""
        if self._server is not None:
            return self
        server = _Server((self.host, self._requested_port), self)
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="event-source-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, interrupt slow answers, close every connection and the listening socket."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with server.connections_lock:
            open_connections = list(server.connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- control API ---------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return to_ms(self.clock.now())

    def _sync(self) -> int:
        """Bring generated traffic up to the clock's current time; call with the lock held."""
        now_ms = self._now_ms()
        self._store.generate_until(now_ms)
        return now_ms

    def add_event(
        self,
        created_time: datetime | str | None = None,
        *,
        id: str | None = None,
        delay_seconds: float = 0,
        status: str = "New",
        severity: Any = "medium",
        name: Any = AUTO_NAME,
        **fields: Any,
    ) -> dict[str, Any]:
        """Add one event (created now by default); pass ``MISSING`` as severity/name to leave it out.

        ``delay_seconds`` makes it visible only that long after ``created_time`` (late arrival).
        Returns the event as it is served (or will be, once visible).
        """
        with self._lock:
            now_ms = self._sync()
            event = self._store.add_event(
                now_ms,
                _parse_time_arg(created_time),
                event_id=id,
                delay_seconds=delay_seconds,
                status=status,
                severity=severity,
                name=name,
                fields=fields,
            )
            return event.public(now_ms)

    def add_events(self, n: int, at: datetime | str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """Add ``n`` events all created on the same millisecond ``at`` (now by default): a tie."""
        if "id" in kwargs:
            raise TypeError("add_events assigns ids itself")
        with self._lock:
            created = _parse_time_arg(at)
            if created is None:
                created = self._sync()
            return [self.add_event(format_ms(created), **kwargs) for _ in range(n)]

    def set_status(self, event_id: str, status: str) -> None:
        """Change an event's status now; the change is recorded in its history."""
        with self._lock:
            now_ms = self._sync()
            if self._store.get(event_id) is None:
                raise KeyError(event_id)
            self._store.set_status(event_id, status, now_ms)

    def advance(self, seconds: float) -> datetime:
        """Move a ManualClock forward, generating the traffic due in between."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs a ManualClock")
        now = self.clock.advance(seconds)
        with self._lock:
            self._sync()
        return now

    def truth(self) -> list[EventTruth]:
        """Every event ever created, visible or not, sorted by (created_time, id)."""
        with self._lock:
            return self._store.truth(self._sync())

    def get_truth(self, event_id: str) -> EventTruth:
        for item in self.truth():
            if item.id == event_id:
                return item
        raise KeyError(event_id)

    def request_log(self) -> list[RequestRecord]:
        """API requests in arrival order (control requests are not included)."""
        with self._lock:
            return list(self._log)

    def served_ids(self, dialect: str | None = None) -> list[str]:
        """Ids of events in Event Source API responses the client received whole, in the order they were sent.

        With ``dialect`` (``"okta"``...): the ids that dialect's listings served, in its own ids.
        """
        if dialect is not None:
            return self.dialects.served_ids(dialect)
        with self._lock:
            return [
                event_id
                for record in self._log
                if record.intact and "." not in record.endpoint
                for event_id in record.event_ids
            ]

    def clear_log(self) -> None:
        """Forget logged requests and reset the request counters."""
        with self._lock:
            self._log.clear()
            self._counters = _Counters()

    def stats(self) -> dict[str, Any]:
        """Counters over the request log, plus store and cursor totals."""
        with self._lock:
            now_ms = self._sync()
            counters = self._counters
            return {
                "requests_total": counters.requests_total,
                "by_endpoint": dict(counters.by_endpoint),
                "by_status": dict(sorted(counters.by_status.items())),
                "by_fault": dict(counters.by_fault),
                "no_response": counters.no_response,
                "events_served": counters.events_served,
                "control_requests": self._control_requests,
                "events_total": len(self._store),
                "events_visible": self._store.count_visible(now_ms),
                "open_cursors": self._store.open_cursors(),
            }

    def set_faults(self, options: dict[str, dict[str, Any]] | None = None, **probabilities: float) -> None:
        """Per-request fault probabilities for API requests, e.g. ``set_faults(rate_limit=0.1)``.

        Replaces the previous probabilities; ``options`` fixes options per kind (the rest are random).
        """
        self._faults.set_probabilities(probabilities, options)

    def inject(self, kind: str, count: int = 1, **options: Any) -> None:
        """Script ``kind`` for the next ``count`` matching API requests (see ``simulator.faults``)."""
        self._faults.inject(kind, count, **options)

    def pending_faults(self) -> list[dict[str, Any]]:
        return self._faults.pending()

    def clear_faults(self) -> None:
        """Empty the scripted queue and zero all probabilities."""
        self._faults.clear()

    def expire_cursors(self) -> int:
        """Invalidate every cursor issued so far; returns how many there were."""
        with self._lock:
            return self._store.expire_cursors()

    # -- request handling ----------------------------------------------------------------------

    def _authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode(), self.api_key.encode())

    def _wait(self, seconds: float) -> bool:
        """Sleep for a slow answer; False if ``stop()`` interrupted it."""
        return not self._stopping.wait(max(0.0, seconds))

    def _process(
        self, method: str, target: str, auth: str | None, body: bytes, headers: Any = None
    ) -> _Response:
        """Answer one request; ``headers`` (any mapping with ``items()``) is only needed by the API dialects."""
        parts = urlsplit(target)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if path.startswith(CONTROL_PREFIX + "/") or path == CONTROL_PREFIX:
            with self._lock:
                self._control_requests += 1
            if not self._authorized(auth):
                return _error(401, "invalid or missing API key")
            return self._control(method, path[len(CONTROL_PREFIX) :], body)

        dialect_endpoint = self.dialects.route(path)
        if dialect_endpoint is not None:
            record = RequestRecord(
                seq=0, time="", method=method, path=path, query=query, endpoint=dialect_endpoint, status=None
            )
            all_headers = dict(headers.items()) if headers is not None else {}
            if auth is not None and not any(k.lower() == "authorization" for k in all_headers):
                all_headers["Authorization"] = auth
            answer, dialect_fault = self.dialects.process(dialect_endpoint, method, parts, all_headers, body, record)
            self._finish(record, answer, dialect_fault)
            return answer

        endpoint, event_id = self._route(path)
        record = RequestRecord(seq=0, time="", method=method, path=path, query=query, endpoint=endpoint, status=None)
        fault: Fault | None = None
        if not self._authorized(auth):
            response = _error(401, "invalid or missing API key")
        elif endpoint == "unknown":
            response = _error(404, "not found")
        elif method != "GET":
            response = _error(405, "method not allowed", {"Allow": "GET"})
        else:
            fault = self._faults.decide(endpoint, "cursor" in query)
            response = self._serve(endpoint, event_id, query, fault, record)
        self._finish(record, response, fault)
        return response

    def _finish(self, record: RequestRecord, response: _Response, fault: Fault | None) -> None:
        """Complete the record of an API request and add it to the counters and the log."""
        record.status = response.status
        if fault is not None and record.fault is None and fault.kind != "short_page":
            record.fault, record.fault_options = fault.kind, dict(fault.options)
        with self._lock:
            self._counters.add(record)
            record.seq = self._counters.requests_total
            record.time = format_ms(self._now_ms())
            self._log.append(record)

    @staticmethod
    def _route(path: str) -> tuple[str, str | None]:
        if path == API_PREFIX + "/health":
            return "health", None
        if path == API_PREFIX + "/events":
            return "list", None
        prefix = API_PREFIX + "/events/"
        if path.startswith(prefix) and len(path) > len(prefix) and "/" not in path[len(prefix) :]:
            return "get", unquote(path[len(prefix) :])
        return "unknown", None

    def _serve(
        self, endpoint: str, event_id: str | None, query: dict[str, str], fault: Fault | None, record: RequestRecord
    ) -> _Response:
        if fault is not None:
            early = self._fault_response(fault, query)
            if early is not None:
                return early
        if endpoint == "health":
            response = _json(200, {"status": "ok", "version": "1"})
        elif endpoint == "get":
            with self._lock:
                now_ms = self._sync()
                event = self._store.get(event_id or "")
                if event is None or event.visible_ms > now_ms:
                    response = _error(404, "not found")
                else:
                    response = _json(200, event.public(now_ms, detached=False))
                    record.event_ids = [event.id]
        else:
            response = self._list(query, fault, record)
        if fault is not None and fault.kind == "truncated":
            fraction = float(fault.options.get("fraction", 0.5))
            response.cut_at = max(0, min(len(response.body) - 1, int(len(response.body) * fraction)))
        return response

    def _fault_response(self, fault: Fault, query: dict[str, str]) -> _Response | None:
        """The answer a fault replaces the normal one with, or None to continue normally."""
        opts = fault.options
        if fault.kind == "drop":
            return _Response(None)
        if fault.kind == "slow":
            if not self._wait(float(opts.get("seconds", 5.0))):
                return _Response(None)
            return None
        if fault.kind == "rate_limit":
            value = int(opts.get("value", 1))
            headers: dict[str, str] = {}
            form = opts.get("retry_after", "seconds")
            if form == "seconds":
                headers["Retry-After"] = str(value)
            elif form == "date":
                headers["Retry-After"] = format_datetime(self.clock.now() + timedelta(seconds=value), usegmt=True)
            return _error(429, "rate limit exceeded", headers)
        if fault.kind == "server_error":
            status = int(opts.get("status", 503))
            kind = opts.get("body", "json")
            if kind == "json":
                return _error(status, _REASONS[status].lower())
            if kind == "html":
                html = _HTML_ERROR.format(status=status, reason=_REASONS[status]).encode()
                return _Response(status, html, {"Content-Type": "text/html"})
            return _Response(status, b"", {})
        if fault.kind == "cursor_expired":
            if opts.get("invalidate", True):
                with self._lock:
                    self._store.expire_cursor(query.get("cursor", ""))
            return _error(400, "invalid cursor")
        return None

    def _list(self, query: dict[str, str], fault: Fault | None, record: RequestRecord) -> _Response:
        try:
            filters, limit = self._parse_listing(query)
        except BadRequest as exc:
            return _error(400, str(exc))
        short = fault is not None and fault.kind == "short_page"
        with self._lock:
            now_ms = self._sync()
            try:
                page: Page = self._store.list_page(
                    filters,
                    limit,
                    query.get("cursor"),
                    now_ms,
                    short=fault.options if short and fault is not None else None,
                )
            except InvalidCursor:
                return _error(400, "invalid cursor")
        if page.short and fault is not None:
            record.fault, record.fault_options = fault.kind, dict(fault.options)
        record.event_ids = [str(e["id"]) for e in page.events]
        record.next_cursor = page.next_cursor
        return _json(200, {"events": page.events, "next_cursor": page.next_cursor})

    def _parse_listing(self, query: dict[str, str]) -> tuple[Filters, int]:
        limit = self.config.default_limit
        if "limit" in query:
            raw = query["limit"]
            if not _LIMIT_RE.fullmatch(raw) or int(raw) < 1:
                raise BadRequest("limit must be a positive integer")
            limit = int(raw)
        limit = min(limit, self.config.max_limit)
        since = parse_time("since", query["since"]) if "since" in query else None
        until = parse_time("until", query["until"]) if "until" in query else None
        severities = None
        if "severity" in query:
            items = query["severity"].split(",")
            if not all(item in SEVERITIES for item in items):
                raise BadRequest(f"severity must be a comma-separated subset of {','.join(SEVERITIES)}")
            severities = frozenset(items)
        return Filters(query.get("status"), since, until, severities), limit

    # -- HTTP control interface ------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> _Response:
        routes: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
            ("POST", "/events"): self._ctl_events,
            ("POST", "/faults"): self._ctl_faults,
            ("POST", "/inject"): self._ctl_inject,
            ("POST", "/advance"): self._ctl_advance,
            ("POST", "/status"): lambda a: self.set_status(a["id"], a["status"]) or {"ok": True},
            ("POST", "/expire-cursors"): lambda a: {"expired": self.expire_cursors()},
            ("POST", "/clear-faults"): lambda a: self.clear_faults() or {"ok": True},
            ("GET", "/truth"): lambda a: {"events": [t.to_dict() for t in self.truth()]},
            ("GET", "/stats"): lambda a: self.stats(),
            ("GET", "/requests"): lambda a: {"requests": [r.to_dict() for r in self.request_log()]},
            ("GET", "/time"): lambda a: {"now": format_ms(self._now_ms())},
        }
        handler = routes.get((method, path))
        dialects = path == "/dialects" or path.startswith("/dialects/")
        if handler is None and not dialects:
            if any(p == path for _, p in routes):
                return _error(405, "method not allowed")
            return _error(404, "not found")
        try:
            args = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(args, dict):
                raise ValueError("the request body must be a JSON object")
            if handler is None:
                return _json(200, self.dialects.control(method, path[len("/dialects") :], args))
            return _json(200, handler(args))
        except KeyError as exc:
            return _error(404 if path == "/status" or dialects else 400, f"missing or unknown: {exc}")
        except (ValueError, TypeError) as exc:
            return _error(400, str(exc))

    def _ctl_events(self, args: dict[str, Any]) -> dict[str, Any]:
        if "count" in args:
            args = dict(args)
            count = int(args.pop("count"))
            return {"events": self.add_events(count, args.pop("at", None), **args)}
        specs = args.get("events")
        if not isinstance(specs, list):
            raise ValueError('send {"events": [{...}, ...]} or {"count": n, "at": time, ...}')
        return {"events": [self.add_event(**spec) for spec in specs]}

    def _ctl_faults(self, args: dict[str, Any]) -> dict[str, Any]:
        args = dict(args)
        options = args.pop("options", None)
        self.set_faults(options, **args)
        return {"probabilities": self._faults.probabilities()}

    def _ctl_inject(self, args: dict[str, Any]) -> dict[str, Any]:
        args = dict(args)
        kind = args.pop("kind")
        count = int(args.pop("count", 1))
        self.inject(kind, count, **args)
        return {"pending": self.pending_faults()}

    def _ctl_advance(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"now": format_ms(to_ms(self.advance(float(args.get("seconds", 0)))))}
