"""The runtime runs the artefact users upload, the unified YAML, as the server runs it.

First each emulated server behaviour, on small unified integrations written here (in process, or through the
command line); then EventFetcher's own unified YAML (Integrations/integration-EventFetcher.yml) against the simulator
over real HTTP on loopback: each of its commands once, and generated exactly-once schedules in one reused process.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fetch_e2e import a_day_ago, ago, new_instance, play, steps

import demisto_mock
from simulator import Simulator, format_time

ROOT = Path(__file__).resolve().parent.parent
MOCK_SCRIPT = ROOT / "demisto_mock.py"
UNIFIED = ROOT / "Integrations" / "integration-EventFetcher.yml"
API_KEY = "s3cr3t-api-key-XYZ-0123"
TIMEOUT = 120  # seconds per run; generous for a loaded 2-core machine
# Generated schedules through the unified YAML per test run; raise it for a longer soak.
YAML_E2E_EXAMPLES = int(os.environ.get("YAML_E2E_EXAMPLES", "8"))


# --------------------------------------------------------------------------------------------------------------
# Small unified integrations: code wrapped as the unifier wraps it, in a YAML the runner reads as it reads any
# --------------------------------------------------------------------------------------------------------------


def write_unified(folder: Path, code: str, *, name: str = "Fake", commands: Iterable[dict[str, Any]] = (),
                  configuration: Iterable[dict[str, Any]] = (), isfetch: bool = True) -> Path:
    script = (f"register_module_line('{name}', 'start', __line__())\n{textwrap.dedent(code).strip()}\n\n"
              f"register_module_line('{name}', 'end', __line__())\n")
    data = {
        "commonfields": {"id": name, "version": -1},
        "name": name,
        "display": name,
        "category": "Utilities",
        "configuration": [{"name": "url", "type": 0}, {"name": "credentials", "type": 9}, *configuration],
        "script": {"script": script, "type": "python", "subtype": "python3", "isfetch": isfetch,
                   "commands": list(commands)},
    }
    path = folder / f"integration-{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_in_process(path: Path, command: str = "test-module", *, params: dict[str, Any] | None = None,
                   args: dict[str, str] | None = None, prelude: str = demisto_mock.CSP_STANDIN,
                   ) -> tuple[demisto_mock.CommandOutcome, demisto_mock.Runtime]:
    """One command of a unified YAML, in this process, with the inputs the server would pass."""
    integration = demisto_mock.load_unified(path)
    server_args, _ = integration.server_args(command, args or {})
    server_params, _ = integration.server_params(params or {})
    runtime = demisto_mock.Runtime(command=command, params=server_params, args=server_args, brand=integration.name)
    return demisto_mock.execute_unified(integration, runtime, prelude), runtime


def run_cli(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(MOCK_SCRIPT), *map(str, argv)], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=ROOT, check=False, env=env)


def write_params(folder: Path, **values: Any) -> Path:
    path = folder / "params.json"
    path.write_text(json.dumps({"credentials": {"identifier": "", "password": API_KEY}, **values}), encoding="utf-8")
    return path


def log_messages(runtime: demisto_mock.Runtime, level: str = "info") -> list[str]:
    return [message for logged_level, message in runtime.logs if logged_level == level]


# --------------------------------------------------------------------------------------------------------------
# Each emulated server behaviour
# --------------------------------------------------------------------------------------------------------------


def test_the_script_runs_as_the_server_runs_it_name_builtins_demisto_a_global(tmp_path: Path) -> None:
    path = write_unified(tmp_path, """
        import sys

        def main():
            demisto.info(f"name={__name__} demisto={type(demisto).__name__} main={'__main__' in sys.modules}")
            demisto.info(f"command={demisto.command()} brand={demisto.callingContext['context']['IntegrationBrand']}")
            demisto.results("ok")

        if __name__ in ("__main__", "__builtin__", "builtins"):
            main()
    """)
    outcome, runtime = run_in_process(path)
    assert outcome.ok, outcome.error
    assert log_messages(runtime) == ["name=builtins demisto=Demisto main=True", "command=test-module brand=Fake"]
    assert runtime.entries == [{"Type": 1, "ContentsFormat": "text", "Contents": "ok"}]


def test_the_code_runs_as_it_stands_in_the_yaml_behind_commonserverpython(tmp_path: Path) -> None:
    """The unifier's wrapper calls register_module_line and __line__: the stand-in provides them, and their lines are
    those of the one source the server runs (CommonServerPython first, then the script)."""
    path = write_unified(tmp_path, """
        demisto.info(f"start={_MODULES_LINE_MAPPING['Fake']['start']} here={__line__()}")
    """)
    outcome, runtime = run_in_process(path)
    assert outcome.ok, outcome.error
    prelude_lines = len(demisto_mock.CSP_STANDIN.rstrip().splitlines())
    assert log_messages(runtime) == [f"start={prelude_lines + 2} here={prelude_lines + 3}"]


def test_demistomock_and_commonserverpython_cannot_be_imported(tmp_path: Path) -> None:
    """The unifier removes only `import demistomock as demisto` and `from CommonServerPython import *`: any other
    spelling stays in the script, and the server's container has no such module."""
    for line, module in [("import demistomock", "demistomock"), ("import demistomock as dm", "demistomock"),
                         ("import CommonServerPython", "CommonServerPython"), ("import demisto_mock", "demisto_mock")]:
        outcome, _ = run_in_process(write_unified(tmp_path, line))
        assert not outcome.ok
        assert outcome.error == f"No module named '{module}'"
    assert sys.modules["demistomock"] is demisto_mock  # this test process gets its module back


