"""Section trees and chunks: front matter, headings in both widths, laws, size caps, spans, no lost text."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
from conftest import COUNTY_REPORT, ORG_FIXTURES, REGULATIONS, SAMPLE_REPORT

from rag.chunking import chunk_document, pack_sentences
from rag.loaders import clean_text, load_document
from rag.metadata import read_metadata
from rag.schema import Document
from rag.structure import split_into_sections
from rag.text import sentence_spans


def make_doc(text: str, doc_type: str = "report", title: str = "测试报告") -> Document:
    return Document(source="t", path="t.txt", title=title, doc_type=doc_type, text=text, content_hash="0" * 64)


def doc_from_raw(raw: str, source: str = "t") -> Document:
    """A document the way the loader makes one: cleaned text, metadata read from the content."""
    text = clean_text(raw)
    m = read_metadata(text)
    return Document(source, f"{source}.txt", m.title, m.doc_type, text, "0" * 64, m.year, m.issuer)


FRONT_MATTER_REPORT = """青禾县人民政府门户网站
当前位置：首页 > 政务公开
青禾县审计局关于2024年法治政府建设情况的报告
青审〔2025〕3号
青禾县人民政府：
2024年，我局持续推进法治审计机关建设。现将有关情况报告如下：
一、主要工作
（一）加强普法宣传
全年开展普法活动18场。
二、存在问题
学法形式单一。
青禾县审计局
2025年1月10日
抄送：县司法局。
"""


def test_front_matter_and_trailer_are_labelled():
    doc = doc_from_raw(FRONT_MATTER_REPORT)
    tree = split_into_sections(doc)
    assert [(s.kind, s.heading) for s in tree.children] == [
        ("front", "文头"),
        ("front", "标题"),
        ("front", "抬头"),
        ("preamble", "导语"),
        ("heading", "一、主要工作"),
        ("heading", "二、存在问题"),
        ("trailer", "落款"),
    ]
    by_path = {c.heading_path: c.text for c in chunk_document(doc)}
    assert "当前位置" in by_path[("文头",)]
    assert by_path[("标题",)] == "青禾县审计局关于2024年法治政府建设情况的报告\n青审〔2025〕3号"  # the document number goes with the title
    assert by_path[("抬头",)] == "青禾县人民政府："
    assert by_path[("一、主要工作", "（一）加强普法宣传")].endswith("全年开展普法活动18场。")
    assert by_path[("落款",)] == "青禾县审计局\n2025年1月10日\n抄送：县司法局。"
    assert "抄送" not in by_path[("二、存在问题",)]


def test_a_cover_notice_carries_the_report_staff_mean():
    """关于印发《…报告》的通知: the document is typed and titled as the report it carries; the notice part
    is 文头, the report's own title line 标题 and the addressee below it 抬头 (报送给谁 asks for that one)."""
    doc = doc_from_raw(
        "涞统发〔2024〕3号\n涞阳市统计局关于印发《涞阳市统计局2023年法治政府建设情况报告》的通知\n"
        "局机关各科室：\n现将《涞阳市统计局2023年法治政府建设情况报告》印发给你们，请认真抓好落实。\n"
        "涞阳市统计局\n2024年1月19日\n涞阳市统计局2023年法治政府建设情况报告\n市委依法治市办：\n"
        "2023年，市统计局坚持依法统计。\n一、主要工作\n全年开展统计执法检查12次。\n二、存在问题\n基层力量薄弱。\n"
        "涞阳市统计局\n2024年1月18日\n"
    )
    meta = read_metadata(doc.text)
    assert (meta.title, meta.doc_type, meta.issuer, meta.year) == ("涞阳市统计局2023年法治政府建设情况报告", "report", "涞阳市统计局", 2023)
    by_path = {c.heading_path: c.text for c in chunk_document(doc)}
    assert by_path[("抬头",)] == "市委依法治市办："
    assert "印发给你们" in "".join(t for p, t in by_path.items() if p == ("文头",))
    assert by_path[("一、主要工作",)].endswith("12次。")


