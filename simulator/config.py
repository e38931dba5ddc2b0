"""Configuration of the simulated Event Source: event volume, timing quirks, data quirks and faults."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _default_severity_weights() -> dict[str, float]:
    return {"low": 40.0, "medium": 35.0, "high": 18.0, "critical": 7.0}


@dataclass
class SimConfig:
    """Knobs of the simulated Event Source; the default is quiet (no events, no faults)."""

    # Events created before the clock's start time, spread evenly at random over the span before it.
    backlog: int = 0
    backlog_span_seconds: float = 86_400.0
    # Mean number of new events per second of clock time (Poisson arrivals); 0 disables generation.
    rate_per_second: float = 0.0
    # Chance that an arrival is a burst of ``tie_size`` events sharing one millisecond.
    tie_probability: float = 0.0
    tie_size: int = 50
    # Fraction of events that become visible late: visible_at = created_time + uniform(0, max_delay_seconds).
    late_fraction: float = 0.0
    max_delay_seconds: float = 300.0
    # Chance that an event moves New -> In Progress, and then that it goes on to Closed.
    status_change_probability: float = 0.0
    close_probability: float = 0.5
    # Each status change happens this long (uniform) after the previous state began.
    status_change_min_seconds: float = 30.0
    status_change_max_seconds: float = 1_800.0
    # Relative weights of the four valid severities.
    severity_weights: dict[str, float] = field(default_factory=_default_severity_weights)
    # Data quirks: missing severity, a severity outside the valid set, missing/null/empty name.
    missing_severity_fraction: float = 0.0
    odd_severity_fraction: float = 0.0
    missing_name_fraction: float = 0.0
    # Extra nested fields (user, mitre, raw...) and malformed optional fields (tags as a string...).
    extra_fields_fraction: float = 0.0
    malformed_field_fraction: float = 0.0
    # Paging: cursors die after this much clock time; page size default and hard cap.
    cursor_ttl_seconds: float = 300.0
    default_limit: int = 100
    max_limit: int = 500
    # A cursor sent with filters different from those it was issued for is rejected as invalid.
    strict_cursor_filters: bool = True
    # Keep at most this many records in the request log (oldest dropped; counters are unaffected); None: all.
    request_log_limit: int | None = None
    # Probability per API request of each fault kind, and per-kind options (see ``simulator.faults``).
    fault_probabilities: dict[str, float] = field(default_factory=dict)
    fault_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Switches of the API dialects, per dialect: {"graph": {"token_ttl_seconds": 60}, ...} (``simulator.dialects``).
    dialect_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse settings that make no sense, so a typo fails loudly instead of simulating nonsense."""
        fractions = (
            "tie_probability",
            "late_fraction",
            "status_change_probability",
            "close_probability",
            "missing_severity_fraction",
            "odd_severity_fraction",
            "missing_name_fraction",
            "extra_fields_fraction",
            "malformed_field_fraction",
        )
        for name in fractions:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.missing_severity_fraction + self.odd_severity_fraction > 1.0:
            raise ValueError("missing_severity_fraction + odd_severity_fraction must not exceed 1")
        non_negative = (
            "backlog",
            "backlog_span_seconds",
            "rate_per_second",
            "max_delay_seconds",
            "status_change_min_seconds",
            "status_change_max_seconds",
            "cursor_ttl_seconds",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.tie_size < 1 or self.default_limit < 1 or self.max_limit < 1:
            raise ValueError("tie_size, default_limit and max_limit must be at least 1")

    @classmethod
    def quiet(cls) -> SimConfig:
        """No backlog, no generation, no faults: tests add exactly the events they need."""
        return cls()

    @classmethod
    def realistic(cls) -> SimConfig:
        """A lively source for the local runner: a backlog, steady traffic, ties, late events, rare faults."""
        return cls(
            backlog=3_000,
            backlog_span_seconds=6 * 3_600.0,
            rate_per_second=2.0,
            tie_probability=0.005,
            tie_size=120,
            late_fraction=0.05,
            max_delay_seconds=240.0,
            status_change_probability=0.3,
            missing_severity_fraction=0.01,
            odd_severity_fraction=0.01,
            missing_name_fraction=0.02,
            extra_fields_fraction=0.2,
            malformed_field_fraction=0.01,
            fault_probabilities={
                "rate_limit": 0.02,
                "server_error": 0.01,
                "slow": 0.005,
                "drop": 0.005,
                "truncated": 0.002,
                "short_page": 0.01,
            },
            fault_options={"slow": {"seconds": 3.0}, "rate_limit": {"value": 1}},
        )

    @classmethod
    def profile(cls, name: str) -> SimConfig:
        """Look up a named profile (``quiet`` or ``realistic``)."""
        profiles = {"quiet": cls.quiet, "realistic": cls.realistic}
        if name not in profiles:
            raise ValueError(f"unknown profile {name!r}; choose one of {sorted(profiles)}")
        return profiles[name]()

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
