"""Local stand-in for the Cortex XSOAR integration runtime, imported by integrations as ``demistomock``.

Two faces:

* Imported as ``demistomock``: the module-level functions an integration calls (``demisto.params()``,
  ``demisto.getLastRun()``, ``demisto.incidents()``, ...). Each delegates to the current :class:`Runtime`, which
  holds the inputs of one command run, records what the integration did, and behaves like the server where it
  matters: ``{}`` on a first run, copies instead of shared objects, JSON-only values.
* Run as a script: executes one integration command the way the server does (fresh process, ``__main__`` entry
  guard), persists the instance state only when the command succeeds, collects created incidents in an inbox
  file, and can repeat a command on a schedule like the server's fetch interval::

      python demisto_mock.py --params params.json --state state.json --inbox inbox.jsonl fetch-incidents
      python demisto_mock.py --params params.json --state state.json --every 60 --until-idle fetch-incidents
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import runpy
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

PROG = "demisto_mock.py"
BRAND = "EventFetcher"
DEFAULT_INSTANCE_NAME = "EventFetcher_instance_1"
DEFAULT_INTEGRATION = Path("Packs/EventFetcher/Integrations/EventFetcher/EventFetcher.py")
FETCH_COMMAND = "fetch-incidents"
LAST_RUN_WARNING_BYTES = 1_000_000
ENTRY_TYPE_NOTE = 1
ENTRY_TYPE_ERROR = 4
FIGURES_PREFIX = "fetch figures:"
REDACTED = "<XX_REPLACED>"
DEFAULT_MAX_CYCLES = 100
DEFAULT_CYCLE_TIMEOUT_SECONDS = 600.0
LOG_LEVELS = ("debug", "info", "warning", "error")
# Parameter names whose string values are secrets: the server masks them in logs, so does this runner.
SECRET_NAME_PARTS = ("password", "key", "token", "secret")


# --------------------------------------------------------------------------------------------------------------
# The runtime: inputs of one command run and the record of what the integration did
# --------------------------------------------------------------------------------------------------------------


def _default_version() -> dict[str, str]:
    return {"version": "8.9.0", "buildNumber": "12345"}


def to_server_json(function_name: str, value: Any) -> tuple[Any, int]:
    """Send ``value`` through JSON as the server does; return the received copy and its size in bytes.

    Raises TypeError/ValueError naming the demisto function, as the command would crash on the server.
    """
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"demisto.{function_name}() got a value the server cannot receive as JSON: {exc}") from exc
    return json.loads(text), len(text.encode("utf-8"))


def _format_message(msg: Any, args: tuple[Any, ...]) -> str:
    # demisto.debug(msg, *args) formats like the logging module when arguments are given.
    text = str(msg)
    if args:
        with contextlib.suppress(TypeError, ValueError):
            return text % args
        return " ".join([text, *map(str, args)])
    return text


def _as_entries(results: Any) -> list[Any]:
    """Normalise what demisto.results() accepts (entry, list of entries, plain value) to a list of entries."""
    items = results if isinstance(results, list) else [results]
    entries: list[Any] = []
    for item in items:
        if isinstance(item, dict) and ("Type" in item or "Contents" in item):
            entries.append(item)
        else:
            fmt = "text" if isinstance(item, str) else "json"
            entries.append({"Type": ENTRY_TYPE_NOTE, "ContentsFormat": fmt, "Contents": item})
    return entries


def _validate_incidents(incidents: Any) -> None:
    if not isinstance(incidents, list):
        raise TypeError(f"demisto.incidents() needs a list of incident dicts, got {type(incidents).__name__}")
    for position, incident in enumerate(incidents):
        if not isinstance(incident, dict):
            raise TypeError(f"demisto.incidents(): incident {position} is a {type(incident).__name__}, not a dict")
        name = incident.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"demisto.incidents(): incident {position} has no 'name' (a non-empty string)")
        if "rawJSON" in incident:
            raw = incident["rawJSON"]
            if not isinstance(raw, str):
                raise TypeError(
                    f"demisto.incidents(): incident {position} has a rawJSON of type {type(raw).__name__}; "
                    "the server needs a JSON string (json.dumps(event))"
                )
            try:
                json.loads(raw)
            except ValueError as exc:
                raise ValueError(f"demisto.incidents(): incident {position} rawJSON is not valid JSON: {exc}") from exc


@dataclass
class Runtime:
    """What the server gives one command run, and the record of what the integration did during it."""

    command: str = "test-module"
    params: dict[str, Any] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)
    last_run: Any = field(default_factory=dict)
    integration_context: dict[str, Any] = field(default_factory=dict)
    instance_name: str = DEFAULT_INSTANCE_NAME
    brand: str = BRAND
    version: dict[str, str] = field(default_factory=_default_version)
    # Record of the run, in call order.
    calls: list[str] = field(default_factory=list)
    incidents_created: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)
    set_last_run_calls: list[Any] = field(default_factory=list)
    set_integration_context_calls: list[dict[str, Any]] = field(default_factory=list)
    module_health: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Receives each log line as it happens (the command-line runner streams them to stderr).
    log_sink: Callable[[str, str], None] | None = field(default=None, repr=False, compare=False)

    def errors(self) -> list[dict[str, Any]]:
        """Error entries (Type 4) the integration returned, e.g. through return_error()."""
        return [entry for entry in self.entries if entry.get("Type") == ENTRY_TYPE_ERROR]

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))
        if self.log_sink is not None:
            self.log_sink(level, message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.log("warning", message)

    def get_last_run(self) -> Any:
        # A copy, as a fresh process would receive: mutating it must not change the stored last run.
        return {} if self.last_run is None else copy.deepcopy(self.last_run)

    def set_last_run(self, obj: Any) -> None:
        received, size = to_server_json("setLastRun", obj)
        if size > LAST_RUN_WARNING_BYTES:
            self.warn(f"last run is {size} bytes, over the {LAST_RUN_WARNING_BYTES} bytes limit: keep it bounded")
        self.set_last_run_calls.append(received)
        self.last_run = received

    def add_incidents(self, incidents: Any) -> None:
        _validate_incidents(incidents)
        received, _ = to_server_json("incidents", incidents)
        if any(name == "incidents" for name in self.calls[:-1]):
            self.warn("demisto.incidents() called more than once in one run")
        self.incidents_created.extend(received)

    def add_results(self, results: Any) -> None:
        received, _ = to_server_json("results", _as_entries(results))
        self.entries.extend(received)

    def get_integration_context(self) -> dict[str, Any]:
        return copy.deepcopy(self.integration_context)

    def set_integration_context(self, context: Any) -> None:
        received, _ = to_server_json("setIntegrationContext", context)
        self.set_integration_context_calls.append(received)
        self.integration_context = received

    def update_module_health(self, data: Any, is_error: bool) -> None:
        received, _ = to_server_json("updateModuleHealth", data)
        self.module_health.append({"data": received, "is_error": bool(is_error)})


# --------------------------------------------------------------------------------------------------------------
# The module face: the functions an integration calls as ``demisto.<name>``
# --------------------------------------------------------------------------------------------------------------

_runtime: Runtime = Runtime()
# The server exposes the calling context as a plain dict attribute; it is updated in place on each runtime swap.
callingContext: dict[str, Any] = {}
is_debug: bool = False


def _sync_calling_context(runtime: Runtime) -> None:
    callingContext.clear()
    callingContext.update(
        {
            "context": {"IntegrationBrand": runtime.brand, "IntegrationInstance": runtime.instance_name},
            "command": runtime.command,
            "args": copy.deepcopy(runtime.args),
        }
    )


def use_runtime(runtime: Runtime) -> Runtime:
    """Install ``runtime`` as the one the demisto functions talk to; return the previous one (to restore it)."""
    global _runtime
    previous = _runtime
    _runtime = runtime
    _sync_calling_context(runtime)
    return previous


def reset(**fields: Any) -> Runtime:
    """Install and return a fresh Runtime built from ``fields`` (command, params, args, last_run, ...)."""
    runtime = Runtime(**fields)
    use_runtime(runtime)
    return runtime


def current_runtime() -> Runtime:
    return _runtime


def errors() -> list[dict[str, Any]]:
    """Error entries recorded by the current runtime."""
    return _runtime.errors()


def _called(name: str) -> Runtime:
    _runtime.calls.append(name)
    return _runtime


def command() -> str:
    return _called("command").command


def params() -> dict[str, Any]:
    return copy.deepcopy(_called("params").params)


def args() -> dict[str, Any]:
    return copy.deepcopy(_called("args").args)


def getParam(name: str) -> Any:
    return copy.deepcopy(_called("getParam").params.get(name))


def getLastRun() -> Any:
    return _called("getLastRun").get_last_run()


def setLastRun(obj: Any) -> None:
    _called("setLastRun").set_last_run(obj)


def incidents(incidents: Any = None) -> None:
    _called("incidents").add_incidents(incidents)


def results(results: Any) -> None:
    _called("results").add_results(results)


def getIntegrationContext() -> dict[str, Any]:
    return _called("getIntegrationContext").get_integration_context()


def setIntegrationContext(context: Any) -> None:
    _called("setIntegrationContext").set_integration_context(context)


def demistoVersion() -> dict[str, str]:
    return dict(_called("demistoVersion").version)


def integrationInstance() -> str:
    return _called("integrationInstance").instance_name


def updateModuleHealth(data: Any, is_error: bool = False) -> None:
    _called("updateModuleHealth").update_module_health(data, is_error)


# Logging functions are recorded in ``logs`` rather than ``calls``, so call-order checks see only the data calls.
def debug(msg: Any, *args: Any) -> None:
    _runtime.log("debug", _format_message(msg, args))


def info(msg: Any, *args: Any) -> None:
    _runtime.log("info", _format_message(msg, args))


def error(msg: Any, *args: Any) -> None:
    _runtime.log("error", _format_message(msg, args))


def log(msg: Any) -> None:
    _runtime.log("info", str(msg))


_sync_calling_context(_runtime)


# --------------------------------------------------------------------------------------------------------------
# Running one integration command the way the server does
# --------------------------------------------------------------------------------------------------------------


class UsageError(Exception):
    """Bad runner usage (unreadable input file, malformed NAME=VALUE): exit status 2."""


@dataclass
class CommandOutcome:
    ok: bool
    error: str | None = None
    traceback: str | None = None


@dataclass
class RunInputs:
    integration: Path
    command: str
    params: dict[str, Any]
    args: dict[str, str]
    state_path: Path | None
    state: dict[str, Any]
    inbox: Path | None


def default_integration_path() -> Path:
    return Path(__file__).resolve().parent / DEFAULT_INTEGRATION


def secret_values(params: Any) -> list[str]:
    """String values of secret-named parameters (credentials passwords, API keys), longest first."""
    found: set[str] = set()

    def visit(value: Any, name: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                visit(item, str(key))
        elif isinstance(value, list):
            for item in value:
                visit(item, name)
        elif isinstance(value, str) and len(value) >= 4 and any(part in name.lower() for part in SECRET_NAME_PARTS):
            found.add(value)

    visit(params, "")
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


class _RedactingWriter(io.TextIOBase):
    """Text stream that masks secrets before passing text on (stray print() calls of the integration)."""

    def __init__(self, target: TextIO, secrets: Sequence[str]) -> None:
        super().__init__()
        self._target = target
        self._secrets = secrets

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._target.write(redact(text, self._secrets))
        return len(text)

    def flush(self) -> None:
        self._target.flush()


def parse_assignments(words: Sequence[str]) -> dict[str, str]:
    """NAME=VALUE words to command arguments; values stay strings, as the server passes them."""
    parsed: dict[str, str] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"command arguments must be NAME=VALUE, got {word!r}")
        parsed[name.strip()] = value
    return parsed


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        # The decoder message gives only a position, never the file's content (it may hold secrets).
        raise UsageError(f"the {what} file {path} is not valid JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"the {what} file {path} must hold a JSON object")
    return loaded


def load_state(path: Path | None) -> dict[str, Any]:
    """The persisted instance state; a missing file is a first run."""
    if path is None or not path.exists():
        return {"last_run": {}, "integration_context": {}}
    state = _read_json_object(path, "state")
    if not isinstance(state.get("integration_context", {}), dict):
        raise UsageError(f"the state file {path} has an integration_context that is not an object")
    return state


def load_inputs(options: argparse.Namespace) -> RunInputs:
    integration = Path(options.integration) if options.integration else default_integration_path()
    if not integration.is_file():
        raise UsageError(f"integration file not found: {integration}")
    state_path = Path(options.state) if options.state else None
    return RunInputs(
        integration=integration.resolve(),
        command=options.command,
        params=_read_json_object(Path(options.params), "params"),
        args=parse_assignments(options.assignments),
        state_path=state_path,
        state=load_state(state_path),
        inbox=Path(options.inbox) if options.inbox else None,
    )


def _exception_message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _entry_text(entry: Mapping[str, Any]) -> str:
    readable = entry.get("HumanReadable")
    if readable:
        return str(readable)
    contents = entry.get("Contents")
    return contents if isinstance(contents, str) else json.dumps(contents)


def one_line(text: str) -> str:
    return " ".join(text.split())


def execute_integration(integration: Path, runtime: Runtime) -> CommandOutcome:
    """Run the integration file as the server does, against ``runtime``; never raises for integration failures."""
    this_module = sys.modules[__name__]
    saved_modules = {name: sys.modules.get(name) for name in ("demistomock", "demisto_mock")}
    saved_path = list(sys.path)
    previous_runtime = use_runtime(runtime)
    # One module object under both names, so the integration and this runner share one runtime.
    sys.modules["demistomock"] = this_module
    sys.modules["demisto_mock"] = this_module
    sys.path.insert(0, str(integration.parent))
    outcome = CommandOutcome(ok=True)
    try:
        runpy.run_path(str(integration), run_name="__main__")
    except SystemExit as exit_request:
        code = exit_request.code
        if isinstance(code, str):
            outcome = CommandOutcome(ok=False, error=code)
        elif code not in (None, 0):
            outcome = CommandOutcome(ok=False, error=f"the integration exited with status {code}")
    except Exception as exc:
        outcome = CommandOutcome(ok=False, error=_exception_message(exc), traceback=traceback.format_exc())
    finally:
        sys.path[:] = saved_path
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        use_runtime(previous_runtime)
    if outcome.ok and runtime.errors():
        outcome = CommandOutcome(ok=False, error=_entry_text(runtime.errors()[0]))
    return outcome


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a crash leaves either the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp_file:
            temp_file.write(text)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    with contextlib.suppress(OSError):
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def append_json_lines(path: Path, records: Sequence[Any]) -> None:
    if not records:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as inbox:
        inbox.write("".join(json.dumps(record) + "\n" for record in records))
        inbox.flush()
        os.fsync(inbox.fileno())


def persist_success(inputs: RunInputs, runtime: Runtime) -> None:
    """Keep what a successful command produced: inbox first, then state (a crash in between re-fetches, not loses)."""
    is_fetch = inputs.command == FETCH_COMMAND
    if is_fetch and inputs.inbox is not None:
        append_json_lines(inputs.inbox, runtime.incidents_created)
    if inputs.state_path is None:
        return
    new_state = dict(inputs.state)
    # The server keeps a last run only from fetch-incidents, and only if it was set.
    if is_fetch and runtime.set_last_run_calls:
        new_state["last_run"] = runtime.last_run
    new_state["integration_context"] = runtime.integration_context
    write_atomically(inputs.state_path, json.dumps(new_state, indent=2) + "\n")


def _stderr_log_sink(show_debug: bool, secrets: Sequence[str]) -> Callable[[str, str], None]:
    stream = sys.stderr

    def emit(level: str, message: str) -> None:
        if level == "debug" and not show_debug:
            return
        print(f"{level.upper()} {redact(message, secrets)}", file=stream, flush=True)

    return emit


def _print_output(inputs: RunInputs, runtime: Runtime, secrets: Sequence[str]) -> None:
    if inputs.command == FETCH_COMMAND:
        if inputs.inbox is None:
            for incident in runtime.incidents_created:
                print(redact(json.dumps(incident), secrets))
        return
    for entry in runtime.entries:
        print(redact(_entry_text(entry), secrets))


def _write_report(path: str | None, report: dict[str, Any]) -> None:
    if path:
        write_atomically(Path(path), json.dumps(report, indent=2) + "\n")


def run_single_command(options: argparse.Namespace) -> int:
    """One command run with persistence and output; returns the exit status."""
    started = time.monotonic()
    report: dict[str, Any] = {"ok": False, "error": None, "command": options.command, "incidents": 0, "logs": []}
    try:
        inputs = load_inputs(options)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        report.update(error=str(exc), duration_seconds=round(time.monotonic() - started, 3))
        _write_report(options.report, report)
        return 2
    secrets = secret_values(inputs.params)
    runtime = Runtime(
        command=inputs.command,
        params=inputs.params,
        args=dict(inputs.args),
        last_run=inputs.state.get("last_run") or {},
        integration_context=inputs.state.get("integration_context") or {},
        log_sink=_stderr_log_sink(options.debug, secrets),
    )
    # The command's output owns stdout; a stray print() of the integration goes to stderr.
    with contextlib.redirect_stdout(_RedactingWriter(sys.stderr, secrets)):
        outcome = execute_integration(inputs.integration, runtime)
    if outcome.ok:
        try:
            persist_success(inputs, runtime)
        except OSError as exc:
            outcome = CommandOutcome(ok=False, error=f"cannot save the run's results: {exc}")
    error_message = redact(one_line(outcome.error or ""), secrets) or None
    report.update(
        ok=outcome.ok,
        error=error_message,
        incidents=len(runtime.incidents_created) if outcome.ok else 0,
        logs=[[level, redact(message, secrets)] for level, message in runtime.logs],
        warnings=[redact(warning, secrets) for warning in runtime.warnings],
        duration_seconds=round(time.monotonic() - started, 3),
    )
    _write_report(options.report, report)
    if not outcome.ok:
        if options.debug and outcome.traceback:
            print(redact(outcome.traceback, secrets), file=sys.stderr, end="")
        print(f"error: {error_message}", file=sys.stderr)
        return 1
    _print_output(inputs, runtime, secrets)
    return 0


# --------------------------------------------------------------------------------------------------------------
# Scheduling mode: repeat a command in a fresh process per cycle, like the server's fetch interval
# --------------------------------------------------------------------------------------------------------------


def parse_fetch_figures(logs: Sequence[Sequence[str]]) -> dict[str, str]:
    """key=value pairs of the last ``fetch figures:`` log line of a run (empty when it logged none)."""
    figures: dict[str, str] = {}
    for _level, message in logs:
        if message.startswith(FIGURES_PREFIX):
            pairs = (word.partition("=") for word in message[len(FIGURES_PREFIX) :].split())
            figures = {key: value for key, sep, value in pairs if sep and key}
    return figures


def count_inbox_duplicates(inbox: Path) -> int:
    """How many inbox incidents repeat a dbotMirrorId already seen (a duplicate-free fetch gives 0)."""
    if not inbox.exists():
        return 0
    seen: Counter[str] = Counter()
    with inbox.open(encoding="utf-8") as lines:
        for line in lines:
            with contextlib.suppress(ValueError):
                incident = json.loads(line)
                if isinstance(incident, dict) and incident.get("dbotMirrorId") is not None:
                    seen[str(incident["dbotMirrorId"])] += 1
    return sum(count - 1 for count in seen.values())


@dataclass
class CycleRecord:
    """One scheduled run of the command, as read from the child process's report."""

    cycle: int
    ok: bool
    error: str | None
    incidents: int
    figures: dict[str, str]
    duration_seconds: float
    exit_code: int | None
    logs: list[tuple[str, str]] = field(default_factory=list)

    def summary_line(self) -> str:
        if not self.ok:
            return f"cycle {self.cycle}: failed: {self.error}"

        def figure(key: str) -> str:
            return self.figures.get(key, "?")

        return (
            f"cycle {self.cycle}: {self.incidents} incidents, {figure('duplicates')} duplicates skipped, "
            f"{figure('pages')} pages, {figure('retries')} retries, {self.duration_seconds:.2f} s"
        )


