"""Chroma (embedded or server): the chunks with their vectors, the document manifest, and index metadata.

Three collections per index:
- `<name>_chunks`: chunk texts, vectors and flat metadata;
- `<name>_docs`: one manifest record per document (JSON);
- `<name>_meta`: the generation (a counter and a write id that only move forward), the user's
  metadata overrides (`rag docs --set`) and the law short forms read from `aliases.toml` files.

Write order for one group of documents, so that a crash at any point leaves something `repair`
can mend: generation marked as writing -> manifest records removed -> old chunks deleted -> new
chunks added -> records written -> generation advanced. A chunk whose source has no manifest
record is an orphan; a record whose chunks are not all there is incomplete.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlparse

from rag.config import Settings
from rag.schema import DOC_TYPES, PARSER_VERSION, Chunk, DocRecord, Document, Hit

log = logging.getLogger(__name__)

PAGE = 2000
GENERATION_ID = "generation"
OVERRIDES_ID = "overrides"
ALIASES_ID = "aliases"
OVERRIDE_FIELDS = ("type", "year", "issuer", "title")


class IndexMismatchError(RuntimeError):
    """The index was built with another embedding model."""


class StoreUnavailableError(RuntimeError):
    """The Chroma server cannot be reached; the message is one Chinese line."""


class OverrideError(ValueError):
    """A `--set` value that cannot be used; the message is Chinese."""


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict
    vector: list[float] | None = None


@dataclass(frozen=True)
class PreparedDocument:
    """A document ready to store: its chunks, their keyword tokens and vectors."""

    doc: Document
    chunks: list[Chunk]
    tokens: list[list[str]]
    vectors: list[list[float]]
    detected: dict[str, Any] | None = None  # metadata as read from the file, before the user's overrides


def detected_fields(doc: Document) -> dict[str, Any]:
    return {"type": doc.doc_type, "year": doc.year, "issuer": doc.issuer, "title": doc.title}


def _record_json(record: DocRecord, detected: dict[str, Any]) -> dict[str, str]:
    return {"record": json.dumps({**record.to_dict(), "detected": detected}, ensure_ascii=False), "source": record.source}


@dataclass(frozen=True)
class CheckReport:
    orphan_chunks: int
    incomplete_documents: tuple[str, ...]
    keyword_stale: bool

    @property
    def ok(self) -> bool:
        return not self.orphan_chunks and not self.incomplete_documents and not self.keyword_stale


def record_of(doc: Document, chunks: int, overridden: tuple[str, ...] = ()) -> DocRecord:
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
        overridden=overridden,
        parser=PARSER_VERSION,
    )


def split_chunk_id(chunk_id: str) -> tuple[str, str]:
    """(source, content-hash prefix) from a chunk id `source#hash8#index`."""
    parts = chunk_id.rsplit("#", 2)
    return (parts[0], parts[1]) if len(parts) == 3 else (chunk_id, "")


def chunk_metadata(doc: Document, chunk: Chunk, tokens: list[str]) -> dict:
    """Flat Chroma metadata for a chunk (no None values: Chroma rejects them)."""
    meta: dict[str, Any] = {
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
    if doc.issuer:
        meta["issuer"] = doc.issuer
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
        issuer=meta.get("issuer") or None,
    )


def apply_overrides(doc: Document, fields: dict[str, Any]) -> Document:
    """The document with the user's corrections applied (type, year, issuer, title)."""
    changes: dict[str, Any] = {}
    if "type" in fields:
        changes["doc_type"] = fields["type"]
    for name in ("year", "issuer", "title"):
        if name in fields:
            changes[name] = fields[name]
    return replace(doc, **changes) if changes else doc


def parse_override(assignments: list[str]) -> dict[str, Any]:
    """`type=report year=2024 issuer=开封市审计局` -> fields; an empty value clears the override."""
    from rag.schema import DOC_TYPE_BY_LABEL

    fields: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in OVERRIDE_FIELDS:
            raise OverrideError(f"无法识别的设置：{item}（可设置 {'、'.join(f'{k}=…' for k in OVERRIDE_FIELDS)}）")
        if key == "type":
            value = DOC_TYPE_BY_LABEL.get(value, value)
            if value and value not in DOC_TYPES:
                raise OverrideError(f"type 只能是 {' | '.join(DOC_TYPES)}（或 报告/法规/通知/其他），实际为：{value}")
        if key == "year" and value:
            if not value.isdigit() or not 1900 <= int(value) <= 2100:
                raise OverrideError(f"year 应为四位年份，实际为：{value}")
            fields[key] = int(value)
            continue
        fields[key] = value or None
    return fields


