"""The hash chain detects edits, deletions and reordering at the row where they happen."""

from __future__ import annotations

import dataclasses

from services.auditor.chain import GENESIS_HASH, ChainRow, link_hash, verify_rows


def build_chain(n: int) -> list[ChainRow]:
    rows, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        payload = {"id": f"e{seq}", "type": "intent.received", "data": {"command": f"deploy {seq}", "budget": 12.5}}
        h = link_hash(prev, payload)
        rows.append(ChainRow(seq, f"e{seq}", payload, prev, h))
        prev = h
    return rows


def test_an_intact_chain_verifies_with_its_count_and_head() -> None:
    rows = build_chain(10)
    verdict = verify_rows(rows)
    assert verdict.ok and verdict.count == 10 and verdict.head_hash == rows[-1].hash


def test_an_edited_payload_breaks_the_chain_at_that_row() -> None:
    rows = build_chain(10)
    rows[4] = dataclasses.replace(rows[4], payload={**rows[4].payload, "actor": "mallory"})
    verdict = verify_rows(rows)
    assert not verdict.ok and verdict.broken_seq == 5 and "edited" in verdict.problem


def test_a_deleted_row_breaks_the_chain_at_the_next_row() -> None:
    rows = build_chain(10)
    del rows[3]
    verdict = verify_rows(rows)
    assert not verdict.ok and verdict.broken_seq == 5


def test_swapped_rows_break_the_chain() -> None:
    rows = build_chain(10)
    rows[2], rows[3] = rows[3], rows[2]
    assert verify_rows(rows).broken_seq == 4


def test_hash_covers_key_order_independent_canonical_json() -> None:
    a = link_hash(GENESIS_HASH, {"b": 1, "a": [1, 2], "c": "é"})
    b = link_hash(GENESIS_HASH, {"c": "é", "a": [1, 2], "b": 1})
    assert a == b
    assert a != link_hash(GENESIS_HASH, {"b": 2, "a": [1, 2], "c": "é"})
