"""Parsing job files: valid jobs, and errors that name file, job, field and line."""

from __future__ import annotations

import json

import pytest

from overseer.core import cmdspec, definitions, names

README_FILE = """\
- name: A job
  description: An example job
  cmdspec: example_command positional_var --some-opt some_opt
"""


def only_error(result: definitions.FileResult) -> definitions.Error:
    assert result.failed
    assert result.jobs == ()
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


# --- valid files ------------------------------------------------------------------------


def test_readme_example() -> None:
    result = definitions.parse_job_file("example_job.yml", README_FILE)
    assert not result.failed
    (job,) = result.jobs
    assert job.name == "A job"
    assert job.file == "example_job.yml"
    assert job.index == 0
    assert job.line == 1
    assert job.resource_name == names.job_resource_name("A job")
    assert job.definition.description == "An example job"
    assert job.definition.runs == "cmdspec"
    assert job.template is not None
    assert job.template.parameter_names == ("positional_var", "some_opt")
    argv = cmdspec.build_argv(
        job.template, {"positional_var": "a b", "some_opt": "x"}, job.definition.parameters
    )
    assert argv == ["example_command", "a b", "--some-opt", "x"]


def test_all_fields() -> None:
    text = """\
- name: Nightly backup
  description: Back up the database
  cmdspec: backup target --level level
  env: {REGION: eu-west-1, WORKERS: 4}
  user: backup
  group: 1000
  parameters:
    target: {description: what to back up, default: db}
    level: {default: full, allowed: [full, incremental]}
    token: {required: false, secret: true}
  timeout: 1h30m
  schedule: {cron: "0 3 * * *", timezone: Europe/Paris}
  concurrency: {limit: 2, policy: queue, group: backups}
  hooks:
    fail: https://hooks.example.com/fail
    complete: [https://a.example.com/x, http://b.example.com/y]
    custom-event: []
  image: registry.example.com/backup:1.2
  imageAccounts: {users: {backup: 1000}}
  resources: {requests: {cpu: 0.5, memory: 256Mi}, limits: {memory: 1Gi, cpu: 2}}
  retries: 3
"""
    result = definitions.parse_job_file("jobs/backup.yaml", text)
    assert not result.failed, result.errors
    job = result.jobs[0].definition
    assert job.env == {"REGION": "eu-west-1", "WORKERS": "4"}
    assert (job.user, job.group) == ("backup", 1000)
    assert job.parameters is not None
    assert job.parameters["level"].allowed == ["full", "incremental"]
    assert job.parameters["token"].secret is True
    assert job.timeout == "1h30m"
    assert job.schedule is not None
    assert (job.schedule.cron, job.schedule.timezone) == ("0 3 * * *", "Europe/Paris")
    assert job.concurrency is not None
    assert (job.concurrency.limit, job.concurrency.policy) == (2, "queue")
    assert job.hooks == {
        "fail": ["https://hooks.example.com/fail"],
        "complete": ["https://a.example.com/x", "http://b.example.com/y"],
        "custom-event": [],
    }
    assert job.resources is not None
    assert job.resources.requests == {"cpu": "0.5", "memory": "256Mi"}
    assert job.resources.limits == {"memory": "1Gi", "cpu": 2}
    assert job.retries == 3


def test_single_mapping_is_one_job() -> None:
    result = definitions.parse_job_file("one.yml", "name: solo\ncommand: [echo, hi]\n")
    assert [j.name for j in result.jobs] == ["solo"]
    assert result.jobs[0].definition.command == ["echo", "hi"]
    assert result.jobs[0].line == 1


def test_empty_file_defines_no_job_and_no_error() -> None:
    for text in ["", "# only a comment\n", "---\n", "[]"]:
        result = definitions.parse_job_file("empty.yml", text)
        assert not result.failed
        assert result.jobs == ()


