"""Private repositories (issue 3): an HTTPS token with a private CA, an SSH key with pinned
known_hosts.

Real servers on loopback (smart HTTPS with a CA made for the test, sshd), the real operator
(logging at DEBUG), the real cluster. Secrets are created the way docs/repositories.rst tells
users to. Every test ends by proving that no credential reached the operator's log, an Event,
or a resource's status or annotations.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from overseer import errors
from tests.support.cluster import Kube
from tests.support.gitserver import (
    CertificateAuthority,
    HTTPGitServer,
    SSHGitServer,
    Upstream,
    new_ssh_key,
    serve_http,
    serve_sshd,
)
from tests.support.operator import OperatorProcess
from tests.support.overseer import jobs, repository, request_sync, wait_for_jobs
from tests.support.repositories import (
    condition,
    create_secret,
    jobs_of,
    mark_secret,
    replace_secret_key,
    wait_for_synced,
    warning_events,
)

pytestmark = pytest.mark.cluster

JOB_FILE = "- name: Private job\n  command: echo from a private repository\n"


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream.create(tmp_path / "served" / "private.git")
    repo.commit({"jobs.yml": JOB_FILE}, "a private job")
    return repo


@pytest.fixture
def https_git(upstream: Upstream, tmp_path: Path) -> Iterator[HTTPGitServer]:
    """Smart HTTPS for ``upstream``: a certificate from a CA of its own, a token of its own."""
    ca = CertificateAuthority.create(tmp_path / "ca")
    token = f"e2e-token-{secrets.token_hex(16)}"
    with serve_http(upstream.bare.parent, token=token, tls=ca) as server:
        yield server


# --- Given / When / Then helpers -------------------------------------------------------------


def assert_credentials_absent(kube: Kube, operator: OperatorProcess, *credentials: str) -> None:
    """No credential, whole or any distinctive line of it, anywhere a user or a log can see."""
    fragments: set[str] = set()
    for credential in credentials:
        fragments.add(credential.strip())
        fragments.update(
            line.strip()
            for line in credential.splitlines()
            if len(line.strip()) >= 16 and not line.startswith("-----")
        )
        if "\n" not in credential.strip():  # a token: also its HTTP Basic form
            fragments.add(errors.basic_auth_value("x-access-token", credential))
    places = {
        "the operator log": operator.log(),
        "the namespace's Events": kube.kubectl("get", "events", "-o", "json").stdout,
        "the OverseerRepositories": kube.kubectl(
            "get", "overseerrepositories", "-o", "json"
        ).stdout,
        "the OverseerJobs": kube.kubectl("get", "overseerjobs", "-o", "json").stdout,
    }
    assert "DEBUG" in places["the operator log"], "the operator must log at DEBUG for this check"
    for where, text in places.items():
        for fragment in fragments:
            assert fragment not in text, f"a credential fragment appears in {where}"


# --- HTTPS -----------------------------------------------------------------------------------


def test_private_https_repository_syncs_with_token_then_a_wrong_token_stalls_keeping_jobs(
    kube: Kube,
    operator: OperatorProcess,
    upstream: Upstream,
    https_git: HTTPGitServer,
    tmp_path: Path,
) -> None:
    token = https_git.token
    assert token and https_git.ca_certificate
    # Given a private repository over HTTPS, its certificate signed by a private CA,
    # and a Secret with a token and that CA
    assert https_git.base_url.startswith("https://")
    create_secret(
        kube, "git-https", {"token": token, "ca.crt": https_git.ca_certificate}, tmp_path / "s"
    )
    # When an OverseerRepository names the Secret
    kube.apply(repository("private", https_git.url(upstream), secretRef={"name": "git-https"}))
    # Then its jobs are synced, and the server did check the token
    before = wait_for_jobs(kube, {"Private job"})
    wait_for_synced(kube, "private", "True", "Fetched")
    assert any(status == 401 for _, _, status in https_git.requests)

    # When the Secret's token is replaced by a wrong one and a sync runs
    wrong = f"e2e-wrong-{secrets.token_hex(16)}"
    replace_secret_key(kube, "git-https", "token", wrong)
    request_sync(kube, "private")
    # Then the repository says why, and what to do
    synced = wait_for_synced(kube, "private", "False", "AuthenticationFailed")
    assert "credentials Secret" in synced["message"], synced
    ready = condition(kube, "private", "Ready")
    assert ready and (ready["status"], ready["reason"]) == ("False", "AuthenticationFailed")
    # And a Warning Event on the repository says it too
    [event, *_] = warning_events(kube, "private", "AuthenticationFailed")
    assert event["involvedObject"]["kind"] == "OverseerRepository"
    assert "credentials Secret" in event["message"]
    # And the jobs synced before are untouched, and the status keeps their commit
    after = jobs(kube)
    assert set(after) == set(before)
    for name, job in before.items():
        assert after[name]["metadata"]["resourceVersion"] == job["metadata"]["resourceVersion"]
    assert kube.get("overseerrepository", "private")["status"]["commit"] == upstream.head
    # And neither token appears in any log line, Event or status
    assert_credentials_absent(kube, operator, token, wrong)


def test_https_certificate_from_an_unknown_ca_fails_closed_until_ca_crt_is_given(
    kube: Kube,
    operator: OperatorProcess,
    upstream: Upstream,
    https_git: HTTPGitServer,
    tmp_path: Path,
) -> None:
    token = https_git.token
    assert token and https_git.ca_certificate
    # Given a Secret with the right token but without the server's CA
    create_secret(kube, "token-only", {"token": token}, tmp_path / "s")
    # When a repository uses it
    kube.apply(repository("untrusted", https_git.url(upstream), secretRef={"name": "token-only"}))
    # Then the sync is refused before any request (so the token was never sent),
    # and the status says to add ca.crt to the Secret
    synced = wait_for_synced(kube, "untrusted", "False", "CertificateVerificationFailed")
    assert "ca.crt" in synced["message"] and "credentials Secret" in synced["message"]
    warning_events(kube, "untrusted", "CertificateVerificationFailed")
    assert https_git.requests == []
    assert jobs_of(kube, "untrusted") == []
    # When the CA is added to the Secret, as the message says
    replace_secret_key(kube, "token-only", "ca.crt", https_git.ca_certificate)
    request_sync(kube, "untrusted")
    # Then the repository syncs
    wait_for_jobs(kube, {"Private job"})
    wait_for_synced(kube, "untrusted", "True", "Fetched")
    assert_credentials_absent(kube, operator, token)


def test_a_secret_not_marked_for_overseer_is_never_sent_until_labelled(
    kube: Kube,
    operator: OperatorProcess,
    upstream: Upstream,
    https_git: HTTPGitServer,
    tmp_path: Path,
) -> None:
    token = https_git.token
    assert token and https_git.ca_certificate
    # Given a Secret of the namespace with a token, made for something else: not labelled
    # overseer.dev/git-credentials
    files = {"token": token, "ca.crt": https_git.ca_certificate}
    create_secret(kube, "deploy-bot", files, tmp_path / "s", marked=False)
    # When a repository names it
    kube.apply(repository("borrowed", https_git.url(upstream), secretRef={"name": "deploy-bot"}))
    # Then the sync is refused before any request, so the token never left the cluster,
    # and the status and a Warning Event name the label to add
    synced = wait_for_synced(kube, "borrowed")
    assert (synced["status"], synced["reason"]) == ("False", "CredentialsNotMarked"), synced
    assert "overseer.dev/git-credentials=true" in synced["message"], synced
    [event, *_] = warning_events(kube, "borrowed", "CredentialsNotMarked")
    assert "overseer.dev/git-credentials=true" in event["message"]
    assert https_git.requests == []
    assert jobs_of(kube, "borrowed") == []
    # When the Secret is labelled, as the message says
    mark_secret(kube, "deploy-bot")
    request_sync(kube, "borrowed")
    # Then the repository syncs
    wait_for_jobs(kube, {"Private job"})
    wait_for_synced(kube, "borrowed", "True", "Fetched")
    assert_credentials_absent(kube, operator, token)


def test_a_token_over_plain_http_is_refused_unless_the_repository_allows_it(
    kube: Kube, operator: OperatorProcess, upstream: Upstream, tmp_path: Path
) -> None:
    token = f"e2e-token-{secrets.token_hex(16)}"
    with serve_http(upstream.bare.parent, token=token) as http_git:
        # Given a repository over plain http:// and a marked Secret with its token
        url = http_git.url(upstream)
        assert url.startswith("http://")
        create_secret(kube, "git-http", {"token": token}, tmp_path / "s")
        kube.apply(repository("plain", url, secretRef={"name": "git-http"}))
        # Then the sync is refused before any request: the token never went unencrypted
        synced = wait_for_synced(kube, "plain")
        assert (synced["status"], synced["reason"]) == ("False", "InsecureTransport"), synced
        assert "spec.allowInsecureHttp" in synced["message"], synced
        warning_events(kube, "plain", "InsecureTransport")
        assert http_git.requests == []
        assert jobs_of(kube, "plain") == []
        # When the repository allows it explicitly
        allowed = repository("plain", url, secretRef={"name": "git-http"}, allowInsecureHttp=True)
        kube.apply(allowed)
        # Then it syncs, with the token
        wait_for_jobs(kube, {"Private job"})
        wait_for_synced(kube, "plain", "True", "Fetched")
        assert any(status == 200 for _, _, status in http_git.requests)
    assert_credentials_absent(kube, operator, token)


# --- SSH -------------------------------------------------------------------------------------


def test_ssh_with_pinned_known_hosts_syncs_and_another_host_key_fails_closed(
    kube: Kube, operator: OperatorProcess, upstream: Upstream, tmp_path: Path
) -> None:
    with serve_sshd(tmp_path / "sshd") as sshd:
        _run_ssh_scenario(kube, operator, upstream, sshd, tmp_path)


def _run_ssh_scenario(
    kube: Kube, operator: OperatorProcess, upstream: Upstream, sshd: SSHGitServer, tmp_path: Path
) -> None:
    url = sshd.url(upstream)
    # Given an SSH key the server accepts, and two known_hosts: the server's real host
    # key, and another key for the same [host]:port (what an impostor would present)
    _, impostor = new_ssh_key(tmp_path / "impostor", "impostor")
    key_type, blob = impostor.split()[:2]
    wrong_known_hosts = f"[{sshd.host}]:{sshd.port} {key_type} {blob}\n"
    ssh_type = "kubernetes.io/ssh-auth"
    create_secret(
        kube,
        "git-ssh",
        {"ssh-privatekey": sshd.private_key, "known_hosts": sshd.known_hosts},
        tmp_path / "s",
        ssh_type,
    )
    create_secret(
        kube,
        "git-ssh-impostor",
        {"ssh-privatekey": sshd.private_key, "known_hosts": wrong_known_hosts},
        tmp_path / "s",
        ssh_type,
    )
    # When a repository uses the right known_hosts
    kube.apply(repository("over-ssh", url, secretRef={"name": "git-ssh"}))
    # Then it syncs
    wait_for_jobs(kube, {"Private job"})
    wait_for_synced(kube, "over-ssh", "True", "Fetched")

    # When another repository on the same URL, pinned to the commit already in the
    # operator's mirror, is given the other host key
    kube.apply(
        repository("impostor", url, ref=upstream.head, secretRef={"name": "git-ssh-impostor"})
    )
    # Then it fails closed: Synced False with the host-key reason and what to do
    synced = wait_for_synced(kube, "impostor", "False", "HostKeyVerificationFailed")
    assert "known_hosts" in synced["message"], synced
    warning_events(kube, "impostor", "HostKeyVerificationFailed")
    # And no job comes from it, even though the mirror holds the commit
    assert jobs_of(kube, "impostor") == []
    assert [j["spec"]["source"]["repository"] for j in jobs(kube).values()] == ["over-ssh"]
    assert "commit" not in (kube.get("overseerrepository", "impostor").get("status") or {})
    # And the private key, whole or any line of it, appears nowhere
    assert_credentials_absent(kube, operator, sshd.private_key)