def test_a_signature_right_after_the_last_heading_belongs_to_the_trailer():
    doc = doc_from_raw("岚江市审计局2024年法治政府建设情况报告\n一、主要工作\n全年开展普法活动20场。\n二、存在问题\n（一）信息化水平不高\n岚江市审计局\n2025年1月10日\n")
    by_path = {c.heading_path: c.text for c in chunk_document(doc)}
    assert by_path[("二、存在问题", "（一）信息化水平不高")] == "（一）信息化水平不高"
    assert by_path[("落款",)] == "岚江市审计局\n2025年1月10日"


def test_headings_in_both_widths():
    text = "\n".join(
        [
            "一、总体情况",
            "(一)半角括号的二级标题",
            "1.半角点的三级标题。正文紧随其后。",
            "(1)半角括号数字的四级标题",
            "具体内容。",
            "二．全角点的一级标题",
            "（二）全角括号。一是第一项工作。二是第二项工作。",
            "2．全角点的三级标题。正文。",
            "12.4宪法周不是标题，而是正文中的日期。",
        ]
    )
    tree = split_into_sections(make_doc(text))
    first, second = tree.children
    assert first.heading == "一、总体情况"
    assert first.children[0].heading == "(一)半角括号的二级标题"
    level3 = first.children[0].children[0]
    assert level3.heading == "1.半角点的三级标题"
    assert level3.children[0].heading == "(1)半角括号数字的四级标题"
    assert second.heading == "二．全角点的一级标题"
    sub = second.children[0]
    assert sub.heading == "（二）全角括号"
    assert [c.heading for c in sub.children][:2] == ["一是第一项工作", "二是第二项工作"]
    three = sub.children[-1]
    assert three.heading == "2．全角点的三级标题"
    assert "12.4宪法周" in text[three.start : three.end]  # body text of 2．, not a heading


def test_a_top_heading_may_start_with_a_year_but_not_with_another_number():
    """一、2024年工作总结 / 二、２０２５年工作计划 / 四、二〇二四年工作打算 are headings (a summary and a plan
    must not share one section); 一、二级 and 二、3项 at a line start are not."""
    text = "\n".join(
        [
            "一、2024年工作总结",
            "（一）审计监督。全年开课14次。",
            "二、２０２５年工作计划",
            "（一）继续办好夜校。全年开课不少于16次。",
            "三、二〇二六年工作打算",
            "继续推进。",
            "四、存在的问题",
            "二、三级审计人员不足。",
        ]
    )
    tree = split_into_sections(make_doc(text))
    assert [c.heading for c in tree.children] == ["一、2024年工作总结", "二、２０２５年工作计划", "三、二〇二六年工作打算", "四、存在的问题"]
    assert "16次" in text[tree.children[1].start : tree.children[1].end]
    assert "14次" not in text[tree.children[1].start : tree.children[1].end]
    assert "二、三级" in text[tree.children[3].start : tree.children[3].end]  # body of 四、, not a fifth heading


def test_law_articles_chapters_and_items():
    text = "第一章 总则\n第一条 为了规范审计工作，制定本法。\n第二条 审计的种类：\n（一）预算审计；\n（二）经济责任审计。\n第二章 附则\n第三条 本法自公布之日起施行。\n"
    doc = make_doc(text, doc_type="law", title="中华人民共和国示例法")
    tree = split_into_sections(doc)
    assert [s.heading for s in tree.walk() if s.kind == "chapter"] == ["第一章 总则", "第二章 附则"]
    assert [(s.heading, s.number) for s in tree.walk() if s.kind == "article"] == [("第一条", 1), ("第二条", 2), ("第三条", 3)]
    chunks = chunk_document(doc)
    second = next(c for c in chunks if c.article == "第二条")
    assert "（二）经济责任审计。" in second.text  # items stay in their article
    assert second.chapter == "第一章 总则" and second.section == "第一章 总则 > 第二条"
    assert second.embed_text.startswith("中华人民共和国示例法\n第一章 总则 > 第二条\n")


