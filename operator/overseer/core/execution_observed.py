"""Which Job and pod an observation of an execution is about: the Observed the rules read.

Pure. The operator lists the execution's Job and the pods carrying its label, and a
watch event may bring a pod (or the last state of a deleted one);
:func:`build_observed` picks the Job's own newest pod and says whether it is gone.
:func:`job_is_stuck` and :func:`killed_but_retried` say when an ended execution's Job
must be deleted to stop it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from overseer.core import execution_job, execution_phase
from overseer.crd import execution as execution_

FINISHED_JOB = frozenset({"Complete", "SuccessCriteriaMet", "Failed", "FailureTarget"})
"""Job conditions after which the Job starts no other pod."""


Owner = Literal["ours", "earlier", "other"]


def owner_of(obj: Mapping[str, Any], uid: str, name: str) -> Owner:
    """Whose a Job (or Secret) named after execution ``name`` is: this execution's
    (``uid``), an earlier execution's of the same name (deleted, its objects awaiting the
    garbage collector), or something else's. Never judged by the name alone."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == execution_.KIND.kind and ref.get("uid") == uid:
            return "ours"
        if ref.get("kind") == execution_.KIND.kind and ref.get("name") == name:
            return "earlier"
    return "other"


def build_observed(
    name: str,
    job: Mapping[str, Any] | None,
    pods: Iterable[Mapping[str, Any]],
    event_pod: Mapping[str, Any] | None = None,
    *,
    pod_deleted: bool = False,
    previous: execution_.ExecutionStatus | None = None,
    uid: str | None = None,
) -> execution_phase.Observed:
    """What :func:`derive_phase` is given: the Job and the newest pod of the execution.

    ``pods`` are those listed by the execution's label; only the Job's own count (a pod
    that merely carries the label could otherwise fake an outcome). ``event_pod`` is
    the pod a watch event was about: its last state when ``pod_deleted``. A pod the
    status names that is no longer there, or a recorded Job that vanished, is gone.
    A pod labelled for another execution ``uid`` (an earlier one of the same name) is
    never this one's.
    """
    listed = {_uid(p): p for p in pods if _belongs(p, name, job, uid)}
    gone_uid = None
    if event_pod is not None and _belongs(event_pod, name, job, uid):
        if pod_deleted:
            gone_uid = _uid(event_pod)
            listed[gone_uid] = event_pod
        else:
            listed.setdefault(_uid(event_pod), event_pod)
    if listed:
        newest = max(listed.values(), key=_age_key)
        gone = gone_uid is not None and _uid(newest) == gone_uid
        return execution_phase.Observed(job=job, pod=newest, pod_gone=gone)
    previous = previous or execution_.ExecutionStatus()
    if previous.pod_name is not None:
        return execution_phase.Observed(job=job, pod_name=previous.pod_name, pod_gone=True)
    if previous.job_name is not None and job is None:
        return execution_phase.Observed(job=None, pod_gone=True)
    return execution_phase.Observed(job=job)


def _uid(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("uid") or metadata.get("name"))


def _age_key(pod: Mapping[str, Any]) -> tuple[str, str]:
    metadata = pod.get("metadata") or {}
    return str(metadata.get("creationTimestamp") or ""), str(metadata.get("name") or "")


def _belongs(
    pod: Mapping[str, Any], name: str, job: Mapping[str, Any] | None, uid: str | None = None
) -> bool:
    """The pod's controller is the execution's Job (that very Job, when it is known)."""
    labelled = ((pod.get("metadata") or {}).get("labels") or {}).get(
        execution_job.EXECUTION_UID_LABEL
    )
    if uid is not None and labelled is not None and labelled != uid:
        return False
    for owner in (pod.get("metadata") or {}).get("ownerReferences") or ():
        if owner.get("controller") and owner.get("kind") == "Job":
            if owner.get("name") != execution_job.job_name(name):
                return False
            return job is None or owner.get("uid") == job["metadata"].get("uid")
    return False


def describe(observed: execution_phase.Observed, pod_name: str | None) -> str:
    """The Job and pod observed, for the debug log."""
    pod_phase = (observed.pod or {}).get("status", {}).get("phase")
    job = f"Job present ({true_conditions(observed.job)})" if observed.job else "Job absent"
    return f"{job}, pod {pod_name} ({pod_phase}{', gone' if observed.pod_gone else ''})"


def true_conditions(job: Mapping[str, Any] | None) -> str:
    conditions = ((job or {}).get("status") or {}).get("conditions") or ()
    return ",".join(str(c.get("type")) for c in conditions if c.get("status") == "True")


def killed_but_retried(status: execution_.ExecutionStatus, job: Mapping[str, Any]) -> bool:
    """A killed execution whose Job has retries left would start another pod: stop it."""
    if status.phase != "Killed" or not (job.get("spec") or {}).get("backoffLimit"):
        return False
    conditions = (job.get("status") or {}).get("conditions") or ()
    return not any(c.get("type") in FINISHED_JOB and c.get("status") == "True" for c in conditions)


def job_is_stuck(job: Mapping[str, Any], pod: Mapping[str, Any] | None) -> bool:
    """The Job has not finished and its job container never started: deleting the Job
    loses no output. (A pod's phase can still say Pending after its container ended.)"""
    conditions = (job.get("status") or {}).get("conditions") or ()
    if any(c.get("type") in FINISHED_JOB and c.get("status") == "True" for c in conditions):
        return False
    if pod is None:
        return False  # gone, or not created yet: nothing runs that deleting would stop
    status = pod.get("status") or {}
    if status.get("phase") != "Pending":
        return False
    for container in status.get("containerStatuses") or ():
        state = container.get("state") or {}
        if container.get("name") == execution_job.CONTAINER and (
            "running" in state or "terminated" in state
        ):
            return False
    return True
