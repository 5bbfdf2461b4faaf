"""Evidence scoring: every sentence of the top passages is a candidate answer, described by features and
scored by a logistic model fitted on question sets (`rag/data/answer_model.json`, `make calibrate`).

Features are generic signals, not rules: IDF-weighted coverage of the question's words and
character bigrams in the sentence and its passage, a real encoder's similarity, how the passage
ranked on each retrieval side, the sentence's position and length, and the question-type cues
(count, date, list, yes/no, name) paired with what the sentence holds. A second model turns
question-level evidence into the probability that the documents answer the question at all.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rag.citations import dated_events, events_named, passage_context
from rag.keyword_index import KeywordIndex
from rag.lexicon import DATA_DIR, label, lexicon
from rag.params import AnswerParams
from rag.query import CJK_WORD, QueryPlan, counted_noun, question_parts
from rag.retrieve import Retrieval, Signals
from rag.schema import Hit, last_heading
from rag.scorers import PRODUCT, Logistic, Scorer, scorer_from_dict
from rag.segment import subwords, tagged_words, terms_form
from rag.text import CN_NUM, char_ngrams, fold, fold_lower, in_order, is_lead_in, sentence_spans
from rag.thesaurus import thesaurus

ANSWER_MODEL_FILE = DATA_DIR / "answer_model.json"
ITEMS = re.compile(r"[（(][一二][）)][^（(]+[（(][二三][）)]")  # numbered items (一)…(二)… in a passage

SENTENCE_FEATURES = (
    "cov_sentence", "cov_context", "cov_heading", "cov_gap",
    "gram_sentence", "gram_context", "gram_gap",
    "semantic", "semantic_gap", "semantic_rank",
    "cov_passage_gap", "gram_passage_gap", "semantic_passage_gap",
    "fused_rank", "fused_share", "word_rank", "char_rank", "dense_rank", "dense_score",
    "first_in_passage", "position", "length", "short", "heading_like", "novelty",
    "quantity_match", "unit_match", "time_match", "date_match", "period_match", "doc_number_match", "code_match",
    "list_match", "colon_lead", "items_match", "yes_no_match", "entity_match",
    "report_doc", "named_org_doc", "year_match", "front_matter", "label_match", "focus_in_sentence", "focus_in_context",
    "part_cov", "person_match", "event_match", "term_value",
)
QUESTION_FEATURES = (
    "best_p", "second_p", "margin", "best_cov_context", "best_cov_sentence", "best_gram_sentence",
    "best_semantic", "top_fused", "sides_agree", "top5_overlap", "missing_mass", "max_missing_idf",
    "focus_missing", "n_terms", "is_quantity", "is_list", "is_yes_no", "wants_report", "best_shape_match",
    "count_noun_missing", "person_missing",
)
# The direction each piece of evidence can only push the answerability model in: more coverage,
# similarity or agreement never makes an answer less likely, more of the question missing from the
# passages never more. Fitting within these signs keeps correlated features from taking weights of
# the wrong sign (missing_mass once counted for an answer); the question-type cues are free.
QUESTION_FEATURE_SIGNS = {
    "best_p": 1, "best_cov_context": 1, "best_cov_sentence": 1, "best_gram_sentence": 1, "best_semantic": 1,
    "top_fused": 1, "sides_agree": 1, "top5_overlap": 1, "best_shape_match": 1,
    "missing_mass": -1, "max_missing_idf": -1, "focus_missing": -1, "count_noun_missing": -1, "person_missing": -1,
}

# Interactions of the answerability model: a feature named `a*b` is the product of `a` and `b` (a count
# question is answerable when a sentence gives the unit asked; a list question wants another coverage).
# Every pair of the question features is offered, its weight free and the whole fit regularised more.
QUESTION_PRODUCTS = tuple(f"{a}{PRODUCT}{b}" for i, a in enumerate(QUESTION_FEATURES) for b in QUESTION_FEATURES[i + 1 :])

Similarity = Callable[[str, Sequence[str]], Sequence[float]]

# The sentence features that say a sentence gives the kind of answer asked: the unit counted, a
# date, a period, a document number, a postcode or telephone number.
SHAPE_MATCHES = ("unit_match", "date_match", "period_match", "doc_number_match", "code_match")


def shape_match(features: Mapping[str, float]) -> float:
    """1.0 when a sentence gives the kind of answer its question asks for (see SHAPE_MATCHES)."""
    return max((features.get(name, 0.0) for name in SHAPE_MATCHES), default=0.0)


@dataclass(frozen=True)
class AnswerModel:
    """The sentence scorer, the answerability model and the thresholds chosen by cross-validation."""

    sentence: Logistic
    answerable: Scorer
    refuse_below: float = 0.5
    params: AnswerParams = field(default_factory=AnswerParams)
    source: str = "default"

    @property
    def second_sentence_ratio(self) -> float:
        return self.params.second_sentence_ratio

    @classmethod
    def load(cls, path: Path | None = None) -> AnswerModel:
        path = Path(path or ANSWER_MODEL_FILE)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            params = AnswerParams.from_dict(data.get("params"))
            return cls(
                Logistic.from_dict(data["sentence"]),
                scorer_from_dict(data["answerable"]),
                float(data.get("refuse_below", 0.5)),
                params,
                str(path),
            )
        except (OSError, ValueError, KeyError):
            return default_model()


def _unit_logistic(names: Sequence[str], weights: dict[str, float], bias: float) -> Logistic:
    return Logistic(tuple(names), tuple(weights.get(n, 0.0) for n in names), bias, tuple(0.0 for _ in names), tuple(1.0 for _ in names))


def default_model() -> AnswerModel:
    """Hand-set weights used only until `make calibrate` has written rag/data/answer_model.json."""
    sentence = _unit_logistic(
        SENTENCE_FEATURES,
        {"cov_sentence": 3.0, "cov_context": 1.5, "gram_sentence": 2.0, "semantic": 2.0, "fused_rank": 0.5,
         "quantity_match": 0.6, "unit_match": 0.6, "time_match": 0.6, "list_match": 0.4, "length": -0.3, "short": -1.0},
        -4.0,
    )
    answerable = _unit_logistic(QUESTION_FEATURES, {"best_cov_context": 4.0, "best_p": 3.0, "max_missing_idf": -0.4}, -2.0)
    return AnswerModel(sentence, answerable, 0.5, AnswerParams(), "default")


# ---------------------------------------------------------------- question terms


def question_weights(plan: QueryPlan, snapshot: KeywordIndex, text: str | None = None, params: AnswerParams | None = None) -> dict[str, float]:
    """IDF weight of each question term (of `text`, a part of the question, when given); frame words,
    single characters and the names the question scopes itself with count for less."""
    lex = lexicon()
    tokens = list(dict.fromkeys(plan.tokens))
    if text is not None:
        folded = terms_form(text)
        tokens = [t for t in tokens if t in folded]
    # Sub-tokens of a longer token (行政 in 行政处罚) would count one word twice.
    kept = [t for t in tokens if not any(t != o and t in o and snapshot.document_frequency(o) > 0 for o in tokens)] or tokens
    weights = {t: snapshot.idf(t) for t in kept}
    names = plan.scope_names()
    params = params or AnswerParams()
    for term in weights:
        if term in lex.generic_words or len(term) == 1 or re.fullmatch(r"(?:19|20)\d{2}", term):
            weights[term] *= params.frame_weight
        elif names and term in names:
            weights[term] *= params.name_weight
    return weights


def novelty(sentence: str, asked_grams: frozenset[str]) -> float:
    """The share of a sentence's character bigrams the question does not have: a sentence that only
    repeats the question (the title of the report it names) tells nothing new."""
    grams = set(char_ngrams(sentence))
    return len(grams - asked_grams) / len(grams) if grams else 0.0


def label_cue(question: str, section: str) -> bool:
    """The question asks for what a front-matter part holds (发文字号 -> 标题, 抄送 -> 落款)."""
    cues = lexicon().front_matter.get(last_heading(section)) or ()
    return any(cue in question for cue in cues)


def gram_weights(plan: QueryPlan, snapshot: KeywordIndex, params: AnswerParams | None = None) -> dict[str, float]:
    """IDF weight of each question bigram; the bigrams of the names the question scopes itself with
    (an organisation, a year, a named law) count for less, as their words do: the scope filter has
    acted on them, and within the right document they only point at its title and signature."""
    names = plan.scope_names()
    factor = (params or AnswerParams()).name_weight
    return {g: snapshot.char_idf(g) * (factor if names and g.lower() in names else 1.0) for g in plan.grams}


def short_form(term: str) -> re.Pattern[str] | None:
    """A short form's characters in order, a few apart: 人大常委会 in 人民代表大会常务委员会, 发改委 in
    发展和改革委员会 (three characters or more, all Chinese)."""
    if len(term) < 3 or not all("\u4e00" <= ch <= "\u9fff" for ch in term):
        return None
    return in_order(term, SHORT_FORM_GAP)


SHORT_FORM_GAP = 3


def term_credit(term: str, text: str) -> float:
    """1 when the term occurs; partial credit when a compound (听取意见) occurs only in parts, or the
    term is the short form of a name the text writes in full."""
    if term in text:
        return 1.0
    parts = subwords(term)
    found = sum(1 for p in parts if p in text)
    if parts and found == len(parts):
        return 0.8
    pattern = short_form(term)
    if pattern is not None and pattern.search(text):
        return 0.8
    return 0.4 * found / len(parts) if parts else 0.0


def has_synonym(term: str, text: str) -> bool:
    """A Cilin synonym of the term occurs in the text (案件 for 案子)."""
    return any(s in text for s in thesaurus().synonyms(term))


def coverage(text: str, weights: dict[str, float]) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    text = terms_form(text)
    return sum(w * term_credit(t, text) for t, w in weights.items()) / total


def gram_coverage(text: str, weights: dict[str, float]) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    text = fold_lower(text)
    return sum(w for g, w in weights.items() if g in text) / total


# A question term followed in the same clause, a few characters on, by a figure: 邮编：362600,
# 整改率95.8%, 留置时间不得超过三个月 (figures in digits, `terms_form`).
VALUE_AFTER_TERM = re.compile(r"[^，。；;,!?！？]{0,8}?\d")


def term_value(text: str, weights: dict[str, float]) -> float:
    """The weight share of the question's terms that the sentence follows with a figure: a sentence
    stating the value of what a count or time question names (a field and its value in a report)."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    form = terms_form(text)
    found = 0.0
    for term, weight in weights.items():
        if any(VALUE_AFTER_TERM.match(form, m.end()) for m in re.finditer(re.escape(term), form)):
            found += weight
    return found / total


