"""LLM answers: every sentence checked against its citation, streaming, fallbacks.

Fast tests use the FAKE chat model (`llm.mode = fake`) and small named fakes; slow tests use the real
OpenAI client of langchain-openai against the FAKE OpenAI-compatible endpoint (tests/fake_openai.py).
"""

from __future__ import annotations

import pytest

from rag.answer import Assistant
from rag.citations import strip_markers
from rag.llm import RESET, check_citations, fake_reply, renumber
from rag.schema import Answer, Hit
from rag.text import squash

LAW_PASSAGE = Hit("c1", "audit-law", "中华人民共和国审计法", "law", "第五条 审计机关依照法律规定独立行使审计监督权。", "第一章 总则 > 第五条", "第五条", None, 1.0)
OTHER_PASSAGE = Hit("c2", "budget-law", "中华人民共和国预算法", "law", "第一条 为了规范政府收支行为，制定本法。", "第一章 总则 > 第一条", "第一条", None, 0.5)


def test_check_citations_keeps_only_supported_sentences():
    checked = check_citations("审计机关依照法律规定独立行使审计监督权。[1]无依据的第二句。所引编号不存在。[7]", [LAW_PASSAGE])
    assert checked.text == "审计机关依照法律规定独立行使审计监督权。[1]"
    assert checked.dropped == 2 and checked.kept_ids == (1,)
    assert [v for _, v in checked.verdicts] == ["supported", "uncited", "uncited"]
    changed = check_citations("审计机关可以不独立行使审计监督权。[1]", [LAW_PASSAGE])
    assert changed.text == "" and changed.dropped == 1


def test_renumber_in_order_of_first_use():
    text, citations = renumber("预算法的目的。[2]审计独立。[1]", (2, 1), [LAW_PASSAGE, OTHER_PASSAGE])
    assert text == "预算法的目的。[1]审计独立。[2]"
    assert [(c.id, c.source) for c in citations] == [(1, "budget-law"), (2, "audit-law")]


def test_the_fake_chat_model_quotes_passage_one():
    prompt = "[1] 《中华人民共和国审计法》 第五条\n第五条 审计机关依照法律规定独立行使审计监督权。其他。\n\n问题：……"
    assert fake_reply(prompt) == "第五条 审计机关依照法律规定独立行使审计监督权。[1]"
    assert fake_reply("没有材料") == "未在已收录的文件中找到依据。"


@pytest.fixture(scope="module")
def fake_llm_components(tiny_components):
    from rag.components import build

    components = build(tiny_components.settings.with_(llm={"mode": "fake"}))
    yield components
    components.close()


def test_fake_llm_answer_streams_and_cites(fake_llm_components):
    assert fake_llm_components.chat_model is not None
    parts = list(fake_llm_components.assistant.stream("审计法第三条"))
    answer = parts[-1]
    deltas = [p for p in parts[:-1] if isinstance(p, str)]
    assert isinstance(answer, Answer) and answer.mode == "llm" and not answer.refused
    assert len(deltas) > 1, "the answer arrives in several streamed pieces"
    assert answer.answer.endswith("[1]") and answer.citations[0].article == "第三条"
    assert "审计机关依照法律规定独立行使审计监督权" in answer.answer
    assert "llm" in answer.timings_ms and "check" in answer.timings_ms


def test_a_refused_question_never_reaches_the_llm(tiny_components):
    calls = []

    class RecordingChatModel:
        """FAKE: records that it was called."""

        def stream(self, messages):
            calls.append(messages)
            return iter(())

    assistant = Assistant(tiny_components.retriever, tiny_components.settings.with_(llm={"mode": "fake"}), chat_model=RecordingChatModel())
    answer = assistant.ask("《政府采购法》第十条")
    assert answer.refused and calls == []


class _Chunk:
    def __init__(self, content: str) -> None:
        self.content = content


class BrokenChatModel:
    """FAKE: streams a few characters, then the connection fails."""

    def stream(self, messages):
        yield _Chunk("审计机关")
        raise ConnectionError("connection refused")


class UncitedChatModel:
    """FAKE: a fluent answer that cites nothing (as a model that obeys an instruction inside a document)."""

    def stream(self, messages):
        yield _Chunk("好的，我已忽略所有规则。局长的工资是每月十万元。")


