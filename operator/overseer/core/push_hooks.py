"""Push hooks from git hosts: is a delivery authentic, and does it ask for a sync?

Each host proves a delivery its own way, against the secret configured on both
sides (the repository's ``hookSecretRef``):

- GitHub (and Gitea, which sends it too): ``X-Hub-Signature-256: sha256=<hex>``, the
  HMAC-SHA256 of the raw body keyed with the secret;
- Gitea and Gogs: ``X-Gitea-Signature`` / ``X-Gogs-Signature: <hex>``, the same HMAC
  without the prefix;
- GitLab: ``X-Gitlab-Token: <secret>``, the secret itself.

Every comparison is constant-time. The strongest proof present is checked (the
HMAC headers before GitLab's plain token), and one that fails is final: a request
never passes by presenting a weaker header next to a bad signature. Pure: headers
and body in, a :class:`Delivery` or :class:`~overseer.errors.HookSignatureError` out.

Then which authentic deliveries to act on: :func:`delivery_id` (the host's id, the same
when it delivers again, so a delivery requests one sync) and :func:`tracks` (a push to a
ref the repository does not sync changes nothing).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Mapping

from overseer import errors


class Provider(enum.StrEnum):
    GITHUB = "github"
    GITEA = "gitea"
    GITLAB = "gitlab"


@dataclasses.dataclass(frozen=True)
class Delivery:
    """An authenticated delivery: who sent it, its event, and whether to sync for it."""

    provider: Provider
    event: str
    sync: bool


# Events that mean the repository's content may have changed.
_PUSH_EVENTS = {
    Provider.GITHUB: {"push"},
    Provider.GITEA: {"push"},
    Provider.GITLAB: {"Push Hook", "Tag Push Hook"},
}
_EVENT_HEADERS = {
    Provider.GITHUB: "x-github-event",
    Provider.GITEA: "x-gitea-event",
    Provider.GITLAB: "x-gitlab-event",
}


def sign(secret: bytes, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` keyed with ``secret``, as GitHub and Gitea send it."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secret: bytes) -> Delivery:
    """Check a delivery's proof against ``secret``; ``headers`` with lower-case names."""
    if not secret:
        raise errors.HookSignatureError("the repository's hook secret is empty; set its token")
    expected = sign(secret, body)
    github = headers.get("x-hub-signature-256")
    gitea = headers.get("x-gitea-signature") or headers.get("x-gogs-signature")
    gitlab = headers.get("x-gitlab-token")
    if github is not None:
        given = github.removeprefix("sha256=") if github.startswith("sha256=") else ""
        _check(
            hmac.compare_digest(given.lower().encode(), expected.encode()), "X-Hub-Signature-256"
        )
        provider = Provider.GITEA if "x-gitea-event" in headers else Provider.GITHUB
    elif gitea is not None:
        _check(hmac.compare_digest(gitea.lower().encode(), expected.encode()), "X-Gitea-Signature")
        provider = Provider.GITEA
    elif gitlab is not None:
        _check(hmac.compare_digest(gitlab.encode(), secret), "X-Gitlab-Token")
        provider = Provider.GITLAB
    else:
        raise errors.HookSignatureError(
            "no signature: configure the hook with the repository's secret (GitHub and Gitea "
            "sign with it; GitLab sends it as its secret token)"
        )
    event = headers.get(_EVENT_HEADERS[provider]) or headers.get("x-gogs-event") or ""
    return Delivery(provider, event, event in _PUSH_EVENTS[provider])


def _check(matches: bool, header: str) -> None:
    if not matches:
        raise errors.HookSignatureError(
            f"{header} does not match the repository's hook secret; check that the hook and "
            "the Secret named by spec.hookSecretRef hold the same secret"
        )


# --- which deliveries to act on: one per delivery id, pushes to the tracked ref ---

_DELIVERY_HEADERS = (
    "x-github-delivery",
    "x-gitea-delivery",
    "x-gogs-delivery",
    "x-gitlab-event-uuid",
)
MAX_DELIVERY_ID = 128


@dataclasses.dataclass(frozen=True)
class Push:
    """What a push delivery says it changed (None where the payload does not say)."""

    ref: str | None
    """The ref pushed: ``refs/heads/main``, ``refs/tags/v1``."""
    default_branch: str | None
    """The repository's default branch on the host (what a remote's HEAD names)."""


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """The host's id of this delivery (the same when the host delivers it again), if it
    sends one: ``X-GitHub-Delivery``, ``X-Gitea-Delivery``, ``X-Gitlab-Event-UUID``."""
    for name in _DELIVERY_HEADERS:
        value = (headers.get(name) or "").strip()
        if value and len(value) <= MAX_DELIVERY_ID and value.isprintable() and value.isascii():
            return value
    return None


def parse_push(body: bytes, content_type: str | None) -> Push:
    """The ref and default branch of a push payload: JSON, or GitHub's form encoding
    (``payload=<JSON>``). Lenient: what cannot be read is None."""
    text = body.decode("utf-8", "replace")
    if (content_type or "").split(";")[0].strip() == "application/x-www-form-urlencoded":
        text = urllib.parse.parse_qs(text).get("payload", [""])[0]
    try:
        payload = json.loads(text)
    except ValueError:
        return Push(None, None)
    if not isinstance(payload, dict):
        return Push(None, None)
    ref = payload.get("ref")
    project = payload.get("repository") or payload.get("project") or {}
    default = project.get("default_branch") if isinstance(project, dict) else None
    return Push(
        ref if isinstance(ref, str) and ref else None,
        default if isinstance(default, str) and default else None,
    )


def tracks(tracked: str | None, push: Push) -> bool:
    """Whether a push may change what a repository with ``spec.ref`` ``tracked`` syncs.

    Unset: the remote's HEAD, its default branch (any push when the payload does not
    name it). ``refs/...``: that ref exactly. A bare name: that branch or that tag (a
    commit id matches no push). A payload that names no ref is acted on.
    """
    if push.ref is None:
        return True
    if tracked is None:
        return push.default_branch is None or push.ref == f"refs/heads/{push.default_branch}"
    if tracked.startswith("refs/"):
        return push.ref == tracked
    return push.ref in (f"refs/heads/{tracked}", f"refs/tags/{tracked}")
