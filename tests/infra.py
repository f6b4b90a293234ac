"""The servers the tests run against, set up as production sets them up: NATS admitting only the
AgentOps identities (one nkey each, its own permissions), PostgreSQL with one login per service.

Identities and database passwords are made once per test session; IDENTITY_DIR points every
Settings() (and every subprocess) at them.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats

from services.runtime.dbroles import login_url, new_passwords
from services.runtime.natsconf import ensure_identities
from shared.broker import servers
from shared.identity import inbox_prefix
from shared.settings import Settings

IDENTITIES = Path(os.environ.get("AGENTOPS_TEST_IDENTITIES") or tempfile.mkdtemp(prefix="agentops-identities-"))
SIGNERS = ensure_identities(IDENTITIES)
os.environ["AGENTOPS_TEST_IDENTITIES"] = str(IDENTITIES)  # subprocesses reuse the same keys
os.environ["IDENTITY_DIR"] = str(IDENTITIES)
PASSWORDS = new_passwords()


def seed(identity: str) -> str:
    return (IDENTITIES / f"{identity}.nk").read_text().strip()


async def connect(url: str, identity: str = "admin", **kwargs: Any) -> nats.NATS:
    """A nats-py connection as one of the identities (admin may do anything)."""
    return await nats.connect(
        servers(url), nkeys_seed_str=seed(identity), inbox_prefix=inbox_prefix(identity), **kwargs
    )


def login(database_url: str, service: str) -> str:
    """The same test database, logged in as `service`'s own role."""
    return login_url(database_url, service, PASSWORDS)


def for_service(settings: Settings, service: str) -> Settings:
    """A service's own settings: its own database login (or none)."""
    if service in ("auditor", "gateway", "guardian") and settings.database_url:
        return settings.model_copy(update={"database_url": login(settings.database_url, service)})
    return settings.model_copy(update={"database_url": ""})


def create_stream(url: str, **overrides: Any) -> None:
    asyncio.run(ensure_stream_as_admin(url, **overrides))


async def ensure_stream_as_admin(url: str, **overrides: Any) -> None:
    from shared.broker import ensure_stream

    await ensure_stream(url, Settings(nats_url=url, identity_dir=IDENTITIES, **overrides))


def signed(event: Any, by: str) -> dict[str, Any]:
    """What `by` would publish `event` with: `broker.publish(**signed(event, by), subject=...)`."""
    body = event.canonical_json().encode()
    return {"message": body, "headers": {"Nats-Msg-Id": str(event.id), **SIGNERS[by].sign(body)}}


def producer(event_type: str) -> str:
    """A service that may produce `event_type` (people's decisions: the gateway)."""
    from shared.identity import PRODUCERS

    return "gateway" if event_type == "approval.decided" else sorted(PRODUCERS[event_type])[0]


def relinked_as_chain1(rows: list[tuple[int, dict[str, Any]]], prev: str, also: str = "") -> list[str]:
    """UPDATE statements that relink `rows` (seq, the event as the forger wants it) from `prev` as
    unsigned chain-1 rows, each hashed over its event alone: what a forger who cannot sign can
    write. `also`: more `, column = value` to set on each."""
    import json

    from services.auditor.chain import link_hash

    statements = []
    for seq, payload in rows:
        digest = link_hash(prev, payload)
        statements.append(
            f"UPDATE audit_events SET payload = '{json.dumps(payload)}'::jsonb, prev_hash = '{prev}', "
            f"hash = '{digest}', chain_version = 1, signature = NULL, signer = NULL{also} WHERE seq = {seq}"
        )
        prev = digest
    return statements


def write_chain1_row(database_url: str) -> None:
    """One audit row as the chain-1 auditor (before migration 0003) wrote it: seq 1, unsigned,
    hashed over the event alone. Written as a superuser, as only a test may."""
    import json

    import psycopg

    from services.auditor.chain import GENESIS_HASH, link_hash
    from shared.events import IntentReceived, IntentReceivedData

    old = IntentReceived(plan_id="old", actor="alice", data=IntentReceivedData(command="deploy x", user_id="alice"))
    payload = json.loads(old.canonical_json())
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO audit_events (seq, event_id, type, plan_id, actor, occurred_at, recorded_at, payload, "
            "prev_hash, hash) VALUES (1, %s, %s, %s, %s, %s, now(), %s, %s, %s)",
            (
                str(old.id),
                old.type,
                old.plan_id,
                old.actor,
                old.occurred_at,
                json.dumps(payload),
                GENESIS_HASH,
                link_hash(GENESIS_HASH, payload),
            ),
        )


def service_app(service: str, settings: Settings, **ports: Any) -> Any:
    """A service's app wired as `agentops serve` wires it (services/runtime/bootstrap.py); `ports`
    replace its default adapters (stores, backends, webhook targets)."""
    from services.runtime.bootstrap import build

    return build(service, settings, **ports)


def in_memory(app: Any) -> Any:
    """FastStream's in-memory broker over a service app, with the app's consumers: they are
    declared apart from the broker the service runs (`Messaging.declared`; the runtime reads
    them with its own pull loops), and included here so a publish reaches the handlers through
    the same checks (`Messaging._consume`)."""
    from faststream.nats import TestNatsBroker

    app.broker.include_router(app.declared)
    return TestNatsBroker(app.broker)


async def settled(nats_url: str, timeout: float = 20.0, stream: str = "AGENTOPS") -> None:
    """Wait until everything sent has been handled: every durable consumer of the stream (each
    service's, the auditor's) has nothing pending and nothing unacknowledged, twice in a row.
    Handlers publish what they cause before they acknowledge, so nothing is still on its way."""
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        deadline = asyncio.get_running_loop().time() + timeout
        quiet = 0
        while quiet < 2:
            consumers = await js.consumers_info(stream)
            busy = [c.name for c in consumers if c.num_pending or c.num_ack_pending]
            quiet = quiet + 1 if not busy else 0
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"still handling events after {timeout}s: {busy}")
            await asyncio.sleep(0.05)
    finally:
        await nc.close()


async def eventually(condition: Callable[[], object], timeout: float = 30.0) -> bool:
    """`until` for a test running on the event loop: polls without blocking the services it waits on."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return False


async def found(check: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> Any:
    """The first truthy value `check` gives (a plain or an async function), polled without
    blocking the services it waits on; AssertionError naming `what` when time runs out."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} never held within {timeout:g} s; last seen {last!r}"[:2000])


def until(condition: Callable[[], object], timeout: float = 30.0) -> bool:
    """Poll a condition (a blocking test: a subprocess, a URL) until it holds or time runs out."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
