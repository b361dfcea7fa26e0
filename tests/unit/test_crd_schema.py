"""The CRD schemas follow Kubernetes' structural rules; the converter's rewrites."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from overseer import errors
from overseer.crd import render, schema

TYPES = {"object", "array", "string", "integer", "number", "boolean"}
# JSONSchemaProps fields of apiextensions.k8s.io/v1 that a structural schema may use.
ALLOWED = {
    "type", "description", "properties", "required", "items", "additionalProperties",
    "enum", "default", "format", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "minProperties",
    "maxProperties", "multipleOf", "nullable",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
    "x-kubernetes-validations",
}  # fmt: skip


def structural_problems(node: dict[str, Any], path: str = "") -> list[str]:
    """Walk a schema the way the API server does; every rule broken, with its path."""
    where = path or "<root>"
    problems = [f"{where}: keyword {k!r}" for k in node if k not in ALLOWED]
    untyped_ok = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
        "x-kubernetes-int-or-string"
    )
    if node.get("type") not in TYPES and not untyped_ok:
        problems.append(f"{where}: no type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{where}: properties with additionalProperties")
    if "additionalProperties" in node and not isinstance(node["additionalProperties"], dict):
        problems.append(f"{where}: additionalProperties is not a schema")
    if node.get("type") == "array" and not isinstance(node.get("items"), dict):
        problems.append(f"{where}: array without one items schema")
    if node.get("type") != "object" and ("properties" in node or "additionalProperties" in node):
        problems.append(f"{where}: properties on a non-object")
    for name in node.get("required", []):
        if name not in node.get("properties", {}):
            problems.append(f"{where}: required {name!r} is not a property")
    if "default" in node and node["default"] is None:
        problems.append(f"{where}: null default")
    if node.get("type") == "string" and not all(isinstance(v, str) for v in node.get("enum", [])):
        problems.append(f"{where}: enum value of the wrong type")
    if node.get("x-kubernetes-list-type") == "map":
        item = node["items"]
        for key in node.get("x-kubernetes-list-map-keys", []):
            if key not in item.get("required", []) or item["properties"][key].get("nullable"):
                problems.append(f"{where}: list map key {key!r} must be required, not nullable")
    for name, sub in node.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += structural_problems(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_problems(node["additionalProperties"], f"{path}{{}}")
    return problems


@pytest.mark.parametrize("kind", render.KINDS, ids=lambda k: k.kind)
def test_crd_schemas_are_structural(kind: Any) -> None:
    root = render.build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert structural_problems(root) == []
    assert "nullable" not in root
    assert root["properties"]["metadata"] == {"type": "object"}


def test_walker_catches_what_kubernetes_refuses() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/x"},
            "b": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "c": {"type": "array"},
            "d": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            "e": {"type": "string", "default": None},
        },
        "required": ["z"],
    }
    problems = structural_problems(bad)
    assert any(".a: keyword '$ref'" in p for p in problems)
    assert any(".b: keyword 'anyOf'" in p for p in problems)
    assert any(".c: array" in p for p in problems)
    assert any(".d: properties with" in p for p in problems)
    assert any(".e: null default" in p for p in problems)
    assert any("required 'z'" in p for p in problems)


def job_definition_schema() -> dict[str, Any]:
    crd = render.build_crd(render.KINDS[1])
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return dict(root["properties"]["spec"]["properties"]["definition"])


def test_definition_schema_shapes() -> None:
    definition = job_definition_schema()
    props = definition["properties"]
    assert props["command"] == {
        "description": "A shell command line (text) or the exact argv (a list of texts).",
        "nullable": True,
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert props["timeout"]["x-kubernetes-int-or-string"] is True
    assert props["env"]["additionalProperties"] == {"type": "string"}
    assert props["schedule"]["type"] == "object"
    assert props["schedule"]["required"] == ["cron"]
    assert props["concurrency"]["properties"]["policy"]["enum"] == [
        "allow",
        "forbid",
        "queue",
        "replace",
    ]
    assert props["hooks"]["additionalProperties"]["type"] == "array"
    assert definition["required"] == ["name"]
    rules = [r["rule"] for r in definition["x-kubernetes-validations"]]
    assert rules == ["!(has(self.cmdspec) && has(self.script))"]


def test_event_data_keeps_any_json() -> None:
    crd = render.build_crd(render.KINDS[2])
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    event = root["properties"]["status"]["properties"]["events"]["items"]
    assert event["properties"]["data"]["x-kubernetes-preserve-unknown-fields"] is True
    assert "type" not in event["properties"]["data"]


def test_conditions_merge_by_type() -> None:
    crd = render.build_crd(render.KINDS[0])
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    conditions = root["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


# --- the converter on small models ------------------------------------------------------


class Inner(BaseModel):
    """Inner docs."""

    x: int = 1


class Sample(BaseModel):
    maybe: str | None = None
    either: int | str = 0
    mixed: str | list[str] = ""
    anything: Any = None
    free_map: dict[str, Any] = Field(default_factory=dict)
    inner: Inner = Field(default_factory=Inner, description="Field docs.")
    inner_opt: Inner | None = None
    positive: int = Field(default=1, gt=0)


def test_converter_rewrites() -> None:
    out = schema.structural_schema(Sample)
    props = out["properties"]
    assert props["maybe"] == {"type": "string", "nullable": True}
    assert props["either"] == {"x-kubernetes-int-or-string": True, "default": 0}
    assert props["mixed"] == {"x-kubernetes-preserve-unknown-fields": True, "default": ""}
    assert props["anything"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert props["free_map"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert props["inner"]["description"] == "Field docs."
    assert props["inner"]["properties"]["x"] == {"type": "integer", "default": 1}
    assert props["inner_opt"]["description"] == "Inner docs."
    assert props["inner_opt"]["nullable"] is True
    assert props["positive"] == {
        "type": "integer",
        "default": 1,
        "minimum": 0,
        "exclusiveMinimum": True,
    }
    assert structural_problems(out) == []


class Node(BaseModel):
    children: list[Node] = Field(default_factory=list)


class Pair(BaseModel):
    pair: tuple[int, str]


def test_converter_refuses_what_it_cannot_express() -> None:
    with pytest.raises(errors.SchemaError, match="recursive"):
        schema.structural_schema(Node)
    with pytest.raises(errors.SchemaError, match="tuples"):
        schema.structural_schema(Pair)
