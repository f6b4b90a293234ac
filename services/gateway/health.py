"""Readiness: the broker, the read model, and how far the audit log is behind the stream.

A stuck auditor means every later event is unrecorded and the read model frozen: the system is
then `degraded`, never `ready`, and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from faststream.nats import NatsBroker

from shared.identity import durable_name
from shared.settings import Settings

AUDITOR_DURABLE = durable_name("auditor", ">")


@dataclass(frozen=True)
class AuditLag:
    last_seq: int  # the stream's last event
    audited_seq: int  # every event up to here is in the log
    behind: int
    oldest_unaudited_seconds: float

    def problem(self, settings: Settings) -> str | None:
        if self.behind > settings.audit_lag_max_events:
            return f"the audit log is {self.behind} events behind the stream (bound {settings.audit_lag_max_events})"
        if self.oldest_unaudited_seconds > settings.audit_lag_max_seconds:
            return (
                f"the oldest unaudited event is {self.oldest_unaudited_seconds:.0f} s old "
                f"(bound {settings.audit_lag_max_seconds:g} s): the auditor is stuck or down"
            )
        return None

    def as_dict(self) -> dict[str, float | int]:
        return {
            "stream_last_seq": self.last_seq,
            "audited_seq": self.audited_seq,
            "behind": self.behind,
            "oldest_unaudited_seconds": round(self.oldest_unaudited_seconds, 3),
        }


async def audit_lag(broker: NatsBroker, settings: Settings) -> AuditLag:
    js = broker.connection.jetstream()
    stream = await js.stream_info(settings.stream_name)
    last = stream.state.last_seq or 0
    try:
        consumer = await js.consumer_info(settings.stream_name, AUDITOR_DURABLE)
        audited = consumer.ack_floor.stream_seq or 0
    except Exception:  # no auditor has ever run: everything in the stream is unaudited
        audited = (stream.state.first_seq or 1) - 1
    behind = max(0, last - audited)
    age = 0.0
    if behind:
        first = max(audited + 1, stream.state.first_seq or 1)
        message = await js.get_msg(settings.stream_name, first)
        if message.time is not None:
            age = max(0.0, (datetime.now(UTC) - message.time).total_seconds())
    return AuditLag(last, audited, behind, age)
