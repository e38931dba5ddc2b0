"""Local stand-in for the Cortex XSOAR integration runtime, imported by integrations as ``demistomock``.

Two faces:

* Imported as ``demistomock``: the module-level functions an integration calls (``demisto.params()``,
  ``demisto.getLastRun()``, ``demisto.incidents()``, ...). Each delegates to a :class:`Demisto` object over the
  current :class:`Runtime`, which holds the inputs of one command run, records what the integration did, and behaves
  like the server where it matters: ``{}`` on a first run, copies instead of shared objects, JSON-only values,
  ``params().get(key, default)`` giving the default for a null value, entries classified as the server does.
* Run as a script: executes one integration command the way the server does, persists the instance state only when
  the command succeeds, collects created incidents in an inbox file, and can repeat a command on a schedule like the
  server's fetch interval, each run in a fresh process or all of them in one reused process::

      python demisto_mock.py --params params.json --state state.json --inbox inbox.jsonl fetch-incidents
      python demisto_mock.py --integration Integrations/integration-EventFetcher.yml --params params.json \\
          --state state.json --every 60 --until-idle --process reused fetch-incidents

  Given the unified YAML that users upload (``--integration X.yml``), it runs ``script.script`` as the server does:
  the code as it stands in the file, a global ``demisto``, ``__name__ == "builtins"``, a fresh globals dict per
  command, CommonServerPython's code in front (a small stand-in, or the user's own with ``--csp PATH``), no
  ``demistomock`` or ``CommonServerPython`` module to import, commands and argument defaults read from the YAML.
  Given a ``.py``, it runs the file as ``__main__`` with this module importable as ``demistomock``.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import copy
import hashlib
import importlib.abc
import importlib.machinery
import io
import json
import linecache
import os
import queue
import re
import runpy
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, ModuleType
from typing import IO, Any, TextIO

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
PROCESS_MODES = ("fresh", "reused")


# --------------------------------------------------------------------------------------------------------------
# The runtime: inputs of one command run and the record of what the integration did
# --------------------------------------------------------------------------------------------------------------


def _default_version() -> dict[str, str]:
    return {"version": "8.9.0", "buildNumber": "12345"}


def to_server_json(function_name: str, value: Any) -> tuple[Any, int]:
    """Send ``value`` through JSON as the server does; return the received copy and its size in bytes.

    Raises TypeError/ValueError naming the demisto function, as the command would crash on the server. NaN and
    Infinity are refused too: Python would write them, but they are not JSON and the server cannot read them back.
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


def _is_entry(value: Any) -> bool:
    """The server's test: a dict is an entry only when it has both ``Contents`` and ``ContentsFormat``."""
    return type(value) is dict and "Contents" in value and "ContentsFormat" in value


def server_entries(results: Any) -> list[Any]:
    """What ``demisto.results(results)`` sends, classified as the server classifies it.

    A dict with both ``Contents`` and ``ContentsFormat`` is an entry as it is. Any other dict becomes a note whose
    Contents is the dict as JSON text: ``{"Type": 4, "Contents": "..."}`` without a ContentsFormat is therefore not an
    error entry, and the command does not fail. A list is taken item by item; bytes become text; anything else
    (a string, a number, None, a dict subclass, a tuple) becomes a text note of ``str(value)``. The server tests exact
    types, so does this.

    Stricter than the server: a list inside the list raises TypeError here; the server would send it on as it is,
    which is no entry.
    """

    def convert(value: Any) -> dict[str, Any]:
        if type(value) is dict:
            if _is_entry(value):
                return value
            try:
                text = json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"demisto.results() got a value the server cannot receive as JSON: {exc}") from exc
            return {"Type": ENTRY_TYPE_NOTE, "ContentsFormat": "json", "Contents": text}
        if type(value) is bytes:
            return {"Type": ENTRY_TYPE_NOTE, "ContentsFormat": "text", "Contents": value.decode("utf-8")}
        if type(value) is list:
            raise TypeError("demisto.results() got a list inside its list: the server sends no entry for it")
        return {"Type": ENTRY_TYPE_NOTE, "ContentsFormat": "text", "Contents": str(value)}

    if type(results) is list:
        return [convert(item) for item in results]
    return [convert(results)]


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
    is_debug: bool = False
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

    def calling_context(self) -> dict[str, Any]:
        """``demisto.callingContext`` as the server fills it for an integration command."""
        return {
            "context": {
                "IntegrationBrand": self.brand,
                "IntegrationInstance": self.instance_name,
                "IsDebug": self.is_debug,
                "CommandsExecuted": {"CurrLevel": 0},
            },
            "command": self.command,
            "args": copy.deepcopy(self.args),
            "params": copy.deepcopy(self.params),
            "integration": True,
        }

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))
        if self.log_sink is not None:
            self.log_sink(level, message)

    def log_call(self, level: str, msg: Any, args: tuple[Any, ...]) -> None:
        """demisto.debug/info/error(msg, *args): the server receives the message and its arguments as JSON, so an
        object JSON cannot carry (an exception, a datetime) crashes the command there, and here."""
        to_server_json(level, [msg, *args])
        self.log(level, _format_message(msg, args))

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
        """Stricter than the server, deliberately: the incidents are checked when demisto.incidents() is called (a
        list of dicts, each with a name, rawJSON a JSON string), and a bad one fails the command at once. The server
        only needs JSON here and shows such mistakes later, if at all (an incident without a name, a mapper that
        cannot read rawJSON), far from the line that caused them."""
        _validate_incidents(incidents)
        received, _ = to_server_json("incidents", incidents)
        if any(name == "incidents" for name in self.calls[:-1]):
            self.warn("demisto.incidents() called more than once in one run")
        self.incidents_created.extend(received)

    def add_results(self, results: Any) -> None:
        received, _ = to_server_json("results", server_entries(results))
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


