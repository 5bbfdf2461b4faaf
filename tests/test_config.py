"""rag.config: nested settings from RAG_* variables, modes, RAG_AUTH, copies, `rag settings`."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import SettingsError, describe, load_settings


def test_defaults_are_offline_and_real():
    settings = load_settings({"RAG_INDEX_DIR": "/tmp/some-index"})
    assert settings.index_dir == Path("/tmp/some-index")
    assert (settings.embedding.mode, settings.store.mode, settings.llm.mode, settings.answer.semantic) == ("use", "embedded", "none", "e5")
    assert not settings.llm.enabled and not settings.server_mode
    assert settings.serve.auth == () and settings.answer.org is None
    assert settings.ingest.chunk_max_chars == 600 and settings.answer.max_question_chars == 500
    assert settings.ingest.max_file_bytes == settings.serve.max_upload_bytes == 20 * 1024 * 1024


def test_the_index_directory_defaults_under_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.delenv("RAG_INDEX_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert load_settings().index_dir == (tmp_path / "data" / "fagui-rag" / "index").resolve()


def test_environment_fills_every_section(monkeypatch, tmp_path):
    env = {
        "RAG_INDEX_DIR": str(tmp_path / "i"),
        "RAG_EMBEDDING_MODE": "fake",
        "RAG_EMBEDDING_WORKERS": "3",
        "RAG_CHROMA_URL": "http://127.0.0.1:8123",
        "RAG_COLLECTION": "mine",
        "RAG_CHUNK_MAX_CHARS": "300",
        "RAG_MAX_FILE_BYTES": "1024",
        "RAG_ALIASES": "~/aliases.toml",
        "RAG_CANDIDATES": "12",
        "RAG_MAX_QUESTION_CHARS": "50",
        "RAG_ORG": "开封市审计局",
        "RAG_SEMANTIC": "off",
        "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "RAG_LLM_MODEL": "qwen",
        "RAG_LLM_TIMEOUT": "2.5",
        "RAG_AUTH": "staff:s3cret, admin:pa:ss",
        "RAG_MAX_UPLOAD_BYTES": "2048",
        "RAG_API_CONCURRENCY": "4",
        "RAG_DEV_SET": str(tmp_path / "dev.jsonl"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert (s.embedding.mode, s.embedding.workers) == ("fake", 3)
    # A Chroma URL selects server mode; an endpoint URL selects the openai LLM mode.
    assert (s.store.mode, s.store.chroma_url, s.store.collection) == ("server", "http://127.0.0.1:8123", "mine") and s.server_mode
    assert (s.llm.mode, s.llm.base_url, s.llm.model, s.llm.timeout_s) == ("openai", "http://127.0.0.1:9/v1", "qwen", 2.5) and s.llm.enabled
    assert (s.ingest.chunk_max_chars, s.ingest.max_file_bytes) == (300, 1024)
    assert s.ingest.aliases_file == Path.home() / "aliases.toml"
    assert s.retrieval.candidates == 12
    assert (s.answer.max_question_chars, s.answer.org, s.answer.semantic) == (50, "开封市审计局", "off")
    assert s.serve.auth == (("staff", "s3cret"), ("admin", "pa:ss"))  # a password may hold a colon
    assert (s.serve.max_upload_bytes, s.serve.api_concurrency) == (2048, 4)
    assert s.eval.dev_set == tmp_path / "dev.jsonl"


def test_explicit_modes_win_over_the_urls_that_imply_them():
    s = load_settings({"RAG_CHROMA_URL": "http://h:1", "RAG_STORE_MODE": "embedded", "RAG_LLM_BASE_URL": "http://l/v1", "RAG_LLM_MODE": "fake"})
    assert s.store.mode == "embedded" and s.llm.mode == "fake"


@pytest.mark.parametrize(
    "legacy, mode, model",
    [("use-multilingual", "use", None), ("e5", "e5", None), ("fake", "fake", None), ("/models/bge-small-zh-v1.5", "sentence-transformers", "/models/bge-small-zh-v1.5")],
)
def test_the_earlier_rag_embedding_variable_still_works(legacy, mode, model):
    embedding = load_settings({"RAG_EMBEDDING": legacy}).embedding
    assert (embedding.mode, embedding.model) == (mode, model)


@pytest.mark.parametrize(
    "raw, shown",
    [("nocolon", "nocolon"), ("user:", "user:"), (":password", ":password"), ("a:b,,c:d", "空项")],
)
def test_malformed_auth_is_refused_with_the_expected_form(raw, shown):
    with pytest.raises(SettingsError, match="RAG_AUTH") as info:
        load_settings({"RAG_AUTH": raw})
    assert shown in str(info.value) and "用户名:密码" in str(info.value)


def test_blank_auth_means_no_users():
    assert load_settings({"RAG_AUTH": "   "}).serve.auth == ()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RAG_EMBEDDING_MODE": "bert"}, "RAG_EMBEDDING_MODE"),
        ({"RAG_STORE_MODE": "cloud"}, "RAG_STORE_MODE"),
        ({"RAG_LLM_MODE": "gpt"}, "RAG_LLM_MODE"),
        ({"RAG_SEMANTIC": "bert"}, "RAG_SEMANTIC"),
        ({"RAG_SENTENCE_SEARCH": "maybe"}, "RAG_SENTENCE_SEARCH"),
        ({"RAG_EMBEDDING_MODE": "sentence-transformers"}, "RAG_EMBEDDING_MODEL"),
        ({"RAG_STORE_MODE": "server"}, "RAG_CHROMA_URL"),
        ({"RAG_LLM_MODE": "openai", "RAG_LLM_BASE_URL": "http://l/v1"}, "RAG_LLM_MODEL"),
        ({"RAG_CHUNK_MAX_CHARS": "many"}, "应为数字"),
        ({"RAG_LLM_TIMEOUT": "soon"}, "RAG_LLM_TIMEOUT"),
    ],
)
def test_unusable_settings_are_refused_in_chinese(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_copies_change_only_what_they_name(tmp_path):
    s = load_settings({"RAG_INDEX_DIR": str(tmp_path / "a")})
    other = s.with_index(tmp_path / "b")
    assert other.index_dir == (tmp_path / "b").resolve() and s.index_dir == (tmp_path / "a").resolve()
    assert s.with_index(None) is s
    fake = s.with_(llm={"mode": "fake"}, answer={"semantic": "off", "org": "青禾县审计局"})
    assert (fake.llm.mode, fake.answer.semantic, fake.answer.org) == ("fake", "off", "青禾县审计局")
    assert fake.answer.max_question_chars == s.answer.max_question_chars and fake.embedding == s.embedding
    assert s.llm.mode == "none"  # frozen: the original is untouched


def test_describe_lists_every_setting_and_hides_secrets():
    s = load_settings({"RAG_AUTH": "staff:s3cret", "RAG_LLM_API_KEY": "sk-123"})
    rows = {name: (env, value, text) for name, env, value, text in describe(s)}
    assert rows["index_dir"][0] == "RAG_INDEX_DIR"
    for name in ("embedding.mode", "store.chroma_url", "ingest.chunk_max_chars", "retrieval.candidates", "answer.org", "answer.semantic",
                 "llm.base_url", "serve.auth", "serve.max_upload_bytes", "eval.dev_set"):
        assert name in rows and rows[name][0].startswith("RAG_") and rows[name][2], name
    assert rows["serve.auth"][1] == "***" and rows["llm.api_key"][1] == "***"
    assert "s3cret" not in repr(describe(s)) and "sk-123" not in repr(describe(s))


def test_cli_settings_prints_the_table_and_refuses_bad_auth(monkeypatch, capsys):
    from rag.cli import main

    monkeypatch.setenv("RAG_ORG", "开封市审计局")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "RAG_ORG" in out and "开封市审计局" in out and "answer.max_question_chars" in out
    monkeypatch.setenv("RAG_AUTH", "no-password")
    assert main(["settings"]) == 2
    assert "RAG_AUTH" in capsys.readouterr().err
