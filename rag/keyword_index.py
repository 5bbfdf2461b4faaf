"""Chinese keyword index: jieba segmentation + bm25s, persisted beside the store and rebuilt from it."""

from __future__ import annotations

import json
import operator
import re
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.schema import Hit
from rag.store import ChunkStore, StoredChunk, hit_from_metadata

_JIEBA_LOCK = threading.Lock()
_JIEBA_READY = False

STOPWORDS = frozenset(
    "的 了 和 与 及 或 是 在 对 等 为 由 以 将 把 被 于 其 之 中 上 下 有 无 个 们 这 那 哪 哪些 什么 怎么 "
    "如何 多少 几 吗 呢 吧 啊 么 是否 什么样 怎样 应当 可以 一 也 都 就 并 而 则 如 该 本 各 从 向 "
    "请问 请 问 规定 一下 告诉 我 我们 你 多久 多长 时间 内容 哪个 哪里 谁 还 又 要 会 能".split()
)
# Words that frame a question rather than say what it is about.
QUESTION_WORDS = frozenset(
    "一共 总共 共有 哪家 哪位 哪种 哪类 哪几 哪几种 哪几个 哪一天 哪天 什么时候 何时 多长时间 长时间 多长 多大 多少天 "
    "怎么样 怎样 应该 有没有 是不是 能不能 要不要 可不可以 来着 呢 几年 几点 几天 几次 几名 几位 几项 几条 几个 几部 "
    "几种 几类 多少项 多少条 多少名 多少人 多少次 为何 为什么 怎么办 如何 是否 能否 可否 提到 提及 叫 叫做 称为 这份 "
    "一天 哪一天 请问 告诉 最长 最短 最多 最少 不要 没有过 过 哪些方面 哪方面 哪些地方".split()
)
TOKEN_OK = re.compile(r"[\w\u3400-\u9fff%]")

# Domain words jieba would otherwise cut apart.
DOMAIN_WORDS = (
    "审计法", "审计署", "审计机关", "审计报告", "审计决定", "行政处罚法", "行政许可法", "行政强制法",
    "行政复议法", "行政诉讼法", "国家赔偿法", "预算法", "监察法", "政务处分", "政府信息公开",
    "依申请公开", "主动公开", "法治政府", "法治社会", "法律顾问", "公职律师", "规范性文件",
    "重大行政决策", "行政执法", "权责清单", "普法", "八五普法", "谁执法谁普法", "述法", "学法",
    "持证上岗", "听证", "复议", "审计质效提升年", "优化营商环境", "信访", "政府投资", "国有资产",
    "行政强制措施", "行政强制执行", "没收违法所得", "责令停产停业", "暂扣许可证件",
)


