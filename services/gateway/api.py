"""REST routes. Each one decodes, asks the read model or publishes an event, and answers."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from opentelemetry import trace

from services.gateway import costs, views
from services.gateway.auth import Principal, Role, require
from services.gateway.feed import Feed
from services.gateway.health import audit_lag
from services.gateway.idempotency import IdempotencyStore, Reused, fingerprint
from services.gateway.lifecycle import choose, endpoint_names, lifecycle_request, schedule_request
from services.gateway.ratelimit import RateLimiter
from services.gateway.readmodel import ReadModel
from services.gateway.scheduling import send_rules
from services.gateway.schemas import (
    ActionResponse,
    ActiveDeployments,
    CommandRequest,
    CommandResponse,
    DeploymentDetail,
    DeploymentList,
    Me,
    MonthlyCost,
    PendingApprovals,
    PlanCost,
    RollbackRequest,
    ScaleRequest,
    StrategyRequest,
    UpdateRequest,
)
from services.gateway.waiter import PlanWaiter
from shared.billing import Billed
from shared.bus import Bus, Publish
from shared.catalog import models
from shared.costs import costs_so_far
from shared.events import (
    DeploymentAction,
    DeploymentActionData,
    Event,
    IntentReceived,
    IntentReceivedData,
)
from shared.guardrails import update_strategy
from shared.hub import Hub, HubError, looks_like_hub_id
from shared.intent import parse
from shared.models import ALLOWED_ACTIONS, Action, PlanStatus
from shared.readmodels import PlanRow
from shared.schedules import RULE_NAMES, Rules
from shared.settings import Settings

SERVICE = "gateway"
PlanIdPath = Annotated[str, Path(description="a plan id")]


class Gateway:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        publish: Publish,
        waiter: PlanWaiter,
        read: ReadModel,
        feed: Feed,
        asyncapi: Callable[[], str] | None = None,
    ) -> None:
        self.settings, self.bus, self.publish, self.waiter, self.read = settings, bus, publish, waiter, read
        self.feed = feed  # the live-event feed, started and stopped by the app's lifespan
        self.broker = bus.broker
        self.asyncapi = asyncapi
        self.limiter = RateLimiter(settings.command_rate_per_minute, settings.command_burst)
        self.hub = Hub(models(), settings.hf_endpoint, timeout=settings.hub_timeout_seconds)
        self.cost_explorer = costs.CostExplorer(settings) if settings.executor_mode.value == "aws" else None
        self.billed = Billed.from_settings(settings)  # budgets: what AWS billed per scope (not in dry-run)
        self.idempotency = IdempotencyStore(bus.broker, settings.idempotency_ttl_seconds, settings.stream_replicas)
        self.commands = bus.metrics.counter("commands", "commands answered, by outcome", ("outcome",))
        self.approvals_pending = bus.metrics.gauge("approvals_pending", "approval requests waiting now")
        self.approval_oldest = bus.metrics.gauge(
            "approval_oldest_seconds", "how long the oldest waiting approval request has waited"
        )

    async def send(self, event: Event) -> None:
        """Publish, or tell the caller plainly that nothing was accepted."""
        span = trace.get_current_span()  # the request's span, when tracing is on
        if span.is_recording():
            span.set_attribute("agentops.service", SERVICE)
            span.set_attribute("agentops.plan_id", event.plan_id)
        if not self.bus.is_connected():
            raise HTTPException(503, "the event broker is unreachable; nothing was accepted: retry shortly")
        try:
            await self.publish(event)
        except Exception as exc:  # timeouts, connection loss: the broker did not confirm
            raise HTTPException(
                503,
                f"the event broker did not confirm the event ({type(exc).__name__}); "
                "nothing was accepted: retry shortly",
            ) from exc


async def gateway(request: Request) -> Gateway:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per request
    return request.app.state.gateway  # type: ignore[no-any-return]


GatewayDep = Annotated[Gateway, Depends(gateway)]
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Deployer = Annotated[Principal, Depends(require(Role.DEPLOYER))]
Approver = Annotated[Principal, Depends(require(Role.APPROVER))]
router = APIRouter()


@router.get("/healthz", tags=["ops"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    tags=["ops"],
    responses={
        503: {
            "description": "not ready, or degraded: `reasons` says why",
            "content": {"application/json": {"schema": {"type": "object", "required": ["status"]}}},
        }
    },
)
async def readyz(gw: GatewayDep) -> JSONResponse:
    """Ready only when the broker and the read model answer and the audit log keeps up."""
    checks: dict[str, Any] = {"broker": "ok" if gw.bus.is_connected() else "unreachable"}
    try:
        await asyncio.wait_for(gw.read.ping(), 2.0)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable ({type(exc).__name__})"
    reasons = [f"{name} {state}" for name, state in checks.items() if state != "ok"]
    if checks["broker"] == "ok":
        try:
            lag = await asyncio.wait_for(audit_lag(gw.broker, gw.settings), 2.0)
            checks["audit"] = lag.as_dict()
            if (problem := lag.problem(gw.settings)) is not None:
                reasons.append(problem)
        except Exception as exc:
            reasons.append(f"the audit lag cannot be read ({type(exc).__name__})")
    down = checks["broker"] != "ok" or checks["database"] != "ok"
    status = "not_ready" if down else "degraded" if reasons else "ready"
    body = {"status": status, **checks, "reasons": reasons, "executor_mode": gw.settings.executor_mode.value}
    return JSONResponse(body, status_code=200 if not reasons else 503)


@router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
async def metrics(gw: GatewayDep, _who: Viewer) -> PlainTextResponse:
    """Prometheus text: the gateway's consumers and publishers, commands by outcome, approvals
    waiting. (Each other service serves its own on METRICS_PORT; `agentops status` lists them.)"""
    with contextlib.suppress(Exception):  # the read model away: the rest is still worth scraping
        waiting = await gw.read.pending_approvals()
        gw.approvals_pending.set(len(waiting))
        oldest = min((row.requested_at for row, _ in waiting), default=None)
        gw.approval_oldest.set((datetime.now(UTC) - oldest).total_seconds() if oldest else 0)
    return PlainTextResponse(gw.bus.metrics.exposition(), media_type="text/plain; version=0.0.4")


@router.get("/api/me", tags=["ops"])
async def me(who: Viewer) -> Me:
    """Who the presented key belongs to, and its roles (the dashboard shapes its controls by them)."""
    return Me(user_id=who.user_id, roles=sorted(r.value for r in who.roles), key_id=who.key_id)


@router.get("/api/deployments", tags=["deployments"])
async def list_deployments(
    gw: GatewayDep,
    _who: Viewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> DeploymentList:
    """The seed's `{deployments, count}`, newest first; deleted plans are left out."""
    rows = await gw.read.deployments(limit, offset)
    spent = await costs_so_far(gw.read.engine, [r.plan_id for r in rows])
    plans = [views.plan(row, spent.get(row.plan_id)) for row in rows]
    return DeploymentList(deployments=plans, count=await gw.read.count_live(), limit=limit, offset=offset)


