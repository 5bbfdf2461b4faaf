"""Citation rules shared by answers, drafts, LLM checks, `rag verify` and the metrics.

- markers `[n]`, sentences with their markers, draft placeholders, the attribution prefix;
- `CitationBook`: numbers cited passages in order of first use;
- the support checker: does a passage support a sentence? Numbers, dates, article numbers and
  names must match exactly; obligation and negation must agree with the closest clause; the
  meaning must be close (an encoder's similarity with word and character overlap). The weights
  are fitted by `rag/calibrate.py` on eval/support_pairs.jsonl (`rag/data/support_model.json`).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rag.lexicon import DATA_DIR, alternation, lexicon
from rag.schema import Citation, Hit
from rag.segment import content_words, measure_units, polar_words, tagged_words, words
from rag.text import CN_NUM, NOT_COUNTING, blank, char_ngrams, chinese_number, fold, squash

REFUSAL = "未在已收录的文件中找到依据。"
REFUSAL_HINT = "以下是最接近的段落，仅供参考。"
MARKER = re.compile(r"\[(\d+)\]")
QUOTE_GAP = "……"  # between quoted pieces of one passage that are not next to each other
# A sentence with the [n] markers after it, or a sentence without any (which then cites nothing).
CITED_SENTENCE = re.compile(r"[^。！？；\n]+?[。！？；]?(?:\s*\[\d+\])+|[^。！？；\n\[]+[。！？；]")
PLACEHOLDER = "【待更新：原为{old}】"
PLACEHOLDER_RE = re.compile(r"【待更新：原为[^】]*】")
# 据《开封市审计局2024年法治政府建设情况报告》，… : whose document a sentence comes from;
# 第十一条规定：… : which article an extractive answer quotes.
ATTRIBUTION = re.compile(rf"^(?:据《([^》]+)》[，,]|第[{CN_NUM}\d]+条规定[：:])\s*")
SUPPORT_MODEL_FILE = DATA_DIR / "support_model.json"
VERDICTS = ("supported", "contradicted", "unsupported")


def cited_sentences(text: str) -> list[tuple[str, list[int]]]:
    """(sentence, its [n] numbers) for every sentence of an answer."""
    out: list[tuple[str, list[int]]] = []
    for match in CITED_SENTENCE.finditer(text):
        sentence = match.group(0).strip()
        if sentence:
            out.append((sentence, [int(n) for n in MARKER.findall(sentence)]))
    return out


def strip_markers(sentence: str) -> str:
    return ATTRIBUTION.sub("", MARKER.sub("", sentence)).strip()


def passage_context(hit: Hit) -> str:
    return f"{hit.title} {hit.section} {hit.text}"


class CitationBook:
    """Numbers cited passages in order of first use."""

    def __init__(self) -> None:
        self.citations: list[Citation] = []
        self._ids: dict[str, int] = {}

    def cite(self, hit: Hit, sentence: str | None = None) -> int:
        if hit.chunk_id not in self._ids:
            self._ids[hit.chunk_id] = len(self.citations) + 1
            self.citations.append(Citation.from_hit(self._ids[hit.chunk_id], hit, sentence))
        return self._ids[hit.chunk_id]


def quotes(sentence: str, passage: str) -> bool:
    """The sentence (markers and attribution removed) quotes the passage: each of its pieces occurs in it."""
    text = squash(passage)
    pieces = [squash(p).rstrip("。；;：:") for p in re.split(r"(?<=[。；;！？!?])", strip_markers(sentence))]
    pieces = [p for p in pieces if p]
    return bool(pieces) and all(p in text for p in pieces)


# ---------------------------------------------------------------- facts that must match exactly

@lru_cache(maxsize=1)
def _quantity_pattern() -> re.Pattern[str]:
    # 个 before 人 counts people (2个人 = 二人), as the lexicon's 个月 counts months
    units = "|".join(re.escape(u) for u in sorted(measure_units() | {"个人"}, key=lambda u: -len(u)))
    # 那一种, 每一项, 某一个 count nothing: a Chinese numeral right after a demonstrative is skipped; an
    # ordinal (第三十三条, 第一次) is not a quantity, and a numeral is read from its first character on.
    return re.compile(
        rf"(百分之[{CN_NUM}\d.]+)|((?<![第\d.])\d+(?:\.\d+)?|(?<![{NOT_COUNTING}{CN_NUM}])[{CN_NUM}]+)\s*(?:余|多)?\s*({units})"
    )


DATE = re.compile(rf"((?:19|20)\d{{2}}|[〇零一二三四五六七八九]{{4}})\s*年(?:\s*(\d{{1,2}}|[{CN_NUM}]{{1,3}})\s*月)?(?:\s*(\d{{1,2}}|[{CN_NUM}]{{1,3}})\s*日)?")
MONTH_DAY = re.compile(rf"(?<!\d)(\d{{1,2}}|[{CN_NUM}]{{1,3}})\s*月\s*(\d{{1,2}}|[{CN_NUM}]{{1,3}})\s*[日号]")
NUMERIC_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*[-./]\s*(\d{1,2})\s*[-./]\s*(\d{1,2})(?!\d)")  # 2024-01-26 (web copies)
ARTICLE = re.compile(rf"第\s*([{CN_NUM}\d]+)\s*条")
TITLE = re.compile(r"《([^》]{2,60})》")
UNIT_FAMILY = {"个人": "名", "年内": "年", "天": "日", "日内": "日", "工作日": "个工作日", "人": "名", "位": "名", "％": "%", "百分之": "%"}


def unit_family(unit: str) -> str:
    for group in lexicon().same_units:
        if unit in group:
            return group[0]
    return UNIT_FAMILY.get(unit, unit)


def measure_family(unit: str) -> str:
    """The family a quantity in `unit` is compared in: `unit_family`, years counted in months."""
    family = unit_family(unit)
    return "个月" if family == "年" else family


MULTIPLES = {"千": 1e3, "万": 1e4, "亿": 1e8}  # money counted in thousands (千元), 万 or 亿: compared in 元
TABLE_FIGURE = re.compile(r"(?<=\|)\s*(\d+(?:\.\d+)?)\s*(?=\|)")  # a table cell holding a figure alone (| 117 |)


def table_figures(text: str) -> set[float]:
    """The figures a table gives in cells of their own, their unit in the column's heading (公开条数 | 117)."""
    return {float(v) for v in TABLE_FIGURE.findall(fold(text))}


HALF_YEAR = re.compile(r"(?<![上下前后])半年")  # 每半年 = 每6个月; 上半年 names a period, it counts nothing


def _figure_text(text: str) -> str:
    """The text as its figures are read: widths folded, 半年 as 6个月."""
    return HALF_YEAR.sub("6个月", fold(text))


def _without_dates(folded: str) -> str:
    """The text with its dates blanked (2025年2月12日, 二〇二五年, 3月31日前): none of their figures counts."""
    return blank(MONTH_DAY, blank(DATE, folded))


