"""Answers with citations: extractive (default, no LLM) and LLM answerers, refusal, follow-ups."""

from __future__ import annotations

import re
import time
from functools import lru_cache
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from rag.chunking import sentence_spans
from rag.config import Settings
from rag.index import Index
from rag.keyword_index import KeywordIndex
from rag.retrieve import (
    ARTICLE_REF,
    FRAME_WORDS,
    HybridRetriever,
    QueryPlan,
    Retrieval,
    find_laws,
    idf_weights,
    normalize_question,
)
from rag.schema import Answer, Citation, Hit

REFUSAL = "未在已收录的文件中找到依据。"
REFUSAL_HINT = "以下是最接近的段落，仅供参考。"
# Calibrated on the dev set and eval/qa_project.jsonl together (73 non-lookup questions): refuse
# items not caught by the focus or year rules reached at most 0.34, answerable ones at least 0.60.
MIN_EVIDENCE = 0.5
MAX_ARTICLE_CHARS = 500
TOP_PASSAGES = 6
FOLLOWUP_START = re.compile(r"^(那么?|那个|还有|另外|其中|它|其|该|此|这个|上述|同时)")
FOLLOWUP_END = re.compile(r"(呢|吗)[？?。!！]*$")
CN_DIGITS = "零一二三四五六七八九十百千万两"
# A quantity: a number with a counter (20日, 554条, 三十日, 100%), not a bare year.
QUANTITY = re.compile(
    rf"(?:(?<!\d)\d{{1,3}}(?!\d)(?:\.\d+)?|[{CN_DIGITS}]+)(?:余|多)?(?:%|项|条|人|名|个|部|次|件|日|天|周岁|年内|年|个月|元|万|亿|份|家|批|周|倍|等奖)"
)
DATE = re.compile(r"\d{4}年\d{1,2}月(?:\d{1,2}日)?|[零一二三四五六七八九十百]+日(?:内|起)|之日起")
ITEM_START = re.compile(r"(?:^|\n)[（(][一二三四五六七八九十]+[）)]")
ENUMERATION = re.compile(r"[^、，。]+、[^、，。]+、")
HOW_CUES = re.compile(r"如何|怎么|怎样|什么要求|哪些要求|做法|措施|情况")
YEAR_TOKEN = re.compile(r"(?:19|20)\d{2}")
MEASURE_SUFFIX = "度率性数量额"
# A few equivalences between how people ask and how the documents say it.
SYNONYMS = {
    "目的": ("为了", "宗旨"),
    "权利": ("有权",),
    "律所": ("律师事务所",),
    "年龄": ("周岁",),
    "期限": ("日内", "期间", "个月内", "日起"),
    "时间": ("日内", "日起", "期间"),
    "罚款": ("罚款",),
    "施行": ("施行", "实施"),
    "几天": ("日",),
    "上限": ("以下", "不超过", "最高"),
    "获得": ("荣获", "获"),
    "名次": ("等奖", "第一", "第二", "第三"),
    "多久": ("日", "月", "年"),
}


class QuestionError(ValueError):
    """A question that cannot be asked (empty); the message is Chinese."""


@dataclass(frozen=True)
class Turn:
    """One exchange of a conversation, kept to resolve follow-ups."""

    question: str
    resolved: str
    answer: Answer | None = None


@dataclass(frozen=True)
class Evidence:
    """A sentence of a retrieved passage with its support score."""

    hit: Hit
    rank: int
    start: int
    end: int
    text: str
    score: float


# ---------------------------------------------------------------- question handling


def prepare_question(question: str, settings: Settings) -> tuple[str, list[str]]:
    """Validate and normalise a question; over-long questions are cut with a notice."""
    if question is None or not question.strip():
        raise QuestionError("问题不能为空，请输入要查询的内容。")
    notices: list[str] = []
    text = question.strip()
    if not re.search(r"[\u3400-\u9fff]", text) and re.search(r"[A-Za-z]", text):
        notices.append("目前只支持用中文提问，检索效果可能很差。")
    if len(text) > settings.max_question_chars:
        text = text[: settings.max_question_chars]
        notices.append(f"问题过长（{len(question.strip())}字），已截取前{settings.max_question_chars}字进行检索。")
    return normalize_question(text), notices


