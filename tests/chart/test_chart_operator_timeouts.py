"""charts/overseer: the operator's timeouts and resync interval, as values of their own."""

from __future__ import annotations

from typing import Any

from overseer.operator.settings import Settings
from tests.chart.conftest import Render
from tests.chart.test_chart import operator_container

VARIABLES = {
    "OVERSEER_KUBE_TIMEOUT": "kube_timeout",
    "OVERSEER_LOG_READ_TIMEOUT": "log_read_timeout",
    "OVERSEER_WATCH_TIMEOUT": "watch_timeout",
    "OVERSEER_RESYNC_INTERVAL": "resync_interval",
}


def operator_env(render: Render, values: dict[str, Any] | None = None) -> dict[str, str]:
    rendered = render(values)
    assert rendered.returncode == 0, rendered.stderr
    return {e["name"]: e["value"] for e in operator_container(rendered)["env"] if "value" in e}


def seconds(env: dict[str, str]) -> dict[str, float]:
    """What the operator makes of the chart's variables: each setting, in seconds."""
    given = {name: value for name, value in env.items() if name in VARIABLES}
    settings = Settings.from_env(given)
    return {name: getattr(settings, field) for name, field in VARIABLES.items()}


def test_the_defaults_are_the_operators_own(render: Render) -> None:
    env = operator_env(render)
    assert [env[name] for name in VARIABLES] == ["30s", "5m", "5m", "5m"]
    defaults = Settings.from_env({})
    assert seconds(env) == {name: getattr(defaults, f) for name, f in VARIABLES.items()}


def test_each_value_reaches_its_setting(render: Render) -> None:
    values = {
        "operator": {
            "timeouts": {"kube": "10s", "logRead": "2m", "watch": "90s"},
            "resyncInterval": "30s",
        }
    }
    assert seconds(operator_env(render, values)) == {
        "OVERSEER_KUBE_TIMEOUT": 10.0,
        "OVERSEER_LOG_READ_TIMEOUT": 120.0,
        "OVERSEER_WATCH_TIMEOUT": 90.0,
        "OVERSEER_RESYNC_INTERVAL": 30.0,
    }


def test_extra_env_still_wins(render: Render) -> None:
    values = {"operator": {"extraEnv": [{"name": "OVERSEER_RESYNC_INTERVAL", "value": "1m"}]}}
    rendered = render(values)
    names = [e["name"] for e in operator_container(rendered)["env"]]
    # Kubernetes takes the last of two variables of one name: extraEnv's.
    assert names.index("OVERSEER_RESYNC_INTERVAL") < len(names) - 1
    assert operator_container(rendered)["env"][-1] == values["operator"]["extraEnv"][0]
