"""Ingest: incremental runs, metadata overrides, deletes, the forward-only generation, bad files, crashes."""

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
from conftest import REGULATIONS, ROOT, SAMPLE_REPORT, SHARED_CORPUS, TINY_DOCUMENTS, write_documents

from rag.cli import main as cli
from rag.config import load_settings
from rag.ingest import assign_sources, delete_source, ingest_paths, safe_filename, save_uploads, set_metadata
from rag.schema import PARSER_VERSION
from rag.store import OverrideError, parse_override

FULL_WIDTH = "某县审计局2024年工作报告\n一、总体情况\n全年办理审计项目１２个，其中专项审计３个。\n二、存在问题\n人员不足。\n"


def counter(generation: str) -> int:
    return int(generation.split(":")[0])


# ---------------------------------------------------------------- small documents (FAKE embeddings)


def test_incremental_runs_and_the_forward_only_generation(fake_components, tmp_path):
    folder = write_documents(tmp_path / "docs", {"fw.txt": FULL_WIDTH, "qinghe.txt": TINY_DOCUMENTS["qinghe-audit-bureau-2023-report.txt"]})
    index = fake_components.index
    first = ingest_paths(index, [folder], show_bar=False)
    assert sorted((r.source, r.status) for r in first.results) == [("fw", "added"), ("qinghe", "added")]
    generations = [index.snapshot().generation]
    again = ingest_paths(index, [folder], show_bar=False)
    assert {r.status for r in again.results} == {"unchanged"}
    assert index.snapshot().generation == generations[-1]  # nothing written, nothing moved
    (folder / "fw.txt").write_text(FULL_WIDTH.replace("人员不足", "人员不足，经费紧张"), encoding="utf-8")
    changed = ingest_paths(index, [folder], show_bar=False)
    assert {r.source: r.status for r in changed.results} == {"fw": "updated", "qinghe": "unchanged"}
    generations.append(index.snapshot().generation)
    assert any("经费紧张" in t for t in index.snapshot().texts)
    assert delete_source(index, "fw") and not delete_source(index, "fw")
    generations.append(index.snapshot().generation)
    assert [r.source for r in index.documents()] == ["qinghe"]
    assert all(m["source"] != "fw" for m in index.snapshot().metadatas)
    numbers = [counter(g) for g in generations]
    assert numbers == sorted(numbers) and len(set(generations)) == len(generations)
    assert index.check().ok  # deleting a name that is not indexed leaves no stale snapshot behind


def test_documents_chunked_by_an_older_parser_are_chunked_again(fake_components, tmp_path, monkeypatch):
    """A fix to loading or structure reaches an existing index: records carry the parser version, and
    an unchanged file whose record is older is chunked again (once)."""
    import rag.ingest

    folder = write_documents(tmp_path / "docs", {"qinghe.txt": TINY_DOCUMENTS["qinghe-audit-bureau-2023-report.txt"]})
    index = fake_components.index
    ingest_paths(index, [folder], show_bar=False)
    assert [r.parser for r in index.documents()] == [PARSER_VERSION]
    monkeypatch.setattr(rag.ingest, "PARSER_VERSION", PARSER_VERSION + 1)
    monkeypatch.setattr(rag.store, "PARSER_VERSION", PARSER_VERSION + 1)
    newer = ingest_paths(index, [folder], show_bar=False)
    assert [r.status for r in newer.results] == ["updated"]
    assert [r.parser for r in index.documents()] == [PARSER_VERSION + 1]
    again = ingest_paths(index, [folder], show_bar=False)
    assert [r.status for r in again.results] == ["unchanged"]


def test_a_new_index_builds_its_snapshot_from_the_chunks_written(fake_components, tmp_path):
    """A first ingest does not read the store back; its snapshot equals one read from the store."""
    folder = write_documents(tmp_path / "docs", {"fw.txt": FULL_WIDTH, "qinghe.txt": TINY_DOCUMENTS["qinghe-audit-bureau-2023-report.txt"]})
    index = fake_components.index
    ingest_paths(index, [folder], show_bar=False)
    built = index.snapshot()
    assert index.last_refresh != "read"  # not read back from the store
    read = index.rebuild()
    assert index.last_refresh == "read"
    assert built.generation == read.generation and built.ids == read.ids and built.texts == read.texts
    assert built.metadatas == read.metadatas and built.records == read.records
    assert built.vectors is not None and read.vectors is not None
    assert abs(built.vectors - read.vectors).max() < 1e-6
    assert built.search(["经费", "人员"], k=5) == read.search(["经费", "人员"], k=5)


