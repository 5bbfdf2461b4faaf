"""Reference systems for `rag eval`, built on the same documents and embedding model in the same run.

- baseline: the plain LangChain recipe a newcomer would build (RecursiveCharacterTextSplitter 500/50
  over the raw file text, Chroma, dense top-k, answer = best-matching sentence of the top passage,
  refusal by a similarity threshold chosen on the dev set).
- peer: Langchain-Chatchat's recipe as its public code does it (ChineseRecursiveTextSplitter 750/150,
  BM25 over jieba.lcut_for_search words + vector retriever in EnsembleRetriever 0.5/0.5), with the
  same answer and refusal rule. Chatchat's BM25 side is langchain-community's BM25Retriever (rank_bm25's
  Okapi BM25); langchain-community is sunset (2026) and rank_bm25 unmaintained, so the same retriever is
  `WordBM25Retriever` here: Okapi BM25 with rank_bm25's constants (k1 1.5, b 0.75), computed by bm25s,
  with Lucene's IDF (never negative) in place of rank_bm25's floored one.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_text_splitters import RecursiveCharacterTextSplitter
from pydantic import ConfigDict, PrivateAttr

from rag.citations import REFUSAL
from rag.embeddings import Embeddings as EmbeddingModel
from rag.evaluation import EvalItem, Passage, Prediction
from rag.loaders import LoadError, raw_text, read_file_bytes

Embeddings.register(EmbeddingModel)  # type: ignore[type-abstract]  # the project's models implement LangChain's interface without importing LangChain

SENTENCE = re.compile(r"[^。！？；\n]+[。！？；]?")


def _split_text_with_regex_from_end(text: str, separator: str, keep_separator: bool) -> list[str]:
    """Chatchat's splitter helper: the separator stays at the end of the piece before it."""
    if separator:
        if keep_separator:
            parts = re.split(f"({separator})", text)
            splits = ["".join(pair) for pair in zip(parts[0::2], parts[1::2])]
            if len(parts) % 2 == 1:
                splits += parts[-1:]
        else:
            splits = re.split(separator, text)
    else:
        splits = list(text)
    return [s for s in splits if s != ""]


class ChineseRecursiveTextSplitter(RecursiveCharacterTextSplitter):
    """Langchain-Chatchat's Chinese recursive splitter (regex separators, kept at the end)."""

    def __init__(self, separators: list[str] | None = None, keep_separator: bool = True, is_separator_regex: bool = True, **kwargs) -> None:
        super().__init__(keep_separator=keep_separator, **kwargs)
        self._separators = separators or ["\n\n", "\n", "。|！|？", r"\.\s|\!\s|\?\s", r"；|;\s", r"，|,\s"]
        self._is_separator_regex = is_separator_regex

    def _split_text(self, text: str, separators: list[str]) -> list[str]:
        final_chunks: list[str] = []
        separator = separators[-1]
        new_separators: list[str] = []
        for i, candidate in enumerate(separators):
            pattern = candidate if self._is_separator_regex else re.escape(candidate)
            if candidate == "":
                separator = candidate
                break
            if re.search(pattern, text):
                separator = candidate
                new_separators = separators[i + 1 :]
                break
        pattern = separator if self._is_separator_regex else re.escape(separator)
        splits = _split_text_with_regex_from_end(text, pattern, bool(self._keep_separator))
        good: list[str] = []
        merge_separator = "" if self._keep_separator else separator
        for piece in splits:
            if self._length_function(piece) < self._chunk_size:
                good.append(piece)
            else:
                if good:
                    final_chunks.extend(self._merge_splits(good, merge_separator))
                    good = []
                if not new_separators:
                    final_chunks.append(piece)
                else:
                    final_chunks.extend(self._split_text(piece, new_separators))
        if good:
            final_chunks.extend(self._merge_splits(good, merge_separator))
        return [re.sub(r"\n{2,}", "\n", chunk.strip()) for chunk in final_chunks if chunk.strip() != ""]


def raw_documents(records: Sequence) -> list[tuple[str, str]]:
    """(source, raw text) of each indexed file, read again from disk without our cleaning."""
    out: list[tuple[str, str]] = []
    for record in records:
        path = Path(record.path)
        try:
            out.append((record.source, raw_text(path, read_file_bytes(path))))
        except (LoadError, OSError):
            continue
    return out


def _cosine(query: Sequence[float], b: np.ndarray) -> np.ndarray:
    a = np.asarray(query, dtype=np.float32)
    a = a / (np.linalg.norm(a) or 1.0)
    norms = np.linalg.norm(b, axis=1)
    norms[norms == 0] = 1.0
    return (b @ a) / norms


