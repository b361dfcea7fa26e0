"""A repository's source and credentials checked before git runs: URLs, refs, paths, schemes."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from overseer import errors
from overseer.core import git_source

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
TOKEN = "t0ken-abcdefgh"
KNOWN_HOSTS = "host ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"


# --- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "host"),
    [
        ("https://github.com/org/jobs.git", "https", "github.com"),
        ("https://git.example.com:8443/org/jobs", "https", "git.example.com"),
        ("http://127.0.0.1:8080/jobs.git", "http", "127.0.0.1"),
        ("ssh://git@git.example.com/org/jobs.git", "ssh", "git.example.com"),
        ("ssh://git@[::1]:2222/jobs.git", "ssh", "::1"),
        ("git@github.com:org/jobs.git", "ssh", "github.com"),
        ("github.com:org/jobs.git", "ssh", "github.com"),
        ("git://git.example.com/jobs.git", "git", "git.example.com"),
        ("file:///srv/git/jobs.git", "file", "localhost"),
        ("https://user@host/r.git", "https", "host"),
    ],
)
def test_accepted_urls_give_scheme_and_host(url: str, scheme: str, host: str) -> None:
    assert git_source.parse_url(url) == (scheme, host)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "--upload-pack=touch /tmp/x",
        "-oProxyCommand=x",
        "ext::sh -c touch% /tmp/x",
        "ext::sh",
        "fd::17",
        "https://host/r .git",
        "https://host/r.git\n",
        "https://host/r\x07.git",
        "ftp://host/r.git",
        "https:///r.git",
        "ssh:///r.git",
        "/srv/git/jobs.git",
        "jobs.git",
    ],
)
def test_refused_urls(url: str) -> None:
    with pytest.raises(errors.GitInvalidSourceError) as caught:
        git_source.parse_url(url)
    assert caught.value.stalled
    assert "https://host/repo.git" in caught.value.message, "the message shows a good URL"


def test_url_with_password_is_refused_without_quoting_it() -> None:
    with pytest.raises(errors.GitInvalidSourceError) as caught:
        git_source.parse_url("https://user:hunter2@host/r.git")
    assert "hunter2" not in caught.value.message
    assert "https://user:***@host/r.git" in caught.value.message
    assert "credentials Secret" in caught.value.message


def test_display_url_hides_a_password() -> None:
    assert git_source.display_url("https://u:s3cret@h/r.git") == "https://u:***@h/r.git"
    assert git_source.display_url("git@h:r.git") == "git@h:r.git"


# --- refs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [None, "main", "feature/new-jobs", "v1.2.3", "release-2024.01", "0123abc", "a" * 40],
)
def test_accepted_refs(ref: str | None) -> None:
    source = git_source.Source("https://host/r.git", ref=ref)
    assert git_source.parse_source(source, git_source.NO_CREDENTIALS).path == ""


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "-x",
        "--upload-pack=x",
        "main..dev",
        "main:refs/x",
        "my branch",
        "main\t",
        "main~1",
        "main^",
        "what?",
        "glob*",
        "a[b",
        "a\\b",
        "main@{1}",
        "topic.lock",
        "topic/",
        "/topic",
        "a//b",
    ],
)
def test_refused_refs(ref: str) -> None:
    source = git_source.Source("https://host/r.git", ref=ref)
    with pytest.raises(errors.GitInvalidSourceError) as caught:
        git_source.parse_source(source, git_source.NO_CREDENTIALS)
    assert "spec.ref" in caught.value.message


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("0123abc", True),
        ("0123456789abcdef0123456789abcdef01234567", True),
        ("0123ab", False),
        ("0123456789abcdef0123456789abcdef012345678", False),
        ("0123ABC", False),
        ("main", False),
        ("", False),
        (None, False),
    ],
)
def test_looks_like_sha(ref: str | None, expected: bool) -> None:
    assert git_source.looks_like_sha(ref) is expected


# --- paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("", ""),
        (".", ""),
        ("/", ""),
        ("  ", ""),
        ("jobs", "jobs"),
        ("/jobs/", "jobs"),
        (" jobs/nightly ", "jobs/nightly"),
        ("jobs//nightly/./", "jobs/nightly"),
    ],
)
def test_paths_are_cleaned(path: str, cleaned: str) -> None:
    assert git_source.parse_path(path) == cleaned


@pytest.mark.parametrize(
    "path", ["../up", "jobs/../../up", "a/../b", "..", "jobs/..", "jobs\\nightly"]
)
def test_paths_outside_the_repository_are_refused(path: str) -> None:
    with pytest.raises(errors.GitInvalidSourceError) as caught:
        git_source.parse_path(path)
    assert "inside the repository" in caught.value.message


def test_parse_source_gives_scheme_host_and_cleaned_path() -> None:
    source = git_source.Source("ssh://git@host:2222/r.git", ref="main", path="/jobs/")
    credentials = git_source.Credentials(ssh_private_key="KEY", known_hosts=KNOWN_HOSTS)
    assert git_source.parse_source(source, credentials) == git_source.ParsedSource(
        "ssh", "host", "jobs"
    )


# --- credentials against the URL's scheme -----------------------------------------------------

TOKEN_ONLY = git_source.Credentials(token=TOKEN)
KEY = git_source.Credentials(ssh_private_key="KEY", known_hosts=KNOWN_HOSTS)
CA_ONLY = git_source.Credentials(ca_certificate=PEM)
TOKEN_AND_CA = git_source.Credentials(token=TOKEN, ca_certificate=PEM)
HOSTS_ONLY = git_source.Credentials(known_hosts=KNOWN_HOSTS)


@pytest.mark.parametrize(
    ("url", "credentials", "error"),
    [
        ("https://host/r.git", git_source.NO_CREDENTIALS, None),
        ("https://host/r.git", TOKEN_ONLY, None),
        ("https://host/r.git", TOKEN_AND_CA, None),
        ("https://host/r.git", CA_ONLY, None),
        ("http://host/r.git", TOKEN_ONLY, errors.GitInsecureTransportError),
        ("git://host/r.git", git_source.NO_CREDENTIALS, None),
        ("file:///srv/r.git", git_source.NO_CREDENTIALS, None),
        ("ssh://git@host/r.git", KEY, None),
        ("git@host:r.git", KEY, None),
        ("ssh://git@host/r.git", HOSTS_ONLY, None),
        ("ssh://git@host/r.git", TOKEN_ONLY, errors.GitInvalidCredentialsError),
        ("git://host/r.git", TOKEN_ONLY, errors.GitInvalidCredentialsError),
        ("file:///srv/r.git", TOKEN_ONLY, errors.GitInvalidCredentialsError),
        ("https://host/r.git", KEY, errors.GitInvalidCredentialsError),
        ("git://host/r.git", KEY, errors.GitInvalidCredentialsError),
        ("http://host/r.git", CA_ONLY, errors.GitInvalidCredentialsError),
        ("ssh://git@host/r.git", CA_ONLY, errors.GitInvalidCredentialsError),
        ("ssh://git@host/r.git", git_source.NO_CREDENTIALS, errors.GitHostKeyError),
        ("git@host:r.git", git_source.NO_CREDENTIALS, errors.GitHostKeyError),
        (
            "ssh://git@host/r.git",
            git_source.Credentials(ssh_private_key="KEY", known_hosts=" \n"),
            errors.GitHostKeyError,
        ),
    ],
)
def test_credentials_must_fit_the_scheme(
    url: str, credentials: git_source.Credentials, error: type[errors.GitError] | None
) -> None:
    source = git_source.Source(url)
    if error is None:
        git_source.parse_source(source, credentials, allow_file_urls=True)
        return
    with pytest.raises(error) as caught:
        git_source.parse_source(source, credentials, allow_file_urls=True)
    assert type(caught.value) is error
    assert caught.value.stalled
    assert "credentials Secret" in caught.value.message
    assert TOKEN not in caught.value.message and "KEY" not in caught.value.message


def test_source_is_checked_before_credentials() -> None:
    source = git_source.Source("ftp://host/r.git")
    with pytest.raises(errors.GitInvalidSourceError):
        git_source.parse_source(source, TOKEN_ONLY)


# --- credentials from a Secret ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"token": b"t0ken-abcdefgh"}, git_source.Credentials(token=TOKEN)),
        (
            {"username": "bot", "password": "pw-123456789"},
            git_source.Credentials(token="pw-123456789", username="bot"),
        ),
        (
            {"ssh-privatekey": b"KEY", "known_hosts": b"h k"},
            git_source.Credentials(ssh_private_key="KEY", known_hosts="h k"),
        ),
        (
            {"sshPrivateKey": "KEY", "knownHosts": "h k"},
            git_source.Credentials(ssh_private_key="KEY", known_hosts="h k"),
        ),
        ({"identity": "KEY"}, git_source.Credentials(ssh_private_key="KEY")),
        ({"caFile": PEM.encode()}, git_source.Credentials(ca_certificate=PEM)),
        (
            {"token": TOKEN, "ca.crt": PEM},
            git_source.Credentials(token=TOKEN, ca_certificate=PEM),
        ),
    ],
)
def test_credentials_from_secret_data(
    data: dict[str, str | bytes], expected: git_source.Credentials
) -> None:
    assert git_source.Credentials.from_secret_data(data) == expected


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"token": "t", "ssh-privatekey": "k"}, "both a token and an SSH key"),
        ({"unrelated": b"x"}, "none of the keys"),
        ({}, "none of the keys"),
        ({"token": TOKEN, "ca.crt": b"garbage"}, "not a PEM certificate"),
    ],
)
def test_malformed_secret_data_is_refused(data: dict[str, str | bytes], words: str) -> None:
    with pytest.raises(errors.GitInvalidCredentialsError) as caught:
        git_source.Credentials.from_secret_data(data)
    assert words in caught.value.message
    assert caught.value.stalled


def test_secrets_include_the_basic_auth_value() -> None:
    assert git_source.Credentials(token=TOKEN).secrets == (
        TOKEN,
        errors.basic_auth_value(git_source.DEFAULT_HTTPS_USERNAME, TOKEN),
    )
    assert git_source.Credentials(token=TOKEN, username="bot").secrets[1] == (
        errors.basic_auth_value("bot", TOKEN)
    )
    assert git_source.Credentials(ssh_private_key="KEY", known_hosts="h").secrets == ("KEY",)
    assert git_source.NO_CREDENTIALS.secrets == ()


def test_repr_hides_every_secret() -> None:
    credentials = git_source.Credentials(
        token=TOKEN, username="bot", ssh_private_key="PRIVATE-KEY-TEXT", ca_certificate=PEM
    )
    text = repr(credentials)
    assert TOKEN not in text and "PRIVATE-KEY-TEXT" not in text and "MIIB" not in text
    assert "bot" in text


# --- what one repository may reach: file://, the cache, http:// with a token (issue 11) -------


def test_file_urls_are_refused_unless_the_operator_allows_them() -> None:
    source = git_source.Source("file:///srv/git/jobs.git")
    with pytest.raises(errors.GitSourceNotAllowedError) as caught:
        git_source.parse_source(source, git_source.NO_CREDENTIALS)
    assert caught.value.stalled and caught.value.reason == "SourceNotAllowed"
    assert "OVERSEER_GIT_ALLOW_FILE_URLS=true" in caught.value.message
    parsed = git_source.parse_source(source, git_source.NO_CREDENTIALS, allow_file_urls=True)
    assert parsed.scheme == "file"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("file:///srv/git/jobs.git", "/srv/git/jobs.git"),
        ("file://localhost/srv/git/jobs.git", "/srv/git/jobs.git"),
        ("file:///srv/%67it/jobs.git", "/srv/git/jobs.git"),
        ("file:///srv/cache/../git/a%2Fb", "/srv/cache/../git/a/b"),
    ],
)
def test_local_path_is_the_path_git_reads(url: str, path: str) -> None:
    assert git_source.local_path(url) == PurePosixPath(path)


@pytest.mark.parametrize(
    "url", ["file://", "file://host/srv/r.git", "file://%2Fsrv%2Fr.git", "file://../r.git"]
)
def test_local_path_must_be_absolute_and_on_this_host(url: str) -> None:
    with pytest.raises(errors.GitInvalidSourceError, match="file:///absolute/path"):
        git_source.local_path(url)


def test_local_candidates_add_the_suffix_git_tries() -> None:
    assert git_source.local_candidates(PurePosixPath("/srv/r")) == (
        PurePosixPath("/srv/r"),
        PurePosixPath("/srv/r.git"),
    )


CACHE = PurePosixPath("/var/cache/overseer")


@pytest.mark.parametrize(
    "resolved",
    [
        ["/var/cache/overseer"],
        ["/var/cache/overseer/uid/0123.git"],
        ["/srv/elsewhere", "/var/cache/overseer/uid/0123.git"],
    ],
)
def test_a_path_into_the_cache_is_refused(resolved: list[str]) -> None:
    with pytest.raises(errors.GitSourceNotAllowedError) as caught:
        git_source.check_local_path("file:///x", map(PurePosixPath, resolved), CACHE)
    assert caught.value.stalled
    assert "git cache" in caught.value.message and "spec.url" in caught.value.message


@pytest.mark.parametrize(
    "resolved", [["/srv/git/jobs.git"], ["/var/cache/overseer-other/r.git"], ["/var/cache"]]
)
def test_a_path_outside_the_cache_is_accepted(resolved: list[str]) -> None:
    git_source.check_local_path("file:///x", map(PurePosixPath, resolved), CACHE)


def test_a_token_over_http_needs_the_repositorys_permission() -> None:
    refused = git_source.Source("http://git.internal/r.git")
    with pytest.raises(errors.GitInsecureTransportError) as caught:
        git_source.parse_source(refused, TOKEN_ONLY)
    assert caught.value.stalled and caught.value.reason == "InsecureTransport"
    assert "spec.allowInsecureHttp: true" in caught.value.message
    assert TOKEN not in caught.value.message
    allowed = git_source.Source("http://git.internal/r.git", allow_insecure_http=True)
    assert git_source.parse_source(allowed, TOKEN_ONLY).scheme == "http"
    # Without a token nothing secret goes over http://: a public repository needs no permission
    assert git_source.parse_source(refused, git_source.NO_CREDENTIALS).scheme == "http"


@pytest.mark.parametrize("labels", [{}, {"overseer.dev/git-credentials": "false"}, {"app": "x"}])
def test_a_secret_not_marked_for_overseer_is_refused(labels: dict[str, str]) -> None:
    with pytest.raises(errors.GitCredentialsNotMarkedError) as caught:
        git_source.check_marked("deploy-bot", "team-a", labels)
    assert caught.value.stalled and caught.value.reason == "CredentialsNotMarked"
    assert "Secret deploy-bot" in caught.value.message
    command = "kubectl -n team-a label secret deploy-bot overseer.dev/git-credentials=true"
    assert command in caught.value.message


def test_a_marked_secret_is_accepted() -> None:
    git_source.check_marked("ops-git", "team-a", {git_source.CREDENTIALS_LABEL: "true"})
    assert git_source.CREDENTIALS_LABEL == "overseer.dev/git-credentials"
