"""Bodies under [api.limits] (dripd/api/body.py), on simulated time: a held body never takes an
admission slot and ends in 408; an oversize one gets 413 from its Content-Length or as it grows;
the CSV import streams past admission; a long JSON string is named by its path."""

from __future__ import annotations

import json
from typing import Any

import trio
import trio.testing

from dripd.api.body import BodyGate, long_string
from dripd.api.limits import ApiLimits

LIMITS = ApiLimits(json_body_bytes=100, csv_body_bytes=1000, string_chars=10, body_idle_seconds=5, body_seconds=20)


class App:
    """Records what reached it: the path and the body it read."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})


class Client:
    """One request: body chunks fed by the test, what the gate answered collected."""

    def __init__(self, path: str, length: int | None = None) -> None:
        headers = [(b"content-length", str(length).encode())] if length is not None else []
        self.scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
        self.send_chunk, self._chunks = trio.open_memory_channel[dict[str, Any]](10)
        self.answers: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return await self._chunks.receive()

    async def send(self, message: dict[str, Any]) -> None:
        self.answers.append(message)

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.answers if m["type"] == "http.response.start"), None)

    def error(self) -> dict[str, Any]:
        body = next(m["body"] for m in self.answers if m["type"] == "http.response.body")
        return json.loads(body)["error"]  # type: ignore[no-any-return]


def gate(app: App) -> BodyGate:
    return BodyGate(app, app, lambda: LIMITS)  # type: ignore[arg-type]


async def test_a_held_body_gets_408_without_reaching_the_app(autojump_clock: trio.testing.MockClock) -> None:
    app = App()
    client = Client("/api/contacts", length=50)
    await client.send_chunk.send({"type": "http.request", "body": b"{\"na", "more_body": True})
    await gate(app)(client.scope, client.receive, client.send)  # type: ignore[arg-type]
    assert client.status == 408 and client.error()["code"] == "request_timeout"
    assert app.seen == []
    assert (b"connection", b"close") in next(m for m in client.answers if m["type"] == "http.response.start")["headers"]


async def test_a_trickled_body_hits_the_total_deadline(autojump_clock: trio.testing.MockClock) -> None:
    app = App()
    client = Client("/api/contacts")

    async def trickle() -> None:
        for _ in range(10):
            await client.send_chunk.send({"type": "http.request", "body": b"x", "more_body": True})
            await trio.sleep(4)  # under the idle deadline each time, over the total one in the end

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trickle)
        await gate(app)(client.scope, client.receive, client.send)  # type: ignore[arg-type]
        nursery.cancel_scope.cancel()
    assert client.status == 408 and "20 s" in client.error()["message"]


async def test_413_from_the_declared_length_and_while_streaming() -> None:
    app = App()
    declared = Client("/api/contacts", length=101)
    await gate(app)(declared.scope, declared.receive, declared.send)  # type: ignore[arg-type]
    assert declared.status == 413 and declared.error()["details"]["limit"] == 100
    streamed = Client("/api/contacts")
    for _ in range(3):
        await streamed.send_chunk.send({"type": "http.request", "body": b"x" * 40, "more_body": True})
    await gate(app)(streamed.scope, streamed.receive, streamed.send)  # type: ignore[arg-type]
    assert streamed.status == 413 and app.seen == []


async def test_a_read_body_is_replayed_to_the_app() -> None:
    app = App()
    client = Client("/api/contacts")
    await client.send_chunk.send({"type": "http.request", "body": b'{"a":', "more_body": True})
    await client.send_chunk.send({"type": "http.request", "body": b' "b"}', "more_body": False})
    await gate(app)(client.scope, client.receive, client.send)  # type: ignore[arg-type]
    assert client.status == 200 and app.seen == [("/api/contacts", b'{"a": "b"}')]


async def test_the_csv_import_streams_under_its_own_limit() -> None:
    app = App()
    client = Client("/api/sequences/3/enroll/csv")
    for _ in range(5):  # 500 bytes: over the JSON limit, under the CSV one
        await client.send_chunk.send({"type": "http.request", "body": b"y" * 100, "more_body": True})
    await client.send_chunk.send({"type": "http.request", "body": b"", "more_body": False})
    await gate(app)(client.scope, client.receive, client.send)  # type: ignore[arg-type]
    assert client.status == 200 and len(app.seen[0][1]) == 500


def test_long_strings_are_named_by_their_path() -> None:
    assert long_string(b'{"a": {"b": ["short", "' + b"x" * 11 + b'"]}}', 10) is not None
    problem = long_string(json.dumps({"fields": {"firstName": "y" * 11}}).encode(), 10)
    assert problem is not None and problem.field == "fields.firstName"
    key = long_string(json.dumps({"k" * 11: 1}).encode(), 10)
    assert key is not None and "key longer than 10" in key.rule
    assert long_string(b'{"a": "0123456789"}', 10) is None
    assert long_string(b"not json" * 10, 10) is None


async def test_a_form_upload_has_the_file_limit() -> None:
    app = App()
    client = Client("/app/sequences/1/enroll", length=500)
    client.scope["headers"].append((b"content-type", b"multipart/form-data; boundary=x"))
    await client.send_chunk.send({"type": "http.request", "body": b"z" * 500, "more_body": False})
    await gate(app)(client.scope, client.receive, client.send)  # type: ignore[arg-type]
    assert client.status == 200 and len(app.seen[0][1]) == 500
