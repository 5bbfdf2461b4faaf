"""Hybrid search: query understanding, jieba/bm25s + Chroma fused by weighted RRF, article look-up, filters."""

from __future__ import annotations

import math
import re
import time
import unicodedata
from dataclasses import dataclass, field, replace
from functools import lru_cache

import cn2an
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever

from rag.config import Settings
from rag.index import Index
from rag.keyword_index import KeywordIndex, is_question_word, query_tokens
from rag.loaders import CN_NUM
from rag.schema import DocRecord, Hit
from rag.structure import chinese_number

ARTICLE_REF = re.compile(rf"第\s*([{CN_NUM}\d]+)\s*条")
YEAR_REF = re.compile(r"((?:19|20)\d{2})\s*年")
REPORT_HINTS = ("我局", "本局", "我单位", "审计局", "报告", "我们局", "局里", "全局", "全年", "今年", "去年", "本年度")
# Counting things done (多少条信息, 几名律师) is what reports state; laws rarely count.
REPORT_COUNT = re.compile(r"(多少|几)(项|条|名|人|次|部|个|件|位)")
KIND_CUES = re.compile(r"几种|几类|哪些种类|哪几类|哪些类")
# Short forms people use that are not a plain suffix of the title.
EXTRA_ALIASES = {
    "政务处分法": "公职人员政务处分法",
    "信息公开条例": "政府信息公开条例",
    "政府信息公开条例": "政府信息公开条例",
    "重大行政决策条例": "重大行政决策程序暂行条例",
    "营商环境条例": "优化营商环境条例",
    "普法法": "法治宣传教育法",
    "行政复议条例": "行政复议法实施条例",
    "国有资产管理条例": "行政事业性国有资产管理条例",
    "移送规定": "行政执法机关移送涉嫌犯罪案件的规定",
    "财政违法处罚条例": "财政违法行为处罚处分条例",
}

# Fusion weights, tuned on eval/ and the dev set (see eval/results): the keyword side is
# stronger on exact Chinese terms than the default multilingual USE model.
KEYWORD_WEIGHT = 0.7
DENSE_WEIGHT = 0.3
RRF_K = 20
REPORT_HINT_BOOST = 1.3
CANDIDATES = 40


def normalize_question(text: str) -> str:
    """Traditional -> Simplified, full-width digits and letters -> half-width, whitespace squeezed."""
    text = to_simplified(text)
    text = "".join(unicodedata.normalize("NFKC", ch) if ch.isalnum() else ch for ch in text)
    return re.sub(r"\s+", " ", text).strip()


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def article_label(number: int) -> str:
    return f"第{cn2an.an2cn(number)}条"


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

    def __iter__(self):
        return iter(self.aliases)


def build_aliases(records: list[DocRecord]) -> LawCatalog:
    """Full title, title without 中华人民共和国, and known short forms, longest first.

    The pattern is one alternation, longest name first, so each position takes its longest name."""
    aliases: list[LawAlias] = []
    for r in records:
        if r.doc_type != "law" or not r.title:
            continue
        names = {r.title, re.sub(r"^中华人民共和国", "", r.title)}
        for short, suffix in EXTRA_ALIASES.items():
            if r.title.endswith(suffix):
                names.add(short)
        aliases.extend(LawAlias(n, r.source, r.title) for n in names if len(n) >= 2)
    aliases.sort(key=lambda a: -len(a.alias))
    by_name: dict[str, list[LawAlias]] = {}
    for alias in aliases:
        by_name.setdefault(alias.alias, []).append(alias)
    pattern = re.compile("|".join(re.escape(name) for name in by_name)) if by_name else None
    return LawCatalog(tuple(aliases), pattern, {k: tuple(v) for k, v in by_name.items()})


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


@dataclass(frozen=True)
class QueryPlan:
    """What the question asks for, as far as the words show."""

    question: str
    tokens: tuple[str, ...]
    laws: tuple[LawAlias, ...] = ()
    articles: tuple[int, ...] = ()
    years: tuple[int, ...] = ()
    wants_report: bool = False
    is_list: bool = False
    is_quantity: bool = False
    is_time: bool = False
    is_yes_no: bool = False
    focus: tuple[str, ...] = ()
    notices: tuple[str, ...] = field(default_factory=tuple)


# Generic nouns of a question frame: they say what kind of answer is wanted, not what it is about.
FRAME_WORDS = frozenset(
    "要求 规定 内容 情况 方式 方面 措施 办法 问题 工作 数量 开始 具体 主要 相关 有关 哪些 什么 方法 做法 途径 说 讲 "
    "时候 时间 名称 全称 处理 结果 关系 包括 包含 方面 全年 今年 去年 本年度 报告 我局 本局 审计局 年".split()
)
ASK_WORDS = re.compile(r"^(多少|几|什么|哪|谁|何|怎|如何|是否|有没有|多久|多长|多大)")
FOCUS_SKIP = frozenset("是 有 为 的 了 共 一共 总共 样 么 吗 呢 在 到 给 对 向 以 等 名 项 条 个 位 部 次 种 类 年 天 日 人".split())
TIME_CUES = re.compile(r"什么时候|何时|哪一天|哪天|哪年|几月|日期|哪一年|什么时间")
YES_NO_CUES = re.compile(r"是否|有没有|要不要|能不能|可不可以|可否|能否|吗[？?]?$")
LIST_CUES = re.compile(r"哪些|哪几|有什么|包括|包含|种类|几种|几类|分别|列举|方面")
QUANTITY_CUES = re.compile(r"多少|(?<!哪)几[项条个名人部次天日年月位]|多久|多长|比例|比率|几天|几日|上限|下限|期限")


