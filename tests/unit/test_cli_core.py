"""The CLI's pure logic: parameters, paths, problems, exit codes, tables."""

from __future__ import annotations

import json

import pytest

from overseer_cli import core


def test_parameters_keep_values_exactly_and_split_at_the_first_equals() -> None:
    pairs = ["positional_var=a b", "some_opt=$(id); rm -rf /", "eq=a=b", "empty=", "é=ü"]
    assert core.parse_parameters(pairs) == {
        "positional_var": "a b",
        "some_opt": "$(id); rm -rf /",
        "eq": "a=b",
        "empty": "",
        "é": "ü",
    }


@pytest.mark.parametrize("pairs", [["novalue"], ["=value"], ["a=1", "a=2"]])
def test_malformed_or_repeated_parameters_are_usage_errors(pairs: list[str]) -> None:
    with pytest.raises(core.UsageError):
        core.parse_parameters(pairs)


def test_paths_quote_each_name_whole() -> None:
    assert core.job_path(None, "A job") == "/jobs/A%20job"
    assert core.job_path(None, "Sauvegarde é") == "/jobs/Sauvegarde%20%C3%A9"
    assert core.job_path(None, "a/b") == "/jobs/a%2Fb"
    assert core.job_path("team-a", "a/b") == "/namespaces/team-a/jobs/a%2Fb"
    assert core.execution_path(None, "a?b#c", "1.5") == "/jobs/a%3Fb%23c/1.5"
    assert core.output_path("ns", "x", "1.5", "stderr") == "/namespaces/ns/jobs/x/1.5/stderr"
    assert core.base_path(None) == ""


def test_a_problem_becomes_its_detail_and_status() -> None:
    body = json.dumps(
        {"type": "t", "title": "Job not found", "status": 404, "detail": "no job is named 'B'"}
    ).encode()
    message = core.problem_message(404, body, "application/problem+json")
    assert message == "no job is named 'B' (HTTP 404)"


def test_a_422_lists_each_field_at_fault() -> None:
    problem = {
        "title": "Bad parameters",
        "status": 422,
        "detail": "the parameters are refused",
        "errors": [{"field": "some_opt", "message": "required"}],
    }
    message = core.problem_message(422, json.dumps(problem).encode(), "application/problem+json")
    assert message == "the parameters are refused\n  some_opt: required (HTTP 422)"


def test_an_answer_that_is_not_a_problem_is_shown_shortened() -> None:
    assert core.problem_message(502, b"Bad Gateway\n", "text/html") == "Bad Gateway (HTTP 502)"
    assert core.problem_message(500, b"", "application/json") == "no detail (HTTP 500)"
    assert core.problem_message(400, b"{oops", "application/json") == "{oops (HTTP 400)"
    assert core.problem_message(500, b"x" * 1000, "text/plain") == "x" * 200 + " (HTTP 500)"


def test_unreachable_names_the_url_and_what_to_do() -> None:
    message = core.unreachable_message("http://localhost:8000", "connection refused")
    assert "http://localhost:8000" in message
    assert "port-forward" in message
    assert "OVERSEER_URL" in message


def test_an_ended_execution_exits_with_its_code_or_1_with_the_phase() -> None:
    assert core.ended_exit({"id": "1.0", "phase": "Failed", "exitCode": 3}) == (3, None)
    assert core.ended_exit({"id": "1.0", "phase": "Complete", "exitCode": 0}) == (0, None)
    code, message = core.ended_exit({"id": "1.0", "phase": "Killed", "signal": "SIGTERM"})
    assert (code, message) == (1, "execution 1.0 ended Killed: SIGTERM")
    timed_out = core.ended_exit({"id": "2.0", "phase": "TimedOut"})
    assert timed_out == (1, "execution 2.0 ended TimedOut")


def test_the_jobs_table_shows_schedule_next_run_and_last_phase() -> None:
    jobs = [
        {
            "name": "Sauvegarde é",
            "active": True,
            "schedule": {"cron": "0 3 * * *", "timezone": "Europe/Paris"},
            "nextRun": "2026-12-07T02:00:00Z",
            "lastExecution": {"id": "1489895624.840211", "phase": "Complete"},
        },
        {"name": "a/b", "active": False},
    ]
    table = core.format_table(core.JOB_HEADERS, map(core.job_row, jobs))
    assert table.splitlines() == [
        "NAME          ACTIVE  SCHEDULE                  NEXT RUN              LAST EXECUTION",
        "Sauvegarde é  yes     0 3 * * * (Europe/Paris)  2026-12-07T02:00:00Z  "
        "1489895624.840211 Complete",
        "a/b           no      -                         -                     -",
    ]


def test_status_rows_show_what_the_execution_has() -> None:
    execution = {
        "id": "1.5",
        "phase": "Complete",
        "exitCode": 0,
        "parameters": {"a": "b c"},
        "signal": None,
    }
    assert core.status_rows(execution) == [
        ["id", "1.5"],
        ["phase", "Complete"],
        ["exitCode", "0"],
        ["parameters", '{"a": "b c"}'],
    ]
    assert core.status_rows({"id": "2.0"})[1] == ["phase", "Pending"]


def test_the_first_byte_of_a_content_range() -> None:
    assert core.range_start("bytes 6-99/100") == 6
    assert core.range_start("bytes */100") == 0
    assert core.range_start("items 6-9/10") == 0
    assert core.range_start("") == 0
