"""rag.citations: markers, numbering, exact facts, and the support checker's verdicts."""

from __future__ import annotations

import pytest

from rag.citations import (
    CITED_SENTENCE,
    MARKER,
    PLACEHOLDER,
    PLACEHOLDER_RE,
    REFUSAL,
    CitationBook,
    articles,
    check_support,
    cited_sentences,
    dates,
    quantities,
    quotes,
    strip_markers,
    support_features,
)
from rag.schema import Hit

LAW = "第四十四条 审计组对审计事项实施审计后，应当向审计机关提出审计组的审计报告。被审计单位应当自接到审计组的审计报告之日起十日内，将其书面意见送交审计组。"
REPORT = "2024年，开封市审计局主动公开各类政府信息554条，聘请河南誉齐临律师事务所律师担任法律顾问。"


def passage_hit(chunk_id: str, text: str, title: str = "中华人民共和国审计法", section: str = "第五章 审计程序 > 第四十四条") -> Hit:
    return Hit(chunk_id, "audit-law", title, "law", text, section, None, None, 1.0)


def test_markers_and_cited_sentences():
    text = "甲句。[1]乙句；[2][3]\n丙句没有标注。丁[1]"
    assert cited_sentences(text) == [("甲句。[1]", [1]), ("乙句；[2][3]", [2, 3]), ("丙句没有标注。", []), ("丁[1]", [1])]
    assert [int(n) for n in MARKER.findall(text)] == [1, 2, 3, 1]
    assert len(CITED_SENTENCE.findall(text)) == 4
    assert strip_markers("据《开封市审计局2024年法治政府建设情况报告》，全年公开554条。[1]") == "全年公开554条。"
    assert REFUSAL == "未在已收录的文件中找到依据。"
    assert PLACEHOLDER_RE.findall(PLACEHOLDER.format(old="12件") + "和" + PLACEHOLDER.format(old="5%")) == ["【待更新：原为12件】", "【待更新：原为5%】"]


def test_citation_book_numbers_passages_in_order_of_first_use():
    book = CitationBook()
    a, b = passage_hit("a", LAW), passage_hit("b", REPORT)
    assert [book.cite(a, "一句"), book.cite(b), book.cite(a, "另一句")] == [1, 2, 1]
    assert [(c.id, c.source, c.sentence) for c in book.citations] == [(1, "audit-law", "一句"), (2, "audit-law", None)]


def test_exact_facts_are_read_in_any_notation():
    assert quantities("十日内") == quantities("10天") == {(10.0, "天")}
    assert quantities("百分之十") == quantities("10%") == {(10.0, "%")}
    assert quantities("三人") == quantities("3名")
    assert quantities("2024年") == set()  # a year is a date, not a quantity
    assert dates("2024年3月1日") == {(2024, 3, 1)} and dates("二〇二三年") == {(2023, None, None)}
    assert dates("每年12月4号") == {(None, 12, 4)} and dates("发布时间：2024-01-26 10:32") == {(2024, 1, 26)}
    assert dates("13月40日") == set()
    assert articles("第四十四条和第5条") == {44, 5}
    assert quotes("据《某报告》，全年 公开554条。[1]", "其中全年公开554条。其他") and not quotes("全年公开555条。", REPORT)


def test_a_quotation_is_supported():
    assert check_support("被审计单位应当自接到审计组的审计报告之日起十日内，将其书面意见送交审计组。", LAW).supported
    assert check_support("开封市审计局主动公开各类政府信息554条。[1]", REPORT).supported


@pytest.mark.parametrize(
    "sentence, passage, reason",
    [
        ("被审计单位应当自接到审计组的审计报告之日起十五日内，将其书面意见送交审计组。", LAW, "数字"),
        ("开封市审计局主动公开各类政府信息545条。", REPORT, "数字"),
        ("被审计单位不需要将书面意见送交审计组。", LAW, "肯定与否定"),  # 不需要 negates 应当
        ("被审计单位可以自接到审计组的审计报告之日起十日内，将其书面意见送交审计组。", LAW, "应当/可以/不得"),
        ("审计组对审计事项实施审计后，可以向审计机关提出审计组的审计报告。", LAW, "应当/可以/不得"),
        ("南安市审计局主动公开各类政府信息554条。", REPORT, "名称"),
        ("开封市审计局2023年主动公开各类政府信息554条。", REPORT, "日期"),
    ],
)
def test_a_changed_number_obligation_negation_name_or_date_is_not_supported(sentence, passage, reason):
    support = check_support(sentence, passage)
    assert not support.supported
    assert support.verdict == "contradicted" and any(reason in r for r in support.reasons), support


PENALTY = "第三十三条 违法行为轻微并及时改正，没有造成危害后果的，不予行政处罚。"
FEES = "第八十七条 行政复议机关受理行政复议申请，不得向申请人收取任何费用。"
DETENTION = "第四十八条 留置时间不得超过三个月。在特殊情况下，可以延长一次，延长时间不得超过三个月。"
INSPECTORS = "第三十九条 调查、检查时，执法人员不得少于两人，并应当出示证件。"


@pytest.mark.parametrize(
    "sentence, passage",
    [
        ("行政复议机关受理行政复议申请，不会向申请人收取任何费用。", FEES),  # 不会 ~ 不得: both negative
        ("行政复议机关受理复议申请，申请人无须缴纳任何费用。", FEES),
        ("违法行为轻微并及时改正、没有造成危害后果的，不会受到行政处罚。", PENALTY),  # the condition's 没有 is not the consequence's
        ("留置最多三个月，特殊情况下可以延长一次，延长也最多三个月。", DETENTION),  # 最多 ~ 不得超过: a bound
        ("调查、检查时，执法人员至少要有两人。", INSPECTORS),  # 至少 ~ 不得少于
    ],
)
def test_everyday_negations_and_bounds_agree_with_the_law(sentence, passage):
    features = check_support(sentence, passage).features
    assert features["negation_mismatch"] == 0.0 and features["modality_mismatch"] == 0.0, features


