"""An OverseerJob's ``lastExecution`` and ``lastStatus``: its newest execution's phase.

:mod:`overseer.operator.executions` reports here each phase an execution reaches;
``kubectl get overseerjobs`` shows both columns.
"""

from __future__ import annotations

from overseer import errors, kube_client
from overseer.core import names
from overseer.crd import job as job_crd


async def report_on_job(
    client: kube_client.KubeClient, namespace: str, job: str, execution_id: str, phase: str
) -> None:
    """Set the OverseerJob's ``lastExecution``/``lastStatus``, unless a newer one reports.

    An older execution ending after a newer one started leaves the job as it is; an
    unchanged status is not written.
    """
    body = await client.get(job_crd.KIND.kind, namespace, job)
    if body is None:
        return
    status = body.get("status") or {}
    last = status.get("lastExecution")
    if last and names.execution_id_order(str(last)) > names.execution_id_order(execution_id):
        return
    if last == execution_id and status.get("lastStatus") == phase:
        return
    try:
        await client.patch_status(
            job_crd.KIND.kind, namespace, job, {"lastExecution": execution_id, "lastStatus": phase}
        )
    except errors.KubeError as error:
        if error.status != 404:
            raise
