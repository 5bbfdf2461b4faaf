"""make_chat_model(settings): an OpenAI-compatible endpoint (vLLM, Ollama, Xinference), and the LLM answerer."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from rag.config import Settings
from rag.evaluation import CITED_SENTENCE, MARKER, sentence_supported  # one rule for run-time checks and metrics
from rag.schema import Answer, Citation, Hit

MAX_PASSAGES = 6


class StreamReset:
    """Yielded by a stream when the text streamed so far is replaced (fallback after an LLM error)."""


RESET = StreamReset()


def make_chat_model(settings: Settings):
    """A LangChain chat model for the configured endpoint, or None when no LLM is configured."""
    if not settings.llm_enabled:
        return None
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RuntimeError("LLM 模式需要 langchain-openai：pip install langchain-openai") from exc
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout_s,
        max_retries=0,
        temperature=0.1,
        streaming=True,
    )


@dataclass(frozen=True)
class CheckedAnswer:
    text: str
    kept_ids: tuple[int, ...]
    dropped: int


def check_citations(text: str, passages: list[Hit]) -> CheckedAnswer:
    """Keep only sentences whose every citation exists and supports them (numbers and content words)."""
    kept: list[str] = []
    ids: list[int] = []
    dropped = 0
    for match in CITED_SENTENCE.finditer(text):
        sentence = match.group(0).strip()
        if not sentence:
            continue
        cited = [int(n) for n in MARKER.findall(sentence)]
        valid = bool(cited) and all(1 <= n <= len(passages) for n in cited)
        if valid and any(sentence_supported(sentence, passages[n - 1].text) for n in cited):
            kept.append(sentence)
            ids.extend(n for n in cited if n not in ids)
        else:
            dropped += 1
    return CheckedAnswer("".join(kept), tuple(ids), dropped)


def renumber(text: str, kept_ids: tuple[int, ...], passages: list[Hit]) -> tuple[str, tuple[Citation, ...]]:
    """Number citations 1..n in order of first use, as the extractive answers do."""
    mapping = {old: new for new, old in enumerate(kept_ids, start=1)}
    text = MARKER.sub(lambda m: f"[{mapping.get(int(m.group(1)), int(m.group(1)))}]", text)
    citations = tuple(Citation.from_hit(mapping[old], passages[old - 1]) for old in kept_ids)
    return text, citations


def llm_answer_stream(assistant, question: str, retrieval, extractive: Answer, started: float) -> Iterator[object]:
    """Stream an LLM answer over the retrieved passages; validate citations; fall back on any failure."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from rag.prompts import ANSWER_SYSTEM, ANSWER_USER, format_passages

    passages: list[Hit] = list(retrieval.article_hits) + [
        h for h in retrieval.hits if h.chunk_id not in {a.chunk_id for a in retrieval.article_hits}
    ]
    passages = passages[:MAX_PASSAGES]
    notices = list(extractive.notices)
    timings = dict(retrieval.timings_ms)
    t0 = time.perf_counter()
    pieces: list[str] = []
    try:
        model = assistant._llm or make_chat_model(assistant.settings)
        assistant._llm = model
        messages = [
            SystemMessage(content=ANSWER_SYSTEM),
            HumanMessage(content=ANSWER_USER.format(passages=format_passages(passages), question=retrieval.plan.question)),
        ]
        for chunk in model.stream(messages):
            delta = chunk.content if isinstance(chunk.content, str) else ""
            if delta:
                if not pieces:
                    timings["llm_first_token"] = (time.perf_counter() - t0) * 1000
                pieces.append(delta)
                yield delta
    except Exception as exc:  # timeout, connection refused, HTTP error: the extractive answer stands
        reason = "超时" if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc).lower() else "出错"
        notices.append(f"大模型服务{reason}（{type(exc).__name__}），已改用抽取式回答。")
        if pieces:
            yield RESET
        timings["total"] = (time.perf_counter() - started) * 1000
        final = replace(extractive, notices=tuple(notices), timings_ms=timings, mode="extractive")
        yield final.answer
        yield final
        return
    timings["llm"] = (time.perf_counter() - t0) * 1000
    raw = "".join(pieces).strip()
    checked = check_citations(raw, passages)
    if "未在已收录的文件中找到依据" in raw and not checked.text:
        final = replace(extractive, answer="未在已收录的文件中找到依据。", refused=True, mode="llm", notices=tuple(notices))
    elif not checked.text:
        notices.append("大模型的回答没有可核实的引用，已改用抽取式回答。")
        final = replace(extractive, notices=tuple(notices), mode="extractive")
    else:
        if checked.dropped:
            notices.append(f"已删除{checked.dropped}句在所引段落中找不到依据的内容。")
        text, citations = renumber(checked.text, checked.kept_ids, passages)
        final = Answer(question, text, False, citations, {}, tuple(notices), mode="llm")
    timings["total"] = (time.perf_counter() - started) * 1000
    final = replace(final, timings_ms=timings)
    if final.answer != raw:
        yield RESET
        yield final.answer
    yield final