def test_keyword_tokens_tokenise_each_heading_line_once():
    """The keyword tokens of a chunk are those of its whole embedding text (title, section path,
    chunk), whether a heading line is tokenised once per document or with every chunk."""
    from rag.chunking import chunk_document
    from rag.ingest import chunk_tokens
    from rag.loaders import load_document
    from rag.segment import tokenize

    for path in (REGULATIONS / "audit-law.md", SAMPLE_REPORT):
        chunks = chunk_document(load_document(path, source=path.stem))
        assert len({c.embed_text.split("\n", 1)[0] for c in chunks}) < len(chunks)  # the title repeats
        assert chunk_tokens(chunks) == [tokenize(c.embed_text) for c in chunks]


def test_a_new_index_does_not_wait_for_a_snapshot_that_was_never_saved(fake_components, monkeypatch):
    """Nothing saved and no writer swapping one in: `None` at once (it used to sleep 5 x 50 ms, twice
    per ingest); a snapshot being swapped in (the old one moved aside) is waited for."""
    import rag.index

    index = fake_components.index
    sleeps: list[float] = []
    monkeypatch.setattr(rag.index.time, "sleep", sleeps.append)
    assert index._load_saved() is None and sleeps == []
    index.snapshot_dir.parent.mkdir(parents=True, exist_ok=True)
    (index.snapshot_dir.parent / f".{index.snapshot_dir.name}.old-1234abcd").mkdir()
    assert index._load_saved() is None and len(sleeps) == rag.index.SNAPSHOT_RETRIES


def test_full_width_digits_are_kept_and_still_found(fake_components, tmp_path):
    folder = write_documents(tmp_path / "docs", {"fw.txt": FULL_WIDTH})
    ingest_paths(fake_components.index, [folder], show_bar=False)
    snapshot = fake_components.index.snapshot()
    texts = [snapshot.texts[i] for i in snapshot.rows_of("fw")]
    assert any("审计项目１２个" in t for t in texts)  # a citation quotes the document as written
    assert snapshot.search(["12"], 1)[0].source == "fw"
    best = fake_components.retriever.search("办理审计项目12个", k=1).hits[0]
    assert "１２个" in best.text


def test_a_prune_removes_documents_whose_files_are_gone(fake_components, tmp_path):
    folder = write_documents(tmp_path / "docs", {"a.txt": FULL_WIDTH, "b.txt": TINY_DOCUMENTS["lanjiang-audit-bureau-2024-report.txt"]})
    index = fake_components.index
    ingest_paths(index, [folder], show_bar=False)
    (folder / "b.txt").unlink()
    kept = ingest_paths(index, [folder], show_bar=False)
    assert {r.source for r in index.documents()} == {"a", "b"} and kept.count("removed") == 0
    pruned = ingest_paths(index, [folder], prune=True, show_bar=False)
    assert [(r.source, r.status) for r in pruned.results if r.status == "removed"] == [("b", "removed")]
    assert {r.source for r in index.documents()} == {"a"} and index.check().ok


