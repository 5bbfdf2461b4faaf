"""One typed Settings object in nested sections, read from RAG_* environment variables by a function.

Nothing is read at import. Every field says what it is for (`describe()` prints them), and every
backend is chosen by a `mode` field that `rag.components.build` reads in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]

EMBEDDING_MODES = ("use", "e5", "sentence-transformers", "fake")
STORE_MODES = ("embedded", "server")
LLM_MODES = ("none", "openai", "fake")
SEMANTIC_MODES = ("e5", "embedding", "off")
SWITCH_MODES = ("on", "off")


class SettingsError(ValueError):
    """A setting that cannot be used; the message is Chinese and names the variable."""


def _field(default: Any, help_text: str, env: str | None = None, **kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help_text, "env": env}, **kwargs)


@dataclass(frozen=True)
class EmbeddingSettings:
    mode: str = _field("use", "embedding backend: use (multilingual USE, default) | e5 | sentence-transformers | fake", "RAG_EMBEDDING_MODE")
    model: str | None = _field(None, "sentence-transformers model path or name (mode sentence-transformers)", "RAG_EMBEDDING_MODEL")
    batch: int = _field(64, "texts per embedding call", "RAG_EMBEDDING_BATCH")
    workers: int = _field(2, "embedding worker processes for large batches (0 or 1: in process)", "RAG_EMBEDDING_WORKERS")
    blas_threads: int = _field(1, "numpy's BLAS threads in the app process (0: numpy's own default, one a core)", "RAG_BLAS_THREADS")


@dataclass(frozen=True)
class StoreSettings:
    mode: str = _field("embedded", "embedded (Chroma under the index directory) | server (a `chroma run` server)", "RAG_STORE_MODE")
    chroma_url: str | None = _field(None, "http://host:port of a Chroma server; setting it selects server mode", "RAG_CHROMA_URL")
    collection: str = _field("fagui", "prefix of the Chroma collections", "RAG_COLLECTION")


@dataclass(frozen=True)
class IngestSettings:
    chunk_max_chars: int = _field(600, "no chunk is longer than this", "RAG_CHUNK_MAX_CHARS")
    chunk_overlap_sentences: int = _field(1, "sentences repeated between neighbouring chunks", "RAG_CHUNK_OVERLAP_SENTENCES")
    max_file_bytes: int = _field(20 * 1024 * 1024, "larger files are refused before they are read", "RAG_MAX_FILE_BYTES")
    aliases_file: Path | None = _field(None, "extra law short forms (TOML); `aliases.toml` in an ingested folder is read too", "RAG_ALIASES")


@dataclass(frozen=True)
class RetrievalSettings:
    candidates: int = _field(40, "hits taken from each side (words, characters, vectors) before fusion", "RAG_CANDIDATES")
    reranker: str | None = _field(None, "a sentence-transformers CrossEncoder path (off by default)", "RAG_RERANKER")
    params_file: Path | None = _field(None, "fusion weights (JSON); default: rag/data/retrieval_params.json", "RAG_RETRIEVAL_PARAMS")
    expansion: str = _field("on", "add to the word search the passage words a learned table gives for the question's words (rag/expansion.py, fitted by eval/fit_expansion.py): on | off", "RAG_EXPANSION")
    expansion_file: Path | None = _field(None, "the learned word table (JSON); default: rag/data/expansion.json", "RAG_EXPANSION_FILE")
    passage_ranker: str = _field("off", "reorder the fused passages by the learned ranker (rag/passage_rank.py, the \"ranker\" section of the parameters file): off (default: it lifts retrieval, not the answers; docs/evaluation-history.md, round 24) | on (refit the answer model after switching: RAG_PASSAGE_RANKER=on make calibrate)", "RAG_PASSAGE_RANKER")
    sentence_search: str = _field("on", "a fourth ranking by each passage's closest sentence under the answers' sentence encoder (rag/sentence_search.py): off | on (refit with make calibrate)", "RAG_SENTENCE_SEARCH")


@dataclass(frozen=True)
class AnswerSettings:
    max_question_chars: int = _field(500, "longer questions are cut, with a notice", "RAG_MAX_QUESTION_CHARS")
    org: str | None = _field(None, "the user's own organisation: what 我局/本局 mean (e.g. 开封市审计局)", "RAG_ORG")
    semantic: str = _field("e5", "sentence similarity for answer selection: e5 | embedding (the retrieval model) | off", "RAG_SEMANTIC")
    model_file: Path | None = _field(None, "fitted answer-selection weights (JSON); default: rag/data/answer_model.json", "RAG_ANSWER_MODEL")
    support_model_file: Path | None = _field(None, "fitted support-checker weights (JSON); default: rag/data/support_model.json", "RAG_SUPPORT_MODEL")
    support_reader: str = _field("on", "the support checker's pair reader (rag/reader.py, the file the support model names; needs torch): on | off (the weights fitted without it)", "RAG_SUPPORT_READER")
    top_passages: int = _field(6, "passages whose sentences are candidates for the answer", "RAG_TOP_PASSAGES")


@dataclass(frozen=True)
class LLMSettings:
    mode: str = _field("none", "none (extractive answers) | openai (an OpenAI-compatible endpoint) | fake (scripted, for tests)", "RAG_LLM_MODE")
    base_url: str | None = _field(None, "endpoint URL (vLLM, Ollama, Xinference); setting it selects openai mode", "RAG_LLM_BASE_URL")
    model: str | None = _field(None, "model name at the endpoint", "RAG_LLM_MODEL")
    api_key: str = _field("EMPTY", "API key, if the endpoint needs one", "RAG_LLM_API_KEY")
    timeout_s: float = _field(60.0, "seconds before the extractive answer is used instead", "RAG_LLM_TIMEOUT")

    @property
    def enabled(self) -> bool:
        return self.mode != "none"


@dataclass(frozen=True)
class ServeSettings:
    auth: tuple[tuple[str, str], ...] = _field((), "users of the web app, from RAG_AUTH=\"user:password,user2:password2\"", "RAG_AUTH")
    max_upload_bytes: int = _field(20 * 1024 * 1024, "larger uploads are refused with a message", "RAG_MAX_UPLOAD_BYTES")
    api_concurrency: int = _field(0, "/ask requests answered side by side (0: one per CPU core, 8 with an LLM)", "RAG_API_CONCURRENCY")


@dataclass(frozen=True)
class EvalSettings:
    dev_set: Path = _field(PROJECT_ROOT.parent / "shared" / "eval" / "qa_dev.jsonl", "question set that picks the baselines' refusal threshold", "RAG_DEV_SET")
    sets_dir: Path = _field(PROJECT_ROOT / "eval", "folder of the project's question sets (*.jsonl)", "RAG_EVAL_DIR")


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with offline-safe defaults."""

    index_dir: Path
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)

    def with_index(self, index_dir: str | Path | None) -> Settings:
        """A copy pointing at another index directory (CLI --index)."""
        if index_dir is None:
            return self
        return replace(self, index_dir=Path(index_dir).expanduser().resolve())

    def with_(self, **sections: Any) -> Settings:
        """A copy with some fields of some sections changed: `s.with_(llm={"mode": "fake"})`."""
        changes = {name: replace(getattr(self, name), **values) for name, values in sections.items()}
        return replace(self, **changes)

    @property
    def server_mode(self) -> bool:
        return self.store.mode == "server"


