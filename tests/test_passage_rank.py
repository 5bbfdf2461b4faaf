"""rag.passage_rank: the learned order of the fused passages (features, trees walked in bulk, loading,
when it acts); the shipped ranker on the real corpus (slow)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rag.params import RETRIEVAL_PARAMS_FILE
from rag.passage_rank import PASSAGE_FEATURES, PassageRanker, candidate_features
from rag.schema import Hit
from rag.scorers import Trees


def hit(chunk_id: str, score: float, source: str = "law-a", text: str = "条文", doc_type: str = "law") -> Hit:
    return Hit(chunk_id, source, "t", doc_type, text, "", None, None, score)


def stump(feature: str, threshold: float) -> Trees:
    """One split: -1 at or below the threshold, +1 above."""
    return Trees(PASSAGE_FEATURES, 0.0, (((PASSAGE_FEATURES.index(feature), threshold, 1, 2, 0.0), (-1, 0.0, -1, -1, -1.0), (-1, 0.0, -1, -1, 1.0)),))


def test_trees_walk_many_rows_at_once_as_they_walk_one(tmp_path):
    """`Trees.log_odds_matrix` (every tree, every row, one level at a time) equals `log_odds` row by row,
    a value equal to a threshold going left, on trees fitted by scikit-learn."""
    from rag.calibrate import fit_trees

    rng = np.random.default_rng(0)
    names = ("a", "b", "c")
    x = rng.integers(0, 5, size=(400, 3)).astype(float)  # ties with the thresholds are common
    labels = ((x[:, 0] > 2) ^ (x[:, 1] + x[:, 2] > 5)).astype(int)
    rows = [dict(zip(names, r)) for r in x]
    trees = fit_trees(rows, list(labels), names)
    bulk = trees.log_odds_matrix(x)
    assert np.allclose(bulk, [trees.log_odds(r) for r in rows])
    assert len(set(np.round(bulk, 6))) > 4  # the trees split: the rows do not all share one value
    edge = Trees(("a",), 0.5, (((0, 1.0, 1, 2, 0.0), (-1, 0.0, -1, -1, -1.0), (-1, 0.0, -1, -1, 2.0)),))
    assert list(edge.log_odds_matrix(np.array([[1.0], [1.0001]]))) == [-0.5, 2.5]
    assert Trees(("a",), 0.25, ()).log_odds_matrix(np.zeros((2, 1))).tolist() == [0.25, 0.25]


def test_candidate_features_read_every_side_and_the_document_share(tiny_components):
    plan = tiny_components.retriever.plan("审计报告多久提交？")
    fused = [hit("a", 0.08), hit("b", 0.04, source="law-b"), hit("c", 0.02)]
    words = [hit("a", 12.0), hit("c", 3.0)]
    chars = [hit("b", 8.0)]
    dense = [hit("b", 0.7), hit("a", 0.5)]
    rows = candidate_features(fused, plan, (words, chars, dense), [], {"c"})
    a, b, c = rows
    assert a["fused_rank"] == 0 and a["fused_share"] == 1.0 and b["fused_share"] == 0.5
    assert a["word_rank"] == 0 and a["word_share"] == 1.0 and c["word_share"] == 0.25
    assert b["char_share"] == 1.0 and a["char_share"] == 0.0 and a["char_rank"] >= len(fused)  # not found by characters
    assert b["dense_score"] == 0.7 and b["dense_gap"] == 0.0 and math.isclose(a["dense_gap"], -0.2)
    assert c["dense_gap"] == -1.0 and all(r["sentence_rank"] >= len(fused) for r in rows)  # no sentence side
    assert math.isclose(a["doc_share"], 0.10 / 0.14) and math.isclose(b["doc_share"], 0.04 / 0.14)  # law-a holds a and c
    assert (a["article"], c["article"]) == (0.0, 1.0) and a["is_law"] == 1.0
    assert set(a) == set(PASSAGE_FEATURES)


def test_the_ranker_reorders_by_probability_and_keeps_looked_up_articles_first(tiny_components):
    plan = tiny_components.retriever.plan("审计报告多久提交？")
    fused = [hit("a", 0.08), hit("b", 0.04), hit("c", 0.02), hit("d", 0.01)]
    dense = [hit("c", 0.9), hit("d", 0.8), hit("a", 0.1), hit("b", 0.1)]
    ranker = PassageRanker(stump("dense_score", 0.5), depth=3, encoders="fake")
    order = ranker.order(fused, plan, ([], [], dense), [], set())
    assert [h.chunk_id for h in order] == ["c", "a", "b", "d"]  # c up; d is beyond the depth, last
    assert math.isclose(order[0].score, 1 / (1 + math.exp(-1))) and order[-1].score == 0.0
    pinned = ranker.order(fused, plan, ([], [], dense), [], {"b"})
    assert [h.chunk_id for h in pinned][:2] == ["b", "c"]


def test_arrange_orders_by_given_probabilities_as_order_does(tiny_components):
    """`arrange` (what eval/tune_retrieval.py calls with the feature rows it already has) gives the
    order `order` computes from the features."""
    plan = tiny_components.retriever.plan("审计报告多久提交？")
    fused = [hit("a", 0.08), hit("b", 0.04), hit("c", 0.02), hit("d", 0.01)]
    dense = [hit("c", 0.9), hit("d", 0.8), hit("a", 0.1), hit("b", 0.1)]
    ranker = PassageRanker(stump("dense_score", 0.5), depth=3, encoders="fake")
    rows = candidate_features(fused[:3], plan, ([], [], dense), [], {"b"})
    arranged = ranker.arrange(fused, ranker.probabilities(rows), {"b"})
    assert [h.chunk_id for h in arranged] == [h.chunk_id for h in ranker.order(fused, plan, ([], [], dense), [], {"b"})]
    assert [h.chunk_id for h in ranker.arrange(fused, [0.1, 0.2, 0.9], set())] == ["c", "b", "a", "d"]


def test_hints_read_only_the_flags_asked_for(tiny_components):
    """A unit hint is read from the passage's quantities only when asked for (a boost of 1.0 asks
    for none); the flags asked for are those returned."""
    from rag.passage_rank import Hints

    plan = tiny_components.retriever.plan("审计局有几个内设机构？")
    hints = Hints.of(plan)
    assert hints.units, "the count question names a unit"
    passage = hit("a", 1.0, source="r", text="我局共有5个内设机构。", doc_type="report")
    assert hints.flags(passage)["unit_match"] is True
    assert hints.flags(passage, ("named_law", "report")) == {"named_law": False, "report": hints.wants_report}
    assert hints.flags(passage, ("report",)).keys() == {"report"}


def test_the_ranker_comes_from_the_parameters_file_and_acts_only_under_its_encoders(fake_settings, tmp_path):
    from rag.components import build

    data = json.loads(RETRIEVAL_PARAMS_FILE.read_text(encoding="utf-8"))
    data["ranker"] = PassageRanker(stump("dense_score", 0.5), 40, "fake").to_dict()
    path = tmp_path / "params.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    without = tmp_path / "plain.json"
    without.write_text(json.dumps({"params": data["params"]}), encoding="utf-8")
    cases = ((path, "on", True), (path, "off", False), (without, "on", False))
    for params_file, switch, loaded in cases:
        components = build(fake_settings.with_(retrieval={"params_file": params_file, "passage_ranker": switch}))
        try:
            retriever = components.retriever
            assert (retriever.ranker is not None) == loaded
            if loaded:
                assert retriever.encoders == "fake" and retriever.ranker.encoders == retriever.encoders
        finally:
            components.close()


def test_the_ranker_reorders_a_search_only_under_the_encoders_it_was_fitted_with(tiny_components):
    """A search under the ranker's encoders takes its order (and times it); under other encoders, the
    fusion's order stands."""
    retriever = tiny_components.retriever
    question = "审计报告多久提交？"
    saved = retriever.ranker
    try:
        retriever.ranker = None
        fused = retriever.search(question, k=5)
        # a ranker that puts the fusion's first passage behind the others (their order stays: a stable sort)
        retriever.ranker = PassageRanker(Trees(PASSAGE_FEATURES, 0.0, (((PASSAGE_FEATURES.index("fused_rank"), 0.5, 1, 2, 0.0), (-1, 0.0, -1, -1, -1.0), (-1, 0.0, -1, -1, 1.0)),)), 40, retriever.encoders)
        ranked = retriever.search(question, k=5)
        assert "rank" in ranked.timings_ms
        assert [h.chunk_id for h in ranked.hits[:4]] == [h.chunk_id for h in fused.hits[1:5]]
        retriever.ranker = PassageRanker(retriever.ranker.trees, 40, "another-model")
        again = retriever.search(question, k=5)
        assert [h.chunk_id for h in again.hits] == [h.chunk_id for h in fused.hits] and "rank" not in again.timings_ms
    finally:
        retriever.ranker = saved


