"""The local XSOAR runtime behaves like the server where integrations depend on it.

Module face: tested in-process through ``import demistomock``. Command-line face: tested through real
subprocesses against the small fake integrations in tests/fake_integrations/.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import demistomock
import pytest

import demisto_mock

MOCK_SCRIPT = Path(demisto_mock.__file__).resolve()
FAKES = Path(__file__).resolve().parent / "fake_integrations"
API_KEY = "s3cr3t-api-key-XYZ-0123"
SUBPROCESS_TIMEOUT = 120


# --------------------------------------------------------------------------------------------------------------
# Module face
# --------------------------------------------------------------------------------------------------------------


def test_conftest_registers_the_module_as_demistomock() -> None:
    assert sys.modules["demistomock"] is demisto_mock
    assert demistomock is demisto_mock


def test_first_run_last_run_is_empty_dict(demisto: demisto_mock.Runtime) -> None:
    assert demistomock.getLastRun() == {}
    demisto.last_run = None
    assert demistomock.getLastRun() == {}


def test_get_last_run_returns_a_deep_copy(demisto: demisto_mock.Runtime) -> None:
    demisto.last_run = {"cursor": {"time": "2026-11-26T06:00:00Z", "ids": ["a"]}}
    copy_one = demistomock.getLastRun()
    copy_one["cursor"]["ids"].append("b")
    copy_one["extra"] = 1
    assert demistomock.getLastRun() == {"cursor": {"time": "2026-11-26T06:00:00Z", "ids": ["a"]}}


def test_set_last_run_stores_a_json_copy(demisto: demisto_mock.Runtime) -> None:
    value: dict[str, Any] = {"ids": ["a"], "count": 1, "pair": (1, 2)}
    demistomock.setLastRun(value)
    value["ids"].append("mutated after the call")
    assert demistomock.getLastRun() == {"ids": ["a"], "count": 1, "pair": [1, 2]}
    assert demisto.set_last_run_calls == [{"ids": ["a"], "count": 1, "pair": [1, 2]}]


@pytest.mark.parametrize(
    ("bad_value", "error_type"),
    [
        (datetime(2026, 11, 26, tzinfo=UTC), TypeError),
        ({"a", "b"}, TypeError),
        (b"bytes", TypeError),
        (math.nan, ValueError),
    ],
    ids=["datetime", "set", "bytes", "nan"],
)
def test_set_last_run_rejects_values_json_cannot_carry(
    demisto: demisto_mock.Runtime, bad_value: Any, error_type: type[Exception]
) -> None:
    demisto.last_run = {"counter": 1}
    with pytest.raises(error_type, match=r"demisto\.setLastRun\(\)"):
        demistomock.setLastRun({"last_fetch": bad_value})
    assert demistomock.getLastRun() == {"counter": 1}
    assert demisto.set_last_run_calls == []


def test_incidents_rejects_a_datetime(demisto: demisto_mock.Runtime) -> None:
    with pytest.raises(TypeError, match=r"demisto\.incidents\(\).*datetime"):
        demistomock.incidents([{"name": "x", "occurred": datetime(2026, 1, 1, tzinfo=UTC)}])
    assert demisto.incidents_created == []


@pytest.mark.parametrize(
    ("bad_incidents", "error_type", "message"),
    [
        ({"name": "not in a list"}, TypeError, "list"),
        (["a string"], TypeError, "not a dict"),
        ([{"occurred": "2026-01-01T00:00:00Z"}], ValueError, "name"),
        ([{"name": ""}], ValueError, "name"),
        ([{"name": "x", "rawJSON": {"id": 1}}], TypeError, "rawJSON"),
        ([{"name": "x", "rawJSON": "{not json"}], ValueError, "rawJSON"),
        ([{"name": "x", "labels": {1, 2}}], TypeError, "JSON"),
    ],
)
def test_incidents_validates_like_the_server(
    demisto: demisto_mock.Runtime, bad_incidents: Any, error_type: type[Exception], message: str
) -> None:
    with pytest.raises(error_type, match=message):
        demistomock.incidents(bad_incidents)
    assert demisto.incidents_created == []


def test_incidents_records_json_copies(demisto: demisto_mock.Runtime) -> None:
    created = [{"name": "event 1", "rawJSON": json.dumps({"id": 1}), "dbotMirrorId": "1", "severity": 2}]
    demistomock.incidents(created)
    created[0]["name"] = "mutated"
    assert demisto.incidents_created == [
        {"name": "event 1", "rawJSON": '{"id": 1}', "dbotMirrorId": "1", "severity": 2}
    ]


def test_results_rejects_a_set_and_normalises_entries(demisto: demisto_mock.Runtime) -> None:
    with pytest.raises(TypeError, match=r"demisto\.results\(\)"):
        demistomock.results({"Type": 1, "Contents": {"ids": {1, 2}}})
    demistomock.results("ok")
    demistomock.results([{"Type": 4, "ContentsFormat": "text", "Contents": "bad key"}, {"a": 1}])
    # As on the server, a dict that is not an entry (no Contents and ContentsFormat) arrives as its JSON text.
    assert demisto.entries == [
        {"Type": 1, "ContentsFormat": "text", "Contents": "ok"},
        {"Type": 4, "ContentsFormat": "text", "Contents": "bad key"},
        {"Type": 1, "ContentsFormat": "json", "Contents": '{"a": 1}'},
    ]
    assert demisto.errors() == [{"Type": 4, "ContentsFormat": "text", "Contents": "bad key"}]
    assert demisto_mock.errors() == demisto.errors()


def test_last_run_over_one_megabyte_is_warned(demisto: demisto_mock.Runtime) -> None:
    demistomock.setLastRun({"ids": ["x" * 1000] * 900})
    assert demisto.warnings == []
    demistomock.setLastRun({"ids": ["x" * 1000] * 1000})
    assert len(demisto.warnings) == 1
    assert "over the 1000000 bytes limit" in demisto.warnings[0]
    assert ("warning", demisto.warnings[0]) in demisto.logs
    assert len(demistomock.getLastRun()["ids"]) == 1000


def test_calls_are_recorded_in_order_without_log_calls(demisto: demisto_mock.Runtime) -> None:
    demisto.command = "fetch-incidents"
    last_run = demistomock.getLastRun()
    demistomock.debug("starting from %s", last_run)
    demistomock.incidents([{"name": "event"}])
    demistomock.setLastRun({"counter": 1})
    demistomock.info("done")
    assert demisto.calls == ["getLastRun", "incidents", "setLastRun"]
    assert demisto.calls[-2:] == ["incidents", "setLastRun"]
    assert demisto.logs == [("debug", "starting from {}"), ("info", "done")]


def test_logging_functions_record_levels(demisto: demisto_mock.Runtime) -> None:
    demistomock.debug("d")
    demistomock.info("page %d of %d", 1, 2)
    demistomock.error("e")
    demistomock.log("l")
    assert demisto.logs == [("debug", "d"), ("info", "page 1 of 2"), ("error", "e"), ("info", "l")]


def test_integration_context_round_trip_and_copy(demisto: demisto_mock.Runtime) -> None:
    assert demistomock.getIntegrationContext() == {}
    demistomock.setIntegrationContext({"token": {"expires": 10}})
    context = demistomock.getIntegrationContext()
    context["token"]["expires"] = 0
    assert demistomock.getIntegrationContext() == {"token": {"expires": 10}}
    with pytest.raises(TypeError, match=r"setIntegrationContext"):
        demistomock.setIntegrationContext({"when": datetime(2026, 1, 1, tzinfo=UTC)})
    assert demisto.integration_context == {"token": {"expires": 10}}


def test_inputs_and_server_facts(demisto: demisto_mock.Runtime) -> None:
    demisto.command = "event-fetcher-get-events"
    demisto.params = {"url": "https://events.example.com", "max_fetch": "50"}
    demisto.args = {"limit": "5"}
    assert demistomock.command() == "event-fetcher-get-events"
    params = demistomock.params()
    params["url"] = "changed"
    assert demistomock.getParam("url") == "https://events.example.com"
    assert demistomock.getParam("missing") is None
    assert demistomock.args() == {"limit": "5"}
    assert demistomock.demistoVersion() == {"version": "8.9.0", "buildNumber": "12345"}
    assert demistomock.integrationInstance() == "EventFetcher_instance_1"
    assert demistomock.callingContext["context"]["IntegrationBrand"] == "EventFetcher"
    assert demistomock.callingContext["context"]["IntegrationInstance"] == "EventFetcher_instance_1"
    demistomock.updateModuleHealth("rate limited", is_error=True)
    assert demisto.module_health == [{"data": "rate limited", "is_error": True}]


def test_reset_and_use_runtime_swap_the_current_runtime(demisto: demisto_mock.Runtime) -> None:
    fresh = demisto_mock.reset(command="fetch-incidents", last_run={"counter": 3}, instance_name="other")
    assert demisto_mock.current_runtime() is fresh
    assert demistomock.getLastRun() == {"counter": 3}
    assert demistomock.callingContext["context"]["IntegrationInstance"] == "other"
    previous = demisto_mock.use_runtime(demisto)
    assert previous is fresh
    assert demistomock.getLastRun() == {}
    with demisto_mock.installed(demisto_mock.Runtime(last_run={"n": 1})):
        assert demistomock.getLastRun() == {"n": 1}
    assert demisto_mock.current_runtime() is demisto


# Two tests in file order: the first leaves state behind, the second must start from a first run.
def test_isolation_first_test_writes_state(demisto: demisto_mock.Runtime) -> None:
    demistomock.setLastRun({"leaked": True})
    demistomock.setIntegrationContext({"leaked": True})
    demistomock.incidents([{"name": "leaked"}])
    demistomock.info("leaked")
    assert demisto.last_run == {"leaked": True}


def test_isolation_second_test_sees_no_state(demisto: demisto_mock.Runtime) -> None:
    assert demistomock.getLastRun() == {}
    assert demistomock.getIntegrationContext() == {}
    assert demisto.incidents_created == [] and demisto.logs == [] and demisto.set_last_run_calls == []
    assert demisto.calls == ["getLastRun", "getIntegrationContext"]


def test_parse_fetch_figures_reads_the_last_figures_line() -> None:
    logs = [
        ("debug", "fetch figures: incidents=1 pages=9"),
        ("info", "something else"),
        ("debug", "fetch figures: events_read=120 incidents=50 duplicates=3 pages=2 retries=1 lag_seconds=4.2"),
    ]
    assert demisto_mock.parse_fetch_figures(logs) == {
        "events_read": "120",
        "incidents": "50",
        "duplicates": "3",
        "pages": "2",
        "retries": "1",
        "lag_seconds": "4.2",
    }
    assert demisto_mock.parse_fetch_figures([("info", "no figures")]) == {}


def test_count_inbox_duplicates(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.jsonl"
    assert demisto_mock.count_inbox_duplicates(inbox) == 0
    ids = ["a", "b", "a", "a", "c", "b", None]
    inbox.write_text("".join(json.dumps({"name": "n", "dbotMirrorId": i}) + "\n" for i in ids))
    assert demisto_mock.count_inbox_duplicates(inbox) == 3


def test_secrets_are_found_and_redacted() -> None:
    params = {"credentials": {"identifier": "", "password": API_KEY}, "url": "https://x", "api_token": "tok-1234"}
    secrets = demisto_mock.secret_values(params)
    assert set(secrets) == {API_KEY, "tok-1234"}
    assert demisto_mock.redact(f"Bearer {API_KEY} and tok-1234", secrets) == "Bearer <XX_REPLACED> and <XX_REPLACED>"


def _record(number: int, incidents: int, ok: bool = True) -> demisto_mock.CycleRecord:
    return demisto_mock.CycleRecord(number, ok, None if ok else "boom", incidents, {}, 0.0, 0 if ok else 1)


class FakeClock:
    """Monotonic clock advanced only by sleeps and by the simulated cycle durations."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_schedule_starts_cycles_every_interval_without_extra_waiting() -> None:
    clock = FakeClock()
    durations = {1: 2.0, 2: 15.0, 3: 1.0}
    starts: list[float] = []

    def run_cycle(number: int) -> demisto_mock.CycleRecord:
        starts.append(clock.now)
        clock.now += durations[number]
        return _record(number, 5)

    records = demisto_mock.repeat_on_schedule(
        run_cycle, every=10, max_cycles=3, until_idle=False, clock=clock.time, sleep=clock.sleep
    )
    assert [record.cycle for record in records] == [1, 2, 3]
    # Cycle 2 overran the interval, so cycle 3 starts at once; no sleep after the last cycle.
    assert starts == [100.0, 110.0, 125.0]
    assert clock.sleeps == [8.0]