def question_focus(question: str) -> tuple[str, ...]:
    """The content word a question word asks about: the noun after it (多少名在编人员), else before it (工资是多少)."""
    from rag.keyword_index import STOPWORDS, is_noun, tagged_words

    tagged = tagged_words(question)
    words = [w for w, _ in tagged if re.search(r"[\w\u4e00-\u9fff]", w)]
    nouns = {w for w, flag in tagged if is_noun(flag)}

    def content(w: str) -> bool:
        return (
            w in nouns
            and w not in FOCUS_SKIP
            and w not in STOPWORDS
            and w not in FRAME_WORDS
            and not is_question_word(w)
            and not ASK_WORDS.match(w)
        )

    for i, word in enumerate(words):
        if not (ASK_WORDS.match(word) or is_question_word(word)):
            continue
        after = next((w for w in words[i + 1 : i + 4] if content(w)), None)
        if after and not any(ASK_WORDS.match(w) for w in words[i + 1 : words.index(after, i + 1)]):
            return (after,)
        before = next((w for w in reversed(words[max(0, i - 3) : i]) if content(w)), None)
        if before:
            return (before,)
    return ()


def analyze_query(question: str, aliases: LawCatalog) -> QueryPlan:
    laws = tuple(find_laws(question, aliases))
    articles = tuple(n for n in (chinese_number(m.group(1)) for m in ARTICLE_REF.finditer(question)) if n)
    years = tuple(int(y) for y in YEAR_REF.findall(question))
    tokens = query_tokens(question)
    if KIND_CUES.search(question) and "种类" not in tokens:
        tokens.append("种类")
    return QueryPlan(
        question=question,
        tokens=tuple(tokens),
        focus=question_focus(question),
        laws=laws,
        articles=articles,
        years=years,
        wants_report=(any(h in question for h in REPORT_HINTS) or bool(REPORT_COUNT.search(question))) and not laws,
        is_list=bool(LIST_CUES.search(question)),
        is_quantity=bool(QUANTITY_CUES.search(question)),
        is_time=bool(TIME_CUES.search(question)),
        is_yes_no=bool(YES_NO_CUES.search(question)),
    )


@dataclass(frozen=True)
class Retrieval:
    plan: QueryPlan
    hits: tuple[Hit, ...]
    article_hits: tuple[Hit, ...] = ()
    missing_articles: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)