def test_job_without_command_is_a_no_op_job() -> None:
    result = definitions.parse_job_file("noop.yml", "- name: nothing\n")
    assert result.jobs[0].definition.runs == "nothing"
    assert result.jobs[0].template is None


def test_json_files() -> None:
    text = json.dumps(
        [
            {"name": "A job", "cmdspec": "example_command positional_var"},
            {"name": "Script job", "script": "#!/bin/sh\necho hi\n", "timeout": 30},
        ]
    )
    result = definitions.parse_job_file("jobs.json", text)
    assert [j.name for j in result.jobs] == ["A job", "Script job"]
    assert result.jobs[1].definition.timeout == 30
    assert result.jobs[0].line is None


def test_bytes_with_bom_are_read() -> None:
    result = definitions.parse_job_file("bom.yml", "\ufeff- name: Café\n".encode())
    assert [j.name for j in result.jobs] == ["Café"]


@pytest.mark.parametrize(
    "name",
    ["A job", "a job", "Sauvegarde nocturne é", "日本語のジョブ", "job/with/slashes", "50% off!"],
)
def test_unicode_and_spaces_in_names(name: str) -> None:
    result = definitions.parse_job_file("names.yml", f"- name: {json.dumps(name)}\n")
    assert [j.name for j in result.jobs] == [name]
    assert result.jobs[0].resource_name == names.job_resource_name(name)


def test_original_format_without_parameters_accepts_any_cmdspec_name() -> None:
    result = definitions.parse_job_file("a.yml", "- name: a\n  cmdspec: run x y --z z\n")
    assert not result.failed
    assert result.jobs[0].definition.parameters is None


# --- errors ----------------------------------------------------------------------------------


def test_malformed_yaml_gives_line_and_column() -> None:
    error = only_error(definitions.parse_job_file("bad.yml", "- name: a\n  command: [echo\n"))
    assert error.file == "bad.yml"
    assert error.line == 3
    assert "not valid YAML" in error.message
    assert "column" in error.message


def test_malformed_json_gives_line() -> None:
    error = only_error(definitions.parse_job_file("bad.json", '[{"name": "a",\n "x": }]'))
    assert error.line == 2
    assert "not valid JSON" in error.message


def test_duplicate_yaml_key_is_an_error() -> None:
    text = "- name: a\n  command: echo one\n  command: echo two\n"
    error = only_error(definitions.parse_job_file("dup.yml", text))
    assert error.line == 3
    assert "'command' twice" in error.message
    assert "first on line 2" in error.message


def test_duplicate_json_key_is_an_error() -> None:
    error = only_error(definitions.parse_job_file("dup.json", '{"name": "a", "name": "b"}'))
    assert "'name' twice" in error.message


def test_yaml_merge_keys_are_not_duplicates() -> None:
    text = """\
- &base
  name: base
  env: {A: "1"}
- <<: *base
  name: derived
"""
    result = definitions.parse_job_file("merge.yml", text)
    assert [j.name for j in result.jobs] == ["base", "derived"]
    assert result.jobs[1].definition.env == {"A": "1"}


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    lines.append("name: *a11")
    error = only_error(definitions.parse_job_file("bomb.yml", "\n".join(lines)))
    assert "expands to more than" in error.message


def test_deep_nesting_is_refused_not_crashing() -> None:
    error = only_error(definitions.parse_job_file("deep.json", "[" * 100_000 + "]" * 100_000))
    assert "nested too deeply" in error.message


def test_not_utf8_is_an_error() -> None:
    error = only_error(
        definitions.parse_job_file("latin1.yml", "- name: caf\xe9\n".encode("latin-1"))
    )
    assert "not UTF-8" in error.message


def test_other_extensions_are_not_job_files() -> None:
    error = only_error(definitions.parse_job_file("notes.txt", "- name: a\n"))
    assert "not a job file" in error.message
    assert definitions.is_job_file("jobs/a.YAML")
    assert definitions.is_job_file("a.json")
    assert not definitions.is_job_file("overseer.yml")
    assert not definitions.is_job_file("bin/run.sh")


