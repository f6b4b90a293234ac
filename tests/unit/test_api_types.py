"""The dashboard's API types are generated from the gateway's OpenAPI document and never stale."""

from __future__ import annotations

from services.runtime.apitypes import TARGET, generate, typescript


def test_the_committed_types_are_what_the_api_generates() -> None:
    assert TARGET.read_text() == generate(), "stale: run `agentops docs api-types` and commit the file"


def test_the_generator_covers_what_pydantic_emits() -> None:
    schema = {
        "components": {
            "schemas": {
                "Status": {"enum": ["a", "b"], "type": "string"},
                "Row": {
                    "type": "object",
                    "description": "a row */ with a comment end",
                    "required": ["id", "tags"],
                    "properties": {
                        "id": {"type": "integer"},
                        "tags": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
                        "status": {"$ref": "#/components/schemas/Status"},
                        "extra": {"type": "object", "additionalProperties": {"type": "number"}},
                    },
                },
            }
        }
    }
    ts = typescript(schema)
    assert 'export type Status = "a" | "b"' in ts and 'export const StatusValues = ["a", "b"] as const' in ts
    assert "  id: number\n  tags: (string | null)[]\n  status?: Status\n  extra?: Record<string, number>" in ts
    assert "/** a row * / with a comment end */" in ts
