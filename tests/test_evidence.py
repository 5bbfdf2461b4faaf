"""rag.evidence: coverage of question terms, question parts, the fitted models, candidate features."""

from __future__ import annotations

import json
import math

import pytest

from rag.evidence import (
    QUESTION_FEATURES,
    QUESTION_PRODUCTS,
    SENTENCE_FEATURES,
    AnswerModel,
    add_passage_gaps,
    coverage,
    gram_coverage,
    gram_weights,
    has_person_name,
    label_cue,
    score_candidates,
    term_credit,
    term_value,
    unit_matches,
)
from rag.query import question_parts
from rag.scorers import Blend, Logistic, Trees


def test_term_credit_and_coverage():
    assert term_credit("听取意见", "听取意见") == 1.0
    assert term_credit("听取意见", "依法听取当事人的意见") == 0.8  # a compound found in parts
    assert term_credit("听取意见", "无关的内容") == 0.0
    # a short form of a name the text writes in full, its characters in order within one clause
    assert term_credit("人大常委会", "在县第十八届人民代表大会常务委员会第二十一次会议上") == 0.8
    assert term_credit("发改委", "县发展和改革委员会") == 0.8
    assert term_credit("人大常委会", "人民代表大会，常务委员会") == 0.0
    assert term_credit("人大常委会", "人大代表和常务委员") < 0.8  # 会 missing: a part only
    weights = {"审计机关": 2.0, "独立": 1.0, "干涉": 1.0}
    assert coverage("审计机关独立行使", weights) == 0.75
    assert coverage("ＡＢ审计机关", {"ab": 1.0}) == 1.0  # widths folded, lower case
    assert coverage("任何文字", {}) == 0.0
    assert gram_coverage("审计", {"审计": 1.0, "机关": 1.0}) == 0.5
    # question terms are found in a text whichever numerals either writes (terms are made with figures in digits)
    from rag.segment import tokenize

    for asked in ("十日内提出书面意见", "10日内提出书面意见"):
        weights = {t: 1.0 for t in tokenize(asked)}
        assert coverage("自接到审计报告之日起十日内提出书面意见", weights) == 1.0
        assert coverage("自接到审计报告之日起10日内提出书面意见", weights) == 1.0


def test_question_parts_and_labels():
    assert question_parts("行政复议申请期限是多少天？最多还能延长多少天？") == ["行政复议申请期限是多少天", "最多还能延长多少天"]
    assert question_parts("审计法第五条") == []
    # two clauses joined by a comma, each with a question word of its own (everyday 啥 too)
    assert question_parts("现行行政处罚法是啥时候修订的，从哪天起施行？") == ["现行行政处罚法是啥时候修订的", "从哪天起施行"]
    assert question_parts("查封扣押期限多久，能延长多久") == ["查封扣押期限多久", "能延长多久"]
    # a clause that asks nothing stays with the question it leads to
    assert question_parts("被审计单位一直拖着不给资料，责令改正了还是不改，能罚多少钱？") == []
    assert question_parts("审计中发现线索，能不能不移送？移送要谁批准？") == ["审计中发现线索，能不能不移送", "移送要谁批准"]
    assert label_cue("这份报告的发文字号是什么？", "标题") and label_cue("报告抄送给了谁？", "落款")
    assert not label_cue("报告抄送给了谁？", "一、主要工作")
    assert label_cue("岫川市审计局2024年的法治政府建设报告是交给哪个单位的？", "抬头")  # everyday 交给 for 报送给
    assert label_cue("这份审计工作报告是谁在县人大常委会上作的？", "标题")  # the title block names the speaker


def test_logistic_and_model_files(tmp_path):
    model = Logistic(("a", "b"), (1.0, -2.0), 0.5, (0.0, 1.0), (1.0, 2.0))
    assert math.isclose(model.probability({"a": 1.0, "b": 3.0}), 1 / (1 + math.exp(-(0.5 + 1.0 - 2.0))))
    assert Logistic.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    fitted = AnswerModel.load()
    assert fitted.source.endswith("answer_model.json")
    assert set(fitted.sentence.names) <= set(SENTENCE_FEATURES) and set(fitted.answerable.names) <= set(QUESTION_FEATURES + QUESTION_PRODUCTS)
    assert 0.0 < fitted.refuse_below < 1.0
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert AnswerModel.load(broken).source == "default" and AnswerModel.load(tmp_path / "missing.json").source == "default"


