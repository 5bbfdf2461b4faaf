"""`make eval`: evaluate the system, the baseline and the peer on every question set; write tables and a plot."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.config import load_settings  # noqa: E402
from rag.evaluation import evaluate, markdown_table, metric_value  # noqa: E402
from rag.index import open_index  # noqa: E402

DEV = ROOT.parent / "shared" / "eval" / "qa_dev.jsonl"
SETS = {
    "dev": DEV,
    "project": ROOT / "eval" / "qa_project.jsonl",
    "holdout": ROOT / "eval" / "qa_holdout.jsonl",
}
PLOT_METRICS = (
    ("answer_accuracy", "回答准确率", "answer accuracy"),
    ("refusal_recall", "拒答召回率", "refusal recall"),
    ("false_refusal_rate", "误拒率", "false refusals"),
    ("retrieval.hit@5", "hit@5", "hit@5"),
    ("retrieval.mrr", "MRR", "MRR"),
    ("citation_precision", "引文精确率", "citation precision"),
)


def cjk_font():
    from matplotlib import font_manager

    for path in font_manager.findSystemFonts():
        if "NotoSansCJK" in path or "wqy" in path.lower():
            return font_manager.FontProperties(fname=path)
    return None


def plot(reports: dict[str, dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib import pyplot as plt

    font = cjk_font()
    names = [("system", "本系统", "system"), ("baseline", "基线", "baseline"), ("peer", "Chatchat 做法", "peer")]
    fig, axes = plt.subplots(1, len(reports), figsize=(6 * len(reports), 4.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (set_name, report) in zip(axes, reports.items()):
        x = np.arange(len(PLOT_METRICS))
        for i, (key, zh, en) in enumerate(names):
            if not report.get(key):
                continue
            values = [metric_value(report[key], m[0]) or 0 for m in PLOT_METRICS]
            ax.bar(x + (i - 1) * 0.27, values, 0.27, label=zh if font else en)
        ax.set_xticks(x)
        ax.set_xticklabels([m[1] if font else m[2] for m in PLOT_METRICS], rotation=30, ha="right", fontproperties=font)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{set_name} ({report['n']})", fontproperties=font)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, prop=font, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(out, dpi=110)


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
    plot(reports, out / "eval.png")
    print(f"已写入 {out}/summary.md 与 {out}/eval.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
