"""A learned table from question words to the passage words that answer them (起诉 -> 诉讼, 窗口 -> 告知).

People ask in their own words; the law says 提起诉讼 where they say 去起诉. The table is fitted on the
training question sets (`eval/fit_expansion.py`, `make calibrate`): for each answerable question, the
question words its answering passage lacks, and the passage words the question lacks. A pair is kept
when it recurs (at least `min_pair` questions) and the passage word is far likelier in the answers of
questions with that word than in answers at large (`min_lift`); each question word keeps its `top`
pairs, with P(passage word | question word). The word side of retrieval adds the passage words with
weight `weight` × that probability. The table and its cross-validated report are data
(`rag/data/expansion.json`).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.lexicon import DATA_DIR, lexicon

EXPANSION_FILE = DATA_DIR / "expansion.json"


@dataclass(frozen=True)
class FitOptions:
    min_pair: int = 2  # questions a pair must occur in
    min_docs: int = 1  # answering documents a pair must occur in
    min_lift: float = 5.0  # P(passage word | question word) over P(passage word in an answer)
    top: int = 3  # passage words kept per question word


@dataclass(frozen=True)
class WordExpansion:
    table: dict[str, tuple[tuple[str, float], ...]]
    weight: float = 1.0
    report: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> WordExpansion | None:
        """The fitted table, or None when there is none (a missing or unreadable file, weight 0)."""
        try:
            data = json.loads(Path(path or EXPANSION_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        table = {q: tuple((w, float(p)) for w, p in pairs) for q, pairs in data.get("table", {}).items()}
        weight = float(data.get("weight", 0.0))
        return cls(table, weight, data.get("report", {})) if table and weight > 0 else None

    def extra(self, tokens: Sequence[str]) -> dict[str, float]:
        """Passage words to add to a question's word search, with their keyword weights."""
        asked = set(tokens)
        out: dict[str, float] = {}
        for word in question_words(tokens):
            for passage_word, p in self.table.get(word, ()):
                if passage_word not in asked:
                    out[passage_word] = max(out.get(passage_word, 0.0), self.weight * p)
        return out

    def to_dict(self) -> dict:
        return {"weight": self.weight, "table": {q: [list(pair) for pair in pairs] for q, pairs in sorted(self.table.items())}, "report": self.report}


def question_words(tokens: Iterable[str]) -> set[str]:
    """The words of a question the table is keyed on: two characters or more, not stopwords or figures."""
    stop = lexicon().stopwords
    return {t for t in tokens if len(t) >= 2 and t not in stop and not t.isdigit()}


def fit_table(pairs: Iterable[tuple[str, Iterable[str], Iterable[str]]], options: FitOptions = FitOptions()) -> dict[str, tuple[tuple[str, float], ...]]:
    """The table from (document, question tokens, answering-passage tokens) triples."""
    asked: Counter[str] = Counter()
    together: Counter[tuple[str, str]] = Counter()
    documents: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    in_answers: Counter[str] = Counter()
    total = 0
    for document, q_tokens, p_tokens in pairs:
        passage = set(p_tokens)
        if not passage:
            continue
        total += 1
        in_answers.update(passage)
        question = question_words(q_tokens)
        offered = [w for w in passage - question if len(w) >= 2]
        for word in question - passage:
            asked[word] += 1
            for passage_word in offered:
                together[word, passage_word] += 1
                documents[word, passage_word].add(document)
    table: defaultdict[str, list[tuple[str, float]]] = defaultdict(list)
    for (word, passage_word), n in together.items():
        if n < options.min_pair or len(documents[word, passage_word]) < options.min_docs:
            continue
        p = n / asked[word]
        if p / (in_answers[passage_word] / total) >= options.min_lift:
            table[word].append((passage_word, round(p, 4)))
    return {w: tuple(sorted(v, key=lambda x: (-x[1], x[0]))[: options.top]) for w, v in sorted(table.items())}
