"""The environment git runs in for one fetch: Overseer's configuration, and credentials.

Secrets never reach git's argv (visible in ``/proc`` and quoted by GitPython's
exceptions) nor the URL: an HTTPS token is answered by a ``GIT_ASKPASS`` script reading
a 0600 file, an SSH key is a 0600 file named by ``GIT_SSH_COMMAND``, a private CA is
named by ``GIT_SSL_CAINFO``; all in a private temporary folder removed after the call.
git may use the URL's own scheme and no other, so no redirect carries a token from
``https://`` to ``http://``. Only :mod:`overseer.git` uses it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from overseer import errors
from overseer.core import git_source

logger = logging.getLogger("overseer.git")

# The environment variable that names the fetch's private folder (see environment).
PRIVATE_DIR_VARIABLE = "XDG_CONFIG_HOME"
SCHEMES = git_source.SCHEMES
DEFAULT_HTTPS_USERNAME = git_source.DEFAULT_HTTPS_USERNAME
Credentials = git_source.Credentials


@contextlib.contextmanager
def environment(
    url: str, scheme: str, credentials: Credentials, timeout: float
) -> Iterator[dict[str, str]]:
    """The environment git runs in; secrets in a private folder removed on exit.

    git may use ``scheme`` (the URL's, checked by :mod:`overseer.core.git_source`) and
    no other: a redirect from ``https://`` to ``http://`` is refused, so a token never
    leaves the transport the repository was checked for.
    """
    if scheme not in SCHEMES:
        raise errors.GitInvalidSourceError(f"scheme {scheme!r} is not one Overseer allows")
    if url.startswith("https://") and "GIT_SSL_NO_VERIFY" in os.environ:
        raise errors.GitCertificateError(
            "the operator's environment sets GIT_SSL_NO_VERIFY, which would turn TLS "
            "certificate checks off: Overseer refuses to fetch "
            f"{git_source.display_url(url)} with it. Remove the variable from the operator's "
            "Deployment; give a private CA as ca.crt in the repository's credentials Secret "
            "instead"
        )
    private = Path(tempfile.mkdtemp(prefix="overseer-git-"))
    try:
        private.chmod(0o700)
        config = {
            "credential.helper": "",
            "http.sslVerify": "true",
            "protocol.allow": "never",
            f"protocol.{scheme}.allow": "always",
            "core.hooksPath": os.devnull,
            "gc.autoDetach": "false",
            "http.lowSpeedLimit": "1",
            "http.lowSpeedTime": str(max(1, int(timeout))),
        }
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            # "-c" settings inherited from the operator's environment would win over ours.
            "GIT_CONFIG_PARAMETERS": "",
            PRIVATE_DIR_VARIABLE: str(private),
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GIT_SSH_COMMAND": _ssh_command(private, credentials, timeout),
            "GIT_SSH_VARIANT": "ssh",
        }
        if credentials.token:
            env["GIT_ASKPASS"] = str(_askpass(private, credentials))
        if credentials.ca_certificate:
            # The variable, not http.sslCAInfo: git lets an inherited GIT_SSL_CAINFO win.
            ca_file = private / "ca.crt"
            env["GIT_SSL_CAINFO"] = str(_write_private(ca_file, credentials.ca_certificate))
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (key, value) in enumerate(config.items()):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        logger.debug("git environment for %s prepared in %s", git_source.display_url(url), private)
        yield env
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _write_private(path: Path, content: str, mode: int = 0o600) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return path


def _askpass(private: Path, credentials: Credentials) -> Path:
    assert credentials.token
    username = credentials.username or DEFAULT_HTTPS_USERNAME
    user_file = _write_private(private / "username", username)
    token_file = _write_private(private / "token", credentials.token.strip())
    script = (
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  Username*) exec cat {shlex.quote(str(user_file))} ;;\n"
        f"  *) exec cat {shlex.quote(str(token_file))} ;;\n"
        "esac\n"
    )
    return _write_private(private / "askpass", script, 0o700)


def _ssh_command(private: Path, credentials: Credentials, timeout: float) -> str:
    known_hosts = _write_private(private / "known_hosts", (credentials.known_hosts or "") + "\n")
    options = ["-F", os.devnull]
    for option in (
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        f"UserKnownHostsFile={known_hosts}",
        f"GlobalKnownHostsFile={os.devnull}",
        "StrictHostKeyChecking=yes",  # fail closed: an unknown or changed host key is refused
        "UpdateHostKeys=no",
        "CheckHostIP=no",
        "BatchMode=yes",
        f"ConnectTimeout={max(1, int(timeout))}",
        "ServerAliveInterval=15",
    ):
        options += ["-o", option]
    if credentials.ssh_private_key:
        key = credentials.ssh_private_key.replace("\r\n", "\n").strip() + "\n"
        options += ["-i", str(_write_private(private / "identity", key))]
    else:
        options += ["-o", "IdentityFile=none"]
    return " ".join(shlex.quote(part) for part in ["ssh", *options])
