"""``overseer sync --wait`` and ``overseer repositories`` against a stand-in API on loopback
(real HTTP, the real CLI process): what they ask, in which order, and what they print."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

import yaml

from tests.component.test_cli_http import answer_json, overseer, serve
from tests.component.test_cli_http_lists import problem, query

ASKED = "2026-12-06T19:00:00.250000Z"
NEW = "9fceb02d0ae598e95dc970b74767f19372d61af8"
OLD = "0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0"


def repository(
    name: str, handled: str | None, commit: str | None = OLD, **more: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "url": "https://git.example/org/jobs.git",
        "ref": "main",
        "commit": commit,
        "shortCommit": commit[:12] if commit else None,
        "lastSyncTime": "2026-12-06T18:00:00Z",
        "syncHandledAt": handled,
        "ready": True,
        "reason": "Synced",
        "message": "in sync",
        "jobCount": 3,
        "errors": [],
        **more,
    }


def listing(*items: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(items)}


def sync_api(
    answers: list[dict[str, Any]], seen: list[tuple[str, str, dict[str, str]]], names: list[str]
) -> Any:
    def api(request: BaseHTTPRequestHandler) -> None:
        path, params = query(request)
        seen.append((request.command, path, params))
        if request.command == "POST":
            answer_json(request, 202, {"repositories": names, "requestedAt": ASKED})
            return
        reads = sum(1 for method, _, _ in seen if method == "GET")
        answer_json(request, 200, answers[min(reads, len(answers)) - 1])

    return api


def test_sync_wait_sees_a_sync_that_changed_nothing_and_one_that_moved() -> None:
    seen: list[tuple[str, str, dict[str, str]]] = []
    answers = [
        listing(repository("a", "2026-12-06T18:00:00Z"), repository("b", None)),  # not yet
        listing(repository("a", "2026-12-06T19:00:01Z"), repository("b", None)),  # a: same commit
        listing(
            repository("a", "2026-12-06T19:00:01Z"),
            repository("b", "2026-12-06T19:00:02Z", commit=NEW),  # b: a commit of bin/ only
        ),
    ]
    with serve(sync_api(answers, seen, ["a", "b"])) as url:
        process = overseer(url, "sync", "--wait", "--timeout", "20")
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.decode().splitlines() == [
        f"sync requested: a, b (at {ASKED})",
        f"a: synced {OLD[:12]} (3 jobs)",
        f"b: synced {NEW[:12]} (3 jobs)",
    ]
    assert seen == [("POST", "/sync", {}), *[("GET", "/repositories", {})] * 3]


def test_sync_wait_reports_a_failed_sync_and_exits_1() -> None:
    seen: list[tuple[str, str, dict[str, str]]] = []
    lost = repository(
        "jobs",
        "2026-12-06T19:00:01Z",
        ready=False,
        reason="RepositoryNotFound",
        message="jobs may be out of date: no repository at file:///gone.git",
    )
    with serve(sync_api([listing(lost)], seen, ["jobs"])) as url:
        process = overseer(url, "-n", "team-a", "sync", "jobs", "--wait", "--timeout", "20")
        out, err = process.communicate(timeout=30)
    assert (process.returncode, out.decode()) == (1, f"sync requested: jobs (at {ASKED})\n")
    assert err.decode() == (
        "jobs: sync failed (RepositoryNotFound): jobs may be out of date: no repository at "
        "file:///gone.git\n"
    )
    assert seen == [
        ("POST", "/namespaces/team-a/sync", {"repository": "jobs"}),
        ("GET", "/namespaces/team-a/repositories", {}),
    ]


def test_sync_wait_for_a_revision_gives_up_at_its_timeout_saying_where_to_look() -> None:
    seen: list[tuple[str, str, dict[str, str]]] = []
    other = listing(repository("jobs", "2026-12-06T19:00:01Z"))
    with serve(sync_api([other], seen, ["jobs"])) as url:
        process = overseer(
            url, "sync", "jobs", "--wait", "--revision", "9fceb02", "--timeout", "1.5"
        )
        out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (1, f"sync requested: jobs (at {ASKED})\n".encode())
    text = err.decode()
    assert text.startswith(
        f"overseer: no sync seen within 1.5s (jobs: not at 9fceb02 (at {OLD[:12]}))"
    )
    assert "'overseer repositories'" in text


def test_sync_of_an_unknown_repository_prints_the_api_detail_and_exits_1() -> None:
    def refuse(request: BaseHTTPRequestHandler) -> None:
        assert request.command == "POST"
        problem(request, 404, "no repository is named 'nope' in 'default'")

    with serve(refuse) as url:
        process = overseer(url, "sync", "nope", "--wait")
        out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (1, b"")
    assert err == b"overseer: no repository is named 'nope' in 'default' (HTTP 404)\n"


def test_repositories_as_a_table_and_as_json_or_yaml() -> None:
    items = [
        repository("jobs", None, commit=NEW, lastSyncTime="2026-12-06T19:00:01.5Z"),
        repository(
            "lost", None, commit=None, shortCommit=None, jobCount=None, ref=None, ready=False,
            reason="RepositoryNotFound", url="file:///gone.git", lastSyncTime=None,
        ),
    ]  # fmt: skip
    paths: list[str] = []

    def api(request: BaseHTTPRequestHandler) -> None:
        paths.append(request.path)
        answer_json(request, 200, listing(*items))

    with serve(api) as url:
        table = overseer(url, "repositories").communicate(timeout=30)
        as_json = overseer(url, "-n", "team-a", "repositories", "-o", "json").communicate(30)
        as_yaml = overseer(url, "repositories", "-o", "yaml").communicate(timeout=30)
    assert table[0].decode().splitlines() == [
        "NAME  URL                               REF   COMMIT        JOBS  READY  REASON"
        "              SYNCED",
        f"jobs  https://git.example/org/jobs.git  main  {NEW[:12]}  3     True   Synced"
        "              2026-12-06T19:00:01Z",
        "lost  file:///gone.git                  -     -             -     False  "
        "RepositoryNotFound  -",
    ]
    assert json.loads(as_json[0]) == items
    assert yaml.safe_load(as_yaml[0]) == items
    assert paths == ["/repositories", "/namespaces/team-a/repositories", "/repositories"]
