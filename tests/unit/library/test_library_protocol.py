"""The frame format and the streaming decoder (pure: no processes)."""

from __future__ import annotations

import base64
import json
import random

import pytest

from overseer_library import protocol

T = 1489895624.840211


def sample_frames() -> list[protocol.Frame]:
    return [
        protocol.Start(1, 42, "my_command", T),
        protocol.Output(2, "stdout", b"hello\x00\xff\xfe no newline"),
        protocol.Output(3, "stderr", b""),
        protocol.Event(4, "deploying", {"pct": 40, "msg": "\u00e9t\u00e9 \U0001f680"}, T),
        protocol.Event(5, "note", "plain text", T),
        protocol.Event(6, "v1.2-x_y", None, T),
        protocol.Signal(7, 15, "received", T),
        protocol.Signal(8, 9, "requested", T),
        protocol.Log(9, "warning", "line one\nline two", T),
        protocol.Exit(10, 0, None, T),
        protocol.Exit(11, None, 9, T),
    ]


@pytest.mark.parametrize("frame", sample_frames(), ids=lambda f: type(f).__name__)
def test_every_frame_survives_a_round_trip_as_one_ascii_line(frame: protocol.Frame) -> None:
    line = protocol.encode(frame)
    assert line.startswith(b"\x1eOVS1 ")
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert line.isascii()
    assert len(line) <= protocol.MAX_FRAME_LINE
    assert protocol.decode_line(line) == frame


def test_the_wire_format_is_the_documented_one() -> None:
    line = protocol.encode(protocol.Output(7, "stderr", b"hi\n"))
    assert line == b'\x1eOVS1 {"type":"out","seq":7,"stream":"stderr","data":"aGkK"}\n'
    line = protocol.encode(protocol.Event(3, "deploying", {"pct": 40}, T))
    payload = json.loads(line[len(protocol.PREFIX) :])
    assert payload == {
        "type": "event",
        "seq": 3,
        "status": "deploying",
        "data": {"pct": 40},
        "time": T,
    }
    line = protocol.encode(protocol.Exit(9, code=None, signal=15, time=T))
    assert json.loads(line[len(protocol.PREFIX) :])["signal"] == 15


def test_the_largest_frames_stay_under_the_containerd_line_split() -> None:
    biggest_out = protocol.encode(
        protocol.Output(2**40, "stderr", b"\xff" * protocol.MAX_OUT_CHUNK)
    )
    assert len(biggest_out) < 16 * 1024
    # \u escapes make non-ASCII text grow six-fold: the limit is on the escaped form.
    data = "x" * (protocol.MAX_EVENT_DATA - 2)
    biggest_event = protocol.encode(protocol.Event(2**40, "s" * 63, data, T))
    assert len(biggest_event) < 16 * 1024
    long_text = "\U0001f680" * 10_000
    assert len(protocol.encode(protocol.Log(1, "error", long_text, T))) < 16 * 1024
    assert len(protocol.encode(protocol.Start(1, 1, long_text, T))) < 16 * 1024


def test_encoders_refuse_what_a_decoder_would_not_accept() -> None:
    with pytest.raises(ValueError, match="at most"):
        protocol.encode(protocol.Output(1, "stdout", b"x" * (protocol.MAX_OUT_CHUNK + 1)))
    with pytest.raises(ValueError, match="reserved"):
        protocol.encode(protocol.Event(1, "complete", None, T))
    with pytest.raises(ValueError, match="limit"):
        protocol.encode(protocol.Event(1, "big", "\u00e9" * protocol.MAX_EVENT_DATA, T))
    with pytest.raises(ValueError, match="either a code or a signal"):
        protocol.encode(protocol.Exit(1, code=0, signal=9, time=T))


