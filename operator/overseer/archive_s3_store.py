"""The bucket of the s3 output archive: its client, the calls made, the chunk reads.

:class:`Store` connects lazily (aiobotocore, in the running event loop) and wraps the
client's errors in :class:`errors.ArchiveError`; :func:`read_chunks` streams a range of a
stream from its chunk objects (the layout is :mod:`overseer.archive_s3`'s).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiobotocore.session
import aiohttp
import botocore.exceptions
from aiobotocore.config import AioConfig

from overseer import archive, errors

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

MANIFEST = "manifest.json"
MAX_CHUNK_SPAN = 64 * 1024**2
"""More than any chunk holds (the chunk size is at most 32 MiB, plus one frame)."""
DELETE_BATCH = 1000
"""Most keys one DeleteObjects call takes."""


@dataclasses.dataclass(frozen=True)
class S3Config:
    """Where the archive is, and how to reach it."""

    bucket: str
    endpoint: str | None = None
    prefix: str = ""
    region: str = "us-east-1"
    path_style: bool = False
    credentials: tuple[str, str] | None = dataclasses.field(default=None, repr=False)
    """Access key id and secret; None: the client's default chain."""
    chunk_size: int = 4 * 1024**2
    flush_interval: float = 1.0
    timeout: float = 15.0
    """Seconds one request may take before it counts as failed (and is tried again)."""


def offset_key(offset: int) -> str:
    return f"{offset:016d}"


class Store:
    """The bucket through one lazily connected client: the calls the archive makes."""

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self._stack = contextlib.AsyncExitStack()
        self._client: S3Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> S3Client:
        async with self._lock:
            if self._client is not None:
                return self._client
            client: S3Client = await self._stack.enter_async_context(self._create())
            self._client = client
            return client

    def _create(self) -> Any:
        config = self.config
        credentials = {}
        if config.credentials is not None:
            key_id, secret = config.credentials
            credentials = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
        return aiobotocore.session.get_session().create_client(
            "s3",
            endpoint_url=config.endpoint,
            region_name=config.region,
            config=AioConfig(
                s3={"addressing_style": "path" if config.path_style else "auto"},
                # Other S3-compatible stores refuse the newer default checksums.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=min(5.0, config.timeout),
                read_timeout=config.timeout,
                max_pool_connections=32,
            ),
            **credentials,
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def put(self, key: str, data: bytes) -> None:
        client = await self.client()
        async with _wrapped(f"writing {key}"):
            await client.put_object(Bucket=self.config.bucket, Key=key, Body=data)

    async def get_json(self, key: str) -> dict[str, Any] | None:
        client = await self.client()
        async with _wrapped(f"reading {key}"):
            try:
                answer = await client.get_object(Bucket=self.config.bucket, Key=key)
            except client.exceptions.NoSuchKey:
                return None
            async with answer["Body"] as body:
                data = await body.read()
        try:
            value = json.loads(data)
        except ValueError as error:
            raise errors.ArchiveError(f"reading {key}: {error}") from None
        return value if isinstance(value, dict) else None

    async def get_range(self, key: str, start: int, stop: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``stop`` (excluded) of one object, in bounded pieces."""
        client = await self.client()
        async with _wrapped(f"reading {key}"):
            answer = await client.get_object(
                Bucket=self.config.bucket, Key=key, Range=f"bytes={start}-{stop - 1}"
            )
            async with answer["Body"] as body:
                while piece := await body.read(archive.CHUNK_SIZE):
                    yield piece

    async def list_keys(
        self, prefix: str, *, start_after: str = "", delimiter: str = ""
    ) -> AsyncIterator[tuple[str, int]]:
        """Keys under ``prefix`` (after ``start_after``) and their sizes, in key order;
        with a delimiter, the common prefixes (size -1) instead of what they hold."""
        client = await self.client()
        token: str | None = None
        while True:
            extra: dict[str, Any] = {}
            if token is not None:
                extra["ContinuationToken"] = token
            elif start_after:
                extra["StartAfter"] = start_after
            if delimiter:
                extra["Delimiter"] = delimiter
            async with _wrapped(f"listing {prefix}"):
                page = await client.list_objects_v2(
                    Bucket=self.config.bucket, Prefix=prefix, **extra
                )
            for common in page.get("CommonPrefixes", []):
                yield common.get("Prefix", ""), -1
            for item in page.get("Contents", []):
                yield item.get("Key", ""), item.get("Size", 0)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or token is None:
                return

    async def delete(self, keys: list[str]) -> None:
        client = await self.client()
        for first in range(0, len(keys), DELETE_BATCH):
            batch: list[Any] = [{"Key": key} for key in keys[first : first + DELETE_BATCH]]
            async with _wrapped("deleting objects"):
                answer = await client.delete_objects(
                    Bucket=self.config.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if failed := answer.get("Errors"):
                first_error = failed[0]
                raise errors.ArchiveError(
                    f"deleting {first_error.get('Key')}: {first_error.get('Message')}"
                )

    async def delete_prefix(
        self, prefix: str, *, keep: Callable[[str], bool] | None = None
    ) -> None:
        """Delete every object under ``prefix`` (but those ``keep`` says to keep)."""
        keys = [key async for key, _ in self.list_keys(prefix) if keep is None or not keep(key)]
        await self.delete(keys)


@contextlib.asynccontextmanager
async def _wrapped(doing: str) -> AsyncIterator[None]:
    try:
        yield
    except botocore.exceptions.ClientError as error:
        detail = error.response.get("Error", {})
        raise errors.ArchiveError(
            f"{doing}: {detail.get('Code', '?')} {detail.get('Message', '')}".strip()
        ) from None
    except (botocore.exceptions.BotoCoreError, aiohttp.ClientError, OSError) as error:
        raise errors.ArchiveError(f"{doing}: {error}") from None
    except TimeoutError:
        raise errors.ArchiveError(f"{doing}: timed out") from None


def stat_of(manifest: Mapping[str, Any]) -> archive.Stat:
    sizes = manifest.get("sizes") or {}
    pod = manifest.get("pod")
    return archive.Stat(
        sizes={stream: _int(sizes.get(stream)) for stream in archive.STREAMS},
        complete=manifest.get("complete") is True,
        pod=pod if isinstance(pod, str) else None,
        lost=archive.parse_lost(manifest.get("lost")),
    )


async def read_chunks(store: Store, prefix: str, start: int, stop: int) -> AsyncIterator[bytes]:
    """Bytes ``start`` to ``stop`` of a stream whose chunks are under ``prefix``.

    The listing starts a chunk's most bytes before ``start``: the chunk holding it
    starts there or later. Chunks must follow each other without a gap.
    """
    position = start
    after = prefix + offset_key(start - MAX_CHUNK_SPAN - 1) if start > MAX_CHUNK_SPAN else ""
    async for key, size in store.list_keys(prefix, start_after=after):
        try:
            offset = int(key.rsplit("/", 1)[-1])
        except ValueError:
            continue
        if offset + size <= position or (offset < position and position != start):
            continue  # before the range (or a stray chunk written over)
        if offset > position:
            break
        end = min(stop, offset + size)
        async for piece in store.get_range(key, position - offset, end - offset):
            position += len(piece)
            yield piece
        if position >= stop:
            return
    raise errors.ArchiveError(f"{prefix}: no chunk holds byte {position} (of {stop})")


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
