"""TypeScript types for the dashboard, generated from the gateway's OpenAPI document.

`agentops api-types` writes frontend/src/lib/api-types.ts; a test fails when the file in the repo
differs from what the current API would generate, so the dashboard cannot drift from the backend.
(openapi-typescript needs TypeScript 5 and the dashboard builds with 7: this covers the subset of
JSON Schema that pydantic emits.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

HEADER = (
    "// Generated from the gateway's /openapi.json by `agentops api-types`: do not edit.\n"
    "// A test fails when this file is stale (tests/unit/test_api_types.py).\n"
)
TARGET = Path(__file__).resolve().parents[2] / "frontend" / "src" / "lib" / "api-types.ts"


def name_of(ref: str) -> str:
    return re.sub(r"\W", "_", ref.rsplit("/", 1)[-1])


def ts_type(schema: dict[str, Any], indent: str = "") -> str:
    if "$ref" in schema:
        return name_of(schema["$ref"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(dict.fromkeys(ts_type(s, indent) for s in schema[key]))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return ts_type(schema["allOf"][0], indent)
    kind = schema.get("type")
    if kind == "array":
        inner = ts_type(schema.get("items", {}), indent)
        return f"({inner})[]" if "|" in inner else f"{inner}[]"
    if kind == "object" or "properties" in schema:
        return object_type(schema, indent)
    return {"string": "string", "integer": "number", "number": "number", "boolean": "boolean", "null": "null"}.get(
        str(kind), "unknown"
    )


def object_type(schema: dict[str, Any], indent: str) -> str:
    props = schema.get("properties")
    if not props:
        extra = schema.get("additionalProperties")
        value = ts_type(extra, indent) if isinstance(extra, dict) and extra else "unknown"
        return f"Record<string, {value}>"
    required = set(schema.get("required", []))
    inner = indent + "  "
    lines = []
    for key, prop in props.items():
        if prop.get("description"):
            lines.append(f"{inner}/** {comment(prop['description'])} */")
        optional = "" if key in required else "?"
        lines.append(f"{inner}{key}{optional}: {ts_type(prop, inner)}")
    return "{\n" + "\n".join(lines) + f"\n{indent}}}"


def comment(text: str) -> str:
    return " ".join(text.split()).replace("*/", "* /")


def typescript(openapi: dict[str, Any]) -> str:
    out = [HEADER]
    schemas = openapi.get("components", {}).get("schemas", {})
    for name in sorted(schemas):
        schema = schemas[name]
        ts = name_of(name)
        if schema.get("description"):
            out.append(f"/** {comment(schema['description'])} */")
        out.append(f"export type {ts} = {ts_type(schema)}\n")
        if "enum" in schema:
            out.append(f"export const {ts}Values = {json.dumps(schema['enum'])} as const\n")
        for prop, sub in schema.get("properties", {}).items():
            if "enum" in sub:
                const = f"{ts}{prop.title().replace('_', '')}Values"
                out.append(f"export const {const} = {json.dumps(sub['enum'])} as const\n")
    return "\n".join(out)


def generate() -> str:
    """The TypeScript of the gateway's OpenAPI document (builds the app; connects to nothing)."""
    import tempfile

    from services.runtime.bootstrap import build
    from services.runtime.natsconf import ensure_identities
    from shared.settings import Settings

    with tempfile.TemporaryDirectory() as keys:
        ensure_identities(Path(keys))
        settings = Settings(
            nats_url="nats://nats:4222", database_url="postgresql://agentops@postgres/agentops", identity_dir=keys
        )
        return typescript(build("gateway", settings).openapi())


def write(target: Path = TARGET) -> Path:
    target.write_text(generate())
    return target
