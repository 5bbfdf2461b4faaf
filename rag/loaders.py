"""File -> Document: read txt/md/docx/pdf in any common Chinese encoding, repair PDF text, read metadata."""

from __future__ import annotations

import hashlib
import re
import statistics
import unicodedata
from collections import Counter
from pathlib import Path

from rag.schema import Document

SUPPORTED_SUFFIXES = (".txt", ".md", ".docx", ".pdf")

CJK = r"\u3400-\u9fff\uf900-\ufaff"
# CJK characters plus full-width punctuation and forms.
CJK_WIDE = CJK + r"\u3000-\u303f\uff00-\uffef\u2018-\u201d\u2014\u2026"
ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
TERMINAL_PUNCT = "。！？；：”’）」』!?;:"

CN_NUM = "零〇一二三四五六七八九十百千两"
# Headings of Chinese official documents, in both widths.
HEADING_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("L1", re.compile(rf"^[一二三四五六七八九十]{{1,3}}[、．.](?![{CN_NUM}\d])")),
    ("L2", re.compile(r"^[（(][一二三四五六七八九十]{1,3}[）)]")),
    ("L3", re.compile(r"^\d{1,2}(?:[．.、](?![\d.．])|\s*[．]\s*)")),
    ("L4", re.compile(r"^[（(]\d{1,2}[）)]")),
)
LAW_HEADING = re.compile(rf"^第[{CN_NUM}\d]+[编章节](?:[\s\u3000]|$)")
ARTICLE_START = re.compile(rf"^第([{CN_NUM}\d]+)条(?:之[一二三四五六七八九十]+)?(?=[\s\u3000])")
TRAILER_START = re.compile(r"^(?:抄送|抄报|主送|印发|附件)[：:]|印发$|^[\s\S]{0,30}\d{4}年\d{1,2}月\d{1,2}日印发?$")
DATE_LINE = re.compile(r"^\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日$")


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


def display_width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


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