def _measured(raw: str, unit: str) -> tuple[float, str] | None:
    """(value, unit family) of a numeral and its unit; years in months (2年 = 24个月, 半年 = 6个月).
    None for what counts nothing: a year (2024年), or 一 before a count word, the article of 一个案件,
    一次, 一起 (together) rather than a figure."""
    if unit == "年" and re.fullmatch(r"(?:19|20)\d{2}", raw):
        return None
    if raw == "一" and unit in lexicon().count_units:
        return None
    value = float(raw) if re.fullmatch(r"\d+(?:\.\d+)?", raw) else chinese_number(raw)
    if value is None:
        return None
    family = unit_family(unit)
    value = float(value) * MULTIPLES.get(unit[:1], 1) if family == "元" else float(value)  # 2万元 = 两万元 = 20000元
    return (value * 12 if family == "年" else value, measure_family(unit))


def quantities(text: str, in_dates: bool = False) -> set[tuple[float, str]]:
    """(value, unit family) of each quantity: 十日 = 10日 = 10天; 百分之十 = 10%; 两年 = 24个月. Years are
    dates, not quantities, and so are a date's month and day (2月12日 is no 12 days) unless `in_dates`
    (the passage ranker's hints, fitted reading them as 2 months and 12 days)."""
    return {q for _, _, q in placed_quantities(_figure_text(text), in_dates)}


def placed_quantities(figures: str, in_dates: bool = False) -> list[tuple[int, int, tuple[float, str]]]:
    """Each quantity of a text already read as figures (`_figure_text`) with its span there."""
    found: list[tuple[int, int, tuple[float, str]]] = []
    for m in _quantity_pattern().finditer(figures if in_dates else _without_dates(figures)):
        if m.group(1):
            value = chinese_number(m.group(1)[3:]) if not re.search(r"\d", m.group(1)) else float(re.sub(r"[^\d.]", "", m.group(1)) or 0)
            if value is not None:
                found.append((m.start(), m.end(), (float(value), "%")))
            continue
        measured = _measured(m.group(2), m.group(3))
        if measured is not None:
            found.append((m.start(), m.end(), measured))
    return found


def _date_parts(m: re.Match[str]) -> tuple[int | None, int | None, int | None]:
    """(year, month, day) of a `DATE` match; month and day None when it does not give them."""
    year = chinese_number(m.group(1))
    month = chinese_number(m.group(2)) if m.group(2) else None
    day = chinese_number(m.group(3)) if m.group(3) else None
    return year, month, day


def dates(text: str) -> set[tuple[int | None, int | None, int | None]]:
    """(year, month, day) of each date (2025年2月12日, 二〇二四年三月, 2024-01-26); a date without a year
    (每年3月31日前, 12月4号) has year None."""
    out: set[tuple[int | None, int | None, int | None]] = set()
    folded = fold(text)
    full: list[tuple[int, int]] = []
    for m in DATE.finditer(folded):
        year, month, day = _date_parts(m)
        if year and 1900 <= year <= 2100:
            out.add((year, month, day))
            full.append(m.span())
    for m in NUMERIC_DATE.finditer(folded):
        month, day = int(m.group(2)), int(m.group(3))
        if 1 <= month <= 12 and 1 <= day <= 31:
            out.add((int(m.group(1)), month, day))
    for m in MONTH_DAY.finditer(folded):
        if any(s <= m.start() < e for s, e in full):
            continue
        month, day = chinese_number(m.group(1)), chinese_number(m.group(2))
        if month and day and 1 <= month <= 12 and 1 <= day <= 31:
            out.add((None, month, day))
    return out


EVENT_WINDOW = 40  # characters after a date in which the event it dates is named (…会议通过, 起施行)


@lru_cache(maxsize=1)
def _event_pattern() -> tuple[re.Pattern[str], dict[str, str]]:
    events = lexicon().date_events
    kind = {word: name for name, words in events.items() for word in words}
    return re.compile("|".join(re.escape(w) for w in sorted(kind, key=len, reverse=True))), kind


def dated_events(text: str) -> set[tuple[str, tuple[int, int, int]]]:
    """(event, date) for each full date followed in its clause by what it dates (施行, 公布, 通过, 修正 …):
    `本法自2024年1月1日起施行` -> ("effect", (2024, 1, 1))."""
    pattern, kind = _event_pattern()
    folded = fold(text)
    out: set[tuple[str, tuple[int, int, int]]] = set()
    for m in DATE.finditer(folded):
        year, month, day = _date_parts(m)
        if not (year and month and day):
            continue
        tail = re.split(r"[。；;\n]", folded[m.end() : m.end() + EVENT_WINDOW])[0]
        tail = DATE.split(tail)[0]  # up to the next date
        event = pattern.search(tail)
        if event:
            out.add((kind[event.group(0)], (year, month, day)))
    return out


def events_named(text: str) -> set[str]:
    """The kinds of dated event a text names (施行 -> effect, 修订 -> amend), dated or not."""
    pattern, kind = _event_pattern()
    return {kind[m.group(0)] for m in pattern.finditer(fold(text))}


def event_dates_disagree(claim: str, passage: str) -> bool:
    """The claim dates an event (施行) with a date the passage gives another event (公布), or the passage
    dates the same event otherwise."""
    theirs = dated_events(passage)
    for event, date in dated_events(claim):
        same = {d for e, d in theirs if e == event}
        if (same and date not in same) or (not same and any(d == date for _, d in theirs)):
            return True
    return False


def articles(text: str) -> set[int]:
    return {n for n in (chinese_number(m.group(1)) for m in ARTICLE.finditer(fold(text))) if n}


def names(text: str) -> set[str]:
    """Document titles in 《》 and organisation names (a place name, then an office)."""
    from rag.orgs import organisation_names

    found = {squash(t) for t in TITLE.findall(text)}
    found |= {squash(o) for o in organisation_names(TITLE.sub("、", text))}  # not 河南省政府 of 《河南省政府投资…条例》
    return found


def loosely_present(word: str, text: str) -> bool:
    """The word occurs, or its characters occur in order close together: an abbreviation (人大 ->
    人民代表大会, 军委 -> 军事委员会) or a shortened form of the passage's word."""
    if word in text:
        return True
    if len(word) < 2 or len(word) > 6:
        return False
    pattern = ".{0,4}".join(re.escape(ch) for ch in word)
    return re.search(pattern, text) is not None


def _date_supported(date: tuple[int | None, int | None, int | None], passage_dates: set) -> bool:
    year, month, day = date
    return any(
        (year is None or y == year) and (month is None or m == month) and (day is None or d == day)
        for y, m, d in passage_dates
    )


PLACE = re.compile(r"^(.{2,8}?)([省市县区])(.{2,})$")  # 开封 + 市 + 司法局


