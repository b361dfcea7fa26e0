"""The list-then-watch protocol of ``overseer.kube_watch`` against scripted server answers.

The real API server is exercised by ``tests/e2e/test_api_cache.py``; here the cases
a healthy cluster rarely shows on demand: pages, bookmarks, 410 as a status and as an
event, a watch the server ends.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from overseer import errors, kube_watch

PATH = "/apis/overseer.dev/v1alpha1/namespaces/ns/overseerjobs"
TIMEOUT = httpx2.Timeout(5.0, read=30.0)


def obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version}}


def lines(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


class Server:
    """Answers requests from a script of (check, response) steps, in order."""

    def __init__(self, steps: list[tuple[dict[str, str], httpx2.Response]]) -> None:
        self.steps = steps
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        params = dict(request.url.params)
        self.requests.append(params)
        if not self.steps:
            raise httpx2.ConnectError("script over")
        expected, response = self.steps.pop(0)
        for key, value in expected.items():
            assert params.get(key) == value, (params, expected)
        return response


async def take(server: Server, count: int, *, paged: bool = False) -> list[tuple[str, Any]]:
    """The first ``count`` events (fewer when the script ends first)."""
    events: list[tuple[str, Any]] = []
    transport = httpx2.MockTransport(server)
    async with httpx2.AsyncClient(transport=transport, base_url="http://k") as http:
        try:
            async for event in kube_watch.follow(
                http, PATH, "OverseerJob", "overseer.dev/v1", TIMEOUT, paged=paged
            ):
                events.append(event)
                if len(events) == count:
                    break
        except httpx2.ConnectError:
            pass
    return events


async def test_pages_bookmarks_and_resuming_from_the_last_version() -> None:
    server = Server(
        [
            (
                {"limit": "500"},
                httpx2.Response(
                    200,
                    json={
                        "metadata": {"continue": "p2", "resourceVersion": "9"},
                        "items": [obj("a", "3")],
                    },
                ),
            ),
            (
                {"continue": "p2"},
                httpx2.Response(
                    200, json={"metadata": {"resourceVersion": "10"}, "items": [obj("b", "4")]}
                ),
            ),
            (
                {"watch": "1", "resourceVersion": "10"},
                httpx2.Response(
                    200,
                    content=lines(
                        {"type": "ADDED", "object": obj("c", "11")},
                        {"type": "BOOKMARK", "object": obj("", "15")},
                    ),
                ),
            ),
            # The server ended the watch: it resumes after the bookmark, without a LIST.
            (
                {"watch": "1", "resourceVersion": "15"},
                httpx2.Response(200, content=lines({"type": "DELETED", "object": obj("a", "16")})),
            ),
        ]
    )
    events = await take(server, 3)
    kind, snapshot = events[0]
    assert kind == "LIST"
    assert [i["metadata"]["name"] for i in snapshot["items"]] == ["a", "b"]
    assert snapshot["items"][0]["kind"] == "OverseerJob"
    assert [(k, o["metadata"]["name"]) for k, o in events[1:]] == [("ADDED", "c"), ("DELETED", "a")]


async def test_paged_the_snapshot_comes_page_by_page_and_starts_again_when_its_token_expires() -> (
    None
):
    server = Server(
        [
            (
                {"limit": "500"},
                httpx2.Response(
                    200, json={"metadata": {"continue": "p2"}, "items": [obj("a", "3")]}
                ),
            ),
            ({"continue": "p2"}, httpx2.Response(410, json={"kind": "Status", "code": 410})),
            (
                {"limit": "500"},
                httpx2.Response(
                    200, json={"metadata": {"continue": "p3"}, "items": [obj("b", "4")]}
                ),
            ),
            (
                {"continue": "p3"},
                httpx2.Response(
                    200, json={"metadata": {"resourceVersion": "12"}, "items": [obj("c", "5")]}
                ),
            ),
            (
                {"watch": "1", "resourceVersion": "12"},
                httpx2.Response(200, content=lines({"type": "ADDED", "object": obj("d", "13")})),
            ),
        ]
    )
    events = await take(server, 8, paged=True)
    shown = [(k, [i["metadata"]["name"] for i in o.get("items", ())]) for k, o in events]
    assert shown == [
        ("LISTING", []),
        ("PAGE", ["a"]),
        ("LISTING", []),  # the token expired: a new snapshot, from its first page
        ("PAGE", ["b"]),
        ("PAGE", ["c"]),
        ("LISTED", []),
        ("ADDED", []),
    ]
    assert events[3][1]["items"][0]["kind"] == "OverseerJob"
    assert events[5][1]["metadata"]["resourceVersion"] == "12"
    assert events[6][1]["metadata"]["name"] == "d"


@pytest.mark.parametrize(
    "gone",
    [
        httpx2.Response(410, json={"kind": "Status", "code": 410}),
        httpx2.Response(200, content=lines({"type": "ERROR", "object": {"code": 410}})),
    ],
    ids=["status", "event"],
)
async def test_an_expired_version_lists_again(gone: httpx2.Response) -> None:
    server = Server(
        [
            (
                {"limit": "500"},
                httpx2.Response(
                    200, json={"metadata": {"resourceVersion": "5"}, "items": [obj("a", "5")]}
                ),
            ),
            ({"watch": "1", "resourceVersion": "5"}, gone),
            (
                {"limit": "500"},
                httpx2.Response(
                    200, json={"metadata": {"resourceVersion": "50"}, "items": [obj("b", "50")]}
                ),
            ),
        ]
    )
    events = await take(server, 2)
    assert [k for k, _ in events] == ["LIST", "LIST"]
    assert events[1][1]["items"][0]["metadata"]["name"] == "b"


async def test_a_refusal_is_raised_with_its_status() -> None:
    server = Server(
        [({"limit": "500"}, httpx2.Response(403, json={"message": "forbidden: no list"}))]
    )
    with pytest.raises(errors.KubeError) as raised:
        await take(server, 1)
    assert raised.value.status == 403
    assert "forbidden: no list" in str(raised.value)
