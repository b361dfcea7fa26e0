"""The log follower: frames cut anywhere become archived bytes and frames for the status."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.support import fake_kube

from overseer import archive_local, errors
from overseer.core import execution_phase
from overseer.crd import execution as execution_
from overseer.operator import context, executions, log_reading, output
from overseer.operator.settings import Settings
from overseer_library import protocol

KEY = context.Key("team-a", "greet-d4fd03eee1-1795938121-109918")
POD = f"{KEY.name}-x7k2p"

LOG = b"".join(
    [
        protocol.encode(protocol.Start(1, 7, "python3", 1795938122.5)),
        protocol.encode(protocol.Output(2, "stdout", b"\x00\xff no newline")),
        protocol.encode(protocol.Output(3, "stderr", b"err\x80")),
        b"a line the supervisor did not frame\n",
        protocol.encode(protocol.Event(4, "deploying", {"pct": 40}, 1795938123.25)),
        protocol.encode(protocol.Output(5, "stdout", b" and more")),
        protocol.encode(protocol.Exit(6, code=0, signal=None, time=1795938124.0)),
    ]
)


class FakeKube(fake_kube.FakeKube):
    """follow_log serves LOG in small pieces; the execution itself is gone (reads None)."""

    def __init__(self, pieces: list[list[bytes]], pod: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.readings = list(pieces)
        self.pod = pod
        self.follows = 0

    async def follow_log(self, namespace: str, pod: str, container: str) -> AsyncIterator[bytes]:
        assert (namespace, pod, container) == (KEY.namespace, POD, "job")
        self.follows += 1
        reading = self.readings.pop(0)
        for chunk in reading:
            yield chunk
        if not reading:
            raise errors.KubeError("the stream broke", None)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return dict(self.pod) if kind == "Pod" and self.pod is not None else None


def pod(state: str) -> dict[str, Any]:
    return {
        "metadata": {"name": POD},
        "status": {"containerStatuses": [{"name": "job", "state": {state: {}}}]},
    }


def env_for(client: fake_kube.FakeKube) -> context.Environment:
    return context.Environment(
        client=client,
        settings=Settings(retry_min=0.01, retry_max=0.02),
        tracker=context.Tracker(),
        post_event=lambda *_: None,
    )


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def follow(followers: output.Followers, env: context.Environment) -> None:
    followers.notice(KEY, pod("running"), env)
    await asyncio.wait_for(asyncio.gather(*followers.running()), 5)


@pytest.fixture
def store(tmp_path: Path) -> archive_local.LocalArchive:
    return archive_local.LocalArchive(tmp_path)


def reported(
    store: archive_local.LocalArchive,
    stdout: int,
    stderr: int,
    state: execution_.OutputState = "Complete",
    lost: list[execution_.LostOutput] | None = None,
) -> execution_.Archive:
    """What the status is told of the archive of KEY."""
    return execution_.Archive(
        backend="local",
        location=str(store.root / KEY.namespace / KEY.name),
        state=state,
        stdout=execution_.ArchivedStream(size=stdout),
        stderr=execution_.ArchivedStream(size=stderr),
        lost=lost,
    )


def lost(
    after: int, before: int | None, stdout: int, stderr: int, reason: str
) -> execution_.LostOutput:
    return execution_.LostOutput(
        after_seq=after,
        before_seq=before,
        stdout_offset=stdout,
        stderr_offset=stderr,
        reason=reason,
    )


async def test_output_is_archived_and_frames_are_kept_for_the_status(
    store: archive_local.LocalArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    seen: list[list[str]] = []
    client = FakeKube([cut(LOG, 7)])
    env = env_for(client)

    states: list[str | None] = []

    async def observe(key: context.Key, env: context.Environment, **_: Any) -> None:
        seen.append([type(f).__name__ for f in followers.frames(key, POD)])
        report = followers.archive(key, POD)
        assert report is not None
        assert report.model_dump(exclude={"state", "stdout", "stderr"}) == {
            "backend": "local",
            "location": str(store.root / KEY.namespace / KEY.name),
            "lost": None,
        }
        states.append(report.state)

    monkeypatch.setattr(executions, "observe_execution", observe)
    await follow(followers, env)
    # The status hears Archiving while the log is read, Complete once read to its end
    assert set(states[:-1]) == {"Archiving"}
    assert states[-1] == "Complete"
    assert store.read(KEY.namespace, KEY.name, "stdout") == b"\x00\xff no newline and more"
    assert store.read(KEY.namespace, KEY.name, "stderr") == b"err\x80"
    # The status was derived again as frames came, and once more at the end
    assert seen[-1] == ["Start", "Event", "Exit"]
    assert ["Start"] in seen
    writer = store.open_writer(KEY.namespace, KEY.name)
    assert (writer.pod, writer.last_seq, writer.complete) == (POD, 6, True)
    writer.close()
    # Once done, the frames stay for the observation that sees the pod's end after the
    # log was read (its exit time); the archive's state stays, with the sizes
    assert [type(f).__name__ for f in followers.frames(KEY, POD)] == ["Start", "Event", "Exit"]
    assert not followers.frames(KEY, "another-pod")
    assert followers.archive(KEY, POD) == reported(store, stdout=22, stderr=4)
    # A retry's pod, whose log is not read yet, is still being archived
    assert followers.archive(KEY, "a-retry-pod") == reported(store, 22, 4, "Archiving")
    # And once the output is removed (retention), nothing is known
    await followers.remove(KEY)
    assert followers.archive(KEY, POD) is None
    assert not followers.frames(KEY, POD)


async def test_a_broken_stream_is_read_again_and_nothing_is_archived_twice(
    store: archive_local.LocalArchive,
) -> None:
    half = LOG.index(b"\x1eOVS1", LOG.index(b'"deploying"')) + 3  # inside the frame after it
    client = FakeKube([[LOG[:half]], [], cut(LOG, 1000)], pod=pod("running"))
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    await follow(followers, env_for(client))
    assert client.follows == 3
    assert store.read(KEY.namespace, KEY.name, "stdout") == b"\x00\xff no newline and more"
    assert store.read(KEY.namespace, KEY.name, "stderr") == b"err\x80"


async def test_a_log_without_exit_frame_ends_when_the_container_has_terminated(
    store: archive_local.LocalArchive,
) -> None:
    killed = LOG[: LOG.index(b'\x1eOVS1 {"type":"exit"')]
    client = FakeKube([[killed]], pod=pod("terminated"))
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    await follow(followers, env_for(client))
    writer = store.open_writer(KEY.namespace, KEY.name)
    assert (writer.last_seq, writer.complete) == (5, True)
    writer.close()


async def test_a_log_read_to_its_end_is_not_read_again(store: archive_local.LocalArchive) -> None:
    client = FakeKube([[LOG], [LOG]])
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    await follow(followers, env_for(client))
    await follow(followers, env_for(client))  # an operator restart: a new Followers
    await follow(output.Followers(store, retry_min=0.01, retry_max=0.02), env_for(client))
    assert client.follows == 1
    assert store.read(KEY.namespace, KEY.name, "stdout") == b"\x00\xff no newline and more"


def test_a_pod_whose_container_has_not_started_is_not_followed(
    store: archive_local.LocalArchive,
) -> None:
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    env = env_for(FakeKube([]))
    followers.notice(KEY, pod("waiting"), env)
    followers.notice(KEY, None, env)
    assert followers.running() == []


def test_the_archive_directory_is_a_setting() -> None:
    assert Settings.from_env({}).archive_dir == Path("/var/lib/overseer/archive")
    assert Settings.from_env({"OVERSEER_ARCHIVE_DIR": "/data/a"}).archive_dir == Path("/data/a")
    with pytest.raises(errors.SettingsError, match="OVERSEER_ARCHIVE_DIR"):
        Settings.from_env({"OVERSEER_ARCHIVE_DIR": "relative/dir"})


async def test_a_follower_that_fails_is_logged_and_can_start_again(
    store: archive_local.LocalArchive, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(FakeKube):
        async def follow_log(
            self, namespace: str, pod: str, container: str
        ) -> AsyncIterator[bytes]:
            raise RuntimeError("a bug")
            yield b""  # pragma: no cover - makes this an async generator

    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    env = env_for(Broken([]))
    followers.notice(KEY, pod("running"), env)
    await asyncio.gather(*followers.running(), return_exceptions=True)
    await asyncio.sleep(0)
    assert "following its log failed" in caplog.text
    assert followers._tasks == {}
    assert not followers.frames(KEY, POD)


async def test_without_an_archive_the_log_is_still_followed_for_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("not a directory")
    followers = output.Followers(
        archive_local.LocalArchive(tmp_path / "file"), retry_min=0.01, retry_max=0.02
    )
    seen: list[list[str]] = []

    async def observe(key: context.Key, env: context.Environment, **_: Any) -> None:
        seen.append([type(f).__name__ for f in followers.frames(key, POD)])
        assert followers.archive(key, POD) is None  # the status claims no archive

    monkeypatch.setattr(executions, "observe_execution", observe)
    await follow(followers, env_for(FakeKube([cut(LOG, 50)])))
    assert seen[-1] == ["Start", "Event", "Exit"]
    assert "its output is not archived" in caplog.text


def terminated(last_seq: int) -> dict[str, Any]:
    """The pod once the job ended, the supervisor's summary naming its last ``seq``."""
    message = protocol.encode_summary(protocol.Summary(0, None, last_seq))
    state = {"terminated": {"exitCode": 0, "message": message}}
    return {
        "metadata": {"name": POD},
        "status": {"containerStatuses": [{"name": "job", "state": state}]},
    }


