"""Pure functions: a document's section tree -> Chunks that carry their heading path and char span."""

from __future__ import annotations

import re

from rag.schema import Chunk, Document, Section
from rag.structure import split_into_sections
from rag.text import sentence_spans

CLAUSE_END = re.compile(r"[，、,：:]")


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """A sentence longer than the limit: cut at clause marks, else hard, so no piece exceeds it."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        window_end = start + max_chars
        cut = None
        for match in CLAUSE_END.finditer(text, start + max_chars // 2, window_end):
            cut = match.end()
        cut = cut or window_end
        pieces.append((start, cut))
        start = cut
    if end > start:
        pieces.append((start, end))
    return pieces


def pack_sentences(
    text: str, spans: list[tuple[int, int]], max_chars: int, overlap: int
) -> list[tuple[int, int]]:
    """Greedily pack sentence spans into chunk spans of at most max_chars, with a sentence overlap."""
    units: list[tuple[int, int]] = []
    for s, e in spans:
        units.extend(_split_long(text, s, e, max_chars) if e - s > max_chars else [(s, e)])
    chunks: list[tuple[int, int]] = []
    i = 0
    while i < len(units):
        first = i
        chunk_start, chunk_end = units[i]
        i += 1
        while i < len(units) and units[i][1] - chunk_start <= max_chars:
            chunk_end = units[i][1]
            i += 1
        chunks.append((chunk_start, chunk_end))
        if i < len(units) and overlap > 0:
            back = max(first + 1, i - overlap)
            if back < i and units[i - 1][1] - units[back][0] <= max_chars // 3 and units[i][1] - units[back][0] <= max_chars:
                i = back
    return chunks


def _own_span(section: Section) -> tuple[int, int]:
    return section.start, section.body_end


def _is_heading_only(doc: Document, section: Section) -> bool:
    """A heading line with no body of its own (its text lives in its children)."""
    own = doc.text[section.start : section.body_end].strip()
    if not own:
        return True
    if section.kind not in ("heading", "part", "chapter", "section"):
        return False
    if section.kind == "heading" and not section.children:
        return False  # a one-line item (（一）违规发放津贴补贴86.4万元；): its line is all the text there is
    return "\n" not in own and len(own) <= len(section.heading) + 8


def chunk_document(doc: Document, max_chars: int = 600, overlap: int = 1) -> list[Chunk]:
    """Split a document into chunks that never cross a top-level section and never exceed max_chars."""
    tree = split_into_sections(doc)
    chunks: list[Chunk] = []
    seen_texts: set[str] = set()  # identical chunks of one document are stored once

    def emit(section: Section, path: tuple[str, ...], top: str, chapter: str | None) -> None:
        article = section.heading if section.kind == "article" else None
        if section.kind != "document" and not _is_heading_only(doc, section):
            start, end = _own_span(section)
            spans = sentence_spans(doc.text, start, end)
            for cs, ce in pack_sentences(doc.text, spans, max_chars, overlap):
                index = len(chunks)
                header = "\n".join(part for part in (doc.title, " > ".join(path)) if part)
                body = doc.text[cs:ce]
                if body in seen_texts:
                    continue
                seen_texts.add(body)
                chunks.append(
                    Chunk(
                        id=f"{doc.source}#{doc.content_hash[:8]}#{index:05d}",
                        source=doc.source,
                        index=index,
                        text=body,
                        embed_text=f"{header}\n{body}",
                        start=cs,
                        end=ce,
                        heading_path=path,
                        article=article,
                        chapter=chapter,
                        top_section=top,
                    )
                )
        for child in section.children:
            child_chapter = chapter
            if child.kind == "chapter":
                child_chapter = child.heading
            emit(child, path + (child.heading,), top or child.heading, child_chapter)

    emit(tree, (), "", None)
    return chunks