# ---------------------------------------------------------------- sentence properties


CALENDAR_YEAR = r"(?<!\d)(?:19|20)\d{2}\s*年"  # 2024年 names a year; it counts nothing


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern[str]]:
    lex = lexicon()
    units = sorted(set(lex.count_units + lex.time_units + lex.amount_units), key=lambda u: (-len(u), u))
    alt = "|".join(re.escape(u) for u in units)
    return {
        # an ordinal (第三十八条, 第5项) is not a quantity
        "quantity": re.compile(
            rf"(?!{CALENDAR_YEAR})(?:(?<![\d第])\d{{1,3}}(?!\d)(?:\.\d+)?|(?<![\d第])\d+(?:\.\d+)?|(?<![第{CN_NUM}])[{CN_NUM}]+)\s*(?:余|多)?\s*(?:{alt})"
            rf"|[百千万]分之[{CN_NUM}\d]+"  # a share in words: 百分之三, 千分之五
            rf"|(?<![第{CN_NUM}\d])[{CN_NUM}\d]{{1,3}}分之[{CN_NUM}\d]+"  # a fraction: 三分之二, 2分之1
        ),
        "date": re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?|\d{4}-\d{1,2}-\d{1,2}"),
        "period": re.compile(rf"[{CN_NUM}\d]+\s*(?:个)?(?:工作日|日|天|个月|月|年|小时)(?:内|以内|之内|前|后|起)|之日起|期限"),
        "enumeration": re.compile(r"[^、，。,]+[、,][^、，。,]+[、,]|《[^》]+》\s*[、,]?\s*《[^》]+》"),  # A、B、… or 《A》《B》
        "modal": re.compile("|".join(re.escape(w) for w in lex.modality["obligation"] + lex.modality["permission"] + lex.modality["prohibition"] + lex.modality["negation"])),
        "name": re.compile(r"《[^》]+》|[\u4e00-\u9fff]{2,}(?:局|院|所|委员会|办公室|中心|部门|机关|政府|公司|科|股|处)"),
        "full_date": re.compile(rf"(?:\d{{4}}|[〇零一二三四五六七八九]{{4}})\s*年\s*[\d{CN_NUM}]{{1,3}}\s*月(?:\s*[\d{CN_NUM}]{{1,3}}\s*日)?|\d{{4}}-\d{{1,2}}-\d{{1,2}}"),
        "doc_number": re.compile(r"[\u4e00-\u9fff]{1,10}\s*[〔\[（(【]\s*(?:19|20)\d{2}\s*[〕\]）)】]\s*\d+\s*号"),
        # a postcode or telephone number: 362600, 0716-8126123, 5521 3360 (six or more digits, no unit needed)
        "code": re.compile(r"(?<![\d.])(?:\d{3,4}-\s*)?\d{4}\s?\d{2,4}(?![\d.])"),
    }


