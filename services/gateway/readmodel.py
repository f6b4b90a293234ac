"""Queries on the projections (the gateway only ever reads); rows come back as the fold's models."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import approvals, deployments
from shared.models import PlanStatus
from shared.readmodels import ApprovalRow, PlanRow

ACTIVE = tuple(
    s.value for s in (PlanStatus.DEPLOYING, PlanStatus.DEPLOYED, PlanStatus.UPDATING, PlanStatus.ROLLED_BACK)
)
# Plans that hold (or held, while paused or failed) an endpoint: the ones lifecycle commands address.
LIFECYCLE = (*ACTIVE, PlanStatus.PAUSED.value, PlanStatus.FAILED.value)


class ReadModel:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def deployments(self, limit: int, offset: int, include_deleted: bool = False) -> list[PlanRow]:
        query = select(deployments).order_by(deployments.c.created_at.desc(), deployments.c.plan_id)
        if not include_deleted:
            query = query.where(deployments.c.status != PlanStatus.DELETED.value)
        async with self.engine.connect() as conn:
            rows = await conn.execute(query.limit(limit).offset(offset))
            return [PlanRow.model_validate(dict(r)) for r in rows.mappings()]

    async def deployment(self, plan_id: str) -> PlanRow | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(deployments).where(deployments.c.plan_id == plan_id))).mappings().first()
            return PlanRow.model_validate(dict(row)) if row else None

    async def count_live(self) -> int:
        query = select(func.count()).where(deployments.c.status != PlanStatus.DELETED.value)
        async with self.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def count_status(self, statuses: tuple[str, ...]) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).where(deployments.c.status.in_(statuses))) or 0)

    async def pending_approvals(self) -> list[tuple[ApprovalRow, str]]:
        """Requests waiting now, with the intent of their plan."""
        now = datetime.now(UTC)
        query = (
            select(approvals, deployments.c.intent.label("plan_intent"))
            .join(deployments, deployments.c.plan_id == approvals.c.plan_id)
            .where(
                approvals.c.status == "pending",
                approvals.c.expires_at > now,
                # a new plan waiting, or a change (restart, scale) of a plan that holds an endpoint
                deployments.c.status.in_((PlanStatus.PENDING_APPROVAL.value, *LIFECYCLE)),
            )
            .order_by(approvals.c.requested_at)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings()
            return [(ApprovalRow.model_validate(dict(r)), r["plan_intent"]) for r in rows]

    async def approval(self, plan_id: str) -> ApprovalRow | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(approvals).where(approvals.c.plan_id == plan_id))).mappings().first()
            return ApprovalRow.model_validate(dict(row)) if row else None

    async def active_deployments(self) -> list[PlanRow]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(deployments).where(deployments.c.status.in_(ACTIVE)))
            return [PlanRow.model_validate(dict(r)) for r in rows.mappings()]

    async def by_endpoint(self, names: list[str]) -> list[PlanRow]:
        """Live plans serving one of these endpoint names, newest first."""
        query = (
            select(deployments)
            .where(
                deployments.c.artifact["endpoint_name"].astext.in_(names),
                deployments.c.status.in_(LIFECYCLE),
            )
            .order_by(deployments.c.created_at.desc())
        )
        async with self.engine.connect() as conn:
            return [PlanRow.model_validate(dict(r)) for r in (await conn.execute(query)).mappings()]