def test_schedule_until_idle_ignores_failed_cycles() -> None:
    outcomes = {1: _record(1, 3), 2: _record(2, 0, ok=False), 3: _record(3, 0), 4: _record(4, 9)}
    records = demisto_mock.repeat_on_schedule(outcomes.__getitem__, every=0, max_cycles=10, until_idle=True)
    assert [record.cycle for record in records] == [1, 2, 3]


def test_summary_lines() -> None:
    figures = {"duplicates": "0", "pages": "2", "retries": "1"}
    record = demisto_mock.CycleRecord(3, True, None, 50, figures, 0.4213, 0)
    assert record.summary_line() == "cycle 3: 50 incidents, 0 duplicates skipped, 2 pages, 1 retries, 0.42 s"
    assert _record(1, 2).summary_line() == "cycle 1: 2 incidents, ? duplicates skipped, ? pages, ? retries, 0.00 s"
    assert _record(4, 0, ok=False).summary_line() == "cycle 4: failed: boom"
    assert demisto_mock.total_line([_record(1, 2), _record(2, 0, ok=False)]) == (
        "total: 2 cycles, 2 incidents, 1 failures"
    )


def test_default_integration_path_is_the_pack_integration() -> None:
    expected = MOCK_SCRIPT.parent / "Packs/EventFetcher/Integrations/EventFetcher/EventFetcher.py"
    assert demisto_mock.default_integration_path() == expected


