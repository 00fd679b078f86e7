"""Request bodies under ``[api.limits]``: read in full, in bounded time and size, before admission.

The audit (issue 20.2) held 40 connections each with headers and 4 bytes of body: the admission
limit (admission.py) counted them as running requests, so every slot was taken by a client that
sent nothing, and ``GET /api/status`` waited as long as they held. Here a body is read first,
outside admission, with an idle and a total deadline (408 ``request_timeout``) and a size cap
(413 ``too_large``, from Content-Length before anything is read when the client declares it);
only then does the request take an admission slot, with its body replayed to the app.

The CSV import is the one streaming endpoint: its body is never held in memory. It takes one of
``concurrent_imports`` slots of its own (not the admission slots), and the route reads its stream
through ``limited``: the same idle deadline and its own size cap.
"""

from __future__ import annotations

import json
import re
from typing import Any, AsyncIterator, Callable, Iterable

import trio
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGIReceiveEvent, ASGISendCallable, Scope

from starlette import types as starlette

from dripd.api.admission import to_starlette
from dripd.api.errors import RequestTimeout, TooLarge, error_body, status_of
from dripd.api.limits import ApiLimits
from dripd.errors import DripdError, ValidationError

CSV_IMPORT_PATH = re.compile(r"^/api/sequences/[^/]+/enroll/csv$")


def _declared_length(scope: Scope) -> int | None:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers") or []  # type: ignore[assignment]
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # h11 refuses a malformed Content-Length before the app runs
    return None


def _is_form(scope: Scope) -> bool:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers") or []  # type: ignore[assignment]
    return any(name.lower() == b"content-type" and value.lower().startswith(b"multipart/form-data")
               for name, value in headers)


def _chunk(message: ASGIReceiveEvent) -> bytes:
    body = message.get("body", b"")
    return body if isinstance(body, bytes) else b""


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"the request body is larger than this endpoint's limit of {limit} bytes",
                    details={"limit": limit})


def idle_timeout(seconds: float) -> RequestTimeout:
    return RequestTimeout(f"no part of the request body arrived for {seconds:g} s", details={"seconds": seconds})


async def answer(send: ASGISendCallable, error: DripdError, receive: ASGIReceiveCallable) -> None:
    """Answer without the app and close: the rest of the body is not worth reading."""
    body = error_body(error)
    await send({"type": "http.response.start", "status": status_of(type(error)), "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")], "trailers": False})
    await send_draining(send, {"type": "http.response.body", "body": body, "more_body": False}, receive)


async def send_draining(send: ASGISendCallable, message: Any, receive: ASGIReceiveCallable) -> None:
    """The last message of an answer given before the request body was all read, while what is
    left of the body is read and dropped. hypercorn (0.18) queues at most ``max_app_queue_size``
    body chunks for the app and, once the answer is complete, puts ``http.disconnect`` on that
    queue before it closes the connection: with the queue full and nobody reading it, that put
    waited for ever, and the refused client hung with the connection open."""

    async def drop() -> None:
        while (await receive())["type"] == "http.request":
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drop)
        await send(message)
        nursery.cancel_scope.cancel()


async def read_body(receive: ASGIReceiveCallable, limit: int, limits: ApiLimits) -> bytes | None:
    """The whole body, or None when the client went away; raises TooLarge or RequestTimeout."""
    chunks: list[bytes] = []
    size = 0
    with trio.move_on_after(limits.body_seconds):
        while True:
            with trio.move_on_after(limits.body_idle_seconds) as idle:
                message = await receive()
            if idle.cancelled_caught:
                raise idle_timeout(limits.body_idle_seconds)
            if message["type"] == "http.disconnect":
                return None
            chunk = _chunk(message)
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
    raise RequestTimeout(f"the request body did not arrive within {limits.body_seconds:g} s",
                         details={"seconds": limits.body_seconds})


