"""Answers with citations: guards (laws, articles, organisations, years), evidence selection, composition.

The extractive answer quotes the sentences the fitted scorer ranks first; an LLM answer (when
configured) is written from the same passages and checked sentence by sentence. Every answer line
ends with `[n]`; a line drawn from a dated document of one of several organisations says whose.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from rag.citations import (
    MARKER,
    QUOTE_GAP,
    REFUSAL,
    REFUSAL_HINT,
    SUB_CLAUSE,
    CitationBook,
    Similarity,
    dates,
    split_condition,
)
from rag.config import Settings
from rag.evidence import (
    ITEM_START,
    MAX_ITEMS,
    AnswerModel,
    Candidate,
    coverage,
    label_cue,
    score_candidates,
    semantic_question,
    unit_matches,
)
from rag.keyword_index import KeywordIndex
from rag.lexicon import label, lexicon
from rag.lines import ARTICLE_START, PAGE_NUMBER
from rag.metadata import title_years
from rag.orgs import OrgCatalog
from rag.params import AnswerParams
from rag.query import AGE_UNIT, QueryPlan, asked_clauses, prepare_question, question_parts, resolve_followup
from rag.retrieve import HybridRetriever, Retrieval
from rag.schema import Answer, Hit, last_heading
from rag.structure import ITEM_MARK
from rag.text import char_ngrams, chinese_number, flatten, is_lead_in, normalize_question, sentence_spans

FRONT_MATTER = {label("title"), label("addressee"), label("trailer")}
# The first item of an enumeration, opening a sentence or after its lead-in (…不足：一是…); a later
# item opens its sentence as `structure.ITEM_MARK` finds it (二是…).
FIRST_ITEM = re.compile(r"(?:^|[：:])\s*一是")


@dataclass(frozen=True)
class Turn:
    """One exchange of a conversation, kept to resolve follow-ups."""

    question: str
    resolved: str
    answer: Answer | None = None


def _end_sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith(("。", "！", "？", "”", "；", "：", ".", ";", ":")) else text + "。"


def attribution(hit: Hit) -> str:
    return f"据《{hit.title}》，"


# ---------------------------------------------------------------- composing


def compose_article_answer(article_hits: Sequence[Hit], book: CitationBook, max_chars: int = AnswerParams.max_article_chars) -> str:
    """An article look-up: the article itself (long articles: the first chunks up to a limit)."""
    parts: list[str] = []
    used = 0
    for hit in article_hits:
        if used and used + len(hit.text) > max_chars:
            break
        n = book.cite(hit, hit.text)
        parts.append(f"{flatten(hit.text)}[{n}]")
        used += len(hit.text)
    return "\n".join(parts)


def compose_report_list(
    hits: Sequence[Hit], snapshot: KeywordIndex, weights: dict[str, float], book: CitationBook, top: int, min_coverage: float = AnswerParams.list_heading_coverage
) -> list[tuple[Hit, str]] | None:
    """A list question on a report: the sub-headings of the section whose heading the question names."""
    best: tuple[float, Hit, int] | None = None
    for hit in hits[:top]:
        if hit.doc_type == "law":
            continue
        path = [p.strip() for p in hit.section.split(" > ") if p.strip()]
        for depth in range(len(path), 0, -1):
            cov = coverage(path[depth - 1], weights)
            if cov >= min_coverage and (best is None or cov > best[0]):
                best = (cov, hit, depth)
    if best is None:
        return None
    _, hit, depth = best
    children = section_children(hit, depth, snapshot)
    if len(children) < 2:
        return None
    return [(snapshot.hit(row, hit.score), child) for child, row in children.items()]


def section_children(hit: Hit, depth: int, snapshot: KeywordIndex) -> dict[str, int]:
    """The headings one level under the first `depth` headings of the hit's section path, in document
    order, each with the first row of its document under it."""
    prefix = " > ".join(p.strip() for p in hit.section.split(" > ")[:depth])
    children: dict[str, int] = {}
    for row in snapshot.rows_of(hit.source):
        section = snapshot.metadatas[row].get("section", "")
        parts = section.split(" > ")
        if section.startswith(prefix + " > ") and len(parts) > depth:
            children.setdefault(parts[depth], row)
    return children


def _contiguous(text: str, group: list[Candidate]) -> bool:
    return all(not text[a.end : b.start].strip() for a, b in zip(group, group[1:]))


def _sentences_of(candidate: Candidate) -> tuple[list[tuple[int, int]], int | None]:
    """The sentence spans of the candidate's passage and the candidate's place among them (None: it is
    not one sentence, e.g. a lead-in that holds its items already)."""
    text = candidate.hit.text
    spans = sentence_spans(text, 0, len(text))
    index = next((i for i, (s, e) in enumerate(spans) if s == candidate.start and e == candidate.end), None)
    return spans, index


def _figure_after(
    candidate: Candidate, plan: QueryPlan, params: AnswerParams, sentences: tuple[list[tuple[int, int]], int | None] | None = None
) -> Candidate | None:
    """For a how-much or how-long question answered by a clause without a figure, the clause right
    after it when that one gives the figure (…给予警告；拒不改正的，…处5万元以下的罚款)."""
    if not (plan.is_quantity or plan.is_time) or unit_matches(plan, candidate.text) or is_lead_in(candidate.text):
        return None
    spans, index = sentences or _sentences_of(candidate)
    if index is None or index + 1 >= len(spans):
        return None
    text = candidate.hit.text
    s, e = spans[index + 1]
    if e - candidate.start > params.neighbour_span or not unit_matches(plan, text[s:e]):
        return None
    return replace(candidate, start=s, end=e, text=text[s:e])


def one_clause_condition(text: str, most: int = 40) -> str:
    """The condition of `…的，…` (`split_condition`) when it is one clause of at most `most` characters
    before its 的 (10日内未提出书面意见的), else ""."""
    condition, _ = split_condition(text)
    return condition if len(condition) <= most + 1 and not SUB_CLAUSE.search(condition) else ""


def restates(condition: str, sentence: str, share: float = 0.5) -> bool:
    """The condition clause repeats the sentence before it (…10日内提出书面意见；10日内未提出书面意见的，…):
    most of its character bigrams are that sentence's."""
    grams = set(char_ngrams(condition))
    return bool(grams) and len(grams & set(char_ngrams(sentence))) >= share * len(grams)


