"""Errors a user sees say what was wrong and what to do."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


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
        else:
            parts.append(f"{where}: {error.get('msg')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": describe(errors), "errors": errors})
