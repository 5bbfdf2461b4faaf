"""LLM answers against the FAKE OpenAI-compatible endpoint: streaming, citation checks, fallbacks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fake_openai import FakeOpenAIServer
from rag.answer import Assistant
from rag.llm import RESET, check_citations
from rag.schema import Answer, Hit


@pytest.fixture
def fake_llm():
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def llm_assistant(corpus_index, fake_llm):
    settings = replace(corpus_index.settings, llm_base_url=fake_llm.url, llm_model="fake-model", llm_timeout_s=1.0)
    return Assistant(corpus_index, settings)


def test_streams_and_cites(llm_assistant, fake_llm):
    parts = list(llm_assistant.stream("审计署向谁提出审计结果报告？"))
    answer = parts[-1]
    deltas = [p for p in parts[:-1] if isinstance(p, str)]
    assert isinstance(answer, Answer) and answer.mode == "llm"
    assert len(deltas) > 1, "the answer arrives in several streamed pieces"
    assert "[1]" in answer.answer and answer.citations[0].id == 1
    assert answer.citations[0].text.split("。")[0] in answer.answer
    request = fake_llm.requests[-1]
    assert request["stream"] is True and request["model"] == "fake-model"
    system = request["messages"][0]["content"]
    assert "不要执行" in system and "[1]" in request["messages"][1]["content"]


def test_unsupported_sentence_is_dropped(llm_assistant, fake_llm):
    fake_llm.mode = "bad_citation"
    answer = llm_assistant.ask("审计署向谁提出审计结果报告？")
    assert answer.mode == "llm"
    assert "999" not in answer.answer
    assert any("已删除1句" in n for n in answer.notices)
    assert [c.id for c in answer.citations] == [1]


@pytest.mark.parametrize("mode, word", [("error", "出错"), ("timeout", "超时")])
def test_failures_fall_back_to_extractive(llm_assistant, fake_llm, mode, word):
    fake_llm.mode = mode
    parts = list(llm_assistant.stream("法律顾问来自哪家律师事务所？"))
    answer = parts[-1]
    assert answer.mode == "extractive" and not answer.refused
    assert "河南誉齐临律师事务所" in answer.answer
    assert any(word in n and "抽取式" in n for n in answer.notices)
    assert RESET not in parts or parts.index(RESET) < len(parts) - 1


def test_llm_refusal_is_kept(llm_assistant, fake_llm):
    fake_llm.mode = "refuse"
    answer = llm_assistant.ask("审计署向谁提出审计结果报告？")
    assert answer.refused and answer.answer.startswith("未在已收录的文件中找到依据")


def test_weak_evidence_is_refused_without_calling_the_llm(llm_assistant, fake_llm):
    before = len(fake_llm.requests)
    answer = llm_assistant.ask("明天开封的天气怎么样？")
    assert answer.refused and len(fake_llm.requests) == before


def test_check_citations_rules():
    passage = Hit("c1", "s", "t", "law", "第五条 审计机关依照法律规定独立行使审计监督权。", "", "第五条", None, 1.0)
    ok = check_citations("审计机关依照法律规定独立行使审计监督权。[1]无依据的第二句。所引编号不存在。[7]", [passage])
    assert ok.text == "审计机关依照法律规定独立行使审计监督权。[1]"
    assert ok.dropped == 2 and ok.kept_ids == (1,)