@pytest.mark.slow
def test_the_shipped_ranker_ranks_the_dev_set_better_than_the_fusion(assistant):
    """The fitted ranker of rag/data/retrieval_params.json, switched on (RAG_PASSAGE_RANKER=on), with the
    default encoders (USE passages, e5 sentences) over the real corpus: it acts, and the dev set's MRR over
    the first ten is higher with it than with the fusion's order (off by default: docs/evaluation-history.md, round 24)."""
    from rag.components import build
    from rag.config import load_settings
    from rag.evaluation import Passage, first_relevant_rank, load_dataset

    assert assistant.retriever.ranker is None  # off by default
    components = build(assistant.retriever.settings.with_(retrieval={"passage_ranker": "on"}))
    retriever = components.retriever
    assert retriever.ranker is not None and retriever.ranker.encoders == retriever.encoders
    items = [i for i in load_dataset(load_settings({}).eval.dev_set) if not i.refuse and not i.history]

    def mrr() -> float:
        ranks = [first_relevant_rank(i, [Passage(h.source, h.text) for h in retriever.search(i.question, k=10).hits]) for i in items]
        return sum(1 / r for r in ranks if r) / len(items)

    saved = retriever.ranker
    with_ranker = mrr()
    try:
        retriever.ranker = None
        without = mrr()
    finally:
        retriever.ranker = saved
        components.close()
    assert with_ranker > without, (with_ranker, without)
