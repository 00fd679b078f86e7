"""The web console of the seeds (``/app``): server-rendered pages over the control API.

Mounted on the control API's app, so it is served wherever the API is (the Unix socket for a
local proxy, and the TCP listener) by the same process. On TCP the Bearer gate lets ``/app``
through: the console has its own login (an API token, once) and session cookie.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from dripd.api.auth import digest
from dripd.console.api_client import ApiProblem, InProcessApi
from dripd.console.pages_admin import router as admin_router
from dripd.console.pages_inbox import router as inbox_router
from dripd.console.pages_lists import router as lists_router
from dripd.console.pages_people import router as people_router
from dripd.console.pages_sequence import router as sequence_router
from dripd.console.pages_sequences import router as sequences_router
from dripd.console.sessions import COOKIE, IDLE_SECONDS, LOGIN_COOKIE, same_secret
from dripd.console.web import BadCsrf, Console, NeedsLogin, login_path, redirect, render, with_security_headers

if TYPE_CHECKING:
    from dripd.root import Services

STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}


def _secure(request: Request) -> bool:
    """Mark the cookie Secure when the browser reached us over https (directly or via a proxy)."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


def _safe_next(value: str | None) -> str:
    """Only a console path: never an open redirect to another site."""
    if value and value.startswith("/app/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/app/sequences"


def create_console(services: "Services", api_app: ASGIApp) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.console = Console(services, InProcessApi(api_app))

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        return with_security_headers(await call_next(request))

    @app.exception_handler(NeedsLogin)
    async def needs_login(request: Request, exc: NeedsLogin) -> Response:
        return RedirectResponse(login_path(request), status_code=303)

    @app.exception_handler(BadCsrf)
    async def bad_csrf(request: Request, exc: BadCsrf) -> Response:
        return render(request, "error.html", 403, title="Form expired",
                      message="This form was not sent from a current console page (its security token is "
                              "missing or stale). Go back, reload the page and try again.")

    @app.exception_handler(ApiProblem)
    async def api_problem(request: Request, exc: ApiProblem) -> Response:
        return render(request, "error.html", exc.status, title="Not possible", message=exc.message)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return render(request, "error.html", 404 if "path" in where else 422, title="Not found" if "path" in where
                      else "Check the form", message=f"{where}: {first.get('msg', 'invalid')}")

    @app.get("/", include_in_schema=False)
    async def home() -> Response:
        return RedirectResponse("/app/sequences", status_code=303)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        text = resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")
        return Response(text, media_type=STATIC[name], headers={"cache-control": "max-age=3600"})

    @app.get("/login", include_in_schema=False)
    async def login_form(request: Request, next: str | None = None) -> Response:
        import secrets
        value = secrets.token_urlsafe(24)
        configured = bool(services.config.api.tokens or services.config.api.token_files)
        response = render(request, "login.html", title="Log in", login_csrf=value, next=_safe_next(next), configured=configured,
                          error=None)
        response.set_cookie(LOGIN_COOKIE, value, httponly=True, samesite="strict", secure=_secure(request),
                            path="/app/login", max_age=3600)
        return response

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        if not same_secret(str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE) or ""):
            raise BadCsrf()
        console: Console = app.state.console
        token = str(form.get("token") or "").strip()
        presented = digest(token) if token else ""
        if not token or presented not in console.tokens.digests():
            return render(request, "login.html", 401, title="Log in", login_csrf=str(form.get("csrf")),
                          next=_safe_next(str(form.get("next") or "")), configured=True,
                          error="token: not an accepted API token (see [api] tokens / token_files)")
        session = console.sessions.open(presented)
        response = redirect(_safe_next(str(form.get("next") or "")))
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="strict", secure=_secure(request),
                            path="/app", max_age=IDLE_SECONDS)
        response.delete_cookie(LOGIN_COOKIE, path="/app/login")
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        from dripd.console.web import checked_form, session_of
        session = session_of(request)
        await checked_form(request, session)
        app.state.console.sessions.close(session.id)
        response = RedirectResponse("/app/login", status_code=303)
        response.delete_cookie(COOKIE, path="/app")
        return response

    for router in (sequences_router, people_router, sequence_router, admin_router, lists_router, inbox_router):
        app.include_router(router)
    return app

