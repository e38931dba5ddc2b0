"""The HTTP answer the simulator's request handlers produce, shared by the Event Source API and the dialects."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Response:
    status: int | None  # None: drop the connection
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    cut_at: int | None = None  # truncated fault: only this many body bytes are sent
    # Headers that may repeat (Okta sends one ``Link`` header per relation), sent after ``headers``.
    header_list: list[tuple[str, str]] = field(default_factory=list)


def json_body(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json_body(obj), {"Content-Type": JSON_TYPE, **(headers or {})})
