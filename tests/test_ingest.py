"""Ingest integration: the whole corpus into a real embedded Chroma, incremental runs, bad files, crashes."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REGULATIONS, ROOT, SAMPLE_REPORT, SHARED_CORPUS
from rag.cli import main as cli
from rag.config import load_settings
from rag.ingest import assign_sources, ingest_paths

pytestmark = pytest.mark.slow


def index_snapshot(index) -> dict:
    """What must be equal between a clean run and a resumed one: documents, chunk counts, chunk ids."""
    docs = {r.source: (r.content_hash, r.chunks) for r in index.documents()}
    ids = sorted(c.id for c in index.store.iter_chunks())
    return {"docs": docs, "ids": ids, "keyword_ids": sorted(index.keyword().ids)}


def test_whole_corpus_then_unchanged(make_index):
    index = make_index()
    summary = ingest_paths(index, [ROOT / "corpus", SHARED_CORPUS], show_bar=False)
    assert summary.count("failed") == 0
    assert summary.count("added") == 26  # 25 regulations + the report (its copy in shared is skipped)
    records = {r.source: r for r in index.documents()}
    assert records["audit-law"].chunks == 61  # 60 articles + the 题注
    assert records["audit-law"].doc_type == "law"
    report = records["kaifeng-audit-bureau-2024-rule-of-law-report"]
    assert (report.doc_type, report.year, report.issuer) == ("report", 2024, "开封市审计局")
    assert index.check().ok
    total = index.store.count_chunks()
    assert total == sum(r.chunks for r in records.values())

    again = ingest_paths(index, [ROOT / "corpus", SHARED_CORPUS], show_bar=False)
    assert again.count("unchanged") == 27 and again.count("added") == 0 and again.count("updated") == 0
    assert index.store.count_chunks() == total

    hits = index.keyword().search(["持证上岗"], k=3)
    assert hits and hits[0].source == "kaifeng-audit-bureau-2024-rule-of-law-report"


def test_change_delete_and_prune(make_index, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("audit-law.md", "state-compensation-law.md", "budget-law.md"):
        shutil.copy(REGULATIONS / name, folder / name)
    shutil.copy(SAMPLE_REPORT, folder / SAMPLE_REPORT.name)
    index = make_index()
    first = ingest_paths(index, [folder], show_bar=False)
    assert first.count("added") == 4

    law = folder / "audit-law.md"
    law.write_text(law.read_text(encoding="utf-8").replace("第六十条 本法自1995年1月1日起施行。", "第六十条 本法自公布之日起施行。"), encoding="utf-8")
    (folder / "budget-law.md").unlink()
    second = ingest_paths(index, [folder], prune=True, show_bar=False)
    statuses = {Path(r.path).name: r.status for r in second.results}
    assert statuses["audit-law.md"] == "updated"
    assert statuses["budget-law.md"] == "removed"
    assert statuses["state-compensation-law.md"] == "unchanged"
    sources = {r.source for r in index.documents()}
    assert "budget-law" not in sources and "audit-law" in sources
    assert not any(c.metadata["source"] == "budget-law" for c in index.store.iter_chunks())
    article_60 = [c for c in index.store.chunks_of("audit-law") if c.metadata.get("article") == "第六十条"]
    assert article_60 and "公布之日起施行" in article_60[0].text
    assert index.check().ok
    assert not any("预算" in t for t in index.keyword().texts if "预算法" in t)


def test_bad_files_do_not_stop_the_batch(make_index, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(REGULATIONS / "audit-law.md", folder / "audit-law.md")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(os.urandom(4096))
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    (folder / "gbk.txt").write_bytes("一、总体情况\n全年办理审计项目12个。\n二、存在问题\n人员不足。\n".encode("gbk"))
    index = make_index()
    summary = ingest_paths(index, [folder], show_bar=False)
    by_name = {Path(r.path).name: r for r in summary.results}
    assert by_name["audit-law.md"].status == "added"
    assert by_name["gbk.txt"].status == "added"
    assert by_name["empty.txt"].status == "failed" and "空" in by_name["empty.txt"].reason
    assert by_name["binary.txt"].status == "failed" and "文本" in by_name["binary.txt"].reason
    assert by_name["broken.pdf"].status == "failed" and "PDF" in by_name["broken.pdf"].reason
    assert {r.source for r in index.documents()} == {"audit-law", "gbk"}


def test_name_clash_uses_relative_path(tmp_path):
    root = tmp_path / "root"
    files = [(root / "a" / "报告.txt", root), (root / "b" / "报告.txt", root), (root / "审计法.md", root)]
    sources = assign_sources(files, {})
    assert sources[files[0][0]] == "a/报告"
    assert sources[files[1][0]] == "b/报告"
    assert sources[files[2][0]] == "审计法"
    # A file already indexed keeps its source.
    assert assign_sources(files[:1], {str(files[0][0]): "报告"})[files[0][0]] == "报告"


def test_cli_ingest_docs_chunks(tmp_path, capsys):
    index_dir = tmp_path / "cli-index"
    assert cli(["ingest", "--index", str(index_dir), "--quiet", str(REGULATIONS / "audit-law.md"), str(SAMPLE_REPORT)]) == 0
    out = capsys.readouterr().out
    assert "新增 2" in out
    assert cli(["docs", "--index", str(index_dir), "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert {d["source"] for d in docs} == {"audit-law", "kaifeng-audit-bureau-2024-rule-of-law-report"}
    for d in docs:
        assert {"source", "title", "doc_type", "year", "chunks"} <= d.keys()
    assert cli(["chunks", "--index", str(index_dir), "kaifeng-audit-bureau-2024-rule-of-law-report"]) == 0
    out = capsys.readouterr().out
    assert "二、积极推进法治政府建设 > （一）依法全面履行政府职能 > 1．依法履行审计监督职能" in out
    assert cli(["check", "--index", str(index_dir)]) == 0
    # Nothing readable: non-zero exit, the reason in Chinese.
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert cli(["ingest", "--index", str(index_dir), "--quiet", str(empty)]) == 1
    assert "文件为空" in capsys.readouterr().err


def test_check_finds_and_repairs_orphans(make_index, tmp_path):
    index = make_index()
    ingest_paths(index, [REGULATIONS / "audit-law.md", REGULATIONS / "state-compensation-law.md"], show_bar=False)
    # Simulate a crash between "chunks written" and "manifest written".
    index.store.manifest.delete(ids=["state-compensation-law"])
    report = index.check()
    assert report.orphan_chunks == 43 and not report.ok
    removed, _ = index.repair()
    assert removed == 43
    assert index.check().ok
    ingest_paths(index, [REGULATIONS / "audit-law.md", REGULATIONS / "state-compensation-law.md"], show_bar=False)
    assert {r.source for r in index.documents()} == {"audit-law", "state-compensation-law"}


def _run_ingest(index_dir: Path, folder: Path) -> subprocess.Popen:
    env = dict(os.environ, RAG_INDEX_DIR=str(index_dir))
    return subprocess.Popen(
        [sys.executable, "-m", "rag", "ingest", "--quiet", str(folder)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_at_random_points_then_rerun_equals_clean_run(make_index, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("audit-law.md", "administrative-penalty-law.md", "budget-law.md", "supervision-law.md"):
        shutil.copy(REGULATIONS / name, folder / name)
    shutil.copy(SAMPLE_REPORT, folder / SAMPLE_REPORT.name)

    clean_dir = tmp_path / "clean"
    assert _run_ingest(clean_dir, folder).wait(timeout=300) == 0
    clean = index_snapshot(make_index(load_settings().with_index(clean_dir)))

    rng = random.Random(20261130)
    crashed_dir = tmp_path / "crashed"
    kills = 0
    for _ in range(3):
        proc = _run_ingest(crashed_dir, folder)
        time.sleep(rng.uniform(1.5, 5.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 1, "no run was killed mid-way: the test would prove nothing"
    assert _run_ingest(crashed_dir, folder).wait(timeout=300) == 0
    resumed_index = make_index(load_settings().with_index(crashed_dir))
    assert index_snapshot(resumed_index) == clean
    assert resumed_index.check().ok


def test_uploads_are_confined_and_checked(tmp_path):
    from rag.ingest import safe_filename, save_uploads

    assert safe_filename("../../etc/passwd.txt") == "passwd.txt"
    assert safe_filename("..\\..\\windows\\win.ini.md") == "win.ini.md"
    assert safe_filename("报告 <2024>.PDF") == "报告_2024.pdf"
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    good = incoming / "通知.txt"
    good.write_text("一、事项\n内容。", encoding="utf-8")
    exe = incoming / "tool.exe"
    exe.write_bytes(b"MZ")
    big = incoming / "big.txt"
    big.write_bytes(b"a" * 2048)
    uploads = tmp_path / "uploads"
    saved, rejected = save_uploads([good, exe, big], uploads, max_bytes=1024)
    assert [p.name for p in saved] == ["通知.txt"] and saved[0].parent == uploads.resolve()
    reasons = {r.path: r.reason for r in rejected}
    assert "不支持的文件类型" in reasons["tool.exe"] and "文件过大" in reasons["big.txt"]
    # A different file with the same name does not overwrite the first.
    other = tmp_path / "other"
    other.mkdir()
    (other / "通知.txt").write_text("不同的内容。", encoding="utf-8")
    again, _ = save_uploads([other / "通知.txt"], uploads, max_bytes=1024)
    assert again[0].name == "通知-2.txt" and (uploads / "通知.txt").read_text(encoding="utf-8") == "一、事项\n内容。"
