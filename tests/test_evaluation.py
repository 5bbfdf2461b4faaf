"""rag.evaluation: metric rules, question sets and setups, `evaluate` and `rag eval` with the baselines."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED

from rag.evaluation import (
    EvalItem,
    Passage,
    Prediction,
    citation_pairs,
    eval_setups,
    is_correct,
    load_dataset,
    percentile,
    question_sets,
)
from rag.experiment import evaluate, markdown_table

DEV = SHARED / "eval" / "qa_dev.jsonl"
M_KEYS = {"retrieval", "answer_accuracy", "refusal_recall", "false_refusal_rate", "citation_precision", "latency_ms"}


def test_metric_rules():
    item = EvalItem("x", "q", ("audit-law",), ("独立 行使",), False)
    passage = Passage("audit-law", "第五条 审计机关依照法律规定独立行使审计监督权。")
    good = Prediction("审计机关依照法律规定独立行使审计监督权。[1]", False, {1: passage}, (passage,), 5.0)
    assert is_correct(item, good)
    assert not is_correct(item, Prediction(good.answer, False, {1: Passage("budget-law", passage.text)}, (), 5.0))  # wrong source
    assert not is_correct(item, Prediction("未找到。", True, {}, (), 1.0))
    assert is_correct(EvalItem("r", "q", (), (), True), Prediction("未找到。", True, {}, (), 1.0))
    invented = Prediction("审计机关依照法律规定独立行使审计监督权。[1]审计机关有99名审计人员。[1]", False, {1: passage}, (), 1.0)
    assert citation_pairs(invented) == (1, 2)
    assert citation_pairs(Prediction("没有引用的句子。", False, {}, (), 1.0)) == (0, 0)
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0 and percentile([], 95) == 0.0


def test_load_dataset(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "a", "question": "审计法第五条", "expected": {"source": "audit-law", "contains": ["独立"]}}\n\n'
        '{"id": "b", "question": "那第六条呢？", "history": ["审计法第五条"], "category": "followup", "expected": {"source": ["audit-law", "x"], "contains": []}}\n'
        '{"id": "c", "question": "天气", "expected": {"refuse": true}}\n',
        encoding="utf-8",
    )
    a, b, c = load_dataset(path)
    assert (a.sources, a.contains, a.refuse) == (("audit-law",), ("独立",), False)
    assert (b.sources, b.history, b.category) == (("audit-law", "x"), ("审计法第五条",), "followup")
    assert c.refuse and c.sources == ()
    path.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match="第1行"):
        load_dataset(path)


def test_question_sets_and_setups(fake_settings):
    sets = {s.name: s for s in question_sets(fake_settings)}
    assert {"dev", "project", "multi", "paraphrase", "orgs", "holdout", "stranger", "fresh", "fresh2", "fresh3", "fresh4"} <= set(sets)
    assert all(s.path.exists() for s in sets.values()), [s.path for s in sets.values() if not s.path.exists()]
    assert {s.role for s in sets.values()} == {"train", "held-out"} and sets["fresh38"].role == "train" and sets["fresh49"].role == "held-out"
    shared, bureaus = eval_setups(fake_settings)
    assert (shared.name, shared.org, bureaus.name, bureaus.org) == ("shared", None, "bureaus", "开封市审计局")
    assert set(shared.paths) < set(bureaus.paths)
    assert set(shared.sets) | set(bureaus.sets) == set(sets)  # every set is asked against the index it was written for


def test_evaluate_on_a_small_set(tiny_components, tmp_path):
    dataset = tmp_path / "tiny.jsonl"
    dataset.write_text(
        '{"id": "1", "question": "审计法第三条", "expected": {"source": "sample-audit-law", "contains": ["独立行使审计监督权"]}}\n'
        '{"id": "2", "question": "审计条例第二条", "expected": {"source": "sample-audit-law-implementing-regulations", "contains": ["预算执行"]}}\n'
        '{"id": "3", "question": "《政府采购法》第十条", "expected": {"refuse": true}}\n',
        encoding="utf-8",
    )
    report = evaluate(tiny_components, dataset, with_baseline=False, show_bar=False)
    assert set(report) == {"dataset", "n", "n_answerable", "n_refuse", "system", "baseline", "peer", "items"}
    assert (report["n"], report["n_answerable"], report["n_refuse"]) == (3, 2, 1)
    system = report["system"]
    assert set(system) == M_KEYS
    assert system["answer_accuracy"] == 1.0 and system["refusal_recall"] == 1.0 and system["citation_precision"] == 1.0
    assert system["retrieval"]["hit@1"] == 1.0
    assert report["baseline"] is None and len(report["items"]) == 3
    table = markdown_table(report)
    assert "回答准确率 | 1.000" in table and "tiny.jsonl" in table


@pytest.mark.slow
def test_cli_eval_writes_exactly_the_specified_keys(assistant, tmp_path, capsys):
    """`rag eval` with the baseline and the peer built in the same run, on the shared setup."""
    from rag.cli import main

    index_dir = str(assistant.settings.index_dir)
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["eval", "--index", index_dir, "--dataset", str(DEV), "--json", str(out_json), "--markdown", str(out_md)]) == 0
    report = json.loads(out_json.read_text(encoding="utf-8"))
    assert set(report) == {"dataset", "n", "n_answerable", "n_refuse", "system", "baseline", "peer", "items"}
    assert (report["n"], report["n_answerable"], report["n_refuse"]) == (25, 22, 3)
    for name in ("system", "baseline", "peer"):
        assert set(report[name]) == M_KEYS
        assert set(report[name]["retrieval"]) == {"hit@1", "hit@5", "mrr"}
        assert set(report[name]["latency_ms"]) == {"p50", "p95"}
    assert len(report["items"]) == 25
    assert {"answer", "refused", "citations", "correct", "latency", "baseline", "peer"} <= set(report["items"][0])
    # The system must beat both reference recipes on the same documents.
    for name in ("baseline", "peer"):
        assert report["system"]["answer_accuracy"] > report[name]["answer_accuracy"]
        assert report["system"]["retrieval"]["mrr"] > report[name]["retrieval"]["mrr"]
    assert "回答准确率" in out_md.read_text(encoding="utf-8")
    assert main(["eval", "--index", index_dir, "--dataset", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["eval", "--index", str(tmp_path / "empty-index"), "--dataset", str(DEV)]) == 2
    assert "索引为空" in capsys.readouterr().err
