"""The codes the API answers are its documented classes with their mapped statuses, on the real
daemon: the HTTP-level ones Starlette raises, and the core's refusals on the bulk path."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest

from dripd.api.errors import MethodNotAllowed, status_of
from dripd.errors import AlreadyEnrolled, NotFound, Suppressed
from tests.integration.api_client import error_of
from tests.integration.daemon_process import DripdProcess, running_dripd


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with running_dripd(tmp_path_factory.mktemp("api-codes")) as process, process.client() as client:
        yield client


def test_an_unknown_route_and_a_wrong_method(api: httpx.Client) -> None:
    error = error_of(api.get("/api/nothing-here"), status_of(NotFound), NotFound.code)
    assert error["message"] == "no such resource: /api/nothing-here"
    error_of(api.put("/api/sequences"), status_of(MethodNotAllowed), MethodNotAllowed.code)


def test_a_strict_bulk_enrollment_refusal_has_its_own_class(api: httpx.Client) -> None:
    seq = api.post("/api/sequences", json={"name": "codes", "mailboxId": "sales", "steps": [
        {"type": "email", "subject": "Hi", "body": "<p>Hi</p>"}]}).json()["id"]
    assert api.post("/api/suppressions", json={"email": "gone@example.org"}).status_code == 201

    def csv(text: bytes) -> httpx.Response:
        return api.post(f"/api/sequences/{seq}/enroll/csv", content=text, headers={"Content-Type": "text/csv"})

    error = error_of(csv(b"email\nfine@example.org\ngone@example.org\n"), status_of(Suppressed), Suppressed.code)
    assert [(r["line"], r["reason"]) for r in error["details"]["refused"]] == [(3, "suppressed")]
    assert api.post(f"/api/sequences/{seq}/enroll", json={"contactEmail": "fine@example.org"}).status_code == 201
    error_of(csv(b"email\nfine@example.org\n"), status_of(AlreadyEnrolled), AlreadyEnrolled.code)