def test_several_yaml_documents_are_an_error() -> None:
    error = only_error(definitions.parse_job_file("two.yml", "- name: a\n---\n- name: b\n"))
    assert "single document" in error.message
    assert error.line == 2


def test_files_over_one_mib_are_refused() -> None:
    text = "- name: big\n  description: " + "x" * (1024 * 1024) + "\n"
    error = only_error(definitions.parse_job_file("big.yml", text))
    assert "larger than 1 MiB" in error.message
    assert "larger than" in only_error(definitions.parse_job_file("big.yml", text.encode())).message


def test_top_level_scalar_is_an_error() -> None:
    error = only_error(definitions.parse_job_file("s.yml", "just text\n"))
    assert "list of jobs" in error.message


def test_unknown_field_names_job_field_line_and_suggests() -> None:
    text = "- name: first\n  command: echo\n- name: A job\n  comand: echo hi\n"
    error = only_error(definitions.parse_job_file("jobs.yml", text))
    assert (error.job, error.field, error.line) == ("A job", "comand", 4)
    assert "unknown field 'comand'" in error.message
    assert "did you mean 'command'" in error.message


def test_unknown_nested_field_lists_the_known_ones() -> None:
    text = "- name: a\n  parameters:\n    day:\n      defualt: monday\n"
    error = only_error(definitions.parse_job_file("jobs.yml", text))
    assert (error.field, error.line) == ("parameters.day.defualt", 4)
    assert "did you mean 'default'" in error.message
    assert "allowed, default, description, required, secret" in error.message


def test_one_bad_job_fails_the_whole_file_with_every_error() -> None:
    text = """\
- name: good
  command: echo ok
- name: bad one
  command: echo
  script: echo
- name: bad two
  retries: -1
"""
    result = definitions.parse_job_file("jobs.yml", text)
    assert result.failed
    assert result.jobs == ()
    assert [(e.job, e.field) for e in result.errors] == [("bad one", None), ("bad two", "retries")]
    assert "mutually exclusive" in result.errors[0].message
    assert result.errors[0].line == 3


def test_job_without_a_name() -> None:
    result = definitions.parse_job_file("jobs.yml", "- command: echo\n- 42\n")
    assert [(e.job, e.field, e.line) for e in result.errors] == [
        (None, "[0].name", 1),
        (None, "[1]", 2),
    ]
    assert result.errors[0].message == "every job needs a name"


