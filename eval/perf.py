"""`make perf`: the shell and load figures of one run on this machine (issue 12).

1. Cold ingest of `../shared/corpus` from the shell: `rag ingest` wall time, start-up included,
   characters = the text of every file indexed.
2. Cold `rag ask "审计法第五条"` from a fresh process, three times (median), and the cost of each
   stage in a fresh process (imports, settings and parts, the search snapshot, the first answer,
   a second answer).
3. `printf '审计法第五条\\n那第六条呢？\\n' | rag chat --index DIR`: both answers with citations.
4. `rag serve` on the index and `eval/loadtest.py`: 20 concurrent `/ask` clients for 15 s.
5. With `--before GIT_DIR` (a checkout of an older commit), the same cold `rag ask` and ingest
   of that code, measured in the same run, for a before/after table.

Writes eval/results/perf.json and perf.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPUS = ROOT.parent / "shared" / "corpus"
RESULTS = ROOT / "eval" / "results"
QUESTION = "审计法第五条"

STAGES = r"""
import json, sys, time
t0 = time.perf_counter()
from rag.config import load_settings
from rag.components import build
t1 = time.perf_counter()
components = build(load_settings())
t2 = time.perf_counter()
snapshot = components.index.snapshot()
t3 = time.perf_counter()
answer = components.assistant.ask(sys.argv[1])
t4 = time.perf_counter()
components.assistant.ask("审计法第六条")
t5 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "parts": t2 - t1, "snapshot": t3 - t2, "first_answer": t4 - t3,
                  "second_answer": t5 - t4, "refused": answer.refused}))
