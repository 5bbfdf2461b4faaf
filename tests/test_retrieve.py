"""rag.retrieve and the search snapshot: fusion, filters, article look-up, organisation scope (FAKE embeddings)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rag.retrieve import and_where, build_where, fuse
from rag.schema import Hit


def hit(chunk_id: str, score: float = 0.0) -> Hit:
    return Hit(chunk_id, "s", "t", "law", f"text {chunk_id}", "", None, None, score)


def test_fuse_is_weighted_reciprocal_rank():
    words = [hit("a", 9.0), hit("b", 5.0), hit("c", 1.0)]
    chars = [hit("b", 3.0), hit("a", 2.0)]
    dense = [hit("c", 0.9)]
    fused = fuse([(words, 0.5), (chars, 0.3), (dense, 0.2)], k=20)
    scores = {h.chunk_id: h.score for h in fused}
    assert scores["a"] == 0.5 / 21 + 0.3 / 22
    assert scores["b"] == 0.5 / 22 + 0.3 / 21
    assert scores["c"] == 0.5 / 23 + 0.2 / 21
    assert [h.chunk_id for h in fused] == sorted(scores, key=lambda c: -scores[c])
    assert fuse([([], 1.0)]) == []
    # A list's weight decides between two first places.
    assert [h.chunk_id for h in fuse([([hit("x")], 0.2), ([hit("y")], 0.8)])] == ["y", "x"]


def test_where_filters():
    assert build_where() is None
    assert build_where("law") == {"doc_type": "law"}
    assert build_where(source=["a", "b"]) == {"source": {"$in": ["a", "b"]}}
    assert build_where("report", "a", 2024) == {"$and": [{"doc_type": "report"}, {"source": "a"}, {"year": 2024}]}
    assert and_where(None, {"x": 1}) == {"x": 1} and and_where({"x": 1}, None) == {"x": 1}
    assert and_where({"x": 1}, {"y": 2}) == {"$and": [{"x": 1}, {"y": 2}]}


def test_snapshot_searches(tiny_components):
    index = tiny_components.index
    snapshot = index.snapshot()
    assert index.keyword() is snapshot  # the old name is an alias
    counter, _, write_id = snapshot.generation.partition(":")
    assert int(counter) >= 1 and write_id
    assert {r.source for r in snapshot.records} == {
        "sample-audit-law", "sample-audit-law-implementing-regulations", "qinghe-audit-bureau-2023-report", "lanjiang-audit-bureau-2024-report"
    }
    assert snapshot.aliases == {"审计条例": "审计法实施条例"}
    words = snapshot.search(["普法"], 3)
    assert {h.source for h in words} == {"qinghe-audit-bureau-2023-report", "lanjiang-audit-bureau-2024-report"}
    assert snapshot.search(["普法"], 3, {"doc_type": "law"}) == []
    assert {h.source for h in snapshot.search_chars(["普法"], 3)} == {h.source for h in words}
    [article] = snapshot.article("sample-audit-law", 5)
    assert article.article == "第五条" and article.text.startswith("第五条")
    assert snapshot.article("sample-audit-law", 99) == []
    vector = tiny_components.embeddings.embed_query("审计机关依照法律规定独立行使审计监督权")
    assert snapshot.search_vectors(vector, 1)[0].article == "第三条"
    # A row's hit is built once and rescored: each search gets its own object with its own score.
    first, again = snapshot.hit(0, 1.5), snapshot.hit(0, 2.5)
    assert first is not again and (first.score, again.score) == (1.5, 2.5)
    assert replace(first, score=2.5) == again and hash(replace(first, score=2.5)) == hash(again)


def test_with_score_is_replace():
    h = Hit("a", "s", "t", "law", "x", "sec", "第一条", 2024, 1.0, 3, 9, 2, "第一章", "某局")
    assert h.with_score(0.25) == replace(h, score=0.25) and h.score == 1.0


def test_article_look_up_comes_first_and_names_decide_the_law(tiny_components):
    retriever = tiny_components.retriever
    law = retriever.search("审计法第三条", k=5)
    assert [h.article for h in law.article_hits] == ["第三条"]
    assert (law.hits[0].source, law.hits[0].article) == ("sample-audit-law", "第三条")
    regulations = retriever.search("审计条例第三条", k=5)  # a short form from aliases.toml
    assert (regulations.hits[0].source, regulations.hits[0].article) == ("sample-audit-law-implementing-regulations", "第三条")
    missing = retriever.search("审计法第九十九条", k=5)
    assert missing.article_hits == () and missing.missing_articles == ("sample-audit-law:第九十九条",)
    assert {"plan", "keyword", "dense", "retrieve_total"} <= set(law.timings_ms)


def test_filters_by_type_source_and_year(tiny_components):
    retriever = tiny_components.retriever
    assert {h.doc_type for h in retriever.search("普法活动", k=5, doc_type="law").hits} == {"law"}
    assert {h.source for h in retriever.search("普法活动", k=5, source="lanjiang-audit-bureau-2024-report").hits} == {"lanjiang-audit-bureau-2024-report"}
    assert {h.year for h in retriever.search("普法活动", k=5, year=2023).hits} == {2023}


def test_a_named_organisation_scopes_the_dated_documents(tiny_components):
    retriever = tiny_components.retriever
    scoped = retriever.search("青禾县审计局开展了多少场普法活动", k=8)
    assert scoped.scoped_to == ("青禾县审计局",)
    assert all(h.source != "lanjiang-audit-bureau-2024-report" for h in scoped.hits)
    assert retriever.search("开展了多少场普法活动", k=8).scoped_to == ()


def test_scope_words_weigh_less_in_the_keyword_search(tiny_components):
    """Words naming the organisation or year the question is scoped to count for `scope_weight`
    of their keyword score: the filter and the year boost act on them already."""
    from dataclasses import replace

    retriever = tiny_components.retriever
    plan = retriever.plan("青禾县审计局2023年开展了多少场普法活动")
    full = replace(retriever.params, scope_weight=1.0)
    half = replace(retriever.params, scope_weight=0.5)
    assert retriever.scope_weights(plan, full) == ({}, {})
    words, grams = retriever.scope_weights(plan, half)
    assert {"青禾", "审计局", "2023"} <= set(words) and "普法" not in words and "活动" not in words
    assert set(words.values()) == {0.5} and grams and "普法" not in grams
    assert retriever.scope_weights(retriever.plan("开展了多少场普法活动"), half) == ({}, {})  # nothing scoped
    # The weight scales exactly that token's share of each score.
    snapshot = retriever.index.snapshot()
    tokens = ["青禾", "普法"]
    plain = {h.chunk_id: h.score for h in snapshot.search(tokens, 20)}
    alone = {h.chunk_id: h.score for h in snapshot.search(["青禾"], 20)}
    weighted = {h.chunk_id: h.score for h in snapshot.search(tokens, 20, weights={"青禾": 0.5})}
    assert alone and set(weighted) == set(plain)
    for chunk, score in weighted.items():
        assert abs(score - (plain[chunk] - 0.5 * alone.get(chunk, 0.0))) < 1e-4


def test_a_count_question_prefers_passages_that_state_a_count_in_its_unit(tiny_components):
    """`quantity_boost`: 几个/多少个 asks for a number of 个 (or 项, 件 …); a passage that states one gets
    the boost, one that states only days or money does not, and a question without a unit boosts nothing.
    `period_boost`: the same for a question that asks how long without a unit."""
    retriever = tiny_components.retriever
    params = replace(retriever.params, quantity_boost=2.0, period_boost=1.0, year_boost=1.0, report_boost=1.0, law_boost=1.0)

    def passage(chunk_id: str, text: str) -> Hit:
        return Hit(chunk_id, "r", "t", "report", text, "", 2024, None, 1.0)

    hits = [
        passage("days", "审计组应当在十日内提交报告。"),
        passage("money", "查出问题金额3.6亿元。"),
        passage("count", "全年共完成审计项目28个，其中经济责任审计9项。"),
    ]
    count = retriever.plan("桐山区审计局2023年一共做完了多少个审计项目？")
    assert count.asked_unit == "个"
    boosted = retriever._apply_hints(hits, count, params)
    assert [h.chunk_id for h in boosted][0] == "count" and boosted[0].score == 2.0
    assert {h.chunk_id: h.score for h in boosted[1:]} == {"days": 1.0, "money": 1.0}
    money = retriever.plan("2023年查出的问题金额有多少钱？")
    assert [h.chunk_id for h in retriever._apply_hints(hits, money, params)][0] == "money"
    plain = retriever.plan("审计组怎么提交报告？")
    assert all(h.score == 1.0 for h in retriever._apply_hints(hits, plain, params))
    assert all(h.score == 1.0 for h in retriever._apply_hints(hits, count, replace(params, quantity_boost=1.0)))
    # 多久 / 期限 without a unit asks for a period: `period_boost` acts, `quantity_boost` does not.
    period = retriever.plan("审计组提交报告的期限是多久？")
    assert period.asked_unit is None
    assert all(h.score == 1.0 for h in retriever._apply_hints(hits, period, params))
    timed = retriever._apply_hints(hits, period, replace(params, period_boost=1.5))
    assert timed[0].chunk_id == "days" and timed[0].score == 1.5 and {h.score for h in timed[1:]} == {1.0}


def test_a_figure_in_digits_finds_the_article_that_writes_it_in_chinese_numerals(tiny_components):
    """第四条 …三日前… and 第五条 …十日内…: a question's 3日 and 10日 are the same keyword terms."""
    from rag.segment import query_tokens

    snapshot = tiny_components.index.snapshot()
    assert snapshot.search(query_tokens("10日内"), 1)[0].article == "第五条"
    assert snapshot.search(query_tokens("3日前"), 1)[0].article == "第四条"


