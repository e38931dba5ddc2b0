"""The content pack as a server receives it: the committed unified YAML matches the sources, and the pack zip
holds the integration, the incident type and the mapper, wired to each other and to the event's fields.

demisto-sdk runs here exactly as `make build` runs it (prepare-content, zip-packs), into temporary folders.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from EventFetcher import AUTH_TYPES, ORDERS, PAGINATIONS, PROFILE_PARAMETERS, PROFILES

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "Packs" / "EventFetcher"
INTEGRATION_DIR = PACK / "Integrations" / "EventFetcher"
CODE = INTEGRATION_DIR / "EventFetcher.py"
SOURCE_YML = INTEGRATION_DIR / "EventFetcher.yml"
IMAGE = INTEGRATION_DIR / "EventFetcher_image.png"
INTEGRATION_README = INTEGRATION_DIR / "README.md"
UNIFIED = ROOT / "Integrations" / "integration-EventFetcher.yml"
INCIDENT_TYPE = PACK / "IncidentTypes" / "incidenttype-Event_Source_Event.json"
MAPPER = PACK / "Classifiers" / "classifier-mapper-incoming-EventFetcher.json"
SDK = Path(sys.executable).parent / "demisto-sdk"  # the venv that runs pytest holds the pinned demisto-sdk
SDK_TIMEOUT_SECONDS = 300
REBUILD_HINT = "run `make build` and commit Integrations/integration-EventFetcher.yml"


def run_sdk(*args: str) -> subprocess.CompletedProcess[str]:
    """One demisto-sdk command from the repository root, offline, as the Makefile runs it."""
    assert SDK.exists(), f"demisto-sdk is missing from {SDK.parent}; run `make venv`"
    env = {**os.environ, "DEMISTO_SDK_IGNORE_CONTENT_WARNING": "1"}
    result = subprocess.run([str(SDK), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=SDK_TIMEOUT_SECONDS, check=False)
    assert result.returncode == 0, f"demisto-sdk {args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def built_unified(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make build` writes to Integrations/, built from the current sources into a temporary folder."""
    output = tmp_path_factory.mktemp("prepare-content") / UNIFIED.name
    run_sdk("prepare-content", "-i", str(INTEGRATION_DIR.relative_to(ROOT)), "-o", str(output), "-f")
    return output


@pytest.fixture(scope="module")
def pack_zip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The uploadable pack zip, as `make build` makes it."""
    output = tmp_path_factory.mktemp("zip-packs")
    run_sdk("zip-packs", "-i", str(PACK.relative_to(ROOT)), "-o", str(output))
    zips = sorted(output.rglob("EventFetcher.zip"))
    assert len(zips) == 1, f"expected one EventFetcher.zip under {output}, found {zips}"
    with zipfile.ZipFile(zips[0]) as archive:
        yield archive


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def string_keys_read(function: str, variable: str) -> set[str]:
    """The string keys that a function of EventFetcher.py reads from a dict: `variable.get("k")` and `variable["k"]`."""
    tree = ast.parse(CODE.read_text(encoding="utf-8"))
    found = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == function]
    assert found, f"EventFetcher.py has no function {function}()"
    keys: set[str] = set()
    for node in ast.walk(found[0]):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == variable and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            keys.add(node.args[0].value)
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == variable
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
            keys.add(node.slice.value)
    return keys


def commands_handled() -> set[str]:
    """The command names main() compares `command` with."""
    tree = ast.parse(CODE.read_text(encoding="utf-8"))
    main = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "main")
    return {
        comparator.value
        for node in ast.walk(main) if isinstance(node, ast.Compare)
        and isinstance(node.left, ast.Name) and node.left.id == "command"
        for comparator in node.comparators if isinstance(comparator, ast.Constant)
    }


# --- the committed unified YAML -------------------------------------------------------------------


def test_committed_unified_yaml_is_what_make_build_produces(built_unified: Path) -> None:
    assert UNIFIED.exists(), f"{UNIFIED.relative_to(ROOT)} is missing: {REBUILD_HINT}"
    assert UNIFIED.read_bytes() == built_unified.read_bytes(), (
        f"{UNIFIED.relative_to(ROOT)} is not what the sources build to: {REBUILD_HINT}")


def test_unified_yaml_embeds_the_current_code_and_image() -> None:
    unified = load_yaml(UNIFIED)
    code = unified["script"]["script"]
    # Unifying drops `import demistomock as demisto` (the server provides `demisto`) and keeps everything else.
    source = CODE.read_text(encoding="utf-8")
    assert "import demistomock as demisto\n" in source
    assert source.replace("import demistomock as demisto\n", "\n") in code, f"stale embedded code: {REBUILD_HINT}"
    assert "import demistomock" not in code
    assert unified["image"] == "data:image/png;base64," + base64.b64encode(IMAGE.read_bytes()).decode()


def test_unified_yaml_fetches_on_python_3_12_with_every_parameter_the_code_reads() -> None:
    unified = load_yaml(UNIFIED)
    script = unified["script"]
    assert script["isfetch"] is True
    assert script["type"] == "python" and script["subtype"] == "python3"
    assert script["dockerimage"].startswith("demisto/python3:3.12.")
    names = {param["name"] for param in unified["configuration"]}
    read = string_keys_read("parse_settings", "params") | {"source"} | set(PROFILE_PARAMETERS)
    assert {"url", "credentials", "first_fetch", "max_fetch", "look_back", "isFetch"} <= read
    assert read <= names, f"parameters read by parse_settings() but missing from the YAML: {sorted(read - names)}"
    assert {"incidentFetchInterval", "insecure", "proxy", "incidentType"} <= names


def test_every_command_and_argument_is_declared_and_handled() -> None:
    unified = load_yaml(UNIFIED)
    declared = {command["name"]: command for command in unified["script"]["commands"]}
    handled = commands_handled() - {"fetch-incidents", "test-module"}
    assert set(declared) == handled
    arguments = {argument["name"] for argument in declared["event-fetcher-get-events"]["arguments"]}
    assert string_keys_read("get_events_command", "args") == arguments


def test_parameter_defaults_are_values_the_code_accepts() -> None:
    params = {param["name"]: param for param in load_yaml(SOURCE_YML)["configuration"]}
    assert params["max_fetch"]["defaultvalue"] == "50"
    assert params["first_fetch"]["defaultvalue"] == "3 days"
    assert params["look_back"]["defaultvalue"] == "5"
    assert params["incidentFetchInterval"]["defaultvalue"] == "1"
    assert "defaultvalue" not in params["status"]  # blank: each profile's own value applies
    assert params["severity"]["defaultvalue"].split(",") == params["severity"]["options"]
    assert params["source"]["defaultvalue"] == "Event Source"
    assert params["source"]["options"] == list(PROFILES)
    for name in ("auth_type", "order", "pagination"):
        assert "defaultvalue" not in params[name]  # blank: the profile's
    assert params["auth_type"]["options"] == list(AUTH_TYPES)
    assert params["order"]["options"] == list(ORDERS)
    assert params["pagination"]["options"] == list(PAGINATIONS)
    sections = load_yaml(SOURCE_YML)["sectionorder"]
    assert all(param.get("section") in sections for param in params.values())


# --- docs -----------------------------------------------------------------------------------------


def test_integration_readme_documents_every_command_with_a_real_example() -> None:
    readme = INTEGRATION_README.read_text(encoding="utf-8")
    for command in load_yaml(SOURCE_YML)["script"]["commands"]:
        assert f"### {command['name']}" in readme
        assert f"```!{command['name']}" in readme, f"no command example for {command['name']}"
        for output in command["outputs"]:
            assert output["contextPath"] in readme
    assert "version xx" not in readme.lower()


# --- incident type, mapper and the pack zip -------------------------------------------------------


def resolve(event: dict[str, Any], path: str) -> Any:
    """A mapper's `simple` path (dotted keys) on an event, as the server reads rawJSON."""
    value: Any = event
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def apply_transformers(value: Any, transformers: list[dict[str, Any]]) -> Any:
    for transformer in transformers:
        assert transformer["operator"] == "replace", "only the server's built-in replace is used"
        args = transformer["args"]
        value = str(value).replace(args["toReplace"]["value"]["simple"], args["replaceWith"]["value"]["simple"])
    return value