class ServerParams(dict[str, Any]):
    """``demisto.params()`` as the server hands it out: a dict whose ``get(key, default)`` gives ``default`` when the
    stored value is null (None), not only when the key is missing. An instance saved before a parameter existed holds
    that parameter as null. Indexing (``params["key"]``) and a ``get`` without a default still give the None."""

    def get(self, key: Any, default: Any = None) -> Any:
        value = super().get(key)
        return default if value is None else value


class Demisto:
    """The ``demisto`` object of one command run: the server's API, backed by a :class:`Runtime`.

    A unified YAML finds one as its global ``demisto``, a new one per command as on the server; integrations may set
    attributes on it (``demisto.debug = ...``) without that reaching the next command. A ``.py`` reaches one through
    the module functions of ``demistomock``.

    Every value crosses as JSON, as it does on the server: what goes in must be JSON (a datetime raises TypeError
    naming the function, as the command would crash on the server), and what comes out is a copy. The server may hand
    out one shared object from ``params()`` and ``args()``; the copies here make a run independent of mutations.
    """

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.callingContext: dict[str, Any] = runtime.calling_context()
        self.is_debug: bool = runtime.is_debug

    def _called(self, name: str) -> Runtime:
        self._runtime.calls.append(name)
        return self._runtime

    def command(self) -> str:
        return self._called("command").command

    def params(self) -> ServerParams:
        return ServerParams(copy.deepcopy(self._called("params").params))

    def args(self) -> dict[str, Any]:
        return copy.deepcopy(self._called("args").args)

    def getParam(self, name: str) -> Any:
        return copy.deepcopy(self._called("getParam").params.get(name))

    def getArg(self, name: str, default: Any = None) -> Any:
        arguments = self._called("getArg").args
        return copy.deepcopy(arguments[name]) if name in arguments else default

    def getLastRun(self) -> Any:
        """``{}`` on a first run and after "Reset the last run timestamp"; a copy of what setLastRun stored."""
        return self._called("getLastRun").get_last_run()

    def setLastRun(self, obj: Any) -> None:
        """Stores a JSON copy; warns past 1 MB as the server does. Kept only when fetch-incidents succeeds."""
        self._called("setLastRun").set_last_run(obj)

    def incidents(self, incidents: Any = None) -> None:
        self._called("incidents").add_incidents(incidents)

    def results(self, results: Any) -> None:
        """Classified as the server does (see :func:`server_entries`); a Type 4 entry fails the command."""
        self._called("results").add_results(results)

    def getIntegrationContext(self) -> dict[str, Any]:
        return self._called("getIntegrationContext").get_integration_context()

    def setIntegrationContext(self, context: Any) -> None:
        self._called("setIntegrationContext").set_integration_context(context)

    def getIntegrationContextVersioned(self, refresh: bool = False) -> dict[str, Any]:
        """The integration context with its version, as CommonServerPython's get_integration_context() reads it.
        The version is always -1 here: one instance runs one command at a time, so no write can conflict."""
        return {"context": self._called("getIntegrationContextVersioned").get_integration_context(), "version": -1}

    def setIntegrationContextVersioned(self, value: Any, version: Any = -1, sync: bool = False) -> None:
        self._called("setIntegrationContextVersioned").set_integration_context(value)

    def demistoVersion(self) -> dict[str, str]:
        return dict(self._called("demistoVersion").version)

    def integrationInstance(self) -> str:
        return self._called("integrationInstance").instance_name

    def updateModuleHealth(self, data: Any, is_error: bool = False) -> None:
        self._called("updateModuleHealth").update_module_health(data, is_error)

    # Logging is recorded in ``logs`` rather than ``calls``, so call-order checks see only the data calls.
    def debug(self, msg: Any, *args: Any) -> None:
        """Shown with --debug only, as the server keeps debug lines for debug mode and debug-level logs."""
        self._runtime.log_call("debug", msg, args)

    def info(self, msg: Any, *args: Any) -> None:
        self._runtime.log_call("info", msg, args)

    def error(self, msg: Any, *args: Any) -> None:
        """A log line at error level; it does not fail the command (an exception or a Type 4 entry does)."""
        self._runtime.log_call("error", msg, args)

    def log(self, msg: Any) -> None:
        to_server_json("log", msg)
        self._runtime.log("info", str(msg))

    def __getattr__(self, name: str) -> Any:
        # Only for names not defined above: say so plainly rather than with a bare AttributeError.
        raise AttributeError(f"demisto.{name} is not emulated by {PROG} (the server has more of its API than this "
                             "runtime; hasattr(demisto, name) is False here)")


# --------------------------------------------------------------------------------------------------------------
# The module face: the functions an integration calls as ``demisto.<name>`` after ``import demistomock as demisto``
# --------------------------------------------------------------------------------------------------------------

_runtime: Runtime = Runtime()
_demisto: Demisto = Demisto(_runtime)
# The server exposes the calling context as a plain dict attribute; it is updated in place on each runtime swap.
callingContext: dict[str, Any] = {}
is_debug: bool = False