def test_identical_chunks_of_one_document_are_stored_once():
    text = "一、工作情况\n按期完成整改任务。\n二、其他情况\n按期完成整改任务。\n三、重复\n按期完成整改任务。其他内容。\n按期完成整改任务。其他内容。"
    chunks = chunk_document(make_doc(text), max_chars=12, overlap=0)
    texts = [c.text for c in chunks]
    assert texts.count("按期完成整改任务。") == 1 and texts.count("其他内容。") == 1
    assert len({c.id for c in chunks}) == len(chunks)


LONG_REPORT = "一、工作情况\n" + "".join(f"第{i}项工作已经完成，各项指标达到要求。" for i in range(1, 60)) + "\n二、存在问题\n" + "，".join(["人员不足"] * 200) + "。"


@pytest.mark.parametrize("max_chars", [40, 80, 200, 600])
def test_no_chunk_exceeds_the_maximum_and_spans_are_exact(max_chars):
    docs = [make_doc(LONG_REPORT), doc_from_raw(FRONT_MATTER_REPORT)] + [load_document(p) for p in sorted(ORG_FIXTURES.glob("*.txt"))]
    for doc in docs:
        chunks = chunk_document(doc, max_chars=max_chars)
        assert chunks
        for c in chunks:
            assert len(c.text) <= max_chars
            assert doc.text[c.start : c.end] == c.text


def test_split_only_at_sentence_ends_with_one_sentence_overlap():
    text = "一、工作情况\n" + "".join(f"第{i}项工作已经完成。" for i in range(1, 40))
    pieces = chunk_document(make_doc(text), max_chars=60, overlap=1)
    assert len(pieces) > 3
    for a, b in zip(pieces, pieces[1:], strict=False):
        overlap = text[b.start : a.end]
        assert b.start < a.end and overlap.endswith("。") and overlap.count("。") == 1


def test_long_sentence_is_cut_below_the_limit():
    text = "第一条 " + "，".join(["审计机关依法开展工作"] * 40) + "。"
    pieces = pack_sentences(text, sentence_spans(text, 0, len(text)), 50, 1)
    assert all(e - s <= 50 for s, e in pieces)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(text)


@pytest.mark.parametrize("path", sorted(ORG_FIXTURES.glob("fictional-*")) + [COUNTY_REPORT], ids=lambda p: p.name)
def test_no_text_of_a_report_is_lost(path):
    """Every sentence is in some chunk, except the heading lines of sections with sub-sections (they
    are in the chunks' heading paths). A one-line item (（一）违规发放津贴补贴86.4万元；) counts too."""
    doc = load_document(path)
    tree = split_into_sections(doc)
    heading_lines = {doc.text[s.start : s.body_end].strip() for s in tree.walk() if s.children and s.kind == "heading"}
    chunks = chunk_document(doc)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    for s, e in sentence_spans(doc.text):
        if doc.text[s:e].strip() in heading_lines:
            continue
        missing = [i for i in range(s, e) if i not in covered and not doc.text[i].isspace()]
        assert not missing, doc.text[s:e]


# ---------------------------------------------------------------- the sample report and the laws


@pytest.fixture(scope="module")
def report():
    return load_document(SAMPLE_REPORT)


@pytest.fixture(scope="module")
def audit_law():
    return load_document(REGULATIONS / "audit-law.md")


@pytest.mark.slow
def test_report_has_five_top_sections_and_a_trailer(report):
    tree = split_into_sections(report)
    headings = [s.heading for s in tree.children if s.kind == "heading"]
    assert headings == [
        "一、坚持和加强党对法治审计工作的集中统一领导",
        "二、积极推进法治政府建设",
        "三、全面推进法治社会建设",
        "四、存在问题及原因",
        "五、下一步工作计划及建议",
    ]
    kinds = [s.kind for s in tree.children]
    assert kinds[0] == "front" and "preamble" in kinds and kinds[-1] == "trailer"
    section_five = next(s for s in tree.children if s.heading.startswith("五、"))
    trailer = tree.children[-1]
    assert "抄送" not in report.text[section_five.start : section_five.end]
    assert "抄送：开封市司法局。" in report.text[trailer.start : trailer.end]


