"""The operator refuses bad settings at start-up, with a message that names them."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from overseer import errors
from overseer.core import git_source
from overseer.operator import __main__ as operator_main
from overseer.operator.settings import Settings


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


def test_file_urls_are_refused_unless_the_operator_is_told_otherwise() -> None:
    assert Settings.from_env({}).git_allow_file_urls is False
    told = Settings.from_env({git_source.FILE_URLS_SETTING: "true"})
    assert told.git_allow_file_urls is True


def test_a_repository_keeps_ten_bin_bundles_unless_told() -> None:
    assert Settings.from_env({}).kept_bundles == 10
    assert Settings.from_env({"OVERSEER_KEPT_BUNDLES": "3"}).kept_bundles == 3


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
        ({"OVERSEER_KEPT_BUNDLES": "0"}, "OVERSEER_KEPT_BUNDLES: .*greater than or equal to 1"),
    ],
)
def test_bad_settings_are_refused_with_a_useful_message(env: dict[str, str], words: str) -> None:
    with pytest.raises(errors.SettingsError, match=words):
        Settings.from_env(env)


# --- webhooks -------------------------------------------------------------------------


def test_webhook_settings_defaults_and_overrides() -> None:
    webhooks = Settings.from_env({}).webhooks
    assert webhooks.api_url == "http://localhost:8000"
    assert webhooks.secret == ""
    assert webhooks.url_policy.allow_private is False
    secret = "whsec_" + "a2V5LWJ5dGVzLWZvci10aGUtdGVzdA=="
    webhooks = Settings.from_env(
        {
            "OVERSEER_API_URL": "https://overseer.example.com/",
            "OVERSEER_WEBHOOK_SECRET": secret,
            "OVERSEER_WEBHOOK_ALLOW_PRIVATE": "true",
            "OVERSEER_WEBHOOK_ALLOWED_NETWORKS": "10.20.0.0/16, 127.0.0.1",
            "OVERSEER_SERVICE_CIDR": "10.96.0.0/12",
            "OVERSEER_WEBHOOK_TIMEOUT": "3s",
            "OVERSEER_WEBHOOK_CONCURRENCY": "4",
        }
    ).webhooks
    assert webhooks.api_url == "https://overseer.example.com/"
    assert webhooks.secret == secret
    assert webhooks.url_policy.allow_private is True
    assert [str(n) for n in webhooks.url_policy.allowed] == ["10.20.0.0/16", "127.0.0.1/32"]
    assert [str(n) for n in webhooks.url_policy.service_cidrs] == ["10.96.0.0/12"]
    assert (webhooks.timeout, webhooks.concurrency) == (3.0, 4)
    assert webhooks.send_policy.timeout == 3.0
    # retried up to a horizon of 24 hours, not a count; every bound a setting
    retry = Settings.from_env({}).webhooks.send_policy.retry
    assert (retry.first, retry.max_delay) == (timedelta(seconds=1), timedelta(minutes=5))
    assert retry.horizon == timedelta(hours=24)
    assert Settings.from_env({}).webhooks.host_concurrency == 4
    compressed = Settings.from_env(
        {"OVERSEER_WEBHOOK_RETRY_HORIZON": "2s", "OVERSEER_WEBHOOK_HOST_CONCURRENCY": "2"}
    ).webhooks
    assert compressed.send_policy.retry.horizon == timedelta(seconds=2)
    assert compressed.host_concurrency == 2
    # the secret never shows in a repr (settings may be logged)
    assert secret not in repr(Settings.from_env({"OVERSEER_WEBHOOK_SECRET": secret}))


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"OVERSEER_API_URL": "overseer.example.com"}, "OVERSEER_API_URL"),
        ({"OVERSEER_WEBHOOK_SECRET": "whsec_!!not base64!!"}, "OVERSEER_WEBHOOK_SECRET"),
        ({"OVERSEER_WEBHOOK_ALLOW_PRIVATE": "maybe"}, "OVERSEER_WEBHOOK_ALLOW_PRIVATE"),
        ({"OVERSEER_WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/33"}, "OVERSEER_WEBHOOK_ALLOWED"),
        ({"OVERSEER_WEBHOOK_TIMEOUT": "soon"}, "OVERSEER_WEBHOOK_TIMEOUT"),
        ({"OVERSEER_WEBHOOK_CONCURRENCY": "0"}, "OVERSEER_WEBHOOK_CONCURRENCY"),
        ({"OVERSEER_WEBHOOK_RETRY_HORIZON": "0s"}, "OVERSEER_WEBHOOK_RETRY_HORIZON"),
        ({"OVERSEER_WEBHOOK_RETRY_MIN": "10m"}, "OVERSEER_WEBHOOK_RETRY_MIN"),
        ({"OVERSEER_WEBHOOK_HOST_CONCURRENCY": "20"}, "OVERSEER_WEBHOOK_HOST_CONCURRENCY"),
    ],
)
def test_bad_webhook_settings_are_refused_naming_them(env: dict[str, str], words: str) -> None:
    with pytest.raises(errors.SettingsError, match=words) as caught:
        Settings.from_env(env)
    assert "not base64!!" not in str(caught.value)


def test_the_schedule_starting_deadline_is_a_duration_or_none() -> None:
    assert Settings.from_env({}).schedule_starting_deadline == 3600.0
    env = {"OVERSEER_SCHEDULE_STARTING_DEADLINE": "90s"}
    assert Settings.from_env(env).schedule_starting_deadline == 90.0
    env = {"OVERSEER_SCHEDULE_STARTING_DEADLINE": "None"}
    assert Settings.from_env(env).schedule_starting_deadline is None
    for bad in ("0s", "soon"):
        with pytest.raises(errors.SettingsError, match="OVERSEER_SCHEDULE_STARTING_DEADLINE"):
            Settings.from_env({"OVERSEER_SCHEDULE_STARTING_DEADLINE": bad})


# --- --help and the variables the chart sets ------------------------------------------


def test_help_lists_every_variable_with_its_default_and_doc(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        operator_main.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, info in Settings.model_fields.items():
        doc = " ".join((info.description or "").split())
        assert doc, f"{name} has no docstring"
        assert f"{Settings.env_name(name)} (default: " in text
        assert doc in text
    assert "OVERSEER_EXECUTION_TTL (default: unset)" in text
    assert "OVERSEER_GIT_TIMEOUT (default: 2m)" in text
    assert "OVERSEER_SCHEDULE_STARTING_DEADLINE (default: 1h)" in text


def test_every_variable_the_chart_and_the_tests_give_the_operator_is_a_setting() -> None:
    root = Path(__file__).parents[2]
    # The operator's Deployment and the e2e tests' operator process (the API has its own).
    files = ("charts/overseer/templates/operator-deployment.yaml", "tests/support/operator.py")
    texts = [(root / name).read_text() for name in files]
    used = {name for text in texts for name in re.findall(r"\bOVERSEER_[A-Z_]+\b", text)}
    known = {Settings.env_name(name) for name in Settings.model_fields}
    # OVERSEER_SCRIPT is the job pods' own variable, not the operator's.
    assert used - known <= {"OVERSEER_SCRIPT"}
    assert used & known


def test_settings_built_by_hand_never_read_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OVERSEER_GIT_TIMEOUT", "7s")
    assert Settings().git_timeout == 120.0
    assert Settings.from_env().git_timeout == 7.0


def test_repository_limits_have_defaults_and_read_sizes() -> None:
    assert Settings.from_env({}).repository_limits == git_source.DEFAULT_LIMITS
    limits = Settings.from_env(
        {"OVERSEER_REPOSITORY_MAX_FILES": "500", "OVERSEER_REPOSITORY_MAX_MIRROR_SIZE": "64Mi"}
    ).repository_limits
    assert (limits.max_files, limits.max_mirror_bytes) == (500, 64 * 1024 * 1024)
    for bad in ("0", "1Ti", "lots", "-5"):
        with pytest.raises(errors.SettingsError, match="OVERSEER_REPOSITORY_MAX_JOBS_SIZE"):
            Settings.from_env({"OVERSEER_REPOSITORY_MAX_JOBS_SIZE": bad})


def test_leader_election_timings_leave_a_deposed_leader_time_to_stop() -> None:
    timing = Settings.from_env({}).lease_timing
    assert (timing.duration, timing.renew_deadline, timing.retry_period) == (15.0, 10.0, 2.0)
    assert Settings.from_env({}).metrics_port == 8080
    with pytest.raises(errors.SettingsError, match="OVERSEER_LEASE_RENEW_DEADLINE"):
        Settings.from_env({"OVERSEER_LEASE_RENEW_DEADLINE": "15s"})
    with pytest.raises(errors.SettingsError, match="OVERSEER_LEASE_RETRY_PERIOD"):
        Settings.from_env({"OVERSEER_LEASE_RETRY_PERIOD": "10s"})
