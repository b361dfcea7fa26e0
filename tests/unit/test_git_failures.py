"""git's stderr mapped to Overseer errors: the class, the advice, nothing secret, no random path.

The samples are what git 2.39 and OpenSSH wrote in the component tests, as
GitPython hands them over (wrapped in ``stderr: '...'``).
"""

from __future__ import annotations

from typing import Any

import pytest

from overseer import errors
from overseer.core import git_failures

URL = "https://git.example.com/org/jobs.git"
PRIVATE = "/tmp/overseer-git-r4o38m4u"
TOKEN = "wrong-token-7d1e9b2c44"


def wrapped(text: str) -> str:
    return f"\n  stderr: '{text}'"


AUTH_HTTP = wrapped("fatal: Authentication failed for 'https://git.example.com/org/jobs.git/'")
NO_CREDENTIALS = wrapped(
    "fatal: could not read Username for 'https://git.example.com': terminal prompts disabled"
)
AUTH_SSH = wrapped(
    "git@127.0.0.1: Permission denied (publickey).\r\nfatal: Could not read from remote "
    "repository.\n\nPlease make sure you have the correct access rights\nand the repository "
    "exists."
)
HOST_KEY_UNKNOWN = wrapped(
    "No ED25519 host key is known for [127.0.0.1]:54475 and you have requested strict "
    "checking.\r\nHost key verification failed.\r\nfatal: Could not read from remote "
    "repository.\n\nPlease make sure you have the correct access rights\nand the repository "
    "exists."
)
HOST_KEY_CHANGED = wrapped(
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n"
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\r\n"
    f"Add correct host key in {PRIVATE}/known_hosts to get rid of this message.\r\n"
    f"Offending ED25519 key in {PRIVATE}/known_hosts:1\r\n"
    "Host key for [127.0.0.1]:47613 has changed and you have requested strict checking.\r\n"
    "Host key verification failed.\r\n"
    "fatal: Could not read from remote repository.\n\nPlease make sure you have the correct "
    "access rights\nand the repository exists."
)
CERTIFICATE_SYSTEM_CAS = wrapped(
    "fatal: unable to access 'https://git.example.com/org/jobs.git/': server certificate "
    "verification failed. CAfile: /etc/ssl/certs/ca-certificates.crt CRLfile: none"
)
CERTIFICATE_GIVEN_CA = wrapped(
    "fatal: unable to access 'https://git.example.com/org/jobs.git/': server certificate "
    f"verification failed. CAfile: {PRIVATE}/ca.crt CRLfile: none"
)
CERTIFICATE_PROBLEM = wrapped(
    "fatal: unable to access 'https://git.example.com/org/jobs.git/': SSL certificate "
    "problem: unable to get local issuer certificate"
)
REF_NOT_FOUND = wrapped("fatal: couldn't find remote ref no-such-branch")
UNADVERTISED = wrapped(
    "error: Server does not allow request for unadvertised object "
    "bcd2339663bebd3cf35bf2195eac0c5592fef1dc"
)
NO_SUCH_REPOSITORY = wrapped("fatal: remote error: no such repository: /missing.git")
NOT_A_REPOSITORY = wrapped(
    "fatal: '/srv/git/missing.git' does not appear to be a git repository\nfatal: Could not "
    "read from remote repository.\n\nPlease make sure you have the correct access rights\nand "
    "the repository exists."
)
CONNECTION_REFUSED_HTTP = wrapped(
    "fatal: unable to access 'http://127.0.0.1:39837/jobs.git/': Failed to connect to "
    "127.0.0.1 port 39837 after 0 ms: Couldn't connect to server"
)
CONNECTION_REFUSED_DAEMON = wrapped(
    "fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused\n"
)
UNRESOLVED = wrapped(
    "fatal: unable to access 'https://git.example.invalid/jobs.git/': Could not resolve host: "
    "git.example.invalid"
)
TIMEOUT = wrapped(
    'Timeout: the command "git fetch --no-tags --no-write-fetch-head --depth 1 -- '
    'git://127.0.0.1:44351/jobs.git +HEAD:refs/overseer/want/b5180223165af358" did not '
    "complete in 2 secs."
)
UNKNOWN = wrapped("fatal: the server sent something git did not expect")


