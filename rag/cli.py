"""Thin command line over the rag library: ingest, docs, chunks, check (and later ask, eval, draft, serve)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rag.config import Settings, load_settings

DOC_TYPE_LABELS = {"report": "报告", "law": "法规", "other": "其他"}
STATUS_LABELS = {"added": "新增", "updated": "更新", "unchanged": "未变", "removed": "移除", "failed": "失败"}


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings().with_index(getattr(args, "index", None))


def _open_index(args: argparse.Namespace):
    from rag.index import open_index

    return open_index(_settings(args))


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.ingest import ingest_paths

    index = _open_index(args)
    summary = ingest_paths(index, args.paths, prune=args.prune, show_bar=not args.quiet)
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
    index = _open_index(args)
    records = index.documents()
    if args.json:
        _print_json([r.to_dict() for r in records])
        return 0
    if not records:
        print("索引中还没有文件。先运行：rag ingest 路径")
        return 0
    print(f"{'来源':<46} {'类型':<4} {'年份':<6} {'分块':>5}  标题")
    for r in records:
        print(f"{r.source:<48} {DOC_TYPE_LABELS.get(r.doc_type, r.doc_type):<4} {r.year or '-':<6} {r.chunks:>5}  {r.title}")
    print(f"共 {len(records)} 个文件，{sum(r.chunks for r in records)} 个分块，{sum(r.chars for r in records)} 字")
    return 0


def cmd_chunks(args: argparse.Namespace) -> int:
    index = _open_index(args)
    chunks = index.store.chunks_of(args.source)
    if not chunks:
        print(f"未找到文件：{args.source}（用 rag docs 查看已索引的文件）", file=sys.stderr)
        return 1
    if args.json:
        _print_json([{"id": c.id, "text": c.text, **{k: v for k, v in c.metadata.items() if k != "tokens"}} for c in chunks])
        return 0
    for c in chunks:
        meta = c.metadata
        print(f"[{meta.get('chunk_index')}] {meta.get('section') or '（无标题）'}  ({len(c.text)} 字, {meta.get('start')}–{meta.get('end')})")
        print("    " + c.text.replace("\n", "\n    "))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from rag.ingest import delete_source

    index = _open_index(args)
    missing = [s for s in args.sources if not delete_source(index, s)]
    for source in args.sources:
        print(f"{'未找到' if source in missing else '已删除'}：{source}")
    return 1 if missing else 0


def cmd_check(args: argparse.Namespace) -> int:
    index = _open_index(args)
    report = index.check()
    if report.ok:
        print(f"索引一致：{len(index.documents())} 个文件，{index.store.count_chunks()} 个分块")
        return 0
    print(
        f"发现问题：孤立分块 {report.orphan_chunks} 个，不完整文件 {len(report.incomplete_documents)} 个"
        f"{'，关键词索引过期' if report.keyword_stale else ''}"
    )
    for source in report.incomplete_documents:
        print(f"  不完整：{source}")
    if not args.repair:
        print("运行 rag check --repair 修复（不完整的文件会被移除，再次运行 rag ingest 即可补回）")
        return 1
    removed, incomplete = index.repair()
    print(f"已修复：删除孤立分块 {removed} 个，移除不完整文件 {len(incomplete)} 个，关键词索引已重建")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.answer import QuestionError, make_assistant

    settings = _settings(args)
    question = " ".join(args.question) if isinstance(args.question, list) else args.question
    try:
        assistant = make_assistant(settings)
        answer = assistant.ask(question, k=args.k, doc_type=args.type, source=args.source)
    except QuestionError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    if args.json:
        _print_json(answer.to_dict())
        return 0
    for notice in answer.notices:
        print(f"（{notice}）")
    print(answer.answer)
    if answer.citations:
        print("\n参考段落：" if answer.refused else "\n依据：")
        for c in answer.citations:
            where = " ".join(x for x in (c.section,) if x)
            text = c.text.replace("\n", " ")
            print(f"[{c.id}] 《{c.title}》 {where}\n    {text[:160]}{'…' if len(text) > 160 else ''}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluation import evaluate, markdown_table

    index = _open_index(args)
    if not index.documents():
        print("错误：索引为空，请先运行 rag ingest", file=sys.stderr)
        return 2
    dataset = Path(args.dataset)
    if not dataset.exists():
        print(f"错误：评测集不存在：{dataset}", file=sys.stderr)
        return 2
    report = evaluate(index, dataset, with_baseline=not args.no_baseline, dev_dataset=args.dev)
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
    from rag.draft import make_drafter
    from rag.export import to_markdown, write_docx, write_markdown

    settings = _settings(args)
    try:
        draft = make_drafter(settings).draft(args.title, year=args.year, sources=args.source or None)
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

    settings = _settings(args)
    serve(settings, host=args.host, port=args.port, auth_raw=os.environ.get("RAG_AUTH"), insecure=args.insecure)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="法规问答助手：法规与报告的问答、起草与评测")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--index", help="索引目录（默认取环境变量 RAG_INDEX_DIR）")
        return p

    p = add("ingest", "把文件或文件夹加入索引（增量）")
    p.add_argument("paths", nargs="+", help="文件或文件夹")
    p.add_argument("--prune", action="store_true", help="移除文件已不存在的文档")
    p.add_argument("--strict", action="store_true", help="有任何文件失败时返回非零")
    p.add_argument("--quiet", action="store_true", help="不显示进度条")
    p.set_defaults(func=cmd_ingest)

    p = add("docs", "列出已索引的文件")
    p.add_argument("--json", action="store_true")
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
    p.add_argument("--type", choices=["report", "law"], help="只检索报告或法规")
    p.add_argument("--source", help="只检索某个文件（rag docs 中的来源名）")
    p.set_defaults(func=cmd_ask)

    p = add("eval", "在评测集上评测本系统，并与基线、同类做法对比")
    p.add_argument("--dataset", required=True, help="评测集 JSONL 文件")
    p.add_argument("--json", help="把完整结果写入此 JSON 文件")
    p.add_argument("--markdown", help="把指标表写入此 Markdown 文件")
    p.add_argument("--no-baseline", action="store_true", help="只评测本系统")
    p.add_argument("--dev", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "qa_dev.jsonl"),
                   help="基线拒答阈值所用的开发集（默认 ../shared/eval/qa_dev.jsonl，不存在时用评测集本身）")
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

    p = add("check", "检查存储、关键词索引与清单是否一致")
    p.add_argument("--repair", action="store_true", help="修复发现的问题")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("已中断", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError) as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