def test_metadata_overrides_survive_reingest(fake_components, tmp_path):
    folder = write_documents(tmp_path / "docs", {"fw.txt": FULL_WIDTH})
    index = fake_components.index
    ingest_paths(index, [folder], show_bar=False)
    fields = parse_override(["type=通知", "year=2023", "issuer=某县审计局", "title=某县审计局关于审计项目的通知"])
    assert fields == {"type": "notice", "year": 2023, "issuer": "某县审计局", "title": "某县审计局关于审计项目的通知"}
    record = set_metadata(index, "fw", fields)
    assert (record.doc_type, record.year, record.title) == ("notice", 2023, "某县审计局关于审计项目的通知")
    assert set(record.overridden) == {"type", "year", "issuer", "title"}
    assert {m["doc_type"] for m in index.snapshot().metadatas} == {"notice"}
    (folder / "fw.txt").write_text(FULL_WIDTH + "三、下一步\n加强培训。\n", encoding="utf-8")
    assert ingest_paths(index, [folder], show_bar=False).results[0].status == "updated"
    [again] = index.documents()
    assert (again.doc_type, again.year, again.title) == ("notice", 2023, "某县审计局关于审计项目的通知")
    cleared = set_metadata(index, "fw", parse_override(["type=", "year=", "title="]))
    assert (cleared.doc_type, cleared.year, cleared.title) == ("report", 2024, "某县审计局2024年工作报告")  # read from the content again
    for bad in (["colour=red"], ["type=poem"], ["year=24"]):
        with pytest.raises(OverrideError):
            parse_override(bad)
    with pytest.raises(OverrideError, match="未找到文件"):
        set_metadata(index, "no-such-source", {"year": 2020})


def test_aliases_file_beside_the_documents_is_read(fake_components, tiny_corpus):
    ingest_paths(fake_components.index, [tiny_corpus], show_bar=False)
    assert fake_components.index.aliases() == {"审计条例": "审计法实施条例"}
    plan = fake_components.retriever.plan("审计条例第三条")
    assert [law.source for law in plan.laws] == ["sample-audit-law-implementing-regulations"]


def test_bad_files_do_not_stop_the_batch(fake_components, tmp_path):
    folder = tmp_path / "mixed"
    write_documents(folder, {"good.txt": FULL_WIDTH})
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    (folder / "gbk.txt").write_bytes("一、总体情况\n全年办理审计项目12个。\n二、存在问题\n人员不足。\n".encode("gbk"))
    (folder / "table.xlsx").write_bytes(b"PK\x03\x04")  # not a supported type: skipped inside a folder
    summary = ingest_paths(fake_components.index, [folder, tmp_path / "missing"], show_bar=False)
    by_name = {Path(r.path).name: r for r in summary.results}
    assert by_name["good.txt"].status == "added" and by_name["gbk.txt"].status == "added"
    assert by_name["empty.txt"].status == "failed" and "空" in by_name["empty.txt"].reason
    assert by_name["binary.txt"].status == "failed" and "文本" in by_name["binary.txt"].reason
    assert by_name["broken.pdf"].status == "failed" and "PDF" in by_name["broken.pdf"].reason
    assert by_name["missing"].status == "failed" and "不存在" in by_name["missing"].reason
    assert "table.xlsx" not in by_name
    assert {r.source for r in fake_components.index.documents()} == {"good", "gbk"}


def test_identical_content_is_indexed_once(fake_components, tmp_path):
    a = write_documents(tmp_path / "a", {"report.txt": FULL_WIDTH})
    b = write_documents(tmp_path / "b", {"copy.txt": FULL_WIDTH})
    summary = ingest_paths(fake_components.index, [a, b], show_bar=False)
    assert [r.status for r in summary.results].count("added") == 1
    skipped = next(r for r in summary.results if r.status == "unchanged")
    assert "内容与" in skipped.reason and [r.source for r in fake_components.index.documents()] == ["report"]


