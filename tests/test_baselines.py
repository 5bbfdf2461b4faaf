"""rag.baselines: the reference systems' own parts (the peer's keyword retriever on real bm25s)."""

from __future__ import annotations

import jieba
from langchain_core.documents import Document

from rag.baselines import ChineseRecursiveTextSplitter, WordBM25Retriever


def test_the_peer_keyword_retriever_ranks_by_bm25_and_returns_k_documents():
    docs = [
        Document(page_content="审计机关应当在规定期限内出具审计报告。", metadata={"source": "a"}),
        Document(page_content="行政机关实施行政处罚，应当告知当事人。", metadata={"source": "b"}),
        Document(page_content="行政复议机关应当自受理申请之日起六十日内作出行政复议决定。", metadata={"source": "c"}),
    ]
    retriever = WordBM25Retriever(documents=docs, tokenize=jieba.lcut_for_search, k=2)
    found = retriever.invoke("行政复议决定要多少日内作出？")
    assert [d.metadata["source"] for d in found][0] == "c"
    assert len(found) == 2  # k documents, as LangChain's BM25Retriever gives
    assert [d.metadata["source"] for d in retriever.invoke("审计报告")][0] == "a"
    assert len(WordBM25Retriever(documents=docs, tokenize=jieba.lcut_for_search, k=9).invoke("无关的词")) == 3
    assert WordBM25Retriever(documents=[], tokenize=jieba.lcut_for_search, k=3).invoke("审计") == []


def test_the_peer_splitter_keeps_sentence_ends_with_the_sentence():
    splitter = ChineseRecursiveTextSplitter(keep_separator=True, is_separator_regex=True, chunk_size=20, chunk_overlap=0)
    pieces = splitter.split_text("第一句话说的是审计。第二句话说的是处罚。第三句话说的是复议。")
    assert len(pieces) >= 2 and all(p.endswith("。") for p in pieces)