@pytest.mark.parametrize(
    ("status", "ok"),
    [
        ("deploying", True),
        ("Step-2.b_c", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("", False),
        ("2fast", False),
        ("has space", False),
        ("new\nline", False),
        ("start", False),
        ("Complete", False),
        ("FAIL", False),
        ("time-out", False),
        ("timeout", True),
    ],
)
def test_custom_statuses_are_sane_identifiers_outside_the_lifecycle(status: str, ok: bool) -> None:
    assert (protocol.check_status(status) is None) == ok


def test_exit_status_is_the_code_or_128_plus_the_signal() -> None:
    assert protocol.Exit(1, 3, None, T).status == 3
    assert protocol.Exit(1, None, 15, T).status == 143
    assert protocol.Summary(None, 9, 4).status == 137


def test_lines_that_are_not_frames_come_out_unframed_with_their_raw_bytes() -> None:
    assert protocol.decode_line(b"Traceback (most recent call last):") == protocol.Unframed(
        b"Traceback (most recent call last):"
    )
    record = protocol.decode_line(b"\xff\xfe binary \n")
    assert record == protocol.Unframed(b"\xff\xfe binary ")
    assert isinstance(record, protocol.Unframed)
    assert record.error is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'\x1eOVS2 {"type":"out"}', "unsupported protocol version"),
        (b"\x1eOVS", "unsupported protocol version"),
        (b'\x1eOVS1 {"type":"out","seq":1,', "corrupt frame"),
        (b"\x1eOVS1 [1,2]", "a frame is a JSON object"),
        (b'\x1eOVS1 {"type":"nope","seq":1}', "unknown frame type"),
        (b'\x1eOVS1 {"type":"out","seq":0,"stream":"stdout","data":""}', "at least 1"),
        (b'\x1eOVS1 {"type":"out","seq":true,"stream":"stdout","data":""}', "'seq'"),
        (b'\x1eOVS1 {"type":"out","seq":1,"stream":"stdin","data":""}', "'stream'"),
        (b'\x1eOVS1 {"type":"out","seq":1,"stream":"stdout","data":"!!"}', "base64"),
        (b'\x1eOVS1 {"type":"exit","seq":1,"code":null,"signal":null,"time":1}', "either"),
        (b'\x1eOVS1 {"type":"event","seq":1,"status":"fail","data":1,"time":1}', "reserved"),
        (b'\x1eOVS1 {"type":"log","seq":1,"level":"loud","message":"","time":1}', "'level'"),
        (b'\x1eOVS1 {"type":"start","seq":1,"pid":1,"program":"x","time":NaN}', "NaN"),
    ],
)
def test_corrupt_frames_are_reported_with_a_reason(line: bytes, reason: str) -> None:
    record = protocol.decode_line(line)
    assert isinstance(record, protocol.Unframed)
    assert record.raw == line
    assert record.error is not None
    assert reason in record.error


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    line = b'\x1eOVS1 {"type":"signal","seq":4,"signal":10,"source":"received","time":1,"x":2}'
    assert protocol.decode_line(line) == protocol.Signal(4, 10, "received", 1.0)


def _stream(rng: random.Random) -> tuple[bytes, list[protocol.Record]]:
    """A log as the operator reads it: frames, with a traceback and a cut last line."""
    expected: list[protocol.Record] = []
    parts: list[bytes] = []
    seq = 0
    for _ in range(120):
        seq += 1
        roll = rng.random()
        frame: protocol.Frame
        if roll < 0.6:
            size = rng.choice([0, 1, 2, 3, 100, protocol.MAX_OUT_CHUNK])
            frame = protocol.Output(seq, rng.choice(protocol.STREAMS), rng.randbytes(size))
        elif roll < 0.8:
            frame = protocol.Event(seq, "step", {"n": seq, "s": "\u00e9\n"}, T + seq)
        else:
            frame = protocol.Log(seq, "info", f"message {seq}", T)
        parts.append(protocol.encode(frame))
        expected.append(frame)
        if rng.random() < 0.05:
            text = b"Traceback \x1e not a frame \xff"
            parts.append(text + b"\n")
            expected.append(protocol.Unframed(text))
    last = protocol.Exit(seq + 1, 0, None, T)
    parts.append(protocol.encode(last)[:-1])  # the reader lost the final newline
    expected.append(last)
    return b"".join(parts), expected


