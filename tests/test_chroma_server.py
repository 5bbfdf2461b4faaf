"""A real `chroma run` server on loopback: ingest through one app instance, read through another (real USE embeddings)."""

from __future__ import annotations

import time

import pytest
from conftest import REGULATIONS, SAMPLE_REPORT

from rag.config import load_settings
from rag.ingest import delete_source, ingest_paths

pytestmark = pytest.mark.slow


def test_two_instances_share_one_chroma_server(chroma_server, make_index, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CHROMA_URL", chroma_server)
    writer = make_index(load_settings().with_index(tmp_path / "instance-a"))
    reader = make_index(load_settings().with_index(tmp_path / "instance-b"))
    assert writer.server_mode and reader.server_mode

    summary = ingest_paths(writer, [REGULATIONS / "audit-law.md", SAMPLE_REPORT], show_bar=False)
    assert summary.count("added") == 2
    assert {r.source for r in reader.documents()} == {"audit-law", "kaifeng-audit-bureau-2024-rule-of-law-report"}
    # The reader's keyword index is rebuilt from the server's documents; the local folder only keeps a copy of it.
    hits = reader.keyword().search(["审计", "报告", "国务院", "总理"], k=3)
    assert hits and hits[0].source == "audit-law"
    assert (tmp_path / "instance-b" / "keyword" / "GENERATION").read_text(encoding="utf-8") == reader.snapshot().generation
    assert not (tmp_path / "instance-a" / "chroma").exists()
    assert not (tmp_path / "instance-b" / "chroma").exists()

    before = reader.snapshot().generation
    assert delete_source(writer, "audit-law")
    time.sleep(1.1)  # the reader re-checks the store's generation at most once a second
    assert {r.source for r in reader.documents()} == {"kaifeng-audit-bureau-2024-rule-of-law-report"}
    assert all(h.source != "audit-law" for h in reader.snapshot().search(["审计", "总理"], k=5))
    after = reader.snapshot().generation
    assert int(after.split(":")[0]) > int(before.split(":")[0])  # the generation only moves forward
    assert writer.check().ok


def test_a_restarted_instance_loads_its_copy_or_reads_only_what_changed(chroma_server, make_index, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CHROMA_URL", chroma_server)
    law = tmp_path / "docs" / "audit-law.md"
    law.parent.mkdir()
    law.write_text((REGULATIONS / "audit-law.md").read_text(encoding="utf-8"), encoding="utf-8")
    writer = make_index(load_settings().with_index(tmp_path / "writer"))
    ingest_paths(writer, [law, SAMPLE_REPORT], show_bar=False)
    settings = load_settings().with_index(tmp_path / "instance")
    first = make_index(settings)
    full = first.snapshot()
    assert first.last_refresh == "read"

    again = make_index(settings)  # a restart, the server unchanged: the saved copy, nothing read
    assert again.snapshot().generation == full.generation and again.last_refresh == "saved"
    assert again.snapshot().ids == full.ids

    law.write_text(law.read_text(encoding="utf-8") + "\n第九十九条 本条为测试新增的条文。\n", encoding="utf-8")
    ingest_paths(writer, [law, REGULATIONS / "administrative-penalty-law.md"], show_bar=False)
    delete_source(writer, "kaifeng-audit-bureau-2024-rule-of-law-report")
    later = make_index(settings)  # since the copy was saved: one document changed, one added, one removed
    updated = later.snapshot()
    assert later.last_refresh == "updated"
    fresh = make_index(load_settings().with_index(tmp_path / "new-instance"))
    expected = fresh.snapshot()
    assert fresh.last_refresh == "read"
    assert updated.generation == expected.generation
    assert updated.ids == expected.ids and updated.texts == expected.texts and updated.records == expected.records
    assert {r.source for r in updated.records} == {"audit-law", "administrative-penalty-law"}
    query = ["本条", "测试", "新增"]
    assert [h.chunk_id for h in updated.search(query, k=3)] == [h.chunk_id for h in expected.search(query, k=3)]
    assert "测试新增" in updated.search(query, k=1)[0].text