# --------------------------------------------------------------------------------------------------------------
# Command-line face, through real subprocesses
# --------------------------------------------------------------------------------------------------------------


def run_cli(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MOCK_SCRIPT), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        cwd=cwd,
        check=False,
    )


def write_params(tmp_path: Path, **extra: Any) -> Path:
    params = {"url": "https://events.example.com", "credentials": {"identifier": "", "password": API_KEY}, **extra}
    path = tmp_path / "params.json"
    path.write_text(json.dumps(params))
    return path


def fake(name: str) -> Path:
    return FAKES / f"{name}.py"


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_fetch_persists_state_and_appends_inbox(tmp_path: Path) -> None:
    params, state, inbox = write_params(tmp_path, max_fetch=2), tmp_path / "state.json", tmp_path / "inbox.jsonl"
    options = ["--integration", fake("fetch_counter"), "--params", params, "--state", state, "--inbox", inbox]

    first = run_cli(*options, "fetch-incidents")
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    assert json.loads(state.read_text()) == {"last_run": {"counter": 2}, "integration_context": {"runs": 1}}
    assert [incident["dbotMirrorId"] for incident in read_lines(inbox)] == ["0", "1"]

    second = run_cli(*options, "fetch-incidents")
    assert second.returncode == 0, second.stderr
    assert json.loads(state.read_text()) == {"last_run": {"counter": 4}, "integration_context": {"runs": 2}}
    assert [incident["dbotMirrorId"] for incident in read_lines(inbox)] == ["0", "1", "2", "3"]
    assert not [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")]


def test_fetch_without_inbox_prints_incidents_as_json_lines(tmp_path: Path) -> None:
    result = run_cli("--integration", fake("fetch_counter"), "--params", write_params(tmp_path), "fetch-incidents")
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert printed == [
        {"name": "event 0", "dbotMirrorId": "0", "rawJSON": '{"id": 0}'},
        {"name": "event 1", "dbotMirrorId": "1", "rawJSON": '{"id": 1}'},
    ]


def test_logs_go_to_stderr_with_debug_only_on_request(tmp_path: Path) -> None:
    options = ["--integration", fake("fetch_counter"), "--params", write_params(tmp_path)]
    quiet = run_cli(*options, "fetch-incidents")
    assert "INFO fetching from counter 0" in quiet.stderr.splitlines()
    assert "DEBUG" not in quiet.stderr
    verbose = run_cli(*options, "--debug", "fetch-incidents")
    assert any(line.startswith("DEBUG fetch figures: ") for line in verbose.stderr.splitlines())


def test_exception_fails_the_run_and_changes_nothing(tmp_path: Path) -> None:
    params, state, inbox = write_params(tmp_path), tmp_path / "state.json", tmp_path / "inbox.jsonl"
    state.write_text('{"last_run": {"counter": 7},\n "integration_context": {"runs": 3}}')
    inbox.write_text('{"name": "old", "dbotMirrorId": "old"}\n')
    state_before, inbox_before = state.read_bytes(), inbox.read_bytes()
    options = ["--integration", fake("fetch_raises"), "--params", params, "--state", state, "--inbox", inbox]

    result = run_cli(*options, "fetch-incidents")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == "error: upstream API returned 500 for /events retry later"
    assert "Traceback" not in result.stderr
    assert state.read_bytes() == state_before
    assert inbox.read_bytes() == inbox_before

    with_debug = run_cli(*options, "--debug", "fetch-incidents")
    assert with_debug.returncode == 1
    assert "Traceback" in with_debug.stderr
    assert state.read_bytes() == state_before


def test_error_entry_fails_the_run_and_changes_nothing(tmp_path: Path) -> None:
    params, state = write_params(tmp_path), tmp_path / "state.json"
    state.write_text('{"last_run": {"counter": 7}, "integration_context": {}}')
    before = state.read_bytes()
    result = run_cli("--integration", fake("error_entry"), "--params", params, "--state", state, "fetch-incidents")
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: Failed to execute command. Error: bad key"]
    assert state.read_bytes() == before


def test_datetime_in_last_run_fails_and_creates_no_state(tmp_path: Path) -> None:
    params, state, inbox = write_params(tmp_path), tmp_path / "state.json", tmp_path / "inbox.jsonl"
    options = ["--integration", fake("datetime_last_run"), "--params", params, "--state", state, "--inbox", inbox]
    result = run_cli(*options, "fetch-incidents")
    assert result.returncode == 1
    assert "error: demisto.setLastRun()" in result.stderr
    assert "datetime is not JSON serializable" in result.stderr
    assert not state.exists()
    assert not inbox.exists()


def test_fetch_that_does_not_set_last_run_keeps_the_previous_one(tmp_path: Path) -> None:
    params, state = write_params(tmp_path, advance=False), tmp_path / "state.json"
    state.write_text(json.dumps({"last_run": {"counter": 4}, "integration_context": {}, "note": "kept"}))
    result = run_cli("--integration", fake("fetch_counter"), "--params", params, "--state", state, "fetch-incidents")
    assert result.returncode == 0, result.stderr
    assert json.loads(state.read_text()) == {
        "last_run": {"counter": 4},
        "integration_context": {"runs": 1},
        "note": "kept",
    }


def test_set_last_run_outside_fetch_is_not_persisted(tmp_path: Path) -> None:
    params, state = write_params(tmp_path), tmp_path / "state.json"
    state.write_text(json.dumps({"last_run": {"counter": 4}, "integration_context": {}}))
    result = run_cli("--integration", fake("fetch_counter"), "--params", params, "--state", state, "reset-counter")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "counter reset\n"
    assert json.loads(state.read_text())["last_run"] == {"counter": 4}


def test_name_value_words_become_string_args_and_results_are_printed(tmp_path: Path) -> None:
    params = write_params(tmp_path)
    result = run_cli("--integration", fake("echo_args"), "--params", params, "echo-args", "limit=5", "query=a=b", "e=")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        json.dumps({"limit": "5", "query": "a=b", "e": ""}),
        "## Args",
        "command echo-args from EventFetcher",
    ]
    # A stray print() of the integration must not mix with the command's output.
    assert "stray print from the integration" in result.stderr


