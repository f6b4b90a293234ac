"""The executor as a class with ports: its records, a publisher, the SageMaker backend (None in
dry-run) and a sleep. One method per event it consumes, and `check_drift` for the reconciler.
What it asks SageMaker for is decided by the pure functions of services/executor/lifecycle.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, Protocol

from services.executor.aws import DeployFailed, Outcome
from services.executor.lifecycle import (
    CHANGES,
    SERVICE,
    Context,
    Deployed,
    back_call,
    finish,
    rolled_back,
    start,
    status,
    wind_down,
)
from services.executor.sagemaker import smoke_call
from shared.bus import Publish
from shared.events import DeploymentAction, DeploymentRequested, DeploymentStatus, DeploymentStatusData
from shared.hub import Hub, HubError
from shared.kv import Store
from shared.models import SageMakerCall, SmokeTest, utcnow

Progress = Callable[[], Coroutine[Any, Any, Any]]


class Backend(Protocol):
    """What the executor needs of SageMaker (services/executor/aws.py; blocking calls)."""

    def run(self, calls: list[SageMakerCall], owner: str | None = None) -> None: ...
    def wait_in_service(self, endpoint: str, heartbeat: Callable[[], None]) -> Outcome: ...
    def smoke(self, call: SageMakerCall) -> SmokeTest: ...
    def endpoint(self, name: str) -> Outcome: ...
    def tagged_endpoints(self) -> dict[str, str | None]: ...
    def invocations(self, name: str, since: datetime, until: datetime) -> float: ...


async def _no_progress() -> None:
    return None


class Executor:
    def __init__(
        self,
        records: Store[Deployed],
        publish: Publish,
        ctx: Context,
        aws: Backend | None,
        dry_run_seconds: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        count_calls: Callable[[list[SageMakerCall], str], None] = lambda calls, error: None,
        hub: Hub | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.records, self.publish, self.ctx, self.aws = records, publish, ctx, aws
        self.clock = clock
        self.hub = hub  # the container of a Hugging Face model the catalog lacks (sized by the Hub)
        self.dry_run_seconds, self.sleep = dry_run_seconds, sleep
        self.count_calls = count_calls  # (calls made or described, "" or the error) -> metrics

    async def on_requested(self, event: DeploymentRequested, progress: Progress = _no_progress) -> None:
        """Bring the endpoint up (or resize it, or update it). `progress` tells the broker we are
        still at it, so it does not redeliver while SageMaker works."""
        if event.data.operation in CHANGES:
            await self._change(event, progress)
            return
        if event.data.operation == "deploy" and (why := await self._no_container(event)):
            await self.publish(status(event, self.ctx, "failed", event.data.config.endpoint_name, [], why))
            return
        deploying, record = start(event, self.ctx, await self.records.get(event.plan_id))
        await self.publish(deploying)
        await self.records.put(event.plan_id, record)
        check = smoke_call(event.data.config, self.ctx.models)
        if self.aws is None:
            self.count_calls([*deploying.data.calls, check], "")
            await self.sleep(self.dry_run_seconds)
            await self._deployed(event, record, check, SmokeTest(outcome="described"))
            return
        endpoint = event.data.config.endpoint_name
        loop = asyncio.get_running_loop()

        def heartbeat() -> None:  # called from the worker thread that waits on SageMaker
            asyncio.run_coroutine_threadsafe(progress(), loop)

        try:
            await asyncio.to_thread(self.aws.run, deploying.data.calls, event.plan_id)
            outcome = await asyncio.to_thread(self.aws.wait_in_service, endpoint, heartbeat)
        except DeployFailed as exc:
            self.count_calls(deploying.data.calls, str(exc).split(":", 1)[0][:40])
            await self.publish(status(event, self.ctx, "failed", endpoint, [], str(exc)))
            return
        self.count_calls(deploying.data.calls, "")
        if outcome.status == "InService":
            smoke = await asyncio.to_thread(self.aws.smoke, check)
            self.count_calls([check], "" if smoke.outcome == "passed" else "SmokeTestFailed")
            if smoke.outcome == "passed":
                await self._deployed(event, record, check, smoke)
                return
            # InService but not answering: the deployment failed; the endpoint stays (and bills)
            # until someone looks at it or deletes the plan, as a Failed one would
            why = f"smoke test: the endpoint is InService but {check.operation} failed: {smoke.detail}"
            await self.publish(status(event, self.ctx, "failed", endpoint, [check], why, smoke))
        else:
            reason = outcome.reason or f"the endpoint is {outcome.status}"
            await self.publish(status(event, self.ctx, "failed", endpoint, [], reason))

    async def _no_container(self, event: DeploymentRequested) -> str | None:
        """Why the model's serving container cannot be chosen (a Hub model the Hub cannot
        describe now); None when it can. Nothing is created without one."""
        if self.hub is None:
            return None
        try:
            await self.hub.spec(event.data.config.model_name)
        except HubError as exc:
            return f"the model's container could not be chosen: {exc}"
        return None

    async def _change(self, event: DeploymentRequested, progress: Progress) -> None:
        """An update or rollback: a new revision, then SageMaker's blue/green update to it. Done
        when the endpoint serves the new revision and answers the smoke test; rolled back when
        SageMaker undid it (alarms, a fleet that never got healthy: the endpoint is InService on
        its old config, which is why the config is compared, never InService alone), or when the
        smoke test fails on it."""
        before = await self.records.get(event.plan_id)
        endpoint = event.data.config.endpoint_name
        if before is None or not before.endpoint_live:
            why = (
                "nothing was changed: the executor has no live endpoint for this plan (paused, or its record was lost)"
            )
            if before is not None:
                await self.publish(rolled_back(event, self.ctx, before, [], why))
            else:
                await self.publish(status(event, self.ctx, "failed", endpoint, [], why))
            return
        if before.done == event.id:  # a redelivery of a request already carried out
            return
        if missing := await self._no_container(event):
            await self.publish(rolled_back(event, self.ctx, before, [], f"nothing was changed: {missing}"))
            return
        updating, record = start(event, self.ctx, before)
        await self.publish(updating)
        check = smoke_call(event.data.config, self.ctx.models)
        if self.aws is None:
            self.count_calls([*updating.data.calls, check], "")
            await self.sleep(self.dry_run_seconds)
            await self._deployed(
                event, record.model_copy(update={"done": event.id}), check, SmokeTest(outcome="described")
            )
            return
        target = updating.data.calls[-1].params["EndpointConfigName"]
        loop = asyncio.get_running_loop()

        def heartbeat() -> None:
            asyncio.run_coroutine_threadsafe(progress(), loop)

        # what was made stays recorded whatever happens next (a delete removes every revision)
        made = before.model_copy(update={"revisions": record.revisions, "done": event.id})
        try:
            await asyncio.to_thread(self.aws.run, updating.data.calls, event.plan_id)
        except DeployFailed as exc:  # SageMaker refused it: the endpoint was not touched
            self.count_calls(updating.data.calls, str(exc).split(":", 1)[0][:40])
            await self.publish(rolled_back(event, self.ctx, before, [], f"the update was refused: {exc}"))
            await self.records.put(event.plan_id, made)
            return
        self.count_calls(updating.data.calls, "")
        outcome = await asyncio.to_thread(self.aws.wait_in_service, endpoint, heartbeat)
        if outcome.status != "InService":
            reason = outcome.reason or f"the endpoint is {outcome.status}"
            await self.publish(status(event, self.ctx, "failed", endpoint, [], f"update: {reason}"))
            await self.records.put(
                event.plan_id, made.model_copy(update={"endpoint_live": outcome.status != "missing"})
            )
            return
        if outcome.config != target:  # InService, but on the old configuration: SageMaker rolled back
            why = outcome.reason or "an alarm fired or the new fleet did not become healthy"
            await self.publish(
                rolled_back(
                    event, self.ctx, before, [], f"SageMaker rolled the update back ({why}); serving {outcome.config}"
                )
            )
            await self.records.put(event.plan_id, made)
            return
        smoke = await asyncio.to_thread(self.aws.smoke, check)
        self.count_calls([check], "" if smoke.outcome == "passed" else "SmokeTestFailed")
        if smoke.outcome == "passed":
            await self._deployed(event, record.model_copy(update={"done": event.id}), check, smoke)
            return
        await self._smoke_back(event, before, made, check, smoke, heartbeat)

    async def _smoke_back(
        self,
        event: DeploymentRequested,
        before: Deployed,
        made: Deployed,
        check: SageMakerCall,
        smoke: SmokeTest,
        heartbeat: Callable[[], None],
    ) -> None:
        """The new revision is InService but does not answer: back to the one before it."""
        assert self.aws is not None
        back = back_call(before, event.plan_id)
        why = f"smoke test failed on the new configuration ({smoke.detail})"
        try:
            await asyncio.to_thread(self.aws.run, [back], event.plan_id)
            outcome = await asyncio.to_thread(self.aws.wait_in_service, before.config.endpoint_name, heartbeat)
        except DeployFailed as exc:
            outcome = Outcome("Failed", str(exc))
        self.count_calls([back], "" if outcome.status == "InService" else "RollbackFailed")
        if outcome.status == "InService" and outcome.config == back.params["EndpointConfigName"]:
            await self.publish(rolled_back(event, self.ctx, before, [check, back], f"{why}: rolled back", smoke))
            await self.records.put(event.plan_id, made)
            return
        reason = f"{why}, and rolling back failed: {outcome.reason or outcome.status}"
        await self.publish(status(event, self.ctx, "failed", before.config.endpoint_name, [check, back], reason, smoke))
        await self.records.put(event.plan_id, made)

    async def on_action(self, event: DeploymentAction) -> None:
        """Pause and delete (restart and scale come through the guardian as requests)."""
        outcome, record = wind_down(event, await self.records.get(event.plan_id), self.ctx)
        if outcome is not None and self.aws is not None:
            try:
                await asyncio.to_thread(self.aws.run, outcome.data.calls, event.plan_id)
                self.count_calls(outcome.data.calls, "")
            except DeployFailed as exc:
                self.count_calls(outcome.data.calls, str(exc).split(":", 1)[0][:40])
                endpoint = outcome.data.endpoint_name
                await self.publish(status(event, self.ctx, "failed", endpoint, [], f"{event.data.action.value}: {exc}"))
                return
        if outcome is not None:
            await self.publish(outcome)
        if record is not None:
            await self.records.put(event.plan_id, record)

    async def check_drift(self) -> int:
        """Deployed endpoints that vanished or failed outside AgentOps become status events.
        Returns how many were found."""
        if self.aws is None:
            return 0
        found = 0
        for key in await self.records.keys():
            record = await self.records.get(key)
            if record is None or not record.endpoint_live or not record.settled:
                continue  # nothing there, or SageMaker is still creating it
            state = await asyncio.to_thread(self.aws.endpoint, record.config.endpoint_name)
            if state.status not in ("missing", "Failed"):
                continue
            why = "deleted outside AgentOps" if state.status == "missing" else state.reason or "Failed"
            data = DeploymentStatusData(
                status="failed",
                endpoint_name=record.config.endpoint_name,
                mode=self.ctx.mode,  # type: ignore[arg-type]
                reason=f"drift: the endpoint was {why}",
            )
            await self.publish(DeploymentStatus(id=uuid.uuid4(), plan_id=key, actor=SERVICE, data=data))
            await self.records.put(key, record.model_copy(update={"endpoint_live": False}))
            found += 1
        return found

    async def unowned(self) -> list[tuple[str, str | None]]:
        """Endpoints AgentOps tagged that no live plan of this executor has: left behind (a plan
        whose delete never reached SageMaker, a record lost) and billing all the same. Reported,
        never deleted: which of them someone still uses is a person's call."""
        if self.aws is None:
            return []
        tagged = await asyncio.to_thread(self.aws.tagged_endpoints)
        found = []
        for endpoint, plan_id in sorted(tagged.items()):
            record = await self.records.get(plan_id) if plan_id else None
            if record is None or not record.endpoint_live or record.config.endpoint_name != endpoint:
                found.append((endpoint, plan_id))
        return found

    async def _deployed(
        self, event: DeploymentRequested, record: Deployed, check: SageMakerCall, smoke: SmokeTest
    ) -> None:
        await self.publish(finish(event, self.ctx, check, smoke))
        await self.records.put(event.plan_id, record.model_copy(update={"settled": True, "since": self.clock()}))
