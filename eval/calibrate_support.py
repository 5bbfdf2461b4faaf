"""Fit the support checker (`rag verify`, LLM sentence checks) on the pairs of PAIR_FILES, write it as data.

Cross-validated by document; the threshold keeps altered sentences judged supported at or below 10 %.
A checked sentence is fitted against the indexed passage that holds its excerpt (as `rag verify` judges it).
`rag verify` is judged against the index of every evaluation document (the sample report, the laws,
the six other bureaus' reports and the organisation fixtures), so a sentence about any of them finds its
passage. Its threshold is chosen on THRESHOLD_FILES, sets of sentences never fitted on, each written by
someone who had not seen the checker, as the fitted checker judges them: the threshold that meets issue 14's
goals (faithful supported at least 90 %, altered at most 10 %) on the most sets, cross-validated by leaving
one set out (`--rethreshold` does only this for the checker in --out); the threshold the training sentences
give (each judged by the checker fitted without its fold of documents) is reported beside. HOLDOUT_FILES,
written after that choice, are measured only. The pair reader (rag/reader.py) is fitted five times
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
    judge_sentences,
    leave_one_set_out,
    load_pairs,
    out_of_fold_judged,
    out_of_fold_logits,
    source_folds,
    support_rows,
    supported_up_to,
    threshold_by_sets,
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
# Written by helpers who saw neither the checker nor any other sentence, never fitted on: `rag verify`'s threshold
# is chosen on them as the fitted checker judges them (rag.calibrate.threshold_by_sets), each set's hand a new one.
THRESHOLD_FILES = tuple(f"verify_fresh{i}.jsonl" for i in range(33, 44))
# Written likewise after that choice: measured only.
HOLDOUT_FILES = tuple(f"verify_fresh{i}.jsonl" for i in range(44, 60))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default=str(ROOT / "index-eval"), help="folder of the evaluation indexes")
    parser.add_argument("--pairs", nargs="+", default=[str(ROOT / "eval" / n) for n in PAIR_FILES], help="training pairs (JSONL)")
    parser.add_argument("--threshold-sets", nargs="*", default=[str(ROOT / "eval" / n) for n in THRESHOLD_FILES],
                        help="sentence sets never fitted on that choose `rag verify`'s threshold (none: chosen on the training sentences)")
    parser.add_argument("--holdout", nargs="*", default=[str(ROOT / "eval" / n) for n in HOLDOUT_FILES], help="held-out sentences, never fitted on")
    parser.add_argument("--out", default=str(SUPPORT_MODEL_FILE))
    parser.add_argument("--report", default=str(ROOT / "eval" / "results" / "support.md"))
    parser.add_argument("--no-reader", action="store_true", help="fit without the pair reader (no torch; about 10 minutes instead of three hours and more)")
    parser.add_argument("--rejudge", action="store_true", help="judge the training sentences again instead of reading them back from the index folder")
    parser.add_argument("--rethreshold", action="store_true", help="fit no weights: choose `rag verify`'s thresholds of the checker in --out again on --threshold-sets, then measure it")
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
    if args.rethreshold:
        return measured_and_reported(everything, out, choose_verify_thresholds(everything, out, args.threshold_sets), args)
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
    if args.threshold_sets:
        payload = choose_verify_thresholds(everything, out, args.threshold_sets)
    return measured_and_reported(everything, out, payload, args)


def measured_and_reported(everything, out: Path, payload: dict, args: argparse.Namespace) -> int:
    """The checker in `out` measured on the held-out sentences, the components closed, the report written."""
    held = measure_held_out(everything, SupportModel.load(out), args.holdout)
    everything.close()
    write_report(Path(args.report), report_lines(payload, held), {"fit": payload, "verify_holdout": held})
    return 0


def _bar(items, what: str, unit: str = "句"):
    return tqdm(items, desc=what, unit=unit)


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
            f"`rag verify` 阈值按训练句子（经检索判定，每句用不含其文件所在折拟合的模型，{verify_fit['sentences']} 句）选定为 {verify_fit['threshold']:.3f}"
            f"{'（未采用，见下）' if 'verify_by_sets' in fit else ''}：训练句子上忠实 "
            f"{verify_fit.get('faithful_supported', 0):.1%}、改动 {verify_fit.get('altered_supported', 0):.1%} 判为有依据",
            "",
            *by_sets_lines(fit),
            f"`rag verify` 交叉验证（训练句子经检索判定，按文件分组 5 折，每折的模型与两个阈值只用其余各折拟合）：忠实 "
            f"{verify_cv['faithful_supported']:.1%}、改动 {verify_cv['altered_supported']:.1%} 判为有依据",
            "",
        ]
    return lines + held_out_lines(held)


def by_sets_lines(fit: dict) -> list[str]:
    """How `rag verify`'s threshold was chosen on the sentence sets never fitted on, and its figures left one set out."""
    if "verify_by_sets" not in fit:
        return []
    chosen, loso = fit["verify_by_sets"]["chosen"], fit["verify_by_sets"]["leave_one_set_out"]
    means = f"各集平均忠实 {chosen['faithful_supported']:.1%}、改动 {chosen['altered_supported']:.1%}"
    how = (f"没有哪个阈值能使忠实 ≥ 90%、改动 ≤ 10% 两项在半数集上同时达到，故沿用训练句子选出的阈值（{chosen['sets_meeting_goals']} 个集达到；{means}）"
           if chosen.get("fallback") else f"使忠实 ≥ 90%、改动 ≤ 10% 两项同时达到的集最多（{chosen['sets_meeting_goals']} 个；{means}）")
    return [
        f"`rag verify` 采用的阈值 {fit['verify_threshold']:.3f}：在 {chosen['sets']} 个从未参与拟合的句子集（每集由一位未见过检查器的人写成）上，{how}。"
        f"逐集留一交叉验证（每集用其余各集选出的阈值判定）：{loso['sets_meeting_goals']} / {loso['sets']} 个集两项均达到，平均忠实 {loso['faithful_supported']:.1%}、改动 {loso['altered_supported']:.1%}",
        "",
        "| 句子集 | 留一阈值 | 忠实 / 改动判为有依据 |",
        "|---|---:|---:|",
        *[f"| `{name}` | {r['threshold']:.3f} | {r['faithful_supported']:.1%} / {r['altered_supported']:.1%} |" for name, r in loso["by_set"].items()],
        "",
    ]


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


