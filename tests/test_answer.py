"""Answers: article look-up, aliases, refusals, years, lists, follow-ups, filters, dev-set floor."""

from __future__ import annotations

import json
import re

import pytest

from conftest import SHARED
from rag.answer import REFUSAL, QuestionError, Turn, resolve_followup
from rag.evaluation import load_dataset, run_system, system_predictor

REPORT = "kaifeng-audit-bureau-2024-rule-of-law-report"


def markers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


@pytest.mark.parametrize(
    "question, source, article",
    [
        ("审计法第四十四条", "audit-law", "第四十四条"),
        ("审计法第44条", "audit-law", "第四十四条"),
        ("行政处罚法第六十四条规定了什么", "administrative-penalty-law", "第六十四条"),
        ("《中华人民共和国行政强制法》第25条", "administrative-compulsion-law", "第二十五条"),
        ("审计法实施条例第一条", "audit-law-implementing-regulations", "第一条"),
        ("審計法第五條", "audit-law", "第五条"),
    ],
)
def test_article_lookup_comes_first(assistant, question, source, article):
    answer = assistant.ask(question)
    assert not answer.refused
    first = answer.citations[0]
    assert (first.source, first.article) == (source, article)
    assert answer.answer.startswith(article)


def test_short_name_does_not_match_implementing_regulations(assistant):
    plan = assistant.retriever.plan("审计法第五条和审计法实施条例第五条有什么不同")
    assert [law.source for law in plan.laws] == ["audit-law-implementing-regulations", "audit-law"] or {
        law.source for law in plan.laws
    } == {"audit-law", "audit-law-implementing-regulations"}
    only = assistant.retriever.plan("审计法规定审计机关独立行使审计监督权吗")
    assert [law.source for law in only.laws] == ["audit-law"]


def test_missing_article_is_refused_not_invented(assistant):
    answer = assistant.ask("审计法第九十九条")
    assert answer.refused
    assert "第九十九条" in answer.answer and REFUSAL in answer.answer


def test_every_sentence_is_cited_and_ids_run_in_order(assistant):
    answer = assistant.ask("规范性文件发布后多少日内向市司法局备案？")
    assert not answer.refused
    assert "20日内向市司法局备案" in answer.answer
    lines = [line for line in answer.answer.split("\n") if line.strip()]
    assert all(re.search(r"\[\d+\]$", line) for line in lines)
    ids = markers(answer.answer)
    assert ids[0] == 1 and sorted(set(ids)) == [c.id for c in answer.citations]
    assert answer.citations[0].source == REPORT


@pytest.mark.parametrize(
    "question",
    ["开封市审计局有多少名在编人员？", "明天开封的天气怎么样？", "个人所得税的起征点是多少？", "审计局局长的工资是多少？"],
)
def test_refusals(assistant, question):
    answer = assistant.ask(question)
    assert answer.refused
    assert answer.answer.startswith(REFUSAL)
    assert not markers(answer.answer)


def test_year_not_covered_is_refused_with_caveat(assistant):
    answer = assistant.ask("开封市审计局2023年主动公开了多少条政府信息？")
    assert answer.refused
    assert "2023年" in answer.answer and "2024年" in answer.answer
    assert "554" not in answer.answer
    covered = assistant.ask("2024年主动公开了多少条政府信息？")
    assert not covered.refused and "554条" in covered.answer


def test_list_question_gathers_subsections(assistant):
    answer = assistant.ask("报告中提到的存在问题有哪些？")
    assert "学习宣传习近平法治思想不够系统深入" in answer.answer
    assert "审计执法队伍大数据运用能力仍需加强" in answer.answer
    assert len(answer.citations) == 2


def test_list_question_on_a_law_gives_the_items(assistant):
    answer = assistant.ask("行政处罚的种类有哪些？")
    assert "警告、通报批评" in answer.answer and "行政拘留" in answer.answer
    assert answer.citations[0].article == "第九条"