@pytest.mark.slow
def test_report_subsections(report):
    tree = split_into_sections(report)
    two = next(s for s in tree.children if s.heading.startswith("二、"))
    subs = [c.heading for c in two.children]
    assert len(subs) == 8
    assert subs[0] == "（一）依法全面履行政府职能"
    assert [c.heading for c in two.children[0].children] == ["1．依法履行审计监督职能", "2．规范行政权力运行"]
    four = next(s for s in tree.children if s.heading.startswith("四、"))
    assert [c.heading for c in four.children] == [
        "（一）学习宣传习近平法治思想不够系统深入",
        "（二）审计执法队伍大数据运用能力仍需加强",
    ]
    six = two.children[5]  # 一是…二是… inside a paragraph become items
    assert [c.heading for c in six.children] == ["一是强化内部制约和监督", "二是主动接受外部监督"]
    assert all(c.kind == "item" for c in six.children)


@pytest.mark.slow
def test_audit_law_articles_each_one_chunk(audit_law):
    tree = split_into_sections(audit_law)
    articles = [s for s in tree.walk() if s.kind == "article"]
    assert [a.number for a in articles] == list(range(1, 61))
    chunks = chunk_document(audit_law)
    article_chunks = [c for c in chunks if c.article]
    assert len(article_chunks) == 60 and len({c.article for c in article_chunks}) == 60
    forty_four = next(c for c in article_chunks if c.article == "第四十四条")
    assert forty_four.text.startswith("第四十四条")
    assert forty_four.chapter and forty_four.chapter.startswith("第") and forty_four.chapter in forty_four.section
    assert "中华人民共和国审计法" in forty_four.embed_text
    chapters = [s.heading for s in tree.walk() if s.kind == "chapter"]
    assert chapters[0] == "第一章 总则" and len(chapters) == 7


@pytest.mark.slow
def test_items_stay_in_their_article():
    doc = load_document(REGULATIONS / "administrative-penalty-law.md")
    chunk = next(c for c in chunk_document(doc) if c.article == "第九条")
    assert "（一）警告、通报批评" in chunk.text
    assert "（六）法律、行政法规规定的其他行政处罚" in chunk.text


@pytest.mark.slow
@pytest.mark.parametrize("max_chars", [80, 200, 600])
def test_corpus_chunks_respect_the_maximum_and_spans(max_chars, report):
    docs = [report] + [load_document(Path(p)) for p in sorted(glob.glob(str(REGULATIONS / "*.md")))]
    for doc in docs:
        for c in chunk_document(doc, max_chars=max_chars):
            assert len(c.text) <= max_chars
            assert doc.text[c.start : c.end] == c.text


@pytest.mark.slow
def test_chunks_never_cross_a_top_level_section(report):
    tree = split_into_sections(report)
    tops = [(s.start, s.end) for s in tree.children]
    for c in chunk_document(report, max_chars=150):
        assert any(s <= c.start and c.end <= e for s, e in tops), c.section
        assert c.top_section == c.heading_path[0]


@pytest.mark.slow
def test_report_chunks_carry_heading_paths(report):
    chunks = chunk_document(report)
    assert "二、积极推进法治政府建设 > （一）依法全面履行政府职能 > 1．依法履行审计监督职能" in {c.section for c in chunks}
    first = next(c for c in chunks if c.section.endswith("1．依法履行审计监督职能"))
    assert first.embed_text.startswith(report.title + "\n二、积极推进法治政府建设 > ")


@pytest.mark.slow
def test_report_sections_split_only_at_sentence_ends(report):
    # Every sentence of this section is shorter than 200 characters, so every cut is at a sentence end.
    same_section = [c for c in chunk_document(report, max_chars=200, overlap=1) if c.section.endswith("1．加强普法宣传力度")]
    assert len(same_section) >= 2
    for c in same_section[:-1]:
        assert c.text.endswith(("。", "；", "！", "？", "”", "）")), c.text[-10:]