@pytest.mark.parametrize(
    ("job", "field", "message"),
    [
        ({"command": "echo", "script": "echo"}, None, "command and script are mutually"),
        ({"cmdspec": "run x", "command": "echo"}, None, "cmdspec and command are mutually"),
        ({"cmdspec": "run x", "script": "echo"}, None, "cmdspec and script are mutually"),
        ({"command": ""}, "command", "command is empty"),
        ({"command": []}, "command", "empty list"),
        ({"command": ["echo", 1]}, "command", "every item of a command list must be text"),
        ({"command": {"x": 1}}, "command", "shell command line"),
        ({"cmdspec": "run file.txt"}, "cmdspec", "quote it"),
        ({"cmdspec": "run x", "parameters": {"y": {}}}, "cmdspec", "'x', which is not declared"),
        ({"env": {"A": 1.5}}, "env.A", "put the value in quotes"),
        ({"env": {"A": True}}, "env.A", "boolean"),
        ({"env": {"1A": "x"}}, "env.1A", "not a valid name"),
        ({"parameters": {"bad-name": {}}}, "parameters.bad-name", "not a valid name"),
        ({"parameters": {"p": {"required": True, "default": "x"}}}, "parameters.p", "drop"),
        ({"parameters": {"p": {"allowed": ["a"], "default": "b"}}}, "parameters.p", "not one of"),
        ({"parameters": {"p": {"allowed": []}}}, "parameters.p.allowed", "at least 1"),
        ({"parameters": {"p": {"allowed": ["a", "a"]}}}, "parameters.p", "twice"),
        ({"timeout": "soon"}, "timeout", "not a duration"),
        ({"timeout": 0}, "timeout", "at least 1"),
        ({"timeout": True}, "timeout", "boolean"),
        ({"schedule": "every day"}, "schedule.cron", "not a cron schedule"),
        ({"schedule": "* * * * * *"}, "schedule.cron", "five fields"),
        ({"schedule": {"cron": "@daily", "timezone": "Mars/Base"}}, "schedule.timezone", "IANA"),
        ({"concurrency": {"limit": 0}}, "concurrency.limit", "greater than or equal to 1"),
        ({"concurrency": {"policy": "maybe"}}, "concurrency.policy", "allow"),
        ({"concurrency": {"group": "has space"}}, "concurrency.group", "not a valid value"),
        ({"hooks": {"fail": "ftp://x"}}, "hooks.fail[0]", "http(s) URL"),
        ({"hooks": {"bad status": []}}, "hooks.bad status", "not a valid name"),
        ({"image": "has space"}, "image", "blank space"),
        ({"resources": {"limits": {"memory": "lots"}}}, "resources.limits.memory", "quantity"),
        ({"resources": {"limits": {"memory": True}}}, "resources.limits.memory", "boolean"),
        ({"resources": {"cpu": 1}}, "resources.cpu", "unknown field"),
        ({"retries": 101}, "retries", "less than or equal to 100"),
        ({"user": "no spaces allowed"}, "user", "not a user or group name"),
        ({"group": -1}, "group", "between 0 and"),
    ],
)
def test_field_errors(job: dict[str, object], field: str | None, message: str) -> None:
    text = json.dumps([{"name": "j", **job}])
    error = only_error(definitions.parse_job_file("jobs.json", text))
    assert error.job == "j"
    assert error.field == field
    assert message in error.message


@pytest.mark.parametrize("name", ["", " leading space", "trailing space ", "new\nline", "tab\tin"])
def test_bad_names(name: str) -> None:
    error = only_error(definitions.parse_job_file("j.json", json.dumps([{"name": name}])))
    assert error.field == "name"


def test_schedule_with_required_parameter_is_an_error() -> None:
    text = "- name: a\n  cmdspec: run x\n  schedule: '@daily'\n"
    error = only_error(definitions.parse_job_file("jobs.yml", text))
    assert (error.field, error.line) == ("schedule", 3)
    assert "'x' is required" in error.message
    ok = "- name: a\n  cmdspec: run x\n  schedule: '@daily'\n  parameters: {x: {default: v}}\n"
    assert not definitions.parse_job_file("jobs.yml", ok).failed


def test_check_definition_is_empty_for_a_valid_job() -> None:
    job = definitions.parse_job_file("a.yml", README_FILE).jobs[0].definition
    assert definitions.check_definition(job) == []


def test_user_and_group_names_are_checked_at_sync_against_the_image_accounts() -> None:
    ok = definitions.parse_job_file("a.yml", "- name: A job\n  user: nobody\n  group: nogroup\n")
    assert not ok.failed, ok.errors
    root = definitions.parse_job_file("b.yml", "- name: B\n  user: root\n")
    [error] = root.errors
    assert (error.field, error.line) == ("user", 2)
    assert "uid 0" in error.message and "restricted" in error.message
    custom = definitions.parse_job_file("c.yml", "- name: C\n  image: app:1\n  group: web\n")
    [error] = custom.errors
    assert error.field == "group" and "imageAccounts.groups" in error.message
    mapped = "- name: C\n  image: app:1\n  group: web\n  imageAccounts: {groups: {web: 3000}}\n"
    assert not definitions.parse_job_file("c.yml", mapped).failed
