"""The Range header (RFC 9110, section 14): one range served, the rest whole or refused."""

from __future__ import annotations

import pytest

from overseer.core import byte_range
from overseer.core.byte_range import Part, Unsatisfiable, Whole

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", Part(0, 1, SIZE)),
        ("bytes=0-499", Part(0, 500, SIZE)),
        ("bytes=500-999", Part(500, 1000, SIZE)),
        ("bytes=500-", Part(500, 1000, SIZE)),
        ("bytes=999-", Part(999, 1000, SIZE)),
        ("bytes=500-5000", Part(500, 1000, SIZE)),  # last past the end: cut to the end
        ("bytes=-1", Part(999, 1000, SIZE)),
        ("bytes=-500", Part(500, 1000, SIZE)),
        ("bytes=-5000", Part(0, 1000, SIZE)),  # a suffix longer than the output: all of it
        ("BYTES=1-2", Part(1, 3, SIZE)),  # the unit is case-insensitive
        (" bytes = 1-2 ", Part(1, 3, SIZE)),
        ("bytes=1-2, ", Part(1, 3, SIZE)),  # an empty list element is ignored
        ("bytes=0-99999999999999999999999", Part(0, 1000, SIZE)),
    ],
)
def test_one_range_is_served_as_a_part(header: str, expected: Part) -> None:
    assert byte_range.parse_range(header, SIZE) == expected


def test_content_range_names_the_first_and_last_byte_and_the_size() -> None:
    assert Part(0, 500, SIZE).content_range == "bytes 0-499/1000"
    assert Part(999, 1000, SIZE).content_range == "bytes 999-999/1000"
    assert Unsatisfiable("why", 42).content_range == "bytes */42"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "items=0-5",  # an unknown unit is ignored
        "bytes=0-1,5-6",  # several ranges: the whole output
        "bytes=0-1,2000-",  # one of them satisfiable is enough
        "bytes=5000-,-5",
    ],
)
def test_no_range_another_unit_or_several_ranges_send_the_whole(header: str | None) -> None:
    assert byte_range.parse_range(header, SIZE) == Whole()


def test_an_if_range_sends_the_whole_for_want_of_a_validator() -> None:
    assert byte_range.parse_range("bytes=0-1", SIZE, if_range=True) == Whole()


@pytest.mark.parametrize(
    ("header", "size", "reason"),
    [
        ("bytes=1000-", SIZE, "no range starts before the end of the output (1000 bytes)"),
        ("bytes=1000-1001", SIZE, "no range starts before the end"),
        ("bytes=0-", 0, "no range starts before the end of the output (0 bytes)"),
        ("bytes=-0", SIZE, "no range starts before the end"),
        ("bytes=2000-,3000-", SIZE, "no range starts before the end"),
    ],
)
def test_a_range_past_the_end_is_unsatisfiable(header: str, size: int, reason: str) -> None:
    plan = byte_range.parse_range(header, size)
    assert isinstance(plan, Unsatisfiable)
    assert reason in plan.reason
    assert plan.content_range == f"bytes */{size}"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("bytes=5-1", "its last byte is before its first"),
        ("bytes=a-b", "malformed range 'a-b'"),
        ("bytes=-", "malformed range '-'"),
        ("bytes=+1-2", "malformed"),
        ("bytes=1_0-20", "malformed"),
        ("bytes=1-2-3", "malformed"),
        ("bytes=0-1,x", "malformed range 'x'"),
        ("bytes=", "names no range"),
        ("bytes=,", "names no range"),
        ("0-1", "is not unit=ranges"),
        ("", "is not unit=ranges"),
    ],
)
def test_a_malformed_range_is_refused_saying_why(header: str, reason: str) -> None:
    plan = byte_range.parse_range(header, SIZE)
    assert isinstance(plan, Unsatisfiable)
    assert reason in plan.reason
    assert repr(header) in plan.reason


def test_a_suffix_of_an_empty_output_is_all_of_it() -> None:
    assert byte_range.parse_range("bytes=-5", 0) == Whole()
