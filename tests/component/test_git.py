"""The git adapter against real repositories served over file://, git://, HTTP(S) and SSH."""

# ruff: noqa: F811 - pytest fixtures imported from tests.support.gitserver are redefined as parameters

from __future__ import annotations

import logging
import tempfile
import threading
import traceback
from pathlib import Path

import pytest

from overseer import errors
from overseer import git as ogit
from tests.support.gitserver import (  # noqa: F401 - fixtures
    TOKEN,
    CertificateAuthority,
    GitServer,
    HTTPGitServer,
    SSHGitServer,
    Upstream,
    closed_port,
    git,
    git_ca,
    git_daemon,
    git_root,
    http_git,
    https_git,
    new_ssh_key,
    serve_http,
    serve_silence,
    sshd_git,
    upstream,
)

pytestmark = pytest.mark.timeout(120)

JOB = b"- name: hello\n  command: echo hello\n"
OWNER = "5f0c7d2e-0b1a-4c3d-9e8f-a1b2c3d4e5f6"
"""The uid of the repository whose mirror the tests fetch into."""


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Route tempfile into a folder of our own, to see what the adapter leaves behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def mirror_commits(cache: Path, url: str) -> int:
    return int(git("rev-list", "--count", "--all", cwd=ogit.mirror_path(cache, OWNER, url)))


def fetch(
    url: str,
    cache: Path,
    *,
    ref: str | None = None,
    path: str = "",
    credentials: ogit.Credentials | None = None,
    timeout: float = 60,
    owner: str = OWNER,
    allow_insecure_http: bool = False,
) -> ogit.Revision:
    """Fetch as the operator does for the repository ``owner``, file:// URLs allowed."""
    source = ogit.Source(url, ref, path, allow_insecure_http=allow_insecure_http)
    return ogit.fetch_revision(
        source, credentials, cache, owner=owner, allow_file_urls=True, timeout=timeout
    )


def assert_secret_absent(secret: str, *texts: str) -> None:
    fragments = [secret, *(line for line in secret.splitlines() if len(line) >= 8)]
    fragments = [f for f in fragments if not f.startswith("-----")]
    for text in texts:
        for fragment in fragments:
            assert fragment not in text


def error_texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


# --- fetching and caching ---------------------------------------------------------------


@pytest.mark.parametrize("transport", ["file", "daemon"])
def test_clone_then_incremental_shallow_fetch(
    transport: str, upstream: Upstream, git_daemon: GitServer, cache: Path
) -> None:
    url = upstream.file_url if transport == "file" else git_daemon.url(upstream)
    upstream.commit({"jobs/second.yml": "- name: second\n"}, "second job")

    first = fetch(url, cache)
    assert first.commit == upstream.head
    assert first.job_files == {"jobs/hello.yml": JOB, "jobs/second.yml": b"- name: second\n"}
    mirror = ogit.mirror_path(cache, OWNER, url)
    assert mirror_commits(cache, url) == 1, "the first fetch must be shallow"
    assert git("rev-parse", "--is-shallow-repository", cwd=mirror) == "true"

    newer = upstream.commit({"jobs/second.yml": None, "jobs/third.json": "[]"}, "swap")
    second = fetch(url, cache)
    assert second.commit == newer != first.commit
    assert second.job_files == {"jobs/hello.yml": JOB, "jobs/third.json": b"[]"}
    assert [p.name for p in mirror.parent.glob("*.git")] == [mirror.name], "one mirror, reused"
    git("cat-file", "-e", f"{first.commit}^{{commit}}", cwd=mirror)  # kept from the first fetch
    assert newer in (mirror / "shallow").read_text().split(), "the new commit came at depth 1"


def test_stale_locks_of_a_killed_fetch_are_cleared(upstream: Upstream, cache: Path) -> None:
    fetch(upstream.file_url, cache)
    mirror = ogit.mirror_path(cache, OWNER, upstream.file_url)
    (mirror / "shallow.lock").write_text("")
    (mirror / "refs" / "overseer" / "want" / "x.lock").write_text("")
    newer = upstream.commit({"jobs/new.yml": "- name: new\n"})
    assert fetch(upstream.file_url, cache).commit == newer
    assert not list(mirror.rglob("*.lock"))


