"""The index of one installation: the Chroma chunk store, its manifest and the keyword index beside it."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from langchain_core.embeddings import Embeddings

from rag.config import Settings
from rag.embeddings import make_embeddings
from rag.keyword_index import KeywordIndex
from rag.schema import DocRecord
from rag.store import CheckReport, ChunkStore

KEYWORD_DIR = "keyword"
GENERATION_CHECK_S = 1.0


class Index:
    """Opens the store lazily; keeps the keyword index in step with the store's manifest."""

    def __init__(self, settings: Settings, embeddings: Embeddings | None = None) -> None:
        self.settings = settings
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        self.embeddings = embeddings or make_embeddings(settings)
        self.store = ChunkStore(settings, self.embeddings)
        self._keyword: KeywordIndex | None = None
        self._documents: tuple[float, list[DocRecord]] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    @property
    def server_mode(self) -> bool:
        return bool(self.settings.chroma_url)

    @property
    def keyword_dir(self) -> Path:
        return self.settings.index_dir / KEYWORD_DIR

    def documents(self) -> list[DocRecord]:
        """The manifest, re-read at most once a second (another instance may have changed it)."""
        now = time.monotonic()
        cached = self._documents
        if cached is not None and now - cached[0] < GENERATION_CHECK_S:
            return list(cached[1])
        records = self.store.documents()
        self._documents = (now, records)
        return list(records)

    def _forget_documents(self) -> None:
        self._documents = None

    def keyword(self) -> KeywordIndex:
        """The keyword index for the store's current generation (rebuilt when another process changed it)."""
        now = time.monotonic()
        with self._lock:
            if self._keyword is not None and now - self._checked_at < GENERATION_CHECK_S:
                return self._keyword
            generation = self.store.generation()
            self._checked_at = now
            if self._keyword is None or self._keyword.generation != generation:
                loaded = None if self.server_mode else KeywordIndex.load(self.keyword_dir)
                if loaded is not None and loaded.generation == generation:
                    self._keyword = loaded
                else:
                    self._keyword = self._rebuild(generation)
            return self._keyword

    def _rebuild(self, generation: str) -> KeywordIndex:
        index = KeywordIndex.from_store(self.store, generation)
        if not self.server_mode:
            index.save(self.keyword_dir)
        return index

    def apply_keyword_changes(self, previous_generation: str, removed: set[str], added) -> KeywordIndex:
        """Update the keyword index for documents just written, without reading the whole store back."""
        self._forget_documents()
        with self._lock:
            generation = self.store.generation()
            base = self._keyword
            if base is None or base.generation != previous_generation:
                base = None if self.server_mode else KeywordIndex.load(self.keyword_dir)
            if base is None or base.generation != previous_generation:
                self._keyword = self._rebuild(generation)
            else:
                self._keyword = base.updated(removed, list(added), generation)
                if not self.server_mode:
                    self._keyword.save(self.keyword_dir)
            self._checked_at = time.monotonic()
            return self._keyword

    def refresh_keyword(self) -> KeywordIndex:
        """Rebuild the keyword index now (after an ingest) and persist it in embedded mode."""
        self._forget_documents()
        with self._lock:
            self._keyword = self._rebuild(self.store.generation())
            self._checked_at = time.monotonic()
            return self._keyword

    def keyword_is_current(self) -> bool:
        """Cheap test: does the persisted keyword index belong to the store's current generation?"""
        if self.server_mode:
            return True
        try:
            stamp = (self.keyword_dir / "GENERATION").read_text(encoding="utf-8")
        except OSError:
            return False
        return stamp == self.store.generation()

    def check(self) -> CheckReport:
        orphans, incomplete = self.store.find_problems()
        loaded = None if self.server_mode else KeywordIndex.load(self.keyword_dir)
        generation = self.store.generation()
        keyword_stale = False if self.server_mode else (loaded is None or loaded.generation != generation)
        if loaded is not None and loaded.generation == generation:
            stored_ids = {c.id for c in self.store.iter_chunks()}
            keyword_stale = set(loaded.ids) != stored_ids
        return CheckReport(
            orphan_chunks=sum(len(v) for v in orphans.values()),
            incomplete_documents=tuple(incomplete),
            keyword_stale=keyword_stale,
        )

    def repair(self) -> tuple[int, list[str]]:
        removed, incomplete = self.store.repair()
        self.refresh_keyword()
        return removed, incomplete

    @contextmanager
    def write_lock(self):
        """One writer per index directory: a second ingest waits instead of interleaving."""
        path = self.settings.index_dir / "write.lock"
        with open(path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(str(os.getpid()))
                handle.flush()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def open_index(settings: Settings, embeddings: Embeddings | None = None) -> Index:
    return Index(settings, embeddings)
