"""The FastAPI application of one daemon: routes, error shapes and the OpenAPI document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from dripd import __version__
from dripd.api import errors
from dripd.api.media import RequireMediaType
from dripd.api.routes_contacts import contacts, lists, suppressions
from dripd.api.routes_doctor import router as doctor_router
from dripd.api.routes_enroll import router as enroll_router
from dripd.api.routes_inbox import router as inbox_router
from dripd.api.routes_imports import router as imports_router
from dripd.api.routes_sequences import router as sequences_router
from dripd.api.routes_stats import metrics_router, stats
from dripd.api.routes_status import mailboxes, status_router
from dripd.api.routes_verify import router as verify_router
from dripd.api.routes_webhooks import router as webhooks_router

if TYPE_CHECKING:
    from dripd.root import Services


def create_app(services: "Services") -> FastAPI:
    app = FastAPI(
        title="dripd control API", version=__version__,
        description="Sequences, steps, enrollments, contacts, lists and mailboxes of one dripd. "
                    "Served on the Unix socket (trusted by its file mode) and, when configured, on TCP "
                    "behind Bearer tokens. Errors are {\"error\": {\"code\", \"message\", \"details\"}}.",
        # No /api/docs page: FastAPI's loads its assets from a public CDN (blank offline, and a
        # browser cannot send the Bearer token over TCP); the OpenAPI document is the reference.
        openapi_url="/api/openapi.json", docs_url=None, redoc_url=None,
    )
    app.add_middleware(RequireMediaType)
    app.state.services = services
    errors.install(app)
    app.include_router(doctor_router)  # GET /api/mailboxes/{id}/doctor (dripd.doctor)
    # verify before contacts: its fixed path must win over /api/contacts/{contact_id}.
    for router in (status_router, sequences_router, stats, enroll_router, imports_router, verify_router, contacts, lists, suppressions, mailboxes,
                   metrics_router):
        app.include_router(router)
    app.include_router(inbox_router)
    from dripd.console import create_console  # the console is a client of these routes
    app.mount("/app", create_console(services, app))
    app.include_router(webhooks_router)
    return app
