"""User and group names to numeric ids: the library image's accounts, and a job's own map.

Kubernetes starts containers with numeric ids only (``runAsUser``, ``runAsGroup``) and
never reads the image's ``/etc/passwd``. So Overseer resolves ``user`` and ``group``
names itself, against the account database of the image the job runs in:

- the library image's, which is known when the image is built: :data:`LIBRARY_USERS`
  and :data:`LIBRARY_GROUPS` below are its ``/etc/passwd`` and ``/etc/group`` (Debian
  bookworm's base-passwd, plus ``overseer``); ``hack/build-images.sh`` refuses to build
  an image whose files differ, and an e2e test reads them from a running pod;
- for another image, the job's ``imageAccounts`` (``users`` and ``groups``: name to
  id), which also adds to or overrides the library image's table.

Pure: the definition in, ids or ``(field, message)`` problems out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from overseer.crd import definition as defn

LIBRARY_IMAGE: Final = "localhost/overseer/library:dev"
LIBRARY_USER: Final = "overseer"
LIBRARY_UID: Final = 10001
"""The ``overseer`` user and group of the library image; jobs run as them by default."""

LIBRARY_USERS: Final[Mapping[str, tuple[int, int]]] = {
    "root": (0, 0),
    "daemon": (1, 1),
    "bin": (2, 2),
    "sys": (3, 3),
    "sync": (4, 65534),
    "games": (5, 60),
    "man": (6, 12),
    "lp": (7, 7),
    "mail": (8, 8),
    "news": (9, 9),
    "uucp": (10, 10),
    "proxy": (13, 13),
    "www-data": (33, 33),
    "backup": (34, 34),
    "list": (38, 38),
    "irc": (39, 39),
    "_apt": (42, 65534),
    "nobody": (65534, 65534),
    "overseer": (10001, 10001),
}
"""The library image's ``/etc/passwd``: name to (uid, primary gid)."""

LIBRARY_GROUPS: Final[Mapping[str, int]] = {
    "root": 0,
    "daemon": 1,
    "bin": 2,
    "sys": 3,
    "adm": 4,
    "tty": 5,
    "disk": 6,
    "lp": 7,
    "mail": 8,
    "news": 9,
    "uucp": 10,
    "man": 12,
    "proxy": 13,
    "kmem": 15,
    "dialout": 20,
    "fax": 21,
    "voice": 22,
    "cdrom": 24,
    "floppy": 25,
    "tape": 26,
    "sudo": 27,
    "audio": 29,
    "dip": 30,
    "www-data": 33,
    "backup": 34,
    "operator": 37,
    "list": 38,
    "irc": 39,
    "src": 40,
    "shadow": 42,
    "utmp": 43,
    "video": 44,
    "sasl": 45,
    "plugdev": 46,
    "staff": 50,
    "games": 60,
    "users": 100,
    "nogroup": 65534,
    "overseer": 10001,
}
"""The library image's ``/etc/group``: name to gid."""


@dataclasses.dataclass(frozen=True)
class Ids:
    """Whom the job's pod runs as."""

    uid: int
    gid: int


def uses_library_image(definition: defn.JobDefinition, library_image: str) -> bool:
    """True when the job runs in the library image (no ``image``, or that very one)."""
    return definition.image is None or definition.image in (library_image, LIBRARY_IMAGE)


def resolve(
    definition: defn.JobDefinition, library_image: str = LIBRARY_IMAGE
) -> tuple[Ids | None, list[tuple[str, str]]]:
    """The ids the job runs as, or None and the problems, each naming its field.

    ``user`` unset runs as ``overseer`` (10001). ``group`` unset is the user's primary
    group when the table knows it, else the same number as the user. Root (uid 0) is
    refused: the restricted Pod Security Standard forbids it.
    """
    library = uses_library_image(definition, library_image)
    users: dict[str, tuple[int, int | None]] = dict(
        LIBRARY_USERS if library else {LIBRARY_USER: (LIBRARY_UID, LIBRARY_UID)}
    )
    groups = dict(LIBRARY_GROUPS if library else {LIBRARY_USER: LIBRARY_UID})
    if definition.image_accounts is not None:
        users.update({n: (uid, None) for n, uid in (definition.image_accounts.users or {}).items()})
        groups.update(definition.image_accounts.groups or {})
    where = "the library image" if library else f"the image {definition.image}"
    problems: list[tuple[str, str]] = []
    uid, primary = _user(definition.user, users, where, problems)
    gid = _group(definition.group, groups, where, problems)
    if problems:
        return None, problems
    assert uid is not None
    if gid is None:
        gid = uid if primary is None else primary
    return Ids(uid, gid), []


def _user(
    value: int | str | None,
    users: Mapping[str, tuple[int, int | None]],
    where: str,
    problems: list[tuple[str, str]],
) -> tuple[int | None, int | None]:
    if value is None:
        return LIBRARY_UID, LIBRARY_UID
    if isinstance(value, int) or value.isdigit():
        uid, primary = int(value), None
    elif value in users:
        uid, primary = users[value]
    else:
        problems.append(("user", _unknown("user", value, where, "users")))
        return None, None
    if uid == 0:
        named = "" if isinstance(value, int) or value.isdigit() else f"{value!r} is uid 0, "
        problems.append(
            (
                "user",
                f"{named}root, which the restricted Pod Security Standard forbids executions "
                "to run as; use another user",
            )
        )
    return uid, primary


def _group(
    value: int | str | None, groups: Mapping[str, int], where: str, problems: list[tuple[str, str]]
) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) or value.isdigit():
        return int(value)
    if value in groups:
        return groups[value]
    problems.append(("group", _unknown("group", value, where, "groups")))
    return None


def _unknown(kind: str, name: str, where: str, key: str) -> str:
    return (
        f"{name!r} is not a {kind} of {where}, as far as Overseer knows; write the number, "
        f"or map the name to its id in imageAccounts.{key} (such as {name}: 1000)"
    )
