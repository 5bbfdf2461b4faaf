"""Drafting report sections from past reports: carrying text forward, placeholders, merging, legal basis, export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from conftest import REPORT, SAMPLE_REPORT

from rag.citations import PLACEHOLDER_RE
from rag.draft import Drafter, carry_forward, heading_similarity, renumber
from rag.export import to_markdown, write_docx
from rag.llm import make_fake_chat_model, rewrite_is_faithful
from rag.loaders import load_document
from rag.structure import split_into_sections

FIXTURE = "fictional-county-audit-bureau-2023-report"
QINGHE = "qinghe-audit-bureau-2023-report"


def test_carry_forward_rules():
    text, found = carry_forward("2024年，我局办理案件12件，比上年增长15%，制定《2024年工作要点》，2012年印发的文件继续有效。每季度不少于1次。", 2024, 2025)
    assert text.startswith("2025年，我局办理案件【待更新：原为12件】")
    assert "【待更新：原为15%】" in text and "《【待更新：原为2024年】工作要点》" in text  # a document of last year
    assert "2012年印发" in text and "不少于1次" in text
    assert [p.old for p in found] == ["12件", "15%", "2024年"]
    assert all(p.context.startswith("2024年，我局办理案件12件") for p in found)


def test_dates_rankings_and_amounts_become_placeholders_statutory_periods_do_not():
    text, found = carry_forward("2024年3月5日召开会议，获得一等奖，排名第2，自收到之日起10日内答复，共18场、800份、1200万元。", 2024, 2025)
    assert [p.old for p in found] == ["2024年3月5日", "一等奖", "排名第2", "18场", "800份", "1200万元"]
    assert "自收到之日起10日内答复" in text
    assert PLACEHOLDER_RE.sub("", text).count("2024") == 0


def test_headings_and_numbering():
    assert heading_similarity("法治社会建设", "三、全面推进法治社会建设") == 1.0
    assert heading_similarity("存在问题", "四、存在问题及原因") == 1.0
    assert heading_similarity("数字政府建设", "四、存在问题及原因") < 0.5
    assert renumber("（三）推进信息化", 9) == "（九）推进信息化"
    assert renumber("三、其他", 4) == "四、其他" and renumber("3．小节", 5) == "5．小节"


def test_a_rewrite_must_keep_placeholders_citations_and_numbers():
    original = "全年开展普法活动【待更新：原为12场】。[1]"
    assert rewrite_is_faithful(original, "全年共开展普法活动【待更新：原为12场】。[1]") is None
    assert rewrite_is_faithful(original, "全年开展普法活动12场。[1]") == "占位符被改动"
    assert rewrite_is_faithful(original, "全年开展普法活动【待更新：原为12场】，覆盖300人。[1]") == "出现了材料中没有的数字"
    assert rewrite_is_faithful(original, "全年开展普法活动【待更新：原为12场】。[2]") == "引用编号缺失或不在材料中"


@pytest.fixture(scope="module")
def tiny_drafter(tiny_components):
    return tiny_components.drafter


def test_draft_a_section_of_a_past_report(tiny_drafter):
    draft = tiny_drafter.draft("主要工作", 2024, sources=[QINGHE])
    assert draft.matched == ("一、主要工作",) and draft.sources_used == (QINGHE,) and draft.year == 2024
    text = draft.draft
    assert text.index("（一）加强普法宣传") < text.index("（二）推进政务公开")
    assert "2024年，青禾县审计局开展普法活动【待更新：原为12场】" in text
    body = [line for line in text.splitlines() if line.strip() and not line.startswith(("#", "**"))]
    assert body and all(re.search(r"\[\d+\]$", line) for line in body)
    assert len(draft.citations) == max(int(n) for n in re.findall(r"\[(\d+)\]", text))
    assert {p.old for p in draft.placeholders} == {"12场", "800份", "52条"}
    assert "2023年" not in PLACEHOLDER_RE.sub("", text)
    assert any("【待更新】" in n for n in draft.notices)


def test_the_target_year_defaults_to_the_year_after_the_latest_report(tiny_drafter):
    assert tiny_drafter.draft("存在问题", sources=[QINGHE]).year == 2024
    assert tiny_drafter.draft("主要工作").year == 2025


def test_no_matching_section_gives_an_outline_and_says_so(tiny_drafter):
    draft = tiny_drafter.draft("数字政府建设", 2025)
    assert draft.matched == ()
    assert any("未在往年报告中找到" in n for n in draft.notices)
    assert draft.citations and "[1]" in draft.draft


def test_drafting_errors(tiny_drafter):
    with pytest.raises(ValueError, match="章节标题"):
        tiny_drafter.draft("  ")
    with pytest.raises(ValueError, match="未找到指定的往年报告"):
        tiny_drafter.draft("主要工作", sources=["no-such-report"])


def test_fake_llm_rewrite_is_checked_and_kept(tiny_components):
    """The FAKE chat model returns the material as it is: a faithful rewrite, so it is kept."""
    settings = tiny_components.settings.with_(llm={"mode": "fake"})
    drafter = Drafter(tiny_components.retriever, settings, chat_model=make_fake_chat_model())
    draft = drafter.draft("主要工作", 2024, sources=[QINGHE])
    assert any("润色" in n for n in draft.notices)
    assert sorted(PLACEHOLDER_RE.findall(draft.draft)) == sorted(f"【待更新：原为{p.old}】" for p in draft.placeholders)


def test_markdown_and_docx_export_of_a_small_draft(tiny_drafter, tmp_path):
    from docx import Document

    draft = tiny_drafter.draft("主要工作", 2024, sources=[QINGHE])
    markdown = to_markdown(draft)
    assert markdown.startswith("# 主要工作（2024年草稿）") and "## 待更新的数字" in markdown and "## 参考来源" in markdown
    assert f"[{len(draft.citations)}] 《" in markdown
    document = Document(str(write_docx(draft, tmp_path / "draft.docx")))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "（一）加强普法宣传" in text and "【待更新：原为12场】" in text and "参考来源" in text


# ---------------------------------------------------------------- the sample report (real models)


@pytest.fixture(scope="module")
def drafter(draft_components):
    return draft_components.drafter


@pytest.fixture(scope="module")
def sample_tree():
    return split_into_sections(load_document(SAMPLE_REPORT))


SECTIONS = ["坚持和加强党对法治审计工作的集中统一领导", "积极推进法治政府建设", "法治社会建设", "存在问题", "下一步工作计划"]


@pytest.mark.slow
@pytest.mark.parametrize("title", SECTIONS)
def test_each_section_of_the_sample_report(drafter, sample_tree, title):
    draft = drafter.draft(title, 2025, sources=[REPORT])
    section = next(s for s in sample_tree.children if s.kind == "heading" and heading_similarity(title, s.heading) == 1.0)
    assert draft.matched == (section.heading,)
    assert draft.year == 2025 and draft.sources_used == (REPORT,)
    text = draft.draft
    # Every heading and sub-heading is kept, in order.
    headings = [s.heading for s in section.walk() if s.kind == "heading"]
    positions = [text.find(h) for h in headings]
    assert all(p >= 0 for p in positions), [h for h, p in zip(headings, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    # Every paragraph of body text carries a citation.
    body = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert body and all(re.search(r"\[\d+\]$", line) for line in body)
    assert len(draft.citations) == max(int(n) for n in re.findall(r"\[(\d+)\]", text))
    # No figure of 2024 is presented as a 2025 fact.
    for placeholder in draft.placeholders:
        assert f"【待更新：原为{placeholder.old}】" in text
    assert "2024年" not in re.sub(r"（20\d\d—20\d\d年）", "", PLACEHOLDER_RE.sub("", text))


@pytest.mark.slow
def test_figures_become_placeholders_and_the_year_moves(drafter):
    draft = drafter.draft("积极推进法治政府建设", 2025, sources=[REPORT])
    olds = {p.old for p in draft.placeholders}
    assert {"554条", "16项", "20余项", "100%", "二等奖"} <= olds
    assert "1．依法履行审计监督职能。2025年，市审计局" in draft.draft
    assert "554条" not in PLACEHOLDER_RE.sub("", draft.draft)
    # Dated past events and statutory periods keep their values.
    assert "汴政〔2012〕92号" in draft.draft and "20日内向市司法局备案" in draft.draft
    context = next(p.context for p in draft.placeholders if p.old == "554条")
    assert "主动公开各类政府信息554条" in context


@pytest.mark.slow
def test_legal_basis_is_cited(drafter):
    draft = drafter.draft("全面推进法治社会建设", 2025, sources=[REPORT])
    basis = [c for c in draft.citations if c.source == "rule-of-law-publicity-education-law"]
    assert basis, "普法 should bring in the 法治宣传教育法"
    assert "**相关法律依据**：《中华人民共和国法治宣传教育法》" in draft.draft


@pytest.mark.slow
def test_without_named_reports_a_draft_draws_on_one_organisation(drafter):
    """Two organisations' reports are indexed: the most recent report's organisation is drafted from, never a mix."""
    draft = drafter.draft("积极推进法治政府建设", 2025)
    assert draft.sources_used == (REPORT,)
    assert "县审计局完成审计项目" not in draft.draft


@pytest.mark.slow
def test_merging_two_named_reports_most_recent_first(drafter):
    draft = drafter.draft("积极推进法治政府建设", 2025, sources=[FIXTURE, REPORT])
    assert draft.sources_used == (REPORT, FIXTURE)
    text = draft.draft
    assert text.index("市审计局深入学习习近平总书记") < text.index("县审计局完成审计项目")
    # The paragraph both reports share appears once.
    assert text.count("全面落实权责清单制度，印发《开封市审计局权责清单动态管理办法》") == 1
    # A sub-section only the older report has is added with the next number.
    assert "（九）推进审计信息化建设" in text
    assert {c.source for c in draft.citations} >= {REPORT, FIXTURE}
    assert "【待更新：原为1200万元】" in text


@pytest.mark.slow
def test_no_matching_section_in_the_corpus(drafter):
    draft = drafter.draft("数字政府建设", 2025)
    assert draft.matched == () and any("未在往年报告中找到" in n for n in draft.notices)
    assert draft.citations and "[1]" in draft.draft


def east_asia(run) -> str | None:
    from docx.oxml.ns import qn

    fonts = run._element.rPr.find(qn("w:rFonts"))
    return None if fonts is None else fonts.get(qn("w:eastAsia"))


@pytest.mark.slow
def test_markdown_and_docx_export(drafter, tmp_path):
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    draft = drafter.draft("积极推进法治政府建设", 2025, sources=[REPORT])
    markdown = to_markdown(draft)
    assert "## 参考来源" in markdown and f"[{len(draft.citations)}] 《" in markdown
    document = Document(str(write_docx(draft, tmp_path / "draft.docx")))
    section = document.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)
    assert (round(section.top_margin.mm), round(section.bottom_margin.mm)) == (37, 35)
    assert (round(section.left_margin.mm), round(section.right_margin.mm)) == (28, 26)
    title = document.paragraphs[0]
    assert title.alignment == WD_ALIGN_PARAGRAPH.CENTER
    assert east_asia(title.runs[0]) == "方正小标宋简体" and title.runs[0].font.size.pt == 22
    runs = [r for p in document.paragraphs for r in p.runs]
    assert any(r.text == "二、积极推进法治政府建设" and east_asia(r) == "黑体" for r in runs)
    assert any(r.text.startswith("（一）") and east_asia(r) == "楷体_GB2312" for r in runs)
    body = next(p for p in document.paragraphs if p.text.startswith("1．依法履行审计监督职能"))
    assert body.paragraph_format.first_line_indent.pt == 32
    assert east_asia(body.runs[0]) == "仿宋_GB2312" and body.runs[0].font.size.pt == 16
    highlighted = [r.text for r in runs if r.font.highlight_color is not None]
    assert "【待更新：原为554条】" in highlighted
    assert document.paragraphs[-1].text.startswith(f"[{len(draft.citations)}] 《")
    font_table = next(rel.target_part for rel in document.part.rels.values() if rel.reltype.endswith("/fontTable"))
    assert "仿宋_GB2312".encode() in font_table.blob and b"w:altName" in font_table.blob


@pytest.mark.slow
def test_docx_renders_in_libreoffice(drafter, tmp_path):
    soffice = shutil.which("soffice")
    assert soffice, "LibreOffice is installed by .ci/run (libreoffice-writer-nogui)"
    path = write_docx(drafter.draft("存在问题", 2025, sources=[REPORT]), tmp_path / "draft.docx")
    subprocess.run([soffice, "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(path)], check=True, capture_output=True, timeout=180)
    pdf = tmp_path / "draft.pdf"
    assert pdf.exists() and pdf.stat().st_size > 5000
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True, timeout=60)
    assert (tmp_path / "page-1.png").exists()


@pytest.mark.slow
def test_cli_draft_json(draft_components, capsys, tmp_path):
    from rag.cli import main

    index_dir = str(draft_components.settings.index_dir)
    out = tmp_path / "d.docx"
    assert main(["draft", "--index", index_dir, "--title", "存在问题", "--year", "2025", "--source", REPORT, "--json", "--docx", str(out), "--markdown", str(tmp_path / "d.md")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"title", "year", "draft", "citations", "placeholders", "sources_used"}
    assert data["year"] == 2025 and data["sources_used"] == [REPORT]
    assert out.exists() and (tmp_path / "d.md").exists()
    assert main(["draft", "--index", index_dir, "--title", "存在问题", "--source", "no-such-report"]) == 2


@pytest.mark.slow
def test_llm_rewrite_keeps_figures_and_citations(draft_components):
    """Through a real OpenAI client against the FAKE OpenAI-compatible endpoint."""
    from fake_openai import FakeOpenAIServer

    from rag.components import build

    with FakeOpenAIServer() as fake:
        settings = draft_components.settings.with_(llm={"base_url": fake.url, "model": "fake", "mode": "openai", "timeout_s": 5})
        components = build(settings)
        good = components.drafter.draft("全面推进法治社会建设", 2025, sources=[REPORT])
        assert any("润色" in n for n in good.notices)
        assert "全力" in good.draft
        assert sorted(PLACEHOLDER_RE.findall(good.draft)) == sorted(f"【待更新：原为{p.old}】" for p in good.placeholders)
        fake.mode = "bad_citation"
        bad = components.drafter.draft("全面推进法治社会建设", 2025, sources=[REPORT])
        assert "999" not in bad.draft
        assert any("未通过核对" in n for n in bad.notices)