NUMBER_IN_TEXT = re.compile(r"\d+(?:\.\d+)?")


def _blocks(markdown: str) -> list[tuple[str, str]]:
    """(heading line or '', body) blocks of a draft, split at Markdown headings."""
    blocks: list[tuple[str, list[str]]] = [("", [])]
    for line in markdown.splitlines():
        if line.startswith("#"):
            blocks.append((line, []))
        else:
            blocks[-1][1].append(line)
    return [(h, "\n".join(body).strip()) for h, body in blocks]


def rewrite_is_faithful(original: str, rewritten: str) -> str | None:
    """None when the rewrite keeps every placeholder and citation and adds no number; else why not."""
    from rag.draft import PLACEHOLDER_RE

    if sorted(PLACEHOLDER_RE.findall(original)) != sorted(PLACEHOLDER_RE.findall(rewritten)):
        return "占位符被改动"
    stripped_old = PLACEHOLDER_RE.sub("", original)
    stripped_new = PLACEHOLDER_RE.sub("", rewritten)
    if not set(NUMBER_IN_TEXT.findall(MARKER.sub("", stripped_new))) <= set(NUMBER_IN_TEXT.findall(MARKER.sub("", stripped_old))):
        return "出现了材料中没有的数字"
    old_ids, new_ids = set(MARKER.findall(original)), set(MARKER.findall(rewritten))
    if not new_ids or not new_ids <= old_ids:
        return "引用编号缺失或不在材料中"
    for sentence in CITED_SENTENCE.findall(rewritten):
        if sentence.strip() and not MARKER.search(sentence) and not sentence.strip().startswith("**"):
            return "有句子没有标注引用"
    return None


def rewrite_draft(drafter, draft):
    """Rewrite each sub-section fluently with the LLM; keep the original where a rewrite is not faithful."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from rag.prompts import DRAFT_SYSTEM, DRAFT_USER

    notices = list(draft.notices)
    try:
        model = drafter._llm or make_chat_model(drafter.settings)
        drafter._llm = model
    except Exception as exc:
        notices.append(f"大模型不可用（{type(exc).__name__}），保留原稿。")
        return replace(draft, notices=tuple(notices))
    out: list[str] = []
    kept = failed = 0
    for heading, body in _blocks(draft.draft):
        if heading:
            out.append(heading)
            out.append("")
        if not body or not MARKER.search(body):
            if body:
                out += [body, ""]
            continue
        # The legal-basis lines are quotations: they are never rewritten.
        prose = "\n\n".join(p for p in body.split("\n\n") if not p.startswith("**相关法律依据**"))
        basis = "\n\n".join(p for p in body.split("\n\n") if p.startswith("**相关法律依据**"))
        try:
            reply = model.invoke(
                [SystemMessage(content=DRAFT_SYSTEM), HumanMessage(content=DRAFT_USER.format(heading=heading.lstrip("# "), year=draft.year, material=prose))]
            )
            rewritten = str(reply.content).strip()
            problem = rewrite_is_faithful(prose, rewritten)
        except Exception as exc:
            problem = f"调用失败（{type(exc).__name__}）"
            rewritten = ""
        if problem:
            failed += 1
            out += [prose, ""]
        else:
            kept += 1
            out += [rewritten, ""]
        if basis:
            out += [basis, ""]
    if kept:
        notices.append(f"大模型已润色{kept}个小节。")
    if failed:
        notices.append(f"{failed}个小节的润色结果未通过核对（数字、占位符或引用不一致），保留了原稿。")
    return replace(draft, draft="\n".join(out).strip() + "\n", notices=tuple(notices))
