"""Webhook payloads: the JSON body of one status event, and its exact bytes.

The body keeps the original Overseer's four fields with the original's types (``job``,
``execution`` as a JSON number with the id's exact digits, ``status``, ``metadata`` the
execution's URL) and adds ``executionId`` (the id as text), ``event`` (the idempotency
key), ``time``, ``data`` and ``namespace`` (whose secret signs it: a receiver checks
both, so one tenant's job named like another's never passes for it).
:func:`render_body` writes the bytes that are both sent and signed.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import urllib.parse
from typing import Any, TypedDict

from overseer.core import names
from overseer.crd import execution as execution_
from overseer.crd import types


class Payload(TypedDict):
    """The JSON body of a webhook; field order is the order they are rendered in.

    The original Overseer's four fields come first, with its types: ``execution`` is a
    JSON number (a :class:`~decimal.Decimal` here, so its digits are exactly the id's);
    ``executionId`` is the same id as a string, for receivers that read it as text.
    """

    job: str
    execution: decimal.Decimal
    status: str
    metadata: str
    executionId: str
    event: str
    time: str
    data: Any
    namespace: str


def event_key(execution_uid: str, event: execution_.Event) -> str:
    """The event's global id: the same for every attempt and across operator restarts."""
    local = local_event_id(event)
    digest = hashlib.sha256(f"{execution_uid}\0{local}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def execution_url(api_url: str, job: str, execution_id: str) -> str:
    """The execution's URL on the API: ``{api}/jobs/{url-encoded job name}/{id}``."""
    return f"{api_url.rstrip('/')}/jobs/{urllib.parse.quote(job, safe='')}/{execution_id}"


def build_payload(
    *,
    job: str,
    execution_id: str,
    execution_uid: str,
    event: execution_.Event,
    api_url: str,
    namespace: str,
) -> Payload:
    """The body posted for ``event`` of execution ``execution_id`` of job ``job``.

    ``job`` is the job's display name (its ``name`` in git), not the resource name.
    """
    canonical = names.canonical_execution_id(execution_id)
    return Payload(
        job=job,
        execution=decimal.Decimal(canonical),
        status=event.status,
        metadata=execution_url(api_url, job, canonical),
        executionId=canonical,
        event=event_key(execution_uid, event),
        time=types.rfc3339(event.time),
        data=event.data,
        namespace=namespace,
    )


def render_body(payload: Payload) -> bytes:
    """The exact bytes sent and signed: compact JSON, UTF-8.

    ``json`` would write a Decimal only through a float, which has 15 to 17 significant
    digits: the number token is written from the Decimal's own digits instead.
    """
    fields = []
    for key, value in payload.items():
        if isinstance(value, decimal.Decimal):
            token = format(value, "f")
        else:
            token = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        fields.append(f"{json.dumps(key)}:{token}")
    return ("{" + ",".join(fields) + "}").encode()


def local_event_id(event: execution_.Event) -> str:
    """The id a :class:`Delivery` record names its event by (the execution's own id)."""
    return event.id if event.id else f"{event.status}@{types.rfc3339(event.time)}"