def test_langchain_retriever(tiny_components):
    docs = tiny_components.retriever.as_langchain(k=2).invoke("审计机关独立行使审计监督权")
    assert len(docs) == 2
    assert docs[0].metadata["source"] == "sample-audit-law" and docs[0].metadata["section"] == "第一章 总则 > 第三条"


def test_front_matter_is_among_the_answer_candidates(fake_components, tmp_path):
    """A question about a report's addressee gets its 抬头 among the passages whose sentences are the
    answer's candidates (the first `top_passages`), and a question when a named law was adopted or took
    effect gets the dates under its title (题注), however low they rank on words."""
    from conftest import write_documents

    from rag.ingest import ingest_paths

    sections = "".join(f"（{n}）第{n}项工作\n第{n}项工作全年推进顺利，完成任务{n + 10}件，审计监督成效明显。\n" for n in range(1, 13))
    law_body = "".join(f"第{n}条 审计机关依照本法第{n}项规定开展审计监督，被审计单位应当配合。\n\n" for n in range(1, 16))
    folder = write_documents(tmp_path / "docs", {
        "songling-2024-report.txt": (
            "松岭县审计局2024年法治政府建设情况报告\n县人民政府：\n"
            "2024年，松岭县审计局坚持依法审计。现将有关情况报告如下：\n一、主要工作\n" + sections + "松岭县审计局\n2025年1月22日\n"
        ),
        "sample-supervision-law.md": (
            "# 中华人民共和国审计监督示例法\n\n（2023年6月28日第十四届全国人民代表大会常务委员会第三次会议通过）\n\n"
            "第一章 总则\n\n" + law_body + "第十六条 本法自2024年1月1日起施行。\n"
        ),
    })
    ingest_paths(fake_components.index, [folder], show_bar=False)
    retriever = fake_components.retriever
    top = fake_components.settings.answer.top_passages
    snapshot = retriever.index.snapshot()

    def ranked_first(source: str) -> list[Hit]:  # the body passages, ranked first on words
        rows = [r for r in snapshot.rows_of(source) if snapshot.metadatas[r].get("section", "").startswith(("一、", "第一章"))]
        return [snapshot.hit(r, 1.0) for r in rows[:8]]

    question = "松岭县审计局2024年那份法治政府建设情况报告是报送给哪个单位的？"
    hits = retriever.add_front_matter(snapshot, retriever.plan(question, snapshot), ranked_first("songling-2024-report"), 8)
    assert "抬头" in [h.section for h in hits[:top]], [h.section for h in hits]

    question = "审计监督示例法是什么时候通过的？从哪天起施行？"
    hits = retriever.add_front_matter(snapshot, retriever.plan(question, snapshot), ranked_first("sample-supervision-law"), 8)
    assert "题注" in [h.section for h in hits[:top]], [h.section for h in hits]
    # a question about a law that asks no date of it gets nothing added
    question = "审计监督示例法规定被审计单位应当怎么做？"
    hits = retriever.add_front_matter(snapshot, retriever.plan(question, snapshot), ranked_first("sample-supervision-law"), 8)
    assert "题注" not in [h.section for h in hits]