def total_line(records: Sequence[CycleRecord], inbox: Path | None = None) -> str:
    failures = sum(1 for record in records if not record.ok)
    incidents_total = sum(record.incidents for record in records)
    line = f"total: {len(records)} cycles, {incidents_total} incidents, {failures} failures"
    if inbox is not None:
        line += f", duplicate incidents in inbox: {count_inbox_duplicates(inbox)}"
    return line


def repeat_on_schedule(
    run_cycle: Callable[[int], CycleRecord],
    *,
    every: float,
    max_cycles: int,
    until_idle: bool,
    on_record: Callable[[CycleRecord], None] = lambda record: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CycleRecord]:
    """Start a cycle every ``every`` seconds (at once if the previous one overran), up to ``max_cycles``."""
    records: list[CycleRecord] = []
    next_start = clock()
    for number in range(1, max_cycles + 1):
        wait = next_start - clock()
        if wait > 0:
            sleep(wait)
        started = clock()
        record = run_cycle(number)
        records.append(record)
        on_record(record)
        # A failed cycle creates nothing but is not idleness: the next fetch retries, as on a server.
        if until_idle and record.ok and record.incidents == 0:
            break
        next_start = started + every
    return records


def _child_command(
    command_name: str,
    *,
    params: Path,
    integration: Path,
    state: Path | None,
    inbox: Path | None,
    args: Mapping[str, str],
    debug: bool,
    report: Path,
) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--integration", str(integration), "--params", str(params)]
    if state is not None:
        argv += ["--state", str(state)]
    if inbox is not None:
        argv += ["--inbox", str(inbox)]
    if debug:
        argv.append("--debug")
    argv += ["--report", str(report), command_name]
    argv += [f"{name}={value}" for name, value in args.items()]
    return argv