def test_cli_ingest_docs_set_chunks_delete_check(fake_settings, tmp_path, capsys):
    folder = write_documents(tmp_path / "docs", {"fw.txt": FULL_WIDTH})
    assert cli(["ingest", "--quiet", str(folder)]) == 0
    assert "新增 1" in capsys.readouterr().out
    assert cli(["docs", "--set", "fw", "type=通知", "year=2023"]) == 0
    assert "已更新：fw" in capsys.readouterr().out
    assert cli(["docs", "--json"]) == 0
    [doc] = json.loads(capsys.readouterr().out)
    assert (doc["source"], doc["doc_type"], doc["year"], sorted(doc["overridden"])) == ("fw", "notice", 2023, ["type", "year"])
    assert cli(["docs"]) == 0
    assert "手动设置" in capsys.readouterr().out
    assert cli(["docs", "--set", "fw", "colour=red"]) == 2
    assert "无法识别的设置" in capsys.readouterr().err
    assert cli(["chunks", "fw"]) == 0
    assert "一、总体情况" in capsys.readouterr().out
    assert cli(["chunks", "no-such"]) == 1
    assert cli(["check"]) == 0
    assert "索引一致" in capsys.readouterr().out
    assert cli(["delete", "fw", "no-such"]) == 1
    out = capsys.readouterr().out
    assert "已删除：fw" in out and "未找到：no-such" in out
    assert cli(["check"]) == 0
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert cli(["ingest", "--quiet", str(empty)]) == 1  # nothing readable: non-zero exit, the reason in Chinese
    assert "文件为空" in capsys.readouterr().err


def test_cli_ingest_encodes_the_sentences_when_sentence_search_is_on(fake_settings, tmp_path, monkeypatch, capsys):
    """With RAG_SENTENCE_SEARCH=on (the default), `rag ingest` encodes every sentence of the index (progress
    bar 句子向量) into the index's sentence cache, so the first question does not; off, it does not."""
    import sqlite3

    folder = write_documents(tmp_path / "docs", {"a.md": TINY_DOCUMENTS["sample-audit-law.md"]})
    cache = fake_settings.index_dir / "sentence_cache.sqlite"
    monkeypatch.setenv("RAG_SEMANTIC", "embedding")
    monkeypatch.setenv("RAG_SENTENCE_SEARCH", "off")
    assert cli(["ingest", str(folder)]) == 0
    assert "句子向量" not in capsys.readouterr().err and not cache.exists()
    monkeypatch.delenv("RAG_SENTENCE_SEARCH")
    assert cli(["ingest", str(folder)]) == 0
    assert "句子向量" in capsys.readouterr().err
    with sqlite3.connect(cache) as db:
        [table] = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        stored = db.execute(f"select count(*) from {table}").fetchone()[0]
    from rag.components import build
    from rag.sentence_search import passage_sentences

    components = build(load_settings())
    try:
        sentences = {x for text in components.index.snapshot().texts for x in passage_sentences(text)}
    finally:
        components.close()
    assert stored == len(sentences) >= 7  # each sentence of the indexed law once


def test_name_clash_uses_relative_path(tmp_path):
    root = tmp_path / "root"
    files = [(root / "a" / "报告.txt", root), (root / "b" / "报告.txt", root), (root / "审计法.md", root)]
    sources = assign_sources(files, {})
    assert sources[files[0][0]] == "a/报告"
    assert sources[files[1][0]] == "b/报告"
    assert sources[files[2][0]] == "审计法"
    assert assign_sources(files[:1], {str(files[0][0]): "报告"})[files[0][0]] == "报告"  # a file already indexed keeps its source


def test_uploads_are_confined_and_checked(tmp_path):
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
    other = tmp_path / "other"
    other.mkdir()
    (other / "通知.txt").write_text("不同的内容。", encoding="utf-8")
    again, _ = save_uploads([other / "通知.txt"], uploads, max_bytes=1024)
    assert again[0].name == "通知-2.txt" and (uploads / "通知.txt").read_text(encoding="utf-8") == "一、事项\n内容。"


# ---------------------------------------------------------------- the corpus (real models, real Chroma)


def index_state(index) -> dict:
    """What must be equal between a clean run and a resumed one: documents, chunk counts, chunk ids."""
    docs = {r.source: (r.content_hash, r.chunks) for r in index.documents()}
    ids = sorted(c.id for c in index.store.iter_chunks())
    return {"docs": docs, "ids": ids, "snapshot_ids": sorted(index.snapshot().ids)}


@pytest.mark.slow
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
    generation = index.snapshot().generation

    again = ingest_paths(index, [ROOT / "corpus", SHARED_CORPUS], show_bar=False)
    assert again.count("unchanged") == 27 and again.count("added") == 0 and again.count("updated") == 0
    assert index.store.count_chunks() == total and index.snapshot().generation == generation

    hits = index.snapshot().search(["持证上岗"], k=3)
    assert hits and hits[0].source == "kaifeng-audit-bureau-2024-rule-of-law-report"


