"""The web app, live: `rag serve` started by the test, gradio_client on /ask, Debian's chromium via Playwright."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REGULATIONS, ROOT, SAMPLE_REPORT, free_port, stop_process

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
LIKE = re.compile(r"^(赞|Like)$")


def test_document_text_is_escaped_in_sources_and_verdicts():
    from rag.schema import Hit
    from rag.verify import Verdict
    from ui.app import choice_to_source, sources_html, verdicts_html

    citation = {"id": 1, "title": "<b>标题</b>", "section": "一、<i>节</i>", "text": "<script>alert(1)</script>扫描件须加盖电子印章。", "sentence": "扫描件须加盖电子印章。"}
    html_text = sources_html([citation])
    assert "<script>" not in html_text and "&lt;script&gt;" in html_text and "&lt;b&gt;标题" in html_text
    assert "<mark>扫描件须加盖电子印章。</mark>" in html_text
    assert "最接近的段落" in sources_html([citation], refused=True) and sources_html([]) == "<p>（暂无引文）</p>"
    hit = Hit("c", "s", "<t>", "report", "<script>x</script>原文。", "", None, None, 1.0)
    verdicts = verdicts_html([Verdict("<img src=x>句子。", "contradicted", 0.1, hit, ("数字或期限与原文不一致",))])
    assert "<img" not in verdicts and "<script>" not in verdicts and "与原文不符" in verdicts and "共 1 句" in verdicts
    assert choice_to_source("中华人民共和国审计法（audit-law）") == "audit-law" and choice_to_source("全部文件") is None


def wait_http(url: str, timeout: float = 90) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An index with the sample report and three laws, served by `rag serve` on loopback."""
    index_dir = tmp_path_factory.mktemp("ui-index")
    env = dict(os.environ, RAG_INDEX_DIR=str(index_dir))
    env.pop("RAG_CHROMA_URL", None)
    subprocess.run(
        [sys.executable, "-m", "rag", "ingest", "--quiet", str(SAMPLE_REPORT), str(REGULATIONS / "audit-law.md"),
         str(REGULATIONS / "administrative-penalty-law.md"), str(REGULATIONS / "rule-of-law-publicity-education-law.md")],
        env=env, check=True, capture_output=True,
    )
    port = free_port()
    started = time.monotonic()
    # The server's output goes to a file: an undrained pipe would block the server once it fills.
    log_path = index_dir / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        try:
            try:
                wait_http(url)
            except TimeoutError:
                pytest.fail(log_path.read_text(encoding="utf-8", errors="replace")[-3000:])
            yield {"url": url, "index_dir": index_dir, "ready_s": time.monotonic() - started, "proc": proc}
        finally:
            stop_process(proc)


@pytest.mark.slow
def test_api_ask_with_gradio_client(server):
    from gradio_client import Client

    client = Client(server["url"], verbose=False)
    result = client.predict("审计法第四十四条", api_name="/ask")
    assert set(result) >= {"question", "answer", "refused", "citations", "timings_ms"}
    assert result["citations"][0]["article"] == "第四十四条" and result["answer"].startswith("第四十四条")
    refused = client.predict("明天开封的天气怎么样？", api_name="/ask")
    assert refused["refused"] is True


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is installed by .ci/run"
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 950}, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    started = time.monotonic()
    page.goto(server["url"], wait_until="domcontentloaded")
    page.wait_for_selector("textarea", timeout=60000)
    page.load_s = time.monotonic() - started
    yield page
    context.close()


def ask(page, question: str) -> float:
    page.get_by_label("问题").fill(question)
    before = page.get_by_role("button", name=LIKE).count()  # counted before the click: a fast answer must not be missed
    started = time.monotonic()
    page.get_by_role("button", name="提问").click()
    page.wait_for_function(
        """n => document.querySelectorAll('button[aria-label="赞"], button[aria-label="Like"]').length > n
               && !document.querySelector('#chat-panel').innerText.includes('正在检索')""",
        arg=before, timeout=60000,
    )
    return time.monotonic() - started


@pytest.mark.slow
def test_chat_answer_with_citation(page, server):
    first_chars = ask(page, "法律顾问来自哪家律师事务所？")
    card = page.locator(".source-card").first
    card.wait_for(timeout=30000)
    assert "河南誉齐临律师事务所" in page.locator("#sources").inner_text()
    assert card.locator("mark").count() == 1
    chat = page.locator("#chat-panel").inner_text()
    assert "河南誉齐临律师事务所" in chat and "[1]" in chat
    page.screenshot(path=str(ARTIFACTS / "chat.png"))
    timings = {"serve_to_page_s": round(server["ready_s"] + page.load_s, 2), "first_answer_chars_s": round(first_chars, 2)}
    (ARTIFACTS / "ui-timings.json").write_text(json.dumps(timings), encoding="utf-8")
    # A follow-up in the same conversation.
    ask(page, "审计法第五条是怎么规定的？")
    page.wait_for_function("document.body.innerText.includes('独立行使审计监督权')", timeout=60000)
    ask(page, "第十三条呢？")
    page.wait_for_function("document.body.innerText.includes('专业知识和业务能力')", timeout=30000)
    # 👍 is saved with the question, answer and citations.
    page.get_by_role("button", name=LIKE).last.click()
    feedback = server["index_dir"] / "feedback.jsonl"
    deadline = time.monotonic() + 10
    # the file is created when opened for the append, before its line is written: wait for the line
    while not (feedback.exists() and feedback.read_text(encoding="utf-8").endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.2)
    entry = json.loads(feedback.read_text(encoding="utf-8").splitlines()[-1])
    assert entry["liked"] is True and entry["question"] == "第十三条呢？" and entry["citations"]
    # Export the conversation as Markdown.
    page.get_by_role("button", name="导出对话（Markdown）").click()
    page.wait_for_function("document.body.innerText.includes('.md')", timeout=20000)


