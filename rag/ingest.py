"""Files and folders -> the index: incremental (content hashes), one bad file never stops the batch."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from rag.chunking import chunk_document
from rag.index import Index
from rag.keyword_index import KeywordIndex
from rag.lexicon import read_aliases
from rag.loaders import SUPPORTED_SUFFIXES, LoadError, content_hash, load_document, read_file_bytes
from rag.schema import PARSER_VERSION, Chunk, DocRecord, FileResult, IngestSummary
from rag.segment import tokenize, use_full_dictionary
from rag.store import (
    PreparedDocument,
    StoredChunk,
    StoreUnavailableError,
    apply_overrides,
    chunk_metadata,
    detected_fields,
)

ProgressFn = Callable[[int, int, str], None]


MAX_NAME_BYTES = 255


def _path_problem(path: Path) -> str | None:
    """Why a path cannot be opened at all (a name or a path longer than the system allows)."""
    try:
        limit = os.pathconf(str(path.parent) if path.parent.exists() else "/", "PC_PATH_MAX")
    except (OSError, ValueError):
        limit = 4096
    raw = os.fsencode(str(path))
    if len(raw) >= limit:
        return f"路径过长（{len(raw)} 字节，系统上限 {limit}）"
    if any(len(os.fsencode(part)) > MAX_NAME_BYTES for part in path.parts):
        return f"文件名过长（超过 {MAX_NAME_BYTES} 字节）"
    return None


def walk_files(root: Path, problems: list[FileResult]) -> Iterator[Path]:
    """Every file under a folder, depth-first in name order, with an explicit stack (no recursion
    limit); symlink loops are walked once; every folder that cannot be read is reported."""
    stack: list[Path] = [root]
    visited: set[tuple[int, int]] = set()
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as exc:
            reason = _path_problem(folder) or ("无法解析的链接（目标不存在或循环链接）" if folder.is_symlink() else f"无法读取文件夹（{exc.strerror or exc}）")
            problems.append(FileResult(str(folder), "failed", reason=reason))
            continue
        if (st.st_dev, st.st_ino) in visited:  # a symlink loop or a second link to the same folder
            continue
        visited.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            reason = _path_problem(folder) or ("没有读取该文件夹的权限" if isinstance(exc, PermissionError) else f"无法读取文件夹（{exc.strerror or exc}）")
            problems.append(FileResult(str(folder), "failed", reason=reason))
            continue
        subfolders: list[Path] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(path)
            else:
                yield path
        stack.extend(reversed(subfolders))


def discover_files(paths: Iterable[str | Path]) -> tuple[list[tuple[Path, Path]], list[FileResult]]:
    """Supported files under the given paths as (file, ingest root); every skipped path with its reason."""
    found: list[tuple[Path, Path]] = []
    problems: list[FileResult] = []
    seen_files: set[Path] = set()

    def add(file: Path, root: Path, explicit: bool) -> None:
        if file.suffix.lower() not in SUPPORTED_SUFFIXES:
            if explicit:
                problems.append(FileResult(str(file), "failed", reason=f"不支持的文件类型：{file.suffix or '（无扩展名）'}"))
            return
        problem = _path_problem(file)
        if problem:
            problems.append(FileResult(str(file), "failed", reason=problem))
            return
        try:
            resolved = file.resolve(strict=True)
        except (OSError, RuntimeError):
            problems.append(FileResult(str(file), "failed", reason="无法解析的链接（目标不存在或循环链接）"))
            return
        if resolved not in seen_files:
            seen_files.add(resolved)
            found.append((file, root))

    for raw in paths:
        path = Path(os.path.abspath(Path(raw).expanduser()))
        problem = _path_problem(path)
        try:
            exists = path.exists()
        except OSError:
            exists = False
        if problem or not exists:
            problems.append(FileResult(str(path), "failed", reason=problem or "路径不存在"))
            continue
        if path.is_file():
            add(path, path.parent, explicit=True)
            continue
        for file in walk_files(path, problems):
            add(file, path, explicit=False)
    return found, problems


def find_alias_files(paths: Iterable[str | Path], extra: Path | None) -> list[Path]:
    """`aliases.toml` files in the ingested folders (top level), and the one RAG_ALIASES names."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        candidate = path / "aliases.toml" if path.is_dir() else None
        if candidate is not None and candidate.is_file():
            files.append(candidate)
    if extra is not None and Path(extra).is_file():
        files.append(Path(extra))
    return files


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
        digest = hashes[file]
        if digest is not None and by_path.get(str(file)) == digest:
            owner[digest] = str(file)
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
GROUPS_IN_FLIGHT = 2


