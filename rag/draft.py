"""Section drafting from past reports: find the section, carry it to the new year, mark old figures, cite.

The outline of a past report is rebuilt from its stored chunks (their heading paths and spans), so
drafting works the same with an embedded index and with a Chroma server.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from rag.citations import PLACEHOLDER, PLACEHOLDER_RE, CitationBook
from rag.config import Settings
from rag.keyword_index import KeywordIndex
from rag.lines import heading_kind
from rag.retrieve import HybridRetriever
from rag.schema import DocRecord, Draft, Hit, Placeholder, last_heading
from rag.segment import content_nouns

NUMBERING = re.compile(r"^(?:[一二三四五六七八九十]+[、．.]|[（(][一二三四五六七八九十\d]+[）)]|\d+[．.、])\s*")
# A figure of the past year: a number with a counter, a percentage, an amount.
FIGURE = re.compile(
    r"(?<![\d〔.．\-—])(\d+(?:\.\d+)?)(余|多)?(项|条|名|人次|人|部|次|件|个|%|％|万元|亿元|元|家|篇|期|场|批|份|起|所|户|部门|单位)"
)
RANKING = re.compile(r"[一二三四五六七八九十\d]+等奖|第[一二三四五六七八九十\d]+名|排名第[一二三四五六七八九十\d]+|前[一二三四五六七八九十\d]+名")
NORM_BEFORE = ("不少于", "不超过", "至少", "每", "不低于", "以内", "以上")
FULL_DATE = re.compile(r"((?:19|20)\d{2})年(\d{1,2})月(\d{1,2})日")
QUOTED = re.compile(r"《[^》]*》|“[^”]*”|〔[^〕]*〕")
LEGAL_BASIS_MIN = 0.6
MAX_BASIS = 2


@dataclass
class OutlineNode:
    """A heading of a past report with its paragraphs (text, supporting chunk)."""

    heading: str
    level: int
    path: tuple[str, ...]
    paragraphs: list[tuple[str, Hit]] = field(default_factory=list)
    children: list[OutlineNode] = field(default_factory=list)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


# ---------------------------------------------------------------- outline of a past report


def report_outline(keyword: KeywordIndex, source: str) -> OutlineNode:
    """Rebuild a report's heading tree and paragraphs from its chunks (overlaps removed by span)."""
    root = OutlineNode(heading="", level=0, path=())
    nodes: dict[tuple[str, ...], OutlineNode] = {(): root}
    covered_to = -1
    last_node: OutlineNode | None = None
    for row in keyword.rows_of(source):
        meta = keyword.metadatas[row]
        path = tuple(p for p in (meta.get("section") or "").split(" > ") if p)
        for depth in range(1, len(path) + 1):
            key = path[:depth]
            if key not in nodes:
                node = OutlineNode(heading=key[-1], level=depth, path=key)
                nodes[key[:-1]].children.append(node)
                nodes[key] = node
        node = nodes[path]
        hit = keyword.hit(row, 1.0)
        start, text = int(meta.get("start", 0)), keyword.texts[row]
        end = int(meta.get("end", start + len(text)))
        # A chunk that overlaps or touches the previous one continues its paragraph, unless a
        # line break follows the overlap.
        continues = node is last_node and start <= covered_to
        if start < covered_to:
            text = text[covered_to - start :]
            continues = continues and not text.startswith("\n")
        covered_to = max(covered_to, end)
        last_node = node
        lines = [line.strip() for line in text.split("\n") if line.strip()]
        if lines and lines[0] == node.heading and heading_kind(node.heading):
            lines = lines[1:]  # a heading on a line of its own is rendered as a heading
        if continues and lines and node.paragraphs:
            previous, first_hit = node.paragraphs[-1]
            node.paragraphs[-1] = (previous + lines[0], first_hit)
            lines = lines[1:]
        node.paragraphs.extend((line, hit) for line in lines)
    return root