def resolve_followup(question: str, history: Sequence[Turn], retriever: HybridRetriever) -> str:
    """Rewrite a follow-up (那行政强制呢？/ 第十三条呢？/ 其中…) using the previous turn."""
    if not history:
        return question
    previous = history[-1].resolved
    aliases = retriever.aliases()
    current_laws = find_laws(question, aliases)
    previous_laws = find_laws(previous, aliases)
    core = FOLLOWUP_END.sub("", FOLLOWUP_START.sub("", question)).strip("，,。？? ")
    looks_followup = bool(FOLLOWUP_START.search(question) or FOLLOWUP_END.search(question)) and len(core) <= 14
    if not looks_followup:
        return question
    # "第十三条呢？" after a question about a law: the same law.
    if ARTICLE_REF.fullmatch(core) and not current_laws and previous_laws:
        return f"{previous_laws[0].alias}{core}"
    # "那行政强制呢？" after "行政处罚法规定了哪些种类？": swap the law in the previous question.
    law = current_laws[0] if current_laws else (_law_by_stem(core, aliases) if previous_laws else None)
    if law is not None:
        rest = core.replace(law.alias, "").replace(_stem(law.alias), "").strip("的之 ")
        if previous_laws and len(rest) <= 2:
            swapped = previous.replace(previous_laws[0].alias, law.alias)
            return ARTICLE_REF.sub("", swapped) if not ARTICLE_REF.search(core) else swapped
        if len(rest) > 2:
            return question  # "行政诉讼的起诉期限呢？" stands on its own
    # "其中行政强制有几项？": keep the previous question as context.
    return f"{previous} {question}"


def _stem(alias: str) -> str:
    return re.sub(r"(法|条例|规定|办法)$", "", alias)


def _law_by_stem(text: str, aliases) -> object | None:
    for alias in aliases:
        stem = _stem(alias.alias)
        if len(stem) >= 3 and stem in text:
            return alias
    return None


# ---------------------------------------------------------------- evidence


def term_in(term: str, text: str) -> bool:
    return term in text or any(alt in text for alt in SYNONYMS.get(term, ()))


@lru_cache(maxsize=4096)
def _parts(term: str) -> tuple[str, ...]:
    from rag.keyword_index import tokenize

    return tuple(p for p in tokenize(term) if p != term and len(p) >= 2)


def term_credit(term: str, text: str) -> float:
    """1 when the term occurs; partial credit when a compound (听取意见) occurs only in parts."""
    if term_in(term, text):
        return 1.0
    parts = _parts(term)
    if not parts:
        return 0.0
    found = sum(1 for p in parts if p in text)
    return 0.8 if found == len(parts) else 0.4 * found / len(parts)


def _coverage(text: str, weights: dict[str, float]) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    text = text.lower()
    return sum(w * term_credit(t, text) for t, w in weights.items()) / total


def passage_context(hit: Hit) -> str:
    return f"{hit.title} {hit.section} {hit.text}"


def score_sentences(plan: QueryPlan, hits: Sequence[Hit], weights: dict[str, float]) -> list[Evidence]:
    """Every sentence of the top passages, scored by the question terms it and its passage contain."""
    evidence: list[Evidence] = []
    for rank, hit in enumerate(hits[:TOP_PASSAGES]):
        passage_cov = _coverage(passage_context(hit), weights)
        prior = 0.08 / (1 + rank)
        for start, end in sentence_spans(hit.text, 0, len(hit.text)):
            text = hit.text[start:end]
            sentence_cov = _coverage(text, weights)
            cue = 0.0
            if plan.is_quantity:
                cue += 0.12 if QUANTITY.search(text) else -0.1
            if plan.is_list and (ENUMERATION.search(text) or text.endswith(("：", ":"))):
                cue += 0.08
                if text.endswith(("：", ":")) and ITEM_START.search(hit.text):
                    cue += 0.1  # a lead-in to numbered items answers a list question
            if plan.is_time and DATE.search(text):
                cue += 0.12
            if plan.wants_report and hit.doc_type == "report":
                cue += 0.1
            if len(text) < 6:
                cue -= 0.2
            cue -= 0.06 * min(len(text), 300) / 100
            score = 0.6 * sentence_cov + 0.32 * passage_cov + prior + cue
            evidence.append(Evidence(hit, rank, start, end, text, score))
    return sorted(evidence, key=lambda e: -e.score)


ASKED_UNIT = re.compile(r"(?:多少|(?<!哪)几)(项|条|名|人|个|部|次|件|天|日|位|家|卷|份)")
SAME_UNIT = {"名": "名人位", "人": "人名位", "位": "位名人", "天": "天日", "日": "日天", "个": "个"}


def counts_what_was_asked(plan: QueryPlan, sentence: str) -> bool:
    """The sentence names what the question counts and gives a number in the unit the question uses."""
    text = sentence.lower()
    if plan.focus and not term_in(plan.focus[0].lower(), text):
        return False
    unit = ASKED_UNIT.search(plan.question)
    if unit is None:
        return True
    units = SAME_UNIT.get(unit.group(1), unit.group(1))
    return bool(re.search(rf"(?:\d+|[{CN_DIGITS}]+)(?:余|多)?[{units}]", sentence))


