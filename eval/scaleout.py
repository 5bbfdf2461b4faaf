"""Scale-out start-up: an app instance joining a Chroma server that holds about 100k chunks.

A `chroma run` server on loopback is filled with varied copies of the corpus (about 100k chunks;
`--embedding fake` by default, which changes nothing of what is measured: in server mode an
instance reads texts and metadata, never vectors). Then, each in a fresh process:

1. `cold`: the instance has nothing local; it reads every chunk from the server and builds its
   search snapshot (the state of every instance before this change);
2. `cached`: the instance has the snapshot it saved last time, for the server's current generation;
3. `changed`: one document was re-indexed since (by another instance): the saved snapshot is
   updated with that document's chunks only.

Writes eval/results/scaleout.json and scaleout.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
RESULTS = ROOT / "eval" / "results"

WORKER = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from rag.config import load_settings
from rag.components import build
components = build(load_settings())
t1 = time.perf_counter()
snapshot = components.index.snapshot()
t2 = time.perf_counter()
answer = components.assistant.ask("审计法第五条")
t3 = time.perf_counter()
print(json.dumps({"start_s": round(t1 - t0, 2), "snapshot_s": round(t2 - t1, 2), "first_answer_s": round(t3 - t2, 2),
                  "rows": len(snapshot.ids), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "how": getattr(components.index, "last_refresh", ""), "answered": not answer.refused}))
"""


def _env(url: str, local: Path, embedding: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_CHROMA_URL=url, RAG_INDEX_DIR=str(local), RAG_EMBEDDING_MODE=embedding, RAG_SEMANTIC="off",
               RAG_EMBEDDING_WORKERS="0" if embedding == "fake" else "2", HF_HUB_OFFLINE="1")
    return env


def _instance(url: str, local: Path, embedding: str) -> dict:
    done = subprocess.run([sys.executable, "-c", WORKER], cwd=ROOT, env=_env(url, local, embedding), capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--embedding", default="fake", choices=["fake", "use"])
    parser.add_argument("--work", help="scratch folder (default: a temp dir, removed)")
    args = parser.parse_args()
    from bench import grow_corpus
    from perf import free_port

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rag-scaleout-"))
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    chroma = Path(sys.executable).with_name("chroma")
    log = open(work / "chroma.log", "wb")  # noqa: SIM115  (the server writes to it until stopped)
    server = subprocess.Popen([str(chroma), "run", "--path", str(work / "server"), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    report: dict = {"when": time.strftime("%Y-%m-%d %H:%M"), "embedding": args.embedding}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("chroma run did not start") from None
                time.sleep(0.3)
        corpus = grow_corpus(args.chunks, 1710, work / "corpus")
        writer = work / "writer"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rag", "ingest", "--quiet", str(corpus)], cwd=ROOT, env=_env(url, writer, args.embedding), check=True)
        report["ingest_s"] = round(time.perf_counter() - started, 1)
        print(f"ingest: {report['ingest_s']} s", file=sys.stderr)
        instance = work / "instance"
        shutil.rmtree(instance, ignore_errors=True)
        report["cold"] = _instance(url, instance, args.embedding)
        print("cold", report["cold"], file=sys.stderr)
        report["cached"] = _instance(url, instance, args.embedding)
        print("cached", report["cached"], file=sys.stderr)
        # another instance re-indexes one document: the first instance's saved snapshot is one generation behind
        changed = next(iter(sorted((corpus / "copy001").glob("*.md"))))
        changed.write_text(changed.read_text(encoding="utf-8") + "\n第九百九十九条 本条为扩展测试新增。\n", encoding="utf-8")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rag", "ingest", "--quiet", str(changed)], cwd=ROOT, env=_env(url, writer, args.embedding), check=True)
        report["one_file_ingest_s"] = round(time.perf_counter() - started, 1)
        report["changed"] = _instance(url, instance, args.embedding)
        print("changed", report["changed"], file=sys.stderr)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scaleout.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    lines = [
        f"## 扩展部署：新实例加入约 {report['cold']['rows']:,} 块的 Chroma 服务器（{report['when']}，`python eval/scaleout.py`）",
        "",
        "| 情形 | 检索快照就绪 | 进程峰值内存 | 第一个回答 |",
        "|---|---:|---:|---:|",
    ]
    names = {"cold": "本机没有快照：从服务器读全部块并建立", "cached": "本机快照与服务器同代：直接载入", "changed": "服务器上一个文件被重新入库：只读该文件的块并更新"}
    for key, name in names.items():
        r = report[key]
        lines.append(f"| {name} | {r['snapshot_s']:.1f} 秒 | {r['peak_rss_mb']:,} MB | {r['first_answer_s']:.2f} 秒 |")
    lines += ["", f"本次运行中 `rag ingest` 语料目录：{report['ingest_s']:,.0f} 秒（服务器已有这些文件时只写有变化的）；其后另一实例重新入库一个文件：{report['one_file_ingest_s']} 秒。", ""]
    (RESULTS / "scaleout.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
