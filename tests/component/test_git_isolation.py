"""One repository never reaches another's mirror, nor sends a token where it was not meant to go
(issue 11, items 1 and 2).

Real repositories and real servers on loopback: ``file://`` URLs at the cache from every
angle git accepts, mirrors per repository, ``http://`` with a token, and a redirect from
``https://`` down to ``http://``.
"""

# ruff: noqa: F811 - pytest fixtures imported from tests.support.gitserver are redefined as parameters

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from overseer import errors
from overseer import git as ogit
from overseer.operator import repositories
from overseer.operator.settings import Settings
from tests.support import loopback
from tests.support.gitserver import (  # noqa: F401 - fixtures
    TOKEN,
    CertificateAuthority,
    HTTPGitServer,
    Upstream,
    git,
    git_ca,
    git_root,
    http_git,
    upstream,
)

pytestmark = pytest.mark.timeout(120)

TENANT_A = "0c8a57d2-4f7e-4b38-9d61-0a6d2b9e1f01"
TENANT_B = "7e21b0c4-93aa-4f0d-8c55-5d9f3e6a2b02"


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def fetch(
    url: str,
    cache: Path,
    owner: str,
    *,
    ref: str | None = None,
    credentials: ogit.Credentials | None = None,
    allow_file_urls: bool = True,
    allow_insecure_http: bool = False,
) -> ogit.Revision:
    source = ogit.Source(url, ref, allow_insecure_http=allow_insecure_http)
    return ogit.fetch_revision(
        source, credentials, cache, owner=owner, allow_file_urls=allow_file_urls, timeout=30
    )


# --- mirrors per repository ----------------------------------------------------------------


def test_two_repositories_on_one_url_keep_two_mirrors(upstream: Upstream, cache: Path) -> None:
    a = fetch(upstream.file_url, cache, TENANT_A)
    b = fetch(upstream.file_url, cache, TENANT_B)
    assert a.commit == b.commit == upstream.head
    mirrors = sorted(p.relative_to(cache).as_posix() for p in cache.glob("*/*.git"))
    assert [m.split("/")[0] for m in mirrors] == sorted([TENANT_A, TENANT_B])
    assert ogit.mirror_path(cache, TENANT_A, upstream.file_url) != ogit.mirror_path(
        cache, TENANT_B, upstream.file_url
    )


def test_a_new_url_drops_the_mirror_of_the_old_one(
    upstream: Upstream, git_root: Path, cache: Path
) -> None:
    fetch(upstream.file_url, cache, TENANT_A)
    other = Upstream.create(git_root / "other.git")
    other.commit({"jobs.yml": "- name: other\n"})
    fetch(other.file_url, cache, TENANT_A)
    assert [p.name for p in (cache / TENANT_A).glob("*.git")] == [
        ogit.mirror_path(cache, TENANT_A, other.file_url).name
    ]


def test_removing_a_repositorys_mirrors_leaves_the_others(upstream: Upstream, cache: Path) -> None:
    fetch(upstream.file_url, cache, TENANT_A)
    fetch(upstream.file_url, cache, TENANT_B)
    ogit.remove_mirrors(cache, TENANT_A)
    assert not (cache / TENANT_A).exists()
    assert ogit.mirror_path(cache, TENANT_B, upstream.file_url).is_dir()


@pytest.mark.parametrize("owner", ["", "..", "../x", "a/b", "-x", "x" * 65])
def test_a_mirror_is_named_by_a_uid_only(owner: str, cache: Path) -> None:
    with pytest.raises(ValueError, match="uid"):
        ogit.mirror_path(cache, owner, "https://host/r.git")


# --- file:// ---------------------------------------------------------------------------------


def test_file_urls_are_refused_unless_allowed(upstream: Upstream, cache: Path) -> None:
    with pytest.raises(errors.GitSourceNotAllowedError) as caught:
        fetch(upstream.file_url, cache, TENANT_A, allow_file_urls=False)
    assert caught.value.stalled and caught.value.reason == "SourceNotAllowed"
    assert "OVERSEER_GIT_ALLOW_FILE_URLS" in caught.value.message
    assert not cache.exists() or not list(cache.iterdir()), "refused before any mirror exists"