def test_candidates_are_every_sentence_of_the_top_passages_with_features(tiny_components):
    retriever = tiny_components.retriever
    retrieval = retriever.search("青禾县审计局2023年开展了多少场普法活动？", k=8)
    snapshot = retrieval.snapshot
    scored, weights, features = score_candidates(retrieval.plan, retrieval, snapshot, AnswerModel.load(), 6)
    assert scored and [c.p for c in scored] == sorted((c.p for c in scored), reverse=True)
    assert all(0.0 <= c.p <= 1.0 for c in scored)
    assert set(scored[0].features) == set(SENTENCE_FEATURES)
    assert set(features) == set(QUESTION_FEATURES)
    # Each candidate is a sentence of its passage, at its span.
    assert all(c.hit.text[c.start : c.end] == c.text for c in scored)
    assert {c.hit.chunk_id for c in scored} <= {h.chunk_id for h in retrieval.hits[:6]}
    # The sentence holding the count covers the question's words best and matches the asked unit.
    fact = next(c for c in scored if "普法活动12场" in c.text)
    assert fact.features["cov_sentence"] == max(c.features["cov_sentence"] for c in scored)
    assert fact.features["unit_match"] == 1.0 and fact.features["year_match"] == 1.0 and fact.features["named_org_doc"] == 1.0
    assert "普法" in weights and features["is_quantity"] == 1.0


def test_term_value_is_the_share_of_terms_a_figure_follows():
    weights = {"邮编": 3.0, "综合股": 1.0}
    assert term_value("可与综合股联系（地址：桃城镇衙口街1号，邮编：362600）。", weights) == 0.75
    assert term_value("由综合股负责汇总整理，共分六个部分。", weights) == 0.0  # a clause apart
    assert term_value("留置时间不得超过三个月。", {"留置": 1.0}) == 1.0  # figures in words count
    assert term_value("邮编和地址见后文。", weights) == 0.0 and term_value("任意文字", {}) == 0.0


def test_unit_matching(tiny_components):
    plan = tiny_components.retriever.plan("聘请了几名法律顾问？")
    assert plan.asked_unit == "名"
    assert unit_matches(plan, "聘请法律顾问1名。") and unit_matches(plan, "共有3人。")
    assert not unit_matches(plan, "开展普法活动20场。")
    fine = tiny_components.retriever.plan("最多罚多少钱？")
    assert unit_matches(fine, "处5万元以下的罚款")
    assert not unit_matches(fine, "第三十八条 由审计机关责令改正，并给予警告；")  # an ordinal is not a quantity
    assert not unit_matches(fine, "依照第5条的规定")
    # A share written in words is a quantity (百分之三, 百分之一至百分之三).
    rate = tiny_components.retriever.plan("每天按多少加罚？")
    assert unit_matches(rate, "每日按罚款数额的百分之三加处罚款") and unit_matches(rate, "按支出额的百分之一至百分之三设置")
    # 十几个 and 几十 are rough numbers, not the unit asked for.
    assert tiny_components.retriever.plan("有十几个申请人，要推选几名代表？").asked_unit == "名"
    assert tiny_components.retriever.plan("几十个单位参加了吗？").asked_unit is None
    # Parts asking in different units (or one without a unit) leave any figure acceptable.
    two = tiny_components.retriever.plan("留置最长多长时间？能延长几次？")
    assert two.asked_unit is None and unit_matches(two, "留置时间不得超过三个月")
    assert tiny_components.retriever.plan("主动公开了几条？依申请公开的有几条？").asked_unit == "条"


def test_an_ordinal_question_asks_for_an_ordinal(tiny_components):
    plan = tiny_components.retriever.plan
    meeting = plan("审计工作报告是在县人大常委会第几次会议上作的？")
    assert (meeting.asked_ordinal, meeting.asked_unit, meeting.is_quantity) == ("次", None, True)
    assert unit_matches(meeting, "——2023年8月29日在茶阳县第十七届人民代表大会常务委员会第十四次会议上")
    assert not unit_matches(meeting, "全年召开党组会议5次")  # a count does not answer 第几次
    article = plan("宪法第几条规定国务院设立审计机关？")
    assert article.asked_ordinal == "条" and unit_matches(article, "第九十一条 国务院设立审计机关")
    assert plan("现行条例是国务院第多少号令公布的？").asked_ordinal == "号"
    assert plan("是谁在人大常委会哪一次会议上作的报告？").asked_ordinal == "次"
    assert plan("这个报告是在哪次会议上作的？").asked_ordinal == "次"
    assert plan("召开了几次会议？").asked_ordinal is None and plan("召开了几次会议？").asked_unit == "次"


def test_occurrences_may_be_stated_as_cases_and_an_age_in_years(tiny_components):
    plan = tiny_components.retriever.plan
    appeals = plan("因为信息公开被人申请了几次行政复议？")
    assert appeals.asked_unit == "次" and unit_matches(appeals, "全年因政府信息公开被申请行政复议2件")
    assert not unit_matches(plan("收到了几件申请？"), "全年开展培训3次")  # one way only
    # The counted noun beside a count says what is counted when the unit differs.
    leads = plan("向外移送了几条问题线索？")
    assert unit_matches(leads, "向纪检监察机关移送问题线索5件") and not unit_matches(leads, "开展普法宣传5件次")
    for question in ("局长今年多大年纪？", "年满多少岁才能当选？"):
        age = plan(question)
        assert age.asked_unit == "周岁" and age.is_quantity, question
        assert unit_matches(age, "年满四十五周岁的公民") and not unit_matches(age, "局长何晓岚在县委常委会上作专题述法")