def evidence_strength(hits: Sequence[Hit], weights: dict[str, float]) -> float:
    return max((_coverage(passage_context(h), weights) for h in hits[:TOP_PASSAGES]), default=0.0)


def question_weights(plan: QueryPlan, keyword: KeywordIndex) -> dict[str, float]:
    """IDF weight of each question term; frame words and single characters count for less."""
    tokens = list(dict.fromkeys(plan.tokens))
    # Sub-tokens of a longer token (行政 in 行政处罚) would count one word twice.
    kept = [t for t in tokens if not any(t != o and t in o and keyword.document_frequency(o) > 0 for o in tokens)] or tokens
    weights = idf_weights(keyword, kept)
    law_names = "".join(law.title + law.alias for law in plan.laws)
    for term in weights:
        if term in FRAME_WORDS or len(term) == 1 or YEAR_TOKEN.fullmatch(term):
            weights[term] *= 0.3
        elif law_names and term in law_names:
            weights[term] *= 0.2  # the named law is already the filter; its name says nothing about the article
    return weights


def focus_supported(plan: QueryPlan, hits: Sequence[Hit], keyword: KeywordIndex) -> bool:
    """The word the question asks about (工资, 在编人员, GDP) must occur in one of the top passages."""
    if not plan.focus:
        return True
    for focus in plan.focus:
        focus = focus.lower()
        # 满意度 asks what 满意率 answers: a measure suffix may differ.
        stem = focus[:-1] if len(focus) >= 3 and focus[-1] in MEASURE_SUFFIX else None
        for hit in hits[:TOP_PASSAGES]:
            context = passage_context(hit).lower()
            if term_in(focus, context) or (stem and stem in context):
                return True
    return False


# ---------------------------------------------------------------- composing


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


def _end_sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith(("。", "！", "？", "”", "；", "：")) else text + "。"


def compose_article_answer(article_hits: Sequence[Hit], book: CitationBook) -> str:
    """An article look-up: the article itself (long articles: the first chunks up to a limit)."""
    parts: list[str] = []
    used = 0
    for hit in article_hits:
        if used and used + len(hit.text) > MAX_ARTICLE_CHARS:
            break
        n = book.cite(hit, hit.text)
        parts.append(f"{_flatten(hit.text)}[{n}]")
        used += len(hit.text)
    return "\n".join(parts)


def _flatten(text: str) -> str:
    return re.sub(r"\s*\n\s*", "", text).strip()


def compose_report_list(hits: Sequence[Hit], keyword: KeywordIndex, weights: dict[str, float], book: CitationBook) -> str | None:
    """A list question on a report: the sub-headings of the section whose heading the question names."""
    best: tuple[float, Hit, int] | None = None
    for hit in hits[:TOP_PASSAGES]:
        if hit.doc_type != "report":
            continue
        path = [p.strip() for p in hit.section.split(" > ") if p.strip()]
        for depth in range(len(path), 0, -1):
            cov = _coverage(path[depth - 1], weights)
            if cov >= 0.5 and (best is None or cov > best[0]):
                best = (cov, hit, depth)
    if best is None:
        return None
    _, hit, depth = best
    path = [p.strip() for p in hit.section.split(" > ")]
    prefix = " > ".join(path[:depth])
    children: dict[str, int] = {}
    for row in keyword.rows_of(hit.source):
        section = keyword.metadatas[row].get("section", "")
        parts = section.split(" > ")
        if section.startswith(prefix + " > ") and len(parts) > depth:
            children.setdefault(parts[depth], row)
    if len(children) < 2:
        return None
    lines = []
    for child, row in children.items():
        child_hit = keyword.hit(row, hit.score)
        n = book.cite(child_hit, child)
        lines.append(f"{_end_sentence(child)}[{n}]")
    return "\n".join(lines)