def _name_supported(name: str, context: str) -> bool:
    """The name is in the passage or its document's title and section, whole, without 中华人民共和国, or with
    its place left out where the document is of that place (市司法局 in a report of 开封市 is 开封市司法局)."""
    if name in context:
        return True
    bare = re.sub(r"^中华人民共和国", "", name)
    if len(bare) >= 2 and bare in context:
        return True
    place = PLACE.match(name)
    return place is not None and place.group(2) + place.group(3) in context and place.group(1) + place.group(2) in context


# ---------------------------------------------------------------- obligation and negation

SENTENCE_ENDS = "。；;！？!?"  # where a clause, a condition (…的，) and a compared sentence end
UPWARD, DOWNWARD = frozenset({"at_least", "over"}), frozenset({"at_most", "under"})
OR_WORDS = ("或者", "或是", "或")  # what joins two acts either of which a clause speaks of
# A choice names both sides and negates nothing: 批准或者不批准, 批不批准, 是不是 (whether), as 是否 does.
CHOICE = re.compile(rf"([\u4e00-\u9fff]{{1,6}})(?:{'|'.join(OR_WORDS)}|还是)?[不未]\1")


def bounds(text: str) -> tuple[frozenset[str], str]:
    """The directions a clause bounds a figure in (at_most: 不得超过/最多/以内, at_least: 不得少于/至少,
    over: 超过, under: 少于) and the clause without its bound words (不得超过 is a limit, not a prohibition)
    and choices (`CHOICE`)."""
    modality = lexicon().modality
    found: set[str] = set()
    rest = CHOICE.sub("　", text)
    for name in ("at_most", "at_least", "over", "under"):  # the negated forms first: 不超过 is at most, not over
        for word in sorted(modality[name], key=len, reverse=True):
            if word in rest:
                found.add(name)
                rest = rest.replace(word, "　")
    return frozenset(found), rest


@lru_cache(maxsize=1)
def _need_noun() -> re.Pattern[str]:
    """需要 (or 需) as the noun "need": after 根据/视/因 … with at most one two-character word between, or
    before 的 or a clause's end (the lexicon's `need_noun_after`)."""
    after = "|".join(sorted(map(re.escape, lexicon().modality["need_noun_after"]), key=len, reverse=True))
    return re.compile(rf"(?:{after})(?:[\u4e00-\u9fff]{{2}})?需要?|需要(?=的|[，,。；;：:！!？?\s]|$)")


# 可做可不做, 是否回避由本人决定: forms of discretion beyond the lexicon's words (决定是否 alone is not one:
# 3日内决定是否批准 obliges a decision; a clause with 是否 of its own leaves the choice, see `_modality_differs`)
DISCRETION_FORMS = r"可([\u4e00-\u9fff]{1,2})可不\1|是否[^，,。；;]{1,16}由[^，,。；;]{1,12}决定"


# a clause that leaves a choice to someone (由行政机关决定是否公开, 作出是否赔偿的决定); 是否合法 asks nothing of anyone
CHOICE_LEFT = re.compile(r"决定是否|是否[^，,。；;]{1,8}的决定")


@lru_cache(maxsize=1)
def _discretion() -> re.Pattern[str]:
    return re.compile(f"{alternation(lexicon().modality['discretion'])}|{DISCRETION_FORMS}")


def polarity(text: str) -> dict[str, bool]:
    """Which of obligation / permission / prohibition / negation a clause expresses (jieba words), its
    bound words set apart; `negative` is a prohibition, a negation or a verb that negates in meaning
    (不得收取 and 不收取 agree, 拒绝提供 and 不提供 too), a negated one of those verbs positive (不得拒绝);
    `discretion`: the act is left to choice (视情况, 自行决定); `choice`: that, or a choice the clause leaves
    to someone (决定是否公开)."""
    modality = lexicon().modality
    rest = blank(_only_then(), _without_false_negations(bounds(text)[1]))
    tokens = polar_words(rest)
    joined = "".join(tokens)
    token_set = set(tokens)
    out = {"prohibition": any(w in joined for w in modality["prohibition"])}
    obliging = set(words(_need_noun().sub(_blank_need, rest))) if "需" in rest else token_set  # 可以根据需要组织 permits
    out["obligation"] = any(w in obliging for w in modality["obligation"])
    out["permission"] = any(w in token_set for w in modality["permission"])
    # a verb that negates in meaning (拒绝, 免征) is negative on its own (有权拒绝 ~ 有权说不; 拒绝提供且拒不改正
    # twice over, not positive); with a negation right before it the two cancel (不得拒绝 ~ 应当接受)
    plain = _uncancelled(tokens)
    said = set(plain)
    out["negation"] = any(w in said for w in modality["negation"] + modality["implicit_negation"]) or fused_negation(plain)
    prohibits = out["prohibition"] if len(plain) == len(tokens) else any(w in "".join(plain) for w in modality["prohibition"])
    out["negative"] = prohibits or out["negation"]
    # 不得拒绝、阻挠、拖延: the prohibition covers a list whose first act says "not" in its meaning, so the
    # clause is 应当接受 and 不得阻挠 at once — it agrees with a restatement of either reading
    out["either"] = bool(_prohibited_list().search(rest)) or mixed_alternatives(tokens)
    out["must"] = out["obligation"] or out["prohibition"]
    out["discretion"] = bool(_discretion().search(text))
    out["choice"] = out["discretion"] or bool(CHOICE_LEFT.search(text))
    return out


def mixed_alternatives(tokens: Sequence[str]) -> bool:
    """Two acts joined by 或者 (`OR_WORDS`) of which one carries a fused negation and the other none (不缴或者少缴): the
    clause speaks of both, so a restatement of either (少缴…的罚款) agrees with it. A negation word before
    both (不得拒绝或者拖延) covers the pair and is read as usual."""
    negators = set(lexicon().modality["negation"]) | set(lexicon().modality["prohibition"])
    for i, token in enumerate(tokens[1:-1], start=1):
        if token not in OR_WORDS:
            continue
        before, after = tokens[i - 1], tokens[i + 1]
        if i >= 2 and tokens[i - 2] in negators or after in negators:
            continue
        if fused_negation([before]) != fused_negation([after]):
            return True
    return False


@lru_cache(maxsize=1)
def _prohibited_list() -> re.Pattern[str]:
    """A negation or prohibition right before a verb that negates in meaning, itself the first of a list
    (不得拒绝、阻挠、拖延)."""
    modality = lexicon().modality
    return re.compile(f"(?:{alternation(modality['prohibition'] + modality['negation'])})(?:{alternation(modality['implicit_negation'])})、")


@lru_cache(maxsize=1)
def _only_then() -> re.Pattern[str]:
    return re.compile(alternation(lexicon().modality["only_then"]))


@lru_cache(maxsize=1)
def _false_negations() -> re.Pattern[str]:
    return re.compile(alternation(lexicon().modality["not_negations"]))