def _consequence_after(best: Candidate, spans: list[tuple[int, int]], index: int, params: AnswerParams) -> Candidate | None:
    """The next sentence, when its condition restates the best one: what follows if that rule is not
    kept (逾期未作决定的，视为准予延续; 不能出庭的，应当委托…) is part of the answer."""
    if index + 1 >= len(spans):
        return None
    text = best.hit.text
    s, e = spans[index + 1]
    following = text[s:e].strip()
    condition = one_clause_condition(following)
    if not condition or ARTICLE_START.match(following) or ITEM_START.match(following) or e - best.start > params.neighbour_span or not restates(condition, best.text):
        return None
    return replace(best, start=s, end=e, text=text[s:e])


def _items_after(chosen: Candidate, spans: list[tuple[int, int]], last: int) -> list[Candidate]:
    """When the chosen sentence opens an enumeration (…还存在一些不足：一是…；), the items that
    follow it in order (二是…；三是…): the enumeration is one answer, as a lead-in's items are."""
    if not FIRST_ITEM.search(chosen.text):
        return []
    text = chosen.hit.text
    items: list[Candidate] = []
    expected = 2
    for s, e in spans[last + 1 : last + 1 + MAX_ITEMS]:
        mark = ITEM_MARK.match(text[s:e])
        if mark is None or chinese_number(mark.group(1)) != expected:
            break
        items.append(replace(chosen, start=s, end=e, text=text[s:e]))
        expected += 1
    return items


def sibling_items(best: Candidate, snapshot: KeywordIndex) -> list[Candidate]:
    """When the best sentence is the first item of an enumeration that a report splits into passages of
    their own (三、下一步工作安排 > 一是…, > 二是…), the items after it in order, each the first sentence
    of its passage."""
    path = [p.strip() for p in best.hit.section.split(" > ")]
    mark = ITEM_MARK.match(path[-1])
    if len(path) < 2 or mark is None or chinese_number(mark.group(1)) != 1 or not FIRST_ITEM.search(best.text):
        return []
    items: list[Candidate] = []
    expected = 2
    for heading, row in section_children(best.hit, len(path) - 1, snapshot).items():
        mark = ITEM_MARK.match(heading.strip())
        if mark is None or chinese_number(mark.group(1)) != expected:
            continue
        hit = snapshot.hit(row, best.hit.score)
        spans = sentence_spans(hit.text)
        if spans:
            s, e = spans[0]
            items.append(replace(best, hit=hit, start=s, end=e, text=hit.text[s:e]))
        expected += 1
        if expected > MAX_ITEMS + 1:  # the first item and as many after it as a lead-in's
            break
    return items