@dataclass
class SimpleRAG:
    """A retriever + the 'best sentence of the top passage' answerer with a similarity threshold."""

    name: str
    embeddings: Embeddings
    retrieve: Callable[[str], list[LCDocument]]
    k: int = 5
    threshold: float = 0.0

    def top_similarity(self, question: str, passages: list[LCDocument]) -> tuple[list[float], float]:
        query = self.embeddings.embed_query(question)
        if not passages:
            return query, 0.0
        vector = self.embeddings.embed_documents([passages[0].page_content])
        return query, float(_cosine(query, np.asarray(vector))[0])

    def best_sentence(self, query: list[float], passage: str) -> str:
        sentences = [s.strip() for s in SENTENCE.findall(passage) if s.strip()]
        if not sentences:
            return passage.strip()
        vectors = np.asarray(self.embeddings.embed_documents(sentences))
        return sentences[int(np.argmax(_cosine(query, vectors)))]

    def predict(self, item: EvalItem) -> Prediction:
        started = time.perf_counter()
        passages = self.retrieve(item.question)[: self.k]
        query, similarity = self.top_similarity(item.question, passages)
        ranked = tuple(Passage(p.metadata.get("source", ""), p.page_content) for p in passages)
        if not passages or similarity < self.threshold:
            return Prediction(REFUSAL, True, {}, ranked, (time.perf_counter() - started) * 1000)
        sentence = self.best_sentence(query, passages[0].page_content)
        answer = f"{sentence}[1]"
        citations = {1: ranked[0]}
        return Prediction(answer, False, citations, ranked, (time.perf_counter() - started) * 1000)

    def choose_threshold(self, dev_items: Sequence[EvalItem]) -> float:
        """The similarity threshold that gets most dev items right (answered correctly or refused)."""
        from rag.evaluation import is_correct

        self.threshold = -1.0
        scored: list[tuple[float, bool, bool]] = []  # (similarity, expected refuse, correct if answered)
        for item in dev_items:
            passages = self.retrieve(item.question)[: self.k]
            _, similarity = self.top_similarity(item.question, passages)
            pred = self.predict(item)
            scored.append((similarity, item.refuse, (not item.refuse) and is_correct(item, pred)))
        candidates = sorted({s for s, _, _ in scored}) + [1.01]
        best, best_score = 0.0, -1
        for t in [c - 1e-6 for c in candidates]:
            score = sum((sim < t) if refuse else (sim >= t and correct) for sim, refuse, correct in scored)
            if score > best_score:
                best, best_score = t, score
        self.threshold = best
        return best


class WordBM25Retriever(BaseRetriever):
    """The k documents BM25 scores best for the query's words (`tokenize`: the same function for the
    documents and the query), as LangChain's BM25Retriever returns them: k of them, whatever the score."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    documents: list[LCDocument]
    tokenize: Callable[[str], list[str]]
    k: int = 4
    _index: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        import bm25s

        if self.documents:
            self._index = bm25s.BM25(method="atire", idf_method="lucene", k1=1.5, b=0.75)
            self._index.index([self.tokenize(d.page_content) for d in self.documents], show_progress=False)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        k = min(self.k, len(self.documents))
        if k == 0:
            return []
        ids, _ = self._index.retrieve([self.tokenize(query)], k=k, show_progress=False)
        return [self.documents[int(i)] for i in ids[0]]


def _chroma_store(name: str, docs: list[LCDocument], embeddings: Embeddings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma

    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
    store = Chroma(client=client, collection_name=f"{name}-{uuid.uuid4().hex[:8]}", embedding_function=embeddings)
    for i in range(0, len(docs), 2000):
        store.add_documents(docs[i : i + 2000])
    return store


def build_baseline(records: Sequence, embeddings: Embeddings, k: int = 5) -> SimpleRAG:
    splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)
    docs: list[LCDocument] = []
    for source, text in raw_documents(records):
        docs.extend(splitter.create_documents([text], metadatas=[{"source": source}]))
    store = _chroma_store("baseline", docs, embeddings)
    return SimpleRAG("baseline", embeddings, lambda q: store.similarity_search(q, k=k), k)


def build_peer(records: Sequence, embeddings: Embeddings, k: int = 5) -> SimpleRAG:
    import jieba
    from langchain_classic.retrievers import EnsembleRetriever

    splitter = ChineseRecursiveTextSplitter(keep_separator=True, is_separator_regex=True, chunk_size=750, chunk_overlap=150)
    docs: list[LCDocument] = []
    for source, text in raw_documents(records):
        docs.extend(splitter.create_documents([text], metadatas=[{"source": source}]))
    store = _chroma_store("peer", docs, embeddings)
    bm25 = WordBM25Retriever(documents=docs, tokenize=jieba.lcut_for_search, k=k)
    ensemble = EnsembleRetriever(retrievers=[bm25, store.as_retriever(search_kwargs={"k": k})], weights=[0.5, 0.5])
    return SimpleRAG("peer", embeddings, lambda q: ensemble.invoke(q), k)