async def test_a_log_rotated_as_the_job_ended_is_read_on_from_the_new_file(
    store: archive_local.LocalArchive,
) -> None:
    # The old file ends inside the frame of seq 5; the new one starts with its rest.
    inside = LOG.index(b"\x1eOVS1", LOG.index(b'"deploying"')) + 10
    client = FakeKube([[LOG[:inside]], [LOG[inside:]]], pod=terminated(6))
    events: list[tuple[str, str]] = []
    env = dataclasses.replace(
        env_for(client), post_event=lambda _b, t, r, _m: events.append((t, r))
    )
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    await follow(followers, env)
    assert client.follows == 2
    assert store.read(KEY.namespace, KEY.name, "stdout") == b"\x00\xff no newline and more"
    assert store.read(KEY.namespace, KEY.name, "stderr") == b"err\x80"
    writer = store.open_writer(KEY.namespace, KEY.name)
    assert (writer.last_seq, writer.complete) == (6, True)
    writer.close()
    assert events == []


async def test_frames_the_api_no_longer_serves_are_reported_lost(
    store: archive_local.LocalArchive,
) -> None:
    # Rotated twice between two reads: seq 3 and 4 are in a file nobody can read now.
    frames = list(protocol.decode_all([LOG]))
    keep = [f for f in frames if not isinstance(f, protocol.Unframed) and f.seq not in (3, 4)]
    before, after = [f for f in keep if f.seq < 3], [f for f in keep if f.seq > 4]
    client = FakeKube(
        [[b"".join(map(protocol.encode, before))], [b"".join(map(protocol.encode, after))]],
        pod=terminated(6),
    )
    events: list[tuple[str, str, str]] = []
    env = dataclasses.replace(
        env_for(client), post_event=lambda _b, t, r, m: events.append((t, r, m))
    )
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    await follow(followers, env)
    assert store.read(KEY.namespace, KEY.name, "stdout") == b"\x00\xff no newline and more"
    assert store.read(KEY.namespace, KEY.name, "stderr") == b""
    [(kind, reason, message)] = events
    assert (kind, reason) == ("Warning", "OutputIncomplete")
    assert message.startswith("2 frame(s)")
    # And the status is told the output misses a part, and where it belongs
    gap = lost(2, 5, 13, 0, "LogRotated")
    assert followers.archive(KEY, POD) == reported(store, 22, 0, "Incomplete", [gap])


