"""Thin command line over the rag library. Every command builds one `Components` and calls the library."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from rag.schema import DOC_TYPE_LABELS, STATUS_LABELS


def _settings(args: argparse.Namespace):
    from rag.config import load_settings

    return load_settings().with_index(getattr(args, "index", None))


def _components(args: argparse.Namespace):
    from rag.components import build

    return build(_settings(args))


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def _waiting(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.ingest import ingest_paths

    components = _components(args)
    try:
        summary = ingest_paths(components.index, args.paths, prune=args.prune, show_bar=not args.quiet, on_wait=_waiting)
        if components.settings.retrieval.sentence_search == "on":  # else the first question encodes them
            components.retriever.warm_sentences(show_bar=not args.quiet)
    finally:
        components.close()
    counts = {s: summary.count(s) for s in STATUS_LABELS}
    print(
        f"完成：新增 {counts['added']}，更新 {counts['updated']}，未变 {counts['unchanged']}，"
        f"移除 {counts['removed']}，失败 {counts['failed']}（用时 {summary.seconds:.1f} 秒）"
    )
    for result in summary.failed:
        print(f"  失败：{result.path}：{result.reason}", file=sys.stderr)
    readable = sum(counts[s] for s in ("added", "updated", "unchanged"))
    if args.strict and counts["failed"]:
        return 1
    if readable == 0 and counts["failed"]:
        return 1
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    components = _components(args)
    if args.set:
        from rag.ingest import set_metadata
        from rag.store import parse_override

        source, *assignments = args.set
        if not assignments:
            print("用法：rag docs --set 来源名 type=report year=2024 issuer=开封市审计局", file=sys.stderr)
            return 2
        record = set_metadata(components.index, source, parse_override(assignments), on_wait=_waiting)
        print(f"已更新：{record.source}（类型 {DOC_TYPE_LABELS.get(record.doc_type, record.doc_type)}，年份 {record.year or '-'}，"
              f"发文单位 {record.issuer or '-'}，标题 {record.title}）；重新入库时保留此设置")
        return 0
    records = components.index.documents()
    if args.json:
        _print_json([r.to_dict() for r in records])
        return 0
    if not records:
        print("索引中还没有文件。先运行：rag ingest 路径")
        return 0
    print(f"{'来源':<46} {'类型':<4} {'年份':<6} {'分块':>5}  {'发文单位':<12} 标题")
    for r in records:
        mark = "*" if r.overridden else " "
        print(f"{r.source:<48} {DOC_TYPE_LABELS.get(r.doc_type, r.doc_type):<4} {r.year or '-':<6} {r.chunks:>5}  {(r.issuer or '-'):<12} {r.title}{mark}")
    print(f"共 {len(records)} 个文件，{sum(r.chunks for r in records)} 个分块，{sum(r.chars for r in records)} 字"
          + ("（* 为手动设置过的文件）" if any(r.overridden for r in records) else ""))
    return 0


def cmd_chunks(args: argparse.Namespace) -> int:
    components = _components(args)
    snapshot = components.index.snapshot()
    rows = snapshot.rows_of(args.source)
    if not rows:
        print(f"未找到文件：{args.source}（用 rag docs 查看已收录的文件）", file=sys.stderr)
        return 1
    if args.json:
        _print_json([{"id": snapshot.ids[i], "text": snapshot.texts[i], **{k: v for k, v in snapshot.metadatas[i].items() if k != "tokens"}} for i in rows])
        return 0
    for i in rows:
        meta, text = snapshot.metadatas[i], snapshot.texts[i]
        print(f"[{meta.get('chunk_index')}] {meta.get('section') or '（无标题）'}  ({len(text)} 字, {meta.get('start')}–{meta.get('end')})")
        print("    " + text.replace("\n", "\n    "))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from rag.ingest import delete_source

    index = _components(args).index
    missing = [s for s in args.sources if not delete_source(index, s, on_wait=_waiting)]
    for source in args.sources:
        print(f"{'未找到' if source in missing else '已删除'}：{source}")
    return 1 if missing else 0


def cmd_check(args: argparse.Namespace) -> int:
    index = _components(args).index
    report = index.check()
    if report.ok:
        print(f"索引一致：{len(index.documents())} 个文件，{index.store.count_chunks()} 个分块")
        return 0
    print(
        f"发现问题：孤立分块 {report.orphan_chunks} 个，不完整文件 {len(report.incomplete_documents)} 个"
        f"{'，检索快照过期' if report.keyword_stale else ''}"
    )
    for source in report.incomplete_documents:
        print(f"  不完整：{source}")
    if not args.repair:
        print("运行 rag check --repair 修复（不完整的文件会被移除，再次运行 rag ingest 即可补回）")
        return 1
    removed, incomplete = index.repair()
    print(f"已修复：删除孤立分块 {removed} 个，移除不完整文件 {len(incomplete)} 个，检索快照已重建")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.chat import format_answer
    from rag.query import QuestionError

    question = " ".join(args.question)
    components = _components(args)
    _warn_if_empty(components)
    assistant = components.assistant
    try:
        answer = assistant.ask(question, k=args.k, doc_type=args.type, source=args.source)
    except QuestionError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    if args.json:
        _print_json(answer.to_dict())
    else:
        print(format_answer(answer))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from rag.chat import run_chat

    components = _components(args)
    _warn_if_empty(components)
    return run_chat(components.assistant)


def _warn_if_empty(components) -> None:
    """A question against an empty index says so (on stderr: stdout stays the answer)."""
    if not components.index.snapshot().records:
        print(f"提示：索引 {components.settings.index_dir} 中还没有文件，请先用 rag ingest 收录文件。", file=sys.stderr)


def cmd_verify(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rag.verify import VERDICT_LABELS, split_claims

    if args.file in (None, "-"):
        text = sys.stdin.read()
    else:
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            from rag.loaders import decode_bytes

            text = decode_bytes(Path(args.file).read_bytes())
        except OSError as exc:
            print(f"错误：无法读取 {args.file}：{exc.strerror or exc}", file=sys.stderr)
            return 2
    verifier = _components(args).verifier
    sentences = split_claims(text)
    # each sentence is retrieved and read against its passages (about a third of a second with the pair reader)
    verdicts = [verifier.verify_sentence(s) for s in tqdm(sentences, desc="核对", unit="句", disable=None if len(sentences) > 3 else True)]
    if args.json:
        _print_json([v.to_dict() for v in verdicts])
        return 0
    if not verdicts:
        print("没有可核对的句子。")
        return 0
    for n, v in enumerate(verdicts, start=1):
        print(f"{n}. 【{VERDICT_LABELS[v.verdict]}】{v.sentence}")
        if v.hit is not None:
            where = f"《{v.hit.title}》 {v.hit.section}".rstrip()
            print(f"    {'依据' if v.verdict == 'supported' else '最接近的原文'}：{where}（{v.score:.2f}）")
            print(f"    {v.hit.text.replace(chr(10), ' ')[:160]}")
        for reason in v.reasons:
            print(f"    原因：{reason}")
    counts = {k: sum(1 for v in verdicts if v.verdict == k) for k in VERDICT_LABELS}
    print(f"\n共 {len(verdicts)} 句：" + "，".join(f"{VERDICT_LABELS[k]} {n}" for k, n in counts.items()))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.experiment import evaluate, markdown_table

    components = _components(args)
    if not components.index.documents():
        print("错误：索引为空，请先运行 rag ingest", file=sys.stderr)
        return 2
    dataset = Path(args.dataset)
    if not dataset.exists():
        print(f"错误：评测集不存在：{dataset}", file=sys.stderr)
        return 2
    dev = Path(args.dev) if args.dev else components.settings.eval.dev_set
    report = evaluate(components, dataset, with_baseline=not args.no_baseline, dev_dataset=dev)
    table = markdown_table(report)
    print(table)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"已写入 {args.json}")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table, encoding="utf-8")
        print(f"已写入 {args.markdown}")
    return 0


def cmd_draft(args: argparse.Namespace) -> int:
    from rag.export import to_markdown, write_docx, write_markdown

    drafter = _components(args).drafter
    try:
        draft = drafter.draft(args.title, year=args.year, sources=args.source or None)
    except ValueError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    if args.markdown:
        print(f"已写入 {write_markdown(draft, args.markdown)}", file=sys.stderr)
    if args.docx:
        print(f"已写入 {write_docx(draft, args.docx)}", file=sys.stderr)
    if args.json:
        _print_json(draft.to_dict())
    elif not (args.markdown or args.docx):
        print(to_markdown(draft))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline offices: no calls home
    from ui.app import serve

    serve(_components(args), host=args.host, port=args.port, insecure=args.insecure)
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from rag.config import describe

    for name, env, value, help_text in describe(_settings(args)):
        print(f"{name:<34} {env:<28} {value!s:<24} {help_text}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="法规问答助手：法规与报告的问答、核对、起草与评测")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--index", help="索引目录（默认取环境变量 RAG_INDEX_DIR）")
        return p

    p = add("ingest", "把文件或文件夹加入索引（增量）")
    p.add_argument("paths", nargs="+", help="文件或文件夹")
    p.add_argument("--prune", action="store_true", help="移除文件已不存在的文档")
    p.add_argument("--strict", action="store_true", help="有任何文件失败时返回非零")
    p.add_argument("--quiet", action="store_true", help="不显示进度条")
    p.set_defaults(func=cmd_ingest)

    p = add("docs", "列出已收录的文件，或修正一个文件的类型、年份、发文单位、标题")
    p.add_argument("--json", action="store_true")
    p.add_argument("--set", nargs="+", metavar="ARG", help="来源名 type=report year=2024 issuer=… title=…（值为空则恢复自动识别）")
    p.set_defaults(func=cmd_docs)

    p = add("chunks", "查看一个文件的分块")
    p.add_argument("source")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_chunks)

    p = add("delete", "从索引中删除文件")
    p.add_argument("sources", nargs="+", help="来源名（见 rag docs）")
    p.set_defaults(func=cmd_delete)

    p = add("ask", "提问，回答附引文")
    p.add_argument("question", nargs="+", help="问题")
    p.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
    p.add_argument("--k", type=int, default=8, help="检索段落数（默认 8）")
    p.add_argument("--type", choices=["report", "law", "notice"], help="只检索报告、法规或通知")
    p.add_argument("--source", help="只检索某个文件（rag docs 中的来源名）")
    p.set_defaults(func=cmd_ask)

    p = add("chat", "在终端里连续问答（/clear 清空，/export 文件 导出，/quit 退出）")
    p.set_defaults(func=cmd_chat)

    p = add("verify", "逐句核对一段文字是否有已收录材料的依据")
    p.add_argument("file", nargs="?", default="-", help="文本文件，或 - 表示从标准输入读取（默认）")
    p.add_argument("--json", action="store_true", help="输出 JSON 列表")
    p.set_defaults(func=cmd_verify)

    p = add("eval", "在评测集上评测本系统，并与基线、同类做法对比")
    p.add_argument("--dataset", required=True, help="评测集 JSONL 文件")
    p.add_argument("--json", help="把完整结果写入此 JSON 文件")
    p.add_argument("--markdown", help="把指标表写入此 Markdown 文件")
    p.add_argument("--no-baseline", action="store_true", help="只评测本系统")
    p.add_argument("--dev", help="基线拒答阈值所用的开发集（默认 RAG_DEV_SET，即 ../shared/eval/qa_dev.jsonl）")
    p.set_defaults(func=cmd_eval)

    p = add("draft", "根据往年报告起草报告章节")
    p.add_argument("--title", required=True, help="章节标题，如“积极推进法治政府建设”")
    p.add_argument("--year", type=int, help="目标年份（默认：最近一份报告的下一年）")
    p.add_argument("--source", nargs="+", help="只用这些往年报告（rag docs 中的来源名）")
    p.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
    p.add_argument("--markdown", help="导出 Markdown 文件")
    p.add_argument("--docx", help="导出 Word 文件（公文格式）")
    p.set_defaults(func=cmd_draft)

    p = add("serve", "启动网页界面")
    p.add_argument("--host", default="127.0.0.1", help="监听地址（默认仅本机 127.0.0.1）")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--insecure", action="store_true", help="允许在非本机地址上无口令访问（不推荐）")
    p.set_defaults(func=cmd_serve)

    p = add("check", "检查存储、检索快照与清单是否一致")
    p.add_argument("--repair", action="store_true", help="修复发现的问题")
    p.set_defaults(func=cmd_check)

    p = add("settings", "列出所有设置（环境变量、当前值、说明）")
    p.set_defaults(func=cmd_settings)
    return parser


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # One BLAS thread (read when numpy loads): the question path multiplies small matrices, where a
    # second thread only spins against other work on 2 cores (a 1,700 x 512 search: 0.06 ms with one
    # thread, 1.3 ms with two under load). Embedding processes set their own limit.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    for signum in (signal.SIGTERM, signal.SIGHUP):  # exit normally: finally blocks and atexit stop the embedding workers
        signal.signal(signum, _exit_on_signal)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("已中断", file=sys.stderr)
        return 130
    except Exception as exc:  # one Chinese line, never a traceback, for the errors users can act on
        from rag.config import SettingsError
        from rag.embeddings import MissingDependencyError
        from rag.lexicon import AliasError
        from rag.store import IndexMismatchError, OverrideError, StoreUnavailableError, is_connection_error

        if isinstance(exc, (SettingsError, MissingDependencyError, AliasError, IndexMismatchError, OverrideError, StoreUnavailableError, ValueError, RuntimeError)):
            print(f"错误：{exc}", file=sys.stderr)
            return 2
        if is_connection_error(exc):
            print("错误：无法连接 Chroma 服务器，请确认服务已启动（chroma run …），稍后重试", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