def _without_false_negations(text: str) -> str:
    """`text` with the words that only look negative (lexicon `not_negations`: 不分, 不断, 没收) blanked, as
    jieba may split them (不 / 分)."""
    return blank(_false_negations(), text)


def _uncancelled(tokens: Sequence[str]) -> list[str]:
    """A clause's words less each verb that negates in meaning (lexicon `implicit_negation`: 拒绝, 免征) with
    the negation or prohibition right before it: 不得拒绝 says no "not"."""
    modality = lexicon().modality
    negators = set(modality["negation"]) | set(modality["prohibition"])
    kept: list[str] = []
    for token in tokens:
        if token in modality["implicit_negation"] and kept and kept[-1] in negators:
            kept.pop()
        else:
            kept.append(token)
    return kept


def _blank_need(m: re.Match[str]) -> str:
    """The matched need noun with its 需 (and 要) blanked, the word before it kept."""
    return blank("需要?$", m.group(0))


def fused_negation(tokens: Sequence[str]) -> bool:
    """A verb or adjective with a negation fused in (不全, 不服, 不算, 无效, 办不完) among a clause's jieba words,
    not a word that only starts like one (不断, 没收): jieba's tags, the lexicon's prefixes and exceptions."""
    modality = lexicon().modality
    prefixes, exceptions = tuple(modality["fused_negation_prefixes"]), tuple(modality["not_negations"])
    for word in tokens:
        if len(word) == 3 and word[1] == "不" and not word.startswith(exceptions) and tagged_words(word)[0][1][:1] == "v":
            return True  # 办不完, 来不及: a verb that cannot reach its result
        if len(word) < 2 or not word.startswith(prefixes) or word.startswith(exceptions) or word in modality["negation"]:
            continue
        tags = tagged_words(word)
        if len(tags) == 1 and tags[0][1][:1] in ("v", "a", "l", "i"):
            return True  # 不服, 不算, 无效
        if len(tags) >= 2 and tags[0][0] in prefixes:
            return True  # 不全 (不 + 全), 不交 (不 + 交), 不向 (不 + 向), 未向
    return False


# a condition within its sentence: …的，… or, without the comma, …的就/则/便/也… (没被发现的就不再处罚)
CONDITION = re.compile(rf"^([^{SENTENCE_ENDS}]{{2,}}?的)(?:[，,]\s*|(?=[就则便也]))(.{{4,}})$")


def split_condition(text: str) -> tuple[str, str]:
    """(condition, main clause) of `…的，…` (没有造成危害后果的，不予处罚); ("", text) without one."""
    found = CONDITION.match(text.strip())
    return (found.group(1), found.group(2)) if found else ("", text)


def negativity_disagrees(claim: str, clause: str) -> bool:
    """The main clauses differ in negativity (不得, 不, 未被, 没有 against none), or both name a condition
    and the conditions do: 没有造成危害后果的，不予处罚 is compared part by part. When only one names its
    condition apart (不属于…管辖的，应当… against 对不属于…管辖的案件，要…), the wholes are compared.
    Two texts of as many sentences (…不再处罚；…延长到五年 against …不再给予行政处罚；…延长至五年) are
    compared sentence by sentence."""
    mine_sentences, their_sentences = _sentences(claim), _sentences(clause)
    if len(mine_sentences) == len(their_sentences) >= 2:
        return any(_negativity_differs(a, b) for a, b in zip(mine_sentences, their_sentences))
    return _negativity_differs(claim, clause)


def _sentences(text: str) -> list[str]:
    """A text's propositions: its sentences, a proviso after a comma (…不再处罚，但…延长到5年) on its own as the
    law gives it after a semicolon."""
    return [p for p in re.split(f"[{SENTENCE_ENDS}]|[，,](?=但)", text) if len(p.strip()) >= 2]


def _negativity_differs(claim: str, clause: str) -> bool:
    (mine_if, mine), (theirs_if, theirs) = split_condition(claim), split_condition(clause)
    if bool(mine_if) != bool(theirs_if):  # one names its condition apart (不属于…管辖的，应当…), the other in passing
        return opposite(polarity(claim), polarity(clause))
    if opposite(polarity(mine), polarity(theirs)):
        return True
    return bool(mine_if and theirs_if) and opposite(polarity(mine_if), polarity(theirs_if))


def opposite(a: dict[str, bool], b: dict[str, bool]) -> bool:
    """Two polarities (`polarity`) that disagree: one negative, the other not, neither readable both ways."""
    return a["negative"] != b["negative"] and not (a["either"] or b["either"])


def bounds_disagree(claim: str, clause: str) -> bool:
    """One says at most (or under) where the other says at least (or over)."""
    mine, theirs = bounds(claim)[0], bounds(clause)[0]
    return bool(mine and theirs) and ((mine <= UPWARD and theirs <= DOWNWARD) or (mine <= DOWNWARD and theirs <= UPWARD))


def clauses(text: str) -> list[str]:
    """Clauses of a passage: split at 。；！？ and at commas that follow a condition (的，)."""
    parts = re.split(f"(?<=[{SENTENCE_ENDS}])", text)
    return [p.strip() for p in parts if len(p.strip()) >= 4] or [text]


def _bigram_overlap(a: str, b: str) -> float:
    grams = set(char_ngrams(comparable(a)))
    if not grams:
        return 0.0
    other = set(char_ngrams(comparable(b)))
    return len(grams & other) / len(grams)


TABLE_ROW = re.compile(r"(?m)^\s*\|")
FOCUS_SENTENCES = 3  # the most consecutive sentences of a passage one checked sentence is judged against
CLAUSE_END = re.compile(r"(?<=[，,；;。！？!?：:\n])")
SENTENCE_STOP = re.compile(r"[。；;！？!?\n]")
FIGURE_GRAM = re.compile(r"\d")
TOKEN_WORD = re.compile(r"[\u4e00-\u9fff0-9A-Za-z]+")


def focus(claim: str, passage: str, most: int = FOCUS_SENTENCES, context: str = "") -> str:
    """The part of a long passage a sentence restates: the run of consecutive clauses, within at most
    `most` sentences, that holds most of the sentence's character bigrams (figures written alike on
    both sides), the shortest such run on a tie. A report section or a long article is judged where it
    speaks of the sentence's fact, as a short passage is whole. What the passage's title and section
    already say (the organisation, the law) does not pull in another clause that repeats it."""
    grams = set(char_ngrams(comparable(claim)))
    grams = (grams - set(char_ngrams(comparable(context)))) or grams
    grams = {g for g in grams if not FIGURE_GRAM.search(g)} or grams  # the figures are what is checked there
    if not grams:
        return passage
    # a sentence listing figures clause by clause (警告6个月，记过12个月，记大过18个月，…) restates as many of
    # the passage's sentences (a list article's items)
    most = max(most, sum(1 for piece in comma_clauses(claim) if quantities(piece) or dates(piece)))
    # the line breaks between clauses stay in (the part is a piece of the passage, found in it again)
    units = [u for u in CLAUSE_END.split(passage) if u]
    unit_grams = [set(char_ngrams(comparable(u))) for u in units]
    ends = [bool(u.strip()) and bool(SENTENCE_STOP.fullmatch(u.strip()[-1])) for u in units]
    best, best_key = (0, len(units)), (-1.0, 0)
    for i in range(len(units)):
        held: set[str] = set()
        sentences = size = 0
        for j in range(i, len(units)):
            held |= unit_grams[j] & grams
            size += len(units[j])
            key = (len(held) / len(grams), -size)
            if key > best_key:
                best, best_key = (i, j + 1), key
            sentences += ends[j]
            if sentences >= most:
                break
    return "".join(units[best[0] : best[1]]).strip()