def judging_verifiers(everything, model: SupportModel) -> dict:
    """`rag verify` with `model`: with its reader (when it has one) and without."""
    verifiers = {"with_reader": everything.verifier_for(model, LazyReader(model.reader_file))} if model.reader_file else {}
    verifiers["without_reader"] = everything.verifier_for(model.without_reader())
    return verifiers


def measure_held_out(everything, model: SupportModel, files: list[str]) -> dict:
    """`rag verify` with `model` on each held-out file, with its reader (when it has one) and without."""
    verifiers = judging_verifiers(everything, model)
    return {name: {Path(h).name: evaluate_verify(v, Path(h)) for h in tqdm(files, desc=f"留出句子（{name}）") if Path(h).exists()} for name, v in verifiers.items()}


def choose_verify_thresholds(everything, out: Path, files: list[str]) -> dict:
    """The checker in `out` with `rag verify`'s thresholds (with its reader and without) chosen on the sentence
    sets `files` as it judges them (`threshold_by_sets`, with its figures left one set out); `out` rewritten.
    The threshold chosen on the training sentences stays in `verify_fit`."""
    payload = json.loads(out.read_text(encoding="utf-8"))
    for name, verifier in judging_verifiers(everything, SupportModel.load(out)).items():
        sets = {Path(f).stem: supported_up_to(judge_sentences(verifier, load_pairs(Path(f)))) for f in _bar(files, f"选阈值的句子集（{name}）", "集")}
        fit = payload["without_reader"] if name == "without_reader" and "without_reader" in payload else payload
        trained = fit["verify_fit"]["threshold"]  # kept where the goals are out of reach on most sets
        fit["verify_threshold"], chosen = threshold_by_sets(sets, fallback=trained)
        fit["verify_by_sets"] = {"chosen": chosen, "leave_one_set_out": leave_one_set_out(sets, fallback=trained)}
    write_atomically(out, json.dumps(payload, ensure_ascii=False, indent=1))
    return payload


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
