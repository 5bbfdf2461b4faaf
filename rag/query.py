"""Question handling: validation and cutting, law names and articles, organisations and years, cues, follow-ups.

Everything here reads the question only (and the index's catalog of law names and organisations);
what to retrieve and how to answer is decided downstream.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from rag.lexicon import lexicon
from rag.orgs import OrgCatalog, OrgMention
from rag.schema import DocRecord
from rag.segment import is_noun, query_tokens, tagged_words
from rag.text import CN_NUM, blank, char_ngrams, chinese_number, normalize_question, sentence_spans, years_in

ARTICLE_REF = re.compile(rf"(?:第|(?<=[法例》]))\s*([{CN_NUM}\d]+)\s*条")  # 第58条, or right after a law's name: 行政许可法58条
# 十几个, 几十人 are rough numbers, not questions
ASKED_UNIT = re.compile(r"(?:(?<!第)多少|(?<![哪十第])几(?![十百千万]))(个工作日|个人|个月|周岁|岁|项|条|名|人次|人|个|部|次|件|天|日|位|家|卷|份|篇|场|批|起|年|月|倍)")
AGE_ASKED = re.compile(r"多大(?:年纪|岁数|年龄)|年龄(?:多大|是多少|有多大)|年纪(?:多大|有多大)")  # asked in years of age
# 第几次会议, 第几条, 哪一次会议上: an ordinal, not a count
ASKED_ORDINAL = re.compile(r"第\s*(?:几|多少)\s*([次条号届批款项章节轮期个])|哪一?([次届])(?=[\u4e00-\u9fff]{0,6}会)")
AGE_UNIT = "周岁"  # an age question (多大年纪, 多少岁) is answered only with an age
UNIT_ALIASES = {"个人": "人", "个月": "月", "岁": AGE_UNIT}  # 几个人 counts people, 几个月 months
SHARE_ASKED = re.compile(r"占[^，。？?；;]{0,16}?(?:多少|几成|百分之几|比例|比重)")  # 财政资金占总投资多少: a share
PEOPLE_AFTER = re.compile(r"^[\u4e00-\u9fff]{0,3}[人员](?![\u4e00-\u9fff]{0,1}[项件个])")  # 几个代理人, 几个工作人员
LAW_NAME_IN_BOOK = re.compile(r"《([^》]{2,40})》")
LAW_NAME_WITH_ARTICLE = re.compile(rf"([\u4e00-\u9fff]{{2,24}}?(?:法|条例|规定|办法|细则))\s*第\s*[{CN_NUM}\d]+\s*条")
MAX_FOLLOWUP_CORE = 14


class QuestionError(ValueError):
    """A question that cannot be asked (empty); the message is Chinese."""


def prepare_question(question: str | None, max_chars: int) -> tuple[str, str, list[str]]:
    """(cut question, normalised question, notices): the cut comes before anything else."""
    if question is None or not str(question).strip():
        raise QuestionError("问题不能为空，请输入要查询的内容。")
    raw = str(question)
    notices: list[str] = []
    text = raw.strip()
    if len(text) > max_chars:
        notices.append(f"问题过长（{len(text)}字），已截取前{max_chars}字进行检索。")
        text = text[:max_chars]
    if not re.search(r"[\u3400-\u9fff]", text) and re.search(r"[A-Za-z]", text):
        notices.append("目前只支持用中文提问，检索效果可能很差。")
    return text, normalize_question(text), notices


# ---------------------------------------------------------------- law names


@dataclass(frozen=True)
class LawAlias:
    alias: str
    source: str
    title: str


@dataclass(frozen=True)
class LawCatalog:
    """Every name the indexed laws go by, with one compiled pattern to find them in a question."""

    aliases: tuple[LawAlias, ...]
    pattern: re.Pattern[str] | None
    by_name: dict[str, tuple[LawAlias, ...]]
    titles: frozenset[str] = frozenset()

    def __iter__(self):
        return iter(self.aliases)


def build_law_catalog(records: Sequence[DocRecord], short_forms: dict[str, str] | None = None) -> LawCatalog:
    """Full title, title without 中华人民共和国, and the short forms of the corpus's aliases.toml.

    The pattern is one alternation, longest name first, so each position takes its longest name."""
    aliases: list[LawAlias] = []
    for r in records:
        if r.doc_type != "law" or not r.title:
            continue
        names = {r.title, re.sub(r"^中华人民共和国", "", r.title)}
        for short, suffix in (short_forms or {}).items():
            if r.title.endswith(suffix):
                names.add(short)
        aliases.extend(LawAlias(n, r.source, r.title) for n in names if len(n) >= 2)
    aliases.sort(key=lambda a: -len(a.alias))
    by_name: dict[str, list[LawAlias]] = {}
    for alias in aliases:
        by_name.setdefault(alias.alias, []).append(alias)
    pattern = re.compile("|".join(re.escape(name) for name in by_name)) if by_name else None
    titles = frozenset(r.title for r in records if r.doc_type == "law")
    return LawCatalog(tuple(aliases), pattern, {k: tuple(v) for k, v in by_name.items()}, titles)


def find_laws(text: str, catalog: LawCatalog) -> list[LawAlias]:
    """Laws named in the text, in order; 审计法 inside 审计法实施条例 does not count."""
    if catalog.pattern is None:
        return []
    found: list[LawAlias] = []
    for m in catalog.pattern.finditer(text):
        for alias in catalog.by_name[m.group(0)]:
            if alias.source not in {f.source for f in found}:
                found.append(alias)
    return found


def _law_kind(word: str) -> str | None:
    return next((k for k in lexicon().documents["bare_law_kinds"] if word.endswith(k)), None)


def _is_law(kind: str) -> bool:
    return kind.startswith("法")


def _split_kind(tagged: list[tuple[str, str]], after: set[str]) -> list[tuple[str, str]]:
    """jieba joins a kind to the word after it (政府采购法里 -> 法里/ns): split them again."""
    out: list[tuple[str, str]] = []
    for word, flag in tagged:
        kind = next((k for k in lexicon().documents["bare_law_kinds"] if word.startswith(k) and word[len(k) :] in after), None)
        out.extend([(kind, "n"), (word[len(kind) :], "f")] if kind else [(word, flag)])
    return out


def bare_law_names(text: str) -> list[str]:
    """Law and regulation names used without 《》 or an article and cited (民法典规定…, 按照税法…, 政府采购法里…,
    国家审计准则里…): a jieba word ending in a kind (法, 条例, 准则 …), with the words that name it before it
    (劳动+合同法, 政府+采购+法; a regulation's name may hold verbs: 经济+责任+审计+规定)."""
    docs = lexicon().documents
    endings, after, before = set(docs["not_law_endings"]), set(docs["law_cited_after"]), set(docs["law_cited_before"])
    tagged = _split_kind(tagged_words(text), after)
    names: list[str] = []
    for i, (word, _) in enumerate(tagged):
        kind = _law_kind(word)
        if kind is None or (kind == "法" and word[-2:] in endings) or word[: -len(kind)] in before:
            continue
        if word in after and i > 0 and _law_kind(tagged[i - 1][0]):  # 税法规定: the verb after a name
            continue
        law = _is_law(kind)
        start = i
        while start > 0 and i - start < 4:
            prev, flag = tagged[start - 1]
            if prev in before or prev in after or not CJK_WORD.fullmatch(prev):
                break
            if not (is_noun(flag) or ((word == "法" or not law) and flag.startswith("v"))):
                break
            start -= 1
        name = "".join(w for w, _ in tagged[start : i + 1])
        cited = (i + 1 < len(tagged) and tagged[i + 1][0] in after) or (start > 0 and tagged[start - 1][0] in before)
        # A regulation needs a name: 按规定 and 河南省条例 (a place alone) are not one.
        named = law or (start < i and len(name) > len(kind) + 1 and not all(f.startswith("ns") for _, f in tagged[start:i]))
        if len(name) >= 2 and cited and named:
            names.append(name)
    return names


def _in_order(short: str, long: str) -> bool:
    rest = iter(long)
    return all(c in rest for c in short)


def loosely_known(name: str, titles: frozenset[str]) -> bool:
    """A bare name that shortens an indexed title (信访条例 for 信访工作条例, 复议条例, 营商环境条例): its
    characters before the kind, in order, in one title of the same family (a law for 法, else a regulation);
    a leading measure word or pronoun (那部…条例) may be dropped."""
    kind = _law_kind(name)
    if kind is None:
        return False
    prefix = name[: -len(kind)]
    for title in titles:
        title_kind = _law_kind(title)
        if title_kind is None or _is_law(title_kind) != _is_law(kind):
            continue
        body = title[: -len(title_kind)]
        if any(len(p) >= 2 and _in_order(p, body) for p in (prefix, prefix[1:])):
            return True
    return False


def unknown_laws(text: str, catalog: LawCatalog) -> list[str]:
    """Law names the question uses that no indexed law goes by (《政府采购法》, 治安管理处罚法第十条, 国家审计准则里)."""
    kinds = lexicon().documents["law_kinds"]
    names: list[str] = []
    for m in LAW_NAME_IN_BOOK.finditer(text):
        name = m.group(1)
        if name.endswith(tuple(kinds)) and not re.search(r"(?:19|20)\d{2}|报告|通知|意见|纲要|规划", name):
            names.append(name)
    for m in LAW_NAME_WITH_ARTICLE.finditer(text):
        names.append(m.group(1))
    bare_names = bare_law_names(text)
    names.extend(bare_names)
    out: list[str] = []
    for name in names:
        bare = re.sub(r"^中华人民共和国", "", name)
        if catalog.pattern is not None and catalog.pattern.fullmatch(bare):
            continue
        if any(title.endswith(bare) for title in catalog.titles):
            continue
        # A known name at the end (为什么审计法第五条): the prefix is not part of the name.
        if catalog.pattern is not None and any(m.end() == len(bare) for m in catalog.pattern.finditer(bare)):
            continue
        # A loose short form, said without 《》 (a name in 《》 is given in full: 《河南省审计条例》 is another one).
        if name in bare_names and loosely_known(bare, catalog.titles):
            continue
        out.append(name)
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class QueryPlan:
    """What the question asks for, as far as the words show."""

    question: str
    tokens: tuple[str, ...]
    grams: tuple[str, ...] = ()
    laws: tuple[LawAlias, ...] = ()
    unknown_laws: tuple[str, ...] = ()
    articles: tuple[int, ...] = ()
    years: tuple[int, ...] = ()
    orgs: OrgMention = field(default_factory=OrgMention)
    wants_report: bool = False
    is_list: bool = False
    is_quantity: bool = False
    is_time: bool = False
    is_yes_no: bool = False
    is_entity: bool = False
    is_person: bool = False
    asked_unit: str | None = None
    asked_ordinal: str | None = None
    focus: tuple[str, ...] = ()

    def scope_names(self) -> str:
        """The names the question scopes its search with: the laws it names, organisations and their
        documents' titles, years; lower case."""
        parts = [law.title + law.alias for law in self.laws]
        for entry in self.orgs.known:
            parts.append(" ".join(entry.names))
            parts.extend(entry.titles)
        parts.extend(str(y) for y in self.years)
        return " ".join(parts).lower()


def asks_person(question: str) -> bool:
    """The question asks for a person's name (局长叫什么名字, 领导小组组长是谁), not for a body that the
    same words can ask for (主送单位是谁, 哪个部门): the words before the cue do not end with a body."""
    lex = lexicon()
    for m in lex.cues["person"].finditer(question):
        if not lex.cues["institution"].search(question[: m.start()].rstrip()):
            return True
    return False


def question_focus(question: str) -> tuple[str, ...]:
    """The content word a question word asks about: the noun after it (多少名在编人员), else before it."""
    lex = lexicon()
    tagged = tagged_words(question)
    words = [w for w, _ in tagged if re.search(r"[\w\u4e00-\u9fff]", w)]
    nouns = {w for w, flag in tagged if is_noun(flag)}

    def content(w: str) -> bool:
        return (
            w in nouns
            and len(w) >= 2
            and w not in lex.stopwords
            and w not in lex.generic_words
            and not lex.is_question_word(w)
        )

    for i, word in enumerate(words):
        if not lex.is_question_word(word):
            continue
        after = next((w for w in words[i + 1 : i + 4] if content(w)), None)
        if after and not any(lex.ask_prefix.match(w) for w in words[i + 1 : words.index(after, i + 1)]):
            return (after,)
        before = next((w for w in reversed(words[max(0, i - 3) : i]) if content(w)), None)
        if before:
            return (before,)
    return ()


def question_grams(question: str) -> tuple[str, ...]:
    """Character bigrams of the question's content (question words removed)."""
    lex = lexicon()
    text = question
    for word in sorted(lex.frame_words, key=lambda w: (-len(w), w)):
        if len(word) >= 2:
            text = text.replace(word, " ")
    return tuple(dict.fromkeys(char_ngrams(text)))


@lru_cache(maxsize=256)  # asked for the question and for its candidates' features
def question_parts(question: str) -> list[str]:
    """The sub-questions of a question that asks several things (…多少天？最多还能延长多少天？; 是啥时候
    修订的，从哪天起施行：two clauses, each with its own question word); a story told first is no part."""
    pieces = re.split(r"[？?；;]|，(?=(?:那|还|又|以及|并且|另外|同时|最多|最长|最少)\S)", asking_part(question))
    parts = [p.strip() for piece in pieces for p in asking_clauses(piece) if len(p.strip()) >= 4]
    return parts if len(parts) >= 2 else []


def clause_asks(clause: str) -> bool:
    """The clause has a question word of its own."""
    lex = lexicon()
    return any(lex.is_question_word(w) for w, _ in tagged_words(clause))


def asking_clauses(text: str) -> list[str]:
    """A piece split at its commas when two or more of its clauses ask something (a question word of
    their own); a clause that asks nothing stays with the asking clause after it (or the last one)."""
    clauses = re.split(r"[，,]", text)
    asking = [clause_asks(c) for c in clauses]
    if sum(asking) < 2:
        return [text]
    out: list[str] = []
    pending: list[str] = []
    for clause, asks in zip(clauses, asking):
        pending.append(clause)
        if asks:
            out.append("，".join(pending))
            pending = []
    if pending:
        out[-1] = "，".join([out[-1], *pending])
    return out


def asked_clauses(question: str) -> str:
    """What the question asks in each of its sentences: the last clause with a question word (the
    clauses before it set the scene: 万一哪天出了错，…，多长时间内提出), or the sentence when none has one."""
    out: list[str] = []
    for piece in re.split(r"[？?；;。！!]", question):
        clauses = [c for c in re.split(r"[，,]", piece) if c.strip()]
        asking = [c for c in clauses if clause_asks(c)]
        out.append(asking[-1] if asking else piece)
    return "，".join(c for c in out if c.strip())


def asking_part(question: str) -> str:
    """The question from its first asking sentence on, without the story told before it (我在镇上开了个
    小饭馆……他们这样对不对？): the first sentence that ends in a question mark when any does (a story's
    这几天 asks nothing), else the first with a question word of its own; the whole question when that
    is its first sentence or none asks."""
    spans = sentence_spans(question)
    sentences = [question[s:e].rstrip("”’」』）)") for s, e in spans]
    marked = [i for i, s in enumerate(sentences) if s.endswith(("？", "?"))]
    first = marked[0] if marked else next((i for i, s in enumerate(sentences) if clause_asks(s)), 0)
    return question[spans[first][0] :] if first > 0 else question


def asked_years(question: str) -> tuple[int, ...]:
    """The years the question asks about, when it names several: those from its first asking sentence
    to its last clause with a question word — not a year told in the story before (我手上只有2025年度的
    年报……2024年主动公开了多少篇) nor one in a remark after (2023年主动公开了多少条？好跟2024年的放在一起比);
    every year it names when that part names none."""
    named = tuple(dict.fromkeys(years_in(question)))
    if len(named) < 2:
        return named
    clauses = [c for c in re.split(r"(?<=[，,；;。？?！!])", asking_part(question)) if c.strip()]
    last = max((i for i, c in enumerate(clauses) if clause_asks(c)), default=len(clauses) - 1)
    return tuple(dict.fromkeys(years_in("".join(clauses[: last + 1])))) or named


@lru_cache(maxsize=256)  # asked for every candidate sentence of a question (unit_matches)
def counted_noun(question: str) -> str | None:
    """What a count question counts, when it names it after the count: 多少个审计项目 -> 审计项目,
    几起行政处罚案件 -> 行政处罚案件 (None when the noun comes first or is missing)."""
    found = ASKED_UNIT.search(question)
    if not found:
        return None
    # The words right after the count that make a noun phrase (审计 项目, 公职律师), ending in a noun:
    # not a verb phrase (几个人通过了…, 多少天内重新作出).
    words: list[tuple[str, str]] = []
    for word, flag in tagged_words(question[found.end() :]):
        if not CJK_WORD.fullmatch(word) or not (is_noun(flag) or flag in ("v", "vn")) or len(words) == MAX_NOUN_WORDS:
            break
        words.append((word, flag))
    while words and not is_noun(words[-1][1]):
        words.pop()
    text = "".join(word for word, _ in words)
    return text if len(text) >= 2 else None


CJK_WORD = re.compile(r"[\u4e00-\u9fff]+")
MAX_NOUN_WORDS = 4


def asked_ordinal(question: str) -> str | None:
    """The unit of the ordinal a question asks for (第几次会议, 哪次会议 -> 次; 第几条 -> 条), else None."""
    found = ASKED_ORDINAL.search(question)
    return (found.group(1) or found.group(2)) if found else None


def asked_unit(question: str) -> str | None:
    """The unit a count question counts in (几名 -> 名; 元 for money, % for a share); None when it names none, or when its parts
    ask in different units or one asks without a unit (…最长多长时间？能延长几次？)."""
    lex = lexicon()
    units: set[str | None] = set()
    for part in question_parts(question) or [question]:
        found = ASKED_UNIT.search(part)
        after = part[found.end() : found.end() + 5] if found else ""
        if AGE_ASKED.search(part):
            units.add(AGE_UNIT)  # 多大年纪: an age
        elif found and found.group(1) == "个" and (lex.cue("people", after) or PEOPLE_AFTER.match(after)):
            units.add("人")  # 几个代表, 几个代理人: people, counted in 人, 名 or 位
        elif found:
            units.add(UNIT_ALIASES.get(found.group(1), found.group(1)))
        elif lex.cue("share", part) or SHARE_ASKED.search(part):  # 整改率是多少: a percentage (before money: 资金使用率 asks a share)
            units.add("%")
        elif lex.cue("money", part):  # 花了多少经费: an amount of money
            units.add("元")
        elif lex.cue("quantity", part):
            units.add(None)
    return units.pop() if len(units) == 1 else None


def analyze_query(question: str, laws: LawCatalog, orgs: OrgCatalog) -> QueryPlan:
    """The plan of a normalised question."""
    lex = lexicon()
    found_laws = tuple(find_laws(question, laws))
    articles = tuple(n for n in (chinese_number(m.group(1)) for m in ARTICLE_REF.finditer(question)) if n)
    tokens = query_tokens(question)
    if lex.cue("list", question) and re.search(r"几种|几类|哪些种类|哪几类|哪些类", question) and "种类" not in tokens:
        tokens.append("种类")
    # Law names and quoted titles are not organisations (河南省政府投资建设项目审计条例).
    masked = blank(LAW_NAME_IN_BOOK, question)
    if laws.pattern is not None:
        masked = blank(laws.pattern, masked)
    mention = orgs.mentions(masked)
    report_cue = lex.cue("report", question) or bool(mention.known or mention.unknown or mention.own)
    return QueryPlan(
        question=question,
        tokens=tuple(tokens),
        grams=question_grams(question),
        laws=found_laws,
        unknown_laws=tuple(unknown_laws(question, laws)),
        articles=articles,
        years=asked_years(question),
        orgs=mention,
        wants_report=report_cue and not (found_laws and not mention.named),
        is_list=lex.cue("list", question),
        is_quantity=lex.cue("quantity", question) or bool(ASKED_UNIT.search(question) or ASKED_ORDINAL.search(question) or AGE_ASKED.search(question)),  # 几份, 几批: any unit asked
        is_time=lex.cue("time", question),
        is_yes_no=lex.cue("yes_no", question),
        is_entity=lex.cue("entity", question),
        is_person=asks_person(question),
        asked_unit=asked_unit(question),
        asked_ordinal=asked_ordinal(question),
        focus=question_focus(question),
    )


# ---------------------------------------------------------------- follow-ups


def _stem(alias: str) -> str:
    return re.sub(r"(法|条例|规定|办法)$", "", alias)


def _law_by_stem(text: str, catalog: LawCatalog) -> LawAlias | None:
    for alias in catalog:
        stem = _stem(alias.alias)
        if len(stem) >= 3 and stem in text:
            return alias
    return None


def resolve_followup(question: str, previous: str | None, catalog: LawCatalog) -> str:
    """Rewrite a follow-up (那行政强制呢？/ 第十三条呢？/ 其中…) using the previous question as understood."""
    if not previous:
        return question
    lex = lexicon()
    current_laws = find_laws(question, catalog)
    previous_laws = find_laws(previous, catalog)
    start, end = lex.cues["followup_start"], lex.cues["followup_end"]
    core = end.sub("", start.sub("", question)).strip("，,。？? ")
    looks_followup = bool(start.search(question) or end.search(question)) and len(core) <= MAX_FOLLOWUP_CORE
    if not looks_followup:
        return question
    # "第十三条呢？" after a question about a law: the same law.
    if ARTICLE_REF.fullmatch(core) and not current_laws and previous_laws:
        return f"{previous_laws[0].alias}{core}"
    # "那行政强制呢？" after "行政处罚法规定了哪些种类？": swap the law in the previous question.
    law = current_laws[0] if current_laws else (_law_by_stem(core, catalog) if previous_laws else None)
    if law is not None:
        rest = core.replace(law.alias, "").replace(_stem(law.alias), "").strip("的之 ")
        if previous_laws and len(rest) <= 2:
            swapped = previous.replace(previous_laws[0].alias, law.alias)
            return ARTICLE_REF.sub("", swapped) if not ARTICLE_REF.search(core) else swapped
        if len(rest) > 2:
            return question  # "行政诉讼的起诉期限呢？" stands on its own
    # "其中行政强制有几项？": keep the previous question as context.
    return f"{previous} {question}"