def whole_sentences(passage: str, part: str) -> str:
    """The sentences of the passage the part lies in: a year said before the clauses that name the fact
    (2024年，…公开政府信息554条) or a figure after them (记大过，十八个月；) is checked with them."""
    start = passage.find(part)
    if start < 0 or not part:
        return part or passage
    before = [m.end() for m in SENTENCE_STOP.finditer(passage, 0, start)]
    stop = SENTENCE_STOP.search(passage, start + len(part) - 1)
    return passage[slice(*_with_whole_table(passage, before[-1] if before else 0, stop.end() if stop else len(passage)))]


def _with_whole_table(passage: str, lo: int, hi: int) -> tuple[int, int]:
    """(lo, hi) widened to the whole of a Markdown table a row of which it holds: a table's figures (its
    合计 row, a row below the part) are checked against the whole table, as its header's unit is."""
    if not TABLE_ROW.search(passage[lo:hi]):
        return lo, hi
    while lo > 0:
        line_start = passage.rfind("\n", 0, lo - 1) + 1
        if not TABLE_ROW.match(passage[line_start:lo]):
            break
        lo = line_start
    while hi < len(passage):
        line_end = passage.find("\n", hi)
        line_end = len(passage) if line_end < 0 else line_end + 1
        if not TABLE_ROW.match(passage[hi:line_end]):
            break
        hi = line_end
    return lo, hi


def comparable(text: str) -> str:
    """Figures written one way on both sides of a comparison: 三日 and 3天 become 3日, 十个工作日 10个工作日."""

    def canonical(m: re.Match[str]) -> str:
        if m.group(1):
            return m.group(0)
        measured = _measured(m.group(2), m.group(3))
        return f"{measured[0]:g}{measured[1]}" if measured else m.group(0)

    return _quantity_pattern().sub(canonical, _figure_text(text))


def closest_clause(sentence: str, passage: str, pairs: bool = False) -> str:
    """The clause of the passage that shares most character bigrams (or two neighbouring ones)."""
    parts = clauses(passage)
    windows = parts + ([a + b for a, b in zip(parts, parts[1:])] if pairs else [])
    return max(windows, key=lambda c: (_bigram_overlap(sentence, c), -len(c)))


SUB_CLAUSE = re.compile(r"[，,；;。！？!?：:\n]")


UNSAID = 0.2  # share of a clause's character bigrams the sentence must hold to restate it
SHORT_CONTENT = 4  # ... or, for a clause of at most this many characters besides its modal words, all of them


@lru_cache(maxsize=1)
def modal_words() -> re.Pattern[str]:
    """The obligation, permission, prohibition and negation words of the lexicon, longest first."""
    modality = lexicon().modality
    return re.compile(alternation([w for name in ("obligation", "permission", "prohibition", "negation") for w in modality[name]]))


def said_part(claim: str, clause: str) -> str:
    """The clause without the comma clauses at its ends the sentence does not restate (…的时效为两年，
    自…之日起计算，但被羁押等期间不计算在内 for 请求时效是2年): what a sentence leaves out it does not deny."""
    units = [u for u in CLAUSE_END.split(clause) if u.strip()]
    grams = set(char_ngrams(comparable(claim)))
    claimed = set(comparable(claim))

    def said(unit: str) -> bool:
        own = set(char_ngrams(comparable(unit)))
        if not own or len(own & grams) >= UNSAID * len(own):
            return True
        # a short clause of a word or two besides its obligation or negation (不得收费) is said when the
        # sentence holds its characters (不能收取任何费用): two characters' bigrams are too few to tell
        content = re.sub(r"[\W_]", "", modal_words().sub("", comparable(unit)))
        return 0 < len(content) <= SHORT_CONTENT and all(ch in claimed for ch in content)

    start, stop = 0, len(units)
    while start < stop - 1 and not said(units[start]):
        start += 1
    while stop > start + 1 and not said(units[stop - 1]):
        stop -= 1
    return "".join(units[start:stop])


def comma_clauses(text: str) -> list[str]:
    """The clauses of a text split at commas and sentence ends, those of two characters or more."""
    return [c for c in SUB_CLAUSE.split(text) if len(c.strip()) >= 2]


PAIRED = 0.4  # bigram F1 at which a sentence's clause and a passage's clause say the same thing


def _f1(a: set[str], b: set[str]) -> float:
    shared = len(a & b)
    return 2 * shared / (len(a) + len(b)) if shared else 0.0


def paired_clauses(claim: str, passage: str) -> list[tuple[str, str]]:
    """Each comma clause of the sentence with the passage clause it restates (bigram F1 at least
    PAIRED, figures written alike), the sentence's clause order kept."""
    theirs = [(c, set(char_ngrams(comparable(c)))) for c in comma_clauses(passage)]
    out: list[tuple[str, str]] = []
    for mine in comma_clauses(claim):
        grams = set(char_ngrams(comparable(mine)))
        if not grams or not theirs:
            continue
        best, score = max(((c, _f1(grams, g)) for c, g in theirs), key=lambda x: x[1])
        if score >= PAIRED:
            out.append((mine, best))
    return out


def _modality_differs(mine: dict[str, bool], theirs: dict[str, bool]) -> bool:
    """May against must (可以 against 应当/不得), either way; or left to choice (视情况, 自行决定是否) against a
    clause that leaves no choice (应当回避, 均提交, 一律审核: neither 可以 nor a choice of its own)."""
    return (
        (mine["permission"] and not mine["must"] and theirs["must"] and not theirs["permission"])
        or (mine["must"] and not mine["permission"] and theirs["permission"] and not theirs["must"])
        or (mine["discretion"] and not theirs["choice"] and not theirs["permission"])
    )


