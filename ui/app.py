"""Gradio interface of 法规问答助手: 问答, 起草, 核对, 知识库, 评测. It holds no retrieval logic; it calls `rag`."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import gradio as gr

from rag.answer import Turn
from rag.citations import PLACEHOLDER_RE
from rag.components import Components
from rag.config import SettingsError
from rag.llm import RESET
from rag.loaders import SUPPORTED_SUFFIXES
from rag.query import QuestionError
from rag.schema import DOC_TYPE_LABELS, STATUS_LABELS, FileResult
from rag.store import StoreUnavailableError

TYPE_CHOICES = {"全部": None, "报告": "report", "法规": "law", "通知": "notice"}
ALL_DOCS = "全部文件"
EXAMPLES = [
    "我局共有多少项行政权力事项？",
    "审计法第四十四条",
    "行政处罚的种类有哪些？",
    "报告中提到的存在问题有哪些？",
    "法律顾问来自哪家律师事务所？",
]
TYPE_LABELS = DOC_TYPE_LABELS
QUEUE_STATUS_EVERY_S = 1.0
UPLOAD_CEILING_FACTOR = 10  # Gradio's own limit, as a multiple of RAG_MAX_UPLOAD_BYTES: a guard for the disk only
VERDICT_STYLE = {"supported": ("有依据", "#1a7f37"), "contradicted": ("与原文不符", "#cf222e"), "unsupported": ("找不到依据", "#9a6700")}
CSS = """
.source-card {border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 10px; margin-bottom: 8px; background: #fafbfc;}
.source-card .where {color: #57606a; font-size: 0.9em;}
.source-card mark {background: #fff3a3;}
.notice {color: #8a6d3b;}
.verdict {border-left: 4px solid #d0d7de; padding: 6px 10px; margin-bottom: 10px;}
.verdict .tag {font-weight: bold;}
.verdict .passage {color: #57606a; font-size: 0.9em; margin-top: 4px;}
"""


# ---------------------------------------------------------------- rendering helpers


def sources_html(citations: list[dict], refused: bool = False) -> str:
    """Cited passages with the supporting sentence highlighted; every document string is escaped."""
    if not citations:
        return "<p>（暂无引文）</p>"
    head = "<p><b>最接近的段落（仅供参考）</b></p>" if refused else "<p><b>引文</b></p>"
    cards = [head]
    for c in citations:
        passage = html.escape(c["text"])
        sentence = html.escape(c.get("sentence") or "")
        if sentence and sentence in passage:
            passage = passage.replace(sentence, f"<mark>{sentence}</mark>", 1)
        where = " ".join(x for x in (c.get("section") or "",) if x)
        cards.append(
            f'<div class="source-card"><div><b>[{c["id"]}]</b> 《{html.escape(c["title"])}》</div>'
            f'<div class="where">{html.escape(where)}</div><div>{passage.replace(chr(10), "<br>")}</div></div>'
        )
    return "\n".join(cards)


def answer_markdown(answer: dict) -> str:
    text = html.escape(answer["answer"]).replace("\n", "  \n")
    notices = "".join(f"\n\n*（{html.escape(n)}）*" for n in answer.get("notices", []))
    return text + notices


def verdicts_html(verdicts) -> str:
    """Each sentence with its verdict and the passage beside it; every document string is escaped."""
    if not verdicts:
        return "<p>（没有可核对的句子）</p>"
    blocks = []
    for n, v in enumerate(verdicts, start=1):
        label, colour = VERDICT_STYLE[v.verdict]
        reasons = "".join(f"<div>原因：{html.escape(r)}</div>" for r in v.reasons)
        passage = ""
        if v.hit is not None:
            where = html.escape(f"《{v.hit.title}》 {v.hit.section}".strip())
            passage = f'<div class="passage">{"依据" if v.verdict == "supported" else "最接近的原文"}：{where}<br>{html.escape(v.hit.text)}</div>'
        blocks.append(
            f'<div class="verdict" data-verdict="{v.verdict}" style="border-left-color:{colour}">'
            f'<span class="tag" style="color:{colour}">{n}. 【{label}】</span>{html.escape(v.sentence)}'
            f"{reasons}{passage}</div>"
        )
    counts = {k: sum(1 for v in verdicts if v.verdict == k) for k in VERDICT_STYLE}
    summary = "，".join(f"{VERDICT_STYLE[k][0]} {n}" for k, n in counts.items())
    return f"<p><b>共 {len(verdicts)} 句：{summary}</b></p>" + "\n".join(blocks)


def documents_table(index) -> tuple[list[list], str]:
    records = index.documents()
    rows = [[r.source, r.title, TYPE_LABELS.get(r.doc_type, r.doc_type), r.year or "", r.issuer or "", r.chunks] for r in records]
    totals = f"共 **{len(records)}** 个文件，**{sum(r.chunks for r in records)}** 个分块，**{sum(r.chars for r in records):,}** 字"
    return rows, totals


def document_choices(index, doc_type: str | None = None) -> list[str]:
    return [ALL_DOCS] + [f"{r.title}（{r.source}）" for r in index.documents() if doc_type is None or r.doc_type == doc_type]


def choice_to_source(choice: str | None) -> str | None:
    if not choice or choice == ALL_DOCS:
        return None
    m = re.search(r"（([^（）]+)）$", choice)
    return m.group(1) if m else None


# ---------------------------------------------------------------- the app


def session_dir(root: Path, request: gr.Request | None) -> Path:
    """A folder of one browser session's downloads: two sessions never share a file."""
    key = getattr(request, "session_hash", None) or uuid.uuid4().hex
    folder = root / re.sub(r"[^\w-]", "_", str(key))[:64]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def unique_name(stem: str, suffix: str) -> str:
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}{suffix}"


class App:
    """Everything the handlers need: one Components, built once per process and shared by sessions."""

    def __init__(self, components: Components) -> None:
        self.components = components
        self.settings = components.settings
        self.index = components.index
        self.assistant = components.assistant
        self.drafter = components.drafter
        self.upload_dir = self.settings.index_dir / "uploads"
        self.export_dir = Path(tempfile.mkdtemp(prefix="rag-export-"))

    def warm_up(self) -> None:
        """Load the keyword index, jieba and the model before the first question."""
        with contextlib.suppress(Exception):  # an empty index: nothing to warm
            self.assistant.ask("审计法第一条")

    # ------------------------------------------------------------ 问答

    def ask_api(self, question: str) -> dict:
        """The same object as `rag ask --json`."""
        try:
            return self.assistant.ask(question).to_dict()
        except (QuestionError, StoreUnavailableError) as exc:
            raise gr.Error(str(exc)) from exc

    def respond(self, question: str, history: list, turns: list, doc_type: str, doc_choice: str, org: str = ""):
        history = list(history or [])
        turns = list(turns or [])
        if not (question or "").strip():
            gr.Warning("问题不能为空，请输入要查询的内容。")
            yield history, turns, gr.update(), question
            return
        shown = question.strip()[: self.settings.answer.max_question_chars]  # the assistant cuts the same way, with a notice
        history += [{"role": "user", "content": html.escape(shown)}, {"role": "assistant", "content": "正在检索……"}]
        yield history, turns, gr.update(), ""
        previous = [Turn(t["question"], t["resolved"]) for t in turns]
        text = ""
        final = None
        try:
            for part in self.assistant.stream(
                question, history=previous, doc_type=TYPE_CHOICES.get(doc_type), source=choice_to_source(doc_choice),
                org=(org or "").strip() or None,
            ):
                if part is RESET:
                    text = ""
                elif isinstance(part, str):
                    text += part
                    history[-1]["content"] = html.escape(text)
                    yield history, turns, gr.update(), ""
                else:
                    final = part
        except (QuestionError, StoreUnavailableError) as exc:
            history[-1]["content"] = html.escape(str(exc))
            yield history, turns, gr.update(), ""
            return
        if final is None:  # the stream always ends with the answer
            raise RuntimeError("answer stream ended without an answer")
        data = final.to_dict()
        history[-1]["content"] = answer_markdown(data)
        turns.append({**data, "resolved": final.resolved or final.question})
        yield history, turns, sources_html(data["citations"], data["refused"]), ""

    def feedback(self, data: gr.LikeData, turns: list) -> None:
        from rag.feedback import record_feedback

        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn_no = int(index) // 2
        if not turns or turn_no >= len(turns):
            return
        turn = turns[turn_no]
        record_feedback(
            self.settings.index_dir,
            question=turn["question"],
            answer=turn["answer"],
            citations=turn["citations"],
            liked=bool(data.liked),
        )
        gr.Info("感谢反馈，已记录。")

    def export_chat(self, turns: list, request: gr.Request | None = None):
        from rag.export import conversation_markdown

        if not turns:
            gr.Warning("还没有对话可以导出。")
            return None
        path = session_dir(self.export_dir, request) / unique_name("问答记录", ".md")
        path.write_text(conversation_markdown(turns), encoding="utf-8")
        return str(path)

    # ------------------------------------------------------------ 起草

    def report_choices(self) -> list[str]:
        return [f"{r.title}（{r.source}）" for r in self.drafter.reports()]

    def default_year(self) -> int:
        reports = self.drafter.reports()
        return (reports[0].year or time.localtime().tm_year - 1) + 1 if reports else time.localtime().tm_year

    def make_draft(self, title: str, year, reports: list[str], request: gr.Request | None = None):
        if not (title or "").strip():
            raise gr.Error("请填写要起草的章节标题，例如“积极推进法治政府建设”。")
        sources = [s for s in (choice_to_source(c) for c in reports or []) if s]
        try:
            draft = self.drafter.draft(title, int(year) if year else None, sources=sources or None)
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        notes = "\n".join(f"> {html.escape(n)}" for n in draft.notices)
        placeholders = "\n".join(f"- **{html.escape(p.old)}**：{html.escape(p.context)}" for p in draft.placeholders) or "（无）"
        body = PLACEHOLDER_RE.sub(lambda m: f"<mark>{m.group(0)}</mark>", html.escape(draft.draft))
        rendered = f"{notes}\n\n{body}"
        return rendered, draft.draft, f"共 {len(draft.placeholders)} 处待更新：\n\n{placeholders}", draft, *self.export_draft(draft.draft, draft, request)

    def export_draft(self, edited: str, draft, request: gr.Request | None = None):
        from rag.export import write_docx, write_markdown

        if draft is None:
            return None, None
        current = replace(draft, draft=edited or draft.draft)
        stem = re.sub(r"[^\w\u4e00-\u9fff]+", "_", f"{current.title}-{current.year}")[:60]
        folder = session_dir(self.export_dir, request)
        docx_path = write_docx(current, folder / unique_name(stem, ".docx"))
        md_path = write_markdown(current, folder / unique_name(stem, ".md"))
        return str(docx_path), str(md_path)

    # ------------------------------------------------------------ 核对

    def verify(self, text: str, progress=gr.Progress()):
        from rag.verify import split_claims

        if not (text or "").strip():
            raise gr.Error("请粘贴要核对的文字。")
        sentences = split_claims(text)
        verifier = self.components.verifier
        verdicts = []
        for n, sentence in enumerate(sentences, start=1):
            progress((n - 1, len(sentences)), desc=f"正在核对第 {n} 句", unit="句")
            verdicts.append(verifier.verify_sentence(sentence))
        return verdicts_html(verdicts)

    # ------------------------------------------------------------ 知识库

    def upload(self, files, progress=gr.Progress()):
        """Any mix of files: each one gets its own result (type, size and content checked here)."""
        from rag.ingest import ingest_paths, save_uploads

        if not files:
            raise gr.Error(f"请先选择要上传的文件（{' '.join(SUPPORTED_SUFFIXES)}）。")
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files]
        saved, rejected = save_uploads(paths, self.upload_dir, self.settings.serve.max_upload_bytes)
        progress(0, desc="开始索引")

        def step(n: int, total: int, name: str) -> None:
            progress((n, total), desc=f"正在索引：{name}", unit="个文件")

        results: list[FileResult] = list(rejected)
        if saved:
            try:
                results.extend(ingest_paths(self.index, saved, progress=step, show_bar=False, on_wait=gr.Info).results)
            except StoreUnavailableError as exc:
                results.extend(FileResult(p.name, "failed", reason=str(exc)) for p in saved)
            else:
                self._warm_sentences(progress)
        rows = [[Path(r.path).name, STATUS_LABELS.get(r.status, r.status), r.chunks, r.reason or ""] for r in results]
        docs, totals = documents_table(self.index)
        return rows, docs, totals, *self._choice_updates()

    def set_metadata(self, choice: str, kind: str, year, issuer: str, title: str):
        """A correction of a document's type, year, issuer or title that re-ingest keeps."""
        from rag.ingest import set_metadata
        from rag.store import OverrideError, parse_override

        source = choice_to_source(choice)
        if not source:
            raise gr.Error("请先选择要修正的文件。")
        assignments = []
        if kind and kind != "（不改）":
            assignments.append(f"type={kind}")
        if year not in (None, "", 0):
            assignments.append(f"year={int(year)}")
        if (issuer or "").strip():
            assignments.append(f"issuer={issuer.strip()}")
        if (title or "").strip():
            assignments.append(f"title={title.strip()}")
        if not assignments:
            raise gr.Error("请至少填写一项要修正的内容。")
        try:
            record = set_metadata(self.index, source, parse_override(assignments), on_wait=gr.Info)
        except OverrideError as exc:
            raise gr.Error(str(exc)) from exc
        gr.Info(f"已更新：{record.title}（重新入库时保留此设置）")
        docs, totals = documents_table(self.index)
        return docs, totals, *self._choice_updates()

    def delete(self, choice: str, confirmed: bool):
        from rag.ingest import delete_source

        source = choice_to_source(choice)
        if not source:
            raise gr.Error("请先选择要删除的文件。")
        if not confirmed:
            raise gr.Error("请勾选“确认删除”后再删除。")
        if delete_source(self.index, source, on_wait=gr.Info):
            gr.Info(f"已删除：{source}")
        docs, totals = documents_table(self.index)
        return docs, totals, False, *self._choice_updates()

    def reindex(self, progress=gr.Progress()):
        from rag.ingest import ingest_paths

        paths = [r.path for r in self.index.documents() if Path(r.path).exists()]
        removed, incomplete = self.index.repair()

        def step(n: int, total: int, name: str) -> None:
            progress((n, total), desc=f"正在检查：{name}", unit="个文件")

        summary = ingest_paths(self.index, paths, progress=step, show_bar=False, on_wait=gr.Info) if paths else None
        self._warm_sentences(progress)
        rows = [[Path(r.path).name, STATUS_LABELS.get(r.status, r.status), r.chunks, r.reason or ""] for r in (summary.results if summary else [])]
        docs, totals = documents_table(self.index)
        gr.Info(f"重新索引完成；修复孤立分块 {removed} 个，不完整文件 {len(incomplete)} 个。")
        return rows, docs, totals, *self._choice_updates()

    def _warm_sentences(self, progress) -> None:
        """The new passages' sentence vectors now, with the progress bar, not at the next question."""

        def step(done: int, total: int) -> None:
            progress((done, total), desc="正在计算句子向量", unit="句")

        self.components.retriever.warm_sentences(show_bar=False, progress=step)  # nothing to do when the option is off

    def _choice_updates(self):
        return (
            gr.update(choices=document_choices(self.index), value=ALL_DOCS),
            gr.update(choices=document_choices(self.index)[1:], value=None),
            gr.update(choices=self.report_choices()),
            gr.update(choices=document_choices(self.index)[1:], value=None),
        )

    # ------------------------------------------------------------ 评测

    def datasets(self) -> list[tuple[str, str]]:
        """(label, path) of the question sets (`rag.evaluation.question_sets`)."""
        from rag.evaluation import question_sets

        return [(f"{s.name}（{s.path.name}）", str(s.path)) for s in question_sets(self.settings) if s.path.exists()]

    def evaluate(self, dataset: str, with_baseline: bool, progress=gr.Progress(), request: gr.Request | None = None):
        from rag.experiment import evaluate, markdown_table, plot_reports

        if not dataset or not Path(dataset).exists():
            raise gr.Error("请选择评测集。")
        names = {"system": "本系统", "baseline": "基线", "peer": "同类做法"}

        def step(name: str, n: int, total: int) -> None:
            progress((n, total), desc=f"正在评测（{names.get(name, name)}）", unit="题")

        report = evaluate(self.components, dataset, with_baseline=with_baseline, dev_dataset=self.settings.eval.dev_set, show_bar=False, progress=step)
        folder = session_dir(self.export_dir, request)
        chart = plot_reports({Path(dataset).stem: report}, folder / unique_name(f"eval-{Path(dataset).stem}", ".png"))
        json_path = folder / unique_name(f"eval-{Path(dataset).stem}", ".json")
        json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        return markdown_table(report), str(chart), str(json_path)


LLM_API_CONCURRENCY = 8


def api_concurrency(settings) -> int:
    """/ask requests answered side by side: RAG_API_CONCURRENCY, else one per CPU core for extractive
    answers (they hold the GIL; more at once only wait inside the process, 20 clients on 2 cores:
    p95 382 ms with 2, 429 ms with 8) or 8 with an LLM, whose answers wait on the endpoint."""
    if settings.serve.api_concurrency > 0:
        return settings.serve.api_concurrency
    return LLM_API_CONCURRENCY if settings.llm.enabled else max(1, os.cpu_count() or 1)


def build_app(components: Components) -> tuple[gr.Blocks, App]:
    app = App(components)
    settings = components.settings
    with gr.Blocks(title="法规问答助手") as demo:
        gr.Markdown("# 法规问答助手\n依据已收录的法规与报告回答问题，每句话都附引文；找不到依据时明确说明。")
        with gr.Tabs() as tabs:
            with gr.Tab("问答", id="chat"):
                turns = gr.State([])
                with gr.Row():
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(label="对话", height=460, placeholder="请在下方输入问题，例如：审计法第四十四条", elem_id="chat-panel")
                        question = gr.Textbox(label="问题", placeholder="输入问题后按回车或点击“提问”", lines=1, max_lines=4)
                        with gr.Row():
                            ask_btn = gr.Button("提问", variant="primary")
                            clear_btn = gr.Button("清空对话")
                            export_btn = gr.Button("导出对话（Markdown）")
                        export_file = gr.File(label="导出的对话", visible=True, interactive=False, elem_id="chat-export")
                        with gr.Row():
                            doc_type = gr.Dropdown(list(TYPE_CHOICES), value="全部", label="文件类型")
                            doc_choice = gr.Dropdown(document_choices(app.index), value=ALL_DOCS, label="限定文件")
                            org = gr.Textbox(value=settings.answer.org or "", label="本单位（“我局”指）", placeholder="如：开封市审计局", elem_id="own-org")
                        gr.Examples(EXAMPLES, inputs=question, label="示例问题")
                    with gr.Column(scale=2):
                        sources = gr.HTML("<p>（引文将显示在这里）</p>", label="引文", elem_id="sources")
                inputs = [question, chatbot, turns, doc_type, doc_choice, org]
                outputs = [chatbot, turns, sources, question]
                ask_btn.click(app.respond, inputs, outputs, api_visibility="private")
                question.submit(app.respond, inputs, outputs, api_visibility="private")
                clear_btn.click(lambda: ([], [], "<p>（引文将显示在这里）</p>", None), None, [chatbot, turns, sources, export_file], api_visibility="private")
                export_btn.click(app.export_chat, turns, export_file, api_visibility="private")
                chatbot.like(app.feedback, turns, None, api_visibility="private")
                doc_type.change(lambda t: gr.update(choices=document_choices(app.index, TYPE_CHOICES.get(t)), value=ALL_DOCS), doc_type, doc_choice, api_visibility="private")

            with gr.Tab("起草", id="draft"):
                draft_state = gr.State(None)
                with gr.Row():
                    title = gr.Textbox(label="章节标题", placeholder="如：积极推进法治政府建设、存在问题")
                    year = gr.Number(label="目标年份", value=app.default_year(), precision=0)
                    reports = gr.Dropdown(app.report_choices(), multiselect=True, label="参考的往年报告（不选则全部）")
                draft_btn = gr.Button("起草", variant="primary")
                with gr.Row():
                    with gr.Column():
                        rendered = gr.Markdown(label="草稿预览", elem_id="draft-preview")
                    with gr.Column():
                        editor = gr.Textbox(label="编辑草稿（Markdown）", lines=18, max_lines=40, elem_id="draft-editor")
                        placeholders = gr.Markdown()
                        with gr.Row():
                            refresh_btn = gr.Button("按编辑后的内容重新导出")
                            check_draft_btn = gr.Button("核对", elem_id="check-draft")
                        with gr.Row():
                            docx_file = gr.File(label="下载 .docx", interactive=False, elem_id="draft-docx")
                            md_file = gr.File(label="下载 .md", interactive=False, elem_id="draft-md")
                draft_btn.click(app.make_draft, [title, year, reports], [rendered, editor, placeholders, draft_state, docx_file, md_file], api_visibility="private")
                refresh_btn.click(app.export_draft, [editor, draft_state], [docx_file, md_file], api_visibility="private")

            with gr.Tab("核对", id="verify"):
                gr.Markdown("粘贴一段文字（如报告草稿、会议记录），逐句核对是否有已收录材料的依据：**有依据**、**与原文不符**（数字、日期、名称、“应当/不得”等与最接近的原文不一致）、**找不到依据**。")
                verify_text = gr.Textbox(label="要核对的文字", lines=8, max_lines=30, elem_id="verify-text")
                verify_btn = gr.Button("核对", variant="primary", elem_id="verify-button")
                verify_out = gr.HTML(elem_id="verify-result")
                verify_btn.click(app.verify, verify_text, verify_out, api_visibility="private")
                check_draft_btn.click(lambda text: (text, gr.Tabs(selected="verify")), editor, [verify_text, tabs], api_visibility="private").then(
                    app.verify, verify_text, verify_out, api_visibility="private"
                )

            with gr.Tab("知识库", id="docs"):
                rows, totals_text = documents_table(app.index)
                with gr.Row():
                    with gr.Column(scale=2):
                        files = gr.File(label=f"上传文件（{' '.join(SUPPORTED_SUFFIXES)}，单个不超过 {settings.serve.max_upload_bytes // 1048576} MB）", file_count="multiple")
                        upload_btn = gr.Button("上传并索引", variant="primary")
                        reindex_btn = gr.Button("重新索引")
                        summary = gr.Dataframe(headers=["文件", "结果", "分块", "原因"], label="本次处理结果", interactive=False, elem_id="upload-result")
                    with gr.Column(scale=3):
                        totals = gr.Markdown(totals_text)
                        docs = gr.Dataframe(value=rows, headers=["来源", "标题", "类型", "年份", "发文单位", "分块"], label="已收录的文件", interactive=False)
                        with gr.Row():
                            to_delete = gr.Dropdown(document_choices(app.index)[1:], label="选择要删除的文件")
                            confirm = gr.Checkbox(label="确认删除", value=False)
                            delete_btn = gr.Button("删除", variant="stop")
                        with gr.Accordion("修正文件信息（类型、年份、发文单位、标题）", open=False):
                            to_fix = gr.Dropdown(document_choices(app.index)[1:], label="文件")
                            with gr.Row():
                                fix_type = gr.Dropdown(["（不改）", *DOC_TYPE_LABELS.values()], value="（不改）", label="类型")
                                fix_year = gr.Number(label="年份", precision=0, value=None)
                                fix_issuer = gr.Textbox(label="发文单位")
                            fix_title = gr.Textbox(label="标题")
                            fix_btn = gr.Button("保存修正")
                choice_outputs = [doc_choice, to_delete, reports, to_fix]
                upload_btn.click(app.upload, files, [summary, docs, totals, *choice_outputs], api_visibility="private")
                reindex_btn.click(app.reindex, None, [summary, docs, totals, *choice_outputs], api_visibility="private")
                delete_btn.click(app.delete, [to_delete, confirm], [docs, totals, confirm, *choice_outputs], api_visibility="private")
                fix_btn.click(app.set_metadata, [to_fix, fix_type, fix_year, fix_issuer, fix_title], [docs, totals, *choice_outputs], api_visibility="private")

            with gr.Tab("评测", id="eval"):
                datasets = app.datasets()
                with gr.Row():
                    dataset = gr.Dropdown(datasets, value=datasets[0][1] if datasets else None, label="评测集")
                    with_baseline = gr.Checkbox(label="同时评测基线与同类做法", value=True)
                    eval_btn = gr.Button("运行评测", variant="primary")
                metrics = gr.Markdown()
                chart = gr.Image(label="本系统与基线对比", type="filepath", elem_id="eval-chart")
                report_file = gr.File(label="完整结果（JSON）", interactive=False)
                eval_btn.click(app.evaluate, [dataset, with_baseline], [metrics, chart, report_file], api_visibility="private")

        gr.api(app.ask_api, api_name="ask", concurrency_limit=api_concurrency(settings))
    return demo, app


def offline_theme() -> gr.themes.Base:
    """System fonts only: the default theme fetches web fonts, which an offline office cannot reach."""
    sans = ["Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "sans-serif"]
    mono = ["Consolas", "Noto Sans Mono CJK SC", "monospace"]
    return gr.themes.Soft(font=sans, font_mono=mono)


def serve(components: Components, host: str = "127.0.0.1", port: int = 7860, insecure: bool = False) -> None:
    """Start the web app; any address other than loopback needs users and passwords unless --insecure."""
    settings = components.settings
    auth = list(settings.serve.auth)
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not auth and not insecure:
        raise SettingsError("监听非本机地址时必须设置 RAG_AUTH（如 user:password），或显式加 --insecure")
    # Gradio's monitoring summary (a pandas table of the last 10,000 events) is rebuilt after every
    # event by default: 1.5 ms a request at first, 14 ms once 10,000 events are recorded. No page
    # here shows it, so it is rebuilt once per 1,000 events.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    demo, app = build_app(components)
    threading.Thread(target=app.warm_up, daemon=True).start()
    # Queue positions are sent once a second, not to every waiting request each time a job starts
    # (20 clients: ~16 messages per answer); streamed answer text is not affected.
    demo.queue(default_concurrency_limit=8, status_update_rate=QUEUE_STATUS_EVERY_S)
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            auth=auth or None,
            auth_message="请输入用户名和密码",
            # Gradio refuses a whole batch above this; below it the app answers file by file (文件过大).
            max_file_size=UPLOAD_CEILING_FACTOR * settings.serve.max_upload_bytes,
            show_error=True,
            quiet=False,
            css=CSS,
            theme=offline_theme(),
            footer_links=["api"],
            allowed_paths=[str(app.export_dir)],
        )
    finally:
        components.close()
