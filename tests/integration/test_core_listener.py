"""The gateway hears each command's outcome on a core subscription (`Messaging.listen`, read by the
runtime's own callback, not a FastStream subscriber). Whoever reaches the bus can publish on those
subjects without the stream: nothing but an authentic event signed by the type's owner may reach
the handler (it answers a held HTTP request), a handler that fails does not end the
subscription, and a request on the subject is answered only by the stream (a JetStream publish
is a request, and an answer from us would race the stream's acknowledgement)."""

from __future__ import annotations

import json

import pytest
from nats.aio.msg import Msg

from services.runtime.bootstrap import messaging
from shared.broker import load_identity
from shared.events import DeploymentRequested, DeploymentRequestedData
from shared.models import Env, SageMakerDeploymentConfig
from shared.settings import Settings
from tests.infra import connect, found

pytestmark = pytest.mark.integration
SUBJECT = "agentops.deployment.requested"


def requested(plan_id: str) -> bytes:
    config = SageMakerDeploymentConfig(
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        endpoint_name=f"{plan_id}-staging",
        instance_type="ml.g5.2xlarge",
        instance_count=1,
        budget_usd_per_hour=20,
    )
    data = DeploymentRequestedData(env=Env.STAGING, config=config, estimated_usd_per_hour=1.5)
    return DeploymentRequested(plan_id=plan_id, actor="guardian", data=data).canonical_json().encode()


async def test_the_outcome_listener_hears_only_authentic_events_and_keeps_listening(nats_url: str) -> None:
    settings = Settings(nats_url=nats_url)
    gateway = messaging(settings, "gateway")  # wired as the service is
    guardian = load_identity(settings, "guardian").signer  # the owner of deployment.requested
    planner = load_identity(settings, "planner").signer  # a service that does not own it
    heard: list[str] = []

    @gateway.listen("deployment.requested")
    async def offer() -> None:
        plan_id = gateway.current_event().plan_id
        heard.append(plan_id)
        if plan_id == "plan-boom":
            raise RuntimeError("the handler failed")

    honest = requested("plan-honest")
    hostile = [
        (b"\xff\xfe\x00\x00not text", {}),
        (b'{"id": "\x00", "type": "deployment.requested"}', {}),
        (b'{"pad": "' + b"a" * 512 * 1024 + b'"}', {}),
        (requested("plan-unsigned"), {}),
        (requested("plan-by-planner"), planner.sign(requested("plan-by-planner"))),
        (honest.replace(b"plan-honest", b"plan-altered"), guardian.sign(honest)),  # signed other bytes
    ]
    admin = await connect(nats_url)
    await gateway.start()
    try:
        for body, headers in hostile:
            await admin.publish(SUBJECT, body, headers=headers or None)
        boom = requested("plan-boom")
        await admin.publish(SUBJECT, boom, headers=guardian.sign(boom))
        await admin.publish(SUBJECT, honest, headers=guardian.sign(honest))
        await found(lambda: "plan-honest" in heard, what="the honest outcome heard after the others")
        assert heard == ["plan-boom", "plan-honest"]

        # A request on the subject (what a JetStream publish is) is answered by the stream alone:
        # its acknowledgement, never also an (empty) reply from the listener
        replies: list[bytes] = []
        inbox = admin.new_inbox()

        async def replied(msg: Msg) -> None:
            replies.append(msg.data)

        await admin.subscribe(inbox, cb=replied)
        again = requested("plan-asked")
        await admin.publish(SUBJECT, again, reply=inbox, headers=guardian.sign(again))
        await found(lambda: heard[-1:] == ["plan-asked"], what="the request's event heard")
        await found(lambda: bool(replies), what="the stream's acknowledgement")
        await gateway.broker.connection.flush()  # anything the listener sent has reached the server
        await admin.flush()  # and anything the server had for us has arrived
        assert len(replies) == 1 and json.loads(replies[0])["stream"] == settings.stream_name, replies
    finally:
        await gateway.stop()
        await admin.close()