@pytest.mark.parametrize("bad_word", ["limit", "=5"])
def test_bad_name_value_is_a_usage_error(tmp_path: Path, bad_word: str) -> None:
    result = run_cli("--integration", fake("echo_args"), "--params", write_params(tmp_path), "echo-args", bad_word)
    assert result.returncode == 2
    assert result.stderr.strip() == f"demisto_mock.py: error: command arguments must be NAME=VALUE, got {bad_word!r}"
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read the params file"), ("{not json", "is not valid JSON"), ("[1, 2]", "must hold a JSON object")],
    ids=["missing", "invalid", "not-object"],
)
def test_unreadable_params_is_a_usage_error(tmp_path: Path, content: str | None, message: str) -> None:
    params = tmp_path / "params.json"
    if content is not None:
        params.write_text(content)
    result = run_cli("--integration", fake("echo_args"), "--params", params, "test-module")
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_integration_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("--integration", tmp_path / "nope.py", "--params", write_params(tmp_path), "test-module")
    assert result.returncode == 2
    assert "integration file not found" in result.stderr


def test_api_key_never_leaves_the_params_file(tmp_path: Path) -> None:
    params, state, inbox = write_params(tmp_path), tmp_path / "state.json", tmp_path / "inbox.jsonl"
    report = tmp_path / "report.json"
    outputs: list[str] = []
    for integration in ("fetch_counter", "fetch_raises", "echo_args"):
        options = ["--integration", fake(integration), "--params", params, "--state", state, "--inbox", inbox]
        result = run_cli(*options, "--debug", "--report", report, "fetch-incidents")
        outputs += [result.stdout, result.stderr, report.read_text()]
    schedule = run_cli("--integration", fake("fetch_counter"), "--params", params, "--cycles", "2", "fetch-incidents")
    outputs += [schedule.stdout, schedule.stderr, state.read_text(), inbox.read_text()]
    # The fake integration logs its Authorization header: the runner masks it as the server does.
    assert "Bearer <XX_REPLACED>" in outputs[1]
    assert not [text for text in outputs if API_KEY in text]


