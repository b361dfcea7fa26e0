"""The one module that speaks HTTP: requests to the API, problems turned into ``ApiError``.

Output is streamed in chunks to a binary sink, so memory stays bounded whatever its size.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import httpx

from overseer_cli import core

TIMEOUT = httpx.Timeout(30.0)
FOLLOW_TIMEOUT = httpx.Timeout(30.0, read=None)  # a follower may wait long for a byte
POST_ATTEMPTS = 3
RESUME_ATTEMPTS = 5


class ApiError(Exception):
    """What the user is told (``overseer: <message>``), and the exit code."""

    def __init__(self, message: str, exit_code: int = core.FAILED, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.status = status  # the HTTP status; 0 when the API did not answer


@dataclass
class Api:
    """The API at ``url`` with a bearer token; paths come from ``core``."""

    url: str
    token: str | None

    def __post_init__(self) -> None:
        headers = {"User-Agent": "overseer-cli"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(base_url=self.url.rstrip("/"), headers=headers, timeout=TIMEOUT)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self._json("GET", path, params=params)

    def put(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self._json("PUT", path, params=params)

    def delete(self, path: str) -> Any:
        return self._json("DELETE", path)

    def post(self, path: str, body: Any = None, params: Mapping[str, str] | None = None) -> Any:
        """POST with an Idempotency-Key, retried with the same key when the answer is lost
        or the API asks to retry (503, 409 in progress): it never acts twice."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        for attempt in range(1, POST_ATTEMPTS + 1):
            try:
                response = self._send("POST", path, json=body, params=params, headers=headers)
            except ApiError:
                if attempt == POST_ATTEMPTS:
                    raise
                time.sleep(attempt)
                continue
            if attempt < POST_ATTEMPTS and _retry_later(response):
                time.sleep(attempt)
                continue
            return _checked(response).json()
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def stream(self, path: str, follow: bool, start: int = 0) -> Iterator[httpx.Response]:
        """A GET whose body is read in chunks (``?follow=true`` when following), from byte
        ``start``: ``?offset=`` when following, else ``Range`` (docs/api.rst)."""
        params = {"follow": "true"} if follow else {}
        headers = {}
        if start and follow:
            params["offset"] = str(start)
        elif start:
            headers["Range"] = f"bytes={start}-"
        timeout = FOLLOW_TIMEOUT if follow else TIMEOUT
        request = self._http.build_request(
            "GET", path, params=params, headers=headers, timeout=timeout
        )
        response = self._http.send(request, stream=True)
        try:
            if response.is_error:
                response.read()
                _checked(response)
            yield response
        finally:
            response.close()

    def copy(self, path: str, sink: BinaryIO, follow: bool) -> httpx.Headers:
        """Write the output at PATH to SINK as served, chunk by chunk; the last headers.

        A connection that drops once bytes came (a proxy's timeout, an API replica going
        away) is opened again from the first byte not written yet, up to
        ``RESUME_ATTEMPTS`` times in a row without progress: nothing is written twice.
        """
        written, failures = 0, 0
        while True:
            try:
                with self.stream(path, follow, written) as response:
                    skip = written - _served_from(response, written)
                    for served in response.iter_bytes():
                        # Bytes before `written`: the API sent more than was asked for
                        chunk, skip = served[skip:], max(0, skip - len(served))
                        if chunk:
                            sink.write(chunk)
                            sink.flush()
                            written, failures = written + len(chunk), 0
                    return response.headers
            except httpx.TransportError as error:
                failures += 1
                if written == 0 or failures >= RESUME_ATTEMPTS:
                    raise self._unreachable(error) from error
                time.sleep(min(failures, 5))

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return _checked(self._send(method, path, **kwargs)).json()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise self._unreachable(error) from error

    def _unreachable(self, error: httpx.TransportError) -> ApiError:
        reason = "connection refused" if isinstance(error, httpx.ConnectError) else str(error)
        return ApiError(core.unreachable_message(self.url, reason or type(error).__name__))


def _retry_later(response: httpx.Response) -> bool:
    """503 (the API not ready), or 409 for our own key still in progress."""
    if response.status_code == 503:
        return True
    return response.status_code == 409 and b"idempotency-key-in-progress" in response.content


def _served_from(response: httpx.Response, asked: int) -> int:
    """The first byte the answer holds: what ``Overseer-Output-Offset`` (following) or
    ``Content-Range`` (206) say; 0 when the API sent the output whole."""
    if not asked:
        return 0
    if (offset := response.headers.get("overseer-output-offset")) is not None:
        return int(offset)
    if response.status_code == 206:
        return core.range_start(response.headers.get("content-range", ""))
    return 0


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        content_type = response.headers.get("content-type", "")
        message = core.problem_message(response.status_code, response.content, content_type)
        raise ApiError(message, status=response.status_code)
    return response
