"""`rag verify`: does the indexed material support each sentence of a text?

Each sentence is searched like a question; the support checker judges it against the best
passages: `supported` (a passage supports it), `contradicted` (the closest passage states another
number, date, name, obligation or negation), `unsupported` (nothing close enough).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.citations import Support
from rag.retrieve import HybridRetriever
from rag.schema import Hit
from rag.text import flatten, split_sentences

PASSAGES = 5
MIN_SENTENCE_CHARS = 6
CLOSE_ENOUGH = 0.1
VERDICT_LABELS = {"supported": "有依据", "contradicted": "与原文不符", "unsupported": "找不到依据"}


@dataclass(frozen=True)
class Verdict:
    sentence: str
    verdict: str
    score: float
    hit: Hit | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        citation = None
        if self.hit is not None:
            citation = {"source": self.hit.source, "title": self.hit.title, "section": self.hit.section, "text": self.hit.text}
        return {
            "sentence": self.sentence,
            "verdict": self.verdict,
            "score": round(self.score, 4),
            "citation": citation,
            "reasons": list(self.reasons),
        }


def split_claims(text: str) -> list[str]:
    """The sentences of a text to check (Markdown headings, markers and very short pieces skipped)."""
    lines = [ln for ln in text.replace("\r", "").split("\n") if ln.strip() and not ln.lstrip().startswith("#")]
    joined = "\n".join(re.sub(r"\[\d+\]", "", ln).strip() for ln in lines)
    out: list[str] = []
    for sentence in split_sentences(joined):
        sentence = flatten(sentence).strip()
        if len(re.sub(r"[\W_]", "", sentence)) >= MIN_SENTENCE_CHARS:
            out.append(sentence)
    return out


class Verifier:
    """Retrieves passages for each sentence and gives the verdict of the closest one."""

    def __init__(self, retriever: HybridRetriever, support: Callable[[str, Hit], Support], min_score: float = 0.0) -> None:
        self.retriever = retriever
        self.support = support
        self.min_score = min_score  # a passage supports a sentence in `rag verify` only at this score

    def judge_passages(self, sentence: str) -> list[tuple[Support, Hit]]:
        """The support verdict of each of the best passages for the sentence."""
        retrieval = self.retriever.search(sentence, k=PASSAGES, scope_orgs=True)
        hits = list(retrieval.article_hits) + [h for h in retrieval.hits if h.chunk_id not in {a.chunk_id for a in retrieval.article_hits}]
        return [(self.support(sentence, hit), hit) for hit in hits[:PASSAGES]]

    def verify_sentence(self, sentence: str) -> Verdict:
        """The verdict of one sentence (`split_claims` gives a text's; the CLI and the 核对 tab loop over
        them to show progress)."""
        return decide(sentence, self.judge_passages(sentence), self.min_score)


def decide(sentence: str, judged: list[tuple[Support, Hit]], min_score: float = 0.0) -> Verdict:
    """The verdict of a sentence from its passages: the passage it restates is the closest one;
    another may support it only when about as close (a figure true of another subject elsewhere
    does not count)."""
    if not judged:
        return Verdict(sentence, "unsupported", 0.0, None, ("索引中没有相关段落",))
    nearest = max(closeness(s) for s, _ in judged)
    supported = [(s, h) for s, h in judged if s.supported and s.score >= min_score and closeness(s) >= nearest - CLOSE_ENOUGH]
    if supported:
        s, h = max(supported, key=lambda pair: pair[0].score)
        return Verdict(sentence, "supported", s.score, h, ())
    s, h = max(judged, key=lambda pair: closeness(pair[0]))
    if s.verdict == "contradicted":
        return Verdict(sentence, "contradicted", s.score, h, s.reasons)
    contradicted = [(x, y) for x, y in judged if x.verdict == "contradicted" and closeness(x) >= nearest - CLOSE_ENOUGH]
    if contradicted:
        s, h = max(contradicted, key=lambda pair: closeness(pair[0]))
        return Verdict(sentence, "contradicted", s.score, h, s.reasons)
    return Verdict(sentence, "unsupported", s.score, h, s.reasons or ("所引材料中没有足够接近的内容",))


def closeness(support: Support) -> float:
    f = support.features
    return f.get("bigram_coverage", 0.0) + f.get("clause_similarity", 0.0)
