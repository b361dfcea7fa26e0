"""Tenants kept apart (issue 11, item 1): no repository reads another's mirror.

The operator keeps a git mirror per repository in its cache; a mirror holds its repository's
files, a private one's included, under refs Overseer names. Tenant B, who can only write an
OverseerRepository in its own namespace, must get nothing out of tenant A's mirror, whatever
URL it writes; and ``file://`` URLs, which read the operator's disk, are refused unless the
operator is started with ``OVERSEER_GIT_ALLOW_FILE_URLS`` (as the test suite's is).

Real HTTPS server with a token on loopback, the real operator serving two namespaces, the
real cluster.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, Kube
from tests.support.gitserver import CertificateAuthority, HTTPGitServer, Upstream, git, serve_http
from tests.support.operator import run_operator
from tests.support.overseer import eventually, jobs, repository, wait_for_jobs
from tests.support.repositories import create_secret, wait_for_synced, warning_events

pytestmark = pytest.mark.cluster

JOB_FILE = "- name: Tenant A job\n  command: echo a private job of tenant A\n"


def mirror_of(cache: Path) -> tuple[Path, str]:
    """The one bare mirror under the operator's cache, and the ref it keeps the commit under."""
    mirrors = [p for p in cache.rglob("*.git") if (p / "HEAD").is_file()]
    assert len(mirrors) == 1, f"one repository synced, so one mirror: {mirrors}"
    refs = git("--git-dir", mirrors[0], "for-each-ref", "--format=%(refname)", "refs/overseer/")
    assert refs, "the mirror keeps the fetched commit under a ref of Overseer's"
    return mirrors[0], refs.splitlines()[0]


def delete_repositories(*tenants: Kube) -> None:
    """While the operator runs: its finalizer holds each repository until its daemon stops."""
    for tenant in tenants:
        tenant.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


def test_a_repository_pointed_at_another_tenants_mirror_gets_nothing(
    kube: Kube, kube_cluster: Cluster, overseer_crds: None, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "served" / "private.git")
    upstream.commit({"jobs.yml": JOB_FILE}, "tenant A's private job")
    ca = CertificateAuthority.create(tmp_path / "ca")
    token = f"e2e-token-{secrets.token_hex(16)}"
    tenant_b = Kube(kube_cluster, kube_cluster.create_namespace("tenant-b"))
    serving = {"OVERSEER_NAMESPACES": f"{kube.namespace},{tenant_b.namespace}"}
    try:
        with (
            serve_http(upstream.bare.parent, token=token, tls=ca) as https_git,
            run_operator(kube_cluster, kube.namespace, tmp_path, extra_env=serving),
        ):
            try:
                _steal_from_the_mirror(kube, tenant_b, upstream, https_git, tmp_path)
            finally:
                delete_repositories(kube, tenant_b)
    finally:
        kube_cluster.delete_namespace(tenant_b.namespace)


def _steal_from_the_mirror(
    tenant_a: Kube, tenant_b: Kube, upstream: Upstream, https_git: HTTPGitServer, tmp_path: Path
) -> None:
    assert https_git.token and https_git.ca_certificate
    # Given tenant A's private repository over HTTPS, synced by an operator serving A and B
    secret = {"token": https_git.token, "ca.crt": https_git.ca_certificate}
    create_secret(tenant_a, "git-https", secret, tmp_path / "s")
    tenant_a.apply(repository("private", https_git.url(upstream), secretRef={"name": "git-https"}))
    wait_for_jobs(tenant_a, {"Tenant A job"})
    cache = tmp_path / "cache"
    mirror, ref = mirror_of(cache)
    (tmp_path / "link").symlink_to(cache)
    relative = mirror.relative_to(cache)
    # When tenant B, without credentials, points repositories at A's mirror: directly,
    # through "..", through a symlink, and without the ".git" that git adds by itself
    urls = {
        "direct": f"file://{mirror}",
        "dotdot": f"file://{cache}/../{cache.name}/{relative}",
        "symlink": f"file://{tmp_path / 'link' / relative}",
        "suffix": f"file://{mirror.with_suffix('')}",
    }
    for name, url in urls.items():
        tenant_b.apply(repository(name, url, ref=ref))
    # Then each sync is refused, saying why, and tenant B gets none of A's jobs
    for name in urls:
        synced = wait_for_synced(tenant_b, name)
        assert (synced["status"], synced["reason"]) == ("False", "SourceNotAllowed"), synced
        assert "git cache" in synced["message"], synced
        [event, *_] = warning_events(tenant_b, name, "SourceNotAllowed")
        assert event["involvedObject"]["kind"] == "OverseerRepository"
        assert "commit" not in (tenant_b.get("overseerrepository", name).get("status") or {})
    assert jobs(tenant_b) == {}
    # And tenant A's repository is untouched
    assert set(jobs(tenant_a)) == {"Tenant A job"}
    # When tenant A's repository is deleted, Then its mirror goes with it
    tenant_a.kubectl("delete", "overseerrepository", "private", "--timeout=60s")
    eventually(lambda: not mirror.exists(), 30, "the deleted repository's mirror to go")


def test_file_urls_are_refused_unless_the_operator_allows_them(
    kube: Kube, overseer_crds: None, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "served" / "jobs.git")
    upstream.commit({"jobs.yml": JOB_FILE}, "a job")
    # Given an operator started with its default: file:// URLs not allowed
    refused = {"OVERSEER_GIT_ALLOW_FILE_URLS": "false"}
    with run_operator(kube.cluster, kube.namespace, tmp_path, extra_env=refused):
        try:
            # When a repository names a path on the operator's disk
            kube.apply(repository("local", upstream.file_url))
            # Then its sync is refused, naming the setting, and no job comes from it
            synced = wait_for_synced(kube, "local")
            assert (synced["status"], synced["reason"]) == ("False", "SourceNotAllowed"), synced
            assert "OVERSEER_GIT_ALLOW_FILE_URLS" in synced["message"], synced
            warning_events(kube, "local", "SourceNotAllowed")
            assert jobs(kube) == {}
        finally:
            delete_repositories(kube)
