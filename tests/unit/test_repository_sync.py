"""What a sync applies, and the status it reports, from a parsed repository (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support import sync_objects

from overseer.core import definitions, names, repository_sync, sync
from overseer.crd import repository

OWNER = repository_sync.Owner("team", "jobs", "uid-1")
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
FILES = {"a.yml": "- name: A job\n  cmdspec: run who\n", "b.yml": "- name: B\n  command: 'true'\n"}


def parse(files: dict[str, str]) -> definitions.RepositoryResult:
    return definitions.parse_repository(files)


def test_job_body_is_owned_labelled_and_leaves_active_to_the_api() -> None:
    desired = repository_sync.build_desired_jobs(OWNER, "c1", parse(FILES))
    body = next(d.body for d in desired.values() if d.body["spec"]["displayName"] == "A job")
    assert body["metadata"]["namespace"] == "team"
    assert body["metadata"]["labels"] == {"overseer.dev/repository": "jobs"}
    owner = body["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("OverseerRepository", "jobs", "uid-1")
    assert body["spec"]["source"] == {"repository": "jobs", "file": "a.yml", "commit": "c1"}
    assert "active" not in body["spec"]


def test_a_commit_that_does_not_touch_a_job_does_not_change_its_hash() -> None:
    first = repository_sync.build_desired_jobs(OWNER, "c1", parse(FILES))
    second = repository_sync.build_desired_jobs(OWNER, "c2", parse(FILES))
    assert {n: d.spec_hash for n, d in first.items()} == {n: d.spec_hash for n, d in second.items()}
    changed = repository_sync.build_desired_jobs(
        OWNER, "c3", parse({**FILES, "b.yml": "- name: B\n  command: 'false'\n"})
    )
    changed_names = [n for n in first if first[n].spec_hash != changed[n].spec_hash]
    assert [first[n].body["spec"]["displayName"] for n in changed_names] == ["B"]


def test_unchanged_commit_plans_no_write_against_what_it_wrote() -> None:
    desired = repository_sync.build_desired_jobs(OWNER, "c1", parse(FILES))
    plan = sync.plan_sync(desired, frozenset(), {})
    existing = {w.name: sync_objects.existing(w.body) for w in plan.writes}
    again = sync.plan_sync(
        repository_sync.build_desired_jobs(OWNER, "c2", parse(FILES)), frozenset(), existing
    )
    assert again.is_noop


def test_status_of_a_good_sync_is_ready_and_stable() -> None:
    result = parse(FILES)
    status, changed = repository_sync.build_status(
        previous={},
        generation=1,
        commit="c" * 40,
        job_count=2,
        errors=[],
        fetch_error=None,
        now=NOW,
    )
    assert changed
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Synced")
    assert status["jobCount"] == 2 and status["shortCommit"] == "c" * 12
    assert status["lastSyncTime"].startswith("2026-11-29T12:00:00")
    again, changed_again = repository_sync.build_status(
        previous=status,
        generation=1,
        commit="c" * 40,
        job_count=2,
        errors=list(result.errors),
        fetch_error=None,
        now=NOW + timedelta(minutes=5),
    )
    assert not changed_again
    assert again == status


def test_definition_errors_make_the_repository_not_ready_and_keep_the_commit() -> None:
    error = repository.DefinitionError(file="a.yml", job="A", field="cmdspec", message="bad")
    status, _ = repository_sync.build_status(
        previous={},
        generation=2,
        commit="c1",
        job_count=1,
        errors=[error],
        fetch_error=None,
        now=NOW,
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidDefinitions")
    assert "a.yml" in ready["message"]
    assert status["errors"] == [{"file": "a.yml", "job": "A", "field": "cmdspec", "message": "bad"}]
    assert status["commit"] == "c1"


def test_fetch_failure_keeps_the_last_good_commit_and_says_why() -> None:
    good, _ = repository_sync.build_status(
        previous={}, generation=1, commit="c1", job_count=3, errors=[], fetch_error=None, now=NOW
    )
    failed, changed = repository_sync.build_status(
        previous=good,
        generation=1,
        commit=None,
        job_count=None,
        errors=[],
        fetch_error=("GitUnreachable", "cannot reach the server; will retry"),
        now=NOW + timedelta(minutes=1),
    )
    assert changed
    assert failed["commit"] == "c1" and failed["jobCount"] == 3
    synced = next(c for c in failed["conditions"] if c["type"] == "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "GitUnreachable")
    assert synced["lastTransitionTime"].startswith("2026-11-29T12:01")


def test_suspended_repository_is_not_ready_and_keeps_what_it_had() -> None:
    good, _ = repository_sync.build_status(
        previous={}, generation=1, commit="c1", job_count=3, errors=[], fetch_error=None, now=NOW
    )
    suspended, changed = repository_sync.build_status(
        previous=good,
        generation=2,
        commit="c1",
        job_count=3,
        errors=[],
        fetch_error=None,
        now=NOW,
        suspended=True,
    )
    assert changed
    ready = next(c for c in suspended["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Suspended")
    assert (suspended["commit"], suspended["jobCount"]) == ("c1", 3)


def _existing(display: str, *, active: bool) -> sync.ExistingObject:
    return sync.ExistingObject("h", "a.yml", display_name=display, active=active)


def test_deactivations_are_kept_while_the_job_is_out_of_git_and_dropped_once_active() -> None:
    a, b = names.job_resource_name("A job"), names.job_resource_name("B")
    # A deactivated job in the cluster is kept
    assert repository_sync.plan_inactive([], {a: _existing("A job", active=False)}) == ["A job"]
    # Once it left git (its OverseerJob deleted), the name stays
    assert repository_sync.plan_inactive(["A job"], {}) == ["A job"]
    # Back in the cluster and active again (someone activated it): dropped
    assert repository_sync.plan_inactive(["A job"], {a: _existing("A job", active=True)}) == []
    # Others are left alone
    assert repository_sync.plan_inactive(["A job"], {b: _existing("B", active=True)}) == ["A job"]


def test_a_job_coming_back_deactivated_is_created_with_active_false() -> None:
    desired = repository_sync.build_desired_jobs(OWNER, "c1", parse(FILES))
    plan = sync.plan_sync(desired, frozenset(), {})
    by_name = {w.body["spec"]["displayName"]: w for w in plan.create}
    creation = repository_sync.build_creation(by_name["A job"], {"A job"})
    assert creation is not None and creation["spec"]["active"] is False
    assert "active" not in by_name["A job"].body["spec"]  # the plan's body is left as it was
    assert repository_sync.build_creation(by_name["B"], {"A job"}) is None


def test_a_job_name_another_repository_owns_fails_this_file_naming_the_owner() -> None:
    result = parse({**FILES, "c.yml": "- name: C\n  command: 'true'\n"})
    claims = {names.job_resource_name("A job"): ("other", "theirs.yml")}
    kept = repository_sync.exclude_claimed(result, claims)
    assert sorted(j.name for j in kept.jobs.values()) == ["B", "C"]
    assert kept.failed_files == {"a.yml"}
    [error] = kept.errors
    assert (error.file, error.job, error.field, error.reason) == (
        "a.yml",
        "A job",
        "name",
        "DuplicateJobName",
    )
    assert "'other'" in error.message and "theirs.yml" in error.message
    # Nothing claimed: the result as it was
    assert repository_sync.exclude_claimed(result, {}) is result


def test_a_handled_sync_request_is_echoed_so_a_client_sees_a_sync_that_changed_nothing() -> None:
    def build(
        previous: dict[str, object], request: str | None, failed: bool = False
    ) -> tuple[dict[str, object], bool]:
        return repository_sync.build_status(
            previous=previous,
            generation=1,
            commit=None if failed else "c1",
            job_count=None if failed else 3,
            errors=[],
            fetch_error=("RepositoryNotFound", "no repository") if failed else None,
            now=NOW + timedelta(minutes=1),
            handled_request=request,
        )

    good, _ = build({}, None)
    assert "lastHandledSyncRequest" not in good  # never asked: the field stays unset
    # The same commit, asked for: the status changes, by the request it handled
    echoed, changed = build(good, "1796673600.500000")
    assert changed
    assert echoed["lastHandledSyncRequest"] == "1796673600.500000"
    assert str(echoed["lastSyncTime"]).startswith("2026-11-29T12:01")
    # The same request again (a periodic sync): nothing to write
    assert not build(echoed, "1796673600.500000")[1]
    # A failed fetch handles the request too: the client sees the failure, not a silence
    failed, _ = build(echoed, "1796673700.000000", failed=True)
    assert failed["lastHandledSyncRequest"] == "1796673700.000000"


def test_a_sync_request_too_long_to_echo_is_not_echoed_and_the_sync_is_recorded() -> None:
    # An annotation written by hand can be any length; the status field is bounded.
    status, changed = repository_sync.build_status(
        previous={},
        generation=1,
        commit="c1",
        job_count=3,
        errors=[],
        fetch_error=None,
        now=NOW,
        handled_request="x" * 1000,
    )
    assert changed
    assert (status["commit"], status["jobCount"]) == ("c1", 3)
    assert "lastHandledSyncRequest" not in status
