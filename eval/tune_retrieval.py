"""Choose the fusion weights of rag/retrieve.py (and the keyword weight of scope words) by cross-validated retrieval quality (`make calibrate`).

For every training question (each against the index it was written for), the four ranked lists
(words, character bigrams, passage vectors, sentence vectors) are computed once; each candidate setting of the weights is
scored by MRR of the first passage that holds the expected answer, and the setting chosen on the
other folds is measured on each held-out fold (folds grouped by document). Writes
rag/data/retrieval_params.json and eval/results/retrieval_params.md.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.config import load_settings  # noqa: E402
from rag.evaluation import Passage, eval_setups, first_relevant_rank, load_dataset, question_sets, setup_components  # noqa: E402
from rag.ingest import ingest_paths  # noqa: E402
from rag.params import RETRIEVAL_PARAMS_FILE, RetrievalParams  # noqa: E402

GRID = {
    "word_weight": (0.3, 0.5, 0.7),
    "char_weight": (0.0, 0.2, 0.4),
    "dense_weight": (0.1, 0.2, 0.4),
    "rrf_k": (10, 20, 40),
    "law_boost": (1.0, 2.0, 3.0),
    "report_boost": (1.0, 1.3, 2.0),
    "quantity_boost": (1.0, 1.5, 2.0, 3.0, 4.0),
    "period_boost": (1.0, 1.5, 2.0, 3.0),
    "sentence_weight": (0.0, 0.2, 0.3, 0.5, 0.8),
}
# Settings that change the keyword searches themselves: each value is searched once.
SEARCH_GRID = {"scope_weight": (1.0, 0.5, 0.2)}
FOLDS = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default=str(ROOT / "index-eval"))
    parser.add_argument("--out", default=str(RETRIEVAL_PARAMS_FILE))
    parser.add_argument("--report", default=str(ROOT / "eval" / "results" / "retrieval_params.md"))
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="tune only these settings (e.g. --only scope_weight); the others keep their current values")
    args = parser.parse_args()
    settings = load_settings()
    by_name = {s.name: s for s in question_sets(settings)}
    items = []  # (group, item, retriever, question)
    for setup in eval_setups(settings):
        components = setup_components(settings, setup, Path(args.index))
        ingest_paths(components.index, setup.paths, show_bar=False)
        retriever = components.retriever
        for name in setup.sets:
            if by_name[name].role != "train":
                continue
            for item in load_dataset(by_name[name].path):
                if not item.refuse and not item.history:
                    items.append((item.sources[0], item, retriever))
    base = RetrievalParams.load(Path(args.out))
    unknown = set(args.only) - set(GRID) - set(SEARCH_GRID)
    if unknown:
        parser.error(f"未知参数：{', '.join(sorted(unknown))}")

    def grid(names: dict) -> dict:
        return {k: (v if not args.only or k in args.only else (getattr(base, k),)) for k, v in names.items()}

    fusion_grid, search_grid = grid(GRID), grid(SEARCH_GRID)
    if settings.retrieval.sentence_search != "on":  # no sentence side to weigh: its weight stays as it is
        fusion_grid["sentence_weight"] = (base.sentence_weight,)
    fusion = [dict(zip(fusion_grid, values)) for values in itertools.product(*fusion_grid.values())]
    searches = [dict(zip(search_grid, values)) for values in itertools.product(*search_grid.values())]
    current_search = {key: getattr(base, key) for key in SEARCH_GRID}
    if current_search not in searches:
        searches.append(current_search)
    combos = [{**f, **s} for s in searches for f in fusion]
    current = {key: getattr(base, key) for key in (*GRID, *SEARCH_GRID)}
    if current not in combos:
        combos.append(current)

    # The three rankings do not depend on the fusion weights: search once per search setting, fuse per
    # setting (the same `HybridRetriever.combine` that answers use).
    searched: dict[tuple, list] = {}
    for setting in searches:
        key = tuple(sorted(setting.items()))
        runs = []
        for _, item, retriever in items:
            original = retriever.params
            # the sentence side is searched whatever its current weight (0 would skip it)
            retriever.params = replace(original, **setting, sentence_weight=1.0)
            try:
                runs.append((retriever, retriever.search(item.question, k=10)))
            finally:
                retriever.params = original
        searched[key] = runs

    def reciprocal(item, retriever, result, params) -> float:
        words, chars, dense = result.sides
        hits = retriever.combine(result.plan, list(words), list(chars), list(dense), list(result.article_hits), params, result.sentence_hits)[:10]
        rank = first_relevant_rank(item, [Passage(h.source, h.text) for h in hits])
        return 1.0 / rank if rank else 0.0

    fold_of = {g: int(hashlib.sha1(g.encode()).hexdigest(), 16) % FOLDS for g, _, _ in items}
    scores: dict[int, list[float]] = {}
    for n, combo in enumerate(combos):
        params = replace(base, **combo)
        runs = searched[tuple(sorted((key, combo[key]) for key in SEARCH_GRID))]
        scores[n] = [reciprocal(item, retriever, result, params) for (_, item, _), (retriever, result) in zip(items, runs)]
    if len(combos) <= 40:  # a small search: each setting's in-sample MRR, for the record
        for n, combo in enumerate(combos):
            changed = {key: value for key, value in combo.items() if value != getattr(base, key)}
            print(f"MRR {sum(scores[n]) / len(items):.4f}  {json.dumps(changed, ensure_ascii=False) if changed else '(current)'}", file=sys.stderr)
    cv_total = 0.0
    for k in range(FOLDS):
        train = [i for i, (g, _, _) in enumerate(items) if fold_of[g] != k]
        test = [i for i, (g, _, _) in enumerate(items) if fold_of[g] == k]
        best = max(scores, key=lambda n: sum(scores[n][i] for i in train))
        cv_total += sum(scores[best][i] for i in test)
    default_n = next((n for n, c in enumerate(combos) if c == current), None)
    chosen = max(scores, key=lambda n: sum(scores[n]))
    params = replace(base, **combos[chosen])
    mrr = sum(scores[chosen]) / len(items)
    before = sum(scores[default_n]) / len(items) if default_n is not None else float("nan")
    report = {
        "questions": len(items),
        "cv_mrr": round(cv_total / len(items), 4),
        "mrr_chosen_in_sample": round(mrr, 4),
        "mrr_previous": round(before, 4),
        "params": params.__dict__,
    }
    from rag.calibrate import write_atomically

    write_atomically(Path(args.out), json.dumps({
        "about": "Fusion weights of rag/retrieve.py, chosen by eval/tune_retrieval.py (MRR over the training question sets, "
                 "cross-validated by document).", "params": params.__dict__, "report": report}, ensure_ascii=False, indent=1))
    lines = [f"融合参数（{len(items)} 道训练题，按文件分组 {FOLDS} 折）：交叉验证 MRR {report['cv_mrr']:.3f}；"
             f"原参数 MRR {report['mrr_previous']:.3f}；选定参数在全部题上 MRR {report['mrr_chosen_in_sample']:.3f}", "",
             "```", json.dumps(params.__dict__, ensure_ascii=False), "```"]
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
