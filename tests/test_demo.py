"""`make run SOURCE=<source>`: the demo loop against the simulator speaking another API than the Event Source, with
that API's awkward behaviours on, shows incidents as they land (type and mapped fields) and holds exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator import demo


def test_make_run_against_okta_shows_incidents_with_their_fields_and_holds_exactly_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(demo, "RUN_FOLDER", tmp_path)
    assert demo.main(["--source", "okta", "--cycles", "3", "--every", "0"]) == 0
    out = capsys.readouterr().out
    assert "speaking the Okta System Log API" in out
    assert "[Okta System Log Event] " in out and "External ID: " in out and "Event Type: " in out
    assert "landed as Okta System Log Event: " in out
    assert "ground truth (okta): " in out and " 0 duplicates, 0 not in the source," in out
    assert "'empty_page': 1" in out and "'rate_limit': 2" in out  # the awkward behaviours were met
    inbox = [json.loads(line) for line in (tmp_path / "simulator-okta" / "inbox.jsonl").read_text().splitlines()]
    assert inbox and all(incident["rawJSON"] and "type" not in incident for incident in inbox)  # the classifier's


def test_make_run_knows_every_source_and_says_what_is_awkward_about_each() -> None:
    assert demo.SOURCES[0] == "event_source"
    assert set(demo.SOURCES) == set(demo.AWKWARD)
    with pytest.raises(SystemExit):
        demo.main(["--source", "nosuchapi"])