@pytest.mark.parametrize(
    "sentence, passage",
    [
        ("违法行为轻微并及时改正，没有造成危害后果的，应当给予行政处罚。", PENALTY),  # the consequence flipped, the condition kept
        ("违法行为轻微并及时改正，造成危害后果的，不予行政处罚。", PENALTY),  # the condition flipped
        ("留置时间可以超过三个月。", DETENTION),  # over against at most
        ("行政复议机关受理行政复议申请，可以向申请人收取费用。", FEES),
    ],
)
def test_a_flipped_consequence_condition_or_bound_is_contradicted(sentence, passage):
    support = check_support(sentence, passage)
    assert not support.supported and support.verdict == "contradicted", support


def test_an_unrelated_sentence_is_unsupported():
    support = check_support("明天开封天气晴朗。", REPORT)
    assert support.verdict == "unsupported" and support.score < 0.5


@pytest.mark.slow
@pytest.mark.parametrize(
    "sentence, text, clear",
    [
        ("被审计单位收到审计组的审计报告后，应当在10日内把书面意见交给审计组。", LAW, True),
        # drops 审计组的 and moves 向审计组: the fitted models put it at their threshold (0.72 against 0.69 in
        # round 15, 0.69 against 0.71 in round 16); it must still score far above its altered forms
        ("被审计单位应当在收到审计报告后十日内向审计组送交书面意见。", LAW, False),
        ("开封市审计局2024年共主动公开政府信息554条。", REPORT, True),
    ],
)
def test_a_faithful_paraphrase_is_supported_with_the_real_sentence_encoder(sentence, text, clear):
    """The support model is fitted with e5 similarity: the checker users get (Components.support)."""
    from rag.components import build
    from rag.config import load_settings

    components = build(load_settings())
    assert components.settings.answer.semantic == "e5"
    faithful = components.support(sentence, passage_hit("x", text))
    assert faithful.supported or not clear
    for changed in (sentence.replace("十日", "十五日").replace("10日", "15日").replace("554", "545"), "被审计单位不需要将书面意见送交审计组。"):
        altered = components.support(changed, passage_hit("x", text))
        assert not altered.supported and faithful.score > altered.score + 0.3


def test_a_verbatim_quotation_is_supported_whatever_the_encoder_says():
    """An extractive answer quotes its passage, pieces apart joined by ……, behind an attribution; a
    low similarity (web-page chrome, a title block) does not make the quotation unsupported. A
    paraphrase with the same low similarity still is."""
    from rag.citations import check_support

    passage = (
        "湖州市吴兴区人民政府\n无障碍 | 长者模式 | 繁體 | 登录 | 注册\n"
        "当前位置：首页 > 政务公开 > 法治政府建设年度报告\n索引号：002593821/2024-00017    主题分类：审计"
    )

    def far(a: str, texts):  # FAKE encoder: nothing is similar
        return [0.0 for _ in texts]

    quote = "据《湖州市吴兴区审计局2023年度法治政府建设工作报告》，湖州市吴兴区人民政府……索引号：002593821/2024-00017    主题分类：审计。[1]"
    assert check_support(quote, passage, similarity=far).verdict == "supported"
    assert check_support("吴兴区政府网站把这份报告归在审计主题下面。", passage, similarity=far).verdict != "supported"
    altered = "湖州市吴兴区人民政府……索引号：002593821/2024-00018    主题分类：审计。"
    assert check_support(altered, passage, similarity=far).verdict != "supported"


def test_a_date_is_checked_with_the_event_it_dates():
    """`本条例自2019年4月20日起施行` is not supported by `2019年4月20日…公布` (the publication date), nor by
    another effective date; the same event on the same date is."""
    from rag.citations import dated_events, event_dates_disagree

    header = "2019年4月20日 中华人民共和国国务院令第713号公布"
    assert dated_events(header) == {("publish", (2019, 4, 20))}
    assert dated_events("（2025年9月12日第十四届全国人民代表大会常务委员会第十七次会议通过）") == {("adopt", (2025, 9, 12))}
    assert event_dates_disagree("该条例自2019年4月20日起施行。", header)
    assert event_dates_disagree("本法自2023年9月1日起施行。", "本法自2024年1月1日起施行。")
    assert not event_dates_disagree("本条例自2019年9月1日起生效。", "第四十四条 本条例自2019年9月1日起施行。")
    assert not event_dates_disagree("该条例于2019年4月20日发布。", header)
    assert not event_dates_disagree("报告落款日期是2025年2月12日。", "开封市审计局\n2025年2月12日")


def test_the_events_a_question_names():
    """`events_named`: what a question asks the date of (修订 -> amend, 施行 -> effect); the answer
    selector's `event_match` looks for a sentence that dates the same event."""
    from rag.citations import events_named

    assert events_named("现行行政处罚法是啥时候修订的，从哪天起施行？") == {"amend", "effect"}
    assert events_named("法治宣传教育法是什么时候通过的") == {"adopt"}
    assert events_named("审计机关有哪些职责？") == set()


def test_lengths_and_areas_are_quantities():
    """A report measures roads in 公里 and floor space in 平方米: a changed length is another figure."""
    from rag.citations import quantities

    assert quantities("新修改造农村公路18.5公里，商品房销售面积21.4万平方米。") == {(18.5, "公里"), (21.4, "万平方米")}
    assert check_support("全年改造燃气管道20公里。", "全年改造老旧燃气管道26.8公里。").verdict != "supported"


def test_a_negation_fused_into_a_word_is_a_negation():
    """不全, 不服, 不交, 无效 are negative; 不断, 没收, 未成年人 only look it."""
    from rag.citations import polarity

    for clause in ("复议申请材料不全的", "对处理意见不服的", "10日内不交的", "合同无效"):
        assert polarity(clause)["negative"], clause
    for clause in ("不断完善制度", "依法没收违法所得", "未成年人的权益"):
        assert not polarity(clause)["negative"], clause


