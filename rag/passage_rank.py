"""The learned order of the fused passages: each of the first candidates of the weighted
reciprocal-rank fusion is described by how every side ranked and scored it (words, character
bigrams, passage vectors, sentence vectors), the question's hints (a named law, a year, the unit a
count asks for) and how much of the fused evidence its document holds; gradient-boosted trees
(fitted by eval/tune_retrieval.py, cross-validated by document, kept as numbers in the "ranker"
section of rag/data/retrieval_params.json) give each the probability that it holds the answer.

Fusion ranks by position only; the trees also read the scores (a passage far ahead on the vector
side, a document most of the evidence points to) and combinations of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.citations import measure_family, quantities
from rag.lexicon import lexicon
from rag.params import RETRIEVAL_PARAMS_FILE
from rag.query import QueryPlan
from rag.schema import Hit
from rag.scorers import Trees, sigmoid

PASSAGE_FEATURES = (
    "fused_rank", "fused_share",
    "word_rank", "word_share", "char_rank", "char_share",
    "dense_rank", "dense_score", "dense_gap",
    "sentence_rank", "sentence_score", "sentence_gap",
    "article", "named_law", "report", "year_match", "unit_match", "period_match",
    "length", "doc_share", "is_law",
)
HINT_NAMES = ("named_law", "report", "year_match", "unit_match", "period_match")
DOC_SHARE_DEPTH = 20  # the fused candidates whose scores are summed per document for `doc_share`


@dataclass(frozen=True)
class Hints:
    """What a question points passages to: laws it names, a report, years, the unit a count asks
    for, a period when it asks how long."""

    named_laws: frozenset[str]
    wants_report: bool
    years: frozenset[int]
    units: frozenset[str]
    periods: frozenset[str]

    @classmethod
    def of(cls, plan: QueryPlan) -> Hints:
        lex = lexicon()
        units = frozenset(measure_family(u) for u in lex.units_like(plan.asked_unit)) if plan.asked_unit else frozenset()
        asks_period = not plan.asked_unit and lex.cue("period", plan.question)
        periods = frozenset(measure_family(u) for u in lex.time_units) if asks_period else frozenset()
        return cls(frozenset(law.source for law in plan.laws), plan.wants_report, frozenset(plan.years), units, periods)

    def flags(self, hit: Hit, names: Collection[str] = HINT_NAMES) -> dict[str, bool]:
        """Which of the hints `names` the passage meets (its quantities are read only when a unit or
        period hint is among them and the question asks for one)."""
        units = self.units if "unit_match" in names else frozenset()
        periods = self.periods if "period_match" in names else frozenset()
        found = {unit for _, unit in quantities(hit.text, in_dates=True)} if units or periods else set()
        dated = hit.doc_type != "law"
        every = {
            "named_law": hit.source in self.named_laws,
            "report": self.wants_report and dated,
            "year_match": bool(self.years) and dated and hit.year in self.years,
            "unit_match": bool(found & units),
            "period_match": bool(found & periods),
        }
        return {name: every[name] for name in names}


def _side_features(name: str, hits: Sequence[Hit], relative: bool) -> dict[str, dict[str, float]]:
    """Rank and score of each chunk on one side: BM25 sides as a share of the side's best score,
    vector sides as the cosine and its gap to the side's best."""
    out: dict[str, dict[str, float]] = {}
    best = hits[0].score if hits else 0.0
    for rank, hit in enumerate(hits):
        if relative:
            out[hit.chunk_id] = {f"{name}_rank": float(rank), f"{name}_share": hit.score / best if best > 0 else 0.0}
        else:
            out[hit.chunk_id] = {f"{name}_rank": float(rank), f"{name}_score": hit.score, f"{name}_gap": hit.score - best}
    return out