def needs_reflow(text: str) -> bool:
    """True when lines break inside sentences, as in text extracted from a PDF."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if len(lines) < 8:
        return False
    widths = [display_width(ln) for ln in lines]
    if statistics.median(widths) > 140:
        return False
    open_ends = sum(1 for ln in lines if not ln.endswith(tuple(TERMINAL_PUNCT + "，、,")))
    return open_ends / len(lines) > 0.3


def reflow_lines(text: str) -> str:
    """Join lines that a PDF broke inside sentences, words and numbers; keep paragraph and heading breaks."""
    lines = [ln.strip() for ln in text.split("\n")]
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
        if (
            standalone_heading
            or nxt is None
            or short
            or (is_structural_line(nxt) and (ends_clause or short or heading_kind(current) is not None))
            or DATE_LINE.match(_squash_spaces(nxt))
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


# Full-width digits and Latin letters (２０２４, ＡＢＣ) become half-width; full-width punctuation stays.
FULL_WIDTH_ALNUM = {cp: cp - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A)) for cp in range(r[0], r[1] + 1)}


def clean_text(raw: str, *, reflow: bool | None = None) -> str:
    """Normalise newlines, invisible and full-width alphanumeric characters; reflow PDF-style text.

    Paragraphs end up one per line."""
    text = raw.translate(ZERO_WIDTH).translate(FULL_WIDTH_ALNUM)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    if reflow is None:
        reflow = needs_reflow(text)
    if reflow:
        return reflow_lines(text)
    lines = [ln.strip() for ln in text.split("\n")]
    return "\n".join(ln for ln in lines if ln)


# ---------------------------------------------------------------- metadata


def detect_doc_type(text: str) -> str:
    lines = text.split("\n")
    articles = sum(1 for ln in lines if ARTICLE_START.match(ln))
    if articles >= 3:
        return "law"
    top = sum(1 for ln in lines if heading_kind(ln) == "L1")
    if top >= 2 and re.search(r"报告|总结|情况", text[:3000] + text[-2000:]):
        return "report"
    return "other"


def _clean_title(title: str) -> str:
    title = re.sub(r"^#+\s*", "", title).strip()
    return _SPACE_IN_CJK.sub("", title)[:80]


def extract_issuer(text: str, doc_type: str) -> str | None:
    lines = text.split("\n")
    if doc_type == "law":
        header_lines: list[str] = []
        for line in lines[:15]:
            if ARTICLE_START.match(line) or LAW_HEADING.match(re.sub(r"^#+\s*", "", line)):
                break
            header_lines.append(line)
        header = "\n".join(header_lines)
        for pattern, name in (
            (r"中共中央、国务院", "中共中央、国务院"),
            (r"全国人民代表大会常务委员会", "全国人民代表大会常务委员会"),
            (r"全国人民代表大会", "全国人民代表大会"),
            (r"国务院", "国务院"),
        ):
            if re.search(pattern, header):
                return name
        local = re.search(r"([\u4e00-\u9fff]{2,8}[省市])第[\u4e00-\u9fff]+届人民代表大会常务委员会", header)
        if local:
            return f"{local.group(1)}人民代表大会常务委员会"
        return None
    # Reports: the signature line just above the closing date.
    for i in range(len(lines) - 1, 0, -1):
        if DATE_LINE.match(lines[i]) and len(lines[i - 1]) <= 30 and not lines[i - 1].endswith("。"):
            return lines[i - 1].strip()
    orgs = Counter(re.findall(r"[\u4e00-\u9fff]{2,6}[市县区省](?:人民政府)?[\u4e00-\u9fff]{1,6}(?:局|厅|委员会|办公室)", text))
    return orgs.most_common(1)[0][0] if orgs else None


def extract_year(text: str, title: str, doc_type: str) -> int | None:
    """The year a report covers (the most-cited year in its text), or a law's latest version year."""
    in_title = re.search(r"((?:19|20)\d{2})\s*年", title)
    if in_title:
        return int(in_title.group(1))
    if doc_type == "law":
        years = [int(y) for y in re.findall(r"((?:19|20)\d{2})年\d{1,2}月\d{1,2}日", "\n".join(text.split("\n")[:10]))]
        return max(years) if years else None
    # Drop ranges such as 2020—2025年 and the closing date line.
    body = re.sub(r"(?:19|20)\d{2}\s*[—\-–~至]\s*(?:19|20)\d{2}", "", text)
    body = "\n".join(ln for ln in body.split("\n") if not DATE_LINE.match(ln) and not TRAILER_START.match(ln))
    years = Counter(int(y) for y in re.findall(r"((?:19|20)\d{2})\s*年", body))
    return years.most_common(1)[0][0] if years else None


def extract_title(text: str, doc_type: str, issuer: str | None, year_hint: int | None) -> str:
    for line in text.split("\n")[:5]:
        if line.startswith("#"):
            return _clean_title(line)
    first = text.split("\n", 1)[0].strip()
    is_addressee = first.endswith(("：", ":"))
    if first and not is_addressee and len(first) <= 60 and "。" not in first:
        return _clean_title(first)
    if doc_type == "report":
        kind = "法治政府建设情况报告" if "法治政府建设" in text else "工作情况报告"
        return f"{issuer or ''}{year_hint or ''}{'年' if year_hint else ''}{kind}"
    return _clean_title(first[:40]) if first else ""


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
    doc_type = detect_doc_type(text)
    issuer = extract_issuer(text, doc_type)
    year = extract_year(text, "", doc_type)
    title = extract_title(text, doc_type, issuer, year)
    year = extract_year(text, title, doc_type)
    return Document(
        source=source or path.stem,
        path=str(path),
        title=title,
        doc_type=doc_type,
        text=text,
        content_hash=content_hash(data),
        year=year,
        issuer=issuer,
    )