def test_a_long_passage_is_judged_where_it_speaks_of_the_fact():
    """A report section holds many facts: the sentence is judged against the clauses that restate it, so a
    figure said of something else in the same section does not support it."""
    from rag.citations import focus

    section = (
        "一是加强法治宣传。全年开展普法活动12场，发放宣传资料3000余份。"
        "二是规范行政执法。截至目前，我局共有行政权力事项16项，其中，行政处罚2项、行政检查5项。"
        "三是强化队伍建设。组织执法人员培训4次。"
    )
    part = focus("开封市审计局共有16项行政权力事项，其中行政处罚有2项。", section)
    assert "行政权力事项16项" in part and "普法活动" not in part and "培训" not in part
    assert check_support("市审计局全年组织执法人员培训3次。", section).verdict != "supported"
    assert focus("", section) == section


def test_figures_written_either_way_compare_alike():
    """三日 and 3天, 二人 and 2个人, 一年内 and 1年: one figure, however written."""
    from rag.citations import comparable, quantities

    assert comparable("实施审计三日前") == comparable("实施审计3天前")
    assert quantities("至少得有2个人") == quantities("应当不少于二人") == {(2.0, "名")}
    assert quantities("最长要在1年内办完") == quantities("期限最长不得超过1年")


def test_negation_before_a_preposition_and_bounds_in_other_words():
    """不向 (不 + 向) is a negation jieba writes as one word; 不能超过 and 不得超出 bound the same way."""
    from rag.citations import bounds_disagree, polarity

    assert polarity("不向申请人收取任何费用")["negative"] and polarity("未向社会公布")["negative"]
    assert not bounds_disagree("数额不能超过给付义务的数额", "数额不得超出金钱给付义务的数额")
    assert check_support(
        "行政复议机关受理复议申请，不向申请人收取任何费用。", "行政复议机关受理行政复议申请，不得向申请人收取任何费用。"
    ).verdict != "contradicted"


def test_a_word_replaced_in_its_place_is_a_swap_a_verb_in_other_words_is_not():
    from rag.citations import swapped_words

    assert swapped_words("全国的法治宣传教育工作由国务院教育行政部门主管。", "国务院司法行政部门主管全国法治宣传教育工作。")[0] >= 1
    assert swapped_words("第一审行政案件一般由中级人民法院管辖。", "基层人民法院管辖第一审行政案件。")[0] == 1
    assert swapped_words("需要在10日内把书面意见交给审计组。", "应当自接到审计报告之日起十日内，将其书面意见送交审计组。") == (0, 0)


def test_clauses_are_paired_and_compared_one_by_one():
    """行政强制措施权不得委托 against 可以把…委托给其他组织: the short clause pairs with the long one and
    their modality and negation differ; a faithful restatement pairs without a difference."""
    from rag.citations import negations, paired_clauses, support_features

    passage = "第十七条 行政强制措施由法律、法规规定的行政机关在法定职权范围内实施。行政强制措施权不得委托。"
    altered = support_features("行政机关可以把行政强制措施权委托给其他组织行使。", passage)
    assert altered["paired_modality_mismatch"] and altered["paired_negation_mismatch"]
    faithful = support_features("行政强制措施权不能委托给别人。", passage)
    assert not faithful["paired_modality_mismatch"] and not faithful["paired_negation_mismatch"]
    assert paired_clauses("明天天气晴朗", passage) == []
    assert negations("10日内未提出书面意见的，视同无异议") == 2 and negations("10日内没交书面意见的，视为有异议") == 1


def test_the_title_does_not_pull_in_a_clause_and_own_organisation_words_stand_for_the_issuer():
    """开封市审计局 is said by the report's title: the part judged is the clause with the fact, not an earlier
    clause naming 《开封市审计局…制度》; 本局 in the sentence is the 我局 of the text."""
    from rag.citations import focus, support_features

    title = "开封市审计局2024年法治政府建设情况报告 三、积极推进政府法律顾问和公职律师制度"
    section = "制定出台了《开封市审计局法律顾问和公职律师工作制度》等文件，聘请我局2名同志为公职律师，参与审计项目审理。"
    claim = "开封市审计局聘请了本局2名同志担任公职律师。"
    assert focus(claim, section, context=title).startswith("聘请我局2名同志")
    assert "制度" in focus(claim, section)  # without the title the name pulls the earlier clause in
    assert support_features("聘请本局2名同志为公职律师。", section, title)["word_coverage"] == 1.0
    # a passage that speaks for no organisation does not supply 本局
    assert support_features("聘请本局2名同志为公职律师。", "聘请2名同志为公职律师。")["word_coverage"] < 1.0



def test_that_bureau_in_a_sentence_is_the_organisation_the_report_speaks_for():
    """Minutes and summaries name the report's organisation in the third person (`该局…`): the passage of a
    report supplies it as it supplies 本局, a passage that speaks for no organisation does not."""
    from rag.citations import support_features

    title = "开封市审计局2024年法治政府建设情况报告 一、主要举措和成效"
    section = "权责清单及设定依据等内容均在官网公布。"
    features = support_features("该局的权责清单和设定依据都在官网公布了。", section, title)
    assert features["word_coverage"] == 1.0 and features["missing_nouns"] == 0.0
    assert support_features("该局的权责清单和设定依据都在官网公布了。", section)["word_coverage"] < 1.0


SANCTION_PERIODS = "第八条 政务处分的期间为：（一）警告，六个月；（二）记过，十二个月；（三）记大过，十八个月；（四）降级、撤职，二十四个月。"


def test_a_figure_is_checked_where_its_subject_is_not_where_the_same_figure_stands():
    """The part judged is found by the sentence's words, not its figures: 记大过 24个月 is checked against
    记大过，十八个月 (and fails), though 二十四个月 stands two clauses later; the figure after the clauses
    that name its subject (记大过，十八个月；) belongs to them, as a year before them does."""
    from rag.citations import focus, support_features, whole_sentences

    altered = "按照政务处分法，记大过的处分期是24个月。"
    part = focus(altered, SANCTION_PERIODS)
    assert "记大过" in part and "二十四" not in part
    checked = whole_sentences(SANCTION_PERIODS, part)
    assert checked.endswith("记大过，十八个月；") and "二十四" not in checked
    assert support_features(altered, SANCTION_PERIODS)["quantity_mismatch"] == 1.0
    assert support_features("按照政务处分法，记大过的处分期是18个月。", SANCTION_PERIODS)["quantity_mismatch"] == 0.0
    assert check_support(altered, SANCTION_PERIODS).verdict != "supported"
    assert support_features("开封市审计局2024年共主动公开政府信息554条。", REPORT)["date_mismatch"] == 0.0