def _number_in(units: Sequence[str]) -> re.Pattern[str]:
    """A number followed by one of `units` (not 2024年, not 第3条)."""
    alternation = "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))
    # not the start of a longer unit of another kind: 1450人次 is no number of 人
    lex = lexicon()
    longer = {w[len(u):] for w in lex.count_units + lex.time_units for u in units if w.startswith(u) and w not in units}
    longer.discard("内")  # 二年内 is a number of years (within)
    tail = f"(?!{'|'.join(re.escape(t) for t in sorted(longer, key=len, reverse=True))})" if longer else ""
    return re.compile(rf"(?!{CALENDAR_YEAR})(?:(?<![\d第])\d+(?:\.\d+)?|(?<![第{CN_NUM}])[{CN_NUM}]+)\s*(?:余|多)?\s*(?:{alternation}){tail}")


@lru_cache(maxsize=64)
def count_pattern(unit: str) -> re.Pattern[str]:
    """A number in `unit` or a unit like it (7人 for 几名)."""
    return _number_in(lexicon().units_like(unit))


@lru_cache(maxsize=256)
def _noun_grams(question: str) -> frozenset[str]:
    noun = counted_noun(question) or ""
    return frozenset(noun[i : i + 2] for i in range(len(noun) - 1))


def count_beside_noun(plan: QueryPlan, sentence: str) -> float | None:
    """For a count question that names what it counts (多少个审计项目): the share of that noun's
    character bigrams found right beside a number in the asked unit (审计项目28个, 28个审计项目);
    None for other questions. `未发生一起复议案件` gives little of `几起行政处罚案件`."""
    unit = plan.asked_unit
    grams = _noun_grams(plan.question) if plan.is_quantity and unit else frozenset()
    if not grams or not unit:
        return None
    words = _noun_words(plan.question)
    folded = fold(sentence)
    best = 0.0
    # the noun beside a count decides, whatever its measure word (几个法制审核员: 3名; 几条线索: 3件), as in
    # `counted_beside`; whether the unit is the one asked is `unit_match`'s to say
    for m in any_count().finditer(folded):
        window = folded[max(0, m.start() - 10) : m.end() + 8]
        found = {g for g in grams if g in window}
        for word in words:  # a word of the noun said in other words (案子: 案件) counts as found
            if word not in window and has_synonym(word, window):
                found.update(word[i : i + 2] for i in range(len(word) - 1))
        best = max(best, len(found & grams) / len(grams))
    return best


