"""RFC 9457 problem details, as every error of the API is answered."""

from __future__ import annotations

from pydantic import Field

from overseer_api.schemas import base


class FieldError(base.Schema):
    """What is wrong with one field or parameter of the request."""

    field: str = Field(description="The field (or parameter) at fault, dotted for a nested one.")
    message: str = Field(description="What is wrong with it and what is accepted.")


class Problem(base.Schema):
    """An error (``application/problem+json``)."""

    type: str = Field(description="A stable URI naming the kind of problem.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What happened here, and what to do about it.")
    errors: list[FieldError] | None = Field(
        default=None, description="One entry per field or parameter at fault (422)."
    )
