"""The dialects of one simulator: routing, the shared request flow (auth, faults, logging), truth and params."""

from __future__ import annotations

import traceback
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl

from ..events import EventStore
from ..faults import Fault
from ..responses import Response
from .base import Dialect, DialectTruth, Options, Request, secret_for
from .custom import CustomAlerts
from .graph import GraphAlerts
from .jira import JiraIssues
from .okta import OktaSystemLog
from .pagerduty import PagerDutyIncidents
from .servicenow import ServiceNowIncidents

if TYPE_CHECKING:
    from ..server import RequestRecord, Simulator

DIALECT_CLASSES: tuple[type[Dialect], ...] = (
    GraphAlerts,
    OktaSystemLog,
    ServiceNowIncidents,
    PagerDutyIncidents,
    JiraIssues,
    CustomAlerts,
)
DIALECT_NAMES = tuple(cls.name for cls in DIALECT_CLASSES)
_HTML_ERROR = (
    "<!DOCTYPE html>\n<html><head><title>{status} Error</title></head>\n"
    "<body><center><h1>{status} Error</h1></center><hr><center>nginx</center></body></html>\n"
)


class DialectHub:
    """Every dialect of one :class:`~simulator.Simulator`, reached as ``sim.dialects``."""

    def __init__(self, sim: Simulator, options: dict[str, dict[str, Any]] | None = None) -> None:
        self.sim = sim
        self._dialects: dict[str, Dialect] = {cls.name: cls(self) for cls in DIALECT_CLASSES}
        for name, values in (options or {}).items():
            self.configure(name, **values)

    # -- access ----------------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return DIALECT_NAMES

    def __getitem__(self, name: str) -> Dialect:
        if name not in self._dialects:
            raise KeyError(f"unknown dialect {name!r}; choose one of {list(DIALECT_NAMES)}")
        return self._dialects[name]

    def configure(self, name: str, **options: Any) -> Options:
        """Change some switches of a dialect (see its ``*Options`` class) and return all of them."""
        if name not in self._dialects:
            raise ValueError(f"unknown dialect {name!r}; choose one of {list(DIALECT_NAMES)}")
        dialect = self._dialects[name]
        with self.sim._lock:
            dialect.options.update(options)
        return dialect.options

    def secret(self, label: str, length: int = 40) -> str:
        return secret_for(self.sim.api_key, label, length)

    @property
    def lock(self) -> AbstractContextManager[Any]:
        return self.sim._lock

    @property
    def store(self) -> EventStore:
        return self.sim._store

    def sync(self) -> int:
        """The clock's time in ms, with generated traffic brought up to it; call with the lock held."""
        return self.sim._sync()

    # -- requests ------------------------------------------------------------------------------------

    def route(self, path: str) -> str | None:
        """``<dialect>.<kind>`` for a path one of the dialects serves, else None."""
        for dialect in self._dialects.values():
            for kind, (_, pattern) in dialect.endpoints.items():
                if pattern.fullmatch(path):
                    return f"{dialect.name}.{kind}"
        return None

    def process(
        self,
        endpoint: str,
        method: str,
        parts: SplitResult,
        headers: dict[str, str],
        body: bytes,
        record: RequestRecord,
    ) -> tuple[Response, Fault | None]:
        """Authorize, draw a fault, answer: the same flow for every dialect endpoint."""
        name, kind = endpoint.split(".")
        dialect = self._dialects[name]
        with self.lock:
            now_ms = self.sync()
        req = Request(
            method=method,
            kind=kind,
            path=parts.path,
            pairs=parse_qsl(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
            now_ms=now_ms,
            base_url=self.sim.url,
        )
        allowed = dialect.endpoints[kind][0]
        if method != allowed:
            response = dialect.error(405, f"method {method} not allowed; use {allowed}")
            response.headers["Allow"] = allowed
            return response, None
        refused = dialect.authorize(req)
        if refused is not None:
            return refused, None
        fault = self.sim._faults.decide(endpoint, False)
        if fault is not None:
            early = self._fault_response(dialect, req, fault)
            if early is not None:
                return early, fault
            with self.lock:
                req.now_ms = self.sync()
        try:
            response = dialect.handle(req, fault, record)
        except Exception:
            # A bug of the simulator, not a simulated fault: say so on stderr (the client sees a dropped connection).
            traceback.print_exc()
            raise
        if fault is not None and fault.kind == "truncated":
            fraction = float(fault.options.get("fraction", 0.5))
            response.cut_at = max(0, min(len(response.body) - 1, int(len(response.body) * fraction)))
        return response, fault

    def _fault_response(self, dialect: Dialect, req: Request, fault: Fault) -> Response | None:
        opts = fault.options
        if fault.kind == "drop":
            return Response(None)
        if fault.kind == "slow":
            return None if self.sim._wait(float(opts.get("seconds", 5.0))) else Response(None)
        if fault.kind == "rate_limit":
            return dialect.rate_limited(req, str(opts.get("retry_after", "seconds")), int(opts.get("value", 1)))
        if fault.kind == "server_error":
            status = int(opts.get("status", 503))
            body = opts.get("body", "json")
            if body == "json":
                return dialect.error(status, "the service is unavailable, try again later")
            if body == "html":
                return Response(status, _HTML_ERROR.format(status=status).encode(), {"Content-Type": "text/html"})
            return Response(status, b"", {})
        return None

    # -- truth and what was served ------------------------------------------------------------------

    def truth(self, name: str) -> list[DialectTruth]:
        """Every event, visible or not, as the dialect shows it now, in store order (created_time, id)."""
        dialect = self[name]
        with self.lock:
            now_ms = self.sync()
            events = self.store.events_between(None, None)
            return [dialect.truth(e, t, now_ms) for e, t in zip(events, self.store.truth(now_ms), strict=True)]

    def item_id(self, name: str, store_id: str) -> str:
        """The dialect's id of a stored event."""
        with self.lock:
            event = self.store.get(store_id)
            if event is None:
                raise KeyError(store_id)
            return self[name].item_id(event)

    def served_ids(self, name: str) -> list[str]:
        """The dialect's ids of the events its listings served in responses received whole, in order."""
        dialect = self[name]
        with self.lock:
            store_ids = [
                event_id
                for record in self.sim._log
                if record.intact and record.endpoint == f"{name}.list"
                for event_id in record.event_ids
            ]
            events = [self.store.get(i) for i in store_ids]
            return [dialect.item_id(e) for e in events if e is not None]

    def instance_params(self, name: str) -> dict[str, Any]:
        """The integration's instance parameters to fetch from this simulator in dialect ``name``.

        ``"event_source"`` gives those of the Event Source API itself.
        """
        if name == "event_source":
            return {
                "source": "Event Source",
                "url": self.sim.url,
                "credentials": {"identifier": "", "password": self.sim.api_key},
            }
        return self[name].instance_params()

    # -- control API (``/_sim/dialects``) ---------------------------------------------------------------

    def control(self, method: str, path: str, args: dict[str, Any]) -> Any:
        """``GET /_sim/dialects``; ``POST /_sim/dialects/<name>/options``; ``GET .../truth|served|params|options``;
        ``POST .../expire-tokens`` (graph)."""
        parts = [p for p in path.split("/") if p]
        if not parts and method == "GET":
            return {name: self[name].options.to_dict() for name in DIALECT_NAMES}
        if len(parts) != 2:
            raise KeyError(path)
        name, action = parts
        dialect = self[name]
        if method == "POST" and action == "options":
            return self.configure(name, **args).to_dict()
        if method == "GET" and action == "options":
            return dialect.options.to_dict()
        if method == "GET" and action == "truth":
            return {"events": [t.to_dict() for t in self.truth(name)]}
        if method == "GET" and action == "served":
            return {"ids": self.served_ids(name)}
        if method == "GET" and action == "params":
            return self.instance_params(name)
        if method == "GET" and action == "tokens" and isinstance(dialect, GraphAlerts):
            return {"issued": dialect.tokens_issued}
        if method == "POST" and action == "expire-tokens" and isinstance(dialect, GraphAlerts):
            return {"expired": dialect.expire_tokens()}
        raise KeyError(path)