def _sync_calling_context(runtime: Runtime) -> None:
    global is_debug
    callingContext.clear()
    callingContext.update(runtime.calling_context())
    is_debug = runtime.is_debug


def use_runtime(runtime: Runtime) -> Runtime:
    """Install ``runtime`` as the one the demisto functions talk to; return the previous one (to restore it)."""
    global _runtime, _demisto
    previous = _runtime
    _runtime = runtime
    _demisto = Demisto(runtime)
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


def command() -> str:
    return _demisto.command()


def params() -> ServerParams:
    return _demisto.params()


def args() -> dict[str, Any]:
    return _demisto.args()


def getParam(name: str) -> Any:
    return _demisto.getParam(name)


def getArg(name: str, default: Any = None) -> Any:
    return _demisto.getArg(name, default)


def getLastRun() -> Any:
    return _demisto.getLastRun()


def setLastRun(obj: Any) -> None:
    _demisto.setLastRun(obj)


def incidents(incidents: Any = None) -> None:
    _demisto.incidents(incidents)


def results(results: Any) -> None:
    _demisto.results(results)


def getIntegrationContext() -> dict[str, Any]:
    return _demisto.getIntegrationContext()


def setIntegrationContext(context: Any) -> None:
    _demisto.setIntegrationContext(context)


def demistoVersion() -> dict[str, str]:
    return _demisto.demistoVersion()


def integrationInstance() -> str:
    return _demisto.integrationInstance()


def updateModuleHealth(data: Any, is_error: bool = False) -> None:
    _demisto.updateModuleHealth(data, is_error)


def debug(msg: Any, *args: Any) -> None:
    _demisto.debug(msg, *args)


def info(msg: Any, *args: Any) -> None:
    _demisto.info(msg, *args)


def error(msg: Any, *args: Any) -> None:
    _demisto.error(msg, *args)


def log(msg: Any) -> None:
    _demisto.log(msg)


_sync_calling_context(_runtime)


# --------------------------------------------------------------------------------------------------------------
# The unified YAML: the artefact users upload, run as the server runs it
# --------------------------------------------------------------------------------------------------------------


class UsageError(Exception):
    """Bad runner usage (unreadable input file, malformed NAME=VALUE, a command the YAML lacks): exit status 2."""


UNIFIED_SUFFIXES = (".yml", ".yaml")
# The server compiles the script under this file name; CommonServerPython's traceback fixer looks for it.
SERVER_FILENAME = "<string>"
# Commands the server runs without a `commands` entry, and the script flag each needs (None: always there).
BUILTIN_COMMANDS: dict[str, str | None] = {
    "test-module": None,
    "fetch-incidents": "isfetch",
    "fetch-events": "isfetchevents",
    "fetch-assets": "isfetchassets",
    "fetch-indicators": "feed",
    "long-running-execution": "longRunning",
}
# Configuration types whose values are secrets: 4 encrypted, 9 credentials (its password).
SECRET_PARAM_TYPES = (4, 9)
# Modules that exist only in a development checkout: the server's container has none of them.
SERVER_ABSENT_MODULES = frozenset({"demistomock", "CommonServerPython", "CommonServerUserPython", "demisto_mock"})
# Lines the unifier removes from code it embeds (a CommonServerPython given with --csp is cleaned the same way):
# the server provides `demisto` and CommonServerPython's names, and its own prelude imports print_function.
UNIFIER_REMOVED_LINES = re.compile(
    r"^[ \t]*(?:import demistomock as demisto|from CommonServerPython import \*|"
    r"from CommonServerUserPython import \*|from __future__ import print_function)[ \t]*(?:#.*)?$",
    re.MULTILINE,
)
API_MODULE_IMPORT = re.compile(r"^from (\w+ApiModule) import \*(?:[ \t]*#.*)?$", re.MULTILINE)

# CommonServerPython comes first in the code the server runs, and the unifier wraps an integration's code in
# register_module_line(<name>, 'start'/'end', __line__()). Without --csp, this stand-in defines those two names and
# nothing else: the rest of CommonServerPython (its imports, helpers, BaseClient, ...) is absent on purpose, so that
# an integration that leans on it by accident fails here rather than looking fine.
CSP_STANDIN = '''\
# demisto_mock.py's stand-in for CommonServerPython: the two names the unifier's wrapper calls, nothing else.
_MODULES_LINE_MAPPING = {}


def __line__():
    """The number of the line this is called from, in the code the server runs."""
    import inspect

    return inspect.currentframe().f_back.f_lineno


def register_module_line(module_name, start_end, line, wrapper=0):
    """Records where a module's code starts and ends in the code the server runs (for traceback line numbers)."""
    if start_end not in ("start", "end") or not isinstance(line, int) or line < 0:
        demisto.info("failed to register module line: module {!r} start_end {!r} line {!r}".format(
            module_name, start_end, line))
        return
    _MODULES_LINE_MAPPING.setdefault(module_name, {})[start_end] = line
    _MODULES_LINE_MAPPING[module_name][start_end + "_wrapper"] = line + wrapper
'''