def build_where(doc_type: str | None = None, source: str | list[str] | None = None, year: int | None = None) -> dict | None:
    clauses: list[dict] = []
    if doc_type:
        clauses.append({"doc_type": doc_type})
    if source:
        clauses.append({"source": {"$in": list(source)}} if isinstance(source, (list, tuple)) else {"source": source})
    if year:
        clauses.append({"year": year})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def fuse(ranked_lists: list[tuple[list[Hit], float]], k: int = RRF_K) -> list[Hit]:
    """Weighted reciprocal-rank fusion; the fused score replaces each hit's score."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for hits, weight in ranked_lists:
        for rank, hit in enumerate(hits):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + weight / (k + rank + 1)
            first.setdefault(hit.chunk_id, hit)
    return [replace(first[cid], score=s) for cid, s in sorted(scores.items(), key=lambda kv: -kv[1])]


class HybridRetriever:
    """Keyword + dense retrieval over one Index, with article look-up and an optional reranker."""

    def __init__(self, index: Index, settings: Settings | None = None) -> None:
        self.index = index
        self.settings = settings or index.settings
        self._aliases: tuple[str, LawCatalog] | None = None
        self._reranker = None

    # ------------------------------------------------------------ catalog

    def aliases(self) -> LawCatalog:
        keyword = self.index.keyword()
        if self._aliases is None or self._aliases[0] != keyword.generation:
            self._aliases = (keyword.generation, build_aliases(self.index.documents()))
        return self._aliases[1]

    def plan(self, question: str) -> QueryPlan:
        return analyze_query(normalize_question(question), self.aliases())

    # ------------------------------------------------------------ search

    def article_lookup(self, keyword: KeywordIndex, plan: QueryPlan, sources: list[str]) -> tuple[list[Hit], list[str]]:
        hits: list[Hit] = []
        missing: list[str] = []
        for source in sources:
            for number in plan.articles:
                found = keyword.article(source, number)
                if found:
                    hits.extend(replace(h, score=1.0) for h in found)
                else:
                    missing.append(f"{source}:{article_label(number)}")
        return hits, missing

    def search(
        self,
        question: str | QueryPlan,
        k: int = 8,
        doc_type: str | None = None,
        source: str | None = None,
        year: int | None = None,
    ) -> Retrieval:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        plan = question if isinstance(question, QueryPlan) else self.plan(question)
        keyword = self.index.keyword()
        timings["plan"] = (time.perf_counter() - t0) * 1000

        law_sources = [law.source for law in plan.laws]
        if source:
            law_sources = [source]
        article_hits: list[Hit] = []
        missing: list[str] = []
        if plan.articles and law_sources:
            article_hits, missing = self.article_lookup(keyword, plan, law_sources)

        where = build_where(doc_type, source or (law_sources or None), year)
        t1 = time.perf_counter()
        kw_hits = keyword.search(list(plan.tokens), CANDIDATES, where)
        timings["keyword"] = (time.perf_counter() - t1) * 1000
        t2 = time.perf_counter()
        vector = self.index.embeddings.embed_query(plan.question)
        dense_hits = self.index.store.dense_search(vector, CANDIDATES, where) if keyword.ids else []
        timings["dense"] = (time.perf_counter() - t2) * 1000
        if where is not None and law_sources and not source and not kw_hits and not dense_hits:
            where = build_where(doc_type, None, year)
            kw_hits = keyword.search(list(plan.tokens), CANDIDATES, where)
            dense_hits = self.index.store.dense_search(vector, CANDIDATES, where)

        fused = fuse([(kw_hits, KEYWORD_WEIGHT), (dense_hits, DENSE_WEIGHT)])
        fused = self._apply_hints(fused, plan)
        if article_hits:
            ids = {h.chunk_id for h in article_hits}
            top = max((h.score for h in fused), default=1.0) * 2
            fused = [replace(h, score=top) for h in article_hits] + [h for h in fused if h.chunk_id not in ids]
        if self.settings.reranker:
            t3 = time.perf_counter()
            fused = self.rerank(plan.question, fused[: max(k * 3, 20)], keep_first=len(article_hits))
            timings["rerank"] = (time.perf_counter() - t3) * 1000
        timings["retrieve_total"] = (time.perf_counter() - t0) * 1000
        return Retrieval(plan, tuple(fused[:k]), tuple(article_hits), tuple(missing), timings)

    def _apply_hints(self, hits: list[Hit], plan: QueryPlan) -> list[Hit]:
        if not hits:
            return hits
        boosted: list[Hit] = []
        for hit in hits:
            factor = 1.0
            if plan.wants_report and hit.doc_type == "report":
                factor *= REPORT_HINT_BOOST
            if plan.years and hit.doc_type == "report" and hit.year in plan.years:
                factor *= REPORT_HINT_BOOST
            boosted.append(replace(hit, score=hit.score * factor) if factor != 1.0 else hit)
        return sorted(boosted, key=lambda h: -h.score)

    def rerank(self, question: str, hits: list[Hit], keep_first: int = 0) -> list[Hit]:
        """Reorder by a sentence-transformers CrossEncoder (RAG_RERANKER); article look-ups stay first."""
        if self._reranker is None:
            try:
                from sentence_transformers import CrossEncoder
            except ImportError as exc:
                raise RuntimeError("重排序需要安装可选依赖：pip install 'fagui-rag[st]'") from exc
            self._reranker = CrossEncoder(self.settings.reranker, device="cpu")
        head, tail = hits[:keep_first], hits[keep_first:]
        if not tail:
            return hits
        scores = self._reranker.predict([(question, h.text) for h in tail])
        ranked = sorted(zip(tail, scores), key=lambda pair: -float(pair[1]))
        return head + [replace(h, score=float(s)) for h, s in ranked]

    # ------------------------------------------------------------ LangChain

    def as_langchain(self, k: int = 6, **filters) -> BaseRetriever:
        return LangChainHybridRetriever(hybrid=self, k=k, filters=filters)


class LangChainHybridRetriever(BaseRetriever):
    """The hybrid retriever behind LangChain's retriever interface."""

    hybrid: object
    k: int = 6
    filters: dict = {}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        result = self.hybrid.search(query, k=self.k, **self.filters)
        return [
            LCDocument(
                page_content=h.text,
                metadata={
                    "id": h.chunk_id,
                    "source": h.source,
                    "title": h.title,
                    "section": h.section,
                    "article": h.article,
                    "doc_type": h.doc_type,
                    "year": h.year,
                    "score": h.score,
                },
            )
            for h in result.hits
        ]


def idf_weights(keyword: KeywordIndex, tokens: list[str]) -> dict[str, float]:
    """IDF of each token in the keyword index; a token the corpus never uses gets the highest weight."""
    n = max(1, len(keyword.ids))
    weights: dict[str, float] = {}
    for token in tokens:
        df = keyword.document_frequency(token)
        weights[token] = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return weights
