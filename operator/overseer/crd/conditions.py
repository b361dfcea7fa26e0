"""Status conditions: the standard Kubernetes shape, the type and reason names, a setter.

Condition types and reasons are named constants so the operator, the API and the tests
agree on spelling; reasons are CamelCase as Kubernetes requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from overseer.crd import base

# Condition types.
READY = "Ready"
SYNCED = "Synced"
SCHEDULED = "Scheduled"

# Reasons.
SUCCEEDED = "Succeeded"
PROGRESSING = "Progressing"
SUSPENDED = "Suspended"
FETCH_FAILED = "FetchFailed"
AUTH_FAILED = "AuthenticationFailed"
INVALID_DEFINITIONS = "InvalidDefinitions"
INVALID_SPEC = "InvalidSpec"
INACTIVE = "Inactive"

REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(base.StatusModel):
    """One aspect of the resource's current state (the standard Kubernetes condition)."""

    type: Annotated[str, Field(pattern=TYPE_PATTERN, max_length=316)] = Field(
        description="Type of the condition, in CamelCase, such as Ready."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: Annotated[str, Field(pattern=REASON_PATTERN, min_length=1, max_length=1024)] = Field(
        description="Why the condition last changed, as one CamelCase word."
    )
    message: Annotated[str, Field(max_length=32768)] = Field(
        default="", description="What happened, for a person to read."
    )
    last_transition_time: datetime = Field(
        description="When the status last changed from one value to another."
    )
    observed_generation: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="The metadata.generation the condition was computed for."
    )


def conditions_field(description: str = "Current state, as standard conditions.") -> Any:
    """A ``conditions`` list field, merged by ``type`` under server-side apply."""
    return Field(
        default_factory=list,
        description=description,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    now: datetime,
    observed_generation: int | None = None,
) -> list[Condition]:
    """A new list with ``type_`` set; the transition time only moves when the status does."""
    previous = next((c for c in conditions if c.type == type_), None)
    transition = now
    if previous is not None and previous.status == status:
        transition = previous.last_transition_time
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=observed_generation,
    )
    result = [c for c in conditions if c.type != type_]
    result.append(updated)
    return sorted(result, key=lambda c: c.type)
