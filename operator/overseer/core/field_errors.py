"""Turn pydantic validation errors into definition errors a person can act on.

Each error gets a dotted field path (``parameters.day.default``), the line of the
value when the file is YAML, and a message that says what to do: unknown fields
come with the closest known one and the list of known ones, pattern mismatches with
what the value may hold, validator messages without pydantic's prefixes.
"""

from __future__ import annotations

import difflib
import types as pytypes
import typing
from collections.abc import Sequence
from typing import Any

import pydantic

from overseer.core import documents
from overseer.crd import repository

Error = repository.DefinitionError


_PATTERN_HINTS = {
    r"^[A-Za-z_][A-Za-z0-9_]*$": "use letters, digits and _, not starting with a digit",
    r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$": "use letters, digits, -, _ and .",
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*$": "use letters, digits, -, _ and .",
    r"^\S+$": "remove the blank space",
    r"^https?://": "write an http(s) URL, like https://hooks.example.com/overseer",
}


def from_validation_error(
    file: str,
    job: str | None,
    *,
    location: tuple[int, ...],
    error: pydantic.ValidationError,
    document: documents.Document,
    model: type[pydantic.BaseModel],
) -> list[Error]:
    errors = []
    for detail in error.errors(include_url=False):
        loc = tuple(detail["loc"])
        is_key = bool(loc) and loc[-1] == "[key]"
        if is_key:
            loc = loc[:-1]
        field = _field_path(loc) or None
        if job is None and location:
            field = f"[{location[0]}]" + (f".{field}" if field else "")
        errors.append(
            Error(
                file=file,
                job=job,
                field=field,
                line=document.line_of((*location, *loc)),
                message=_message(detail, loc, is_key, model),
            )
        )
    return errors


def summarize(error: pydantic.ValidationError) -> str:
    """Every error on one line, ``field.path: message; ...``: for a spec Kubernetes
    already checked, where a line number and hints would not help."""
    return "; ".join(
        f"{_field_path(detail['loc']) or '(top)'}: {detail['msg']}"
        for detail in error.errors(include_url=False)
    )


def _field_path(loc: Sequence[Any]) -> str:
    path = ""
    for step in loc:
        if isinstance(step, int):
            path += f"[{step}]"
        else:
            path += f".{step}" if path else str(step)
    return path


def _message(
    detail: Any, loc: tuple[Any, ...], is_key: bool, model: type[pydantic.BaseModel]
) -> str:
    kind = detail["type"]
    if kind == "extra_forbidden":
        known = _known_fields(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listing = f"; known fields: {', '.join(known)}" if known else ""
        return f"unknown field {loc[-1]!r}{hint}{listing}"
    if kind == "missing":
        if loc == ("name",):
            return "every job needs a name"
        return "this field is required"
    if kind == "string_pattern_mismatch":
        pattern = detail.get("ctx", {}).get("pattern", "")
        hint = _PATTERN_HINTS.get(pattern, f"it must match {pattern}")
        what = "name" if is_key else "value"
        return f"{detail['input']!r} is not a valid {what}: {hint}"
    message = str(detail["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _known_fields(model: type[pydantic.BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The wire names of the fields of the model found at ``loc`` under ``model``."""
    current: Any = model
    for step in loc:
        current = _step(current, step)
        if current is None:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
        return sorted(f.alias or n for n, f in current.model_fields.items())
    return []


def _step(annotation: Any, step: Any) -> Any:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        for name, info in annotation.model_fields.items():
            if step in {name, info.alias}:
                return info.annotation
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin is list and args:
        return args[0]
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional from a type."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) in {typing.Union, pytypes.UnionType}:
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
