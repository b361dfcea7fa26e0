"""The operator refuses bad settings at start-up, with a message that names them."""

from __future__ import annotations

from pathlib import Path

import pytest

from overseer.operator.settings import Settings, SettingsError


def test_defaults_and_overrides() -> None:
    assert Settings.from_env({}) == Settings()
    settings = Settings.from_env(
        {
            "OVERSEER_NAMESPACES": "a, b c",
            "OVERSEER_CACHE_DIR": "/tmp/x",
            "OVERSEER_GIT_TIMEOUT": "30s",
            "OVERSEER_RETRY_MIN": "2s",
            "OVERSEER_RETRY_MAX": "1m",
        }
    )
    assert settings.namespaces == ("a", "b", "c")
    assert settings.cache_dir == Path("/tmp/x")
    assert (settings.git_timeout, settings.retry_min, settings.retry_max) == (30.0, 2.0, 60.0)


def test_retention_keeps_jobs_an_hour_and_executions_forever_unless_told() -> None:
    default = Settings.from_env({}).retention
    assert (default.finished_job_ttl.total_seconds(), default.execution_ttl) == (3600, None)
    told = Settings.from_env(
        {"OVERSEER_FINISHED_JOB_TTL": "0", "OVERSEER_EXECUTION_TTL": "30d"}
    ).retention
    assert told.finished_job_ttl.total_seconds() == 0
    assert told.execution_ttl is not None and told.execution_ttl.days == 30


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"OVERSEER_GIT_TIMEOUT": "soon"}, "30s"),
        ({"OVERSEER_FINISHED_JOB_TTL": "-1h"}, "OVERSEER_FINISHED_JOB_TTL: '-1h' is not a dur"),
        ({"OVERSEER_EXECUTION_TTL": "0s"}, "OVERSEER_EXECUTION_TTL: .* longer than zero"),
        ({"OVERSEER_RETRY_MIN": "10m", "OVERSEER_RETRY_MAX": "1m"}, "OVERSEER_RETRY_MIN"),
    ],
)
def test_bad_settings_are_refused_with_a_useful_message(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        Settings.from_env(env)
