"""kopf's diff base keeps of an execution only spec.signals, of other kinds everything.

The pure choice (``overseer.core.diffbase``), then the kopf storage built on it, judged
by kopf's own change detection and handler selection (its registry, not a copy of its
rules): a signal still selects the handler, an execution written by an older operator
(whole essence) selects nothing, and the essence fits in an annotation.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import kopf
from kopf._cogs.structs import diffs
from kopf._core.intents import causes

from overseer.core import diffbase
from overseer.crd import base
from overseer.crd import execution as execution_crd
from overseer.crd import repository as repository_crd
from overseer.operator import diffbase as storage_module

PREFIX = "kopf.overseer.dev"
SIGNALS = ("spec", "signals")
EXECUTIONS = kopf.Resource(
    base.GROUP, base.VERSION, execution_crd.KIND.plural, kind=execution_crd.KIND.kind
)
ANNOTATIONS_LIMIT = 256 * 1024  # Kubernetes' cap on all of an object's annotations together


def execution(signals: list[str] | None, **labels: str) -> kopf.Body:
    """An execution with 300,000 bytes of parameters, as a watch event shows it."""
    spec: dict[str, Any] = {
        "job": "deploy",
        "parameters": {name: name * 100_000 for name in "abc"},
        "definition": {"command": "true"},
    }
    if signals is not None:
        spec["signals"] = [{"signal": s, "requestedAt": "2026-12-06T16:00:00Z"} for s in signals]
    return kopf.Body(
        {
            "apiVersion": base.API_VERSION,
            "kind": execution_crd.KIND.kind,
            "metadata": {"name": "deploy-1", "namespace": "team", "labels": labels},
            "spec": spec,
            "status": {"phase": "Running"},
        }
    )


def test_an_execution_keeps_only_its_signals_and_other_kinds_everything() -> None:
    kind = execution_crd.KIND.kind
    assert diffbase.diffed_fields(base.API_VERSION, kind) == {SIGNALS}
    assert diffbase.diffed_fields(base.API_VERSION, kind, [("spec", "x")]) == {
        SIGNALS,
        ("spec", "x"),
    }
    assert diffbase.diffed_fields(base.API_VERSION, repository_crd.KIND.kind) is None
    # The group counts, not only the kind's name
    assert diffbase.diffed_fields("example.com/v1", kind) is None


def test_restrict_keeps_the_fields_nested_as_they_were_and_leaves_absent_ones_out() -> None:
    essence = {"spec": {"signals": [1], "parameters": {"a": "x"}}, "metadata": {"labels": {}}}
    assert diffbase.restrict(essence, [SIGNALS, ("spec", "nope"), ("x", "y")]) == {
        "spec": {"signals": [1]}
    }
    assert diffbase.restrict({"spec": {"parameters": {}}}, [SIGNALS]) == {}
    assert diffbase.restrict({"spec": "not a mapping"}, [SIGNALS]) == {}
    assert diffbase.restrict(essence, [()]) == essence


def storage() -> storage_module.DiffedFieldsStorage:
    return storage_module.DiffedFieldsStorage(prefix=PREFIX, key="last-handled-configuration")


def test_a_large_execution_s_diff_base_fits_in_an_annotation_and_holds_no_parameter() -> None:
    essence = storage().build(body=execution(["SIGTERM"]), extra_fields=[SIGNALS])
    assert essence == {
        "spec": {"signals": [{"signal": "SIGTERM", "requestedAt": "2026-12-06T16:00:00Z"}]}
    }
    # kopf's own storage would write all 300,000 bytes: refused (422) by the API server
    whole = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX).build(body=execution(["SIGTERM"]))
    assert len(json.dumps(whole)) > ANNOTATIONS_LIMIT
    assert len(json.dumps(essence)) < 200


def test_a_repository_keeps_its_whole_essence() -> None:
    body = kopf.Body(
        {
            "apiVersion": base.API_VERSION,
            "kind": repository_crd.KIND.kind,
            "metadata": {
                "name": "jobs",
                "labels": {"team": "a"},
                "annotations": {"overseer.dev/requested-sync": "now"},
            },
            "spec": {"url": "https://example.com/jobs.git", "interval": "5m"},
        }
    )
    kopfs = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX).build(body=body)
    assert storage().build(body=body) == kopfs
    assert kopfs["metadata"]["annotations"] == {"overseer.dev/requested-sync": "now"}


def selected(old: kopf.BodyEssence | None, body: kopf.Body) -> tuple[str, list[str]]:
    """What kopf makes of BODY against the diff base OLD: the cause's reason, and the
    handlers it calls (a registry with signal_execution's registration)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.update(
        base.GROUP,
        base.VERSION,
        execution_crd.KIND.plural,
        field=diffbase.SIGNALS_FIELD,
        registry=registry,
    )
    def signal_execution(**_: Any) -> None:
        """Stands for handlers.signal_execution, registered the same way."""

    extra = registry._changing.get_extra_fields(resource=EXECUTIONS)
    new = storage().build(body=body, extra_fields=extra)
    cause = causes.detect_changing_cause(
        finalizer="overseer.dev/finalizer",
        raw_event={"type": "MODIFIED", "object": dict(body)},  # type: ignore[typeddict-item]
        body=body,
        old=old,
        new=new,
        diff=diffs.diff(old, new),
        resource=EXECUTIONS,
        indices={},
        logger=logging.getLogger(__name__),
        patch=kopf.Patch(),
        memo=kopf.Memo(),
    )
    handlers = registry._changing.get_handlers(cause=cause)
    return cause.reason.value, [h.id for h in handlers]


def test_a_signal_appended_selects_signal_execution_and_a_label_changes_nothing() -> None:
    old = storage().build(body=execution([]), extra_fields=[SIGNALS])
    reason, handlers = selected(old, execution(["SIGTERM"]))
    assert (reason, len(handlers)) == ("update", 1)
    assert handlers[0].endswith("signal_execution/spec.signals"), handlers
    # A label (the settled one) is no change at all: kopf writes nothing for it
    assert selected(old, execution([], **{"overseer.dev/settled": "true"})) == ("noop", [])


def test_an_execution_with_an_older_operator_s_whole_diff_base_calls_no_handler() -> None:
    # Given the diff base an older operator wrote: kopf's whole essence, parameters and all
    body = execution(["SIGTERM"])
    whole = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX).build(body=body)
    # When this operator sees the execution unchanged: a difference (the parameters are
    # gone from the new diff base), and no handler, so kopf only writes the small one
    reason, handlers = selected(whole, body)
    assert (reason, handlers) == ("update", [])
    # And a signal appended since is still seen as one
    reason, handlers = selected(whole, execution(["SIGTERM", "SIGHUP"]))
    assert (reason, len(handlers)) == ("update", 1)


def test_an_execution_never_handled_is_a_creation() -> None:
    assert selected(None, execution([]))[0] == "create"
