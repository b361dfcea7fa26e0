"""The local output archive: byte-exact streams, nothing written twice, across restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from overseer import archive_local, errors
from overseer_library import protocol

NS, NAME = "team-a", "greet-d4fd03eee1-1795938121-109918"


def out(seq: int, stream: protocol.Stream, data: bytes) -> protocol.Output:
    return protocol.Output(seq, stream, data)


@pytest.fixture
def store(tmp_path: Path) -> archive_local.LocalArchive:
    return archive_local.LocalArchive(tmp_path / "archive")


def test_streams_are_kept_apart_byte_for_byte(store: archive_local.LocalArchive) -> None:
    writer = store.open_writer(NS, NAME)
    writer.begin("pod-a")
    writer.append(out(2, "stdout", b"\x00\xff"))
    writer.append(out(3, "stderr", b"err\x80"))
    writer.append(out(4, "stdout", b"no newline"))
    writer.commit(5, complete=True)
    writer.close()
    assert store.read(NS, NAME, "stdout") == b"\x00\xffno newline"
    assert store.read(NS, NAME, "stderr") == b"err\x80"
    folder = store.folder(NS, NAME)
    assert folder == store.root / NS / NAME
    state = json.loads((folder / archive_local.STATE_FILE).read_text())
    assert state == {
        "pod": "pod-a",
        "lastSeq": 5,
        "sizes": {"stdout": 12, "stderr": 4},
        "complete": True,
    }


def test_nothing_archived_reads_as_none(store: archive_local.LocalArchive) -> None:
    assert store.read(NS, NAME, "stdout") is None


def test_a_log_read_again_from_its_start_appends_nothing_twice(
    store: archive_local.LocalArchive,
) -> None:
    log = [out(1, "stdout", b"one "), out(2, "stderr", b"e1 "), out(3, "stdout", b"two ")]
    writer = store.open_writer(NS, NAME)
    writer.begin("pod-a")
    for frame in log[:2]:
        writer.append(frame)
    writer.commit(2)
    writer.close()
    # A restarted operator re-reads the whole log
    writer = store.open_writer(NS, NAME)
    assert (writer.pod, writer.last_seq, writer.complete) == ("pod-a", 2, False)
    writer.begin("pod-a")
    for frame in log:
        writer.append(frame)
    writer.commit(3)
    writer.close()
    assert store.read(NS, NAME, "stdout") == b"one two "
    assert store.read(NS, NAME, "stderr") == b"e1 "


def test_bytes_written_but_not_committed_are_dropped_then_read_again_once(
    store: archive_local.LocalArchive,
) -> None:
    writer = store.open_writer(NS, NAME)
    writer.begin("pod-a")
    writer.append(out(1, "stdout", b"kept "))
    writer.commit(1)
    writer.append(out(2, "stdout", b"lost "))  # the operator stops before committing
    writer._files["stdout"].flush()  # as if the OS had written it
    assert store.read(NS, NAME, "stdout") == b"kept lost "
    writer = store.open_writer(NS, NAME)  # the next operator
    assert store.read(NS, NAME, "stdout") == b"kept "
    writer.begin("pod-a")
    writer.append(out(1, "stdout", b"kept "))
    writer.append(out(2, "stdout", b"lost "))
    writer.commit(2)
    writer.close()
    assert store.read(NS, NAME, "stdout") == b"kept lost "


def test_a_reconnect_in_one_process_skips_what_was_appended(
    store: archive_local.LocalArchive,
) -> None:
    writer = store.open_writer(NS, NAME)
    writer.begin("pod-a")
    writer.append(out(1, "stdout", b"a"))
    writer.append(out(2, "stdout", b"b"))
    # the stream broke; the log is read again from its start, before any commit
    for frame in (out(1, "stdout", b"a"), out(2, "stdout", b"b"), out(3, "stdout", b"c")):
        writer.append(frame)
    writer.commit(3)
    writer.close()
    assert store.read(NS, NAME, "stdout") == b"abc"


def test_a_retry_pod_restarts_seq_and_appends_after_the_first_attempt(
    store: archive_local.LocalArchive,
) -> None:
    writer = store.open_writer(NS, NAME)
    writer.begin("pod-a")
    writer.append(out(1, "stdout", b"attempt 1\n"))
    writer.commit(2, complete=True)
    writer.begin("pod-b")
    assert (writer.last_seq, writer.complete) == (0, False)
    writer.append(out(1, "stdout", b"attempt 2\n"))
    writer.commit(2, complete=True)
    writer.close()
    assert store.read(NS, NAME, "stdout") == b"attempt 1\nattempt 2\n"
    reopened = store.open_writer(NS, NAME)
    assert (reopened.pod, reopened.last_seq, reopened.complete) == ("pod-b", 2, True)
    reopened.close()


def test_large_output_streams_to_disk_in_order(store: archive_local.LocalArchive) -> None:
    chunks = [bytes([i % 256]) * protocol.MAX_OUT_CHUNK for i in range(300)]  # 2.4 MiB
    writer = store.open_writer(NS, NAME)
    writer.begin("pod-a")
    for seq, chunk in enumerate(chunks, start=1):
        writer.append(out(seq, "stdout", chunk))
    writer.commit(len(chunks))
    writer.close()
    assert store.read(NS, NAME, "stdout") == b"".join(chunks)


@pytest.mark.parametrize("name", ["", "..", "a/b", "."])
def test_names_that_would_leave_the_root_are_refused(
    store: archive_local.LocalArchive, name: str
) -> None:
    with pytest.raises(errors.ArchiveError):
        store.open_writer(NS, name)


def test_a_corrupt_state_file_is_an_archive_error(store: archive_local.LocalArchive) -> None:
    folder = store.folder(NS, NAME)
    folder.mkdir(parents=True)
    (folder / archive_local.STATE_FILE).write_text("{not json")
    with pytest.raises(errors.ArchiveError, match=r"state\.json"):
        store.open_writer(NS, NAME)


def test_an_unwritable_root_is_an_archive_error(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("not a directory")
    with pytest.raises(errors.ArchiveError, match="opening the archive"):
        archive_local.LocalArchive(root).open_writer(NS, NAME)


def test_flushed_output_is_readable_before_it_is_committed(
    store: archive_local.LocalArchive,
) -> None:
    writer = store.open_writer("ns", "x")
    writer.begin("pod-1")
    writer.append(out(1, "stdout", b"live"))
    writer.flush()
    assert store.read("ns", "x", "stdout") == b"live"
    assert not writer.complete
    writer.close()


def test_an_archive_of_another_execution_uid_is_emptied_not_appended_to(tmp_path: Path) -> None:
    store = archive_local.LocalArchive(tmp_path)
    first = store.open_writer("ns", "run", uid="uid-1")
    first.begin("pod-a")
    first.append(out(1, "stdout", b"old run\n"))
    first.commit(1, complete=True)
    first.close()
    # The same execution opening it again goes on with it.
    again = store.open_writer("ns", "run", uid="uid-1")
    assert (again.pod, again.complete) == ("pod-a", True)
    again.close()
    # An execution created again under the name starts afresh.
    second = store.open_writer("ns", "run", uid="uid-2")
    assert (second.pod, second.last_seq, second.complete) == (None, 0, False)
    second.begin("pod-b")
    second.append(out(1, "stdout", b"new run\n"))
    second.commit(1, complete=True)
    second.close()
    assert store.read("ns", "run", "stdout") == b"new run\n"
    assert json.loads((tmp_path / "ns" / "run" / "state.json").read_text())["uid"] == "uid-2"


def test_an_archive_written_before_uids_is_kept_by_its_opener(tmp_path: Path) -> None:
    store = archive_local.LocalArchive(tmp_path)
    legacy = store.open_writer("ns", "run")
    legacy.begin("pod-a")
    legacy.append(out(1, "stdout", b"kept\n"))
    legacy.commit(1)
    legacy.close()
    state = json.loads((tmp_path / "ns" / "run" / "state.json").read_text())
    assert state.get("uid") is None
    resumed = store.open_writer("ns", "run", uid="uid-1")
    assert (resumed.pod, resumed.last_seq) == ("pod-a", 1)
    resumed.close()
    assert store.read("ns", "run", "stdout") == b"kept\n"
