"""Token mode: stored hashes, nested scopes, bad entries named, refresh keeps the old."""

from __future__ import annotations

import json

import pytest

from overseer import errors
from overseer_api import auth


def entry(token: str, *scopes: str) -> str:
    return json.dumps({"sha256": auth.hash_token(token), "scopes": list(scopes)})


async def test_a_token_names_its_caller_with_nested_scopes() -> None:
    data = {"ci": entry("t-ci", "execute"), "admin": entry("t-admin", "admin")}

    async def source() -> dict[str, str]:
        return data

    authenticator = auth.TokenAuthenticator(source, refresh=60)
    ci = await authenticator.authenticate("t-ci")
    assert ci == auth.Caller("token:ci", frozenset({auth.Scope.READ, auth.Scope.EXECUTE}))
    assert await authenticator.authorize(ci, auth.Scope.READ, "ns")
    assert not await authenticator.authorize(ci, auth.Scope.ADMIN, "ns")
    admin = await authenticator.authenticate("t-admin")
    assert admin is not None and admin.scopes == frozenset(auth.Scope)
    assert await authenticator.authenticate("t-ci ") is None
    assert await authenticator.authenticate("") is None


@pytest.mark.parametrize(
    "raw",
    [
        '{"sha256": "abc", "scopes": ["read"]}',
        '{"sha256": "%s", "scopes": ["root"]}' % ("0" * 64),
        "not json",
        '{"scopes": ["read"]}',
    ],
)
def test_a_bad_entry_is_named_and_never_quoted(raw: str) -> None:
    with pytest.raises(errors.SettingsError) as raised:
        auth.parse_tokens({"ci": raw})
    assert "'ci'" in str(raised.value)


async def test_a_failed_refresh_keeps_the_tokens_read_before() -> None:
    calls = 0

    async def source() -> dict[str, str]:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise errors.SettingsError("the Secret is being edited")
        return {"ci": entry("t-ci", "read")}

    authenticator = auth.TokenAuthenticator(source, refresh=1e-9)
    assert await authenticator.authenticate("t-ci") is not None
    assert await authenticator.authenticate("t-ci") is not None
    assert calls == 2


async def test_no_tokens_at_all_is_an_error_not_an_open_door() -> None:
    async def source() -> dict[str, str]:
        raise errors.SettingsError("no Secret")

    with pytest.raises(errors.SettingsError):
        await auth.TokenAuthenticator(source, refresh=60).authenticate("anything")
