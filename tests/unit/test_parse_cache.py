"""The operator parses only the job files a commit changed."""

from __future__ import annotations

from typing import Any

import pytest

from overseer.core import definitions
from overseer.operator.parse_cache import ParseCache

FILES = {
    "a.yml": b"- name: A\n  command: 'true'\n",
    "b.yml": b"- name: B\n  command: 'true'\n",
}


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = definitions.parse_job_file

    def counting(path: str, text: Any, defaults: Any = None) -> definitions.FileResult:
        calls.append(path)
        return real(path, text, defaults)

    monkeypatch.setattr(definitions, "parse_job_file", counting)
    return calls


def test_unchanged_files_are_not_parsed_again(parsed: list[str]) -> None:
    cache = ParseCache()
    first = cache.parse_repository(FILES, None)
    again = cache.parse_repository(FILES, None)
    assert sorted(parsed) == ["a.yml", "b.yml"]
    assert first == again
    changed = cache.parse_repository({**FILES, "b.yml": b"- name: B2\n  command: 'true'\n"}, None)
    assert sorted(parsed) == ["a.yml", "b.yml", "b.yml"]
    assert {job.name for job in changed.jobs.values()} == {"A", "B2"}


def test_new_defaults_reparse_everything(parsed: list[str]) -> None:
    cache = ParseCache()
    cache.parse_repository(FILES, None)
    result = cache.parse_repository(FILES, b"defaults:\n  timeout: 5m\n")
    assert sorted(parsed) == ["a.yml", "a.yml", "b.yml", "b.yml"]
    assert all(job.definition.timeout == "5m" for job in result.jobs.values())


def test_errors_are_cached_like_results(parsed: list[str]) -> None:
    cache = ParseCache()
    bad = {"a.yml": b"- name: [\n"}
    assert cache.parse_repository(bad, None).errors
    assert cache.parse_repository(bad, None).errors
    assert parsed == ["a.yml"]
