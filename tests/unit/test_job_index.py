"""The OverseerJobs by (namespace, repository), from their watch's events (pure)."""

from __future__ import annotations

from typing import Any

from overseer.core import job_index, repository_sync, sync


def job(
    name: str,
    *,
    namespace: str = "team",
    repository: str | None = "jobs",
    spec_hash: str = "h1",
    active: bool | None = None,
) -> dict[str, Any]:
    labels = {"overseer.dev/repository": repository} if repository else {}
    spec: dict[str, Any] = {"displayName": name.upper()}
    if active is not None:
        spec["active"] = active
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "labels": labels,
            "annotations": {
                sync.SPEC_HASH_ANNOTATION: spec_hash,
                sync.SOURCE_FILE_ANNOTATION: f"{name}.yml",
            },
            "managedFields": [{"manager": "overseer"}],
        },
        "spec": spec,
    }


def listing(*items: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": "7"}, "items": list(items)}


def names(index: job_index.JobIndex, key: tuple[str, str]) -> list[str]:
    return sorted(entry.metadata["name"] for entry in index.get(key, ()))


def test_a_job_keeps_what_the_sync_plans_with() -> None:
    index = job_index.JobIndex()
    index.apply("ADDED", job("a", spec_hash="h9", active=False))
    [entry] = index[("team", "jobs")]
    assert entry == sync.ExistingObject(
        "h9", "a.yml", metadata={"name": "a"}, display_name="A", active=False
    )
    index.apply("MODIFIED", job("a", spec_hash="h9"))
    assert [e.active for e in index[("team", "jobs")]] == [True]


def test_jobs_are_grouped_by_namespace_and_repository() -> None:
    index = job_index.JobIndex()
    for body in (job("a"), job("b"), job("c", repository="other"), job("d", namespace="ops")):
        index.apply("ADDED", body)
    index.apply("ADDED", job("e", repository=None))  # no repository owns it: not indexed
    assert names(index, ("team", "jobs")) == ["a", "b"]
    assert names(index, ("team", "other")) == ["c"]
    assert names(index, ("ops", "jobs")) == ["d"]
    assert names(index, ("team", "nobody")) == []
    assert index.jobs == 5
    claims = repository_sync.build_claims(index, "team", "jobs")
    assert claims == {"c": ("other", "c.yml")}


def test_a_deleted_job_leaves_the_index_and_its_repository_with_its_last_job() -> None:
    index = job_index.JobIndex()
    index.apply("ADDED", job("a"))
    index.apply("ADDED", job("b"))
    changes = index.apply("DELETED", job("a"))
    assert [(c["metadata"]["name"], deleted) for c, deleted in changes] == [("a", True)]
    assert names(index, ("team", "jobs")) == ["b"]
    index.apply("DELETED", job("b"))
    assert ("team", "jobs") not in index
    assert len(index) == 0


def test_a_job_whose_repository_label_changes_moves() -> None:
    index = job_index.JobIndex()
    index.apply("ADDED", job("a"))
    index.apply("MODIFIED", job("a", repository="other"))
    assert names(index, ("team", "other")) == ["a"]
    assert ("team", "jobs") not in index
    index.apply("MODIFIED", job("a", repository=None))
    assert len(index) == 0


def test_a_list_reports_every_job_and_the_ones_deleted_since_as_deleted() -> None:
    index = job_index.JobIndex()
    index.apply("LIST", listing(job("a"), job("b"), job("c", repository=None)), "team")
    # A watch gap: b and c were deleted, d added; the new snapshot shows only a and d.
    changes = index.apply("LIST", listing(job("a", spec_hash="h2"), job("d")), "team")
    seen = sorted((c["metadata"]["name"], deleted) for c, deleted in changes)
    assert seen == [("a", False), ("b", True), ("c", True), ("d", False)]
    gone = next(c for c, deleted in changes if deleted and c["metadata"]["name"] == "b")
    assert gone["metadata"]["namespace"] == "team"
    assert names(index, ("team", "jobs")) == ["a", "d"]
    assert [e.spec_hash for e in index[("team", "jobs")] if e.metadata["name"] == "a"] == ["h2"]
    assert index.jobs == 2


def test_a_snapshot_taken_page_by_page_is_the_same_as_one_list() -> None:
    index = job_index.JobIndex()
    index.apply("LIST", listing(job("a"), job("b"), job("c")), "team")
    assert index.apply("LISTING", {}, "team") == []
    first = index.apply("PAGE", listing(job("a", spec_hash="h2")), "team")
    assert [(c["metadata"]["name"], d) for c, d in first] == [("a", False)]
    # Nothing is deleted before the snapshot is whole: b may be on the next page.
    assert names(index, ("team", "jobs")) == ["a", "b", "c"]
    index.apply("PAGE", listing(job("b")), "team")
    changes = index.apply("LISTED", {"metadata": {}}, "team")
    assert [(c["metadata"]["name"], d) for c, d in changes] == [("c", True)]
    assert names(index, ("team", "jobs")) == ["a", "b"]
    # A snapshot started again (its continue token expired) forgets what it had named.
    index.apply("LISTING", {}, "team")
    index.apply("PAGE", listing(job("a")), "team")
    index.apply("LISTING", {}, "team")
    index.apply("PAGE", listing(job("b")), "team")
    changes = index.apply("LISTED", {"metadata": {}}, "team")
    assert [(c["metadata"]["name"], d) for c, d in changes] == [("a", True)]


def test_a_list_of_one_namespace_leaves_the_others_alone() -> None:
    index = job_index.JobIndex()
    index.apply("LIST", listing(job("a", namespace="team")), "team")
    index.apply("LIST", listing(job("b", namespace="ops")), "ops")
    changes = index.apply("LIST", listing(), "team")
    assert [(c["metadata"]["name"], deleted) for c, deleted in changes] == [("a", True)]
    assert names(index, ("ops", "jobs")) == ["b"]
    # A cluster-wide list (scope None) replaces every namespace.
    changes = index.apply("LIST", listing(job("c", namespace="dev")), None)
    assert sorted((c["metadata"]["name"], d) for c, d in changes) == [("b", True), ("c", False)]
    assert list(index) == [("dev", "jobs")]
