"""Fit the support checker (`rag verify`, LLM sentence checks) on eval/support_pairs.jsonl, verify_pairs.jsonl and verify_fresh{,2,3,4,5,6,7,8}.jsonl, write it as data.

Cross-validated by document; the threshold keeps altered sentences judged supported at or below 10 %.
A checked sentence is fitted against the indexed passage that holds its excerpt (as `rag verify` judges it).
Then `rag verify` is measured on eval/verify_fresh9.jsonl (sentences never used to fit), against
the index of the sample report and the laws. Writes rag/data/support_model.json and
eval/results/support.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.calibrate import (  # noqa: E402
    cross_validate_verify,
    evaluate_verify,
    fit_support,
    in_place,
    judge_sentences,
    load_pairs,
    support_rows,
    verify_threshold,
    write_atomically,
)
from rag.citations import SUPPORT_MODEL_FILE  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.evaluation import eval_setups, setup_components  # noqa: E402
from rag.ingest import ingest_paths  # noqa: E402

# Sentence/passage pairs fitted on: written for fitting, and the earlier held-out `rag verify` sets (each
# moved into training once a newer one, written by someone who had not seen the checker, replaced it).
PAIR_FILES = ("support_pairs.jsonl", "verify_pairs.jsonl", "verify_fresh.jsonl", "verify_fresh2.jsonl", "verify_fresh3.jsonl", "verify_fresh4.jsonl", "verify_fresh5.jsonl", "verify_fresh6.jsonl", "verify_fresh7.jsonl", "verify_fresh8.jsonl")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default=str(ROOT / "index-eval"), help="folder of the evaluation indexes")
    parser.add_argument("--pairs", nargs="+", default=[str(ROOT / "eval" / n) for n in PAIR_FILES], help="training pairs (JSONL)")
    parser.add_argument("--holdout", default=str(ROOT / "eval" / "verify_fresh14.jsonl"), help="held-out sentences, never fitted on")
    parser.add_argument("--out", default=str(SUPPORT_MODEL_FILE))
    parser.add_argument("--report", default=str(ROOT / "eval" / "results" / "support.md"))
    args = parser.parse_args()
    settings = load_settings()
    shared, bureaus = eval_setups(settings)[:2]
    everything = setup_components(settings, bureaus, Path(args.index))
    ingest_paths(everything.index, bureaus.paths, show_bar=False)
    titles = {r.source: r.title for r in everything.index.documents()}
    encoder = everything.sentence_encoder
    similarity = encoder.pair_similarities if encoder is not None else None
    pairs = in_place(load_pairs(*map(Path, args.pairs)), everything.index.snapshot())
    rows = support_rows(pairs, similarity, titles)
    model, cv = fit_support(pairs, similarity, titles, rows=rows)
    setup = shared
    payload = {
        "about": "Fitted by eval/calibrate_support.py on eval/support_pairs.jsonl, eval/verify_pairs.jsonl and eval/verify_fresh{,2,3,4,5,6,7,8}.jsonl (cross-validated by document; each checked sentence against the indexed passage holding its excerpt). "
        "Raw logistic weights over the features of rag.citations.support_features; hard mismatches never pass.",
        **model,
        "cv": cv,
        "semantic": settings.answer.semantic,
    }
    write_atomically(Path(args.out), json.dumps(payload, ensure_ascii=False, indent=1))
    components = setup_components(settings.with_(answer={"support_model_file": Path(args.out)}), setup, Path(args.index))  # the new weights
    ingest_paths(components.index, setup.paths, show_bar=False)
    # The verify threshold is fitted on the training sentences about the shared corpus, judged by retrieval.
    known = {r.source for r in components.index.documents()}
    train_pairs = [p for p in load_pairs(*map(Path, args.pairs)) if p.source in known]
    judged = judge_sentences(components.verifier, train_pairs)  # each retrieved and judged once, for both
    verify_t, verify_fit = verify_threshold(judged)
    verify_cv = cross_validate_verify(judged, pairs, rows)
    payload["verify_threshold"] = verify_t
    payload["verify_fit"] = verify_fit
    payload["verify_cross_validated"] = verify_cv
    write_atomically(Path(args.out), json.dumps(payload, ensure_ascii=False, indent=1))
    components = setup_components(settings.with_(answer={"support_model_file": Path(args.out)}), setup, Path(args.index))
    held = evaluate_verify(components.verifier, Path(args.holdout)) if Path(args.holdout).exists() else {}
    report = {"cross_validated": cv, "verify_fit": verify_fit, "verify_cross_validated": verify_cv, "verify_holdout": held}
    lines = [
        f"支持判定（{cv['pairs']} 对，按文件分组 5 折交叉验证）：忠实改写判为有依据 {cv['cv_faithful_supported']:.1%}，"
        f"改动事实判为有依据 {cv['cv_altered_supported']:.1%}；阈值 {cv['threshold']:.3f}",
        "",
        "| 改动类型 | 判为有依据 |",
        "|---|---:|",
        *[f"| {k} | {v:.1%} |" for k, v in cv["cv_by_kind_supported"].items()],
    ]
    lines += ["", f"`rag verify` 阈值按训练句子（经检索判定，{verify_fit['sentences']} 句）选定为 {verify_t:.3f}：训练句子上忠实 "
              f"{verify_fit.get('faithful_supported', 0):.1%}、改动 {verify_fit.get('altered_supported', 0):.1%} 判为有依据",
              "", f"`rag verify` 交叉验证（训练句子经检索判定，按文件分组 5 折，每折的模型与两个阈值只用其余各折拟合）：忠实 "
              f"{verify_cv['faithful_supported']:.1%}、改动 {verify_cv['altered_supported']:.1%} 判为有依据"]
    if held:
        lines += ["", f"`rag verify` 留出句子（`{Path(args.holdout).name}`，{held['sentences']} 句，从未参与拟合）：忠实 {held['faithful_supported']:.1%} 判为有依据，"
                  f"改动 {held['altered_supported']:.1%} 判为有依据", "", "```", json.dumps(held["verdicts_by_kind"], ensure_ascii=False), "```"]
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    Path(args.report).with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
