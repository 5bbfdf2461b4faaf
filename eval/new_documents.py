"""Held out on documents never indexed before: other bureaus' reports, other years, other shapes.

The `bureaus` documents of `rag.evaluation.eval_setups` and the four of eval/new-documents/ — written in round 48
by a helper who saw neither the code nor any question: a 2025 rule-of-law report copied from a web page with its
chrome, a 2023 information-disclosure report as text pulled from a PDF (lines broken inside words and numbers,
page numbers, the tables as rows of figures), a 2024 work summary in Markdown with a table, and a county finance
bureau's 2024 report saved in GBK — are indexed apart (under --index, `new-documents`), for a user at 开封市审计局.
eval/qa_newdocs48.jsonl (by the same helper, 38 questions on the four and 10 near-miss refusals) is asked of them.
Never fitted on. Writes eval/results/newdocs48.{md,json}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.components import build  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.evaluation import eval_setups  # noqa: E402
from rag.experiment import evaluate, save_report  # noqa: E402
from rag.ingest import ingest_paths  # noqa: E402

DOCUMENTS = ROOT / "eval" / "new-documents"
QUESTIONS = ROOT / "eval" / "qa_newdocs48.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default=str(ROOT / "index-eval"), help="folder of the evaluation indexes")
    parser.add_argument("--out", default=str(ROOT / "eval" / "results"))
    args = parser.parse_args()
    settings = load_settings()
    bureaus = next(s for s in eval_setups(settings) if s.name == "bureaus")
    components = build(settings.with_index(Path(args.index) / "new-documents").with_(answer={"org": bureaus.org}))
    try:
        summary = ingest_paths(components.index, [*bureaus.paths, DOCUMENTS], show_bar=True)
        print(f"索引 new-documents：{len(components.index.documents())} 个文件（失败 {summary.count('failed')}）")
        report = evaluate(components, QUESTIONS, with_baseline=False, dev_dataset=settings.eval.dev_set)
    finally:
        components.close()
    print(save_report(report, Path(args.out), "newdocs48", "new-documents", "held-out"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
