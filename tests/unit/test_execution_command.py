"""The job's argv and environment stay within what Linux's execve accepts, or are refused.

A value the kernel would refuse (E2BIG at container start) is refused when the
execution is planned instead, naming the parameter (or the definition's field).
"""

from __future__ import annotations

from typing import Any

import pytest

from overseer import errors
from overseer.core import execution_command
from overseer.crd import definition as defn

LIMIT = execution_command.MAX_ARG_STRLEN


def definition(**fields: Any) -> defn.JobDefinition:
    return defn.JobDefinition.model_validate({"name": "A job", **fields})


def refused(job: defn.JobDefinition, supplied: dict[str, str]) -> errors.ParameterError:
    with pytest.raises(errors.ParameterError) as caught:
        execution_command.plan(job, supplied)
    return caught.value


def test_the_bounds_are_linuxs() -> None:
    # MAX_ARG_STRLEN is 32 pages of 4 KiB; the total is a quarter of the default 8 MiB
    # stack limit (2 MiB), of which Overseer lets its own argv and environment take half
    assert LIMIT == 131072
    assert execution_command.ARG_BUDGET == 1024 * 1024


def test_a_300000_byte_parameter_is_refused_naming_it() -> None:
    job = definition(cmdspec="my_command positional_var --some-opt some_opt")
    error = refused(job, {"positional_var": "x" * 300_000, "some_opt": "small"})
    assert [p.parameter for p in error.problems] == ["positional_var"]
    message = str(error)
    assert "positional_var" in message
    assert "300000 bytes" in message
    assert "131072" in message
    assert "x" * 20 not in message


def test_the_largest_value_that_fits_passes_and_one_byte_more_is_refused() -> None:
    # the value travels as OVERSEER_PARAM_P=<value> plus its NUL: the longest string
    job = definition(cmdspec="run p")
    room = LIMIT - len("OVERSEER_PARAM_P=") - 1
    assert execution_command.plan(job, {"p": "v" * room}).values == {"p": "v" * room}
    error = refused(job, {"p": "v" * (room + 1)})
    assert [p.parameter for p in error.problems] == ["p"]


def test_bytes_not_characters_are_counted() -> None:
    job = definition(cmdspec="run p")
    room = LIMIT - len("OVERSEER_PARAM_P=") - 1
    refused(job, {"p": "é" * (room // 2 + 1)})  # two bytes each in UTF-8


def test_many_values_each_under_the_string_limit_are_refused_over_the_total() -> None:
    names = [f"p{i}" for i in range(10)]
    job = definition(cmdspec="run " + " ".join(names))
    values = {n: "v" * 100_000 for n in names}
    values["p7"] = "v" * 120_000  # the largest is the one named
    error = refused(job, values)
    assert [p.parameter for p in error.problems] == ["p7"]
    assert "1048576" in str(error)
    assert "total" in str(error)


def test_a_script_job_and_a_shell_command_job_count_their_values_too() -> None:
    script = definition(script="echo $1", parameters={"p": {}})
    refused(script, {"p": "v" * 200_000})
    shell = definition(command="echo $OVERSEER_PARAM_P", parameters={"p": {}})
    refused(shell, {"p": "v" * 200_000})


def test_a_secret_value_is_counted_and_never_quoted() -> None:
    job = definition(cmdspec="login token", parameters={"token": {"secret": True}})
    error = refused(job, {"token": "s3cr3t" * 30_000})
    assert "s3cr3t" not in str(error)
    assert [p.parameter for p in error.problems] == ["token"]


def test_an_oversized_definition_is_not_runnable_naming_its_field() -> None:
    job = definition(command=["echo"], env={"BIG": "b" * LIMIT})
    with pytest.raises(errors.DefinitionNotRunnableError) as caught:
        execution_command.plan(job, {})
    assert caught.value.field == "env.BIG"
    with pytest.raises(errors.DefinitionNotRunnableError) as caught:
        execution_command.plan(definition(script="#" * LIMIT), {})
    assert caught.value.field == "script"
    with pytest.raises(errors.DefinitionNotRunnableError) as caught:
        execution_command.plan(definition(command=["echo", "a" * LIMIT]), {})
    assert caught.value.field == "command"


def test_ordinary_values_pass() -> None:
    job = definition(cmdspec="my_command positional_var --some-opt some_opt")
    plan = execution_command.plan(job, {"positional_var": "a b", "some_opt": "$(rm -rf /)"})
    assert plan.values == {"positional_var": "a b", "some_opt": "$(rm -rf /)"}


def test_a_definition_over_the_total_by_itself_is_not_runnable() -> None:
    env = {f"V{i}": "v" * 100_000 for i in range(12)}
    job = definition(cmdspec="run p", env=env)
    with pytest.raises(errors.DefinitionNotRunnableError, match="in total"):
        execution_command.plan(job, {"p": "small"})
