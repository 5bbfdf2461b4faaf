"""rag.query: cutting and validating a question, law names and articles, unknown laws, follow-ups."""

from __future__ import annotations

import pytest

from rag.orgs import build_org_catalog
from rag.query import (
    QuestionError,
    analyze_query,
    asked_clauses,
    asked_years,
    asking_part,
    build_law_catalog,
    find_laws,
    prepare_question,
    question_parts,
    resolve_followup,
    unknown_laws,
)
from rag.schema import DocRecord
from rag.text import normalize_question


def law(source: str, title: str) -> DocRecord:
    return DocRecord(source, f"{source}.md", title, "law", 2021, "全国人民代表大会常务委员会", "0" * 64, 3, 100)


LAWS = [
    law("audit-law", "中华人民共和国审计法"),
    law("audit-law-implementing-regulations", "中华人民共和国审计法实施条例"),
    law("administrative-penalty-law", "中华人民共和国行政处罚法"),
    law("administrative-compulsion-law", "中华人民共和国行政强制法"),
    law("administrative-reconsideration-law", "中华人民共和国行政复议法"),
    law("administrative-litigation-law", "中华人民共和国行政诉讼法"),
    law("government-information-disclosure-regulations", "中华人民共和国政府信息公开条例"),
    law("petition-work-regulations", "信访工作条例"),
    law("henan-audit", "河南省政府投资建设项目审计条例"),
]
REPORT = DocRecord("kaifeng", "kaifeng.txt", "开封市审计局2024年法治政府建设情况报告", "report", 2024, "开封市审计局", "1" * 64, 30, 5000)


@pytest.fixture(scope="module")
def catalog():
    return build_law_catalog(LAWS + [REPORT], {"信息公开条例": "政府信息公开条例"})


def plan(question: str, catalog):
    return analyze_query(normalize_question(question), catalog, build_org_catalog([REPORT]))


def test_the_cut_comes_first_and_is_echoed():
    cut, normalised, notices = prepare_question("审计" * 300, 500)
    assert len(cut) == 500 and cut == ("审计" * 300)[:500]
    assert notices == ["问题过长（600字），已截取前500字进行检索。"]
    cut, normalised, notices = prepare_question("  審計法第５條  ", 500)
    assert (cut, normalised, notices) == ("審計法第５條", "审计法第5条", [])
    assert "只支持用中文提问" in prepare_question("What does the audit law say?", 500)[2][0]


@pytest.mark.parametrize("question", ["", "   \n", None])
def test_an_empty_question_is_an_error(question):
    with pytest.raises(QuestionError, match="不能为空"):
        prepare_question(question, 500)


def test_law_names_audit_law_is_not_its_implementing_regulations(catalog):
    both = find_laws("审计法第五条和审计法实施条例第五条有什么不同", catalog)
    assert {a.source for a in both} == {"audit-law", "audit-law-implementing-regulations"}
    assert [a.source for a in find_laws("审计法实施条例第一条", catalog)] == ["audit-law-implementing-regulations"]
    assert [a.source for a in find_laws("审计法规定审计机关独立行使审计监督权吗", catalog)] == ["audit-law"]
    assert [a.source for a in find_laws("中华人民共和国审计法第44条", catalog)] == ["audit-law"]
    # A short form from the corpus's aliases.toml.
    assert [a.source for a in find_laws("信息公开条例第十条", catalog)] == ["government-information-disclosure-regulations"]
    # A report is not a law, whatever its title.
    assert find_laws("开封市审计局2024年法治政府建设情况报告", catalog) == []


