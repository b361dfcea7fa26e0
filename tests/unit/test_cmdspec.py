"""cmdspec: parsing templates and building the exact argv from parameters."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from overseer import errors
from overseer.core import cmdspec
from overseer.crd import definition as defn

README = "example_command positional_var --some-opt some_opt"


def p(**kwargs: object) -> defn.Parameter:
    return defn.Parameter.model_validate(kwargs)


# --- parsing ----------------------------------------------------------------------------


def test_readme_example_parses_into_positional_and_option() -> None:
    template = cmdspec.parse_cmdspec(README)
    assert template.program == "example_command"
    assert template.items == (
        cmdspec.Positional("positional_var"),
        cmdspec.Option("--some-opt", "some_opt"),
    )
    assert template.parameter_names == ("positional_var", "some_opt")


def test_quoted_tokens_are_literal_with_shell_word_rules() -> None:
    template = cmdspec.parse_cmdspec(
        """run 'two words' "say \\"hi\\"" back\\ slash 'name' "$HOME" --opt='x y' a"""
    )
    assert template.items == (
        cmdspec.Literal("two words"),
        cmdspec.Literal('say "hi"'),
        cmdspec.Literal("back slash"),
        cmdspec.Literal("name"),
        cmdspec.Literal("$HOME"),
        cmdspec.Literal("--opt=x y"),
        cmdspec.Positional("a"),
    )
    assert template.parameter_names == ("a",)


def test_option_forms() -> None:
    template = cmdspec.parse_cmdspec("cmd --flag=value -o out --verbose -q --level lvl -x")
    assert template.items == (
        cmdspec.Option("--flag", "value", joined=True),
        cmdspec.Option("-o", "out"),
        cmdspec.Literal("--verbose"),
        cmdspec.Literal("-q"),
        cmdspec.Option("--level", "lvl"),
        cmdspec.Literal("-x"),
    )


def test_option_before_quoted_token_is_a_flag() -> None:
    template = cmdspec.parse_cmdspec("cmd --verbose 'literal' name")
    assert template.items == (
        cmdspec.Literal("--verbose"),
        cmdspec.Literal("literal"),
        cmdspec.Positional("name"),
    )


def test_end_of_options_marks_later_positionals() -> None:
    template = cmdspec.parse_cmdspec("cmd first -- second -n")
    assert template.items == (
        cmdspec.Positional("first"),
        cmdspec.Literal("--"),
        cmdspec.Positional("second", after_end_of_options=True),
        cmdspec.Literal("-n"),
    )


def test_same_parameter_twice_is_listed_once() -> None:
    template = cmdspec.parse_cmdspec("cmd a --copy a b")
    assert template.parameter_names == ("a", "b")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("--flag cmd", "must start with the program"),
        ("cmd file.txt", "quote it: 'file.txt'"),
        ("cmd a | grep b", "quote it: '|'"),
        ("cmd $HOME", "quote it"),
        ("cmd 'unclosed", "never closed"),
        ('cmd "unclosed', "never closed"),
        ("cmd trailing\\", "ends with a backslash"),
        ("cmd --out=file.txt", "is not a parameter name"),
        ("cmd --out=", "is not a parameter name"),
        ("cmd -+x", "is not an option name"),
    ],
)
def test_bad_cmdspecs_say_what_to_do(text: str, message: str) -> None:
    with pytest.raises(errors.CmdspecError, match=message.replace("|", r"\|").replace("$", r"\$")):
        cmdspec.parse_cmdspec(text)


# --- argv ---------------------------------------------------------------------------------

HOSTILE_VALUES = [
    "a b",
    ";id",
    "$(id)",
    "$(HOME)",
    "`id`",
    "'; rm -rf / #",
    'quote " and \\ backslash',
    "line one\nline two",
    "tab\there",
    "",
    "-",
    "ünïcödé ✓",
    "x" * (100 * 1024),
]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=lambda v: repr(v[:20]))
def test_values_arrive_exactly_as_argv_items(value: str) -> None:
    template = cmdspec.parse_cmdspec(README)
    argv = cmdspec.build_argv(template, {"positional_var": value, "some_opt": value}, None)
    assert argv == ["example_command", value, "--some-opt", value]


def test_design_example() -> None:
    template = cmdspec.parse_cmdspec(README)
    argv = cmdspec.build_argv(template, {"positional_var": "a b", "some_opt": "$(rm -rf /)"}, None)
    assert argv == ["example_command", "a b", "--some-opt", "$(rm -rf /)"]


def test_joined_option_keeps_value_in_one_item() -> None:
    template = cmdspec.parse_cmdspec("cmd --name=who")
    assert cmdspec.build_argv(template, {"who": "a=b c"}, None) == ["cmd", "--name=a=b c"]


def test_literals_pass_through() -> None:
    template = cmdspec.parse_cmdspec("cmd 'fixed arg' --verbose x")
    assert cmdspec.build_argv(template, {"x": "1"}, None) == ["cmd", "fixed arg", "--verbose", "1"]


def test_dash_leading_positional_is_refused_without_end_of_options() -> None:
    template = cmdspec.parse_cmdspec(README)
    with pytest.raises(errors.ParameterError) as caught:
        cmdspec.build_argv(template, {"positional_var": "--flag", "some_opt": "x"}, None)
    assert [p.parameter for p in caught.value.problems] == ["positional_var"]
    assert "put -- before this parameter" in str(caught.value)


def test_dash_leading_positional_is_accepted_after_end_of_options() -> None:
    template = cmdspec.parse_cmdspec("rm -- target")
    assert cmdspec.build_argv(template, {"target": "-rf"}, None) == ["rm", "--", "-rf"]
    quoted = cmdspec.parse_cmdspec("rm '--' target")
    assert cmdspec.build_argv(quoted, {"target": "-rf"}, None) == ["rm", "--", "-rf"]


def test_dash_leading_option_value_is_passed_as_the_value() -> None:
    template = cmdspec.parse_cmdspec(README)
    argv = cmdspec.build_argv(template, {"positional_var": "a", "some_opt": "--flag"}, None)
    assert argv == ["example_command", "a", "--some-opt", "--flag"]


def test_nul_is_refused() -> None:
    template = cmdspec.parse_cmdspec(README)
    with pytest.raises(errors.ParameterError, match="NUL"):
        cmdspec.build_argv(template, {"positional_var": "a\x00b", "some_opt": "x"}, None)


# --- parameters -----------------------------------------------------------------------------


def test_original_format_every_name_is_required() -> None:
    template = cmdspec.parse_cmdspec(README)
    with pytest.raises(errors.ParameterError) as caught:
        cmdspec.build_argv(template, {}, None)
    assert {p.parameter for p in caught.value.problems} == {"positional_var", "some_opt"}
    assert all("is required" in p.message for p in caught.value.problems)


def test_unknown_parameter_is_an_error_naming_the_accepted_ones() -> None:
    template = cmdspec.parse_cmdspec(README)
    with pytest.raises(errors.ParameterError) as caught:
        cmdspec.build_argv(template, {"positional_var": "a", "some_opt": "b", "extra": "c"}, None)
    assert [p.parameter for p in caught.value.problems] == ["extra"]
    assert "positional_var, some_opt" in caught.value.problems[0].message


def test_declared_defaults_and_optional_options() -> None:
    template = cmdspec.parse_cmdspec("backup target --level level --tag tag")
    declared = {
        "target": p(required=True),
        "level": p(default="full", allowed=["full", "incremental"]),
        "tag": p(),
    }
    assert cmdspec.build_argv(template, {"target": "db"}, declared) == [
        "backup",
        "db",
        "--level",
        "full",
    ]
    assert cmdspec.build_argv(template, {"target": "db", "tag": "t1"}, declared) == [
        "backup",
        "db",
        "--level",
        "full",
        "--tag",
        "t1",
    ]


def test_value_outside_allowed_is_refused_with_the_choices() -> None:
    template = cmdspec.parse_cmdspec("backup --level level")
    declared = {"level": p(default="full", allowed=["full", "incremental"])}
    with pytest.raises(errors.ParameterError) as caught:
        cmdspec.build_argv(template, {"level": "partial"}, declared)
    problem = caught.value.problems[0]
    assert problem.parameter == "level"
    assert "'full', 'incremental'" in problem.message


def test_missing_optional_positional_before_a_supplied_one_is_refused() -> None:
    template = cmdspec.parse_cmdspec("cp source dest")
    declared = {"source": p(), "dest": p(required=True)}
    with pytest.raises(errors.ParameterError) as caught:
        cmdspec.build_argv(template, {"dest": "/tmp/x"}, declared)
    assert caught.value.problems[0].parameter == "source"
    assert "would take its place" in caught.value.problems[0].message
    # A trailing optional positional may be left out.
    tail = cmdspec.parse_cmdspec("ls dir")
    assert cmdspec.build_argv(tail, {}, {"dir": p()}) == ["ls"]


def test_resolve_parameters_for_jobs_without_cmdspec() -> None:
    declared = {"day": p(default="monday"), "token": p(required=True, secret=True)}
    assert cmdspec.resolve_parameters({"token": "s"}, declared) == {"day": "monday", "token": "s"}
    with pytest.raises(errors.ParameterError, match="token: is required"):
        cmdspec.resolve_parameters({}, declared)


def test_resolve_parameters_refuses_non_text_values() -> None:
    with pytest.raises(errors.ParameterError, match="must be text"):
        cmdspec.resolve_parameters({"n": 5}, {"n": p()})  # type: ignore[dict-item]


def test_effective_parameters() -> None:
    template = cmdspec.parse_cmdspec(README)
    implicit = cmdspec.effective_parameters(template, None)
    assert sorted(implicit) == ["positional_var", "some_opt"]
    assert all(spec.required for spec in implicit.values())
    assert cmdspec.effective_parameters(None, None) == {}
    declared = {"x": p()}
    assert cmdspec.effective_parameters(template, declared) is declared
    assert cmdspec.undeclared(template, declared) == ["positional_var", "some_opt"]


def test_a_real_process_receives_the_values_unchanged() -> None:
    """Run the argv for real: no shell expands, splits or interprets anything."""
    template = cmdspec.parse_cmdspec("python3 '-c' code positional_var --some-opt some_opt")
    code = "import json, sys; sys.stdout.write(json.dumps(sys.argv[1:]))"
    values = [v for v in HOSTILE_VALUES if v]
    for value in values:
        argv = cmdspec.build_argv(
            template,
            {"code": code, "positional_var": value, "some_opt": value},
            None,
        )
        argv[0] = sys.executable
        out = subprocess.run(argv, capture_output=True, check=True, text=True).stdout
        assert json.loads(out) == [value, "--some-opt", value]


# --- secret values are never quoted -------------------------------------------------------

SECRET_VALUE = "-hunter2-s3cr3t"


def test_a_refused_secret_value_is_never_quoted() -> None:
    template = cmdspec.parse_cmdspec("login token")
    declared = {"token": defn.Parameter(secret=True)}
    with pytest.raises(errors.ParameterError, match="token") as caught:
        cmdspec.build_argv(template, {"token": SECRET_VALUE}, declared)
    assert "hunter2" not in str(caught.value)
    assert "secret" in str(caught.value)
    allowed = {"token": defn.Parameter(secret=True, allowed=["a", "b"])}
    with pytest.raises(errors.ParameterError, match="not allowed") as caught:
        cmdspec.resolve_parameters({"token": SECRET_VALUE}, allowed)
    assert "hunter2" not in str(caught.value)


def test_a_refused_plain_value_is_quoted_to_help() -> None:
    template = cmdspec.parse_cmdspec("login token")
    with pytest.raises(errors.ParameterError, match="'-hunter2-s3cr3t' starts with '-'"):
        cmdspec.build_argv(template, {"token": SECRET_VALUE}, None)


def test_a_secret_default_outside_allowed_is_not_quoted() -> None:
    with pytest.raises(ValueError, match="default") as caught:
        defn.Parameter(secret=True, default="hunter2", allowed=["a"])
    assert "hunter2" not in str(caught.value)
