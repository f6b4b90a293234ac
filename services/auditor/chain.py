"""The hash chain. Each row's hash covers the previous row's hash and the row itself.

Chain 1 (rows written before migration 0003): the hash covers the canonical JSON of the event
only; `verify` checks the columns it serves against that event, but `recorded_at` is covered by
nothing. Chain 2: the hash covers every column the API serves (seq, event_id, type, plan_id,
actor, occurred_at, recorded_at, signer, signer_key, signature) and the event, and the event
carries its producer's Ed25519 signature, which `verify` checks against the trusted keys. A log
may start with chain-1 rows; once a chain-2 row is written, every later row is chain 2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.events import canonical_json
from shared.identity import TrustedSigners

GENESIS_HASH = "0" * 64
CHAIN_VERSION = 2


def link_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    """Chain 1: the event alone."""
    return hashlib.sha256((prev_hash + canonical_json(payload)).encode("utf-8")).hexdigest()


def timestamp(value: datetime) -> str:
    """One spelling of a time for the hash: UTC, microseconds (PostgreSQL's precision)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class ChainRow:
    seq: int
    event_id: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str
    type: str = ""
    plan_id: str = ""
    actor: str = ""
    occurred_at: datetime | None = None
    recorded_at: datetime | None = None
    signer: str | None = None
    signer_key: str | None = None
    signature: str | None = None
    chain_version: int = 1
    canonical: str | None = None  # the signed JSON as stored (rows since migration 0004)


def columns_json(row: ChainRow) -> str:
    """Chain 2: the canonical JSON of every column the hash covers besides the event itself."""
    assert row.occurred_at is not None and row.recorded_at is not None
    return canonical_json(
        {
            "seq": row.seq,
            "event_id": row.event_id,
            "type": row.type,
            "plan_id": row.plan_id,
            "actor": row.actor,
            "occurred_at": timestamp(row.occurred_at),
            "recorded_at": timestamp(row.recorded_at),
            "signer": row.signer,
            "signer_key": row.signer_key,
            "signature": row.signature,
        }
    )


def row_hash(row: ChainRow, canonical_payload: str | None = None) -> str:
    """Chain 2: sha256 of `prev_hash|2|columns|event` (see README, "Verify an export")."""
    columns = columns_json(row)
    text = canonical_payload if canonical_payload is not None else canonical_json(row.payload)
    return hashlib.sha256(f"{row.prev_hash}|2|{columns}|{text}".encode()).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    head_hash: str
    broken_seq: int | None = None
    problem: str = ""
    legacy: int = 0  # chain-1 rows (unsigned, recorded_at not covered)

    def describe(self) -> str:
        if self.ok:
            legacy = f"; {self.legacy} older chain-1 rows carry no signature" if self.legacy else ""
            return f"OK: {self.count} events, head {self.head_hash}{legacy}"
        return f"BROKEN at seq {self.broken_seq}: {self.problem}"

    def but(self, problem: str, seq: int | None = None) -> Verdict:
        return Verdict(
            False, self.count, self.head_hash, seq if seq is not None else self.broken_seq, problem, self.legacy
        )


def _columns_match(row: ChainRow) -> str | None:
    """The columns the API serves must say what the hashed event says."""
    p = row.payload
    if str(p.get("id")) != row.event_id:
        return "event_id column does not match the hashed event"
    for column in ("type", "plan_id", "actor"):
        if row.chain_version == 1 and not getattr(row, column):
            continue  # an old caller that did not read the column
        if p.get(column) != getattr(row, column):
            return f"{column} column ({getattr(row, column)!r}) does not match the hashed event ({p.get(column)!r})"
    if row.occurred_at is not None and p.get("occurred_at"):
        try:
            stated = datetime.fromisoformat(str(p["occurred_at"]).replace("Z", "+00:00"))
        except ValueError:
            return "the hashed event's occurred_at is not a time"
        if stated != row.occurred_at:
            return "occurred_at column does not match the hashed event"
    return None


def check_row(row: ChainRow, expected_prev: str, trusted: TrustedSigners | None, seen_v2: bool) -> str | None:
    """What is wrong with one row, or None."""
    if row.prev_hash != expected_prev:
        return (
            "prev_hash does not match the previous row's hash (a row was deleted, inserted or reordered "
            "before this one)"
        )
    if row.chain_version == 1:
        if seen_v2:
            return "a chain-1 row after chain-2 rows (its chain_version was changed)"
        if link_hash(row.prev_hash, row.payload) != row.hash:
            return "hash does not match the row's content (the row was edited)"
        return _columns_match(row)
    if row.chain_version != CHAIN_VERSION:
        return f"unknown chain_version {row.chain_version}"
    canonical = canonical_json(row.payload)
    if row_hash(row, canonical) != row.hash:
        return "hash does not match the row's columns and content (the row was edited)"
    if row.canonical is not None and row.canonical != canonical:
        return "the stored signed JSON does not say what the event says (the row was edited)"
    if (problem := _columns_match(row)) is not None:
        return problem
    if trusted is not None:
        verdict = trusted.check(canonical.encode(), row.signer_key, row.signature, row.type, row.payload.get("data"))
        if not verdict.ok:
            return f"signature: {verdict.problem}"
        if verdict.service != row.signer:
            return f"signer column says {row.signer} but {verdict.service} signed it"
    return None


def verify_rows(
    rows: Iterable[ChainRow], start_hash: str = GENESIS_HASH, trusted: TrustedSigners | None = None
) -> Verdict:
    """Walk rows in seq order; the first row whose links, columns or signature do not hold is reported."""
    expected_prev = start_hash
    count = legacy = 0
    seen_v2 = False
    for row in rows:
        problem = check_row(row, expected_prev, trusted, seen_v2)
        if problem is not None:
            return Verdict(False, count, expected_prev, row.seq, problem, legacy)
        seen_v2 = seen_v2 or row.chain_version != 1
        legacy += row.chain_version == 1
        expected_prev = row.hash
        count += 1
    return Verdict(True, count, expected_prev, legacy=legacy)
