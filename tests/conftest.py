"""Shared fixtures.

- Every test runs with its state in a temp dir (`RAG_INDEX_DIR`, `XDG_DATA_HOME`), no `RAG_*`
  variable of the developer's shell, and `XDG_CACHE_HOME` at the real cache, so the parsed USE
  tokenizer is reused instead of rebuilt (a cache of a public model, not state).
- Fakes are named as fakes: `fake_settings` / `fake_components` (hashed-bigram embeddings, no
  sentence encoder, no LLM) and `tiny_components` (a few small documents in that mode).
- The real parts are built once per session through `rag.components.build`, as users get them:
  `corpus_components` (the shared setup of `rag.evaluation.eval_setups`: the sample report and the
  laws, real USE embeddings, real embedded Chroma, semantic similarity off), `assistant` (the same
  index with the default e5 sentence similarity, which the fitted answer model expects),
  `draft_components` (plus a made-up 2023 county report) and `bureaus_components` (the
  multi-bureau setup, for a user at 开封市审计局).
"""

from __future__ import annotations

import os
import socket
import sqlite3
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
ORG_FIXTURES = FIXTURES / "orgs"
COUNTY_REPORT = FIXTURES / "fictional-county-audit-bureau-2023-report.txt"
REPORT = SAMPLE_REPORT.stem

# Read once, before any test changes the environment.
REAL_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")

FAKE_ENV = {"RAG_EMBEDDING_MODE": "fake", "RAG_SEMANTIC": "off", "RAG_LLM_MODE": "none", "RAG_EMBEDDING_WORKERS": "0"}