@router.get("/api/deployments/{plan_id}", tags=["deployments"])
async def get_deployment(plan_id: str, gw: GatewayDep, _who: Viewer) -> DeploymentDetail:
    return views.plan_detail(await existing(gw, plan_id))


@router.get("/plan/{plan_id}", tags=["deployments"])
async def get_plan(plan_id: str, gw: GatewayDep, _who: Viewer) -> DeploymentDetail:
    """The seed's older path for the same `{plan, approval}`."""
    return views.plan_detail(await existing(gw, plan_id))


@router.post("/api/agent/command", tags=["deployments"], responses={202: {"model": CommandResponse}})
async def command(
    body: CommandRequest,
    gw: GatewayDep,
    who: Deployer,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Plan, guard and (for staging and dev) deploy a command; lifecycle commands act on a deployment.

    Limited per API key (429 with Retry-After). With an `Idempotency-Key` header, a retry of the
    same command returns the first plan instead of making a second one.
    """
    limit = gw.settings.max_command_chars
    if len(body.command) > limit:
        raise HTTPException(422, f"command is {len(body.command)} characters; the limit is {limit}: shorten it")
    rate_limit(gw, who)
    understood = parse(body.command, models())  # once: the words decide which path the command takes
    if scheduled := schedule_request(body.command, understood):
        target = choose(scheduled, await gw.read.by_endpoint(endpoint_names(scheduled)), body.env)
        rules = Rules(**scheduled.changes)  # only what the command says changes
        fields = [name for name in RULE_NAMES if name in scheduled.changes]
        ruled = await send_rules(gw.send, gw.settings.executor_mode, target, rules, who, fields)
        scheduled_response = CommandResponse(
            command_id=ruled.command_id,
            status="accepted",
            plan_id=target.plan_id,
            action="schedule",
            message=ruled.message,
            plan=views.plan(target),
        )
        return JSONResponse(scheduled_response.model_dump(mode="json"), status_code=202)
    if lifecycle := lifecycle_request(body.command, understood):
        if (lifecycle.instance_count or 0) > gw.settings.max_instance_count:
            raise HTTPException(
                422,
                f"instance_count {lifecycle.instance_count} is over the limit of {gw.settings.max_instance_count}",
            )
        target = choose(lifecycle, await gw.read.by_endpoint(endpoint_names(lifecycle)), body.env)
        change = None
        if lifecycle.action in (Action.UPDATE, Action.ROLLBACK):
            said = StrategyRequest(
                shift=lifecycle.traffic,  # type: ignore[arg-type]
                percent=lifecycle.traffic_percent,
                wait_seconds=lifecycle.traffic_wait_seconds,
            )
            change = await _change_of(gw, target, lifecycle.action, lifecycle.model_id, lifecycle.instance_type, said)
        done = await _act(
            gw, target.plan_id, lifecycle.action, who, lifecycle.instance_count, limited=True, change=change
        )
        response = CommandResponse(
            command_id=done.command_id,
            status="accepted",
            plan_id=done.plan_id,
            action=done.action,
            message=done.message,
            plan=views.plan(target),
        )
        return JSONResponse(response.model_dump(mode="json"), status_code=202)
    plan_id = str(uuid.uuid4())
    event = IntentReceived(
        plan_id=plan_id,
        actor=who.user_id,
        data=IntentReceivedData(command=body.command, env=body.env, user_id=who.user_id, constraints=body.constraints),
    )
    if idempotency_key is not None:
        first = await _claim(gw, who, idempotency_key, body, plan_id, str(event.id))
        if first is not None:
            if first["command_id"] and await gw.read.deployment(first["plan_id"]) is None:
                # The first request may have died (or met a broker outage) between claiming the key
                # and publishing. Publish the same intent again under the same event id: if the
                # first one did land, the stream's duplicate window and the auditor drop this one.
                again = {"id": uuid.UUID(first["command_id"]), "plan_id": first["plan_id"]}
                await gw.send(event.model_copy(update=again))
            row = await _settled(gw, first["plan_id"])
            replay = views.replayed(first["command_id"], first["plan_id"], row)
            return JSONResponse(
                replay.model_dump(mode="json"),
                status_code=202 if replay.status == "accepted" else 200,
                headers={"Idempotent-Replayed": "true"},
            )
    outcome = gw.waiter.expect(plan_id)
    try:
        await gw.send(event)
    except HTTPException:
        gw.waiter.forget(plan_id)
        raise
    decided = await gw.waiter.wait(outcome, plan_id, gw.settings.command_wait_seconds)
    # No database round trip: the one fold makes the plan from the intent and the decisive event.
    response = views.command_response(str(event.id), event, decided)
    gw.commands.labels(response.result.status.value if response.result else response.status).inc()
    return JSONResponse(response.model_dump(mode="json"), status_code=202 if response.status == "accepted" else 200)


def rate_limit(gw: Gateway, who: Principal) -> None:
    """Every request that can start or change spending (commands, actions, decisions) draws from
    the key's one token bucket: 429 with Retry-After when it is empty."""
    if (wait := gw.limiter.take(who.key_id)) is not None:
        raise HTTPException(
            429,
            f"too many requests from this key (limit {gw.settings.command_rate_per_minute:g}/min): retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )


async def _settled(gw: Gateway, plan_id: str) -> PlanRow | None:
    """The plan once it is past planning (the first request may still be in flight), or as it is."""
    deadline = asyncio.get_running_loop().time() + gw.settings.command_wait_seconds
    while True:
        row = await gw.read.deployment(plan_id)
        if (row and row.status is not PlanStatus.PLANNING) or asyncio.get_running_loop().time() > deadline:
            return row
        await asyncio.sleep(0.02)


async def _claim(
    gw: Gateway, who: Principal, key: str, body: CommandRequest, plan_id: str, command_id: str
) -> dict[str, str] | None:
    if not key.strip():
        raise HTTPException(422, "Idempotency-Key is empty: send a unique value per command, e.g. a UUID")
    try:
        return await gw.idempotency.claim(
            who.user_id, key, fingerprint(body.model_dump(mode="json")), plan_id, command_id
        )
    except Reused as exc:
        raise HTTPException(
            422, "this Idempotency-Key was already used for a different command: use a new key per command"
        ) from exc
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(
            503, f"the idempotency store is unreachable ({type(exc).__name__}); nothing was accepted: retry shortly"
        ) from exc


@router.post("/api/deployments/{plan_id}/pause", tags=["deployments"])
async def pause(plan_id: PlanIdPath, gw: GatewayDep, who: Deployer) -> ActionResponse:
    return await _act(gw, plan_id, Action.PAUSE, who)


@router.post("/api/deployments/{plan_id}/restart", tags=["deployments"])
async def restart(plan_id: PlanIdPath, gw: GatewayDep, who: Deployer) -> ActionResponse:
    """Starts spending again: the guardian checks it like a new plan (in prod, or above the cost
    thresholds, it waits for approvers; see GET /approvals)."""
    return await _act(gw, plan_id, Action.RESTART, who)


@router.post("/api/deployments/{plan_id}/scale", tags=["deployments"])
async def scale(plan_id: PlanIdPath, body: ScaleRequest, gw: GatewayDep, who: Deployer) -> ActionResponse:
    """Checked like a new plan with the new count: in prod, or above the cost thresholds, it waits
    for one or two approvers bound to the new configuration."""
    return await _act(gw, plan_id, Action.SCALE, who, body.instance_count)


@router.post("/api/deployments/{plan_id}/update", tags=["deployments"])
async def update(plan_id: PlanIdPath, body: UpdateRequest, gw: GatewayDep, who: Deployer) -> ActionResponse:
    """Change the live endpoint's model, instance type or count without downtime: a new
    configuration, then a SageMaker blue/green update (all at once, canary or linear, watched by
    the endpoint's alarms, rolled back automatically when they fire). Checked like a new plan; in
    prod, or above the cost thresholds, it waits for approvers bound to the new configuration."""
    rate_limit(gw, who)  # before anything is looked up (a Hub model is asked of the Hub)
    row = await existing(gw, plan_id)
    change = await _change_of(
        gw, row, Action.UPDATE, body.model_id, body.instance_type, body.strategy, body.instance_count
    )
    return await _act(gw, plan_id, Action.UPDATE, who, body.instance_count, limited=True, change=change)


@router.post("/api/deployments/{plan_id}/rollback", tags=["deployments"])
async def rollback(
    plan_id: PlanIdPath, gw: GatewayDep, who: Deployer, body: RollbackRequest | None = None
) -> ActionResponse:
    """Return the live endpoint to the configuration its last update replaced, through the same
    guarded blue/green update."""
    rate_limit(gw, who)
    row = await existing(gw, plan_id)
    change = await _change_of(gw, row, Action.ROLLBACK, strategy=body.strategy if body else None)
    return await _act(gw, plan_id, Action.ROLLBACK, who, limited=True, change=change)


async def _change_of(
    gw: Gateway,
    row: PlanRow,
    action: Action,
    model_id: str | None = None,
    instance_type: str | None = None,
    strategy: StrategyRequest | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """The fields of an update or rollback request, or a 4xx/409 that says what is wrong with it.
    The guardian checks it again (the read model may lag a change that just happened)."""
    what = row.details.endpoint_name or row.plan_id
    if row.status in ALLOWED_ACTIONS[action] and row.details.pending_change is not None:
        waiting = row.details.pending_change.operation
        raise HTTPException(409, f"a {waiting} of {what} is waiting for approval: decide it (GET /approvals) first")
    fields: dict[str, Any] = {}
    current = row.artifact
    if action is Action.UPDATE:
        if model_id is not None:
            spec = models().get(model_id)
            if spec is None and looks_like_hub_id(model_id):
                try:
                    spec = await gw.hub.spec(model_id)
                except HubError as exc:
                    raise HTTPException(exc.status if exc.status < 500 else 503, str(exc)) from None
            if spec is None:
                close = difflib.get_close_matches(model_id.lower(), [m.id.lower() for m in models().models], n=1)
                hint = f", e.g. {models().get(close[0]).id}" if close else ""  # type: ignore[union-attr]
                raise HTTPException(
                    422, f"unknown model {model_id!r}: name a catalog model id{hint} or a Hugging Face id (org/name)"
                )
            model_id = spec.id
        if current is not None and all(
            new in (None, old)
            for new, old in (
                (model_id, current.model_name),
                (instance_type, current.instance_type),
                (count, current.instance_count),
            )
        ):
            raise HTTPException(
                409,
                f"the update changes nothing: {what} already runs {current.model_name} on "
                f"{current.instance_count} x {current.instance_type}",
            )
        fields |= {"model_id": model_id, "instance_type": instance_type}
    elif row.status in ALLOWED_ACTIONS[action] and not any(
        r.outcome == "deployed" and r.config != current for r in row.details.history
    ):
        raise HTTPException(409, f"{what} has had no other configuration to roll back to")
    said = strategy or StrategyRequest()
    try:
        fields["strategy"] = update_strategy(row.env, gw.settings, said.shift, said.percent, said.wait_seconds)
    except ValueError as exc:
        raise HTTPException(422, f"the update strategy is not valid: {exc}") from None
    return fields


@router.delete("/api/deployments/{plan_id}", tags=["deployments"])
async def delete(plan_id: PlanIdPath, gw: GatewayDep, who: Deployer) -> ActionResponse:
    return await _act(gw, plan_id, Action.DELETE, who)


async def existing(gw: Gateway, plan_id: str) -> PlanRow:
    row = await gw.read.deployment(plan_id) if len(plan_id) <= 100 else None
    if row is None:
        raise HTTPException(404, f"no deployment plan {plan_id!r}")
    return row


async def _act(
    gw: Gateway,
    plan_id: str,
    action: Action,
    who: Principal,
    count: int | None = None,
    limited: bool = False,
    change: dict[str, Any] | None = None,
) -> ActionResponse:
    if not limited:
        rate_limit(gw, who)
    actor = who.user_id
    row = await existing(gw, plan_id)
    status = row.status
    if status not in ALLOWED_ACTIONS[action]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED_ACTIONS[action]))
        raise HTTPException(
            409, f"cannot {action.value} a plan that is {status.value}; {action.value} applies to: {allowed}"
        )
    data = DeploymentActionData(action=action, requested_by=actor, instance_count=count, **(change or {}))
    event = DeploymentAction(plan_id=plan_id, actor=actor, data=data)
    await gw.send(event)
    return ActionResponse(
        command_id=str(event.id),
        plan_id=plan_id,
        action=action.value,
        message=f"{action.value} requested for {row.details.endpoint_name or plan_id}"
        + (
            "; like a new plan it is checked again, and in prod or above the approval threshold it waits "
            "for approvers (GET /approvals)"
            if action in (Action.SCALE, Action.RESTART, Action.UPDATE, Action.ROLLBACK)
            else ""
        ),
    )


@router.get("/api/metrics/deployments/active", tags=["metrics"])
async def active_deployments(gw: GatewayDep, _who: Viewer) -> ActiveDeployments:
    return views.active(await gw.read.active_deployments())


@router.get("/api/metrics/approvals/pending", tags=["metrics"])
async def pending_approvals(gw: GatewayDep, _who: Viewer) -> PendingApprovals:
    return views.pending(await gw.read.pending_approvals())


@router.get("/api/metrics/costs/monthly", tags=["metrics"])
async def monthly_costs(gw: GatewayDep, _who: Viewer) -> MonthlyCost:
    """The seed's shape. Cost Explorer (SageMaker only, cached) in aws mode, else the audit-log estimate."""
    now = datetime.now(UTC)
    if gw.cost_explorer is not None:
        try:
            return await gw.cost_explorer.month(now)
        except Exception:  # billing API down or not permitted: the estimate still answers
            pass
    return await costs.estimated_month(gw.read.engine, now)


@router.get("/api/deployments/{plan_id}/cost", tags=["deployments"])
async def deployment_cost(plan_id: str, gw: GatewayDep, _who: Viewer) -> PlanCost:
    """What this deployment has cost so far, estimated from its recorded status changes."""
    row = await existing(gw, plan_id)
    return await costs.plan_cost(gw.read.engine, plan_id, row, datetime.now(UTC))