def make_chroma_client(settings: Settings):
    """An embedded persistent client under the index directory, or an HTTP client for the server."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.server_mode:
        url = urlparse(settings.store.chroma_url or "")
        if not url.hostname:
            raise ValueError(f"RAG_CHROMA_URL 格式不正确：{settings.store.chroma_url}（应为 http://主机:端口）")
        with unreachable_as_error(settings):
            return chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
    path = settings.index_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def is_connection_error(exc: BaseException) -> bool:
    """Whether an exception (or its cause) means the server could not be reached."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 6:
        text = f"{type(current).__name__} {current}".lower()
        if isinstance(current, (ConnectionError, TimeoutError)) or any(
            word in text for word in ("connection refused", "connecterror", "connect error", "could not connect",
                                      "failed to connect", "remoteprotocolerror", "readtimeout", "connecttimeout",
                                      "name or service not known", "server disconnected", "errno 111")
        ):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


@contextmanager
def unreachable_as_error(settings: Settings):
    """Turn a connection failure to the Chroma server into one Chinese line."""
    try:
        yield
    except StoreUnavailableError:
        raise
    except Exception as exc:
        if settings.server_mode and is_connection_error(exc):
            raise StoreUnavailableError(
                f"无法连接 Chroma 服务器（{settings.store.chroma_url}），请确认服务已启动（chroma run …），稍后重试"
            ) from None
        raise