def swapped_words(claim: str, passage: str) -> tuple[int, int]:
    """(nouns, other words) of the sentence whose place the passage fills with something else: beside
    one of the word's neighbours (two characters or more) the passage has other characters, none of
    them the word's (国务院教育行政部门 against 国务院司法行政部门, 中级人民法院 against 基层人民法院;
    not 交给 against 送交)."""
    text = squash(passage)
    tags = [(w, f) for w, f in tagged_words(claim) if TOKEN_WORD.fullmatch(w)]
    nouns = others = 0
    for i, (word, flag) in enumerate(tags):
        if len(word) < 2:
            continue
        left = tags[i - 1][0] if i > 0 else ""
        right = tags[i + 1][0] if i + 1 < len(tags) else ""
        size = len(word)
        filled: list[str] = []
        if len(left) >= 2 and left + word not in text:
            filled += [text[m.end() : m.end() + size] for m in re.finditer(re.escape(left), text)]
        if len(right) >= 2 and word + right not in text:
            filled += [text[max(0, m.start() - size) : m.start()] for m in re.finditer(re.escape(right), text)]
        filled = [f for f in filled if len(f) == size and TOKEN_WORD.fullmatch(f)]
        noun = flag[:1] in ("n", "j", "b") or flag == "vn"
        if filled and all(_replaced(f, word, noun) for f in filled):
            if noun:
                nouns += 1
            else:
                others += 1
    return nouns, others


def _replaced(other: str, word: str, noun: bool) -> bool:
    """`other` stands where the sentence has `word` and is another word: no character in common, or, for
    a noun, none once what both begin and end with is set apart (中级 against 高级, 行政复议 against
    行政诉讼: another court, another procedure; a verb may keep its ending in other words: 接到, 收到)."""
    if other == word:
        return False
    if noun:
        end = len(os.path.commonprefix([other[::-1], word[::-1]]))
        other, word = other[: len(other) - end], word[: len(word) - end]
        start = len(os.path.commonprefix([other, word]))
        other, word = other[start:], word[start:]
    return not set(other) & set(word)


FIGURE_UNIT = re.compile(r"[。；;！？!?：:\n]")


def figure_elsewhere(claim: str, passage: str) -> float:
    """How much more of the words around a figure of the sentence (its clause, and the one before when that
    one gives no figure of its own) the passage's sentence with another figure of the same kind holds
    than its sentence with that figure:
    记大过 for 24个月 where the passage gives 记大过，十八个月 and 降级、撤职，二十四个月, or a deadline
    it gives another duty. 0 when each figure stands with its words, or the passage has no other
    figure of its kind."""
    pieces = [c for c in SUB_CLAUSE.split(claim) if c.strip()]
    figures = [(quantities(piece), dates(piece)) for piece in pieces]
    units = [u for u in FIGURE_UNIT.split(passage) if u.strip()]  # a list's lead-in (…期间为：) stands apart
    if len(units) < 2 or not any(q or d for q, d in figures):  # the passage is read only for a sentence with figures
        return 0.0
    unit_grams = [set(char_ngrams(comparable(u))) for u in units]
    info = [(quantities(u), dates(u)) for u in units]
    worst = 0.0
    for n, (piece_q, piece_d) in enumerate(figures):
        if not (piece_q or piece_d):
            continue
        # for each figure: which of the passage's sentences give it, and which give another of its kind
        placed = [([f in q for q, _ in info], [any(u == f[1] for _, u in q) for q, _ in info]) for f in piece_q]
        placed += [([_date_supported(f, d) for _, d in info], [bool(d) for _, d in info]) for f in piece_d]
        # its words: its clause, with the one before unless that one gives a figure of its own (记大过，
        # 十八个月 — but …60日内办结，情况复杂的经批准最多延长30日: the clause before speaks of its own figure)
        lead = pieces[n - 1] if n and not any(figures[n - 1]) else ""
        grams = {g for g in char_ngrams(comparable(lead + pieces[n])) if not FIGURE_GRAM.search(g)}
        if not grams:
            continue
        share = [len(grams & g) / len(grams) for g in unit_grams]
        for gives, of_kind in placed:
            own = [share[i] for i in range(len(units)) if gives[i]]
            other = [share[i] for i in range(len(units)) if of_kind[i] and not gives[i]]
            if own and other:
                worst = max(worst, max(other) - max(own))
    return worst


FIGURE_REACH = 6  # characters between a thing and the figure that counts it (审计结果公告3条, 公告共有5条)
FIGURE_BREAK = re.compile(r"[，,、；;。！？!?：:（）()|\n]")  # a figure past one of these counts something else


def _thing(flag: str) -> bool:
    """A noun, an abbreviation or a verbal noun, by its jieba tag: what a figure counts or a sentence names
    (narrower than `segment.is_noun`, which reads idioms, Latin words and unknown tokens as nouns too)."""
    return flag[:1] in ("n", "j") or flag == "vn"


def _noun_run(tags: Sequence[tuple[str, str]], last: bool) -> str:
    """The last (or first) run of nouns in tagged words, joined (审计/结果/公告 → 审计结果公告)."""
    noun = [_thing(f) for _, f in tags]
    at = [i for i, ok in enumerate(noun) if ok]
    if not at:
        return ""
    end = start = at[-1] if last else at[0]
    while start > 0 and noun[start - 1]:
        start -= 1
    while end + 1 < len(tags) and noun[end + 1]:
        end += 1
    run = "".join(w for w, _ in tags[start : end + 1])
    return run if len(run) >= 2 else ""


def _counted_word(claim: str, start: int, end: int) -> tuple[str, bool]:
    """The noun a figure of the sentence counts, and whether it stands before the figure: the nearest run of
    nouns before it in its clause (no other figure between), else the nearest after it (16项行政权力事项)."""
    before = FIGURE_BREAK.split(claim[:start])[-1]
    after = FIGURE_BREAK.split(claim[end:])[0]
    if placed_quantities(before):  # 3000元以上5万元以下: the second figure's noun is the first one's
        return "", True
    noun = _noun_run(tagged_words(before), last=True)
    if noun:
        return noun, True
    if placed_quantities(after):
        return "", False
    return _noun_run(tagged_words(after), last=False), False


def figure_rebound(claim: str, passage: str) -> float:
    """How many figures of the sentence the passage gives to their noun as another figure of the same
    kind, and never as this one: 审计结果公告5条 where the passage lists 审计结果公告3条…组织机构类信息5条,
    行政处罚3项 where it lists 行政处罚2项、行政强制3项 (the figure is there, beside something else)."""
    mine_text = _figure_text(claim)
    mine = placed_quantities(mine_text)
    if not mine:
        return 0.0
    theirs_text = _figure_text(passage)
    theirs = placed_quantities(theirs_text)
    if not theirs:
        return 0.0
    count = 0
    for start, end, (value, unit) in mine:
        noun, first = _counted_word(mine_text, start, end)
        if not noun:
            continue
        beside: set[tuple[float, str]] = set()
        for m in re.finditer(re.escape(noun), theirs_text):
            for s0, e0, q in theirs:
                # the passage's figure on the same side of the noun as in the sentence
                lo, hi = (m.end(), s0) if first else (e0, m.start())
                gap = theirs_text[lo:hi]
                if lo <= hi and len(gap) <= FIGURE_REACH and not FIGURE_BREAK.search(gap) and not placed_quantities(gap):
                    beside.add(q)
        if (value, unit) not in beside and any(u == unit for _, u in beside):
            count += 1
    return float(count)