def _neighbours(best: Candidate, plan: QueryPlan, params: AnswerParams = AnswerParams()) -> list[Candidate]:
    """A sentence opening with 其中 needs the one before; one ending with ： the items after; a clause
    without the figure a how-much question asks for, the clause that gives it; a short lead sentence,
    a how-question or a yes/no question the next one (and its items, if it is a lead-in)."""
    text = best.hit.text
    spans, index = _sentences_of(best)
    if index is None:  # unknown, or a lead-in that holds its items already
        return [best]
    part = last_heading(best.hit.section)
    if part in FRONT_MATTER and len(text) <= params.front_matter_chars:
        # A title block or a signature block is answered whole (title and number; name, date, 抄送, 印发).
        return [replace(best, start=s, end=e, text=text[s:e]) for s, e in spans if not PAGE_NUMBER.match(text[s:e].strip())]
    chosen = [best]
    lex = lexicon()
    if lex.cue("lead_in", best.text) and index > 0:
        s, e = spans[index - 1]
        chosen.insert(0, replace(best, start=s, end=e, text=text[s:e]))
    last = index
    figure = _figure_after(best, plan, params, (spans, index))
    if figure is not None:
        chosen.append(figure)
        last = index + 1
    elif not is_lead_in(best.text) and (len(best.text) < params.short_lead or lex.cue("how", plan.question) or plan.is_yes_no) and index + 1 < len(spans):
        s, e = spans[index + 1]
        if e - best.start <= params.neighbour_span:
            chosen.append(replace(best, start=s, end=e, text=text[s:e]))
            last = index + 1
    if last == index and not is_lead_in(best.text):
        consequence = _consequence_after(best, spans, index, params)
        if consequence is not None:
            chosen.append(consequence)
            last = index + 1
    if is_lead_in(chosen[-1].text):
        for s, e in spans[last + 1 : last + 9]:
            chosen.append(replace(best, start=s, end=e, text=text[s:e]))
    else:
        chosen.extend(_items_after(chosen[-1], spans, last))
    return chosen


def choose_sentences(
    scored: list[Candidate], plan: QueryPlan, weights: dict[str, float], params: AnswerParams, parts: Sequence[Sequence[Candidate]] = ()
) -> list[Candidate]:
    """The best sentence with the neighbours it needs; for each further part of a several-part
    question the sentence the model ranks first for that part (among the question's own leading
    candidates); a second sentence where it adds what was asked."""
    best = scored[0]
    ratio = params.second_sentence_ratio
    chosen = _neighbours(best, plan, params)
    leading = {(c.hit.chunk_id, c.start): c for c in scored[: params.part_options] if c.p >= params.part_ratio * best.p}
    for ranking in parts:
        if not ranking:
            continue
        top = ranking[0]
        if any(top.hit.chunk_id == c.hit.chunk_id and c.start <= top.start < c.end or top.text in c.text for c in chosen):
            continue  # this part is answered by what was chosen already
        pick = leading.get((top.hit.chunk_id, top.start))
        if pick is None and top.p >= params.part_ratio * best.p and all(top.hit.chunk_id != c.hit.chunk_id for c in scored):
            pick = top  # from a passage past the question's first few, as likely as a leading candidate must be
        if pick is not None:
            chosen.extend(x for x in _neighbours(pick, plan, params) if all(x.text != c.text for c in chosen))
    covered = {t for t in weights if any(t in c.text for c in chosen)}
    total = sum(weights.values()) or 1.0
    # The runner-up nearly as likely as the best is given too (the scorer cannot tell them apart);
    # further ones only when they add what the question asks.
    runner_up = True
    for candidate in scored[1:6]:
        if len(chosen) >= 3 + len(parts) or candidate.p < ratio * best.p:
            break
        if any(candidate.text == c.text or candidate.text in c.text for c in chosen):
            continue
        gain = sum(w for t, w in weights.items() if t in candidate.text and t not in covered)
        if runner_up or gain / total >= params.extra_gain:
            # a lead-in (…的种类：) or a bare numbered heading (1．重大行政决策集体研究。) is given with what
            # follows, as the best sentence is; another runner-up with the clause giving the asked figure
            if is_lead_in(candidate.text) or len(candidate.text) < params.short_lead:
                added = _neighbours(candidate, plan, params)
            else:
                figure = _figure_after(candidate, plan, params)
                added = [candidate] + ([figure] if figure else [])
            chosen.extend(added)
            covered |= {t for t in weights if any(t in c.text for c in added)}
        runner_up = False
    return chosen