@lru_cache(maxsize=256)
def _noun_words(question: str) -> tuple[str, ...]:
    """The words of what a count question counts (审计 项目), as jieba cuts them."""
    noun = counted_noun(question) or ""
    return tuple(w for w, _ in tagged_words(noun)) if noun else ()


def has_person_name(text: str) -> bool:
    """A person's name among the sentence's words: a word jieba tags as a name (nr...) of two or three
    characters (沈一帆), or a one-character surname tagged so before a given name (李 红权)."""
    tagged = tagged_words(text)
    for i, (word, flag) in enumerate(tagged):
        if not flag.startswith("nr"):
            continue
        if 2 <= len(word) <= 3:
            return True
        if len(word) == 1 and i + 1 < len(tagged) and 1 <= len(tagged[i + 1][0]) <= 2 and CJK_WORD.fullmatch(tagged[i + 1][0]):
            return True
    return False


def count_noun_missing(plan: QueryPlan, scored: Sequence[Candidate]) -> float:
    """How much of what a count question counts no candidate sentence gives beside a count (0 when
    the question names nothing after its count)."""
    shares = [count_beside_noun(plan, c.text) for c in scored]
    known = [s for s in shares if s is not None]
    return 1.0 - max(known) if known else 0.0


@lru_cache(maxsize=32)
def ordinal_pattern(unit: str) -> re.Pattern[str]:
    """An ordinal in `unit`: 第十四次, 第 571 号."""
    return re.compile(rf"第\s*[{CN_NUM}\d]+\s*{re.escape(unit)}")


