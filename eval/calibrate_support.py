"""Fit the support checker (`rag verify`, LLM sentence checks) on the pairs of PAIR_FILES, write it as data.

Cross-validated by document; the threshold keeps altered sentences judged supported at or below 10 %.
A checked sentence is fitted against the indexed passage that holds its excerpt (as `rag verify` judges it).
`rag verify` is judged against the index of every evaluation document (the sample report, the laws,
the six other bureaus' reports and the organisation fixtures), so a sentence about any of them finds its
passage; its threshold is chosen on the training sentences as judged by the checker fitted without
their fold of documents (scores as they fall for sentences it has not seen), cross-validated, then
measured on the held-out sets (sentences never used to fit). The pair reader (rag/reader.py) is fitted five times
without one fold of documents, so every training pair and every passage retrieved for a training
sentence carries an out-of-fold logit, and once on every pair (shipped); the fit without it is kept
beside (`without_reader`). Writes rag/data/support_model.json, rag/data/support_reader.npz and
eval/results/support.{md,json}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from rag.calibrate import (  # noqa: E402
    FOLDS,
    cached_judgements,
    cross_validate_verify,
    evaluate_verify,
    fit_readers,
    fit_support,
    in_place,
    load_pairs,
    out_of_fold_judged,
    out_of_fold_logits,
    source_folds,
    support_rows,
    verify_threshold,
    write_atomically,
)
from rag.citations import SUPPORT_MODEL_FILE, SupportModel, judge  # noqa: E402
from rag.components import LazyReader  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.evaluation import eval_setups, setup_components  # noqa: E402
from rag.ingest import ingest_paths  # noqa: E402

# Sentence/passage pairs fitted on: written for fitting, and the earlier held-out `rag verify` sets (each
# moved into training once a newer one, written by someone who had not seen the checker, replaced it).
PAIR_FILES = ("support_pairs.jsonl", "verify_pairs.jsonl", "verify_fresh.jsonl", *(f"verify_fresh{i}.jsonl" for i in range(2, 33)))
READER_FILE = "support_reader.npz"  # beside the support model
# Written by helpers who saw neither the checker nor any other sentence; measured, never fitted on.
HOLDOUT_FILES = tuple(f"verify_fresh{i}.jsonl" for i in range(33, 42))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default=str(ROOT / "index-eval"), help="folder of the evaluation indexes")
    parser.add_argument("--pairs", nargs="+", default=[str(ROOT / "eval" / n) for n in PAIR_FILES], help="training pairs (JSONL)")
    parser.add_argument("--holdout", nargs="*", default=[str(ROOT / "eval" / n) for n in HOLDOUT_FILES], help="held-out sentences, never fitted on")
    parser.add_argument("--out", default=str(SUPPORT_MODEL_FILE))
    parser.add_argument("--report", default=str(ROOT / "eval" / "results" / "support.md"))
    parser.add_argument("--no-reader", action="store_true", help="fit without the pair reader (no torch; about 5 minutes instead of 70)")
    parser.add_argument("--rejudge", action="store_true", help="judge the training sentences again instead of reading them back from the index folder")
    parser.add_argument("--measure-only", action="store_true", help="fit nothing: measure the checker in --out on the held-out sentences (eval/results/support_holdout.{md,json})")
    args = parser.parse_args()
    settings = load_settings()
    out = Path(args.out)
    everything, titles, similarity = every_document(settings, Path(args.index))
    if args.measure_only:
        held = measure_held_out(everything, SupportModel.load(out), args.holdout)
        everything.close()
        write_report(Path(args.report).with_name("support_holdout.md"), [f"支持判定模型：`{out.name}`（未重新拟合）", "", *held_out_lines(held)], {"model": out.name, "verify_holdout": held})
        return 0
    written = load_pairs(*map(Path, args.pairs))
    pairs = in_place(written, everything.index.snapshot())
    inputs: list = []  # what the pair reader reads of each pair, recorded with the features
    rows = support_rows(pairs, similarity, titles, inputs)
    plain, plain_cv = fit_support(pairs, similarity, titles, rows=rows)
    fold_of = source_folds(p.source for p in pairs)
    started = time.time()
    fitted = fit_reader(pairs, inputs, Path(args.index) / "support_readers") if not args.no_reader else None
    fit_minutes = round((time.time() - started) / 60, 1)  # the six fits (read back from the cache when unchanged)
    # the training sentences as retrieved and judged: kept under the index (the features do not depend on the weights)
    if fitted is None:
        model, cv, read_rows = plain, plain_cv, rows
        verifiers = [everything.verifier_for(SupportModel.from_dict(plain))] * FOLDS
    else:
        fold_readers, full, logits = fitted
        read_rows = [{**r, "reader": v} for r, v in zip(rows, logits)]
        model, cv = fit_support(pairs, similarity, titles, rows=read_rows)
        # each fold's sentences judged with the reader fitted without that fold: its logits are out of fold
        verifiers = [everything.verifier_for(SupportModel.from_dict(model), reader.logits) for reader in fold_readers]
        full.save(out.with_name(READER_FILE))
    saved = judged_cache(Path(args.index), args.pairs, fitted[0] if fitted else None)
    judged = cached_judgements(saved, written, lambda p: verifiers[fold_of[p.source]], args.rejudge, progress=_bar)
    payload: dict = {
        "about": f"Fitted by eval/calibrate_support.py on eval/{{{','.join(Path(p).stem for p in args.pairs)}}}.jsonl (cross-validated by document; each checked sentence against the indexed passage holding its excerpt). "
        "Raw logistic weights over the features of rag.citations.support_features; hard mismatches never pass."
        + (" `reader`: the logit of the pair reader in `reader_file` (rag/reader.py), out of fold while fitting; "
           "`without_reader`: the same fit without it, used when no reader runs." if fitted else ""),
        **fitted_verify(model, cv, judged, pairs, read_rows),
        "semantic": settings.answer.semantic,
    }
    if fitted is not None:
        payload["reader_file"] = READER_FILE
        payload["reader_fit"] = {**fitted[1].meta, "minutes": fit_minutes}
        plain_model = SupportModel.from_dict(plain)  # the reader's feature zeroed: these passages judged as when no reader runs
        payload["without_reader"] = fitted_verify(plain, plain_cv, [(p, [(judge({**s.features, "reader": 0.0}, plain_model), h) for s, h in js]) for p, js in judged], pairs, rows)
    write_atomically(out, json.dumps(payload, ensure_ascii=False, indent=1))
    held = measure_held_out(everything, SupportModel.load(out), args.holdout)
    everything.close()
    write_report(Path(args.report), report_lines(payload, held), {"fit": payload, "verify_holdout": held})
    return 0


def _bar(items, what: str):
    return tqdm(items, desc=what, unit="句")


def fit_reader(pairs, inputs, cache: Path, options=None):
    """Fold readers, the reader on every pair and each pair's out-of-fold logit (`rag.calibrate.fit_readers`),
    with a bar of the fits and their steps."""
    sources = [p.source for p in pairs]
    with tqdm(total=FOLDS + 1, desc="阅读器拟合（5 折 + 全部）", unit="次") as bar:

        def steps(name: str, done: int, total: int) -> None:
            bar.set_postfix_str(f"{name} {done}/{total} 步")
            if done == total:
                bar.update(1)

        fold_readers, full = fit_readers(inputs, [int(p.supported) for p in pairs], sources, options, cache, steps)
        bar.n = FOLDS + 1
        bar.refresh()
    return fold_readers, full, out_of_fold_logits(fold_readers, inputs, sources)


def judged_cache(index: Path, pair_files: list[str], readers: list | None) -> Path:
    """Where the training sentences' judgements are kept: one file per content of the pair files and
    per fold readers (their adapters); None: judged without a reader."""
    digest = hashlib.sha1()
    for name in pair_files:
        digest.update(Path(name).read_bytes())
    for reader in readers or ():
        for value in reader.model.adapters().values():
            digest.update(value.tobytes())
    return index / "support_judged" / f"judged-{'reader' if readers else 'plain'}-{digest.hexdigest()[:16]}.pkl"


def fitted_verify(model: dict, cv: dict, judged, pairs, rows) -> dict:
    """The fitted weights with their `rag verify` threshold (on the training sentences, each judged by
    the checker fitted without its fold of documents) and `rag verify` cross-validated by document."""
    verify_t, verify_fit = verify_threshold(out_of_fold_judged(judged, pairs, rows))
    return {**model, "cv": cv, "verify_threshold": verify_t, "verify_fit": verify_fit,
            "verify_cross_validated": cross_validate_verify(judged, pairs, rows)}


def report_lines(payload: dict, held: dict) -> list[str]:
    lines: list[str] = []
    fits = [("含阅读器" if "reader_file" in payload else "", payload)] + ([("不含阅读器", payload["without_reader"])] if "without_reader" in payload else [])
    for label, fit in fits:
        cv, verify_fit, verify_cv = fit["cv"], fit["verify_fit"], fit["verify_cross_validated"]
        lines += [
            f"{label + '：' if label else ''}支持判定（{cv['pairs']} 对，按文件分组 5 折交叉验证）：忠实改写判为有依据 {cv['cv_faithful_supported']:.1%}，"
            f"改动事实判为有依据 {cv['cv_altered_supported']:.1%}；阈值 {cv['threshold']:.3f}",
            "",
            "| 改动类型 | 判为有依据 |",
            "|---|---:|",
            *[f"| {k} | {v:.1%} |" for k, v in cv["cv_by_kind_supported"].items()],
            "",
            f"`rag verify` 阈值按训练句子（经检索判定，每句用不含其文件所在折拟合的模型，{verify_fit['sentences']} 句）选定为 {fit['verify_threshold']:.3f}：训练句子上忠实 "
            f"{verify_fit.get('faithful_supported', 0):.1%}、改动 {verify_fit.get('altered_supported', 0):.1%} 判为有依据",
            "",
            f"`rag verify` 交叉验证（训练句子经检索判定，按文件分组 5 折，每折的模型与两个阈值只用其余各折拟合）：忠实 "
            f"{verify_cv['faithful_supported']:.1%}、改动 {verify_cv['altered_supported']:.1%} 判为有依据",
            "",
        ]
    return lines + held_out_lines(held)


def held_out_lines(held: dict) -> list[str]:
    """The held-out sentences' figures per set (with and without the reader), their mean and each set's
    verdicts per kind of sentence."""
    lines: list[str] = []
    names = {"with_reader": "含阅读器", "without_reader": "不含阅读器"}
    kinds = list(held)
    lines += ["`rag verify` 留出句子（从未参与拟合）：忠实 / 改动判为有依据", "",
              "| 留出集 | 句子 | " + " | ".join(names[k] for k in kinds) + " |", "|---|---:|" + "---:|" * len(kinds)]
    sets = list(next(iter(held.values()))) if held else []
    for name in sets:
        cells = [f"{held[k][name]['faithful_supported']:.1%} / {held[k][name]['altered_supported']:.1%}"
                 + (f"（每句 {held[k][name]['p50_ms']:.0f} ms）" if "p50_ms" in held[k][name] else "") for k in kinds]
        lines.append(f"| `{name}` | {held[kinds[0]][name]['sentences']} | " + " | ".join(cells) + " |")
    if sets:
        means = [f"{sum(held[k][n]['faithful_supported'] for n in sets) / len(sets):.1%} / {sum(held[k][n]['altered_supported'] for n in sets) / len(sets):.1%}" for k in kinds]
        lines.append("| 平均 | " + str(sum(held[kinds[0]][n]["sentences"] for n in sets)) + " | " + " | ".join(means) + " |")
    for name in sets:
        lines += ["", f"`{name}` 各类判定（{names[kinds[0]]}）：", "", "```", json.dumps(held[kinds[0]][name]["verdicts_by_kind"], ensure_ascii=False), "```"]
    return lines


def measure_held_out(everything, model: SupportModel, files: list[str]) -> dict:
    """`rag verify` with `model` on each held-out file, with its reader (when it has one) and without."""
    verifiers = {"with_reader": everything.verifier_for(model, LazyReader(model.reader_file))} if model.reader_file else {}
    verifiers["without_reader"] = everything.verifier_for(model.without_reader())
    return {name: {Path(h).name: evaluate_verify(v, Path(h)) for h in tqdm(files, desc=f"留出句子（{name}）") if Path(h).exists()} for name, v in verifiers.items()}


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