def test_a_quotation_is_checked_against_the_whole_passage_it_quotes():
    """An extractive answer quotes the article: all its figures stand in it, wherever the part judged lies."""
    assert check_support(f"{SANCTION_PERIODS}[1]", SANCTION_PERIODS).supported
    signed = "广州市花都区审计局\u30002025年1月20日\u3000抄送：花都区政务服务数据管理局。"
    assert check_support(signed, f"三、其他需要报告的事项\n本机关无收费情况。\n{signed}").supported


def test_ordinals_articles_and_indefinite_counts_are_not_figures():
    """第三十三条 and 第一次 are ordinals; 一个案件, 一次, 一起 (together) count nothing a sentence could get
    wrong; 半年 is 6个月 and 两年 24个月, however written; 上半年 names a period."""
    assert quantities("宪法第九十一条规定") == set() and quantities("第一次从事行政复议工作的人员") == set()
    assert quantities("第三十三条规定，20个工作日内答复") == {(20.0, "天")}
    assert quantities("一个复议案件的申请人") == quantities("多人一起走访") == quantities("每月汇报一次") == set()
    assert quantities("每半年听取一次汇报") == quantities("每6个月听一次汇报") == {(6.0, "个月")}
    assert quantities("上半年") == set() and quantities("两年内未被发现") == quantities("2年") == {(24.0, "个月")}
    assert quantities("只推选2名代表") == {(2.0, "名")}


def test_a_choice_between_doing_and_not_doing_negates_nothing():
    """批准或者不批准, 批不批准 and 是否批准 say the same; 不予批准 still negates."""
    from rag.citations import negativity_disagrees, polarity

    law = "应当自接到报告之日起3日内作出批准移送或者不批准移送的决定"
    assert not polarity(law)["negative"]
    assert not negativity_disagrees("要在接到报告后3日内决定批不批准移送", law)
    assert not negativity_disagrees("在接到移送报告之日起3日内决定是否批准移送", law)
    assert negativity_disagrees("决定不予批准移送", "决定批准移送")


def test_a_sentence_listing_every_item_is_judged_against_every_item():
    """警告6个月，记过12个月，记大过18个月，降级和撤职24个月 restates four sentences of a list article: the
    part judged holds all four (it held three, so 6个月 was "a number the passage lacks"); a changed
    figure in the list is still one."""
    from rag.citations import support_features

    article = SANCTION_PERIODS + "政务处分决定自作出之日起生效，政务处分期自政务处分决定生效之日起计算。"
    listed = "政务处分中，警告的处分期为6个月，记过12个月，记大过18个月，降级和撤职24个月。"
    assert support_features(listed, article)["quantity_mismatch"] == 0.0
    assert support_features(listed.replace("记过12个月", "记过9个月"), article)["quantity_mismatch"] == 1.0


def test_a_neighbouring_clause_does_not_lend_its_negation():
    """复议专项经费列入本级财政预算。全年没有行政复议和诉讼案件。: the second clause shares 行政复议 with the
    sentence, but its 没有 is no part of what the sentence restates; 未列入 still disagrees."""
    from rag.citations import support_features

    passage = "按规定规范设置听证室、接待室、档案室，复议专项经费列入本级财政预算。全年没有行政复议和诉讼案件。"
    assert support_features("市审计局的行政复议专项经费已列入本级财政预算。", passage)["negation_mismatch"] == 0.0
    assert support_features("市审计局的行政复议专项经费未列入本级财政预算。", passage)["negation_mismatch"] == 1.0


def test_a_condition_said_in_passing_is_compared_whole():
    """对不属于本机关管辖的移送案件，要…转给 says in passing the condition the article names apart (不属于本机关
    管辖的，应当…转送): the two are compared whole, not main clause against main clause."""
    from rag.citations import negativity_disagrees

    clause = "其中，不属于本机关管辖的，应当在２４小时内转送有管辖权的机关，并书面告知移送案件的行政执法机关。"
    assert not negativity_disagrees("公安机关对不属于本机关管辖的移送案件，要在24小时内转给有管辖权的机关。", clause)
    assert negativity_disagrees("公安机关对属于本机关管辖的移送案件，要在24小时内转给有管辖权的机关。", clause)
    assert not negativity_disagrees("赔偿义务机关在规定期限内没有作出是否赔偿的决定的，赔偿请求人可以起诉。",
                                    "赔偿义务机关在规定期限内未作出是否赔偿的决定，赔偿请求人可以自期限届满之日起三个月内，向人民法院提起诉讼。")


def test_what_a_sentence_leaves_out_it_does_not_deny():
    """请求时效是2年 restates the first clause of an article whose later clauses (…之日起计算，但被羁押等期间
    不计算在内) it leaves out: their 不 is no negation of the sentence. 不受两年时效的限制 still disagrees."""
    from rag.citations import said_part, support_features

    passage = ("第三十九条 赔偿请求人请求国家赔偿的时效为两年，自其知道或者应当知道国家机关及其工作人员行使职权时的行为侵犯其"
               "人身权、财产权之日起计算，但被羁押等限制人身自由期间不计算在内。")
    assert said_part("申请国家赔偿的请求时效是2年。", passage).startswith("第三十九条 赔偿请求人请求国家赔偿的时效为两年")
    assert "不计算在内" not in said_part("申请国家赔偿的请求时效是2年。", passage)
    assert support_features("申请国家赔偿的请求时效是2年。", passage)["negation_mismatch"] == 0.0
    assert support_features("请求国家赔偿不受两年时效的限制。", passage)["negation_mismatch"] == 1.0


