"""API keys and roles.

A key is a random secret shown once; only its SHA-256 is stored (the secret has 192 bits of
entropy, so a slow hash would add nothing). Keys come from a JSON file (``API_KEYS_FILE``,
default ``.agentops/api-keys.json``, managed by ``agentops keys``) and from ``API_KEYS`` in the
environment (a JSON list of ``{"user_id", "roles", "key_sha256"}``). The gateway re-reads the
file when it changes, so ``agentops keys revoke`` takes effect without a restart.

Roles: viewer < deployer, approver; admin holds every role. Every route declares the role it
needs with ``Depends(require(Role.X))``; the user id of a request is the key's, never the body's.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel, Field

from shared.settings import Settings

KEY_PREFIX = "aok_"


class Role(StrEnum):
    VIEWER = "viewer"
    DEPLOYER = "deployer"
    APPROVER = "approver"
    ADMIN = "admin"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


class KeyRecord(BaseModel):
    id: str
    user_id: str = Field(min_length=1, max_length=200, pattern=r"^[\w.@+-]+$")
    roles: list[Role] = Field(min_length=1)
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    revoked_at: datetime | None = None
    source: str = "file"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[Role]
    key_id: str

    def has(self, role: Role) -> bool:
        return role in self.roles or Role.ADMIN in self.roles or role is Role.VIEWER


class KeyFile:
    """The keys file: read, create, revoke. Writes are atomic and private (0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[KeyRecord]:
        if not self.path.exists():
            return []
        raw = json.loads(self.path.read_text() or "{}")
        return [KeyRecord.model_validate(item) for item in raw.get("keys", [])]

    def save(self, records: list[KeyRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = {"keys": [r.model_dump(mode="json", exclude={"source"}) for r in records]}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(body, handle, indent=2)
        os.replace(tmp, self.path)

    def create(self, user_id: str, roles: list[Role]) -> tuple[str, KeyRecord]:
        secret = new_secret()
        record = KeyRecord(id="k_" + secrets.token_hex(4), user_id=user_id, roles=roles, key_sha256=hash_key(secret))
        self.save([*self.load(), record])
        return secret, record

    def revoke(self, key_id: str) -> KeyRecord:
        records = self.load()
        for i, record in enumerate(records):
            if record.id == key_id:
                if record.active:
                    records[i] = record.model_copy(update={"revoked_at": datetime.now(UTC)})
                    self.save(records)
                return records[i]
        raise KeyError(key_id)


def env_keys(raw: str) -> list[KeyRecord]:
    if not raw.strip():
        return []
    items = json.loads(raw)
    return [KeyRecord.model_validate({"id": f"env_{i}", "source": "env", **item}) for i, item in enumerate(items)]


class KeyStore:
    """Answers "whose key is this?" for the gateway; reloads the file when it changes."""

    def __init__(self, settings: Settings) -> None:
        self.file = KeyFile(settings.api_keys_path)
        self.from_env = env_keys(settings.api_keys)
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._by_hash: dict[str, KeyRecord] = {}
        self.generation = 0  # +1 each time the keys are reloaded (an open stream rechecks its key then)
        self._checked = 0.0
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        try:
            stat = self.file.path.stat()
            stamp: tuple[float, int] | None = (stat.st_mtime, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if not force and stamp == self._stamp:
            return
        with self._lock:
            records = [*self.from_env]
            with contextlib.suppress(FileNotFoundError):
                records += self.file.load()
            self._by_hash = {r.key_sha256: r for r in records if r.active}
            self._stamp = stamp
            self.generation += 1

    def fresh(self, interval: float = 0.5) -> int:
        """The keys' generation, looking at the file at most every `interval` seconds (a thousand
        open streams ask every second)."""
        now = time.monotonic()
        if now - self._checked >= interval:
            self._checked = now
            self._refresh()
        return self.generation

    def principal_of(self, user_id: str, via: str) -> Principal | None:
        """`user_id` with the roles of all their active keys (None: no active key), acting through
        `via` (a linked Slack user: the rate limit is theirs)."""
        self._refresh()
        roles = {role for r in self._by_hash.values() if r.user_id == user_id for role in r.roles}
        return Principal(user_id, frozenset(roles), via) if roles else None

    def authenticate(self, secret: str) -> Principal | None:
        self._refresh()
        record = self._by_hash.get(hash_key(secret))
        if record is None:
            return None
        return Principal(record.user_id, frozenset(record.roles), record.id)


def presented_key(request: Request, allow_query: bool = False) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    if key := request.headers.get("x-api-key"):
        return key.strip() or None
    if allow_query:
        return request.query_params.get("api_key") or None
    return None


class RoleCheck:
    """A FastAPI dependency that admits keys holding ``role`` and returns the caller."""

    def __init__(self, role: Role, allow_query_key: bool = False) -> None:
        self.role = role
        self.allow_query_key = allow_query_key

    async def __call__(self, request: Request) -> Principal:
        store: KeyStore = request.app.state.keys
        secret = presented_key(request, self.allow_query_key)
        if secret is None:
            raise HTTPException(
                401,
                "missing API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
                "(`agentops keys create` makes one)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = store.authenticate(secret)
        if principal is None:
            raise HTTPException(
                401, "unknown or revoked API key: ask an admin for a new one", headers={"WWW-Authenticate": "Bearer"}
            )
        if not principal.has(self.role):
            held = ", ".join(sorted(principal.roles))
            raise HTTPException(
                403, f"this needs the {self.role.value} role; the key of {principal.user_id} holds: {held}"
            )
        request.state.principal = principal
        return principal


@functools.cache
def require(role: Role, allow_query_key: bool = False) -> RoleCheck:
    """The dependency for a route that needs ``role`` (one shared instance per role)."""
    return RoleCheck(role, allow_query_key)


def ensure_local_admin(settings: Settings) -> str:
    """The local admin key of `agentops up`: created on first start, kept (0600) to print the URL again."""
    path = settings.agentops_home.resolve() / "admin-key"
    store = KeyFile(settings.api_keys_path)
    if path.exists():
        secret = path.read_text().strip()
        if any(r.active and r.key_sha256 == hash_key(secret) for r in store.load()):
            return secret
    secret, _ = store.create("admin", [Role.ADMIN])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def describe(record: KeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "user_id": record.user_id,
        "roles": [r.value for r in record.roles],
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "source": record.source,
    }
