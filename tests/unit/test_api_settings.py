"""The API's settings: OVERSEER_API_* only, read once, bad values named, --help complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from overseer import errors
from overseer import settings as shared
from overseer_api import settings


def test_read_from_its_own_prefix_only() -> None:
    config = settings.Settings.from_env(
        {
            "OVERSEER_API_NAMESPACE": "team-a",
            "OVERSEER_API_NAMESPACES": "team-b, team-c team-b",
            "OVERSEER_API_TOKENS_REFRESH": "2m",
            "OVERSEER_NAMESPACES": "ignored",  # the operator's, not the API's
            "OVERSEER_API_PORT": "",  # blank is unset
        }
    )
    assert config.namespace == "team-a"
    assert config.served_namespaces == ("team-a", "team-b", "team-c")
    assert config.tokens_refresh == 120.0
    assert config.port == 8000


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OVERSEER_API_NAMESPACE", "Not_A_Namespace"),
        ("OVERSEER_API_TOKENS_REFRESH", "soon"),
        ("OVERSEER_API_AUTH", "magic"),
        ("OVERSEER_API_IDEMPOTENCY_TTL", "1h"),
    ],
)
def test_a_bad_variable_is_named(variable: str, value: str) -> None:
    with pytest.raises(errors.SettingsError) as raised:
        settings.Settings.from_env({variable: value})
    assert variable in str(raised.value)


def test_help_lists_every_variable() -> None:
    text = shared.help_text(settings.Settings)
    for name in settings.Settings.model_fields:
        assert f"OVERSEER_API_{name.upper()} " in text


def test_every_api_variable_the_chart_and_the_tests_set_is_a_setting() -> None:
    root = Path(__file__).parents[2]
    texts = [p.read_text() for p in (root / "charts").rglob("*") if p.is_file()]
    texts.append((root / "tests/support/api_process.py").read_text())
    used = {name for text in texts for name in re.findall(r"\bOVERSEER_API_[A-Z_]+\b", text)}
    known = {settings.Settings.env_name(name) for name in settings.Settings.model_fields}
    assert used - known - {"OVERSEER_API_URL"} == set()  # the operator's: where the API is
    assert used & known
