"""Hybrid search over one snapshot: words (jieba/bm25s), character bigrams (bm25s), passage vectors and
sentence vectors (`rag.sentence_search`), fused by
weighted reciprocal rank; article look-up; filters by type, source, year and the organisations a
question names. The fusion weights are data (`rag/data/retrieval_params.json`)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rag.citations import events_named
from rag.config import Settings
from rag.expansion import WordExpansion
from rag.index import Index
from rag.keyword_index import KeywordIndex
from rag.lexicon import label, lexicon
from rag.orgs import OrgCatalog, build_org_catalog
from rag.params import RetrievalParams
from rag.passage_rank import Hints, PassageRanker
from rag.query import LawCatalog, QueryPlan, analyze_query, build_law_catalog
from rag.schema import Hit
from rag.sentence_search import SentenceMatrix, VectorSource, build_matrix
from rag.sentence_search import search as search_sentences
from rag.text import article_label, normalize_question


@dataclass(frozen=True)
class Signals:
    """How one chunk ranked on each side (0-based; None: not retrieved by that side)."""

    word_rank: int | None = None
    char_rank: int | None = None
    dense_rank: int | None = None
    dense_score: float = 0.0
    word_score: float = 0.0


@dataclass(frozen=True)
class Retrieval:
    plan: QueryPlan
    hits: tuple[Hit, ...]
    article_hits: tuple[Hit, ...] = ()
    missing_articles: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    signals: dict[str, Signals] = field(default_factory=dict)
    snapshot: KeywordIndex | None = None
    scoped_to: tuple[str, ...] = ()  # issuers the search was limited to
    sides: tuple[tuple[Hit, ...], ...] = ()  # the word, character and vector rankings before fusion
    sentence_hits: tuple[Hit, ...] = ()  # the sentence-level semantic ranking (empty without a sentence encoder)
    where: dict | None = None  # the filter the sides were searched under (type, source, year, organisations)


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


def and_where(a: dict | None, b: dict | None) -> dict | None:
    if a is None:
        return b
    if b is None:
        return a
    return {"$and": [a, b]}


def fuse(ranked_lists: list[tuple[list[Hit], float]], k: int = 20) -> list[Hit]:
    """Weighted reciprocal-rank fusion; the fused score replaces each hit's score."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for hits, weight in ranked_lists:
        for rank, hit in enumerate(hits):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + weight / (k + rank + 1)
            first.setdefault(hit.chunk_id, hit)
    return [first[cid].with_score(s) for cid, s in sorted(scores.items(), key=lambda kv: -kv[1])]