def test_sentences_are_compared_sentence_by_sentence():
    """A condition is read within its sentence (…没有被发现的不再处罚；…后果的，期限延长到五年 has none before its
    ；), and two texts of as many sentences are compared one sentence against the other."""
    from rag.citations import negativity_disagrees, split_condition, support_features

    article = ("第三十六条 违法行为在二年内未被发现的，不再给予行政处罚；涉及公民生命健康安全、金融安全且有危害后果的，"
               "上述期限延长至五年。法律另有规定的除外。")
    faithful = "违法行为两年内没有被发现的不再处罚；涉及生命健康安全、金融安全且有危害后果的，期限延长到五年。"
    assert split_condition("没有被发现的不再处罚；涉及危害后果的，期限延长到五年") == ("", "没有被发现的不再处罚；涉及危害后果的，期限延长到五年")
    assert not negativity_disagrees(faithful, article[:article.index("。")])
    assert negativity_disagrees("违法行为两年内没有被发现的，仍要给予处罚；涉及生命健康安全、金融安全且有危害后果的，期限延长到五年。",
                                "违法行为在二年内未被发现的，不再给予行政处罚；涉及公民生命健康安全、金融安全且有危害后果的，上述期限延长至五年")
    assert support_features(faithful, article)["negation_mismatch"] == 0.0


def test_a_figure_is_read_with_the_clause_before_only_when_that_gives_none():
    """…60日内办结，情况复杂的经批准最多延长30日: the clause before 30日 speaks of its own figure, so 30日 is not
    judged by 办结's words (which the passage gives 60日); 30天内办结 still takes another duty's figure."""
    from rag.citations import figure_elsewhere

    article = ("第三十四条 对本条例第三十一条第六项规定的信访事项应当自受理之日起60日内办结；情况复杂的，经本机关、单位负责人"
               "批准，可以适当延长办理期限，但延长期限不得超过30日，并告知信访人延期理由。")
    assert figure_elsewhere("条例第三十一条第六项规定的信访事项应在受理后60日内办结，情况复杂的经批准最多延长30日。", article) == 0.0
    assert figure_elsewhere("信访工作条例第三十一条第六项规定的信访事项，一般要在受理之日起30天内办结。", article) > 0.3
    # a lead-in without a figure still lends its words (记大过，二十四个月)
    listed = "第八条 政务处分的期间为：\n（一）警告，六个月；\n（二）记过，十二个月；\n（三）记大过，十八个月；\n（四）降级、撤职，二十四个月。"
    assert figure_elsewhere("记大过，二十四个月。", listed) > 0.3


def test_a_negated_copula_is_a_negation():
    """本级人民政府的裁决并不是最终决定 denies what 本级人民政府的裁决为最终决定 says; 是不是 only asks."""
    from rag.citations import negativity_disagrees, polarity

    assert polarity("本级人民政府的裁决并不是最终决定")["negative"]
    assert not polarity("本级人民政府的裁决是不是最终决定")["negative"]
    assert negativity_disagrees("本级人民政府的裁决并不是最终决定。", "本级人民政府的裁决为最终决定。")


def test_need_as_a_noun_is_no_obligation():
    """可以根据需要组织 and 视需要 permit (需要 is the noun "need"), so 应当组织 against it is a changed
    obligation; 需要提交 still obliges."""
    from rag.citations import polarity, support_features

    assert polarity("可以根据需要组织专家参照资产评估方法进行估价") == polarity("可以组织专家参照资产评估方法进行估价")
    assert not polarity("投资主管部门可以视需要挑选已建成的政府投资项目")["obligation"]
    assert not polarity("因工作需要借调")["obligation"] and not polarity("确有需要的，可以延长")["obligation"]
    assert polarity("需要提交书面材料")["obligation"] and polarity("被审计单位需要配合")["obligation"]
    passage = "第三十二条 各部门及其所属单位对无法进行会计确认入账的资产，可以根据需要组织专家参照资产评估方法进行估价，并作为反映资产状况的依据。"
    assert support_features("对无法进行会计确认入账的资产，各单位应当组织专家参照资产评估方法进行估价。", passage)["modality_mismatch"] == 1.0
    assert support_features("对无法入账的资产，各单位可以视需要请专家参照资产评估方法估价。", passage)["modality_mismatch"] == 0.0


def test_a_figure_the_passage_gives_another_subject_is_flagged():
    """记大过 with 24个月: the passage gives 24个月 to 降级、撤职; a deadline of 3月31日 for what the
    passage dates 1月31日. The figure beside its own subject is not flagged."""
    from rag.citations import figure_elsewhere

    assert figure_elsewhere("按照政务处分法，记大过的处分期是24个月。", SANCTION_PERIODS) > 0
    assert figure_elsewhere("按照政务处分法，记大过的处分期是18个月。", SANCTION_PERIODS) == 0
    assert figure_elsewhere("降级的处分期是二十四个月。", SANCTION_PERIODS) == 0
    article = (
        "第四十九条 县级以上人民政府部门应当在每年1月31日前向本级政府信息公开工作主管部门提交本行政机关上一年度政府信息公开工作年度报告并向社会公布。\n"
        "县级以上地方人民政府的政府信息公开工作主管部门应当在每年3月31日前向社会公布本级政府上一年度政府信息公开工作年度报告。"
    )
    claim = "县级以上政府部门要在每年{}前，向本级政府信息公开工作主管部门提交上一年度的政府信息公开工作年度报告。"
    assert figure_elsewhere(claim.format("3月31日"), article) > 0
    assert figure_elsewhere(claim.format("1月31日"), article) == 0