@pytest.mark.slow
def test_upload_then_answer_and_escape(page, server, tmp_path):
    doc = tmp_path / "测试上传 通知<1>.txt"
    doc.write_text(
        "某局关于档案数字化的通知\n一、工作目标\n全年完成档案数字化扫描386卷。\n二、注意事项\n"
        "<script>alert('xss')</script>扫描件须加盖电子印章。\n",
        encoding="utf-8",
    )
    page.get_by_role("tab", name="知识库").click()
    page.locator("input[type=file]").first.set_input_files(str(doc))
    page.get_by_role("button", name="上传并索引").click()
    page.wait_for_function("document.body.innerText.includes('新增')", timeout=90000)
    assert "档案数字化" in page.locator("body").inner_text()
    saved = list((server["index_dir"] / "uploads").iterdir())
    assert len(saved) == 1 and saved[0].suffix == ".txt"
    assert not re.search(r"[<>\s/]", saved[0].name) and saved[0].name.startswith("测试上传")
    page.screenshot(path=str(ARTIFACTS / "documents.png"))
    page.get_by_role("tab", name="问答").click()
    ask(page, "档案数字化扫描完成了多少卷？")
    page.wait_for_function("document.body.innerText.includes('386卷')", timeout=30000)
    ask(page, "扫描件须加盖什么印章？")
    page.wait_for_function("document.querySelector('#sources').innerText.includes('<script>')", timeout=30000)
    assert page.dialogs == [], "document text must be shown, never run"


@pytest.mark.slow
def test_draft_and_download_docx(page, tmp_path):
    page.get_by_role("tab", name="起草").click()
    page.get_by_label("章节标题").fill("存在问题")
    page.get_by_role("button", name="起草", exact=True).click()
    page.wait_for_function("document.body.innerText.includes('学习宣传习近平法治思想不够系统深入')", timeout=60000)
    assert page.locator("#draft-editor textarea").input_value().startswith("## 四、存在问题及原因")
    page.screenshot(path=str(ARTIFACTS / "draft.png"))
    link = page.locator("#draft-docx a").first
    link.wait_for(timeout=30000)
    with page.expect_download() as info:
        link.click()
    target = tmp_path / "draft.docx"
    info.value.save_as(target)
    import docx

    text = "\n".join(p.text for p in docx.Document(str(target)).paragraphs)
    assert "四、存在问题及原因" in text and "参考来源" in text


@pytest.mark.slow
def test_verify_tab(page):
    page.get_by_role("tab", name="核对").click()
    page.locator("#verify-text textarea").fill("审计机关依照法律规定独立行使审计监督权，不受其他行政机关、社会团体和个人的干涉。\n被审计单位应当自接到审计组的审计报告之日起十五日内，将其书面意见送交审计组。")
    page.locator("#verify-button").click()
    page.wait_for_function("document.querySelector('#verify-result').innerText.includes('共 2 句')", timeout=120000)
    verdicts = page.locator("#verify-result .verdict")
    assert verdicts.nth(0).get_attribute("data-verdict") == "supported"
    assert verdicts.nth(1).get_attribute("data-verdict") == "contradicted"
    assert "数字或期限与原文不一致" in verdicts.nth(1).inner_text()


@pytest.mark.slow
def test_evaluation_tab(page):
    page.get_by_role("tab", name="评测").click()
    page.get_by_label("同时评测基线与同类做法").uncheck()
    page.get_by_role("button", name="运行评测").click()
    page.wait_for_function("document.body.innerText.includes('回答准确率')", timeout=120000)
    page.wait_for_selector("#eval-chart img", timeout=30000)
    page.screenshot(path=str(ARTIFACTS / "eval.png"))


@pytest.mark.slow
def test_non_loopback_requires_auth(tmp_path):
    env = dict(os.environ, RAG_INDEX_DIR=str(tmp_path / "i"))
    env.pop("RAG_AUTH", None)
    out = subprocess.run([sys.executable, "-m", "rag", "serve", "--host", "0.0.0.0", "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "RAG_AUTH" in out.stderr
    env["RAG_AUTH"] = "staff-without-password"
    malformed = subprocess.run([sys.executable, "-m", "rag", "serve", "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=120)
    assert malformed.returncode == 2 and "RAG_AUTH 格式不正确" in malformed.stderr


@pytest.mark.slow
def test_auth_is_enforced(tmp_path):
    from gradio_client import Client

    env = dict(os.environ, RAG_INDEX_DIR=str(tmp_path / "i"), RAG_AUTH="staff:s3cret")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        from gradio_client.exceptions import AuthenticationError

        with pytest.raises(AuthenticationError):
            Client(f"http://127.0.0.1:{port}/", verbose=False).predict("审计法第一条", api_name="/ask")
        client = Client(f"http://127.0.0.1:{port}/", auth=("staff", "s3cret"), verbose=False)
        assert client.predict("审计法第一条", api_name="/ask")["refused"] is True  # an empty index has no basis
    finally:
        stop_process(proc)