# ---------------------------------------------------------------- sentence-level semantic search


class FakeSentenceVectors:
    """FAKE sentence encoder (hashed character bigrams) for the fast tests; the real one (e5) is tested
    on the corpus below."""

    DIM = 512

    def __init__(self) -> None:
        self.encoded = 0

    def _vector(self, text: str):
        import zlib

        import numpy as np

        vector = np.zeros(self.DIM, dtype=np.float32)
        for a, b in zip(text, text[1:]):
            vector[zlib.crc32((a + b).encode()) % self.DIM] += 1.0
        return vector / (np.linalg.norm(vector) or 1.0)

    def passage_vectors(self, texts):
        self.encoded += len(texts)
        return {t: self._vector(t) for t in texts}

    def query_vector(self, question: str):
        return self._vector(question)


def test_sentence_search_scores_a_passage_by_its_closest_sentence(tiny_components):
    from rag.sentence_search import build_matrix, passage_sentences, search

    snapshot = tiny_components.index.snapshot()
    vectors = FakeSentenceVectors()
    steps: list[tuple[int, int]] = []
    matrix = build_matrix(snapshot, vectors, progress=lambda done, total: steps.append((done, total)))
    assert matrix.generation == snapshot.generation and len(matrix.rows) == sum(len(passage_sentences(t)) for t in snapshot.texts)
    assert steps and steps[-1][0] == steps[-1][1] == vectors.encoded  # each distinct sentence encoded once
    # The second sentence of 第五条, asked alone: its passage first, with that sentence's similarity.
    asked = "被审计单位应当自接到审计报告之日起十日内提出书面意见"
    first = search(matrix, snapshot, vectors.query_vector(asked), 3)[0]
    assert first.article == "第五条" and first.score > 0.95
    assert first.score > float(vectors.query_vector(asked) @ vectors.query_vector(first.text))  # the passage whole is farther
    reports = search(matrix, snapshot, vectors.query_vector(asked), 3, {"doc_type": "report"})
    assert reports and all(h.doc_type == "report" for h in reports)


