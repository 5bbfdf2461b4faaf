"""rag.orgs: the organisations of the indexed documents and the ones a question names."""

from __future__ import annotations

import pytest

from rag.metadata import title_years
from rag.orgs import build_org_catalog, organisation_names, place_chain, short_forms
from rag.schema import DocRecord


def record(source: str, issuer: str | None, year: int | None, doc_type: str = "report", title: str | None = None) -> DocRecord:
    return DocRecord(source, f"{source}.txt", title or f"{issuer}{year}年法治政府建设情况报告", doc_type, year, issuer, "0" * 64, 3, 100)


RECORDS = [
    record("huadu-2024", "广州市花都区审计局", 2024),
    record("kaifeng-2024", "开封市审计局", 2024),
    record("qinghe-2023", "青禾县审计局", 2023),
    record("qinghe-2024", "青禾县审计局", 2024),
    record("nao-2024", "审计署", 2024),
    record("heyu-gov-2024", "鹤屿市人民政府", 2024),
    record("audit-law", "全国人民代表大会常务委员会", 2021, "law", "中华人民共和国审计法"),
    record("undated", None, None, "other", "会议记录"),
]


@pytest.fixture(scope="module")
def catalog():
    return build_org_catalog(RECORDS, own="开封市审计局")


def test_short_forms():
    assert place_chain("广州市花都区审计局") == (["广州市", "花都区"], "审计局")
    assert short_forms("广州市花都区审计局") >= {"广州市花都区审计局", "花都区审计局", "花都审计局"}
    assert short_forms("审计署") == {"审计署", "国家审计署"}
    assert short_forms("鹤屿市人民政府") >= {"鹤屿市人民政府", "鹤屿市政府"}
    assert short_forms("雪岭藏族自治州审计局") >= {"雪岭州审计局", "雪岭审计局"}


def test_catalog_holds_the_issuers_of_dated_documents(catalog):
    assert sorted(catalog.issuers()) == sorted(["广州市花都区审计局", "开封市审计局", "青禾县审计局", "审计署", "鹤屿市人民政府"])
    assert "全国人民代表大会常务委员会" not in catalog.issuers()  # a law's issuer is not an organisation one asks about
    assert catalog.several and catalog.own_issuer == "开封市审计局"
    assert catalog.entry("青禾县审计局").years == (2023, 2024)
    assert catalog.resolve("花都审计局").issuer == "广州市花都区审计局"
    assert catalog.resolve("没有这个局") is None
    assert not build_org_catalog(RECORDS[:1]).several


@pytest.mark.parametrize(
    "question, issuer",
    [
        ("广州市花都区审计局2024年主动公开了多少条政府信息？", "广州市花都区审计局"),
        ("花都区审计局2024年主动公开了多少条？", "广州市花都区审计局"),
        ("花都审计局公开了多少条信息？", "广州市花都区审计局"),
        ("青禾审计局2023年开展了几场普法活动？", "青禾县审计局"),
        ("国家审计署2024年的法治工作", "审计署"),
        ("鹤屿市政府2024年审核了多少件规范性文件？", "鹤屿市人民政府"),
    ],
)
def test_questions_name_organisations_in_short_forms(catalog, question, issuer):
    mention = catalog.mentions(question)
    assert [e.issuer for e in mention.known] == [issuer]
    assert mention.unknown == () and not mention.by_place and mention.named


def test_a_place_alone_is_a_weaker_mention(catalog):
    mention = catalog.mentions("花都区2024年公开了多少条政府信息？")
    assert [e.issuer for e in mention.known] == ["广州市花都区审计局"] and mention.by_place


@pytest.mark.parametrize("question, name", [
    ("杭州市审计局2024年完成了多少个审计项目？", "杭州市审计局"),
    ("南安市审计局的普法情况", "南安市审计局"),
    # rare place names that jieba cuts into a single character and the rest (茗/溪区, 嵘/州市)
    ("茗溪区审计局2023年度审计工作报告里，区本级一般公共预算收入是多少？", "茗溪区审计局"),
    ("嵘州市审计局2023年完成了几个项目？", "嵘州市审计局"),
    ("栖梧县应急管理局2024年开展了多少次执法检查？", "栖梧县应急管理局"),  # 栖 / 梧县, 栖 tagged a verb morpheme
    ("蒲溪乡人民政府2023年办理了多少件执法案件？", "蒲溪乡人民政府"),  # a township
    ("瀍岙县审计局2024年培训了多少人次？", "瀍岙县审计局"),  # 瀍 alone, tagged yg (a morpheme)
    ("鄄岙市审计局2024年完成了几个项目？", "鄄岙市审计局"),  # 鄄 alone, tagged g (a morpheme)
])
def test_organisations_not_indexed_are_reported_as_unknown(catalog, question, name):
    mention = catalog.mentions(question)
    assert mention.known == () and mention.unknown == (name,)