def cache_dir() -> Path:
    """Per-user cache of derived files that do not depend on an index (parsed models, dictionaries)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fagui-rag"


def default_index_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fagui-rag" / "index"


def parse_auth(raw: str | None) -> tuple[tuple[str, str], ...]:
    """RAG_AUTH="user1:pass1,user2:pass2"; anything else is refused with the expected form."""
    if raw is None or not raw.strip():
        return ()
    pairs: list[tuple[str, str]] = []
    for item in raw.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user.strip() or not password:
            raise SettingsError(
                f"环境变量 RAG_AUTH 格式不正确（{item.strip() or '空项'}）：应为 用户名:密码，多个用户用逗号分隔，"
                "例如 RAG_AUTH=\"admin:口令1,user2:口令2\""
            )
        pairs.append((user.strip(), password))
    return tuple(pairs)


def _convert(kind: Any, name: str, raw: str) -> Any:
    text = str(kind)
    try:
        if text in ("int", "<class 'int'>"):
            return int(raw)
        if text in ("float", "<class 'float'>"):
            return float(raw)
    except ValueError as exc:
        raise SettingsError(f"环境变量 {name} 应为数字，实际为：{raw!r}") from exc
    if "Path" in text:
        return Path(raw).expanduser()
    return raw


def _section_from_env(cls: type, env: dict[str, str]) -> Any:
    values: dict[str, Any] = {}
    for f in fields(cls):
        name = f.metadata.get("env")
        raw = env.get(name) if name else None
        if raw is None or raw.strip() == "":
            continue
        if name == "RAG_AUTH":
            values[f.name] = parse_auth(raw)
        else:
            values[f.name] = _convert(f.type, str(name), raw.strip())
    return cls(**values)


def _check_mode(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingsError(f"{name} 只能是 {' | '.join(allowed)} 之一，实际为：{value!r}")


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build Settings from the environment (or the given mapping)."""
    env = dict(os.environ if env is None else env)
    index_dir = Path(env.get("RAG_INDEX_DIR") or default_index_dir()).expanduser().resolve()
    embedding = _section_from_env(EmbeddingSettings, env)
    legacy = (env.get("RAG_EMBEDDING") or "").strip()  # earlier name: a model id or a sentence-transformers path
    if legacy and "RAG_EMBEDDING_MODE" not in env:
        if legacy in ("use", "use-multilingual", "default"):
            embedding = replace(embedding, mode="use")
        elif legacy in ("e5", "fake"):
            embedding = replace(embedding, mode=legacy)
        else:
            embedding = replace(embedding, mode="sentence-transformers", model=legacy)
    if "RAG_EMBEDDING_WORKERS" not in env:
        embedding = replace(embedding, workers=min(2, os.cpu_count() or 1))
    store = _section_from_env(StoreSettings, env)
    if store.chroma_url and "RAG_STORE_MODE" not in env:
        store = replace(store, mode="server")
    llm = _section_from_env(LLMSettings, env)
    if llm.base_url and "RAG_LLM_MODE" not in env:
        llm = replace(llm, mode="openai")
    settings = Settings(
        index_dir=index_dir,
        embedding=embedding,
        store=store,
        ingest=_section_from_env(IngestSettings, env),
        retrieval=_section_from_env(RetrievalSettings, env),
        answer=_section_from_env(AnswerSettings, env),
        llm=llm,
        serve=_section_from_env(ServeSettings, env),
        eval=_section_from_env(EvalSettings, env),
    )
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Modes and the settings each mode needs; raises SettingsError with a Chinese message."""
    _check_mode("RAG_EMBEDDING_MODE", settings.embedding.mode, EMBEDDING_MODES)
    _check_mode("RAG_STORE_MODE", settings.store.mode, STORE_MODES)
    _check_mode("RAG_LLM_MODE", settings.llm.mode, LLM_MODES)
    _check_mode("RAG_SEMANTIC", settings.answer.semantic, SEMANTIC_MODES)
    _check_mode("RAG_SUPPORT_READER", settings.answer.support_reader, SWITCH_MODES)
    _check_mode("RAG_SENTENCE_SEARCH", settings.retrieval.sentence_search, SWITCH_MODES)
    _check_mode("RAG_PASSAGE_RANKER", settings.retrieval.passage_ranker, SWITCH_MODES)
    _check_mode("RAG_EXPANSION", settings.retrieval.expansion, SWITCH_MODES)
    if settings.embedding.mode == "sentence-transformers" and not settings.embedding.model:
        raise SettingsError("嵌入模式 sentence-transformers 需要设置 RAG_EMBEDDING_MODEL（模型路径或名称）")
    if settings.store.mode == "server" and not settings.store.chroma_url:
        raise SettingsError("存储模式 server 需要设置 RAG_CHROMA_URL（如 http://127.0.0.1:8000）")
    if settings.llm.mode == "openai" and not (settings.llm.base_url and settings.llm.model):
        raise SettingsError("大模型模式 openai 需要同时设置 RAG_LLM_BASE_URL 和 RAG_LLM_MODEL")


def describe(settings: Settings) -> list[tuple[str, str, Any, str]]:
    """(section.field, environment variable, value, description) of every setting."""
    rows: list[tuple[str, str, Any, str]] = [("index_dir", "RAG_INDEX_DIR", settings.index_dir, "index directory")]
    for section in fields(settings):
        value = getattr(settings, section.name)
        if not is_dataclass(value):
            continue
        for f in fields(value):
            shown = getattr(value, f.name)
            if f.name in ("auth", "api_key") and shown not in ((), "EMPTY"):
                shown = "***"
            rows.append((f"{section.name}.{f.name}", f.metadata.get("env") or "", shown, f.metadata.get("help", "")))
    return rows
