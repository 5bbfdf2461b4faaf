"""Files and folders -> the index: incremental (content hashes), one bad file never stops the batch."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from rag.chunking import chunk_document
from rag.index import Index
from rag.keyword_index import tokenize
from rag.loaders import SUPPORTED_SUFFIXES, LoadError, content_hash, load_document, read_file_bytes
from rag.schema import FileResult, IngestSummary
from rag.store import PreparedDocument, StoredChunk, chunk_metadata

ProgressFn = Callable[[int, int, str], None]


def discover_files(paths: Iterable[str | Path]) -> tuple[list[tuple[Path, Path]], list[FileResult]]:
    """Supported files under the given paths as (file, ingest root); folders recurse, loops are cut."""
    found: list[tuple[Path, Path]] = []
    problems: list[FileResult] = []
    seen_files: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            problems.append(FileResult(str(path), "failed", reason="路径不存在"))
            continue
        if path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                problems.append(FileResult(str(path), "failed", reason=f"不支持的文件类型：{path.suffix or '（无扩展名）'}"))
                continue
            resolved = path.resolve()
            if resolved not in seen_files:
                seen_files.add(resolved)
                found.append((Path(os.path.abspath(path)), Path(os.path.abspath(path)).parent))
            continue
        root = Path(os.path.abspath(path))
        visited: set[tuple[int, int]] = set()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=None):
            try:
                st = os.stat(dirpath)
            except OSError:
                dirnames[:] = []
                continue
            if (st.st_dev, st.st_ino) in visited:  # a symlink loop or a second link to the same folder
                dirnames[:] = []
                continue
            visited.add((st.st_dev, st.st_ino))
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                file = Path(dirpath) / name
                if name.startswith(".") or file.suffix.lower() not in SUPPORTED_SUFFIXES:
                    continue
                try:
                    resolved = file.resolve(strict=True)
                except (OSError, RuntimeError):
                    problems.append(FileResult(str(file), "failed", reason="无法解析的链接（目标不存在或循环链接）"))
                    continue
                if resolved in seen_files:
                    continue
                seen_files.add(resolved)
                found.append((file, root))
    return found, problems


def _file_hash(path: Path, max_bytes: int) -> str | None:
    try:
        if path.stat().st_size > max_bytes:
            return None
        return content_hash(path.read_bytes())
    except OSError:
        return None


def drop_duplicate_files(
    files: list[tuple[Path, Path]], records: list, max_bytes: int
) -> tuple[list[tuple[Path, Path]], list[FileResult], dict[Path, str | None]]:
    """Keep one file per content: a copy of a file indexed (or listed) elsewhere is skipped, not duplicated.

    Also returns each file's content hash, so the caller need not read unchanged files again."""
    owner: dict[str, str] = {}
    for record in records:
        if Path(record.path).exists():
            owner.setdefault(record.content_hash, record.path)
    by_path = {r.path: r.content_hash for r in records}
    hashes = {file: _file_hash(file, max_bytes) for file, _ in files}
    # Files already indexed claim their content first, so the outcome does not depend on order.
    for file, _ in files:
        if by_path.get(str(file)) == hashes[file] and hashes[file] is not None:
            owner[hashes[file]] = str(file)
    kept: list[tuple[Path, Path]] = []
    skipped: list[FileResult] = []
    for file, root in files:
        digest = hashes[file]
        if digest is None:
            kept.append((file, root))  # unreadable or too large: let the main loop report why
            continue
        first = owner.setdefault(digest, str(file))
        if first == str(file):
            kept.append((file, root))
        else:
            skipped.append(FileResult(str(file), "unchanged", reason=f"内容与 {first} 相同，已跳过"))
    return kept, skipped, hashes


