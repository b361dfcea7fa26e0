"""``POST /hooks/git/{repository}``: push hooks from GitHub, Gitea and GitLab request a sync.

No bearer token (git hosts cannot send one): the delivery's signature is checked
against the ``token`` of the Secret the repository names in ``spec.hookSecretRef``
(``overseer.core.push_hooks``), and a push requests a sync the way ``POST /sync``
does. Other events (``ping``, merge requests) are acknowledged and change nothing,
and so is a push to a ref the repository does not sync (``ignored`` says so).

A host delivers again what it thinks was lost, under the same delivery id
(``X-GitHub-Delivery``, ``X-Gitea-Delivery``, ``X-Gitlab-Event-UUID``): the id is kept in
the cluster like an ``Idempotency-Key`` (``overseer_api.idempotency``), so a delivery
requests one sync however often it arrives, across replicas and restarts; the repeats
are answered 200 with ``duplicate``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from overseer import errors
from overseer.core import idempotency as idempotency_core
from overseer.core import push_hooks
from overseer.crd import repository as repository_
from overseer_api import deps, sync_requests
from overseer_api.schemas import hooks as schemas
from overseer_api.schemas import problems

MAX_PAYLOAD = 25 * 1024 * 1024
"""GitHub's own cap on a delivery's size."""

router = APIRouter(
    tags=["hooks"],
    responses={
        401: {"model": problems.Problem, "description": "Missing or wrong signature."},
        404: {"model": problems.Problem, "description": "No repository accepting push hooks."},
        413: {"model": problems.Problem, "description": "The payload is too large."},
    },
)


@router.post(
    "/hooks/git/{repository}",
    status_code=202,
    responses={200: {"description": "A delivery id received before: nothing done again."}},
)
async def receive_push(
    *,
    request: Request,
    response: Response,
    state: deps.StateDep,
    namespace: deps.NamespaceDep,
    repository: Annotated[
        str, Path(min_length=1, max_length=253, description="The OverseerRepository's name.")
    ],
) -> schemas.HookReceipt:
    """Check a push hook's signature, then request a sync of the repository: once per
    delivery id, and only for a push to the ref it syncs."""
    if not state.settings.git_hooks:
        raise errors.NotFoundError("push hooks are turned off in this API (api.gitHooks.enabled)")
    body = await _read(request)
    secret, tracked = await _hook_secret(state.kube, namespace, repository)
    headers = {name.lower(): value for name, value in request.headers.items()}
    delivery = push_hooks.verify(headers, body, secret)
    receipt = schemas.HookReceipt(
        repository=repository,
        namespace=namespace,
        provider=delivery.provider.value,
        event=delivery.event,
        sync_requested=False,
        delivery=push_hooks.delivery_id(headers),
    )
    if not delivery.sync:
        return receipt
    push = push_hooks.parse_push(body, headers.get("content-type"))
    if not push_hooks.tracks(tracked, push):
        receipt.ignored = f"{push.ref} is not the ref {repository} syncs ({tracked or 'HEAD'})"
        return receipt

    async def request_sync() -> str:
        who = f"hook:{delivery.provider.value}"
        await sync_requests.request_sync(state.kube, namespace, repository, who)
        return receipt.model_copy(update={"sync_requested": True}).model_dump_json()

    key = f"{delivery.provider.value}:{receipt.delivery}" if receipt.delivery else None
    digest = idempotency_core.request_digest(
        "POST", request.url.path, {"sha256": hashlib.sha256(body).hexdigest()}
    )
    outcome = await state.idempotency.run(
        namespace, f"hook:{repository}", key, digest, request_sync
    )
    if outcome.replayed:
        response.status_code = 200
        return receipt.model_copy(update={"duplicate": True})
    return schemas.HookReceipt.model_validate_json(outcome.result)


async def _read(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PAYLOAD:
            raise errors.PayloadTooLargeError(
                f"a push hook's payload may hold {MAX_PAYLOAD // 2**20} MiB at most"
            )
    return bytes(body)


async def _hook_secret(
    kube_api: deps.KubeApi, namespace: str, repository: str
) -> tuple[bytes, str | None]:
    """The repository's hook secret and ``spec.ref``; the same 404 whether the repository
    or its secret is missing."""
    gone = errors.NotFoundError(
        f"no repository {repository!r} accepting push hooks in namespace {namespace!r}: "
        "its spec.hookSecretRef must name a Secret with a 'token' key"
    )
    found = await kube_api.get(repository_.KIND.kind, namespace, repository)
    spec = (found or {}).get("spec") or {}
    ref = spec.get("hookSecretRef") or {}
    if not ref.get("name"):
        raise gone
    try:
        data = await kube_api.read_secret(namespace, str(ref["name"]))
    except errors.KubeSecretNotFoundError:
        raise gone from None
    if not data.get("token"):
        raise gone
    tracked = spec.get("ref")
    return data["token"].strip(), str(tracked) if tracked else None
