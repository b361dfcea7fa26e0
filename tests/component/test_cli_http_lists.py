"""``overseer executions``, ``sync``, ``deliveries`` and ``show`` against a loopback server.

The server plays the API's answers; the script runs as a user runs it (a subprocess),
so what is asked on the wire (paths, filters, cursors, keys) and what is printed and
returned are the real ones.
"""

from __future__ import annotations

import json
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

import yaml

from tests.component.test_cli_http import answer_json, overseer, serve


def query(request: BaseHTTPRequestHandler) -> tuple[str, dict[str, str]]:
    url = urllib.parse.urlsplit(request.path)
    return url.path, dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))


def execution(number: int) -> dict[str, Any]:
    return {
        "id": f"{1000 - number}.5",
        "job": "Sauvegarde é",
        "url": "u",
        "phase": "Failed",
        "exitCode": 2,
        "trigger": {"type": "schedule"},
        "startTime": "2026-12-06T18:00:00Z",
        "completionTime": "2026-12-06T18:00:42Z",
    }


def problem(request: BaseHTTPRequestHandler, status: int, detail: str) -> None:
    body = json.dumps({"title": "Refused", "status": status, "detail": detail}).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/problem+json")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def test_executions_follows_every_page_with_its_filters_in_the_namespace() -> None:
    asked: list[dict[str, str]] = []
    items = [execution(n) for n in range(5)]

    def pages(request: BaseHTTPRequestHandler) -> None:
        path, params = query(request)
        assert path == "/namespaces/team-a/executions"
        asked.append(params)
        start = int(params.get("continue", "0"))
        more = start + 2 < len(items)
        page = {"items": items[start : start + 2], "continue": str(start + 2) if more else None}
        answer_json(request, 200, page)

    with serve(pages) as url:
        process = overseer(
            url, "-n", "team-a", "executions", "--job", "Sauvegarde é", "--phase", "Failed"
        )
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    lines = out.decode().splitlines()
    assert lines[0].split() == ["JOB", "ID", "PHASE", "EXIT", "TRIGGER", "START", "DURATION"]
    assert [line.split("  ")[1].strip() for line in lines[1:]] == [i["id"] for i in items]
    assert lines[1] == "Sauvegarde é  1000.5  Failed  2     schedule  2026-12-06T18:00:00Z  42s"
    # Every page asked with the filters, the largest page, and the cursor of the one before
    filters = {"job": "Sauvegarde é", "phase": "Failed", "limit": "1000"}
    assert asked == [filters, {**filters, "continue": "2"}, {**filters, "continue": "4"}]


def test_executions_stops_at_its_limit_and_prints_json_for_machines() -> None:
    asked: list[dict[str, str]] = []
    items = [execution(n) for n in range(5)]

    def pages(request: BaseHTTPRequestHandler) -> None:
        path, params = query(request)
        assert path == "/executions"
        asked.append(params)
        start = int(params.get("continue", "0"))
        end = start + min(2, int(params["limit"]))
        answer_json(request, 200, {"items": items[start:end], "continue": str(end)})

    with serve(pages) as url:
        process = overseer(url, "executions", "--limit", "3", "-o", "json")
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert json.loads(out) == items[:3]
    assert asked == [{"limit": "3"}, {"limit": "1", "continue": "2"}]


def test_a_refused_listing_prints_the_api_detail_and_exits_1() -> None:
    def refuse(request: BaseHTTPRequestHandler) -> None:
        problem(request, 404, "no job is named 'Nope' in 'default'; GET /jobs lists them")

    with serve(refuse) as url:
        process = overseer(url, "executions", "--job", "Nope")
        out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (1, b"")
    assert (
        err == b"overseer: no job is named 'Nope' in 'default'; GET /jobs lists them (HTTP 404)\n"
    )


def test_replay_sends_again_each_given_up_delivery_of_the_execution() -> None:
    posted: list[str] = []
    deliveries = [
        {"id": "d1", "status": "GivenUp", "url": "https://a.example/h"},
        {"id": "d2", "status": "Delivered", "url": "https://b.example/h"},
        {"id": "d 3", "status": "GivenUp", "url": "https://c.example/h"},
    ]

    def api(request: BaseHTTPRequestHandler) -> None:
        if request.command == "GET":
            assert request.path == "/jobs/A%20job/1.5"
            answer_json(request, 200, {"id": "1.5", "deliveries": deliveries})
            return
        posted.append(request.path)
        delivery_id = urllib.parse.unquote(request.path.rsplit("/", 1)[1])
        record = next(d for d in deliveries if d["id"] == delivery_id)
        answer_json(request, 202, {"delivery": {**record, "status": "Pending"}, "url": "u"})

    with serve(api) as url:
        process = overseer(url, "deliveries", "replay", "A job", "1.5")
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert posted == ["/jobs/A%20job/1.5/deliveries/d1", "/jobs/A%20job/1.5/deliveries/d%203"]
    assert out.decode().splitlines() == [
        "d1 replayed (Pending): https://a.example/h",
        "d 3 replayed (Pending): https://c.example/h",
    ]


def test_replay_of_an_unknown_delivery_prints_the_api_detail_and_exits_1() -> None:
    def refuse(request: BaseHTTPRequestHandler) -> None:
        assert (request.command, request.path) == ("POST", "/jobs/A%20job/1.5/deliveries/nope")
        problem(request, 404, "execution 1.5 of 'A job' has no delivery 'nope'")

    with serve(refuse) as url:
        process = overseer(url, "deliveries", "replay", "A job", "1.5", "nope")
        out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (1, b"")
    assert err == b"overseer: execution 1.5 of 'A job' has no delivery 'nope' (HTTP 404)\n"


def test_show_prints_yaml_for_humans_and_json_when_asked() -> None:
    job = {"name": "Sauvegarde é", "definition": {"script": "a\nb\n"}, "url": "u"}

    def api(request: BaseHTTPRequestHandler) -> None:
        answer_json(request, 200, job)

    with serve(api) as url:
        as_yaml, _ = overseer(url, "show", "Sauvegarde é").communicate(timeout=30)
        as_json, _ = overseer(url, "show", "Sauvegarde é", "-o", "json").communicate(timeout=30)
        status, _ = overseer(url, "status", "x", "1.5", "-o", "yaml").communicate(timeout=30)
    assert yaml.safe_load(as_yaml) == job
    assert as_yaml.decode().startswith("name: Sauvegarde é\n")
    assert json.loads(as_json) == job
    assert yaml.safe_load(status) == job
