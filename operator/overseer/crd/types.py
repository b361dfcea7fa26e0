"""Constrained scalar types shared by the models: durations, times, quantities, URLs, names.

Each type validates in Python and carries the JSON-schema keywords Kubernetes can check
on its own (patterns, bounds), so the CRD refuses most bad values before the operator
sees them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

# --- durations -------------------------------------------------------------------------

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def rfc3339(moment: datetime) -> str:
    """A time as Kubernetes and webhooks write it: RFC 3339 in UTC with a ``Z``; a naive
    time is read as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` -> 90 minutes. Units: ms, s, m, h, d; parts add up; must be positive."""
    if not re.fullmatch(DURATION_PATTERN, text):
        msg = f"{text!r} is not a duration; write a number and a unit, like 30s, 5m, 1h30m or 2d"
        raise ValueError(msg)
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    if seconds <= 0:
        msg = f"duration {text!r} must be longer than zero"
        raise ValueError(msg)
    return timedelta(seconds=seconds)


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, description="A duration such as 30s, 5m, 1h30m or 2d."),
    AfterValidator(_check_duration),
]


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        msg = "a boolean is not allowed here (YAML reads yes/no/on/off/true/false as booleans)"
        raise ValueError(msg)
    return value


def _check_timeout(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 1:
            msg = "a timeout in seconds must be at least 1"
            raise ValueError(msg)
        return value
    parse_duration(value)
    return value


Timeout = Annotated[
    int | str,
    BeforeValidator(_not_bool),
    AfterValidator(_check_timeout),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": DURATION_PATTERN},
            ],
            "description": "Seconds (an integer) or a duration such as 90s, 10m or 1h.",
        }
    ),
]


def timeout_seconds(value: int | str) -> float:
    """The number of seconds of a :data:`Timeout` value."""
    if isinstance(value, int):
        return float(value)
    return parse_duration(value).total_seconds()


# --- text values (env values, parameter values) ----------------------------------------


def _scalar_to_text(value: Any) -> Any:
    """Integers become their decimal text; other non-strings are refused with a hint."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        msg = (
            "expected text, got a boolean; put the value in quotes "
            "(YAML reads yes/no/true/false as booleans)"
        )
        raise ValueError(msg)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        msg = (
            f"expected text, got the number {value!r}; "
            "put the value in quotes so it is kept as written"
        )
        raise ValueError(msg)
    if value is None:
        msg = "expected text, got nothing (null); put the value in quotes, or write '' for empty"
        raise ValueError(msg)
    msg = f"expected text, got {type(value).__name__}; put the value in quotes"
    raise ValueError(msg)


Text = Annotated[str, BeforeValidator(_scalar_to_text)]
"""A string; integers are accepted and kept as their decimal text."""

# --- identifiers -----------------------------------------------------------------------

PARAMETER_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ParameterName = Annotated[str, Field(pattern=PARAMETER_NAME_PATTERN, max_length=128)]

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN, max_length=256)]

# A label value, so that a concurrency group can be put on a label and selected.
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
LabelValue = Annotated[str, Field(pattern=LABEL_VALUE_PATTERN, max_length=63)]

HOOK_STATUS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
HookStatus = Annotated[str, Field(pattern=HOOK_STATUS_PATTERN, max_length=63)]

ACCOUNT_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


def _check_account(value: int | str) -> int | str:
    if isinstance(value, int):
        if not 0 <= value <= 2**31 - 1:
            msg = "a user or group id must be between 0 and 2147483647"
            raise ValueError(msg)
        return value
    if not re.fullmatch(ACCOUNT_NAME_PATTERN, value) or len(value) > 64:
        msg = f"{value!r} is not a user or group name; use a name like 'app' or a number like 1000"
        raise ValueError(msg)
    return value


Account = Annotated[
    int | str,
    BeforeValidator(_not_bool),
    AfterValidator(_check_account),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                {"type": "string", "pattern": ACCOUNT_NAME_PATTERN, "maxLength": 64},
            ],
            "description": "A name or a numeric id.",
        }
    ),
]

# --- URLs ------------------------------------------------------------------------------


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = f"{value!r} is not an http(s) URL; write it like https://hooks.example.com/overseer"
        raise ValueError(msg)
    return value


HttpUrl = Annotated[
    str,
    Field(pattern=r"^https?://", max_length=2048),
    AfterValidator(_check_http_url),
]

# --- Kubernetes quantities -------------------------------------------------------------

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _quantity(value: Any) -> Any:
    value = _not_bool(value)
    if isinstance(value, float):
        # ``cpu: 0.5`` in YAML is a float; Kubernetes reads the same text.
        return repr(value)
    return value


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not re.fullmatch(QUANTITY_PATTERN, value):
        msg = f"{value!r} is not a Kubernetes quantity; write it like 500m, 1, 256Mi or 2Gi"
        raise ValueError(msg)
    return value


Quantity = Annotated[
    int | str,
    BeforeValidator(_quantity),
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string", "pattern": QUANTITY_PATTERN}],
            "description": "A Kubernetes quantity such as 500m, 1, 256Mi or 2Gi.",
        }
    ),
]
