"""`rag verify`: each sentence of a text judged against the indexed passages (FAKE embeddings)."""

from __future__ import annotations

import json

import pytest

from rag.verify import split_claims

TEXT = (
    "# 核对稿\n"
    "审计机关依照法律规定独立行使审计监督权，不受其他行政机关、社会团体和个人的干涉。[1]好的。\n"
    "青禾县审计局2023年开展普法活动15场。\n"
    "被审计单位可以自接到审计报告之日起十日内提出书面意见。\n"
    "明天开封的天气晴朗，适合出游。\n"
)


def test_split_claims_skips_headings_markers_and_short_pieces():
    assert split_claims(TEXT) == [
        "审计机关依照法律规定独立行使审计监督权，不受其他行政机关、社会团体和个人的干涉。",
        "青禾县审计局2023年开展普法活动15场。",
        "被审计单位可以自接到审计报告之日起十日内提出书面意见。",
        "明天开封的天气晴朗，适合出游。",
    ]
    assert split_claims("甲；乙。\r\n第一条 审计机关依法审计；第二条 国家实行审计监督制度。") == ["第一条 审计机关依法审计；", "第二条 国家实行审计监督制度。"]
    assert split_claims("") == [] and split_claims("# 只有标题\n") == []


def test_verdicts(tiny_components):
    verdicts = [tiny_components.verifier.verify_sentence(s) for s in split_claims(TEXT)]
    assert [v.verdict for v in verdicts] == ["supported", "contradicted", "contradicted", "unsupported"]
    quote, number, modality, unrelated = verdicts
    assert (quote.hit.source, quote.hit.article) == ("sample-audit-law", "第三条") and quote.reasons == ()
    assert number.hit.source == "qinghe-audit-bureau-2023-report" and any("数字" in r for r in number.reasons)
    assert any("应当/可以/不得" in r for r in modality.reasons)
    assert unrelated.reasons
    data = number.to_dict()
    assert set(data) == {"sentence", "verdict", "score", "citation", "reasons"}
    assert data["citation"]["source"] == "qinghe-audit-bureau-2023-report"


def test_a_verifier_under_another_support_model_on_the_same_index(tiny_components):
    """`Components.verifier_for(model)`: the same retriever and index, the given model's weights and
    verify threshold (what eval/calibrate_support.py judges with while it fits, without opening the
    index again); `verifier` is the one of the fitted file."""
    from dataclasses import replace

    from rag.citations import SupportModel

    fitted = SupportModel.load(tiny_components.settings.answer.support_model_file)
    assert tiny_components.verifier.min_score == fitted.verify_threshold  # with the pair reader it names
    # without a reader, the weights and threshold fitted without it
    assert tiny_components.verifier_for(fitted).min_score == fitted.without_reader().verify_threshold
    strict = replace(fitted, verify_threshold=1.0, plain=None)  # nothing reaches a probability of 1
    verifier = tiny_components.verifier_for(strict)
    assert verifier.retriever is tiny_components.retriever and verifier.min_score == 1.0
    quote = "审计机关依照法律规定独立行使审计监督权，不受其他行政机关、社会团体和个人的干涉。"
    assert tiny_components.verifier.verify_sentence(quote).verdict == "supported"
    assert verifier.verify_sentence(quote).verdict != "supported"


@pytest.fixture
def tiny_index_dir(tiny_components, fake_settings):
    """The tiny index, opened by the CLI with the same FAKE modes (fake_settings sets them in the environment)."""
    return str(tiny_components.settings.index_dir)