@pytest.fixture(scope="session", autouse=True)
def no_rag_variables_from_the_shell():
    """Session-scoped fixtures (servers, indexes) must not see the developer's RAG_* settings either."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("RAG_"):
                mp.delenv(name)
        mp.setenv("XDG_CACHE_HOME", str(REAL_CACHE))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        yield


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """All state in this test's temp dir; no Chroma server and no LLM unless the test sets one."""
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(REAL_CACHE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    yield


def stop_process(proc: subprocess.Popen) -> None:
    """Stop a server a test started (SIGTERM: it stops its embedding workers), killing it if it hangs."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- fakes (fast tests)


@pytest.fixture
def fake_settings(monkeypatch, tmp_path) -> Settings:
    """FAKE modes through the environment, as a user would set them: the CLI run in the test sees them too."""
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.index_dir == (tmp_path / "index").resolve()
    return settings


@pytest.fixture
def fake_components(fake_settings):
    from rag.components import build

    components = build(fake_settings)
    yield components
    components.close()


def write_documents(folder: Path, documents: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# Small made-up documents: two laws whose names overlap, two bureaus' reports of different years.
TINY_DOCUMENTS = {
    "sample-audit-law.md": """# 中华人民共和国审计法

第一章 总则

第一条 为了加强国家的审计监督，制定本法。

第二条 国家实行审计监督制度。

第三条 审计机关依照法律规定独立行使审计监督权，不受其他行政机关、社会团体和个人的干涉。

第二章 审计程序

第四条 审计机关应当在实施审计三日前，向被审计单位送达审计通知书。

第五条 审计组应当将审计报告报送审计机关。被审计单位应当自接到审计报告之日起十日内提出书面意见。

第六条 审计机关可以向政府有关部门通报审计结果。
""",
    "sample-audit-law-implementing-regulations.md": """# 中华人民共和国审计法实施条例

第一章 总则

第一条 根据《中华人民共和国审计法》，制定本条例。

第二条 审计机关对预算执行情况进行审计监督。

第三条 审计机关编制年度审计项目计划。
""",
    "qinghe-audit-bureau-2023-report.txt": """青禾县审计局2023年法治政府建设情况报告

一、主要工作
（一）加强普法宣传
2023年，青禾县审计局开展普法活动12场，发放宣传资料800份。
（二）推进政务公开
全年主动公开政府信息52条。
二、存在问题
（一）法治宣传形式较为单一
（二）审计人员法律知识有待加强

青禾县审计局
2024年1月15日
""",
    "lanjiang-audit-bureau-2024-report.txt": """岚江市审计局2024年法治政府建设情况报告

一、主要工作
（一）加强普法宣传
2024年，岚江市审计局开展普法活动20场，聘请法律顾问1名。
（二）规范行政执法
全年办理行政复议案件3件，无被纠错案件。
二、存在问题
（一）信息化水平不高

岚江市审计局
2025年1月10日
""",
}


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    folder = write_documents(tmp_path_factory.mktemp("tiny-corpus"), TINY_DOCUMENTS)
    (folder / "aliases.toml").write_text('[laws]\n"审计条例" = "审计法实施条例"\n', encoding="utf-8")
    return folder


def _tiny(tmp_path_factory, tiny_corpus, name: str, env: dict[str, str]):
    """Components over TINY_DOCUMENTS in a new index with these settings; closed after the session."""
    from rag.components import build
    from rag.ingest import ingest_paths

    components = build(load_settings({"RAG_INDEX_DIR": str(tmp_path_factory.mktemp(name)), **env}))
    summary = ingest_paths(components.index, [tiny_corpus], show_bar=False)
    assert summary.count("failed") == 0 and summary.count("added") == len(TINY_DOCUMENTS)
    yield components
    components.close()


@pytest.fixture(scope="session")
def tiny_components(tmp_path_factory, tiny_corpus):
    """FAKE embeddings, no sentence encoder, no LLM, over TINY_DOCUMENTS in a real embedded Chroma.

    Read-only: a test that writes builds its own `fake_components`."""
    yield from _tiny(tmp_path_factory, tiny_corpus, "tiny-index", FAKE_ENV)


@pytest.fixture(scope="session")
def tiny_real_components(tmp_path_factory, tiny_corpus):
    """TINY_DOCUMENTS under the encoders a user gets by default (USE passages, e5 sentences): what the
    fitted answer model and passage ranker were fitted with, for tests of what the model chooses."""
    yield from _tiny(tmp_path_factory, tiny_corpus, "tiny-real-index", {})


# ---------------------------------------------------------------- the real corpus (slow tests)


def _seed_embedding_cache(source_dir: Path, target_dir: Path) -> None:
    """Copy an index's embedding caches (passage and sentence vectors by text hash) into a new index
    directory: the same texts are not embedded twice in one session. sqlite's backup API copies a
    consistent state."""
    for name in ("embedding_cache.sqlite", "sentence_cache.sqlite"):
        source = source_dir / name
        if not source.exists():
            continue
        target_dir.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(source) as src, sqlite3.connect(target_dir / name) as dst:
            src.backup(dst)


def _ingested(components, paths) -> None:
    from rag.ingest import ingest_paths

    summary = ingest_paths(components.index, paths, show_bar=False)
    assert summary.failed == (), summary.failed


@pytest.fixture(scope="session")
def shared_setup():
    """`shared` of `rag.evaluation.eval_setups`: the sample report and ../shared/corpus, no RAG_ORG."""
    from rag.evaluation import eval_setups

    setup = eval_setups(load_settings({}))[0]
    assert setup.name == "shared" and setup.org is None
    return setup


@pytest.fixture(scope="session")
def corpus_settings(tmp_path_factory) -> Settings:
    """Real USE embeddings and embedded Chroma; answer-sentence similarity off (see `assistant`)."""
    return load_settings({"RAG_INDEX_DIR": str(tmp_path_factory.mktemp("corpus-index")), "RAG_SEMANTIC": "off"})


@pytest.fixture(scope="session")
def corpus_components(corpus_settings, shared_setup):
    from rag.components import build

    components = build(corpus_settings)
    _ingested(components, shared_setup.paths)
    yield components
    components.close()


@pytest.fixture(scope="session")
def corpus_index(corpus_components):
    return corpus_components.index


@pytest.fixture(scope="session")
def assistant(corpus_components):
    """The assistant as a user gets it by default (USE retrieval, e5 sentence similarity) on the corpus index."""
    from rag.components import build

    components = build(corpus_components.settings.with_(answer={"semantic": "e5"}))
    yield components.assistant
    components.close()


@pytest.fixture(scope="session")
def draft_components(tmp_path_factory, corpus_components, shared_setup):
    """The corpus plus a second, made-up past report (tests/fixtures/fictional-county-*)."""
    from rag.components import build

    directory = tmp_path_factory.mktemp("draft-index")
    _seed_embedding_cache(corpus_components.settings.index_dir, directory)
    components = build(corpus_components.settings.with_index(directory))
    _ingested(components, [*shared_setup.paths, COUNTY_REPORT])
    yield components
    components.close()


@pytest.fixture(scope="session")
def bureaus_components(tmp_path_factory, corpus_components):
    """`bureaus` of `rag.evaluation.eval_setups`: the corpus, other bureaus' reports and the organisation
    fixtures, for a user at 开封市审计局 (RAG_ORG), with the default e5 sentence similarity."""
    from rag.evaluation import eval_setups, setup_components

    settings = load_settings({"RAG_INDEX_DIR": str(corpus_components.settings.index_dir)})
    setup = eval_setups(settings)[1]
    assert setup.name == "bureaus" and setup.org
    base = tmp_path_factory.mktemp("eval-indexes")
    _seed_embedding_cache(corpus_components.settings.index_dir, base / setup.name)
    components = setup_components(settings, setup, base)
    _ingested(components, setup.paths)
    yield components
    components.close()


@pytest.fixture
def make_index():
    """Indexes with the default (real) parts, built through `rag.components.build`, closed after the test."""
    from rag.components import build

    built = []

    def factory(settings: Settings | None = None):
        components = build(settings or load_settings())
        built.append(components)
        return components.index

    yield factory
    for components in built:
        components.close()


@pytest.fixture
def chroma_server(tmp_path):
    """A real `chroma run` on loopback, stopped after the test."""
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    with open(tmp_path / "chroma.log", "wb") as log:
        proc = subprocess.Popen(
            [str(chroma), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                        break
                except OSError:
                    time.sleep(0.3)
            else:
                pytest.fail("chroma run did not start within 60 s")
            yield url
        finally:
            stop_process(proc)
