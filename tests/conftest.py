"""Shared fixtures: every test gets its own index directory and no remote endpoints."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rag.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
SHARED_CORPUS = SHARED / "corpus"
REGULATIONS = SHARED_CORPUS / "regulations"
SAMPLE_REPORT = ROOT / "corpus" / "kaifeng-audit-bureau-2024-rule-of-law-report.txt"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Point all state at a temp dir; no Chroma server, no LLM unless a test sets one."""
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    yield


@pytest.fixture
def settings(tmp_path) -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def embeddings():
    """The default embedding model, loaded once (its weights ship with the package)."""
    from rag.embeddings import UseEmbeddings

    return UseEmbeddings()


@pytest.fixture
def make_index(embeddings, tmp_path):
    from rag.embeddings import CachedEmbeddings
    from rag.index import Index

    def factory(settings: Settings | None = None):
        settings = settings or load_settings()
        return Index(settings, CachedEmbeddings(embeddings, settings.index_dir / "embedding_cache.sqlite"))

    return factory


@pytest.fixture(scope="session")
def corpus_copy(tmp_path_factory) -> Path:
    """A writable copy of ../shared/corpus plus the project's sample report."""
    target = tmp_path_factory.mktemp("corpus")
    shutil.copytree(SHARED_CORPUS, target / "corpus")
    return target / "corpus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, embeddings):
    """The sample report and all regulations, ingested once into a real embedded Chroma."""
    from rag.embeddings import CachedEmbeddings
    from rag.index import Index
    from rag.ingest import ingest_paths

    directory = tmp_path_factory.mktemp("corpus-index")
    settings = load_settings({"RAG_INDEX_DIR": str(directory)})
    index = Index(settings, CachedEmbeddings(embeddings, directory / "embedding_cache.sqlite"))
    summary = ingest_paths(index, [SAMPLE_REPORT, REGULATIONS], show_bar=False)
    assert summary.count("failed") == 0
    return index


@pytest.fixture(scope="session")
def assistant(corpus_index):
    from rag.answer import Assistant

    return Assistant(corpus_index, corpus_index.settings)


@pytest.fixture(scope="session")
def draft_index(tmp_path_factory, embeddings, corpus_index):
    """The corpus plus a second, made-up past report (a fixture: tests/fixtures/fictional-*)."""
    from rag.embeddings import CachedEmbeddings
    from rag.index import Index
    from rag.ingest import ingest_paths

    directory = tmp_path_factory.mktemp("draft-index")
    settings = load_settings({"RAG_INDEX_DIR": str(directory)})
    shared_cache = corpus_index.settings.index_dir / "embedding_cache.sqlite"
    index = Index(settings, CachedEmbeddings(embeddings, shared_cache))
    fixture = FIXTURES / "fictional-county-audit-bureau-2023-report.txt"
    summary = ingest_paths(index, [SAMPLE_REPORT, fixture, REGULATIONS], show_bar=False)
    assert summary.count("failed") == 0
    return index


@pytest.fixture
def chroma_server(tmp_path):
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("chroma run did not start within 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
