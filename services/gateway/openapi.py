"""The OpenAPI document declares the errors the API answers with, in the shape it sends them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "what was wrong and what to do"},
        "errors": {"type": "array", "items": {"type": "object"}, "description": "each invalid field (422)"},
    },
}
# Every route may answer these (authentication, plain-text hygiene, size, rate, availability).
COMMON = {
    "400": "a path, query parameter or header that is not plain text",
    "401": "no API key, or an unknown or revoked one",
    "403": "the key lacks the role this needs",
    "413": "the body is over the size limit",
    "422": "the request is not valid; `detail` says which field and why",
    "429": "too many requests from this key; retry after Retry-After seconds",
    "503": "a backing service (broker, database) is away; nothing was accepted",
}
# What routes with a plan in their path may also answer.
PLAN = {"404": "no such plan", "409": "the plan is not in a state that allows this"}
PUBLIC = {"/healthz", "/readyz", "/asyncapi", "/openapi.json"}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                declare(operation, path)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def declare(operation: dict[str, Any], path: str) -> None:
    responses = operation.setdefault("responses", {})
    wanted = dict(COMMON)
    if path in PUBLIC:
        wanted = {k: v for k, v in wanted.items() if k in ("400", "503")}
    if "{plan_id}" in path or path in ("/approve", "/api/agent/command"):
        wanted |= PLAN
    for status, why in wanted.items():
        if path in PUBLIC and status in responses:
            continue  # /readyz answers 503 with its own report, declared on the route
        existing = responses.get(status, {})
        responses[status] = {
            "description": existing.get("description") or why,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