async def test_a_log_that_stays_short_of_the_summary_is_read_again_a_few_times_only(
    store: archive_local.LocalArchive,
) -> None:
    no_exit = LOG[: LOG.index(b'\x1eOVS1 {"type":"exit"')]
    client = FakeKube([[no_exit]] * (log_reading.MAX_REREADS + 1), pod=terminated(6))
    events: list[str] = []
    env = dataclasses.replace(env_for(client), post_event=lambda _b, _t, r, _m: events.append(r))
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    await follow(followers, env)
    assert client.follows == log_reading.MAX_REREADS + 1
    assert events == ["OutputIncomplete"]
    writer = store.open_writer(KEY.namespace, KEY.name)
    assert writer.complete
    writer.close()


async def test_a_pod_deleted_before_its_log_was_read_to_its_end_leaves_it_incomplete(
    store: archive_local.LocalArchive,
) -> None:
    class Deleted(FakeKube):
        async def follow_log(
            self, namespace: str, pod: str, container: str
        ) -> AsyncIterator[bytes]:
            yield LOG[: LOG.index(b'\x1eOVS1 {"type":"out","seq":5')]
            raise errors.KubeError("pods not found", 404)

    events: list[tuple[str, str, str]] = []
    env = dataclasses.replace(
        env_for(Deleted([])), post_event=lambda _b, t, r, m: events.append((t, r, m))
    )
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    await follow(followers, env)
    # The loss is flagged with its range: in the status, the archive's state and an Event
    end = lost(4, None, 13, 4, "PodDeleted")
    assert followers.archive(KEY, POD) == reported(store, 13, 4, "Incomplete", [end])
    stat = await store.stat(KEY.namespace, KEY.name)
    assert stat is not None
    assert [(x.after_seq, x.before_seq, dict(x.offsets)) for x in stat.lost] == [
        (4, None, {"stdout": 13, "stderr": 4})
    ]
    [(kind, reason, message)] = events
    assert (kind, reason) == ("Warning", "OutputIncomplete")
    assert "deleted before its log was read to its end" in message


