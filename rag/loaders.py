"""File -> Document: read txt/md/docx/pdf in any common Chinese encoding, repair PDF text, read metadata."""

from __future__ import annotations

import hashlib
import re
import statistics
import unicodedata
from collections import Counter
from pathlib import Path

from rag.lines import DATE_LINE, PAGE_NUMBER, heading_kind, is_structural_line
from rag.metadata import ends_like_title, read_metadata
from rag.schema import Document
from rag.text import CJK, display_width

SUPPORTED_SUFFIXES = (".txt", ".md", ".docx", ".pdf")

# CJK characters plus full-width punctuation and forms.
CJK_WIDE = CJK + r"\u3000-\u303f\uff00-\uffef\u2018-\u201d\u2014\u2026"
ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
TERMINAL_PUNCT = "。！？；：”’）」』!?;:"

class LoadError(Exception):
    """A file that cannot be read; the message is Chinese and says why."""


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- raw readers


def decode_bytes(data: bytes) -> str:
    """Decode text in UTF-8 (with or without BOM), UTF-16, GBK/GB18030 or what charset-normalizer finds."""
    if not data.strip():
        raise LoadError("文件为空")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    utf16 = _decode_utf16_without_bom(data)
    if utf16 is not None:
        return utf16
    if b"\x00" in data[:4096]:
        raise LoadError("文件不是文本（含有二进制数据）")
    try:
        text = data.decode("gb18030")
        if _mostly_readable(text):
            return text
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or not _mostly_readable(str(best)):
        raise LoadError("无法识别文件编码，或文件不是文本")
    return str(best)


def _plausible_share(text: str) -> float:
    ok = sum(
        1
        for ch in text
        if ch.isspace() or " " <= ch <= "~" or "\u3400" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"
    )
    return ok / max(1, len(text))


def _decode_utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 without a BOM: accept an endianness only if the result is plainly Chinese or ASCII text."""
    if len(data) % 2:
        return None
    sample = data[:8192]
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = sample.decode(codec)
        except UnicodeDecodeError:
            continue
        if _plausible_share(text) >= 0.97 and re.search(r"[\u4e00-\u9fff\n]", text):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                return None
    return None


def _mostly_readable(text: str) -> bool:
    sample = text[:20000]
    if not sample:
        return False
    bad = sum(
        1
        for ch in sample
        if ch == "\ufffd" or (unicodedata.category(ch) in ("Cc", "Co", "Cs") and ch not in "\n\r\t\f")
    )
    return bad / len(sample) < 0.01


def read_docx(path: Path) -> str:
    """Paragraphs and tables of a .docx, in body order; a table row becomes one line."""
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises several types for a broken package
        raise LoadError(f"Word 文件已损坏或不是 .docx 格式（{type(exc).__name__}）") from exc
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells: list[str] = []
                for cell in row.cells:
                    value = cell.text.strip()
                    if value and (not cells or cells[-1] != value):  # merged cells repeat
                        cells.append(value)
                if cells:
                    lines.append(" | ".join(cells))
        else:
            lines.append(block.text)
    return "\n".join(lines)


def read_pdf(path: Path) -> str:
    """The text layer of a PDF, pages joined; clear errors for encrypted, corrupt or scanned files."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise LoadError("PDF 已加密，需要密码才能读取")
            except LoadError:
                raise
            except Exception as exc:
                raise LoadError("PDF 已加密，无法读取") from exc
        pages = [page.extract_text() or "" for page in reader.pages]
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise LoadError(f"PDF 文件已损坏或无法解析（{type(exc).__name__}）") from exc
    except Exception as exc:  # pypdf surfaces many internal errors on broken files
        raise LoadError(f"PDF 文件已损坏或无法解析（{type(exc).__name__}）") from exc
    if not pages:
        raise LoadError("PDF 没有页面")
    text = "\n".join(pages)
    if len(re.sub(r"\s", "", text)) < 20:
        raise LoadError("PDF 没有文本层（可能是扫描件），需要先做 OCR 识别")
    return text


# ---------------------------------------------------------------- cleaning


