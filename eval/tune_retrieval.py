"""Choose the fusion weights of rag/retrieve.py (and the keyword weight of scope words) by cross-validated retrieval quality (`make calibrate`).

For every training question (each against the index it was written for), the four ranked lists
(words, character bigrams, passage vectors, sentence vectors) are computed once; each candidate setting of the weights is
scored by MRR of the first passage that holds the expected answer, and the setting chosen on the
other folds is measured on each held-out fold (folds grouped by document). Then, with
RAG_PASSAGE_RANKER=on, the passage ranker (rag/passage_rank.py) is fitted on the chosen fusion's first candidates: gradient-boosted trees on
whether each candidate holds the expected answer, measured the same way (fitted on four folds,
ranking the fifth). Writes rag/data/retrieval_params.json and eval/results/retrieval_params.md.
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
from rag.evaluation import (  # noqa: E402
    Passage,
    eval_setups,
    first_relevant_rank,
    load_dataset,
    passage_matches,
    question_sets,
    setup_components,
)
from rag.ingest import ingest_paths  # noqa: E402
from rag.params import RETRIEVAL_PARAMS_FILE, RetrievalParams  # noqa: E402
from rag.passage_rank import PASSAGE_FEATURES, PassageRanker, candidate_features  # noqa: E402

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

    lines = [f"融合参数（{len(items)} 道训练题，按文件分组 {FOLDS} 折）：交叉验证 MRR {report['cv_mrr']:.3f}；"
             f"原参数 MRR {report['mrr_previous']:.3f}；选定参数在全部题上 MRR {report['mrr_chosen_in_sample']:.3f}", "",
             "```", json.dumps(params.__dict__, ensure_ascii=False), "```"]
    stored = PassageRanker.load(Path(args.out))
    ranker = stored.to_dict() if stored else None
    if settings.retrieval.passage_ranker == "on":  # off (the default), the stored one is kept unused
        runs = searched[tuple(sorted((key, getattr(params, key)) for key in SEARCH_GRID))]
        fitted, ranker_report = fit_ranker([(g, item) for g, item, _ in items], runs, params, fold_of)
        ranker = {**fitted.to_dict(), "report": ranker_report}
        lines += ["", f"段落排序模型（梯度提升树，每题融合结果前 {fitted.depth} 段，按文件分组 {FOLDS} 折交叉验证）："
                  f"MRR {ranker_report['cv_mrr_fused']:.3f} → {ranker_report['cv_mrr_ranked']:.3f}，"
                  f"hit@1 {ranker_report['cv_hit1_fused']:.3f} → {ranker_report['cv_hit1_ranked']:.3f}，"
                  f"hit@5 {ranker_report['cv_hit5_fused']:.3f} → {ranker_report['cv_hit5_ranked']:.3f}"]
    data = {"about": "Fusion weights of rag/retrieve.py, chosen by eval/tune_retrieval.py (MRR over the training question sets, "
                     "cross-validated by document); ranker: the passage ranker of rag/passage_rank.py fitted on the chosen fusion.",
            "params": params.__dict__, "report": report}
    if ranker:
        data["ranker"] = ranker
    write_atomically(Path(args.out), json.dumps(data, ensure_ascii=False, indent=1))
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


def fit_ranker(items: list, runs: list, params: RetrievalParams, fold_of: dict[str, int]) -> tuple[PassageRanker, dict]:
    """The passage ranker on every item's first fused candidates (label: the candidate holds the expected
    answer), with its cross-validated MRR, hit@1 and hit@5 over the first ten beside the fusion's own."""
    from rag.calibrate import fit_trees

    depth = load_settings().retrieval.candidates
    data = []  # (group, feature rows, labels, fused candidates, looked-up article ids) per question
    for (group, item), (retriever, result) in zip(items, runs):
        fused = retriever.fused_candidates(result.snapshot, result.plan, result.sides, result.article_hits, params, result.sentence_hits, 10)[:depth]
        articles = {h.chunk_id for h in result.article_hits}
        rows = candidate_features(fused, result.plan, result.sides, result.sentence_hits, articles)
        labels = [int(passage_matches(item, Passage(h.source, h.text))) for h in fused]
        data.append((group, rows, labels, fused, articles))

    def fit(part: list) -> PassageRanker:
        rows = [r for _, rs, _, _, _ in part for r in rs]
        labels = [y for _, _, ys, _, _ in part for y in ys]
        return PassageRanker(fit_trees(rows, labels, PASSAGE_FEATURES), depth, runs[0][0].encoders)

    def ranks(ranker: PassageRanker | None, part: list) -> list[int | None]:
        """Rank of the first candidate holding the answer among the first ten, in the order a search gives
        (the ranker's, arranged from the feature rows already built, as `order` does; or the fusion's)."""
        out = []
        for _, rows, labels, fused, articles in part:
            relevant = {h.chunk_id for h, y in zip(fused, labels) if y}
            ordered = ranker.arrange(fused, ranker.probabilities(rows), articles) if ranker is not None else fused
            out.append(next((n + 1 for n, h in enumerate(ordered[:10]) if h.chunk_id in relevant), None))
        return out

    fused_ranks: list[int | None] = []
    ranked: list[int | None] = []
    for k in range(FOLDS):
        test = [d for d in data if fold_of[d[0]] == k]
        fused_ranks += ranks(None, test)
        ranked += ranks(fit([d for d in data if fold_of[d[0]] != k]), test)

    def summary(rs: list[int | None]) -> tuple[float, float, float]:
        n = len(rs) or 1
        return (sum(1 / r for r in rs if r) / n, sum(r == 1 for r in rs) / n, sum(bool(r) and r <= 5 for r in rs) / n)

    (mrr0, h10, h50), (mrr1, h11, h51) = summary(fused_ranks), summary(ranked)
    report = {"questions": len(data), "candidates": sum(len(d[1]) for d in data),
              "cv_mrr_fused": round(mrr0, 4), "cv_mrr_ranked": round(mrr1, 4), "cv_hit1_fused": round(h10, 4),
              "cv_hit1_ranked": round(h11, 4), "cv_hit5_fused": round(h50, 4), "cv_hit5_ranked": round(h51, 4)}
    return fit(data), report


if __name__ == "__main__":
    raise SystemExit(main())
