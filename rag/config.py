"""One typed Settings object, read from RAG_* environment variables by a function (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path


def _default_index_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fagui-rag" / "index"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with offline-safe defaults."""

    index_dir: Path
    chroma_url: str | None = None
    collection: str = "fagui"
    embedding: str = "use-multilingual"
    embedding_batch: int = 64
    embedding_workers: int = 2
    reranker: str | None = None
    chunk_max_chars: int = 600
    chunk_overlap_sentences: int = 1
    max_question_chars: int = 500
    max_file_bytes: int = 20 * 1024 * 1024
    max_upload_bytes: int = 20 * 1024 * 1024
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str = "EMPTY"
    llm_timeout_s: float = 60.0

    def with_index(self, index_dir: str | Path | None) -> Settings:
        """Return a copy pointing at another index directory (CLI --index)."""
        if index_dir is None:
            return self
        return replace(self, index_dir=Path(index_dir).expanduser().resolve())

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)


def _env_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"环境变量 {name} 应为整数，实际为：{raw!r}") from exc


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build Settings from the environment (or the given mapping)."""
    env = dict(os.environ if env is None else env)
    index_dir = Path(env.get("RAG_INDEX_DIR") or _default_index_dir()).expanduser().resolve()
    return Settings(
        index_dir=index_dir,
        chroma_url=env.get("RAG_CHROMA_URL") or None,
        collection=env.get("RAG_COLLECTION") or "fagui",
        embedding=env.get("RAG_EMBEDDING") or "use-multilingual",
        embedding_batch=_env_int(env, "RAG_EMBEDDING_BATCH", 64),
        embedding_workers=_env_int(env, "RAG_EMBEDDING_WORKERS", min(2, os.cpu_count() or 1)),
        reranker=env.get("RAG_RERANKER") or None,
        chunk_max_chars=_env_int(env, "RAG_CHUNK_MAX_CHARS", 600),
        chunk_overlap_sentences=_env_int(env, "RAG_CHUNK_OVERLAP_SENTENCES", 1),
        max_question_chars=_env_int(env, "RAG_MAX_QUESTION_CHARS", 500),
        max_file_bytes=_env_int(env, "RAG_MAX_FILE_BYTES", 20 * 1024 * 1024),
        max_upload_bytes=_env_int(env, "RAG_MAX_UPLOAD_BYTES", 20 * 1024 * 1024),
        llm_base_url=env.get("RAG_LLM_BASE_URL") or None,
        llm_model=env.get("RAG_LLM_MODEL") or None,
        llm_api_key=env.get("RAG_LLM_API_KEY") or "EMPTY",
        llm_timeout_s=float(env.get("RAG_LLM_TIMEOUT") or 60.0),
    )
