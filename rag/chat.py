"""A conversation in the terminal (`rag chat`): one load, many questions, follow-ups, citations after each
answer; `/clear`, `/export FILE`, `/quit`. Reads questions from stdin when it is not a terminal."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rag.answer import Assistant, Turn
from rag.query import QuestionError
from rag.schema import Answer

PROMPT = "问> "
HELP = "输入问题后回车。命令：/clear 清空对话，/export 文件名 导出为 Markdown，/quit 退出。"


def format_answer(answer: Answer, width: int = 160) -> str:
    """An answer as the command line shows it: notices, the text, then the cited passages."""
    lines = [f"（{notice}）" for notice in answer.notices]
    lines.append(answer.answer)
    if answer.citations:
        lines.append("")
        lines.append("参考段落：" if answer.refused else "依据：")
        for c in answer.citations:
            text = c.text.replace("\n", " ")
            lines.append(f"[{c.id}] 《{c.title}》 {c.section}".rstrip())
            lines.append(f"    {text[:width]}{'…' if len(text) > width else ''}")
    return "\n".join(lines)


@dataclass
class ChatSession:
    """The turns of one conversation; follow-ups are resolved against the previous turn."""

    assistant: Assistant
    turns: list[Turn] = field(default_factory=list)

    def ask(self, question: str) -> Answer:
        answer = self.assistant.ask(question, history=self.turns)
        self.turns.append(Turn(answer.question, answer.resolved or answer.question, answer))
        return answer

    def clear(self) -> None:
        self.turns.clear()

    def export(self, path: str | Path) -> Path:
        from rag.export import conversation_markdown

        target = Path(path).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        records = [{"question": t.question, **t.answer.to_dict()} for t in self.turns if t.answer is not None]
        target.write_text(conversation_markdown(records), encoding="utf-8")
        return target


def _terminal_reader(stdin: TextIO, stdout: TextIO):
    """Lines from a terminal with the prompt; on the process's own terminal, input() with line editing and history."""
    if stdin is sys.stdin and stdout is sys.stdout:
        with contextlib.suppress(ImportError):  # not on every platform
            import readline  # noqa: F401  (input() then edits lines and keeps a history)

        def read() -> str:
            try:
                return input(PROMPT) + "\n"
            except EOFError:
                print(file=stdout)
                return ""

        return read

    def read_line() -> str:
        print(PROMPT, end="", file=stdout, flush=True)
        return stdin.readline()

    return read_line


def run_chat(assistant: Assistant, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """The read-answer loop; returns the exit code."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty()
    session = ChatSession(assistant)
    read = _terminal_reader(stdin, stdout) if interactive else stdin.readline
    if interactive:
        print(HELP, file=stdout)
    while True:
        line = read()
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if not interactive:
            print(f"{PROMPT}{text}", file=stdout)
        if text in ("/quit", "/exit", "/q"):
            break
        if text == "/clear":
            session.clear()
            print("（对话已清空）", file=stdout)
            continue
        if text.startswith("/export"):
            target = text[len("/export") :].strip()
            if not target:
                print("用法：/export 文件名.md", file=stdout)
                continue
            try:
                print(f"（已导出到 {session.export(target)}）", file=stdout)
            except OSError as exc:
                print(f"错误：无法写入 {target}：{exc.strerror or exc}", file=stdout)
            continue
        if text.startswith("/"):
            print(HELP, file=stdout)
            continue
        try:
            answer = session.ask(text)
        except QuestionError as exc:
            print(f"错误：{exc}", file=stdout)
            continue
        print(format_answer(answer), file=stdout)
        print("", file=stdout, flush=True)
    return 0