def classify(stderr: str, **overrides: Any) -> errors.GitError:
    arguments: dict[str, Any] = {
        "url": URL,
        "ref": None,
        "timeout": 60.0,
        "secrets": (),
        "credentials_given": True,
        "ca_given": False,
        "private_dir": PRIVATE,
    }
    return git_failures.classify(stderr, **(arguments | overrides))


@pytest.mark.parametrize(
    ("stderr", "error_class", "words"),
    [
        (AUTH_HTTP, errors.GitAuthError, "refused the credentials"),
        (AUTH_SSH, errors.GitAuthError, "valid token or SSH key"),
        (HOST_KEY_UNKNOWN, errors.GitHostKeyError, "known_hosts"),
        (HOST_KEY_CHANGED, errors.GitHostKeyError, "checked out of band"),
        (CERTIFICATE_SYSTEM_CAS, errors.GitCertificateError, "as ca.crt"),
        (CERTIFICATE_PROBLEM, errors.GitCertificateError, "never turns certificate checks off"),
        (REF_NOT_FOUND, errors.GitRefNotFoundError, "set spec.ref"),
        (UNADVERTISED, errors.GitRefNotFoundError, "set spec.ref"),
        (NO_SUCH_REPOSITORY, errors.GitRepositoryNotFoundError, "check spec.url"),
        (NOT_A_REPOSITORY, errors.GitRepositoryNotFoundError, "check spec.url"),
        (CONNECTION_REFUSED_HTTP, errors.GitUnreachableError, "retries with backoff"),
        (CONNECTION_REFUSED_DAEMON, errors.GitUnreachableError, "retries with backoff"),
        (UNRESOLVED, errors.GitUnreachableError, "cannot reach the git server"),
        (TIMEOUT, errors.GitTimeoutError, "did not finish within 60s"),
        (UNKNOWN, errors.GitError, "retries with backoff"),
    ],
)
def test_each_failure_gets_its_class_and_advice(
    stderr: str, error_class: type[errors.GitError], words: str
) -> None:
    error = classify(stderr)
    assert type(error) is error_class
    assert words in error.message
    assert URL in error.message


@pytest.mark.parametrize(
    ("stderr", "stalled"),
    [
        (AUTH_HTTP, True),
        (HOST_KEY_UNKNOWN, True),
        (CERTIFICATE_SYSTEM_CAS, True),
        (REF_NOT_FOUND, True),
        (NO_SUCH_REPOSITORY, True),
        (UNRESOLVED, False),
        (TIMEOUT, False),
        (UNKNOWN, False),
    ],
)
def test_policy_follows_the_class(stderr: str, stalled: bool) -> None:
    assert classify(stderr).stalled is stalled


def test_git_own_words_are_quoted_unwrapped() -> None:
    error = classify(REF_NOT_FOUND, ref="no-such-branch")
    assert error.message == (
        f"ref 'no-such-branch' was not found in {URL}: set spec.ref to an existing branch, "
        "tag or commit (fatal: couldn't find remote ref no-such-branch)"
    )


def test_ref_defaults_to_head_in_the_message() -> None:
    assert "ref 'HEAD' was not found" in classify(REF_NOT_FOUND, ref=None).message


def test_auth_failure_without_credentials_asks_for_a_secret() -> None:
    error = classify(NO_CREDENTIALS, credentials_given=False)
    assert type(error) is errors.GitAuthError
    assert "none are configured" in error.message and "spec.secretRef" in error.message
    with_credentials = classify(NO_CREDENTIALS, credentials_given=True)
    assert "refused the credentials" in with_credentials.message


def test_certificate_failure_without_a_ca_asks_for_one() -> None:
    error = classify(CERTIFICATE_SYSTEM_CAS, ca_given=False)
    assert type(error) is errors.GitCertificateError
    assert "put that CA's certificate (PEM) in the credentials Secret as ca.crt" in error.message
    assert "certificate verification failed" in error.message, "git's own words are quoted"