@lru_cache(maxsize=1)
def any_count() -> re.Pattern[str]:
    """A number in any counting unit (5件, 十二条, 3个), the longer units first."""
    return _number_in(sorted(lexicon().count_units, key=lambda u: (-len(u), u)))


def counted_beside(plan: QueryPlan, folded: str) -> bool:
    """The noun a count question counts written right next to a count in any counting unit: the noun
    says what is counted when the unit differs (几条问题线索 ~ 移送问题线索5件, 几个项目 ~ 3项项目)."""
    noun = counted_noun(plan.question)
    if not noun:
        return False
    return any(folded[: m.start()].endswith(noun) or folded[m.end() :].startswith(noun) for m in any_count().finditer(folded))


def unit_matches(plan: QueryPlan, sentence: str) -> bool:
    """The sentence gives a number in the unit the question counts in (几名 ~ 7人), or the ordinal it
    asks for (第几次 ~ 第十四次); a table row's bare number counts too (| 其他类信息 | 5 |)."""
    if plan.asked_ordinal:
        return bool(ordinal_pattern(plan.asked_ordinal).search(fold(sentence)))
    if "|" in sentence and re.search(r"\|\s*\d+\s*\|", sentence):
        return True
    if not plan.asked_unit:
        return bool(_patterns()["quantity"].search(fold(sentence)))
    like = lexicon().units_like(plan.asked_unit)
    folded = fold(sentence)
    if plan.asked_unit in lexicon().count_units and counted_beside(plan, folded):
        return True
    # A share in words answers a share; a sum of money may be given as a share of another sum too
    # (每日按罚款数额的百分之三加处罚款), but a rate is not answered by a sum.
    if ("%" in like or "元" in like) and re.search(rf"百分之[{CN_NUM}\d]|\d(?:\.\d+)?\s*[%％]", folded):
        return True
    return bool(count_pattern(plan.asked_unit).search(folded))


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage with its features and probability."""

    hit: Hit
    rank: int
    start: int
    end: int
    text: str
    features: dict[str, float] = field(default_factory=dict)
    p: float = 0.0


def _recip(rank: int | None) -> float:
    return 0.0 if rank is None else 1.0 / (1.0 + rank)


ITEM_START = re.compile(r"\s*(?:[（(][一二三四五六七八九十]{1,3}[）)]|\d{1,2}[.．、])")
MAX_ITEMS = 8


def candidates(retrieval: Retrieval, top_passages: int) -> list[tuple[Hit, int, int, int, str]]:
    """(hit, passage rank, start, end, sentence) for every sentence of the top passages; a lead-in
    (…的种类：) followed by numbered items is one candidate with its items, as it is answered."""
    out = []
    for rank, hit in enumerate(retrieval.hits[:top_passages]):
        spans = sentence_spans(hit.text, 0, len(hit.text))
        for i, (start, end) in enumerate(spans):
            if is_lead_in(hit.text[start:end]):
                items = 0
                while i + items + 1 < len(spans) and items < MAX_ITEMS and ITEM_START.match(hit.text[spans[i + items + 1][0] : spans[i + items + 1][1]]):
                    items += 1
                if items:
                    end = spans[i + items][1]
            out.append((hit, rank, start, end, hit.text[start:end]))
    return out


def score_candidates(
    plan: QueryPlan,
    retrieval: Retrieval,
    snapshot: KeywordIndex,
    model: AnswerModel,
    top_passages: int,
    similarity: Similarity | None = None,
) -> tuple[list[Candidate], dict[str, float], dict[str, float]]:
    """Candidates sorted by probability, the question's term weights and its question-level features."""
    weights = question_weights(plan, snapshot, params=model.params)
    grams = gram_weights(plan, snapshot, model.params)
    part_weights = [question_weights(plan, snapshot, part, model.params) for part in question_parts(plan.question)]
    raw = candidates(retrieval, top_passages)
    if not raw:
        return [], weights, question_features(plan, [], retrieval, weights)
    patterns = _patterns()
    named = {form for e in plan.orgs.known for form in e.all_issuers}
    top_score = max((h.score for h in retrieval.hits), default=1.0) or 1.0
    focus = [f.lower() for f in plan.focus]
    front = {label("title"), label("header"), label("addressee"), label("trailer")}
    lex = lexicon()
    asks = {name: lex.cue(name, plan.question) for name in ("date", "period", "doc_number", "code")}
    asked_grams = frozenset(char_ngrams(plan.question))
    asked_events = events_named(plan.question) if plan.is_time else set()
    context_cov: dict[str, tuple[float, float, float, float]] = {}
    rows: list[dict[str, float]] = []
    for hit, rank, start, _end, text in raw:
        if hit.chunk_id not in context_cov:
            ctx = passage_context(hit)
            head = f"{hit.title} {hit.section}"
            context_cov[hit.chunk_id] = (coverage(ctx, weights), coverage(head, weights), gram_coverage(ctx, grams), 1.0 if any(f in fold_lower(ctx) for f in focus) else 0.0)
        cov_ctx, cov_head, gram_ctx, focus_ctx = context_cov[hit.chunk_id]
        folded = fold(text)
        signals: Signals = retrieval.signals.get(hit.chunk_id, Signals())
        heading = last_heading(hit.section)
        length = len(text)
        rows.append(
            {
                "cov_sentence": coverage(text, weights),
                "cov_context": cov_ctx,
                "cov_heading": cov_head,
                "gram_sentence": gram_coverage(text, grams),
                "gram_context": gram_ctx,
                "semantic": 0.0,
                "fused_rank": _recip(rank),
                "fused_share": hit.score / top_score,
                "word_rank": _recip(signals.word_rank),
                "char_rank": _recip(signals.char_rank),
                "dense_rank": _recip(signals.dense_rank),
                "dense_score": signals.dense_score,
                "first_in_passage": 1.0 if start == 0 else 0.0,
                "position": start / max(1, len(hit.text)),
                "length": math.log1p(length) / 5.0,
                "short": 1.0 if length < 8 else 0.0,
                "heading_like": 1.0 if heading and folded.strip("。；：: ") in fold(heading) else 0.0,
                "novelty": novelty(text, asked_grams),
                "quantity_match": float(plan.is_quantity and bool(patterns["quantity"].search(folded))),
                "unit_match": float(plan.is_quantity and unit_matches(plan, text)),
                "time_match": float(plan.is_time and bool(patterns["date"].search(folded) or patterns["period"].search(folded))),
                "date_match": float(asks["date"] and bool(patterns["full_date"].search(folded))),
                "period_match": float(asks["period"] and bool(patterns["period"].search(folded))),
                "doc_number_match": float(asks["doc_number"] and bool(patterns["doc_number"].search(text))),
                "code_match": float(asks["code"] and bool(patterns["code"].search(folded))),
                "list_match": float(plan.is_list and bool(patterns["enumeration"].search(folded))),
                "colon_lead": float(plan.is_list and is_lead_in(text)),
                "items_match": float(plan.is_list and bool(ITEMS.search(hit.text))),
                "yes_no_match": float(plan.is_yes_no and bool(patterns["modal"].search(folded))),
                "entity_match": float(plan.is_entity and bool(patterns["name"].search(folded))),
                "person_match": float(plan.is_person and has_person_name(text)),
                # when a law was adopted, amended, took effect: a date the sentence gives to that event
                "event_match": float(bool(asked_events) and any(kind in asked_events for kind, _ in dated_events(text))),
                "report_doc": float(plan.wants_report and hit.doc_type != "law"),
                "named_org_doc": float(bool(named) and hit.issuer in named),
                "year_match": float(bool(plan.years) and hit.doc_type != "law" and hit.year in plan.years),
                "front_matter": float(heading in front),
                "label_match": float(label_cue(plan.question, hit.section)),
                "part_cov": max((coverage(text, w) for w in part_weights if w), default=0.0),
                "focus_in_sentence": 1.0 if any(f in folded.lower() for f in focus) else 0.0,
                "focus_in_context": focus_ctx,
                "term_value": term_value(text, weights) if plan.is_quantity or plan.is_time else 0.0,
            }
        )
    best_cov = max(r["cov_sentence"] for r in rows)
    best_gram = max(r["gram_sentence"] for r in rows)
    for row in rows:
        row["cov_gap"] = row["cov_sentence"] - best_cov
        row["gram_gap"] = row["gram_sentence"] - best_gram
    add_semantic(semantic_question(plan), raw, rows, model, similarity)
    add_passage_gaps(raw, rows)
    scored = [Candidate(hit, rank, start, end, text, row, model.sentence.probability(row)) for (hit, rank, start, end, text), row in zip(raw, rows)]
    scored.sort(key=lambda c: -c.p)
    return scored, weights, question_features(plan, scored, retrieval, weights, similarity is not None, model.answerable.mean_of)