def compose_sentences(evidence: list[Evidence], weights: dict[str, float], plan: QueryPlan, book: CitationBook) -> str:
    """The best sentence, plus a neighbour or a second sentence where it adds what the question asks."""
    best = evidence[0]
    chosen: list[Evidence] = [best]
    covered = {t for t in weights if t in best.text}
    hit_text = best.hit.text
    # A sentence that opens with 其中 / ends with ：needs its neighbour to make sense.
    spans = sentence_spans(hit_text, 0, len(hit_text))
    index = next((i for i, (s, _) in enumerate(spans) if s == best.start), None)
    if index is not None:
        if best.text.startswith(("其中", "同时", "并", "对此")) and index > 0:
            s, e = spans[index - 1]
            chosen.insert(0, Evidence(best.hit, best.rank, s, e, hit_text[s:e], best.score))
        if best.text.endswith(("：", ":")):
            for s, e in spans[index + 1 : index + 8]:
                chosen.append(Evidence(best.hit, best.rank, s, e, hit_text[s:e], best.score))
        elif (
            len(best.text) < 24
            or HOW_CUES.search(plan.question)
            or plan.is_yes_no
            or (plan.is_list and not ENUMERATION.search(best.text))
        ) and index + 1 < len(spans):
            # A short lead sentence or a how-question: the next sentence says the substance.
            s, e = spans[index + 1]
            if e - best.start <= 260:
                chosen.append(Evidence(best.hit, best.rank, s, e, hit_text[s:e], best.score))
    total = sum(weights.values()) or 1.0
    for candidate in evidence[1:6]:
        if len(chosen) >= 3 or candidate.score < 0.75 * best.score:
            break
        gain = sum(w for t, w in weights.items() if t in candidate.text and t not in covered)
        if gain / total >= 0.2 and all(candidate.text != c.text for c in chosen):
            chosen.append(candidate)
            covered |= {t for t in weights if t in candidate.text}
    # Group by passage, keep document order inside a passage.
    lines: list[str] = []
    by_hit: dict[str, list[Evidence]] = {}
    for ev in chosen:
        by_hit.setdefault(ev.hit.chunk_id, []).append(ev)
    for group in by_hit.values():
        group = sorted({(e.start, e.end): e for e in group}.values(), key=lambda e: e.start)
        hit = group[0].hit
        text = _flatten(hit.text[group[0].start : group[-1].end]) if _contiguous(hit.text, group) else "".join(_flatten(e.text) for e in group)
        prefix = ""
        if hit.article and not text.startswith(hit.article):
            prefix = f"{hit.article}规定："
        n = book.cite(hit, text)
        lines.append(f"{prefix}{_end_sentence(text)}[{n}]")
    return "\n".join(lines)


def _contiguous(text: str, group: list[Evidence]) -> bool:
    return all(not text[a.end : b.start].strip() for a, b in zip(group, group[1:]))


# ---------------------------------------------------------------- the assistant


