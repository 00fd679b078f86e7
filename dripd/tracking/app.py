"""The public tracking listener: open pixel, click redirect, unsubscribe page and RFC 8058
one-click. It faces the internet (behind a proxy): every path needs a valid signed token, and
anything else (a forged or altered token, an unknown message) is 404 and changes nothing.
"""

from __future__ import annotations

import base64
import logging
from typing import Awaitable, Callable, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from dripd import events
from dripd.clock import Clock
from dripd.config import LiveConfig
from dripd.events import EventKind
from dripd.store.api import Reports, SentRef, Signals, TrackedMessage
from dripd.tracking import pages, scanners
from dripd.tracking.dedupe import HitLimiter
from dripd.tracking.tokens import Kind, Signer
from dripd.unsubscribe import honour_unsubscribe

log = logging.getLogger("dripd.tracking")

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")  # 1x1 transparent GIF
MAX_FORM_BYTES = 4096
_NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, private", "Pragma": "no-cache"}
_PAGE_HEADERS = {**_NO_STORE, "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                 "form-action 'self'; frame-ancestors 'none'", "Referrer-Policy": "no-referrer",
                 "X-Content-Type-Options": "nosniff"}


def _not_found() -> Response:
    return PlainTextResponse("not found", status_code=404, headers=_NO_STORE)


def _ref(message: TrackedMessage) -> SentRef:
    return SentRef(message.outbox_id, message.enrollment_id, message.step_id, message.sequence_id,
                   message.contact_email, message.enrollment_status)


class TrackingStore(Signals, Reports, Protocol):
    """What the public listener reads and writes: sent messages, hits, signals, suppressions."""


class TrackingApp:
    def __init__(self, config: LiveConfig, store: TrackingStore, clock: Clock, signer: Signer) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.signer = signer
        settings = config.current.tracking
        self.limiter = HitLimiter(settings.dedupe_seconds, settings.max_hits_per_message)

    # -- shared steps -----------------------------------------------------------------------------

    async def _message(self, request: Request, kind: Kind) -> tuple[TrackedMessage, str] | None:
        token = self.signer.verify(request.path_params["token"], kind)
        if token is None:
            return None
        message = await self.store.tracked_message(token.message_id)
        if message is None:
            return None
        return message, token.url

    def _hit(self, request: Request, message: TrackedMessage) -> scanners.Hit:
        client = request.client.host if request.client else None
        if self.config.current.tracking.proxy_headers:
            forwarded = request.headers.get("x-forwarded-for", "")
            client = forwarded.rsplit(",", 1)[-1].strip() or client
        return scanners.Hit(request.method, request.headers.get("user-agent", ""), client,
                            self.clock.now() - message.sent_at)

    async def _record(self, message: TrackedMessage, kind: EventKind, hit: scanners.Hit, flag: str | None,
                      url: str | None = None) -> None:
        # With count_flagged on, machine hits count like people's (the reason is still kept).
        settings = self.config.current.tracking
        flagged = flag is not None and not settings.count_flagged
        # A reload may change the limits; the memory of recent hits is kept.
        self.limiter.window_seconds, self.limiter.per_message = settings.dedupe_seconds, settings.max_hits_per_message
        if not self.limiter.admit(message.outbox_id, (kind, url, flag), self.clock.now()):
            log.debug("tracking %s of outbox %d not stored (repeat within the window, or the message's cap)",
                      kind.value, message.outbox_id)
            return
        payload = events.Engagement(url=url, agent=hit.user_agent[:300], flagged=flagged, flag=flag)
        await self.store.record_signal(_ref(message), kind, self.clock.now(), payload)

    # -- the endpoints ------------------------------------------------------------------------------

    async def open_pixel(self, request: Request) -> Response:
        found = await self._message(request, Kind.OPEN)
        if found is None:
            return _not_found()
        message, _ = found
        hit = self._hit(request, message)
        seen_proxy = scanners.is_gmail_proxy(hit.user_agent) and await self.store.hit_seen(
            message.outbox_id, EventKind.OPENED, "googleimageproxy")
        await self._record(message, EventKind.OPENED, hit, scanners.open_flag(hit, seen_proxy))
        return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)

    async def click(self, request: Request) -> Response:
        found = await self._message(request, Kind.CLICK)
        if found is None:
            return _not_found()
        message, url = found
        # The URL is signed, so it came from this message; refuse anything odd all the same.
        if not url.lower().startswith(("http://", "https://")) or any(ord(c) < 0x21 or c == "\x7f" for c in url):
            return _not_found()
        hit = self._hit(request, message)
        scanner_seconds = self.config.current.tracking.scanner_seconds
        await self._record(message, EventKind.CLICKED, hit, scanners.click_flag(hit, scanner_seconds), url)
        return RedirectResponse(url, status_code=302, headers={**_NO_STORE, "Referrer-Policy": "no-referrer"})

    async def unsubscribe(self, request: Request) -> Response:
        found = await self._message(request, Kind.UNSUBSCRIBE)
        if found is None:
            return _not_found()
        message, _ = found
        mailbox = self.config.current.mailbox(message.mailbox_id)
        sender = (mailbox.name or mailbox.address) if mailbox else "this sender"
        if request.method in ("GET", "HEAD"):
            return HTMLResponse(pages.confirm(sender), headers=_PAGE_HEADERS)
        body = await _bounded_body(request)
        one_click = _is_one_click(body)
        await self.unsubscribe_message(message, "one-click" if one_click else "page",
                                       request.headers.get("user-agent", ""))
        if one_click:
            return PlainTextResponse("unsubscribed", headers=_NO_STORE)
        return HTMLResponse(pages.done(sender), headers=_PAGE_HEADERS)

    async def unsubscribe_message(self, message: TrackedMessage, method: str, user_agent: str) -> None:
        """Global: this enrollment ends as unsubscribed, the address joins the suppression list,
        and every other active enrollment of it ends too. Repeats change nothing."""
        await honour_unsubscribe(self.store, _ref(message), method, self.clock.now())

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok", headers=_NO_STORE)


async def _bounded_body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            break  # a one-click body is 26 bytes; never buffer a flood
    return body[:MAX_FORM_BYTES]


def _is_one_click(body: bytes) -> bool:
    """RFC 8058: the POST body is ``List-Unsubscribe=One-Click`` (urlencoded or multipart)."""
    if b"List-Unsubscribe=One-Click" in body:
        return True
    return b'name="List-Unsubscribe"' in body and b"One-Click" in body


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception:
            # The public side learns nothing of internals; the log has the traceback.
            log.exception("tracking %s %s failed", request.method, request.url.path.split("/")[1:2])
            return PlainTextResponse("temporarily unavailable", status_code=503, headers=_NO_STORE)
    return run


def create_tracking_app(app: TrackingApp) -> Starlette:
    routes = [
        Route("/o/{token}", _guarded(app.open_pixel), methods=["GET", "HEAD"]),
        Route("/c/{token}", _guarded(app.click), methods=["GET", "HEAD"]),
        Route("/u/{token}", _guarded(app.unsubscribe), methods=["GET", "HEAD", "POST"]),
        Route("/healthz", app.health, methods=["GET"]),
    ]
    return Starlette(routes=routes)