def test_unknown_laws_are_named(catalog):
    assert unknown_laws("《政府采购法》第十条", catalog) == ["政府采购法"]
    assert unknown_laws("治安管理处罚法第十条规定了什么", catalog) == ["治安管理处罚法"]
    assert unknown_laws("《中华人民共和国审计法》第五条", catalog) == []
    assert unknown_laws("为什么审计法第五条这样规定", catalog) == []  # the prefix is not part of the name
    # named without 《》 or an article, when the question cites it
    assert unknown_laws("民法典规定的诉讼时效是几年？", catalog) == ["民法典"]
    assert unknown_laws("按照税法规定要交多少税", catalog) == ["税法"]
    assert unknown_laws("劳动合同法里试用期最长多久", catalog) == ["劳动合同法"]
    assert unknown_laws("审计法规定审计机关独立行使审计监督权吗", catalog) == []
    assert unknown_laws("行政执法中发现案子可能构成犯罪怎么办", catalog) == []  # 执法 is not a law
    assert unknown_laws("局长在2024年述职述法里说移送了几条线索？", catalog) == []  # 述法: a verb and 法
    assert unknown_laws("党组会学法里学了哪些内容？", catalog) == []
    assert unknown_laws("依照本法规定，依法行政是什么", catalog) == []
    assert unknown_laws("被审计单位违反审计法规定怎么办", catalog) == []
    assert unknown_laws("《法治中国建设规划（2020—2025年）》提出了什么", catalog) == []  # a plan with years, not a law


def test_regulations_named_without_marks(catalog):
    assert unknown_laws("国家审计准则里审计工作底稿要保存多少年？", catalog) == ["国家审计准则"]
    assert unknown_laws("那个经济责任审计规定里说离任审计多久完成？", catalog) == ["经济责任审计规定"]
    # jieba joins 法 and 里 (法里/ns): the name is still found.
    assert unknown_laws("想问下政府采购法里对单一来源采购怎么规定？", catalog) == ["政府采购法"]
    assert unknown_laws("电子商务法里平台该负什么责任？", catalog) == ["电子商务法"]
    # Not names: the kind alone, after a citing word, or after a place alone.
    assert unknown_laws("按规定对单位能罚多少钱？", catalog) == []
    assert unknown_laws("有没有规定明确不许这样？", catalog) == []
    assert unknown_laws("不交给公安。规定里允许这么干吗？", catalog) == []
    assert unknown_laws("河南省条例里说的以政府投资为主怎么认定？", catalog) == []
    # Loose short forms of indexed titles, said without 《》, are known.
    assert unknown_laws("按信访条例，来访的人能推选几个代表？", catalog) == []
    assert unknown_laws("河南那部政府投资建设项目审计条例里，多久出审计报告？", catalog) == []
    # In 《》 a name is given in full: a near title is another regulation.
    assert unknown_laws("按《河南省审计条例》整改期限是多少天？", catalog) == ["河南省审计条例"]


@pytest.mark.parametrize(
    "question, articles",
    [("审计法第四十四条", (44,)), ("审计法第44条", (44,)), ("审计法第 44 条", (44,)), ("審計法第五條", (5,)), ("行政处罚法第九条和第十条", (9, 10)),
     ("审计法44条规定了什么", (44,)), ("《中华人民共和国审计法》 44条", (44,)), ("审计法一共有多少条", ())],
)
def test_article_references(catalog, question, articles):
    p = plan(question, catalog)
    assert p.articles == articles and [a.source for a in p.laws][:1] in (["audit-law"], ["administrative-penalty-law"])


def test_question_cues_and_focus(catalog):
    count = plan("开封市审计局有多少名在编人员？", catalog)
    assert count.is_quantity and count.asked_unit == "名" and count.focus == ("在编人员",)
    assert [e.issuer for e in count.orgs.known] == ["开封市审计局"] and count.wants_report
    listing = plan("行政处罚的种类有哪些？", catalog)
    assert listing.is_list and "种类" in listing.tokens and not listing.wants_report
    # 年度 alone is a law's word too (预算年度, 上一年度, 年度述职); a report is still asked for by its cues
    assert not plan("预算年度是从哪天到哪天", catalog).wants_report
    assert not plan("领导干部学法用法的情况要不要写进年度述职里？", catalog).wants_report
    assert plan("2024年度报告里主动公开了多少条政府信息？", catalog).wants_report
    yes_no = plan("审计机关可以查询被审计单位的存款吗？", catalog)
    assert yes_no.is_yes_no
    year = plan("2023年主动公开了多少条政府信息？", catalog)
    assert year.years == (2023,) and year.asked_unit == "条"
    assert plan("？？？！！。。", catalog).tokens == ()


