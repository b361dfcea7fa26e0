"""Turn a pydantic model's JSON schema into a Kubernetes structural OpenAPI v3 schema.

Kubernetes accepts a subset of OpenAPI (the "structural" rules of apiextensions.k8s.io/v1):
no ``$ref``, every object field and array item has a ``type`` (or is explicitly
``x-kubernetes-preserve-unknown-fields`` / ``x-kubernetes-int-or-string``), no ``type:
null`` (``nullable`` instead), no ``anyOf``/``oneOf`` that sets types, ``properties`` and
``additionalProperties`` never together, ``additionalProperties`` never ``false``, no
``uniqueItems: true``, no ``patternProperties``, ``exclusiveMinimum`` as a boolean. This
module rewrites pydantic's output to that subset and raises :class:`errors.SchemaError` on
anything it cannot express, rather than emit a schema the API server would refuse.

Rewrites, in order of how often they happen:

- ``anyOf: [X, {type: null}]`` (an Optional field) becomes ``X`` with ``nullable: true``;
- ``anyOf: [{type: integer}, {type: string}]`` becomes ``x-kubernetes-int-or-string``,
  with each member's bounds and pattern hoisted (JSON schema applies them per type);
- any other ``anyOf`` (``str | list[str]``) becomes an untyped node with
  ``x-kubernetes-preserve-unknown-fields``: the models validate it in Python;
- ``{}`` (``Any``) and maps of ``Any`` keep unknown fields;
- ``patternProperties`` (maps with constrained keys) become ``additionalProperties``;
  the key pattern is checked in Python only;
- ``const`` becomes a one-value ``enum``; titles and examples are dropped; ``null``
  defaults are dropped.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from overseer import errors

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"

_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
_KEPT_FORMATS = {"date-time", "date", "int32", "int64", "byte", "uri"}
_DROPPED = {"title", "examples", "propertyNames", "readOnly", "writeOnly"}
_ALLOWED = {
    "type",
    "description",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "enum",
    "default",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "nullable",
    PRESERVE,
    INT_OR_STRING,
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
}
_SCALAR_KEYWORDS = {
    "integer": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "string": ("pattern", "minLength", "maxLength", "format"),
}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model`` (camelCase field names)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _Converter(defs).convert(raw, model.__name__, ())


class _Converter:
    def __init__(self, defs: dict[str, Any]) -> None:
        self._defs = defs

    def convert(self, node: dict[str, Any], path: str, refs: tuple[str, ...]) -> dict[str, Any]:
        node = dict(node)
        if "$ref" in node:
            name = node.pop("$ref").rsplit("/", 1)[-1]
            if name in refs:
                msg = f"{path}: recursive model {name} cannot be written without $ref"
                raise errors.SchemaError(msg)
            target = dict(self._defs[name])
            # The field's own keywords (description, default) win over the model's.
            target.update({k: v for k, v in node.items() if k != "title"})
            return self.convert(target, path, (*refs, name))
        if "allOf" in node:
            members = node.pop("allOf")
            if len(members) != 1:
                msg = f"{path}: allOf with several schemas is not supported"
                raise errors.SchemaError(msg)
            return self.convert({**members[0], **node}, path, refs)
        if "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")
            node.pop("discriminator", None)
        if "anyOf" in node:
            return self._any_of(node, path, refs)
        return self._plain(node, path, refs)

    def _any_of(self, node: dict[str, Any], path: str, refs: tuple[str, ...]) -> dict[str, Any]:
        members = node.pop("anyOf")
        nullable = any(m.get("type") == "null" for m in members)
        rest = [m for m in members if m.get("type") != "null"]
        outer = self._outer_keywords(node)
        if len(rest) == 1:
            result = self.convert({**rest[0], **outer}, path, refs)
        else:
            resolved = [self.convert(m, path, refs) for m in rest]
            types = sorted(m.get("type", "") for m in resolved)
            if types == ["integer", "string"]:
                result = {INT_OR_STRING: True}
                for member in resolved:
                    for keyword in _SCALAR_KEYWORDS[member["type"]]:
                        if keyword in member and keyword != "format":
                            result[keyword] = member[keyword]
            else:
                # Mixed shapes (text or list): Kubernetes keeps the value as given and
                # the model validates it.
                result = {PRESERVE: True}
            result.update(self._plain(outer, path, refs, typed=False))
        if nullable:
            result["nullable"] = True
        return result

    @staticmethod
    def _outer_keywords(node: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in node.items() if k not in _DROPPED}

    def _plain(
        self, node: dict[str, Any], path: str, refs: tuple[str, ...], *, typed: bool = True
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            self._keyword(out, key, value, path, refs)
        if typed:
            _complete(out, path)
        return out

    def _keyword(
        self, out: dict[str, Any], key: str, value: Any, path: str, refs: tuple[str, ...]
    ) -> None:
        if key == "properties":
            out["properties"] = {
                name: self.convert(sub, f"{path}.{name}", refs) for name, sub in value.items()
            }
        elif key == "items":
            if not isinstance(value, dict):
                msg = f"{path}: items must be one schema"
                raise errors.SchemaError(msg)
            out["items"] = self.convert(value, f"{path}[]", refs)
        elif key == "additionalProperties":
            self._additional(out, value, path, refs)
        elif key == "patternProperties":
            if len(value) != 1:
                msg = f"{path}: several key patterns cannot be expressed"
                raise errors.SchemaError(msg)
            (sub,) = value.values()
            self._additional(out, sub, path, refs)
        elif key == "prefixItems":
            msg = f"{path}: tuples cannot be expressed; use a list or an object"
            raise errors.SchemaError(msg)
        else:
            _scalar_keyword(out, key, value, path)

    def _additional(
        self, out: dict[str, Any], value: Any, path: str, refs: tuple[str, ...]
    ) -> None:
        if value is False:
            return  # Kubernetes prunes unknown fields anyway; false is refused.
        if value is True or value == {}:
            out[PRESERVE] = True
            return
        out["additionalProperties"] = self.convert(value, f"{path}{{}}", refs)


def _scalar_keyword(out: dict[str, Any], key: str, value: Any, path: str) -> None:
    if key in _DROPPED or key == "uniqueItems":
        return  # uniqueItems: Kubernetes refuses true (quadratic); the model checks it.
    if key == "const":
        out["enum"] = [value]
    elif key == "format":
        if value in _KEPT_FORMATS:
            out["format"] = value
    elif key == "default":
        if value is not None:
            out["default"] = value
    elif key == "required":
        out["required"] = sorted(value)
    elif key in {"exclusiveMinimum", "exclusiveMaximum"} and not isinstance(value, bool):
        out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
        out[key] = True
    elif key in _ALLOWED:
        out[key] = value
    else:
        msg = f"{path}: keyword {key!r} is not supported by Kubernetes schemas"
        raise errors.SchemaError(msg)


def _complete(out: dict[str, Any], path: str) -> None:
    """Add the type an untyped node needs, and refuse shapes Kubernetes refuses."""
    if "enum" in out and "type" not in out:
        out["type"] = _enum_type(out["enum"], path)
    if not out.get("type") and not out.get(PRESERVE) and not out.get(INT_OR_STRING):
        out[PRESERVE] = True  # ``Any``: Kubernetes keeps the value as given.
    if out.get("type") == "object":
        if "properties" in out and "additionalProperties" in out:
            msg = f"{path}: properties and additionalProperties cannot both be set"
            raise errors.SchemaError(msg)
        if "properties" not in out and "additionalProperties" not in out:
            out[PRESERVE] = True
    if out.get("type") == "array" and "items" not in out:
        msg = f"{path}: an array needs an item type"
        raise errors.SchemaError(msg)
    if out.get("type") == "null":
        msg = f"{path}: type null cannot be expressed; make the field Optional"
        raise errors.SchemaError(msg)


def _enum_type(values: list[Any], path: str) -> str:
    kinds = {type(v) for v in values}
    if kinds == {str}:
        return "string"
    if kinds == {bool}:
        return "boolean"
    if kinds == {int}:
        return "integer"
    msg = f"{path}: enum values of mixed types cannot be expressed"
    raise errors.SchemaError(msg)
