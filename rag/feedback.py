"""👍/👎 feedback on answers, appended to a JSONL file in the index directory."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

_LOCK = threading.Lock()


def feedback_path(index_dir: Path) -> Path:
    return index_dir / "feedback.jsonl"


def record_feedback(index_dir: Path, *, question: str, answer: str, citations: list[dict], liked: bool) -> Path:
    """Append one judgement with the question, the answer and its citations."""
    path = feedback_path(index_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "liked": liked,
        "question": question,
        "answer": answer,
        "citations": citations,
    }
    with _LOCK, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return path
