"""What the shell's fast start rests on gives the same results as the slow way.

- `Bm25` scores with numpy alone what bm25s builds; its rankings must equal `bm25s.BM25.retrieve`.
- jieba read entry by entry from the per-machine SQLite copy must cut exactly as the full dictionary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_REPORT

from rag.keyword_index import EMPTY_TOKEN, Bm25


def _corpus(seed: int, docs: int = 300, vocab: int = 80) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab)]
    # Zipf-like frequencies, some empty documents
    p = 1 / np.arange(1, vocab + 1)
    p /= p.sum()
    return [list(rng.choice(words, size=int(rng.integers(0, 30)), p=p)) for _ in range(docs)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bm25_rankings_equal_bm25s(seed, tmp_path):
    import bm25s

    corpus = _corpus(seed)
    ours = Bm25.build(corpus)
    theirs = bm25s.BM25(k1=ours.k1, b=ours.b)
    theirs.index([t or [EMPTY_TOKEN] for t in corpus], show_progress=False)
    rng = np.random.default_rng(seed + 10)
    mask = (rng.random(len(corpus)) > 0.3).astype(np.float32)
    for query in (["w0"], ["w3", "w17"], ["w1", "w40", "w79", "w5"]):
        for weight_mask in (None, mask):
            docs, scores = ours.top(query, 10, weight_mask)
            expected_docs, expected_scores = theirs.retrieve([query], k=10, show_progress=False, weight_mask=weight_mask, n_threads=0)
            np.testing.assert_allclose(scores, expected_scores[0], rtol=1e-5)
            # ties may come in either order: each document we rank has bm25s's score at that rank
            all_scores = theirs.get_scores(query) * (1 if weight_mask is None else weight_mask)
            np.testing.assert_allclose(all_scores[docs], expected_scores[0], rtol=1e-5)
            assert len(set(docs.tolist())) == len(docs)
    ours.save(tmp_path / "bm25")
    loaded = Bm25.load(tmp_path / "bm25")
    assert (loaded.k1, loaded.b, loaded.num_docs) == (ours.k1, ours.b, ours.num_docs)
    np.testing.assert_array_equal(loaded.top(["w3", "w17"], 10)[0], ours.top(["w3", "w17"], 10)[0])
    assert loaded.document_frequency("w0") == sum(1 for d in corpus if "w0" in d)
    assert loaded.term_id("no-such-word") is None


def test_an_index_rebuilt_from_term_ids_equals_one_built_from_tokens():
    corpus = _corpus(5)
    extra = _corpus(6, docs=40, vocab=120)  # new terms too
    base = Bm25.build(corpus)
    # keep every other document, in reverse order, and add the new ones in between
    kept = list(range(0, len(corpus), 2))[::-1]
    rows: list[int] = []
    expected_tokens: list[list[str]] = []
    for i, r in enumerate(kept):
        rows.append(r)
        expected_tokens.append(corpus[r])
        if i < len(extra):
            rows.append(-1 - i)
            expected_tokens.append(extra[i])
    updated = base.rebuilt(rows, extra)
    fresh = Bm25.build(expected_tokens, base.k1, base.b)
    assert updated.num_docs == fresh.num_docs == len(expected_tokens)
    for query in (["w0"], ["w3", "w100"], ["w119", "w2", "w50"]):
        a_docs, a_scores = updated.top(query, 15)
        b_docs, b_scores = fresh.top(query, 15)
        np.testing.assert_allclose(a_scores, b_scores, rtol=1e-6)
        assert updated.document_frequency(query[0]) == fresh.document_frequency(query[0])
    removed_only = [t for t in base.vocab if all(t not in d for d in expected_tokens)]
    assert all(updated.term_id(t) is None for t in removed_only)


SEGMENT_SCRIPT = """
import json, sys
from rag import segment
if sys.argv[2] == "full":
    segment.use_full_dictionary()
text = open(sys.argv[1], encoding="utf-8").read()[:30000]
print(json.dumps([segment.tokenize(text), segment.words(text), segment.tagged_words(text[:5000]), segment._READY], ensure_ascii=False))
"""


def _segment(mode: str, cache: Path) -> list:
    env = {"XDG_CACHE_HOME": str(cache), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", SEGMENT_SCRIPT, str(SAMPLE_REPORT), mode], env=env, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout)


def test_jieba_from_the_sqlite_copy_cuts_as_the_full_dictionary(tmp_path):
    first = _segment("lazy", tmp_path)  # no copy yet: loads the full dictionary and writes the copy
    assert first[3] == "full" and list(tmp_path.glob("fagui-rag/jieba-*.sqlite"))
    lazy = _segment("lazy", tmp_path)
    full = _segment("full", tmp_path)
    assert lazy[3] == "lazy" and full[3] == "full"
    assert lazy[:3] == full[:3] == first[:3]
    assert len(lazy[0]) > 1000