def _ensure_jieba() -> None:
    global _JIEBA_READY
    if _JIEBA_READY:
        return
    with _JIEBA_LOCK:
        if _JIEBA_READY:
            return
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        for word in DOMAIN_WORDS:
            jieba.add_word(word, freq=20000)
        _JIEBA_READY = True


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens, lower-cased, without stopwords and punctuation."""
    import jieba

    _ensure_jieba()
    tokens = []
    for token in jieba.lcut_for_search(text.lower()):
        token = token.strip()
        if token and token not in STOPWORDS and TOKEN_OK.search(token):
            tokens.append(token)
    return tokens


NOUN_FLAGS = ("n", "j", "l")


def tagged_words(text: str) -> list[tuple[str, str]]:
    """jieba words with their part-of-speech tags."""
    import jieba.posseg

    _ensure_jieba()
    return [(p.word, p.flag) for p in jieba.posseg.lcut(text) if p.word.strip()]


def is_noun(flag: str) -> bool:
    return flag[:1] in NOUN_FLAGS or flag in ("vn", "eng", "nz", "x")


def content_nouns(text: str) -> list[str]:
    """The nouns of a text (two characters or more), the words that say what it is about."""
    return [w for w, flag in tagged_words(text) if is_noun(flag) and len(w) >= 2 and w not in STOPWORDS]


def is_question_word(token: str) -> bool:
    return token in QUESTION_WORDS or bool(re.match(r"^(几|多少)", token))


def query_tokens(text: str) -> list[str]:
    """Tokens of a question: words that only frame the question are dropped before search-mode cutting."""
    import jieba

    _ensure_jieba()
    kept = [w for w in jieba.lcut(text.lower()) if not is_question_word(w)]
    return [t for t in tokenize(" ".join(kept)) if not is_question_word(t)]


@dataclass
class KeywordIndex:
    """A bm25s index over all chunks, with the chunk texts and metadata to build Hits."""

    generation: str
    ids: list[str]
    texts: list[str]
    metadatas: list[dict]
    retriever: object | None
    _articles: dict | None = None
    _df: dict | None = None
    _rows_by_source: dict | None = None
    _columns: dict | None = None

    @classmethod
    def build(cls, chunks: list[StoredChunk], generation: str) -> KeywordIndex:
        import bm25s

        ids = [c.id for c in chunks]
        texts = [c.text for c in chunks]
        metas = [c.metadata for c in chunks]
        retriever = None
        if chunks:
            corpus_tokens = [(c.metadata.get("tokens") or "").split() or ["\u2205"] for c in chunks]
            retriever = bm25s.BM25(k1=1.2, b=0.75)
            retriever.index(corpus_tokens, show_progress=False)
        return cls(generation, ids, texts, metas, retriever)

    def updated(self, removed_sources: set[str], added: list[StoredChunk], generation: str) -> KeywordIndex:
        """A new index with some documents' chunks removed and others added (no full read of the store)."""
        kept = [
            StoredChunk(cid, text, meta)
            for cid, text, meta in zip(self.ids, self.texts, self.metadatas)
            if meta.get("source") not in removed_sources
        ]
        return KeywordIndex.build(sorted(kept + added, key=lambda c: c.id), generation)

    @classmethod
    def from_store(cls, store: ChunkStore, generation: str | None = None) -> KeywordIndex:
        generation = generation or store.generation()
        chunks = sorted(store.iter_chunks(), key=lambda c: c.id)
        return cls.build(chunks, generation)

    def _ensure_lookups(self) -> None:
        if getattr(self, "_articles", None) is not None:
            return
        from rag.structure import chinese_number

        articles: dict[tuple[str, int], list[int]] = {}
        for i, meta in enumerate(self.metadatas):
            label = meta.get("article")
            if label:
                number = chinese_number(label[1:-1])
                if number is not None:
                    articles.setdefault((meta.get("source", ""), number), []).append(i)
        self._articles = articles
        df: dict[str, int] = {}
        if self.retriever is not None:
            counts = np.diff(np.asarray(self.retriever.scores["indptr"]))
            for token, token_id in self.retriever.vocab_dict.items():
                if token_id < len(counts):
                    df[token] = int(counts[token_id])
        self._df = df

    def article(self, source: str, number: int) -> list[Hit]:
        """The chunks of one article of one law, in order."""
        self._ensure_lookups()
        rows = self._articles.get((source, number), [])
        rows = sorted(rows, key=lambda i: self.metadatas[i].get("chunk_index", 0))
        return [hit_from_metadata(self.ids[i], self.texts[i], self.metadatas[i], 1.0) for i in rows]

    def document_frequency(self, token: str) -> int:
        self._ensure_lookups()
        return self._df.get(token, 0)

    def rows_of(self, source: str) -> list[int]:
        """Row numbers of one document's chunks, in document order."""
        if getattr(self, "_rows_by_source", None) is None:
            by_source: dict[str, list[int]] = {}
            for i, meta in enumerate(self.metadatas):
                by_source.setdefault(meta.get("source", ""), []).append(i)
            for rows in by_source.values():
                rows.sort(key=lambda i: self.metadatas[i].get("chunk_index", 0))
            self._rows_by_source = by_source
        return list(self._rows_by_source.get(source, []))

    def _column(self, key: str) -> np.ndarray:
        columns = getattr(self, "_columns", None)
        if columns is None:
            columns = self._columns = {}
        if key not in columns:
            columns[key] = np.array([m.get(key) for m in self.metadatas], dtype=object)
        return columns[key]

    def _vector_mask(self, where: dict) -> np.ndarray | None:
        """The filter as a numpy mask for the shapes retrieval uses; None for anything else."""
        if "$and" in where and len(where) == 1:
            parts = [self._vector_mask(c) for c in where["$and"]]
            if any(p is None for p in parts):
                return None
            return np.logical_and.reduce(parts)
        if len(where) != 1:
            return None
        key, cond = next(iter(where.items()))
        if key.startswith("$"):
            return None
        column = self._column(key)
        if not isinstance(cond, dict):
            return column == cond
        if set(cond) == {"$eq"}:
            return column == cond["$eq"]
        if set(cond) == {"$in"}:
            return np.isin(column, list(cond["$in"]))
        return None

    def hit(self, row: int, score: float = 0.0) -> Hit:
        return hit_from_metadata(self.ids[row], self.texts[row], self.metadatas[row], score)

    def mask(self, where: dict | None) -> np.ndarray | None:
        """A 0/1 weight per chunk for metadata filters (same dict format as Chroma's where)."""
        if not where:
            return None
        fast = self._vector_mask(where)
        if fast is not None:
            return fast.astype(np.float32)
        return np.array([1.0 if matches(m, where) else 0.0 for m in self.metadatas], dtype=np.float32)

    def search(self, query_tokens: list[str], k: int, where: dict | None = None) -> list[Hit]:
        if self.retriever is None or not query_tokens:
            return []
        vocab = self.retriever.vocab_dict
        known = [t for t in query_tokens if t in vocab]
        if not known:
            return []
        weight_mask = self.mask(where)
        if weight_mask is not None and not weight_mask.any():
            return []
        k = min(k, len(self.ids))
        docs, scores = self.retriever.retrieve(
            [known], k=k, show_progress=False, weight_mask=weight_mask, n_threads=0
        )
        hits: list[Hit] = []
        for idx, score in zip(docs[0], scores[0]):
            if score <= 0:
                continue
            i = int(idx)
            hits.append(hit_from_metadata(self.ids[i], self.texts[i], self.metadatas[i], float(score)))
        return hits

    # ------------------------------------------------------------ persistence

    def save(self, directory: Path) -> None:
        """Write to a temporary folder, then swap it in, so a crash never leaves a half-written index."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        if self.retriever is not None:
            self.retriever.save(str(tmp / "bm25"), show_progress=False)
        with open(tmp / "rows.json", "w", encoding="utf-8") as f:
            json.dump({"ids": self.ids, "texts": self.texts, "metadatas": self.metadatas}, f, ensure_ascii=False)
        (tmp / "GENERATION").write_text(self.generation, encoding="utf-8")
        old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> KeywordIndex | None:
        import bm25s

        try:
            generation = (directory / "GENERATION").read_text(encoding="utf-8")
            with open(directory / "rows.json", encoding="utf-8") as f:
                rows = json.load(f)
            retriever = None
            if (directory / "bm25").exists():
                retriever = bm25s.BM25.load(str(directory / "bm25"), show_progress=False)
        except (OSError, ValueError, KeyError):
            return None
        return cls(generation, rows["ids"], rows["texts"], rows["metadatas"], retriever)


def _ordered(op):
    return lambda value, arg: value is not None and op(value, arg)


WHERE_OPS = {
    "$eq": operator.eq,
    "$ne": operator.ne,
    "$in": lambda value, arg: value in arg,
    "$nin": lambda value, arg: value not in arg,
    "$gte": _ordered(operator.ge),
    "$lte": _ordered(operator.le),
    "$gt": _ordered(operator.gt),
    "$lt": _ordered(operator.lt),
}


def matches(meta: dict, where: dict) -> bool:
    """Evaluate a Chroma-style where filter ($and/$or, $eq/$ne/$in/$nin/$gte/$lte) on one metadata dict."""
    for key, cond in where.items():
        if key == "$and":
            if not all(matches(meta, c) for c in cond):
                return False
        elif key == "$or":
            if not any(matches(meta, c) for c in cond):
                return False
        elif isinstance(cond, dict):
            if not all(WHERE_OPS[op](meta.get(key), arg) for op, arg in cond.items()):
                return False
        elif meta.get(key) != cond:
            return False
    return True
