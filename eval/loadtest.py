"""Bounded load test of `rag serve` on loopback: N concurrent /ask clients for S seconds.

Only loopback addresses are accepted; every client stops at the deadline or after a request cap.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "我局共有多少项行政权力事项？",
    "审计法第四十四条",
    "行政处罚的种类有哪些？",
    "法律顾问来自哪家律师事务所？",
    "规范性文件发布后多少日内向市司法局备案？",
    "明天开封的天气怎么样？",
    "审计法第五条是怎么规定的？",
    "报告中提到的存在问题有哪些？",
]
MAX_REQUESTS_PER_CLIENT = 5000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))] if ordered else 0.0


def run(url: str, clients: int, seconds: float, auth: tuple[str, str] | None = None) -> dict:
    from gradio_client import Client

    host = urlparse(url).hostname or ""
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        raise SystemExit("只允许对本机回环地址做负载测试")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(clients)
    deadline_holder: list[float] = []

    def worker(n: int) -> None:
        try:
            client = Client(url, auth=auth, verbose=False)
        except Exception as exc:  # a client that cannot connect is an error, and must not hold up the others
            client = None
            with lock:
                errors.append(f"connect: {type(exc).__name__}: {exc}"[:200])
        start_gate.wait()
        if client is None:
            return
        if not deadline_holder:
            deadline_holder.append(time.monotonic() + seconds)
        deadline = deadline_holder[0]
        i = n
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                return
            question = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            t = time.perf_counter()
            try:
                result = client.predict(question, api_name="/ask")
                error = None if isinstance(result, dict) and "answer" in result else f"bad response: {result!r}"
            except Exception as exc:  # counted, never raised: the test reports them
                error = f"{type(exc).__name__}: {exc}"
            elapsed = (time.perf_counter() - t) * 1000
            with lock:
                if error is None:
                    latencies.append(elapsed)
                else:
                    errors.append(error[:200])

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    wall = time.monotonic() - started
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "error_samples": errors[:5],
        "throughput_rps": round(len(latencies) / seconds, 2),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1) if latencies else 0.0,
        "wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--out", default=str(ROOT / "eval" / "results" / "loadtest.json"))
    args = parser.parse_args()
    result = run(args.url, args.clients, args.seconds)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
