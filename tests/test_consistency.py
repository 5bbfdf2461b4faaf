"""A long-running app stays consistent with its index; no leaks, races or crossed conversations (issue 15).

Everything here runs the real parts: `rag` commands as subprocesses, `rag serve` with gradio_client
or Debian's chromium, a real `chroma run`. Every test stops every process it starts (each in its own
process group, killed in `finally`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REGULATIONS, SAMPLE_REPORT, free_port

VENV_PYTHON = sys.executable
AUDIT_LAW = REGULATIONS / "audit-law.md"
AUDIT_REGULATIONS = REGULATIONS / "audit-law-implementing-regulations.md"
PENALTY_LAW = REGULATIONS / "administrative-penalty-law.md"
CHROMIUM = "/usr/bin/chromium"

SMALL_SOURCE = "archive-notice"
SMALL_QUESTION = "档案数字化扫描完成了多少卷？"
SMALL_SENTENCE = "全年完成档案数字化扫描386卷"
SMALL_TEXT = (
    "某局关于开展档案数字化工作的通知\n"
    "各科室：\n"
    "为提高档案管理水平，现就档案数字化工作通知如下。\n"
    "一、工作目标\n"
    f"{SMALL_SENTENCE}，建立电子档案目录。\n"
    "二、工作要求\n"
    "扫描件须加盖电子印章，并于每月底前报送办公室。\n"
)
QUESTIONS = [
    "我局共有多少项行政权力事项？",
    "审计法第四十四条",
    "行政处罚的种类有哪些？",
    "法律顾问来自哪家律师事务所？",
    SMALL_QUESTION,
    "明天开封的天气怎么样？",
    "审计法第五条是怎么规定的？",
]


# ---------------------------------------------------------------- processes


def _env(index_dir: Path, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_INDEX_DIR=str(index_dir), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    env.update(extra or {})
    return env


def start(args: list[str], env: dict, **kwargs) -> subprocess.Popen:
    """A process in its own process group, so that `stop` reaches everything it started."""
    return subprocess.Popen(args, env=env, start_new_session=True, **kwargs)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal the process group, wait, then kill the group if anything is left."""
    for s, wait in ((sig, timeout), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, s)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)