def test_money_and_share_questions_ask_for_their_units(tiny_components):
    plan = tiny_components.retriever.plan
    spent = plan("青禾县审计局2023年普法一共花了多少经费？")
    assert spent.asked_unit == "元"
    assert unit_matches(spent, "投入普法经费3.5万元") and not unit_matches(spent, "开展普法活动12场")
    # A sum may be a share of another sum; a rate is not answered by a sum.
    late = plan("罚款到期不交，每天能加罚多少？")
    assert late.asked_unit == "元" and unit_matches(late, "每日按罚款数额的百分之三加处罚款")
    rate = plan("审计发现问题的整改率是多少？")
    assert rate.asked_unit == "%"
    assert unit_matches(rate, "整改率达92.5%") and unit_matches(rate, "整改率为百分之九十")
    assert not unit_matches(rate, "整改问题金额1.2亿元")
    # 资金使用率 asks a share, not money.
    assert plan("专项资金使用率是多少？").asked_unit == "%"
    # 份 and 件 count the same things (几份申请 ~ 14件).
    assert unit_matches(plan("收到几份公开申请？"), "收到政府信息公开申请14件")
    assert unit_matches(plan("被申请复议了几起？"), "行政复议案件1件")
    # 几个代表 counts people (5人, 1至5名), 几个审计项目 does not.
    delegates = plan("要推选几个代表？")
    assert delegates.asked_unit == "人" and unit_matches(delegates, "推选1至5名代表") and unit_matches(delegates, "不得超过5人")
    assert plan("完成了几个审计项目？").asked_unit == "个" and not unit_matches(plan("完成了几个审计项目？"), "聘请2名同志")
    assert plan("最多能委托几个代理人？").asked_unit == "人"  # any noun for people: 代理人, 工作人员
    # 件 is like 个 and like 起, 个 is not like 起: 几个项目 is not answered by 未发生一起复议案件.
    assert unit_matches(plan("完成了几个审计项目？"), "完成审计项目43件")
    assert not unit_matches(plan("完成了几个审计项目？"), "全年未发生一起复议案件")
    # X占Y多少 asks a share.
    assert plan("财政资金占总投资多少算政府投资为主？").asked_unit == "%"
    # A fraction is a quantity (三分之二以上); an ordinal is not.
    votes = plan("要多少代表赞成才能通过？")
    assert unit_matches(votes, "由全体代表的三分之二以上的多数通过") and not unit_matches(votes, "依照第三章的规定")


def test_a_calendar_year_is_not_a_quantity(tiny_components):
    """2024年 names a year: a sentence that only dates itself gives no count."""
    plan = tiny_components.retriever.plan("一共办了多少？")
    assert plan.asked_unit is None
    assert not unit_matches(plan, "2024年，岚江市审计局坚持依法审计。")
    assert unit_matches(plan, "2024年，岚江市审计局开展普法活动20场。")
    assert unit_matches(tiny_components.retriever.plan("时效是几年？"), "违法行为在二年内未被发现的")


def test_scope_name_bigrams_count_for_less(tiny_components):
    """The bigrams of the organisation and year a question names weigh what its scope words weigh:
    inside the right document they only point at its title and signature."""
    retrieval = tiny_components.retriever.search("青禾县审计局2023年开展了多少场普法活动？", k=8)
    params = AnswerModel.load().params
    weights = gram_weights(retrieval.plan, retrieval.snapshot, params)
    idf = retrieval.snapshot.char_idf
    assert "青禾" in weights and weights["青禾"] == idf("青禾") * params.name_weight
    assert weights["普法"] == idf("普法")
    scored, _, _ = score_candidates(retrieval.plan, retrieval, retrieval.snapshot, AnswerModel.load(), 6)
    title = next(c for c in scored if c.text.startswith("青禾县审计局2023年法治政府建设情况报告"))
    fact = next(c for c in scored if "普法活动12场" in c.text)
    assert fact.features["gram_sentence"] > title.features["gram_sentence"]


def test_passage_gaps_compare_sentences_within_their_passage():
    from types import SimpleNamespace

    one, two = SimpleNamespace(chunk_id="a"), SimpleNamespace(chunk_id="b")
    raw = [(one, 0, 0, 5, "x"), (one, 0, 5, 9, "y"), (two, 1, 0, 4, "z")]
    rows = [
        {"cov_sentence": 0.2, "gram_sentence": 0.1, "semantic": 0.9},
        {"cov_sentence": 0.6, "gram_sentence": 0.4, "semantic": 0.8},
        {"cov_sentence": 0.1, "gram_sentence": 0.0, "semantic": 0.7},
    ]
    add_passage_gaps(raw, rows)
    assert [round(r["cov_passage_gap"], 6) for r in rows] == [-0.4, 0.0, 0.0]
    assert [round(r["gram_passage_gap"], 6) for r in rows] == [-0.3, 0.0, 0.0]
    assert [round(r["semantic_passage_gap"], 6) for r in rows] == [0.0, -0.1, 0.0]