def render_lines(chosen: list[Candidate], book: CitationBook, attribute: bool) -> str:
    """Group by passage, keep document order inside a passage, cite each line."""
    lines: list[str] = []
    previous = ""
    by_hit: dict[str, list[Candidate]] = {}
    for c in chosen:
        by_hit.setdefault(c.hit.chunk_id, []).append(c)
    for group in by_hit.values():
        group = sorted({(c.start, c.end): c for c in group}.values(), key=lambda c: c.start)
        hit = group[0].hit
        part = last_heading(hit.section)
        if part in FRONT_MATTER:  # a signature block: name, date, 抄送 stay apart
            text = "　".join(flatten(c.text) for c in group)
        elif _contiguous(hit.text, group):
            text = flatten(hit.text[group[0].start : group[-1].end])
        else:  # pieces apart in the passage are quoted apart
            pieces = [flatten(c.text).strip() for c in group]
            text = QUOTE_GAP.join([p.rstrip("。；") for p in pieces[:-1]] + pieces[-1:])
        prefix = ""
        if hit.article and not text.startswith(hit.article):
            prefix = f"{hit.article}规定："
        elif attribute and hit.doc_type != "law" and hit.source != previous:
            prefix = attribution(hit)  # once for lines from one document in a row
        previous = hit.source
        n = book.cite(hit, text)
        lines.append(f"{prefix}{_end_sentence(text)}[{n}]")
    return "\n".join(lines)


# ---------------------------------------------------------------- guards


AMOUNT_ASKED = {"元": "金额", "%": "比例（百分数）"}


def counts_what_was_asked(plan: QueryPlan, body: str) -> bool:
    """A count question (多少名, 几个) is answered only with a number in the unit it counts in, a
    question for money only with an amount, one for a rate only with a percentage (rule for the
    category of questions whose documents count something else, README)."""
    if plan.asked_ordinal:
        return unit_matches(plan, MARKER.sub("", body))
    if not plan.is_quantity or not plan.asked_unit:
        return True
    if plan.asked_unit not in lexicon().count_units and plan.asked_unit not in AMOUNT_ASKED and plan.asked_unit != AGE_UNIT:
        return True
    return unit_matches(plan, MARKER.sub("", body))


def in_part(candidate: Candidate, part: str) -> bool:
    """The candidate sentence lies in a front-matter part of its document (抬头, 落款 …)."""
    return last_heading(candidate.hit.section) == label(part)


def what_was_asked(plan: QueryPlan) -> str:
    """The thing a refused count question asked for, for the refusal message."""
    if plan.asked_ordinal:
        return f"“第几{plan.asked_ordinal}”"
    unit = plan.asked_unit or ""
    return AMOUNT_ASKED.get(unit) or f"以“{unit}”计的数目"


def names_a_day(text: str) -> bool:
    return any(month and day for _, month, day in dates(text))


def gives_the_day_asked(plan: QueryPlan, body: str) -> bool:
    """A question for a day (哪天, 几月几日, 落款日期) is answered only with a month and day (rule for the
    category of date questions whose passages give none, README)."""
    cue = lexicon().cue
    # The asked clauses hold a day cue only if the question does: narrowed only then (most questions have none).
    return not (cue("day", plan.question) and cue("day", asked_clauses(plan.question))) or names_a_day(MARKER.sub("", body))


def year_phrase_in(question: str, year: int, text: str, chars: int = AnswerParams.year_phrase_chars) -> bool:
    """The question's year with the words after it (2023年度区级预算) occurs in the passage."""
    from rag.text import squash

    q, t = (re.sub(r"年度", "年", squash(x)) for x in (question, text))  # 2022年度审计 = 2022年审计
    for m in re.finditer(rf"{year}年", q):
        phrase = q[m.start() : m.end() + chars]
        if len(phrase) > len(m.group(0)) and phrase in t:
            return True
    return False


