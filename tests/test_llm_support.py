"""LLM answers are checked by meaning (issue 14): the FAKE paraphrasing model's faithful sentences are
kept with their [n]; the FAKE altering model's changed facts are dropped — through `rag ask` and `/ask`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import REGULATIONS, SAMPLE_REPORT, free_port
from fake_openai import FakeOpenAIServer

pytestmark = pytest.mark.slow
QUESTION = "审计法第四十四条"


def _env(index_dir, server: FakeOpenAIServer) -> dict:
    env = dict(os.environ, RAG_INDEX_DIR=str(index_dir), RAG_LLM_BASE_URL=server.url, RAG_LLM_MODEL="fake-model", RAG_LLM_TIMEOUT="20")
    env.pop("RAG_CHROMA_URL", None)
    return env


@pytest.fixture(scope="module")
def llm_index(tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("llm-index")
    env = dict(os.environ, RAG_INDEX_DIR=str(index_dir))
    subprocess.run([sys.executable, "-m", "rag", "ingest", "--quiet", str(SAMPLE_REPORT), str(REGULATIONS / "audit-law.md")],
                   env=env, check=True, capture_output=True)
    return index_dir


def _ask(index_dir, server) -> dict:
    done = subprocess.run([sys.executable, "-m", "rag", "ask", "--json", QUESTION], env=_env(index_dir, server),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_faithful_paraphrase_is_kept_through_rag_ask(llm_index):
    with FakeOpenAIServer() as server:
        server.mode = "paraphrase"
        answer = _ask(llm_index, server)
    assert answer["mode"] == "llm" and not answer["refused"]
    assert "10日内" in answer["answer"] and "交给" in answer["answer"]  # the model's own words survived the check
    assert answer["answer"].count("[1]") >= 2 and answer["citations"][0]["article"] == "第四十四条"


def test_altered_facts_are_dropped_through_rag_ask(llm_index):
    with FakeOpenAIServer() as server:
        server.mode = "alter"
        answer = _ask(llm_index, server)
    assert "三十日" not in answer["answer"] and "30日" not in answer["answer"] and "不得" not in answer["answer"]
    assert any("删除" in n or "抽取式" in n for n in answer["notices"])


def test_both_models_through_the_ask_api(llm_index):
    from gradio_client import Client
    from test_ui import wait_http

    with FakeOpenAIServer() as server:
        port = free_port()
        log = open(llm_index / "serve-llm.log", "wb")  # noqa: SIM115  (the server writes to it until stopped)
        proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)], env=_env(llm_index, server),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_http(url, timeout=120)
            client = Client(url, verbose=False)
            server.mode = "paraphrase"
            kept = client.predict(QUESTION, api_name="/ask")
            server.mode = "alter"
            started = time.monotonic()
            dropped = client.predict(QUESTION, api_name="/ask")
            assert time.monotonic() - started < 120
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
    assert kept["mode"] == "llm" and "交给" in kept["answer"]
    assert "三十日" not in dropped["answer"] and "不得" not in dropped["answer"]