def test_same_mirror_serves_concurrent_fetches(upstream: Upstream, cache: Path) -> None:
    results: list[ogit.Revision] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            results.append(fetch(upstream.file_url, cache))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert {r.commit for r in results} == {upstream.head}


@pytest.mark.parametrize("kind", ["branch", "tag", "annotated-tag", "sha", "short-sha"])
def test_ref_as_branch_tag_or_commit(
    kind: str, upstream: Upstream, git_daemon: GitServer, cache: Path
) -> None:
    wanted = upstream.head
    upstream.tag("v1")
    upstream.tag("v1-annotated", message="release 1")
    upstream.switch("feature")
    feature = upstream.commit({"jobs/feature.yml": "- name: feature\n"}, "feature")
    upstream.switch("main", create=False)
    upstream.commit({"jobs/later.yml": "- name: later\n"}, "later on main")
    ref, expected = {
        "branch": ("feature", feature),
        "tag": ("v1", wanted),
        "annotated-tag": ("v1-annotated", wanted),
        "sha": (wanted, wanted),
        "short-sha": (wanted[:10], wanted),
    }[kind]

    url = git_daemon.url(upstream)
    revision = fetch(url, cache, ref=ref)

    assert revision.commit == expected
    shallow = git("rev-parse", "--is-shallow-repository", cwd=ogit.mirror_path(cache, OWNER, url))
    assert shallow == ("false" if kind == "short-sha" else "true"), "only short SHAs need history"
    assert ("jobs/feature.yml" in revision.job_files) == (kind == "branch")
    assert "jobs/later.yml" not in revision.job_files


def test_sha_falls_back_to_full_fetch_when_server_refuses_it(
    upstream: Upstream, git_daemon: GitServer, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="overseer.git")
    old = upstream.head
    upstream.commit({"jobs/new.yml": "- name: new\n"}, "newer")
    url = git_daemon.url(upstream)
    # Protocol v0 only serves advertised tips unless the server allows any reachable SHA:
    # an old commit is refused, as by many older servers.
    mirror = ogit.mirror_path(cache, OWNER, url)
    git("init", "--quiet", "--bare", mirror)
    git("config", "protocol.version", "0", cwd=mirror)
    revision = fetch(url, cache, ref=old)
    assert revision.commit == old
    assert "jobs/new.yml" not in revision.job_files
    assert git("rev-parse", "--is-shallow-repository", cwd=mirror) == "false"
    assert "server refused a fetch by SHA" in caplog.text


def test_pinned_commit_already_fetched_is_still_checked_with_the_server(
    upstream: Upstream, cache: Path
) -> None:
    # Only the server can say whether the repository's credentials (perhaps changed
    # since the last fetch) may still read the commit (see the HTTPS tests).
    with serve_http(upstream.bare.parent, token=None) as server:
        url = server.url(upstream)
        fetch(url, cache, ref=upstream.head)
        objects = git("count-objects", "-v", cwd=ogit.mirror_path(cache, OWNER, url))
        served = len(server.requests)
        again = fetch(url, cache, ref=upstream.head)
        assert again.commit == upstream.head
        assert len(server.requests) > served
        assert git("count-objects", "-v", cwd=ogit.mirror_path(cache, OWNER, url)) == objects


