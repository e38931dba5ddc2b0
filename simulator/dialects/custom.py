"""A made-up in-house alert API for the integration's ``Custom`` source: ``GET /api/v2/alerts``.

It exercises what no real profile does together: an ``X-API-Key`` header, epoch-millisecond times (``from``
inclusive, ``to`` exclusive), ``page`` numbers from 1 with ``per_page``, items nested at ``data.alerts`` with
the id at ``ref.id``, ``meta.has_more``, and no particular order: a seeded permutation of the matching alerts,
stable for one query (pages do not overlap unless the data changed), different for another.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..events import StoredEvent
from ..faults import Fault
from ..responses import Response
from .base import (
    BadRequest,
    Dialect,
    Endpoints,
    Options,
    Request,
    description_of,
    hex_for,
    retry_after,
    same_secret,
    shape_page,
    source_of,
    tags_of,
    user_of,
)

if TYPE_CHECKING:
    from ..server import RequestRecord

PATH = "/api/v2/alerts"
_LEVEL = {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"}
SEVERITY_MAP = "P1=critical,P2=high,P3=medium,P4=low,P5=informational"


@dataclass
class CustomOptions(Options):
    default_per_page: int = 50
    max_per_page: int = 200


class CustomAlerts(Dialect):
    name = "custom"
    profile = "Custom"
    endpoints: ClassVar[Endpoints] = {"list": ("GET", re.compile(re.escape(PATH)))}
    statuses: ClassVar[dict[str, str]] = {"New": "open", "In Progress": "investigating", "Closed": "closed"}
    options_class = CustomOptions
    options: CustomOptions

    @property
    def key(self) -> str:
        return "ak_" + self.hub.secret("custom-api-key", 32)

    def credentials(self) -> dict[str, str]:
        return {"api_key": self.key}

    def instance_params(self) -> dict[str, Any]:
        return {
            "source": self.profile,
            "url": self.hub.sim.url,
            "credentials": {"identifier": "", "password": self.key},
            "auth_type": "header",
            "auth_header": "X-API-Key: {password}",
            "endpoint": PATH,
            "query": "from={start}&to={end}&state={status}&per_page={limit}",
            "time_format": "epoch_millis",
            "items_path": "data.alerts",
            "id_path": "ref.id",
            "time_path": "detected_at",
            "name_path": "title",
            "details_path": "summary",
            "severity_path": "level",
            "status_path": "state",
            "severity_map": SEVERITY_MAP,
            "status": "open",
            "order": "unordered",
            "pagination": "page",
            "page_param": "page",
            "more_path": "meta.has_more",
            "page_size": str(self.options.max_per_page),
        }

    def status(self, store_status: str) -> str | None:
        return self.statuses.get(store_status, store_status.lower())

    # -- errors ------------------------------------------------------------------------------------------

    def error(self, status: int, message: str) -> Response:
        titles = {400: "Bad Request", 401: "Unauthorized", 405: "Method Not Allowed", 429: "Too Many Requests"}
        title = titles.get(status, "Server Error")
        return self.json(status, {"errors": [{"status": str(status), "title": title, "detail": message}]})

    def rate_limited(self, req: Request, form: str, value: int) -> Response:
        response = self.error(429, "Too many requests; slow down.")
        response.headers.update(retry_after(form, value, self.now(req)))
        return response

    def authorize(self, req: Request) -> Response | None:
        if not same_secret(req.header("X-API-Key") or "", self.key):
            return self.error(401, "A valid X-API-Key header is required.")
        return None

    # -- the alert ------------------------------------------------------------------------------------------

    def item_id(self, event: StoredEvent) -> str:
        return "alr_" + hex_for("custom-id", event.id, 24)

    def item(self, event: StoredEvent, now_ms: int) -> dict[str, Any]:
        host, ip = source_of(event)
        alert_id = self.item_id(event)
        item: dict[str, Any] = {
            "ref": {"id": alert_id, "url": f"https://alerts.example.com/a/{alert_id}"},
            "detected_at": event.created_ms,
        }
        if "name" in event.body:
            item["title"] = event.body["name"]
        item.update(
            {
                "level": _LEVEL.get(str(event.body.get("severity")), "P5"),
                "state": self.status(event.status_at(now_ms)),
                "summary": description_of(event),
                "asset": {"hostname": host, "ip": ip},
                "actor": user_of(event),
                "labels": tags_of(event),
                "kind": event.body.get("type"),
            }
        )
        return item

    # -- listing ----------------------------------------------------------------------------------------------

    def handle(self, req: Request, fault: Fault | None, record: RequestRecord) -> Response:
        try:
            lower, upper = self._millis(req, "from"), self._millis(req, "to")
            page_number = self._int(req, "page", 1, minimum=1)
            per_page = self._int(req, "per_page", self.options.default_per_page, minimum=1)
            per_page = min(per_page, self.options.max_per_page)
        except BadRequest as exc:
            return self.error(400, str(exc))
        state = req.arg("state") or None
        seed = self.hub.sim.seed
        query_key = f"{seed}|{lower}|{upper}|{state}"
        with self.hub.lock:
            now_ms = self.hub.sync()
            matches = [
                e
                for e in self.hub.store.events_between(lower, upper)
                if e.visible_ms <= now_ms and (state is None or self.status(e.status_at(now_ms)) == state)
            ]
            # No particular order, yet the same for every page of one query.
            matches.sort(key=lambda e: (zlib.crc32(f"{query_key}|{e.id}".encode()), e.id))
            start = (page_number - 1) * per_page
            page, shaped = shape_page(matches[start : start + per_page], fault)
            items = [self.item(e, now_ms) for e in page]
        more = shaped is not None or start + per_page < len(matches)
        if shaped == "short_page" and fault is not None:
            record.fault, record.fault_options = fault.kind, dict(fault.options)
        record.event_ids = [e.id for e in page]
        record.next_cursor = str(page_number + 1) if more else None
        body = {"data": {"alerts": items}, "meta": {"page": page_number, "per_page": per_page, "has_more": more}}
        return self.json(200, body)

    @staticmethod
    def _millis(req: Request, name: str) -> int | None:
        raw = req.arg(name)
        if raw is None or raw == "":
            return None
        if not raw.lstrip("-").isdigit():
            raise BadRequest(f"'{name}' must be a time in milliseconds since the epoch")
        return int(raw)

    @staticmethod
    def _int(req: Request, name: str, default: int, *, minimum: int) -> int:
        raw = req.arg(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or int(raw) < minimum:
            raise BadRequest(f"'{name}' must be an integer of at least {minimum}")
        return int(raw)