def test_a_lead_in_with_numbered_items_is_one_candidate():
    from types import SimpleNamespace

    from rag.evidence import candidates
    from rag.schema import Hit

    text = "第九条 行政强制措施的种类:\n（一）限制公民人身自由；\n（二）查封场所、设施或者财物；\n（三）扣押财物。\n第十条 其他规定。"
    hit = Hit("c1", "law", "某法", "law", text, "第九条", "第九条", None, 1.0)
    found = [c[4] for c in candidates(SimpleNamespace(hits=[hit]), 1)]
    lead = next(c for c in found if c.startswith("第九条"))
    assert "（一）限制公民人身自由" in lead and "（三）扣押财物" in lead and "第十条" not in lead
    assert "（二）查封场所、设施或者财物；" in found  # the items stay candidates of their own
    plain = Hit("c2", "law", "某法", "law", "第五条 审计机关的职责：\n依法审计。\n第六条 其他。", "第五条", "第五条", None, 1.0)
    assert [c[4] for c in candidates(SimpleNamespace(hits=[plain]), 1)][0] == "第五条 审计机关的职责："  # no items follow


def test_enumerated_titles_count_as_a_list():
    from rag.evidence import _patterns

    enumeration = _patterns()["enumeration"]
    assert enumeration.search("严格依照《中华人民共和国审计法》《中华人民共和国国家审计准则》等法律法规")
    assert enumeration.search("警告、罚款、没收违法所得")
    assert not enumeration.search("依照《中华人民共和国审计法》履行职责")


def test_a_runner_up_heading_comes_with_the_sentence_after_it():
    from rag.answer import choose_sentences
    from rag.evidence import Candidate
    from rag.params import AnswerParams
    from rag.query import QueryPlan
    from rag.schema import Hit

    first = Hit("a", "r", "报告", "report", "二是严格执行重大行政决策集体讨论制度；", "二、", None, 2025, 1.0)
    text = "1．重大行政决策集体研究。凡涉及重大行政决策的事项，均提交局党组会议集体讨论决定。"
    second = Hit("b", "r", "报告", "report", text, "1．", None, 2025, 0.9)
    heading_end = text.index("。") + 1
    scored = [
        Candidate(first, 0, 0, len(first.text), first.text, {}, 0.5),
        Candidate(second, 1, 0, heading_end, text[:heading_end], {}, 0.45),
    ]
    chosen = choose_sentences(scored, QueryPlan("重大行政决策是通过什么程序作出的？", ("重大", "决策", "程序")), {"决策": 1.0}, AnswerParams())
    assert [c.text for c in chosen] == [first.text, text[:heading_end], text[heading_end:]]


def test_the_answerability_fit_keeps_each_weight_on_its_side():
    """Two collinear features (coverage, and the share of the question missing, which moves with it):
    unconstrained, the noisy one can take a weight of the wrong sign; within the signs it cannot, and
    the fit still separates the classes."""
    import random

    from rag.calibrate import fit_logistic, fit_signed_logistic

    rng = random.Random(7)
    rows, labels = [], []
    for i in range(400):
        y = i % 2
        cover = rng.gauss(0.7 if y else 0.4, 0.15)
        rows.append({"best_cov_sentence": cover, "missing_mass": 1.0 - cover + rng.gauss(0.05 * y, 0.02)})
        labels.append(y)
    names = ("best_cov_sentence", "missing_mass")
    free = fit_logistic(rows, labels, names, 1.0, balanced=True)
    signed = fit_signed_logistic(rows, labels, names, 1.0, {"best_cov_sentence": 1, "missing_mass": -1})
    assert free.weights[1] > 0  # the wrong sign: more missing, more answerable
    assert signed.weights[0] > 0 and signed.weights[1] <= 0
    correct = sum((signed.probability(r) >= 0.5) == bool(y) for r, y in zip(rows, labels))
    assert correct / len(rows) > 0.8


def test_calibration_labels_the_sentence_that_holds_the_answer(tiny_components):
    """A heading whose composed answer takes in the next sentence is not labelled right when a
    sentence holds the answer itself: such labels taught the ranker to prefer first, short sentences."""
    from rag.calibrate import candidate_labels
    from rag.citations import CitationBook
    from rag.evaluation import EvalItem
    from rag.text import squash

    tiny_assistant = tiny_components.assistant
    question = "青禾县审计局2023年主动公开了多少条政府信息？"
    analysis = tiny_assistant.analyze(question, tiny_assistant.retriever.search(question), [])
    item = EvalItem("t1", question, ("qinghe-audit-bureau-2023-report",), ("52条",), False)
    labels = candidate_labels(tiny_assistant, analysis, item)
    texts = [c.text for c in analysis.scored]
    assert [t for t, y in zip(texts, labels) if y] == ["全年主动公开政府信息52条。"]
    heading = next(c for c in analysis.scored if c.text.startswith("（二）推进政务公开"))
    composed = tiny_assistant.compose(analysis, CitationBook(), best=heading, alone=True)
    assert "52条" in squash(composed)  # the old labels counted it right
    refuse = EvalItem("t2", question, (), (), True)
    assert candidate_labels(tiny_assistant, analysis, refuse) == [0] * len(texts)


