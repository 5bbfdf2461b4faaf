"""Document -> section tree: official-document headings (一、（一）1．（1）一是), law parts/chapters/articles."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.lexicon import label
from rag.lines import ARTICLE_START, DATE_LINE, DOC_NUMBER, LAW_HEADING, TRAILER_START, heading_kind
from rag.metadata import is_addressee, is_chrome, read_metadata
from rag.schema import Document, Section
from rag.text import CN_NUM, chinese_number

REPORT_LEVELS = {"L1": 1, "L2": 2, "L3": 3, "L4": 4}
LAW_LEVELS = {"编": 1, "章": 2, "节": 3}
LAW_KINDS = {"编": "part", "章": "chapter", "节": "section"}
ITEM_MARK = re.compile(rf"(?:^|(?<=[。；;！？]))([{CN_NUM}]{{1,3}})是")
MAX_HEADING_CHARS = 60



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
            if i > after and DATE_LINE.match(text):
                prev = paragraphs[i - 1][2]
                if len(prev) <= 30 and not prev.endswith(("。", "；", "：")):
                    return i - 1
            return i
    return None


def item_runs(start: int, paragraph: str) -> list[tuple[int, str]]:
    """Positions and labels of 一是/二是… items in a paragraph (only when at least two in sequence)."""
    marks = [(m.start(1), m.group(1)) for m in ITEM_MARK.finditer(paragraph)]
    numbers = [chinese_number(mark) for _, mark in marks]
    if len(marks) < 2 or numbers[0] != 1 or numbers[1] != 2:
        return []
    runs: list[tuple[int, str]] = []
    expected = 1
    for (pos, mark), number in zip(marks, numbers):
        if number == expected:
            runs.append((start + pos, mark))
            expected += 1
    return runs


def front_matter(doc: Document, paragraphs: list[tuple[int, int, str]]) -> tuple[list[tuple[int, str]], int]:
    """The paragraphs before the body, each with its label: 文头 (page chrome, letterhead, document
    number), 标题 (the title, its document number and subtitle lines), 抬头 (the addressee line).
    Returns [(paragraph index, label)] and the index of the first body paragraph."""
    meta = read_metadata(doc.text)
    line_of: dict[int, int] = {}
    line = previous = 0
    for start, _, _ in paragraphs:  # a running count: counting from the top for each line is quadratic
        line += doc.text.count("\n", previous, start)
        line_of[start] = line
        previous = start
    title_at = [i for i, (start, _, _) in enumerate(paragraphs) if line_of[start] in meta.title_lines]
    if not title_at and meta.addressee_line is None:
        return [], 0
    labels: list[tuple[int, str]] = []
    body = 0
    if title_at:
        labels.extend((i, label("header")) for i in range(title_at[0]))
        # a cover notice (印发《…报告》的通知) has the report's own title line too: the notice between is 文头
        labels.extend((i, label("title") if i in title_at else label("header")) for i in range(title_at[0], title_at[-1] + 1))
        body = title_at[-1] + 1
        # A document number, a subtitle (——2024年…在…会议上) or a speaker line right below the title.
        while body < len(paragraphs) and body < title_at[-1] + 4:
            text = paragraphs[body][2].strip()
            if DOC_NUMBER.match(text) or text.startswith(("——", "—", "（", "(")) and len(text) <= 80 and "。" not in text or len(text) <= 30 and re.search(r"(局长|主任|署长|厅长|市长|县长|区长)[\s\u3000]*[\u4e00-\u9fff]{2,4}$", text):
                labels.append((body, label("title")))
                body += 1
            else:
                break
        # A web page's lines right below the title (发布日期：… 来源：…, 字号 打印 关闭) are page chrome too.
        while body < len(paragraphs) and is_chrome(paragraphs[body][2]):
            labels.append((body, label("header")))
            body += 1
    for i in range(body, min(len(paragraphs), body + 2)):
        if line_of[paragraphs[i][0]] == meta.addressee_line or is_addressee(paragraphs[i][2]):
            labels.append((i, label("addressee")))
            body = i + 1
            break
    return labels, body


def parse_report(doc: Document) -> Section:
    paragraphs = paragraphs_with_spans(doc.text)
    root = _Node(kind="document", level=0, heading=doc.title, start=0)
    front, body_start = front_matter(doc, paragraphs)
    previous_label = None
    for i, name in front:
        if name != previous_label:
            root.children.append(_Node(kind="front", level=1, heading=name, start=paragraphs[i][0]))
            previous_label = name
    stack: list[_Node] = [root]
    last_heading = body_start - 1
    for i, (_, _, text) in enumerate(paragraphs):
        if i >= body_start and heading_kind(re.sub(r"^#+\s*", "", text)):
            last_heading = i
    trailer_at = find_trailer_start(paragraphs, last_heading + 1)
    started = False

    for i, (start, _, text) in enumerate(paragraphs):
        if i < body_start:
            continue
        if trailer_at is not None and i == trailer_at:
            stack = [root]
            root.children.append(_Node(kind="trailer", level=1, heading=label("trailer"), start=start))
            break
        bare = re.sub(r"^#+\s*", "", text)  # a Markdown copy: ## 一、…
        kind = heading_kind(bare)
        if kind:
            level = REPORT_LEVELS[kind]
            while len(stack) > 1 and (stack[-1].level >= level or stack[-1].kind == "preamble"):
                stack.pop()
            node = _Node(kind="heading", level=level, heading=report_heading_text(bare), start=start)
            stack[-1].children.append(node)
            stack.append(node)
        elif len(stack) == 1 and not started:
            root.children.append(_Node(kind="preamble", level=1, heading=label("preamble"), start=start))
            stack.append(root.children[-1])
        started = True
        # 一是…二是… inside a paragraph become items of the current section.
        runs = item_runs(start, text)
        if runs:
            parent = stack[-1]
            body_from = start + len(report_heading_text(text)) if kind else start
            for pos, _label in runs:
                if pos < body_from:
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
                assert unit_match is not None  # LAW_HEADING matched the same shape
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
            article_label = text[: article.end()]
            node = _Node(kind="article", level=4, heading=article_label, start=start, number=chinese_number(article.group(1)))
            stack[-1].children.append(node)
            stack.append(node)
        elif len(stack) == 1 and not root.children:
            root.children.append(_Node(kind="preamble", level=1, heading=label("law_preamble"), start=start))
            stack.append(root.children[-1])
    return root.freeze(len(doc.text))


def split_into_sections(doc: Document) -> Section:
    """The section tree of a document (root kind 'document')."""
    if doc.doc_type == "law":
        return parse_law(doc)
    return parse_report(doc)
