"""Every error Overseer raises on purpose is an ``overseer.errors.OverseerError``.

One handler in the operator and one in the API map errors by class (policy and
reason); an error class defined beside the module that raises it, or a bare
``Exception``, would slip past both. This test walks every module of the package.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import overseer
from overseer import errors

# Exceptions of Python or of a library that the package may raise, and why.
ALLOWED_FOREIGN: dict[type[BaseException], str] = {
    ValueError: "pydantic validators (and the parse helpers they call) must raise it",
    TypeError: "a programming error (a wrong argument type), never the user's",
    SystemExit: "the entry point's exit status",
}
ALLOWED_FOREIGN_NAMES: dict[str, str] = {
    "kopf.TemporaryError": "kopf's own signal to retry a handler later",
    "yaml.constructor.ConstructorError": "PyYAML's own, turned into LoadError by documents.load",
    "aiohttp.ClientError": "aiohttp's own, turned into KubeError by kube_resources.wrap",
}


def _modules() -> Iterator[ModuleType]:
    yield overseer
    for info in pkgutil.walk_packages(overseer.__path__, "overseer."):
        if info.name.endswith("__main__"):
            continue
        yield importlib.import_module(info.name)


def _resolve(node: ast.expr, namespace: dict[str, Any]) -> Any:
    """The object a ``Name`` or dotted ``Attribute`` refers to, or None."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, namespace)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


def _raised(module: ModuleType) -> Iterator[tuple[int, str, Any]]:
    """(line, source text, resolved object) of each ``raise X`` / ``raise X(...)``."""
    source = Path(inspect.getfile(module)).read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            yield node.lineno, ast.unparse(target), _resolve(target, vars(module))


def test_every_exception_class_defined_in_the_package_is_an_overseer_error() -> None:
    strays = [
        f"{module.__name__}.{name}"
        for module in _modules()
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == module.__name__
        and not issubclass(value, errors.OverseerError)
    ]
    assert strays == []


def test_every_exception_class_is_defined_in_overseer_errors() -> None:
    elsewhere = [
        f"{module.__name__}.{name}"
        for module in _modules()
        if module is not errors
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, errors.OverseerError)
        and value.__module__ == module.__name__
    ]
    assert elsewhere == []


def test_every_raise_in_the_package_raises_an_overseer_error_or_an_allowed_one() -> None:
    strays = []
    for module in _modules():
        for line, text, raised in _raised(module):
            if not inspect.isclass(raised):
                continue  # a variable holding an error, or a function that builds one
            allowed = raised in ALLOWED_FOREIGN or text in ALLOWED_FOREIGN_NAMES
            if not (issubclass(raised, errors.OverseerError) or allowed):
                strays.append(f"{module.__name__}:{line}: raise {text}")
    assert strays == []


@pytest.mark.parametrize(
    "error_class",
    [
        c
        for c in vars(errors).values()
        if inspect.isclass(c) and issubclass(c, errors.OverseerError)
    ],
)
def test_every_error_has_a_policy_and_its_own_camel_case_reason(
    error_class: type[errors.OverseerError],
) -> None:
    assert isinstance(error_class.policy, errors.Policy)
    assert error_class.reason[:1].isupper() and error_class.reason.isalnum()
    if error_class is not errors.OverseerError:
        assert "reason" in vars(error_class), f"{error_class.__name__} inherits its reason"