PASSAGE_GAPS = (("cov_sentence", "cov_passage_gap"), ("gram_sentence", "gram_passage_gap"), ("semantic", "semantic_passage_gap"))


def add_passage_gaps(raw: list, rows: list[dict[str, float]]) -> None:
    """How far each sentence falls behind the best sentence of its own passage: the passage-level
    evidence is the same for all its sentences, so these say which of them answers."""
    by_passage: dict[str, list[int]] = {}
    for i, (hit, *_rest) in enumerate(raw):
        by_passage.setdefault(hit.chunk_id, []).append(i)
    for members in by_passage.values():
        for name, gap in PASSAGE_GAPS:
            best = max(rows[i][name] for i in members)
            for i in members:
                rows[i][gap] = rows[i][name] - best


def shortlist_score(row: dict[str, float]) -> float:
    return row["cov_sentence"] + row["gram_sentence"] + row["fused_rank"]


SCOPE_YEAR = re.compile(r"(?:19|20)\d{2}\s*年度?")


def semantic_question(plan: QueryPlan, shortest: int = 4) -> str:
    """The question the encoder compares with sentences: without the names it scopes itself with (the
    laws, organisations and years retrieval already holds it to), which a sentence seldom repeats."""
    text = plan.question
    names = [n for law in plan.laws for n in (law.title, law.alias)] + [n for entry in plan.orgs.known for n in entry.names]
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        text = text.replace(name, "")
    text = SCOPE_YEAR.sub("", text).replace("《》", "").strip(" ，,：:、")
    return text if len(text) >= shortest else plan.question


