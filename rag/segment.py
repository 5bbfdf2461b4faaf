"""Chinese word segmentation (jieba) for the keyword index, question terms and content words.

jieba is loaded on first use, once per process, with the field's terms added
(`rag/data/jieba_words.txt`). Text is width-folded and lower-cased first, so `（扩大）` and
`(扩大)`, `１２` and `12` give the same tokens.

Loading jieba's dictionary takes ~0.7-1.2 s (a 600k-entry prefix table) and its part-of-speech
table another ~0.6 s, for a question that looks up a few hundred entries. So the dictionary is
written once per machine to an SQLite file (jieba's frequencies after the field's terms are added,
its total, and the POS tags of its dictionary file), and a process reads it entry by entry
(`LazyDictionary`), remembering what it read. jieba and jieba.posseg run unchanged on top of it,
so words and tags are exactly those of the full dictionary. Bulk segmentation (`rag ingest`)
loads the full dictionary instead (`use_full_dictionary`): there the lookups would cost more
than the load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import sys
import threading
from functools import lru_cache
from pathlib import Path

from rag.lexicon import JIEBA_WORDS_FILE, jieba_words, lexicon
from rag.text import CN_NUM, NOT_COUNTING, chinese_number, fold, fold_lower

_LOCK = threading.RLock()
_READY: str | None = None  # None, "lazy" or "full"
TOKEN_OK = re.compile(r"[\w\u3400-\u9fff%]")
NOUN_FLAGS = ("n", "j", "l")
DICTIONARY_FORMAT = 1

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the dictionary, entry by entry


def dictionary_file() -> Path:
    """The per-machine SQLite copy of jieba's dictionary, named for everything its content depends on."""
    import jieba

    from rag.config import cache_dir

    main = Path(jieba.__file__).parent / "dict.txt"
    digest = hashlib.sha1(JIEBA_WORDS_FILE.read_bytes()).hexdigest()[:12]
    return cache_dir() / f"jieba-{jieba.__version__}-{main.stat().st_size}-{digest}-v{DICTIONARY_FORMAT}.sqlite"


class LazyDictionary:
    """jieba's entries read from the SQLite file on first use and remembered (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self._absent: set[str] = set()
        self.rows: dict[str, tuple[int, str | None]] = {}
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        self.total = int(meta["total"])
        self.force_split = [w for w in meta.get("force_split", "").split("\n") if w]

    def row(self, word: str) -> tuple[int, str | None] | None:
        """(frequency, tag) of an entry (a prefix has frequency 0 and no tag); None when jieba has no such entry."""
        found = self.rows.get(word)
        if found is not None or word in self._absent:
            return found
        with self._lock:
            fetched = self._conn.execute("SELECT freq, tag FROM words WHERE word = ?", (word,)).fetchone()
        if fetched is None:
            self._absent.add(word)
            return None
        self.rows[word] = found = (fetched[0], fetched[1])
        return found


class _LazyTable(dict):
    """A dict that fills itself from a LazyDictionary: what jieba's code does with FREQ and the tag table works unchanged."""

    def __init__(self, source: LazyDictionary, column: int) -> None:
        super().__init__()
        self._source = source
        self._column = column

    def _fetch(self, key) -> bool:
        row = self._source.row(key) if isinstance(key, str) else None
        if row is None or row[self._column] is None:
            return False
        dict.__setitem__(self, key, row[self._column])
        return True

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or self._fetch(key)

    def __missing__(self, key):
        if self._fetch(key):
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def get(self, key, default=None):
        if dict.__contains__(self, key) or self._fetch(key):
            return dict.__getitem__(self, key)
        return default


def write_dictionary(path: Path) -> None:
    """Write the loaded full dictionary (after the field's terms were added) to `path`, whole or not at all."""
    import jieba

    path.parent.mkdir(parents=True, exist_ok=True)
    tags: dict[str, str] = {}
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as f:
        for line in f:  # as jieba.posseg reads it: word, frequency, tag
            parts = line.strip().split(" ")
            if len(parts) == 3:
                tags[parts[0]] = parts[2]
    force_split = [w for w, freq in jieba_words() if freq == 0]
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("CREATE TABLE words (word TEXT PRIMARY KEY, freq INTEGER NOT NULL, tag TEXT) WITHOUT ROWID")
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.executemany("INSERT INTO words VALUES (?, ?, ?)", ((w, f, tags.get(w)) for w, f in jieba.dt.FREQ.items()))
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [("total", str(jieba.dt.total)), ("force_split", "\n".join(force_split))])
        conn.commit()
    finally:
        conn.close()
    os.replace(tmp, path)


def _write_copy(path: Path) -> None:
    """Write the SQLite copy for the next processes; a read-only cache only means the full dictionary every time."""
    try:
        write_dictionary(path)
    except (OSError, sqlite3.Error) as exc:
        log.info("could not write the jieba dictionary cache %s: %s", path, exc)


def _install_lazy(path: Path) -> None:
    """Point jieba (and jieba.posseg, imported without reading its 350k-line tag file) at the SQLite dictionary."""
    import jieba

    source = LazyDictionary(path)
    tokenizer = jieba.dt
    tokenizer.FREQ = _LazyTable(source, 0)
    tokenizer.total = source.total
    tokenizer.initialized = True
    for word in source.force_split:
        jieba.finalseg.add_force_split(word)
    original = tokenizer.dictionary
    tokenizer.dictionary = os.devnull  # jieba.posseg reads the tags of `dictionary` when imported
    try:
        import jieba.posseg
    finally:
        tokenizer.dictionary = original
    jieba.posseg.dt.word_tag_tab = _LazyTable(source, 1)


