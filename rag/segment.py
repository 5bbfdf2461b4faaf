"""Chinese word segmentation (jieba) for the keyword index, question terms and content words.

jieba is loaded on first use, once per process, with the field's terms added
(`rag/data/jieba_words.txt`). Text is width-folded and lower-cased first, so `（扩大）` and
`(扩大)`, `１２` and `12` give the same tokens.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

from rag.lexicon import jieba_words, lexicon
from rag.text import fold

_LOCK = threading.Lock()
_READY = False
TOKEN_OK = re.compile(r"[\w\u3400-\u9fff%]")
NOUN_FLAGS = ("n", "j", "l")


def _jieba():
    global _READY
    import jieba

    if _READY:
        return jieba
    with _LOCK:
        if not _READY:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            for word, freq in jieba_words():
                jieba.add_word(word, freq=freq)
            _READY = True
    return jieba


def prepare(text: str) -> str:
    return fold(text).lower()


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens without stopwords and punctuation: the keyword index's terms."""
    stop = lexicon().stopwords
    out: list[str] = []
    for token in _jieba().lcut_for_search(prepare(text)):
        token = token.strip()
        if token and token not in stop and TOKEN_OK.search(token):
            out.append(token)
    return out


def words(text: str) -> list[str]:
    """Plain jieba words (precise mode), punctuation dropped."""
    return [w for w in (t.strip() for t in _jieba().lcut(prepare(text))) if w and TOKEN_OK.search(w)]


def word_starts(text: str) -> list[int]:
    """Offsets where jieba words start (the text is folded first, which keeps its length)."""
    starts: list[int] = []
    pos = 0
    for word in _jieba().lcut(prepare(text)):
        starts.append(pos)
        pos += len(word)
    return starts


def query_tokens(text: str) -> list[str]:
    """Search terms of a question: words that only frame the question are dropped first."""
    lex = lexicon()
    kept = [w for w in _jieba().lcut(prepare(text)) if not lex.is_question_word(w)]
    return [t for t in tokenize(" ".join(kept)) if not lex.is_question_word(t)]


def tagged_words(text: str) -> list[tuple[str, str]]:
    """jieba words with their part-of-speech tags."""
    _jieba()
    import jieba.posseg

    return [(p.word, p.flag) for p in jieba.posseg.lcut(prepare(text)) if p.word.strip()]


def is_noun(flag: str) -> bool:
    return flag[:1] in NOUN_FLAGS or flag in ("vn", "eng", "nz", "x")


def content_nouns(text: str) -> list[str]:
    """The nouns of a text (two characters or more): the words that say what it is about."""
    stop = lexicon().stopwords
    return [w for w, flag in tagged_words(text) if is_noun(flag) and len(w) >= 2 and w not in stop]


@lru_cache(maxsize=8192)
def subwords(term: str) -> tuple[str, ...]:
    """Parts of a compound (听取意见 -> 听取, 意见) of two characters or more."""
    return tuple(p for p in tokenize(term) if p != term and len(p) >= 2)


def content_words(sentence: str) -> list[str]:
    """Words of two characters or more that are not stopwords or bare numbers."""
    stop = lexicon().stopwords
    return [t for t in tokenize(sentence) if len(t) >= 2 and t not in stop and not re.fullmatch(r"[\d.%]+", t)]