def test_a_count_in_any_unit_is_a_quantity_question(tiny_components):
    """几份, 几批, 几卷: a count is asked whatever the unit, not only for the units the cue list names."""
    for question in ("收到了几份申请？", "分几批完成？", "一共有几卷档案？"):
        plan = tiny_components.retriever.plan(question)
        assert plan.is_quantity and plan.asked_unit, question


def test_a_count_is_in_its_own_unit_not_the_start_of_a_longer_one():
    """几名 (a head count) is not answered by 1450人次 (attendances), 几个 not by 3个月; 多少人次 may be
    answered by a number of people."""
    from rag.evidence import count_pattern

    assert not count_pattern("名").search("培训1450人次") and count_pattern("名").search("全局现有干部职工52人，其中")
    assert count_pattern("人次").search("培训1450人次") and count_pattern("人次").search("培训120人")
    assert count_pattern("个").search("完成审计项目31个") and not count_pattern("个").search("3个月内办结")
    from rag.query import asked_unit

    assert asked_unit("培训班一共多少人次参加？") == "人次" and asked_unit("有多少名卫生监督员？") == "名"


def test_a_share_asked_in_words_is_a_quantity_question(tiny_components):
    """百分之几, 占比, 几成 ask for a number as 多少 does."""
    for question in ("审计费按工程造价的百分之几支付？", "女性干部的占比？", "能报销几成？"):
        assert tiny_components.retriever.plan(question).is_quantity, question


def test_a_person_is_asked_for_by_name_and_found_in_a_sentence(tiny_components):
    """`is_person`: 局长叫什么名字 / 组长是谁 ask for a name, 主送单位是谁 and 由谁批准 do not; `has_person_name`
    finds a name jieba tags (沈一帆, 李 红权), not a role or a body; `person_missing` is refusal evidence."""
    plan = tiny_components.retriever.plan
    assert plan("德阳市审计局的局长是谁？").is_person and plan("法律顾问叫什么名字").is_person
    assert plan("政务公开工作领导小组组长是谁？").is_person and plan("现任审计长 姓名").is_person
    for question in ("主送单位是谁？", "赔偿义务机关是谁？", "移送要由谁批准？", "报告是写给谁的？"):
        assert not plan(question).is_person, question
    assert has_person_name("局长沈一帆主持召开会议。") and has_person_name("由局党组书记、局长任组长，李红权任副组长。")
    assert has_person_name("联系人：黄若溪，电话：0371-1234567。")
    assert not has_person_name("由审计机关负责人决定。") and not has_person_name("聘请律师事务所担任法律顾问。")
    assert "person_missing" in QUESTION_FEATURES and "person_match" in SENTENCE_FEATURES


def test_what_a_count_question_counts_is_looked_for_beside_the_count():
    """`count_noun_missing` (refusal evidence): a count question that names what it counts is less
    answerable when no candidate gives a count beside that noun (`几起行政处罚案件` and a sentence that
    counts 复议案件)."""
    from rag.evidence import Candidate, count_beside_noun, count_noun_missing
    from rag.query import QueryPlan, counted_noun

    assert counted_noun("桐山区审计局2023年一共做完了多少个审计项目？") == "审计项目"
    assert counted_noun("开封市审计局2024年实际办了多少起行政处罚案件？") == "行政处罚案件"
    assert counted_noun("审计项目完成了多少个？") is None  # the noun before the count: nothing to look for
    assert counted_noun("桐溪县2024年全县有多少名公职律师？") == "公职律师"
    # a verb phrase after the count counts nothing: 几个人通过了…, 多少天内重新作出
    assert counted_noun("开封市审计局现在有几个人通过了法律职业资格考试？") is None
    assert counted_noun("法律法规没规定期限的，要在多少天内重新作出？") is None
    plan = QueryPlan("2023年一共做完了多少个审计项目？", ("做", "审计", "项目"), is_quantity=True, asked_unit="个")
    assert count_beside_noun(plan, "全年共完成审计项目28个，其中经济责任审计9个。") == 1.0
    assert count_beside_noun(plan, "共完成28个审计项目。") == 1.0
    assert count_beside_noun(plan, "明确年度任务26项，逐项落实到科室。") == 0.0
    assert count_beside_noun(plan, "审计项目质量进一步提高。") == 0.0  # the noun without a count
    assert count_beside_noun(QueryPlan("审计项目有哪些？", ("审计", "项目")), "审计项目28个") is None
    reviewers = QueryPlan("2023年配了几个法制审核员？", ("法制审核", "员"), is_quantity=True, asked_unit="个")
    assert count_beside_noun(reviewers, "设立法制审核员3名,审计决定书法制审核率达100%.") == 1.0  # 个 in 名
    leads = QueryPlan("向纪委监委移送了几条问题线索？", ("移送", "问题", "线索"), is_quantity=True, asked_unit="条")
    assert count_beside_noun(leads, "向县纪委监委移送问题线索3件。") == 1.0  # 条 asked, 件 stated
    # what the question counts, in other words beside the count (案子 -> 案件)
    aid = QueryPlan("法律援助办了多少个案子？", ("法律援助", "办", "案子"), is_quantity=True, asked_unit="个")
    assert count_beside_noun(aid, "全年办理法律援助案件312件。") == 1.0
    assert count_beside_noun(aid, "全年开展普法活动312场。") == 0.0
    cases = QueryPlan("2024年实际办了多少起行政处罚案件？", ("办", "行政处罚", "案件"), is_quantity=True, asked_unit="起")

    def candidate(text: str) -> Candidate:
        return Candidate(hit=None, rank=0, start=0, end=len(text), text=text, p=0.5)  # type: ignore[arg-type]

    assert abs(count_noun_missing(cases, [candidate("全年未发生一起复议案件和听证事件。")]) - 0.8) < 1e-9
    assert count_noun_missing(cases, [candidate("全年未发生一起复议案件。"), candidate("办理行政处罚案件3起。")]) == 0.0
    assert count_noun_missing(QueryPlan("审计项目有哪些？", ("审计", "项目")), [candidate("审计项目28个")]) == 0.0


