"""Kubernetes names derived from job names and execution times, deterministically.

A job's display name is any text ("Nightly backup", "A job", "Sauvegarde é"); its
resource name is a DNS-1123 label: a readable slug plus a hash of the exact display
name, so two names that slug alike ("A job", "a job") still differ. Execution ids keep
the original's form, the creation time in seconds with microseconds
(``1489895624.840211``); the original's shorter forms (``1489888092.0``,
``1489888092``) are read as the same instant (:func:`canonical_execution_id`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta

MAX_NAME_LENGTH = 63
"""DNS-1123 label limit; also what a batch/v1 Job name may use."""
HASH_LENGTH = 10
"""Hex digits of sha256 kept in names (40 bits)."""
FALLBACK_SLUG = "job"
"""Slug used when nothing of the display name survives transliteration."""

EXECUTION_ID_PATTERN = re.compile(r"^([0-9]+)\.([0-9]{6})$")
"""The canonical form, the only one stored in resources: six fraction digits."""
ACCEPTED_ID_PATTERN = re.compile(r"([0-9]+)(?:\.([0-9]{1,6}))?", re.ASCII)
"""What an id may look like where it comes in: the original's floats (``1489888092.0``)."""
MICROSECOND_DIGITS = 6
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# Letters NFKD does not decompose into ASCII.
_TRANSLITERATION = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "TH",
        "\u0131": "i",  # dotless i
    }
)


def slugify(text: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """Lowercase ASCII letters, digits and single dashes; accents dropped, other scripts too.

    ``"Crème brûlée at 5"`` -> ``"creme-brulee-at-5"``; may return ``""``.
    """
    ascii_text = (
        unicodedata.normalize("NFKD", text.translate(_TRANSLITERATION))
        .encode("ascii", "ignore")
        .decode("ascii")
        .lower()
    )
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    return slug[:max_length].rstrip("-")


def short_hash(text: str, length: int = HASH_LENGTH) -> str:
    """The first ``length`` hex digits of sha256 of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def job_resource_name(display_name: str) -> str:
    """The OverseerJob name of a job: ``<slug>-<hash of the exact display name>``, <= 63.

    ``"A job"`` -> ``"a-job-<10 hex>"``; ``"a job"`` gets another hash.
    """
    slug = slugify(display_name, MAX_NAME_LENGTH - 1 - HASH_LENGTH) or FALLBACK_SLUG
    return f"{slug}-{short_hash(display_name)}"


def execution_id(when: datetime) -> str:
    """``1489895624.840211``: seconds since the epoch and six-digit microseconds.

    Computed with integers from the aware datetime, so no float rounding creeps in.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        msg = "execution_id needs an aware datetime (with a time zone), such as datetime.now(UTC)"
        raise ValueError(msg)
    delta = when - _EPOCH
    if delta < timedelta(0):
        msg = f"{when.isoformat()} is before 1970; execution ids count seconds since 1970"
        raise ValueError(msg)
    seconds = delta.days * 86400 + delta.seconds
    return f"{seconds}.{delta.microseconds:06d}"


def canonical_execution_id(text: str) -> str:
    """The six-digit form of an id: ``1489888092.0`` -> ``1489888092.000000``.

    ValueError when ``text`` is not an id. The original's ids were Python floats, so
    fewer fraction digits (or none) are the same instant; more than six are refused
    rather than rounded.
    """
    match = ACCEPTED_ID_PATTERN.fullmatch(text)
    if match is None:
        msg = (
            f"{text!r} is not an execution id; ids look like 1489895624.840211 "
            "(1489895624.84 and 1489895624 are read as 1489895624.840000 and 1489895624.000000)"
        )
        raise ValueError(msg)
    return f"{match[1]}.{(match[2] or '').ljust(MICROSECOND_DIGITS, '0')}"


def parse_execution_id(text: str) -> datetime:
    """The UTC time an execution id (any form :func:`canonical_execution_id` reads) stands for."""
    seconds, microseconds = canonical_execution_id(text).split(".")
    return _EPOCH + timedelta(seconds=int(seconds), microseconds=int(microseconds))


def execution_id_order(text: str) -> datetime:
    """What execution ids sort by: their time; text that is not an id sorts first."""
    try:
        return parse_execution_id(text)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def next_execution_id(previous: str) -> str:
    """The id one microsecond after ``previous``: what to try when an id is already taken."""
    return execution_id(parse_execution_id(previous) + timedelta(microseconds=1))


def execution_resource_name(job_name: str, execution_id_: str) -> str:
    """The OverseerExecution name: ``<job resource name>-<seconds>-<microseconds>``, <= 63.

    When the job name is too long to fit, its head is kept and its own hash replaces
    the rest, so the name stays unique per job and execution id.
    """
    seconds, microseconds = canonical_execution_id(execution_id_).split(".")
    if not is_dns_label(job_name):
        msg = f"{job_name!r} is not a job resource name (a DNS-1123 label)"
        raise ValueError(msg)
    suffix = f"-{seconds}-{microseconds}"
    room = MAX_NAME_LENGTH - len(suffix)
    head = job_name
    if len(head) > room:
        keep = room - 1 - HASH_LENGTH
        head = f"{job_name[:keep].rstrip('-')}-{short_hash(job_name)}"
    return head + suffix


def is_dns_label(name: str) -> bool:
    """True for a DNS-1123 label: lowercase alphanumerics and dashes, <= 63."""
    return len(name) <= MAX_NAME_LENGTH and _DNS_LABEL.fullmatch(name) is not None