def renumber(heading: str, number: int) -> str:
    """Give a heading merged in from an older report the next number of its new siblings."""
    import cn2an

    cn = cn2an.an2cn(number)
    if re.match(r"^[（(][一二三四五六七八九十]+[）)]", heading):
        return re.sub(r"^[（(][一二三四五六七八九十]+[）)]", f"（{cn}）", heading)
    if re.match(r"^[一二三四五六七八九十]+[、．.]", heading):
        return re.sub(r"^[一二三四五六七八九十]+", cn, heading)
    if re.match(r"^\d+[．.、]", heading):
        return re.sub(r"^\d+", str(number), heading)
    return heading


def normalize_heading(text: str) -> str:
    return re.sub(r"[\s：:。]", "", NUMBERING.sub("", text.strip()))


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def heading_similarity(query: str, heading: str) -> float:
    """1.0 when one contains the other (法治社会建设 / 全面推进法治社会建设), else bigram Dice."""
    a, b = normalize_heading(query), normalize_heading(heading)
    if not a or not b:
        return 0.0
    if a in b or b in a:
        return 1.0
    x, y = _bigrams(a), _bigrams(b)
    return 2 * len(x & y) / (len(x) + len(y))


def find_sections(outline: OutlineNode, title: str, threshold: float = 0.5) -> OutlineNode | None:
    """The top-level section whose heading matches the title best; else the best sub-section."""
    for level in (1, 2, 3):
        candidates = [n for n in outline.walk() if n.level == level and heading_kind(n.heading)]
        scored = sorted(((heading_similarity(title, n.heading), n) for n in candidates), key=lambda p: -p[0])
        if scored and scored[0][0] >= threshold:
            return scored[0][1]
    return None


# ---------------------------------------------------------------- carrying text to a new year


def _inside(spans: list[tuple[int, int]], pos: int) -> bool:
    return any(s <= pos < e for s, e in spans)


def carry_forward(text: str, report_year: int | None, target_year: int) -> tuple[str, list[Placeholder]]:
    """Move the report's own year to the target year; turn last year's figures into placeholders."""
    placeholders: list[Placeholder] = []
    protected = [m.span() for m in QUOTED.finditer(text)]
    out: list[str] = []
    pos = 0
    events: list[tuple[int, int, str]] = []

    for m in FULL_DATE.finditer(text):
        if report_year and int(m.group(1)) >= report_year:
            events.append((m.start(), m.end(), "placeholder"))
    for m in FIGURE.finditer(text):
        before = text[max(0, m.start() - 3) : m.start()]
        after = text[m.end() : m.end() + 2]
        if _inside(protected, m.start()) or any(before.endswith(w) for w in NORM_BEFORE) or after.startswith(("日内", "个工作日")):
            continue
        events.append((m.start(), m.end(), "placeholder"))
    for m in RANKING.finditer(text):
        if not _inside(protected, m.start()):
            events.append((m.start(), m.end(), "placeholder"))
    if report_year:
        for m in re.finditer(rf"{report_year}\s*年", text):
            if any(s <= m.start() < e for s, e, _ in events):
                continue
            if _inside(protected, m.start()):
                events.append((m.start(), m.end(), "placeholder"))  # a document of last year: name it anew
            else:
                events.append((m.start(), m.end(), "year"))
    events.sort()
    for start, end, kind in events:
        if start < pos:
            continue
        out.append(text[pos:start])
        old = text[start:end]
        if kind == "year":
            out.append(f"{target_year}年")
        else:
            out.append(PLACEHOLDER.format(old=old))
            sentence_start = max(text.rfind(p, 0, start) for p in "。；\n") + 1
            sentence_end = min([i for i in (text.find(p, end) for p in "。；\n") if i != -1] or [len(text)])
            placeholders.append(Placeholder(old, text[sentence_start : sentence_end + 1].strip()))
        pos = end
    out.append(text[pos:])
    return "".join(out), placeholders


# ---------------------------------------------------------------- the drafter


def _dedupe_key(text: str) -> set[str]:
    return _bigrams(re.sub(r"\W", "", PLACEHOLDER_RE.sub("", text)))


