"""`make eval`: every question set against the index it was written for — the system, the LangChain
baseline and the Chatchat-style peer; tables, a plot and the items in eval/results/.

Sets and setups come from `rag.evaluation` (question_sets, eval_setups): the sample report and the
laws alone (dev, project, holdout), or with other bureaus' reports for a user at 开封市审计局 (multi,
paraphrase, orgs, stranger, fresh, fresh2, fresh3). The answer model was fitted on the training sets only (make calibrate,
cross-validated figures in eval/results/calibration.md); holdout and fresh3 were never fitted on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.config import load_settings  # noqa: E402
from rag.evaluation import eval_setups, question_sets, setup_components  # noqa: E402
from rag.experiment import evaluate, markdown_table, plot_reports, save_report  # noqa: E402
from rag.ingest import ingest_paths  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default=str(ROOT / "index-eval"), help="folder of the evaluation indexes")
    parser.add_argument("--out", default=str(ROOT / "eval" / "results"))
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--only", nargs="*", help="only these sets")
    args = parser.parse_args()
    settings = load_settings()
    sets = {s.name: s for s in question_sets(settings)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reports: dict[str, dict] = {}
    tables: list[str] = []
    for setup in eval_setups(settings):
        components = setup_components(settings, setup, Path(args.index))
        summary = ingest_paths(components.index, setup.paths, show_bar=True)
        print(f"索引 {setup.name}：{len(components.index.documents())} 个文件（失败 {summary.count('failed')}）")
        for name in setup.sets:
            if args.only and name not in args.only:
                continue
            qs = sets[name]
            if not qs.path.exists():
                print(f"跳过 {name}：{qs.path} 不存在")
                continue
            report = evaluate(components, qs.path, with_baseline=not args.no_baseline, dev_dataset=settings.eval.dev_set)
            print(save_report(report, out, name, setup.name, qs.role))
        components.close()
    # The summary and the plot cover every set with a report in `out`: a run of some sets (--only)
    # updates theirs and keeps the others' last reports.
    for setup in eval_setups(settings):
        for name in setup.sets:
            path = out / f"{name}.json"
            if name not in sets or not path.exists():
                continue
            report = json.loads(path.read_text(encoding="utf-8"))
            reports[name] = report
            role = "训练集（交叉验证数字见 calibration.md）" if report.get("role") == "train" else "留出集（从未用于拟合）"
            tables.append(f"### {name}（{role}，索引：{report.get('setup', setup.name)}）\n\n{markdown_table(report)}")
    (out / "summary.md").write_text("\n".join(tables), encoding="utf-8")
    plot_reports(reports, out / "eval.png")
    print(f"已写入 {out}/summary.md 与 {out}/eval.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
