"""The overseer script against a real HTTP server on loopback: what only the wire shows.

The server plays the API for the few answers each test needs; the script runs as a
user runs it (a subprocess), so streaming and retries go through real sockets.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support import loopback

OVERSEER = Path(sys.executable).parent / "overseer"
Handler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def serve(handle: Handler) -> Iterator[str]:
    class Answer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            handle(self)

        do_POST = do_PUT = do_DELETE = do_GET  # noqa: N815 (http.server names them)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    with loopback.running(server, "api"):
        yield f"http://127.0.0.1:{server.server_address[1]}"


def overseer(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OVERSEER_URL": url, "OVERSEER_TOKEN": "t0ken"}
    return subprocess.Popen(
        [str(OVERSEER), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_logs_follow_writes_each_chunk_as_it_comes() -> None:
    second = threading.Event()

    def stream(request: BaseHTTPRequestHandler) -> None:
        assert request.path == "/jobs/Sauvegarde%20%C3%A9/1.5/stdout?follow=true"
        request.send_response(200)
        request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Transfer-Encoding", "chunked")
        request.end_headers()
        for chunk in (b"first\x00\xff", b"second\n"):
            request.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            request.wfile.flush()
            second.wait(30)
        request.wfile.write(b"0\r\n\r\n")

    with serve(stream) as url:
        process = overseer(url, "logs", "Sauvegarde é", "1.5", "--follow")
        assert process.stdout is not None
        try:
            # Given the server holds back the second chunk, the first is written already
            ready, _, _ = select.select([process.stdout], [], [], 20)
            assert ready, "the first chunk was not written before the stream ended"
            assert os.read(process.stdout.fileno(), 100) == b"first\x00\xff"
        finally:
            second.set()
        out, err = process.communicate(timeout=30)
    assert (process.returncode, out, err) == (0, b"second\n", b"")


def test_a_lost_answer_is_retried_with_the_same_idempotency_key() -> None:
    seen: list[tuple[str, str | None, bytes]] = []

    def execute(request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers["Content-Length"]))
        seen.append((request.path, request.headers["Idempotency-Key"], body))
        if len(seen) == 1:
            request.close_connection = True  # the answer is lost: no byte of it is sent
            return
        answer = json.dumps({"id": "1.25", "job": "a/b", "url": "u", "phase": None}).encode()
        request.send_response(201)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(answer)))
        request.end_headers()
        request.wfile.write(answer)

    with serve(execute) as url:
        out, err = overseer(url, "run", "a/b", "-p", "x=$(id) a=b").communicate(timeout=30)
    assert (out, err) == (b"1.25\n", b"")
    assert len(seen) == 2
    assert seen[0] == seen[1]
    path, key, body = seen[0]
    assert path == "/jobs/a%2Fb"
    assert key is not None
    assert str(uuid.UUID(key)) == key
    assert json.loads(body) == {"x": "$(id) a=b"}


def test_a_problem_is_printed_as_its_detail_and_exits_1() -> None:
    def refuse(request: BaseHTTPRequestHandler) -> None:
        assert request.headers["Authorization"] == "Bearer t0ken"
        problem = {"title": "Forbidden", "status": 403, "detail": "needs the 'admin' scope"}
        answer = json.dumps(problem).encode()
        request.send_response(403)
        request.send_header("Content-Type", "application/problem+json")
        request.send_header("Content-Length", str(len(answer)))
        request.end_headers()
        request.wfile.write(answer)

    with serve(refuse) as url:
        process = overseer(url, "deactivate", "A job")
        out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (1, b"")
    assert err == b"overseer: needs the 'admin' scope (HTTP 403)\n"


def answer_json(request: BaseHTTPRequestHandler, status: int, value: object) -> None:
    body = json.dumps(value).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def test_wait_bears_a_replica_that_does_not_know_the_execution_yet() -> None:
    reads: list[str] = []

    def api(request: BaseHTTPRequestHandler) -> None:
        if request.command == "POST":
            request.rfile.read(int(request.headers.get("Content-Length", "0")))
            answer_json(request, 201, {"id": "2.5", "job": "x", "url": "u"})
            return
        reads.append(request.path)
        if len(reads) == 1:  # another replica's cache has not seen it yet
            problem = {"status": 404, "detail": "no execution 2.5"}
            answer_json(request, 404, problem)
        elif len(reads) == 2:
            answer_json(request, 200, {"id": "2.5", "phase": "Running"})
        else:
            answer_json(request, 200, {"id": "2.5", "phase": "Failed", "exitCode": 4})

    with serve(api) as url:
        process = overseer(url, "run", "x", "--wait")
        out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (4, b"2.5\n"), err
    assert err == b"overseer: 2.5 ended Failed, exit 4\n"
    assert set(reads) == {"/jobs/x/2.5"}


def test_logs_follow_resumes_where_a_dropped_connection_left_it() -> None:
    asked: list[str] = []

    def stream(request: BaseHTTPRequestHandler) -> None:
        asked.append(request.path)
        request.send_response(200)
        request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Transfer-Encoding", "chunked")
        if len(asked) == 2:  # as the API says where a resumed stream starts
            request.send_header("Overseer-Output-Offset", "6")
        request.end_headers()
        if len(asked) == 1:
            # A proxy's timeout, a node going away: the body ends before its last chunk
            request.wfile.write(b"6\r\nfirst\xff\r\n")
            request.wfile.flush()
            request.close_connection = True
            return
        request.wfile.write(b"7\r\nsecond\n\r\n0\r\n\r\n")

    with serve(stream) as url:
        process = overseer(url, "logs", "J", "1.5", "--follow")
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out == b"first\xffsecond\n"
    # The second request asked only for what the first did not bring
    assert asked == ["/jobs/J/1.5/stdout?follow=true", "/jobs/J/1.5/stdout?follow=true&offset=6"]


def test_logs_resumes_a_dropped_download_with_a_range() -> None:
    asked: list[str | None] = []

    def whole(request: BaseHTTPRequestHandler) -> None:
        asked.append(request.headers.get("Range"))
        if len(asked) == 1:
            request.send_response(200)
            request.send_header("Content-Length", "12")
            request.end_headers()
            request.wfile.write(b"first\xff")  # and the connection is gone
            request.close_connection = True
            return
        request.send_response(206)
        request.send_header("Content-Range", "bytes 6-11/12")
        request.send_header("Content-Length", "6")
        request.end_headers()
        request.wfile.write(b"second")

    with serve(whole) as url:
        process = overseer(url, "logs", "J", "1.5")
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out == b"first\xffsecond"
    assert asked == [None, "bytes=6-"]
