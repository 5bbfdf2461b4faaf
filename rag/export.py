"""Export drafts: Markdown with a numbered source list, and .docx laid out as a GB/T 9704-2012 document."""

from __future__ import annotations

import re
from pathlib import Path

from rag.citations import PLACEHOLDER_RE
from rag.schema import Draft

# GB/T 9704-2012: A4, margins (top 37 mm, bottom 35 mm, left 28 mm, right 26 mm), title 2号
# 小标宋, body 3号 仿宋 with a two-character indent, 一、headings 黑体, （一）headings 楷体.
TITLE_FONT = ("方正小标宋简体", "宋体")
BODY_FONT = ("仿宋_GB2312", "仿宋")
HEI_FONT = ("黑体", "SimHei")
KAI_FONT = ("楷体_GB2312", "楷体")
SIZE_2 = 22  # 二号, points
SIZE_3 = 16  # 三号
SIZE_4 = 14  # 四号
LINE_PITCH = 28.95  # 22 lines on the type area of an A4 page
MARKER = re.compile(r"(\[\d+\])")
BOLD = re.compile(r"\*\*(.+?)\*\*")


def source_list(draft: Draft) -> list[str]:
    lines = []
    for c in draft.citations:
        where = c.section or ""
        if c.article and c.article not in where:
            where = f"{where} {c.article}".strip()
        excerpt = re.sub(r"\s*\n\s*", "", c.text)
        lines.append(f"[{c.id}] 《{c.title}》{('　' + where) if where else ''}：{excerpt[:120]}{'…' if len(excerpt) > 120 else ''}")
    return lines


def to_markdown(draft: Draft) -> str:
    """The draft, its notices, its placeholders and a numbered source list."""
    parts = [f"# {draft.title}（{draft.year}年草稿）", ""]
    parts += [f"> {notice}" for notice in draft.notices]
    parts += ["", draft.draft.strip(), ""]
    if draft.placeholders:
        parts += ["## 待更新的数字", ""]
        parts += [f"- {p.old}：{p.context}" for p in draft.placeholders]
        parts.append("")
    parts += ["## 参考来源", ""]
    parts += [f"{line}  " for line in source_list(draft)]
    return "\n".join(parts).rstrip() + "\n"


def write_markdown(draft: Draft, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_markdown(draft), encoding="utf-8")
    return path


# ---------------------------------------------------------------- .docx


def _set_font(run, fonts: tuple[str, str], size: float, bold: bool = False) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt

    run.font.name = fonts[0]
    run.font.size = Pt(size)
    run.font.bold = bold
    rpr = run._element.get_or_add_rPr()
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(rfonts)
    for attr in ("w:eastAsia", "w:ascii", "w:hAnsi"):
        rfonts.set(qn(attr), fonts[0] if attr == "w:eastAsia" else "Times New Roman")


def _register_fallbacks(document) -> None:
    """Declare each Chinese font with its fallback (w:altName) so Word and LibreOffice substitute it."""
    from docx.oxml.ns import qn

    font_table = None
    for rel in document.part.rels.values():
        if rel.reltype.endswith("/fontTable"):
            font_table = rel.target_part
    if font_table is None:
        return
    from lxml import etree

    root = etree.fromstring(font_table.blob)
    existing = {f.get(qn("w:name")) for f in root.findall(qn("w:font"))}
    for name, fallback in (TITLE_FONT, BODY_FONT, HEI_FONT, KAI_FONT):
        if name in existing:
            continue
        font = etree.SubElement(root, qn("w:font"), {qn("w:name"): name})
        etree.SubElement(font, qn("w:altName"), {qn("w:val"): fallback})
        etree.SubElement(font, qn("w:charset"), {qn("w:val"): "86"})
        etree.SubElement(font, qn("w:family"), {qn("w:val"): "roman" if "宋" in name or "仿" in name else "modern"})
    font_table._blob = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _paragraph(document, *, indent: bool = True, align=None, size: float = SIZE_3):
    from docx.shared import Pt

    p = document.add_paragraph()
    fmt = p.paragraph_format
    fmt.line_spacing = Pt(LINE_PITCH)
    fmt.space_before = Pt(0)
    fmt.space_after = Pt(0)
    if indent:
        fmt.first_line_indent = Pt(size * 2)
    if align is not None:
        p.alignment = align
    return p


