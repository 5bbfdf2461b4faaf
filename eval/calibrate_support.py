"""Fit the support checker (`rag verify`, LLM sentence checks) on the pairs of PAIR_FILES, write it as data.

Cross-validated by document; the threshold keeps altered sentences judged supported at or below 10 %.
A checked sentence is fitted against the indexed passage that holds its excerpt (as `rag verify` judges it).
`rag verify` is judged against the index of every evaluation document (the sample report, the laws,
the six other bureaus' reports and the organisation fixtures), so a sentence about any of them finds its
passage; its threshold is fitted on the training sentences, cross-validated, then measured on the
held-out sets (sentences never used to fit). Writes rag/data/support_model.json and
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
from rag.citations import SUPPORT_MODEL_FILE, SupportModel  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.evaluation import eval_setups, setup_components  # noqa: E402
from rag.ingest import ingest_paths  # noqa: E402

# Sentence/passage pairs fitted on: written for fitting, and the earlier held-out `rag verify` sets (each
# moved into training once a newer one, written by someone who had not seen the checker, replaced it).
PAIR_FILES = ("support_pairs.jsonl", "verify_pairs.jsonl", "verify_fresh.jsonl", *(f"verify_fresh{i}.jsonl" for i in range(2, 14)))
# Written by helpers who saw neither the checker nor any other sentence; measured, never fitted on.
HOLDOUT_FILES = ("verify_fresh14.jsonl", "verify_fresh15.jsonl", "verify_fresh16.jsonl", "verify_fresh17.jsonl", "verify_fresh18.jsonl", "verify_fresh19.jsonl", "verify_fresh20.jsonl")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default=str(ROOT / "index-eval"), help="folder of the evaluation indexes")
    parser.add_argument("--pairs", nargs="+", default=[str(ROOT / "eval" / n) for n in PAIR_FILES], help="training pairs (JSONL)")
    parser.add_argument("--holdout", nargs="*", default=[str(ROOT / "eval" / n) for n in HOLDOUT_FILES], help="held-out sentences, never fitted on")
    parser.add_argument("--out", default=str(SUPPORT_MODEL_FILE))
    parser.add_argument("--report", default=str(ROOT / "eval" / "results" / "support.md"))
    args = parser.parse_args()
    settings = load_settings()
    everything, titles, similarity = every_document(settings, Path(args.index))
    written = load_pairs(*map(Path, args.pairs))
    pairs = in_place(written, everything.index.snapshot())
    rows = support_rows(pairs, similarity, titles)
    model, cv = fit_support(pairs, similarity, titles, rows=rows)
    payload = {
        "about": f"Fitted by eval/calibrate_support.py on eval/{{{','.join(Path(p).stem for p in args.pairs)}}}.jsonl (cross-validated by document; each checked sentence against the indexed passage holding its excerpt). "
        "Raw logistic weights over the features of rag.citations.support_features; hard mismatches never pass.",
        **model,
        "cv": cv,
        "semantic": settings.answer.semantic,
    }
    write_atomically(Path(args.out), json.dumps(payload, ensure_ascii=False, indent=1))
    # The verify threshold is fitted on the training sentences, each judged by retrieval over every document
    # under the new weights.
    judged = judge_sentences(everything.verifier_for(SupportModel.load(Path(args.out))), written)  # each retrieved and judged once, for both
    verify_t, verify_fit = verify_threshold(judged)
    verify_cv = cross_validate_verify(judged, pairs, rows)
    payload["verify_threshold"] = verify_t
    payload["verify_fit"] = verify_fit
    payload["verify_cross_validated"] = verify_cv
    write_atomically(Path(args.out), json.dumps(payload, ensure_ascii=False, indent=1))
    verifier = everything.verifier_for(SupportModel.load(Path(args.out)))  # the new weights and verify threshold
    held = {Path(h).name: evaluate_verify(verifier, Path(h)) for h in args.holdout if Path(h).exists()}
    everything.close()
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
    for name, result in held.items():
        lines += ["", f"`rag verify` 留出句子（`{name}`，{result['sentences']} 句，从未参与拟合）：忠实 {result['faithful_supported']:.1%} 判为有依据，"
                  f"改动 {result['altered_supported']:.1%} 判为有依据", "", "```", json.dumps(result["verdicts_by_kind"], ensure_ascii=False), "```"]
    write_report(Path(args.report), lines, report)
    return 0


def every_document(settings, index: Path):
    """The components over every evaluation document (indexed if need be), their titles, and the
    sentence encoder's pair similarity the checker reads (None without an encoder)."""
    bureaus = eval_setups(settings)[1]
    everything = setup_components(settings, bureaus, index)
    ingest_paths(everything.index, bureaus.paths, show_bar=False)
    titles = {r.source: r.title for r in everything.index.documents()}
    encoder = everything.sentence_encoder
    return everything, titles, encoder.pair_similarities if encoder is not None else None


def write_report(path: Path, lines: list[str], report: dict) -> None:
    """The Markdown lines and their JSON beside (`.json`), and the lines on the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
