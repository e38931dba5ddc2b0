"""Root pytest configuration: the local XSOAR runtime stands in for ``demistomock`` in every test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import demisto_mock  # noqa: E402  (needs ROOT on sys.path first)

# Tests under tests/ import the integration as the server names it: EventFetcher.
INTEGRATION_FOLDER = ROOT / "Packs" / "EventFetcher" / "Integrations" / "EventFetcher"
if str(INTEGRATION_FOLDER) not in sys.path:
    sys.path.append(str(INTEGRATION_FOLDER))

# Registered at import time, before test collection imports an integration that does `import demistomock`.
sys.modules["demistomock"] = demisto_mock

# Property tests draw the same examples on every run and every machine: a failure is reproducible, never flaky.
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None)
settings.load_profile("deterministic")

# The Event Source simulator's fixtures: `simulator` and `make_simulator`.
pytest_plugins = ["simulator.pytest_plugin"]


@pytest.fixture(autouse=True)
def _fresh_demisto_runtime() -> Iterator[demisto_mock.Runtime]:
    """Every test starts from a first run with nothing recorded; the previous runtime comes back afterwards."""
    runtime = demisto_mock.Runtime()
    previous = demisto_mock.use_runtime(runtime)
    try:
        yield runtime
    finally:
        demisto_mock.use_runtime(previous)


@pytest.fixture
def demisto(_fresh_demisto_runtime: demisto_mock.Runtime) -> demisto_mock.Runtime:
    """The Runtime behind ``demistomock`` for this test: set command/params/args/last_run, then read the record."""
    return _fresh_demisto_runtime