def test_cross_validated_refusal_thresholds_come_from_out_of_fold_probabilities(monkeypatch):
    """Each fold's threshold is chosen on probabilities of questions its models did not see, as the
    shipped model's is: in-sample probabilities are optimistic and would refuse more later. (FAKE
    models: a question the model was fitted on gets 0.9, any other 0.3.)"""
    import rag.calibrate as cal
    from rag.evaluation import EvalItem

    class FakeAnswerable:
        def __init__(self, seen: set[str]):
            self.seen = seen

        def probability(self, features: dict) -> float:
            return 0.9 if features["id"] in self.seen else 0.3

    monkeypatch.setattr(cal, "fit_models", lambda train, c=None, answerable_c=None: (None, FakeAnswerable({d.item.id for d in train}), 0.0))
    monkeypatch.setattr(cal, "with_sentence_probabilities", lambda d, sentence: {"id": d.item.id})
    items = [
        cal.ItemData("s", EvalItem(id=f"q{i}", question="？", sources=("doc",), contains=("x",), refuse=False), f"doc{i % 7}", "model")
        for i in range(40)
    ]
    assert abs(cal.out_of_fold_threshold(items, c=1.0) - 0.3) < 1e-3
    assert abs(cal.refusal_threshold([0.9] * 40) - 0.9) < 1e-3  # what an in-sample choice would give
    folds = cal.fold_of_groups(items)
    assert set(folds.values()) == set(range(cal.FOLDS)) and folds == cal.fold_of_groups(list(reversed(items)))


def test_words_for_our_own_bureau_weigh_as_frame_words():
    """我局/局里/咱局 point at the user's organisation (the scope acts on that); in a law question they are
    no content a law passage should hold (`企业对局里的处罚不服…` was refused for missing 局里)."""
    from rag.evidence import question_weights
    from rag.query import QueryPlan

    class FakeSnapshot:  # FAKE: every word equally rare
        def idf(self, token: str) -> float:
            return 5.0

        def document_frequency(self, token: str) -> int:
            return 1

    plan = QueryPlan("企业对局里的处罚不服，多长时间内要申请复议？", ("企业", "局里", "处罚", "不服", "申请", "复议"))
    weights = question_weights(plan, FakeSnapshot())  # type: ignore[arg-type]
    assert weights["局里"] < weights["处罚"] == weights["复议"]
    ours = question_weights(QueryPlan("咱局的处罚", ("咱局", "处罚")), FakeSnapshot())  # type: ignore[arg-type]
    assert ours["咱局"] < ours["处罚"]


