"""rag.text: width folding, Chinese numbers, sentences, the comparison form of answers."""

from __future__ import annotations

import pytest

from rag.text import (
    article_label,
    char_ngrams,
    chinese_number,
    chinese_numeral,
    fold,
    normalize_question,
    sentence_spans,
    split_sentences,
    squash,
    years_in,
)


def test_fold_makes_full_width_half_width_and_keeps_the_length():
    text = "全年办理审计项目１２个（扩大）ＡＢ　【附件】〔2024〕"
    folded = fold(text)
    assert folded == "全年办理审计项目12个(扩大)AB [附件][2024]"
    assert len(folded) == len(text)  # a span found in the folded text is the same span in the original
    assert fold("审计机关。，；、") == "审计机关。,;、"  # 。 and 、 have no full-width ASCII form: they stay


@pytest.mark.parametrize(
    "text, number",
    [("四十四", 44), ("一百零九", 109), ("二〇二三", 2023), ("44", 44), ("１２", 12), ("十", 10), ("十五", 15), ("两千", 2000), ("一万零一", 10001)],
)
def test_chinese_number(text, number):
    assert chinese_number(text) == number


@pytest.mark.parametrize("text", ["", "  ", "abc", "第五"])
def test_chinese_number_rejects_what_is_not_a_number(text):
    assert chinese_number(text) is None


def test_chinese_numeral_round_trip():
    for n in range(0, 10000):
        assert chinese_number(chinese_numeral(n)) == n, (n, chinese_numeral(n))
    assert [chinese_numeral(n) for n in (10, 11, 44, 101, 110, 1010)] == ["十", "十一", "四十四", "一百零一", "一百一十", "一千零一十"]
    assert article_label(44) == "第四十四条" and article_label(109) == "第一百零九条"
    with pytest.raises(ValueError):
        chinese_numeral(-1)


def test_sentence_spans_split_only_at_sentence_ends_and_line_ends():
    text = "第一条 为了加强审计监督，制定本法。第二条 国家实行审计监督制度！对吗？\n末尾没有句号"
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["第一条 为了加强审计监督，制定本法。", "第二条 国家实行审计监督制度！", "对吗？", "末尾没有句号"]
    quoted = "他说：“按期整改。”然后离开；完"
    assert [quoted[s:e] for s, e in sentence_spans(quoted)] == ["他说：“按期整改。”", "然后离开；", "完"]
    # A window of a longer text: spans are offsets into the whole text, blanks trimmed.
    padded = "前文。  甲句。乙句。  后文。"
    start = padded.index("甲")
    spans = sentence_spans(padded, start, padded.index("后"))
    assert [padded[s:e] for s, e in spans] == ["甲句。", "乙句。"]
    assert split_sentences("  甲。  乙；\n\n 丙") == ["甲。", "乙；", "丙"]


def test_squash_and_question_normalisation():
    assert squash(" １２ 个\n审计 项目 ") == "12个审计项目"
    assert normalize_question("審計法  第５條") == "审计法 第5条"  # traditional to simplified, widths folded
    assert years_in("2023年和2024 年，以及1995年") == [2023, 2024, 1995]


def test_char_ngrams_are_bigrams_of_letters_and_digits():
    assert char_ngrams("审计法第5条，ＡＢ") == ["审计", "计法", "法第", "第5", "5条", "ab"]
    assert char_ngrams("审") == ["审"]  # a single Chinese character still counts
    assert char_ngrams("，。！") == []


def test_a_two_digit_year_in_a_question_is_written_in_full():
    """24年局里… and 23年度… name years; 满20年, 20年来, 15年前, 30年内 are numbers of years."""
    from rag.text import normalize_question

    assert normalize_question("24年局里主动公开了多少条政府信息") == "2024年局里主动公开了多少条政府信息"
    assert normalize_question("23年度审计项目有几个") == "2023年度审计项目有几个"
    for question in ("工作满20年能休几天", "近20年来变化大吗", "15年前的事还能查吗", "30年内有效吗", "2024年和25年比"):
        assert normalize_question(question) == question