class HybridRetriever:
    """Word, character and vector retrieval over one Index, with article look-up and an optional reranker."""

    def __init__(
        self,
        index: Index,
        settings: Settings,
        params: RetrievalParams | None = None,
        reranker: Callable[[], object] | None = None,
        sentences: VectorSource | None = None,
    ) -> None:
        self.index = index
        self._sentences = sentences
        self._matrix: SentenceMatrix | None = None
        self._matrix_lock = threading.Lock()
        self.settings = settings
        self.params = params or RetrievalParams.load(settings.retrieval.params_file)
        self.ranker = PassageRanker.load(settings.retrieval.params_file) if settings.retrieval.passage_ranker == "on" else None
        self.expansion = WordExpansion.load(settings.retrieval.expansion_file) if settings.retrieval.expansion == "on" else None
        self._reranker_factory = reranker
        self._reranker: Any = None
        self._catalogs: dict[tuple[str, str | None], tuple[LawCatalog, OrgCatalog]] = {}
        self._lock = threading.Lock()
        self._query_vectors: OrderedDict[str, list[float]] = OrderedDict()

    # ------------------------------------------------------------ catalogs, keyed to the generation

    def catalogs(self, snapshot: KeywordIndex | None = None, org: str | None = None) -> tuple[LawCatalog, OrgCatalog]:
        """Law names and organisations of one generation; `org` (the user's own) defaults to RAG_ORG."""
        snapshot = snapshot or self.index.snapshot()
        own = org or self.settings.answer.org
        key = (snapshot.generation, own)
        cached = self._catalogs.get(key)
        if cached is None:
            laws = build_law_catalog(snapshot.records, snapshot.aliases)
            cached = (laws, build_org_catalog(snapshot.records, own))
            fresh = {k: v for k, v in self._catalogs.items() if k[0] == snapshot.generation}
            fresh[key] = cached
            self._catalogs = fresh  # one assignment: readers see the old or the new dict, never half
        return cached

    def aliases(self) -> LawCatalog:
        return self.catalogs()[0]

    def orgs(self) -> OrgCatalog:
        return self.catalogs()[1]

    def plan(self, question: str, snapshot: KeywordIndex | None = None, org: str | None = None) -> QueryPlan:
        laws, orgs = self.catalogs(snapshot, org)
        return analyze_query(normalize_question(question), laws, orgs)

    def embed_query(self, text: str) -> list[float]:
        """The query vector, remembered for repeated questions."""
        with self._lock:
            cached = self._query_vectors.get(text)
            if cached is not None:
                self._query_vectors.move_to_end(text)
                return cached
        vector = self.index.embeddings.embed_query(text)
        with self._lock:
            self._query_vectors[text] = vector
            while len(self._query_vectors) > 2048:
                self._query_vectors.popitem(last=False)
        return vector

    # ------------------------------------------------------------ sentence vectors, keyed to the generation

    def sentence_matrix(self, snapshot: KeywordIndex | None = None, progress: Callable[[int, int], None] | None = None) -> SentenceMatrix | None:
        """The sentence vectors of the snapshot's generation (built once per generation; only sentences
        not in the encoder's cache are encoded). None without a sentence encoder."""
        if self._sentences is None:
            return None
        snapshot = snapshot or self.index.snapshot()
        current = self._matrix
        if current is not None and current.generation == snapshot.generation:
            return current
        with self._matrix_lock:  # one build at a time; the others wait for it
            current = self._matrix
            if current is None or current.generation != snapshot.generation:
                current = build_matrix(snapshot, self._sentences, progress)
                self._matrix = current
        return current

    def warm_sentences(self, show_bar: bool = True, progress: Callable[[int, int], None] | None = None) -> int:
        """Encode the sentences of the current snapshot now (after an ingest) rather than at the first
        question; a progress bar in the terminal. Returns the number of sentences."""
        if self._sentences is None or self.params.sentence_weight <= 0:
            return 0
        from tqdm import tqdm

        with tqdm(desc="句子向量", unit="句", disable=not show_bar, dynamic_ncols=True) as bar:

            def step(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)
                if progress:
                    progress(done, total)

            matrix = self.sentence_matrix(progress=step)
        return len(matrix.rows) if matrix is not None else 0

    @property
    def reads_sentences(self) -> bool:
        """The search encodes the question with the sentence encoder (the sentence side is on)."""
        return self._sentences is not None and self.params.sentence_weight > 0

    @property
    def encoders(self) -> str:
        """The encoders behind the vector sides (passage vectors; sentence vectors when that side is on)."""
        embedding = self.settings.embedding
        dense = f"{embedding.mode}:{embedding.model}" if embedding.model else embedding.mode
        return f"{dense}+sentences:{self.settings.answer.semantic}" if self.reads_sentences else dense

    def sentence_search(self, snapshot: KeywordIndex, question: str, k: int, where: dict | None) -> list[Hit]:
        if self._sentences is None or not self.reads_sentences or not snapshot.ids:
            return []
        matrix = self.sentence_matrix(snapshot)
        if matrix is None:
            return []
        return search_sentences(matrix, snapshot, self._sentences.query_vector(question), k, where)

    # ------------------------------------------------------------ search

    def article_lookup(self, snapshot: KeywordIndex, plan: QueryPlan, sources: list[str]) -> tuple[list[Hit], list[str]]:
        hits: list[Hit] = []
        missing: list[str] = []
        for source in sources:
            for number in plan.articles:
                found = snapshot.article(source, number)
                if found:
                    hits.extend(replace(h, score=1.0) for h in found)
                else:
                    missing.append(f"{source}:{article_label(number)}")
        return hits, missing

    def org_scope(self, plan: QueryPlan) -> tuple[dict | None, tuple[str, ...]]:
        """Dated documents of the organisations the question names (laws stay available)."""
        mention = plan.orgs
        if not mention.known or (mention.unknown and mention.by_place):
            return None, ()
        issuers = tuple(e.issuer for e in mention.known)
        forms = sorted({form for e in mention.known for form in e.all_issuers})
        return {"$or": [{"doc_type": "law"}, {"issuer": {"$in": forms}}]}, issuers

    def search(
        self,
        question: str | QueryPlan,
        k: int = 8,
        doc_type: str | None = None,
        source: str | None = None,
        year: int | None = None,
        scope_orgs: bool = True,
        org: str | None = None,
        on_plan: Callable[[QueryPlan, KeywordIndex], None] | None = None,
    ) -> Retrieval:
        """`on_plan` is called with the question's plan before the search (to start work that
        needs only the plan, such as encoding what the answer will compare sentences with)."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        snapshot = self.index.snapshot()
        plan = question if isinstance(question, QueryPlan) else self.plan(question, snapshot, org)
        if on_plan is not None:
            on_plan(plan, snapshot)
        timings["plan"] = (time.perf_counter() - t0) * 1000
        params = self.params
        candidates = self.settings.retrieval.candidates

        law_sources = [law.source for law in plan.laws]
        if source:
            law_sources = [source]
        article_hits: list[Hit] = []
        missing: list[str] = []
        if plan.articles and law_sources:
            article_hits, missing = self.article_lookup(snapshot, plan, law_sources)

        scope, scoped_to = self.org_scope(plan) if scope_orgs and not source else (None, ())
        base = build_where(doc_type, source, year)
        where = and_where(base, scope)

        t1 = time.perf_counter()
        word_weights, char_weights = self.scope_weights(plan, params)
        word_hits = self.word_search(snapshot, plan, candidates, where, word_weights, self.expansion)
        char_hits = snapshot.search_chars(list(plan.grams), candidates, where, char_weights)
        timings["keyword"] = (time.perf_counter() - t1) * 1000
        t2 = time.perf_counter()
        dense_hits: list[Hit] = []
        if snapshot.ids:
            vector = self.embed_query(plan.question)
            dense_hits = self.index.dense_search(snapshot, vector, candidates, where)
        timings["dense"] = (time.perf_counter() - t2) * 1000
        t3 = time.perf_counter()
        sentence_hits = self.sentence_search(snapshot, plan.question, candidates, where)
        timings["sentences"] = (time.perf_counter() - t3) * 1000

        signals = self._signals(word_hits, char_hits, dense_hits)
        sides = (word_hits, char_hits, dense_hits)
        fused = self.fused_candidates(snapshot, plan, sides, article_hits, params, sentence_hits, k)
        if self.ranker is not None and self.ranker.encoders == self.encoders:
            t4 = time.perf_counter()
            fused = self.ranker.order(fused, plan, sides, sentence_hits, {h.chunk_id for h in article_hits})
            timings["rank"] = (time.perf_counter() - t4) * 1000
        if self._reranker_factory is not None:
            t3 = time.perf_counter()
            fused = self.rerank(plan.question, fused[: max(k * 3, 20)], keep_first=len(article_hits))
            timings["rerank"] = (time.perf_counter() - t3) * 1000
        timings["retrieve_total"] = (time.perf_counter() - t0) * 1000
        return Retrieval(
            plan, tuple(fused[:k]), tuple(article_hits), tuple(missing), timings, signals, snapshot, scoped_to,
            sides=(tuple(word_hits), tuple(char_hits), tuple(dense_hits)),
            sentence_hits=tuple(sentence_hits),
            where=where,
        )

    @staticmethod
    def word_search(
        snapshot: KeywordIndex, plan: QueryPlan, k: int, where: dict | None, weights: dict[str, float], expansion: WordExpansion | None
    ) -> list[Hit]:
        """The word side: the question's words (`weights`: those of `scope_weights`), and the passage words
        the learned table adds for them (rag/expansion.py), each with its keyword weight."""
        tokens = list(plan.tokens)
        extra = expansion.extra(tokens) if expansion is not None else {}
        if extra:
            weights = {**weights, **extra}
            tokens += list(extra)
        return snapshot.search(tokens, k, where, weights)

    @staticmethod
    def scope_weights(plan: QueryPlan, params: RetrievalParams) -> tuple[dict[str, float], dict[str, float]]:
        """Keyword weights of the question's words and bigrams that only name its scope (an organisation,
        a year, a named law): the scope filter and the boosts act on those already, and short parts
        (落款, 抬头) full of the organisation's name would otherwise outrank the content."""
        if params.scope_weight == 1.0:
            return {}, {}
        names = plan.scope_names()
        if not names:
            return {}, {}
        words = {t: params.scope_weight for t in plan.tokens if len(t) > 1 and t.lower() in names}
        grams = {g: params.scope_weight for g in plan.grams if g.lower() in names}
        return words, grams

    def combine(
        self,
        plan: QueryPlan,
        word_hits: list[Hit],
        char_hits: list[Hit],
        dense_hits: list[Hit],
        article_hits: list[Hit],
        params: RetrievalParams,
        sentence_hits: Sequence[Hit] = (),
    ) -> list[Hit]:
        """The fused ranking of the sides (words, characters, passage vectors, sentence vectors) with the
        question's hints; looked-up articles first."""
        sides = [(word_hits, params.word_weight), (char_hits, params.char_weight), (dense_hits, params.dense_weight)]
        if sentence_hits and params.sentence_weight > 0:
            sides.append((list(sentence_hits), params.sentence_weight))
        fused = fuse(sides, k=params.rrf_k)
        fused = self._apply_hints(fused, plan, params)
        if article_hits:
            ids = {h.chunk_id for h in article_hits}
            top = max((h.score for h in fused), default=1.0) * 2
            fused = [h.with_score(top) for h in article_hits] + [h for h in fused if h.chunk_id not in ids]
        return fused

    def fused_candidates(
        self,
        snapshot: KeywordIndex,
        plan: QueryPlan,
        sides: Sequence[Sequence[Hit]],
        article_hits: Sequence[Hit],
        params: RetrievalParams,
        sentence_hits: Sequence[Hit],
        k: int,
    ) -> list[Hit]:
        """The fused ranking with the documents' front matter a question asks for: what the passage
        ranker reorders (and eval/tune_retrieval.py fits it on)."""
        words, chars, dense = sides
        fused = self.combine(plan, list(words), list(chars), list(dense), list(article_hits), params, sentence_hits)
        return self.add_front_matter(snapshot, plan, fused, k)

    def add_front_matter(self, snapshot: KeywordIndex, plan: QueryPlan, fused: list[Hit], k: int) -> list[Hit]:
        """A question about a title, a document number, a signature, a date or 抄送 also gets the
        matching part (标题, 落款 ...) of the documents ranked first: short parts rank low on words."""
        wanted = {part for part, cues in lexicon().front_matter.items() if any(cue in plan.question for cue in cues)}
        law_events = plan.is_time and bool(events_named(plan.question))
        if law_events:  # when a law was adopted, amended or took effect: the dates under its title (题注)
            wanted.add(label("law_preamble"))
        if not wanted:
            return fused
        sources: list[str] = []
        if law_events and plan.laws:
            sources = list(dict.fromkeys(law.source for law in plan.laws))  # the laws it names, no other
        else:
            for hit in fused:
                if (hit.doc_type != "law" or law_events) and hit.source not in sources:
                    sources.append(hit.source)
                if len(sources) >= self.params.front_matter_documents:
                    break
        if not sources and plan.wants_report:  # the report the question means ranked low: the organisation's own, or the newest
            named = {form for e in plan.orgs.known for form in e.all_issuers}
            dated = sorted((r for r in snapshot.records if r.doc_type != "law"), key=lambda r: (r.issuer in named, r.year or 0), reverse=True)
            sources = [r.source for r in dated[: self.params.front_matter_documents]]
        parts = [
            snapshot.hit(row, fused[0].score if fused else 1.0)
            for source in sources
            for row in snapshot.rows_of(source)
            if snapshot.metadatas[row].get("section") in wanted
        ]
        if not parts:
            return fused
        # The parts go right after the first passages; one already there stays, one ranked lower moves up.
        # Within the passages whose sentences are the answer's candidates when the question is about these
        # documents (a document ranks first, or a law's dates are asked); else after them.
        about = law_events or (bool(fused) and fused[0].doc_type != "law")
        keep = max(1, (min(k, self.settings.answer.top_passages) if about else k) - len(parts))
        head = fused[:keep]
        present = {h.chunk_id for h in head}
        extra = [p for p in parts if p.chunk_id not in present]
        if not extra:
            return fused
        moved = {e.chunk_id for e in extra}
        return head + extra + [h for h in fused[keep:] if h.chunk_id not in moved]

    @staticmethod
    def _signals(word_hits: list[Hit], char_hits: list[Hit], dense_hits: list[Hit]) -> dict[str, Signals]:
        out: dict[str, Signals] = {}
        for rank, hit in enumerate(word_hits):
            out[hit.chunk_id] = Signals(word_rank=rank, word_score=hit.score)
        for rank, hit in enumerate(char_hits):
            out[hit.chunk_id] = replace(out.get(hit.chunk_id, Signals()), char_rank=rank)
        for rank, hit in enumerate(dense_hits):
            out[hit.chunk_id] = replace(out.get(hit.chunk_id, Signals()), dense_rank=rank, dense_score=hit.score)
        return out

    def _apply_hints(self, hits: list[Hit], plan: QueryPlan, params: RetrievalParams | None = None) -> list[Hit]:
        if not hits:
            return hits
        params = params or self.params
        hints = Hints.of(plan)
        boosts = {
            "named_law": params.law_boost, "report": params.report_boost, "year_match": params.year_boost,
            "unit_match": params.quantity_boost, "period_match": params.period_boost,
        }
        active = [name for name, boost in boosts.items() if boost != 1.0]
        if not active:
            return hits
        boosted: list[Hit] = []
        for hit in hits:
            factor = 1.0
            for name, on in hints.flags(hit, active).items():
                if on:
                    factor *= boosts[name]
            boosted.append(hit.with_score(hit.score * factor) if factor != 1.0 else hit)
        return sorted(boosted, key=lambda h: -h.score)

    def rerank(self, question: str, hits: list[Hit], keep_first: int = 0) -> list[Hit]:
        """Reorder by a cross-encoder (RAG_RERANKER); article look-ups stay first."""
        if self._reranker is None:
            if self._reranker_factory is None:
                return hits
            self._reranker = self._reranker_factory()
        head, tail = hits[:keep_first], hits[keep_first:]
        if not tail:
            return hits
        scores = self._reranker.predict([(question, h.text) for h in tail])
        ranked = sorted(zip(tail, scores), key=lambda pair: -float(pair[1]))
        return head + [replace(h, score=float(s)) for h, s in ranked]

    # ------------------------------------------------------------ LangChain

    def as_langchain(self, k: int = 6, **filters):
        """The hybrid retriever behind LangChain's BaseRetriever interface."""
        from rag.lc import LangChainHybridRetriever

        return LangChainHybridRetriever(hybrid=self, k=k, filters=filters)
