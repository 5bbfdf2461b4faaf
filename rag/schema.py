"""Frozen dataclasses that flow between the modules: Document, Section, Chunk, Hit, Citation, Answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DOC_TYPES = ("report", "law", "notice", "other")
DOC_TYPE_LABELS = {"report": "报告", "law": "法规", "notice": "通知", "other": "其他"}
DOC_TYPE_BY_LABEL = {label: kind for kind, label in DOC_TYPE_LABELS.items()}
STATUS_LABELS = {"added": "新增", "updated": "更新", "unchanged": "未变", "removed": "移除", "failed": "失败", "skipped": "跳过"}


# The version of loading, structure, chunking and keyword tokenization (2: informative stopwords kept;
# 3: titles, subtitles and speakers of PDF work reports; 4: page numbers and running headers dropped;
# 5: a letterhead above a title that names its organisation is not part of the title; 6: a running
# header is a line that recurs at the page breaks, never a heading; 7: a title or `——` subtitle broken
# over two lines at the top is joined; 8: page numbers written `第 2 页 共 5 页`, `2/5`; 9: a title going on
# over a line break with 和/及/暨 is joined, and a running header repeating its first line is not the title;
# 10: nor is a running header with a short form of the title; the 印发 office is not the issuer; 街道办事处;
# 11: a title that opens with its organisation is not joined to the line above; WeChat page lines; 12: a
# letterhead (…会议文件（七）) or the line above a 关于 title stands alone in a reflowed PDF; 乡/镇 places;
# `主送：` lines are the addressee; 13: a title in 【】 or after 标题： is read without them; 14: a web page's
# 索引号/文号/标题 fields are not joined into a title, 标　　题： spaced with full-width spaces; 15: a cover
# notice 关于印发《…报告》的通知 is typed and titled as the report it carries, the notice part is 文头; 16: a
# Chinese numeral before a unit is a keyword term in digits, 十五日 as 15日):
# records written by an older one are chunked again
# on the next ingest even when the file is unchanged (a fix to the parser reaches existing indexes).
PARSER_VERSION = 16


@dataclass(frozen=True)
class Document:
    """A cleaned document read from a file; `text` is what every char span points into."""

    source: str
    path: str
    title: str
    doc_type: str
    text: str
    content_hash: str
    year: int | None = None
    issuer: str | None = None

    @property
    def dated(self) -> bool:
        """A dated document issued by an organisation (reports, notices): not a law."""
        return self.doc_type in ("report", "notice", "other") and bool(self.issuer or self.year)


@dataclass(frozen=True)
class Section:
    """A node of a document's section tree; [start, end) is its span in Document.text.

    `body_end` is where the section's own text stops (its first child starts there).
    """

    kind: str  # preamble | heading | item | part | chapter | section | article | trailer
    level: int
    heading: str
    start: int
    end: int
    body_end: int
    number: int | None = None
    children: tuple[Section, ...] = ()

    def walk(self):
        """Yield this section and all its descendants in document order."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a document: text is Document.text[start:end]."""

    id: str
    source: str
    index: int
    text: str
    embed_text: str
    start: int
    end: int
    heading_path: tuple[str, ...] = ()
    article: str | None = None
    chapter: str | None = None
    top_section: str | None = None

    @property
    def section(self) -> str:
        return " > ".join(self.heading_path)


@dataclass(frozen=True)
class DocRecord:
    """One manifest entry: a document as stored in the index."""

    source: str
    path: str
    title: str
    doc_type: str
    year: int | None
    issuer: str | None
    content_hash: str
    chunks: int
    chars: int
    overridden: tuple[str, ...] = ()  # fields the user set with `rag docs --set`
    parser: int = 0  # PARSER_VERSION of the code that chunked it: an older one is chunked again

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["overridden"] = list(self.overridden)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["overridden"] = tuple(known.get("overridden") or ())
        return cls(**known)


def last_heading(section: str) -> str:
    """The innermost heading of a section path (`第三章 > 第二十条` -> `第二十条`; 抬头, 落款 for a
    document's front matter)."""
    return section.rsplit(" > ", 1)[-1]


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its score and metadata."""

    chunk_id: str
    source: str
    title: str
    doc_type: str
    text: str
    section: str
    article: str | None
    year: int | None
    score: float
    start: int = 0
    end: int = 0
    chunk_index: int = 0
    top_section: str | None = None
    issuer: str | None = None

    def with_score(self, score: float) -> Hit:
        """The same hit with another score (what `dataclasses.replace` does, several times faster: a
        search rescoring a few hundred candidates per question does it often)."""
        new = object.__new__(Hit)
        new.__dict__.update(self.__dict__)
        new.__dict__["score"] = score
        return new


@dataclass(frozen=True)
class Citation:
    """A passage cited by an answer; `id` matches the [n] marker in the answer text."""

    id: int
    source: str
    title: str
    section: str
    article: str | None
    text: str
    score: float
    sentence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_hit(cls, n: int, hit: Hit, sentence: str | None = None) -> Citation:
        return cls(
            id=n,
            source=hit.source,
            title=hit.title,
            section=hit.section,
            article=hit.article,
            text=hit.text,
            score=round(float(hit.score), 4),
            sentence=sentence,
        )


@dataclass(frozen=True)
class Answer:
    """What the assistant says: text with [n] markers, the citations, refusal flag, timings."""

    question: str
    answer: str
    refused: bool
    citations: tuple[Citation, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    notices: tuple[str, ...] = ()
    mode: str = "extractive"
    resolved: str | None = None  # the question as understood after resolving a follow-up

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "notices": list(self.notices),
            "mode": self.mode,
        }


@dataclass(frozen=True)
class FileResult:
    """The outcome of ingesting one file, for the summary."""

    path: str
    status: str  # added | updated | unchanged | removed | failed
    source: str | None = None
    chunks: int = 0
    chars: int = 0
    reason: str | None = None


@dataclass(frozen=True)
class IngestSummary:
    results: tuple[FileResult, ...]
    seconds: float

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> tuple[FileResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")


@dataclass(frozen=True)
class Placeholder:
    old: str
    context: str


@dataclass(frozen=True)
class Draft:
    title: str
    year: int
    draft: str
    citations: tuple[Citation, ...]
    placeholders: tuple[Placeholder, ...]
    sources_used: tuple[str, ...]
    matched: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "year": self.year,
            "draft": self.draft,
            "citations": [c.to_dict() for c in self.citations],
            "placeholders": [{"old": p.old, "context": p.context} for p in self.placeholders],
            "sources_used": list(self.sources_used),
            "matched_sections": list(self.matched),
            "notices": list(self.notices),
        }