def assign_sources(files: list[tuple[Path, Path]], known_paths: dict[str, str]) -> dict[Path, str]:
    """source = file name without extension; on a clash, the path relative to the ingest root."""
    stems = Counter(f.stem for f, _ in files)
    taken = set(known_paths.values())
    sources: dict[Path, str] = {}
    for file, root in files:
        known = known_paths.get(str(file))
        if known is not None:
            sources[file] = known
            continue
        source = file.stem
        if stems[source] > 1 or source in taken:
            rel = file.relative_to(root).with_suffix("").as_posix()
            source = rel if rel != file.stem else f"{file.parent.name}/{file.stem}"
        sources[file] = source
        taken.add(source)
    return sources


GROUP_CHUNKS = 1000


def _stored_chunks(prepared: PreparedDocument) -> list[StoredChunk]:
    return [
        StoredChunk(c.id, c.text, chunk_metadata(prepared.doc, c, t))
        for c, t in zip(prepared.chunks, prepared.tokens)
    ]


def ingest_paths(
    index: Index,
    paths: Iterable[str | Path],
    *,
    prune: bool = False,
    progress: ProgressFn | None = None,
    show_bar: bool = True,
) -> IngestSummary:
    """Add new files, replace changed ones, skip unchanged ones; optionally prune vanished ones.

    Documents are prepared (read, chunked, tokenised, embedded) in groups of about GROUP_CHUNKS
    chunks; each group is written in one commit by a background thread while the next is prepared.
    """
    started = time.perf_counter()
    settings = index.settings
    with index.write_lock():
        index.store.repair()  # finish what a crashed run left behind
        previous_generation = index.store.generation()
        files, results = discover_files(paths)
        records = {r.source: r for r in index.store.documents()}  # the writer reads the manifest fresh
        files, duplicates, hashes = drop_duplicate_files(files, list(records.values()), settings.max_file_bytes)
        results.extend(duplicates)
        sources = assign_sources(files, {r.path: r.source for r in records.values()})
        if any(records.get(sources[f]) is None or records[sources[f]].path != str(f) for f, _ in files):
            warm = getattr(index.embeddings, "warm_up", None)
            if warm is not None:
                warm()  # likely work to embed: start the model's worker processes in the background
        removed_sources: set[str] = set()
        added_chunks: list[StoredChunk] = []
        group: list[tuple[PreparedDocument, Path, str]] = []
        group_chunks = 0
        pending: Future | None = None
        bar = tqdm(total=len(files), desc="索引文件", unit="个", disable=not show_bar, dynamic_ncols=True)

        def write(batch: list[tuple[PreparedDocument, Path, str]]) -> list[FileResult]:
            stored = index.store.write_documents([p for p, _, _ in batch])
            return [
                FileResult(str(file), status, r.source, r.chunks, r.chars)
                for (_, file, status), r in zip(batch, stored)
            ]

        embedding: tuple[list, Callable[[], list]] | None = None

        def finish_embedding(executor: ThreadPoolExecutor) -> None:
            """Wait for the group being embedded, then hand it to the writer thread."""
            nonlocal embedding, pending
            if embedding is None:
                return
            batch, gather = embedding
            embedding = None
            vectors = gather()
            offset = 0
            for prepared, _, _ in batch:
                prepared.vectors.extend(vectors[offset : offset + len(prepared.chunks)])
                offset += len(prepared.chunks)
            if pending is not None:
                results.extend(pending.result())
            for prepared, _, _ in batch:
                removed_sources.add(prepared.doc.source)
                added_chunks.extend(_stored_chunks(prepared))
            pending = executor.submit(write, batch)

        def flush(executor: ThreadPoolExecutor) -> None:
            """Start embedding the current group; the next group is prepared while it runs."""
            nonlocal group, embedding
            finish_embedding(executor)
            if not group:
                return
            batch, group = group, []
            texts = [c.embed_text for p, _, _ in batch for c in p.chunks]
            start = getattr(index.embeddings, "embed_documents_async", None)
            if start is not None:
                embedding = (batch, start(texts))
            else:
                vectors = index.embeddings.embed_documents(texts)
                embedding = (batch, lambda: vectors)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chroma-writer") as executor:
            for n, (file, _root) in enumerate(files, start=1):
                source = sources[file]
                bar.set_postfix_str(file.name[:30])
                try:
                    record = records.get(source)
                    if record is not None and record.content_hash == hashes.get(file) and record.path == str(file):
                        results.append(FileResult(str(file), "unchanged", source, record.chunks, record.chars))
                    else:
                        data = read_file_bytes(file, settings.max_file_bytes)
                        doc = load_document(file, source=source, data=data)
                        chunks = chunk_document(doc, settings.chunk_max_chars, settings.chunk_overlap_sentences)
                        if not chunks:
                            raise LoadError("文件没有可索引的内容")
                        tokens = [tokenize(c.embed_text) for c in chunks]
                        status = "updated" if record is not None else "added"
                        group.append((PreparedDocument(doc, chunks, tokens, []), file, status))
                        group_chunks += len(chunks)
                        if group_chunks >= GROUP_CHUNKS:
                            flush(executor)
                            group_chunks = 0
                except LoadError as exc:
                    results.append(FileResult(str(file), "failed", source, reason=str(exc)))
                except MemoryError:
                    results.append(FileResult(str(file), "failed", source, reason="内存不足，文件过大"))
                except Exception as exc:  # one bad file never stops the batch
                    results.append(FileResult(str(file), "failed", source, reason=f"处理出错：{type(exc).__name__}: {exc}"))
                bar.update(1)
                if progress:
                    progress(n, len(files), file.name)
            flush(executor)
            finish_embedding(executor)
            if pending is not None:
                results.extend(pending.result())
        bar.close()
        if prune:
            seen = set(sources.values())
            for record in index.store.documents():
                if record.source not in seen and not Path(record.path).exists():
                    index.store.delete_document(record.source)
                    removed_sources.add(record.source)
                    results.append(FileResult(record.path, "removed", record.source, record.chunks, record.chars))
        if removed_sources:
            index.apply_keyword_changes(previous_generation, removed_sources, added_chunks)
        elif not index.keyword_is_current():
            index.refresh_keyword()
    return IngestSummary(tuple(results), time.perf_counter() - started)