class Assistant:
    """Answers questions over one index; extractive by default, LLM when configured."""

    def __init__(self, index: Index, settings: Settings | None = None, llm=None) -> None:
        self.index = index
        self.settings = settings or index.settings
        self.retriever = HybridRetriever(index, self.settings)
        self._llm = llm

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int = 8,
        doc_type: str | None = None,
        source: str | None = None,
        year: int | None = None,
        use_llm: bool | None = None,
    ) -> Answer:
        answer = None
        for part in self.stream(question, history, k, doc_type, source, year, use_llm):
            if isinstance(part, Answer):
                answer = part
        assert answer is not None
        return answer

    def stream(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int = 8,
        doc_type: str | None = None,
        source: str | None = None,
        year: int | None = None,
        use_llm: bool | None = None,
    ) -> Iterator[str | Answer]:
        """Yield text pieces as they are produced, then the final Answer."""
        started = time.perf_counter()
        text, notices = prepare_question(question, self.settings)
        resolved = resolve_followup(text, history, self.retriever)
        if resolved != text:
            notices.append(f"结合上文理解为：{resolved}")
        retrieval = self.retriever.search(resolved, k=k, doc_type=doc_type, source=source, year=year)
        extractive = self.extractive(question, retrieval, notices)
        llm_wanted = self.settings.llm_enabled if use_llm is None else use_llm
        if llm_wanted and not extractive.refused:
            from rag.llm import llm_answer_stream

            for part in llm_answer_stream(self, question, retrieval, extractive, started):
                yield replace(part, resolved=resolved) if isinstance(part, Answer) else part
            return
        timings = dict(retrieval.timings_ms)
        timings["total"] = (time.perf_counter() - started) * 1000
        final = replace(extractive, timings_ms=timings, resolved=resolved)
        yield final.answer
        yield final

    # ------------------------------------------------------------ extractive

    def extractive(self, question: str, retrieval: Retrieval, notices: list[str]) -> Answer:
        t0 = time.perf_counter()
        plan = retrieval.plan
        hits = list(retrieval.hits)
        keyword = self.index.keyword()
        book = CitationBook()

        def refuse(reason: str | None = None) -> Answer:
            closest = CitationBook()
            for hit in hits[:3]:
                closest.cite(hit)
            message = REFUSAL + (f"{reason}" if reason else "") + (REFUSAL_HINT if hits else "")
            return Answer(question, message, True, tuple(closest.citations), {}, tuple(notices))

        if not plan.tokens and not plan.articles:
            return refuse("问题中没有可检索的词语，请换一种问法。")
        if retrieval.missing_articles and not retrieval.article_hits:
            missing = "、".join(m.split(":")[1] for m in retrieval.missing_articles)
            law_titles = "、".join(f"《{law.title}》" for law in plan.laws) or "所指法规"
            return refuse(f"{law_titles}中没有{missing}。")
        if not hits:
            return refuse()
        year_gap = self._year_gap(plan, hits)
        if year_gap:
            return refuse(year_gap)
        hits = self._same_issuer(plan, hits)
        if plan.years and not plan.laws:
            # A report covering another year never answers for the year asked about.
            kept = [h for h in hits if h.doc_type != "report" or h.year in plan.years or any(str(y) in h.text for y in plan.years)]
            if len(kept) < len(hits) and not any(h.doc_type == "report" for h in kept):
                asked = "、".join(f"{y}年" for y in plan.years)
                other = "、".join(sorted({f"{h.year}年" for h in hits if h.doc_type == "report" and h.year}))
                if not kept or plan.wants_report:
                    return refuse(f"找到的报告段落属于{other}，不是{asked}的情况，不能用其他年份的数据代替。")
            hits = kept

        if retrieval.article_hits:
            body = compose_article_answer(retrieval.article_hits, book)
            return Answer(question, body, False, tuple(book.citations), {"answer": (time.perf_counter() - t0) * 1000}, tuple(notices))

        weights = question_weights(plan, keyword)
        strength = evidence_strength(hits, weights)
        if strength < MIN_EVIDENCE or not focus_supported(plan, hits, keyword):
            return refuse()
        evidence = score_sentences(plan, hits, weights)
        if plan.is_quantity:
            # A count answers only if it counts what was asked: same thing, same unit (几个 is not 2名).
            evidence = [e for e in evidence if counts_what_was_asked(plan, e.text)]
            if not evidence:
                return refuse()
        body = None
        best_hit = evidence[0].hit if evidence else hits[0]
        if plan.is_list:
            if best_hit.doc_type == "report" or plan.wants_report:
                body = compose_report_list(hits, keyword, weights, book)
            if body is None and best_hit.article and re.search(r"（一）|\(一\)", best_hit.text) and len(best_hit.text) <= MAX_ARTICLE_CHARS:
                article_hits = keyword.article(best_hit.source, _article_number(best_hit.article)) or [best_hit]
                body = compose_article_answer(article_hits, book)
        if body is None:
            body = compose_sentences(evidence, weights, plan, book)
        timings = {"answer": (time.perf_counter() - t0) * 1000}
        return Answer(question, body, False, tuple(book.citations), timings, tuple(notices))

    def _same_issuer(self, plan: QueryPlan, hits: list[Hit]) -> list[Hit]:
        """When the question names a place (开封), reports of other issuers (虚构县审计局) do not answer it."""
        issuers = {r.source: r.issuer or "" for r in self.index.documents() if r.doc_type == "report"}
        places = {source: re.split(r"[省市县区]", issuer, maxsplit=1)[0] for source, issuer in issuers.items() if issuer}
        named = {place for place in places.values() if len(place) >= 2 and place in plan.question}
        if not named:
            return hits
        return [h for h in hits if h.doc_type != "report" or places.get(h.source) in named]

    def _year_gap(self, plan: QueryPlan, hits: Sequence[Hit]) -> str | None:
        """A question about a year the reports do not cover is refused, never answered with another year."""
        if not plan.years or plan.laws:
            return None
        report_hits = [h for h in hits[:TOP_PASSAGES] if h.doc_type == "report"]
        if not report_hits and not plan.wants_report:
            return None
        covered = sorted({r.year for r in self.index.documents() if r.doc_type == "report" and r.year})
        if any(y in covered for y in plan.years):
            return None
        asked = "、".join(f"{y}年" for y in plan.years)
        have = "、".join(f"{y}年" for y in covered) or "无"
        return f"已收录的报告没有{asked}的情况（现有报告年份：{have}），不能用其他年份的数据代替。"


def _article_number(label: str) -> int:
    from rag.structure import chinese_number

    return chinese_number(label[1:-1]) or 0


def make_assistant(settings: Settings, index: Index | None = None) -> Assistant:
    from rag.index import open_index

    return Assistant(index or open_index(settings), settings)
