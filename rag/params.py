"""Typed parameter objects loaded from data files: what `make calibrate` fits and `rag eval` can sweep.

- RetrievalParams: rag/data/retrieval_params.json (fusion weights, boosts, BM25 constants);
- AnswerParams: the "params" section of rag/data/answer_model.json (term weights, composition).
A leaf module: the code reads named values from here, never literals of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

from rag.lexicon import DATA_DIR

RETRIEVAL_PARAMS_FILE = DATA_DIR / "retrieval_params.json"


def _known(cls, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class RetrievalParams:
    """Fusion of the word, character and vector rankings (weighted reciprocal rank) and the boosts."""

    word_weight: float = 0.7
    char_weight: float = 0.2
    dense_weight: float = 0.2
    rrf_k: int = 10
    report_boost: float = 1.0  # passages of dated documents when the question points to a report
    year_boost: float = 1.3  # passages of a dated document of the year the question names
    law_boost: float = 2.0  # passages of a law the question names (a boost, not a filter: 国家宪法日 is not 宪法)
    bm25_k1: float = 1.2  # bm25s's term-frequency saturation
    bm25_b: float = 0.75  # bm25s's length normalisation
    scope_weight: float = 1.0  # keyword weight of the words naming an organisation, a year or a named law (filters and boosts act on them already)
    front_matter_documents: int = 2  # documents whose 标题/落款 a title or signature question also gets
    quantity_boost: float = 1.0  # passages that state a quantity in the unit a count question asks for (几个 -> 个, 项, 件)
    period_boost: float = 1.0  # passages that state a period (十日, 六个月) when a question asks how long without a unit (多久, 期限)
    sentence_weight: float = 0.0  # the sentence-level semantic ranking (rag/sentence_search.py); 0 leaves it out

    @classmethod
    def load(cls, path: Path | None = None) -> RetrievalParams:
        try:
            data = json.loads(Path(path or RETRIEVAL_PARAMS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls(**_known(cls, data.get("params", data)))


@lru_cache(maxsize=1)
def bm25_constants() -> tuple[float, float]:
    params = RetrievalParams.load()
    return params.bm25_k1, params.bm25_b


@dataclass(frozen=True)
class AnswerParams:
    """Question-term weights and how an answer is composed around the best sentence."""

    frame_weight: float = 0.3  # a question's frame words and single characters count for less
    name_weight: float = 0.2  # the names a question scopes itself with (a law, an organisation, a year)
    semantic_shortlist: int = 10  # sentences the encoder compares with the question (40 measured: same CV accuracy, 4-5x slower with a cold sentence cache)
    second_sentence_ratio: float = 0.75  # a runner-up at least this likely (relative to the best) is given too
    extra_gain: float = 0.2  # a further sentence must add this share of the question's term weight
    part_options: int = 15  # a part's own best sentence is added when it is among the question's leading candidates
    part_ratio: float = 0.1  # ... at least this likely relative to the best
    count_runners_up: int = 6  # candidates searched for a count in the asked unit
    count_ratio: float = 0.25  # ... at least this likely relative to the best
    list_heading_coverage: float = 0.5  # a report section the list question names by its heading
    max_article_chars: int = 500  # an article answered whole up to this length
    neighbour_span: int = 260  # a lead sentence takes the next one within this span
    short_lead: int = 24  # a sentence shorter than this is a lead
    front_matter_chars: int = 240  # a title or signature block answered whole up to this length
    year_phrase_chars: int = 3  # characters after a year that must also occur (2023年度区级…)

    @classmethod
    def from_dict(cls, data: dict | None) -> AnswerParams:
        return cls(**_known(cls, data or {}))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
