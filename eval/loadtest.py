"""Bounded load test of `rag serve` on loopback: N concurrent /ask clients for S seconds.

Only loopback addresses are accepted; every client stops at the deadline or after a request cap.

Two kinds of client, both through Gradio's queue and the `/ask` API event:
- `http` (default): Gradio's HTTP API as curl uses it (POST /gradio_api/call/ask, then read the
  event stream of the answer), one kept-alive connection and one session per client. It costs the
  client ~2 ms of CPU a request, so on a 2-core machine the server, not the load generator, is
  what is measured. (Without a session hash, Gradio builds a new session state for every call:
  ~15 ms of the server's CPU and ~140 KB kept, up to 10,000 sessions.)
- `gradio`: `gradio_client.Client.predict`, as the README shows it. It opens a new connection (and
  builds a new TLS context) for every request, ~50 ms of CPU: 20 such clients take more than one of
  the two cores away from the server they are measuring.
The report gives the client process's CPU time, so the share the load generator took is visible.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
import uuid
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
QUESTION_SETS = [ROOT.parent / "shared" / "eval" / "qa_dev.jsonl", ROOT / "eval" / "qa_project.jsonl", ROOT / "eval" / "qa_paraphrase.jsonl"]
MAX_REQUESTS_PER_CLIENT = 5000


def question_pool() -> list[str]:
    """Every question of the visible sets (a few hundred, so few answers repeat), else the short list."""
    pool: list[str] = []
    for path in QUESTION_SETS:
        if path.exists():
            pool.extend(json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return list(dict.fromkeys(pool)) or QUESTIONS
API = "/gradio_api/call/ask"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))] if ordered else 0.0


class HttpAsk:
    """One client of Gradio's HTTP API: ask, then read the answer from the event stream."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None, timeout: float = 120) -> None:
        import httpx

        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self.session_hash = uuid.uuid4().hex  # one session per client, as gradio_client and the browser keep
        if auth is not None:
            login = self.http.post("/login", data={"username": auth[0], "password": auth[1]})
            login.raise_for_status()

    def predict(self, question: str) -> object:
        posted = self.http.post(API, json={"data": [question], "session_hash": self.session_hash})
        posted.raise_for_status()
        event_id = posted.json()["event_id"]
        event = None
        with self.http.stream("GET", f"{API}/{event_id}") as stream:
            stream.raise_for_status()
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    data = json.loads(line[5:].strip())
                    if event == "error":
                        raise RuntimeError(f"server error: {data}")
                    return data[0] if isinstance(data, list) and len(data) == 1 else data
        raise RuntimeError("the event stream ended without an answer")

    def close(self) -> None:
        self.http.close()


class GradioAsk:
    """One `gradio_client.Client`, as the README shows it."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None) -> None:
        from gradio_client import Client

        self.client = Client(url, auth=auth, verbose=False)

    def predict(self, question: str) -> object:
        return self.client.predict(question, api_name="/ask")

    def close(self) -> None:
        self.client.close()


CLIENTS = {"http": HttpAsk, "gradio": GradioAsk}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(url: str, clients: int, seconds: float, auth: tuple[str, str] | None = None, kind: str = "http") -> dict:
    host = urlparse(url).hostname or ""
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        raise SystemExit("只允许对本机回环地址做负载测试")
    make_client = CLIENTS[kind]
    pool = question_pool()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    clock: dict[str, float] = {}

    def start_clock() -> None:  # run by the barrier, before any client is released
        clock["started"] = time.monotonic()
        clock["deadline"] = clock["started"] + seconds
        clock["cpu"] = _cpu_seconds()

    start_gate = threading.Barrier(clients + 1, action=start_clock)

    def worker(n: int) -> None:
        try:
            client = make_client(url, auth=auth)
        except Exception as exc:  # a client that cannot connect is an error, and must not hold up the others
            client = None
            with lock:
                errors.append(f"connect: {type(exc).__name__}: {exc}"[:200])
        start_gate.wait()
        if client is None:
            return
        deadline = clock["deadline"]
        i = n * 7919  # clients start at different places in the pool
        try:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= deadline:
                    return
                question = pool[i % len(pool)]
                i += 1
                t = time.perf_counter()
                try:
                    result = client.predict(question)
                    error = None if isinstance(result, dict) and "answer" in result else f"bad response: {result!r}"
                except Exception as exc:  # counted, never raised: the test reports them
                    error = f"{type(exc).__name__}: {exc}"
                elapsed = (time.perf_counter() - t) * 1000
                with lock:
                    if error is None:
                        latencies.append(elapsed)
                    else:
                        errors.append(error[:200])
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()  # every client is connected: the clock starts now, for all of them
    for t in threads:
        t.join(timeout=seconds + 120)
    wall = time.monotonic() - clock["started"]
    return {
        "client": kind,
        "questions": len(pool),
        "clients": clients,
        "seconds": seconds,
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "error_samples": errors[:5],
        "throughput_rps": round(len(latencies) / wall, 2),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1) if latencies else 0.0,
        "wall_s": round(wall, 1),
        "client_cpu_s": round(_cpu_seconds() - clock["cpu"], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--client", choices=sorted(CLIENTS), default="http", help="http: Gradio's HTTP API (default); gradio: gradio_client")
    parser.add_argument("--out", default=str(ROOT / "eval" / "results" / "loadtest.json"))
    args = parser.parse_args()
    result = run(args.url, args.clients, args.seconds, kind=args.client)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