def test_report_describes_the_run(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    options = ["--integration", fake("fetch_counter"), "--params", write_params(tmp_path), "--report", report]
    assert run_cli(*options, "fetch-incidents").returncode == 0
    content = json.loads(report.read_text())
    assert content["ok"] is True and content["error"] is None and content["incidents"] == 2
    assert ["info", "fetching from counter 0"] in content["logs"]
    assert isinstance(content["duration_seconds"], float)

    options[1] = str(fake("fetch_raises"))
    assert run_cli(*options, "fetch-incidents").returncode == 1
    failed = json.loads(report.read_text())
    assert failed["ok"] is False and failed["incidents"] == 0
    assert failed["error"] == "upstream API returned 500 for /events retry later"


def test_schedule_runs_fixed_cycles_and_prints_summaries(tmp_path: Path) -> None:
    params, state, inbox = write_params(tmp_path, max_fetch=3), tmp_path / "state.json", tmp_path / "inbox.jsonl"
    options = ["--integration", fake("fetch_counter"), "--params", params, "--state", state, "--inbox", inbox]
    result = run_cli(*options, "--every", "0", "--cycles", "3", "fetch-incidents")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    for number, line in enumerate(lines[:3], start=1):
        assert line.startswith(f"cycle {number}: 3 incidents, 0 duplicates skipped, 1 pages, 0 retries, ")
        assert line.endswith(" s")
    assert lines[3] == "total: 3 cycles, 9 incidents, 0 failures, duplicate incidents in inbox: 0"
    assert json.loads(state.read_text())["last_run"] == {"counter": 9}
    assert len(read_lines(inbox)) == 9


def test_schedule_until_idle_stops_after_the_first_empty_cycle(tmp_path: Path) -> None:
    params, state, inbox = write_params(tmp_path, max_fetch=2, total=5), tmp_path / "state.json", tmp_path / "in.jsonl"
    options = ["--integration", fake("fetch_counter"), "--params", params, "--state", state, "--inbox", inbox]
    result = run_cli(*options, "--every", "0", "--cycles", "10", "--until-idle", "fetch-incidents")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(",")[0] for line in lines[:-1]] == [
        "cycle 1: 2 incidents",
        "cycle 2: 2 incidents",
        "cycle 3: 1 incidents",
        "cycle 4: 0 incidents",
    ]
    assert lines[-1] == "total: 4 cycles, 5 incidents, 0 failures, duplicate incidents in inbox: 0"


