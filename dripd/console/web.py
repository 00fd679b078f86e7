"""What every console page shares: templates, the session gate, CSRF, security headers."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dripd.console.api_client import ApiProblem, InProcessApi
from dripd.console.sessions import COOKIE, Session, SessionStore, same_secret
from dripd.model import SequenceStatus, allowed_actions
from dripd.variants import METRICS

if TYPE_CHECKING:
    from dripd.root import Services

# No inline script or style anywhere: the pages work without JavaScript, and the one script
# (upload progress) is a file served from the package.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; connect-src 'self'; frame-src 'self'")
SECURITY_HEADERS = {
    "content-security-policy": CSP, "x-frame-options": "DENY", "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin", "cache-control": "no-store",
}
PAGE_SIZE = 50

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(str(resources.files(__package__))) / "templates")),
    autoescape=True,  # every value is HTML-escaped; nothing in a template is marked safe
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)
def when(value: str | None, now: float | None = None) -> str:
    """An API time (ISO 8601, UTC) as people read it: ``2026-12-03 14:05 UTC``; ``now`` once
    it has passed when ``now`` (the daemon's clock) is given."""
    if not value:
        return ""
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if now is not None and moment.timestamp() <= now:
        return "now"
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


_templates.filters["when"] = when
# The lifecycle buttons a sequence shows come from the model's transition table, not the template.
_templates.globals["variant_metrics"] = METRICS
# An A/B block's comparisons (per metric in the API) as one list, the table's rows; a rate the
# sequence does not track (opens, clicks) is 0 for every variant, and comparing it says nothing.
_templates.globals["comparisons_of"] = lambda ab, tracked: [
    c for m in METRICS if tracked.get(m, True) for c in (ab.get("comparisons") or {}).get(m, [])]
_templates.globals["actions_for"] = lambda status: [a.value for a in allowed_actions(SequenceStatus(status))]


class NeedsLogin(Exception):
    """No valid session: the page answers with a redirect to the login form."""


class BadCsrf(Exception):
    """A form post without this session's CSRF token."""


class Console:
    """The console's state: sessions, the in-process API, and who may log in."""

    def __init__(self, services: "Services", api: InProcessApi) -> None:
        from dripd.api.auth import TokenSource
        self.services = services
        self.api = api
        self.sessions = SessionStore(lambda: services.clock.now())  # read late: docs build the app without services
        self.tokens = TokenSource(lambda: services.config.api)

    def authorised(self, session: Session) -> bool:
        """A session stays valid only while the token that opened it is still accepted."""
        return session.token_digest in self.tokens.digests()


def console_of(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


def session_of(request: Request) -> Session:
    console = console_of(request)
    session = console.sessions.get(request.cookies.get(COOKIE))
    if session is None or not console.authorised(session):
        raise NeedsLogin()
    return session


async def checked_form(request: Request, session: Session) -> Mapping[str, Any]:
    form = await request.form()
    if not same_secret(str(form.get("csrf") or ""), session.csrf):
        raise BadCsrf()
    return form


def render(request: Request, template: str, http_status: int = 200, **values: Any) -> HTMLResponse:
    session = None
    try:
        session = session_of(request)
    except NeedsLogin:
        pass
    flashes = list(session.flashes) if session else []
    if session:
        session.flashes.clear()
    html = _templates.get_template(template).render(
        request_path=request.url.path, session=session, csrf=session.csrf if session else "",
        now=console_of(request).services.clock.now(),
        flashes=flashes, **values)
    return HTMLResponse(html, status_code=http_status)


def redirect(path: str, session: Session | None = None, flash: str | None = None) -> RedirectResponse:
    if session is not None and flash:
        session.flashes.append(flash)
    return RedirectResponse(path, status_code=303)  # POST -> GET: a reload never re-posts


def problem_text(problem: ApiProblem) -> str:
    """The API's message, which names the field and the rule (e.g. ``steps[1].subject: ...``)."""
    return problem.message


def login_path(request: Request) -> str:
    return f"/app/login?next={quote(request.url.path)}"


def with_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