def test_a_figure_the_passage_lists_beside_another_item_is_flagged():
    """行政处罚3项 where the report lists 行政处罚2项、行政强制3项: 3项 is there, beside another item. The
    figure beside its own item, a range's second figure (3000元以上5万元以下) and a figure whose item
    the passage does not name are not flagged."""
    from rag.citations import figure_rebound, support_features

    listed = "截至目前，我局共有行政权力事项16项，其中，行政处罚2项、行政强制3项、行政检查11项。权责清单及设定依据等内容均在官网公布。"
    assert figure_rebound("开封市审计局的行政权力事项中，行政处罚占3项。", listed) == 1.0
    assert figure_rebound("开封市审计局的行政权力事项中，行政处罚有2项，行政强制有3项。", listed) == 0.0
    assert figure_rebound("开封市审计局共有16项行政权力事项。", listed) == 0.0
    assert figure_rebound("开封市审计局有5名法律顾问。", listed) == 0.0
    fines = "第十七条 私存私放财政资金或者其他公款的，对单位处3000元以上5万元以下的罚款；对直接负责的主管人员处2000元以上2万元以下的罚款。"
    assert figure_rebound("私存私放财政资金的，对单位处3000元以上5万元以下罚款。", fines) == 0.0
    assert figure_rebound("私存私放财政资金的，对单位处2000元以上2万元以下罚款。", fines) == 1.0
    assert support_features("开封市审计局的行政权力事项中，行政处罚占3项。", listed)["figure_rebound"] == 1.0


def test_names_inside_a_title_and_a_name_before_a_preposition_are_read_apart():
    """《河南省政府投资建设项目审计条例》 is a title, not the organisation 河南省政府; 开封市审计局以市政府名义
    names 开封市审计局 (以市政府 is no organisation)."""
    from rag.citations import names

    assert names("《河南省政府投资建设项目审计条例》从2010年1月1日起施行。") == {"河南省政府投资建设项目审计条例"}
    assert names("目前开封市审计局以市政府名义印发的规范性文件") == {"开封市审计局"}
    assert names("开封市审计局现以市政府名义印发") == {"开封市审计局"}


def test_a_court_or_procedure_of_another_level_is_a_swap():
    """中级 against 高级 (人民法院), 行政复议 against 行政诉讼: the words share a character, the entity differs."""
    from rag.citations import swapped_words

    assert swapped_words("有特殊情况需要延长的，由中级人民法院批准。", "有特殊情况需要延长的，由高级人民法院批准。")[0] == 1
    assert swapped_words("有特殊情况需要延长的，由高级人民法院批准。", "有特殊情况需要延长的，由高级人民法院批准。") == (0, 0)


def test_the_retrieval_hint_compares_years_as_the_checker_counts_them():
    """A question asking 几年 wants passages with a period in years; the checker counts years in months, and
    the retrieval hint (`measure_family`) looks for them there too."""
    from rag.citations import measure_family
    from rag.lexicon import lexicon

    wanted = {measure_family(u) for u in lexicon().units_like("年")}
    assert {family for _, family in quantities("违法行为在二年内未被发现的")} <= wanted
    assert measure_family("天") == measure_family("日") != measure_family("年")


def test_a_verb_that_negates_in_meaning_is_a_negation():
    """拒绝 is 说不, 免征 is 不予征税, 缺乏 is 没有 (lexicon `implicit_negation`); a negation right before such
    a verb cancels it (不得拒绝 is 应当接受), two such verbs in a clause stay negative."""
    from rag.citations import negations, negativity_disagrees, polarity

    assert polarity("市场主体有权拒绝任何形式的摊派")["negative"]
    assert not negativity_disagrees("市场主体对各种形式的摊派都有权说不。", "市场主体有权拒绝任何形式的摊派。")
    assert not negativity_disagrees("赔偿请求人取得的赔偿金免征税款。", "对赔偿请求人取得的赔偿金不予征税。")
    assert not negativity_disagrees("被审计单位不提供资料的。", "被审计单位拒绝提供资料的。")
    assert negativity_disagrees("市场主体有权接受摊派。", "市场主体有权拒绝任何形式的摊派。")
    assert not polarity("不得拒绝")["negative"] and not polarity("无权拒绝")["negative"]
    assert polarity("拒绝提供资料且拒不改正的")["negative"]
    assert negations("拒绝提供资料") == negations("不提供资料") == 1


def test_obligation_is_read_from_the_whole_sentence_a_claim_restates() -> None:
    # The part of the article the claim restates ends at the comma before the sentence's verb
    # (…申请书格式文本，| 不得收费。): the claim's 可以 is compared with the whole sentence's 不得.
    article = (
        "第五十八条 行政机关实施行政许可和对行政许可事项进行监督检查，不得收取任何费用。但是，法律、行政法规另有规定的，依照其规定。"
        "行政机关提供行政许可申请书格式文本，不得收费。行政机关实施行政许可所需经费应当列入本行政机关的预算，由本级财政予以保障。"
    )
    assert support_features("行政机关向申请人提供行政许可申请书的格式文本，是可以要钱的。", article)["modality_mismatch"] == 1.0
    assert support_features("行政机关向申请人提供行政许可申请书的格式文本，可以收点钱。", article)["modality_mismatch"] == 1.0
    penalty = (
        "第七十三条 当事人对行政处罚决定不服，申请行政复议或者提起行政诉讼的，行政处罚不停止执行，法律另有规定的除外。"
        "当事人对限制人身自由的行政处罚决定不服，申请行政复议或者提起行政诉讼的，可以向作出决定的机关提出暂缓执行申请。"
    )
    kept = support_features("当事人对限制人身自由的处罚决定不服并申请复议的，可以要求作出决定的机关暂缓执行。", penalty)
    assert kept["modality_mismatch"] == 0.0 and kept["negation_mismatch"] == 0.0, kept


def test_money_in_wan_or_yi_is_compared_in_yuan():
    """2万元 = 两万元 = 20000元; 3万元 and 3亿元 are different sums (both were read as 3 元)."""
    from rag.citations import quantities

    assert quantities("处2000元以上2万元以下的罚款") == quantities("处两千元以上两万元以下罚款") == {(2000.0, "元"), (20000.0, "元")}
    assert quantities("罚款1.5万元") == quantities("罚款15000元") == {(15000.0, "元")}
    assert quantities("3万元") != quantities("3亿元")
    assert quantities("21.4万平方米") == {(21.4, "万平方米")}  # not money: read as written