def test_cli_verify_file_and_stdin(tiny_index_dir, tmp_path, monkeypatch, capsys):
    import io

    from rag.cli import main

    path = tmp_path / "draft.txt"
    path.write_text(TEXT, encoding="utf-8")
    assert main(["verify", "--index", tiny_index_dir, "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["verdict"] for d in data] == ["supported", "contradicted", "contradicted", "unsupported"]
    monkeypatch.setattr("sys.stdin", io.StringIO("青禾县审计局2023年开展普法活动15场。\n"))
    assert main(["verify", "--index", tiny_index_dir]) == 0
    out = capsys.readouterr().out
    assert "【与原文不符】青禾县审计局2023年开展普法活动15场。" in out and "共 1 句" in out
    assert main(["verify", "--index", tiny_index_dir, str(tmp_path / "missing.txt")]) == 2
    assert "无法读取" in capsys.readouterr().err


def test_a_checked_sentence_is_fitted_against_the_indexed_passage_that_holds_its_excerpt(corpus_index):
    """The fit judges a written sentence as `rag verify` does: against the whole indexed passage (with
    its title and section) that holds the excerpt it was written from; an excerpt found nowhere stays."""
    from rag.calibrate import SupportPair, in_place

    excerpt = "被审计单位应当自接到审计组的审计报告之日起十日内，将其书面意见送交审计组。"
    pairs = [
        SupportPair("a", "audit-law", excerpt, "十日内交书面意见。", True, "paraphrase", evidence=True),
        SupportPair("b", "audit-law", "这句话不在任何条文里出现过。", "无关。", False, "unrelated", evidence=True),
        SupportPair("c", "audit-law", excerpt, "十日内交书面意见。", True, "paraphrase"),
    ]
    placed = in_place(pairs, corpus_index.snapshot())
    assert placed[0].passage != excerpt and "第四十四条" in placed[0].passage and "审计法" in (placed[0].context or "")
    assert placed[1] == pairs[1] and placed[2] == pairs[2]


def test_rag_verify_is_cross_validated_by_document(corpus_components):
    """Each fold's sentences are judged with a checker fitted on the other folds' documents only; a changed
    figure never passes, whichever fold judges it."""
    from rag.calibrate import (
        SupportPair,
        cross_validate_verify,
        fold_support_model,
        in_place,
        judge_sentences,
        out_of_fold_judged,
        source_folds,
        support_rows,
    )
    from rag.citations import judge

    facts = [
        ("audit-law", "被审计单位应当自接到审计组的审计报告之日起十日内，将其书面意见送交审计组。", "被审计单位收到审计报告后十日内要把书面意见交给审计组。", "被审计单位收到审计报告后二十日内要把书面意见交给审计组。"),
        ("administrative-penalty-law", "违法行为在二年内未被发现的，不再给予行政处罚", "违法行为两年内没被发现的，不再给予行政处罚。", "违法行为三年内没被发现的，不再给予行政处罚。"),
        ("state-compensation-law", "赔偿请求人请求国家赔偿的时效为两年", "请求国家赔偿的时效是两年。", "请求国家赔偿的时效是五年。"),
        ("administrative-licensing-law", "行政机关应当自受理行政许可申请之日起二十日内作出行政许可决定", "行政机关要在受理许可申请后二十日内作出决定。", "行政机关要在受理许可申请后三十日内作出决定。"),
    ]
    sentences = [
        SupportPair(f"{source}-{n}", source, excerpt, text, n == 0, "paraphrase" if n == 0 else "number", evidence=True)
        for source, excerpt, *texts in facts
        for n, text in enumerate(texts)
    ]
    pairs = in_place(sentences, corpus_components.index.snapshot())
    assert len({f for f in source_folds(p.source for p in pairs).values()}) > 1
    judged, rows = judge_sentences(corpus_components.verifier, sentences), support_rows(pairs, None)
    result = cross_validate_verify(judged, pairs, rows, folds=2)
    assert result["sentences"] == len(sentences)
    assert result["altered_supported"] == 0.0 and 0.0 <= result["faithful_supported"] <= 1.0
    # the sentences a `rag verify` threshold is chosen on: each judged by the checker fitted without its fold
    fold_of = source_folds([p.source for p in pairs] + [p.source for p, _ in judged], 2)
    outside = out_of_fold_judged(judged, pairs, rows, folds=2)
    assert sorted(p.sentence for p, _ in outside) == sorted(p.sentence for p in sentences)
    for sentence, passages in outside:
        model = fold_support_model(pairs, rows, [i for i, p in enumerate(pairs) if fold_of[p.source] != fold_of[sentence.source]])
        original = next(js for p, js in judged if p is sentence)
        assert [s.score for s, _ in passages] == [judge(s.features, model).score for s, _ in original]


class FakeVerifier:
    """A FAKE verifier: one passage per sentence, whose feature `x` it is told; counts its judgements."""

    def __init__(self, x: float) -> None:
        self.x, self.calls = x, 0

    def judge_passages(self, sentence: str) -> list:
        from types import SimpleNamespace

        from rag.citations import Support

        self.calls += 1
        return [(Support("supported", 0.9, {"x": self.x, "length": float(len(sentence))}), SimpleNamespace(chunk_id=f"c-{sentence}"))]


def test_cached_judgements_are_reused_only_while_a_sample_judged_again_agrees(tmp_path):
    """`cached_judgements` (eval/calibrate_support.py): the training sentences are judged once and kept;
    a rerun re-judges a sample and reads the rest back; a changed checker (another feature value) or
    `rejudge` judges every sentence again."""
    from rag.calibrate import SupportPair, cached_judgements

    pairs = [SupportPair(f"p{i}", f"doc{i % 3}", "段落", f"第{i}句", True, "paraphrase") for i in range(30)]
    saved = tmp_path / "judged.pkl"
    first = FakeVerifier(0.5)
    judged = cached_judgements(saved, pairs, lambda p: first, sample=5)
    assert first.calls == 30 and saved.exists() and [p for p, _ in judged] == pairs
    same = FakeVerifier(0.5)
    again = cached_judgements(saved, pairs, lambda p: same, sample=5)
    assert same.calls == 5 and [js[0][0].features for _, js in again] == [js[0][0].features for _, js in judged]
    changed = FakeVerifier(0.7)
    fresh = cached_judgements(saved, pairs, lambda p: changed, sample=5)
    assert 30 < changed.calls <= 5 + 30 and {js[0][0].features["x"] for _, js in fresh} == {0.7}
    forced = FakeVerifier(0.7)
    cached_judgements(saved, pairs, lambda p: forced, rejudge=True, sample=5)
    assert forced.calls == 30
    fewer = FakeVerifier(0.7)  # another set of pairs: judged again
    assert len(cached_judgements(saved, pairs[:10], lambda p: fewer, sample=5)) == 10 and fewer.calls == 10
    saved.write_bytes(b"not a pickle")
    broken = FakeVerifier(0.7)
    assert len(cached_judgements(saved, pairs, lambda p: broken, sample=5)) == 30 and broken.calls == 30


def test_a_sentence_is_supported_up_to_the_score_of_its_best_close_passage():
    """`supported_up_to` gives, for each sentence, the highest `rag verify` threshold that still passes it,
    as `decide` judges at every threshold."""
    from types import SimpleNamespace

    from rag.calibrate import SupportPair, supported_up_to
    from rag.citations import Support
    from rag.verify import decide

    def passage(verdict: str, score: float, closeness: float) -> tuple:
        return Support(verdict, score, {"bigram_coverage": closeness}), SimpleNamespace(chunk_id=f"{verdict}-{score}")

    judged = [
        (SupportPair("a", "d", "", "甲句", True, "paraphrase"), [passage("supported", 0.7, 0.8), passage("supported", 0.9, 0.1)]),
        (SupportPair("b", "d", "", "乙句", False, "number"), [passage("contradicted", 0.2, 0.9)]),
        (SupportPair("c", "d", "", "丙句", False, "entity"), []),
    ]
    scored = supported_up_to(judged)
    assert scored == [(True, 0.7), (False, -1.0), (False, -1.0)]  # the far passage (0.9) does not count
    for (p, js), (_, up_to) in zip(judged, scored):
        for t in (0.0, 0.5, 0.69, 0.7, 0.71, 1.0):
            assert (decide(p.sentence, js, t).verdict == "supported") == (up_to >= t)


def test_the_verify_threshold_meets_both_goals_on_the_most_sets_and_is_cross_validated_by_set():
    """`threshold_by_sets`: the threshold under which most sets keep faithful sentences at 90 % or more and
    altered ones at 10 % or fewer; `leave_one_set_out` judges each set at the threshold of the others."""
    from rag.calibrate import leave_one_set_out, set_rates, threshold_by_sets

    def written(faithful: list[float], altered: list[float]) -> list[tuple[bool, float]]:
        return [(True, s) for s in faithful] + [(False, s) for s in altered]

    # faithful sentences score 0.6-0.95; altered ones 0.1-0.65: from 0.60 up to 0.62 both goals hold on all three
    sets = {
        "a": written([0.95] * 9 + [0.62], [0.1] * 9 + [0.65]),
        "b": written([0.9] * 9 + [0.7], [0.2] * 9 + [0.6]),
        "c": written([0.8] * 10, [-1.0] * 8 + [0.55, 0.58]),
    }
    assert set_rates(sets["c"], 0.56) == (1.0, 0.1) and set_rates(sets["c"], 0.5) == (1.0, 0.2)
    threshold, chosen = threshold_by_sets(sets)
    assert chosen["sets_meeting_goals"] == 3 and chosen["threshold"] == threshold
    assert all(set_rates(s, threshold)[0] >= 0.9 and set_rates(s, threshold)[1] <= 0.1 for s in sets.values())
    assert chosen["by_set"] == {n: dict(zip(("faithful_supported", "altered_supported"), set_rates(s, threshold))) for n, s in sets.items()}
    assert 0.58 < threshold <= 0.9  # at 0.58 or below, set c passes two altered sentences of ten
    # a set no threshold helps does not move the choice away from the others
    hopeless = {**sets, "d": written([0.3] * 10, [0.9] * 10)}
    assert threshold_by_sets(hopeless)[1]["sets_meeting_goals"] == 3
    loso = leave_one_set_out(hopeless)
    assert loso["sets"] == 4 and set(loso["by_set"]) == set(hopeless)
    assert loso["by_set"]["d"]["threshold"] == threshold_by_sets(sets)[0]
    assert loso["by_set"]["d"] == {"threshold": threshold, "faithful_supported": 0.0, "altered_supported": 1.0}
    assert loso["sets_meeting_goals"] == sum(1 for r in loso["by_set"].values() if r["faithful_supported"] >= 0.9 and r["altered_supported"] <= 0.1)
    # goals out of reach on most sets: the threshold chosen otherwise is kept, and so in each fold left out
    out_of_reach = {**hopeless, **{k: hopeless["d"] for k in "efg"}}  # three sets of seven
    kept, why = threshold_by_sets(out_of_reach, fallback=0.5)
    assert kept == 0.5 and why["fallback"] and why["by_set"]["c"]["altered_supported"] == 0.2
    assert threshold_by_sets(out_of_reach)[0] == threshold  # without a fallback: the most sets, still
    # a fold without a set that can meet the goals keeps 0.5; one without a hopeless set has three of six
    folds = leave_one_set_out(out_of_reach, fallback=0.5)["by_set"]
    assert {n: folds[n]["threshold"] for n in "abc"} == dict.fromkeys("abc", 0.5)
    assert all(folds[n]["threshold"] == threshold_by_sets({k: v for k, v in out_of_reach.items() if k != n})[0] > 0.58 for n in "defg")
