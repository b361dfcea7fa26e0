"""Which authentic deliveries to act on: their id (one sync per delivery), and the ref
pushed against the ref a repository syncs (``overseer.core.push_hooks``)."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from overseer.core import push_hooks

UUID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-github-delivery": UUID}, UUID),
        ({"x-gitea-delivery": UUID}, UUID),
        ({"x-gitlab-event-uuid": UUID}, UUID),
        ({"x-github-delivery": f" {UUID} "}, UUID),
        ({}, None),
        ({"x-github-delivery": ""}, None),
        ({"x-github-delivery": "x" * 129}, None),
        ({"x-github-delivery": "é"}, None),
        ({"x-github-delivery": "a\nb"}, None),
    ],
)
def test_the_delivery_id(headers: dict[str, str], expected: str | None) -> None:
    assert push_hooks.delivery_id(headers) == expected


GITHUB = {"ref": "refs/heads/main", "repository": {"default_branch": "main"}}
GITLAB = {"ref": "refs/tags/v1", "project": {"default_branch": "trunk"}}


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (json.dumps(GITHUB).encode(), "application/json", ("refs/heads/main", "main")),
        (json.dumps(GITLAB).encode(), None, ("refs/tags/v1", "trunk")),
        (
            urllib.parse.urlencode({"payload": json.dumps(GITHUB)}).encode(),
            "application/x-www-form-urlencoded; charset=utf-8",
            ("refs/heads/main", "main"),
        ),
        (b"not json", "application/json", (None, None)),
        (b"[1, 2]", "application/json", (None, None)),
        (json.dumps({"ref": 3, "repository": "x"}).encode(), None, (None, None)),
    ],
)
def test_the_ref_pushed(body: bytes, content_type: str | None, expected: tuple[str, str]) -> None:
    push = push_hooks.parse_push(body, content_type)
    assert (push.ref, push.default_branch) == expected


@pytest.mark.parametrize(
    ("tracked", "ref", "default", "acted_on"),
    [
        (None, "refs/heads/main", "main", True),  # HEAD: the default branch
        (None, "refs/heads/feature", "main", False),
        (None, "refs/heads/feature", None, True),  # the payload does not say: sync
        ("main", "refs/heads/main", "main", True),
        ("main", "refs/heads/maint", "main", False),
        ("main", "refs/heads/feature/main", None, False),
        ("v1", "refs/tags/v1", None, True),
        ("refs/heads/main", "refs/heads/main", None, True),
        ("refs/heads/main", "refs/tags/main", None, False),
        ("c0ffee" * 6 + "c0ff", "refs/heads/main", "main", False),  # a commit never moves
        ("main", None, None, True),  # no ref in the payload: sync
    ],
)
def test_a_push_to_a_ref_the_repository_does_not_sync_is_ignored(
    tracked: str | None, ref: str | None, default: str | None, acted_on: bool
) -> None:
    assert push_hooks.tracks(tracked, push_hooks.Push(ref, default)) is acted_on