def year_guard(plan: QueryPlan, hits: list[Hit], orgs: OrgCatalog, records_years: list[int]) -> tuple[list[Hit], str | None]:
    """Dated documents answer a question naming a year only for that year (or when they state the
    question's year phrase); a year no document covers is refused, naming the years there are."""
    if not plan.years:
        return hits, None
    law_question = bool(plan.laws) and not plan.orgs.named and not plan.wants_report
    if law_question:
        return hits, None

    # A document covering another year answers when it states the question's year phrase, or from
    # its part about that year when its title names it (a 2023年工作总结和2024年工作计划 from its 2024
    # plan, not from its 2023 summary) and the organisation's own document of that year is not found:
    # a year's own report speaks for that year.
    covering = {h.issuer for h in hits if h.issuer and h.doc_type != "law" and h.year in plan.years}

    def fits(hit: Hit) -> bool:
        if hit.doc_type == "law" or hit.year in plan.years:
            return True
        if any(year_phrase_in(plan.question, y, hit.text) for y in plan.years):
            return True
        named = title_years(hit.title)
        return hit.issuer not in covering and any(y in named and y in title_years(f"{hit.section}\n{hit.text}") for y in plan.years)

    kept = [h for h in hits if fits(h)]
    dated_kept = [h for h in kept if h.doc_type != "law"]
    asked = "、".join(f"{y}年" for y in plan.years)
    if plan.orgs.known:
        names = "、".join(e.issuer for e in plan.orgs.known)
        years = sorted({y for e in plan.orgs.known for y in e.years})
        if not dated_kept and not any(y in years for y in plan.years):
            have = "、".join(f"{y}年" for y in years) or "无"
            return kept, f"已收录的{names}的文件没有{asked}的（现有年份：{have}），不能用其他年份的情况代替。"
        # An organisation and a year name that organisation's document of the year, not a law (rule for
        # the category of questions whose organisation's document lacks the fact, README).
        if plan.laws:
            return kept, None
        return dated_kept, None if dated_kept else f"已收录的{names}{asked}的文件中没有找到相关内容。"
    dated_hits = [h for h in hits if h.doc_type != "law"]
    if dated_hits and not dated_kept and (plan.wants_report or not [h for h in kept if h.doc_type == "law"]):
        if not any(y in records_years for y in plan.years):
            have = "、".join(f"{y}年" for y in sorted(set(records_years))) or "无"
            return kept, f"已收录的报告没有{asked}的情况（现有报告年份：{have}），不能用其他年份的数据代替。"
        others = "、".join(sorted({f"{h.year}年" for h in dated_hits if h.year}))
        return kept, f"找到的段落属于{others}的文件，不是{asked}的情况，不能用其他年份的数据代替。"
    return kept, None


# ---------------------------------------------------------------- the assistant