def _decode_in_pieces(data: bytes, cuts: list[int]) -> list[protocol.Record]:
    decoder = protocol.Decoder()
    records: list[protocol.Record] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        records += decoder.feed(data[start:cut])
        start = cut
    return records + decoder.close()


def test_the_decoder_is_indifferent_to_where_chunks_split_the_stream() -> None:
    rng = random.Random(20240611)
    data, expected = _stream(rng)
    assert _decode_in_pieces(data, []) == expected
    for _ in range(300):
        cuts = [rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 60))]
        assert _decode_in_pieces(data, cuts) == expected


def test_the_decoder_handles_one_byte_chunks_and_tracks_the_last_seq() -> None:
    data, expected = _stream(random.Random(7))
    decoder = protocol.Decoder()
    records: list[protocol.Record] = []
    for i in range(len(data)):
        records += decoder.feed(data[i : i + 1])
    records += decoder.close()
    assert records == expected
    assert decoder.last_seq == max(r.seq for r in expected if not isinstance(r, protocol.Unframed))


def test_the_decoder_keeps_memory_bounded_on_endless_lines_and_loses_no_byte() -> None:
    decoder = protocol.Decoder(max_line=64 * 1024)
    junk = random.Random(1).randbytes(3 * 1024 * 1024).replace(b"\n", b"x")
    records: list[protocol.Record] = []
    for i in range(0, len(junk), 10_000):
        records += decoder.feed(junk[i : i + 10_000])
        assert len(decoder._buffer) <= 64 * 1024
    records += decoder.feed(b"\n" + protocol.encode(protocol.Output(5, "stdout", b"ok")))
    records += decoder.close()
    assert all(isinstance(r, protocol.Unframed) for r in records[:-1])
    pieces = b"".join(r.raw for r in records[:-1] if isinstance(r, protocol.Unframed))
    assert pieces == junk
    assert records[-1] == protocol.Output(5, "stdout", b"ok")


def test_re_reading_a_log_yields_the_same_seqs_so_duplicates_can_be_dropped() -> None:
    data, _ = _stream(random.Random(3))
    first = list(protocol.decode_all([data[: len(data) // 2]]))
    seen = max(r.seq for r in first if not isinstance(r, protocol.Unframed))
    again = [r for r in protocol.decode_all([data]) if not isinstance(r, protocol.Unframed)]
    new = [r for r in again if r.seq > seen]
    assert [r.seq for r in new] == list(range(seen + 1, again[-1].seq + 1))


def test_output_data_is_plain_base64_on_the_wire() -> None:
    raw = bytes(range(256))
    payload = json.loads(protocol.encode(protocol.Output(1, "stdout", raw))[len(protocol.PREFIX) :])
    assert base64.b64decode(payload["data"]) == raw


def test_the_termination_summary_round_trips_and_rejects_other_messages() -> None:
    summary = protocol.Summary(None, 15, 42)
    text = protocol.encode_summary(summary)
    assert json.loads(text) == {
        "overseer": 1,
        "code": None,
        "signal": 15,
        "status": 143,
        "last_seq": 42,
    }
    assert protocol.decode_summary(text) == summary
    assert protocol.decode_summary("Error: something else") is None
    assert protocol.decode_summary('{"overseer": 2, "code": 0, "last_seq": 1}') is None
    assert protocol.decode_summary('{"overseer": 1, "code": 0, "signal": 9, "last_seq": 1}') is None


def test_signal_frames_name_their_signal() -> None:
    assert protocol.Signal(1, 15, "received", T).name == "SIGTERM"
    assert protocol.signal_name(40).startswith("SIG")