def test_an_unknown_office_keeps_the_whole_of_an_indexed_place_name():
    """jieba reads a rare place name as one character and the rest (淇 / 岑市): the office named with it
    is reported with the whole place name, not from where the cut fell."""
    places = build_org_catalog([record("qicen-2025", "淇岑市审计局", 2025), record("kaifeng-2024", "开封市审计局", 2024)])
    mention = places.mentions("淇岑市市场监督管理局2025年立案查处了多少件违法案件？")
    assert mention.unknown == ("淇岑市市场监督管理局",)


def test_everyday_words_for_our_bureau_are_the_own_organisation(catalog):
    for question in ("咱局的常年法律顾问是哪家律师事务所？", "咱们局2024年的报告报送给哪个单位？", "我们局去年公开了多少条信息？"):
        mention = catalog.mentions(question)
        assert mention.own and [e.issuer for e in mention.known] == ["开封市审计局"], question


@pytest.mark.parametrize("question, name", [
    ("开封市税务局2024年收到了多少件政府信息公开申请？", "开封市税务局"),
    ("开封市市场监督管理局2024年罚款多少？", "开封市市场监督管理局"),
])
def test_another_office_of_an_indexed_place_is_unknown(catalog, question, name):
    """An indexed organisation's place before another office (税务局) names an organisation not indexed."""
    mention = catalog.mentions(question)
    assert mention.by_place and mention.unknown == (name,)
    assert catalog.mentions("开封市审计局向市公安局移送了几件线索？").unknown == ()
    # the usual short form of an indexed office is that office, not another one
    market = build_org_catalog([record("huyang-2023", "湖阳市市场监督管理局", 2023)])
    mention = market.mentions("湖阳市市场监管局2023年收了多少罚没款？")
    assert [e.issuer for e in mention.known] == ["湖阳市市场监督管理局"] and mention.unknown == () and not mention.by_place


@pytest.mark.parametrize("question, issuer", [
    ("花都局对区政府2023年度的审计工作报告做了什么解读？", "广州市花都区审计局"),
    ("青禾局向县政府报送了哪些材料？", "青禾县审计局"),
])
def test_a_short_office_name_ends_the_place_before_it(catalog, question, issuer):
    """花都局对区政府 is 花都局, then 对区政府: a place name never runs over an office's last character (局), so
    the bureau named by its place and 局 is no unknown organisation ending in 政府."""
    mention = catalog.mentions(question)
    assert mention.unknown == () and [e.issuer for e in mention.known] == [issuer]
    assert organisation_names(question) == []


def test_a_clause_before_an_office_is_no_organisation(catalog):
    """镇里说得等县审计局审计完: a place before 说, 得, 等 is a clause, not an unknown organisation's name."""
    mention = catalog.mentions("活早干完了，镇里说得等县审计局审计完才能结账。审计局应该多久出报告？")
    assert mention.unknown == ()


@pytest.mark.parametrize("question", ["县级以上地方各级人民政府应当如何公开信息？", "规范性文件发布后多少日内向市司法局备案？", "审计机关有哪些职责？"])
def test_generic_phrases_are_not_organisations(catalog, question):
    mention = catalog.mentions(question)
    assert mention.unknown == () and not mention.own


def test_our_bureau_means_the_users_organisation(catalog):
    mention = catalog.mentions("我局2024年开展了多少场普法活动？")
    assert mention.own and [e.issuer for e in mention.known] == ["开封市审计局"]
    without = build_org_catalog(RECORDS).mentions("我局2024年开展了多少场普法活动？")
    assert without.own and without.known == ()  # no RAG_ORG: 我局 names no one in particular
    # RAG_ORG may be given in a short form of an indexed issuer.
    assert build_org_catalog(RECORDS, own="花都审计局").own_issuer == "广州市花都区审计局"


def test_government_offices_by_their_usual_short_name_and_years_named_in_titles():
    """区政府办 is how people name a 区人民政府办公室; a 2023年工作总结和2024年工作计划 is about 2024 too."""
    assert short_forms("六安市金安区人民政府办公室") >= {"金安区政府办", "六安市金安区政府办", "金安区政府办公室"}
    records = RECORDS + [
        record("jinan-2023", "六安市金安区人民政府办公室", 2023),
        record("deyang-2023", "德阳市审计局", 2023, title="德阳市审计局2023年工作总结和2024年工作计划"),
    ]
    catalog = build_org_catalog(records)
    mention = catalog.mentions("金安区政府办2023年立项督办了多少件事？")
    assert [e.issuer for e in mention.known] == ["六安市金安区人民政府办公室"] and not mention.unknown
    deyang = catalog.entry("德阳市审计局")
    assert deyang is not None and deyang.years == (2023, 2024)
    assert title_years("德阳市审计局２０２３年工作总结和2024年工作计划") == {2023, 2024}


