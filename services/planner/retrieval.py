"""Retrieval over `knowledge/`: the policy, sizing and pricing passages a plan cites.

Each `## ` section of a markdown document is one passage. The offline default is BM25 (the
`bm25s` library); with RETRIEVER_EMBED_ENDPOINT and RETRIEVER_RERANK_ENDPOINT set it is NVIDIA
NeMo Retriever NIMs over HTTP: dense embeddings pick candidates, the reranker orders them.
Retrieved text is evidence for people to read; nothing in it is ever obeyed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import bm25s
import httpx

from shared.models import Evidence
from shared.settings import Settings

KNOWLEDGE = Path(__file__).resolve().parents[2] / "knowledge"


@dataclass(frozen=True)
class Passage:
    title: str
    text: str
    url: str


def load_passages(folder: Path = KNOWLEDGE) -> list[Passage]:
    passages = []
    for path in sorted(folder.glob("*.md")):
        doc_title, section, lines = path.stem, "", list[str]()
        for line in [*path.read_text().splitlines(), "## "]:
            if line.startswith("# "):
                doc_title = line[2:].strip()
            elif line.startswith("## "):
                if section and lines:
                    text = " ".join(" ".join(lines).split())
                    anchor = re.sub(r"[^a-z0-9]+", "-", section.lower()).strip("-")
                    passages.append(Passage(f"{doc_title}: {section}", text, f"knowledge/{path.name}#{anchor}"))
                section, lines = line[3:].strip(), []
            elif section:
                lines.append(line)
    return passages


class Retriever(Protocol):
    name: str

    async def search(self, query: str, k: int) -> list[Evidence]: ...


def snippet(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


class Bm25Retriever:
    name = "bm25"

    def __init__(self, passages: list[Passage]) -> None:
        self.passages = passages
        self.index = bm25s.BM25()
        self.index.index(self._tokens([f"{p.title} {p.text}" for p in passages]), show_progress=False)

    @staticmethod
    def _tokens(texts: list[str]) -> bm25s.tokenization.Tokenized:
        return bm25s.tokenize(texts, stopwords="en", show_progress=False)

    def search_sync(self, query: str, k: int) -> list[Evidence]:
        k = min(k, len(self.passages))
        docs, scores = self.index.retrieve(self._tokens([query]), k=k, show_progress=False, n_threads=1)
        return [
            Evidence(
                title=self.passages[i].title,
                snippet=snippet(self.passages[i].text),
                url=self.passages[i].url,
                score=round(float(s), 4),
            )
            for i, s in zip(docs[0], scores[0], strict=True)
            if s > 0
        ]

    async def search(self, query: str, k: int) -> list[Evidence]:
        return self.search_sync(query, k)


class NimRetriever:
    """NeMo Retriever NIMs: `POST /v1/embeddings` then `POST /v1/ranking` (their wire formats)."""

    name = "nim"

    def __init__(
        self,
        passages: list[Passage],
        embed_url: str,
        rerank_url: str,
        embed_model: str,
        rerank_model: str,
        timeout: float,
        candidates: int = 10,
    ) -> None:
        self.passages, self.candidates = passages, candidates
        self.embed_url, self.rerank_url = embed_url.rstrip("/"), rerank_url.rstrip("/")
        self.embed_model, self.rerank_model = embed_model, rerank_model
        self.client = httpx.AsyncClient(timeout=timeout)
        self._vectors: list[list[float]] | None = None

    async def _embed(self, texts: list[str], input_type: str) -> list[list[float]]:
        body = {"input": texts, "model": self.embed_model, "input_type": input_type, "truncate": "END"}
        response = await self.client.post(f"{self.embed_url}/v1/embeddings", json=body)
        response.raise_for_status()
        data = sorted(response.json()["data"], key=lambda d: d["index"])
        return [d["embedding"] for d in data]

    async def search(self, query: str, k: int) -> list[Evidence]:
        if self._vectors is None:
            self._vectors = await self._embed([f"{p.title}. {p.text}" for p in self.passages], "passage")
        (q,) = await self._embed([query], "query")
        ranked = sorted(range(len(self.passages)), key=lambda i: -_cosine(q, self._vectors[i]))  # type: ignore[index]
        shortlist = ranked[: self.candidates]
        body = {
            "model": self.rerank_model,
            "query": {"text": query},
            "passages": [{"text": f"{self.passages[i].title}. {self.passages[i].text}"} for i in shortlist],
            "truncate": "END",
        }
        response = await self.client.post(f"{self.rerank_url}/v1/ranking", json=body)
        response.raise_for_status()
        rankings = sorted(response.json()["rankings"], key=lambda r: -r["logit"])[:k]
        return [
            Evidence(
                title=self.passages[shortlist[r["index"]]].title,
                snippet=snippet(self.passages[shortlist[r["index"]]].text),
                url=self.passages[shortlist[r["index"]]].url,
                score=round(float(r["logit"]), 4),
            )
            for r in rankings
        ]

    async def close(self) -> None:
        await self.client.aclose()


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def build_retriever(settings: Settings, passages: list[Passage] | None = None) -> Retriever:
    passages = passages if passages is not None else load_passages()
    if settings.retriever_embed_endpoint and settings.retriever_rerank_endpoint:
        return NimRetriever(
            passages,
            settings.retriever_embed_endpoint,
            settings.retriever_rerank_endpoint,
            settings.retriever_embed_model,
            settings.retriever_rerank_model,
            settings.retriever_timeout_seconds,
        )
    return Bm25Retriever(passages)