def test_followups_are_resolved(assistant):
    first = "行政处罚法规定了哪些种类？"
    history = [Turn(first, first)]
    assert resolve_followup("那行政强制呢？", history, assistant.retriever) == "行政强制法规定了哪些种类？"
    answer = assistant.ask("那行政强制呢？", history=history)
    assert "扣押财物" in answer.answer
    assert answer.citations[0].source == "administrative-compulsion-law"
    article = [Turn("审计法第五条是怎么规定的？", "审计法第五条是怎么规定的？")]
    follow = assistant.ask("第十三条呢？", history=article)
    assert follow.citations[0].article == "第十三条" and follow.citations[0].source == "audit-law"


def test_filters(assistant):
    laws_only = assistant.ask("行政复议案件", doc_type="law")
    assert all(c.source != REPORT for c in laws_only.citations)
    one_source = assistant.retriever.search("听证", k=5, source="administrative-penalty-law")
    assert {h.source for h in one_source.hits} == {"administrative-penalty-law"}
    reports = assistant.retriever.search("听证", k=5, doc_type="report")
    assert {h.source for h in reports.hits} == {REPORT}


def test_bad_questions(assistant):
    with pytest.raises(QuestionError, match="不能为空"):
        assistant.ask("   ")
    long = assistant.ask("审计机关" * 2600)
    assert any("问题过长" in n for n in long.notices)
    punctuation = assistant.ask("？？？！！。。")
    assert punctuation.refused


def test_langchain_retriever(assistant):
    docs = assistant.retriever.as_langchain(k=3).invoke("审计署向谁提出审计结果报告")
    assert len(docs) == 3
    assert docs[0].metadata["source"] in {"audit-law", "audit-law-implementing-regulations", "central-budget-execution-audit-supervision-interim-measures"}
    assert "section" in docs[0].metadata


def test_dev_set_quality_floor(assistant):
    """Regression floor on ../shared/eval/qa_dev.jsonl (measured 0.95 / 0 false refusals)."""
    metrics, _ = run_system(load_dataset(SHARED / "eval" / "qa_dev.jsonl"), system_predictor(assistant))
    assert metrics["answer_accuracy"] >= 0.85
    assert metrics["refusal_recall"] == 1.0
    assert metrics["false_refusal_rate"] <= 0.05
    assert metrics["citation_precision"] >= 0.95


def test_cli_ask_json(corpus_index, capsys):
    from rag.cli import main

    index_dir = str(corpus_index.settings.index_dir)
    assert main(["ask", "--index", index_dir, "--json", "法律顾问来自哪家律师事务所？"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"question", "answer", "refused", "citations", "timings_ms"}
    assert out["refused"] is False and "河南誉齐临律师事务所" in out["answer"]
    citation = out["citations"][0]
    assert set(citation) >= {"id", "source", "title", "section", "article", "text", "score"}
    assert citation["id"] == 1 and "河南誉齐临律师事务所" in citation["text"]
    assert main(["ask", "--index", index_dir, ""]) == 2
    assert "不能为空" in capsys.readouterr().err
    assert main(["ask", "--index", index_dir, "--type", "law", "--k", "3", "听证"]) == 0


def test_a_count_must_count_what_was_asked(assistant):
    """几个审计项目 is not answered with 2名同志 or 5个程序."""
    answer = assistant.ask("开封市审计局完成了多少个审计项目？")
    assert answer.refused
    assert not assistant.ask("审计局聘请了几名同志为公职律师？").refused


def test_other_years_and_other_bureaus_do_not_answer(draft_index):
    from rag.answer import Assistant

    assistant = Assistant(draft_index, draft_index.settings)  # has a 2024 开封 report and a made-up 2023 县 report
    kaifeng_2023 = assistant.ask("开封市审计局2023年主动公开了多少条政府信息？")
    assert kaifeng_2023.refused and "554" not in kaifeng_2023.answer
    county_2023 = assistant.ask("2023年县审计局完成了多少个审计项目？")
    assert not county_2023.refused and "23个" in county_2023.answer
    assert county_2023.citations[0].source == "fictional-county-audit-bureau-2023-report"
    kaifeng_2024 = assistant.ask("开封市审计局2024年主动公开了多少条政府信息？")
    assert "554条" in kaifeng_2024.answer
