"""Document -> section tree: official-document headings (一、（一）1．（1）一是), law parts/chapters/articles."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import cn2an

from rag.loaders import (
    ARTICLE_START,
    CN_NUM,
    DATE_LINE,
    LAW_HEADING,
    TRAILER_START,
    heading_kind,
)
from rag.schema import Document, Section

REPORT_LEVELS = {"L1": 1, "L2": 2, "L3": 3, "L4": 4}
LAW_LEVELS = {"编": 1, "章": 2, "节": 3}
LAW_KINDS = {"编": "part", "章": "chapter", "节": "section"}
ITEM_MARK = re.compile(rf"(?:^|(?<=[。；;！？]))([{CN_NUM}]{{1,3}})是")
MAX_HEADING_CHARS = 60

PREAMBLE = "导语"
LAW_PREAMBLE = "题注"
TRAILER = "落款"


@dataclass
class _Node:
    kind: str
    level: int
    heading: str
    start: int
    number: int | None = None
    end: int = -1
    children: list[_Node] = field(default_factory=list)

    def freeze(self, end: int) -> Section:
        self.end = end
        frozen: list[Section] = []
        for i, child in enumerate(self.children):
            child_end = self.children[i + 1].start if i + 1 < len(self.children) else end
            frozen.append(child.freeze(child_end))
        body_end = self.children[0].start if self.children else end
        return Section(
            kind=self.kind,
            level=self.level,
            heading=self.heading,
            start=self.start,
            end=end,
            body_end=body_end,
            number=self.number,
            children=tuple(frozen),
        )


def paragraphs_with_spans(text: str) -> list[tuple[int, int, str]]:
    """Each non-empty line of the cleaned text with its [start, end) span."""
    spans: list[tuple[int, int, str]] = []
    pos = 0
    for line in text.split("\n"):
        if line.strip():
            spans.append((pos, pos + len(line), line))
        pos += len(line) + 1
    return spans


def chinese_number(value: str) -> int | None:
    """'四十四' or '44' -> 44."""
    if value.isdigit():
        return int(value)
    try:
        return int(cn2an.cn2an(value.replace("〇", "零").replace("两", "二"), "smart"))
    except (ValueError, KeyError, TypeError):
        return None


def report_heading_text(paragraph: str) -> str:
    """A heading ends at its first 。 when the body follows on the same line."""
    stop = paragraph.find("。")
    if 0 < stop <= MAX_HEADING_CHARS:
        return paragraph[:stop]
    if stop == -1 and len(paragraph) <= MAX_HEADING_CHARS:
        return paragraph
    cut = re.search(r"[，；,;]", paragraph[:MAX_HEADING_CHARS])
    return paragraph[: cut.start()] if cut else paragraph[:30]


def find_trailer_start(paragraphs: list[tuple[int, int, str]], after: int) -> int | None:
    """Index of the first trailer paragraph (signature, date, 抄送/印发 lines) after the last heading."""
    for i in range(max(after, 0), len(paragraphs)):
        text = paragraphs[i][2]
        if TRAILER_START.match(text) or DATE_LINE.match(text):
            # Include a short signature line right above the date.
            if i > after + 1 and DATE_LINE.match(text):
                prev = paragraphs[i - 1][2]
                if len(prev) <= 30 and not prev.endswith(("。", "；", "：")):
                    return i - 1
            return i
    return None


def item_runs(start: int, paragraph: str) -> list[tuple[int, str]]:
    """Positions and labels of 一是/二是… items in a paragraph (only when at least two in sequence)."""
    marks = [(m.start(1), m.group(1)) for m in ITEM_MARK.finditer(paragraph)]
    numbers = [chinese_number(label) for _, label in marks]
    if len(marks) < 2 or numbers[0] != 1 or numbers[1] != 2:
        return []
    runs: list[tuple[int, str]] = []
    expected = 1
    for (pos, label), number in zip(marks, numbers):
        if number == expected:
            runs.append((start + pos, label))
            expected += 1
    return runs


def parse_report(doc: Document) -> Section:
    paragraphs = paragraphs_with_spans(doc.text)
    root = _Node(kind="document", level=0, heading=doc.title, start=0)
    stack: list[_Node] = [root]
    last_heading = -1
    for i, (_, _, text) in enumerate(paragraphs):
        if heading_kind(text):
            last_heading = i
    trailer_at = find_trailer_start(paragraphs, last_heading + 1) if last_heading >= 0 else None

    for i, (start, _, text) in enumerate(paragraphs):
        if trailer_at is not None and i == trailer_at:
            stack = [root]
            root.children.append(_Node(kind="trailer", level=1, heading=TRAILER, start=start))
            break
        kind = heading_kind(text)
        if kind:
            level = REPORT_LEVELS[kind]
            while len(stack) > 1 and (stack[-1].level >= level or stack[-1].kind == "preamble"):
                stack.pop()
            node = _Node(kind="heading", level=level, heading=report_heading_text(text), start=start)
            stack[-1].children.append(node)
            stack.append(node)
        elif len(stack) == 1 and not root.children:
            root.children.append(_Node(kind="preamble", level=1, heading=PREAMBLE, start=start))
            stack.append(root.children[-1])
        # 一是…二是… inside a paragraph become items of the current section.
        runs = item_runs(start, text)
        if runs:
            parent = stack[-1]
            body_start = start + len(report_heading_text(text)) if kind else start
            for pos, _label in runs:
                if pos < body_start:
                    continue
                item_text = doc.text[pos : start + len(text)]
                parent.children.append(
                    _Node(kind="item", level=parent.level + 1, heading=report_heading_text(item_text), start=pos)
                )
    return root.freeze(len(doc.text))


def normalize_law_heading(text: str) -> str:
    text = re.sub(r"^#+\s*", "", text).strip()
    match = re.match(rf"^(第[{CN_NUM}\d]+[编章节])[\s\u3000]*(.*)$", text)
    if match:
        name = re.sub(r"[\s\u3000]+", "", match.group(2))
        return f"{match.group(1)} {name}".strip()
    return re.sub(r"[\s\u3000]+", " ", text)


def parse_law(doc: Document) -> Section:
    paragraphs = paragraphs_with_spans(doc.text)
    root = _Node(kind="document", level=0, heading=doc.title, start=0)
    stack: list[_Node] = [root]
    for index, (start, _, text) in enumerate(paragraphs):
        if index == 0 and text.startswith("# "):
            continue  # the title
        bare = re.sub(r"^#+\s*", "", text)
        law_heading = LAW_HEADING.match(bare)
        article = ARTICLE_START.match(text)
        if law_heading or (text.startswith("#") and not article):
            if law_heading:
                unit_match = re.match(rf"^第([{CN_NUM}\d]+)([编章节])", bare)
                unit = unit_match.group(2)
                level, kind = LAW_LEVELS[unit], LAW_KINDS[unit]
                number = chinese_number(unit_match.group(1))
            else:
                level, kind, number = min(3, max(1, text.count("#", 0, 4))), "heading", None
            while len(stack) > 1 and (stack[-1].level >= level or stack[-1].kind == "preamble"):
                stack.pop()
            node = _Node(kind=kind, level=level, heading=normalize_law_heading(text), start=start, number=number)
            stack[-1].children.append(node)
            stack.append(node)
        elif article:
            while len(stack) > 1 and (stack[-1].level >= 4 or stack[-1].kind == "preamble"):
                stack.pop()
            label = text[: article.end()]
            node = _Node(kind="article", level=4, heading=label, start=start, number=chinese_number(article.group(1)))
            stack[-1].children.append(node)
            stack.append(node)
        elif len(stack) == 1 and not root.children:
            root.children.append(_Node(kind="preamble", level=1, heading=LAW_PREAMBLE, start=start))
            stack.append(root.children[-1])
    return root.freeze(len(doc.text))


def split_into_sections(doc: Document) -> Section:
    """The section tree of a document (root kind 'document')."""
    if doc.doc_type == "law":
        return parse_law(doc)
    return parse_report(doc)