def _read_cycle_record(number: int, report_path: Path, exit_code: int | None, stderr: str) -> CycleRecord:
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        last_line = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
        message = last_line.removeprefix("error: ") or f"the run exited with status {exit_code} and no report"
        return CycleRecord(number, False, message, 0, {}, 0.0, exit_code)
    logs = [(str(level), str(message)) for level, message in report.get("logs", [])]
    ok = bool(report.get("ok")) and exit_code == 0
    return CycleRecord(
        cycle=number,
        ok=ok,
        error=None if ok else (report.get("error") or f"the run exited with status {exit_code}"),
        incidents=int(report.get("incidents", 0)) if ok else 0,
        figures=parse_fetch_figures(logs),
        duration_seconds=float(report.get("duration_seconds", 0.0)),
        exit_code=exit_code,
        logs=logs,
    )


def run_schedule(
    command_name: str = FETCH_COMMAND,
    *,
    params: str | Path,
    integration: str | Path | None = None,
    state: str | Path | None = None,
    inbox: str | Path | None = None,
    args: Mapping[str, str] | None = None,
    every: float = 0.0,
    cycles: int | None = None,
    until_idle: bool = False,
    debug: bool = False,
    timeout: float = DEFAULT_CYCLE_TIMEOUT_SECONDS,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> list[CycleRecord]:
    """Run ``command_name`` once per cycle, each in a fresh child process, and print one summary line per cycle
    plus a total line to ``out`` (stdout by default); the children's stdout goes to ``out``, their logs to ``err``.

    Returns one CycleRecord per cycle. ``cycles`` defaults to DEFAULT_MAX_CYCLES (an upper bound with until_idle).
    """
    if every < 0:
        raise UsageError("--every must be 0 or more seconds")
    max_cycles = DEFAULT_MAX_CYCLES if cycles is None else cycles
    if max_cycles < 1:
        raise UsageError("--cycles must be at least 1")
    out_stream = out if out is not None else sys.stdout
    err_stream = err if err is not None else sys.stderr
    state_path = Path(state).resolve() if state is not None else None
    inbox_path = Path(inbox).resolve() if inbox is not None else None
    integration_path = Path(integration).resolve() if integration is not None else default_integration_path()

    with tempfile.TemporaryDirectory(prefix="demisto-mock-reports-") as report_folder:

        def run_cycle(number: int) -> CycleRecord:
            report_path = Path(report_folder) / f"cycle-{number}.json"
            argv = _child_command(
                command_name,
                params=Path(params).resolve(),
                integration=integration_path,
                state=state_path,
                inbox=inbox_path,
                args=args or {},
                debug=debug,
                report=report_path,
            )
            try:
                child = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                return CycleRecord(number, False, f"timed out after {timeout:g} s", 0, {}, float(timeout), None)
            out_stream.write(child.stdout)
            err_stream.write(child.stderr)
            return _read_cycle_record(number, report_path, child.returncode, child.stderr)

        def show(record: CycleRecord) -> None:
            print(record.summary_line(), file=out_stream, flush=True)

        records = repeat_on_schedule(
            run_cycle, every=every, max_cycles=max_cycles, until_idle=until_idle, on_record=show
        )
    print(total_line(records, inbox_path), file=out_stream, flush=True)
    return records


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run one integration command the way the XSOAR server does, or repeat it on a schedule.",
    )
    parser.add_argument("--integration", help=f"integration file (default: {DEFAULT_INTEGRATION})")
    parser.add_argument("--params", required=True, help="JSON object of instance parameters (never printed)")
    parser.add_argument("--state", help="instance state file {last_run, integration_context}; missing = first run")
    parser.add_argument("--inbox", help="fetch-incidents: append created incidents here as JSON lines")
    parser.add_argument("--debug", action="store_true", help="show debug logs and tracebacks on stderr")
    parser.add_argument("--report", help="write a JSON report of the run to this file")
    parser.add_argument("--every", type=float, help="scheduling mode: start a cycle every SECONDS (default 0)")
    parser.add_argument("--cycles", type=int, help=f"scheduling mode: number of cycles (default {DEFAULT_MAX_CYCLES})")
    parser.add_argument(
        "--until-idle", action="store_true", help="scheduling mode: stop after a cycle with no incident"
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_CYCLE_TIMEOUT_SECONDS, help="scheduling mode: seconds")
    parser.add_argument("command", help="integration command, e.g. fetch-incidents or test-module")
    parser.add_argument("assignments", nargs="*", metavar="NAME=VALUE", help="command arguments")
    return parser


def _run_schedule_from_options(options: argparse.Namespace) -> int:
    inputs = load_inputs(options)
    records = run_schedule(
        inputs.command,
        params=options.params,
        integration=inputs.integration,
        state=inputs.state_path,
        inbox=inputs.inbox,
        args=inputs.args,
        every=options.every if options.every is not None else 0.0,
        cycles=options.cycles,
        until_idle=options.until_idle,
        debug=options.debug,
        timeout=options.timeout,
    )
    return 0 if all(record.ok for record in records) else 1


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    scheduling = options.every is not None or options.cycles is not None or options.until_idle
    try:
        return _run_schedule_from_options(options) if scheduling else run_single_command(options)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Nothing was persisted for the interrupted run: state is only written after a command succeeds.
        print("error: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def installed(runtime: Runtime) -> Iterator[Runtime]:
    """Use ``runtime`` for the duration of a with-block, then restore the previous one."""
    previous = use_runtime(runtime)
    try:
        yield runtime
    finally:
        use_runtime(previous)


if __name__ == "__main__":
    sys.exit(main())
