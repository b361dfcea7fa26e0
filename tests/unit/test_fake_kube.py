"""The tests' one fake client refuses every call a test did not plan."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support import fake_kube


async def test_an_unplanned_call_fails_the_test_and_names_itself() -> None:
    client = fake_kube.FakeKube()
    with pytest.raises(fake_kube.UnplannedCallError, match=r"get\('Pod', 'ns', 'p'\)"):
        await client.get("Pod", "ns", "p")
    with pytest.raises(fake_kube.UnplannedCallError, match="patch_status"):
        await client.patch_status("OverseerJob", "ns", "j", {})


async def test_unplanned_streams_fail_when_read() -> None:
    client = fake_kube.FakeKube()
    with pytest.raises(fake_kube.UnplannedCallError, match="list"):
        async for _ in client.list("OverseerJob", "ns"):
            pass
    with pytest.raises(fake_kube.UnplannedCallError, match="follow_log"):
        async for _ in client.follow_log("ns", "p", "job"):
            pass


async def test_a_planned_call_answers_and_the_others_still_fail() -> None:
    class Planned(fake_kube.FakeKube):
        async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
            return {"kind": kind}

    client = Planned()
    assert await client.get("Pod", "ns", "p") == {"kind": "Pod"}
    with pytest.raises(fake_kube.UnplannedCallError):
        await client.delete("Pod", "ns", "p")
