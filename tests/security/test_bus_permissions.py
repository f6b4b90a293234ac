"""The bus lets each service say only what it owns (DESIGN.md, "Trust"; shared/identity.py).

Every connection authenticates; each identity publishes exactly the subjects it produces and
subscribes only to what it consumes and to its own inboxes. A forgery with another service's
credentials is refused by the broker before any consumer sees it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import nats.errors
import pytest

from shared.events import CATALOG, DeploymentRequested, DeploymentRequestedData
from shared.identity import PRODUCERS, SERVICES, new_seed
from shared.models import Env, SageMakerDeploymentConfig
from tests.infra import connect, signed

pytestmark = pytest.mark.integration

SUBJECTS = [f"agentops.{t}" for t in CATALOG] + ["agentops.replay.intent.received"]


def allowed(identity: str) -> set[str]:
    if identity == "cli":
        return {"agentops.replay.intent.received"}
    return {f"agentops.{t}" for t, owners in PRODUCERS.items() if identity in owners}


async def refused(url: str, **options: Any) -> str:
    with pytest.raises(nats.errors.Error) as caught:
        nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3, **options)
        await nc.close()
    return str(caught.value)


async def test_a_connection_without_valid_credentials_is_refused(secured_nats: str) -> None:
    assert "Authorization Violation" in await refused(secured_nats)
    assert "Authorization Violation" in await refused(secured_nats, nkeys_seed_str=new_seed())  # a key nobody knows
    assert "Authorization Violation" in await refused(secured_nats, user="admin", password="admin")


@pytest.mark.parametrize("identity", [*SERVICES, "cli"])
async def test_each_identity_publishes_exactly_its_own_subjects(secured_nats: str, identity: str) -> None:
    watcher = await connect(secured_nats, "admin")
    arrived: list[str] = []

    async def seen(msg: Any) -> None:
        arrived.append(msg.subject)

    await watcher.subscribe("agentops.>", cb=seen)
    await watcher.flush()
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await connect(secured_nats, identity, error_cb=on_error)
    try:
        for subject in SUBJECTS:
            await nc.publish(subject, b"{}")
        # A marker it may send, after everything else on the same connection: once it arrives,
        # whatever the broker let through has arrived before it.
        marker = "agentops.replay.marker" if identity == "cli" else "agentops.message.rejected"
        await nc.publish(marker, b"marker")
        await nc.flush()
        for _ in range(200):
            if arrived.count(marker) >= 1 + (marker in SUBJECTS):
                break
            await asyncio.sleep(0.02)
    finally:
        await nc.close()
        await watcher.close()
    delivered = {s for s in arrived if s != "agentops.replay.marker"}
    assert delivered == allowed(identity)
    assert any("permissions violation" in e.lower() for e in errors)


@pytest.mark.parametrize(
    ("identity", "subject"),
    [
        ("planner", "agentops.approval.decided"),  # eavesdropping on decisions it does not consume
        ("notifier", "_INBOX_gateway.>"),  # another service's replies
        ("executor", "_INBOX.>"),
        ("guardian", "$KV.gateway-idempotency.>"),
    ],
)
async def test_a_service_cannot_listen_where_it_does_not_consume(
    secured_nats: str, identity: str, subject: str
) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    nc = await connect(secured_nats, identity, error_cb=on_error)
    try:
        await nc.subscribe(subject)
        await nc.flush()
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.02)
    finally:
        await nc.close()
    assert any("permissions violation for subscription" in e for e in errors), errors


def _deployment() -> DeploymentRequested:
    config = SageMakerDeploymentConfig(
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        endpoint_name="forged-prod",
        instance_type="ml.p5.48xlarge",
        instance_count=4,
        budget_usd_per_hour=10_000,
    )
    data = DeploymentRequestedData(env=Env.PROD, config=config, estimated_usd_per_hour=450.0)
    return DeploymentRequested(plan_id="forged-plan", actor="guardian", data=data)


@pytest.mark.parametrize("thief", ["notifier", "planner", "gateway", "executor", "auditor"])
async def test_a_forged_deployment_with_another_services_credentials_never_reaches_the_stream(
    secured_nats: str, thief: str
) -> None:
    event = _deployment()
    sent = signed(event, thief)  # signed with the stolen key too: still not the guardian's subject
    nc = await connect(secured_nats, thief)
    try:
        with pytest.raises((nats.errors.Error, asyncio.TimeoutError)):
            await nc.jetstream().publish(event.subject, sent["message"], headers=sent["headers"], timeout=1)
    finally:
        await nc.close()
    admin = await connect(secured_nats)
    try:
        state = (await admin.jetstream().stream_info("AGENTOPS", subjects_filter=event.subject)).state
    finally:
        await admin.close()
    assert not state.subjects  # nothing stored on agentops.deployment.requested


@pytest.mark.parametrize("identity", [*SERVICES, "cli"])
async def test_no_service_can_delete_purge_or_reconfigure_the_stream(secured_nats: str, identity: str) -> None:
    admin = await connect(secured_nats)
    await admin.jetstream().publish("agentops.replay.keep", b"kept")
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    nc = await connect(secured_nats, identity, error_cb=on_error)
    js = nc.jetstream()
    try:
        for attempt in (
            js.delete_stream("AGENTOPS"),
            js.purge_stream("AGENTOPS"),
            js.delete_consumer("AGENTOPS", "auditor-all"),
        ):
            with pytest.raises((nats.errors.Error, asyncio.TimeoutError)):
                await asyncio.wait_for(attempt, 0.5)  # the broker does not answer a refused request
    finally:
        await nc.close()
    try:
        info = await admin.jetstream().stream_info("AGENTOPS")
    finally:
        await admin.close()
    assert info.state.messages == 1  # neither deleted nor purged
    assert sum("permissions violation" in e for e in errors) == 3


@pytest.mark.parametrize("identity", [*SERVICES, "cli"])
async def test_nobody_but_setup_rewrites_the_published_keys(secured_nats: str, identity: str) -> None:
    """The public keys in the `agentops-signers` bucket are readable by all and written by the
    admin identity only: a service cannot slip its own key in for another's."""
    from shared.broker import publish_signers
    from shared.settings import Settings
    from tests.infra import IDENTITIES

    await publish_signers(secured_nats, Settings(identity_dir=IDENTITIES))
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    nc = await connect(secured_nats, identity, error_cb=on_error)
    try:
        kv = await nc.jetstream().key_value("agentops-signers")
        before = (await kv.get("signers")).value
        with pytest.raises((nats.errors.Error, asyncio.TimeoutError)):
            await asyncio.wait_for(kv.put("signers", b'{"keys": {"guardian": ["forged"]}}'), 0.5)
        assert (await kv.get("signers")).value == before
    finally:
        await nc.close()
    assert any("permissions violation" in e for e in errors)