def candidate_features(
    fused: Sequence[Hit],
    plan: QueryPlan,
    sides: Sequence[Sequence[Hit]],
    sentence_hits: Sequence[Hit],
    article_ids: set[str],
) -> list[dict[str, float]]:
    """One feature row per fused candidate (`sides`: the word, character and vector rankings)."""
    words, chars, dense = sides
    absent = max(len(words), len(chars), len(dense), len(sentence_hits), len(fused))
    blank = {
        "word_rank": float(absent), "word_share": 0.0, "char_rank": float(absent), "char_share": 0.0,
        "dense_rank": float(absent), "dense_score": 0.0, "dense_gap": -1.0,
        "sentence_rank": float(absent), "sentence_score": 0.0, "sentence_gap": -1.0,
    }
    per_side = [
        _side_features("word", words, True), _side_features("char", chars, True),
        _side_features("dense", dense, False), _side_features("sentence", sentence_hits, False),
    ]
    top = fused[0].score if fused and fused[0].score > 0 else 1.0
    by_doc: dict[str, float] = {}
    for hit in fused[:DOC_SHARE_DEPTH]:
        by_doc[hit.source] = by_doc.get(hit.source, 0.0) + hit.score
    total = sum(by_doc.values()) or 1.0
    hints = Hints.of(plan)
    rows = []
    for rank, hit in enumerate(fused):
        row = dict(blank)
        for side in per_side:
            row.update(side.get(hit.chunk_id, {}))
        row.update({name: float(value) for name, value in hints.flags(hit).items()})
        row.update({
            "fused_rank": float(rank), "fused_share": hit.score / top, "article": float(hit.chunk_id in article_ids),
            "length": math.log1p(len(hit.text)), "doc_share": by_doc.get(hit.source, 0.0) / total,
            "is_law": float(hit.doc_type == "law"),
        })
        rows.append(row)
    return rows


@dataclass(frozen=True)
class PassageRanker:
    """Reorders the first `depth` fused candidates by the trees' probability (the new score);
    looked-up articles stay first, in their order. `encoders` names the encoders the vector sides
    were computed with when it was fitted (`HybridRetriever.encoders`): their scores mean nothing
    to it under another model, so it acts only under the same ones."""

    trees: Trees
    depth: int
    encoders: str

    @classmethod
    def load(cls, path: Path | None = None) -> PassageRanker | None:
        """The "ranker" section of the retrieval parameters file; None when it has none."""
        try:
            data = json.loads(Path(path or RETRIEVAL_PARAMS_FILE).read_text(encoding="utf-8")).get("ranker")
        except (OSError, ValueError):
            return None
        if not data:
            return None
        return cls(Trees.from_dict(data["trees"]), int(data["depth"]), str(data["encoders"]))

    def to_dict(self) -> dict:
        return {"depth": self.depth, "encoders": self.encoders, "trees": self.trees.to_dict()}

    def probabilities(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        x = np.array([[row.get(name, 0.0) for name in self.trees.names] for row in rows], dtype=np.float64)
        return np.array([sigmoid(z) for z in self.trees.log_odds_matrix(x)])

    def order(
        self,
        fused: Sequence[Hit],
        plan: QueryPlan,
        sides: Sequence[Sequence[Hit]],
        sentence_hits: Sequence[Hit],
        article_ids: set[str],
    ) -> list[Hit]:
        head = list(fused[: self.depth])
        if len(head) < 2:
            return list(fused)
        return self.arrange(fused, self.probabilities(candidate_features(head, plan, sides, sentence_hits, article_ids)), article_ids)

    def arrange(self, fused: Sequence[Hit], probabilities: Sequence[float] | np.ndarray, article_ids: set[str]) -> list[Hit]:
        """The candidates in the order `probabilities` (one per first candidate) give: looked-up
        articles first, then the rest of the scored head by probability, then the unscored tail."""
        depth = len(probabilities)
        scored = [hit.with_score(float(prob)) for hit, prob in zip(fused[:depth], probabilities)]
        pinned = [h for h in scored if h.chunk_id in article_ids]
        rest = sorted((h for h in scored if h.chunk_id not in article_ids), key=lambda h: -h.score)
        return pinned + rest + [h.with_score(0.0) for h in fused[depth:]]
