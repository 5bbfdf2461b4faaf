"""The search snapshot of one index generation: words (jieba + bm25s), characters (bigrams + bm25s), vectors.

A snapshot is built whole from the store's chunks and swapped in whole, so no request ever sees a
half-built one. In embedded mode it is saved beside the store (vectors memory-mapped), so a new
process answers without opening Chroma; in server mode each instance builds it from the server.
"""

from __future__ import annotations

import json
import math
import operator
import shutil
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.schema import DocRecord, Hit
from rag.store import StoredChunk, hit_from_metadata
from rag.text import char_ngrams, chinese_number

EMPTY_TOKEN = "\u2205"


def bm25_idf(df: int, n: int) -> float:
    """BM25 inverse document frequency (the Lucene variant bm25s scores with by default; bm25s has no public IDF)."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def chunk_chars(meta: dict, text: str) -> list[str]:
    """Character bigrams of a chunk as it is embedded (title, section path, text)."""
    return char_ngrams(f"{meta.get('title', '')}\n{meta.get('section', '')}\n{text}")


def _bm25(corpus_tokens: list[list[str]]):
    import bm25s

    retriever = bm25s.BM25(k1=1.2, b=0.75)
    retriever.index([tokens or [EMPTY_TOKEN] for tokens in corpus_tokens], show_progress=False)
    return retriever


@dataclass(frozen=True)
class Lookups:
    """Everything derived from the rows, built together and never changed afterwards."""

    articles: dict[tuple[str, int], list[int]]
    rows_by_source: dict[str, list[int]]
    word_df: dict[str, int]
    char_df: dict[str, int]
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    id_set: frozenset[str] = frozenset()


def build_lookups(ids: list[str], metadatas: list[dict], word_tokens: list[list[str]], char_tokens: list[list[str]]) -> Lookups:
    articles: dict[tuple[str, int], list[int]] = {}
    by_source: dict[str, list[int]] = {}
    for i, meta in enumerate(metadatas):
        by_source.setdefault(meta.get("source", ""), []).append(i)
        label = meta.get("article")
        if label:
            number = chinese_number(label[1:-1])
            if number is not None:
                articles.setdefault((meta.get("source", ""), number), []).append(i)
    for rows in list(by_source.values()) + list(articles.values()):
        rows.sort(key=lambda i: metadatas[i].get("chunk_index", 0))
    word_df: Counter[str] = Counter()
    for tokens in word_tokens:
        word_df.update(set(tokens))
    char_df: Counter[str] = Counter()
    for tokens in char_tokens:
        char_df.update(set(tokens))
    columns = {
        key: np.array([m.get(key) for m in metadatas], dtype=object) for key in ("source", "doc_type", "year", "issuer")
    }
    return Lookups(articles, by_source, dict(word_df), dict(char_df), columns, frozenset(ids))


@dataclass(frozen=True)
class KeywordIndex:
    """Rows (ids, texts, metadata), two bm25s indexes and the unit vectors of one generation."""

    generation: str
    ids: list[str]
    texts: list[str]
    metadatas: list[dict]
    words: object | None
    chars: object | None
    vectors: np.ndarray | None
    lookups: Lookups
    records: tuple[DocRecord, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        chunks: Sequence[StoredChunk],
        generation: str,
        records: Sequence[DocRecord] = (),
        aliases: dict[str, str] | None = None,
    ) -> KeywordIndex:
        chunks = sorted(chunks, key=lambda c: c.id)
        ids = [c.id for c in chunks]
        texts = [c.text for c in chunks]
        metas = [c.metadata for c in chunks]
        word_tokens = [(c.metadata.get("tokens") or "").split() for c in chunks]
        char_tokens = [chunk_chars(c.metadata, c.text) for c in chunks]
        vectors = None
        if chunks and all(c.vector is not None for c in chunks):
            vectors = _normalized(np.asarray([c.vector for c in chunks], dtype=np.float32))
        words = _bm25(word_tokens) if chunks else None
        chars = _bm25(char_tokens) if chunks else None
        lookups = build_lookups(ids, metas, word_tokens, char_tokens)
        records = tuple(sorted(records, key=lambda r: r.source))
        return cls(generation, ids, texts, metas, words, chars, vectors, lookups, records, dict(aliases or {}))

    def rows(self) -> list[StoredChunk]:
        vectors = self.vectors
        return [
            StoredChunk(cid, text, meta, None if vectors is None else vectors[i].tolist())
            for i, (cid, text, meta) in enumerate(zip(self.ids, self.texts, self.metadatas))
        ]

    def updated(
        self,
        removed_sources: set[str],
        added: list[StoredChunk],
        generation: str,
        records: Sequence[DocRecord],
        aliases: dict[str, str],
    ) -> KeywordIndex:
        """A new snapshot with some documents' chunks removed and others added (no full read of the store)."""
        kept = [c for c in self.rows() if c.metadata.get("source") not in removed_sources]
        if self.vectors is None or any(c.vector is None for c in added):
            added = [StoredChunk(c.id, c.text, c.metadata, None) for c in added]
            kept = [StoredChunk(c.id, c.text, c.metadata, None) for c in kept]
        return KeywordIndex.build(kept + added, generation, records, aliases)

    def with_metadata(self, record: DocRecord, generation: str, records: Sequence[DocRecord]) -> KeywordIndex:
        """The same rows with one document's metadata changed (a user override)."""
        changes = {"title": record.title, "doc_type": record.doc_type, "year": record.year, "issuer": record.issuer}
        rows = []
        for c in self.rows():
            if c.metadata.get("source") == record.source:
                meta = {k: v for k, v in {**c.metadata, **changes}.items() if v is not None}
                if record.year is None:
                    meta.pop("year", None)
                if not record.issuer:
                    meta.pop("issuer", None)
                rows.append(StoredChunk(c.id, c.text, meta, c.vector))
            else:
                rows.append(c)
        return KeywordIndex.build(rows, generation, records, self.aliases)

    # ------------------------------------------------------------ lookups

    def article(self, source: str, number: int) -> list[Hit]:
        """The chunks of one article of one law, in order."""
        return [self.hit(i, 1.0) for i in self.lookups.articles.get((source, number), [])]

    def document_frequency(self, token: str) -> int:
        return self.lookups.word_df.get(token, 0)

    def idf(self, token: str) -> float:
        return bm25_idf(self.document_frequency(token), max(1, len(self.ids)))

    def char_idf(self, gram: str) -> float:
        return bm25_idf(self.lookups.char_df.get(gram, 0), max(1, len(self.ids)))

    def has(self, chunk_id: str) -> bool:
        return chunk_id in self.lookups.id_set

    def rows_of(self, source: str) -> list[int]:
        """Row numbers of one document's chunks, in document order."""
        return list(self.lookups.rows_by_source.get(source, []))

    def hit(self, row: int, score: float = 0.0) -> Hit:
        return hit_from_metadata(self.ids[row], self.texts[row], self.metadatas[row], score)

    # ------------------------------------------------------------ filters

    def _column(self, key: str) -> np.ndarray:
        column = self.lookups.columns.get(key)
        if column is None:
            column = np.array([m.get(key) for m in self.metadatas], dtype=object)
        return column

    def _vector_mask(self, where: dict) -> np.ndarray | None:
        """The filter as a numpy mask for the shapes retrieval uses; None for anything else."""
        if "$and" in where and len(where) == 1:
            parts = [self._vector_mask(c) for c in where["$and"]]
            if any(p is None for p in parts):
                return None
            return np.logical_and.reduce(parts)
        if "$or" in where and len(where) == 1:
            parts = [self._vector_mask(c) for c in where["$or"]]
            if any(p is None for p in parts):
                return None
            return np.logical_or.reduce(parts)
        if len(where) != 1:
            return None
        key, cond = next(iter(where.items()))
        if key.startswith("$"):
            return None
        column = self._column(key)
        if not isinstance(cond, dict):
            return column == cond
        if set(cond) == {"$eq"}:
            return column == cond["$eq"]
        if set(cond) == {"$in"}:
            return np.isin(column, list(cond["$in"]))
        if set(cond) == {"$nin"}:
            return ~np.isin(column, list(cond["$nin"]))
        return None

    def mask(self, where: dict | None) -> np.ndarray | None:
        """A 0/1 weight per chunk for metadata filters (same dict format as Chroma's where)."""
        if not where:
            return None
        fast = self._vector_mask(where)
        if fast is not None:
            return np.asarray(fast, dtype=np.float32)
        return np.array([1.0 if matches(m, where) else 0.0 for m in self.metadatas], dtype=np.float32)

    # ------------------------------------------------------------ search

    def _search(self, retriever, df: dict[str, int], tokens: list[str], k: int, where: dict | None) -> list[Hit]:
        if retriever is None or not tokens:
            return []
        known = [t for t in tokens if t in df]
        if not known:
            return []
        weight_mask = self.mask(where)
        if weight_mask is not None and not weight_mask.any():
            return []
        k = min(k, len(self.ids))
        docs, scores = retriever.retrieve([known], k=k, show_progress=False, weight_mask=weight_mask, n_threads=0)
        return [self.hit(int(i), float(s)) for i, s in zip(docs[0], scores[0]) if s > 0]

    def search(self, query_tokens: list[str], k: int, where: dict | None = None) -> list[Hit]:
        """Word-level BM25 (jieba tokens)."""
        return self._search(self.words, self.lookups.word_df, query_tokens, k, where)

    def search_chars(self, grams: list[str], k: int, where: dict | None = None) -> list[Hit]:
        """Character-bigram BM25: a rare exact phrase outranks a frequent word."""
        return self._search(self.chars, self.lookups.char_df, grams, k, where)

    def search_vectors(self, vector: Sequence[float], k: int, where: dict | None = None) -> list[Hit]:
        """Cosine nearest chunks over the snapshot's vectors (embedded mode)."""
        if self.vectors is None or not len(self.ids):
            return []
        query = _normalized(np.asarray(vector, dtype=np.float32)[None, :])[0]
        scores = self.vectors @ query
        weight_mask = self.mask(where)
        if weight_mask is not None:
            scores = np.where(weight_mask > 0, scores, -np.inf)
        k = min(k, len(self.ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [self.hit(int(i), float(scores[i])) for i in top if np.isfinite(scores[i])]

    # ------------------------------------------------------------ persistence

    def save(self, directory: Path) -> None:
        """Write to a temporary folder, then swap it in, so a crash never leaves a half-written snapshot."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        if self.words is not None:
            self.words.save(str(tmp / "bm25-words"), show_progress=False)
        if self.chars is not None:
            self.chars.save(str(tmp / "bm25-chars"), show_progress=False)
        if self.vectors is not None:
            np.save(tmp / "vectors.npy", np.ascontiguousarray(self.vectors, dtype=np.float32))
        with open(tmp / "rows.json", "w", encoding="utf-8") as f:
            json.dump({"ids": self.ids, "texts": self.texts, "metadatas": self.metadatas}, f, ensure_ascii=False)
        with open(tmp / "records.json", "w", encoding="utf-8") as f:
            json.dump({"records": [r.to_dict() for r in self.records], "aliases": self.aliases}, f, ensure_ascii=False)
        (tmp / "GENERATION").write_text(self.generation, encoding="utf-8")
        old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def saved_generation(directory: Path) -> str | None:
        try:
            return (directory / "GENERATION").read_text(encoding="utf-8")
        except OSError:
            return None

    @classmethod
    def load(cls, directory: Path) -> KeywordIndex | None:
        import bm25s

        try:
            generation = (directory / "GENERATION").read_text(encoding="utf-8")
            with open(directory / "rows.json", encoding="utf-8") as f:
                rows = json.load(f)
            with open(directory / "records.json", encoding="utf-8") as f:
                extra = json.load(f)
            words = chars = None
            if (directory / "bm25-words").exists():
                words = bm25s.BM25.load(str(directory / "bm25-words"), show_progress=False)
                chars = bm25s.BM25.load(str(directory / "bm25-chars"), show_progress=False)
            vectors = np.load(directory / "vectors.npy", mmap_mode="r") if (directory / "vectors.npy").exists() else None
        except (OSError, ValueError, KeyError):
            return None
        metas = rows["metadatas"]
        word_tokens = [(m.get("tokens") or "").split() for m in metas]
        char_tokens = [chunk_chars(m, t) for m, t in zip(metas, rows["texts"])]
        lookups = build_lookups(rows["ids"], metas, word_tokens, char_tokens)
        records = tuple(DocRecord.from_dict(r) for r in extra.get("records", []))
        return cls(generation, rows["ids"], rows["texts"], metas, words, chars, vectors, lookups, records, dict(extra.get("aliases") or {}))


def _normalized(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32)


def _ordered(op):
    return lambda value, arg: value is not None and op(value, arg)


WHERE_OPS = {
    "$eq": operator.eq,
    "$ne": operator.ne,
    "$in": lambda value, arg: value in arg,
    "$nin": lambda value, arg: value not in arg,
    "$gte": _ordered(operator.ge),
    "$lte": _ordered(operator.le),
    "$gt": _ordered(operator.gt),
    "$lt": _ordered(operator.lt),
}


def matches(meta: dict, where: dict) -> bool:
    """Evaluate a Chroma-style where filter ($and/$or, $eq/$ne/$in/$nin/$gte/$lte) on one metadata dict."""
    for key, cond in where.items():
        if key == "$and":
            if not all(matches(meta, c) for c in cond):
                return False
        elif key == "$or":
            if not any(matches(meta, c) for c in cond):
                return False
        elif isinstance(cond, dict):
            if not all(WHERE_OPS[op](meta.get(key), arg) for op, arg in cond.items()):
                return False
        elif meta.get(key) != cond:
            return False
    return True