def test_each_command_gets_fresh_globals_and_a_fresh_demisto(tmp_path: Path) -> None:
    path = write_unified(tmp_path, """
        RUNS = globals().get("RUNS", 0) + 1
        demisto.info(f"runs={RUNS} replaced={getattr(demisto, 'replaced', False)}")
        demisto.replaced = True
    """)
    for _ in range(2):
        outcome, runtime = run_in_process(path)
        assert outcome.ok, outcome.error
        assert log_messages(runtime) == ["runs=1 replaced=False"]


def test_params_get_gives_the_default_for_a_null_value(tmp_path: Path, demisto: demisto_mock.Runtime) -> None:
    # The module face, as the integration's unit tests see it.
    demisto.params = {"max_fetch": None, "first_fetch": "", "url": "https://x"}
    params = demisto_mock.params()
    assert params.get("max_fetch", "50") == "50"
    assert params.get("missing", "50") == "50"
    assert params.get("first_fetch", "3 days") == ""  # only null takes the default, not an empty value
    assert params["max_fetch"] is None and params.get("max_fetch") is None
    # Through a unified YAML: a parameter of the YAML that the instance does not hold arrives as null.
    path = write_unified(tmp_path, """
        params = demisto.params()
        demisto.info(f"{params.get('look_back', 5)} {params['look_back']} {'look_back' in params} {params['url']}")
    """, configuration=[{"name": "look_back", "type": 0, "defaultvalue": "5"}])
    outcome, runtime = run_in_process(path, params={"url": "https://x"})
    assert outcome.ok, outcome.error
    assert log_messages(runtime) == ["5 None True https://x"]


@pytest.mark.parametrize(("given", "entries"), [
    ("ok", [{"Type": 1, "ContentsFormat": "text", "Contents": "ok"}]),
    (b"bytes", [{"Type": 1, "ContentsFormat": "text", "Contents": "bytes"}]),
    (42, [{"Type": 1, "ContentsFormat": "text", "Contents": "42"}]),
    (None, [{"Type": 1, "ContentsFormat": "text", "Contents": "None"}]),
    ({"Contents": "x", "ContentsFormat": "text"}, [{"Contents": "x", "ContentsFormat": "text"}]),
    ({"Type": 4, "Contents": "bad key"}, [{"Type": 1, "ContentsFormat": "json",
                                           "Contents": '{"Type": 4, "Contents": "bad key"}'}]),
    ({"a": 1}, [{"Type": 1, "ContentsFormat": "json", "Contents": '{"a": 1}'}]),
    ([{"Type": 4, "Contents": "e", "ContentsFormat": "text"}, "x"],
     [{"Type": 4, "Contents": "e", "ContentsFormat": "text"}, {"Type": 1, "ContentsFormat": "text", "Contents": "x"}]),
    (demisto_mock.ServerParams(a=1), [{"Type": 1, "ContentsFormat": "text", "Contents": "{'a': 1}"}]),
], ids=["text", "bytes", "number", "none", "entry", "type-4-without-format", "dict", "list", "dict-subclass"])
def test_results_classifies_entries_as_the_server_does(demisto: demisto_mock.Runtime, given: Any,
                                                       entries: list[dict[str, Any]]) -> None:
    demisto_mock.results(given)
    assert demisto.entries == entries


