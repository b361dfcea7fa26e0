"""overseer.yml defaults, duplicate names, and a whole repository parsed at once."""

from __future__ import annotations

from overseer.core import definitions
from overseer.crd import definition as defn

DEFAULTS = """\
defaults:
  image: registry.example.com/runner:1
  timeout: 10m
  retries: 2
  env: {REGION: eu, LOG: info}
  hooks:
    fail: https://hooks.example.com/fail
    complete: https://hooks.example.com/done
  concurrency: {limit: 1, policy: forbid}
  resources: {requests: {cpu: 100m}}
"""


def defaults() -> defn.Defaults:
    result = definitions.parse_defaults(DEFAULTS)
    assert result.errors == ()
    assert result.defaults is not None
    return result.defaults


def test_defaults_fill_what_the_job_leaves_out() -> None:
    result = definitions.parse_job_file("a.yml", "- name: a\n  command: echo\n", defaults())
    job = result.jobs[0].definition
    assert job.image == "registry.example.com/runner:1"
    assert job.timeout == "10m"
    assert job.retries == 2
    assert job.env == {"REGION": "eu", "LOG": "info"}
    assert job.hooks == {
        "fail": ["https://hooks.example.com/fail"],
        "complete": ["https://hooks.example.com/done"],
    }
    assert job.concurrency == defn.Concurrency(limit=1, policy="forbid")
    assert job.resources == defn.Resources(requests={"cpu": "100m"})


def test_job_values_win_and_maps_merge_per_key() -> None:
    text = """\
- name: a
  image: other:2
  timeout: 30
  retries: 0
  env: {LOG: debug, EXTRA: "1"}
  hooks:
    fail: [https://mine.example.com/fail]
    start: https://mine.example.com/start
  concurrency: {limit: 5, policy: queue}
"""
    job = definitions.parse_job_file("a.yml", text, defaults()).jobs[0].definition
    assert job.image == "other:2"
    assert job.timeout == 30
    assert job.retries == 0
    assert job.env == {"REGION": "eu", "LOG": "debug", "EXTRA": "1"}
    assert job.hooks == {
        "fail": ["https://mine.example.com/fail"],
        "complete": ["https://hooks.example.com/done"],
        "start": ["https://mine.example.com/start"],
    }
    assert job.concurrency == defn.Concurrency(limit=5, policy="queue")


def test_an_empty_hook_list_turns_a_default_hook_off() -> None:
    text = "- name: quiet\n  hooks: {fail: []}\n"
    job = definitions.parse_job_file("a.yml", text, defaults()).jobs[0].definition
    assert job.hooks is not None
    assert job.hooks["fail"] == []


def test_defaults_do_not_leak_between_jobs() -> None:
    text = "- name: a\n  env: {A: '1'}\n- name: b\n"
    jobs = definitions.parse_job_file("a.yml", text, defaults()).jobs
    assert jobs[0].definition.env == {"REGION": "eu", "LOG": "info", "A": "1"}
    assert jobs[1].definition.env == {"REGION": "eu", "LOG": "info"}


def test_empty_overseer_yml_has_no_defaults() -> None:
    for text in ["", "defaults:\n", "{}"]:
        result = definitions.parse_defaults(text)
        assert result == definitions.DefaultsResult()


def test_defaults_refuse_job_only_fields() -> None:
    result = definitions.parse_defaults("defaults:\n  command: echo\n")
    assert result.defaults is None
    (error,) = result.errors
    assert (error.file, error.field, error.line) == ("overseer.yml", "defaults.command", 2)
    assert "unknown field 'command'" in error.message


def test_defaults_errors_have_lines() -> None:
    result = definitions.parse_defaults("defaults:\n  timeout: forever\n")
    (error,) = result.errors
    assert (error.field, error.line) == ("defaults.timeout", 2)
    bad_yaml = definitions.parse_defaults("defaults: [\n")
    assert bad_yaml.errors[0].line == 2