async def test_after_a_restart_the_status_is_told_once_that_the_archive_is_complete(
    store: archive_local.LocalArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    await follow(
        output.Followers(store, retry_min=0.01, retry_max=0.02), env_for(FakeKube([[LOG]]))
    )
    observed: list[execution_.Archive | None] = []
    restarted = output.Followers(store, retry_min=0.01, retry_max=0.02)

    async def observe(key: context.Key, env: context.Environment, **_: Any) -> None:
        observed.append(restarted.archive(key, POD))

    monkeypatch.setattr(executions, "observe_execution", observe)
    client = FakeKube([])
    await follow(restarted, env_for(client))
    await follow(restarted, env_for(client))  # the next pod event
    assert client.follows == 0
    assert observed == [reported(store, 22, 4)]


class Recording(FakeKube):
    """Records status patches; the execution reads as ``body``."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__([])
        self.body = body
        self.patches: list[dict[str, Any]] = []

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.body if kind == "OverseerExecution" else None

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self.patches.append({"kind": kind, **status})


async def test_a_terminal_status_gains_the_archive_s_state_when_the_log_is_read(
    store: archive_local.LocalArchive,
) -> None:
    # Given an execution Complete, whose status says its output is being archived
    status = {
        "phase": "Complete",
        "reason": "Completed",
        "podName": POD,
        "archive": reported(store, 0, 0, "Archiving").model_dump(by_alias=True),
    }
    client = Recording({"metadata": {"name": KEY.name}, "spec": {}, "status": status})
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    await follow(followers, env_for(FakeKube([[LOG]])))
    env = dataclasses.replace(env_for(client), output=followers)
    # When it is recorded again, once the log was read to its end
    derived = execution_phase.Derived("Complete", "Completed", "")
    await executions._record(KEY, client.body, derived, None, env)
    # Then one status patch says the output is complete, with its sizes
    [patch] = client.patches
    assert patch["archive"] == {
        "backend": "local",
        "location": str(store.root / KEY.namespace / KEY.name),
        "state": "Complete",
        "stdout": {"size": 22},
        "stderr": {"size": 4},
    }


class TwoAttempts(fake_kube.FakeKube):
    """A Job retried once: each attempt's pod serves its own log."""

    def __init__(self, logs: Mapping[str, bytes]) -> None:
        super().__init__()
        self.logs = dict(logs)
        self.followed: list[str] = []

    async def follow_log(self, namespace: str, pod: str, container: str) -> AsyncIterator[bytes]:
        self.followed.append(pod)
        yield self.logs[pod]

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return None


def attempt(name: str, state: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"containerStatuses": [{"name": "job", "state": {state: {}}}]},
    }