def reachable(method):
    """A ChunkStore method whose connection failures become StoreUnavailableError (one Chinese line)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with unreachable_as_error(self.settings):
            return method(self, *args, **kwargs)

    return wrapper


def generation_counter(generation: str | None) -> int:
    """The counter part of a generation `counter:write-id[:writing]` (-1 when there is none)."""
    try:
        return int((generation or "").split(":", 1)[0])
    except ValueError:
        return -1


WRITING = ":writing"


class ChunkStore:
    """The chunk, manifest and metadata collections of one index.

    Every method that talks to Chroma raises StoreUnavailableError when the server cannot be reached.
    `seen_generation` is the generation this process's client last saw or wrote: in embedded mode a
    client that another process has written behind fails on reads of vectors, so it is reopened."""

    def __init__(self, settings: Settings, model_id: str) -> None:
        self.settings = settings
        self.model_id = model_id
        with unreachable_as_error(settings):
            self._open()
            self.seen_generation = self.generation()

    def _open(self) -> None:
        settings = self.settings
        self.client = make_chroma_client(settings)
        # The collection as LangChain's Chroma integration creates it (the same call), without importing
        # LangChain (~0.6 s of every `rag ingest`): reads and writes use the collection directly (ids,
        # vectors and metadata in pages), since the vectors are computed by the ingest pipeline.
        self.chunks = self.client.get_or_create_collection(
            name=f"{settings.store.collection}_chunks",
            embedding_function=None,
            metadata={"embedding_model": self.model_id},
            configuration={"hnsw": {"space": "cosine"}},
        )
        stored_model = (self.chunks.metadata or {}).get("embedding_model")
        if stored_model and stored_model != self.model_id:
            raise IndexMismatchError(
                f"索引由嵌入模型 {stored_model} 建立，当前配置为 {self.model_id}；"
                "请改回原模型，或换一个索引目录（--index）重新建立索引"
            )
        self.manifest = self.client.get_or_create_collection(f"{settings.store.collection}_docs", embedding_function=None)
        self.meta = self.client.get_or_create_collection(f"{settings.store.collection}_meta", embedding_function=None)

    def reopen(self) -> None:
        """Drop this process's cached view of an embedded store that another process has changed."""
        if not self.settings.server_mode:
            from chromadb.api.client import SharedSystemClient

            SharedSystemClient.clear_system_cache()
        with unreachable_as_error(self.settings):
            self._open()
            self.seen_generation = self.generation()

    def reopen_if_stale(self) -> bool:
        """Embedded mode: reopen when another process has written since this client last looked."""
        if self.settings.server_mode or self.generation() == self.seen_generation:
            return False
        self.reopen()
        return True

    # ------------------------------------------------------------ index metadata

    def _meta_json(self, key: str) -> dict:
        got = self.meta.get(ids=[key], include=["metadatas"])
        if not got["ids"]:
            return {}
        try:
            return json.loads(got["metadatas"][0].get("json") or "{}")
        except ValueError:
            return {}

    def _set_meta_json(self, key: str, value: dict) -> None:
        self.meta.upsert(ids=[key], embeddings=[[1.0]], metadatas=[{"json": json.dumps(value, ensure_ascii=False)}])

    @reachable
    def generation(self) -> str:
        """`counter:write-id` of the last write; it changes on every write and never returns to an old value."""
        state = self._meta_json(GENERATION_ID)
        if not state:
            return "0:initial"
        return f"{state.get('counter', 0)}:{state.get('write_id', '')}{WRITING if state.get('writing') else ''}"

    def _advance(self, writing: bool) -> str:
        state = self._meta_json(GENERATION_ID)
        counter = int(state.get("counter", 0)) + 1
        write_id = uuid.uuid4().hex[:12]
        generation = f"{counter}:{write_id}{WRITING if writing else ''}"
        self.seen_generation = generation  # this client wrote it, so it is not behind
        self._set_meta_json(GENERATION_ID, {"counter": counter, "write_id": write_id, "writing": writing, "time": time.time()})
        return generation

    @contextmanager
    def writing(self):
        """Mark the index as being written (readers that overlap see the generation move) and advance it after.

        A write that fails half-way leaves the mark: the next `repair` (every ingest starts with one)
        mends the index before anything else."""
        with unreachable_as_error(self.settings):
            self._advance(writing=True)
            yield
            self._advance(writing=False)

    @reachable
    def overrides(self) -> dict[str, dict[str, Any]]:
        return self._meta_json(OVERRIDES_ID)

    @reachable
    def aliases(self) -> dict[str, str]:
        return {k: v for k, v in self._meta_json(ALIASES_ID).items() if isinstance(v, str)}

    @reachable
    def set_aliases(self, aliases: dict[str, str]) -> bool:
        """Store the law short forms; True when they changed."""
        if aliases == self.aliases():
            return False
        with self.writing():
            self._set_meta_json(ALIASES_ID, dict(sorted(aliases.items())))
        return True

    @reachable
    def set_override(self, source: str, fields: dict[str, Any]) -> DocRecord:
        """Store a user correction of a document's metadata and apply it to the stored chunks now."""
        got = self.manifest.get(ids=[source], include=["metadatas"])
        if not got["ids"]:
            raise OverrideError(f"未找到文件：{source}（用 rag docs 查看已收录的文件）")
        raw = json.loads(got["metadatas"][0]["record"])
        record = DocRecord.from_dict(raw)
        detected = raw.get("detected") or detected_fields(record)  # type: ignore[arg-type]
        with self.writing():
            all_overrides = self.overrides()
            current = dict(all_overrides.get(source, {}))
            for key, value in fields.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value
            if current:
                all_overrides[source] = current
            else:
                all_overrides.pop(source, None)
            self._set_meta_json(OVERRIDES_ID, all_overrides)
            updated = self._with_overrides(record, {**detected, **current}, tuple(sorted(current)))
            self.manifest.upsert(ids=[source], embeddings=[[1.0]], metadatas=[_record_json(updated, detected)])
            self._update_chunk_metadata(updated)
        return updated

    def _update_chunk_metadata(self, record: DocRecord) -> None:
        got = self.chunks.get(where={"source": record.source}, include=["metadatas"])
        metas = []
        for meta in got["metadatas"] or []:
            meta = dict(meta or {})
            meta.update({"title": record.title, "doc_type": record.doc_type})
            for key, value in (("year", record.year), ("issuer", record.issuer)):
                if value is None:
                    meta.pop(key, None)
                else:
                    meta[key] = value
            metas.append(meta)
        for i in range(0, len(metas), PAGE):
            self.chunks.update(ids=got["ids"][i : i + PAGE], metadatas=metas[i : i + PAGE])

    @staticmethod
    def _with_overrides(record: DocRecord, fields: dict[str, Any], overridden: tuple[str, ...]) -> DocRecord:
        changes: dict[str, Any] = {"doc_type": fields.get("type") or record.doc_type}
        for name in ("year", "issuer", "title"):
            if name in fields:
                changes[name] = fields[name] if fields[name] is not None or name != "title" else record.title
        return replace(record, **changes, overridden=overridden)

    # ------------------------------------------------------------ manifest

    @reachable
    def documents(self) -> list[DocRecord]:
        got = self.manifest.get(include=["metadatas"])
        records = [DocRecord.from_dict(json.loads(meta["record"])) for meta in got["metadatas"] or []]
        return sorted(records, key=lambda r: r.source)

    @reachable
    def document(self, source: str) -> DocRecord | None:
        got = self.manifest.get(ids=[source], include=["metadatas"])
        if not got["ids"]:
            return None
        return DocRecord.from_dict(json.loads(got["metadatas"][0]["record"]))

    # ------------------------------------------------------------ writes

    @reachable
    def write_documents(self, prepared: list[PreparedDocument]) -> list[DocRecord]:
        """Replace several documents in one group commit (Chroma calls cost ~85 ms each, whatever their size)."""
        if not prepared:
            return []
        sources = [p.doc.source for p in prepared]
        overrides = self.overrides()
        with self.writing():
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
                self.chunks.add(
                    ids=ids[i : i + PAGE], embeddings=vectors[i : i + PAGE], documents=texts[i : i + PAGE], metadatas=metas[i : i + PAGE]
                )
            records = [record_of(p.doc, len(p.chunks), tuple(sorted(overrides.get(p.doc.source, {})))) for p in prepared]
            self.manifest.add(
                ids=sources,
                embeddings=[[1.0]] * len(records),
                metadatas=[_record_json(r, p.detected or detected_fields(p.doc)) for r, p in zip(records, prepared)],
            )
        return records

    @reachable
    def delete_document(self, source: str) -> bool:
        existed = self.document(source) is not None
        with self.writing():
            self.manifest.delete(ids=[source])
            self.chunks.delete(where={"source": source})
        return existed

    # ------------------------------------------------------------ reads

    def iter_chunks(self, where: dict | None = None, vectors: bool = False) -> Iterator[StoredChunk]:
        include = ["documents", "metadatas"] + (["embeddings"] if vectors else [])
        offset = 0
        while True:
            with unreachable_as_error(self.settings):
                got = self.chunks.get(where=where, include=include, limit=PAGE, offset=offset)
            if not got["ids"]:
                return
            embeddings = got.get("embeddings") if vectors else None
            for i, (cid, text, meta) in enumerate(zip(got["ids"], got["documents"], got["metadatas"])):
                vector = [float(x) for x in embeddings[i]] if embeddings is not None else None
                yield StoredChunk(cid, text or "", meta or {}, vector)
            offset += len(got["ids"])

    @reachable
    def chunks_of(self, source: str) -> list[StoredChunk]:
        return sorted(self.iter_chunks({"source": source}), key=lambda c: c.metadata.get("chunk_index", 0))

    @reachable
    def count_chunks(self) -> int:
        return self.chunks.count()

    @reachable
    def dense_search(self, vector: list[float], k: int, where: dict | None = None) -> list[Hit]:
        """Nearest chunks by the store's own vector index (server mode)."""
        if self.chunks.count() == 0:
            return []
        got = self.chunks.query(query_embeddings=[vector], n_results=k, where=where, include=["documents", "metadatas", "distances"])
        return [
            hit_from_metadata(cid, text or "", meta or {}, 1.0 - float(dist))
            for cid, text, meta, dist in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])
        ]

    # ------------------------------------------------------------ consistency

    @reachable
    def all_ids(self) -> list[str]:
        ids: list[str] = []
        offset = 0
        while True:
            got = self.chunks.get(include=[], limit=PAGE * 5, offset=offset)
            if not got["ids"]:
                return ids
            ids.extend(got["ids"])
            offset += len(got["ids"])

    @reachable
    def find_problems(self) -> tuple[dict[str, list[str]], list[str]]:
        """Orphan chunk ids by source, and sources whose stored chunks do not match the manifest.

        Reads chunk ids only (they carry source and content hash), so it stays fast on large indexes."""
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

    @reachable
    def repair(self) -> tuple[int, list[str]]:
        """Delete orphan chunks and incomplete documents (the next ingest adds those again)."""
        orphans, incomplete = self.find_problems()
        if not orphans and not incomplete and not self.generation().endswith(WRITING):
            return 0, []
        removed = 0
        with self.writing():
            for ids in orphans.values():
                for i in range(0, len(ids), PAGE):
                    self.chunks.delete(ids=ids[i : i + PAGE])
                removed += len(ids)
            for source in incomplete:
                self.manifest.delete(ids=[source])
                self.chunks.delete(where={"source": source})
        return removed, incomplete