"""


def _env(index_dir: Path, code_root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_INDEX_DIR=str(index_dir), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(code_root))
    return env


def _rag(code_root: Path, index_dir: Path, *args: str, stdin: str | None = None, timeout: float = 900) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rag", *args], cwd=code_root, env=_env(index_dir, code_root),
                          input=stdin, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - started, done


def corpus_chars(paths: list[Path]) -> int:
    """Characters of the text of every file the ingest reads (decoded as the loaders decode them)."""
    from rag.loaders import SUPPORTED_SUFFIXES, raw_text, read_file_bytes

    total = 0
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for file in files:
            if file.suffix.lower() in SUPPORTED_SUFFIXES:
                with contextlib.suppress(Exception):  # a file the ingest would also reject
                    total += len(raw_text(file, read_file_bytes(file)))
    return total


def measure_code(code_root: Path, work: Path, label: str, sources: list[Path], chars: int) -> dict:
    index_dir = work / f"index-{label}"
    shutil.rmtree(index_dir, ignore_errors=True)
    seconds, done = _rag(code_root, index_dir, "ingest", "--quiet", *map(str, sources))
    if done.returncode != 0:
        raise SystemExit(f"{label}: ingest failed: {done.stderr[-2000:]}")
    ingest = {"seconds": round(seconds, 2), "chars": chars, "chars_per_s": round(chars / seconds)}
    print(f"[{label}] cold ingest: {seconds:.2f} s, {chars / seconds:,.0f} chars/s", file=sys.stderr)
    asks = []
    for _ in range(3):
        seconds, done = _rag(code_root, index_dir, "ask", QUESTION)
        if done.returncode != 0 or "第五条" not in done.stdout:
            raise SystemExit(f"{label}: rag ask failed: {done.stdout[-500:]} {done.stderr[-2000:]}")
        asks.append(round(seconds, 3))
    print(f"[{label}] cold rag ask: {asks}", file=sys.stderr)
    return {"index_dir": str(index_dir), "ingest": ingest, "ask_s": asks, "ask_median_s": statistics.median(asks)}


def stages(index_dir: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", STAGES, QUESTION], cwd=ROOT, env=_env(index_dir, ROOT),
                          capture_output=True, text=True, timeout=300, check=True)
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def chat(index_dir: Path) -> dict:
    seconds, done = _rag(ROOT, index_dir, "chat", "--index", str(index_dir), stdin="审计法第五条\n那第六条呢？\n")
    parts = done.stdout.split("问> ")[1:]
    ok = (done.returncode == 0 and len(parts) == 2 and all("依据：\n[1]" in p for p in parts)
          and "第五条" in parts[0] and "第六条" in parts[1])
    return {"ok": ok, "seconds": round(seconds, 2), "output": done.stdout}


def repeated_line_file(work: Path) -> dict:
    """A 19 MB file of one repeated line (identical chunks are stored once): chunks and the peak memory
    of `rag ingest` in a clean process (with its worker processes)."""
    line = "审计机关依法独立行使审计监督权，不受其他行政机关、社会团体和个人的干涉。\n".encode()
    path = work / "repeated.txt"
    path.write_bytes(line * (19 * 1024 * 1024 // len(line)))
    index_dir = work / "index-repeated"
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rag", "ingest", "--quiet", str(path)], cwd=ROOT, env=_env(index_dir, ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    done = subprocess.run([sys.executable, "-m", "rag", "docs", "--json"], cwd=ROOT, env=_env(index_dir, ROOT), capture_output=True, text=True, check=True)
    docs = json.loads(done.stdout)
    return {"bytes": path.stat().st_size, "exit": os.waitstatus_to_exitcode(status), "chunks": docs[0]["chunks"] if docs else 0,
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "seconds": round(seconds, 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(index_dir: Path, clients: int, seconds: float, work: Path) -> dict:
    port = free_port()
    log = open(work / "serve.log", "wb")  # noqa: SIM115  (the server writes to it until stopped)
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)], cwd=ROOT, env=_env(index_dir, ROOT),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(url, timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"rag serve did not start: {(work / 'serve.log').read_text(errors='replace')[-2000:]}") from None
                time.sleep(0.5)
        sys.path.insert(0, str(ROOT / "eval"))
        from concurrent.futures import ThreadPoolExecutor

        from loadtest import HttpAsk, question_pool, run

        run(url, 2, 3)  # warm-up: the server's first answers load its parts
        cold = run(url, clients, seconds)  # new questions, sentence vectors not yet cached
        # Steady state: every question of the pool asked once (the sentence-vector cache on disk then
        # holds their passages' sentences, as after some days of use), then the same load again.
        pool = question_pool()

        def ask_all(questions: list[str]) -> None:  # one client (one session) per thread
            client = HttpAsk(url)
            try:
                for question in questions:
                    client.predict(question)
            finally:
                client.close()

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(ask_all, [pool[i::4] for i in range(4)]))
        warm = run(url, clients, seconds)
        return {"cold": cold, "warm": warm}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def render(report: dict) -> str:
    after = report["after"]
    lines = ["## 命令行与并发性能（2 核，一次运行）", "", f"测量时间：{report['when']}；命令：`make perf`（`python eval/perf.py`）。", ""]
    before = report.get("before")
    lines += ["| 项目 | 目标 | " + ("改前 | " if before else "") + "现在 |", "|---|---|" + ("---|" if before else "") + "---|"]

    def row(name: str, goal: str, now: str, old: str | None = None) -> None:
        lines.append(f"| {name} | {goal} | " + (f"{old} | " if before else "") + f"{now} |")

    row("冷启动 `rag ask \"审计法第五条\"`（3 次中位数）", "≤ 1.5 秒", f"**{after['ask_median_s']:.2f} 秒**（{', '.join(f'{s:.2f}' for s in after['ask_s'])}）",
        f"{before['ask_median_s']:.2f} 秒（{', '.join(f'{s:.2f}' for s in before['ask_s'])}）" if before else None)
    row("冷启动入库 `../shared/corpus`（含启动）", "≥ 25,000 字/秒",
        f"**{after['ingest']['chars_per_s']:,} 字/秒**（{after['ingest']['chars']:,} 字，{after['ingest']['seconds']:.1f} 秒）",
        f"{before['ingest']['chars_per_s']:,} 字/秒（{before['ingest']['seconds']:.1f} 秒）" if before else None)
    chat_ok = report["chat"]["ok"]
    row("`printf '审计法第五条\\n那第六条呢？\\n' \\| rag chat`", "两问都有答案和依据", ("通过" if chat_ok else "**未通过**") + f"（{report['chat']['seconds']:.1f} 秒）", "—" if before else None)
    for key, what in (("warm", "句向量缓存已热（题库每题问过一次）"), ("cold", "新索引、新问题（句向量缓存为空）")):
        lt = report["load"][key]
        row(f"{lt['clients']} 个并发 `/ask` 客户端 {lt['seconds']:.0f} 秒，{lt['questions']} 道题轮换；{what}", "≥ 50 答/秒，p95 ≤ 500 ms，无错误",
            f"**{lt['throughput_rps']} 答/秒**，p50 {lt['p50_ms']:.0f} ms，p95 {lt['p95_ms']:.0f} ms，错误 {lt['errors']}/{lt['requests']}",
            "（issue 12 所记：16.9 答/秒，p95 1,422 ms，8 道题轮换）" if before else None)
    rep = report.get("repeated")
    if rep:
        row("19 MB 同一行重复的文件 `rag ingest`", "相同分块只存一次；峰值内存 < 1 GB",
            f"{rep['chunks']} 块，峰值内存 **{rep['peak_rss_mb']} MB**（{rep['seconds']:.1f} 秒）", "—（issue 15 所记：12,186 块，1.4 GB）" if before else None)
    st = report["stages"]
    lines += ["", "新进程里各阶段用时（秒）：", "", "| 导入 | 设置与部件 | 检索快照 | 第一个回答 | 第二个回答 |", "|---:|---:|---:|---:|---:|",
              f"| {st['imports']:.2f} | {st['parts']:.2f} | {st['snapshot']:.2f} | {st['first_answer']:.2f} | {st['second_answer']:.3f} |", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="a checkout of older code to measure beside this one (cold ask and ingest)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--work", help="scratch folder (default: a temp dir, removed)")
    args = parser.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rag-perf-"))
    work.mkdir(parents=True, exist_ok=True)
    sources = [SHARED_CORPUS]  # as the issue measures it (the same report is also in corpus/)
    chars = corpus_chars(sources)
    try:
        report: dict = {"when": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count()}
        if args.before:
            report["before"] = measure_code(Path(args.before), work, "before", sources, chars)
        after = measure_code(ROOT, work, "after", sources, chars)
        report["after"] = after
        index_dir = Path(after["index_dir"])
        report["stages"] = stages(index_dir)
        report["chat"] = chat(index_dir)
        report["repeated"] = repeated_line_file(work)
        report["load"] = load(index_dir, args.clients, args.seconds, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "perf.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    text = render(report)
    (RESULTS / "perf.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
