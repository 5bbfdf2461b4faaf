"""Reading files: encodings, docx, pdf, PDF line-break repair and document metadata."""

from __future__ import annotations

import re

import pytest
from conftest import REGULATIONS, SAMPLE_REPORT

from rag.loaders import LoadError, clean_text, load_document, needs_reflow

SAMPLE_LAW = "第一章 总则\n第一条 为了规范审计工作，制定本法。\n第二条 国家实行审计监督制度。\n第三条 审计机关依法独立行使审计监督权。\n"


@pytest.mark.parametrize(
    "encoding, prefix",
    [
        ("utf-8", b""),
        ("utf-8", b"\xef\xbb\xbf"),
        ("gbk", b""),
        ("gb18030", b""),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-16-le", b""),
    ],
)
def test_encodings_are_detected(tmp_path, encoding, prefix):
    path = tmp_path / "审计法摘录.txt"
    path.write_bytes(prefix + SAMPLE_LAW.encode(encoding))
    doc = load_document(path)
    assert "第二条 国家实行审计监督制度。" in doc.text
    assert doc.doc_type == "law"
    assert doc.source == "审计法摘录"


def test_gb18030_only_characters(tmp_path):
    text = "第一条 㐀䶵字符与𠀀扩展区汉字同样能读出。\n第二条 乙。\n第三条 丙。\n"
    path = tmp_path / "ext.txt"
    path.write_bytes(text.encode("gb18030"))
    assert "㐀䶵" in load_document(path).text


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "文件为空"),
        (b"   \n\n  ", "文件为空"),
        (bytes(range(256)) * 40, "不是文本"),
    ],
)
def test_bad_text_files_raise_chinese_errors(tmp_path, data, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    with pytest.raises(LoadError, match=message):
        load_document(path)


def test_zero_width_characters_removed(tmp_path):
    path = tmp_path / "zw.txt"
    path.write_text("第一条\u200b 审计\u200d机关\ufeff。\n第二条 乙。\n第三条 丙。", encoding="utf-8")
    assert "审计机关。" in load_document(path).text


def test_full_width_characters_are_kept_as_written(tmp_path):
    """A citation quotes the document; matching folds widths on both sides (see test_ingest)."""
    path = tmp_path / "fw.txt"
    path.write_text("一、总体情况\n全年办理审计项目１２个，其中ＧＢＫ专项３个。\n", encoding="utf-8")
    assert "全年办理审计项目１２个，其中ＧＢＫ专项３个。" in load_document(path).text


def test_file_size_limit_is_checked_before_reading(tmp_path):
    from rag.loaders import read_file_bytes

    path = tmp_path / "big.txt"
    path.write_bytes(("审计" * 600).encode("utf-8"))
    with pytest.raises(LoadError, match="文件过大"):
        read_file_bytes(path, max_bytes=1024)
    assert read_file_bytes(path, max_bytes=4096)


def test_unsupported_type(tmp_path):
    path = tmp_path / "a.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(LoadError, match="不支持的文件类型"):
        load_document(path)


def test_docx_paragraphs_and_tables_in_order(tmp_path):
    import docx

    document = docx.Document()
    document.add_paragraph("某局2025年法治政府建设情况报告")
    document.add_paragraph("一、基本情况")
    document.add_paragraph("全年办理案件12件。")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "项目"
    table.cell(0, 1).text = "数量"
    table.cell(1, 0).text = "主动公开信息"
    table.cell(1, 1).text = "300条"
    document.add_paragraph("二、存在问题")
    document.add_paragraph("学习不够深入。")
    path = tmp_path / "report.docx"
    document.save(path)
    doc = load_document(path)
    assert doc.title == "某局2025年法治政府建设情况报告"
    assert doc.year == 2025
    text = doc.text
    assert text.index("全年办理案件12件") < text.index("主动公开信息 | 300条") < text.index("二、存在问题")


def test_corrupt_docx(tmp_path):
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(LoadError, match="Word 文件已损坏"):
        load_document(path)


def _pdf_with_text(path, lines: list[str]) -> None:
    """A real text-layer PDF written by matplotlib with an embedded CJK TrueType font."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    cjk = [f for f in font_manager.findSystemFonts() if re.search(r"NotoSansCJK|NotoSerifCJK|wqy|DroidSansFallback", f)]
    assert cjk, "a CJK font is needed (Debian package fonts-noto-cjk, installed by .ci/run)"
    prop = font_manager.FontProperties(fname=cjk[0])
    matplotlib.rcParams["pdf.fonttype"] = 42
    fig = plt.figure(figsize=(8.27, 11.69))
    for i, line in enumerate(lines):
        fig.text(0.08, 0.95 - i * 0.03, line, fontproperties=prop, fontsize=12)
    fig.savefig(path, format="pdf")
    plt.close(fig)


def test_pdf_text_layer_is_read_and_reflowed(tmp_path):
    path = tmp_path / "report.pdf"
    _pdf_with_text(
        path,
        [
            "某市审计局2025年法治政府建设情况报告",
            "一、依法履行审计职能",
            "全年共主动公开各类政府信息 554条，依申请公开各类政府信",
            "息 1条。",
            "二、存在问题",
            "学习宣传不够系统深入。",
        ],
    )
    doc = load_document(path)
    assert "依申请公开各类政府信息1条。" in doc.text
    assert "554条" in doc.text
    assert "\n二、存在问题\n" in doc.text


def test_pdf_without_text_layer_asks_for_ocr(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig = plt.figure()
    fig.add_artist(plt.Rectangle((0.1, 0.1), 0.5, 0.5))
    path = tmp_path / "scan.pdf"
    fig.savefig(path, format="pdf")
    plt.close(fig)
    with pytest.raises(LoadError, match="OCR"):
        load_document(path)


def test_corrupt_pdf(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage \x00\x01\x02")
    with pytest.raises(LoadError, match="PDF"):
        load_document(path)


def test_encrypted_pdf(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt(user_password="secret", owner_password="owner")
    path = tmp_path / "locked.pdf"
    with open(path, "wb") as f:
        writer.write(f)
    with pytest.raises(LoadError, match="已加密"):
        load_document(path)


# ---------------------------------------------------------------- the sample report and the laws


@pytest.fixture(scope="module")
def report():
    return load_document(SAMPLE_REPORT)


@pytest.mark.slow
def test_sample_report_metadata(report):
    assert report.doc_type == "report"
    assert report.year == 2024
    assert report.issuer == "开封市审计局"
    assert "2024" in report.title and "法治政府建设" in report.title
    assert report.source == "kaifeng-audit-bureau-2024-rule-of-law-report"


@pytest.mark.slow
def test_sample_report_lines_are_joined(report):
    text = report.text
    # Broken inside a word across a page break (" 息 1条").
    assert "依申请公开各类政府信息1条。" in text
    # Broken inside a number and a title.
    assert "《法治社会建设实施纲要（2020—2025年）》" in text
    assert "主动公开各类政府信息554条" in text
    # Page-break spaces between Chinese characters are gone.
    assert not re.search(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", text)


@pytest.mark.slow
def test_sample_report_keeps_paragraph_and_heading_breaks(report):
    lines = report.text.split("\n")
    assert "一、坚持和加强党对法治审计工作的集中统一领导" in lines
    assert "（一）依法全面履行政府职能" in lines
    assert "（七）全面推进政务公开，促进权力规范运行和反腐倡廉" in lines
    assert "五、下一步工作计划及建议" in lines
    assert any(line.startswith("1．依法履行审计监督职能。2024年") for line in lines)
    # The trailer stays apart from the last section's paragraph.
    assert "抄送：开封市司法局。" in lines
    assert "开封市审计局" in lines


@pytest.mark.slow
def test_law_metadata():
    doc = load_document(REGULATIONS / "audit-law.md")
    assert doc.title == "中华人民共和国审计法"
    assert doc.doc_type == "law"
    assert doc.year == 2021
    assert doc.issuer == "全国人民代表大会常务委员会"
    assert "INFO END" not in doc.text
    regulation = load_document(REGULATIONS / "government-information-disclosure-regulations.md")
    assert regulation.issuer == "国务院"


def test_reflow_detection():
    assert not needs_reflow(SAMPLE_LAW * 5)
    pdf_like = "\n".join(["这是一段从PDF中提取出来的文字它在行尾被截断了没有标点"] * 10)
    assert needs_reflow(pdf_like)


def test_clean_text_keeps_latin_spacing():
    assert clean_text("Audit Law of China\nsecond line.", reflow=False) == "Audit Law of China\nsecond line."


def test_page_breaks_of_a_pdf_export_join_up_again():
    """Page numbers and the running header beside them are dropped: a number the page break cut
    (`涉及金额2` | `- 1 -` | header | `146万元`) is whole again; the same line as a signature stays,
    on a line of its own above its date."""
    raw = (
        "东岭县审计局2024年法治政府建设情况报告\n"
        "2024年，东岭县审计局坚持依法审计，全面推进法治审计机关建设，现将有关情况\n"
        "报告如下。全年完成审计项目21个，查出违规问题金额3.5亿元，其中涉及金额2\n"
        "\n- 1 -\n\n东岭县审计局\n"
        "146万元的问题已移送有关部门处理。组织干部参加法治培训和业务培训共12期\n"
        "，参训人员达到六百余人次，法治素养得到明显提升，审计质量稳步提高。\n"
        "一、存在的问题\n学法形式较为单一，审计执法规范化程度还需要进一步提升和加强。\n"
        "\n- 2 -\n\n东岭县审计局\n"
        "二、下一步打算\n持续加强审计法治建设，推动审计工作高质量发展，更好服务全县大局工作。\n"
        "东岭县审计局\n2025年1月20日\n\n- 3 -\n"
    )
    text = clean_text(raw, reflow=True)
    assert "涉及金额2146万元" in text
    assert "- 1 -" not in text and "- 3 -" not in text
    assert text.split("\n")[-2:] == ["东岭县审计局", "2025年1月20日"]
    assert text.count("东岭县审计局") == 3  # title, opening, signature; not the two running headers


def test_page_numbers_in_words_are_page_furniture_too():
    from rag.lines import PAGE_NUMBER
    from rag.loaders import drop_page_furniture

    for number in ("第 2 页 共 5 页", "第2页/共5页", "共5页 第2页", "Page 2 of 5", "- 2 -"):
        assert PAGE_NUMBER.match(number), number
    assert not PAGE_NUMBER.match("第二条") and not PAGE_NUMBER.match("第2项")
    pages = ["正文一", "", "第 1 页 共 3 页", "", "墨川县审计工作报告", "正文二", "", "第 2 页 共 3 页", "", "墨川县审计工作报告", "正文三"]
    assert [ln for ln in drop_page_furniture(pages) if ln] == ["正文一", "正文二", "正文三"]


def test_only_a_line_that_recurs_at_the_page_breaks_is_a_running_header():
    from rag.loaders import drop_page_furniture

    pages = ["页眉", "正文一", "- 1 -", "页眉", "正文二", "- 2 -", "页眉", "正文三"]
    assert drop_page_furniture(pages) == ["页眉", "正文一", "正文二", "正文三"]
    # A heading, or a line next to only one of several page breaks, is text.
    headings = ["（一）主要做法", "正文一", "- 1 -", "（一）主要做法", "正文二", "- 2 -", "正文三", "（一）主要做法"]
    assert drop_page_furniture(headings) == [h for h in headings if not h.startswith("- ")]
    once = ["特此报告。", "正文一", "- 1 -", "特此报告。", "正文二", "- 2 -", "正文三"]
    assert drop_page_furniture(once) == ["特此报告。", "正文一", "特此报告。", "正文二", "正文三"]
    assert drop_page_furniture(["没有页码的文字", "第二行"]) == ["没有页码的文字", "第二行"]