def test_certificate_failure_with_a_ca_says_that_ca_did_not_sign_it() -> None:
    error = classify(CERTIFICATE_GIVEN_CA, ca_given=True)
    assert type(error) is errors.GitCertificateError
    assert "could not be verified with the ca.crt of the credentials Secret" in error.message
    assert "CAfile: <credentials>/ca.crt" in error.message


OFFENDING_KEY = wrapped(
    f"Offending ED25519 key in {PRIVATE}/known_hosts:1\r\n"
    "Host key for [127.0.0.1]:47613 has changed and you have requested strict checking.\r\n"
    "Host key verification failed."
)


@pytest.mark.parametrize("stderr", [CERTIFICATE_GIVEN_CA, OFFENDING_KEY])
def test_the_private_folder_is_hidden(stderr: str) -> None:
    message = classify(stderr, ca_given=True).message
    assert PRIVATE not in message and "overseer-git-" not in message
    assert git_failures.PRIVATE_DIR_PLACEHOLDER in message


def test_messages_are_the_same_whatever_the_private_folder() -> None:
    other = "/tmp/overseer-git-zz99xx00"
    first = classify(CERTIFICATE_GIVEN_CA, ca_given=True)
    second = classify(
        CERTIFICATE_GIVEN_CA.replace(PRIVATE, other), ca_given=True, private_dir=other
    )
    assert first.message == second.message


def test_without_a_private_folder_the_text_is_kept() -> None:
    message = classify(CERTIFICATE_GIVEN_CA, ca_given=True, private_dir=None).message
    assert f"{PRIVATE}/ca.crt" in message


def test_secrets_are_scrubbed() -> None:
    basic = errors.basic_auth_value("x-access-token", TOKEN)
    stderr = wrapped(
        f"remote: token {TOKEN} is not valid\nremote: Authorization: Basic {basic}\n"
        "fatal: Authentication failed for 'https://bot:hunter2@git.example.com/org/jobs.git/'"
    )
    error = classify(stderr, secrets=(TOKEN, basic))
    assert type(error) is errors.GitAuthError
    for secret in (TOKEN, basic, "hunter2"):
        assert secret not in error.message
    assert errors.REDACTED in error.message


def test_a_multiline_key_is_scrubbed_line_by_line() -> None:
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    )
    stderr = wrapped(
        "Load key: invalid format b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
        "git@host: Permission denied (publickey)."
    )
    error = classify(stderr, secrets=(key,))
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" not in error.message


def test_a_password_in_the_url_is_hidden() -> None:
    error = classify(UNKNOWN, url="https://bot:hunter2@git.example.com/r.git")
    assert "hunter2" not in error.message
    assert "https://bot:***@git.example.com/r.git" in error.message


@pytest.mark.parametrize(
    ("stderr", "error_class"),
    [
        # The host-key markers win over "could not read from remote repository" lines.
        (HOST_KEY_UNKNOWN, errors.GitHostKeyError),
        # A certificate problem mentions SSL, which alone means unreachable.
        (CERTIFICATE_PROBLEM, errors.GitCertificateError),
        (
            wrapped("fatal: unable to access 'x': OpenSSL SSL_read: error"),
            errors.GitUnreachableError,
        ),
        # A timeout wins over whatever the killed command wrote.
        (TIMEOUT + " Connection refused", errors.GitTimeoutError),
    ],
)
def test_the_first_matching_class_wins(stderr: str, error_class: type[errors.GitError]) -> None:
    assert type(classify(stderr)) is error_class


@pytest.mark.parametrize(
    ("stderr", "lines"),
    [
        (wrapped("one"), "one"),
        ("plain text, not wrapped", "plain text, not wrapped"),
        (wrapped("a\nb\n\n  c  \nd\ne\n"), "b | c | d | e"),
        ("", "no details from git"),
        (wrapped(""), "no details from git"),
    ],
)
def test_last_lines(stderr: str, lines: str) -> None:
    assert git_failures.last_lines(stderr) == lines


def test_unknown_failure_quotes_the_last_lines() -> None:
    error = classify(wrapped("a\nb\nc\nd\nfatal: e"))
    assert (
        error.message
        == f"fetching {URL} failed: b | c | d | fatal: e; Overseer retries with backoff"
    )