def add_semantic(question: str, raw: list, rows: list[dict[str, float]], model: AnswerModel, similarity: Similarity | None) -> None:
    """The encoder's similarity for a shortlist of sentences (the encoder is the slow part): those
    that cover most of the question's words and bigrams in the best-ranked passages — a fixed order,
    not the fitted model's, so that `make calibrate` gives the same model when run again —; its gap to
    the best and its rank among them; the rest get the shortlist's median and no rank."""
    if similarity is None:  # no encoder: the values the model saw on average, so they neither help nor hurt
        for row in rows:
            for name in ("semantic", "semantic_gap", "semantic_rank"):
                row[name] = model.sentence.mean_of(name)
        return
    neutral = model.sentence.mean_of("semantic")
    first = sorted(range(len(rows)), key=lambda i: (-shortlist_score(rows[i]), i))[: model.params.semantic_shortlist]
    sims = [float(s) for s in similarity(question, [raw[i][4] for i in first])]
    best = max(sims, default=neutral)
    middle = float(sorted(sims)[len(sims) // 2]) if sims else neutral
    for row in rows:
        row["semantic"], row["semantic_gap"], row["semantic_rank"] = middle, middle - best, 0.0
    order = sorted(range(len(sims)), key=lambda j: (-sims[j], j))
    for rank, j in enumerate(order):
        rows[first[j]].update(semantic=sims[j], semantic_gap=sims[j] - best, semantic_rank=1.0 / (1.0 + rank))


def question_features(
    plan: QueryPlan,
    scored: list[Candidate],
    retrieval: Retrieval,
    weights: dict[str, float],
    semantic: bool = True,
    answerable_mean=lambda name: 0.0,
) -> dict[str, float]:
    """Evidence that the documents answer the question at all."""
    hits = retrieval.hits[:6]
    contexts = [terms_form(passage_context(h)) for h in hits]
    total = sum(weights.values()) or 1.0
    missing = {t: w for t, w in weights.items() if not any(t in c for c in contexts)}
    word_top = [cid for cid, s in sorted(retrieval.signals.items(), key=lambda kv: kv[1].word_rank if kv[1].word_rank is not None else 1e9)[:5] if retrieval.signals[cid].word_rank is not None]
    dense_top = [cid for cid, s in sorted(retrieval.signals.items(), key=lambda kv: kv[1].dense_rank if kv[1].dense_rank is not None else 1e9)[:5] if retrieval.signals[cid].dense_rank is not None]
    best = scored[0] if scored else None
    second = scored[1].p if len(scored) > 1 else 0.0
    focus = [f.lower() for f in plan.focus]
    return {
        "best_p": best.p if best else 0.0,
        "second_p": second,
        "margin": (best.p - second) if best else 0.0,
        "best_cov_context": max((c.features["cov_context"] for c in scored), default=0.0),
        "best_cov_sentence": max((c.features["cov_sentence"] for c in scored), default=0.0),
        "best_gram_sentence": max((c.features["gram_sentence"] for c in scored), default=0.0),
        "best_semantic": max((c.features["semantic"] for c in scored), default=0.0) if semantic else answerable_mean("best_semantic"),
        "top_fused": hits[0].score if hits else 0.0,
        "sides_agree": float(bool(word_top) and bool(dense_top) and word_top[0] == dense_top[0]),
        "top5_overlap": len(set(word_top) & set(dense_top)) / 5.0,
        "missing_mass": sum(missing.values()) / total,
        "max_missing_idf": max(missing.values(), default=0.0),
        "focus_missing": float(bool(focus) and not any(f in c for f in focus for c in contexts)),
        "n_terms": math.log1p(len(weights)),
        "is_quantity": float(plan.is_quantity),
        "is_list": float(plan.is_list),
        "is_yes_no": float(plan.is_yes_no),
        "wants_report": float(plan.wants_report),
        "best_shape_match": shape_match(best.features) if best else 0.0,
        "count_noun_missing": count_noun_missing(plan, scored),
        "person_missing": float(plan.is_person and not (best is not None and has_person_name(best.text))),
    }
