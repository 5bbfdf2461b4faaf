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
    # The reader's keyword index is rebuilt from the server's documents: nothing was written locally.
    hits = reader.keyword().search(["审计", "报告", "国务院", "总理"], k=3)
    assert hits and hits[0].source == "audit-law"
    assert not (tmp_path / "instance-b" / "keyword").exists()
    assert not (tmp_path / "instance-a" / "chroma").exists()

    before = reader.snapshot().generation
    assert delete_source(writer, "audit-law")
    time.sleep(1.1)  # the reader re-checks the store's generation at most once a second
    assert {r.source for r in reader.documents()} == {"kaifeng-audit-bureau-2024-rule-of-law-report"}
    assert all(h.source != "audit-law" for h in reader.snapshot().search(["审计", "总理"], k=5))
    after = reader.snapshot().generation
    assert int(after.split(":")[0]) > int(before.split(":")[0])  # the generation only moves forward
    assert writer.check().ok
