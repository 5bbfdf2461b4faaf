"""rag.lexicon and rag.segment: the word lists as data, law short forms, tokens for the keyword index."""

from __future__ import annotations

import pytest

from rag.lexicon import AliasError, jieba_words, label, lexicon, read_aliases
from rag.segment import content_words, figures_in_digits, query_tokens, tokenize


def test_stopwords_keep_the_words_that_carry_legal_meaning():
    stop = lexicon().stopwords
    assert "的" in stop and "请问" in stop
    for word in ("不得", "应当", "限制", "最高"):  # in bm25s's list, but they decide what a law says
        assert word not in stop


def test_informative_stopwords_are_search_terms_but_not_claim_words():
    """bm25s's list drops 直接, 个人, 立即 — words that decide which article answers (直接向人民法院提起
    诉讼). Those in 0.5-10 % of the laws' articles (eval/stopword_keep.py) are searched; the support
    check still reads them as general words, like 必须."""
    lex = lexicon()
    for word in ("直接", "个人", "立即", "重大"):
        assert word not in lex.stopwords and word in lex.general_words
    assert "或者" in lex.stopwords and "的" in lex.stopwords  # in more articles: still a stopword
    assert "直接" in tokenize("公民直接向人民法院提起诉讼") and "直接" in query_tokens("直接去法院起诉要多久？")
    assert "直接" not in content_words("公民直接向人民法院提起诉讼")


def test_the_informative_list_is_what_the_script_computes():
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    regulations = root.parent / "shared" / "corpus" / "regulations"
    if not regulations.is_dir():
        pytest.skip("../shared/corpus is not here")
    sys.path.insert(0, str(root / "eval"))
    try:
        from stopword_keep import informative
    finally:
        sys.path.remove(str(root / "eval"))
    import tomllib

    from rag.lexicon import LEXICON_FILE

    with open(LEXICON_FILE, "rb") as f:
        stored = tomllib.load(f)["stopwords"]["informative"]
    assert stored == informative(regulations)


def test_question_words_cues_and_units():
    lex = lexicon()
    assert lex.is_question_word("多少") and lex.is_question_word("哪些") and lex.is_question_word("如何")
    assert not lex.is_question_word("审计机关")
    assert lex.cue("quantity", "全年办理了多少件？") and lex.cue("list", "有哪些种类？")
    assert lex.cue("yes_no", "审计机关可以查询存款吗？")
    # 有没有时间限制 is everyday words for 期限 (five questions, four laws, in as many sets)
    assert lex.cue("period", "申请行政复议有时间限制吗") and not lex.cue("period", "限制出境措施由谁执行")
    assert not lex.cue("yes_no", "吗啡的管理")  # a yes/no question ends with 吗
    assert lex.cue("followup_start", "那第十三条呢？") and lex.cue("followup_end", "那第十三条呢？")
    assert set(lex.units_like("名")) >= {"人", "位"} and lex.units_like("卷") == ("卷",)
    assert "应当" in lex.modality["obligation"] and "不得" in lex.modality["prohibition"]


def test_jihao_asks_for_a_day_unless_an_order_or_house_number():
    lex = lexicon()
    for question in ("年报最晚每年几号前要交？", "预算年度从几月几号开始？"):
        assert lex.cue("day", question) and lex.cue("date", question) and lex.cue("time", question)
    for question in ("条例是国务院第几号令公布的？", "联系地址在哪条路几号？", "办公室在几号楼几室？"):
        assert not lex.cue("day", question) and not lex.cue("date", question), question


def test_section_labels_and_user_words():
    assert [label(n) for n in ("title", "header", "addressee", "trailer", "preamble", "law_preamble")] == ["标题", "文头", "抬头", "落款", "导语", "题注"]
    words = dict(jieba_words())
    assert words["审计机关"] == 20000 and "审计法" in words
    with pytest.raises(KeyError):
        label("no-such-label")


def test_tokens_fold_widths_and_drop_stopwords():
    assert tokenize("全年办理审计项目１２个") == tokenize("全年办理审计项目12个")
    # a law's Chinese numerals and a question's digits make the same keyword terms; ordinals, 一律, 上一年度 stay
    assert tokenize("自受理之日起十五日内") == tokenize("自受理之日起15日内") and "15" in tokenize("十五日内")
    assert tokenize("预算年度自公历一月一日起，至十二月三十一日止") == tokenize("预算年度自公历1月1日起，至12月31日止")
    assert figures_in_digits("处五万元以上罚款，二〇二四年，两年") == "处5万元以上罚款，2024年，2年"
    for kept in ("第十八条", "一律", "上一年度", "每一项", "十四五规划", "百分之十"):
        assert figures_in_digits(kept) == kept
    tokens = tokenize("审计机关依照法律规定独立行使审计监督权")
    assert "审计机关" in tokens and "独立" in tokens and "的" not in tokens
    assert "多少" not in query_tokens("审计机关有多少名工作人员？")
    assert "工作人员" in query_tokens("审计机关有多少名工作人员？")
    assert "12" not in content_words("全年开展普法活动12场") and "普法" in content_words("全年开展普法活动12场")


def test_aliases_file(tmp_path):
    good = tmp_path / "aliases.toml"
    good.write_text('[laws]\n"普法法" = "法治宣传教育法"\n" 空白 " = " 去掉空白 "\n"无效" = ""\n', encoding="utf-8")
    assert read_aliases(good) == {"普法法": "法治宣传教育法", "空白": "去掉空白"}
    broken = tmp_path / "broken.toml"
    broken.write_text("[laws\n", encoding="utf-8")
    with pytest.raises(AliasError, match="格式不正确"):
        read_aliases(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[laws]\n\"普法法\" = 3\n", encoding="utf-8")
    with pytest.raises(AliasError, match="简称"):
        read_aliases(wrong)
    with pytest.raises(AliasError, match="无法读取"):
        read_aliases(tmp_path / "missing.toml")
