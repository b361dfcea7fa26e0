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
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
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
