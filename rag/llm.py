"""The LLM answerer and draft rewriter: every sentence is checked against its cited passage.

The chat model itself (an OpenAI-compatible endpoint, or the scripted FAKE model of tests) is
built by `rag.components`; this module only uses it. A sentence is kept when the support checker
finds it supported by a passage it cites (a faithful paraphrase passes; a changed number, date,
name, obligation or negation does not); an error or timeout falls back to the extractive answer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag.citations import (
    CITED_SENTENCE,
    MARKER,
    PLACEHOLDER_RE,
    REFUSAL,
    Support,
    check_support,
    cited_sentences,
    passage_context,
)
from rag.schema import Answer, Citation, Hit

MAX_PASSAGES = 6
SupportFn = Callable[[str, Hit], Support]


class StreamReset:
    """Yielded by a stream when the text streamed so far is replaced (fallback after an LLM error)."""


RESET = StreamReset()


def default_support(sentence: str, hit: Hit) -> Support:
    return check_support(sentence, hit.text, context=f"{hit.title} {hit.section}")


@dataclass(frozen=True)
class CheckedAnswer:
    text: str
    kept_ids: tuple[int, ...]
    dropped: int
    verdicts: tuple[tuple[str, str], ...] = ()  # (sentence, verdict) of every sentence


def check_citations(text: str, passages: Sequence[Hit], support: SupportFn | None = None) -> CheckedAnswer:
    """Keep only sentences that cite existing passages, one of which supports them."""
    support = support or default_support
    kept: list[str] = []
    ids: list[int] = []
    dropped = 0
    verdicts: list[tuple[str, str]] = []
    for sentence, cited in cited_sentences(text):
        valid = bool(cited) and all(1 <= n <= len(passages) for n in cited)
        verdict = "uncited"
        if valid:
            results = [support(sentence, passages[n - 1]) for n in cited]
            verdict = "supported" if any(r.supported for r in results) else results[0].verdict
        verdicts.append((sentence, verdict))
        if verdict == "supported":
            kept.append(sentence)
            ids.extend(n for n in cited if n not in ids)
        else:
            dropped += 1
    return CheckedAnswer("".join(kept), tuple(ids), dropped, tuple(verdicts))


def renumber(text: str, kept_ids: tuple[int, ...], passages: Sequence[Hit]) -> tuple[str, tuple[Citation, ...]]:
    """Number citations 1..n in order of first use, as the extractive answers do."""
    mapping = {old: new for new, old in enumerate(kept_ids, start=1)}
    text = MARKER.sub(lambda m: f"[{mapping.get(int(m.group(1)), int(m.group(1)))}]", text)
    citations = tuple(Citation.from_hit(mapping[old], passages[old - 1]) for old in kept_ids)
    return text, citations


def llm_answer_stream(
    model: Any,
    question: str,
    plan_question: str,
    passages: Sequence[Hit],
    extractive: Answer,
    retrieval_timings: dict[str, float],
    started: float,
    support: SupportFn | None = None,
) -> Iterator[object]:
    """Stream an LLM answer over the passages; check every sentence; fall back on any failure."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from rag.prompts import ANSWER_SYSTEM, ANSWER_USER, format_passages

    passages = list(passages)[:MAX_PASSAGES]
    notices = list(extractive.notices)
    timings = dict(retrieval_timings)
    t0 = time.perf_counter()
    pieces: list[str] = []
    try:
        messages = [
            SystemMessage(content=ANSWER_SYSTEM),
            HumanMessage(content=ANSWER_USER.format(passages=format_passages(passages), question=plan_question)),
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
    t1 = time.perf_counter()
    checked = check_citations(raw, passages, support)
    timings["check"] = (time.perf_counter() - t1) * 1000
    if REFUSAL.rstrip("。") in raw and not checked.text:
        final = replace(extractive, answer=REFUSAL, refused=True, mode="llm", notices=tuple(notices), citations=())
    elif not checked.text:
        notices.append("大模型的回答没有可核实的引用，已改用抽取式回答。")
        final = replace(extractive, notices=tuple(notices), mode="extractive")
    else:
        if checked.dropped:
            notices.append(f"已删除{checked.dropped}句在所引段落中找不到依据或与原文不符的内容。")
        text, citations = renumber(checked.text, checked.kept_ids, passages)
        final = Answer(question, text, False, citations, {}, tuple(notices), mode="llm")
    timings["total"] = (time.perf_counter() - started) * 1000
    final = replace(final, timings_ms=timings)
    if final.answer != raw:
        yield RESET
        yield final.answer
    yield final


# ---------------------------------------------------------------- drafts

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


def rewrite_draft(model: Any, draft):
    """Rewrite each sub-section fluently with the LLM; keep the original where a rewrite is not faithful."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from rag.prompts import DRAFT_SYSTEM, DRAFT_USER

    notices = list(draft.notices)
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


# ---------------------------------------------------------------- the FAKE chat model


def fake_reply(prompt: str) -> str:
    """What the FAKE model answers: the first sentence of passage [1], cited; a draft unchanged."""
    material = re.search(r"材料：\n(.*)\n\n请把材料改写", prompt, flags=re.S)
    if material:
        return material.group(1).strip()
    passages = dict(re.findall(r"^\[(\d+)\] 《[^》]*》[^\n]*\n([^\n]+)", prompt, flags=re.M))
    first = passages.get("1", "")
    sentence = re.split(r"(?<=[。；])", first)[0].strip()
    return f"{sentence}[1]" if sentence else REFUSAL


def make_fake_chat_model():
    """A FAKE LangChain chat model (llm.mode = fake): scripted, deterministic, no network."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    class FakeChatModel(BaseChatModel):
        """FAKE: answers from the passages in the prompt (see `fake_reply`)."""

        @property
        def _llm_type(self) -> str:
            return "fake-scripted"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            prompt = "\n".join(str(m.content) for m in messages)
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=fake_reply(prompt)))])

        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            prompt = "\n".join(str(m.content) for m in messages)
            text = fake_reply(prompt)
            for i in range(0, len(text), 6):
                yield ChatGenerationChunk(message=AIMessageChunk(content=text[i : i + 6]))

    return FakeChatModel()


def passage_for_check(hit: Hit) -> str:
    return passage_context(hit)
