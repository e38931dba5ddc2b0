"""pytest fixtures: ``simulator`` (quiet, ManualClock, seed 0) and the ``make_simulator`` factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .clock import ManualClock
from .server import Simulator


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., Simulator]]:
    """Factory: ``make_simulator(config=None, **kwargs)`` starts a Simulator; all are stopped at teardown.

    Without an explicit ``clock`` each simulator gets its own ManualClock, so tests never depend on wall time.
    """
    started: list[Simulator] = []

    def factory(config: Any = None, **kwargs: Any) -> Simulator:
        kwargs.setdefault("clock", ManualClock())
        sim = Simulator(config, **kwargs).start()
        started.append(sim)
        return sim

    yield factory
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def simulator(make_simulator: Callable[..., Simulator]) -> Simulator:
    """A started quiet simulator with a ManualClock and seed 0."""
    return make_simulator(seed=0)