def _add_text(p, text: str, fonts: tuple[str, str], size: float) -> None:
    """Body text: placeholders highlighted, [n] markers as superscript, **bold** labels in 黑体."""
    from docx.enum.text import WD_COLOR_INDEX

    pattern = re.compile(f"({PLACEHOLDER_RE.pattern}|{MARKER.pattern}|{BOLD.pattern})")
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            _set_font(p.add_run(text[pos : m.start()]), fonts, size)
        token = m.group(0)
        if PLACEHOLDER_RE.fullmatch(token):
            run = p.add_run(token)
            _set_font(run, fonts, size, bold=True)
            run.font.highlight_color = WD_COLOR_INDEX.YELLOW
        elif MARKER.fullmatch(token):
            run = p.add_run(token)
            _set_font(run, fonts, size * 0.6)
            run.font.superscript = True
        else:
            _set_font(p.add_run(token[2:-2]), HEI_FONT, size)
        pos = m.end()
    if pos < len(text):
        _set_font(p.add_run(text[pos:]), fonts, size)


def _page_number_footer(section) -> None:
    """Page number as GB/T 9704 puts it: 4号 — N — at the bottom."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    p = section.footer.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _set_font(p.add_run("— "), ("宋体", "宋体"), SIZE_4)
    run = p.add_run()
    _set_font(run, ("宋体", "宋体"), SIZE_4)
    for kind, text in (("begin", None), (None, "PAGE"), ("end", None)):
        if kind:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), kind)
        else:
            el = OxmlElement("w:instrText")
            el.set(qn("xml:space"), "preserve")
            el.text = text
        run._element.append(el)
    _set_font(p.add_run(" —"), ("宋体", "宋体"), SIZE_4)


def write_docx(draft: Draft, path: str | Path) -> Path:
    """An official-document .docx of the draft with the source list at the end."""
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Mm, Pt

    document = docx.Document()
    section = document.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    section.footer_distance = Mm(28)
    _register_fallbacks(document)
    _page_number_footer(section)

    title = _paragraph(document, indent=False, align=WD_ALIGN_PARAGRAPH.CENTER, size=SIZE_2)
    title.paragraph_format.line_spacing = Pt(SIZE_2 * 1.5)
    _set_font(title.add_run(f"{draft.title}（{draft.year}年草稿）"), TITLE_FONT, SIZE_2)
    _paragraph(document, indent=False)  # one blank line under the title

    for notice in draft.notices:
        p = _paragraph(document)
        _add_text(p, f"（说明：{notice}）", KAI_FONT, SIZE_3)

    for line in draft.draft.splitlines():
        line = line.strip()
        if not line:
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if heading:
            text = heading.group(2)
            fonts = HEI_FONT if re.match(r"^[一二三四五六七八九十]+、", text) or len(heading.group(1)) <= 2 else KAI_FONT
            if re.match(r"^[（(][一二三四五六七八九十]+[）)]", text):
                fonts = KAI_FONT
            p = _paragraph(document)
            _set_font(p.add_run(text), fonts, SIZE_3)
            continue
        if line.startswith("- "):
            line = line[2:]
        p = _paragraph(document)
        _add_text(p, line, BODY_FONT, SIZE_3)

    p = _paragraph(document)
    _set_font(p.add_run("参考来源"), HEI_FONT, SIZE_3)
    for entry in source_list(draft):
        p = _paragraph(document, indent=False, size=SIZE_4)
        p.paragraph_format.line_spacing = Pt(22)
        _set_font(p.add_run(entry), BODY_FONT, SIZE_4)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def conversation_markdown(turns: list[dict]) -> str:
    """A chat as Markdown: each question, its answer and the passages it cites."""
    lines = ["# 法规问答记录", ""]
    for n, turn in enumerate(turns, start=1):
        lines += [f"## {n}. {turn['question']}", "", turn["answer"], ""]
        for c in turn.get("citations", []):
            where = c.get("section") or ""
            excerpt = re.sub(r"\s+", " ", c["text"])[:200]
            lines.append(f"- [{c['id']}] 《{c['title']}》 {where}：{excerpt}")
        lines.append("")
    return "\n".join(lines)
