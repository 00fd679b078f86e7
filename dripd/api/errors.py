"""Every error the API answers has one shape: ``{"error": {"code", "message", "details"}}``.

Each code is a class: the core's ``DripdError`` family plus the HTTP-level refusals below, which
only the API produces. The HTTP status of each is decided here, in one table (``STATUSES``),
looked up along the class's MRO so the most specific entry wins; the core never names a status.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dripd import errors as core
from dripd.errors import DripdError

log = logging.getLogger("dripd.api")


class BadRequest(DripdError):
    """The request could not be read."""

    code = "bad_request"


class Unauthorized(DripdError):
    """TCP listener only: a valid Bearer token is required."""

    code = "unauthorized"


class MethodNotAllowed(DripdError):
    """The path exists, the method does not."""

    code = "method_not_allowed"


class TooLarge(DripdError):
    """The request body is too large."""

    code = "too_large"


class RequestTimeout(DripdError):
    """The request body did not arrive in time (`[api.limits]`)."""

    code = "request_timeout"


class UnsupportedMediaType(DripdError):
    """Wrong Content-Type (JSON, or `text/csv` for CSV enrollment)."""

    code = "unsupported_media_type"


class InternalError(DripdError):
    """An unexpected failure; the daemon's log says more."""

    code = "internal_error"


# The one table. Subclasses not listed take their nearest listed ancestor's status.
STATUSES: dict[type[DripdError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    core.NotFound: 404,  # also an unknown route
    MethodNotAllowed: 405,
    RequestTimeout: 408,
    core.Conflict: 409,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    core.ValidationError: 422,
    core.ConfigError: 422,
    core.DripdError: 500,
    InternalError: 500,
    core.Unsupported: 501,
    core.TransportError: 502,
    core.PluginError: 500,  # a plugin that cannot be used is the installation's fault, not the request's
    core.StoreError: 503,
}


def mapped_by(cls: type[DripdError]) -> type[DripdError]:
    """The class in ``cls``'s MRO whose entry in ``STATUSES`` decides its status."""
    for ancestor in cls.__mro__:
        if issubclass(ancestor, DripdError) and ancestor in STATUSES:
            return ancestor
    raise TypeError(f"{cls.__name__} is not a DripdError")


def status_of(cls: type[DripdError]) -> int:
    return STATUSES[mapped_by(cls)]


def error_classes() -> list[type[DripdError]]:
    """Every class whose code the API can answer: the core family and the HTTP-level ones above.
    Classes other modules derive elsewhere answer with their ancestor's status and are not listed."""
    found: list[type[DripdError]] = []
    pending: list[type[DripdError]] = [DripdError]
    while pending:
        cls = pending.pop(0)
        if cls.__module__ in (core.__name__, __name__) and cls not in found:
            found.append(cls)
        pending += sorted(cls.__subclasses__(), key=lambda c: c.__name__)
    return found


# Statuses Starlette raises itself (unknown route, wrong method, unreadable body) -> our class.
_FROM_HTTP: dict[int, type[DripdError]] = {status_of(c): c for c in (
    BadRequest, Unauthorized, core.NotFound, MethodNotAllowed, TooLarge, UnsupportedMediaType)}


def error_body(error: DripdError) -> bytes:
    """The JSON body of ``error``, for a layer that answers without FastAPI (the Bearer check)."""
    return json.dumps({"error": error.to_dict()}, separators=(",", ":")).encode()


def error_response(error: DripdError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error.to_dict()}, status_code=status_of(type(error)), headers=headers)


def field_path(loc: Iterable[str | int]) -> str:
    """``("body", "steps", 0, "type")`` -> ``steps[0].type``: the path as the client wrote it.
    A bad key of an object is named by the key itself (pydantic adds a ``[key]`` marker)."""
    out = ""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":
            out += f".{part}" if out else str(part)
    # A key may be the very lone surrogate being refused: the answer must still encode as JSON.
    return out.encode("utf-8", "backslashreplace").decode("utf-8") or "body"


def _rule(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "is required"
    if kind == "json_invalid":
        return "is not valid JSON"
    message = str(error.get("msg", "is invalid"))
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return message[:1].lower() + message[1:]


async def _dripd_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DripdError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    unreadable = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
    if unreadable is not None:
        # Not a rule broken by a value but a body that cannot be read: 400, as docs/api.md says.
        loc = unreadable.get("loc", ())
        where = f" at character {loc[-1] + 1}" if loc and isinstance(loc[-1], int) else ""
        reason = str((unreadable.get("ctx") or {}).get("error", "JSON decode error"))
        return error_response(BadRequest(f"the body is not valid JSON: {reason}{where}",
                                         details={"field": "body", "rule": "is not valid JSON"}))
    errors = [{"field": field_path(e.get("loc", ())), "rule": _rule(e)} for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "rule": "is invalid"}
    error = core.ValidationError(first["field"], first["rule"])
    if len(errors) > 1:
        error.details["errors"] = errors
    return error_response(error)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    # Starlette raises no other status today; one it might add still answers a documented code.
    cls = _FROM_HTTP.get(exc.status_code) or (BadRequest if exc.status_code < 500 else InternalError)
    message = exc.detail if isinstance(exc.detail, str) else cls.code.replace("_", " ")
    if cls is core.NotFound and message == "Not Found":
        message = f"no such resource: {request.url.path}"
    return error_response(cls(message), headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc, exc_info=exc)
    return error_response(InternalError("internal error; see the daemon's log"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(DripdError, _dripd_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