def test_a_year_named_in_a_title_passes_the_year_guard():
    from rag.answer import year_guard
    from rag.query import analyze_query, build_law_catalog
    from rag.schema import Hit

    plan_doc = record("deyang-2023", "德阳市审计局", 2023, title="德阳市审计局2023年工作总结和2024年工作计划")
    catalog = build_org_catalog([plan_doc])
    laws = build_law_catalog([plan_doc], {})
    hit = Hit("deyang-2023:9", "deyang-2023", plan_doc.title, "report", "计划安排审计项目48个。", "二、2024年工作计划", None, 2023, 1.0,
              issuer="德阳市审计局")
    summary = Hit("deyang-2023:3", "deyang-2023", plan_doc.title, "report", "全年共完成审计项目46个。", "一、2023年工作总结", None, 2023,
                  1.0, issuer="德阳市审计局")
    # The 2024 question draws on the 2024 plan, not on the 2023 summary of the same document.
    kept, refusal = year_guard(analyze_query("德阳审计局2024年打算安排多少个审计项目？", laws, catalog), [hit, summary], catalog, [2023])
    assert kept == [hit] and refusal is None
    kept, refusal = year_guard(analyze_query("德阳审计局2023年完成了多少个审计项目？", laws, catalog), [hit, summary], catalog, [2023])
    assert kept == [hit, summary] and refusal is None
    # When the organisation's own report of 2024 is found, it speaks for 2024, not the earlier plan.
    report = Hit("deyang-2024:4", "deyang-2024", "德阳市审计局2024年法治政府建设情况报告", "report", "完成审计项目51个，较上年增加5个。",
                 "一、主要工作", None, 2024, 1.0, issuer="德阳市审计局")
    kept, refusal = year_guard(analyze_query("德阳审计局2024年完成的审计项目比上年多几个？", laws, catalog), [hit, summary, report], catalog, [2023, 2024])
    assert kept == [report] and refusal is None
    kept, refusal = year_guard(analyze_query("德阳审计局2021年完成了多少个审计项目？", laws, catalog), [hit], catalog, [2023])
    assert kept == [] and refusal is not None and "2021年" in refusal and "2023年、2024年" in refusal


def test_an_organisation_and_a_year_draw_on_that_document_not_on_a_law():
    from rag.answer import year_guard
    from rag.query import analyze_query, build_law_catalog
    from rag.schema import Hit

    summary = record("qifeng-2023", "澜州市栖凤区审计局", 2023, title="栖凤区审计局2023年工作总结")
    catalog = build_org_catalog([summary])
    laws = build_law_catalog([summary], {})
    law = Hit("gov-info:34", "gov-info", "中华人民共和国政府信息公开条例", "law", "第三十四条 申请公开的政府信息由两个以上行政机关共同制作的……", "第三十四条", "第三十四条", None, 1.0)
    own = Hit("qifeng-2023:3", "qifeng-2023", summary.title, "report", "全年完成审计项目21个。", "一、主要工作", None, 2023, 0.5, issuer="澜州市栖凤区审计局")
    plan = analyze_query("栖凤区审计局2023年依申请公开收到了几件申请？", laws, catalog)
    assert year_guard(plan, [law, own], catalog, [2023]) == ([own], None)
    kept, refusal = year_guard(plan, [law], catalog, [2023])
    assert kept == [] and refusal is not None and "栖凤区审计局2023年" in refusal
    # Without a year the law stays available (审计署在谁的领导下工作？ is answered by a law).
    kept, refusal = year_guard(analyze_query("栖凤区审计局依申请公开要多少天内答复？", laws, catalog), [law, own], catalog, [2023])
    assert kept == [law, own] and refusal is None


def test_a_year_phrase_matches_with_or_without_du():
    """`对2022年审计查出来的问题` in a 2023 report that says `2022年度审计查出的216个问题`: the report states
    the question's year phrase, so the year guard keeps it."""
    from rag.answer import year_phrase_in

    assert year_phrase_in("吴兴审计局对2022年审计查出来的问题整改了多少？", 2022, "对2022年度审计查出的216个问题开展跟踪督促")
    assert year_phrase_in("2023年度区级预算执行得怎样？", 2023, "审计2023年区级预算执行情况")
    assert not year_phrase_in("2022年审计了多少个项目？", 2022, "2023年审计了45个项目")