def python(*args: str, index_dir: Path, extra_env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """This venv's Python with ARGS; the process group is killed when it ends or outlives the timeout."""
    proc = start([VENV_PYTHON, *args], _env(index_dir, extra_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop(proc, signal.SIGKILL, timeout=5)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def rag(*args: str, index_dir: Path, extra_env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`rag ARGS` as a user runs it."""
    return python("-m", "rag", *args, index_dir=index_dir, extra_env=extra_env, timeout=timeout)


def serve(index_dir: Path, port: int, log: Path, extra_env: dict | None = None) -> subprocess.Popen:
    """`rag serve`; its output goes to a file (an undrained pipe could block the server)."""
    with open(log, "ab") as handle:
        return start([VENV_PYTHON, "-m", "rag", "serve", "--port", str(port)], _env(index_dir, extra_env), stdout=handle, stderr=subprocess.STDOUT)


def wait_http(url: str, proc: subprocess.Popen | None = None, log: Path | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    tail = log.read_text(encoding="utf-8", errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"{url} did not answer\n{tail}")


# ---------------------------------------------------------------- /proc


def _stat(pid: int) -> tuple[str, int, int, float] | None:
    """(state, parent pid, start time, cpu seconds) of a process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return fields[0], int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / ticks


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def alive(pid: int, started: int) -> bool:
    """The same process (pid and start time) still exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[2] == started and stat[0] not in ("Z", "X")


def children(pid: int) -> dict[int, int]:
    """Live children of a process: pid -> start time."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat and stat[1] == pid and stat[0] not in ("Z", "X"):
                found[int(entry.name)] = stat[2]
    return found


def orphan_workers() -> set[tuple[int, int]]:
    """Processes whose parent is 1 and whose command line is a multiprocessing worker or resource
    tracker of this venv's Python: what a killed ingest used to leave behind."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        stat = _stat(pid)
        if stat is None or stat[1] != 1 or stat[0] in ("Z", "X"):
            continue
        cmd = _cmdline(pid)
        if cmd.startswith(VENV_PYTHON) and "multiprocessing" in cmd and ("spawn" in cmd or "resource_tracker" in cmd):
            found.add((pid, stat[2]))
    return found


def multiprocessing_children(pid: int) -> dict[int, int]:
    return {p: t for p, t in children(pid).items() if "multiprocessing" in _cmdline(p)}


def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def assert_no_survivors(tracked: dict[int, int], before: set[tuple[int, int]], marker: str, timeout: float = 10) -> float:
    """Every tracked worker and tracker is gone, and no new orphan of this test appeared; returns seconds waited."""
    started = time.monotonic()

    def new_orphans() -> set[tuple[int, int]]:
        return {o for o in orphan_workers() - before if marker.encode() in _environ(o[0])}

    wait_until(lambda: not any(alive(p, t) for p, t in tracked.items()) and not new_orphans(), timeout)
    survivors = {p: _cmdline(p) for p, t in tracked.items() if alive(p, t)}
    assert not survivors, f"still running: {survivors}"
    assert not new_orphans(), f"orphans: {[(p, _cmdline(p)) for p, _ in new_orphans()]}"
    return time.monotonic() - started


# ---------------------------------------------------------------- documents and indexes


def small_doc(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{SMALL_SOURCE}.txt"
    path.write_text(SMALL_TEXT, encoding="utf-8")
    return path


def large_doc(path: Path, sections: int) -> Path:
    """A report of unique sentences: about one chunk per section, so embedding it uses the worker pool."""
    numerals = "一二三四五六七八九十"
    lines = ["某县审计局年度工作总结"]
    for i in range(sections):
        lines.append(f"{numerals[i % 10]}、第{i + 1}项重点工作")
        for j in range(4):
            lines.append(
                f"第{i + 1}项工作的第{j + 1}个环节共完成审计项目{(i * 7 + j * 13) % 97 + 3}个，"
                f"查出问题金额{(i * 31 + j * 17) % 9000 + 100}万元，整改完成率{(i + j) % 40 + 60}%，"
                f"涉及单位编号{i:05d}-{j}，移送案件线索{(i * j) % 9}件。"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def finds_small_doc(answer: dict) -> bool:
    return (
        not answer["refused"]
        and "386卷" in answer["answer"]
        and any(c["source"] == SMALL_SOURCE for c in answer["citations"])
    )


@pytest.fixture(scope="module")
def served_index(tmp_path_factory) -> Path:
    """The sample report, two laws and one small document: ingested once by `rag ingest`."""
    folder = tmp_path_factory.mktemp("consistency")
    index_dir = folder / "index"
    doc = small_doc(folder / "docs")
    out = rag("ingest", "--quiet", str(SAMPLE_REPORT), str(AUDIT_LAW), str(PENALTY_LAW), str(doc), index_dir=index_dir)
    assert out.returncode == 0, out.stderr
    assert "新增 4" in out.stdout, out.stdout
    return index_dir


KILLED_WRITER = """
import os, sys
from rag.components import build
from rag.config import load_settings
from rag.index import Index
from rag.ingest import ingest_paths
Index.commit = lambda *args, **kwargs: os._exit(9)  # killed after its store write, before the snapshot is saved
ingest_paths(build(load_settings()).index, [sys.argv[1]], show_bar=False)
"""


def copy_index(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def components_for(index_dir: Path, **env: str):
    from rag.components import build
    from rag.config import load_settings

    return build(load_settings({"RAG_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1", **env}))


# ---------------------------------------------------------------- 1. a running app follows other processes' writes


@pytest.mark.slow
def test_running_app_answers_after_delete_and_ingest_cycles_under_twenty_clients(served_index, tmp_path):
    """`rag serve` stays in step with three `rag delete` / `rag ingest` cycles run from the shell
    while 20 clients ask; within 5 s of the last ingest it finds the document again; no errors."""
    from gradio_client import Client

    index_dir = copy_index(served_index, tmp_path / "index")
    doc = small_doc(tmp_path / "docs")
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}/"
    proc = serve(index_dir, port, log)
    done = threading.Event()
    lock = threading.Lock()
    stats = {"requests": 0, "small_found": 0, "small_refused": 0}
    errors: list[str] = []
    timeline: list[tuple[float, bool]] = []  # (time, found) of every answer to the small document's question

    def client_loop(n: int) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as exc:  # counted: a client that cannot connect is an error too
            with lock:
                errors.append(f"connect: {type(exc).__name__}: {exc}"[:300])
            return
        i = n
        while not done.is_set():
            question = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            try:
                answer = client.predict(question, api_name="/ask")
                ok = isinstance(answer, dict) and "answer" in answer
            except Exception as exc:
                with lock:
                    errors.append(f"{question}: {type(exc).__name__}: {exc}"[:300])
                continue
            with lock:
                stats["requests"] += 1
                if not ok:
                    errors.append(f"{question}: bad response {answer!r}"[:300])
                elif question == SMALL_QUESTION:
                    found = finds_small_doc(answer)
                    stats["small_found" if found else "small_refused"] += 1
                    timeline.append((time.monotonic(), found))

    threads = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(20)]
    cycles: list[dict] = []
    try:
        wait_http(url, proc, log)
        assert finds_small_doc(Client(url, verbose=False).predict(SMALL_QUESTION, api_name="/ask"))
        for t in threads:
            t.start()
        time.sleep(3)
        for _ in range(3):
            t0 = time.monotonic()
            deleted = rag("delete", SMALL_SOURCE, index_dir=index_dir)
            assert deleted.returncode == 0, deleted.stderr
            t1 = time.monotonic()
            added = rag("ingest", "--quiet", str(doc), index_dir=index_dir)
            assert added.returncode == 0 and "新增 1" in added.stdout, added.stdout + added.stderr
            cycles.append({"delete_s": round(t1 - t0, 1), "ingest_s": round(time.monotonic() - t1, 1)})
        last_ingest = time.monotonic()
        # The clients keep asking (a probe too); the app must find the document again within 5 s and,
        # from then on, every answer to its question must find it.
        probe = Client(url, verbose=False)
        probe_after = None
        while time.monotonic() - last_ingest < 15:
            if finds_small_doc(probe.predict(SMALL_QUESTION, api_name="/ask")):
                probe_after = time.monotonic() - last_ingest
                break
            time.sleep(0.2)
        while time.monotonic() - last_ingest < 10:
            time.sleep(0.5)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=60)
        stop(proc)
    first_by_client = next((t - last_ingest for t, found in timeline if t >= last_ingest and found), None)
    found_after = min((x for x in (probe_after, first_by_client) if x is not None), default=None)
    late = [(round(t - last_ingest, 2), found) for t, found in timeline if t > last_ingest + 5.0]
    result = {
        "clients": 20,
        "cycles": cycles,
        "requests": stats["requests"],
        "errors": len(errors),
        "error_samples": errors[:5],
        "small_question_found": stats["small_found"],
        "small_question_refused": stats["small_refused"],
        "probe_found_after_last_ingest_s": None if probe_after is None else round(probe_after, 2),
        "clients_found_after_last_ingest_s": None if first_by_client is None else round(first_by_client, 2),
        "answers_after_5_s": len(late),
        "stale_answers_after_5_s": sum(1 for _, found in late if not found),
    }
    print(json.dumps(result, ensure_ascii=False))
    assert not errors, result
    assert found_after is not None and found_after <= 5.0, result
    assert late and all(found for _, found in late), result
    assert stats["requests"] >= 100, result
    assert stats["small_refused"] > 0, "the clients never saw the document deleted: the cycles were not observed"


# ---------------------------------------------------------------- 2. threads asking while another process writes


@pytest.mark.slow
def test_threads_asking_while_another_process_changes_the_index(served_index, tmp_path):
    """Eight threads ask through one Assistant while `rag delete` / `rag ingest` run in another
    process: zero errors, and the threads do see the generations move."""
    index_dir = copy_index(served_index, tmp_path / "index")
    doc = small_doc(tmp_path / "docs")
    components = components_for(index_dir)
    assistant = components.assistant
    assistant.ask(QUESTIONS[0])
    done = threading.Event()
    lock = threading.Lock()
    errors: list[str] = []
    generations: set[str] = set()
    counts = {"answers": 0}

    def ask_loop(n: int) -> None:
        i = n
        while not done.is_set():
            question = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            try:
                answer = assistant.ask(question)
                assert answer.answer
                generation = components.index.snapshot().generation
            except Exception as exc:
                with lock:
                    errors.append(f"{question}: {type(exc).__name__}: {exc}"[:300])
                continue
            with lock:
                counts["answers"] += 1
                generations.add(generation)

    threads = [threading.Thread(target=ask_loop, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            assert rag("delete", SMALL_SOURCE, index_dir=index_dir).returncode == 0
            assert rag("ingest", "--quiet", str(doc), index_dir=index_dir).returncode == 0
        time.sleep(1.5)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=60)
        components.close()
    print(json.dumps({"threads": 8, "answers": counts["answers"], "errors": len(errors), "generations_seen": len(generations)}))
    assert not errors, errors[:5]
    assert counts["answers"] >= 50, counts
    assert len(generations) >= 3, generations
    final = assistant.ask(SMALL_QUESTION)
    assert finds_small_doc(final.to_dict()), final.answer


@pytest.mark.slow
def test_a_process_that_wrote_follows_another_process_and_writes_again(served_index, tmp_path):
    """The web app's case: it uploaded (its embedded Chroma client is open), the shell then deleted and
    re-ingested a document; the app follows, and its next upload works and keeps the shell's changes."""
    from rag.ingest import ingest_paths

    index_dir = copy_index(served_index, tmp_path / "index")
    doc = small_doc(tmp_path / "docs")
    first = tmp_path / "docs" / "学习制度.md"
    first.write_text("# 某局学习制度\n一、学习安排\n每月集中学习法律法规一次。\n", encoding="utf-8")
    second = tmp_path / "docs" / "值班制度.md"
    second.write_text("# 某局值班制度\n一、值班安排\n节假日实行领导带班，值班人员二十四小时在岗。\n", encoding="utf-8")
    third = tmp_path / "docs" / "保密制度.md"
    third.write_text("# 某局保密制度\n一、保密要求\n涉密文件须存放在保密柜中，不得带出办公场所。\n", encoding="utf-8")
    components = components_for(index_dir)
    try:
        index = components.index
        assert ingest_paths(index, [first], show_bar=False).count("added") == 1
        assert index._store is not None  # this process's Chroma client is open, as after an upload
        for _ in range(2):
            assert rag("delete", SMALL_SOURCE, index_dir=index_dir).returncode == 0
            assert rag("ingest", "--quiet", str(doc), index_dir=index_dir).returncode == 0
        time.sleep(1.1)
        assert index.snapshot().rows_of(SMALL_SOURCE)
        assert finds_small_doc(components.assistant.ask(SMALL_QUESTION).to_dict())
        # A writer killed after its store write, before it saved the snapshot: only the store moved.
        killed = python("-c", KILLED_WRITER, str(second), index_dir=index_dir)
        assert killed.returncode == 9, killed.stderr
        time.sleep(1.1)
        index._store_checked_at = 0.0  # the five-second comparison with the store happens now
        assert index.snapshot().rows_of("值班制度")  # read from the store, through a reopened client
        assert "二十四小时" in components.assistant.ask("节假日值班人员如何在岗？").answer
        assert ingest_paths(index, [third], show_bar=False).count("added") == 1
        sources = {r.source for r in index.documents()}
        assert {SMALL_SOURCE, "学习制度", "值班制度", "保密制度", "audit-law"} <= sources
        assert index.check().ok
    finally:
        components.close()


# ---------------------------------------------------------------- 3. generations only move forward


@pytest.mark.slow
def test_generation_moves_forward_after_delete_and_readd_of_the_same_file(make_index, tmp_path):
    """Deleting and re-adding the same file gives a new generation (never an old one), so a reader
    that holds the old snapshot reloads it."""
    from rag.config import load_settings
    from rag.ingest import delete_source, ingest_paths
    from rag.keyword_index import KeywordIndex
    from rag.store import generation_counter

    settings = load_settings({"RAG_INDEX_DIR": str(tmp_path / "index")})
    writer = make_index(settings)
    doc = small_doc(tmp_path / "docs")
    ingest_paths(writer, [doc], show_bar=False)
    first = writer.store.generation()
    reader = make_index(settings)  # a reader that never opens the store: it reads the saved snapshot
    assert reader.snapshot().generation == first and reader._store is None
    ids_first = list(reader.snapshot().ids)

    assert delete_source(writer, SMALL_SOURCE)
    deleted = writer.store.generation()
    ingest_paths(writer, [doc], show_bar=False)
    again = writer.store.generation()

    counters = [generation_counter(g) for g in (first, deleted, again)]
    assert counters == sorted(counters) and len(set(counters)) == 3, (first, deleted, again)
    assert again != first
    assert KeywordIndex.saved_generation(writer.snapshot_dir) == again
    reader._checked_at = 0.0  # the next call checks the generation (as it does once a second)
    snapshot = reader.snapshot()
    assert snapshot.generation == again and snapshot.ids == ids_first  # same content, new generation
    assert reader._store is None


# ---------------------------------------------------------------- 4. workers die with their parent


def _ingest_until_embedding(index_dir: Path, doc: Path, log: Path, extra_env: dict | None = None) -> tuple[subprocess.Popen, dict[int, int]]:
    """Start `rag ingest` of a large document and return once its worker processes are encoding."""
    with open(log, "wb") as handle:
        proc = start([VENV_PYTHON, "-m", "rag", "ingest", "--quiet", str(doc)], _env(index_dir, extra_env), stdout=handle, stderr=subprocess.STDOUT)

    def encoding() -> bool:
        workers = {p: t for p, t in multiprocessing_children(proc.pid).items() if "spawn_main" in _cmdline(p)}
        cpu = [(_stat(p) or ("", 0, 0, 0.0))[3] for p in workers]
        return len(workers) >= 2 and min(cpu) > 2.0  # the model loads in about 1 s of CPU: past that they encode

    if not wait_until(encoding, timeout=180, step=0.2):
        stop(proc, signal.SIGKILL)
        pytest.fail("the ingest never started its embedding workers:\n" + log.read_text(errors="replace")[-2000:])
    return proc, multiprocessing_children(proc.pid)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_no_worker_survives_a_killed_ingest(sig, tmp_path):
    index_dir = tmp_path / "index"
    doc = large_doc(tmp_path / "big-report.txt", sections=2400)
    before = orphan_workers()
    proc, tracked = _ingest_until_embedding(index_dir, doc, tmp_path / "ingest.log")
    try:
        assert any("resource_tracker" in _cmdline(p) for p in tracked), {p: _cmdline(p) for p in tracked}
        assert sum("spawn_main" in _cmdline(p) for p in tracked) >= 2
        os.kill(proc.pid, sig)  # the ingest only, as `kill` from a shell does: not its group
        proc.wait(timeout=60)
        waited = assert_no_survivors(tracked, before, str(index_dir))
    finally:
        stop(proc, signal.SIGKILL)
    print(json.dumps({"signal": sig.name, "tracked": len(tracked), "gone_within_s": round(waited, 2), "exit": proc.returncode}))
    if sig == signal.SIGTERM:
        assert proc.returncode != 0


@pytest.mark.slow
def test_no_worker_survives_sigterm_of_a_server_that_ran_an_upload(served_index, tmp_path):
    """Upload through the browser (an `.exe` and an oversize file among good ones: a result per file),
    then SIGTERM the server: its embedding workers and resource tracker end with it."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is installed by .ci/run"
    index_dir = copy_index(served_index, tmp_path / "index")
    upload = tmp_path / "upload"
    upload.mkdir()
    big = large_doc(upload / "县审计局工作总结.txt", sections=300)
    exe = upload / "setup.exe"
    exe.write_bytes(b"MZ\x90\x00" + os.urandom(4096))
    oversize = upload / "超大文件.txt"  # above RAG_MAX_UPLOAD_BYTES (20 MB): a result of its own, not a refused batch
    oversize.write_bytes("一、内容\n审计工作情况。\n".encode() * (21 * 1024 * 1024 // 30))
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}/"
    before = orphan_workers()
    proc = serve(index_dir, port, log)
    tracked: dict[int, int] = {}
    try:
        wait_http(url, proc, log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            try:
                page = browser.new_page(locale="zh-CN")
                page.goto(url, wait_until="domcontentloaded")
                page.get_by_role("tab", name="知识库").click()
                page.locator("input[type=file]").first.set_input_files([str(big), str(exe), str(oversize)])
                page.get_by_role("button", name="上传并索引").click()
                page.wait_for_function(
                    "document.querySelector('#upload-result') && document.querySelector('#upload-result').innerText.includes('新增')",
                    timeout=300000,
                )
                result = page.locator("#upload-result").inner_text()
            finally:
                browser.close()
        cells = " ".join(result.split())  # one cell per line in the rendered table
        assert re.search(r"setup\.exe 失败 0 不支持的文件类型", cells), cells
        assert re.search(r"县审计局工作总结\.txt 新增 \d+", cells), cells
        assert re.search(r"超大文件\.txt 失败 0 文件过大（2\d\.\d MB），上限为 20 MB", cells), cells
        tracked = multiprocessing_children(proc.pid)
        assert sum("spawn_main" in _cmdline(p) for p in tracked) >= 2, "the upload did not use the worker pool"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        waited = assert_no_survivors(tracked, before, str(index_dir))
    finally:
        stop(proc, signal.SIGKILL)
    print(json.dumps({"tracked": len(tracked), "gone_within_s": round(waited, 2), "exit": proc.returncode}))


# ---------------------------------------------------------------- 5. exports of two sessions


def test_two_sessions_exporting_at_once_get_their_own_conversations(tmp_path):
    from ui.app import App

    components = components_for(tmp_path / "index", RAG_EMBEDDING_MODE="fake")
    app = App(components)
    try:
        conversations = {
            "session-a": [{"question": "甲的问题：审计法第五条", "resolved": "审计法第五条", "answer": "甲的回答", "citations": []}],
            "session-b": [{"question": "乙的问题：行政处罚的种类", "resolved": "行政处罚的种类", "answer": "乙的回答", "citations": []}],
        }
        gate = threading.Barrier(len(conversations))
        paths: dict[str, str] = {}

        def export(session: str) -> None:
            gate.wait()
            paths[session] = app.export_chat(conversations[session], SimpleNamespace(session_hash=session))

        threads = [threading.Thread(target=export, args=(s,)) for s in conversations]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        a, b = Path(paths["session-a"]), Path(paths["session-b"])
        assert a != b and a.parent != b.parent and a.name != b.name
        assert "甲的问题" in a.read_text(encoding="utf-8") and "乙的问题" not in a.read_text(encoding="utf-8")
        assert "乙的问题" in b.read_text(encoding="utf-8") and "甲的问题" not in b.read_text(encoding="utf-8")
        # The same session exporting twice in one second gets two files; no session at all, a folder of its own.
        again = Path(app.export_chat(conversations["session-a"], SimpleNamespace(session_hash="session-a")))
        assert again != a and again.parent == a.parent
        anonymous = Path(app.export_chat(conversations["session-b"], None))
        assert anonymous.parent not in (a.parent, b.parent)
    finally:
        shutil.rmtree(app.export_dir, ignore_errors=True)
        components.close()


# ---------------------------------------------------------------- 6. a 2,000-deep folder


def _make_deep_tree(root: Path, depth: int, name: str) -> None:
    """`depth` nested folders, made relative to a directory descriptor (the full path passes PATH_MAX)."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w", encoding="utf-8") as f:
            f.write("一、深处的文件\n这份文件位于两千层文件夹之下。\n")
    finally:
        os.close(fd)


def _remove_deep_tree(root: Path, depth: int, name: str) -> None:
    """Remove the tree bottom-up through descriptors (shutil.rmtree recurses once per level)."""
    if not root.exists():
        return
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    levels = 0
    try:
        while levels < depth:
            try:
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            except FileNotFoundError:
                break
            os.close(fd)
            fd = child
            levels += 1
        for entry in os.listdir(fd):
            os.unlink(entry, dir_fd=fd)
        while levels > 0:
            parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(name, dir_fd=fd)
            levels -= 1
    finally:
        os.close(fd)
    shutil.rmtree(root)


@pytest.mark.slow
def test_a_two_thousand_deep_folder_beside_a_normal_file(tmp_path):
    folder = tmp_path / "batch"
    deep = folder / "deep"
    folder.mkdir()
    shutil.copy(AUDIT_LAW, folder / "audit-law.md")
    _make_deep_tree(deep, 2000, "level")
    try:
        out = rag("ingest", "--quiet", str(folder), index_dir=tmp_path / "index")
    finally:
        _remove_deep_tree(deep, 2000, "level")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "新增 1" in out.stdout and "失败 1" in out.stdout, out.stdout
    failures = [line for line in out.stderr.splitlines() if line.strip().startswith("失败：")]
    assert len(failures) == 1, out.stderr[-2000:]
    path, reason = failures[0].strip()[len("失败：") :].rsplit("：", 1)
    assert path.startswith(str(deep)) and len(os.fsencode(path)) >= 4096
    assert re.fullmatch(r"路径过长（\d+ 字节，系统上限 \d+）", reason), reason
    assert "Traceback" not in out.stderr and "recursion" not in out.stderr


# ---------------------------------------------------------------- 7. plain errors


def test_malformed_rag_auth_refuses_to_start(tmp_path):
    out = rag("serve", "--port", str(free_port()), index_dir=tmp_path / "index", extra_env={"RAG_AUTH": "admin=secret"}, timeout=120)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "RAG_AUTH" in lines[0] and "用户名:密码" in lines[0] and "admin=secret" in lines[0], lines[0]


@pytest.mark.slow
def test_second_ingest_says_it_waits_for_the_lock_then_completes(tmp_path):
    from rag.config import load_settings
    from rag.index import LOCK_WAIT_MESSAGE, Index

    index_dir = tmp_path / "index"
    doc = small_doc(tmp_path / "docs")
    holder = Index(load_settings({"RAG_INDEX_DIR": str(index_dir)}), embeddings=None)
    err = tmp_path / "ingest.err"
    with holder.write_lock():
        with open(err, "wb") as handle:
            proc = start([VENV_PYTHON, "-m", "rag", "ingest", "--quiet", str(doc)], _env(index_dir), stdout=subprocess.PIPE, stderr=handle, text=True)
        try:
            assert wait_until(lambda: LOCK_WAIT_MESSAGE in err.read_text(encoding="utf-8"), timeout=120), err.read_text(encoding="utf-8")
            time.sleep(1)
            assert proc.poll() is None, "the second ingest must wait, not fail"
        except BaseException:
            stop(proc, signal.SIGKILL)
            raise
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        stop(proc, signal.SIGKILL)
    assert LOCK_WAIT_MESSAGE == "等待另一个入库进程结束……"
    assert err.read_text(encoding="utf-8").strip() == LOCK_WAIT_MESSAGE
    assert proc.returncode == 0 and "新增 1" in out, out


class ChromaServer:
    """`chroma run` from the venv on a fixed port and path, so it can be killed and started again."""

    def __init__(self, path: Path, log: Path) -> None:
        self.path, self.log = path, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        chroma = Path(VENV_PYTHON).with_name("chroma")
        with open(self.log, "ab") as handle:
            self.proc = start([str(chroma), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
                              dict(os.environ), stdout=handle, stderr=subprocess.STDOUT)
        if not wait_until(self.up, timeout=90, step=0.3):
            pytest.fail("chroma run did not start:\n" + self.log.read_text(errors="replace")[-2000:])

    def up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGKILL)
            self.proc = None


@pytest.mark.slow
def test_chroma_server_down_and_back(tmp_path):
    """A server killed during `rag ingest`: one Chinese line, no traceback, non-zero exit; while it is
    down `rag ask` and the app's /ask say so in Chinese; after a restart both answer again."""
    from gradio_client import Client

    chroma = ChromaServer(tmp_path / "chroma", tmp_path / "chroma.log")
    env = {"RAG_CHROMA_URL": chroma.url}
    app_dir, cli_dir = tmp_path / "app", tmp_path / "cli"
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}/"
    app: subprocess.Popen | None = None
    ingest: subprocess.Popen | None = None
    try:
        chroma.start()
        first = rag("ingest", "--quiet", str(SAMPLE_REPORT), str(AUDIT_LAW), index_dir=cli_dir, extra_env=env)
        assert first.returncode == 0, first.stderr
        app = serve(app_dir, port, log, env)
        wait_http(url, app, log)
        client = Client(url, verbose=False)
        assert "独立行使审计监督权" in client.predict("审计法第五条", api_name="/ask")["answer"]

        doc = large_doc(tmp_path / "big-report.txt", sections=2000)
        err = tmp_path / "ingest.err"
        ingest, _ = _ingest_until_embedding(cli_dir, doc, err, env)  # both streams go to the file
        chroma.kill()
        ingest.wait(timeout=300)
        output = err.read_text(encoding="utf-8", errors="replace")
        lines = [line for line in output.splitlines() if line.strip()]
        assert ingest.returncode != 0
        assert "Traceback" not in output and len(lines) == 1, output[-3000:]
        assert lines[0].startswith("错误：无法连接 Chroma 服务器"), lines[0]

        asked = rag("ask", "审计法第五条", index_dir=cli_dir, extra_env=env, timeout=120)
        assert asked.returncode != 0 and "Traceback" not in asked.stderr, asked.stderr[-3000:]
        assert [line for line in asked.stderr.splitlines() if line.strip()] == [lines[0]], asked.stderr
        with pytest.raises(Exception, match="无法连接 Chroma 服务器"):
            client.predict("审计法第五条", api_name="/ask")

        chroma.start()
        again = rag("ask", "审计法第五条", index_dir=cli_dir, extra_env=env, timeout=120)
        assert again.returncode == 0 and "独立行使审计监督权" in again.stdout, again.stdout + again.stderr

        def app_answers() -> bool:
            try:
                return "独立行使审计监督权" in client.predict("审计法第五条", api_name="/ask")["answer"]
            except Exception:
                return False

        assert wait_until(app_answers, timeout=30, step=1.0)
    finally:
        for proc in (ingest, app):
            if proc is not None:
                stop(proc)
        chroma.kill()


# ---------------------------------------------------------------- 8. uploads, questions, big files, pruned laws


@pytest.mark.slow
def test_upload_of_an_exe_among_good_files_gives_per_file_results(tmp_path):
    from ui.app import App

    components = components_for(tmp_path / "index")
    app = App(components)
    folder = tmp_path / "picked"
    folder.mkdir()
    good = small_doc(folder)
    second = folder / "学习制度.md"
    second.write_text("# 某局学习制度\n一、学习安排\n每月集中学习法律法规一次。\n", encoding="utf-8")
    exe = folder / "setup.exe"
    exe.write_bytes(b"MZ\x90\x00" + os.urandom(2048))
    try:
        rows, docs, totals, *_ = app.upload([str(good), str(exe), str(second)], progress=lambda *a, **k: None)
    finally:
        shutil.rmtree(app.export_dir, ignore_errors=True)
        components.close()
    by_name = {row[0]: row for row in rows}
    assert set(by_name) == {"archive-notice.txt", "setup.exe", "学习制度.md"}, rows
    assert by_name["setup.exe"][1] == "失败" and "不支持的文件类型" in by_name["setup.exe"][3]
    assert by_name["archive-notice.txt"][1] == "新增" and by_name["学习制度.md"][1] == "新增"
    assert {row[0] for row in docs} == {SMALL_SOURCE, "学习制度"}


@pytest.mark.slow
def test_a_ten_million_character_question_is_cut_first(served_index):
    components = components_for(served_index)
    question = "审计法第五条是怎么规定的？" * (10_000_000 // 13 + 1)
    try:
        started = time.monotonic()
        answer = components.assistant.ask(question)
        seconds = time.monotonic() - started
    finally:
        components.close()
    assert len(question) >= 10_000_000
    assert answer.question == question[:500] and len(answer.question) == 500
    assert any("问题过长" in n and "500" in n for n in answer.notices), answer.notices
    assert seconds < 30, seconds


@pytest.mark.slow
def test_a_nineteen_megabyte_file_of_one_repeated_line_becomes_few_chunks(tmp_path):
    line = "审计机关依法独立行使审计监督权，不受其他行政机关、社会团体和个人的干涉。\n".encode()
    path = tmp_path / "repeated.txt"
    with open(path, "wb") as f:
        f.write(line * (19 * 1024 * 1024 // len(line)))
    index_dir = tmp_path / "index"
    proc = start([VENV_PYTHON, "-m", "rag", "ingest", "--quiet", str(path)], _env(index_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    started = time.monotonic()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out = proc.stdout.read().decode()
    finally:
        stop(proc, signal.SIGKILL)
    seconds = time.monotonic() - started
    assert proc.returncode == 0 and "新增 1" in out, out
    docs = json.loads(rag("docs", "--json", index_dir=index_dir).stdout)
    peak_mb = usage.ru_maxrss / 1024
    print(json.dumps({"bytes": path.stat().st_size, "chunks": docs[0]["chunks"], "peak_rss_mb": round(peak_mb), "ingest_s": round(seconds, 1)}))
    assert docs[0]["chunks"] <= 5, docs  # peak memory is a benchmark figure (eval/perf.py), not a test


@pytest.mark.slow
def test_a_pruned_law_named_in_a_question_is_refused_with_a_notice(tmp_path):
    index_dir = tmp_path / "index"
    out = rag("ingest", "--quiet", str(SAMPLE_REPORT), str(AUDIT_LAW), str(AUDIT_REGULATIONS), index_dir=index_dir)
    assert out.returncode == 0, out.stderr
    assert rag("delete", "audit-law", index_dir=index_dir).returncode == 0
    asked = rag("ask", "--json", "审计法第五条", index_dir=index_dir)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["refused"] is True
    assert any("审计法" in n and "实施条例" not in n for n in answer["notices"]), answer["notices"]
    assert not any(c.get("article") for c in answer["citations"]), answer["citations"]
    assert "第五条" not in answer["answer"].replace("审计法第五条", ""), answer["answer"]
    # The implementing regulations still answer for themselves.
    own = json.loads(rag("ask", "--json", "审计法实施条例第五条", index_dir=index_dir).stdout)
    assert not own["refused"] and own["citations"][0]["source"] == "audit-law-implementing-regulations"