def test_only_a_true_error_entry_fails_the_command(tmp_path: Path) -> None:
    not_an_entry = write_unified(tmp_path, 'demisto.results({"Type": 4, "Contents": "looks like an error"})')
    outcome, _ = run_in_process(not_an_entry)
    assert outcome.ok
    error_entry = write_unified(tmp_path, 'demisto.results({"Type": 4, "ContentsFormat": "text", "Contents": "bad"})')
    outcome, _ = run_in_process(error_entry)
    assert not outcome.ok and outcome.error == "bad"


def test_log_arguments_must_be_json_as_the_server_receives_them(tmp_path: Path) -> None:
    path = write_unified(tmp_path, """
        demisto.debug("page %d of %d", 1, 2)
        try:
            raise ValueError("boom")
        except ValueError as error:
            demisto.error(error)
    """)
    outcome, runtime = run_in_process(path)
    assert not outcome.ok
    assert outcome.error is not None and outcome.error.startswith("demisto.error() got a value the server cannot")
    assert runtime.logs == [("debug", "page 1 of 2")]


def test_versioned_integration_context_and_an_api_the_runtime_lacks(tmp_path: Path) -> None:
    path = write_unified(tmp_path, """
        import json

        demisto.setIntegrationContextVersioned({"token": "t"}, version=-1, sync=True)
        demisto.info(json.dumps(demisto.getIntegrationContextVersioned()))
        demisto.info(str(hasattr(demisto, "executeCommand")))
        demisto.executeCommand("Print", {})
    """)
    outcome, runtime = run_in_process(path)
    assert log_messages(runtime) == ['{"context": {"token": "t"}, "version": -1}', "False"]
    assert runtime.integration_context == {"token": "t"}
    assert not outcome.ok and outcome.error is not None
    assert outcome.error.startswith("demisto.executeCommand is not emulated by demisto_mock.py")


def test_print_goes_to_the_log_and_a_stray_stdout_write_is_warned(tmp_path: Path) -> None:
    params = write_params(tmp_path)
    printing = write_unified(tmp_path, 'print("hello", 42)\ndemisto.results("done")')
    result = run_cli("--integration", printing, "--params", params, "test-module")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert "INFO hello 42" in result.stderr.splitlines()
    writing = write_unified(tmp_path, 'import sys\nsys.stdout.write("raw\\n")\ndemisto.results("done")')
    result = run_cli("--integration", writing, "--params", params, "test-module")
    assert result.returncode == 0, result.stderr
    assert "WARNING the integration wrote to stdout directly" in result.stderr


def test_a_future_import_fails_as_it_does_behind_commonserverpython(tmp_path: Path) -> None:
    outcome, _ = run_in_process(write_unified(tmp_path, "from __future__ import annotations\ndemisto.results('ok')"))
    assert not outcome.ok
    assert outcome.error is not None and outcome.error.startswith("SyntaxError: from __future__ imports must occur")
    assert "cannot use `from __future__` imports" in outcome.error


def test_the_environment_is_restored_after_each_script(tmp_path: Path) -> None:
    path = write_unified(tmp_path, 'import os\nos.environ["FAKE_INTEGRATION_SETTING"] = "set by the script"')
    outcome, _ = run_in_process(path)
    assert outcome.ok, outcome.error
    assert "FAKE_INTEGRATION_SETTING" not in os.environ


ECHO_COMMANDS = [{"name": "fake-echo", "arguments": [{"name": "limit", "defaultValue": "20"},
                                                     {"name": "query", "required": True}, {"name": "since"}]}]


