"""``POST /hooks/git/{repository}``: push hooks from GitHub, Gitea and GitLab request a sync.

No bearer token (git hosts cannot send one): the delivery's signature is checked
against the ``token`` of the Secret the repository names in ``spec.hookSecretRef``
(``overseer.core.push_hooks``), and a push requests a sync the way ``POST /sync``
does. Other events (``ping``, merge requests) are acknowledged and change nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from overseer import errors
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


@router.post("/hooks/git/{repository}", status_code=202)
async def receive_push(
    *,
    request: Request,
    kube_api: deps.KubeDep,
    settings: deps.SettingsDep,
    namespace: deps.NamespaceDep,
    repository: Annotated[
        str, Path(min_length=1, max_length=253, description="The OverseerRepository's name.")
    ],
) -> schemas.HookReceipt:
    """Check a push hook's signature, then request a sync of the repository."""
    if not settings.git_hooks:
        raise errors.NotFoundError("push hooks are turned off in this API (api.gitHooks.enabled)")
    body = await _read(request)
    secret = await _hook_secret(kube_api, namespace, repository)
    headers = {name.lower(): value for name, value in request.headers.items()}
    delivery = push_hooks.verify(headers, body, secret)
    requested = None
    if delivery.sync:
        who = f"hook:{delivery.provider.value}"
        requested = await sync_requests.request_sync(kube_api, namespace, repository, who)
    return schemas.HookReceipt(
        repository=repository,
        namespace=namespace,
        provider=delivery.provider.value,
        event=delivery.event,
        sync_requested=requested is not None,
    )


async def _read(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PAYLOAD:
            raise errors.PayloadTooLargeError(
                f"a push hook's payload may hold {MAX_PAYLOAD // 2**20} MiB at most"
            )
    return bytes(body)


async def _hook_secret(kube_api: deps.KubeApi, namespace: str, repository: str) -> bytes:
    """The repository's hook secret; the same 404 whether it or its secret is missing."""
    gone = errors.NotFoundError(
        f"no repository {repository!r} accepting push hooks in namespace {namespace!r}: "
        "its spec.hookSecretRef must name a Secret with a 'token' key"
    )
    found = await kube_api.get(repository_.KIND.kind, namespace, repository)
    ref = ((found or {}).get("spec") or {}).get("hookSecretRef") or {}
    if not ref.get("name"):
        raise gone
    try:
        data = await kube_api.read_secret(namespace, str(ref["name"]))
    except errors.KubeSecretNotFoundError:
        raise gone from None
    if not data.get("token"):
        raise gone
    return data["token"].strip()