def test_answerability_weighs_products_of_two_features(monkeypatch):
    """What makes a question answerable can depend on two features together (a count is given in one
    kind of document, a list in another): no weight on each feature alone says that, a weight on their
    product does. The answerability model is offered every product of two question features (`a*b`),
    its regularisation chosen by the out-of-fold AUC over grouped folds. (Synthetic items: answerable
    exactly when one of is_quantity / wants_report holds, the other not.)"""
    import rag.calibrate as cal
    from rag.scorers import feature_value

    assert feature_value({"is_quantity": 1.0, "wants_report": 0.5}, "is_quantity*wants_report") == 0.5
    assert feature_value({"is_quantity": 1.0}, "is_quantity*wants_report") == 0.0
    assert "is_quantity*wants_report" in QUESTION_PRODUCTS and len(QUESTION_PRODUCTS) == len(set(QUESTION_PRODUCTS))
    product = Logistic(("is_quantity*wants_report",), (2.0,), 0.0, (0.0,), (1.0,))
    assert product.probability({"is_quantity": 1.0, "wants_report": 1.0}) > 0.8
    assert abs(product.probability({"is_quantity": 0.0, "wants_report": 1.0}) - 0.5) < 1e-9

    items = _either_or_items(seed=0)

    def separation() -> float:
        chosen = cal.choose_answerable_c(items, 1.0)
        assert chosen in cal.ANSWERABLE_C_GRID
        return _separation(*cal.fit_models(items, 1.0, chosen)[:2], items)

    monkeypatch.setattr(cal, "LINEAR_SHARE", 1.0)  # the linear model alone (the trees are tested below)
    assert separation() > 0.95
    monkeypatch.setattr(cal, "ANSWERABLE_FEATURES", QUESTION_FEATURES)  # each feature alone
    assert separation() < 0.7


def _either_or_items(n: int = 240, seed: int = 1):
    """Synthetic model-stage items, answerable exactly when one of is_quantity / wants_report holds."""
    import numpy as np

    import rag.calibrate as cal
    from rag.evaluation import EvalItem

    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        quantity, report = float(rng.integers(0, 2)), float(rng.integers(0, 2))
        answerable = quantity != report
        item = EvalItem(id=f"q{i}", question="？", sources=("doc",) if answerable else (), contains=("x",), refuse=not answerable)
        question = {"is_quantity": quantity, "wants_report": report, "n_terms": float(rng.normal())}
        rows = [{"cov_sentence": 1.0}, {"cov_sentence": 0.0}]
        items.append(cal.ItemData("s", item, f"doc{i % 11}", "model", rows=rows, labels=[1, 0] if answerable else [0, 0], question=question))
    return items


def _separation(sentence, answerable, items) -> float:
    """AUC of the answerability model's probabilities: answerable items against those to refuse."""
    import rag.calibrate as cal

    p = [answerable.probability(cal.with_sentence_probabilities(d, sentence)) for d in items]
    return cal.auc([x for x, d in zip(p, items) if d.answerable], [x for x, d in zip(p, items) if not d.answerable])


def test_trees_are_stored_as_numbers_and_read_left_at_or_below_the_threshold(tmp_path):
    """A tree goes left when the feature is at most the threshold; the stored trees, the blend and a
    model file with them give the same probabilities after a JSON round trip; a model file whose
    answerability model is a plain logistic one (before round 20) still loads."""
    stump = Trees(("a", "b"), -0.5, (((0, 1.0, 1, 2, 0.0), (-1, 0.0, -1, -1, -1.0), (-1, 0.0, -1, -1, 2.0)),))
    assert math.isclose(stump.log_odds({"a": 1.0}), -1.5) and math.isclose(stump.log_odds({"a": 1.01}), 1.5)
    linear = Logistic(("b",), (1.0,), 0.0, (0.0,), (1.0,))
    blend = Blend((linear, stump), (0.5, 0.5))
    z = 0.5 * 2.0 + 0.5 * 1.5
    assert math.isclose(blend.probability({"a": 2.0, "b": 2.0}), 1 / (1 + math.exp(-z)))
    assert blend.names == ("b", "a") and blend.mean_of("b") == 0.0
    fitted = AnswerModel.load()
    data = {"sentence": fitted.sentence.to_dict(), "answerable": blend.to_dict(), "refuse_below": 0.3}
    (tmp_path / "blend.json").write_text(json.dumps(data), encoding="utf-8")
    loaded = AnswerModel.load(tmp_path / "blend.json")
    assert loaded.answerable == blend and loaded.source != "default"
    data["answerable"] = linear.to_dict()
    (tmp_path / "linear.json").write_text(json.dumps(data), encoding="utf-8")
    assert AnswerModel.load(tmp_path / "linear.json").answerable == linear


def test_answerability_trees_find_what_no_feature_alone_says(monkeypatch):
    """Gradient-boosted trees over the plain question features (no products offered) learn that an
    answer depends on two features together, as exported numbers that reproduce scikit-learn's
    log-odds; the shipped answerability model blends them with the linear one."""
    import rag.calibrate as cal

    items = _either_or_items()
    rows = [dict(d.question) for d in items]
    labels = [int(d.answerable) for d in items]
    trees = cal.fit_trees(rows, labels, QUESTION_FEATURES)
    p = [trees.probability(r) for r in rows]
    assert cal.auc([x for x, y in zip(p, labels) if y], [x for x, y in zip(p, labels) if not y]) > 0.95
    assert all(len(tree) <= 2 ** (cal.TREE_DEPTH + 1) - 1 for tree in trees.trees) and len(trees.trees) == cal.TREE_COUNT

    monkeypatch.setattr(cal, "ANSWERABLE_FEATURES", QUESTION_FEATURES)  # no products for the linear part
    sentence, answerable, _ = cal.fit_models(items, 1.0, 0.03)
    assert isinstance(answerable, Blend) and isinstance(answerable.members[1], Trees)
    assert _separation(sentence, answerable, items) > 0.95
    monkeypatch.setattr(cal, "LINEAR_SHARE", 1.0)  # without the trees
    assert _separation(*cal.fit_models(items, 1.0, 0.03)[:2], items) < 0.7


