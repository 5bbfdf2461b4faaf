"""Document metadata from content that survives real copies: title, kind, issuer, covered year.

Web copies carry navigation lines before the title, PDF exports break the title over two lines,
short reports have no `一、` headings. So the title is the line (or two joined lines) near the top
that reads like a document title — an organisation, a year, a kind word at the end (报告, 总结,
通知, 条例 …) — skipping navigation, breadcrumbs, page tools, site names, document numbers and the
addressee line. The kind comes from the title first and the structure second; issuer and year
from the title, then the signature (落款) and the opening.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from rag.lexicon import lexicon
from rag.lines import ARTICLE_START, DATE_LINE, DOC_NUMBER, HEADING_PATTERNS, PAGE_NUMBER
from rag.text import CN_NUM, chinese_number, display_width, fold, is_lead_in, squash

TITLE_YEAR = re.compile(r"((?:19|20)\d{2}|[〇零一二三四五六七八九]{4})\s*年")
RANGE = re.compile(r"(?:19|20)\d{2}\s*[—\-–~至－]\s*(?:19|20)\d{2}")
TOP_LINES = 30


@dataclass(frozen=True)
class Metadata:
    title: str
    doc_type: str
    year: int | None
    issuer: str | None
    title_lines: tuple[int, ...] = ()  # line numbers of the title in the cleaned text
    addressee_line: int | None = None


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern[str]]:
    lex = lexicon()
    docs = lex.documents

    def alt(words) -> str:
        return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))

    places = alt(docs["place_suffixes"])
    orgs = alt(docs["org_suffixes"])
    return {
        "report_end": re.compile(rf"(?:{alt(docs['report_kinds'])})(?:[（(][^）)]*[）)])?$"),
        "law_end": re.compile(rf"(?:{alt(docs['law_kinds'])})(?:[（(][^）)]*[）)])?$"),
        "notice_end": re.compile(rf"(?:{alt(docs['notice_kinds'])})(?:[（(][^）)]*[）)])?$"),
        "chrome": re.compile(alt(docs["chrome"])),
        # An organisation: a place (开封市, 花都区) then an office, or a national body (审计署).
        "org": re.compile(rf"(?:[\u4e00-\u9fff]{{1,8}}?(?:{places})){{1,3}}(?:人民政府)?[\u4e00-\u9fff]{{0,8}}?(?:{orgs})|审计署|国务院|最高人民法院|最高人民检察院"),
        "org_line": re.compile(rf"^(?:[\u4e00-\u9fff]{{1,8}}?(?:{places})){{1,3}}[\u4e00-\u9fff]{{0,10}}?(?:{orgs})$|^审计署$"),
    }


def lines_of(text: str) -> list[str]:
    return text.split("\n")


def is_chrome(line: str) -> bool:
    """Navigation, breadcrumbs, page tools of a web page; page numbers and rules of a PDF."""
    stripped = line.strip()
    if not stripped:
        return True
    if PAGE_NUMBER.match(stripped) or re.fullmatch(r"[|｜\s【】\[\]]+", stripped):
        return True
    if stripped.count(">") >= 1 or stripped.count("＞") >= 1 or stripped.count("»") >= 1:
        return True
    if _patterns()["chrome"].search(stripped) and (len(stripped) <= 40 or re.search(r"[：:|｜【]", stripped)):
        return not _patterns()["report_end"].search(stripped)
    return False


def is_addressee(line: str) -> bool:
    """`青禾县人民政府：` / `各县（市、区）审计局，局机关各科室：` — who a document is sent to."""
    stripped = line.strip()
    if re.match(r"^主送(?:单位|机关)?[：:]", stripped):  # a 公文's 主送：A、B (the addressees after the label)
        return len(stripped) <= 80 and "。" not in stripped
    return is_lead_in(stripped) and len(stripped) <= 60 and "。" not in stripped


def _kind_of_title(title: str) -> str | None:
    p = _patterns()
    core = re.sub(r"[（(][^）)]*[）)]$", "", title)
    if p["notice_end"].search(core):
        return "notice"
    if p["report_end"].search(core) or re.search(r"报告|总结|年报", core):
        return "report"
    if p["law_end"].search(core):
        return "law"
    return None


def ends_like_title(line: str) -> bool:
    """A line that is a title by itself: a kind word at its end (报告, 总结, 通知, 条例 …), no sentence
    punctuation. PDF reflow keeps such a line at the top of a document apart from the subtitle and
    speaker lines that follow it."""
    text = line.strip()
    if not 6 <= len(text) <= 60 or re.search(r"[，。；：,;:]", text):
        return False
    core = re.sub(r"[（(][^）)]*[）)]$", "", text)
    p = _patterns()
    return any(p[name].search(core) for name in ("report_end", "notice_end", "law_end"))


ORG_FIELD_SPLIT = re.compile(r"[\s\u3000|｜*#>]+|[^\s\u3000|｜：:]{1,6}[：:]")  # a web page's fields (来源：, 发布机构：) and markdown marks


def fuller_issuer(issuer: str, lines: list[str]) -> str:
    """岐州市郦城区司法局 for 郦城区司法局 when a line of the document (its 落款, a letterhead) names the
    organisation alone with more of its places; a field of a line counts (`来源：岚溪市松川县审计局`)."""
    fields = [f for ln in lines for f in ORG_FIELD_SPLIT.split(ln.strip()) if f]  # 来源：X　浏览次数：…, **X**
    longer = [f for f in fields if f.endswith(issuer) and len(f) > len(issuer)]
    longer = [name for name in longer if _patterns()["org_line"].match(name) and len(name) <= len(issuer) + 8]
    return Counter(longer).most_common(1)[0][0] if longer else issuer


def _title_score(candidate: str) -> float:
    """How much a line reads like a document title (0: not at all)."""
    text = candidate.strip()
    if not text or len(text) > 70 or len(text) < 4:
        return 0.0
    if text.endswith(("。", "；", "，", ",", ";", "：", ":")) or text.count("，") + text.count(",") > 1:
        return 0.0
    if is_chrome(text) or DOC_NUMBER.match(text) or DATE_LINE.match(text):
        return 0.0
    kind = _kind_of_title(text)
    score = 0.0
    if kind:
        score += 2.0
    if TITLE_YEAR.search(fold(text)):
        score += 1.0
    if _patterns()["org"].search(text):
        score += 1.0
    if text.startswith("#"):
        score += 1.5
    if _patterns()["org_line"].match(text) or text.endswith("文件"):
        score -= 1.5  # a site name or a letterhead, not a title
    if "。" in text:
        score -= 2.0
    return score


TITLE_CONTINUATIONS = ("和", "及", "暨", "与", "并")


def find_title(lines: list[str]) -> tuple[str, tuple[int, ...]]:
    """The title and its line numbers (two for a title broken over two lines)."""
    found: list[tuple[float, int, str, tuple[int, ...]]] = []
    seen = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        seen += 1
        if seen > TOP_LINES or HEADING_PATTERNS[0][1].match(stripped) or ARTICLE_START.match(stripped):
            break
        options: list[tuple[str, tuple[int, ...]]] = [(stripped, (i,))]
        nxt = next((j for j in range(i + 1, min(len(lines), i + 3)) if lines[j].strip()), None)
        if nxt is not None and not is_chrome(stripped) and not DOC_NUMBER.match(stripped):
            second = lines[nxt].strip()
            if (
                len(stripped) <= 40
                and len(second) <= 40
                and not stripped.endswith(tuple("。；：:，,"))
                # a field of a web page's 索引号/文号/标题 table is whole on its line
                and not FIELD_LINE.match(stripped)
                and not FIELD_LINE.match(second)
                and not is_chrome(second)
                and not DOC_NUMBER.match(second)
                and _kind_of_title(second) is not None
                # a title goes on over the line break: …工作总结 / 和2026年工作计划
                and (_kind_of_title(stripped) is None or second.startswith(TITLE_CONTINUATIONS))
                and not second.startswith("关于")  # a title of its own below a letterhead
                and not re.search(r"文件(?:[（(][^）)]*[）)])?$", stripped)
                # a title that opens with its organisation starts there: what is above it (a letterhead, a
                # running header, a web or WeChat page line) is not its first half
                and not issuer_from_title(second)
            ):
                options.append((stripped + second, (i, nxt)))
        for text, numbers in options:
            score = _title_score(text)
            if score > 0:
                found.append((score, i, text, numbers))
    if not found:
        return "", ()
    score, _, text, numbers = max(found, key=lambda f: (f[0], -f[1]))
    # A running header may repeat the title or a short form of it above the whole title: take the whole.
    fuller = [f for f in found if f[0] >= score and len(f[2]) > len(text) and text in f[2]]
    if fuller:
        _, _, text, numbers = max(fuller, key=lambda f: len(f[2]))
    return clean_title(text), numbers


FORWARDING = re.compile(r"(?:印发|转发|报送|呈报|上报)\s*《(.+?)》\s*的(?:通知|函)")  # a cover notice of a document
FIELD_LINE = re.compile(r"^[\u4e00-\u9fff](?:[\u4e00-\u9fff]|[ \t\u3000]){1,7}[：:]")  # 文　　号：…, 发布机构：…


def clean_title(title: str) -> str:
    title = re.sub(r"^#+\s*", "", title).strip()
    title = re.sub(r"^(?:标\s*题|题\s*目)\s*[：:]\s*", "", title)  # 标题：… (标　　题：…) as some copies label it
    enclosed = re.fullmatch(r"[【\[〖]\s*(.+?)\s*[】\]〗]", title)  # 【…】 around the whole title
    if enclosed:
        title = enclosed.group(1)
    title = re.sub(r"(?<=[\u4e00-\u9fff])[ \t\u3000]+(?=[\u4e00-\u9fff\d])", "", title)
    return title[:80]


def title_year(title: str) -> int | None:
    match = TITLE_YEAR.search(fold(title))  # ２０２３年 as 2023年
    if not match:
        return None
    year = chinese_number(match.group(1))
    return year if year and 1900 <= year <= 2100 else None


def title_years(title: str) -> set[int]:
    """Every year a title names: a 2023年工作总结和2024年工作计划 is about both."""
    years = (chinese_number(m.group(1)) for m in TITLE_YEAR.finditer(fold(title or "")))
    return {y for y in years if y and 1900 <= y <= 2100}


def issuer_from_title(title: str) -> str | None:
    """The organisation a title starts with: 永春县审计局2024年… / 青禾县审计局关于… / 审计署2024年…"""
    head = re.split(r"关于|(?:19|20)\d{2}|[〇零一二三四五六七八九]{4}年", fold(title), maxsplit=1)[0]
    match = _patterns()["org"].match(head)
    if match and match.end() >= len(head) - 2:
        return match.group(0)
    return None


def signature(lines: list[str]) -> str | None:
    """The organisation signed above the closing date (落款), if any."""
    for i in range(len(lines) - 1, 0, -1):
        line = lines[i].strip()
        if line.endswith("印发"):  # `XX局办公室　2024年2月5日印发`: the office that printed it, not the issuer
            continue
        if DATE_LINE.match(fold(line)) or re.match(r"^\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日", fold(line)):
            for j in range(i - 1, max(-1, i - 3), -1):
                prev = lines[j].strip()
                if not prev:
                    continue
                match = _patterns()["org_line"].match(prev)
                if match:
                    return prev
                break
        inline = re.match(r"^(.{2,30}?)[\s\u3000]+\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日", line)
        if inline and _patterns()["org_line"].match(inline.group(1).strip()):
            return inline.group(1).strip()
    return None


def _law_issuer(lines: list[str]) -> str | None:
    header: list[str] = []
    for line in lines[:15]:
        if ARTICLE_START.match(line) or re.match(rf"^#*\s*第[{CN_NUM}\d]+[编章节]", line):
            break
        header.append(line)
    text = "\n".join(header)
    for name in ("中共中央、国务院", "全国人民代表大会常务委员会", "全国人民代表大会", "国务院"):
        if name in text:
            return name
    local = re.search(r"([\u4e00-\u9fff]{2,8}[省市])第[\u4e00-\u9fff]+届人民代表大会常务委员会", text)
    return f"{local.group(1)}人民代表大会常务委员会" if local else None


def _source_line_issuer(lines: list[str]) -> str | None:
    for line in lines[:TOP_LINES]:
        match = re.search(r"(?:信息来源|来源|发布机构|发文机关)[：:]\s*([^\s|｜【]+)", line)
        if match and _patterns()["org"].fullmatch(match.group(1)):
            return match.group(1)
        letterhead = re.match(r"^(.{2,20})文件$", line.strip())
        if letterhead and _patterns()["org"].fullmatch(letterhead.group(1)):
            return letterhead.group(1)
    return None


def _speaker_issuer(lines: list[str]) -> str | None:
    """The speaker's organisation under the title of a report given at a meeting (`XX县审计局局长　周立衡`)."""
    for line in lines[:TOP_LINES]:
        match = re.match(r"^(.{3,24}?)(?:党组书记、)?(?:副?局长|审计长|副?主任|副?厅长)[\s\u3000]*[\u4e00-\u9fff]{2,4}$", line.strip())
        if match and _patterns()["org_line"].match(match.group(1)):
            return match.group(1)
    return None


