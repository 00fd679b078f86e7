"""The FastAPI application of one daemon: routes, error shapes and the OpenAPI document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from dripd import __version__
from dripd.api import errors
from dripd.api.routes_contacts import contacts, lists, suppressions
from dripd.api.routes_enroll import router as enroll_router
from dripd.api.routes_imports import router as imports_router
from dripd.api.routes_sequences import router as sequences_router
from dripd.api.routes_stats import metrics_router, stats
from dripd.api.routes_status import mailboxes, status_router
from dripd.api.routes_verify import router as verify_router

if TYPE_CHECKING:
    from dripd.root import Services


def create_app(services: "Services") -> FastAPI:
    app = FastAPI(
        title="dripd control API", version=__version__,
        description="Sequences, steps, enrollments, contacts, lists and mailboxes of one dripd. "
                    "Served on the Unix socket (trusted by its file mode) and, when configured, on TCP "
                    "behind Bearer tokens. Errors are {\"error\": {\"code\", \"message\", \"details\"}}.",
        openapi_url="/api/openapi.json", docs_url="/api/docs", redoc_url=None,
    )
    app.state.services = services
    errors.install(app)
    # verify before contacts: its fixed path must win over /api/contacts/{contact_id}.
    for router in (status_router, sequences_router, stats, enroll_router, imports_router, verify_router, contacts, lists, suppressions, mailboxes,
                   metrics_router):
        app.include_router(router)
    return app
