"""Text rules every module shares: width folding, simplified characters, Chinese numerals, sentences.

A leaf module: it imports nothing from `rag`. Folding keeps the length of the text, so a span
found in the folded text is the same span in the original.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

CJK = r"\u3400-\u9fff\uf900-\ufaff"
CN_NUM = "零〇一二三四五六七八九十百千万两"
CN_DIGIT_VALUES = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
# An ordinal (第三条) or a demonstrative (那一种, 每一项, 统一) before a Chinese numeral: it counts nothing.
NOT_COUNTING = "第那这哪某任每其同单唯统"
NUMBER = re.compile(rf"\d+(?:\.\d+)?|[{CN_NUM}]+")
YEAR = re.compile(r"((?:19|20)\d{2})\s*年")
# Sentence ends: 。！？； in both widths, closing quotes kept with the sentence; a line end.
SENTENCE_END = re.compile(r"[。！？；!?;]+[”’」』）)]*|\n+")
HAS_CJK = re.compile(rf"[{CJK}]")

# Full-width ASCII forms (！..～) and the ideographic space fold to their half-width forms, one
# character for one character.
_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_WIDTH[0x3000] = 0x20
_WIDTH.update({ord("〔"): ord("["), ord("〕"): ord("]"), ord("【"): ord("["), ord("】"): ord("]")})


def fold(text: str) -> str:
    """Full-width letters, digits and punctuation to half-width, for matching only (same length)."""
    return text.translate(_WIDTH)


@lru_cache(maxsize=8192)
def fold_lower(text: str) -> str:
    """`fold` and lower-case, remembered: the candidate sentences and passages of one question are
    matched several times, and the same passages come back for other questions."""
    return fold(text).lower()


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


# A year written with two digits in a chat (24年局里…, 23年度): 2015-2035, not a number of years (满20年,
# 20年来, 15年前, 30年内).
SHORT_YEAR = re.compile(r"(?<![\d.])(1[5-9]|2\d|3[0-5])(?=\s*年(?![内来后前多以之间左里余满]))")


def normalize_question(text: str) -> str:
    """Traditional -> simplified, widths folded, whitespace squeezed; a two-digit year in full."""
    text = fold(to_simplified(text))
    if not YEAR.search(text) and not re.search(r"满\s*\d{2}\s*年|\d{2}\s*年(?:工龄|党龄|教龄)", text):
        text = SHORT_YEAR.sub(r"20\1", text)
    return re.sub(r"\s+", " ", text).strip()


def squash(text: str) -> str:
    """No whitespace, widths folded: how expected strings and answers are compared."""
    return re.sub(r"\s+", "", fold(unicodedata.normalize("NFC", text)))


def chinese_number(value: str) -> int | None:
    """'四十四', '一百零九', '二〇二三' or '44' -> the number; None when it is not one."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return int(fold(value))
    if all(ch in CN_DIGIT_VALUES for ch in value):  # digit by digit, as in 二〇二三
        return int("".join(str(CN_DIGIT_VALUES[ch]) for ch in value))
    total, section, digit = 0, 0, 0
    units = {"十": 10, "百": 100, "千": 1000}
    for ch in value:
        if ch in CN_DIGIT_VALUES:
            digit = CN_DIGIT_VALUES[ch]
        elif ch in units:
            section += (digit or 1) * units[ch]
            digit = 0
        elif ch == "万":
            total += (section + digit) * 10000
            section, digit = 0, 0
        else:
            return None
    return total + section + digit


def chinese_numeral(number: int) -> str:
    """44 -> '四十四', 109 -> '一百零九' (the way articles are numbered)."""
    digits = "零一二三四五六七八九"
    if number < 0:
        raise ValueError(number)
    if number >= 10000:
        return str(number)
    if number < 10:
        return digits[number]
    if number < 20:
        return "十" + (digits[number % 10] if number % 10 else "")
    parts: list[str] = []
    for unit_value, unit in ((1000, "千"), (100, "百"), (10, "十")):
        q, number = divmod(number, unit_value)
        if q:
            parts.append(digits[q] + unit)
        elif parts and number and parts[-1] != "零":
            parts.append("零")
    if number:
        parts.append(digits[number])
    return "".join(parts)


def article_label(number: int) -> str:
    return f"第{chinese_numeral(number)}条"


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """[start, end) spans of the sentences in text[start:end], split only at 。！？； and line ends."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for match in SENTENCE_END.finditer(text, start, end):
        piece_end = match.end() if match.group(0)[0] != "\n" else match.start()
        spans.append((pos, piece_end))
        pos = match.end()
    if pos < end:
        spans.append((pos, end))
    return [_strip_span(text, s, e) for s, e in spans if text[s:e].strip()]


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def is_lead_in(text: str) -> bool:
    """A sentence that ends with a colon (either width) introduces what follows it (…的种类：)."""
    return text.rstrip().endswith(("：", ":"))


def split_sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def flatten(text: str) -> str:
    """One line: line breaks (and the spaces around them) removed."""
    return re.sub(r"\s*\n\s*", "", text).strip()


def char_ngrams(text: str, n: int = 2) -> list[str]:
    """Character n-grams of the CJK letters and digits of a text (punctuation and spaces dropped)."""
    clean = re.sub(rf"[^{CJK}0-9a-z%]", " ", fold(text).lower())
    grams: list[str] = []
    for piece in clean.split():
        if len(piece) < n:
            if HAS_CJK.search(piece) and n == 2:
                grams.append(piece)
            continue
        grams.extend(piece[i : i + n] for i in range(len(piece) - n + 1))
    return grams


CLAUSE_BREAKS = "，。；：、,;:\\s"


@lru_cache(maxsize=4096)
def in_order(term: str, gap: int | None = None) -> re.Pattern[str]:
    """`term`'s characters in order, at most `gap` others between two of them (any number when None),
    within one clause: how Chinese short forms keep the characters of a full name (人大常委会 in
    人民代表大会常务委员会, 市场监管局 in 市场监督管理局)."""
    between = f"[^{CLAUSE_BREAKS}]" + ("*?" if gap is None else f"{{0,{gap}}}")
    return re.compile(between.join(re.escape(ch) for ch in term))


def years_in(text: str) -> list[int]:
    return [int(y) for y in YEAR.findall(text)]


def display_width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def blank(pattern: re.Pattern[str] | str, text: str) -> str:
    """`text` with each match of `pattern` blanked by as many full-width spaces (every position kept)."""
    return re.sub(pattern, lambda m: "　" * len(m.group(0)), text)
