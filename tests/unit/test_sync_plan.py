"""The sync planner: what to create, update, delete and keep, from plain dicts."""

from __future__ import annotations

from typing import Any

from tests.support import sync_objects

from overseer.core import sync


def job(name: str, command: str = "echo hi", active: bool | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "command": command, "source": {"file": "jobs.yml"}}
    if active is not None:
        spec["active"] = active
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "OverseerJob",
        "metadata": {"name": name, "labels": {"overseer.dev/repository": "repo"}},
        "spec": spec,
    }


def desired(*bodies: dict[str, Any], file: str = "jobs.yml") -> dict[str, sync.DesiredObject]:
    return {b["metadata"]["name"]: sync_objects.desired(b, source_file=file) for b in bodies}


def existing_after(
    plan: sync.Plan, before: dict[str, sync.ExistingObject] | None = None
) -> dict[str, sync.ExistingObject]:
    """What the cluster holds once a plan is carried out: read back from the bodies."""
    after = dict(before or {})
    for write in plan.writes:
        after[write.name] = sync_objects.existing(write.body)
    for name in plan.delete:
        del after[name]
    return after


def test_hash_is_stable_and_ignores_key_order_and_active() -> None:
    a = {"name": "x", "env": {"A": "1", "B": "2"}, "command": "run"}
    b = {"command": "run", "env": {"B": "2", "A": "1"}, "name": "x", "active": False}
    assert sync.hash_spec(a) == sync.hash_spec(b)
    assert sync.hash_spec(a) != sync.hash_spec({**a, "command": "run2"})
    assert sync.hash_spec({"n": 1}) != sync.hash_spec({"n": "1"})
    assert len(sync.hash_spec(a)) == sync.HASH_LENGTH
    assert sync.hash_spec(a) == sync.hash_spec(dict(a))  # same process, same input


def test_first_sync_creates_everything() -> None:
    plan = sync.plan_sync(desired(job("b"), job("a")), set(), {})
    assert [w.name for w in plan.create] == ["a", "b"]
    assert plan.update == plan.delete == plan.unchanged == ()
    body = plan.create[0].body
    annotations = body["metadata"]["annotations"]
    assert annotations[sync.SPEC_HASH_ANNOTATION] == sync.hash_spec(job("a")["spec"])
    assert annotations[sync.SOURCE_FILE_ANNOTATION] == "jobs.yml"
    assert body["metadata"]["labels"] == {"overseer.dev/repository": "repo"}


def test_sync_without_change_writes_nothing() -> None:
    wanted = desired(job("a"), job("b"))
    cluster = existing_after(sync.plan_sync(wanted, set(), {}))
    again = sync.plan_sync(desired(job("a"), job("b")), set(), cluster)
    assert again.is_noop
    assert again.writes == ()
    assert again.unchanged == ("a", "b")


def test_changed_spec_updates_only_that_object() -> None:
    cluster = existing_after(sync.plan_sync(desired(job("a"), job("b")), set(), {}))
    plan = sync.plan_sync(desired(job("a", "echo new"), job("b")), set(), cluster)
    assert [w.name for w in plan.update] == ["a"]
    assert plan.update[0].body["spec"]["command"] == "echo new"
    assert plan.unchanged == ("b",)
    assert plan.create == plan.delete == ()


def test_object_gone_from_git_is_deleted() -> None:
    cluster = existing_after(sync.plan_sync(desired(job("a"), job("b")), set(), {}))
    plan = sync.plan_sync(desired(job("a")), set(), cluster)
    assert plan.delete == ("b",)
    assert plan.unchanged == ("a",)


def test_objects_of_a_failed_file_are_kept_untouched() -> None:
    cluster = existing_after(sync.plan_sync(desired(job("a"), file="good.yml"), set(), {}))
    cluster |= existing_after(
        sync.plan_sync(desired(job("b"), job("c"), file="bad.yml"), set(), {})
    )
    # bad.yml no longer parses: its jobs b and c are in no desired set.
    plan = sync.plan_sync(desired(job("a"), file="good.yml"), {"bad.yml"}, cluster)
    assert plan.kept_because_file_failed == ("b", "c")
    assert plan.delete == ()
    assert plan.is_noop


def test_failed_file_does_not_protect_objects_of_other_files() -> None:
    cluster = existing_after(sync.plan_sync(desired(job("a"), file="gone.yml"), set(), {}))
    plan = sync.plan_sync({}, {"bad.yml"}, cluster)
    assert plan.delete == ("a",)
    assert plan.kept_because_file_failed == ()


def test_job_moved_to_another_file_is_updated_then_safe_from_the_old_file() -> None:
    cluster = existing_after(sync.plan_sync(desired(job("a"), file="old.yml"), set(), {}))
    moved = sync.plan_sync(desired(job("a"), file="new.yml"), set(), cluster)
    assert [w.name for w in moved.update] == ["a"], "the source file annotation must follow"
    cluster = existing_after(moved, cluster)
    plan = sync.plan_sync({}, {"new.yml"}, cluster)
    assert plan.kept_because_file_failed == ("a",)


def test_valid_definition_wins_over_a_failed_file() -> None:
    cluster = existing_after(sync.plan_sync(desired(job("a"), file="bad.yml"), set(), {}))
    plan = sync.plan_sync(desired(job("a", "echo moved"), file="good.yml"), {"bad.yml"}, cluster)
    assert [w.name for w in plan.update] == ["a"]
    assert plan.kept_because_file_failed == ()


def test_active_never_reaches_apply_bodies_nor_the_hash() -> None:
    paused = job("a", active=False)
    plan = sync.plan_sync(desired(paused, job("b", active=True)), set(), {})
    for write in plan.writes:
        assert "active" not in write.body["spec"]
    assert paused["spec"]["active"] is False, "the input body is not mutated"
    cluster = existing_after(plan)
    flipped = sync.plan_sync(desired(job("a", active=True), job("b")), set(), cluster)
    assert flipped.is_noop, "a different active value is not a change to sync"


def test_object_without_hash_annotation_is_updated() -> None:
    cluster = {"a": sync_objects.existing({"metadata": {"name": "a"}})}
    assert cluster["a"].spec_hash is None
    plan = sync.plan_sync(desired(job("a")), set(), cluster)
    assert [w.name for w in plan.update] == ["a"]


def test_desired_object_given_hash_directly() -> None:
    body = job("a")
    wanted = {"a": sync.DesiredObject(body=body, spec_hash="h1")}
    cluster = {"a": sync.ExistingObject(spec_hash="h1", source_file=None)}
    assert sync.plan_sync(wanted, set(), cluster).unchanged == ("a",)
    write = sync.plan_sync(wanted, set(), {}).create[0]
    assert write.body["metadata"]["annotations"] == {sync.SPEC_HASH_ANNOTATION: "h1"}
    assert "annotations" not in body["metadata"], "the input body is not mutated"