def test_no_url_reaches_into_the_cache_even_with_file_urls_allowed(
    upstream: Upstream, cache: Path, tmp_path: Path
) -> None:
    # Given tenant A's mirror, holding its commit under a ref of Overseer's
    fetch(upstream.file_url, cache, TENANT_A)
    mirror = ogit.mirror_path(cache, TENANT_A, upstream.file_url)
    ref = git("--git-dir", mirror, "for-each-ref", "--format=%(refname)").splitlines()[0]
    (tmp_path / "link").symlink_to(cache)
    relative = mirror.relative_to(cache)
    # When tenant B writes a URL for it, in each form git would open it by
    urls = [
        f"file://{mirror}",
        f"file://localhost{mirror}",
        f"file://{mirror}/",
        f"file://{mirror.with_suffix('')}",
        f"file://{cache}/../{cache.name}/{relative}",
        f"file://{tmp_path / 'link' / relative}",
        "file:///" + "".join(f"%{byte:02x}" for byte in str(mirror)[1:].encode()),
        f"file://{cache}",
    ]
    # Then each is refused, before any fetch
    for url in urls:
        with pytest.raises(errors.GitSourceNotAllowedError) as caught:
            fetch(url, cache, TENANT_B, ref=ref)
        assert "git cache" in caught.value.message, url
    assert not (cache / TENANT_B).exists()


@pytest.mark.parametrize(
    "url", ["file://other-host/srv/r.git", "file://", "file://..%2Fr.git", "file://%2Fsrv%2Fr.git"]
)
def test_file_urls_must_name_an_absolute_local_path(url: str, cache: Path) -> None:
    with pytest.raises(errors.GitInvalidSourceError, match="file:///absolute/path"):
        fetch(url, cache, TENANT_B)


# --- a token goes where the repository says, over the transport it says -----------------------


def test_a_token_over_plain_http_is_refused_unless_allowed(
    upstream: Upstream, http_git: HTTPGitServer, cache: Path
) -> None:
    url, credentials = http_git.url(upstream), ogit.Credentials(token=TOKEN)
    with pytest.raises(errors.GitInsecureTransportError) as caught:
        fetch(url, cache, TENANT_A, credentials=credentials)
    assert caught.value.stalled and caught.value.reason == "InsecureTransport"
    assert "spec.allowInsecureHttp" in caught.value.message
    assert TOKEN not in caught.value.message
    assert http_git.requests == [], "nothing was sent"
    revision = fetch(url, cache, TENANT_A, credentials=credentials, allow_insecure_http=True)
    assert revision.commit == upstream.head


@contextlib.contextmanager
def serve_redirect(target: str, ca: CertificateAuthority) -> Iterator[str]:
    """An HTTPS server that redirects every request to ``target`` + its path."""

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(301)
            self.send_header("Location", target + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    certificate, key = ca.issue("redirect")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with loopback.running(server, "redirect"):
        yield f"https://127.0.0.1:{server.server_address[1]}"


def test_a_redirect_from_https_down_to_http_is_never_followed(
    upstream: Upstream, http_git: HTTPGitServer, git_ca: CertificateAuthority, cache: Path
) -> None:
    # Given an https:// URL whose server redirects to plain http://
    with serve_redirect(http_git.base_url, git_ca) as base_url:
        url = f"{base_url}/{upstream.bare.name}"
        data = {"token": TOKEN.encode(), "ca.crt": git_ca.certificate.encode()}
        credentials = ogit.Credentials.from_secret_data(data)
        # When the repository is fetched with a token
        with pytest.raises(errors.GitError) as caught:
            fetch(url, cache, TENANT_A, credentials=credentials)
    # Then git never went to the http:// server, so the token never went unencrypted
    assert http_git.requests == [], "the redirect was followed"
    assert TOKEN not in caught.value.message


async def test_a_deleted_repositorys_mirrors_go_even_if_its_daemon_is_cancelled_meanwhile(
    upstream: Upstream, cache: Path
) -> None:
    """kopf cancels a repository's sync daemon 0 s after it is deleted, while its cleanup
    waits for a thread (seen under load in make test: the mirror stayed). The removal must
    run to its end anyway."""
    fetch(upstream.file_url, cache, TENANT_A)
    loop = asyncio.get_running_loop()
    busy = threading.Event()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    loop.set_default_executor(pool)
    pool.submit(busy.wait, 10)  # the one thread is taken: the cleanup must queue
    settings = Settings(cache_dir=cache)
    cleanup = asyncio.ensure_future(repositories.forget(TENANT_A, settings))
    await asyncio.sleep(0.05)
    cleanup.cancel()  # what kopf does to a daemon that has not exited at once
    with contextlib.suppress(asyncio.CancelledError):
        await cleanup
    busy.set()
    for _ in range(100):
        if not (cache / TENANT_A).exists():
            break
        await asyncio.sleep(0.05)
    assert not (cache / TENANT_A).exists(), "the mirror outlived its repository"