def test_a_figure_in_a_table_cell_is_stated():
    """An information-disclosure report gives its figures in table cells without a unit (| 综合文苑信息 | 117 |);
    a sentence giving the cell's figure with its unit restates it, another figure does not."""
    from rag.citations import table_figures

    table = "2024年我局主动公开的698条政府信息按栏目分类统计如下: | 信息类别 | 公开条数 | | 通知公告 | 14 | | 综合文苑信息 | 117 | | 合计 | 698 |"
    assert table_figures(table) == {14.0, 117.0, 698.0}
    assert check_support("2024年主动公开的综合文苑信息共有117条。", table).features["quantity_mismatch"] == 0.0
    changed = check_support("2024年主动公开的综合文苑信息共有171条。", table)
    assert changed.features["quantity_mismatch"] == 1.0 and not changed.supported


def test_an_organisation_named_without_its_place_in_a_document_of_that_place():
    """市司法局 in a report of 开封市审计局 is 开封市司法局; 郑州市司法局 it is not."""
    passage = "出台的规范性文件自发布之日起20日内向市司法局备案。"
    title = "开封市审计局2024年法治政府建设情况报告"
    assert check_support("规范性文件要在发布之日起二十日以内报开封市司法局备案。", passage, context=title).features["name_mismatch"] == 0.0
    swapped = check_support("规范性文件要在发布之日起二十日以内报郑州市司法局备案。", passage, context=title)
    assert swapped.features["name_mismatch"] == 1.0 and not swapped.supported


@pytest.mark.parametrize("words", [("不短于", "不少于"), ("不晚于", "不得超过"), ("不多于", "最多")])
def test_bounds_in_other_words_are_bounds_not_negations(words):
    """不短于 = 不少于 (at least), 不晚于 and 不多于 = at most: limits, not negations; the opposite bound still disagrees."""
    from rag.citations import bounds, bounds_disagree

    mine, theirs = words
    assert bounds(f"期限一般{mine}30日")[0] == bounds(f"期限一般{theirs}30日")[0] != frozenset()
    assert not check_support(f"征求意见的期限一般{mine}30日。", f"向社会公开征求意见的期限一般{theirs}30日。").features["negation_mismatch"]
    assert bounds_disagree("期限一般不短于30日", "期限一般不得超过30日")


def test_a_date_is_no_quantity():
    """A date's month and day are not counts (2月12日 is no 12 days): a date written 2025-01-02 in the
    passage supports 2025年1月2日 without a missing figure; a changed day is still a date mismatch."""
    from rag.citations import quantities

    assert quantities("2025年2月12日落款") == quantities("二〇二五年二月十二日") == quantities("每年3月31日前") == set()
    assert quantities("自2024年1月1日起，期限30日") == {(30.0, "天")}
    passage = "永春县审计局2024年政府信息公开工作年度报告 发布时间：2025-01-02 办理政府信息公开申请3件，均在15个工作日内答复。"
    kept = check_support("永春县审计局的年报于2025年1月2日发布。", passage).features
    assert kept["quantity_mismatch"] == kept["quantity_absent"] == kept["date_mismatch"] == 0.0, kept
    assert check_support("永春县审计局的年报于2025年1月12日发布。", passage).features["date_mismatch"] == 1.0


def test_words_that_only_look_negative_and_verbs_that_cannot_reach_their_result():
    """不分 (regardless of) is no negation, whether jieba keeps it whole or not; 办不完 (cannot finish) is one."""
    from rag.citations import polarity

    article = "第三十四条 中华人民共和国年满十八周岁的公民，不分民族、种族、性别、职业，都有选举权和被选举权；但是依照法律被剥夺政治权利的人除外。"
    assert not polarity(article)["negative"]
    assert check_support("年满18周岁的中国公民，除依法被剥夺政治权利的人以外，都享有选举权和被选举权。", article).features["negation_mismatch"] == 0.0
    assert check_support("年满18周岁的中国公民并不都享有选举权和被选举权。", article).features["negation_mismatch"] == 1.0
    assert polarity("二十日内办不完的")["negative"] and polarity("二十日内不能作出决定的")["negative"]
    assert not polarity("二十日内差不多能作出决定")["negative"]


def test_a_proviso_after_a_comma_is_compared_with_the_laws_after_a_semicolon():
    """…不再处罚，但…延长到5年 restates …不再给予行政处罚；…延长至五年 proposition by proposition; dropping
    the 不 of the first one still disagrees."""
    article = "第三十六条 违法行为在二年内未被发现的，不再给予行政处罚；涉及公民生命健康安全、金融安全且有危害后果的，上述期限延长至五年。法律另有规定的除外。"
    kept = check_support("违法行为两年内没被发现的就不再处罚，但涉及公民生命健康安全、金融安全且有危害后果的，这个期限放宽到5年。", article)
    assert kept.features["negation_mismatch"] == 0.0, kept.features
    flipped = check_support("违法行为两年内没被发现的也要处罚，但涉及公民生命健康安全、金融安全且有危害后果的，这个期限放宽到5年。", article)
    assert flipped.features["negation_mismatch"] == 1.0 and not flipped.supported


def test_a_short_clause_said_in_other_characters_is_restated():
    """不得收费 is restated by 不能收取任何费用 (its characters besides the modal word are in the sentence):
    the prohibition is compared, so 可以收取工本费 disagrees and 不能收取任何费用 agrees."""
    from rag.citations import said_part

    clause = "行政机关提供行政许可申请书格式文本，不得收费。"
    assert said_part("行政机关向申请人提供行政许可申请书的格式文本，不能收取任何费用。", clause) == clause
    assert check_support("行政机关向申请人提供行政许可申请书的格式文本，不能收取任何费用。", clause).features["negation_mismatch"] == 0.0
    assert check_support("行政机关提供行政许可申请书格式文本时，可以收取工本费。", clause).features["negation_mismatch"] == 1.0


