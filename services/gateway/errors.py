"""Errors a user sees say what was wrong and what to do."""

from __future__ import annotations

from asyncpg.exceptions import OperatorInterventionError, PostgresConnectionError, TooManyConnectionsError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# Raised by asyncpg itself while the pool opens a connection (not wrapped by SQLAlchemy): a
# server shutting down or starting ("the database system is shutting down"), a lost connection.
DATABASE_AWAY = (
    OperationalError,
    InterfaceError,
    OSError,
    OperatorInterventionError,
    PostgresConnectionError,
    TooManyConnectionsError,
)


def describe(errors: list[dict]) -> str:  # type: ignore[type-arg]
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        if error.get("type") in ("model_attributes_type", "dict_type") and where == "body":
            parts.append('the body must be a JSON object, like {"command": "deploy llama 3.1 8b for chatbot-x"}')
        elif error.get("type") == "json_invalid":
            parts.append("the body is not valid JSON: send a JSON object")
        elif error.get("type") == "missing":
            parts.append(f"{where} is required")
        elif error.get("type") == "extra_forbidden":
            parts.append(f"{where} is not a known field")
        elif error.get("type") == "value_error" and str(error.get("msg", "")).startswith("Value error, body"):
            parts.append(str(error["msg"])[len("Value error, ") :])  # the message names the field itself
        else:
            parts.append(f"{where}: {str(error.get('msg')).removeprefix('Value error, ')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": describe(errors), "errors": errors})

    async def _database_away(_request: Request, exc: Exception) -> JSONResponse:
        # The read model is unreachable (PostgreSQL down or restarting): a 503 the client can retry,
        # never a 500. Nothing here was written; commands already accepted are safe in the stream.
        what = "a backing service" if type(exc) in (OSError, ConnectionRefusedError) else "the database"
        return JSONResponse(
            status_code=503,
            content={"detail": f"{what} is unreachable ({type(exc).__name__}): retry shortly"},
            headers={"Retry-After": "2"},
        )

    for kind in DATABASE_AWAY:
        app.add_exception_handler(kind, _database_away)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await _database_away(request, exc)
        raise exc