def test_followups(catalog):
    def resolve(question, previous):
        return resolve_followup(normalize_question(question), previous, catalog)

    # Another law in place of the previous one.
    assert resolve("那行政强制呢？", "行政处罚法规定了哪些种类？") == "行政强制法规定了哪些种类？"
    # Another article of the same law.
    assert resolve("第十三条呢？", "审计法第五条是怎么规定的？") == "审计法第十三条"
    # 其中…: the previous question is kept as context.
    assert resolve("其中审计结果公告几条？", "青禾县审计局2024年主动公开政府信息多少条？").startswith("青禾县审计局2024年主动公开政府信息多少条？")
    # A question that names its own subject stands on its own.
    assert resolve("行政诉讼的起诉期限呢？", "行政复议法规定的申请期限是多久？") == normalize_question("行政诉讼的起诉期限呢？")
    assert resolve("审计法第六条", "审计法第五条") == "审计法第六条"
    # No previous question: nothing to resolve.
    assert resolve("那行政强制呢？", None) == normalize_question("那行政强制呢？")


def test_question_analysis_does_not_depend_on_the_hash_seed():
    """Word lists are sets; anything built from them in order must not follow set order (answers
    would differ from one process to the next)."""
    import os
    import subprocess
    import sys

    code = (
        "from rag.query import question_grams; from rag.evidence import _patterns; "
        "print(question_grams('公职人员的政务处分一共有哪几种？请问具体包括哪些'), _patterns()['quantity'].pattern)"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3", "4")
    }
    assert len(outputs) == 1


def test_the_asked_clause_is_the_last_one_with_a_question_word():
    # 哪天 sets the scene here (万一哪天): the question asks for a period, not a day.
    assert asked_clauses("万一哪天机关执法出错，对方要求国家赔偿，多长时间内提出才有效？") == "多长时间内提出才有效"
    assert asked_clauses("活动从哪天开始？总结材料最晚哪天交？") == "活动从哪天开始，总结材料最晚哪天交"
    assert asked_clauses("报告的落款日期？") == "报告的落款日期"  # no question word: the whole sentence


def test_the_asking_part_leaves_out_the_story_told_first():
    story = "我在镇上开了个小饭馆，前天被罚了一百五。我媳妇说罚款都去银行交。他们当场收钱对不对？"
    assert asking_part(story) == "他们当场收钱对不对？"
    # every sentence asks, or none does: the whole question
    assert asking_part("复议要多少天？最多还能延长多少天？") == "复议要多少天？最多还能延长多少天？"
    assert asking_part("报告的落款日期。") == "报告的落款日期。"
    # what follows the first asking sentence stays, a follow-up typed without a question mark too
    assert asking_part("监察机关留置最长多长时间？能延长吗") == "监察机关留置最长多长时间？能延长吗"
    assert asking_part("我手上只有去年的年报。他们主动公开了多少篇？能延长吗") == "他们主动公开了多少篇？能延长吗"
    # a story's 这几天 asks nothing when the question marks what it asks
    told = "我这几天在外地进货，今天回来才看到。听证得在几天内提出来？开听证要不要我出钱？"
    assert asking_part(told) == "听证得在几天内提出来？开听证要不要我出钱？"
    # the parts of a several-part question are its asking sentences, not the story before them
    assert question_parts(told) == ["听证得在几天内提出来", "开听证要不要我出钱"]


def test_the_years_asked_are_those_of_the_asking_sentence():
    """A year told in the story (the report at hand) is not the year asked about; one year, or none in the
    asking sentence, keeps every year the question names."""
    assert asked_years("我手上只有2025年度的年报。领导想做前后对比。他们2024年主动公开了多少篇信息？") == (2024,)
    assert asked_years("我翻了2024年的报告。我想知道2023年主动公开了多少条，好跟2024年的比一比。") == (2023,)
    assert asked_years("我局2023年主动公开了多少条政府信息？好跟2024年的放在一起比。") == (2023,)
    # a year that scopes the asking clause in its own sentence stays (a 2023 report's plan for 2024)
    assert asked_years("金安区2023年的工作报告里说，2024年要把督查工作做成一个什么样的闭环？") == (2023, 2024)
    assert asked_years("我手上有2024年和2025年的年报。主动公开了多少篇？") == (2024, 2025)
    assert asked_years("2023年和2024年分别公开了多少条？") == (2023, 2024)
    assert asked_years("2024年，我局开展了哪些培训？") == (2024,)
