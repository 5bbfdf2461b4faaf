"""`make calibrate`: fit the question-word -> passage-word table of rag/expansion.py on the training question sets.

For every answerable training question (each against the index it was written for): the question's
words, and the words of the passages that answer it (its expected source holding every expected
string). The table's weight on the word side and its recurrence threshold are chosen by retrieval MRR
cross-validated with folds grouped by **question set**: the table serves new askers of the indexed
documents, and each set is another asker. Folds grouped by **document** (the answering documents never
seen in fitting: what the table gives a document added later) are reported beside: a setting is eligible only
when it costs nothing there (MRR at least that without the table). The held-out sets are reported too,
never used to choose anything. Writes rag/data/expansion.json and eval/results/expansion.md.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from rag.calibrate import FOLDS, write_atomically  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.evaluation import (  # noqa: E402
    EvalItem,
    Passage,
    first_relevant_rank,
    indexed_setups,
)
from rag.expansion import EXPANSION_FILE, FitOptions, WordExpansion, fit_table  # noqa: E402
from rag.retrieve import HybridRetriever, Retrieval  # noqa: E402
from rag.segment import tokenize  # noqa: E402
from rag.text import squash  # noqa: E402

WEIGHTS = (0.6, 1.0, 1.5, 2.0)
MIN_PAIRS = (2, 3)
MIN_DOCS = (1, 2)  # answering documents a pair must recur in: 2 keeps only pairs that carry over between documents
ANSWERING_PASSAGES = 3  # the first passages holding the answer whose words are counted


@dataclass
class Asked:
    set_name: str
    role: str
    document: str
    item: EvalItem
    retriever: HybridRetriever
    retrieval: Retrieval  # searched without the table
    answer_words: frozenset[str]


def fold(key: str) -> int:
    return int(hashlib.sha1(key.encode()).hexdigest(), 16) % FOLDS


def rank(asked: Asked, expansion: WordExpansion | None) -> int | None:
    """The rank of the first answering passage when the word side uses `expansion`."""
    r, result = asked.retriever, asked.retrieval
    words, chars, dense = result.sides
    if expansion is not None:
        snapshot = result.snapshot or r.index.snapshot()
        weights = r.scope_weights(result.plan, r.params)[0]
        words = tuple(r.word_search(snapshot, result.plan, r.settings.retrieval.candidates, result.where, weights, expansion))
    hits = r.combine(result.plan, list(words), list(chars), list(dense), list(result.article_hits), r.params, result.sentence_hits)[:10]
    return first_relevant_rank(asked.item, [Passage(h.source, h.text) for h in hits])


def summary(ranks: list[int | None]) -> dict[str, float]:
    n = max(1, len(ranks))
    return {
        "hit1": round(sum(1 for x in ranks if x == 1) / n, 4),
        "hit5": round(sum(1 for x in ranks if x and x <= 5) / n, 4),
        "mrr": round(sum(1 / x for x in ranks if x) / n, 4),
    }


def table_of(rows: list[Asked], options: FitOptions, weight: float) -> WordExpansion:
    return WordExpansion(fit_table(((a.document, a.retrieval.plan.tokens, a.answer_words) for a in rows), options), weight)


def cross_validated(rows: list[Asked], key, options: FitOptions, weight: float) -> list[int | None]:
    ranks: list[int | None] = []
    for k in range(FOLDS):
        expansion = table_of([a for a in rows if fold(key(a)) != k], options, weight)
        ranks += [rank(a, expansion) for a in rows if fold(key(a)) == k]
    return ranks


def answering_words(retriever: HybridRetriever) -> Callable[[EvalItem], frozenset[str]]:
    """The words of the first passages of the index that answer a question (its expected source holding
    every expected string); empty when none does."""
    snapshot = retriever.index.snapshot()
    squashed = [squash(t) for t in snapshot.texts]
    sources = [m.get("source", "") for m in snapshot.metadatas]

    def words(item: EvalItem) -> frozenset[str]:
        expected = [squash(c) for c in item.contains]
        answering = [i for i in range(len(squashed)) if sources[i] in item.sources and all(c in squashed[i] for c in expected)]
        out: set[str] = set()
        for i in answering[:ANSWERING_PASSAGES]:
            out.update(tokenize(snapshot.texts[i]))
        return frozenset(out)

    return words


def collect(settings, index: Path) -> list[Asked]:
    rows: list[Asked] = []
    for setup, components, items in indexed_setups(settings, index):
        retriever = components.retriever
        retriever.expansion = None  # every ranking starts from the searches without a table
        words = answering_words(retriever)
        asked = [(s, item) for s, item in items if not item.refuse and not item.history]
        for question_set, item in tqdm(asked, desc=f"检索 {setup.name}", unit="题"):
            rows.append(Asked(question_set.name, question_set.role, item.sources[0], item, retriever, retriever.search(item.question, k=10), words(item)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default=str(ROOT / "index-eval"), help="folder of the evaluation indexes")
    parser.add_argument("--out", default=str(EXPANSION_FILE))
    parser.add_argument("--report", default=str(ROOT / "eval" / "results" / "expansion.md"))
    args = parser.parse_args()
    settings = load_settings()
    rows = collect(settings, Path(args.index))
    train = [a for a in rows if a.role == "train" and a.answer_words]
    held = [a for a in rows if a.role == "held-out"]
    base = {"cv": summary([rank(a, None) for a in train]), "held_out": summary([rank(a, None) for a in held])}
    trials = []
    for weight, min_pair, min_docs in tqdm(list(itertools.product(WEIGHTS, MIN_PAIRS, MIN_DOCS)), desc="交叉验证", unit="组"):
        options = FitOptions(min_pair=min_pair, min_docs=min_docs)
        fitted = table_of(train, options, weight)
        trials.append({
            "weight": weight, "min_pair": min_pair, "min_docs": min_docs,
            "cv_by_set": summary(cross_validated(train, lambda a: a.set_name, options, weight)),
            "cv_by_document": summary(cross_validated(train, lambda a: a.document, options, weight)),
            "held_out": summary([rank(a, fitted) for a in held]),
        })
    # The best for new askers among the settings that cost nothing on documents never seen in fitting.
    # None such: the table is written with weight 0, which leaves the word search as it was.
    safe = [t for t in trials if t["cv_by_document"]["mrr"] >= base["cv"]["mrr"]]
    best = max(safe or trials, key=lambda t: (t["cv_by_set"]["mrr"], t["cv_by_document"]["mrr"]))
    chosen = table_of(train, FitOptions(min_pair=best["min_pair"], min_docs=best["min_docs"]), best["weight"] if safe else 0.0)
    report = {"questions": len(train), "held_out_questions": len(held), "without_table": base, "chosen": best, "trials": trials}
    write_atomically(Path(args.out), json.dumps(WordExpansion(chosen.table, chosen.weight, report).to_dict(), ensure_ascii=False, indent=1))
    lines = [
        f"词表扩展（{len(train)} 道可回答的训练题；留出 {len(held)} 题不参与选择）：选定权重 {best['weight']}、"
        f"词对至少出现 {best['min_pair']} 次、在 {best['min_docs']} 个文件中，共 {len(chosen.table)} 个问题词。",
        "",
        "| 设置 | 按题集交叉验证 hit@1 / hit@5 / MRR | 按文件交叉验证 hit@1 / hit@5 / MRR | 留出 hit@1 / hit@5 / MRR |",
        "|---|---|---|---|",
    ]

    def cells(s: dict[str, float]) -> str:
        return f"{s['hit1']:.3f} / {s['hit5']:.3f} / {s['mrr']:.3f}"

    lines.append(f"| 不扩展 | {cells(base['cv'])} | {cells(base['cv'])} | {cells(base['held_out'])} |")
    for t in trials:
        mark = (" **（选定）**" if safe else "（最好，但在未见过的文件上有损失：不启用）") if t is best else ""
        lines.append(f"| 权重 {t['weight']}，至少 {t['min_pair']} 次、{t['min_docs']} 个文件{mark} | {cells(t['cv_by_set'])} | {cells(t['cv_by_document'])} | {cells(t['held_out'])} |")
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
