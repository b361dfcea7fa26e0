"""The resource models: wire names, validation rules, derived status fields, helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from overseer.crd import base, conditions, definition, execution, job, repository, types

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def a_definition() -> definition.JobDefinition:
    return definition.JobDefinition(name="A job", cmdspec="run x")


def test_api_names() -> None:
    assert base.API_VERSION == "overseer.dev/v1alpha1"
    assert repository.KIND.plural == "overseerrepositories"
    assert job.KIND.plural == "overseerjobs"
    assert execution.KIND.plural == "overseerexecutions"
    assert job.KIND.crd_name == "overseerjobs.overseer.dev"


def test_repository_spec_defaults_and_wire_names() -> None:
    spec = repository.RepositorySpec.model_validate(
        {"url": "https://git.example.com/jobs.git", "secretRef": {"name": "creds"}}
    )
    assert spec.interval == "1m"
    assert spec.suspend is False
    assert spec.allow_insecure_http is False, "a token goes over https:// only, unless allowed"
    assert spec.secret_ref == repository.SecretReference(name="creds")
    assert base.to_body(spec) == {
        "url": "https://git.example.com/jobs.git",
        "interval": "1m",
        "secretRef": {"name": "creds"},
        "allowInsecureHttp": False,
        "suspend": False,
    }
    # Python names are accepted too.
    assert repository.RepositorySpec(url="git@host:org/repo.git", secret_ref=None).ref is None


@pytest.mark.parametrize(
    "url",
    [
        "https://h/r.git",
        "http://h/r",
        "ssh://git@h/r.git",
        "git@github.com:o/r.git",
        "file:///srv/r",
    ],
)
def test_repository_urls_accepted(url: str) -> None:
    assert repository.RepositorySpec(url=url).url == url


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "not a url", "is not a git URL"),
        ("url", "ftp://h/r", "is not a git URL"),
        ("url", "https://user:secret@h/r.git", "holds a password"),
        ("path", "../outside", "must stay inside"),
        ("path", "/abs", "must stay inside"),
        ("interval", "often", "should match pattern"),
        ("interval", "0s", "longer than zero"),
        ("suspend", "maybe", "valid boolean"),
    ],
)
def test_repository_spec_refuses(field: str, value: str, message: str) -> None:
    data = {"url": "https://h/r.git", field: value}
    with pytest.raises(pydantic.ValidationError, match=message):
        repository.RepositorySpec.model_validate(data)


def test_repository_spec_refuses_unknown_fields() -> None:
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        repository.RepositorySpec.model_validate({"url": "https://h/r", "branch": "main"})


def test_repository_status_derives_the_short_commit_and_ignores_unknown_fields() -> None:
    status = repository.RepositoryStatus.model_validate(
        {"commit": "0123456789abcdef0123", "jobCount": 3, "futureField": 1}
    )
    assert status.short_commit == "0123456789ab"
    assert base.to_body(status) == {
        "commit": "0123456789abcdef0123",
        "shortCommit": "0123456789ab",
        "jobCount": 3,
        "conditions": [],
        "errors": [],
        "inactiveJobs": [],
    }


def test_job_spec_and_manifest() -> None:
    spec = job.JobSpec(
        display_name="A job",
        definition=a_definition(),
        source=job.Source(repository="repo", file="jobs/a.yml", commit="abc"),
    )
    body = job.KIND.manifest("a-job-e2cabde14e", "ns", spec, labels={job.REPOSITORY_LABEL: "repo"})
    assert body == {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "OverseerJob",
        "metadata": {
            "name": "a-job-e2cabde14e",
            "namespace": "ns",
            "labels": {"overseer.dev/repository": "repo"},
        },
        "spec": {
            "displayName": "A job",
            "definition": {"name": "A job", "cmdspec": "run x"},
            "source": {"repository": "repo", "file": "jobs/a.yml", "commit": "abc"},
            "active": True,
        },
    }
    # A body read back from Kubernetes validates into the same spec.
    assert job.JobSpec.model_validate(body["spec"]) == spec
    with pytest.raises(TypeError, match="needs a ExecutionSpec"):
        execution.KIND.manifest("x", "ns", spec)


def test_job_spec_display_name_must_match() -> None:
    with pytest.raises(pydantic.ValidationError, match="displayName must equal"):
        job.JobSpec(
            display_name="Other",
            definition=a_definition(),
            source=job.Source(repository="r", file="f", commit="c"),
        )


def execution_spec(**trigger: str) -> execution.ExecutionSpec:
    return execution.ExecutionSpec.model_validate(
        {
            "job": "a-job-e2cabde14e",
            "executionId": "1489895624.840211",
            "parameters": {"x": "a b"},
            "trigger": trigger or {"type": "api"},
            "definition": {"name": "A job", "cmdspec": "run x"},
            "commit": "abc",
        }
    )


def test_execution_spec_round_trips() -> None:
    spec = execution_spec()
    body = base.to_body(spec)
    assert body["executionId"] == "1489895624.840211"
    assert body["trigger"] == {"type": "api"}
    assert body["signals"] == []
    assert execution.ExecutionSpec.model_validate(body) == spec


def test_trigger_repeat_needs_repeat_of() -> None:
    assert execution_spec(type="repeat", repeatOf="1489895624.000001").trigger.repeat_of
    with pytest.raises(pydantic.ValidationError, match="repeatOf is set exactly"):
        execution_spec(type="repeat")
    with pytest.raises(pydantic.ValidationError, match="repeatOf is set exactly"):
        execution_spec(type="api", repeatOf="1489895624.000001")
    with pytest.raises(pydantic.ValidationError, match="'api', 'schedule', 'repeat' or 'manual'"):
        execution_spec(type="cron")


def test_execution_id_form_is_enforced() -> None:
    with pytest.raises(pydantic.ValidationError, match="executionId"):
        execution.ExecutionSpec.model_validate(
            {**base.to_body(execution_spec()), "executionId": "1489895624.84"}
        )


def test_signal_names() -> None:
    ok = execution.SignalRequest(signal="SIGTERM", requested_at=NOW)
    assert base.to_body(ok) == {"signal": "SIGTERM", "requestedAt": "2026-01-02T03:04:05Z"}
    with pytest.raises(pydantic.ValidationError):
        execution.SignalRequest(signal="kill -9", requested_at=NOW)


def test_execution_status_derives_duration_and_keeps_free_form_data() -> None:
    status = execution.ExecutionStatus.model_validate(
        {
            "phase": "Complete",
            "exitCode": 0,
            "startTime": "2026-01-02T03:04:05Z",
            "completionTime": "2026-01-02T03:05:17.400000Z",
            "events": [
                {"status": "start", "time": "2026-01-02T03:04:05Z"},
                {"status": "progress", "time": "2026-01-02T03:04:06Z", "data": {"n": [1, 2]}},
                {"status": "complete", "time": "2026-01-02T03:05:17Z", "data": "done"},
            ],
        }
    )
    assert status.duration == "1m12s"
    assert status.events[1].data == {"n": [1, 2]}
    assert status.events[2].data == "done"
    assert status.phase in execution.TERMINAL_PHASES
    with pytest.raises(pydantic.ValidationError):
        execution.ExecutionStatus.model_validate({"phase": "Exploded"})


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0.0s"),
        (4.24, "4.2s"),
        (59.94, "59.9s"),
        (60, "1m0s"),
        (3725, "1h2m5s"),
        (90061, "1d1h1m1s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert execution.format_duration(seconds) == text


def test_set_condition_keeps_transition_time_while_status_holds() -> None:
    first = conditions.set_condition(
        [], conditions.READY, "False", conditions.PROGRESSING, "syncing", now=NOW
    )
    later = NOW + timedelta(minutes=5)
    same = conditions.set_condition(
        first, conditions.READY, "False", conditions.FETCH_FAILED, "boom", now=later
    )
    assert same[0].last_transition_time == NOW
    assert same[0].reason == "FetchFailed"
    flipped = conditions.set_condition(
        same, conditions.READY, "True", conditions.SUCCEEDED, "", now=later, observed_generation=2
    )
    assert flipped[0].last_transition_time == later
    assert flipped[0].observed_generation == 2
    both = conditions.set_condition(
        flipped, conditions.SYNCED, "True", conditions.SUCCEEDED, "", now=later
    )
    assert [c.type for c in both] == ["Ready", "Synced"]


def test_condition_reason_must_be_camel_case() -> None:
    with pytest.raises(pydantic.ValidationError, match="reason"):
        conditions.Condition(type="Ready", status="True", reason="not ok", last_transition_time=NOW)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m", 60), ("1h30m", 5400), ("1.5h", 5400), ("500ms", 0.5), ("2d", 172800)],
)
def test_durations(text: str, seconds: float) -> None:
    assert types.parse_duration(text).total_seconds() == seconds
    assert types.timeout_seconds(text) == seconds
    assert types.timeout_seconds(45) == 45


@pytest.mark.parametrize("text", ["", "1", "m", "1 m", "1y", "-1s", "0m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        types.parse_duration(text)


def test_apply_defaults_is_a_no_op_without_defaults() -> None:
    job_definition = a_definition()
    assert definition.apply_defaults(job_definition, None) is job_definition
    assert definition.apply_defaults(job_definition, definition.Defaults()) is job_definition


def test_runs() -> None:
    assert definition.JobDefinition(name="a").runs == "nothing"
    assert definition.JobDefinition(name="a", command="echo").runs == "command"
    assert definition.JobDefinition(name="a", script="echo").runs == "script"
    assert a_definition().runs == "cmdspec"