def _is_repeat(text: str, seen: list[set[str]]) -> bool:
    key = _dedupe_key(text)
    return any(len(key & other) / max(1, min(len(key), len(other))) >= 0.6 for other in seen)


class Drafter:
    """Drafts a report section for a target year from the indexed past reports."""

    def __init__(self, retriever: HybridRetriever, settings: Settings, chat_model=None) -> None:
        self.retriever = retriever
        self.index = retriever.index
        self.settings = settings
        self.chat_model = chat_model

    def reports(self, sources: Sequence[str] | None = None) -> list[DocRecord]:
        """Past reports to draft from: those named, else the user's own organisation's (RAG_ORG), else
        the organisation of the most recent report — never several organisations' mixed."""
        records = [r for r in self.index.documents() if r.doc_type == "report"]
        if sources:
            wanted = set(sources)
            return sorted((r for r in records if r.source in wanted), key=lambda r: (r.year or 0, r.source), reverse=True)
        records.sort(key=lambda r: (r.year or 0, r.source), reverse=True)
        issuers = {r.issuer for r in records}
        if len(issuers) > 1:
            own = self.settings.answer.org
            issuer = own if own in issuers else records[0].issuer
            records = [r for r in records if r.issuer == issuer]
        return records

    def draft(
        self,
        title: str,
        year: int | None = None,
        sources: Sequence[str] | None = None,
        use_llm: bool | None = None,
    ) -> Draft:
        started = time.perf_counter()
        title = title.strip()
        if not title:
            raise ValueError("请填写要起草的章节标题")
        keyword = self.index.keyword()
        reports = self.reports(sources)
        if sources and not reports:
            raise ValueError(f"未找到指定的往年报告：{'、'.join(sources)}（用 rag docs 查看已索引的报告）")
        target_year = year or ((reports[0].year or time.localtime().tm_year - 1) + 1 if reports else time.localtime().tm_year)
        matches: list[tuple[DocRecord, OutlineNode]] = []
        for record in reports:
            node = find_sections(report_outline(keyword, record.source), title)
            if node is not None:
                matches.append((record, node))
        book = CitationBook()
        placeholders: list[Placeholder] = []
        notices: list[str] = []
        if matches:
            lines = self._compose(matches, target_year, book, placeholders)
            used = "、".join(f"《{r.title}》“{n.heading}”" for r, n in matches)
            notices.append(f"依据{used}起草；【待更新】处为往年数字，须按{target_year}年实际情况填写。")
        else:
            lines = self._outline_without_match(title, book)
            notices.append(f"未在往年报告中找到与“{title}”对应的章节，以下提纲根据相关段落整理，请补充完善。")
        markdown = "\n".join(lines).strip() + "\n"
        draft = Draft(
            title=title,
            year=target_year,
            draft=markdown,
            citations=tuple(book.citations),
            placeholders=tuple(placeholders),
            sources_used=tuple(dict.fromkeys(r.source for r, _ in matches)) if matches else tuple(dict.fromkeys(c.source for c in book.citations)),
            matched=tuple(n.heading for _, n in matches),
            notices=tuple(notices),
        )
        llm_wanted = self.settings.llm.enabled if use_llm is None else use_llm
        if llm_wanted and matches and self.chat_model is not None:
            from rag.llm import rewrite_draft

            draft = rewrite_draft(self.chat_model, draft)
        return replace(draft, seconds=time.perf_counter() - started)

    # ------------------------------------------------------------ composing

    def _compose(self, matches, target_year: int, book: CitationBook, placeholders: list[Placeholder]) -> list[str]:
        """Most recent report first; sub-sections merged by heading; repeated paragraphs dropped."""
        merged = OutlineNode(heading=matches[0][1].heading, level=1, path=())
        origin: dict[int, DocRecord] = {}
        for record, node in matches:
            self._merge(merged, node, record, origin)
        lines: list[str] = []
        seen: list[set[str]] = []

        def render(node: OutlineNode, depth: int) -> None:
            inline = bool(node.paragraphs) and node.paragraphs[0][0].startswith(node.heading)
            if node.heading and not inline:  # a run-in heading (1．xxx。正文) stays in its paragraph
                lines.append(f"{'#' * min(6, depth + 1)} {node.heading}")
                lines.append("")
            for text, hit in node.paragraphs:
                record = origin[id(hit)]
                carried, found = carry_forward(text, record.year, target_year)
                if _is_repeat(carried, seen):
                    continue
                seen.append(_dedupe_key(carried))
                placeholders.extend(found)
                n = book.cite(hit, text)
                lines.append(f"{carried}[{n}]")
                lines.append("")
            for child in node.children:
                render(child, depth + 1)
            if depth == 2 or (depth == 1 and not node.children):
                basis = self.legal_basis(node, book)
                if basis:
                    lines.append("**相关法律依据**：" + "；".join(basis))
                    lines.append("")

        render(merged, 1)
        return lines

    def _merge(self, target: OutlineNode, node: OutlineNode, record: DocRecord, origin: dict[int, DocRecord]) -> None:
        for text, hit in node.paragraphs:
            origin[id(hit)] = record
            target.paragraphs.append((text, hit))
        for child in node.children:
            same = next((c for c in target.children if heading_similarity(c.heading, child.heading) >= 0.8), None)
            if same is None:
                heading = renumber(child.heading, len(target.children) + 1) if target.children else child.heading
                same = OutlineNode(heading=heading, level=child.level, path=child.path)
                target.children.append(same)
            self._merge(same, child, record, origin)

    def legal_basis(self, node: OutlineNode, book: CitationBook) -> list[str]:
        """The most relevant law articles for a sub-section, cited, when the match is clear."""
        heading = normalize_heading(node.heading)
        body = node.paragraphs[0][0][:80] if node.paragraphs and len(heading) < 6 else ""
        query = f"{heading} {body}".strip()
        if not query:
            return []
        result = self.retriever.search(query, k=6, doc_type="law")
        keyword = self.index.keyword()
        # Only words that some law uses can match an article (压实 occurs in reports, in no law).
        known = [w for w in dict.fromkeys(content_nouns(heading)) if keyword.search([w], 1, {"doc_type": "law"})]
        terms = {w: keyword.idf(w) for w in known}
        total = sum(terms.values()) or 1.0
        if not terms:
            return []
        out: list[str] = []
        seen_articles: set[tuple[str, str | None]] = set()
        for hit in result.hits:
            if len(out) >= MAX_BASIS:
                break
            context = f"{hit.title}{hit.text}"
            coverage = sum(w for t, w in terms.items() if t in context) / total
            key = (hit.source, hit.article)
            if coverage < LEGAL_BASIS_MIN or key in seen_articles or not hit.article:
                continue
            seen_articles.add(key)
            body = re.sub(r"\s*\n\s*", "", re.sub(r"^第[^条]+条\s*", "", hit.text))
            first = re.split(r"(?<=[。；])", body, maxsplit=1)[0].strip()
            n = book.cite(hit, first)
            out.append(f"《{hit.title}》{hit.article}：{first}[{n}]")
        return out

    def _outline_without_match(self, title: str, book: CitationBook) -> list[str]:
        lines = [f"## {title}", ""]
        result = self.retriever.search(title, k=8, doc_type="report")
        for hit in result.hits[:5]:
            heading = last_heading(hit.section)
            sentences = [x.strip() for x in re.split(r"(?<=[。；\n])", hit.text) if x.strip()]
            sentences = [x for x in sentences if x.rstrip("。；") != heading and 8 <= len(x) <= 150]
            if not sentences:
                continue
            sentence = sentences[0]
            n = book.cite(hit, sentence)
            lines.append(f"- （参考“{hit.section.split(' > ')[-1]}”）{sentence}[{n}]")
        lines.append("")
        basis = self.legal_basis(OutlineNode(heading=title, level=1, path=()), book)
        if basis:
            lines.append("**相关法律依据**：" + "；".join(basis))
            lines.append("")
        return lines
