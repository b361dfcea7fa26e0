"""The archive's settings, shared by the operator and the API, and the factory both use."""

from __future__ import annotations

from pathlib import Path

import pytest

from overseer import archive_factory, archive_local, archive_s3, errors
from overseer import settings as shared
from overseer.operator import settings as operator_settings
from overseer_api import settings as api_settings


def test_the_operator_and_the_api_build_the_backend_their_settings_name(tmp_path: Path) -> None:
    for model, prefix in (
        (operator_settings.Settings, "OVERSEER_"),
        (api_settings.Settings, "OVERSEER_API_"),
    ):
        s3 = model.from_env(
            {
                f"{prefix}ARCHIVE_BACKEND": "s3",
                f"{prefix}ARCHIVE_S3_BUCKET": "output",
                f"{prefix}ARCHIVE_S3_ENDPOINT": "http://store:7070",
                f"{prefix}ARCHIVE_S3_PATH_STYLE": "true",
                f"{prefix}ARCHIVE_S3_CHUNK_SIZE": "1Mi",
            }
        )
        built = archive_factory.build(s3)
        assert isinstance(built, archive_s3.S3Archive)
        assert (built.config.bucket, built.config.endpoint) == ("output", "http://store:7070")
        assert (built.config.path_style, built.config.chunk_size) == (True, 1024 * 1024)
        assert built.config.credentials is None  # the client's default chain
        local = model.from_env({f"{prefix}ARCHIVE_DIR": str(tmp_path)})
        assert isinstance(archive_factory.build(local), archive_local.LocalArchive)


def test_credentials_come_from_files_and_never_show(tmp_path: Path) -> None:
    (tmp_path / "id").write_text("AKIDEXAMPLE\n")
    (tmp_path / "secret").write_text("s3cr3t-value\n")
    config = shared.ArchiveSettings.from_env(
        {
            "OVERSEER_ARCHIVE_BACKEND": "s3",
            "OVERSEER_ARCHIVE_S3_BUCKET": "b",
            "OVERSEER_ARCHIVE_S3_ACCESS_KEY_ID_FILE": str(tmp_path / "id"),
            "OVERSEER_ARCHIVE_S3_SECRET_ACCESS_KEY_FILE": str(tmp_path / "secret"),
        }
    )
    s3 = archive_factory.s3_config(config)
    assert s3.credentials == ("AKIDEXAMPLE", "s3cr3t-value")
    assert "s3cr3t" not in repr(s3)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OVERSEER_ARCHIVE_BACKEND": "s3"}, "OVERSEER_ARCHIVE_S3_BUCKET is needed"),
        (
            {
                "OVERSEER_ARCHIVE_BACKEND": "s3",
                "OVERSEER_ARCHIVE_S3_BUCKET": "b",
                "OVERSEER_ARCHIVE_S3_ACCESS_KEY_ID": "AKID",
            },
            "give both",
        ),
        ({"OVERSEER_ARCHIVE_S3_CHUNK_SIZE": "64Mi"}, "OVERSEER_ARCHIVE_S3_CHUNK_SIZE"),
        ({"OVERSEER_ARCHIVE_BACKEND": "ftp"}, "OVERSEER_ARCHIVE_BACKEND"),
    ],
)
def test_bad_archive_settings_are_refused_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(errors.SettingsError, match=message):
        shared.ArchiveSettings.from_env(env)


def test_help_lists_the_archive_variables() -> None:
    text = shared.help_text(operator_settings.Settings)
    for name in ("BACKEND", "S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY_ID_FILE", "S3_PATH_STYLE"):
        assert f"OVERSEER_ARCHIVE_{name}" in text