async def test_the_next_attempt_is_followed_when_the_closing_observation_sees_it(
    store: archive_local.LocalArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a first attempt that failed, and its retry running by the time its log ends
    first, second = f"{KEY.name}-aaaaa", f"{KEY.name}-bbbbb"
    failed = protocol.encode(protocol.Output(1, "stdout", b"attempt 1\n")) + protocol.encode(
        protocol.Exit(2, code=1, signal=None, time=1795938124.0)
    )
    passed = protocol.encode(protocol.Output(1, "stdout", b"attempt 2\n")) + protocol.encode(
        protocol.Exit(2, code=0, signal=None, time=1795938125.0)
    )
    client = TwoAttempts({first: failed, second: passed})
    env = env_for(client)
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)

    async def observe(key: context.Key, env: context.Environment, **_: Any) -> None:
        # What observe_execution does: the newest pod is the retry's; tell the followers.
        followers.notice(key, attempt(second, "running"), env)

    monkeypatch.setattr(executions, "observe_execution", observe)
    # When the first attempt's log is followed to its end
    followers.notice(KEY, attempt(first, "terminated"), env)
    for _ in range(50):
        if not (running := followers.running()):
            break
        await asyncio.wait_for(asyncio.gather(*running), 5)
        await asyncio.sleep(0)
    # Then the retry's log is followed too: both attempts' output is archived
    assert client.followed == [first, second]
    assert store.read(KEY.namespace, KEY.name, "stdout") == b"attempt 1\nattempt 2\n"
    # And the archive is finished with the retry's pod, so the Job can be collected
    assert store.finished_pod(KEY.namespace, KEY.name) == second
    assert followers.settled(KEY, second, gone=False)


async def test_a_fresh_follower_of_a_log_rotated_past_its_first_frames_is_incomplete(
    store: archive_local.LocalArchive,
) -> None:
    # Given a log whose first file (seq 1 to 3) was rotated away before it was followed
    frames = [f for f in protocol.decode_all([LOG]) if not isinstance(f, protocol.Unframed)]
    tail = b"".join(protocol.encode(f) for f in frames if f.seq > 3)
    client = FakeKube([[tail]], pod=terminated(6))
    events: list[tuple[str, str]] = []
    env = dataclasses.replace(env_for(client), post_event=lambda _b, t, r, m: events.append((r, m)))
    followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
    # When a fresh follower reads it
    await follow(followers, env)
    # Then the status says the output misses a part, and an Event names the lost frames
    gap = lost(0, 4, 0, 0, "LogRotated")
    assert followers.archive(KEY, POD) == reported(store, 9, 0, "Incomplete", [gap])
    [(reason, message)] = events
    assert reason == "OutputIncomplete"
    assert message.startswith("3 frame(s)")


async def test_a_pod_gone_before_this_process_read_its_log_to_the_end_is_flagged_lost_once(
    store: archive_local.LocalArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an archive of part of a pod's log (an operator stopped while the store was down)
    writer = store.open_writer(KEY.namespace, KEY.name)
    writer.begin(POD)
    writer.append(protocol.Output(1, "stdout", b"part"))
    writer.commit(2)
    writer.close()
    observed: list[context.Key] = []

    async def observe(key: context.Key, env: context.Environment, **_: Any) -> None:
        observed.append(key)

    monkeypatch.setattr(executions, "observe_execution", observe)
    events: list[tuple[str, str]] = []
    env = dataclasses.replace(
        env_for(FakeKube([])), post_event=lambda _b, _t, r, m: events.append((r, m))
    )
    # When the next operator sees the execution with its pod gone
    for _ in range(2):  # and once more, after another restart
        followers = output.Followers(store, retry_min=0.01, retry_max=0.02)
        followers.notice(KEY, None, env, gone=POD)
        await asyncio.wait_for(asyncio.gather(*followers.running()), 5)
        # Then the rest of the log is recorded lost, the status says Incomplete with the range
        end = lost(2, None, 4, 0, "PodDeleted")
        assert followers.archive(KEY, POD) == reported(store, 4, 0, "Incomplete", [end])
    # And an Event says so, once; the execution is observed again to take the state
    assert [reason for reason, _ in events] == ["OutputIncomplete"]
    assert POD in events[0][1]
    assert observed == [KEY, KEY]