def test_commands_argument_defaults_and_required_arguments_come_from_the_yaml(tmp_path: Path) -> None:
    path = write_unified(tmp_path, "import json\ndemisto.results(json.dumps(demisto.args(), sort_keys=True))",
                         commands=ECHO_COMMANDS, isfetch=False)
    params = write_params(tmp_path)
    echoed = run_cli("--integration", path, "--params", params, "fake-echo", "query=x")
    assert echoed.returncode == 0, echoed.stderr
    assert json.loads(echoed.stdout) == {"limit": "20", "query": "x"}
    missing = run_cli("--integration", path, "--params", params, "fake-echo")
    assert missing.returncode == 2 and "fake-echo needs the argument query" in missing.stderr
    unknown = run_cli("--integration", path, "--params", params, "fake-other")
    assert unknown.returncode == 2 and "has no command 'fake-other'" in unknown.stderr
    no_fetch = run_cli("--integration", path, "--params", params, "fetch-incidents")
    assert no_fetch.returncode == 2 and "does not set script.isfetch" in no_fetch.stderr
    extra = run_cli("--integration", path, "--params", write_params(tmp_path, total=3), "fake-echo", "query=x", "y=1")
    assert extra.returncode == 0, extra.stderr
    assert "WARNING the parameters total are not in" in extra.stderr
    assert "WARNING fake-echo does not declare the arguments y" in extra.stderr


def test_secret_parameters_of_the_yaml_are_masked(tmp_path: Path) -> None:
    path = write_unified(tmp_path, 'demisto.info("using " + demisto.params()["access"])\ndemisto.results("ok")',
                         configuration=[{"name": "access", "type": 4}])
    result = run_cli("--integration", path, "--params", write_params(tmp_path, access="opaque-value-123"),
                     "test-module")
    assert result.returncode == 0, result.stderr
    assert "INFO using <XX_REPLACED>" in result.stderr
    assert "opaque-value-123" not in result.stdout + result.stderr


def write_content_checkout(folder: Path, api_module: bool = True) -> Path:
    """A user's CommonServerPython.py as the public content repository has it: importing demistomock, print_function
    and an API module that the server's copy has inline."""
    csp = folder / "Packs" / "Base" / "Scripts" / "CommonServerPython" / "CommonServerPython.py"
    csp.parent.mkdir(parents=True)
    csp.write_text(textwrap.dedent('''\
        """A user's CommonServerPython (a test double of the real one)."""
        from __future__ import print_function

        import json
        from inspect import currentframe

        import demistomock as demisto


        def __line__():
            return currentframe().f_back.f_lineno


        _MODULES_LINE_MAPPING = {"CommonServerPython": {"start": __line__() - 12, "end": float("inf")}}


        def register_module_line(module_name, start_end, line, wrapper=0):
            _MODULES_LINE_MAPPING.setdefault(module_name, {})[start_end] = line


        def return_results(text):
            demisto.results(text)


        from DemistoClassApiModule import *  # noqa: E402

        register_module_line("CommonServerPython", "end", __line__())
    '''), encoding="utf-8")
    if api_module:
        module = folder / "Packs" / "ApiModules" / "Scripts" / "DemistoClassApiModule" / "DemistoClassApiModule.py"
        module.parent.mkdir(parents=True)
        module.write_text("import demistomock as demisto  # noqa: F401\n\nAPI_MODULE_LOADED = True\n",
                          encoding="utf-8")
    return csp


def test_csp_puts_the_users_commonserverpython_in_front_instead_of_the_stand_in(tmp_path: Path) -> None:
    csp = write_content_checkout(tmp_path / "content")
    path = write_unified(tmp_path, """
        return_results(f"api_module={API_MODULE_LOADED} json={json.dumps([1])} "
                       f"modules={sorted(_MODULES_LINE_MAPPING)}")
    """)
    params = write_params(tmp_path)
    with_csp = run_cli("--integration", path, "--csp", csp, "--params", params, "test-module")
    assert with_csp.returncode == 0, with_csp.stderr
    modules = ["CommonServerPython", "DemistoClassApiModule", "Fake"]
    assert with_csp.stdout == f"api_module=True json=[1] modules={modules}\n"
    # Without it, only the stand-in's two names exist: leaning on CommonServerPython by accident fails here.
    without = run_cli("--integration", path, "--params", params, "test-module")
    assert without.returncode == 1
    assert without.stderr.splitlines()[-1] == "error: name 'return_results' is not defined"
    # The same source, compiled once per process: the server's code cache.
    source = demisto_mock.server_source(demisto_mock.load_unified(path), demisto_mock.read_csp(csp))
    assert "import demistomock" not in source and "print_function" not in source and "API_MODULE_LOADED" in source


