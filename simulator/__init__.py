"""A local simulator of the Event Source API, with switchable awkward behaviours, for tests and local runs."""

from .clock import Clock, ManualClock, RealClock, format_time
from .config import SimConfig
from .events import MISSING, SEVERITIES, STATUSES, EventTruth
from .faults import FAULT_KINDS, Fault
from .server import RequestRecord, Simulator

__all__ = [
    "FAULT_KINDS",
    "MISSING",
    "SEVERITIES",
    "STATUSES",
    "Clock",
    "EventTruth",
    "Fault",
    "ManualClock",
    "RealClock",
    "RequestRecord",
    "SimConfig",
    "Simulator",
    "format_time",
]
