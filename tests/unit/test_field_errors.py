"""The one-line summary of a validation error, for specs Kubernetes already checked."""

from __future__ import annotations

import pydantic
import pytest

from overseer.core import field_errors
from overseer.crd import repository


def test_a_summary_names_each_field_path_and_drops_nothing() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        repository.RepositorySpec.model_validate({"url": 5, "surprise": True})
    summary = field_errors.summarize(caught.value)
    parts = summary.split("; ")
    assert len(parts) == len(caught.value.errors())
    assert any(part.startswith("url: ") for part in parts)
    assert any(part.startswith("surprise: ") for part in parts)


def test_a_summary_shows_list_positions_as_indexes() -> None:
    class Hooks(pydantic.BaseModel):
        urls: list[int]

    with pytest.raises(pydantic.ValidationError) as caught:
        Hooks.model_validate({"urls": [1, "x"]})
    assert field_errors.summarize(caught.value).startswith("urls[1]: ")
