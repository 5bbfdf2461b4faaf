"""LangChain adapters: the hybrid retriever behind LangChain's BaseRetriever interface."""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever


class LangChainHybridRetriever(BaseRetriever):
    """`HybridRetriever.search` as a LangChain retriever (documents carry source, section, article, score)."""

    hybrid: object
    k: int = 6
    filters: dict = {}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        result = self.hybrid.search(query, k=self.k, **self.filters)  # type: ignore[attr-defined]
        return [
            LCDocument(
                page_content=h.text,
                metadata={
                    "id": h.chunk_id,
                    "source": h.source,
                    "title": h.title,
                    "section": h.section,
                    "article": h.article,
                    "doc_type": h.doc_type,
                    "year": h.year,
                    "issuer": h.issuer,
                    "score": h.score,
                },
            )
            for h in result.hits
        ]
