"""`rag eval`: exact JSON keys, metric rules, the baseline and the peer built in the same run."""

from __future__ import annotations

import json

import pytest

from conftest import SHARED
from rag.evaluation import EvalItem, Passage, Prediction, citation_pairs, is_correct, sentence_supported

DEV = SHARED / "eval" / "qa_dev.jsonl"
M_KEYS = {"retrieval", "answer_accuracy", "refusal_recall", "false_refusal_rate", "citation_precision", "latency_ms"}


def test_metric_rules():
    item = EvalItem("x", "q", ("audit-law",), ("独立 行使",), False)
    passage = Passage("audit-law", "第五条 审计机关依照法律规定独立行使审计监督权。")
    good = Prediction("审计机关独立行使审计监督权。[1]", False, {1: passage}, (passage,), 5.0)
    assert is_correct(item, good)
    wrong_source = Prediction(good.answer, False, {1: Passage("budget-law", passage.text)}, (), 5.0)
    assert not is_correct(item, wrong_source)
    assert not is_correct(item, Prediction("未找到。", True, {}, (), 1.0))
    assert sentence_supported("审计机关独立行使审计监督权。", passage.text)
    assert not sentence_supported("审计机关依法独立行使审计监督权。", passage.text)  # 依法 is not in the passage
    assert not sentence_supported("审计机关有99名审计人员。", passage.text)
    invented = Prediction("审计机关独立行使审计监督权。[1]审计机关有99名审计人员。[1]", False, {1: passage}, (), 1.0)
    assert citation_pairs(invented) == (1, 2)


@pytest.mark.slow
def test_cli_eval_writes_exactly_the_specified_keys(corpus_index, tmp_path, capsys):
    from rag.cli import main

    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    code = main(["eval", "--index", str(corpus_index.settings.index_dir), "--dataset", str(DEV), "--json", str(out_json), "--markdown", str(out_md)])
    assert code == 0
    report = json.loads(out_json.read_text(encoding="utf-8"))
    assert set(report) == {"dataset", "n", "n_answerable", "n_refuse", "system", "baseline", "peer", "items"}
    assert (report["n"], report["n_answerable"], report["n_refuse"]) == (25, 22, 3)
    for name in ("system", "baseline", "peer"):
        assert set(report[name]) == M_KEYS
        assert set(report[name]["retrieval"]) == {"hit@1", "hit@5", "mrr"}
        assert set(report[name]["latency_ms"]) == {"p50", "p95"}
    assert len(report["items"]) == 25
    assert {"answer", "refused", "citations", "correct", "latency"} <= set(report["items"][0])
    # The system must beat both reference recipes on the same documents.
    for name in ("baseline", "peer"):
        assert report["system"]["answer_accuracy"] > report[name]["answer_accuracy"]
        assert report["system"]["retrieval"]["mrr"] > report[name]["retrieval"]["mrr"]
    assert "回答准确率" in out_md.read_text(encoding="utf-8")
    assert main(["eval", "--index", str(corpus_index.settings.index_dir), "--dataset", str(tmp_path / "missing.jsonl")]) == 2
