"""Every error code the API can answer is a class with an HTTP status from the API's one table,
and a row in docs/api.md; the core family itself names no status."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dripd import errors as core
from dripd.api import errors as api_errors
from dripd.api.errors import STATUSES, error_classes, mapped_by, status_of

REPO = Path(__file__).resolve().parents[2]
CLASSES = error_classes()


def test_the_walk_finds_the_core_family_and_the_http_level_classes() -> None:
    names = {cls.__name__ for cls in CLASSES}
    assert {"DripdError", "ValidationError", "NotFound", "Conflict", "AlreadyEnrolled", "Suppressed", "StoreError",
            "BadRequest", "Unauthorized", "MethodNotAllowed", "TooLarge", "UnsupportedMediaType",
            "InternalError"} <= names
    assert all(cls.__module__ in (core.__name__, api_errors.__name__) for cls in CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_class_has_a_status_of_its_own_kind(cls: type[core.DripdError]) -> None:
    # Falling through to the bare DripdError entry would mean nobody decided this class's status.
    assert cls is core.DripdError or mapped_by(cls) is not core.DripdError, f"{cls.__name__} has no status mapping"
    assert 400 <= status_of(cls) <= 599
    assert "http_status" not in vars(cls), "the core names no HTTP status; dripd/api/errors.py does"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_code_has_its_line_in_the_api_reference(cls: type[core.DripdError]) -> None:
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    line = re.search(rf"^\| (\d+) \| `{re.escape(cls.code)}` \| (.+) \|$", text, re.MULTILINE)
    assert line, f"docs/api.md has no row for {cls.code}: run `make docs`"
    assert int(line.group(1)) == status_of(cls)
    assert line.group(2) != "—", f"{cls.__name__} needs a docstring: it is the code's meaning in the docs"


def test_codes_are_unique_and_the_table_holds_only_known_classes() -> None:
    codes = [cls.code for cls in CLASSES]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    assert set(STATUSES) <= set(CLASSES)


def test_the_most_specific_entry_wins() -> None:
    assert status_of(core.AlreadyEnrolled) == status_of(core.Conflict) == 409
    assert mapped_by(core.Suppressed) is core.Conflict
    assert status_of(core.ValidationError) == 422 and status_of(core.StoreError) == 503
    assert status_of(api_errors.InternalError) == 500 and status_of(api_errors.Unauthorized) == 401

    class Narrower(core.NotFound):
        code = "narrower"

    assert mapped_by(Narrower) is core.NotFound and status_of(Narrower) == 404


def test_a_bearer_refusal_has_the_one_error_shape() -> None:
    from dripd.api.auth import _UNAUTHORIZED, _UNAUTHORIZED_STATUS

    assert _UNAUTHORIZED_STATUS == 401
    assert _UNAUTHORIZED == b'{"error":{"code":"unauthorized","message":"a valid Bearer token is required","details":{}}}'