def _stored_chunks(prepared: PreparedDocument) -> list[StoredChunk]:
    return [
        StoredChunk(c.id, c.text, chunk_metadata(prepared.doc, c, t), v)
        for c, t, v in zip(prepared.chunks, prepared.tokens, prepared.vectors)
    ]


def chunk_tokens(chunks: list[Chunk]) -> list[list[str]]:
    """Keyword tokens of each chunk's embedding text: its heading lines (the document's title, the
    section path), then the chunk. Each heading line is tokenised once per document, as jieba cuts at
    a line break the tokens are the same as the whole text's (the title alone is ~12 % of the text)."""
    lines: dict[str, list[str]] = {}
    out: list[list[str]] = []
    for chunk in chunks:
        if not chunk.embed_text.endswith(chunk.text):
            out.append(tokenize(chunk.embed_text))
            continue
        tokens: list[str] = []
        for line in chunk.embed_text[: len(chunk.embed_text) - len(chunk.text)].split("\n"):
            if line not in lines:
                lines[line] = tokenize(line)
            tokens.extend(lines[line])
        out.append(tokens + tokenize(chunk.text))
    return out


def _warm_up(index: Index) -> None:
    """Start the embedding model's worker processes in the background (a no-op once they run)."""
    warm = getattr(index.embeddings, "warm_up", None)
    if warm is not None:
        warm()