def test_leaving_to_choice_what_the_passage_requires_is_a_changed_obligation() -> None:
    """视情况 / 自行决定 / 可X可不X weaken a clause that leaves no choice, whether it says 应当 or states what
    is always done (均提交, 一律审核); a clause that leaves the choice itself (可以, 决定是否公开) agrees,
    and so does 3日内决定是否批准, which obliges a decision."""
    from rag.citations import polarity

    assert polarity("可以视情况决定是否组织听证")["discretion"] and polarity("保密审查可做可不做")["discretion"]
    assert polarity("是否报送由各科室自行掌握")["discretion"]
    assert not polarity("应当在3日内决定是否批准移送")["discretion"]
    assert not polarity("审查程序是否合法")["choice"] and polarity("由行政机关决定是否公开")["choice"]
    law = "第三十条 行政机关应当依法组织听证，听证由行政机关指定的非本案调查人员主持。"
    assert support_features("行政机关可以视情况决定是否依法组织听证，听证由指定的非本案调查人员主持。", law)["modality_mismatch"] == 1.0
    assert support_features("行政机关要依法组织听证，由指定的非本案调查人员主持。", law)["modality_mismatch"] == 0.0
    report = "二、规范执法。本局审计报告出具前一律经过法规科审核，确保定性准确、程序合法。"
    assert support_features("本局审计报告出具前是否经过法规科审核，可以视情况而定。", report)["modality_mismatch"] == 1.0
    assert support_features("本局审计报告在出具前都要经法规科审核。", report)["modality_mismatch"] == 0.0
    choice = "第三十二条 第三方逾期未提出意见的，由行政机关依照本条例的规定决定是否公开。"
    assert support_features("第三方过期不提意见的，由行政机关按条例自行决定是否公开。", choice)["modality_mismatch"] == 0.0


def test_a_negation_inside_a_word_jieba_made_up_is_still_read() -> None:
    """jieba's HMM joins 时不向 into one word; 受理申请时不向申请人收费 is as negative as 不得向申请人收费."""
    from rag.citations import negativity_disagrees, polarity
    from rag.segment import polar_words

    assert "不" in polar_words("受理复议申请时不向申请人收取任何费用")
    assert polar_words("来不及办完") == ["来不及", "办完"]  # a dictionary word stays whole
    assert polarity("受理复议申请时不向申请人收取任何费用")["negative"]
    assert not negativity_disagrees("受理复议申请时不向申请人收取任何费用。", "受理行政复议申请，不得向申请人收取任何费用。")


def test_only_then_requires_it_does_not_permit() -> None:
    """经审核后方可发布 requires the review: 都要审核后才能发布 restates it, 可以先发布再审核 does not."""
    from rag.citations import polarity

    assert not polarity("每条信息均经审核、校对无误后方可发布")["permission"]
    assert not polarity("经批准后才能开工")["permission"] and polarity("经批准后可以开工")["permission"]
    passage = "（三）政府信息管理。信息发布严格执行先审后发制度，每条信息均经审核、校对无误后方可发布。"
    assert support_features("信息发布执行先审后发制度，每条信息都要审核、校对无误后才能发布。", passage)["modality_mismatch"] == 0.0
    assert support_features("信息发布执行先审后发制度，每条信息可以视情况先发布再审核。", passage)["modality_mismatch"] == 1.0


def test_a_prohibited_list_led_by_a_refusal_reads_both_ways() -> None:
    """不得拒绝、阻挠、拖延 is 应当接受 and 不得阻挠 at once: a restatement of either reading agrees with it,
    while 不得拒绝 alone stays 应当接受 (it disagrees with 拒绝) and a permission still disagrees."""
    from rag.citations import negativity_disagrees, polarity

    law = "被调查、检查的单位和个人应当予以配合，如实反映情况，不得拒绝、阻挠、拖延。"
    assert polarity(law)["either"] and not polarity("不得拒绝审计人员依法执行职务")["either"]
    assert not negativity_disagrees("被查的单位和个人要配合，不能拒绝、使绊子，也不能拖着。", law)
    assert not negativity_disagrees("被查的单位和个人应当予以配合，如实反映情况。", law)
    assert negativity_disagrees("被审计单位拒绝审计人员依法执行职务。", "被审计单位不得拒绝审计人员依法执行职务。")
    assert check_support("被查的单位和个人可以拒绝、阻挠、拖延。", law).verdict != "supported"


def test_a_choice_of_a_negated_and_a_plain_act_reads_both_ways() -> None:
    """不缴或者少缴 speaks of two acts, one with its negation fused in: a restatement of the plain one (少缴)
    does not deny it. A negation before both (不得拒绝或者拖延) or on both (未履行或者不正确履行) is read as usual."""
    from rag.citations import negativity_disagrees, polarity

    law = "企业和个人有下列不缴或者少缴财政收入行为之一的，给予警告，并处不缴或者少缴财政收入10%以上30%以下的罚款。"
    assert polarity("并处不缴或者少缴财政收入的罚款")["either"]
    assert not negativity_disagrees("企业和个人少缴财政收入的，给予警告，并处少缴部分10%以上30%以下的罚款。", law)
    assert not polarity("被审计单位不得拒绝或者拖延提供资料")["either"]
    assert not polarity("未履行或者不正确履行职责的")["either"]
    assert negativity_disagrees("被审计单位拒绝提供资料。", "被审计单位不得拒绝提供资料。")


def test_a_table_figure_is_checked_against_the_whole_table() -> None:
    """A sentence naming a table's rows and its 合计 is judged against the rows it restates; the total, a row
    below them, still stands in the table: no figure is missing. A figure the table does not hold still is."""
    from rag.citations import support_features

    passage = (
        "二、主动公开政府信息情况\n2024年我局主动公开的政府信息按类别统计如下：\n| 信息类别 | 主动公开条数 |\n"
        "| 机构职能类信息 | 1 |\n| 其他类信息 | 5 |\n| 合计 | 6 |\n三、收到和处理政府信息公开申请情况\n本年度未收到申请。"
    )
    faithful = support_features("该局主动公开的6条信息中，机构职能类1条，其他类5条。", passage)
    assert not faithful["quantity_absent"] and not faithful["quantity_mismatch"]
    altered = support_features("该局主动公开的9条信息中，机构职能类1条，其他类5条。", passage)
    assert altered["quantity_absent"] or altered["quantity_mismatch"]