def test_one_organisation_under_a_short_and_a_full_name_is_one_entry():
    """One report's metadata names the city (泓州市云塘区审计局), another year's only the district: one
    organisation, its years together, both forms in the search scope; 云塘区司法局 stays apart."""
    from rag.orgs import fullest_forms
    from rag.query import analyze_query, build_law_catalog

    records = [
        record("yt-2023", "泓州市云塘区审计局", 2023),
        record("yt-2024", "云塘区审计局", 2024),
        record("yt-justice", "云塘区司法局", 2024),
        record("audit-law", None, 2021, "law", "中华人民共和国审计法"),
    ]
    assert fullest_forms({"泓州市云塘区审计局", "云塘区审计局", "审计局"}) == {
        "泓州市云塘区审计局": "泓州市云塘区审计局", "云塘区审计局": "泓州市云塘区审计局", "审计局": "审计局"}
    orgs = build_org_catalog(records)
    assert sorted(orgs.issuers()) == ["云塘区司法局", "泓州市云塘区审计局"]
    entry = orgs.entry("云塘区审计局")
    assert entry is orgs.entry("泓州市云塘区审计局") and entry.years == (2023, 2024)
    assert entry.all_issuers == {"云塘区审计局", "泓州市云塘区审计局"}
    mention = orgs.mentions("泓州市云塘区审计局2024年查出问题金额多少？")
    assert [e.issuer for e in mention.known] == ["泓州市云塘区审计局"]
    from rag.retrieve import HybridRetriever

    plan = analyze_query("泓州市云塘区审计局2024年查出问题金额多少？", build_law_catalog([]), orgs)
    where, scoped = HybridRetriever.org_scope(None, plan)  # type: ignore[arg-type]
    assert scoped == ("泓州市云塘区审计局",)
    assert where == {"$or": [{"doc_type": "law"}, {"issuer": {"$in": ["云塘区审计局", "泓州市云塘区审计局"]}}]}


def test_a_proviso_is_answered_with_the_clause_it_qualifies():
    """A clause opening with 但是 qualifies the one before it: quoted alone it says something else."""
    from rag.answer import _neighbours
    from rag.evidence import Candidate
    from rag.query import analyze_query, build_law_catalog
    from rag.schema import Hit

    law = record("reconsideration", None, 2023, doc_type="law", title="中华人民共和国行政复议法")
    text = "第二十条 公民可以自知道该行政行为之日起六十日内提出行政复议申请；但是法律规定的申请期限超过六十日的除外。因不可抗力耽误的，申请期限自障碍消除之日起继续计算。"
    hit = Hit("reconsideration:20", "reconsideration", law.title, "law", text, "第三章", "第二十条", 2023, 1.0)
    start = text.index("但是")
    end = text.index("。", start) + 1
    plan = analyze_query("行政复议 申请期限 多少天", build_law_catalog([law], {}), build_org_catalog([law]))
    chosen = _neighbours(Candidate(hit, 0, start, end, text[start:end]), plan)
    assert [c.text for c in chosen][:2] == ["第二十条 公民可以自知道该行政行为之日起六十日内提出行政复议申请；", "但是法律规定的申请期限超过六十日的除外。"]


def test_a_rule_is_answered_with_what_follows_when_it_is_not_kept():
    """The next clause whose condition restates the rule (10日内未提出书面意见的，…) says what happens
    when it is not kept; a next clause on something else, or a new article, is not added."""
    from rag.answer import _neighbours
    from rag.evidence import Candidate
    from rag.query import analyze_query, build_law_catalog
    from rag.schema import Hit

    law = record("regs", None, 2010, doc_type="law", title="中华人民共和国审计法实施条例")
    text = "第三十九条 被审计单位应当自接到审计组的审计报告之日起10日内，提出书面意见；10日内未提出书面意见的，视同无异议。被审计单位负责人应当对书面意见签字。"
    hit = Hit("regs:39", "regs", law.title, "law", text, "第五章", "第三十九条", 2010, 1.0)
    end = text.index("；") + 1
    plan = analyze_query("对方过了十来天一直没回意见", build_law_catalog([law], {}), build_org_catalog([law]))
    chosen = _neighbours(Candidate(hit, 0, 0, end, text[:end]), plan)
    assert [c.text for c in chosen] == [text[:end], "10日内未提出书面意见的，视同无异议。"]

    other = "第四十条 审计机关应当自收到审计报告之日起30日内作出决定；被审计单位负责人认为需要的，可以申请复核。第四十一条 不能按期的，报告上级。"
    hit = Hit("regs:40", "regs", law.title, "law", other, "第五章", "第四十条", 2010, 1.0)
    end = other.index("；") + 1
    assert [c.text for c in _neighbours(Candidate(hit, 0, 0, end, other[:end]), plan)] == [other[:end]]
