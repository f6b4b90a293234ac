"""The hash chain: each row's hash covers the previous hash and the canonical JSON of the event."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.events import canonical_json

GENESIS_HASH = "0" * 64


def link_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(payload)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainRow:
    seq: int
    event_id: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    head_hash: str
    broken_seq: int | None = None
    problem: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"OK: {self.count} events, head {self.head_hash}"
        return f"BROKEN at seq {self.broken_seq}: {self.problem}"

    def but(self, problem: str, seq: int | None = None) -> Verdict:
        return Verdict(False, self.count, self.head_hash, seq if seq is not None else self.broken_seq, problem)


def verify_rows(rows: Iterable[ChainRow], start_hash: str = GENESIS_HASH) -> Verdict:
    """Walk rows in seq order; the first row whose links do not hold is reported."""
    expected_prev = start_hash
    count = 0
    for row in rows:
        if row.prev_hash != expected_prev:
            return Verdict(
                False,
                count,
                expected_prev,
                row.seq,
                "prev_hash does not match the previous row's hash (a row was deleted, inserted or reordered "
                "before this one)",
            )
        if link_hash(row.prev_hash, row.payload) != row.hash:
            return Verdict(
                False, count, expected_prev, row.seq, "hash does not match the row's content (the row was edited)"
            )
        if str(row.payload.get("id")) != row.event_id:
            return Verdict(False, count, expected_prev, row.seq, "event_id column does not match the hashed event")
        expected_prev = row.hash
        count += 1
    return Verdict(True, count, expected_prev)