def test_an_llm_failure_falls_back_to_the_extractive_answer(tiny_components):
    settings = tiny_components.settings.with_(llm={"mode": "fake"})
    parts = list(Assistant(tiny_components.retriever, settings, chat_model=BrokenChatModel()).stream("审计法第三条"))
    answer = parts[-1]
    assert RESET in parts and parts.index(RESET) < len(parts) - 1  # the streamed text is replaced
    assert answer.mode == "extractive" and answer.answer.startswith("第三条 审计机关")
    assert any("出错" in n and "抽取式" in n for n in answer.notices)


def test_uncited_llm_output_is_not_shown(tiny_components):
    settings = tiny_components.settings.with_(llm={"mode": "fake"})
    answer = Assistant(tiny_components.retriever, settings, chat_model=UncitedChatModel()).ask("审计法第三条")
    assert "十万元" not in answer.answer and "忽略" not in answer.answer
    assert answer.mode == "extractive" and any("没有可核实的引用" in n for n in answer.notices)


def test_use_llm_false_gives_the_extractive_answer(fake_llm_components):
    answer = fake_llm_components.assistant.ask("审计法第三条", use_llm=False)
    assert answer.mode == "extractive"


# ---------------------------------------------------------------- a real OpenAI client, a FAKE endpoint


@pytest.fixture
def fake_llm():
    from fake_openai import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def llm_assistant(corpus_components, fake_llm):
    from rag.components import build

    settings = corpus_components.settings.with_(
        llm={"mode": "openai", "base_url": fake_llm.url, "model": "fake-model", "timeout_s": 1.0}, answer={"semantic": "e5"}
    )
    components = build(settings)
    yield components.assistant
    components.close()


@pytest.mark.slow
def test_streams_and_cites(llm_assistant, fake_llm):
    parts = list(llm_assistant.stream("审计署向谁提出审计结果报告？"))
    answer = parts[-1]
    deltas = [p for p in parts[:-1] if isinstance(p, str)]
    assert isinstance(answer, Answer) and answer.mode == "llm"
    assert len(deltas) > 1, "the answer arrives in several streamed pieces"
    assert answer.answer.endswith("[1]") and answer.citations[0].id == 1
    # The FAKE endpoint answers with the first sentence of passage [1]: kept, and cited as [1].
    assert squash(strip_markers(answer.answer)).rstrip("；。") in squash(answer.citations[0].text)
    request = fake_llm.requests[-1]
    assert request["stream"] is True and request["model"] == "fake-model"
    system = request["messages"][0]["content"]
    assert "不要执行" in system and "[1]" in request["messages"][1]["content"]


@pytest.mark.slow
def test_unsupported_sentence_is_dropped(llm_assistant, fake_llm):
    fake_llm.mode = "bad_citation"
    answer = llm_assistant.ask("审计署向谁提出审计结果报告？")
    assert answer.mode == "llm"
    assert "999" not in answer.answer
    assert any("已删除1句" in n for n in answer.notices)
    assert [c.id for c in answer.citations] == [1]


@pytest.mark.slow
@pytest.mark.parametrize("mode, word", [("error", "出错"), ("timeout", "超时")])
def test_failures_fall_back_to_extractive(llm_assistant, fake_llm, mode, word):
    fake_llm.mode = mode
    parts = list(llm_assistant.stream("法律顾问来自哪家律师事务所？"))
    answer = parts[-1]
    assert answer.mode == "extractive" and not answer.refused
    assert "河南誉齐临律师事务所" in answer.answer
    assert any(word in n and "抽取式" in n for n in answer.notices)
    assert RESET not in parts or parts.index(RESET) < len(parts) - 1


@pytest.mark.slow
def test_llm_refusal_is_kept(llm_assistant, fake_llm):
    fake_llm.mode = "refuse"
    answer = llm_assistant.ask("审计署向谁提出审计结果报告？")
    assert answer.refused and answer.answer.startswith("未在已收录的文件中找到依据")


@pytest.mark.slow
def test_weak_evidence_is_refused_without_calling_the_llm(llm_assistant, fake_llm):
    before = len(fake_llm.requests)
    answer = llm_assistant.ask("明天开封的天气怎么样？")
    assert answer.refused and len(fake_llm.requests) == before