@pytest.mark.slow
def test_change_delete_and_prune(make_index, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("audit-law.md", "state-compensation-law.md", "budget-law.md"):
        shutil.copy(REGULATIONS / name, folder / name)
    shutil.copy(SAMPLE_REPORT, folder / SAMPLE_REPORT.name)
    index = make_index()
    assert ingest_paths(index, [folder], show_bar=False).count("added") == 4

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
    assert not any(m["source"] == "budget-law" for m in index.snapshot().metadatas)


@pytest.mark.slow
def test_cli_ingest_docs_chunks_on_the_corpus(tmp_path, capsys):
    index_dir = tmp_path / "cli-index"
    assert cli(["ingest", "--index", str(index_dir), "--quiet", str(REGULATIONS / "audit-law.md"), str(SAMPLE_REPORT)]) == 0
    assert "新增 2" in capsys.readouterr().out
    assert cli(["docs", "--index", str(index_dir), "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert {d["source"] for d in docs} == {"audit-law", "kaifeng-audit-bureau-2024-rule-of-law-report"}
    for d in docs:
        assert {"source", "title", "doc_type", "year", "chunks", "issuer"} <= d.keys()
    assert cli(["chunks", "--index", str(index_dir), "kaifeng-audit-bureau-2024-rule-of-law-report"]) == 0
    assert "二、积极推进法治政府建设 > （一）依法全面履行政府职能 > 1．依法履行审计监督职能" in capsys.readouterr().out
    assert cli(["check", "--index", str(index_dir)]) == 0


@pytest.mark.slow
def test_check_finds_and_repairs_orphans(make_index):
    index = make_index()
    ingest_paths(index, [REGULATIONS / "audit-law.md", REGULATIONS / "state-compensation-law.md"], show_bar=False)
    index.store.manifest.delete(ids=["state-compensation-law"])  # a crash between "chunks written" and "manifest written"
    report = index.check()
    assert report.orphan_chunks == 43 and not report.ok
    removed, _ = index.repair()
    assert removed == 43
    assert index.check().ok
    ingest_paths(index, [REGULATIONS / "audit-law.md", REGULATIONS / "state-compensation-law.md"], show_bar=False)
    assert {r.source for r in index.documents()} == {"audit-law", "state-compensation-law"}


def _run_ingest(index_dir: Path, folder: Path) -> subprocess.Popen:
    env = dict(os.environ, RAG_INDEX_DIR=str(index_dir))
    return subprocess.Popen([sys.executable, "-m", "rag", "ingest", "--quiet", str(folder)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_equals_clean_run(make_index, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("audit-law.md", "administrative-penalty-law.md", "budget-law.md", "supervision-law.md"):
        shutil.copy(REGULATIONS / name, folder / name)
    shutil.copy(SAMPLE_REPORT, folder / SAMPLE_REPORT.name)

    clean_dir = tmp_path / "clean"
    # The first run of a session reads libraries and models from disk (several times slower than the
    # next): it is not timed, or every kill point could fall after the runs below have finished.
    assert _run_ingest(tmp_path / "warm-up", folder).wait(timeout=300) == 0
    started = time.monotonic()
    assert _run_ingest(clean_dir, folder).wait(timeout=300) == 0
    whole = time.monotonic() - started  # the kill points are fractions of a whole run on this machine
    clean = index_state(make_index(load_settings().with_index(clean_dir)))

    rng = random.Random(20261130)
    crashed_dir = tmp_path / "crashed"
    kills = 0
    for _ in range(3):
        proc = _run_ingest(crashed_dir, folder)
        time.sleep(rng.uniform(0.3, 0.85) * whole)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 1, "no run was killed mid-way: the test would prove nothing"
    assert _run_ingest(crashed_dir, folder).wait(timeout=300) == 0
    resumed = make_index(load_settings().with_index(crashed_dir))
    assert index_state(resumed) == clean
    assert resumed.check().ok