class Assistant:
    """Answers questions over one index; extractive by default, LLM when configured."""

    def __init__(
        self,
        retriever: HybridRetriever,
        settings: Settings,
        model: AnswerModel | None = None,
        similarity: Similarity | None = None,
        chat_model=None,
        support=None,
        prefetch: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self.retriever = retriever
        self.index = retriever.index
        self.settings = settings
        self.model = model or AnswerModel.load(settings.answer.model_file)
        self.similarity = similarity
        self.prefetch = prefetch  # starts encoding questions for `similarity` on another thread
        self.chat_model = chat_model
        self.support = support  # a callable (sentence, hit) -> Support, for LLM sentences

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int = 8,
        doc_type: str | None = None,
        source: str | None = None,
        year: int | None = None,
        use_llm: bool | None = None,
        org: str | None = None,
    ) -> Answer:
        answer = None
        for part in self.stream(question, history, k, doc_type, source, year, use_llm, org):
            if isinstance(part, Answer):
                answer = part
        assert answer is not None
        return answer

    def turns(self, questions: Sequence[str]) -> list[Turn]:
        """A conversation's earlier questions as turns, each resolved against those before it."""
        history: list[Turn] = []
        for previous in questions:
            history.append(Turn(previous, self.resolve(normalize_question(previous), history)))
        return history

    def resolve(self, question: str, history: Sequence[Turn]) -> str:
        previous = history[-1].resolved if history else None
        return resolve_followup(question, previous, self.retriever.aliases())

    def stream(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int = 8,
        doc_type: str | None = None,
        source: str | None = None,
        year: int | None = None,
        use_llm: bool | None = None,
        org: str | None = None,
    ) -> Iterator[object]:
        """Yield text pieces as they are produced, then the final Answer. `org`: the user's own
        organisation for this question (what 我局 means), instead of RAG_ORG."""
        started = time.perf_counter()
        cut, text, notices = prepare_question(question, self.settings.answer.max_question_chars)
        resolved = self.resolve(text, history)
        if resolved != text:
            notices.append(f"结合上文理解为：{resolved}")
        retrieval = self.retriever.search(resolved, k=k, doc_type=doc_type, source=source, year=year, org=org, on_plan=self.encode_ahead)
        extractive, passages = self.extractive(cut, retrieval, notices, org)
        llm_wanted = self.settings.llm.enabled if use_llm is None else use_llm
        if llm_wanted and not extractive.refused and self.chat_model is not None:
            from rag.llm import llm_answer_stream

            for part in llm_answer_stream(self.chat_model, cut, retrieval.plan.question, passages, extractive, retrieval.timings_ms, started, self.support):
                yield replace(part, resolved=resolved) if isinstance(part, Answer) else part
            return
        timings = dict(retrieval.timings_ms)
        timings.update(extractive.timings_ms)
        timings["total"] = (time.perf_counter() - started) * 1000
        final = replace(extractive, timings_ms=timings, resolved=resolved)
        yield final.answer
        yield final

    # ------------------------------------------------------------ extractive

    def analyze(self, question: str, retrieval: Retrieval, notices: list[str], org: str | None = None) -> Analysis:
        """Guards and evidence: why the question is refused, or the scored candidate sentences."""
        plan = retrieval.plan
        hits = list(retrieval.hits)
        snapshot = retrieval.snapshot or self.index.snapshot()
        _, orgs = self.retriever.catalogs(snapshot, org)
        analysis = Analysis(plan, retrieval, snapshot, orgs, hits, question=question)
        if not plan.tokens and not plan.articles and not plan.grams:
            return analysis.refused("问题中没有可检索的词语，请换一种问法。", closest=False)
        if plan.unknown_laws and not plan.laws:
            names = "、".join(f"《{n}》" for n in plan.unknown_laws)
            notices.append(f"已收录的法规中没有{names}。")
            return analysis.refused(f"已收录的法规中没有{names}，不能用其他法规的条文代替。", closest=False)
        if retrieval.missing_articles and not retrieval.article_hits:
            missing = "、".join(m.split(":")[1] for m in retrieval.missing_articles)
            titles = "、".join(f"《{law.title}》" for law in plan.laws) or "所指法规"
            return analysis.refused(f"{titles}中没有{missing}。")
        mention = plan.orgs
        if mention.unknown and (not mention.known or mention.by_place):
            have = "、".join(orgs.issuers()) or "无"
            names = "、".join(mention.unknown)
            return analysis.refused(f"已收录的文件中没有{names}的文件（已收录的单位：{have}），不能用其他单位的情况代替。", closest=False)
        if mention.own and not (org or self.settings.answer.org) and orgs.several:
            notices.append("未设置本单位（RAG_ORG），“我局”按最相关的文件理解；回答中注明了所依据的文件。")
        if not hits:
            return analysis.refused(None)
        records_years = [r.year for r in snapshot.records if r.doc_type != "law" and r.year]
        hits, year_problem = year_guard(plan, hits, orgs, records_years)
        if year_problem:
            return analysis.refused(year_problem, closest=False)
        if not hits:
            return analysis.refused(None)
        analysis.hits = hits
        if retrieval.article_hits:
            return analysis
        narrowed = replace(retrieval, hits=tuple(hits))
        t1 = time.perf_counter()
        analysis.scored, analysis.weights, analysis.question_features = score_candidates(
            plan, narrowed, snapshot, self.model, self.settings.answer.top_passages, self.similarity
        )
        analysis.scoring_ms = (time.perf_counter() - t1) * 1000
        if not analysis.scored:
            return analysis.refused(None)
        analysis.p_answerable = self.model.answerable.probability(analysis.question_features)
        return analysis

    def extractive(self, question: str, retrieval: Retrieval, notices: list[str], org: str | None = None) -> tuple[Answer, list[Hit]]:
        """The extractive answer and the passages an LLM may use."""
        t0 = time.perf_counter()
        return self.answer_from(self.analyze(question, retrieval, notices, org), notices, t0)

    def answer_from(self, analysis: Analysis, notices: list[str], t0: float | None = None) -> tuple[Answer, list[Hit]]:
        """The extractive answer from what `analyze` found (composed as the model's params say)."""
        t0 = time.perf_counter() if t0 is None else t0
        question = analysis.question
        if analysis.refusal is None and analysis.scored and analysis.p_answerable < self.model.refuse_below:
            analysis.refusal = ""
        if analysis.refusal is not None:
            shown = analysis.retrieval.hits[:3] if analysis.show_closest else ()
            near = CitationBook()
            for hit in shown:
                near.cite(hit)
            message = REFUSAL + analysis.refusal + (REFUSAL_HINT if shown else "")
            timings = {"answer": (time.perf_counter() - t0) * 1000}
            return Answer(question, message, True, tuple(near.citations), timings, tuple(notices)), []
        book = CitationBook()
        hits = analysis.hits
        if analysis.retrieval.article_hits:
            body = compose_article_answer(analysis.retrieval.article_hits, book)
            timings = {"answer": (time.perf_counter() - t0) * 1000}
            return Answer(question, body, False, tuple(book.citations), timings, tuple(notices)), list(analysis.retrieval.article_hits)
        body = self.compose(analysis, book)
        missing = None
        if not counts_what_was_asked(analysis.plan, body):
            missing = what_was_asked(analysis.plan)
        elif not gives_the_day_asked(analysis.plan, body):
            missing = "具体日期"
        if missing:
            near = CitationBook()
            for hit in analysis.retrieval.hits[:3]:
                near.cite(hit)
            message = f"{REFUSAL}找到的段落没有给出{missing}。{REFUSAL_HINT}"
            return Answer(question, message, True, tuple(near.citations), {"answer": (time.perf_counter() - t0) * 1000}, tuple(notices)), []
        timings = {"answer": (time.perf_counter() - t0) * 1000, "scoring": analysis.scoring_ms}
        return Answer(question, body, False, tuple(book.citations), timings, tuple(notices)), hits[: self.settings.answer.top_passages]

    def part_rankings(self, analysis: Analysis) -> list[list[Candidate]]:
        """For each part of a several-part question (…多长？最多能延长多少天？), the candidates as the
        model ranks them for that part alone: the sentences of every passage the question retrieved, not
        only of the first few (the whole question can rank the passage a part needs below them); the part
        keeps the whole question's laws, bodies and years."""
        subs = self.part_plans(analysis.plan, analysis.snapshot)
        if not subs:
            return []
        own = tuple(analysis.hits[: self.settings.answer.top_passages])
        seen = {h.chunk_id for h in own}
        extra = tuple(h for h in analysis.retrieval.hits if h.chunk_id not in seen)
        narrowed = replace(analysis.retrieval, hits=own + extra)
        return [score_candidates(sub, narrowed, analysis.snapshot, self.model, len(narrowed.hits), self.similarity)[0] for sub in subs]

    def part_plans(self, plan: QueryPlan, snapshot: KeywordIndex) -> list[QueryPlan]:
        """The plans of a several-part question's parts; each keeps the whole question's laws,
        bodies and years; a part without words is left out."""
        subs = []
        for piece in question_parts(plan.question):
            sub = self.retriever.plan(piece, snapshot)
            sub = replace(sub, laws=plan.laws or sub.laws, orgs=plan.orgs, years=plan.years or sub.years, wants_report=plan.wants_report or sub.wants_report)
            if sub.tokens or sub.grams:
                subs.append(sub)
        return subs

    def encode_ahead(self, plan: QueryPlan, snapshot: KeywordIndex) -> None:
        """Start encoding what answer selection will compare sentences with — the question less its
        scope names, each part of a several-part question — on the other core, while retrieval
        encodes the question itself (left out here when retrieval does)."""
        if self.prefetch is None or self.similarity is None:
            return
        questions = [semantic_question(p) for p in (plan, *self.part_plans(plan, snapshot))]
        if self.retriever.reads_sentences:
            questions = [q for q in questions if q != plan.question]
        if questions:
            self.prefetch(questions)

    def compose(self, analysis: Analysis, book: CitationBook, best: Candidate | None = None, alone: bool = False) -> str:
        """List answers from structure (a report section's sub-headings, an article's items), else sentences.

        `best` composes around another candidate than the top one and `alone` adds no second
        sentence: the calibration labels a candidate by the answer it would give."""
        plan, scored, weights = analysis.plan, analysis.scored, analysis.weights
        params = self.model.params
        attribute = analysis.orgs.several
        best = best or scored[0]
        top = self.settings.answer.top_passages
        if plan.is_list:
            if best.hit.doc_type != "law" or plan.wants_report:
                items = compose_report_list(analysis.hits, analysis.snapshot, weights, book, top, params.list_heading_coverage)
                if items:
                    lines: list[str] = []
                    for hit, child in items:
                        n = book.cite(hit, child)
                        prefix = attribution(hit) if attribute and not lines else ""
                        lines.append(f"{prefix}{_end_sentence(child)}[{n}]")
                    return "\n".join(lines)
            if best.hit.article and re.search(r"（一）|\(一\)", best.hit.text) and len(best.hit.text) <= params.max_article_chars:
                article_hits = analysis.snapshot.article(best.hit.source, article_number(best.hit.article)) or [best.hit]
                return compose_article_answer(article_hits, book, params.max_article_chars)
        ranked = [best] + [c for c in scored if c is not best]
        if not alone and analysis.part_ranked is None:
            analysis.part_ranked = self.part_rankings(analysis)
        parts = [] if alone else analysis.part_ranked or []
        runners_up = params.count_runners_up
        if not alone and plan.is_quantity and plan.asked_unit and not unit_matches(plan, best.text):
            # A count question: a close runner-up that gives the count in the asked unit answers it.
            ranked = promote(ranked, runners_up, lambda c: c.p >= params.count_ratio * best.p and unit_matches(plan, c.text))
        if not alone and not gives_the_day_asked(plan, ranked[0].text):
            # A question for a day (哪天): a close runner-up that gives a month and day answers it, as for
            # counts, rather than a best sentence without one (then refused for lacking the day) — not the
            # 落款, whose date is the document's, not that of the activity the best sentence is about.
            first = ranked[0]
            ranked = promote(ranked, runners_up, lambda c: c.p >= params.count_ratio * first.p and not in_part(c, "trailer") and gives_the_day_asked(plan, c.text))
        if not alone and label_cue(plan.question, label("addressee")) and not in_part(ranked[0], "addressee"):
            # Whom a document is addressed to (报送给哪个单位): its addressee line, when it is a candidate,
            # answers rather than its title (rule for the category, README).
            first = ranked[0]
            ranked = promote(ranked, runners_up, lambda c: in_part(c, "addressee") and c.hit.source == first.hit.source)
        chosen = _neighbours(ranked[0], plan, params) if alone else choose_sentences(ranked, plan, weights, params, parts)
        following = sibling_items(ranked[0], analysis.snapshot)
        if following:  # right after the best sentence's own lines, in order, even when one was a runner-up
            given = {c.text for c in following}
            chosen = [c for c in chosen if c.text not in given]
            after = next((i for i, c in enumerate(chosen) if c.hit.chunk_id != ranked[0].hit.chunk_id), len(chosen))
            chosen[after:after] = following
        return render_lines(chosen, book, attribute)


