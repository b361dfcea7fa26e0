"""The sync's many server-side applies, over aiohttp: the leanest client we have.

A sync of 10,000 jobs makes 10,000 applies from the operator's one event loop; through
httpx (lightkube's client) each cost about 0.6 ms of CPU in the HTTP layers alone
(``docs/benchmarks.rst``, ``bench/apply_clients.py``). aiohttp, which kopf and
:mod:`overseer.kube_exec` already bring, parses HTTP in C.

Same server, TLS context (the cluster's CA, and the client certificate when the
kubeconfig has one) and credentials as lightkube's client: the ``Authorization`` its
auth would send, asked again after a 401 the way lightkube does (a rotated
ServiceAccount token file is read again; an exec plugin run again). Every connection
carries TCP keepalive (:data:`overseer.kube_http.KEEPALIVE`), waits on the API server
no longer than :attr:`Timeouts.request`, and every failure is an
:class:`overseer.errors.KubeError` with its HTTP status and ``Retry-After``.
"""

from __future__ import annotations

import socket
import ssl
import urllib.parse
import urllib.request
from typing import Any

import aiohttp
import httpx2
from lightkube.core.exceptions import ConfigError

from overseer import errors, kube_http


async def authorization(
    auth: httpx2.Auth | None, url: str, refused: int | None = None
) -> dict[str, str] | None:
    """The ``Authorization`` header lightkube's ``auth`` would send to ``url`` (empty:
    none); after an answer ``refused`` (401), the one it would try next (None: nothing
    more to try, as with a static token)."""
    if auth is None:
        return {} if refused is None else None
    flow = auth.async_auth_flow(httpx2.Request("PATCH", url))
    try:
        request = await flow.__anext__()
        if refused is not None:
            request = await flow.asend(httpx2.Response(refused, request=request))
    except StopAsyncIteration:
        return None
    finally:
        await flow.aclose()
    value = request.headers.get("Authorization")
    return {"Authorization": value} if value else {}


def keepalive_socket(address: Any) -> socket.socket:
    """A socket for ``address`` (an ``AddrInfoType``) with :data:`kube_http.KEEPALIVE`."""
    family, kind, protocol, _, _ = address
    sock = socket.socket(family, kind, protocol)
    for level, option, value in kube_http.KEEPALIVE:
        sock.setsockopt(level, option, value)
    return sock


Tls = ssl.SSLContext | None
"""The TLS context of lightkube's client (None: the system's default trust)."""


def env_proxy(server: str) -> str | None:
    """The proxy the environment names for ``server`` (``HTTPS_PROXY``, unless in
    ``NO_PROXY``), as httpx's ``trust_env`` finds it for lightkube's client."""
    host = urllib.parse.urlsplit(server).hostname or ""
    if urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(urllib.parse.urlsplit(server).scheme) or proxies.get("all")


class BulkApply:
    """Server-side applies of bodies already encoded; the answers are read, not decoded.

    Its connections (``connections`` at most, kept open between applies) are opened at
    the first apply, in the running event loop, and closed by :meth:`close`.
    """

    def __init__(
        self,
        server: str,
        tls: Tls,
        auth: httpx2.Auth | None,
        timeouts: kube_http.Timeouts,
        connections: int = 16,
    ) -> None:
        self._server = server.rstrip("/")
        self._tls = tls
        self._auth = auth
        self._timeouts = timeouts
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._headers: dict[str, str] | None = None
        self._proxy = env_proxy(self._server)

    @classmethod
    def beside(cls, http: httpx2.AsyncClient, tls: Tls, timeouts: kube_http.Timeouts) -> BulkApply:
        """Applies to the server of lightkube's ``http`` client, with its auth and ``tls``
        (its transport's context: httpx does not say which it has)."""
        return cls(str(http.base_url), tls, http.auth, timeouts)

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            ssl=self._tls if self._tls is not None else True,
            limit=self._connections,
            socket_factory=keepalive_socket,
        )
        wait = self._timeouts.request
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(connect=wait, sock_connect=wait, sock_read=wait),
            auto_decompress=False,
            proxy=self._proxy,
        )
        return self._session

    async def _authorize(self, refused: int | None = None) -> dict[str, str] | None:
        auth = await authorization(self._auth, self._server, refused)
        if auth is not None:
            self._headers = {**auth, "Content-Type": kube_http.APPLY_PATCH}
            return self._headers
        return None

    async def apply(
        self, path: str, data: bytes, *, field_manager: str, force: bool, doing: str
    ) -> None:
        """Server-side apply of ``data`` (PATCH ``path``).

        Raises :class:`errors.KubeError` (with the status and ``Retry-After``) when refused
        or unanswered, :class:`errors.KubeInvalidObjectError` for 422, ``doing`` saying
        what was being done.
        """
        url = f"{self._server}{path}?fieldManager={field_manager}&force={str(force).lower()}"
        session = self._session or self._open()
        try:
            headers = self._headers or await self._authorize() or {}
            status, body, retry_after = await _patch(session, url, data, headers)
            if status == 401 and (fresh := await self._authorize(refused=401)) is not None:
                status, body, retry_after = await _patch(session, url, data, fresh)
        except (aiohttp.ClientError, OSError, TimeoutError, ConfigError) as error:
            raise errors.KubeError(f"{doing}: {error or type(error).__name__}") from None
        if status >= 400:
            raise kube_http.refused(doing, status, body, retry_after)

    async def close(self) -> None:
        """Close the connections (a later apply opens new ones)."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


async def _patch(
    session: aiohttp.ClientSession, url: str, data: bytes, headers: dict[str, str]
) -> tuple[int, bytes, str]:
    """PATCH ``url``: the answer's status, its body, and its ``Retry-After``."""
    async with session.patch(url, data=data, headers=headers) as response:
        body = await response.read()
        return response.status, body, response.headers.get("Retry-After", "")