def is_unified(path: Path) -> bool:
    return path.suffix.lower() in UNIFIED_SUFFIXES


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class UnifiedIntegration:
    """What the runner reads from a unified integration YAML: its code, commands and parameters."""

    path: Path
    name: str
    code: str
    flags: dict[str, Any]
    commands: dict[str, list[dict[str, Any]]]
    parameters: dict[str, dict[str, Any]]

    def supports(self, command_name: str) -> bool:
        if command_name in self.commands:
            return True
        if command_name not in BUILTIN_COMMANDS:
            return False
        flag = BUILTIN_COMMANDS[command_name]
        return flag is None or self.flags.get(flag) is True

    def server_args(self, command_name: str, given: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
        """The arguments the server passes: the given ones, plus each declared argument's defaultValue when it was not
        given. A command the YAML does not declare, or a required argument left out, is refused as the server refuses
        it: UsageError. Arguments the YAML does not declare are passed on, with a warning."""
        if not self.supports(command_name):
            flag = BUILTIN_COMMANDS.get(command_name)
            if flag is not None:
                raise UsageError(f"{self.path.name} does not set script.{flag}: the server never runs {command_name} "
                                 "for this integration")
            known = ", ".join(sorted({*self.commands, "test-module"}))
            raise UsageError(f"{self.path.name} has no command {command_name!r} (the server answers Unsupported "
                             f"Command); its commands: {known}")
        arguments: dict[str, Any] = dict(given)
        notes: list[str] = []
        declared = self.commands.get(command_name, [])
        names = {str(argument.get("name")) for argument in declared}
        for argument in declared:
            name = str(argument.get("name"))
            if name in arguments:
                continue
            if argument.get("defaultValue") not in (None, ""):
                arguments[name] = str(argument["defaultValue"])
            elif argument.get("required") is True:
                raise UsageError(f"{command_name} needs the argument {name} (required in {self.path.name})")
        unknown = sorted(set(given) - names)
        if unknown and command_name in self.commands:
            notes.append(f"{command_name} does not declare the arguments {', '.join(unknown)} in {self.path.name}")
        return arguments, notes

    def server_params(self, given: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The parameters the server passes: the given ones, and every parameter of the YAML that was not given as
        null (None), as an instance saved before that parameter existed holds it. Parameters the YAML does not define
        are passed on, with a warning: the server would not have them."""
        values: dict[str, Any] = {name: None for name in self.parameters}
        values.update(given)
        unknown = sorted(set(given) - set(self.parameters))
        notes = [f"the parameters {', '.join(unknown)} are not in {self.path.name}: the server would not pass them"
                 ] if unknown else []
        return values, notes

    def secret_values(self, params: Mapping[str, Any]) -> list[str]:
        """Values of the parameters the YAML marks secret (encrypted, a credentials password); as for secret-named
        parameters, values shorter than 4 characters are left out, or masking them would garble every line."""
        found: list[str] = []
        for name, definition in self.parameters.items():
            value = params.get(name)
            if definition.get("type") not in SECRET_PARAM_TYPES:
                continue
            if isinstance(value, dict):
                value = value.get("password")
            if isinstance(value, str) and len(value) >= 4:
                found.append(value)
        return found


def load_unified(path: Path) -> UnifiedIntegration:
    """Read a unified integration YAML; UsageError when it is not one this runner can run."""
    import yaml  # only the YAML runs need it

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the integration file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"the integration file {path} is not valid YAML ({exc})") from None
    script = data.get("script") if isinstance(data, dict) else None
    if not isinstance(script, dict):
        raise UsageError(f"{path} is not an integration YAML (no script section)")
    code = script.get("script")
    if not isinstance(code, str) or code.strip() in ("", "-"):
        raise UsageError(f"{path} holds no code (script.script is {code!r}): give the unified YAML, built by "
                         "`demisto-sdk prepare-content` (make build), or the .py")
    if script.get("type") != "python" or script.get("subtype", "python3") != "python3":
        raise UsageError(f"{path} is a {script.get('type')}/{script.get('subtype')} script; this runner runs python3")
    commands = {str(command["name"]): _as_list(command.get("arguments"))
                for command in _as_list(script.get("commands")) if isinstance(command, dict) and "name" in command}
    parameters = {str(entry["name"]): entry
                  for entry in _as_list(data.get("configuration")) if isinstance(entry, dict) and "name" in entry}
    name = str(data.get("name") or (data.get("commonfields") or {}).get("id") or path.stem)
    flags = {key: value for key, value in script.items() if key not in ("script", "commands")}
    return UnifiedIntegration(path.resolve(), name, code, flags, commands, parameters)


def read_csp(path: Path) -> str:
    """A CommonServerPython.py of the user's, cleaned as the unifier cleans what the server runs: its demistomock and
    print_function imports removed, each ``from XApiModule import *`` replaced by that module's code from the same
    content checkout (Packs/ApiModules/Scripts/X/X.py), as the server's copy has it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the CommonServerPython file {path}: {exc.strerror or exc}") from None

    def inline(match: re.Match[str]) -> str:
        module = match.group(1)
        for folder in path.resolve().parents:
            candidate = folder / "Packs" / "ApiModules" / "Scripts" / module / f"{module}.py"
            if candidate.is_file():
                return (f"register_module_line('{module}', 'start', __line__())\n"
                        f"{candidate.read_text(encoding='utf-8')}\n"
                        f"register_module_line('{module}', 'end', __line__())")
        raise UsageError(f"{path} imports {module}, which the server's copy has inline: give the CommonServerPython "
                         f"of your server, or one inside a content checkout that holds "
                         f"Packs/ApiModules/Scripts/{module}/{module}.py")

    return UNIFIER_REMOVED_LINES.sub("", API_MODULE_IMPORT.sub(inline, text))


# Compiled server code by the hash of its source, as the server's container keeps it by code version.
_compiled_code: dict[str, CodeType] = {}


def server_source(integration: UnifiedIntegration, prelude: str = CSP_STANDIN) -> str:
    """The code the server runs for the integration: CommonServerPython's code, then the script as in the YAML."""
    return f"{prelude.rstrip()}\n\n{integration.code}"


def _compile_server_code(source: str) -> CodeType:
    key = hashlib.sha256(source.encode("utf-8")).hexdigest()
    code = _compiled_code.get(key)
    if code is None:
        code = _compiled_code[key] = compile(source, SERVER_FILENAME, "exec", dont_inherit=True)
    return code


class _ServerImports(importlib.abc.MetaPathFinder):
    """Makes the modules of a development checkout unimportable, as they are in the server's container."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in SERVER_ABSENT_MODULES:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _checkout_paths() -> list[str]:
    """sys.path entries of this checkout (its root, tests, integration folders), but not the virtualenv in it."""
    root = Path(__file__).resolve().parent
    prefix = Path(sys.prefix).resolve()
    found: list[str] = []
    for entry in sys.path:
        try:
            resolved = Path(entry or os.getcwd()).resolve()
        except OSError:
            continue
        in_checkout = resolved == root or root in resolved.parents
        if in_checkout and resolved != prefix and prefix not in resolved.parents:
            found.append(entry)
    return found


@contextlib.contextmanager
def _server_world(source: str) -> Iterator[None]:
    """While a unified script runs: no demistomock/CommonServerPython/checkout modules to import, the environment
    restored afterwards (the server rolls os.environ back after each script), and the source registered for
    tracebacks under the server's file name."""
    hidden_modules = {name: sys.modules.pop(name) for name in SERVER_ABSENT_MODULES if name in sys.modules}
    saved_path = list(sys.path)
    checkout = set(_checkout_paths())
    sys.path[:] = [entry for entry in sys.path if entry not in checkout]
    finder = _ServerImports()
    sys.meta_path.insert(0, finder)
    saved_environment = dict(os.environ)
    saved_lines = linecache.cache.get(SERVER_FILENAME)
    linecache.cache[SERVER_FILENAME] = (len(source), None, source.splitlines(keepends=True), SERVER_FILENAME)
    try:
        yield
    finally:
        if saved_lines is None:
            linecache.cache.pop(SERVER_FILENAME, None)
        else:
            linecache.cache[SERVER_FILENAME] = saved_lines
        if os.environ != saved_environment:
            os.environ.clear()
            os.environ.update(saved_environment)
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)
        sys.path[:] = saved_path
        sys.modules.update(hidden_modules)


def _server_print(demisto_object: Demisto) -> Callable[..., None]:
    """print() as the server's prelude defines it: the printed text goes to the integration's log, not stdout."""

    def server_print(*values: Any, sep: str | None = " ", end: str | None = "\n", file: IO[str] | None = None,
                     flush: bool = False) -> None:
        if file is not None:
            builtins.print(*values, sep=sep, end=end, file=file, flush=flush)
            return
        buffer = io.StringIO()
        builtins.print(*values, sep=sep, end=end, file=buffer)
        demisto_object.log(buffer.getvalue().strip())

    return server_print


def server_globals(demisto_object: Demisto) -> dict[str, Any]:
    """A fresh globals dict for one command, holding what the server's prelude puts there. No ``__name__``: the
    script's ``__name__`` falls through to the builtins module's, "builtins", as on the server."""
    return {
        "demisto": demisto_object,
        "Demisto": Demisto,
        "context": demisto_object.callingContext,
        "exit": sys.exit,
        "quit": sys.exit,
        "print": _server_print(demisto_object),
    }


def _clear_globals(namespace: dict[str, Any]) -> None:
    # As the server does after each script: names with one leading underscore first, then the rest, so that
    # objects are released (and their __del__ run) in the same order.
    for name in [name for name in namespace if name.startswith("_") and not name.startswith("__")]:
        namespace.pop(name, None)
    namespace.clear()


def execute_unified(integration: UnifiedIntegration, runtime: Runtime, prelude: str = CSP_STANDIN) -> CommandOutcome:
    """Run the unified integration's code against ``runtime`` as the server runs it; never raises for integration
    failures. ``prelude`` is CommonServerPython's code (the stand-in, or the user's read by :func:`read_csp`).

    As on the server: one source (prelude, then the script), compiled as "<string>" and executed in a fresh globals
    dict holding a fresh ``demisto`` object; ``__name__`` is "builtins"; print() goes to the log; the environment is
    restored afterwards; modules imported stay imported (a reused process keeps them, as the server's container does).

    Stricter than the server, deliberately: a SystemExit with a non-zero status fails the command (the server ignores
    SystemExit, but a script that exits non-zero meant to fail), and demistomock/CommonServerPython cannot be imported
    even where the checkout has them.
    """
    source = server_source(integration, prelude)
    demisto_object = Demisto(runtime)
    namespace = server_globals(demisto_object)
    outcome = CommandOutcome(ok=True)
    with _server_world(source):
        try:
            exec(_compile_server_code(source), namespace)
        except SystemExit as exit_request:
            outcome = _exit_outcome(exit_request)
        except SyntaxError as exc:
            hint = (" (the server puts CommonServerPython's code before the script, so a unified script cannot use "
                    "`from __future__` imports)") if "__future__" in str(exc) else ""
            outcome = CommandOutcome(ok=False, error=f"SyntaxError: {exc}{hint}", traceback=traceback.format_exc())
        except Exception as exc:
            outcome = CommandOutcome(ok=False, error=_exception_message(exc), traceback=traceback.format_exc())
        finally:
            _clear_globals(namespace)
    return _with_error_entries(outcome, runtime)


# --------------------------------------------------------------------------------------------------------------
# Running one integration command the way the server does
# --------------------------------------------------------------------------------------------------------------


@dataclass
class CommandOutcome:
    ok: bool
    error: str | None = None
    traceback: str | None = None


def default_integration_path() -> Path:
    return Path(__file__).resolve().parent / DEFAULT_INTEGRATION


def secret_values(params: Any, integration: UnifiedIntegration | None = None) -> list[str]:
    """String values of secret-named parameters (credentials passwords, API keys) and, with a unified YAML, of the
    parameters it marks secret (encrypted, credentials), longest first."""
    found: set[str] = set(integration.secret_values(params)) if integration is not None else set()

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
    """Text stream that masks secrets before passing text on (stray output of the integration); counts writes."""

    def __init__(self, target: TextIO, secrets: Sequence[str]) -> None:
        super().__init__()
        self._target = target
        self._secrets = secrets
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.written += len(text)
        self._target.write(redact(text, self._secrets))
        return len(text)

    def flush(self) -> None:
        self._target.flush()


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


def _exit_outcome(exit_request: SystemExit) -> CommandOutcome:
    code = exit_request.code
    if isinstance(code, str):
        return CommandOutcome(ok=False, error=code)
    if code not in (None, 0):
        return CommandOutcome(ok=False, error=f"the integration exited with status {code}")
    return CommandOutcome(ok=True)


def _with_error_entries(outcome: CommandOutcome, runtime: Runtime) -> CommandOutcome:
    # An error entry (return_error() sends one, then exits 0) fails the command, as the server shows it as an error.
    if outcome.ok and runtime.errors():
        return CommandOutcome(ok=False, error=_entry_text(runtime.errors()[0]))
    return outcome


def execute_integration(integration: Path, runtime: Runtime, prelude: str = CSP_STANDIN) -> CommandOutcome:
    """Run the integration file against ``runtime``; never raises for integration failures.

    A unified YAML runs as the server runs it (:func:`execute_unified`, with ``prelude`` as CommonServerPython).
    A ``.py`` runs as ``__main__``, with this module importable as ``demistomock``, the way its unit tests see it.
    """
    if is_unified(integration):
        return execute_unified(load_unified(integration), runtime, prelude)
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
        outcome = _exit_outcome(exit_request)
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
    return _with_error_entries(outcome, runtime)


# --------------------------------------------------------------------------------------------------------------
# The command line's inputs, outputs and persistence
# --------------------------------------------------------------------------------------------------------------


@dataclass
class RunInputs:
    integration: Path
    command: str
    params: dict[str, Any]
    args: dict[str, str]
    state_path: Path | None
    state: dict[str, Any]
    inbox: Path | None
    # With a unified YAML: what was read from it, CommonServerPython's code, and notes on the inputs it gave.
    unified: UnifiedIntegration | None = None
    prelude: str = CSP_STANDIN
    notes: list[str] = field(default_factory=list)


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
    csp = getattr(options, "csp", None)
    if csp and not is_unified(integration):
        raise UsageError("--csp applies to a unified YAML: the server prepends CommonServerPython to its script")
    state_path = Path(options.state) if options.state else None
    inputs = RunInputs(
        integration=integration.resolve(),
        command=options.command,
        params=_read_json_object(Path(options.params), "params"),
        args=parse_assignments(options.assignments),
        state_path=state_path,
        state=load_state(state_path),
        inbox=Path(options.inbox) if options.inbox else None,
    )
    if is_unified(integration):
        unified = load_unified(integration)
        inputs.unified = unified
        inputs.args, arg_notes = unified.server_args(inputs.command, inputs.args)
        inputs.params, param_notes = unified.server_params(inputs.params)
        inputs.notes = param_notes + arg_notes
        if csp:
            inputs.prelude = read_csp(Path(csp))
    return inputs


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
    secrets = secret_values(inputs.params, inputs.unified)
    runtime = Runtime(
        command=inputs.command,
        params=inputs.params,
        args=dict(inputs.args),
        last_run=inputs.state.get("last_run") or {},
        integration_context=inputs.state.get("integration_context") or {},
        is_debug=bool(options.debug),
        log_sink=_stderr_log_sink(options.debug, secrets),
    )
    if inputs.unified is not None:
        runtime.brand = inputs.unified.name
        runtime.instance_name = f"{inputs.unified.name}_instance_1"
    for note in inputs.notes:
        runtime.warn(note)
    # The command's output owns stdout; stray output of the integration goes to stderr.
    stray_output = _RedactingWriter(sys.stderr, secrets)
    with contextlib.redirect_stdout(stray_output):
        if inputs.unified is not None:
            outcome = execute_unified(inputs.unified, runtime, inputs.prelude)
        else:
            outcome = execute_integration(inputs.integration, runtime)
    if inputs.unified is not None and stray_output.written:
        runtime.warn("the integration wrote to stdout directly (print() goes to the log): on the server stdout is "
                     "the channel to the server, and such output can break the command")
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
# Scheduling mode: repeat a command like the server's fetch interval, in a fresh process per cycle or in one
# reused process (the server's container)
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
    """One scheduled run of the command, as read from the report of the process that ran it."""

    cycle: int
    ok: bool
    error: str | None
    incidents: int
    figures: dict[str, str]
    duration_seconds: float
    exit_code: int | None
    logs: list[tuple[str, str]] = field(default_factory=list)
    # What the run printed: the command's output, and its logs and errors.
    stdout: str = field(default="", repr=False)
    stderr: str = field(default="", repr=False)

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


@dataclass(frozen=True)
class CommandSpec:
    """One command run as the command line describes it: the command, its inputs and the instance's files."""

    command: str
    params: Path
    integration: Path
    state: Path | None = None
    inbox: Path | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    debug: bool = False
    csp: Path | None = None

    def arguments(self, report: Path) -> list[str]:
        """The command line (after ``demisto_mock.py``) that runs it and writes its report to ``report``."""
        argv = ["--integration", str(self.integration), "--params", str(self.params)]
        if self.csp is not None:
            argv += ["--csp", str(self.csp)]
        if self.state is not None:
            argv += ["--state", str(self.state)]
        if self.inbox is not None:
            argv += ["--inbox", str(self.inbox)]
        if self.debug:
            argv.append("--debug")
        argv += ["--report", str(report), self.command]
        argv += [f"{name}={value}" for name, value in self.args.items()]
        return argv


def _read_cycle_record(number: int, report_path: Path, exit_code: int | None, stderr: str) -> CycleRecord:
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        last_line = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
        message = last_line.removeprefix("error: ") or f"the run exited with status {exit_code} and no report"
        return CycleRecord(number, False, message, 0, {}, 0.0, exit_code, stderr=stderr)
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
        stderr=stderr,
    )


