"""Broker setup shared by every process: who it is on the bus (its nkey and whom it trusts), how
it connects, the AGENTOPS stream's one configuration, and what makes a message an authentic
catalog event. The messaging runtime that uses these (middleware, consumers, the watchdog) is
services/runtime/messaging.py."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

import nats
from faststream.nats import JStream, StorageType
from nats.js.api import KeyValueConfig, StreamConfig

from shared.errors import StartupError
from shared.events import REPLAY_PREFIX, SUBJECT_PREFIX, Event, parse_event
from shared.identity import (
    SIGNATURE_HEADER,
    SIGNER_HEADER,
    SIGNERS_BUCKET,
    Signer,
    TrustedSigners,
    header,
    inbox_prefix,
)
from shared.settings import Settings

ALL_EVENTS = "agentops.>"


def servers(nats_url: str) -> list[str]:
    """NATS_URL may list several cluster nodes, comma-separated."""
    return [u.strip() for u in nats_url.split(",") if u.strip()]


@dataclass(frozen=True)
class Identity:
    """Who this process is on the bus: its key (connection and signatures) and whom it trusts."""

    signer: Signer
    trusted: TrustedSigners

    @property
    def name(self) -> str:
        return self.signer.service


def load_identity(settings: Settings, name: str) -> Identity:
    return Identity(Signer.from_file(name, settings.seed_path(name)), TrustedSigners.from_file(settings.signers_path))


def connect_options(settings: Settings, name: str) -> dict[str, Any]:
    """nats-py connect() options for `name`: its nkey, and replies to its own inboxes only."""
    path = settings.seed_path(name)
    if not path.exists():
        raise StartupError(f"no NATS identity for {name}: {path} is missing (`agentops up` or `agentops nats config`)")
    return {"nkeys_seed_str": path.read_text().strip(), "inbox_prefix": inbox_prefix(name)}


async def connect(settings: Settings, name: str, nats_url: str | None = None, **kwargs: Any) -> nats.NATS:
    """A plain nats-py connection as `name` (operator tools, setup)."""
    url = nats_url or settings.nats_url
    return await nats.connect(servers(url), **connect_options(settings, name), **kwargs)


def stream_config(settings: Settings) -> StreamConfig:
    """The one configuration of the AGENTOPS stream."""
    return StreamConfig(
        name=settings.stream_name,
        subjects=[ALL_EVENTS],
        storage=StorageType.FILE,
        duplicate_window=settings.dedup_window_seconds,
        num_replicas=settings.stream_replicas,
    )


def stream_for(settings: Settings) -> JStream:
    """The stream as FastStream subscribers and publishers name it. Services never create or change
    it (their identities may not): `agentops up` or `agentops migrate` does, as the admin identity."""
    config = stream_config(settings)
    return JStream(
        settings.stream_name,
        subjects=config.subjects,
        storage=config.storage,
        duplicate_window=config.duplicate_window,
        num_replicas=config.num_replicas,
        declare=False,
    )


# Durable consumers no version reads any more: left on the server, each would keep every new event
# of its subjects pending for nobody. The guardian read every `deployment.status` until it took only
# `deployment.changed`.
RETIRED_CONSUMERS = ("guardian-deployment-status",)


async def ensure_stream(nats_url: str, settings: Settings) -> None:
    """Create or update the stream, and remove the retired durables, as the admin identity
    (`agentops up`, `agentops migrate`)."""
    nc = await connect(settings, "admin", nats_url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        config = stream_config(settings)
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await js.update_stream(config)
        for consumer in RETIRED_CONSUMERS:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_consumer(settings.stream_name, consumer)
    finally:
        await nc.close()


async def publish_signers(nats_url: str, settings: Settings) -> None:
    """Put the trusted public keys in the `agentops-signers` KV bucket (as the admin identity), so
    whoever verifies an export or a replay can fetch them from the bus as well as the file."""
    trusted = TrustedSigners.from_file(settings.signers_path)
    nc = await connect(settings, "admin", nats_url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        kv = await js.create_key_value(
            KeyValueConfig(
                bucket=SIGNERS_BUCKET, history=16, replicas=settings.stream_replicas, storage=StorageType.FILE
            )
        )
        await kv.put("signers", json.dumps({"keys": trusted.as_dict()}, sort_keys=True).encode())
    finally:
        await nc.close()


def authenticity(trusted: TrustedSigners, body: bytes, headers: Any, event: Event) -> str | None:
    """None when `event` (decoded from `body`) was signed by a service that may produce it."""
    verdict = trusted.check(
        body, header(headers, SIGNER_HEADER), header(headers, SIGNATURE_HEADER), event.type, event.data
    )
    return None if verdict.ok else f"{verdict.problem} (claimed actor {event.actor!r})"


def decode(body: bytes, subject: str | None) -> Event:
    """The catalog event in `body`; raises unless it is one, of the type its subject names."""
    event = parse_event(body)
    checked = isinstance(subject, str) and subject.startswith(SUBJECT_PREFIX) and not subject.startswith(REPLAY_PREFIX)
    if checked and subject != event.subject:
        raise ValueError(f"a {event.type} event on {subject}: each subject carries only its own type")
    return event
