"""What the supervisor prepares before it starts the job: identity, PATH, environment, files,
and the two system calls it makes for itself (become a subreaper, count a pipe's bytes).

The functions that only compute (``resolve_identity``, ``build_path``, ``build_env``) are
kept apart from the few that touch the file system (``make_private_dir``,
``write_script``), so the rules can be read and tested on their own.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import grp
import os
import pwd
import stat
import struct
import termios
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

EXIT_USAGE = 2
EXIT_SETUP = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
PR_SET_CHILD_SUBREAPER: Final = 36
DEFAULT_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LaunchError(Exception):
    """The job cannot be started; ``exit_code`` is what the supervisor exits with."""

    def __init__(self, message: str, exit_code: int = EXIT_SETUP) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Identity:
    """Whom the job runs as.  ``uid`` None keeps the supervisor's user."""

    uid: int | None
    gid: int
    groups: tuple[int, ...]
    name: str | None = None
    home: str | None = None


def _lookup_user(user: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        if user.isdigit():
            return None
        raise LaunchError(f"unknown user {user!r}: no such name in the image's passwd", 2) from None


def _lookup_group(group: str) -> int:
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise LaunchError(
            f"unknown group {group!r}: no such name in the image's group", 2
        ) from None


def resolve_identity(user: str | None, group: str | None) -> Identity | None:
    """Turn ``--user``/``--group`` (names or numbers) into ids; None when neither is given.

    A user with a passwd entry brings its primary group, its supplementary groups, its
    name and home; a bare number without an entry needs ``--group`` as well.  Only the
    groups asked for are kept: the supervisor's own supplementary groups never leak.
    """
    if user is None:
        if group is None:
            return None
        only_gid = _lookup_group(group)
        return Identity(None, only_gid, (only_gid,))
    gid = _lookup_group(group) if group is not None else None
    entry = _lookup_user(user)
    if entry is None:
        if gid is None:
            raise LaunchError(
                f"user {user} has no passwd entry, so its group is unknown: give --group too",
                EXIT_USAGE,
            )
        return Identity(int(user), gid, (gid,))
    gid = entry.pw_gid if gid is None else gid
    groups = tuple(dict.fromkeys([gid, *os.getgrouplist(entry.pw_name, gid)]))
    return Identity(entry.pw_uid, gid, groups, entry.pw_name, entry.pw_dir)


def check_switch(identity: Identity | None, euid: int, uid: int, gid: int) -> Identity | None:
    """The identity to switch to, None when nothing changes; refuse when not root."""
    if identity is None:
        return None
    if euid == 0:
        return identity
    if identity.uid in (None, uid) and identity.gid == gid:
        return None
    raise LaunchError(
        f"--user/--group need the supervisor to run as root, and it runs as uid {euid}: "
        "set the pod's securityContext (runAsUser/runAsGroup) instead",
        EXIT_USAGE,
    )


def build_path(repo_bin: str, library_bin: str, image_path: str | None) -> str:
    """The job's PATH: the repository's bin/, then the library's, then the image's own."""
    entries = [repo_bin, library_bin, *(image_path or DEFAULT_IMAGE_PATH).split(os.pathsep)]
    return os.pathsep.join(entry for entry in dict.fromkeys(entries) if entry)


def build_env(
    environ: Mapping[str, str],
    *,
    path: str,
    control_socket: str,
    identity: Identity | None,
    remove: tuple[str, ...] = (),
) -> dict[str, str]:
    """The job's environment: the pod's, with PATH, the control socket and the user."""
    env = {key: value for key, value in environ.items() if key not in remove}
    env["PATH"] = path
    env["OVERSEER_CONTROL_SOCKET"] = control_socket
    if identity is not None and identity.name is not None:
        env["USER"] = env["LOGNAME"] = identity.name
        env["HOME"] = identity.home or "/"
    return env


def make_private_dir(path: str, share_with: Identity | None) -> bool:
    """Create ``path`` for the supervisor alone (0700); True if it was created here.

    When the job runs as another user the directory is 0711, so the job can reach the
    files inside it that the supervisor hands over, and list or replace none of them.
    An existing directory is accepted only if it is a real directory owned by us.
    """
    created = True
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        created = False
        info = os.lstat(path)
        shared = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or shared:
            raise LaunchError(
                f"{path} exists but is not a private directory (a directory of uid "
                f"{os.geteuid()} that no one else may write): the control socket needs "
                "one of its own, such as /tmp/overseer"
            ) from None
    except OSError as exc:
        raise LaunchError(f"cannot create the private directory {path}: {exc}") from exc
    os.chmod(path, 0o711 if share_with is not None and share_with.uid is not None else 0o700)
    return created


def hand_over(path: str, identity: Identity | None) -> None:
    """Give a file the supervisor made to the job's user (nothing when it is ours)."""
    if identity is not None and identity.uid is not None:
        os.chown(path, identity.uid, identity.gid)


def write_script(directory: str, text: bytes, identity: Identity | None) -> tuple[str, bool]:
    """Write the job's script to a new private file; returns its path and has-shebang."""
    path = os.path.join(directory, "job-script")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        if os.path.lexists(path):
            os.unlink(path)
        fd = os.open(path, flags, 0o700)
    except OSError as exc:
        raise LaunchError(f"cannot write the job's script to {path}: {exc}") from exc
    try:
        view = memoryview(text)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    hand_over(path, identity)
    return path, text.startswith(b"#!")


def available(fd: int) -> int:
    """How many bytes a pipe holds right now."""
    raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", raw)[0])


def become_subreaper() -> None:
    """Adopt orphans even when not PID 1 (tests, a shared process namespace)."""
    if os.getpid() == 1:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
