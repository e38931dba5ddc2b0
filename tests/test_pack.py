"""The content pack as a server receives it: the committed unified YAML matches the sources, and the pack zip
holds the integration, the incident type and the mapper, wired to each other and to the event's fields.

demisto-sdk runs here exactly as `make build` runs it (prepare-content, zip-packs), into temporary folders.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from EventFetcher import AUTH_TYPES, ORDERS, PAGINATIONS, PROFILE_PARAMETERS, PROFILES
from test_fetch_e2e import a_day_ago, ago

import demisto_mock
from simulator import Simulator
from simulator.dialects import DIALECT_NAMES, instance_params
from simulator.dialects.hub import DIALECT_CLASSES
from xsoar_mapping import PackMapping

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "Packs" / "EventFetcher"
INTEGRATION_DIR = PACK / "Integrations" / "EventFetcher"
CODE = INTEGRATION_DIR / "EventFetcher.py"
SOURCE_YML = INTEGRATION_DIR / "EventFetcher.yml"
IMAGE = INTEGRATION_DIR / "EventFetcher_image.png"
INTEGRATION_README = INTEGRATION_DIR / "README.md"
UNIFIED = ROOT / "Integrations" / "integration-EventFetcher.yml"
INCIDENT_TYPES = PACK / "IncidentTypes"
CLASSIFIER = PACK / "Classifiers" / "classifier-EventFetcher.json"
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


# --- incident types, classifier, mapper and the pack zip -------------------------------------------


# The Common Types fields the mapper fills, with their types in Common Types (each associated to all incident types
# there); `details` and `dbotMirrorId` are the incident's own. A list may go only where the type holds several values.
COMMON_TYPES_FIELDS = {
    "Categories": "multiSelect", "Detected IPs": "multiSelect", "Event Type": "shortText", "External ID": "multiSelect",
    "External Link": "multiSelect", "Hostnames": "multiSelect", "Source Hostname": "shortText",
    "Source IP": "shortText", "Source Username": "shortText", "Tags": "tagsSelect", "Technique ID": "multiSelect",
    "Ticket Number": "shortText", "Users": "multiSelect",
}
INCIDENT_FIELDS = {**COMMON_TYPES_FIELDS, "details": "longText", "dbotMirrorId": "shortText"}
MULTI_VALUE = {"multiSelect", "tagsSelect"}
# Each profile's incident type; Custom has none of its own (its items keep the instance's incident type).
TYPE_OF_PROFILE = {
    "Event Source": "Event Source Event",
    "Microsoft Graph Security alerts": "Microsoft Graph Security Alert",
    "Okta System Log": "Okta System Log Event",
    "ServiceNow incidents": "ServiceNow Incident",
    "PagerDuty incidents": "PagerDuty Incident",
    "Jira issues": "Jira Issue",
}
PROFILES_OF_DIALECTS = {"event_source": "Event Source", **{cls.name: cls.profile for cls in DIALECT_CLASSES}}


class StartsWith(str):
    """An expected value known by its beginning only (the rest derives from the simulator's tenant or counter)."""


def matches(value: Any, expected: Any) -> bool:
    return value.startswith(expected) if isinstance(expected, StartsWith) else value == expected


def incident_types() -> dict[str, dict[str, Any]]:
    types = [json.loads(path.read_text(encoding="utf-8")) for path in INCIDENT_TYPES.glob("incidenttype-*.json")]
    return {incident_type["id"]: incident_type for incident_type in types}


def test_each_profile_has_an_incident_type_that_the_classifier_picks_and_the_mapper_fills() -> None:
    classifier = json.loads(CLASSIFIER.read_text(encoding="utf-8"))
    mapper = json.loads(MAPPER.read_text(encoding="utf-8"))
    source = load_yaml(SOURCE_YML)
    types = incident_types()
    incident_type_param = next(param for param in source["configuration"] if param["name"] == "incidentType")
    assert source["defaultclassifier"] == classifier["id"] == classifier["name"]
    assert source["defaultmapperin"] == mapper["id"] == mapper["name"]
    assert (classifier["type"], mapper["type"]) == ("classification", "mapping-incoming")
    assert incident_type_param["defaultvalue"] in types
    assert set(TYPE_OF_PROFILE) == set(PROFILES) - {"Custom"}
    assert classifier["keyTypeMap"] == TYPE_OF_PROFILE
    assert set(types) == set(TYPE_OF_PROFILE.values()) == set(mapper["mapping"])
    for incident_type in types.values():
        assert incident_type["id"] == incident_type["name"]
        assert incident_type["fromVersion"] == classifier["fromVersion"] == mapper["fromVersion"]
    pack = PackMapping(classifier, mapper)  # refuses a rule it cannot read as the server does
    assert pack.last_key == "Custom" and pack.last_key not in classifier["keyTypeMap"]
    for name, rules in mapper["mapping"].items():
        assert set(rules["internalMapping"]) <= set(INCIDENT_FIELDS), f"{name}: not a Common Types field"
        assert "severity" not in rules["internalMapping"], "the engine sets severity through the severity map"


def test_mapper_fills_the_incident_fields_from_an_event() -> None:
    event = {
        "id": "evt-000123", "created_time": "2026-11-26T06:00:00.123Z", "name": "Suspicious login from 203.0.113.7",
        "severity": "critical", "status": "New", "type": "Authentication",
        "description": "Five failed logins followed by a success.",
        "source": {"host": "vpn-gw-2", "ip": "203.0.113.7"}, "tags": ["vpn", "brute-force"],
        "user": {"name": "alice", "domain": "CORP"}, "mitre": {"tactic": "Credential Access", "techniques": ["T1110"]},
    }
    incident_type, fields = PackMapping.load().land({"rawJSON": json.dumps(event)})
    assert incident_type == "Event Source Event"
    assert fields == {
        "Event Type": "Authentication",
        "details": "Five failed logins followed by a success.",
        "Source Hostname": "vpn-gw-2",
        "Source IP": "203.0.113.7",
        "Source Username": "alice",
        "Tags": ["vpn", "brute-force"],
        "Technique ID": ["T1110"],
        "External ID": "evt-000123",
        "dbotMirrorId": "evt-000123",
    }


def fetch_through_the_unified_yaml(params: dict[str, Any]) -> list[dict[str, Any]]:
    """One fetch-incidents of the uploadable integration, in this process, as the server runs it."""
    integration = demisto_mock.load_unified(UNIFIED)
    server_params, _ = integration.server_params(params)
    runtime = demisto_mock.Runtime(command="fetch-incidents", params=server_params, brand=integration.name)
    outcome = demisto_mock.execute_unified(integration, runtime)
    assert outcome.ok, outcome.error
    return runtime.incidents_created


def expected_fields(dialect: str, item_id: str) -> dict[str, Any]:
    """What an analyst sees of the event below once it has come in from each API, as each API shows it."""
    description = "Five failed logins followed by a success."
    return {
        "event_source": {
            "External ID": item_id, "dbotMirrorId": item_id, "details": description, "Event Type": "Authentication",
            "Source Hostname": "vpn-gw-2", "Source IP": "203.0.113.7", "Source Username": "alice",
            "Tags": ["vpn", "brute force"], "Technique ID": ["T1110"],
        },
        "graph": {
            "External ID": item_id, "details": description, "Categories": "InitialAccess", "Technique ID": ["T1110"],
            "External Link": StartsWith(f"https://security.microsoft.com/alerts/{item_id}?tid="),
            "Hostnames": ["vpn-gw-2"],
            "Detected IPs": ["203.0.113.7"], "Users": ["alice"],
        },
        "okta": {
            "External ID": item_id, "details": "user.session.start", "Event Type": "user.session.start",
            "Source IP": "203.0.113.7", "Detected IPs": ["203.0.113.7"], "Source Username": "alice@example.com",
        },
        "servicenow": {"External ID": item_id, "details": description, "Categories": "inquiry",
                       "Ticket Number": StartsWith("INC")},
        "pagerduty": {
            "External ID": item_id, "details": "Suspicious login from 203.0.113.7", "Ticket Number": 1,
            "External Link": f"https://acme.pagerduty.com/incidents/{item_id}",
        },
        "jira": {"External ID": item_id, "Ticket Number": "SEC-1", "Event Type": "Task",
                 "Tags": ["vpn", "brute_force"]},
    }[dialect]


@pytest.mark.parametrize("dialect", ["event_source", *DIALECT_NAMES])
def test_an_item_of_each_api_lands_as_its_incident_type_with_its_fields(
        make_simulator: Callable[..., Simulator], dialect: str) -> None:
    """An event served by the simulator in each API's shape, fetched by the uploadable integration, classified and
    mapped by the pack's classifier and mapper as the server does: each profile's items land as its own type with
    their fields filled; a Custom source's items keep the instance's incident type."""
    sim = make_simulator(seed=2, clock=a_day_ago())
    sim.add_event(ago(sim, 120), name="Suspicious login from 203.0.113.7", severity="high", type="Authentication",
                  description="Five failed logins followed by a success.", tags=["vpn", "brute force"],
                  source={"host": "vpn-gw-2", "ip": "203.0.113.7"}, user={"name": "alice", "domain": "CORP"},
                  mitre={"tactic": "Credential Access", "techniques": ["T1110"]})
    params = {**instance_params(sim, dialect), "isFetch": True, "first_fetch": "2 days", "max_fetch": "10",
              "incidentType": "Event Source Event"}  # what a new instance holds until the user changes it
    (incident,) = fetch_through_the_unified_yaml(params)
    item_id = sim.dialects.item_id(dialect, "evt-000001") if dialect != "event_source" else "evt-000001"
    assert incident["dbotMirrorId"] == item_id
    pack = PackMapping.load()
    assert "type" not in incident  # left to the classifier, then the instance's Incident type
    incident_type, fields = pack.land(incident, params["incidentType"])
    if dialect == "custom":
        assert (incident_type, pack.classification_key(json.loads(incident["rawJSON"]))) == ("Event Source Event",
                                                                                              "Custom")
        return
    assert incident_type == TYPE_OF_PROFILE[PROFILES_OF_DIALECTS[dialect]]
    expected = expected_fields(dialect, item_id)
    assert set(fields) == set(expected)
    for name, value in fields.items():
        assert matches(value, expected[name]), f"{name}: {value!r}"
        if isinstance(value, list):
            assert INCIDENT_FIELDS[name] in MULTI_VALUE, f"a list for {name}, which holds one value"


def test_the_classifier_reads_as_the_servers_javascript_reads_it(make_simulator: Callable[..., Simulator]) -> None:
    """The classifier's DT expression is JavaScript on the server: Node.js evaluates it on an item of every API
    (and on odd ones) and must agree with the reading the tests and `make run` use."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    sim = make_simulator(seed=3)
    sim.add_events(2, at="2026-11-26T06:00:00.000Z")
    items = [sim.truth()[0].event, *(sim.dialects.truth(dialect)[0].event for dialect in DIALECT_NAMES),
             {}, {"id": "x"}, {"id": "x", "created_time": ""}, {"uuid": "u", "published": "p", "eventType": "e"}]
    pack = PackMapping.load()
    expression = pack.classifier["transformer"]["simple"].removeprefix(".=")
    script = ("const items = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
              f"console.log(JSON.stringify(items.map(val => ({expression}))));")
    result = subprocess.run([node, "-e", script], input=json.dumps(items), capture_output=True, text=True,
                            timeout=60, check=True)
    keys = json.loads(result.stdout)
    assert keys == [pack.classification_key(item) for item in items]
    assert keys[:len(DIALECT_NAMES) + 1] == ["Event Source", *(PROFILES_OF_DIALECTS[d] for d in DIALECT_NAMES)]


def test_pack_zip_holds_the_integration_incident_types_classifier_and_mapper(pack_zip: zipfile.ZipFile) -> None:
    names = set(pack_zip.namelist())
    type_files = {f"IncidentTypes/{path.name}" for path in INCIDENT_TYPES.glob("incidenttype-*.json")}
    assert len(type_files) == len(TYPE_OF_PROFILE)
    assert {
        "pack_metadata.json",
        "README.md",
        "Integrations/integration-EventFetcher.yml",
        "Classifiers/classifier-EventFetcher.json",
        "Classifiers/classifier-mapper-incoming-EventFetcher.json",
        *type_files,
    } <= names
    integration = yaml.safe_load(pack_zip.read("Integrations/integration-EventFetcher.yml"))
    assert integration["script"]["isfetch"] is True
    assert integration["defaultclassifier"] == json.loads(pack_zip.read(
        "Classifiers/classifier-EventFetcher.json"))["id"]
    assert integration["defaultmapperin"] == json.loads(pack_zip.read(
        "Classifiers/classifier-mapper-incoming-EventFetcher.json"))["id"]
    assert {json.loads(pack_zip.read(name))["id"] for name in type_files} == set(TYPE_OF_PROFILE.values())
    assert json.loads(pack_zip.read("pack_metadata.json"))["currentVersion"] == "1.1.0"
    assert "ReleaseNotes/1_1_0.md" in names


# --- the release ----------------------------------------------------------------------------------

RELEASE_NOTES = PACK / "ReleaseNotes"
VERSION_1_0_0 = "265bebc"  # the last commit of the pack at 1.0.0 (tests/test_sources_e2e.py upgrades from it)
# The SDK's release-notes header checks that `make validate` cannot run: they look only at release notes that git
# reports as changed (Config/validation_config.toml). Here they look at this pack as it stands.
RN_HEADER_CHECKS = """
import json, sys
from pathlib import Path
from demisto_sdk.commands.content_graph.objects.base_content import BaseContent
from demisto_sdk.commands.validate.validators.RN_validators import (
    RN113_is_valid_content_type_header as rn113, RN114_validate_release_notes_header as rn114,
    RN115_is_valid_rn_headers_format as rn115, RN116_first_level_header_missing as rn116)
pack = BaseContent.from_path(Path(sys.argv[1]))
validators = (rn113.IsValidContentTypeHeaderValidator(), rn114.ReleaseNoteHeaderValidator(),
              rn115.IsValidRnHeadersFormatValidator(), rn116.FirstLevelHeaderMissingValidator())
findings = {v.error_code: [r.message for r in v.obtain_invalid_content_items([pack])] for v in validators}
print(json.dumps({"file": str(pack.release_note.file_path), "findings": findings,
                  "headers": rn114.ReleaseNoteHeaderValidator().extract_rn_headers(pack.release_note.file_content)}))
"""


def test_the_version_has_release_notes_in_the_content_repositorys_format() -> None:
    version = json.loads((PACK / "pack_metadata.json").read_text(encoding="utf-8"))["currentVersion"]
    notes = RELEASE_NOTES / f"{version.replace('.', '_')}.md"
    assert notes.exists(), f"no release notes for {version}"
    env = {**os.environ, "DEMISTO_SDK_IGNORE_CONTENT_WARNING": "1"}
    result = subprocess.run([sys.executable, "-c", RN_HEADER_CHECKS, str(PACK.relative_to(ROOT))], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=SDK_TIMEOUT_SECONDS, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["file"]).name == notes.name
    assert report["findings"] == {"RN113": [], "RN114": [], "RN115": [], "RN116": []}
    assert report["headers"] == {
        "Classifiers": [json.loads(CLASSIFIER.read_text(encoding="utf-8"))["name"]],
        "Incident Types": [name for name in TYPE_OF_PROFILE.values() if name != "Event Source Event"],
        "Integrations": ["EventFetcher"],
        "Mappers": [json.loads(MAPPER.read_text(encoding="utf-8"))["name"]],
    }


def test_the_release_notes_name_every_parameter_and_output_new_since_1_0_0() -> None:
    old = yaml.safe_load(subprocess.run(
        ["git", "show", f"{VERSION_1_0_0}:{SOURCE_YML.relative_to(ROOT)}"], cwd=ROOT, capture_output=True,
        text=True, check=True).stdout)
    new = load_yaml(SOURCE_YML)
    notes = (RELEASE_NOTES / "1_1_0.md").read_text(encoding="utf-8")
    old_params = {param["name"] for param in old["configuration"]}
    for param in new["configuration"]:
        if param["name"] not in old_params:
            assert f"*{param['display']}*" in notes, f"the new parameter {param['display']} is not in the notes"
    outputs = {command["name"]: {o["contextPath"] for o in command["outputs"]} for command in new["script"]["commands"]}
    for command in old["script"]["commands"]:
        before, after = {o["contextPath"] for o in command["outputs"]}, outputs[command["name"]]
        for path in before ^ after:
            assert f"*{path}*" in notes, f"{path} of {command['name']} changed but is not in the notes"
        if before - after:  # an output taken away: playbooks reading it break, and the SDK wants that said
            notice = json.loads((RELEASE_NOTES / "1_1_0.json").read_text(encoding="utf-8"))
            assert notice["breakingChanges"] is True
            assert all(f"*{path}*" in notice["breakingChangesNotes"] for path in before - after)
