"""Section trees and chunks: reports, laws, headings in both widths, size caps, spans."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from conftest import REGULATIONS, SAMPLE_REPORT
from rag.chunking import chunk_document, pack_sentences, sentence_spans
from rag.loaders import load_document
from rag.schema import Document
from rag.structure import split_into_sections


def make_doc(text: str, doc_type: str = "report", title: str = "测试报告") -> Document:
    return Document(source="t", path="t.txt", title=title, doc_type=doc_type, text=text, content_hash="0" * 64)


@pytest.fixture(scope="module")
def report():
    return load_document(SAMPLE_REPORT)


@pytest.fixture(scope="module")
def audit_law():
    return load_document(REGULATIONS / "audit-law.md")


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
    assert kinds[0] == "preamble" and kinds[-1] == "trailer"
    section_five = tree.children[-2]
    trailer = tree.children[-1]
    assert "抄送" not in report.text[section_five.start : section_five.end]
    assert "抄送：开封市司法局。" in report.text[trailer.start : trailer.end]


def test_report_subsections(report):
    tree = split_into_sections(report)
    two = tree.children[2]
    subs = [c.heading for c in two.children]
    assert len(subs) == 8
    assert subs[0] == "（一）依法全面履行政府职能"
    assert [c.heading for c in two.children[0].children] == ["1．依法履行审计监督职能", "2．规范行政权力运行"]
    four = tree.children[4]
    assert [c.heading for c in four.children] == [
        "（一）学习宣传习近平法治思想不够系统深入",
        "（二）审计执法队伍大数据运用能力仍需加强",
    ]
    # 一是…二是… inside a paragraph become items.
    six = two.children[5]
    assert [c.heading for c in six.children] == ["一是强化内部制约和监督", "二是主动接受外部监督"]
    assert all(c.kind == "item" for c in six.children)


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
    # "12.4宪法周…" is body text of 2．, not a heading.
    assert "12.4宪法周" in text[three.start : three.end]


def test_audit_law_articles_each_one_chunk(audit_law):
    tree = split_into_sections(audit_law)
    articles = [s for s in tree.walk() if s.kind == "article"]
    assert len(articles) == 60
    assert [a.number for a in articles] == list(range(1, 61))
    chunks = chunk_document(audit_law)
    article_chunks = [c for c in chunks if c.article]
    assert len(article_chunks) == 60
    assert len({c.article for c in article_chunks}) == 60
    forty_four = next(c for c in article_chunks if c.article == "第四十四条")
    assert forty_four.text.startswith("第四十四条")
    assert forty_four.chapter == "第四章 审计机关权限" or forty_four.chapter.startswith("第")
    assert forty_four.chapter in forty_four.section
    assert "中华人民共和国审计法" in forty_four.embed_text
    chapters = [s.heading for s in tree.walk() if s.kind == "chapter"]
    assert chapters[0] == "第一章 总则" and len(chapters) == 7


def test_paragraphs_and_items_stay_in_their_article():
    doc = load_document(REGULATIONS / "administrative-penalty-law.md")
    chunk = next(c for c in chunk_document(doc) if c.article == "第九条")
    assert "（一）警告、通报批评" in chunk.text
    assert "（六）法律、行政法规规定的其他行政处罚" in chunk.text


@pytest.mark.parametrize("max_chars", [80, 200, 600])
def test_no_chunk_exceeds_the_maximum_and_spans_are_exact(max_chars, report):
    docs = [report] + [load_document(Path(p)) for p in sorted(glob.glob(str(REGULATIONS / "*.md")))[:6]]
    for doc in docs:
        chunks = chunk_document(doc, max_chars=max_chars)
        assert chunks
        for c in chunks:
            assert len(c.text) <= max_chars
            assert doc.text[c.start : c.end] == c.text


def test_chunks_never_cross_a_top_level_section(report):
    tree = split_into_sections(report)
    tops = [(s.start, s.end) for s in tree.children]
    for c in chunk_document(report, max_chars=150):
        assert any(s <= c.start and c.end <= e for s, e in tops), c.section
        assert c.top_section == c.heading_path[0]


def test_report_chunks_carry_heading_paths(report):
    chunks = chunk_document(report)
    paths = {c.section for c in chunks}
    assert "二、积极推进法治政府建设 > （一）依法全面履行政府职能 > 1．依法履行审计监督职能" in paths
    first = next(c for c in chunks if c.section.endswith("1．依法履行审计监督职能"))
    assert first.embed_text.startswith(report.title + "\n二、积极推进法治政府建设 > ")


def test_split_only_at_sentence_ends_with_overlap(report):
    # Every sentence of this section is shorter than 200 characters, so every cut is at a sentence end.
    chunks = chunk_document(report, max_chars=200, overlap=1)
    same_section = [c for c in chunks if c.section.endswith("1．加强普法宣传力度")]
    assert len(same_section) >= 2
    for c in same_section[:-1]:
        assert c.text.endswith(("。", "；", "！", "？", "”", "）")), c.text[-10:]
    # Short sentences: consecutive pieces share one sentence.
    text = "一、工作情况\n" + "".join(f"第{i}项工作已经完成。" for i in range(1, 40))
    pieces = chunk_document(make_doc(text), max_chars=60, overlap=1)
    assert len(pieces) > 3
    for a, b in zip(pieces, pieces[1:]):
        overlap = text[b.start : a.end]
        assert b.start < a.end and overlap.endswith("。") and overlap.count("。") == 1


def test_long_sentence_is_cut_below_the_limit():
    text = "第一条 " + "，".join(["审计机关依法开展工作"] * 40) + "。"
    spans = sentence_spans(text, 0, len(text))
    pieces = pack_sentences(text, spans, 50, 1)
    assert all(e - s <= 50 for s, e in pieces)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(text)