def test_csp_usage_errors(tmp_path: Path) -> None:
    csp = write_content_checkout(tmp_path / "content", api_module=False)
    path = write_unified(tmp_path, "demisto.results('ok')")
    params = write_params(tmp_path)
    missing_module = run_cli("--integration", path, "--csp", csp, "--params", params, "test-module")
    assert missing_module.returncode == 2
    assert "imports DemistoClassApiModule, which the server's copy has inline" in missing_module.stderr
    missing_file = run_cli("--integration", path, "--csp", tmp_path / "nowhere.py", "--params", params, "test-module")
    assert missing_file.returncode == 2 and "cannot read the CommonServerPython file" in missing_file.stderr
    with_py = run_cli("--integration", ROOT / demisto_mock.DEFAULT_INTEGRATION, "--csp", csp, "--params", params,
                      "test-module")
    assert with_py.returncode == 2 and "--csp applies to a unified YAML" in with_py.stderr


def test_a_yaml_without_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "EventFetcher.yml"
    path.write_text(yaml.safe_dump({"name": "X", "script": {"script": "-", "type": "python"}}), encoding="utf-8")
    result = run_cli("--integration", path, "--params", write_params(tmp_path), "test-module")
    assert result.returncode == 2 and "holds no code" in result.stderr


# --- one process, command after command -----------------------------------------------------------------------

PERSISTENCE_CODE = """
    import json
    import os
    import warnings

    RUNS = globals().get("RUNS", 0) + 1
    json.fake_runs = getattr(json, "fake_runs", 0) + 1  # state of an imported module
    warnings.filterwarnings("ignore", message=f"fake marker {json.fake_runs}")
    markers = sum(1 for entry in warnings.filters if entry[1] is not None and "fake marker" in entry[1].pattern)
    os.environ["FAKE_SETTING"] = os.environ.get("FAKE_SETTING", "") + "x"
    demisto.info(f"module_runs={json.fake_runs} filters={markers} globals_runs={RUNS} env={os.environ['FAKE_SETTING']}")
    counter = demisto.getLastRun().get("counter", 0)
    demisto.debug("fetch figures: duplicates=0 pages=1 retries=0")
    demisto.incidents([{"name": f"event {counter}", "dbotMirrorId": str(counter)}])
    demisto.setLastRun({"counter": counter + 1})
"""


def schedule_in(process: str, folder: Path, cycles: int = 3) -> tuple[list[demisto_mock.CycleRecord], list[str]]:
    folder.mkdir()
    out = io.StringIO()
    records = demisto_mock.run_schedule(
        params=write_params(folder), integration=write_unified(folder, PERSISTENCE_CODE), state=folder / "state.json",
        inbox=folder / "inbox.jsonl", cycles=cycles, process=process, timeout=TIMEOUT, out=out, err=io.StringIO())
    return records, out.getvalue().splitlines()


def info_lines(records: list[demisto_mock.CycleRecord]) -> list[str]:
    return [message for record in records for level, message in record.logs if level == "info"]


