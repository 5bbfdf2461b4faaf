"""`make eval`: evaluate the system, the baseline and the peer on every question set; write tables and a plot."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.config import load_settings  # noqa: E402
from rag.evaluation import evaluate, markdown_table, plot_reports  # noqa: E402
from rag.index import open_index  # noqa: E402

DEV = ROOT.parent / "shared" / "eval" / "qa_dev.jsonl"
SETS = {
    "dev": DEV,
    "project": ROOT / "eval" / "qa_project.jsonl",
    "holdout": ROOT / "eval" / "qa_holdout.jsonl",
}
def main() -> int:
    parser = argparse.ArgumentParser(description="Evaluate all question sets")
    parser.add_argument("--index", help="index directory (default RAG_INDEX_DIR)")
    parser.add_argument("--out", default=str(ROOT / "eval" / "results"))
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    settings = load_settings().with_index(args.index)
    index = open_index(settings)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reports: dict[str, dict] = {}
    tables: list[str] = []
    for name, path in SETS.items():
        if not path.exists():
            print(f"跳过 {name}：{path} 不存在")
            continue
        report = evaluate(index, path, with_baseline=not args.no_baseline, dev_dataset=DEV)
        reports[name] = report
        (out / f"{name}.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        table = markdown_table(report)
        (out / f"{name}.md").write_text(table, encoding="utf-8")
        tables.append(f"### {name}\n\n{table}")
        print(table)
    (out / "summary.md").write_text("\n".join(tables), encoding="utf-8")
    plot_reports(reports, out / "eval.png")
    print(f"已写入 {out}/summary.md 与 {out}/eval.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