def test_duplicates_within_a_file_are_reported_at_both_places() -> None:
    result = definitions.parse_job_file("a.yml", "- name: same\n- name: other\n- name: same\n")
    errors = definitions.find_duplicates([result])
    assert [(e.file, e.job, e.line) for e in errors] == [("a.yml", "same", 1), ("a.yml", "same", 3)]
    assert "a.yml (line 3)" in errors[0].message
    assert "a.yml (line 1)" in errors[1].message


def test_duplicates_across_files() -> None:
    first = definitions.parse_job_file("a.yml", "- name: A job\n")
    second = definitions.parse_job_file("b.json", '[{"name": "A job"}]')
    different_case = definitions.parse_job_file("c.yml", "- name: a job\n")
    errors = definitions.find_duplicates([first, second, different_case])
    assert [(e.file, e.job, e.field) for e in errors] == [
        ("a.yml", "A job", "name"),
        ("b.json", "A job", "name"),
    ]
    assert "b.json (job #1)" in errors[0].message


def test_no_duplicates_no_errors() -> None:
    results = [definitions.parse_job_file(f"{i}.yml", f"- name: job {i}\n") for i in range(5)]
    assert definitions.find_duplicates(results) == []


def test_parse_repository_keeps_good_files_and_names_failed_ones() -> None:
    files = {
        "jobs/good.yml": "- name: good\n  command: echo\n",
        "jobs/broken.yml": "- name: broken\n  comand: echo\n",
        "jobs/one.yml": "- name: twice\n",
        "jobs/two.json": '[{"name": "twice"}]',
    }
    result = definitions.parse_repository(files, DEFAULTS)
    assert sorted(j.name for j in result.jobs.values()) == ["good"]
    assert result.failed_files == {"jobs/broken.yml", "jobs/one.yml", "jobs/two.json"}
    assert [e.file for e in result.errors] == ["jobs/broken.yml", "jobs/one.yml", "jobs/two.json"]
    good = next(iter(result.jobs.values()))
    assert good.definition.image == "registry.example.com/runner:1"
    assert next(iter(result.jobs)) == good.resource_name


def test_parse_repository_fails_everything_when_defaults_fail() -> None:
    files = {"a.yml": "- name: a\n"}
    result = definitions.parse_repository(files, "defaults:\n  imag: x\n")
    assert result.jobs == {}
    assert result.failed_files == {"a.yml", "overseer.yml"}
    assert result.errors[0].file == "overseer.yml"


def test_parse_repository_without_overseer_yml() -> None:
    result = definitions.parse_repository({"a.yml": "- name: a\n"})
    assert next(iter(result.jobs.values())).definition.image is None
    assert result.errors == ()
    assert result.failed_files == frozenset()


def test_jobs_do_not_share_the_defaults_objects() -> None:
    shared = defaults()
    jobs = definitions.parse_job_file("a.yml", "- name: a\n- name: b\n", shared).jobs
    first, second = (j.definition for j in jobs)
    assert first.concurrency == second.concurrency
    assert first.concurrency is not second.concurrency
    assert first.concurrency is not shared.concurrency
    assert first.hooks is not None
    assert second.hooks is not None
    first.hooks["fail"].append("https://other.example.com/")
    assert second.hooks["fail"] == ["https://hooks.example.com/fail"]


def test_a_file_too_large_to_read_fails_with_what_to_do() -> None:
    result = definitions.parse_repository(
        {"ok.yml": "- name: ok\n"}, None, too_large={"big.yml": 300 * 1024 * 1024}
    )
    assert [job.name for job in result.jobs.values()] == ["ok"]
    assert result.failed_files == {"big.yml"}
    (error,) = result.errors
    assert error.file == "big.yml"
    assert "300.0 MiB, over the 1 MiB" in error.message and "split it" in error.message


def test_an_overseer_yml_too_large_to_read_fails_every_file() -> None:
    result = definitions.parse_repository(
        {"ok.yml": "- name: ok\n"}, None, too_large={"overseer.yml": 2 * 1024 * 1024}
    )
    assert result.jobs == {}
    assert result.failed_files == {"ok.yml", "overseer.yml"}
    assert [e.file for e in result.errors] == ["overseer.yml"]
