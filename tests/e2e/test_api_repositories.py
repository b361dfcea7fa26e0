"""GET /repositories on the real cluster: after POST /sync, the new commit and Ready; a
repository whose git URL leads nowhere, not Ready with git's error.

The API runs as a process beside the operator; every step is an HTTP request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.api_process import ApiProcess
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

JOBS = "- name: Hello\n  command: [hello]\n"


def test_a_requested_sync_shows_its_commit_and_a_missing_url_its_error(
    kube: Kube, api: ApiProcess, tmp_path: Path
) -> None:
    # Given a synced repository and one whose URL leads nowhere
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    first = upstream.commit({"jobs.yml": JOBS, "bin/hello": "#!/bin/sh\necho hi\n"}, "first")
    kube.apply(repository("jobs", upstream.file_url, interval="1h"))
    kube.apply(repository("lost", f"file://{tmp_path}/missing.git", interval="1h"))
    wait_for_jobs(kube, {"Hello"})
    reader, boss = api.client("reader"), api.client("boss")

    def shown(name: str, check: Any) -> dict[str, Any]:
        def read() -> dict[str, Any] | None:
            answer = reader.get(f"/repositories/{name}")
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body if check(body) else None

        found: dict[str, Any] = eventually(read, 30, f"repository {name}")
        return found

    synced = shown("jobs", lambda body: body["commit"] == first)
    assert (synced["ready"], synced["reason"], synced["jobCount"]) == (True, "Synced", 1)
    # When a commit changes only bin/ and a sync is requested
    second = upstream.commit({"bin/hello": "#!/bin/sh\necho hello\n"}, "only bin/")
    requested = boss.post("/sync", params={"repository": "jobs"})
    assert requested.status_code == 202, requested.text
    # Then the repository shows the new commit, Ready, and who asked
    after = shown("jobs", lambda body: body["commit"] == second)
    assert (after["ready"], after["errors"], after["syncRequestedBy"]) == (True, [], "token:boss")
    assert after["lastSyncTime"] > synced["lastSyncTime"]
    # And a requested sync that finds nothing new is seen done too: the request is echoed
    assert boss.post("/sync", params={"repository": "jobs"}).status_code == 202
    done = shown(
        "jobs",
        lambda body: (
            body["syncHandledAt"] is not None
            and body["syncHandledAt"] == body["syncRequestedAt"]
            and body["syncRequestedAt"] != after["syncRequestedAt"]
        ),
    )
    assert (done["commit"], done["ready"]) == (second, True)
    # And the one whose URL leads nowhere is not Ready, with git's error
    lost = shown("lost", lambda body: body["ready"] is False)
    assert lost["commit"] is None
    assert lost["reason"] == "RepositoryNotFound", lost
    assert "missing.git" in lost["message"] or "spec.url" in lost["message"], lost
    listed = [r["name"] for r in reader.get("/repositories").json()["items"]]
    assert listed == ["jobs", "lost"]
    assert reader.get("/repositories/nope").json()["type"].endswith("/repository-unknown")
