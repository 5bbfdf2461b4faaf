"""Sentence-level semantic search: each passage scored by its sentence closest to the question.

A question usually asks for one sentence of a passage, and a passage-level vector averages that
sentence with the rest. Under the sentence encoder of answers (multilingual-e5-small by default)
every sentence of the snapshot has a unit vector (cached by text hash, so a new generation only
encodes its new sentences); a passage's score is the best cosine similarity among its sentences.
This ranking is the fourth side of the fused retrieval (`RetrievalParams.sentence_weight`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rag.keyword_index import KeywordIndex
from rag.schema import Hit
from rag.text import sentence_spans

MIN_CHARS = 4  # shorter pieces (a bare item number, 一、) carry no meaning of their own
BATCH = 256  # sentences encoded per step of the progress bar


class VectorSource(Protocol):
    def passage_vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]: ...

    def query_vector(self, question: str) -> np.ndarray: ...


@dataclass(frozen=True)
class SentenceMatrix:
    """The unit vectors of every sentence of one snapshot generation and the passage row of each."""

    generation: str
    vectors: np.ndarray  # (sentences, dim) float32
    rows: np.ndarray  # (sentences,) int: the snapshot row holding each sentence
    n_rows: int


def passage_sentences(text: str) -> list[str]:
    """The sentences of a passage that are long enough to be compared."""
    pieces = (text[s:e].strip() for s, e in sentence_spans(text, 0, len(text)))
    return [p for p in pieces if len(p) >= MIN_CHARS]


def build_matrix(snapshot: KeywordIndex, encoder: VectorSource, progress: Callable[[int, int], None] | None = None) -> SentenceMatrix:
    """Encode (or read from the cache) every sentence of the snapshot; `progress(done, total)`."""
    sentences: list[str] = []
    rows: list[int] = []
    for row, text in enumerate(snapshot.texts):
        for sentence in passage_sentences(text):
            sentences.append(sentence)
            rows.append(row)
    distinct = list(dict.fromkeys(sentences))
    vectors: dict[str, np.ndarray] = {}
    for start in range(0, len(distinct), BATCH):
        vectors.update(encoder.passage_vectors(distinct[start : start + BATCH]))
        if progress:
            progress(min(start + BATCH, len(distinct)), len(distinct))
    if not sentences:
        return SentenceMatrix(snapshot.generation, np.zeros((0, 1), dtype=np.float32), np.zeros(0, dtype=np.int64), len(snapshot.texts))
    matrix = np.stack([vectors[s] for s in sentences]).astype(np.float32, copy=False)
    return SentenceMatrix(snapshot.generation, matrix, np.asarray(rows, dtype=np.int64), len(snapshot.texts))


def search(matrix: SentenceMatrix, snapshot: KeywordIndex, query: np.ndarray, k: int, where: dict | None = None) -> list[Hit]:
    """The `k` passages whose best sentence is closest to the query vector, within the metadata filter."""
    if not len(matrix.rows) or matrix.n_rows != len(snapshot.texts):
        return []
    similarity = matrix.vectors @ np.asarray(query, dtype=np.float32)
    best = np.full(matrix.n_rows, -np.inf, dtype=np.float32)
    np.maximum.at(best, matrix.rows, similarity)
    mask = snapshot.mask(where)
    if mask is not None:
        best = np.where(mask > 0, best, -np.inf)
    k = min(k, matrix.n_rows)
    top = np.argpartition(-best, k - 1)[:k]
    top = top[np.argsort(-best[top])]
    return [snapshot.hit(int(i), float(best[i])) for i in top if np.isfinite(best[i])]