def test_reads_path_inside_repo_and_bin_modes(upstream: Upstream, cache: Path) -> None:
    upstream.symlink("ops/bin/link", "run")
    upstream.commit(
        {
            "ops/overseer.yml": "timeout: 60\n",
            "ops/a.yml": "- name: a\n",
            "ops/nested/b.yaml": "- name: b\n",
            "ops/Upper.YML": "- name: upper\n",
            "ops/Upper.Json": "[]",
            "ops/README.md": "not a job",
            "ops/.github/workflows/ci.yml": "not a job either",
            "ops/bin/run": ("#!/bin/sh\necho run\n", 0o755),
            "ops/bin/lib/common.sh": ("x=1\n", 0o644),
            "ops/bin/config.yml": "bin files are not jobs\n",
            "other/c.yml": "- name: outside the path\n",
        },
        "ops tree",
    )

    revision = fetch(upstream.file_url, cache, path="ops/")

    assert revision.job_files == {
        "a.yml": b"- name: a\n",
        "nested/b.yaml": b"- name: b\n",
        "Upper.YML": b"- name: upper\n",
        "Upper.Json": b"[]",
    }
    assert revision.defaults == b"timeout: 60\n"
    assert revision.bin_files == (
        ogit.BinFile("config.yml", 0o644, b"bin files are not jobs\n"),
        ogit.BinFile("lib/common.sh", 0o644, b"x=1\n"),
        ogit.BinFile("run", 0o755, b"#!/bin/sh\necho run\n"),
    )
    assert revision.ignored == ("bin/link",)


def test_root_without_defaults(upstream: Upstream, cache: Path) -> None:
    revision = fetch(upstream.file_url, cache)
    assert revision.defaults is None
    assert revision.bin_files == ()


def test_missing_path_is_stalled(upstream: Upstream, cache: Path) -> None:
    with pytest.raises(errors.GitPathNotFoundError) as caught:
        fetch(upstream.file_url, cache, path="nowhere")
    assert caught.value.stalled
    assert "nowhere" in str(caught.value)


def test_unknown_ref_is_stalled(upstream: Upstream, git_daemon: GitServer, cache: Path) -> None:
    with pytest.raises(errors.GitRefNotFoundError) as caught:
        fetch(git_daemon.url(upstream), cache, ref="no-such-branch")
    assert caught.value.policy is errors.Policy.STALLED
    assert "spec.ref" in str(caught.value)


def test_unknown_sha_is_stalled_after_full_fetch(upstream: Upstream, cache: Path) -> None:
    with pytest.raises(errors.GitRefNotFoundError):
        fetch(upstream.file_url, cache, ref="0123456789abcdef")


def test_unknown_repository_is_stalled(git_daemon: GitServer, cache: Path) -> None:
    with pytest.raises(errors.GitRepositoryNotFoundError) as caught:
        fetch(git_daemon.url("missing.git"), cache)
    assert caught.value.stalled


# --- network failures -----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "git"])
def test_unreachable_server_is_waiting(scheme: str, cache: Path) -> None:
    url = f"{scheme}://127.0.0.1:{closed_port()}/jobs.git"
    with pytest.raises(errors.GitUnreachableError) as caught:
        fetch(url, cache)
    assert caught.value.policy is errors.Policy.WAITING
    assert "retries" in str(caught.value)


def test_silent_server_times_out_and_is_waiting(cache: Path) -> None:
    with serve_silence() as port, pytest.raises(errors.GitTimeoutError) as caught:
        fetch(f"git://127.0.0.1:{port}/jobs.git", cache, timeout=2)
    assert caught.value.policy is errors.Policy.WAITING
    assert "2s" in str(caught.value)


# --- HTTPS tokens -------------------------------------------------------------------------


def test_http_token_syncs(upstream: Upstream, http_git: HTTPGitServer, cache: Path) -> None:
    credentials = ogit.Credentials(token=TOKEN)
    revision = fetch(
        http_git.url(upstream), cache, credentials=credentials, allow_insecure_http=True
    )
    assert revision.commit == upstream.head
    assert any(status == 401 for _, _, status in http_git.requests), "the server checks auth"


def test_http_token_with_username(upstream: Upstream, git_root: Path, cache: Path) -> None:
    with serve_http(git_root, token=TOKEN, username="robot") as server:
        url = server.url(upstream)
        with pytest.raises(errors.GitAuthError):
            human = ogit.Credentials(token=TOKEN, username="human")
            fetch(url, cache, credentials=human, allow_insecure_http=True)
        robot = ogit.Credentials(token=TOKEN, username="robot")
        revision = fetch(url, cache, credentials=robot, allow_insecure_http=True)
    assert revision.commit == upstream.head