def needs_reflow(text: str) -> bool:
    """True when lines break inside sentences, as in text extracted from a PDF."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if len(lines) < 8:
        return False
    widths = [display_width(ln) for ln in lines]
    if statistics.median(widths) > 140:
        return False
    # Hard-wrapped text: many lines fill the page width and stop mid-sentence.
    full = statistics.quantiles(widths, n=10)[-2] if len(widths) >= 10 else max(widths)
    wrapped = sum(1 for ln, w in zip(lines, widths) if w >= 0.8 * full and not ln.endswith(tuple(TERMINAL_PUNCT + "，、,.")))
    return wrapped / len(lines) > 0.3


def _page_numbers(raw: list[str]) -> set[int]:
    """Line numbers of page numbers: `— 3 —`, `- 12 -`, or a bare number between blank lines."""
    found: set[int] = set()
    for i, line in enumerate(raw):
        text = line.strip()
        if not PAGE_NUMBER.match(text) or not re.search(r"\d", text):
            continue
        decorated = bool(re.search(r"[—\-–－]", text))
        apart = (i == 0 or not raw[i - 1].strip()) and (i + 1 >= len(raw) or not raw[i + 1].strip())
        if decorated or apart:
            found.add(i)
    return found


def drop_page_furniture(raw: list[str]) -> list[str]:
    """Without the page numbers of a PDF export and the running header or footer beside them (a line,
    not a heading, that recurs next to the page numbers): a sentence or a number the page break cut
    joins up again (`涉及金额2` … `- 1 -` … `XX会议文件（五）` … `146万元`). Other occurrences of that
    line (the letterhead at the top, the signature) stay."""
    pages = _page_numbers(raw)
    if not pages:
        return raw
    filled = [i for i, line in enumerate(raw) if line.strip()]
    counts = Counter(raw[i].strip() for i in filled)
    beside: dict[str, list[int]] = {}  # a repeated line's occurrences next to a page number
    for n, i in enumerate(filled):
        text = raw[i].strip()
        if i in pages or counts[text] < 2 or len(text) > 40 or "|" in text or heading_kind(text) is not None:
            continue
        neighbours = [filled[m] for m in (n - 1, n + 1) if 0 <= m < len(filled)]
        if any(j in pages for j in neighbours):
            beside.setdefault(text, []).append(i)
    # A running header or footer recurs at every page break (at the one break of a two-page export).
    drop = set(pages) | {i for found in beside.values() if len(found) >= min(2, len(pages)) for i in found}
    return [line for i, line in enumerate(raw) if i not in drop]


LETTERHEAD = re.compile(r"文件(?:[（(][^）)]{1,6}[）)])?$")  # 棠溆区第四届人大常委会第二十三次会议文件（七）
SUBTITLE_END = re.compile(r"(?:上|讲话|发言|说明|报告|[）)])$")


def continues_top_line(current: str, nxt: str) -> bool:
    """At the top of a PDF export, a title or a `——` subtitle broken over two lines: the next line
    ends the title (`关于2022年度…和其他` + `财政收支的审计工作报告`) or the subtitle (`——…人民代表大会`
    + `常务委员会第十四次会议上`)."""
    if len(nxt) > 40 or heading_kind(nxt) is not None or current.endswith(tuple(TERMINAL_PUNCT)) or re.search(r"[：:。]", nxt):
        return False
    if current.startswith("——"):
        return not SUBTITLE_END.search(current) and bool(SUBTITLE_END.search(nxt))
    # The first part names the year or starts with 关于 (a letterhead line, an organisation alone, does not)
    starts_title = bool(re.search(r"(?:19|20)\d{2}\s*年", current)) or current.startswith("关于")
    return starts_title and len(current) <= 40 and not re.search(r"(?:19|20)\d{2}", nxt) and not ends_like_title(current) and ends_like_title(current + nxt)


def reflow_lines(text: str) -> str:
    """Join lines that a PDF broke inside sentences, words and numbers; keep paragraph and heading breaks."""
    lines = [ln.strip() for ln in drop_page_furniture(text.split("\n"))]
    lines = [ln for ln in lines if ln]
    if not lines:
        return ""
    full_width = statistics.quantiles([display_width(ln) for ln in lines], n=10)[-2] if len(lines) >= 10 else max(display_width(ln) for ln in lines)
    paragraphs: list[str] = []
    current = ""
    for i, line in enumerate(lines):
        current += line
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        short = display_width(line) < 0.8 * full_width
        ends_clause = line.endswith(tuple(TERMINAL_PUNCT))
        # A heading line without a full stop is a heading of its own (the body follows on the next line).
        standalone_heading = current == line and heading_kind(line) is not None and "。" not in line
        # The title and its subtitle (——…会议上) at the top stand alone: a speaker or an addressee follows.
        top_title = len(paragraphs) < 4 and current == line and (ends_like_title(line) or line.startswith("——"))
        # A letterhead (…会议文件（七）) and the line above a title that opens with 关于 stand alone too.
        letterhead = len(paragraphs) < 4 and current == line and (bool(LETTERHEAD.search(line)) or (nxt or "").startswith("关于"))
        if nxt is not None and len(paragraphs) < 4 and continues_top_line(current, nxt):
            continue
        if (
            standalone_heading
            or top_title
            or letterhead
            or nxt is None
            or short
            or (is_structural_line(nxt) and (ends_clause or short or heading_kind(current) is not None))
            or DATE_LINE.match(_squash_spaces(nxt))
            # a signature (an organisation above a date) starts a line of its own
            or (ends_clause and i + 2 < len(lines) and display_width(nxt) <= 40 and DATE_LINE.match(_squash_spaces(lines[i + 2])))
        ):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return "\n".join(_squash_spaces(p) for p in paragraphs)


_SPACE_IN_CJK = re.compile(rf"(?<=[{CJK_WIDE}])[ \t\u00a0\u3000]+(?=[{CJK_WIDE}\dA-Za-z%])")
_SPACE_AFTER_DIGIT = re.compile(rf"(?<=[\d%])[ \t\u00a0]+(?=[{CJK_WIDE}])")
_SPACE_AFTER_ASCII_PUNCT = re.compile(rf"(?<=[{CJK}][,;:])[ \t]+(?=[{CJK}])")


def _squash_spaces(text: str) -> str:
    """Drop spaces a PDF put between Chinese characters, numbers and their units."""
    text = _SPACE_IN_CJK.sub("", text)
    text = _SPACE_AFTER_DIGIT.sub("", text)
    return _SPACE_AFTER_ASCII_PUNCT.sub("", text)


def clean_text(raw: str, *, reflow: bool | None = None) -> str:
    """Normalise newlines and invisible characters; reflow PDF-style text. Paragraphs end up one per line.

    Characters are kept as written (full-width digits too), so a citation quotes the document;
    matching folds widths on both sides (`rag.text.fold`)."""
    text = raw.translate(ZERO_WIDTH)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    if reflow is None:
        reflow = needs_reflow(text)
    if reflow:
        return reflow_lines(text)
    lines = [ln.strip() for ln in text.split("\n")]
    return "\n".join(ln for ln in lines if ln)


# ---------------------------------------------------------------- entry point


def read_file_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of a supported file, with a Chinese error for anything that cannot be read."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(f"不支持的文件类型：{suffix or '（无扩展名）'}，仅支持 {' '.join(SUPPORTED_SUFFIXES)}")
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise LoadError(f"文件过大（{size / 1048576:.1f} MB），上限为 {max_bytes / 1048576:.0f} MB")
        data = path.read_bytes()
    except PermissionError as exc:
        raise LoadError("没有读取该文件的权限") from exc
    except IsADirectoryError as exc:
        raise LoadError("这是一个目录，不是文件") from exc
    except OSError as exc:
        raise LoadError(f"无法读取文件（{exc.strerror or type(exc).__name__}）") from exc
    if not data.strip():
        raise LoadError("文件为空")
    return data


def raw_text(path: Path, data: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix == ".docx":
        return read_docx(path)
    if suffix == ".pdf":
        return read_pdf(path)
    return decode_bytes(data)


def load_document(
    path: Path, source: str | None = None, max_bytes: int | None = None, data: bytes | None = None
) -> Document:
    """Read one file into a cleaned Document with its metadata."""
    if data is None:
        data = read_file_bytes(path, max_bytes)
    raw = raw_text(path, data)
    text = clean_text(raw, reflow=True if path.suffix.lower() == ".pdf" else None)
    if len(re.sub(r"\s", "", text)) == 0:
        raise LoadError("文件没有可读的文字内容")
    meta = read_metadata(text)
    return Document(
        source=source or path.stem,
        path=str(path),
        title=meta.title,
        doc_type=meta.doc_type,
        text=text,
        content_hash=content_hash(data),
        year=meta.year,
        issuer=meta.issuer,
    )
