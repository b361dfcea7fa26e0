"""Job names in paths (``%2F`` kept inside a segment) and page cursors."""

from __future__ import annotations

import urllib.parse

import pytest

from overseer import errors
from overseer_api import pagination, paths


@pytest.mark.parametrize(
    ("raw", "routed", "name"),
    [
        (b"/jobs/A%20job", "/jobs/A job", "A job"),
        (b"/jobs/a%2Fb/1.000000", "/jobs/a%2Fb/1.000000", "a/b"),
        (b"/jobs/100%25", "/jobs/100%25", "100%"),
        (b"/jobs/%2F..%2F", "/jobs/%2F..%2F", "/../"),
        (b"/jobs/%C3%A9", "/jobs/\u00e9", "\u00e9"),
    ],
)
def test_routing_keeps_each_segment_whole(raw: bytes, routed: str, name: str) -> None:
    assert paths.routing_path(raw) == routed
    assert paths.segment(routed.split("/")[2]) == name


@pytest.mark.parametrize(
    "raw", [b"/jobs/A%20job", b"/jobs/%C3%A9/1.0", b"/jobs/a%3Fb%23c", b"/jobs/%ff%FE"]
)
def test_without_an_escaped_slash_or_percent_the_decoded_path_is_already_right(raw: bytes) -> None:
    # The middleware leaves such paths as the server decoded them (no rewrite per request).
    decoded = urllib.parse.unquote(raw.decode("ascii"))
    assert not paths.needs_routing_path(raw, decoded)
    assert paths.routing_path(raw) == decoded


@pytest.mark.parametrize(
    "raw", [b"/jobs/a%2fb", b"/jobs/a%2Fb", b"/jobs/100%25", b"/jobs/x%2", b"/jobs/%%341"]
)
def test_an_escaped_slash_or_percent_is_routed_on_the_raw_path(raw: bytes) -> None:
    decoded = urllib.parse.unquote(raw.decode("ascii"))
    assert paths.needs_routing_path(raw, decoded)
    name = paths.segment(paths.routing_path(raw).split("/")[2])
    assert name == urllib.parse.unquote(raw.decode("ascii").split("/")[2])


def test_a_cursor_round_trips_and_a_foreign_one_is_refused() -> None:
    assert pagination.decode(pagination.encode("job é")) == "job é"
    assert pagination.decode(None) is None
    for bad in ("not-a-cursor", pagination.encode("x")[:-3], "e30"):
        with pytest.raises(errors.InvalidRequestError):
            pagination.decode(bad)
