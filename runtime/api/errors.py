"""One JSON shape for every error: {"error": {"status", "code", "message", "details"}}."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger(__name__)

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
         415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
         500: "internal_error", 503: "unavailable", 504: "timeout"}


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """What every non-2xx response carries."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": {"status": 404, "code": "not_found", "message": "no twin 'x-01'",
                   "details": None}}]})

    error: ErrorBody


class ApiError(Exception):
    """Raised by routes and dependencies; becomes an ErrorResponse."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.details = details
        self.headers = headers


def error_body(status: int, message: str, code: str | None = None,
               details: list[dict[str, Any]] | None = None) -> bytes:
    return orjson.dumps({"error": {"status": status, "code": code or CODES.get(status, "error"),
                                   "message": message, "details": details}})


def error_response(status: int, message: str, *, code: str | None = None,
                   details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(status, message, code, details), status_code=status,
                    headers=headers, media_type="application/json")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, code=exc.code, details=exc.details,
                          headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
    return error_response(exc.status_code, message,
                          headers=dict(exc.headers) if exc.headers else None)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # The offending input is not echoed: it may be large, or a password.
    details = [{"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")),
                "type": str(err.get("type", ""))} for err in exc.errors()]
    return error_response(422, "the request is not valid", details=details)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error statuses, all with the ErrorResponse body."""
    return {s: {"model": ErrorResponse, "description": _phrase(s)} for s in statuses}
