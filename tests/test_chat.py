"""`rag chat`: one conversation in the terminal; follow-ups, /clear, /export, /quit (FAKE embeddings; the
last test runs the real command on the real corpus and is slow)."""

from __future__ import annotations

import io
import subprocess

import pytest
from conftest import ROOT
from test_consistency import VENV_PYTHON, _env

from rag.chat import ChatSession, format_answer, run_chat


def test_session_keeps_turns_clears_and_exports(tiny_components, tmp_path):
    session = ChatSession(tiny_components.assistant)
    first = session.ask("审计法第三条")
    follow = session.ask("第五条呢？")
    assert follow.resolved == "审计法第五条" and follow.citations[0].article == "第五条"
    assert [t.question for t in session.turns] == ["审计法第三条", "第五条呢？"]
    assert session.turns[1].resolved == "审计法第五条" and session.turns[0].answer is first
    path = session.export(tmp_path / "out" / "chat.md")
    exported = path.read_text(encoding="utf-8")
    assert exported.startswith("# 法规问答记录")
    assert "## 1. 审计法第三条" in exported and "## 2. 第五条呢？" in exported
    assert "- [1] 《中华人民共和国审计法》 第二章 审计程序 > 第五条：" in exported
    session.clear()
    assert session.turns == []


def test_run_chat_reads_questions_and_commands_from_stdin(tiny_components, tmp_path):
    target = tmp_path / "chat.md"
    stdin = io.StringIO(f"审计法第三条\n第五条呢？\n/export {target}\n/clear\n第五条呢？\n/what\n\n/quit\n审计法第一条\n")
    stdout = io.StringIO()
    assert run_chat(tiny_components.assistant, stdin, stdout) == 0
    out = stdout.getvalue()
    turns = out.split("问> ")
    assert turns[1].startswith("审计法第三条\n第三条 审计机关依照法律规定独立行使审计监督权") and "依据：\n[1] 《中华人民共和国审计法》" in turns[1]
    assert "（结合上文理解为：审计法第五条）" in turns[2]
    assert f"（已导出到 {target}）" in turns[3] and target.exists()
    assert "（对话已清空）" in turns[4]
    assert "结合上文" not in turns[5]  # the cleared conversation has no previous turn
    assert "/clear 清空对话" in turns[6]  # an unknown command shows the help
    assert "审计法第一条" not in out  # nothing is read after /quit
    assert "## 2. 第五条呢？" in target.read_text(encoding="utf-8")


def test_errors_and_refusals_are_printed_not_raised(tiny_components):
    stdout = io.StringIO()
    run_chat(tiny_components.assistant, io.StringIO("？？？\n/export\n"), stdout)
    out = stdout.getvalue()
    assert "问题中没有可检索的词语" in out and "用法：/export 文件名.md" in out


def test_format_answer_lists_the_passages(tiny_components):
    answer = tiny_components.assistant.ask("审计法第九十九条")
    text = format_answer(answer)
    assert text.startswith("未在已收录的文件中找到依据。") and "参考段落：" in text


@pytest.mark.slow
def test_rag_chat_from_a_pipe_answers_a_question_and_its_follow_up(corpus_index):
    """`printf '审计法第五条\\n那第六条呢？\\n' | rag chat --index DIR`: the real command on the real corpus."""
    index_dir = corpus_index.settings.index_dir
    done = subprocess.run(
        [VENV_PYTHON, "-m", "rag", "chat", "--index", str(index_dir)],
        input="审计法第五条\n那第六条呢？\n", env=_env(index_dir), cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    first, follow = done.stdout.split("问> ")[1:]
    assert first.startswith("审计法第五条\n第五条 审计机关依照法律规定独立行使审计监督权")
    assert "依据：\n[1] 《中华人民共和国审计法》 第一章 总则 > 第五条\n" in first
    assert follow.startswith("那第六条呢？\n（结合上文理解为：审计法第六条）\n第六条 审计机关和审计人员办理审计事项")
    assert "依据：\n[1] 《中华人民共和国审计法》 第一章 总则 > 第六条\n" in follow


def test_asking_an_empty_index_says_to_ingest_first(tmp_path):
    from conftest import FAKE_ENV

    done = subprocess.run(
        [VENV_PYTHON, "-m", "rag", "ask", "--index", str(tmp_path / "empty"), "审计法第五条"],
        env=_env(tmp_path / "empty", FAKE_ENV), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0 and done.stdout.startswith("（已收录的法规中没有《审计法》。）")
    assert "中还没有文件，请先用 rag ingest 收录文件" in done.stderr