def negations(text: str) -> int:
    """How many negations and prohibitions a text says, verbs that negate in meaning (拒绝, 免征) included
    (bound words set apart)."""
    modality = lexicon().modality
    tokens = polar_words(_without_false_negations(bounds(text)[1]))
    single = set(modality["negation"]) | set(modality["prohibition"]) | set(modality["implicit_negation"])
    return sum(1 for t in tokens if t in single) + sum(1 for t in tokens if t not in single and fused_negation([t]))


# ---------------------------------------------------------------- the checker

Similarity = Callable[[str, Sequence[str]], Sequence[float]]
PairReader = Callable[[Sequence[tuple[str, str]]], Sequence[float]]  # (sentence, passage) pairs -> logits (rag.reader)

FEATURES = (
    "bias",
    "similarity",
    "clause_similarity",
    "word_coverage",
    "bigram_coverage",
    "missing_words",
    "missing_nouns",
    "missing_verbs",
    "missing_actors",
    "clause_bigram_coverage",
    "clause_word_coverage",
    "quote",
    "quantity_mismatch",
    "quantity_absent",
    "date_mismatch",
    "article_mismatch",
    "name_mismatch",
    "modality_mismatch",
    "negation_mismatch",
    "paired_negation_mismatch",
    "paired_modality_mismatch",
    "swapped_nouns",
    "swapped_others",
    "negation_parity",
    "figure_elsewhere",
    "figure_rebound",
    "reader",
)


@dataclass(frozen=True)
class SupportModel:
    """Logistic weights over FEATURES and the probability above which a sentence is supported."""

    weights: dict[str, float]
    threshold: float = 0.5
    source: str = "default"
    verify_threshold: float = 0.5  # `rag verify` judges against retrieved passages: its own, stricter threshold
    reader_file: Path | None = None  # the pair reader fitted with these weights (rag.reader), beside the JSON
    plain: SupportModel | None = None  # the same fit without the reader's feature, for when no reader runs

    @classmethod
    def load(cls, path: Path | None = None) -> SupportModel:
        path = Path(path or SUPPORT_MODEL_FILE)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return DEFAULT_SUPPORT_MODEL
        plain = data.get("without_reader")
        return cls(
            dict(data["weights"]),
            float(data.get("threshold", 0.5)),
            str(path),
            float(data.get("verify_threshold", data.get("threshold", 0.5))),
            path.with_name(data["reader_file"]) if data.get("reader_file") else None,
            cls.from_dict(plain, str(path)) if plain else None,
        )

    @classmethod
    def from_dict(cls, data: dict, source: str = "default") -> SupportModel:
        threshold = float(data.get("threshold", 0.5))
        return cls(dict(data["weights"]), threshold, source, float(data.get("verify_threshold", threshold)))

    def without_reader(self) -> SupportModel:
        """The weights to judge by when no pair reader runs (torch missing, RAG_SUPPORT_READER=off): a model
        fitted with the reader's logit would otherwise read every pair as a reader's undecided 0."""
        return self.plain if self.plain is not None else self

    def judging_with(self, reader: object | None) -> SupportModel:
        """The weights to judge by when `reader` runs (None: no reader)."""
        return self if reader is not None else self.without_reader()

    def probability(self, features: dict[str, float]) -> float:
        z = sum(self.weights.get(name, 0.0) * features.get(name, 0.0) for name in FEATURES)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


# Used only when no fitted model is present: quotes pass, any mismatch fails.
DEFAULT_SUPPORT_MODEL = SupportModel(
    {"bias": -4.0, "similarity": 2.0, "word_coverage": 4.0, "bigram_coverage": 2.0, "quote": 4.0,
     "quantity_mismatch": -8.0, "quantity_absent": -3.0, "date_mismatch": -8.0, "article_mismatch": -8.0,
     "name_mismatch": -6.0, "modality_mismatch": -5.0, "negation_mismatch": -5.0, "missing_words": -0.5},
    0.5,
)
ALIGNED = 0.4  # share of the sentence's character bigrams a clause must hold to be the one it restates
HARD_MISMATCHES = ("quantity_mismatch", "date_mismatch", "article_mismatch", "name_mismatch")
CONTRADICTIONS = HARD_MISMATCHES + ("modality_mismatch", "negation_mismatch", "figure_elsewhere", "figure_rebound")


@dataclass(frozen=True)
class Support:
    """The verdict on one (sentence, passage) pair, with the evidence for it."""

    verdict: str
    score: float
    features: dict[str, float] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()

    @property
    def supported(self) -> bool:
        return self.verdict == "supported"


REASON_LABELS = {
    "quantity_mismatch": "数字或期限与原文不一致",
    "quantity_absent": "原文中没有这个数字",
    "date_mismatch": "日期与原文不一致",
    "article_mismatch": "条款编号与原文不一致",
    "name_mismatch": "名称（机关、文件）与原文不一致",
    "modality_mismatch": "“应当/可以/不得”等与原文不一致",
    "negation_mismatch": "肯定与否定与原文相反",
    "figure_elsewhere": "原文中这个数字或日期说的是另一件事",
    "figure_rebound": "原文中这一项对应的是另一个数字",
}


def reader_pair(claim: str, part: str, context: str = "") -> tuple[str, str]:
    """What the pair reader reads: the sentence, and the part of the passage that speaks of its fact with
    what the passage belongs to (title, section)."""
    return claim, f"{context} {part}".strip()


