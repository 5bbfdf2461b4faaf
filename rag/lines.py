"""Line patterns of Chinese official documents and laws: headings, articles, dates, trailers.

A leaf module shared by the loader (PDF reflow), metadata, structure and drafting.
"""

from __future__ import annotations

import re

from rag.text import CN_NUM

# Headings of official documents, in both widths: 一、 （一） 1． （1）
HEADING_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # 一、 followed by a number is a list or a broken line (一、二级), unless the number is a year (一、2024年工作总结).
    ("L1", re.compile(rf"^[一二三四五六七八九十]{{1,3}}[、．.](?:(?=(?:[12１２][0-9０-９]{{3}}|[〇零一二三四五六七八九]{{4}})\s*年)|(?![{CN_NUM}\d]))")),
    ("L2", re.compile(r"^[（(][一二三四五六七八九十]{1,3}[）)]")),
    ("L3", re.compile(r"^\d{1,2}(?:[．.、](?![\d.．])|\s*[．]\s*)")),
    ("L4", re.compile(r"^[（(]\d{1,2}[）)]")),
)
LAW_HEADING = re.compile(rf"^第[{CN_NUM}\d]+[编章节](?:[\s\u3000]|$)")
ARTICLE_START = re.compile(rf"^第([{CN_NUM}\d]+)条(?:之[一二三四五六七八九十]+)?(?=[\s\u3000])")
# The closing lines: 抄送/主送/印发 lines, or a line ending with the printing date.
TRAILER_START = re.compile(r"^(?:抄送|抄报|主送|印发|附件)[：:]|印发$|^[\s\S]{0,30}\d{4}年\d{1,2}月\d{1,2}日印发?$")
DATE_LINE = re.compile(r"^\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日$")
DOC_NUMBER = re.compile(r"^[\u4e00-\u9fff]{1,10}[〔\[（(【]\s*(?:19|20)\d{2}\s*[〕\]）)】]\s*\d+\s*号$")
PAGE_NUMBER = re.compile(
    r"^[—\-–－\s]*\d+[—\-–－\s]*$"  # - 2 -, — 2 —, 2
    r"|^第\s*\d+\s*页(?:\s*[/／,，、]?\s*共\s*\d+\s*页)?$"  # 第 2 页 共 5 页, 第2页/共5页
    r"|^共\s*\d+\s*页\s*[/／,，、]?\s*第\s*\d+\s*页$"  # 共5页 第2页
    r"|^(?:page\s*)?\d+\s*(?:/|／|of)\s*\d+$",  # 2/5, Page 2 of 5
    re.IGNORECASE,
)


def heading_kind(line: str) -> str | None:
    """The official-document heading level a line starts with (L1..L4), or None."""
    for kind, pattern in HEADING_PATTERNS:
        if pattern.match(line):
            return kind
    return None


def is_structural_line(line: str) -> bool:
    return bool(
        heading_kind(line)
        or LAW_HEADING.match(line)
        or ARTICLE_START.match(line)
        or line.startswith("#")
        or TRAILER_START.match(line)
    )