def _common_org(text: str) -> str | None:
    orgs = Counter(m.group(0) for m in _patterns()["org"].finditer(text[:3000]))
    return orgs.most_common(1)[0][0] if orgs else None


def _body_year(text: str) -> int | None:
    body = RANGE.sub("", fold(text))
    body = "\n".join(ln for ln in body.split("\n") if not DATE_LINE.match(ln.strip()) and not is_chrome(ln))
    years = Counter(int(y) for y in re.findall(r"((?:19|20)\d{2})\s*年", body[:4000]))
    return years.most_common(1)[0][0] if years else None


def _law_year(lines: list[str]) -> int | None:
    header = fold("\n".join(lines[:10]))
    years = [int(y) for y in re.findall(r"((?:19|20)\d{2})年\d{1,2}月\d{1,2}日", header)]
    return max(years) if years else None


def structure_kind(text: str) -> str:
    lines = text.split("\n")
    if sum(1 for ln in lines if ARTICLE_START.match(ln)) >= 3:
        return "law"
    if sum(1 for ln in lines if HEADING_PATTERNS[0][1].match(ln)) >= 2 and re.search(r"报告|总结|情况", text[:3000] + text[-2000:]):
        return "report"
    return "other"


def read_metadata(text: str) -> Metadata:
    """Title, kind, covered year and issuer of a cleaned document text."""
    lines = lines_of(text)
    title, title_lines = find_title(lines)
    kind = _kind_of_title(title) if title else None
    after = (title_lines[-1] + 1) if title_lines else 0
    forwarded = FORWARDING.search(title) if kind == "notice" else None
    if forwarded and _kind_of_title(forwarded.group(1)) == "report":
        # 关于印发《…报告》的通知: a cover notice; the report it carries is the document staff mean, and the
        # addressee that counts is the one below the report's own title line, when the copy has it
        title, kind = clean_title(forwarded.group(1)), "report"
        own = next((i for i in range(after, len(lines)) if squash(lines[i]) == squash(title)), None)
        if own is not None:
            title_lines, after = (*title_lines, own), own + 1
    structural = structure_kind(text)
    doc_type = kind or structural
    addressee = None
    for j in range(after, min(len(lines), after + 4)):
        if lines[j].strip() and not DOC_NUMBER.match(lines[j].strip()) and not lines[j].strip().startswith("——"):
            if is_addressee(lines[j]):
                addressee = j
            break
    if doc_type == "law":
        issuer = _law_issuer(lines)
        year = title_year(title) or _law_year(lines)
    else:
        issuer = issuer_from_title(title) or signature(lines) or _source_line_issuer(lines) or _speaker_issuer(lines) or _common_org(text)
        issuer = fuller_issuer(issuer, lines) if issuer else None
        year = title_year(title) or _body_year(text)
    if not title:
        title = synthetic_title(text, doc_type, issuer, year)
    return Metadata(title=title, doc_type=doc_type, year=year, issuer=issuer, title_lines=title_lines, addressee_line=addressee)


def synthetic_title(text: str, doc_type: str, issuer: str | None, year: int | None) -> str:
    """A title for a copy that lost its own (it starts with the addressee or the body)."""
    if doc_type == "report":
        if "法治政府建设" in text[:3000]:
            kind = "法治政府建设情况报告"
        elif "政府信息公开" in text[:3000]:
            kind = "政府信息公开工作年度报告"
        else:
            kind = "工作情况报告"
        return f"{issuer or ''}{f'{year}年' if year else ''}{kind}"
    first = next((ln.strip() for ln in lines_of(text) if ln.strip() and not is_chrome(ln)), "")
    return clean_title(first[:40])


def display_title(title: str) -> str:
    """A title for narrow tables (very long titles are shortened)."""
    return title if display_width(title) <= 80 else title[:38] + "…"