def test_wrong_token_is_stalled_and_never_quoted(
    upstream: Upstream,
    http_git: HTTPGitServer,
    cache: Path,
    private_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-7d1e9b2c44"
    with pytest.raises(errors.GitAuthError) as caught:
        credentials = ogit.Credentials(token=wrong)
        fetch(http_git.url(upstream), cache, credentials=credentials, allow_insecure_http=True)
    assert caught.value.stalled
    assert "token" in str(caught.value)
    assert_secret_absent(wrong, caplog.text, *error_texts(caught.value))
    assert_secret_absent(errors.basic_auth_value("x-access-token", wrong), caplog.text)
    assert list(private_tmp.iterdir()) == [], "temporary credential files are removed"


def test_no_credentials_for_private_repo_is_stalled(
    upstream: Upstream, http_git: HTTPGitServer, cache: Path
) -> None:
    with pytest.raises(errors.GitAuthError) as caught:
        fetch(http_git.url(upstream), cache)
    assert "spec.secretRef" in str(caught.value)


def test_good_token_never_logged(
    upstream: Upstream,
    http_git: HTTPGitServer,
    cache: Path,
    private_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    credentials = ogit.Credentials(token=TOKEN)
    fetch(http_git.url(upstream), cache, credentials=credentials, allow_insecure_http=True)
    assert "Popen" in caplog.text, "GitPython's command lines were captured"
    assert_secret_absent(TOKEN, caplog.text, repr(credentials))
    assert list(private_tmp.iterdir()) == []
    config = (ogit.mirror_path(cache, OWNER, http_git.url(upstream)) / "config").read_text()
    assert TOKEN not in config


# --- HTTPS with a private CA ---------------------------------------------------------------


def https_credentials(token: str, ca: str | None) -> ogit.Credentials:
    """What a Secret with ``token`` and ``ca.crt`` gives (the operator's own path)."""
    data = {"token": token.encode()} | ({"ca.crt": ca.encode()} if ca else {})
    return ogit.Credentials.from_secret_data(data)


def test_https_token_with_private_ca_syncs(
    upstream: Upstream,
    https_git: HTTPGitServer,
    cache: Path,
    private_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert https_git.base_url.startswith("https://")
    assert https_git.ca_certificate
    credentials = https_credentials(TOKEN, https_git.ca_certificate)
    revision = fetch(https_git.url(upstream), cache, credentials=credentials)
    assert revision.commit == upstream.head
    assert revision.job_files == {"jobs/hello.yml": JOB}
    assert any(status == 401 for _, _, status in https_git.requests), "the server checks auth"
    assert_secret_absent(TOKEN, caplog.text, repr(credentials))
    assert list(private_tmp.iterdir()) == [], "the CA file goes with the other credentials"


def test_https_private_ca_without_token_for_a_public_repo(
    upstream: Upstream, git_root: Path, git_ca: CertificateAuthority, cache: Path
) -> None:
    with serve_http(git_root, token=None, tls=git_ca) as server:
        credentials = ogit.Credentials.from_secret_data({"ca.crt": git_ca.certificate})
        assert fetch(server.url(upstream), cache, credentials=credentials).commit == upstream.head


def test_https_untrusted_certificate_fails_closed_and_asks_for_ca(
    upstream: Upstream,
    https_git: HTTPGitServer,
    cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.GitCertificateError) as caught:
        fetch(https_git.url(upstream), cache, credentials=https_credentials(TOKEN, None))
    error = caught.value
    assert error.stalled
    assert error.reason == "CertificateVerificationFailed"
    assert "ca.crt" in error.message and "credentials Secret" in error.message
    assert "certificate verification failed" in error.message, "git's own words are quoted"
    assert https_git.requests == [], "no request, so no token, went to an untrusted server"
    assert_secret_absent(TOKEN, caplog.text, *error_texts(error))


def test_https_certificate_from_another_ca_fails_closed(
    upstream: Upstream, https_git: HTTPGitServer, cache: Path, tmp_path: Path
) -> None:
    stranger = CertificateAuthority.create(tmp_path / "stranger-ca", "Stranger CA")
    credentials = https_credentials(TOKEN, stranger.certificate)
    with pytest.raises(errors.GitCertificateError) as caught:
        fetch(https_git.url(upstream), cache, credentials=credentials)
    assert "could not be verified with the ca.crt" in caught.value.message
    assert "overseer-git-" not in caught.value.message, "no random path: retries say the same"
    assert https_git.requests == []


def test_https_certificate_for_another_host_fails_closed(
    upstream: Upstream, git_root: Path, git_ca: CertificateAuthority, cache: Path
) -> None:
    with serve_http(git_root, token=TOKEN, tls=git_ca) as server:
        # The certificate names 127.0.0.1 and localhost; the same server under a name
        # it does not carry must be refused even though its CA is trusted.
        url = server.url(upstream).replace("://127.0.0.1:", "://127.0.0.1.nip.invalid:")
        credentials = https_credentials(TOKEN, git_ca.certificate)
        with pytest.raises((errors.GitCertificateError, errors.GitUnreachableError)):
            fetch(url, cache, credentials=credentials)
        assert server.requests == []


def test_https_wrong_token_is_an_authentication_error(
    upstream: Upstream,
    https_git: HTTPGitServer,
    cache: Path,
    private_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-5c0ffee9a1b2"
    assert https_git.ca_certificate
    with pytest.raises(errors.GitAuthError) as caught:
        fetch(
            https_git.url(upstream),
            cache,
            credentials=https_credentials(wrong, https_git.ca_certificate),
        )
    assert caught.value.stalled
    assert caught.value.reason == "AuthenticationFailed"
    assert "credentials Secret" in caught.value.message
    assert_secret_absent(wrong, caplog.text, *error_texts(caught.value))
    assert_secret_absent(errors.basic_auth_value("x-access-token", wrong), caplog.text)
    assert list(private_tmp.iterdir()) == []


def test_https_verification_stays_on_whatever_the_environment_says(
    upstream: Upstream, https_git: HTTPGitServer, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = https_git.url(upstream)
    # Given an operator environment that tries to turn checks off through git's config
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'http.sslverify'='false'")
    with pytest.raises(errors.GitCertificateError):
        fetch(url, cache, credentials=https_credentials(TOKEN, None))
    # And through GIT_SSL_NO_VERIFY, which git obeys whatever its config: refused outright
    monkeypatch.setenv("GIT_SSL_NO_VERIFY", "1")
    with pytest.raises(errors.GitCertificateError) as caught:
        fetch(url, cache, credentials=https_credentials(TOKEN, https_git.ca_certificate))
    assert "GIT_SSL_NO_VERIFY" in caught.value.message
    assert https_git.requests == []


def test_pinned_commit_is_not_served_from_the_mirror_to_wrong_credentials(
    upstream: Upstream, https_git: HTTPGitServer, cache: Path
) -> None:
    # Given a commit fetched into the repository's mirror with a valid token
    url, ca = https_git.url(upstream), https_git.ca_certificate
    assert fetch(url, cache, ref=upstream.head, credentials=https_credentials(TOKEN, ca))
    # When its Secret is changed to a wrong token, or another repository on the same URL
    # has a wrong one
    # Then the server is asked, and refuses: no mirror bypasses authentication
    wrong = https_credentials("wrong-12345678", ca)
    for owner in (OWNER, "another-repository-uid"):
        with pytest.raises(errors.GitAuthError):
            fetch(url, cache, ref=upstream.head, credentials=wrong, owner=owner)


# --- SSH ------------------------------------------------------------------------------------


def ssh_credentials(server: SSHGitServer, known_hosts: str | None = None) -> ogit.Credentials:
    return ogit.Credentials(
        ssh_private_key=server.private_key,
        known_hosts=server.known_hosts if known_hosts is None else known_hosts,
    )


def test_ssh_with_known_hosts_syncs(
    upstream: Upstream,
    sshd_git: SSHGitServer,
    cache: Path,
    private_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    revision = fetch(sshd_git.url(upstream), cache, credentials=ssh_credentials(sshd_git))
    assert revision.commit == upstream.head
    assert revision.job_files == {"jobs/hello.yml": JOB}
    assert_secret_absent(sshd_git.private_key, caplog.text)
    assert list(private_tmp.iterdir()) == [], "the key file is removed"


def test_ssh_wrong_known_hosts_fails_closed(
    upstream: Upstream,
    sshd_git: SSHGitServer,
    cache: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _, impostor = new_ssh_key(tmp_path / "impostor", "impostor")
    key_type, blob = impostor.split()[:2]
    wrong = f"[{sshd_git.host}]:{sshd_git.port} {key_type} {blob}\n"
    with pytest.raises(errors.GitHostKeyError) as caught:
        fetch(sshd_git.url(upstream), cache, credentials=ssh_credentials(sshd_git, wrong))
    assert caught.value.stalled
    assert "known_hosts" in str(caught.value)
    assert_secret_absent(sshd_git.private_key, caplog.text, *error_texts(caught.value))


def test_ssh_known_hosts_for_another_host_fails_closed(
    upstream: Upstream, sshd_git: SSHGitServer, cache: Path
) -> None:
    other_host = sshd_git.known_hosts.replace(f"[{sshd_git.host}]", "[git.example.invalid]")
    with pytest.raises(errors.GitHostKeyError):
        fetch(sshd_git.url(upstream), cache, credentials=ssh_credentials(sshd_git, other_host))


def test_ssh_without_known_hosts_is_refused_before_connecting(cache: Path) -> None:
    url = f"ssh://git@127.0.0.1:{closed_port()}/jobs.git"
    with pytest.raises(errors.GitHostKeyError) as caught:
        fetch(url, cache, credentials=ogit.Credentials(ssh_private_key="KEY", known_hosts=""))
    assert "known_hosts" in str(caught.value)


def test_ssh_unknown_client_key_is_stalled(
    upstream: Upstream,
    sshd_git: SSHGitServer,
    cache: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    stranger, _ = new_ssh_key(tmp_path / "stranger", "stranger")
    credentials = ogit.Credentials(ssh_private_key=stranger, known_hosts=sshd_git.known_hosts)
    with pytest.raises(errors.GitAuthError) as caught:
        fetch(sshd_git.url(upstream), cache, credentials=credentials)
    assert caught.value.stalled
    assert_secret_absent(stranger, caplog.text, *error_texts(caught.value))


# --- validation, credentials, scrubbing -----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "credentials", "error"),
    [
        (ogit.Source("https://user:hunter2@host/r.git"), None, errors.GitInvalidSourceError),
        (ogit.Source("--upload-pack=touch /tmp/x"), None, errors.GitInvalidSourceError),
        (ogit.Source("ext::sh -c touch% /tmp/x"), None, errors.GitInvalidSourceError),
        (ogit.Source("https://host/r.git", ref="main:refs/x"), None, errors.GitInvalidSourceError),
        (ogit.Source("https://host/r.git", ref="-x"), None, errors.GitInvalidSourceError),
        (ogit.Source("https://host/r.git", path="../up"), None, errors.GitInvalidSourceError),
        (
            ogit.Source("ssh://git@host/r.git"),
            ogit.Credentials(token="t0ken-abcdefgh"),
            errors.GitInvalidCredentialsError,
        ),
        (
            ogit.Source("https://host/r.git"),
            ogit.Credentials(ssh_private_key="k", known_hosts="h"),
            errors.GitInvalidCredentialsError,
        ),
        (ogit.Source("git@host:r.git"), None, errors.GitHostKeyError),
        (ogit.Source("file:///srv/r.git"), None, errors.GitSourceNotAllowedError),
        (
            ogit.Source("http://host/r.git"),
            ogit.Credentials(token="t0ken-abcdefgh"),
            errors.GitInsecureTransportError,
        ),
        (
            ogit.Source("ssh://git@host/r.git"),
            ogit.Credentials(
                ssh_private_key="k",
                known_hosts="h",
                ca_certificate="-----BEGIN CERTIFICATE-----",
            ),
            errors.GitInvalidCredentialsError,
        ),
    ],
)
def test_invalid_sources_are_stalled_before_any_io(
    source: ogit.Source,
    credentials: ogit.Credentials | None,
    error: type[errors.GitError],
    cache: Path,
) -> None:
    with pytest.raises(error) as caught:
        ogit.fetch_revision(source, credentials, cache, owner=OWNER)
    assert caught.value.stalled
    assert "hunter2" not in str(caught.value)
    assert not cache.exists() or not list(cache.iterdir())


def test_credentials_from_secret_data() -> None:
    basic = ogit.Credentials.from_secret_data({"username": b"bot", "password": b"pw-123456789"})
    assert (basic.username, basic.token) == ("bot", "pw-123456789")
    ssh = ogit.Credentials.from_secret_data({"ssh-privatekey": "KEY", "known_hosts": "h k"})
    assert (ssh.ssh_private_key, ssh.known_hosts, ssh.token) == ("KEY", "h k", None)
    camel = ogit.Credentials.from_secret_data({"sshPrivateKey": b"KEY", "knownHosts": b"h k"})
    assert camel == ssh
    assert "pw-123456789" not in repr(basic)
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    with_ca = ogit.Credentials.from_secret_data({"token": b"t0ken-abcdefgh", "ca.crt": pem})
    assert with_ca.ca_certificate == pem
    assert ogit.Credentials.from_secret_data({"caFile": pem.encode()}).ca_certificate == pem
    with pytest.raises(errors.GitInvalidCredentialsError, match="not a PEM certificate"):
        ogit.Credentials.from_secret_data({"token": b"t0ken-abcdefgh", "ca.crt": b"garbage"})
    with pytest.raises(errors.GitInvalidCredentialsError):
        ogit.Credentials.from_secret_data({"unrelated": b"x"})
    with pytest.raises(errors.GitInvalidCredentialsError):
        ogit.Credentials.from_secret_data({"token": "t", "ssh-privatekey": "k"})


def test_scrub_removes_secrets_in_every_form() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\nQyNTUxOQAAACBd\n-----END"
    token = "s3cr3t/t0ken+value"
    text = (
        f"token {token} quoted %2F as s3cr3t%2Ft0ken%2Bvalue, key line b3BlbnNzaC1rZXktdjEAAAA, "
        f"basic {errors.basic_auth_value('u', token)}, url https://u:pw@host/x and {key}"
    )
    scrubbed = errors.scrub(text, [token, key, errors.basic_auth_value("u", token), None, ""])
    for leaked in (token, "s3cr3t%2Ft0ken%2Bvalue", "b3BlbnNzaC1rZXktdjEAAAA", ":pw@"):
        assert leaked not in scrubbed
    assert errors.basic_auth_value("u", token) not in scrubbed
    assert "https://u:***@host/x" in scrubbed
    assert scrubbed.startswith("token *** quoted")


def test_error_policies() -> None:
    stalled = [
        errors.GitAuthError,
        errors.GitHostKeyError,
        errors.GitRefNotFoundError,
        errors.GitRepositoryNotFoundError,
        errors.GitPathNotFoundError,
        errors.GitInvalidSourceError,
        errors.GitInvalidCredentialsError,
        errors.BundleTooLargeError,
        errors.GitCertificateError,
    ]
    waiting = [errors.GitUnreachableError, errors.GitTimeoutError, errors.GitError]
    assert all(cls("x").stalled for cls in stalled)
    assert not any(cls("x").stalled for cls in waiting)
    assert all(issubclass(cls, errors.OverseerError) for cls in stalled + waiting)
    assert len({cls.reason for cls in stalled + waiting}) == len(stalled + waiting)
