"""Queries over the audit log that both its writer's tools (services/auditor/operations.py) and its
readers (the gateway's /api/audit, history and SSE) use: one definition of a selection."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from shared.db import audit_events

TYPE_PATTERN_HELP = "type must be an event type like deployment.status, or a prefix like deployment.*"


def valid_pattern(pattern: str) -> bool:
    return bool(re.fullmatch(r"[a-z.*>]{1,100}", pattern))


def type_filter(pattern: str | None) -> Any:
    """`deployment.status`, `deployment.*` or `*`: an exact type or a prefix."""
    if not pattern or pattern in ("*", ">"):
        return None
    if pattern.endswith((".*", ".>")):
        return audit_events.c.type.like(pattern[:-1].replace("%", r"\%") + "%")
    return audit_events.c.type == pattern


# The auditor's NOTIFY after each committed batch (payload: its last seq), which wakes each
# gateway's live-event feed. Anyone who can connect may NOTIFY: it only makes a reader look sooner.
NOTIFY_CHANNEL = "agentops_audit"

# what readers get: every column but the stored signed text (the same event as `payload`, kept
# for `audit verify`; fetching it too would double what every page and every live stream reads)
READ = [column for column in audit_events.c if column.name != "canonical"]


def events(
    *,
    after_seq: int = 0,
    plan_id: str | None = None,
    type_pattern: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    through_seq: int | None = None,
) -> Select[Any]:
    """Recorded events in log order after `after_seq` (up to `through_seq`), narrowed by whatever
    is given."""
    query = select(*READ).where(audit_events.c.seq > after_seq).order_by(audit_events.c.seq)
    if through_seq is not None:
        query = query.where(audit_events.c.seq <= through_seq)
    if plan_id:
        query = query.where(audit_events.c.plan_id == plan_id)
    if since:
        query = query.where(audit_events.c.occurred_at >= since)
    if until:
        query = query.where(audit_events.c.occurred_at <= until)
    if (condition := type_filter(type_pattern)) is not None:
        query = query.where(condition)
    if limit:
        query = query.limit(limit)
    return query


def head() -> Select[Any]:
    """The seq of the last recorded event (none: no rows)."""
    return select(audit_events.c.seq).order_by(audit_events.c.seq.desc()).limit(1)
