"""Setting up the stream (`agentops up`, `agentops migrate`) removes the durable consumers no
version reads any more: left behind, each would keep every new event of its subject pending for
nobody, and the server would go on tracking it."""

from __future__ import annotations

import pytest
from nats.js.api import ConsumerConfig

from shared.broker import RETIRED_CONSUMERS, ensure_stream
from shared.identity import CONSUMES, durable_name
from shared.settings import Settings
from tests.infra import connect

pytestmark = pytest.mark.integration


async def test_the_stream_setup_removes_retired_durables_and_keeps_the_rest(nats_url: str) -> None:
    settings = Settings(nats_url=nats_url)
    # the guardian's durable of every status, as a version before `deployment.changed` left it
    retired = durable_name("guardian", "deployment.status")
    kept = durable_name("guardian", "deployment.changed")
    assert retired in RETIRED_CONSUMERS and "deployment.status" not in CONSUMES["guardian"]
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        for name, subject in ((retired, "agentops.deployment.status"), (kept, "agentops.deployment.changed")):
            await js.add_consumer(settings.stream_name, ConsumerConfig(durable_name=name, filter_subject=subject))
        await js.publish("agentops.deployment.status", b"{}", headers={"Nats-Msg-Id": "left-for-nobody"})

        await ensure_stream(nats_url, settings)
        names = {c.name for c in await js.consumers_info(settings.stream_name)}
        assert retired not in names and kept in names

        await ensure_stream(nats_url, settings)  # nothing left to remove: set up again all the same
        assert {c.name for c in await js.consumers_info(settings.stream_name)} == names
    finally:
        await nc.close()
