"""One evaluation run: the system, the LangChain baseline and the Chatchat-style peer on one question
set, in the same process, with the same metrics (`rag eval`, `make eval`, the web app's 评测 tab);
Markdown tables and a plot."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from rag.evaluation import (
    METRIC_ROWS,
    ItemResult,
    Passage,
    System,
    load_dataset,
    metric_value,
    run_system,
    system_predictor,
)


def evaluate(
    components,
    dataset: str | Path,
    *,
    with_baseline: bool = True,
    dev_dataset: str | Path | None = None,
    show_bar: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Evaluate the system (and, unless told not to, the baseline and the peer) on one dataset."""
    from tqdm import tqdm

    items = load_dataset(dataset)
    if not items:
        raise ValueError(f"评测集为空：{dataset}")

    def run(name: str, predictor: System) -> tuple[dict, list[ItemResult]]:
        bar = tqdm(total=len(items), desc=f"评测 {name}", unit="题", disable=not show_bar, dynamic_ncols=True)

        def step(n: int, total: int) -> None:
            bar.update(1)
            if progress:
                progress(name, n, total)

        try:
            return run_system(items, predictor, step, support)
        finally:
            bar.close()

    check = components.support

    def support(sentence: str, passage: Passage) -> bool:
        from rag.schema import Hit

        hit = Hit("", passage.source, passage.title, "", passage.text, passage.section, None, None, 0.0)
        return check(sentence, hit).supported

    system_metrics, system_results = run("system", system_predictor(components.assistant))
    report: dict = {
        "dataset": str(dataset),
        "n": len(items),
        "n_answerable": sum(1 for i in items if not i.refuse),
        "n_refuse": sum(1 for i in items if i.refuse),
        "system": system_metrics,
        "baseline": None,
        "peer": None,
        "items": [],
    }
    others: dict[str, list[ItemResult]] = {}
    if with_baseline:
        from rag.baselines import build_baseline, build_peer

        records = components.index.documents()
        dev_items = load_dataset(dev_dataset) if dev_dataset and Path(dev_dataset).exists() else items
        for name, build in (("baseline", build_baseline), ("peer", build_peer)):
            reference = build(records, components.embeddings)
            threshold = reference.choose_threshold(dev_items)
            if show_bar:
                tqdm.write(f"{name} 的拒答阈值（相似度，按开发集选定）：{threshold:.3f}")
            metrics, results = run(name, reference.predict)
            report[name] = metrics
            others[name] = results
    for i, result in enumerate(system_results):
        row = asdict(result)
        for name, results in others.items():
            other = results[i]
            row[name] = {"answer": other.answer, "refused": other.refused, "correct": other.correct, "latency": other.latency}
        report["items"].append(row)
    return report


def markdown_table(report: dict) -> str:
    names = [n for n in ("system", "baseline", "peer") if report.get(n)]
    labels = {"system": "本系统", "baseline": "基线 (LangChain 默认)", "peer": "同类 (Chatchat 做法)"}
    lines = [
        f"评测集：`{Path(report['dataset']).name}`（{report['n']} 题：可回答 {report['n_answerable']}，应拒答 {report['n_refuse']}）",
        "",
        "| 指标 | " + " | ".join(labels[n] for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for key, label in METRIC_ROWS:
        cells = []
        for n in names:
            value = metric_value(report[n], key)
            cells.append("–" if value is None else (f"{value:.1f}" if key.startswith("latency") else f"{value:.3f}"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def save_report(report: dict, out: Path, name: str, setup: str, role: str) -> str:
    """Record which setup and role a set's report was made under, write it as `out/name.json` and its table as
    `out/name.md`; the table."""
    report["setup"] = setup
    report["role"] = role
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    table = markdown_table(report)
    (out / f"{name}.md").write_text(table, encoding="utf-8")
    return table


PLOT_METRICS = (
    ("answer_accuracy", "回答准确率", "answer accuracy"),
    ("refusal_recall", "拒答召回率", "refusal recall"),
    ("false_refusal_rate", "误拒率", "false refusals"),
    ("retrieval.hit@5", "hit@5", "hit@5"),
    ("retrieval.mrr", "MRR", "MRR"),
    ("citation_precision", "引文精确率", "citation precision"),
)


def _cjk_font():
    from matplotlib import font_manager

    for path in font_manager.findSystemFonts():
        if "NotoSansCJK" in path or "NotoSerifCJK" in path or "wqy" in path.lower():
            return font_manager.FontProperties(fname=path)
    return None


def plot_reports(reports: dict[str, dict], out: str | Path) -> Path:
    """A bar chart per question set: system against the baseline and the peer, metric by metric."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib import pyplot as plt

    font = _cjk_font()
    names = [("system", "本系统", "system"), ("baseline", "基线", "baseline"), ("peer", "Chatchat 做法", "peer")]
    fig, axes = plt.subplots(1, max(1, len(reports)), figsize=(6 * max(1, len(reports)), 4.6), sharey=True)
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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
