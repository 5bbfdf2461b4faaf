"""The word lists of `rag/data/lexicon.toml` and the law short forms of `aliases.toml` files, loaded once.

A leaf module: lists are data with their purpose written beside them, never literals in the code.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
LEXICON_FILE = DATA_DIR / "lexicon.toml"
JIEBA_WORDS_FILE = DATA_DIR / "jieba_words.txt"


def alternation(words: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    """A regex alternation of the words, longest first (a longer word wins where one starts another)."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


@dataclass(frozen=True)
class Lexicon:
    stopwords: frozenset[str]  # not search terms
    general_words: frozenset[str]  # say little of what a sentence claims: the stopwords and the informative ones
    frame_words: frozenset[str]
    generic_words: frozenset[str]
    ask_prefix: re.Pattern[str]
    cues: dict[str, re.Pattern[str]]
    cue_words: dict[str, tuple[str, ...]]
    count_units: tuple[str, ...]
    time_units: tuple[str, ...]
    amount_units: tuple[str, ...]
    same_units: tuple[tuple[str, ...], ...]
    counted_as: dict[str, tuple[str, ...]]
    modality: dict[str, tuple[str, ...]]
    date_events: dict[str, tuple[str, ...]]
    documents: dict[str, tuple[str, ...]]
    labels: dict[str, str]
    front_matter: dict[str, tuple[str, ...]]

    def is_question_word(self, token: str) -> bool:
        return token in self.frame_words or bool(self.ask_prefix.match(token))

    def units_like(self, unit: str) -> tuple[str, ...]:
        """Units that count the same thing as `unit` (名 ~ 人 ~ 位): every group it is in, so that
        件 ~ 个 and 件 ~ 起 without 个 ~ 起 (几个项目 is not answered by 一起复议案件); and the units a
        count in `unit` may be stated in (几次 ~ 2件)."""
        return tuple(dict.fromkeys([u for group in self.same_units if unit in group for u in group] + [unit, *self.counted_as.get(unit, ())]))

    def cue(self, name: str, text: str) -> bool:
        return bool(self.cues[name].search(text))


def _bm25s_stopwords() -> frozenset[str]:
    """bm25s's Chinese stopwords, read from its module file: importing the bm25s package loads scipy
    (~0.2 s), which a question does not otherwise need."""
    import importlib.util
    import sys

    loaded = sys.modules.get("bm25s.stopwords")
    if loaded is None:
        package = importlib.util.find_spec("bm25s")
        assert package is not None and package.origin is not None
        spec = importlib.util.spec_from_file_location("_bm25s_stopwords", Path(package.origin).parent / "stopwords.py")
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
    return frozenset(loaded.STOPWORDS_CHINESE)


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The lexicon (read once per process)."""
    with open(LEXICON_FILE, "rb") as f:
        data = tomllib.load(f)
    stop = data["stopwords"]
    general = (_bm25s_stopwords() | frozenset(stop["extra"])) - frozenset(stop["keep"])
    stopwords = general - frozenset(stop.get("informative", ()))
    question = data["question"]
    cues = data["cues"]
    # 几号 names a day unless an order, document or house number (第几号令, 路几号, 几号楼): the time cues skip those
    not_day = f"(?<![{re.escape(cues['not_day_before'])}])几号(?![{re.escape(cues['not_day_after'])}])"
    cue_patterns = {
        name: re.compile(alternation(words).replace("几号", not_day) if name in ("time", "date", "day") else alternation(words))
        for name, words in cues.items()
        if not name.startswith("not_day")
    }
    # A yes/no question ends with 吗, it does not merely contain it.
    cue_patterns["yes_no"] = re.compile(alternation([w for w in cues["yes_no"] if w != "吗"]) + r"|吗[？?。]?$")
    cue_patterns["lead_in"] = re.compile("^(?:" + alternation(cues["lead_in"]) + ")")
    cue_patterns["institution"] = re.compile("(?:" + alternation(cues["institution"]) + ")[的之]?$")
    cue_patterns["followup_start"] = re.compile("^(?:" + alternation(cues["followup_start"]) + ")")
    cue_patterns["followup_end"] = re.compile("(?:" + alternation(cues["followup_end"]) + r")[？?。!！]*$")
    measure = data["measure"]
    documents = data["documents"]
    return Lexicon(
        stopwords=stopwords,
        general_words=general,
        frame_words=frozenset(question["frame"]),
        # 我局/局里/咱局 point at the user's organisation (the scope does that), they name no content
        generic_words=frozenset(question["generic"]) | frozenset(cues["own_org"]),
        ask_prefix=re.compile("^(?:" + alternation(question["ask_prefixes"]) + ")"),
        cues=cue_patterns,
        cue_words={name: tuple(words) for name, words in cues.items()},
        count_units=tuple(measure["count"]),
        time_units=tuple(measure["time"]),
        amount_units=tuple(measure["amount"]),
        same_units=tuple(tuple(g) for g in measure["same"]),
        counted_as={k: tuple(v) for k, v in measure.get("counted_as", {}).items()},
        modality={name: tuple(words) for name, words in data["modality"].items()},
        date_events={name: tuple(words) for name, words in data["date_events"].items()},
        documents={k: tuple(v) for k, v in documents.items() if isinstance(v, list)},
        labels={k: v for k, v in documents.items() if isinstance(v, str)},
        front_matter={k: tuple(v) for k, v in data["front_matter"].items()},
    )


def jieba_words() -> list[tuple[str, int]]:
    """(word, frequency) pairs for jieba's user dictionary."""
    words: list[tuple[str, int]] = []
    for line in JIEBA_WORDS_FILE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, freq = line.partition(" ")
        words.append((word, int(freq or 20000)))
    return words


def label(name: str) -> str:
    """A section label (标题, 落款, 导语 ...) by its key in the lexicon."""
    return lexicon().labels[f"{name}_label"]


# ---------------------------------------------------------------- law short forms


class AliasError(ValueError):
    """An aliases file that cannot be read; the message is Chinese."""


def read_aliases(path: Path) -> dict[str, str]:
    """Short form -> the end of the full title it stands for, from an `aliases.toml` file.

    Format::

        [laws]
        "政务处分法" = "公职人员政务处分法"   # a title that ends with the right side
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise AliasError(f"无法读取别名文件 {path}：{exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AliasError(f"别名文件 {path} 格式不正确：{exc}") from exc
    laws = data.get("laws", {})
    if not isinstance(laws, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in laws.items()):
        raise AliasError(f"别名文件 {path} 的 [laws] 应为 \"简称\" = \"全称结尾\" 的形式")
    return {k.strip(): v.strip() for k, v in laws.items() if k.strip() and v.strip()}