def test_a_reused_process_keeps_modules_and_warnings_but_not_globals_or_environment(tmp_path: Path) -> None:
    reused, reused_lines = schedule_in("reused", tmp_path / "reused")
    fresh, fresh_lines = schedule_in("fresh", tmp_path / "fresh")
    assert info_lines(reused) == [f"module_runs={n} filters={n} globals_runs=1 env=x" for n in (1, 2, 3)]
    assert info_lines(fresh) == ["module_runs=1 filters=1 globals_runs=1 env=x"] * 3
    # The same summary lines in both modes, durations aside.
    assert [re.sub(r"[\d.]+ s$", "S", line) for line in reused_lines] == [
        "cycle 1: 1 incidents, 0 duplicates skipped, 1 pages, 0 retries, S",
        "cycle 2: 1 incidents, 0 duplicates skipped, 1 pages, 0 retries, S",
        "cycle 3: 1 incidents, 0 duplicates skipped, 1 pages, 0 retries, S",
        "total: 3 cycles, 3 incidents, 0 failures, duplicate incidents in inbox: 0",
    ]
    assert [re.sub(r"[\d.]+ s$", "S", line) for line in fresh_lines] == [
        re.sub(r"[\d.]+ s$", "S", line) for line in reused_lines]


def test_the_reused_process_mode_on_the_command_line(tmp_path: Path) -> None:
    params, path = write_params(tmp_path), write_unified(tmp_path, PERSISTENCE_CODE)
    result = run_cli("--integration", path, "--params", params, "--state", tmp_path / "state.json", "--cycles", "2",
                     "--process", "reused", "fetch-incidents")
    assert result.returncode == 0, result.stderr
    assert "INFO module_runs=2 filters=2 globals_runs=1 env=x" in result.stderr.splitlines()
    assert result.stdout.splitlines()[-1] == "total: 2 cycles, 2 incidents, 0 failures"


def test_a_command_over_its_timeout_kills_the_reused_process_and_the_next_one_starts_a_new_one(tmp_path: Path) -> None:
    path = write_unified(tmp_path, """
        import threading

        if demisto.command() == "fake-hang":
            threading.Event().wait()
        demisto.results("ok")
    """, commands=[{"name": "fake-hang"}])
    params = write_params(tmp_path)
    hang = demisto_mock.CommandSpec("fake-hang", params=params, integration=path)
    test = demisto_mock.CommandSpec("test-module", params=params, integration=path)
    with demisto_mock.ReusedProcess() as process:
        assert process.run(test, timeout=TIMEOUT).ok
        first_pid = process.pid
        timed_out = process.run(hang, timeout=2)
        assert not timed_out.ok and timed_out.error == "timed out after 2 s"
        assert process.pid is None
        record = process.run(test, timeout=TIMEOUT)
        assert record.ok and record.stdout == "ok\n"
        assert process.processes_started == 2 and process.pid != first_pid


# --------------------------------------------------------------------------------------------------------------
# EventFetcher's unified YAML, as users upload it, against the simulator
# --------------------------------------------------------------------------------------------------------------


