"""Organisations of the indexed documents: their names and short forms, and the ones a question names.

Built from the document records (issuer of every dated document), so it follows the index: a
question may name an organisation in full (广州市花都区审计局), without its city (花都区审计局),
without the place suffix (花都审计局) or by its place alone (花都区); 我局/本局 mean the user's own
organisation (`RAG_ORG`). A name that looks like an organisation but matches none of the indexed
ones is reported as unknown, so the answer can say which organisations are indexed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from rag.lexicon import lexicon
from rag.metadata import title_years
from rag.schema import DocRecord
from rag.text import in_order, squash

NATIONAL = {"审计署": ("国家审计署",)}


@lru_cache(maxsize=1)
def _parts() -> tuple[str, str]:
    docs = lexicon().documents
    places = "|".join(sorted(docs["place_suffixes"], key=len, reverse=True))
    offices = "|".join(sorted((s for s in docs["org_suffixes"] if len(s) >= 2), key=len, reverse=True))
    return places, offices


ORG_OFFICES = ("审计局", "审计厅", "人民政府", "政府", "司法局", "财政局")
OFFICE_ENDS = "局厅"  # the last character of an office (咸宁局, 审计厅), never part of a place name before it
PLACE_CHAR = rf"(?:(?![{OFFICE_ENDS}])[\u4e00-\u9fff])"


@lru_cache(maxsize=1)
def org_like() -> re.Pattern[str]:
    """What reads like an organisation name: places then an office (南安市审计局), or a bare place
    name then an audit office or a government (杭州审计局)."""
    places, _ = _parts()
    offices = "|".join(ORG_OFFICES)
    # a place does not run over an office: 开封市审计局以市政府 is 开封市审计局, then 以市政府; nor over a
    # short one (`OFFICE_ENDS`): 花都局对区政府 is 花都局, then 对区政府
    return re.compile(rf"((?:(?:(?!{offices}){PLACE_CHAR}){{2,6}}?(?:{places})){{1,3}}|{PLACE_CHAR}{{2,4}}?)(?:人民)?({offices})")


@lru_cache(maxsize=1)
def office_like() -> re.Pattern[str]:
    """`org_like` with any office after a place (枫城市税务局, 沅州市教育局): what a question may name
    that is not indexed."""
    places, _ = _parts()
    offices = "|".join(ORG_OFFICES)
    return re.compile(rf"((?:{PLACE_CHAR}{{2,6}}?(?:{places})){{1,3}}|{PLACE_CHAR}{{2,4}}?)(?:人民)?({offices}|[\u4e00-\u9fff]{{1,6}}?[{OFFICE_ENDS}])")


def place_chain(issuer: str) -> tuple[list[str], str]:
    """(['广州市', '花都区'], '审计局') for 广州市花都区审计局; ([], '审计署') for a national body."""
    places, _ = _parts()
    match = re.fullmatch(rf"((?:[\u4e00-\u9fff]{{2,6}}?(?:{places}))*)(.+)", issuer)
    if not match:
        return [], issuer
    chain = re.findall(rf"[\u4e00-\u9fff]{{2,6}}?(?:{places})", match.group(1))
    return chain, match.group(2)


def _first_word_flag(text: str) -> tuple[str, str, int]:
    """(first word, its part-of-speech tag, number of words) of a text, by jieba."""
    from rag.segment import tagged_words

    tagged = tagged_words(text)
    return (tagged[0][0], tagged[0][1], len(tagged)) if tagged else ("", "", 0)


def _has_function_word(text: str) -> bool:
    """A word of `text` after its first is a particle, preposition, conjunction or pronoun (jieba's tags
    u*, p, c, r): no place name holds one."""
    from rag.segment import tagged_words

    return any(flag.startswith(("u", "p", "c", "r")) for _, flag in tagged_words(text)[1:])


def _unknown_name(text: str, start: int, end: int, boundaries: list[int], pattern: re.Pattern[str] | None = None) -> str | None:
    """The shortest organisation-like name that ends at `end`, starts at a word boundary and starts
    with a name (a place name, or an unknown word), not with a verb, a number or a preposition."""
    generic = lexicon().documents["generic_place_words"]
    for b in sorted((b for b in boundaries if start <= b < end), reverse=True):
        candidate = text[b:end]
        m = (pattern or org_like()).fullmatch(candidate)
        if not m:
            continue
        place = re.sub("人民$", "", m.group(1))
        if not place or (len(place) < 3 and place[-1] in "市县区省乡镇"):
            continue
        if any(g in place for g in generic if len(g) >= 2) or place[0] in "各本我该向在对由于请问某此全":
            continue
        if _has_function_word(place):
            continue  # 镇里说得等县审计局: a clause (说, 得, 等) before an office, not a place name
        word, flag, count = _first_word_flag(place)
        suffixed = bool(re.search(rf"(?:{_parts()[0]})$", place)) and len(place) >= 3
        # 南安市, 罗湖区: a place or proper name, not 内向市 cut from 日内向市; a rare place name with its
        # suffix may start with a character jieba reads alone (茗溪区: 茗/溪区, 嵘州市: 嵘/州市)
        # (栖梧县: 栖/梧县, jieba tags 栖 a verb morpheme, 芃 yg, 郯 g: a morpheme — any tag ending in g —,
        # not a word of its own such as 内)
        # (a time morpheme, 现 in 现以市政府, is no place)
        rare = suffixed and len(word) == 1 and (flag.startswith(("n", "x")) or flag.endswith("g")) and not flag.startswith("t")
        if not (flag.startswith(("ns", "nr", "nz", "nt")) or rare):
            continue
        if not suffixed and (m.group(2) not in ("审计局", "审计厅") or not (count == 1 and flag.startswith("ns"))):
            continue  # a bare place (杭州审计局) only before an audit office, and only a real place name
        return candidate
    return None


AUTONOMOUS = re.compile(r"^([\u4e00-\u9fff]{2,4}?)(?:[\u4e00-\u9fff]{1,3}族)+自治(州|县|旗)$")


def short_forms(issuer: str) -> set[str]:
    """The names a question may use for an organisation."""
    names = {issuer}
    names.update(NATIONAL.get(issuer, ()))
    chain, office = place_chain(issuer)
    if not chain:
        return names
    places, _ = _parts()
    last = chain[-1]
    bare = re.sub(rf"(?:{places})$", "", last)
    names.add(last + office)  # 花都区审计局
    if len(bare) >= 2:
        names.add(bare + office)  # 花都审计局
    autonomous = AUTONOMOUS.match(last)
    if autonomous:  # 雪岭藏族自治州审计局 -> 雪岭州审计局, 雪岭审计局
        names.update({autonomous.group(1) + autonomous.group(2) + office, autonomous.group(1) + office})
    if len(chain) > 1:
        names.add("".join(chain[-2:]) + office)
    if office.endswith("人民政府"):
        names.add(last + "政府")
        names.add("".join(chain) + "政府")
    if office.endswith("人民政府办公室"):  # 金安区政府办, 六安市金安区政府办
        names.update({last + "政府办", last + "政府办公室", "".join(chain) + "政府办"})
    return {n for n in names if len(n) >= 3}


def organisation_names(text: str) -> list[str]:
    """Organisation names in a text (南安市审计局, 广州市花都区审计局): place names, then an office."""
    from rag.segment import word_starts

    folded = squash(text)
    out: list[str] = []
    boundaries: list[int] | None = None
    for m in org_like().finditer(folded):
        if boundaries is None:
            boundaries = word_starts(folded)
        name = _unknown_name(folded, m.start(), m.end(), boundaries)
        if name:
            out.append(name)
    return out


@dataclass(frozen=True)
class OrgEntry:
    issuer: str  # the fullest name the documents give
    names: frozenset[str]
    places: frozenset[str]
    years: tuple[int, ...]
    titles: tuple[str, ...]
    issuers: frozenset[str] = frozenset()  # every form the documents' metadata uses (云塘区审计局, 泓州市云塘区审计局)

    @property
    def all_issuers(self) -> frozenset[str]:
        return self.issuers | {self.issuer}


@dataclass(frozen=True)
class OrgMention:
    """What a question says about organisations."""

    known: tuple[OrgEntry, ...] = ()
    unknown: tuple[str, ...] = ()
    own: bool = False  # 我局 / 本局
    by_place: bool = False  # named by place only (花都区), a weaker signal

    @property
    def named(self) -> bool:
        return bool(self.known or self.unknown)


@dataclass(frozen=True)
class OrgCatalog:
    entries: tuple[OrgEntry, ...]
    own_issuer: str | None = None
    _names: dict[str, tuple[OrgEntry, ...]] = field(default_factory=dict)
    _places: dict[str, tuple[OrgEntry, ...]] = field(default_factory=dict)

    @property
    def several(self) -> bool:
        """More than one organisation's dated documents are indexed (answers then say whose)."""
        return len(self.entries) > 1

    def issuers(self) -> list[str]:
        return [e.issuer for e in self.entries]

    def entry(self, issuer: str | None) -> OrgEntry | None:
        return next((e for e in self.entries if issuer in e.all_issuers), None) if issuer else None

    def resolve(self, name: str) -> OrgEntry | None:
        """The indexed organisation a name (full or short) stands for."""
        key = squash(name)
        found = self._names.get(key)
        return found[0] if found and len(found) == 1 else None

    def _whole_place(self, text: str, start: int, end: int) -> str:
        """text[start:end], begun where an indexed place name begins when the cut fell inside it
        (jieba reads 淇岑市 as 淇 / 岑市: the unknown 淇岑市市场监督管理局, not 岑市市场监督管理局)."""
        for place in sorted(self._places, key=len, reverse=True):
            at = text.rfind(place, max(0, start - len(place) + 1), start + len(place) - 1)
            if at != -1 and at < start < at + len(place):
                return text[at:end]
        return text[start:end]

    def mentions(self, question: str) -> OrgMention:
        text = squash(question)
        known: list[OrgEntry] = []
        spans: list[tuple[int, int]] = []
        for name in sorted(self._names, key=len, reverse=True):
            for m in re.finditer(re.escape(name), text):
                if any(s <= m.start() < e for s, e in spans):
                    continue
                spans.append(m.span())
                for entry in self._names[name]:
                    if entry not in known:
                        known.append(entry)
        by_place = False
        if not known:
            for place in sorted(self._places, key=len, reverse=True):
                if place in text:
                    known.extend(e for e in self._places[place] if e not in known)
                    by_place = True
                    break
        unknown: list[str] = []
        boundaries: list[int] | None = None
        for m in office_like().finditer(text):
            if any(s <= m.start() < e or s < m.end() <= e for s, e in spans):
                continue
            if boundaries is None:
                from rag.segment import word_starts

                boundaries = word_starts(text)
            candidate = _unknown_name(text, m.start(), m.end(), boundaries, office_like())
            if candidate is None:
                continue
            candidate = self._whole_place(text, m.end() - len(candidate), m.end())
            if any(candidate in n or n in candidate for n in self._names):
                continue
            full = next((n for n in self._names if abbreviates(candidate, n)), None)
            if full is not None:  # 湖阳市市场监管局 for 湖阳市市场监督管理局
                known.extend(e for e in self._names[full] if e not in known)
                by_place = False
                continue
            unknown.append(candidate)
        own = any(word in text for word in lexicon().cue_words["own_org"])
        if own and self.own_issuer:
            own_entry = self.entry(self.own_issuer)
            if own_entry is not None and own_entry not in known:
                known.append(own_entry)
        return OrgMention(tuple(known), tuple(dict.fromkeys(unknown)), own, by_place)


