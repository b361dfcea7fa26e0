"""What a failed git command means: its stderr mapped to an Overseer error the user can act on.

Pure: :func:`classify` takes git's stderr as text, with what the fetch was about
(URL, ref, timeout, whether credentials or a CA were given), and returns an
:class:`overseer.errors.GitError` subclass whose policy says whether the user must
act (stalled) or a retry may help (waiting). Its message names the fix, quotes the
last lines of git's own words with every secret scrubbed, and hides the fetch's
private folder, whose random name would make each retry's message differ.
"""

from __future__ import annotations

from collections.abc import Iterable

from overseer import errors
from overseer.core import git_source

PRIVATE_DIR_PLACEHOLDER = "<credentials>"

_AUTH = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "permission denied (publickey",
    "permission denied, please try again",
    "invalid username or password",
    "http 401",
    "the requested url returned error: 401",
    "the requested url returned error: 403",
    "access denied",
)
_HOST_KEY = (
    "host key verification failed",
    "remote host identification has changed",
    "no matching host key type",
    "host key for",
)
_NOT_FOUND_REPO = (
    "repository not found",
    "does not appear to be a git repository",
    "the requested url returned error: 404",
    "no such repository",
    "not a git repository",
)
_NOT_FOUND_REF = (
    "couldn't find remote ref",
    "not our ref",
    "unadvertised object",
    "no such ref",
    "remote error: upload-pack: not our ref",
)
_CERTIFICATE = (
    "server certificate verification failed",
    "ssl certificate problem",
    "certificate verify failed",
    "certificate subject name",
    "no alternative certificate subject name",
    "does not match target host name",
)
_UNREACHABLE = (
    "could not resolve host",
    "could not resolve hostname",
    "connection refused",
    "connection timed out",
    "connection reset",
    "failed to connect",
    "network is unreachable",
    "no route to host",
    "unable to connect",
    "temporary failure in name resolution",
    "operation timed out",
    "early eof",
    "the remote end hung up unexpectedly",
    "the requested url returned error: 5",
    "ssl",
)


# Checked in order: the first class whose markers appear in git's stderr wins.
_CLASSIFICATION: tuple[tuple[tuple[str, ...], type[errors.GitError], str], ...] = (
    (
        _HOST_KEY,
        errors.GitHostKeyError,
        "the SSH host key of {url} is not in the given known_hosts: put the server's current "
        "host key (checked out of band) in the Secret's known_hosts ({detail})",
    ),
    (
        _CERTIFICATE,
        errors.GitCertificateError,
        "the TLS certificate of {url} could not be verified ({detail}): if a private CA "
        "signed it, put that CA's certificate (PEM) in the credentials Secret as ca.crt and "
        "name the Secret in spec.secretRef; if it names another host, fix spec.url. Overseer "
        "never turns certificate checks off",
    ),
    (
        _AUTH,
        errors.GitAuthError,
        "the git server refused the credentials for {url}: check that the credentials Secret "
        "holds a valid token or SSH key with read access ({detail})",
    ),
    (
        _NOT_FOUND_REF,
        errors.GitRefNotFoundError,
        "ref {ref!r} was not found in {url}: set spec.ref to an existing branch, tag or commit "
        "({detail})",
    ),
    (
        _NOT_FOUND_REPO,
        errors.GitRepositoryNotFoundError,
        "no git repository at {url}: check spec.url, and for a private repository that the "
        "credentials can read it ({detail})",
    ),
    (
        _UNREACHABLE,
        errors.GitUnreachableError,
        "cannot reach the git server of {url}: {detail}; Overseer retries with backoff",
    ),
)
_WRONG_CA_MESSAGE = (
    "the TLS certificate of {url} could not be verified with the ca.crt of the credentials "
    "Secret ({detail}): put the certificate of the CA that signed the server's certificate "
    "in ca.crt; if the certificate names another host, fix spec.url"
)
_NO_CREDENTIALS_MESSAGE = (
    "{url} asks for credentials and none are configured: create a Secret with a token or an "
    "SSH key and name it in spec.secretRef ({detail})"
)


def classify(
    stderr: str,
    *,
    url: str,
    ref: str | None,
    timeout: float,
    secrets: Iterable[str],
    credentials_given: bool,
    ca_given: bool,
    private_dir: str | None = None,
) -> errors.GitError:
    """Map a failed git command's stderr to an Overseer error with a scrubbed message.

    ``secrets`` are scrubbed from the quoted stderr; ``private_dir``, the folder
    holding the fetch's credential files, is replaced by ``<credentials>``.
    ``credentials_given`` and ``ca_given`` pick the advice: a server asking for
    credentials when none are configured, or a certificate that the given CA did
    not sign.
    """
    lowered = stderr.lower()
    detail = errors.scrub(last_lines(stderr), secrets)
    # git quotes files of the private folder (CAfile, known_hosts): a random name would
    # make each retry's message differ, and each difference is a status write and an Event.
    if private_dir:
        detail = detail.replace(private_dir, PRIVATE_DIR_PLACEHOLDER)
    fields = {"url": git_source.display_url(url), "ref": ref or "HEAD", "detail": detail}
    if "did not complete in" in lowered and "timeout" in lowered:
        return errors.GitTimeoutError(
            f"fetching {fields['url']} did not finish within {timeout:g}s; Overseer retries "
            "with backoff"
        )
    for markers, error_class, template in _CLASSIFICATION:
        if any(marker in lowered for marker in markers):
            if error_class is errors.GitAuthError and not credentials_given:
                return error_class(_NO_CREDENTIALS_MESSAGE.format(**fields))
            if error_class is errors.GitCertificateError and ca_given:
                return error_class(_WRONG_CA_MESSAGE.format(**fields))
            return error_class(template.format(**fields))
    return errors.GitError(
        "fetching {url} failed: {detail}; Overseer retries with backoff".format(**fields)
    )


def last_lines(text: str, count: int = 4) -> str:
    """The last ``count`` non-blank lines of git's stderr, joined with `` | ``."""
    # GitPython wraps stderr as "\n  stderr: '<text>'": unwrap it once.
    text = text.strip()
    if text.startswith("stderr: '") and text.endswith("'"):
        text = text[len("stderr: '") : -1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no details from git"
