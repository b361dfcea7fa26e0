"""The output archive the settings name: one factory for the operator and the API.

Both processes read the same ``archive_*`` settings (:class:`settings.ArchiveSettings`,
each under its own prefix), so pointing both at one bucket is the same few variables.
"""

from __future__ import annotations

from overseer import archive, archive_local, archive_s3, archive_s3_store
from overseer import settings as settings_


def s3_config(settings: settings_.ArchiveSettings) -> archive_s3_store.S3Config:
    """The s3 backend's configuration; reads the credential files now.

    Raises :class:`errors.SettingsError` when a credential file cannot be read.
    """
    return archive_s3_store.S3Config(
        bucket=settings.archive_s3_bucket,
        endpoint=settings.archive_s3_endpoint,
        prefix=settings.archive_s3_prefix,
        region=settings.archive_s3_region,
        path_style=settings.archive_s3_path_style,
        credentials=settings.archive_credentials(),
        chunk_size=settings.archive_s3_chunk_size,
        flush_interval=settings.archive_s3_flush_interval,
    )


def build(settings: settings_.ArchiveSettings) -> archive.Archive:
    """The archive of ``settings.archive_backend``; connects on first use."""
    if settings.archive_backend == "s3":
        return archive_s3.S3Archive(s3_config(settings))
    return archive_local.LocalArchive(settings.archive_dir)
