"""Signals requested through an execution reach its job: ``overseer-signal`` run by exec.

A request is an entry appended to ``spec.signals`` (by the API, or ``kubectl patch``).
Each observation of the execution (:func:`overseer.operator.executions.observe_execution`,
under the execution's lock) ends with :meth:`SignalSender.deliver`, which plans with
:func:`overseer.core.signals.plan_signals` and, for each request not handled yet:

- sends it while the job container runs: ``pods/exec`` of
  ``/opt/overseer/library/bin/overseer-signal SIGNAME`` in the ``job`` container, which
  makes the supervisor (PID 1) signal the job's process group, ``SIGKILL`` included;
- refuses an unknown signal (the CRD's pattern admits ``SIGFOO``), at once;
- records a request to a finished execution as not delivered;
- leaves it for later while the container is not running yet.

Each outcome is appended to ``status.signalDeliveries`` and gets a Kubernetes Event
(``SignalSent``, ``SignalRefused``, ``SignalNotDelivered``, ``SignalFailed``). A
request with a record is never planned again, so an operator restart sends nothing
twice. ``overseer-signal`` killed under the exec (exit status above 128) means the
container ended while it waited for the supervisor's answer: the job ended as asked,
so the request counts as sent. Sending fails for good (a ``Failed`` record) when the
command says it cannot (exit status 2 to 128, HTTP 403: nothing would change by
retrying) or after ``max_attempts`` tries; other failures (the API server, the
supervisor not listening yet) raise :class:`overseer.errors.KubeError`, so the
observation is tried again later.

Once only, even across an operator killed between sending and recording: the exec runs
``overseer-signal`` under :data:`ONCE`, which first creates a marker file named after the
request (a hash of the execution's uid, the request's index and time) in the pod's own
``/tmp``, atomically. A marker already there means an earlier try got as far as sending:
nothing is sent, and the request is recorded as sent. A send that fails removes its
marker, so that a later try can send.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from overseer import errors, kube_client
from overseer.core import execution_job
from overseer.core import signals as signals_
from overseer.crd import base
from overseer.crd import execution as execution_
from overseer.operator import events, metrics

log = logging.getLogger(__name__)

MAX_QUOTED = 500
"""Characters of overseer-signal's stderr quoted in a signal delivery's message."""

COMMAND = f"{execution_job.LIBRARY_ROOT}/bin/overseer-signal"
PYTHON = "/usr/bin/python3"
"""The image's Python, which ``overseer-signal`` itself runs with."""
ONCE = """\
import os, subprocess, sys
marker, command = sys.argv[1], sys.argv[2:]
try:
    os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
except FileExistsError:
    print("already sent")
    sys.exit(0)
code = subprocess.call(command)
code = 128 - code if code < 0 else code
if 0 < code <= 128:
    os.unlink(marker)
sys.exit(code)
"""
"""Run ``overseer-signal`` unless a marker says the request was sent already."""
ALREADY_SENT = b"already sent"
SUPERVISOR_TIMEOUT = 10.0
"""How long ``overseer-signal`` waits for the supervisor's answer."""
EXEC_TIMEOUT = 30.0
"""How long the whole exec may take."""

REMEMBERED = 10_000
"""How many handled requests the process remembers (memory stays bounded)."""

SENT = "SignalSent"
REFUSED = "SignalRefused"
NOT_DELIVERED = "SignalNotDelivered"
FAILED = "SignalFailed"


_Id = tuple[str, str, int, str, datetime]
"""A request of one execution: namespace, name, index, signal, requestedAt."""


def _ident(
    namespace: str,
    name: str,
    index: int,
    request: execution_.SignalRequest | execution_.SignalDelivery,
) -> _Id:
    when = request.requested_at
    return namespace, name, index, request.signal, when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclasses.dataclass