def ingest_paths(
    index: Index,
    paths: Iterable[str | Path],
    *,
    prune: bool = False,
    progress: ProgressFn | None = None,
    show_bar: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Add new files, replace changed ones, skip unchanged ones; optionally prune vanished ones.

    Each document's chunks go to the embedding workers as soon as it is chunked, and are tokenised
    while they are embedded; documents are written in groups of about GROUP_CHUNKS chunks, one commit
    each, by a writer thread that waits for the group's vectors while the next files are prepared.
    The search snapshot is updated once at the end, under the same lock.
    """
    started = time.perf_counter()
    settings = index.settings
    paths = list(paths)
    if not index.server_mode and KeywordIndex.saved_generation(index.snapshot_dir) is None:
        _warm_up(index)  # a new index: all will be embedded; the workers load the model while the store opens
    with index.write_lock(on_wait):
        store = index.store
        store.repair()  # finish what a crashed run left behind
        aliases: dict[str, str] = dict(store.aliases())
        for file in find_alias_files(paths, settings.ingest.aliases_file):
            aliases.update(read_aliases(file))
        store.set_aliases(aliases)
        previous = index.current_for_write()
        previous_generation = store.generation()
        overrides = store.overrides()
        files, results = discover_files(paths)
        records = {r.source: r for r in store.documents()}  # the writer reads the manifest fresh
        if previous is None and not records and not index.server_mode:
            # A new index: the snapshot is built from the chunks written, not read back from the store.
            previous = KeywordIndex.build([], previous_generation, (), aliases)
        files, duplicates, hashes = drop_duplicate_files(files, list(records.values()), settings.ingest.max_file_bytes)
        results.extend(duplicates)
        sources = assign_sources(files, {r.path: r.source for r in records.values()})
        if any(records.get(sources[f]) is None or records[sources[f]].path != str(f) for f, _ in files):
            _warm_up(index)  # likely work to embed
        removed_sources: set[str] = set()
        added_chunks: list[StoredChunk] = []
        full_read = False  # a group whose write failed: the snapshot is read from the store at the end
        group: list[tuple[PreparedDocument, Path, str, Callable[[], list]]] = []
        group_chunks = 0
        writes: list[Future] = []  # group commits in the writer thread, oldest first
        bar = tqdm(total=len(files), desc="索引文件", unit="个", disable=not show_bar, dynamic_ncols=True)

        def start_embedding(texts: list[str]) -> Callable[[], list]:
            """Embed in the background (the model's worker processes) while the next files are read and tokenised."""
            start = getattr(index.embeddings, "embed_documents_async", None)
            if start is not None:
                return start(texts)
            vectors = index.embeddings.embed_documents(texts)
            return lambda: vectors

        def write(batch: list[tuple[PreparedDocument, Path, str, Callable[[], list]]]) -> list[FileResult]:
            """In the writer thread: wait for the group's vectors, then one group commit; a failed
            commit fails the group's files, not the batch (an embedding error stops the run)."""
            nonlocal full_read
            for prepared, _, _, vectors in batch:
                prepared.vectors.extend(vectors())
            try:
                stored = store.write_documents([p for p, _, _, _ in batch])
            except StoreUnavailableError:
                raise
            except Exception as exc:
                full_read = True
                return [FileResult(str(file), "failed", p.doc.source, reason=f"写入索引出错：{type(exc).__name__}: {exc}") for p, file, _, _ in batch]
            for prepared, _, _, _ in batch:
                removed_sources.add(prepared.doc.source)
                added_chunks.extend(_stored_chunks(prepared))
            return [FileResult(str(file), status, r.source, r.chunks, r.chars) for (_, file, status, _), r in zip(batch, stored)]

        def flush(executor: ThreadPoolExecutor) -> None:
            """Hand the current group to the writer thread; at most GROUPS_IN_FLIGHT groups wait there."""
            nonlocal group
            if not group:
                return
            batch, group = group, []
            while len(writes) >= GROUPS_IN_FLIGHT:
                results.extend(writes.pop(0).result())
            writes.append(executor.submit(write, batch))

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chroma-writer") as executor:
            for n, (file, _root) in enumerate(files, start=1):
                source = sources[file]
                bar.set_postfix_str(file.name[:30])
                try:
                    record = records.get(source)
                    if record is not None and record.content_hash == hashes.get(file) and record.path == str(file) and record.parser == PARSER_VERSION:
                        results.append(FileResult(str(file), "unchanged", source, record.chunks, record.chars))
                    else:
                        data = read_file_bytes(file, settings.ingest.max_file_bytes)
                        detected = load_document(file, source=source, data=data)
                        doc = apply_overrides(detected, overrides.get(source, {}))
                        chunks = chunk_document(doc, settings.ingest.chunk_max_chars, settings.ingest.chunk_overlap_sentences)
                        if not chunks:
                            raise LoadError("文件没有可索引的内容")
                        vectors = start_embedding([c.embed_text for c in chunks])
                        use_full_dictionary()  # bulk segmentation: jieba's whole dictionary beats the per-entry reads of a question
                        tokens = chunk_tokens(chunks)
                        status = "updated" if record is not None else "added"
                        group.append((PreparedDocument(doc, chunks, tokens, [], detected_fields(detected)), file, status, vectors))
                        group_chunks += len(chunks)
                except LoadError as exc:
                    results.append(FileResult(str(file), "failed", source, reason=str(exc)))
                except MemoryError:
                    results.append(FileResult(str(file), "failed", source, reason="内存不足，文件过大"))
                except Exception as exc:  # one bad file never stops the batch
                    results.append(FileResult(str(file), "failed", source, reason=f"处理出错：{type(exc).__name__}: {exc}"))
                # Embedding and writing errors belong to the group, not to this file: outside the try.
                if group_chunks >= GROUP_CHUNKS:
                    flush(executor)
                    group_chunks = 0
                bar.update(1)
                if progress:
                    progress(n, len(files), file.name)
            flush(executor)
            for pending in writes:
                results.extend(pending.result())
        bar.close()
        if prune:
            seen = set(sources.values())
            for record in store.documents():
                if record.source not in seen and not Path(record.path).exists():
                    store.delete_document(record.source)
                    removed_sources.add(record.source)
                    results.append(FileResult(record.path, "removed", record.source, record.chunks, record.chars))
        current = index.current_for_write()
        if removed_sources or full_read or current is None or current.generation != store.generation():
            index.commit(None if full_read else previous, previous_generation, removed_sources, added_chunks)
    return IngestSummary(tuple(results), time.perf_counter() - started)


def delete_source(index: Index, source: str, on_wait: Callable[[str], None] | None = None) -> bool:
    """Remove one document from the store and the snapshot."""
    with index.write_lock(on_wait):
        previous = index.current_for_write()
        previous_generation = index.store.generation()
        existed = index.store.delete_document(source)
        # The store's generation moved even when nothing was indexed under that name (orphan chunks may
        # have gone): the snapshot must follow, or every reader finds it stale.
        index.commit(previous, previous_generation, {source}, [])
    return existed


def set_metadata(index: Index, source: str, fields: dict, on_wait: Callable[[str], None] | None = None) -> DocRecord:
    """Store a user correction of a document's type, year, issuer or title; re-ingest keeps it."""
    with index.write_lock(on_wait):
        previous = index.current_for_write()
        previous_generation = index.store.generation()
        record = index.store.set_override(source, fields)
        index.commit_metadata(previous, previous_generation, record)
    return record


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