def abbreviates(short: str, name: str) -> bool:
    """`short` keeps the characters of `name` in order, beginning and ending with its own (市场监管局 of
    市场监督管理局): how Chinese names of offices are shortened."""
    return len(short) < len(name) and in_order(short).fullmatch(name) is not None


def fullest_forms(issuers: set[str]) -> dict[str, str]:
    """Each issuer and the fullest form of the same organisation among them: 云塘区审计局 and
    泓州市云塘区审计局 are one organisation (one document's metadata gives the city, another's not)."""
    places = _parts()[0]
    out: dict[str, str] = {}
    for issuer in issuers:
        chain, _ = place_chain(issuer)
        longer = [
            other
            for other in issuers
            if chain and other != issuer and other.endswith(issuer)
            and re.fullmatch(rf"(?:[\u4e00-\u9fff]{{2,6}}?(?:{places}))+", other[: -len(issuer)])
        ]
        out[issuer] = max(longer, key=len) if longer else issuer
    return out


def build_org_catalog(records: list[DocRecord] | tuple[DocRecord, ...], own: str | None = None) -> OrgCatalog:
    """Every issuer of a dated document (reports, notices, other), with its short forms, years and titles."""
    by_issuer: dict[str, list[DocRecord]] = {}
    forms: dict[str, set[str]] = {}
    canonical = fullest_forms({r.issuer for r in records if r.doc_type != "law" and r.issuer})
    for record in records:
        if record.doc_type == "law" or not record.issuer:
            continue
        issuer = canonical[record.issuer]
        by_issuer.setdefault(issuer, []).append(record)
        forms.setdefault(issuer, set()).add(record.issuer)
    entries: list[OrgEntry] = []
    names: dict[str, list[OrgEntry]] = {}
    places: dict[str, list[OrgEntry]] = {}
    for issuer, docs in sorted(by_issuer.items()):
        chain, _ = place_chain(issuer)
        place_names = set()
        if chain:
            last = chain[-1]
            place_names.add(squash(last))
            bare = re.sub(rf"(?:{_parts()[0]})$", "", last)
            if len(bare) >= 2:
                place_names.add(bare)
        entry = OrgEntry(
            issuer=issuer,
            names=frozenset(squash(n) for n in short_forms(issuer)),
            places=frozenset(place_names),
            years=tuple(sorted({d.year for d in docs if d.year} | {y for d in docs for y in title_years(d.title)})),
            titles=tuple(d.title for d in docs),
            issuers=frozenset(forms[issuer]),
        )
        entries.append(entry)
        for name in entry.names:
            names.setdefault(name, []).append(entry)
        for place in entry.places:
            places.setdefault(place, []).append(entry)
    own_issuer = None
    if own:
        wanted = squash(own)
        own_issuer = next((e.issuer for e in entries if wanted in e.names), None) or own
    return OrgCatalog(
        tuple(entries),
        own_issuer,
        {k: tuple(v) for k, v in names.items()},
        {k: tuple(v) for k, v in places.items()},
    )
