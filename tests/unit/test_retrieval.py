"""BM25 over knowledge/: a labelled query set and its recall@3."""

from __future__ import annotations

import json
from pathlib import Path

from services.planner.retrieval import Bm25Retriever, load_passages

QUERIES = [json.loads(line) for line in (Path(__file__).parents[1] / "data" / "retrieval_queries.jsonl").open()]


def test_every_section_of_knowledge_is_a_citable_passage() -> None:
    passages = load_passages()
    assert len(passages) >= 15
    for p in passages:
        assert p.url.startswith("knowledge/") and "#" in p.url and len(p.text) > 80, p


def test_recall_at_3_on_the_labelled_queries() -> None:
    retriever = Bm25Retriever(load_passages())
    hits = 0
    misses = []
    for q in QUERIES:
        urls = [e.url for e in retriever.search_sync(q["query"], 3)]
        if f"knowledge/{q['relevant']}" in urls:
            hits += 1
        else:
            misses.append((q["query"], urls))
    recall = hits / len(QUERIES)
    print(f"\nBM25 recall@3 = {recall:.2f} over {len(QUERIES)} labelled queries; misses: {misses}")
    assert len(QUERIES) >= 20
    assert recall >= 0.85, misses


def test_results_carry_title_snippet_url_and_score() -> None:
    (top, *_) = Bm25Retriever(load_passages()).search_sync("prod availability instances", 3)
    assert top.title == "Deployment policy: Availability and instance count"
    assert "at least 2 instances" in top.snippet and top.score > 0
