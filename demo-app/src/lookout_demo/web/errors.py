"""JSON error responses that say what was wrong and where, always with the request id."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lookout_demo.storage.database import DatabaseBusyError
from lookout_telemetry.context import request_id_var

__all__ = ["ApiError", "error_body", "install_error_handlers"]


class ApiError(Exception):
    """An error a handler raises on purpose: status, machine-readable code, sentence."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """Build the one JSON error shape both services use."""
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    body["request_id"] = request_id_var.get()
    return body


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    """Turn a pydantic error location into ``body.items[0].quantity``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON handlers for our errors, HTTP errors and invalid requests."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.details), status_code=exc.status
        )

    @app.exception_handler(DatabaseBusyError)
    async def _database_busy(_: Request, exc: DatabaseBusyError) -> JSONResponse:
        return JSONResponse(
            error_body("database_busy", f"{exc}; retry shortly"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            first = next(e for e in errors if e.get("type") == "json_invalid")
            ctx = first.get("ctx") or {}
            position = first.get("loc", ("body", "?"))[-1]
            return JSONResponse(
                error_body(
                    "malformed_json",
                    f"the request body is not valid JSON (at character {position}: "
                    f"{ctx.get('error', 'parse error')})",
                ),
                status_code=400,
            )
        problems = [f"{_where(e['loc'])}: {e['msg']}" for e in errors]
        fields = [
            {"field": _where(e["loc"]), "message": e["msg"], "type": e["type"]} for e in errors
        ]
        return JSONResponse(
            error_body("invalid_request", "; ".join(problems), fields=fields), status_code=422
        )