def support_features(
    sentence: str, passage: str, context: str = "", similarity: Similarity | None = None, reader: PairReader | None = None
) -> dict[str, float]:
    """The features of one pair; `context` adds what the passage belongs to (title, section); `reader`, when
    given, reads the two together (a quotation needs no reading: it passes as it is)."""
    claim = strip_markers(sentence)
    whole = squash(f"{context} {passage}")  # names and article numbers may stand anywhere in the passage
    feats: dict[str, float] = {"bias": 1.0}
    feats["quote"] = 1.0 if quotes(claim, passage) else 0.0
    part = focus(claim, passage, context=context)  # the rest is judged against the part that speaks of the fact
    full = f"{context} {part}" if context else part
    # where its figures and dates must stand: a quotation's anywhere in the passage it quotes
    sentences = whole_sentences(passage, part)
    stated = f"{context} {passage if feats['quote'] else sentences}"
    squashed = squash(full)
    words_ = list(dict.fromkeys(content_words(claim)))
    lowered = squashed.lower()
    # 本局, 局里, 该局 … stand for the organisation a report speaks for (我局 in its text, its name in the title)
    cues = lexicon().cue_words
    own = cues["own_org"]
    speaks_for = any(o in squashed for o in own) or bool(context and names(context))
    itself = set(own) | set(cues["org_reference"])
    present = [w for w in words_ if loosely_present(w, lowered) or (speaks_for and w in itself)]
    feats["word_coverage"] = len(present) / len(words_) if words_ else 1.0
    feats["missing_words"] = float(len(words_) - len(present))
    missing = set(words_) - set(present)
    nouns = verbs = 0
    if missing:
        for word, flag in tagged_words(claim):
            if word in missing:
                if _thing(flag):
                    nouns += 1  # a name or a thing the passage does not mention: often a swapped entity
                elif flag.startswith("v"):
                    verbs += 1  # a verb in other words: often a faithful paraphrase
    feats["missing_nouns"] = float(nouns)
    feats["missing_verbs"] = float(verbs)
    actors = lexicon().documents["actor_suffixes"]
    feats["missing_actors"] = float(sum(1 for w in missing if w.endswith(tuple(actors))))
    feats["bigram_coverage"] = _bigram_overlap(claim, full)
    # the clause it restates is a whole sentence of the passage: a part may end at a comma before the
    # sentence's verb (…申请书格式文本，| 不得收费。), and the sentence's obligation or negation is there
    clause = closest_clause(claim, sentences)
    window = closest_clause(claim, sentences, pairs=True)
    feats["clause_bigram_coverage"] = _bigram_overlap(claim, window)
    folded_window = squash(window).lower()
    feats["clause_word_coverage"] = (sum(1 for w in words_ if loosely_present(w, folded_window)) / len(words_)) if words_ else 1.0
    if similarity is not None:
        sims = list(similarity(claim, [part, clause]))
        feats["similarity"], feats["clause_similarity"] = float(sims[0]), float(sims[1])
    else:
        feats["similarity"] = feats["clause_similarity"] = feats["bigram_coverage"]
    claim_q, passage_q = quantities(claim), quantities(stated)
    cells = table_figures(stated) if "|" in stated else set()
    missing_q = {(v, u) for v, u in claim_q - passage_q if v not in cells}
    same_unit = {u for _, u in passage_q}
    feats["quantity_mismatch"] = 1.0 if any(u in same_unit for _, u in missing_q) else 0.0
    feats["quantity_absent"] = 1.0 if missing_q and not feats["quantity_mismatch"] else 0.0
    passage_dates = dates(stated)
    feats["date_mismatch"] = 1.0 if any(not _date_supported(d, passage_dates) for d in dates(claim)) or event_dates_disagree(claim, stated) else 0.0
    claim_articles = articles(claim)
    feats["article_mismatch"] = 1.0 if claim_articles and not claim_articles <= articles(whole) else 0.0
    feats["name_mismatch"] = 1.0 if any(not _name_supported(n, whole) for n in names(claim)) else 0.0
    # Obligation and negation are compared with the clause the sentence restates, when it is clear which.
    aligned = _bigram_overlap(claim, clause) >= ALIGNED
    # Negative against positive (不得 or 不 against neither), opposite bounds (不超过 against 超过), or may
    # against must (可以 against 应当/不得) disagree; 不得收取 ~ 不收取 and 至少两人 ~ 不得少于两人 agree.
    mine, theirs = polarity(claim), polarity(clause)
    differs = aligned and not feats["quote"]
    # with the clause it restates and, for a sentence of two clauses or more, with the two-clause window too
    # (不缴纳申请费。强制执行的费用由…承担); a neighbour that shares a few words with a one-clause sentence
    # must not bring its own 没有 in (…经费列入本级财政预算。全年没有行政复议…)
    # (a set: the window is often the clause itself), each without the end clauses the sentence leaves out
    restated = {said_part(claim, c) for c in ((clause, window) if len(comma_clauses(claim)) >= 2 else (clause,))}
    feats["negation_mismatch"] = 1.0 if differs and all(negativity_disagrees(claim, c) or bounds_disagree(claim, c) for c in restated) else 0.0
    feats["modality_mismatch"] = 1.0 if differs and _modality_differs(mine, theirs) else 0.0
    pairs = [] if feats["quote"] else paired_clauses(claim, part)
    polar = [(polarity(a), polarity(b)) for a, b in pairs]
    feats["paired_negation_mismatch"] = float(sum(1 for a, b in polar if opposite(a, b)))
    feats["paired_modality_mismatch"] = float(sum(1 for a, b in polar if _modality_differs(a, b)))
    nouns_, others_ = swapped_words(claim, part) if not feats["quote"] else (0, 0)
    feats["swapped_nouns"], feats["swapped_others"] = float(nouns_), float(others_)
    feats["negation_parity"] = 1.0 if not feats["quote"] and (negations(claim) - negations(part)) % 2 else 0.0
    feats["figure_elsewhere"] = 0.0 if feats["quote"] else figure_elsewhere(claim, passage)
    feats["figure_rebound"] = 0.0 if feats["quote"] else figure_rebound(claim, stated)
    feats["reader"] = float(reader([reader_pair(claim, part, context)])[0]) if reader is not None and not feats["quote"] else 0.0
    return feats


def judge(features: dict[str, float], model: SupportModel) -> Support:
    """A verdict from the features: hard mismatches never pass; a verbatim quotation of the passage is
    supported (an extractive answer quotes, whatever the encoder makes of web-page chrome or a title
    block); the fitted probability decides the rest."""
    score = model.probability(features)
    hard = [name for name in HARD_MISMATCHES if features.get(name)]
    reasons = tuple(REASON_LABELS[name] for name in CONTRADICTIONS + ("quantity_absent",) if features.get(name))
    if not hard and (score >= model.threshold or features.get("quote")):
        return Support("supported", score, features, ())
    close = features.get("bigram_coverage", 0.0) >= 0.5 or features.get("clause_similarity", 0.0) >= 0.85
    contradicted = any(features.get(name) for name in CONTRADICTIONS) and close
    return Support("contradicted" if contradicted else "unsupported", score, features, reasons)


def check_support(
    sentence: str,
    passage: str,
    *,
    context: str = "",
    similarity: Similarity | None = None,
    model: SupportModel | None = None,
    reader: PairReader | None = None,
) -> Support:
    """Is `sentence` supported by `passage`? supported / contradicted / unsupported, with a score.

    A quotation of pieces apart in the passage (…A……B…) is judged piece by piece: the weakest decides."""
    model = (model or SupportModel.load()).judging_with(reader)
    pieces = [p for p in sentence.split(QUOTE_GAP) if p.strip()]
    verdicts = [judge(support_features(p, passage, context, similarity, reader), model) for p in pieces or [sentence]]
    return min(verdicts, key=lambda v: (v.verdict == "supported", v.score))


def sentence_supported(sentence: str, passage: str, similarity: Similarity | None = None) -> bool:
    return check_support(sentence, passage, similarity=similarity).supported