def test_the_sentence_side_is_fused_when_it_has_a_weight(tiny_components):
    from rag.retrieve import HybridRetriever

    index, settings = tiny_components.index, tiny_components.settings
    base = tiny_components.retriever.params
    asked = "被审计单位收到审计报告以后几天之内要交书面意见"
    vectors = FakeSentenceVectors()
    weighted = HybridRetriever(index, settings, params=replace(base, sentence_weight=0.5), sentences=vectors)
    assert weighted.warm_sentences(show_bar=False) == len(weighted.sentence_matrix().rows) > 0
    encoded = vectors.encoded
    result = weighted.search(asked)
    assert result.sentence_hits[0].article == "第五条" and "sentences" in result.timings_ms
    assert vectors.encoded == encoded  # the generation's matrix is built once
    plain = HybridRetriever(index, settings, params=replace(base, sentence_weight=0.0), sentences=vectors).search(asked)
    assert plain.sentence_hits == ()
    score = {h.chunk_id: h.score for h in plain.hits}
    fifth = result.sentence_hits[0].chunk_id
    # reciprocal-rank fusion: the first place on the sentence side adds its weight over (rrf_k + 1)
    assert next(h.score for h in result.hits if h.chunk_id == fifth) > score.get(fifth, 0.0)
    # no sentence encoder (RAG_SEMANTIC=off or RAG_SENTENCE_SEARCH=off): no side, nothing to warm
    assert tiny_components.retriever.search(asked).sentence_hits == ()
    assert tiny_components.retriever.warm_sentences(show_bar=False) == 0


def test_sentence_search_is_on_unless_turned_off(fake_settings):
    from rag.components import build

    semantic = fake_settings.with_(answer={"semantic": "embedding"})
    for settings, on in ((semantic, True), (semantic.with_(retrieval={"sentence_search": "off"}), False)):
        components = build(settings)
        try:
            assert components.sentence_encoder is not None and (components.retriever._sentences is not None) == on
        finally:
            components.close()


@pytest.mark.slow
def test_e5_sentence_side_finds_the_clause_an_everyday_question_asks_for(corpus_components):
    """The real sentence encoder (multilingual-e5-small) over the corpus (RAG_SENTENCE_SEARCH=on): a
    late-payment question in everyday words (拖着不交, 加罚) is answered by one clause of a long article
    (加处罚款), which the sentence side ranks first; the fused ranking holds it among the first ten."""
    from rag.components import build

    components = build(corpus_components.settings.with_(answer={"semantic": "e5"}, retrieval={"sentence_search": "on"}))
    try:
        retriever = components.retriever
        assert retriever.params.sentence_weight > 0 and retriever.warm_sentences(show_bar=False) > 1000
        result = retriever.search("单位罚款一直拖着不交，每天要加罚多少")
        first = result.sentence_hits[0]
        assert first.source == "administrative-penalty-law" and first.article == "第七十二条"
        assert "每日按罚款数额的百分之三加处罚款" in first.text.replace("\n", "")
        assert any(h.chunk_id == first.chunk_id for h in result.hits[:10])
    finally:
        components.close()