class SignalSender:
    """Delivers requested signals; remembers, in this process, what it did and tried.

    The status is the record that survives restarts; the memory only keeps a request
    from being handled (sent, reported) again if writing its record was lost (an older
    CRD that prunes the field, say): the record is written again instead. It also
    bounds the tries of a send that keeps failing.
    """

    max_attempts: int = 5
    _done: dict[_Id, execution_.SignalDelivery] = dataclasses.field(default_factory=dict)
    _attempts: dict[_Id, int] = dataclasses.field(default_factory=dict)
    _last_error: dict[_Id, str] = dataclasses.field(default_factory=dict)

    async def deliver(
        self,
        client: kube_client.KubeClient,
        post_event: events.EventPoster,
        body: Mapping[str, Any],
        *,
        requests: Sequence[execution_.SignalRequest],
        status: execution_.ExecutionStatus,
        pod: Mapping[str, Any] | None,
    ) -> None:
        """Handle every request of ``spec.signals`` that can be handled now; record them.

        ``status`` is the execution's status as just written, ``pod`` its newest pod
        (None when gone). Raises :class:`errors.KubeError` when a send should be tried
        again later; what was done before it is recorded first.
        """
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        target = signals_.derive_target(status.phase, pod, execution_job.CONTAINER)
        steps = signals_.plan_signals(requests, status.signal_deliveries, target)
        records: list[execution_.SignalDelivery] = []
        try:
            for step in steps:
                ident = _ident(namespace, name, step.index, step.request)
                record = self._done.get(ident)
                if record is None:
                    record = await self._handle(
                        client, post_event, body, step=step, pod=pod, ident=ident
                    )
                    self._remember(ident, record)
                records.append(record)
        finally:
            if records:
                recorded = [*status.signal_deliveries, *records]
                await client.patch_status(
                    execution_.KIND.kind,
                    namespace,
                    name,
                    {"signalDeliveries": [base.to_body(r) for r in recorded]},
                )
                for record in records:
                    handled = _ident(namespace, name, record.index, record)
                    self._attempts.pop(handled, None)
                    self._last_error.pop(handled, None)

    def _remember(self, ident: _Id, record: execution_.SignalDelivery) -> None:
        self._done[ident] = record
        while len(self._done) > REMEMBERED:
            del self._done[next(iter(self._done))]  # the oldest: its record is long written

    async def _handle(
        self,
        client: kube_client.KubeClient,
        post_event: events.EventPoster,
        body: Mapping[str, Any],
        *,
        step: signals_.Step,
        pod: Mapping[str, Any] | None,
        ident: _Id,
    ) -> execution_.SignalDelivery:
        record = await self._outcome(client, post_event, body, step=step, pod=pod, ident=ident)
        metrics.signal_handled(record.result)
        return record

    async def _outcome(
        self,
        client: kube_client.KubeClient,
        post_event: events.EventPoster,
        body: Mapping[str, Any],
        *,
        step: signals_.Step,
        pod: Mapping[str, Any] | None,
        ident: _Id,
    ) -> execution_.SignalDelivery:
        key = f"{ident[0]}/{ident[1]}"
        if step.action == "refuse":
            log.warning("execution %s: spec.signals[%d] refused: %s", key, step.index, step.message)
            post_event(body, "Warning", REFUSED, f"spec.signals[{step.index}]: {step.message}")
            return signals_.build_delivery(step, datetime.now(UTC))
        if step.action == "skip":
            if ident in self._last_error:
                # A try failed without an answer, and then the job ended: maybe because of it.
                message = (
                    f"{step.signal} was being sent when the execution ended; it may have"
                    f" reached the job (the last try: {self._last_error[ident]})"
                )
                step = dataclasses.replace(step, message=message)
            log.info("execution %s: %s", key, step.message)
            post_event(body, "Warning", NOT_DELIVERED, step.message)
            return signals_.build_delivery(step, datetime.now(UTC))
        assert step.signal is not None and pod is not None, "a send is planned for a running pod"
        uid = str(body["metadata"].get("uid") or "")
        failure = await self._send(client, ident, str(pod["metadata"]["name"]), step.signal, uid)
        record = signals_.build_delivery(step, datetime.now(UTC), failed=failure)
        if failure is None:
            log.info("execution %s: sent %s to the job", key, step.signal)
            requested = record.requested_at.isoformat()
            post_event(
                body,
                "Normal",
                SENT,
                f"sent {step.signal} to the job's process group (requested at {requested})",
            )
        else:
            log.warning("execution %s: %s", key, failure)
            post_event(body, "Warning", FAILED, failure)
        return record

    async def _send(
        self, client: kube_client.KubeClient, ident: _Id, pod: str, signal: str, uid: str
    ) -> str | None:
        """Run overseer-signal (once: :data:`ONCE`); None when sent, the reason it never
        will be otherwise.

        Raises :class:`errors.KubeError` for a failure worth another try.
        """
        command = send_command(ident, uid, signal)
        tries = self._attempts.get(ident, 0) + 1
        self._attempts[ident] = tries
        last = tries >= self.max_attempts
        try:
            result = await client.exec_in_pod(
                ident[0], pod, execution_job.CONTAINER, command, within=EXEC_TIMEOUT
            )
        except errors.KubeError as error:
            if error.status == 403 or last:
                return f"{signal} could not be sent: {error.message}"
            self._last_error[ident] = error.message
            raise
        if result.exit_code == 0:
            if result.stdout.strip() == ALREADY_SENT:
                log.info("execution %s/%s: %s was sent already", ident[0], ident[1], signal)
            return None
        if result.exit_code > 128:
            # overseer-signal was itself killed: the container ended (PID 1 exited, the
            # kernel killed what was left) between the supervisor acting on the request
            # and its answer. The job ended as asked; there is nothing to send again.
            log.info(
                "execution %s/%s: the job ended while %s was being confirmed (exit %d)",
                ident[0],
                ident[1],
                signal,
                result.exit_code,
            )
            return None
        said = (result.stderr.decode(errors="replace").strip() or result.message)[:MAX_QUOTED]
        if result.truncated:
            said += " (its output was cut at the bound)"
        reason = f"{signal} could not be sent: overseer-signal exited {result.exit_code}: {said}"
        if result.exit_code == 1 and not last:
            # The supervisor not listening yet (just started) or already gone (the job
            # just ended): the next observation knows which.
            self._last_error[ident] = reason
            raise errors.KubeError(reason)
        return reason


def send_command(ident: _Id, uid: str, signal: str) -> list[str]:
    """The exec that sends ``signal`` for the request ``ident`` of execution ``uid``, once."""
    namespace, name, index, _, requested_at = ident
    request = f"{uid or namespace + '/' + name}:{index}:{requested_at.isoformat()}"
    marker = (
        f"{execution_job.TMP}/.overseer-signal-{hashlib.sha256(request.encode()).hexdigest()[:32]}"
    )
    return [
        PYTHON,
        "-I",
        "-c",
        ONCE,
        marker,
        COMMAND,
        "--timeout",
        f"{SUPERVISOR_TIMEOUT:g}",
        signal,
    ]
