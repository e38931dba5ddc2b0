"""Clocks driving the simulator: a manual one for deterministic tests and the real wall clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@runtime_checkable
class Clock(Protocol):
    """Anything with a ``now()`` returning a timezone-aware UTC datetime."""

    def now(self) -> datetime: ...


def truncate_ms(dt: datetime) -> datetime:
    """Drop sub-millisecond precision, since the API renders milliseconds only."""
    return dt.replace(microsecond=dt.microsecond - dt.microsecond % 1000)


def ensure_utc(dt: datetime) -> datetime:
    """Return ``dt`` in UTC; naive datetimes are taken to be UTC already."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def to_ms(dt: datetime) -> int:
    """Milliseconds since the epoch (floor), the simulator's internal time unit."""
    delta = ensure_utc(dt) - EPOCH
    return (delta.days * 86_400_000) + (delta.seconds * 1000) + (delta.microseconds // 1000)


def from_ms(ms: int) -> datetime:
    """Inverse of :func:`to_ms`."""
    return EPOCH + timedelta(milliseconds=ms)


def format_ms(ms: int) -> str:
    """Render as the API does: ``2026-11-26T06:00:00.123Z``."""
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def format_time(dt: datetime) -> str:
    """Render a datetime in the API's format (UTC, milliseconds, ``Z``)."""
    return format_ms(to_ms(dt))


class ManualClock:
    """A clock that only moves when told to, so tests never depend on wall time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = ensure_utc(start) if start is not None else truncate_ms(datetime.now(UTC))

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` (must not be negative) and return the new time."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, dt: datetime) -> None:
        """Jump to ``dt``; going backwards is refused because generated history is immutable."""
        dt = ensure_utc(dt)
        with self._lock:
            if dt < self._now:
                raise ValueError("a clock cannot go backwards")
            self._now = dt


class RealClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