def test_unified_yaml_test_module(make_simulator: Callable[..., Simulator], tmp_path: Path) -> None:
    instance = new_instance(make_simulator(seed=3, clock=a_day_ago()), tmp_path)
    params = tmp_path / "params.json"
    params.write_text(json.dumps(instance.params), encoding="utf-8")
    result = run_cli("--integration", UNIFIED, "--params", params, "test-module")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_unified_yaml_fetch_incidents(make_simulator: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = make_simulator(seed=4, clock=a_day_ago())
    instance = new_instance(sim, tmp_path, max_fetch="10")
    events = sim.add_events(12, at=ago(sim, 60))
    params = tmp_path / "params.json"
    params.write_text(json.dumps(instance.params), encoding="utf-8")
    options = ["--integration", UNIFIED, "--params", params, "--state", instance.state_path, "--inbox",
               instance.inbox_path, "fetch-incidents"]
    for _ in range(3):
        result = run_cli(*options)
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
    assert sorted(instance.incident_ids()) == sorted(event["id"] for event in events)
    assert instance.last_run()  # the last run was kept
    assert sim.api_key not in instance.state_path.read_text() + instance.inbox_path.read_text()


def test_unified_yaml_get_events(make_simulator: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = make_simulator(seed=5, clock=a_day_ago())
    instance = new_instance(sim, tmp_path)
    events = [sim.add_event(ago(sim, 30 - i)) for i in range(3)]
    params = tmp_path / "params.json"
    params.write_text(json.dumps(instance.params), encoding="utf-8")
    result = run_cli("--integration", UNIFIED, "--params", params, "event-fetcher-get-events",
                     f"since={format_time(sim.clock.now() - timedelta(minutes=5))}", "limit=2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("### Event Source items since ")
    assert [event["id"] in result.stdout for event in events] == [True, True, False]


@dataclass
class UnifiedInstance:
    """An instance of the uploaded integration whose fetches all run in one reused process."""

    folder: Path
    params: dict[str, Any]
    process: demisto_mock.ReusedProcess
    records: list[demisto_mock.CycleRecord] = field(default_factory=list)
    largest_last_run: int = 0

    def fetch(self) -> demisto_mock.CycleRecord:
        params_path = self.folder / "params.json"
        params_path.write_text(json.dumps(self.params), encoding="utf-8")
        spec = demisto_mock.CommandSpec(demisto_mock.FETCH_COMMAND, params=params_path, integration=UNIFIED,
                                        state=self.folder / "state.json", inbox=self.folder / "inbox.jsonl")
        record = self.process.run(spec, timeout=TIMEOUT)
        self.records.append(record)
        state = self.folder / "state.json"
        if state.exists():
            last_run = json.loads(state.read_text(encoding="utf-8"))["last_run"]
            self.largest_last_run = max(self.largest_last_run, len(json.dumps(last_run)))
        return record

    def drain(self, limit: int = 60) -> None:
        for _ in range(limit):
            record = self.fetch()
            if record.ok and record.incidents == 0:
                return
        raise AssertionError("the fetch never caught up")

    def incident_ids(self) -> list[str]:
        inbox = self.folder / "inbox.jsonl"
        if not inbox.exists():
            return []
        return [json.loads(line)["dbotMirrorId"] for line in inbox.read_text(encoding="utf-8").splitlines() if line]


YAML_FIGURES: dict[str, int] = {"examples": 0, "runs": 0, "failed_runs": 0, "events": 0, "faults": 0, "incidents": 0}


@settings(max_examples=YAML_E2E_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(steps, min_size=3, max_size=14), max_fetch=st.sampled_from([3, 25, 200]),
       look_back=st.sampled_from([0, 5]), seed=st.integers(0, 2**16))
def test_exactly_once_through_the_unified_yaml_in_one_reused_process(
        make_simulator: Callable[..., Simulator], tmp_path_factory: pytest.TempPathFactory,
        schedule: list[tuple[Any, ...]], max_fetch: int, look_back: int, seed: int) -> None:
    """The generated schedules of the end-to-end tests, run through the uploaded artefact, every fetch of an
    instance in one process as the server's container runs them: every event that stayed New and arrived late by at
    most the look-back becomes exactly one incident."""
    sim = make_simulator(seed=seed, clock=a_day_ago())
    folder = tmp_path_factory.mktemp("yaml-e2e")
    params = new_instance(sim, folder, max_fetch=str(max_fetch), look_back=str(look_back), request_timeout="2").params
    with demisto_mock.ReusedProcess() as process:
        instance = UnifiedInstance(folder, params, process)
        played = play(schedule, sim, instance.fetch, seed=seed, fetched_ids=instance.incident_ids)
        lateness, changed = played.lateness, played.changed
        instance.drain()
        assert process.processes_started == 1, "every fetch ran in the one reused process"

    ids = instance.incident_ids()
    faults = played.faults
    failed = sum(1 for record in instance.records if not record.ok)
    YAML_FIGURES.update(examples=YAML_FIGURES["examples"] + 1, runs=YAML_FIGURES["runs"] + len(instance.records),
                        failed_runs=YAML_FIGURES["failed_runs"] + failed, events=YAML_FIGURES["events"] + len(lateness),
                        faults=YAML_FIGURES["faults"] + faults, incidents=YAML_FIGURES["incidents"] + len(ids))
    print(f"unified-YAML exactly-once figures so far: {YAML_FIGURES}")
    must = {event_id for event_id, late in lateness.items() if late <= look_back * 60 and event_id not in changed}
    assert len(ids) == len(set(ids)), "an event became two incidents"
    assert not must - set(ids), f"lost: {sorted(must - set(ids))}"
    assert set(ids) <= set(lateness)
    assert instance.largest_last_run <= 60 * max(1, len(lateness)) + 200