def test_schedule_counts_inbox_duplicates_and_missing_figures(tmp_path: Path) -> None:
    params = write_params(tmp_path, max_fetch=2, advance=False, figures=False)
    inbox = tmp_path / "inbox.jsonl"
    options = ["--integration", fake("fetch_counter"), "--params", params, "--inbox", inbox]
    result = run_cli(*options, "--cycles", "3", "fetch-incidents")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("cycle 1: 2 incidents, ? duplicates skipped, ? pages, ? retries, ")
    assert lines[-1] == "total: 3 cycles, 6 incidents, 0 failures, duplicate incidents in inbox: 4"


def test_schedule_keeps_going_after_failed_cycles(tmp_path: Path) -> None:
    params, state = write_params(tmp_path), tmp_path / "state.json"
    options = ["--integration", fake("fetch_raises"), "--params", params, "--state", state]
    result = run_cli(*options, "--every", "0", "--cycles", "2", "--until-idle", "fetch-incidents")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "cycle 1: failed: upstream API returned 500 for /events retry later",
        "cycle 2: failed: upstream API returned 500 for /events retry later",
        "total: 2 cycles, 0 incidents, 2 failures",
    ]
    assert not state.exists()


def test_schedule_usage_errors_exit_2_before_any_cycle(tmp_path: Path) -> None:
    options = ["--integration", fake("fetch_counter"), "--params", write_params(tmp_path)]
    bad_cycles = run_cli(*options, "--cycles", "0", "fetch-incidents")
    assert bad_cycles.returncode == 2 and "--cycles must be at least 1" in bad_cycles.stderr
    bad_args = run_cli(*options, "--cycles", "2", "fetch-incidents", "oops")
    assert bad_args.returncode == 2 and bad_args.stdout == ""


def test_run_schedule_python_api_returns_cycle_records(tmp_path: Path) -> None:
    params, state, inbox = write_params(tmp_path, max_fetch=2, total=3), tmp_path / "state.json", tmp_path / "in.jsonl"
    out, err = io.StringIO(), io.StringIO()
    records = demisto_mock.run_schedule(
        "fetch-incidents",
        params=params,
        integration=fake("fetch_counter"),
        state=state,
        inbox=inbox,
        every=0,
        cycles=5,
        until_idle=True,
        out=out,
        err=err,
    )
    assert [(record.cycle, record.ok, record.incidents) for record in records] == [
        (1, True, 2),
        (2, True, 1),
        (3, True, 0),
    ]
    assert records[0].figures["pages"] == "1" and records[0].figures["watermark"] == "2026-11-26T06:00:00.123Z"
    assert records[0].exit_code == 0 and records[0].error is None
    assert ("info", "fetching from counter 0") in records[0].logs
    assert (
        out.getvalue().splitlines()[-1] == "total: 3 cycles, 3 incidents, 0 failures, duplicate incidents in inbox: 0"
    )
    assert "INFO fetching from counter 2" in err.getvalue()
