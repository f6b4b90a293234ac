"""Working state a service owns, kept in a JetStream KV bucket (never in Postgres)."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from faststream.nats import NatsBroker, StorageType
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class Store(Protocol[M]):
    async def get(self, key: str) -> M | None: ...
    async def put(self, key: str, value: M) -> None: ...
    async def claim(self, key: str, value: M) -> bool:
        """Store `value` only if `key` holds nothing (never written, or deleted), atomically: False,
        and nothing written, when it holds a value."""
        ...

    async def keys(self) -> list[str]: ...
    async def delete(self, key: str) -> None: ...


class KvStore(Generic[M]):
    """A bucket of one pydantic model per key; the bucket is created on first use."""

    def __init__(self, broker: NatsBroker, bucket: str, model: type[M], replicas: int = 1) -> None:
        self._broker, self._bucket, self._model, self._replicas = broker, bucket, model, replicas
        self._kv: KeyValue | None = None

    async def _open(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._broker.key_value(
                self._bucket, history=1, replicas=self._replicas, storage=StorageType.FILE
            )
        return self._kv

    async def get(self, key: str) -> M | None:
        kv = await self._open()
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None
        return self._model.model_validate_json(entry.value) if entry.value else None

    async def put(self, key: str, value: M) -> None:
        kv = await self._open()
        await kv.put(key, value.model_dump_json().encode())

    async def claim(self, key: str, value: M) -> bool:
        # one round trip: the server refuses the write unless the key's last revision is none
        kv = await self._open()
        try:
            await kv.create(key, value.model_dump_json().encode())
        except KeyWrongLastSequenceError:
            return False
        return True

    async def keys(self) -> list[str]:
        kv = await self._open()
        try:
            return list(await kv.keys())
        except NoKeysError:
            return []

    async def delete(self, key: str) -> None:
        kv = await self._open()
        await kv.delete(key)


class MemoryStore(Generic[M]):
    """The same contract in memory, for component tests with TestNatsBroker."""

    def __init__(self) -> None:
        self.items: dict[str, M] = {}

    async def get(self, key: str) -> M | None:
        return self.items.get(key)

    async def put(self, key: str, value: M) -> None:
        self.items[key] = value

    async def claim(self, key: str, value: M) -> bool:
        return self.items.setdefault(key, value) is value

    async def keys(self) -> list[str]:
        return list(self.items)

    async def delete(self, key: str) -> None:
        self.items.pop(key, None)
