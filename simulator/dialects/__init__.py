"""The simulator's event store served in the dialects of real APIs, at their real paths, on the same host.

``sim.dialects`` (a :class:`DialectHub`) holds one dialect per API: ``graph`` (Microsoft Graph security alerts
v2 and its token endpoint), ``okta`` (System Log), ``servicenow`` (Table API, incident), ``pagerduty``
(incidents), ``jira`` (enhanced JQL search) and ``custom`` (a made-up API for the integration's Custom source).
Each shows the same events, clock, status history and late arrival in its own shape, ids, statuses and auth.
See simulator/README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Dialect, DialectTruth, Options
from .hub import DIALECT_NAMES, DialectHub

if TYPE_CHECKING:
    from ..server import Simulator


def instance_params(sim: Simulator, dialect: str) -> dict[str, Any]:
    """The integration's instance parameters to fetch from ``sim`` in ``dialect`` (or ``"event_source"``)."""
    return sim.dialects.instance_params(dialect)


__all__ = ["DIALECT_NAMES", "Dialect", "DialectHub", "DialectTruth", "Options", "instance_params"]
