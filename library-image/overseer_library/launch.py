"""What the supervisor prepares before it starts the job: PATH, environment, files,
and the two system calls it makes for itself (become a subreaper, count a pipe's bytes).

The functions that only compute (``build_path``, ``build_env``) are
kept apart from the few that touch the file system (``make_private_dir``,
``write_script``), so the rules can be read and tested on their own.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import stat
import struct
import termios
from collections.abc import Mapping
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


def build_path(repo_bin: str, library_bin: str, image_path: str | None) -> str:
    """The job's PATH: the repository's bin/, then the library's, then the image's own."""
    entries = [repo_bin, library_bin, *(image_path or DEFAULT_IMAGE_PATH).split(os.pathsep)]
    return os.pathsep.join(entry for entry in dict.fromkeys(entries) if entry)


def build_env(
    environ: Mapping[str, str],
    *,
    path: str,
    control_socket: str,
    remove: tuple[str, ...] = (),
) -> dict[str, str]:
    """The job's environment: the pod's, with PATH and the control socket."""
    env = {key: value for key, value in environ.items() if key not in remove}
    env["PATH"] = path
    env["OVERSEER_CONTROL_SOCKET"] = control_socket
    return env


def make_private_dir(path: str) -> bool:
    """Create ``path`` for the supervisor (and the job, which runs as the same user) alone
    (0700); True if it was created here. An existing directory is accepted only if it is
    a real directory owned by us that no one else may write.
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
    os.chmod(path, 0o700)
    return created


def write_script(directory: str, text: bytes) -> tuple[str, bool]:
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
