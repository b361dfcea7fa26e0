"""Push hook verification, with GitHub's published test vector."""

from __future__ import annotations

import pytest

from overseer import errors
from overseer.core import push_hooks
from overseer.core.push_hooks import Provider

# From GitHub's "Validating webhook deliveries": this secret and payload give this signature.
SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"
SIGNATURE = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_the_signature_is_githubs_published_vector() -> None:
    assert push_hooks.sign(SECRET, BODY) == SIGNATURE


@pytest.mark.parametrize(
    ("headers", "provider", "event", "sync"),
    [
        ({"x-hub-signature-256": f"sha256={SIGNATURE}", "x-github-event": "push"},
         Provider.GITHUB, "push", True),
        ({"x-hub-signature-256": f"sha256={SIGNATURE}", "x-github-event": "ping"},
         Provider.GITHUB, "ping", False),
        ({"x-hub-signature-256": f"sha256={SIGNATURE.upper()}", "x-github-event": "push"},
         Provider.GITHUB, "push", True),
        # Gitea sends both signatures and its own event header
        ({"x-hub-signature-256": f"sha256={SIGNATURE}", "x-gitea-signature": SIGNATURE,
          "x-gitea-event": "push"}, Provider.GITEA, "push", True),
        ({"x-gitea-signature": SIGNATURE, "x-gitea-event": "push"}, Provider.GITEA, "push", True),
        ({"x-gogs-signature": SIGNATURE, "x-gogs-event": "push"}, Provider.GITEA, "push", True),
        ({"x-gitlab-token": SECRET.decode(), "x-gitlab-event": "Push Hook"},
         Provider.GITLAB, "Push Hook", True),
        ({"x-gitlab-token": SECRET.decode(), "x-gitlab-event": "Tag Push Hook"},
         Provider.GITLAB, "Tag Push Hook", True),
        ({"x-gitlab-token": SECRET.decode(), "x-gitlab-event": "Merge Request Hook"},
         Provider.GITLAB, "Merge Request Hook", False),
    ],
)  # fmt: skip
def test_authentic_deliveries_name_their_provider_and_whether_to_sync(
    headers: dict[str, str], provider: Provider, event: str, sync: bool
) -> None:
    assert push_hooks.verify(headers, BODY, SECRET) == push_hooks.Delivery(provider, event, sync)


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"x-hub-signature-256": f"sha256={SIGNATURE[:-1]}0"}, "X-Hub-Signature-256"),
        ({"x-hub-signature-256": SIGNATURE}, "X-Hub-Signature-256"),  # no sha256= prefix
        ({"x-hub-signature-256": "sha1=" + SIGNATURE}, "X-Hub-Signature-256"),
        ({"x-gitea-signature": "0" * 64}, "X-Gitea-Signature"),
        ({"x-gitlab-token": "It's a secret to everybody"}, "X-Gitlab-Token"),
        # a bad signature is final, whatever weaker proof comes with it
        ({"x-hub-signature-256": "sha256=" + "0" * 64, "x-gitlab-token": SECRET.decode()},
         "X-Hub-Signature-256"),
        ({}, "no signature"),
    ],
)  # fmt: skip
def test_forged_or_unsigned_deliveries_are_refused_naming_the_header(
    headers: dict[str, str], named: str
) -> None:
    with pytest.raises(errors.HookSignatureError, match=named):
        push_hooks.verify(headers, BODY, SECRET)


def test_the_body_is_signed_byte_for_byte() -> None:
    headers = {"x-hub-signature-256": f"sha256={SIGNATURE}", "x-github-event": "push"}
    with pytest.raises(errors.HookSignatureError):
        push_hooks.verify(headers, BODY + b"\n", SECRET)


def test_an_empty_secret_never_verifies() -> None:
    with pytest.raises(errors.HookSignatureError, match="empty"):
        push_hooks.verify({"x-gitlab-token": ""}, BODY, b"")