def long_string(body: bytes, limit: int) -> ValidationError | None:
    """The first string (key or value) of a JSON body longer than ``limit`` characters, as an
    error naming where it is; None when there is none or the body is not JSON (the app says so)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    pending: list[tuple[str, Any]] = [("body", document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if len(value) > limit:
                return ValidationError(path, f"is longer than {limit} characters")
        elif isinstance(value, dict):
            for key, item in value.items():
                where = key if path == "body" else f"{path}.{key}"
                if len(key) > limit:
                    return ValidationError(path, f"has a key longer than {limit} characters")
                pending.append((where, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return None


class _Replay:
    """The body already read, then the client's own channel (a disconnect, for the app to see)."""

    def __init__(self, body: bytes, receive: ASGIReceiveCallable) -> None:
        self._body: bytes | None = body
        self._receive = receive

    async def __call__(self) -> ASGIReceiveEvent:
        if self._body is None:
            return await self._receive()
        body, self._body = self._body, None
        return {"type": "http.request", "body": body, "more_body": False}


class _Watched:
    """A streaming body's receive, watched (not changed): whether the body has been read to its end."""

    def __init__(self, receive: ASGIReceiveCallable) -> None:
        self._receive = receive
        self.complete = False

    async def __call__(self) -> ASGIReceiveEvent:
        message = await self._receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            self.complete = True
        return message

    def closing(self, send: ASGISendCallable) -> ASGISendCallable:
        """``send``, adding ``Connection: close`` to an answer given before the body was all read
        (a refusal): the client may still be sending, and nothing would read the rest."""

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start" and not self.complete:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            if message["type"] == "http.response.body" and not message.get("more_body") and not self.complete:
                await send_draining(send, message, self._receive)
                return
            await send(message)

        return wrapped


async def limited(stream: AsyncIterator[bytes], limit: int, idle_seconds: float) -> AsyncIterator[bytes]:
    """A streamed body (the CSV import's) under the idle deadline and the size cap. The route
    iterates this, so a refusal is raised in the route, between two chunks: raised from inside
    the ASGI ``receive`` instead, hypercorn never closed the connection after the answer."""
    size = 0
    chunks = stream.__aiter__()
    while True:
        with trio.move_on_after(idle_seconds) as idle:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
        if idle.cancelled_caught:
            raise idle_timeout(idle_seconds)
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        yield chunk


class BodyGate:
    """ASGI middleware in front of admission: ``admitted`` gets requests with their body read,
    ``direct`` the CSV imports (streamed, under their own slot count)."""

    def __init__(self, admitted: ASGIFramework, direct: starlette.ASGIApp, limits: Callable[[], ApiLimits]) -> None:
        self.admitted = admitted
        self.direct = direct
        self._limits = limits
        self._imports = trio.CapacityLimiter(limits().concurrent_imports)

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "http":
            await self.admitted(scope, receive, send)
            return
        limits = self._limits()
        streaming = scope["method"] == "POST" and CSV_IMPORT_PATH.match(scope["path"]) is not None
        # A form upload (a file sent from a web page) is a file like the CSV import, not a JSON document.
        limit = limits.csv_body_bytes if streaming or _is_form(scope) else limits.json_body_bytes
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await answer(send, too_large(limit), receive)
            return
        if streaming:
            if self._imports.total_tokens != limits.concurrent_imports:
                self._imports.total_tokens = limits.concurrent_imports
            watched = _Watched(receive)
            async with self._imports:
                await self.direct(*to_starlette(scope, watched, watched.closing(send)))
            return
        try:
            body = await read_body(receive, limit, limits)
        except (TooLarge, RequestTimeout) as error:
            await answer(send, error, receive)
            return
        if body is None:
            return  # the client left before sending its body: nobody to answer
        if len(body) > limits.string_chars:  # a shorter body cannot hold a longer string
            problem = long_string(body, limits.string_chars)
            if problem is not None:
                await answer(send, problem, receive)
                return
        await self.admitted(scope, _Replay(body, receive), send)
