"""List the stopwords of bm25s's Chinese list that are informative in legal text, for
`rag/data/lexicon.toml` ([stopwords] informative).

A stopword is informative when it occurs in at least 0.5 % and at most 10 % of the articles of the
laws and regulations in ../shared/corpus/regulations: frequent enough to be asked about (直接向人民法院
提起诉讼, 个人, 重大, 立即), rare enough that BM25 gives it weight. Words in more articles (或者, 规定, 其他)
stay stopwords. Run: python eval/stopword_keep.py [REGULATIONS_DIR]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.lexicon import _bm25s_stopwords  # noqa: E402

ARTICLE = re.compile(r"\n(?=第[一二三四五六七八九十百零]+条)")
LOW, HIGH = 0.005, 0.10


def informative(folder: Path) -> list[str]:
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.md")))
    articles = ARTICLE.split(text)
    out = []
    for word in sorted(_bm25s_stopwords()):
        if len(word) < 2 or not re.fullmatch(r"[\u4e00-\u9fff]+", word):
            continue
        share = sum(1 for a in articles if word in a) / len(articles)
        if LOW <= share <= HIGH:
            out.append(word)
    return out


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "corpus" / "regulations"
    words = informative(folder)
    print(f"informative = {words!r}".replace("'", '"'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
