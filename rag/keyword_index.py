"""The search snapshot of one index generation: words (jieba + BM25), characters (bigrams + BM25), vectors.

A snapshot is built whole from the store's chunks and swapped in whole, so no request ever sees a
half-built one. In embedded mode it is saved beside the store (BM25 arrays and vectors memory-mapped, nothing
recomputed on load), so a new process answers without opening Chroma; in server mode each instance
builds it from the server.
"""

from __future__ import annotations

import json
import math
import operator
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.params import bm25_constants
from rag.schema import DocRecord, Hit
from rag.store import StoredChunk, hit_from_metadata
from rag.text import char_ngrams, chinese_number

EMPTY_TOKEN = "\u2205"
MASK_CACHE = 256


def bm25_idf(df: int, n: int) -> float:
    """BM25 inverse document frequency (the Lucene variant bm25s scores with by default; bm25s has no public IDF)."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def chunk_chars(meta: dict, text: str) -> list[str]:
    """Character bigrams of a chunk as it is embedded (title, section path, text)."""
    return char_ngrams(f"{meta.get('title', '')}\n{meta.get('section', '')}\n{text}")


BM25_FILES = ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy")
TERM_FILES = ("doc_terms.npy", "doc_ptr.npy")


@dataclass(frozen=True)
class Bm25:
    """A BM25 index in bm25s's layout and scoring (Lucene variant; each term's document scores, CSC).

    Besides the scores it keeps each document's term ids (`doc_terms`, sliced by `doc_ptr`), so a
    snapshot with a few documents changed is rebuilt from ids, in numpy, without tokenizing or
    re-reading the others (`rebuilt`). Scores equal bm25s's (`tests/test_fast_start.py`), and `top`
    does what `bm25s.BM25.retrieve` does (same sums, same top-k selection). A saved index is read
    back memory-mapped in bm25s's file layout; neither bm25s nor scipy is imported to answer."""

    data: np.ndarray  # float32 scores, grouped by term
    indices: np.ndarray  # document of each score
    indptr: np.ndarray  # term id -> its slice of data/indices
    vocab: dict[str, int]
    num_docs: int
    k1: float = 1.2
    b: float = 0.75
    doc_terms: np.ndarray | None = None  # term ids of every document, in order
    doc_ptr: np.ndarray | None = None  # document -> its slice of doc_terms

    @classmethod
    def build(cls, corpus_tokens: Sequence[Sequence[str]], k1: float | None = None, b: float | None = None) -> Bm25:
        if k1 is None or b is None:
            k1, b = bm25_constants()
        vocab: dict[str, int] = {}
        doc_terms, doc_ptr = _term_ids(corpus_tokens, vocab)
        return cls.from_term_ids(doc_terms, doc_ptr, vocab, k1, b)

    @classmethod
    def from_term_ids(cls, doc_terms: np.ndarray, doc_ptr: np.ndarray, vocab: dict[str, int], k1: float, b: float) -> Bm25:
        """Scores as bm25s computes them (method and idf "lucene", float32)."""
        n = len(doc_ptr) - 1
        lengths = np.diff(doc_ptr)
        docs = np.repeat(np.arange(n, dtype=np.int64), lengths)
        keys, tf = np.unique(doc_terms.astype(np.int64) * max(n, 1) + docs, return_counts=True)  # sorted by term, then document
        terms, owner = keys // max(n, 1), keys % max(n, 1)
        df = np.bincount(terms, minlength=len(vocab))
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        doc_len = lengths.astype(np.float32)
        avg = np.float32(doc_len.mean()) if n else np.float32(1.0)
        tf = tf.astype(np.float32)
        tfc = tf / (np.float32(k1) * ((np.float32(1 - b)) + np.float32(b) * doc_len[owner] / avg) + tf)
        data = (idf[terms] * tfc).astype(np.float32)
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        return cls(data, owner.astype(np.int32), indptr, vocab, n, float(k1), float(b), doc_terms.astype(np.int32), doc_ptr.astype(np.int64))

    def rebuilt(self, rows: Sequence[int], new_tokens: Sequence[Sequence[str]]) -> Bm25:
        """A new index of documents given in order: `rows[i] >= 0` is this index's document rows[i]
        (its term ids reused), `rows[i] = -1 - j` the j-th list of `new_tokens`."""
        if self.doc_terms is None or self.doc_ptr is None:
            raise ValueError("this index keeps no term ids (saved by an older version): build it again")
        vocab = dict(self.vocab)
        new_terms, new_ptr = _term_ids(new_tokens, vocab)
        pieces: list[np.ndarray] = []
        for r in rows:
            if r >= 0:
                pieces.append(self.doc_terms[self.doc_ptr[r] : self.doc_ptr[r + 1]])
            else:
                j = -1 - r
                pieces.append(new_terms[new_ptr[j] : new_ptr[j + 1]])
        lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
        doc_ptr = np.zeros(len(pieces) + 1, dtype=np.int64)
        np.cumsum(lengths, out=doc_ptr[1:])
        doc_terms = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
        return Bm25.from_term_ids(doc_terms, doc_ptr, vocab, self.k1, self.b)

    def term_id(self, token: str) -> int | None:
        """The column of a term that occurs in at least one document (never the empty-document marker)."""
        tid = self.vocab.get(token)
        if tid is None or tid >= len(self.indptr) - 1 or token == EMPTY_TOKEN or self.indptr[tid + 1] == self.indptr[tid]:
            return None
        return tid

    def document_frequency(self, token: str) -> int:
        tid = self.term_id(token)
        return 0 if tid is None else int(self.indptr[tid + 1] - self.indptr[tid])

    def top(
        self, tokens: list[str], k: int, weight_mask: np.ndarray | None = None, token_weights: dict[str, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(documents, scores) of the k best documents, best first (bm25s's numpy backend, step by step);
        a token in `token_weights` adds its scores times its weight."""
        known = [t for t in tokens if t in self.vocab]
        ids = np.asarray([self.vocab[t] for t in known], dtype=np.int32)
        weights = token_weights or {}
        postings: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for token, start, end in zip(known, self.indptr[ids], self.indptr[ids + 1]):
            weight = weights.get(token, 1.0)
            if weight > 0.0:
                postings.append(self.indices[start:end])
                values.append(self.data[start:end] if weight == 1.0 else self.data[start:end] * np.float32(weight))
        if postings:  # one pass over all postings (np.add.at per token is several times slower)
            scores = np.bincount(np.concatenate(postings), weights=np.concatenate(values), minlength=self.num_docs).astype(np.float32)
        else:
            scores = np.zeros(self.num_docs, dtype=np.float32)
        if weight_mask is not None:
            scores *= weight_mask
        part = np.argpartition(scores, -k)[-k:]
        part_scores = np.take(scores, part)
        order = np.flip(np.argsort(part_scores))
        return part[order], part_scores[order]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, array in zip(BM25_FILES, (self.data, self.indices, self.indptr)):
            np.save(directory / name, np.ascontiguousarray(array))
        if self.doc_terms is not None and self.doc_ptr is not None:
            for name, array in zip(TERM_FILES, (self.doc_terms, self.doc_ptr)):
                np.save(directory / name, np.ascontiguousarray(array))
        with open(directory / "vocab.index.json", "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, ensure_ascii=False)
        params = {"k1": self.k1, "b": self.b, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
                  "int_dtype": "int32", "num_docs": self.num_docs, "backend": "numpy"}
        (directory / "params.index.json").write_text(json.dumps(params, indent=4), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> Bm25:
        data, indices, indptr = (_mapped(directory / name) for name in BM25_FILES)
        doc_terms = doc_ptr = None
        if all((directory / name).exists() for name in TERM_FILES):
            doc_terms, doc_ptr = (_mapped(directory / name) for name in TERM_FILES)
        with open(directory / "vocab.index.json", encoding="utf-8") as f:
            vocab = json.load(f)
        params = json.loads((directory / "params.index.json").read_text(encoding="utf-8"))
        return cls(data, indices, indptr, vocab, int(params["num_docs"]), float(params.get("k1", 1.2)), float(params.get("b", 0.75)), doc_terms, doc_ptr)


def _term_ids(corpus_tokens: Sequence[Sequence[str]], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Every document's term ids (new terms added to `vocab`); an empty document is one empty-marker token."""
    ids: list[int] = []
    ptr = [0]
    add = vocab.setdefault
    for tokens in corpus_tokens:
        ids.extend([add(t, len(vocab)) for t in (tokens or (EMPTY_TOKEN,))])
        ptr.append(len(ids))
    return np.asarray(ids, dtype=np.int32), np.asarray(ptr, dtype=np.int64)


@dataclass(frozen=True)
class Lookups:
    """Everything derived from the rows, built together and never changed afterwards."""

    articles: dict[tuple[str, int], list[int]]
    rows_by_source: dict[str, list[int]]
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    id_set: frozenset[str] = frozenset()


def build_lookups(ids: list[str], metadatas: list[dict]) -> Lookups:
    """Article and document rows and the filter columns (document frequencies live in the BM25 indexes)."""
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
    columns = {
        key: np.array([m.get(key) for m in metadatas], dtype=object) for key in ("source", "doc_type", "year", "issuer")
    }
    return Lookups(articles, by_source, columns, frozenset(ids))


@dataclass(frozen=True)
class KeywordIndex:
    """Rows (ids, texts, metadata), two BM25 indexes (words, character bigrams) and the unit vectors of one generation."""

    generation: str
    ids: list[str]
    texts: list[str]
    metadatas: list[dict]
    words: Bm25 | None
    chars: Bm25 | None
    vectors: np.ndarray | None
    lookups: Lookups
    records: tuple[DocRecord, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    _masks: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)  # filter masks by filter
    _hits: dict[int, Hit] = field(default_factory=dict, init=False, compare=False, repr=False)  # each row's hit, built once

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
        words = Bm25.build(word_tokens) if chunks else None
        chars = Bm25.build(char_tokens) if chunks else None
        lookups = build_lookups(ids, metas)
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
        """A new snapshot with some documents' chunks removed and others added: the other rows keep
        their term ids and vectors, nothing of them is tokenized or read again."""
        words, chars = self.words, self.chars
        if words is None or chars is None or words.doc_terms is None or chars.doc_terms is None:
            kept_chunks = [c for c in self.rows() if c.metadata.get("source") not in removed_sources]
            return KeywordIndex.build(kept_chunks + added, generation, records, aliases)
        added_ids = {c.id for c in added}
        entries = [(cid, i) for i, (cid, m) in enumerate(zip(self.ids, self.metadatas)) if m.get("source") not in removed_sources and cid not in added_ids]
        entries += [(c.id, -1 - j) for j, c in enumerate(added)]
        if not entries:
            return KeywordIndex.build([], generation, records, aliases)
        entries.sort(key=operator.itemgetter(0))
        order = [r for _, r in entries]
        ids = [cid for cid, _ in entries]
        texts = [self.texts[r] if r >= 0 else added[-1 - r].text for r in order]
        metas = [self.metadatas[r] if r >= 0 else added[-1 - r].metadata for r in order]
        vectors = None
        rows = np.asarray(order)
        old = rows >= 0
        if (self.vectors is not None or not old.any()) and all(c.vector is not None for c in added):
            dim = self.vectors.shape[1] if self.vectors is not None else len(added[0].vector or ())
            vectors = np.empty((len(order), dim), dtype=np.float32)
            if old.any() and self.vectors is not None:
                vectors[old] = self.vectors[rows[old]]
            if added:
                fresh = _normalized(np.asarray([c.vector for c in added], dtype=np.float32))
                vectors[~old] = fresh[[-1 - r for r in order if r < 0]]
        new_words = words.rebuilt(order, [(c.metadata.get("tokens") or "").split() for c in added])
        new_chars = chars.rebuilt(order, [chunk_chars(c.metadata, c.text) for c in added])
        return KeywordIndex(generation, ids, texts, metas, new_words, new_chars, vectors, build_lookups(ids, metas),
                            tuple(sorted(records, key=lambda r: r.source)), dict(aliases or {}))

    def with_metadata(self, record: DocRecord, generation: str, records: Sequence[DocRecord]) -> KeywordIndex:
        """The same rows with one document's metadata changed (a user override)."""
        changes = {"title": record.title, "doc_type": record.doc_type, "year": record.year, "issuer": record.issuer}
        changed = []
        for i in self.lookups.rows_by_source.get(record.source, []):
            meta = {k: v for k, v in {**self.metadatas[i], **changes}.items() if v is not None}
            if record.year is None:
                meta.pop("year", None)
            if not record.issuer:
                meta.pop("issuer", None)
            vector = None if self.vectors is None else self.vectors[i].tolist()
            changed.append(StoredChunk(self.ids[i], self.texts[i], meta, vector))
        return self.updated({record.source}, changed, generation, records, self.aliases)

    # ------------------------------------------------------------ lookups

    def article(self, source: str, number: int) -> list[Hit]:
        """The chunks of one article of one law, in order."""
        return [self.hit(i, 1.0) for i in self.lookups.articles.get((source, number), [])]

    def document_frequency(self, token: str) -> int:
        return self.words.document_frequency(token) if self.words is not None else 0

    def idf(self, token: str) -> float:
        return bm25_idf(self.document_frequency(token), max(1, len(self.ids)))

    def char_idf(self, gram: str) -> float:
        df = self.chars.document_frequency(gram) if self.chars is not None else 0
        return bm25_idf(df, max(1, len(self.ids)))

    def has(self, chunk_id: str) -> bool:
        return chunk_id in self.lookups.id_set

    def rows_of(self, source: str) -> list[int]:
        """Row numbers of one document's chunks, in document order."""
        return list(self.lookups.rows_by_source.get(source, []))

    def hit(self, row: int, score: float = 0.0) -> Hit:
        base = self._hits.get(row)
        if base is None:  # a snapshot never changes: its rows' hits are built once, then rescored
            base = self._hits[row] = hit_from_metadata(self.ids[row], self.texts[row], self.metadatas[row], 0.0)
        return base.with_score(score)

    # ------------------------------------------------------------ filters

    def _column(self, key: str) -> np.ndarray:
        column = self.lookups.columns.get(key)
        if column is None:
            column = np.array([m.get(key) for m in self.metadatas], dtype=object)
        return column

    def _vector_mask(self, where: dict) -> np.ndarray | None:
        """The filter as a numpy mask for the shapes retrieval uses; None for anything else."""
        if "$and" in where and len(where) == 1:
            found = [self._vector_mask(c) for c in where["$and"]]
            parts = [p for p in found if p is not None]
            if len(parts) < len(found):
                return None
            return np.logical_and.reduce(parts)
        if "$or" in where and len(where) == 1:
            found = [self._vector_mask(c) for c in where["$or"]]
            parts = [p for p in found if p is not None]
            if len(parts) < len(found):
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
        """A 0/1 weight per chunk for metadata filters (same dict format as Chroma's where), read-only.

        Remembered per filter: one question uses the same filter on all three sides, and questions
        repeat a few filters (type, source, organisations)."""
        if not where:
            return None
        key = json.dumps(where, sort_keys=True, ensure_ascii=False, default=str)
        cached = self._masks.get(key)
        if cached is not None:
            return cached
        fast = self._vector_mask(where)
        if fast is not None:
            mask = np.asarray(fast, dtype=np.float32)
        else:
            mask = np.array([1.0 if matches(m, where) else 0.0 for m in self.metadatas], dtype=np.float32)
        mask.flags.writeable = False
        if len(self._masks) >= MASK_CACHE:
            self._masks.clear()
        self._masks[key] = mask
        return mask

    # ------------------------------------------------------------ search

    def _search(self, index: Bm25 | None, tokens: list[str], k: int, where: dict | None, weights: dict[str, float] | None = None) -> list[Hit]:
        if index is None or not tokens:
            return []
        known = [t for t in tokens if index.term_id(t) is not None]
        if not known:
            return []
        weight_mask = self.mask(where)
        if weight_mask is not None and not weight_mask.any():
            return []
        k = min(k, len(self.ids))
        docs, scores = index.top(known, k, weight_mask, weights)
        return [self.hit(int(i), float(s)) for i, s in zip(docs, scores) if s > 0]

    def search(self, query_tokens: list[str], k: int, where: dict | None = None, weights: dict[str, float] | None = None) -> list[Hit]:
        """Word-level BM25 (jieba tokens); `weights` scales some tokens' share of the score."""
        return self._search(self.words, query_tokens, k, where, weights)

    def search_chars(self, grams: list[str], k: int, where: dict | None = None, weights: dict[str, float] | None = None) -> list[Hit]:
        """Character-bigram BM25: a rare exact phrase outranks a frequent word."""
        return self._search(self.chars, grams, k, where, weights)

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
            self.words.save(tmp / "bm25-words")
        if self.chars is not None:
            self.chars.save(tmp / "bm25-chars")
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
        """A saved snapshot; nothing is recomputed (BM25 arrays and vectors are memory-mapped)."""
        try:
            generation = (directory / "GENERATION").read_text(encoding="utf-8")
            with open(directory / "rows.json", encoding="utf-8") as f:
                rows = json.load(f)
            with open(directory / "records.json", encoding="utf-8") as f:
                extra = json.load(f)
            words = chars = None
            if (directory / "bm25-words").exists():
                words = Bm25.load(directory / "bm25-words")
                chars = Bm25.load(directory / "bm25-chars")
            vectors = _mapped(directory / "vectors.npy") if (directory / "vectors.npy").exists() else None
        except (OSError, ValueError, KeyError):
            return None
        metas = rows["metadatas"]
        lookups = build_lookups(rows["ids"], metas)
        records = tuple(DocRecord.from_dict(r) for r in extra.get("records", []))
        return cls(generation, rows["ids"], rows["texts"], metas, words, chars, vectors, lookups, records, dict(extra.get("aliases") or {}))


def _mapped(path: Path) -> np.ndarray:
    """A saved array, memory-mapped, as a plain ndarray view (np.memmap's Python hooks cost on every slice)."""
    return np.load(path, mmap_mode="r").view(np.ndarray)


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