def test_the_encoder_compares_sentences_with_the_question_less_the_names_it_scopes_itself_with():
    """Retrieval already holds a question to the laws, organisations and years it names; a sentence seldom
    repeats them, so the encoder sees the question without them — and the whole question when little is left."""
    from rag.evidence import semantic_question
    from rag.orgs import OrgEntry, OrgMention
    from rag.query import LawAlias, QueryPlan

    law = LawAlias("审计法", "audit-law", "中华人民共和国审计法")
    plan = QueryPlan("《审计法》里审计人员调查取证最少几个人", (), laws=(law,))
    assert semantic_question(plan) == "里审计人员调查取证最少几个人"
    org = OrgEntry("花都区审计局", frozenset({"花都区审计局", "花都区"}), frozenset({"花都区"}), (2024,), ())
    plan = QueryPlan("花都区审计局2024年度主动公开了多少条政府信息", (), years=(2024,), orgs=OrgMention(known=(org,)))
    assert semantic_question(plan) == "主动公开了多少条政府信息"
    plan = QueryPlan("审计法2024年", (), laws=(law,), years=(2024,))
    assert semantic_question(plan) == "审计法2024年"  # nothing but names: the question as asked
    assert semantic_question(QueryPlan("罚款最多多少", ())) == "罚款最多多少"


def test_the_compose_setting_is_the_most_accurate_whose_answers_stay_short_enough():
    """`best_compose`: most answers right among the settings at most MAX_LONGER times as long as the one
    in use; of equals the shortest. `cross_validated_compose` answers each fold of documents with the
    setting chosen on the others."""
    from rag.calibrate import MAX_LONGER, best_compose, compose_grid, compose_key, cross_validated_compose
    from rag.params import AnswerParams

    grid = {compose_key(p) for p in compose_grid(AnswerParams(second_sentence_ratio=0.33))}
    assert compose_key(AnswerParams()) in grid and compose_key(AnswerParams(second_sentence_ratio=0.33)) in grid

    in_use, longer, wordy, same = (0.75,), (0.5,), (0.3,), (0.6,)
    outcomes = {
        in_use: [(True, 100), (False, 100), (False, 100), (True, 100)],
        longer: [(True, 110), (True, 110), (False, 110), (True, 110)],  # one more right, 10 % longer
        wordy: [(True, 200), (True, 200), (True, 200), (True, 200)],  # all right, twice as long
        same: [(True, 105), (True, 105), (False, 105), (True, 105)],  # as right as `longer`, shorter
    }
    rows = range(4)
    assert MAX_LONGER < 2.0
    assert best_compose(outcomes, rows, in_use) == same
    assert best_compose(outcomes, rows, in_use, max_longer=2.0) == wordy
    assert best_compose({in_use: outcomes[in_use]}, rows, in_use) == in_use
    accuracy, chosen = cross_validated_compose(outcomes, ["a", "b", "c", "d"], in_use, folds=2)
    assert len(chosen) == 2 and 0.5 <= accuracy <= 1.0
    assert cross_validated_compose({in_use: outcomes[in_use]}, ["a", "b", "c", "d"], in_use, folds=2)[0] == 0.5


@pytest.mark.slow
def test_an_answer_composed_from_its_analysis_is_the_one_asked_and_follows_the_params(assistant):
    """`Assistant.answer_from` (what eval/fit_compose.py composes each setting with) gives the answer
    `ask` gives; a lower second-sentence ratio gives at least as much, a higher one at most as much."""
    from dataclasses import replace

    from rag.calibrate import composed_outcome
    from rag.evaluation import EvalItem
    from rag.query import prepare_question

    question = "审计机关进行审计时，被审计单位不配合提供资料，会怎么处理？"
    asked = assistant.ask(question, use_llm=False)
    cut, text, notices = prepare_question(question, assistant.settings.answer.max_question_chars)
    analysis = assistant.analyze(cut, assistant.retriever.search(text), notices)
    composed, _ = assistant.answer_from(analysis, list(notices))
    assert composed.answer == asked.answer and not composed.refused
    item = EvalItem(id="x", question=question, sources=(asked.citations[0].source,), contains=(asked.citations[0].text[:6],), refuse=False)
    params = assistant.model.params
    many = composed_outcome(assistant, analysis, notices, item, replace(params, second_sentence_ratio=0.0, extra_gain=0.0))
    one = composed_outcome(assistant, analysis, notices, item, replace(params, second_sentence_ratio=1.01, extra_gain=1.01))
    assert many[1] >= len(asked.answer) >= one[1] and many[1] > one[1]
    assert assistant.model.params == params  # put back
