"""What the server does with a fetched incident before an analyst sees it: the pack's classifier picks its incident
type from the item (the incident's rawJSON), then the incoming mapper fills that type's fields from the item.

Used by `make run` to show incidents as they land and by tests/test_pack.py to check the pack's classifier and mapper
against real items. It reads the pack's own files and understands exactly what they use, and refuses anything else
(so that a rule it would misread cannot pass unnoticed):

- mapper rules: `simple` paths read as the server's DT paths read the item: dot-separated keys; a list on the way is
  read element by element and the values found are gathered into one list; a path that finds nothing maps nothing;
- the classifier: one DT expression `.=COND ? 'KEY' : COND ? 'KEY' : ... : 'KEY'`, where each COND is `val.a && val.b`
  (top-level fields, tested for JavaScript truthiness, as the server's JavaScript evaluates it), and keyTypeMap turns
  the key into an incident type. A key without a type leaves the incident the type the instance gave it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
CLASSIFIERS = ROOT / "Packs" / "EventFetcher" / "Classifiers"
CLASSIFIER = CLASSIFIERS / "classifier-EventFetcher.json"
MAPPER = CLASSIFIERS / "classifier-mapper-incoming-EventFetcher.json"

_TOKEN = re.compile(r"\s*(?:(val(?:\.[A-Za-z_$][\w$]*)+)|(&&)|(\?)|(:)|'([^'\\]*)')")


class UnsupportedRule(ValueError):
    """A classifier or mapper rule that this reading does not cover."""


def read_path(value: Any, path: str) -> Any:
    """The value at a dot-separated path, read as a DT path reads it; None when nothing is there."""
    return _walk([value], path.split("."), through_list=False)


def _walk(values: list[Any], keys: list[str], through_list: bool) -> Any:
    current: list[Any] = values
    for key in keys:
        step: list[Any] = []
        for item in current:
            if isinstance(item, list):
                through_list = True
                step.extend(element.get(key) for element in item if isinstance(element, dict) and key in element)
            elif isinstance(item, dict) and key in item:
                step.append(item[key])
        current = [v for v in step if v is not None]
        if not current:
            return None
    if not through_list:
        return current[0]
    gathered: list[Any] = []
    for item in current:
        gathered.extend(item if isinstance(item, list) else [item])
    return gathered or None


def js_truthy(value: Any) -> bool:
    """JavaScript's truthiness: objects and arrays are true even when empty; 0, '', null and missing are false."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and value == value  # NaN is false
    if isinstance(value, str):
        return value != ""
    return True


@dataclass(frozen=True)
class Branch:
    fields: tuple[str, ...]  # all truthy: this branch's key
    key: str


def parse_classifier_expression(expression: str) -> tuple[list[Branch], str]:
    """The branches and the last key of the classifier's DT expression (see the module's docstring)."""
    if not expression.startswith(".="):
        raise UnsupportedRule(f"the classifier is not a DT expression: {expression!r}")
    text, position, tokens = expression[2:], 0, []
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None:
            raise UnsupportedRule(f"cannot read the classifier from {text[position:]!r}")
        path, conjunction, question, colon, key = match.groups()
        if path is not None:
            if path.count(".") != 1:
                raise UnsupportedRule(f"only top-level fields are tested: {path}")
            tokens.append(("field", path.split(".", 1)[1]))
        elif conjunction:
            tokens.append(("and", ""))
        elif question:
            tokens.append(("?", ""))
        elif colon:
            tokens.append((":", ""))
        else:
            tokens.append(("key", key))
        position = match.end()
    branches: list[Branch] = []
    index = 0
    while True:
        fields: list[str] = []
        while index < len(tokens) and tokens[index][0] == "field":
            fields.append(tokens[index][1])
            index += 1
            if index < len(tokens) and tokens[index][0] == "and":
                index += 1
                if index >= len(tokens) or tokens[index][0] != "field":
                    raise UnsupportedRule("'&&' must join two fields")
        if not fields:
            if index == len(tokens) - 1 and tokens[index][0] == "key":
                return branches, tokens[index][1]
            raise UnsupportedRule("the classifier must end with a key")
        if [kind for kind, _ in tokens[index:index + 3]] != ["?", "key", ":"]:
            raise UnsupportedRule("each condition is followed by ? 'KEY' :")
        branches.append(Branch(tuple(fields), tokens[index + 1][1]))
        index += 3


@dataclass
class PackMapping:
    """The pack's classifier and incoming mapper, applied to incidents as the server applies them."""

    classifier: dict[str, Any]
    mapper: dict[str, Any]
    branches: list[Branch] = field(init=False)
    last_key: str = field(init=False)

    def __post_init__(self) -> None:
        transformer = self.classifier["transformer"]
        if transformer.get("complex"):
            raise UnsupportedRule("the classifier's transformer is read from its simple expression only")
        self.branches, self.last_key = parse_classifier_expression(transformer["simple"])
        for type_name, rules in self.mapper["mapping"].items():
            for field_name, rule in rules["internalMapping"].items():
                if rule.get("complex") or str(rule.get("simple", "")).startswith(".="):
                    raise UnsupportedRule(f"{type_name}: {field_name} is not a plain path")

    @classmethod
    def load(cls, classifier: Path = CLASSIFIER, mapper: Path = MAPPER) -> PackMapping:
        return cls(json.loads(classifier.read_text(encoding="utf-8")), json.loads(mapper.read_text(encoding="utf-8")))

    def classification_key(self, item: Any) -> str:
        """The key the classifier's expression gives for an item."""
        for branch in self.branches:
            if isinstance(item, dict) and all(js_truthy(item.get(name)) for name in branch.fields):
                return branch.key
        return self.last_key

    def incident_type(self, incident: Mapping[str, Any], instance_type: str = "") -> str:
        """The classifier's type for the item when its key has one, else the instance's Incident type (or none)."""
        key = self.classification_key(json.loads(incident["rawJSON"]))
        classified = self.classifier.get("keyTypeMap", {}).get(key)
        return classified or instance_type or str(self.classifier.get("defaultIncidentType") or "")

    def fields(self, incident_type: str, item: Any) -> dict[str, Any]:
        """The fields the mapper fills for an item of that type, by field name; a path that finds nothing (or an empty
        value) is left out."""
        rules = self.mapper["mapping"].get(incident_type, {}).get("internalMapping", {})
        mapped = {name: read_path(item, rule["simple"]) for name, rule in rules.items()}
        return {name: value for name, value in mapped.items() if value not in (None, "", [])}

    def land(self, incident: Mapping[str, Any], instance_type: str = "") -> tuple[str, dict[str, Any]]:
        """(incident type, mapped fields) of a fetched incident, on an instance whose Incident type is given."""
        incident_type = self.incident_type(incident, instance_type)
        return incident_type, self.fields(incident_type, json.loads(incident["rawJSON"]))
