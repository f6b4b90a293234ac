"""`Idempotency-Key`: a retried command returns the plan it already made instead of making another.

Keys are scoped to the API key's user and kept in a JetStream KV bucket with a TTL, so a retry
that lands on another gateway replica, or after a restart, still finds the first plan. The first
request reserves the key atomically (KV create); a concurrent duplicate waits for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from faststream.nats import NatsBroker, StorageType
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from shared.events import canonical_json

BUCKET = "gateway-idempotency"


def fingerprint(body: dict[str, object]) -> str:
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def storage_key(user_id: str, key: str) -> str:
    # KV keys allow a limited alphabet; hashing keeps any header value safe and fixed-length.
    return hashlib.sha256(f"{user_id}\x00{key}".encode()).hexdigest()


class Reused(Exception):
    """The key was used before with a different request body."""


class IdempotencyStore:
    def __init__(self, broker: NatsBroker, ttl_seconds: float, replicas: int = 1) -> None:
        self.broker, self.ttl, self.replicas = broker, ttl_seconds, replicas
        self._kv: KeyValue | None = None

    async def _open(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.broker.key_value(
                BUCKET, ttl=self.ttl, history=1, replicas=self.replicas, storage=StorageType.FILE
            )
        return self._kv

    async def claim(
        self, user_id: str, key: str, body_hash: str, plan_id: str, command_id: str
    ) -> dict[str, str] | None:
        """None if this request now owns the key; else the first request's {plan_id, command_id}."""
        kv = await self._open()
        name = storage_key(user_id, key)
        record = json.dumps({"plan_id": plan_id, "command_id": command_id, "body": body_hash}).encode()
        for _ in range(3):
            try:
                await kv.create(name, record)
                return None
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await kv.get(name)
            except KeyNotFoundError:
                await asyncio.sleep(0.01)  # expired between the two calls: try to claim again
                continue
            first = json.loads(entry.value or b"{}")
            if first.get("body") != body_hash:
                raise Reused
            return {"plan_id": str(first["plan_id"]), "command_id": str(first.get("command_id", ""))}
        raise RuntimeError("could not claim the idempotency key")

    async def claim_once(self, scope: str, value: str) -> bool:
        """True the first time `value` is seen in `scope` (on any gateway replica, within the
        bucket's TTL); False for a repeat (a replayed Slack callback)."""
        kv = await self._open()
        try:
            await kv.create(f"{scope}." + hashlib.sha256(value.encode()).hexdigest(), b"1")
            return True
        except KeyWrongLastSequenceError:
            return False

    async def claim_vote(self, plan_id: str, plan_hash: str, approver: str, vote: bytes) -> bytes | None:
        """None the first time `approver` votes on this request (on any gateway replica); after
        that, the vote first claimed. The read model learns of a vote only once the auditor has
        written it, too late to refuse a second click at once."""
        kv = await self._open()
        name = _vote_key(plan_id, plan_hash, approver)
        try:
            await kv.create(name, vote)
            return None
        except KeyWrongLastSequenceError:
            entry = await kv.get(name)
            return entry.value or vote


def _vote_key(plan_id: str, plan_hash: str, approver: str) -> str:
    return "vote." + hashlib.sha256(f"{plan_id}\x00{plan_hash}\x00{approver}".encode()).hexdigest()
