"""Chroma (embedded or server) for chunks and the document manifest; add, replace, delete, check, repair.

Write order for one document, so that a crash at any point leaves something `reconcile` can mend:
manifest record removed -> old chunks deleted -> new chunks added -> manifest record written.
A chunk whose source has no manifest record is an orphan; a record whose chunks are not all there
is incomplete. Both are removed by `reconcile`, and the next ingest adds the document again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

from langchain_core.embeddings import Embeddings

from rag.config import Settings
from rag.schema import Chunk, DocRecord, Document, Hit

log = logging.getLogger(__name__)

PAGE = 2000


class IndexMismatchError(RuntimeError):
    """The index was built with another embedding model."""


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict


@dataclass(frozen=True)
class PreparedDocument:
    """A document ready to store: its chunks, their keyword tokens and vectors."""

    doc: Document
    chunks: list[Chunk]
    tokens: list[list[str]]
    vectors: list[list[float]]


def record_of(doc: Document, chunks: int) -> DocRecord:
    return DocRecord(
        source=doc.source,
        path=doc.path,
        title=doc.title,
        doc_type=doc.doc_type,
        year=doc.year,
        issuer=doc.issuer,
        content_hash=doc.content_hash,
        chunks=chunks,
        chars=len(doc.text),
    )


def split_chunk_id(chunk_id: str) -> tuple[str, str]:
    """(source, content-hash prefix) from a chunk id `source#hash8#index`."""
    parts = chunk_id.rsplit("#", 2)
    return (parts[0], parts[1]) if len(parts) == 3 else (chunk_id, "")


@dataclass(frozen=True)
class CheckReport:
    orphan_chunks: int
    incomplete_documents: tuple[str, ...]
    keyword_stale: bool

    @property
    def ok(self) -> bool:
        return not self.orphan_chunks and not self.incomplete_documents and not self.keyword_stale


def make_chroma_client(settings: Settings):
    """An embedded persistent client under the index directory, or an HTTP client for RAG_CHROMA_URL."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if not url.hostname:
            raise ValueError(f"RAG_CHROMA_URL 格式不正确：{settings.chroma_url}（应为 http://主机:端口）")
        return chromadb.HttpClient(
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    path = settings.index_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def chunk_metadata(doc: Document, chunk: Chunk, tokens: list[str]) -> dict:
    """Flat Chroma metadata for a chunk (no None values: Chroma rejects them)."""
    meta = {
        "source": doc.source,
        "title": doc.title,
        "doc_type": doc.doc_type,
        "doc_hash": doc.content_hash,
        "section": chunk.section,
        "top_section": chunk.top_section or "",
        "chunk_index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "tokens": " ".join(tokens),
    }
    if doc.year is not None:
        meta["year"] = doc.year
    if chunk.article:
        meta["article"] = chunk.article
    if chunk.chapter:
        meta["chapter"] = chunk.chapter
    return meta


def hit_from_metadata(chunk_id: str, text: str, meta: dict, score: float) -> Hit:
    return Hit(
        chunk_id=chunk_id,
        source=meta.get("source", ""),
        title=meta.get("title", ""),
        doc_type=meta.get("doc_type", "other"),
        text=text,
        section=meta.get("section", ""),
        article=meta.get("article"),
        year=meta.get("year"),
        score=score,
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        chunk_index=int(meta.get("chunk_index", 0)),
        top_section=meta.get("top_section") or None,
    )


class ChunkStore:
    """The chunk collection and the manifest collection of one index."""

    def __init__(self, settings: Settings, embeddings: Embeddings) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self._open()

    def _open(self) -> None:
        from langchain_chroma import Chroma

        settings, embeddings = self.settings, self.embeddings
        self.client = make_chroma_client(settings)
        model_id = getattr(embeddings, "model_id", type(embeddings).__name__)
        self.vectorstore = Chroma(
            client=self.client,
            collection_name=f"{settings.collection}_chunks",
            embedding_function=embeddings,
            collection_metadata={"embedding_model": model_id},
            collection_configuration={"hnsw": {"space": "cosine"}},
        )
        self.chunks = self.vectorstore._collection
        stored_model = (self.chunks.metadata or {}).get("embedding_model")
        if stored_model and stored_model != model_id:
            raise IndexMismatchError(
                f"索引由嵌入模型 {stored_model} 建立，当前配置为 {model_id}；"
                "请改回原模型，或换一个索引目录（--index）重新建立索引"
            )
        self.manifest = self.client.get_or_create_collection(
            f"{settings.collection}_docs", embedding_function=None
        )

    # ------------------------------------------------------------ manifest

    def documents(self) -> list[DocRecord]:
        got = self.manifest.get(include=["metadatas"])
        records = [json.loads(meta["record"]) for meta in got["metadatas"] or []]
        return sorted((DocRecord(**r) for r in records), key=lambda r: r.source)

    def document(self, source: str) -> DocRecord | None:
        got = self.manifest.get(ids=[source], include=["metadatas"])
        if not got["ids"]:
            return None
        return DocRecord(**json.loads(got["metadatas"][0]["record"]))

    def generation(self) -> str:
        """A fingerprint of the manifest: changes whenever a document is added, replaced or removed."""
        parts = sorted(f"{r.source}:{r.content_hash}:{r.chunks}" for r in self.documents())
        return hashlib.sha1("\n".join(parts).encode()).hexdigest()

    # ------------------------------------------------------------ writes

    def write_documents(self, prepared: list[PreparedDocument]) -> list[DocRecord]:
        """Replace several documents in one group commit (Chroma calls cost ~85 ms each, whatever their size).

        Order: manifest records removed -> old chunks deleted -> new chunks added -> records written.
        """
        if not prepared:
            return []
        sources = [p.doc.source for p in prepared]
        self.manifest.delete(ids=sources)
        self.chunks.delete(where={"source": {"$in": sources}})
        ids: list[str] = []
        vectors: list[list[float]] = []
        texts: list[str] = []
        metas: list[dict] = []
        for p in prepared:
            ids.extend(c.id for c in p.chunks)
            vectors.extend(p.vectors)
            texts.extend(c.text for c in p.chunks)
            metas.extend(chunk_metadata(p.doc, c, t) for c, t in zip(p.chunks, p.tokens))
        for i in range(0, len(ids), PAGE):
            self.chunks.add(ids=ids[i : i + PAGE], embeddings=vectors[i : i + PAGE], documents=texts[i : i + PAGE], metadatas=metas[i : i + PAGE])
        records = [record_of(p.doc, len(p.chunks)) for p in prepared]
        self.manifest.add(
            ids=sources,
            embeddings=[[1.0]] * len(records),
            metadatas=[{"record": json.dumps(r.to_dict(), ensure_ascii=False), "source": r.source} for r in records],
        )
        return records

    def delete_document(self, source: str) -> bool:
        existed = self.document(source) is not None
        self.manifest.delete(ids=[source])
        self.chunks.delete(where={"source": source})
        return existed

    # ------------------------------------------------------------ reads

    def iter_chunks(self, where: dict | None = None) -> Iterator[StoredChunk]:
        offset = 0
        while True:
            got = self.chunks.get(where=where, include=["documents", "metadatas"], limit=PAGE, offset=offset)
            if not got["ids"]:
                return
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                yield StoredChunk(cid, text or "", meta or {})
            offset += len(got["ids"])

    def chunks_of(self, source: str) -> list[StoredChunk]:
        return sorted(self.iter_chunks({"source": source}), key=lambda c: c.metadata.get("chunk_index", 0))

    def count_chunks(self) -> int:
        return self.chunks.count()

    def reopen(self) -> None:
        """Drop this process's cached view of an embedded store that another process has changed."""
        if not self.settings.chroma_url:
            from chromadb.api.client import SharedSystemClient

            SharedSystemClient.clear_system_cache()
        self._open()

    def dense_search(self, vector: list[float], k: int, where: dict | None = None) -> list[Hit]:
        """Nearest chunks; if another process rewrote an embedded store under us, reopen it and retry once."""
        for attempt in (1, 2):
            try:
                if self.chunks.count() == 0:
                    return []
                got = self.chunks.query(
                    query_embeddings=[vector], n_results=k, where=where, include=["documents", "metadatas", "distances"]
                )
                break
            except Exception as exc:  # chromadb raises InternalError/NotFoundError on a stale view
                log.warning("dense search failed (%s), reopening the store", exc)
                if attempt == 2:
                    return []  # the keyword side still answers
                self.reopen()
        return [
            hit_from_metadata(cid, text or "", meta or {}, 1.0 - float(dist))
            for cid, text, meta, dist in zip(
                got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0]
            )
        ]

    # ------------------------------------------------------------ consistency

    def all_ids(self) -> list[str]:
        ids: list[str] = []
        offset = 0
        while True:
            got = self.chunks.get(include=[], limit=PAGE * 5, offset=offset)
            if not got["ids"]:
                return ids
            ids.extend(got["ids"])
            offset += len(got["ids"])

    def find_problems(self) -> tuple[dict[str, list[str]], list[str]]:
        """Orphan chunk ids by source, and sources whose stored chunks do not match the manifest.

        Reads chunk ids only (they carry source and content hash), so it stays fast on large indexes.
        """
        records = {r.source: r for r in self.documents()}
        by_source: dict[str, list[str]] = {}
        hashes: dict[str, set[str]] = {}
        for cid in self.all_ids():
            source, digest = split_chunk_id(cid)
            by_source.setdefault(source, []).append(cid)
            hashes.setdefault(source, set()).add(digest)
        orphans = {s: ids for s, ids in by_source.items() if s not in records}
        incomplete = [
            s
            for s, r in records.items()
            if len(by_source.get(s, [])) != r.chunks or (r.chunks and hashes.get(s) != {r.content_hash[:8]})
        ]
        return orphans, sorted(incomplete)

    def repair(self) -> tuple[int, list[str]]:
        """Delete orphan chunks and incomplete documents (the next ingest adds those again)."""
        orphans, incomplete = self.find_problems()
        removed = 0
        for ids in orphans.values():
            for i in range(0, len(ids), PAGE):
                self.chunks.delete(ids=ids[i : i + PAGE])
            removed += len(ids)
        for source in incomplete:
            self.delete_document(source)
        return removed, incomplete
