"""API keys for the tests: one per user, each with the roles a scenario needs.

The secrets are fixed strings so failures are easy to reproduce; the system only ever sees their
hashes, through API_KEYS, exactly as an operator would configure it.
"""

from __future__ import annotations

import json

from services.gateway.auth import hash_key

USERS: dict[str, list[str]] = {
    "alice": ["deployer"],
    "erin": ["deployer"],
    "bob": ["approver"],
    "carol": ["approver"],
    "dave": ["deployer", "approver"],
    "vic": ["viewer"],
    "root": ["admin"],
}


def secret(user: str) -> str:
    return f"aok_test_{user}_0123456789abcdef"


def headers(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret(user)}"}


def api_keys_env() -> str:
    return json.dumps([{"user_id": u, "roles": r, "key_sha256": hash_key(secret(u))} for u, r in USERS.items()])
