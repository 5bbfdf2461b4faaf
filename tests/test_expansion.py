"""rag.expansion: the learned question-word -> passage-word table, and the word side that uses it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from rag.expansion import EXPANSION_FILE, FitOptions, WordExpansion, fit_table


def test_a_recurring_pair_is_kept_and_a_word_of_every_answer_is_not():
    triples = [
        ("litigation-law", ["去", "法院", "打官司"], ["提起", "诉讼", "人民法院", "应当"]),
        ("litigation-law", ["法院", "打官司", "多久"], ["诉讼", "六个月", "应当"]),
        ("compensation-law", ["打官司", "赔钱"], ["诉讼", "赔偿", "应当"]),
        ("penalty-law", ["罚钱", "多少"], ["罚款", "应当"]),
        ("penalty-law", ["罚钱"], ["罚款", "警告", "应当"]),
    ]
    table = fit_table(triples, FitOptions(min_pair=2, min_lift=1.5))
    assert table["打官司"][0] == ("诉讼", 1.0)  # in the answers of all three questions with 打官司
    assert ("罚款", 1.0) in table["罚钱"]
    assert all(word != "应当" for pairs in table.values() for word, _ in pairs)  # in every answer: no lift
    assert "多少" not in table  # a stopword is not a key
    # A pair must recur: once is not enough, nor one document when two are asked for.
    assert "赔钱" not in fit_table(triples, FitOptions(min_pair=2, min_lift=1.5))
    assert "罚钱" not in fit_table(triples, FitOptions(min_pair=2, min_docs=2, min_lift=1.5))


def test_the_extra_words_carry_weight_times_probability_and_skip_what_is_asked():
    expansion = WordExpansion({"打官司": (("诉讼", 0.8), ("起诉", 0.5)), "罚钱": (("罚款", 1.0),)}, weight=1.5)
    assert expansion.extra(["去", "法院", "打官司"]) == {"诉讼": pytest.approx(1.2), "起诉": pytest.approx(0.75)}
    assert expansion.extra(["打官司", "起诉"]) == {"诉讼": pytest.approx(1.2)}  # 起诉 is asked already
    assert expansion.extra(["审计"]) == {}


def test_the_table_round_trips_and_a_missing_or_empty_one_is_none(tmp_path):
    expansion = WordExpansion({"打官司": (("诉讼", 0.8),)}, weight=1.0, report={"questions": 3})
    path = tmp_path / "expansion.json"
    path.write_text(json.dumps(expansion.to_dict(), ensure_ascii=False), encoding="utf-8")
    assert WordExpansion.load(path) == expansion
    assert WordExpansion.load(tmp_path / "missing.json") is None
    path.write_text(json.dumps({**expansion.to_dict(), "weight": 0}), encoding="utf-8")
    assert WordExpansion.load(path) is None


def test_the_shipped_table_is_fitted_data():
    shipped = WordExpansion.load(EXPANSION_FILE)
    assert shipped is not None and len(shipped.table) > 100
    chosen = shipped.report["chosen"]
    assert chosen["weight"] == shipped.weight
    # It was chosen by cross-validation and costs nothing on documents never seen in fitting.
    assert chosen["cv_by_document"]["mrr"] >= shipped.report["without_table"]["cv"]["mrr"]
    assert chosen["cv_by_set"]["mrr"] > shipped.report["without_table"]["cv"]["mrr"]


def test_the_word_side_finds_a_passage_by_the_words_the_table_adds(tiny_components):
    retriever = tiny_components.retriever
    snapshot = retriever.index.snapshot()
    plan = retriever.plan("查完以后对方多久回话？", snapshot)
    weights, _ = retriever.scope_weights(plan, replace(retriever.params, scope_weight=1.0))

    def first(expansion):
        hits = retriever.word_search(snapshot, plan, 5, None, weights, expansion)
        return hits[0].text if hits else ""

    assert "书面意见" not in first(None)
    table = WordExpansion({"回话": (("书面", 1.0), ("意见", 1.0))}, weight=1.0)
    assert "十日内提出书面意见" in first(table)


@pytest.mark.slow
def test_the_shipped_table_lifts_the_article_an_everyday_question_asks_for(corpus_components):
    """On the real corpus: 起诉 asked without 诉讼 or 人民法院 finds 行政诉讼法's time limit sooner."""
    retriever = corpus_components.retriever
    assert retriever.expansion is not None  # on by default, the shipped table
    snapshot = retriever.index.snapshot()
    plan = retriever.plan("对处罚不服想去起诉，最晚多久之内要起诉？", snapshot)

    def rank(expansion):
        hits = retriever.word_search(snapshot, plan, 30, None, retriever.scope_weights(plan, retriever.params)[0], expansion)
        return next((i for i, h in enumerate(hits, 1) if "六个月" in h.text and h.source == "administrative-litigation-law"), 99)

    assert rank(retriever.expansion) < rank(None)
    assert rank(retriever.expansion) <= 5


def test_rag_expansion_off_searches_the_question_words_only(tiny_components):
    from rag.retrieve import HybridRetriever

    settings = tiny_components.settings
    assert HybridRetriever(tiny_components.index, settings).expansion is not None
    assert HybridRetriever(tiny_components.index, settings.with_(retrieval={"expansion": "off"})).expansion is None