def promote(ranked: list[Candidate], runners_up: int, accept: Callable[[Candidate], bool]) -> list[Candidate]:
    """`ranked` with the first runner-up (of ranked[1:runners_up]) that `accept` takes moved to the front."""
    found = next((c for c in ranked[1:runners_up] if accept(c)), None)
    return ranked if found is None else [found] + [c for c in ranked if c is not found]


@dataclass
class Analysis:
    """What the answerer found out about one question before composing the answer."""

    plan: QueryPlan
    retrieval: Retrieval
    snapshot: KeywordIndex
    orgs: OrgCatalog
    hits: list[Hit]
    scored: list[Candidate] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    question_features: dict[str, float] = field(default_factory=dict)
    p_answerable: float = 1.0
    scoring_ms: float = 0.0
    refusal: str | None = None  # the reason (may be empty) when a guard refused
    show_closest: bool = True
    part_ranked: list[list[Candidate]] | None = None  # each part's candidates, once ranked (`Assistant.part_rankings`)
    question: str = ""  # as asked (cut to the length limit)

    def refused(self, reason: str | None, closest: bool = True) -> Analysis:
        self.refusal = reason or ""
        self.show_closest = closest
        return self


def article_number(label: str) -> int:
    return chinese_number(label[1:-1]) or 0