def _load_full() -> None:
    import jieba

    jieba.initialize()
    for word, freq in jieba_words():
        jieba.add_word(word, freq=freq)


def _jieba():
    global _READY
    import jieba

    if _READY:
        return jieba
    with _LOCK:
        if not _READY:
            jieba.setLogLevel(logging.WARNING)
            path = dictionary_file()
            if not path.exists():
                _load_full()
                _write_copy(path)
                _READY = "full"
            else:
                _install_lazy(path)
                _READY = "lazy"
    return jieba


def use_full_dictionary() -> None:
    """Load jieba's whole dictionary now (bulk segmentation: `rag ingest`); same words, faster per lookup."""
    global _READY
    with _LOCK:
        if _READY == "full":
            return
        import jieba

        jieba.setLogLevel(logging.WARNING)
        if _READY == "lazy":  # start again from jieba's own dictionary
            jieba.dt.initialized = False
            jieba.dt.FREQ, jieba.dt.total = {}, 0
        _load_full()
        if "jieba.posseg" in sys.modules:
            import jieba.posseg

            jieba.posseg.dt.load_word_tag(jieba.dt.get_dict_file())
        path = dictionary_file()
        if not path.exists():
            _write_copy(path)
        _READY = "full"


# ---------------------------------------------------------------- segmentation


def prepare(text: str) -> str:
    return fold(text).lower()


@lru_cache(maxsize=1)
def measure_units() -> frozenset[str]:
    """The lexicon's units a number is followed by: counts, times and amounts."""
    lex = lexicon()
    return frozenset(lex.count_units + lex.time_units + lex.amount_units)


@lru_cache(maxsize=1)
def _numeral_before_unit() -> re.Pattern[str]:
    """A Chinese numeral before a unit of the lexicon or a date's 月/日/号, not an ordinal (第三条) or
    after a demonstrative (这一项, 每一年) or 上/下/前/后 (上一年度)."""
    units = sorted(measure_units() | {"号"}, key=len, reverse=True)
    ahead = "|".join(re.escape(u) for u in units)
    return re.compile(rf"(?<![{NOT_COUNTING}上下前后{CN_NUM}])([{CN_NUM}]+)(?=(?:余|多)?(?:{ahead}))")


def _in_digits(m: re.Match[str]) -> str:
    numeral = m.group(1)
    tail = "万" if numeral.endswith("万") and len(numeral) > 1 else ""  # 五万元 -> 5万元, as a report writes it
    value = chinese_number(numeral[: len(numeral) - len(tail)])
    return numeral if value is None else f"{value}{tail}"


def figures_in_digits(text: str) -> str:
    """Chinese numerals before a unit written in digits (十五日 -> 15日, 十二月三十一日 -> 12月31日,
    二〇二四年 -> 2024年): laws write their figures in Chinese numerals, reports and questions mostly in
    digits; the keyword terms of both sides are made from the same form."""
    return _numeral_before_unit().sub(_in_digits, text) if re.search(f"[{CN_NUM}]", text) else text


@lru_cache(maxsize=8192)
def terms_form(text: str) -> str:
    """A text as keyword terms are looked for in it: folded, lower-cased, figures in digits (the terms
    of a question about 十五日 are 15 and 日内, and so must be the passage's text they are found in)."""
    return figures_in_digits(fold_lower(text))


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens without stopwords and punctuation: the keyword index's terms (figures
    in digits, `figures_in_digits`)."""
    stop = lexicon().stopwords
    out: list[str] = []
    for token in _jieba().lcut_for_search(figures_in_digits(prepare(text))):
        token = token.strip()
        if token and token not in stop and TOKEN_OK.search(token):
            out.append(token)
    return out


def words(text: str) -> list[str]:
    """Plain jieba words (precise mode), punctuation dropped."""
    return [w for w in (t.strip() for t in _jieba().lcut(prepare(text))) if w and TOKEN_OK.search(w)]


def polar_words(text: str) -> list[str]:
    """`words`, with a word jieba's HMM made up around a negation (时不向, 后不再) split again by the
    dictionary alone (时 / 不 / 向): a negation inside a made-up word is still one."""
    negating = lexicon().modality["fused_negation_prefixes"]  # 不 未 没 无 非
    out: list[str] = []
    for word in words(text):
        if len(word) > 2 and any(ch in word[1:] for ch in negating):
            out.extend(_jieba().lcut(word, HMM=False))
        else:
            out.append(word)
    return out


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
    return list(_tagged(text))


@lru_cache(maxsize=64)  # a question is tagged by several of its analyses, at ~1 ms each (HMM)
def _tagged(text: str) -> tuple[tuple[str, str], ...]:
    _jieba()
    import jieba.posseg

    return tuple((p.word, p.flag) for p in jieba.posseg.lcut(prepare(text)) if p.word.strip())


def is_noun(flag: str) -> bool:
    return flag[:1] in NOUN_FLAGS or flag in ("vn", "eng", "nz", "x")


def content_nouns(text: str) -> list[str]:
    """The nouns of a text (two characters or more): the words that say what it is about."""
    stop = lexicon().general_words
    return [w for w, flag in tagged_words(text) if is_noun(flag) and len(w) >= 2 and w not in stop]


@lru_cache(maxsize=8192)
def subwords(term: str) -> tuple[str, ...]:
    """Parts of a compound (听取意见 -> 听取, 意见) of two characters or more."""
    return tuple(p for p in tokenize(term) if p != term and len(p) >= 2)


def content_words(sentence: str) -> list[str]:
    """Words of two characters or more that are not general words (stopwords, 必须, 直接 …) or bare numbers."""
    stop = lexicon().general_words
    return [t for t in tokenize(sentence) if len(t) >= 2 and t not in stop and not re.fullmatch(r"[\d.%]+", t)]
