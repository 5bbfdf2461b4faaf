"""The index of one installation: the Chroma store and the search snapshot that readers use.

Readers always work on one snapshot (`Index.snapshot()`): rows, word and character indexes,
vectors, document records and law short forms of one generation, swapped in whole. The generation
is a counter with a write id (`ChunkStore.generation`), so it only moves forward. In embedded mode
the writer saves the snapshot beside the store under the write lock, and a reader loads it without
opening Chroma; in server mode each instance rebuilds it from the server when the generation moves,
reading the generation before and after the chunks and retrying if it moved in between. A server-mode
instance also keeps the snapshot it built in its local index folder: started again, it loads that
copy when the server is still at its generation, and otherwise reads from the server only the
documents whose manifest entry changed (a 100k-chunk server is not read whole at every start).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

from rag.config import Settings
from rag.keyword_index import KeywordIndex
from rag.schema import DocRecord, Hit
from rag.store import WRITING, CheckReport, ChunkStore, StoredChunk, StoreUnavailableError, generation_counter

log = logging.getLogger(__name__)

SNAPSHOT_DIR = "keyword"
GENERATION_CHECK_S = 1.0
STORE_CHECK_S = 5.0
SNAPSHOT_RETRIES = 5
LOCK_WAIT_MESSAGE = "等待另一个入库进程结束……"
EMPTY_GENERATION = "0:empty"


def _older(candidate: str, current: str) -> bool:
    """Whether a generation is behind another: generations only move forward."""
    return generation_counter(candidate) < generation_counter(current)


class Index:
    """Opens the store lazily; keeps the search snapshot in step with the store's generation."""

    def __init__(self, settings: Settings, embeddings, store_factory: Callable[[], ChunkStore] | None = None) -> None:
        self.settings = settings
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        self.embeddings = embeddings
        self.model_id: str = getattr(embeddings, "model_id", type(embeddings).__name__)
        self._store_factory = store_factory or (lambda: ChunkStore(settings, self.model_id))
        self._store: ChunkStore | None = None
        self._snapshot: KeywordIndex | None = None
        self._checked_at = 0.0
        self._store_checked_at = 0.0
        self.last_refresh = ""  # how the current snapshot was obtained: saved / read / updated
        self._lock = threading.RLock()

    # ------------------------------------------------------------ parts

    @property
    def server_mode(self) -> bool:
        return self.settings.server_mode

    @property
    def store(self) -> ChunkStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._store_factory()
        return self._store

    @property
    def snapshot_dir(self) -> Path:
        return self.settings.index_dir / SNAPSHOT_DIR

    keyword_dir = snapshot_dir

    # ------------------------------------------------------------ the snapshot

    def snapshot(self) -> KeywordIndex:
        """The current snapshot; the generation is checked at most once a second.

        While one thread checks (or rebuilds), the others keep answering from the snapshot they have."""
        current = self._snapshot
        if current is not None and time.monotonic() - self._checked_at < GENERATION_CHECK_S:
            return current
        if not self._lock.acquire(blocking=current is None):
            return current  # type: ignore[return-value]  # another thread is checking
        try:
            current = self._snapshot
            if current is not None and time.monotonic() - self._checked_at < GENERATION_CHECK_S:
                return current
            fresh = self._refresh(current)
            self._swap(fresh)
            return fresh
        finally:
            self._lock.release()

    keyword = snapshot

    def _swap(self, snapshot: KeywordIndex) -> None:
        self._snapshot = snapshot
        self._checked_at = time.monotonic()

    def _refresh(self, current: KeywordIndex | None) -> KeywordIndex:
        if self.server_mode:
            generation = self.store.generation()
            if current is not None and (current.generation == generation or generation.endswith(WRITING)):
                return current  # unchanged, or a write in progress: keep the last whole snapshot
            if current is None:  # a new process: the copy this instance saved last time, if any
                current = self._load_saved()
                if current is not None and current.generation == generation:
                    self.last_refresh = "saved"
                    return current
            fresh = self._read_store(base=current)
            if fresh.generation == generation and not generation.endswith(WRITING):
                self._save_copy(fresh)
            return fresh
        saved = KeywordIndex.saved_generation(self.snapshot_dir)
        if saved is not None and (current is None or current.generation != saved):
            loaded = self._load_saved()
            if loaded is not None and (current is None or not _older(loaded.generation, current.generation)):
                current = loaded
        if current is None or self._store is not None and self._stale_against_store(current):
            rebuilt = self._rebuild_and_save()
            if rebuilt is not None:
                current = rebuilt
        if current is None:  # the first write into this index is still running
            current = KeywordIndex.build([], EMPTY_GENERATION)
        return current

    def _save_copy(self, snapshot: KeywordIndex) -> None:
        """Server mode: keep the snapshot in the local folder for the next start (a cache: failing to write it loses nothing)."""
        try:
            snapshot.save(self.snapshot_dir)
        except OSError as exc:  # a read-only folder: the next start reads from the server again
            log.info("could not save the search snapshot in %s: %s", self.snapshot_dir, exc)

    def _load_saved(self) -> KeywordIndex | None:
        """The saved snapshot, read whole: its generation is read before and after the files."""
        for _ in range(SNAPSHOT_RETRIES):
            before = KeywordIndex.saved_generation(self.snapshot_dir)
            if before is None and not self._swap_in_progress():
                return None  # nothing saved (a new index), and no writer is swapping a new one in
            loaded = KeywordIndex.load(self.snapshot_dir)
            if loaded is not None and loaded.generation == before == KeywordIndex.saved_generation(self.snapshot_dir):
                return loaded
            time.sleep(0.05)
        return None

    def _swap_in_progress(self) -> bool:
        """A writer between moving the old snapshot aside and renaming the new one in (`KeywordIndex.save`)."""
        folder = self.snapshot_dir
        return any(folder.parent.glob(f".{folder.name}.old-*")) if folder.parent.is_dir() else False

    def _stale_against_store(self, current: KeywordIndex) -> bool:
        """A long-running process with the store open also compares with the store (a writer may have crashed)."""
        now = time.monotonic()
        if now - self._store_checked_at < STORE_CHECK_S:
            return False
        self._store_checked_at = now
        generation = self.store.generation()
        return generation != current.generation and not generation.endswith(WRITING) and not self._lock_held()

    def _read_store(self, base: KeywordIndex | None = None) -> KeywordIndex:
        """A consistent snapshot from the store: read the generation, the data, the generation again.

        A generation that moved, or is marked as being written, means another process is writing:
        read again. In embedded mode a client another process has written behind is reopened first.
        With `base` (server mode), only the documents whose manifest entry differs from the base's are read."""
        store = self.store
        vectors = not self.server_mode
        snapshot: KeywordIndex | None = None
        for attempt in range(SNAPSHOT_RETRIES):
            last = attempt == SNAPSHOT_RETRIES - 1
            before = store.generation()
            if before.endswith(WRITING) and not last:
                time.sleep(0.1 * (attempt + 1))
                continue
            try:
                store.reopen_if_stale()
                records = store.documents()
                if base is not None and self.server_mode:
                    stale, added = self._changes(base, records)
                    how = "updated"
                else:
                    chunks = list(store.iter_chunks(vectors=vectors))
                    how = "read"
                aliases = store.aliases()
            except StoreUnavailableError:
                raise
            except Exception:
                if self.server_mode or last:
                    raise
                log.info("embedded store changed under this reader (attempt %d), reopening", attempt + 1)
                store.reopen()
                continue
            after = store.generation()
            if how == "updated":
                snapshot = base.updated(stale, added, before, records, aliases)  # type: ignore[union-attr]
            else:
                snapshot = KeywordIndex.build(chunks, before, records, aliases)
            self.last_refresh = how
            if before == after and not before.endswith(WRITING):
                return snapshot
            log.info("index changed while it was read (attempt %d), reading again", attempt + 1)
            time.sleep(0.1 * (attempt + 1))
        assert snapshot is not None
        return snapshot  # labelled with the generation it started from: the next check reads again

    def _changes(self, base: KeywordIndex, records: list[DocRecord]) -> tuple[set[str], list[StoredChunk]]:
        """What differs from the base snapshot: the documents to drop from it (removed, re-indexed or
        corrected since) and the store's chunks of those that are still there."""
        before = {r.source: r for r in base.records}
        changed = [r.source for r in records if before.get(r.source) != r]
        stale = set(changed) | (set(before) - {r.source for r in records}) | (set(base.lookups.rows_by_source) - set(before))
        added: list[StoredChunk] = []
        for start in range(0, len(changed), 50):
            added.extend(self.store.iter_chunks({"source": {"$in": changed[start : start + 50]}}))
        log.info("search snapshot updated: %d documents read again, %d dropped", len(changed), len(stale) - len(changed))
        return stale, added

    def _rebuild_and_save(self) -> KeywordIndex | None:
        """A reader's rebuild from the store. Embedded mode: only while no writer holds the lock (the
        lock is held meanwhile, so no writer starts), and saved only if still current. None if a writer is busy."""
        if self.server_mode:
            return self._read_store()
        with self._try_lock() as locked:
            if not locked:
                return None
            snapshot = self._read_store()
            if self.store.generation() == snapshot.generation and not snapshot.generation.endswith(WRITING):
                snapshot.save(self.snapshot_dir)
            return snapshot

    def rebuild(self) -> KeywordIndex:
        """Read the whole store again (after a repair), save and swap in the snapshot (under the write lock)."""
        with self._lock:
            if not self.server_mode:
                self.store.reopen()
            snapshot = self._read_store()
            if not self.server_mode:
                snapshot.save(self.snapshot_dir)
            self._swap(snapshot)
            return snapshot

    refresh_keyword = rebuild

    def commit(self, previous: KeywordIndex | None, previous_generation: str, removed: set[str], added: Iterable[StoredChunk]) -> KeywordIndex:
        """After a write (under the write lock): update the snapshot from the previous one, or rebuild it."""
        with self._lock:
            store = self.store
            generation = store.generation()
            records = store.documents()
            aliases = store.aliases()
            if previous is not None and previous.generation == previous_generation and not generation.endswith(WRITING):
                snapshot = previous.updated(removed, list(added), generation, records, aliases)
            else:
                snapshot = self._read_store()
            if not self.server_mode:
                snapshot.save(self.snapshot_dir)
            elif snapshot.generation == generation and not generation.endswith(WRITING):
                self._save_copy(snapshot)  # this instance's copy for its next start
            self._swap(snapshot)
            return snapshot

    def commit_metadata(self, previous: KeywordIndex | None, previous_generation: str, record: DocRecord) -> KeywordIndex:
        """After a metadata override: the same rows with one document's metadata changed."""
        with self._lock:
            generation = self.store.generation()
            records = self.store.documents()
            if previous is not None and previous.generation == previous_generation:
                snapshot = previous.with_metadata(record, generation, records)
            else:
                snapshot = self._read_store()
            if not self.server_mode:
                snapshot.save(self.snapshot_dir)
            self._swap(snapshot)
            return snapshot

    def current_for_write(self) -> KeywordIndex | None:
        """The snapshot a writer starts from: the newest whole one (None if none can be loaded cheaply)."""
        current = self._snapshot
        if self.server_mode:  # this instance's copy brought up to date (read whole only when there is none)
            return self.snapshot()
        saved = KeywordIndex.saved_generation(self.snapshot_dir)
        if current is not None and current.generation == saved:
            return current
        return self._load_saved() or current

    # ------------------------------------------------------------ reads

    def documents(self) -> list[DocRecord]:
        return list(self.snapshot().records)

    def aliases(self) -> dict[str, str]:
        return dict(self.snapshot().aliases)

    def dense_search(self, snapshot: KeywordIndex, vector, k: int, where: dict | None = None) -> list[Hit]:
        """Nearest chunks of this snapshot: from its vectors (embedded) or the server (ids checked against the snapshot)."""
        if not self.server_mode:
            return snapshot.search_vectors(vector, k, where)
        hits = self.store.dense_search(vector, k, where)
        known = [h for h in hits if snapshot.has(h.chunk_id)]
        if len(known) < len(hits) and snapshot is self._snapshot:
            self._checked_at = 0.0  # the server holds chunks this snapshot lacks: check the generation now
        return known

    # ------------------------------------------------------------ consistency

    def check(self) -> CheckReport:
        orphans, incomplete = self.store.find_problems()
        generation = self.store.generation()
        stale = False
        if not self.server_mode:
            loaded = KeywordIndex.load(self.snapshot_dir)
            stale = loaded is None or loaded.generation != generation
            if loaded is not None and not stale:
                stale = set(loaded.ids) != set(self.store.all_ids())
        return CheckReport(
            orphan_chunks=sum(len(v) for v in orphans.values()),
            incomplete_documents=tuple(incomplete),
            keyword_stale=stale,
        )

    def repair(self) -> tuple[int, list[str]]:
        with self.write_lock():
            removed, incomplete = self.store.repair()
            self.rebuild()
        return removed, incomplete

    # ------------------------------------------------------------ one writer per index

    @property
    def lock_path(self) -> Path:
        return self.settings.index_dir / "write.lock"

    def _lock_held(self) -> bool:
        with self._try_lock() as locked:
            return not locked

    @contextmanager
    def _try_lock(self):
        with open(self.lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def write_lock(self, on_wait: Callable[[str], None] | None = None):
        """One writer per index directory: a second writer says it is waiting, then waits."""
        with open(self.lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                if on_wait is not None:
                    on_wait(LOCK_WAIT_MESSAGE)
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(str(os.getpid()))
                handle.flush()
                if self._store is not None and not self.server_mode:
                    with self._lock:  # no reader of this process uses the client while it is replaced
                        self._store.reopen_if_stale()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