def _timed_out(number: int, timeout: float, stderr: str = "") -> CycleRecord:
    return CycleRecord(number, False, f"timed out after {timeout:g} s", 0, {}, float(timeout), None, stderr=stderr)


def run_in_fresh_process(spec: CommandSpec, number: int = 1, *,
                         timeout: float = DEFAULT_CYCLE_TIMEOUT_SECONDS) -> CycleRecord:
    """Run one command in a new Python process, as the server runs a command in a fresh container."""
    with tempfile.TemporaryDirectory(prefix="demisto-mock-report-") as folder:
        report = Path(folder) / "report.json"
        argv = [sys.executable, str(Path(__file__).resolve()), *spec.arguments(report)]
        try:
            child = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return _timed_out(number, timeout)
        record = _read_cycle_record(number, report, child.returncode, child.stderr)
    record.stdout = child.stdout
    return record


# The hidden command line of the reused process: `demisto_mock.py --serve-reused-process`.
WORKER_FLAG = "--serve-reused-process"


def _pump_lines(stream: IO[str], sink: Callable[[str | None], None]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            sink(line)
    sink(None)
    with contextlib.suppress(OSError):
        stream.close()


class ReusedProcess:
    """One Python process that runs command after command, as the server's reused container does.

    Each command still gets a fresh globals dict and a fresh ``demisto`` (a unified YAML) or a fresh ``__main__``
    module (a .py); what a process keeps carries over from command to command, as on the server: imported modules and
    their state, warnings filters, threads left running. The environment is restored after each unified script.
    A command that overruns its timeout gets the process killed, and the next command starts a new one, as the server
    replaces a container it had to kill.
    """

    def __init__(self) -> None:
        self._child: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._stray: list[str] = []
        self._stray_lock = threading.Lock()
        self.processes_started = 0
        self.commands_run = 0

    def __enter__(self) -> ReusedProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The process id of the current process (None before the first command, and after a kill)."""
        return self._child.pid if self._child is not None else None

    def _keep_stray(self, line: str | None) -> None:
        # What the process wrote to its stderr outside any command's capture (interpreter warnings, C libraries).
        if line is not None:
            with self._stray_lock:
                self._stray.append(line)

    def _take_stray(self) -> str:
        with self._stray_lock:
            text, self._stray = "".join(self._stray), []
        return text

    def _start(self) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), WORKER_FLAG],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        )
        replies: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump_lines, args=(child.stdout, replies.put), daemon=True).start()
        threading.Thread(target=_pump_lines, args=(child.stderr, self._keep_stray), daemon=True).start()
        self._child, self._replies = child, replies
        self.processes_started += 1
        return child

    def _stop(self, kill: bool) -> int | None:
        child, self._child = self._child, None
        if child is None:
            return None
        if kill:
            child.kill()
        with contextlib.suppress(OSError, ValueError):
            child.stdin.close()  # type: ignore[union-attr]
        try:
            return child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()

    def run(self, spec: CommandSpec, number: int | None = None, *,
            timeout: float = DEFAULT_CYCLE_TIMEOUT_SECONDS) -> CycleRecord:
        """Run one command in this process (started on first use); the record of the run, output included."""
        self.commands_run += 1
        number = self.commands_run if number is None else number
        alive = self._child is not None and self._child.poll() is None
        child = self._child if alive and self._child is not None else self._start()
        with tempfile.TemporaryDirectory(prefix="demisto-mock-report-") as folder:
            report = Path(folder) / "report.json"
            reply: str | None = None
            try:
                child.stdin.write(json.dumps({"argv": spec.arguments(report)}) + "\n")  # type: ignore[union-attr]
                child.stdin.flush()  # type: ignore[union-attr]
                reply = self._replies.get(timeout=timeout)
            except queue.Empty:
                self._stop(kill=True)
                return _timed_out(number, timeout, self._take_stray())
            except (OSError, ValueError):
                reply = None  # the process is gone
            try:
                answer = json.loads(reply) if reply is not None else None
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                exit_code = self._stop(kill=True)
                return _read_cycle_record(number, report, exit_code, self._take_stray())
            stderr = str(answer.get("stderr", "")) + self._take_stray()
            record = _read_cycle_record(number, report, answer.get("exit_code"), stderr)
        record.stdout = str(answer.get("stdout", ""))
        return record

    def close(self) -> None:
        """End the process: its input closes, and it exits after the command it is running."""
        self._stop(kill=False)


def _serve_one(argv: Sequence[str]) -> int:
    try:
        return run_single_command(build_parser().parse_args(list(argv)))
    except SystemExit as exit_request:  # argparse refused the command line
        return exit_request.code if isinstance(exit_request.code, int) else 2
    except Exception:  # a fault of this runner, not of the integration: reported, and the process goes on
        traceback.print_exc()
        return 1


def serve_commands(requests: TextIO, replies: TextIO) -> int:
    """The reused process's loop: a request a line (``{"argv": [...]}``, a command line of this runner), a reply a
    line (``{"exit_code", "stdout", "stderr"}``), until the requests end."""
    while True:
        line = requests.readline()
        if not line:
            return 0
        if not line.strip():
            continue
        argv = json.loads(line)["argv"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            exit_code = _serve_one(argv)
        replies.write(json.dumps({"exit_code": exit_code, "stdout": out.getvalue(), "stderr": err.getvalue()}) + "\n")
        replies.flush()


def _serve_reused_process() -> int:
    # Replies go out on a private copy of stdout; whatever else writes to file descriptor 1 (a C library, a direct
    # os.write) lands on stderr instead, so that nothing an integration does can corrupt a reply.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    return serve_commands(sys.stdin, channel)


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
    process: str = "fresh",
    csp: str | Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    on_record: Callable[[CycleRecord], None] | None = None,
) -> list[CycleRecord]:
    """Run ``command_name`` once per cycle and print one summary line per cycle plus a total line to ``out`` (stdout
    by default); what the runs print goes to ``out``, their logs to ``err``. ``on_record`` is called after each
    summary line.

    ``process="fresh"`` runs each cycle in a new process; ``process="reused"`` runs them all in one
    :class:`ReusedProcess`, one after another, as the server's container does. The summary lines are the same.
    Returns one CycleRecord per cycle. ``cycles`` defaults to DEFAULT_MAX_CYCLES (an upper bound with until_idle).
    """
    if every < 0:
        raise UsageError("--every must be 0 or more seconds")
    max_cycles = DEFAULT_MAX_CYCLES if cycles is None else cycles
    if max_cycles < 1:
        raise UsageError("--cycles must be at least 1")
    if process not in PROCESS_MODES:
        raise UsageError(f"--process must be one of {', '.join(PROCESS_MODES)}")
    out_stream = out if out is not None else sys.stdout
    err_stream = err if err is not None else sys.stderr
    inbox_path = Path(inbox).resolve() if inbox is not None else None
    spec = CommandSpec(
        command=command_name,
        params=Path(params).resolve(),
        integration=Path(integration).resolve() if integration is not None else default_integration_path(),
        state=Path(state).resolve() if state is not None else None,
        inbox=inbox_path,
        args=dict(args or {}),
        debug=debug,
        csp=Path(csp).resolve() if csp is not None else None,
    )

    with contextlib.ExitStack() as stack:
        reused = stack.enter_context(ReusedProcess()) if process == "reused" else None

        def run_cycle(number: int) -> CycleRecord:
            if reused is not None:
                record = reused.run(spec, number, timeout=timeout)
            else:
                record = run_in_fresh_process(spec, number, timeout=timeout)
            out_stream.write(record.stdout)
            err_stream.write(record.stderr)
            return record

        def show(record: CycleRecord) -> None:
            print(record.summary_line(), file=out_stream, flush=True)
            if on_record is not None:
                on_record(record)

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
    parser.add_argument("--integration", help=f"integration file: a unified .yml, or a .py (default: "
                                              f"{DEFAULT_INTEGRATION})")
    parser.add_argument("--csp", help="unified .yml: run this CommonServerPython.py in front of the script, as the "
                                      "server does, instead of the two-function stand-in")
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
    parser.add_argument("--process", choices=PROCESS_MODES,
                        help="scheduling mode: a fresh process per cycle (default), or one reused process for all "
                             "cycles, as the server's container runs command after command")
    parser.add_argument("--timeout", type=float, default=DEFAULT_CYCLE_TIMEOUT_SECONDS, help="scheduling mode: seconds")
    parser.add_argument("command", help="integration command, e.g. fetch-incidents or test-module")
    parser.add_argument("assignments", nargs="*", metavar="NAME=VALUE", help="command arguments")
    return parser


def _run_schedule_from_options(options: argparse.Namespace) -> int:
    inputs = load_inputs(options)  # usage errors stop here, before any cycle
    records = run_schedule(
        inputs.command,
        params=options.params,
        integration=inputs.integration,
        state=inputs.state_path,
        inbox=inputs.inbox,
        args=parse_assignments(options.assignments),
        every=options.every if options.every is not None else 0.0,
        cycles=options.cycles,
        until_idle=options.until_idle,
        debug=options.debug,
        timeout=options.timeout,
        process=options.process or "fresh",
        csp=options.csp,
    )
    return 0 if all(record.ok for record in records) else 1


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words == [WORKER_FLAG]:
        return _serve_reused_process()
    options = build_parser().parse_args(words)
    scheduling = (options.every is not None or options.cycles is not None or options.until_idle
                  or options.process is not None)
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