def test_mapper_fills_the_incident_fields_from_an_event() -> None:
    incident_type = json.loads(INCIDENT_TYPE.read_text(encoding="utf-8"))
    mapper = json.loads(MAPPER.read_text(encoding="utf-8"))
    source = load_yaml(SOURCE_YML)
    incident_type_param = next(param for param in source["configuration"] if param["name"] == "incidentType")
    assert source["defaultmapperin"] == mapper["id"] == mapper["name"]
    assert mapper["type"] == "mapping-incoming"
    assert incident_type["id"] == incident_type["name"] == incident_type_param["defaultvalue"]
    event = {
        "id": "evt-000123", "created_time": "2026-11-26T06:00:00.123Z", "name": "Suspicious login from 203.0.113.7",
        "severity": "critical", "status": "New", "type": "Authentication",
        "description": "Five failed logins followed by a success.",
        "source": {"host": "vpn-gw-2", "ip": "203.0.113.7"}, "tags": ["vpn", "brute-force"],
    }
    mapped: dict[str, Any] = {}
    for field, rule in mapper["mapping"][incident_type["name"]]["internalMapping"].items():
        if rule.get("complex"):
            complex_rule = rule["complex"]
            mapped[field] = apply_transformers(resolve(event, complex_rule["root"]), complex_rule["transformers"])
        else:
            mapped[field] = resolve(event, rule["simple"])
    assert mapped == {
        "severity": "4",
        "Event Type": "Authentication",
        "details": "Five failed logins followed by a success.",
        "Source Hostname": "vpn-gw-2",
        "Source IP": "203.0.113.7",
        "Tags": ["vpn", "brute-force"],
        "External ID": "evt-000123",
        "dbotMirrorId": "evt-000123",
    }
    severities = {"low": "1", "medium": "2", "high": "3", "critical": "4"}
    severity_rule = mapper["mapping"][incident_type["name"]]["internalMapping"]["severity"]["complex"]
    assert {name: apply_transformers(name, severity_rule["transformers"]) for name in severities} == severities


def test_pack_zip_holds_the_integration_incident_type_and_mapper(pack_zip: zipfile.ZipFile) -> None:
    names = set(pack_zip.namelist())
    assert {
        "pack_metadata.json",
        "README.md",
        "Integrations/integration-EventFetcher.yml",
        "IncidentTypes/incidenttype-Event_Source_Event.json",
        "Classifiers/classifier-mapper-incoming-EventFetcher.json",
    } <= names
    integration = yaml.safe_load(pack_zip.read("Integrations/integration-EventFetcher.yml"))
    assert integration["script"]["isfetch"] is True
    assert integration["defaultmapperin"] == json.loads(pack_zip.read(
        "Classifiers/classifier-mapper-incoming-EventFetcher.json"))["id"]
    assert json.loads(pack_zip.read("IncidentTypes/incidenttype-Event_Source_Event.json"))["id"] == "Event Source Event"
    assert json.loads(pack_zip.read("pack_metadata.json"))["currentVersion"] == "1.0.0"