def delete_source(index: Index, source: str) -> bool:
    """Remove one document from the store and the keyword index."""
    with index.write_lock():
        existed = index.store.delete_document(source)
        index.refresh_keyword()
    return existed


SAFE_NAME = re.compile(r"[^\w\u4e00-\u9fff.\-（）()]+")


def safe_filename(name: str) -> str:
    """A file name with no directory part and no characters a path could abuse."""
    base = Path(name.replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = SAFE_NAME.sub("_", stem).strip("._") or "upload"
    return f"{stem[:80]}{suffix}"


def save_uploads(files: Iterable[str | Path], upload_dir: Path, max_bytes: int) -> tuple[list[Path], list[FileResult]]:
    """Copy uploaded files into the upload folder: allowed types only, size-capped, safe names, never outside."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    root = upload_dir.resolve()
    saved: list[Path] = []
    rejected: list[FileResult] = []
    for raw in files:
        src = Path(raw)
        name = safe_filename(getattr(raw, "orig_name", None) or src.name)
        if Path(name).suffix not in SUPPORTED_SUFFIXES:
            rejected.append(FileResult(name, "failed", reason=f"不支持的文件类型，仅支持 {' '.join(SUPPORTED_SUFFIXES)}"))
            continue
        try:
            size = src.stat().st_size
        except OSError:
            rejected.append(FileResult(name, "failed", reason="上传的文件无法读取"))
            continue
        if size > max_bytes:
            rejected.append(FileResult(name, "failed", reason=f"文件过大（{size / 1048576:.1f} MB），上限为 {max_bytes / 1048576:.0f} MB"))
            continue
        target = (root / name).resolve()
        if target.parent != root:
            rejected.append(FileResult(name, "failed", reason="文件名不安全"))
            continue
        if target.exists() and content_hash(target.read_bytes()) != content_hash(src.read_bytes()):
            n = 2
            while (root / f"{target.stem}-{n}{target.suffix}").exists():
                n += 1
            target = root / f"{target.stem}-{n}{target.suffix}"
        shutil.copyfile(src, target)
        saved.append(target)
    return saved, rejected
