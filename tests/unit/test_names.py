"""Resource names from display names, execution ids from times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from overseer.core import names

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def assert_label(name: str) -> None:
    assert len(name) <= 63, name
    assert DNS_LABEL.fullmatch(name), name


@pytest.mark.parametrize(
    ("display", "slug"),
    [
        ("A job", "a-job"),
        ("Nightly backup", "nightly-backup"),
        ("Crème brûlée at 5", "creme-brulee-at-5"),
        ("Straße", "strasse"),
        ("Øresund Æble", "oresund-aeble"),
        ("  --weird__name!!  ", "weird-name"),
        ("ﬁle №1", "file-no1"),
        ("日本語のジョブ", "job"),
        ("!!!", "job"),
    ],
)
def test_job_resource_name_is_slug_and_hash(display: str, slug: str) -> None:
    name = names.job_resource_name(display)
    assert_label(name)
    assert name == f"{slug}-{names.short_hash(display)}"
    assert len(names.short_hash(display)) == names.HASH_LENGTH


def test_job_resource_name_is_stable() -> None:
    # A fixed value: changing the derivation renames every job in every cluster.
    assert names.job_resource_name("A job") == "a-job-e2cabde14e"
    assert names.job_resource_name("A job") == names.job_resource_name("A job")


def test_case_and_spacing_give_different_names() -> None:
    variants = ["A job", "a job", "A  job", "A-job", "A_job", "A job "]
    resource_names = {names.job_resource_name(v) for v in variants}
    assert len(resource_names) == len(variants)
    assert {n.rsplit("-", 1)[0] for n in resource_names} == {"a-job"}


def test_long_names_are_cut_and_still_unique() -> None:
    base = "Synchronise the very long list of customer invoices with the accounting system "
    first = names.job_resource_name(base + "(Europe)")
    second = names.job_resource_name(base + "(America)")
    assert_label(first)
    assert_label(second)
    assert len(first) >= 60  # the slug is cut, not dropped (a trailing dash is trimmed)
    assert first != second
    assert first.startswith("synchronise-the-very-long-list")


def test_slug_never_ends_with_dash_before_hash() -> None:
    # 52 characters of slug room: make the cut land right after a separator.
    display = "a" * 51 + " b"
    name = names.job_resource_name(display)
    assert_label(name)
    assert "--" not in name


def test_many_names_do_not_collide() -> None:
    resource_names = {names.job_resource_name(f"job {i}") for i in range(5000)}
    assert len(resource_names) == 5000


def test_execution_id_has_microseconds_and_no_float_error() -> None:
    when = datetime(2017, 3, 19, 3, 53, 44, 840211, tzinfo=UTC)
    assert names.execution_id(when) == "1489895624.840211"
    assert names.execution_id(datetime(2020, 1, 1, tzinfo=UTC)) == "1577836800.000000"
    # A time in another zone is the same instant.
    paris = timezone(timedelta(hours=1))
    assert names.execution_id(when.astimezone(paris)) == "1489895624.840211"


def test_execution_id_round_trips() -> None:
    when = datetime(2031, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert names.parse_execution_id(names.execution_id(when)) == when
    assert names.next_execution_id("1489895624.999999") == "1489895625.000000"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("1489895624.840211", "1489895624.840211"),
        # the original's own forms: its webhook example, and a time with no fraction
        ("1489888092.0", "1489888092.000000"),
        ("1489888092", "1489888092.000000"),
        ("1489895624.84", "1489895624.840000"),
        ("1489895624.84021", "1489895624.840210"),
    ],
)
def test_the_original_id_forms_mean_the_six_digit_id(given: str, canonical: str) -> None:
    assert names.canonical_execution_id(given) == canonical
    assert names.parse_execution_id(given) == names.parse_execution_id(canonical)
    assert names.execution_resource_name("a-job", given) == names.execution_resource_name(
        "a-job", canonical
    )
    assert names.next_execution_id(given) == names.next_execution_id(canonical)


@pytest.mark.parametrize(
    "bad",
    [
        "abc.123456",
        "-1.000000",
        "",
        "1489895624.",
        ".840211",
        "1489895624.8402111",
        "1e9",
        "1489895624,840211",
        "1489895624.84 1",
        " 1489888092.0",
        "١٤٨٩٨٩٥٦٢٤.0",  # digits of another script: int() would take them
    ],
)
def test_parse_execution_id_refuses_other_forms(bad: str) -> None:
    with pytest.raises(ValueError, match="is not an execution id"):
        names.parse_execution_id(bad)
    with pytest.raises(ValueError, match="is not an execution id"):
        names.canonical_execution_id(bad)


def test_execution_id_refuses_naive_and_pre_epoch() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        names.execution_id(datetime(2020, 1, 1))
    with pytest.raises(ValueError, match="before 1970"):
        names.execution_id(datetime(1969, 12, 31, tzinfo=UTC))


def test_execution_resource_name_short_job() -> None:
    name = names.execution_resource_name("a-job-e2cabde14e", "1489895624.840211")
    assert name == "a-job-e2cabde14e-1489895624-840211"
    assert_label(name)


def test_execution_resource_name_long_job_fits_and_stays_unique() -> None:
    job_a = names.job_resource_name("x" * 80 + " one")
    job_b = names.job_resource_name("x" * 80 + " two")
    assert len(job_a) == 63
    execution_id = "1489895624.840211"
    a = names.execution_resource_name(job_a, execution_id)
    b = names.execution_resource_name(job_b, execution_id)
    assert_label(a)
    assert_label(b)
    assert len(a) == 63
    assert a != b
    assert a.endswith("-1489895624-840211")
    # Deterministic: the same inputs always give the same name.
    assert a == names.execution_resource_name(job_a, execution_id)
    # Another execution of the same job differs.
    assert a != names.execution_resource_name(job_a, "1489895624.840212")


def test_execution_resource_name_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="not an execution id"):
        names.execution_resource_name("a-job", "now")
    with pytest.raises(ValueError, match="DNS-1123"):
        names.execution_resource_name("A Job", "1489895624.840211")


def test_execution_ids_order_by_time_and_text_that_is_not_one_sorts_first() -> None:
    ids = ["1489895624.840211", "1489895624.840210", "999.000001", "junk", "1489895625.000000"]
    assert sorted(ids, key=names.execution_id_order) == [
        "junk",
        "999.000001",
        "1489895624.840210",
        "1489895624.840211",
        "1489895625.000000",
    ]
