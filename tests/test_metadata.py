"""rag.metadata: title, kind, issuer and covered year read from the content of real-world copies."""

from __future__ import annotations

import json

import pytest
from conftest import ORG_FIXTURES

from rag.loaders import clean_text, load_document
from rag.metadata import display_title, is_addressee, is_chrome, lines_of, read_metadata

EXPECTED = json.loads((ORG_FIXTURES / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_shape_reads_as_expected(name):
    doc = load_document(ORG_FIXTURES / name)
    assert {"title": doc.title, "doc_type": doc.doc_type, "issuer": doc.issuer, "year": doc.year} == EXPECTED[name]


def test_every_fixture_document_is_listed():
    on_disk = {p.name for p in ORG_FIXTURES.iterdir() if p.suffix in (".txt", ".md")}
    assert on_disk == set(EXPECTED)


def meta(raw: str, reflow: bool | None = None):
    return read_metadata(clean_text(raw, reflow=reflow))


def test_web_page_chrome_before_the_title():
    m = meta(
        "首页 | 机构概况 | 政务公开 | 互动交流\n"
        "当前位置：首页 > 政务公开 > 法治政府建设\n"
        "索引号：001-2025-0012  发布日期：2025-02-10  信息来源：南溪市审计局\n"
        "字体：【大 中 小】 打印 关闭\n"
        "南溪市审计局2024年法治政府建设情况报告\n"
        "2024年，南溪市审计局坚持依法审计。现将有关情况报告如下。\n"
        "一、主要工作\n全年完成审计项目21个。\n二、存在问题\n人员不足。\n"
        "扫一扫在手机打开当前页\n"
    )
    assert (m.title, m.doc_type, m.issuer, m.year) == ("南溪市审计局2024年法治政府建设情况报告", "report", "南溪市审计局", 2024)
    assert m.title_lines == (4,)


def test_copied_wechat_article_and_a_line_above_a_title_that_opens_with_its_organisation():
    """A WeChat copy: the account name, `发表于`, `点击蓝字 关注我们` above the title. A title that opens with its
    organisation starts there, whatever short line stands above it (it is not the title's first half)."""
    body = "市人民政府：\n现将2024年度审计查出问题整改情况报告如下。\n一、总体情况\n整改到位金额1.2亿元。\n二、下一步\n持续跟踪。\n"
    m = meta("河岭审计\n2025年3月12日 17:45 发表于湖南\n\n点击蓝字 关注我们\n\n河岭市审计局关于2024年度审计查出问题整改情况的报告\n\n" + body)
    assert (m.title, m.doc_type, m.issuer, m.year) == ("河岭市审计局关于2024年度审计查出问题整改情况的报告", "report", "河岭市审计局", 2024)
    m = meta("转发学习\n河岭市审计局2024年法治政府建设情况报告\n" + body)
    assert m.title == "河岭市审计局2024年法治政府建设情况报告"
    m = meta("河岭市审计局\n2024年法治政府建设情况报告\n" + body)  # a PDF title broken after its organisation
    assert m.title == "河岭市审计局2024年法治政府建设情况报告"


def test_breadcrumbs_are_not_titles():
    m = meta(
        "您现在的位置：首页 » 信息公开 » 年度报告\n"
        "北岭县审计局2023年政府信息公开工作年度报告\n"
        "一、总体情况\n2023年，北岭县审计局主动公开政府信息40条。\n二、存在的主要问题\n公开形式单一。\n"
    )
    assert (m.title, m.issuer, m.year) == ("北岭县审计局2023年政府信息公开工作年度报告", "北岭县审计局", 2023)
    assert is_chrome("当前位置：首页 > 政务公开") and is_chrome("— 2 —") and not is_chrome(m.title)


def test_pdf_title_broken_over_two_lines_with_page_numbers():
    m = meta(
        "西江市审计局2024年法治政府建设\n情况报告\n"
        "2024年，西江市审计局在市委、市政府的领导下，坚持依法审计，全面推进法治审\n"
        "计机关建设，现将有关情况报告如下。\n"
        "一、主要工作\n全年开展普法活动15场，发放宣传资料2000余份，组织干部职工参加\n学法考试2次。\n"
        "— 1 —\n二、存在问题\n学法形式较为单一。\n— 2 —\n",
        reflow=True,
    )
    assert (m.title, m.doc_type, m.issuer, m.year) == ("西江市审计局2024年法治政府建设情况报告", "report", "西江市审计局", 2024)
    assert m.title_lines == (0,)  # the reflow joined the title's two lines


def test_a_title_going_on_over_a_line_break_under_a_running_header_that_repeats_its_first_line():
    m = meta(
        "岱江市审计局2025年工作总结\n\n\n          岱江市审计局2025年工作总结\n          和2026年工作计划\n\n"
        "　　2025年，岱江市审计局在市委、市政府的坚强领导下，依法履行审计监督职责。\n"
        "一、2025年工作总结\n全年完成审计项目40个。\n第1页/共2页\n岱江市审计局2025年工作总结\n"
        "二、2026年工作计划\n拟安排审计项目42个。\n第2页/共2页\n",
        reflow=True,
    )
    assert (m.title, m.doc_type, m.issuer, m.year) == ("岱江市审计局2025年工作总结和2026年工作计划", "report", "岱江市审计局", 2025)


def test_the_printing_office_and_a_short_running_header_are_not_issuer_and_title():
    m = meta(
        "霁州市审计局文件\n\n霁审发〔2024〕6号\n\n关于霁州市审计局2023年法治建设工作的报告\n\n市委全面依法治市委员会办公室:\n"
        "    2023年,市审计局坚持依法审计,现将有关情况报告如下:\n    一、加强组织领导\n    全年召开党组会议7次。\n\n"
        "                                         霁州市审计局\n                                        2024年2月5日\n\n"
        "抄送:省审计厅法规处。\n霁州市审计局办公室                        2024年2月5日印发\n"
    )
    assert (m.title, m.issuer, m.year) == ("关于霁州市审计局2023年法治建设工作的报告", "霁州市审计局", 2023)
    m = meta(
        "沙鸣区审计局2023年审计工作总结\n\n沅江市沙鸣区审计局2023年审计\n工作总结\n\n"
        "　　2023年，区审计局依法全面履行审计监督职责，现将全年工作总结如下。\n一、主要工作\n　　全年共完成审计项目26个。\n"
        "第1页 共2页\n沙鸣区审计局2023年审计工作总结\n二、存在的问题\n　　审计力量不足。\n第2页 共2页\n",
        reflow=True,
    )
    assert (m.title, m.issuer, m.year) == ("沅江市沙鸣区审计局2023年审计工作总结", "沅江市沙鸣区审计局", 2023)
    m = meta("枫林区人民政府\n您现在的位置：首页 > 信息公开\n\n望江街道办事处2024年法治政府建设情况报告\n\n2024年，望江街道扎实推进法治政府建设。\n\n望江街道办事处\n2025年1月20日\n")
    assert (m.title, m.issuer, m.year) == ("望江街道办事处2024年法治政府建设情况报告", "望江街道办事处", 2024)


def test_pdf_work_report_under_a_meeting_letterhead_with_subtitle_and_speaker():
    # A report given at a meeting, exported from PDF: every page starts with the meeting's letterhead,
    # lines break at the page width, the title is followed by a ——subtitle and the speaker line.
    body = (
        "东岭县第九届人大常委会第八次会议文件（三）\n"
        "关于东岭县2023年度县级预算执行和其他财政收支的审计工作报告\n"
        "——2024年8月26日在东岭县第九届人民代表大会常务委员会第八次会议上\n"
        "东岭县审计局局长　林书远\n"
        "主任、各位副主任、各位委员：\n"
        "我受县人民政府委托，向县人大常委会报告2023年度县级预算执行和其\n"
        "他财政收支的审计情况，请予审议。全年共组织实施审计项目17个，查出\n"
        "主要问题金额2.35亿元，提出审计建议51条，向有关部门移送问题线索\n"
        "4件。\n- 1 -\n东岭县第九届人大常委会第八次会议文件（三）\n"
        "一、县级财政管理审计情况\n审计了县财政局具体组织县级预算执行和编制县\n"
        "级决算草案情况，县级一般公共预算收入总计21.42亿元，支出总计20.9\n"
        "6亿元，结转下年0.46亿元。部分非税收入未编入年初预算，涉及金额1\n"
        ".2亿元。\n二、审计建议\n严格预算管理。\n- 2 -\n"
    )
    m = meta(body)
    assert m.title == "关于东岭县2023年度县级预算执行和其他财政收支的审计工作报告"
    assert (m.doc_type, m.issuer, m.year) == ("report", "东岭县审计局", 2023)


def test_an_organisation_line_joins_the_title_only_when_the_title_lacks_one():
    body = "2023年，本局坚持依法审计，现将有关情况报告如下。\n一、主要工作\n全年完成审计项目21个。\n二、存在问题\n人员不足。\n"
    # A running header (the organisation alone) above a title that names the organisation itself.
    m = meta("泓川市云河区审计局\n云河区审计局2023年法治政府建设情况报告\n区人民政府：\n" + body)
    assert (m.title, m.issuer, m.year) == ("云河区审计局2023年法治政府建设情况报告", "泓川市云河区审计局", 2023)
    # The organisation's line is the first half of the title.
    m = meta("宁川市蕉河区财政局\n2023年法治政府建设工作情况报告\n区委全面依法治区委员会办公室：\n" + body)
    assert (m.title, m.issuer, m.year) == ("宁川市蕉河区财政局2023年法治政府建设工作情况报告", "宁川市蕉河区财政局", 2023)


@pytest.mark.parametrize("text, title, issuer, year", [
    (  # the signature names the organisation with its city
        "南屿区司法局2024年法治政府建设年度报告\n"
        "2024年，南屿区司法局坚持依法行政，现将有关情况报告如下。\n"
        "一、主要举措\n全年办理行政复议案件36件。\n二、存在问题\n队伍力量不足。\n"
        "岚州市南屿区司法局\n2025年1月20日\n",
        "南屿区司法局2024年法治政府建设年度报告", "岚州市南屿区司法局", 2024,
    ),
    (  # a field of a web page's line does (来源：…)
        "当前位置：首页 > 政务公开 > 法治政府建设\n"
        "松岭县审计局2023年法治政府建设情况报告\n"
        "发布日期：2024-01-26　　来源：岚川市松岭县审计局　　浏览次数：318\n"
        "2023年，松岭县审计局坚持依法审计，现将有关情况报告如下。\n"
        "一、主要工作\n全年完成审计项目21个。\n二、存在问题\n人员不足。\n",
        "松岭县审计局2023年法治政府建设情况报告", "岚川市松岭县审计局", 2023,
    ),
])
def test_issuer_takes_the_fuller_name_the_document_gives(text, title, issuer, year):
    m = meta(text)
    assert (m.title, m.issuer, m.year) == (title, issuer, year)


def test_pdf_export_joins_a_broken_title_and_subtitle_but_not_a_letterhead():
    text = clean_text(
        "关于2022年度县级预算执行和其他\n财政收支的审计工作报告\n\n"
        "——2023年8月29日在茶川县第十七届人民代表大会\n常务委员会第十四次会议上\n\n"
        "茶川县审计局局长　林永和\n\n主任、各位副主任、秘书长、各位委员：\n"
        "我受县人民政府委托，向县人大常委会报告2022年度县级预算执行和其他\n财政收支的审计情况，请予审议。\n",
        reflow=True,
    )
    assert text.split("\n")[:3] == [
        "关于2022年度县级预算执行和其他财政收支的审计工作报告",
        "——2023年8月29日在茶川县第十七届人民代表大会常务委员会第十四次会议上",
        "茶川县审计局局长林永和",
    ]
    # A letterhead (the organisation alone) stays apart from the title below it.
    text = clean_text("泓川市云河区审计局\n云河区审计局2023年法治政府建设情况报告\n区人民政府：\n2023年，本局坚持依法审计，现将有关情况报告如下。\n", reflow=True)
    assert text.split("\n")[:2] == ["泓川市云河区审计局", "云河区审计局2023年法治政府建设情况报告"]


def test_a_meeting_letterhead_as_wide_as_the_wrapped_lines_stays_above_a_broken_title():
    """A PDF export that wraps at about 30 characters: the letterhead line (…会议文件（七）) is as wide as a
    wrapped line, yet it stands alone, and the title that opens with 关于 below it is joined over its break."""
    lines = [
        "棠溆区第四届人大常委会第二十三次会议文件（七）", "", "关于棠溆区2024年度区本级预算执行", "和其他财政收支的审计工作报告", "",
        "——2025年8月27日在棠溆区第四届人民代表大会", "常务委员会第二十三次会议上", "", "棠溆区审计局局长钟念禾", "",
        "主任、各位副主任、秘书长、各位委员：",
        "我受区人民政府委托，向区人大常委会报告2024年", "度区本级预算执行和其他财政收支的审计情况，请予",
        "审议。根据审计法及相关法律法规，区审计局对20", "24年度区本级预算执行和其他财政收支情况进行了审",
        "计。全年共完成审计项目19个，查出问题金额1.2", "6亿元，提出审计建议57条，向区纪委监委移送问题线",
        "索3件，推动建立完善制度12项，整改到位率93%。", "- 1 -",
    ]
    m = meta("\n".join(lines), reflow=True)
    assert m.title == "关于棠溆区2024年度区本级预算执行和其他财政收支的审计工作报告"
    assert (m.doc_type, m.issuer, m.year) == ("report", "棠溆区审计局", 2024)


def test_a_labelled_addressee_line_of_a_public_document():
    """A 公文 names its addressees after `主送：` (below the 文号 and the title): that line is the 抬头."""
    body = (
        "蓼汀县审计局文件\n蓼审〔2024〕3号\n蓼汀县审计局关于2023年度法治政府建设情况的报告\n"
        "主送：中共蓼汀县委全面依法治县委员会办公室、蓼汀县人民政府\n"
        "2023年，蓼汀县审计局坚持依法审计。全年完成审计项目21个。\n一、主要工作\n全年开展普法活动9场。\n二、存在问题\n人员不足。\n"
        "蓼汀县审计局\n2024年1月12日\n"
    )
    m = meta(body)
    assert m.title == "蓼汀县审计局关于2023年度法治政府建设情况的报告" and m.addressee_line is not None
    assert "主送" in lines_of(clean_text(body))[m.addressee_line]


def test_a_title_in_brackets_or_after_a_label_is_read_without_them():
    body = "{}\n县人民政府：\n2024年，本局坚持依法行政，全年新建改造城市道路5条，总长7.3公里。\n桉浦县住房和城乡建设局\n2025年1月10日\n"
    for shown in ("【桉浦县住房和城乡建设局2024年度述职报告】", "标题：桉浦县住房和城乡建设局2024年度述职报告"):
        m = meta(body.format(shown))
        assert (m.title, m.issuer, m.year) == ("桉浦县住房和城乡建设局2024年度述职报告", "桉浦县住房和城乡建设局", 2024), shown


def test_the_fields_of_a_web_pages_document_table_are_not_joined_into_a_title():
    """索引号/发布机构/文号/标题 lines, labels spaced with full-width spaces: each field stands alone, and the
    value after 标　　题： is the title (the 文号 field used to be taken for the title's first half)."""
    body = (
        "蔺川区人民政府\n首页 | 政务公开 | 政务服务\n当前位置：首页 > 政务公开 > 法治政府建设\n\n"
        "索引号：\t114103027MB1946820/2025-00023\n发布机构：\t蔺川区审计局\n发布日期：\t2025-01-16\n"
        "文　　号：\t蔺审〔2025〕3号\n标　　题：\t蔺川区审计局2024年法治政府建设情况报告\n\n"
        "区人民政府：\n2024年，区审计局全年完成审计项目31个，核减工程造价2100万元。\n"
        "蔺川区审计局\n2025年1月16日\n"
    )
    m = meta(body)
    assert (m.title, m.issuer, m.year) == ("蔺川区审计局2024年法治政府建设情况报告", "蔺川区审计局", 2024)


def test_a_township_government_is_an_issuer():
    body = (
        "蕙坪乡人民政府关于法治政府建设工作情况的报告\n县人民政府：\n"
        "2023年，我乡在县委、县政府的领导下，认真贯彻落实法治政府建设各项部署。全年办理行政执法案件15件。\n"
        "蕙坪乡人民政府\n2024年1月9日\n"
    )
    m = meta(body)
    assert (m.title, m.issuer, m.year) == ("蕙坪乡人民政府关于法治政府建设工作情况的报告", "蕙坪乡人民政府", 2023)
    assert meta(body.replace("蕙坪乡", "石桥镇")).issuer == "石桥镇人民政府"


def test_half_width_punctuation():
    m = meta(
        "东川县审计局2024年法治政府建设工作情况报告\n"
        "2024年,东川县审计局在县委,县政府的领导下,坚持依法审计.现将有关情况报告如下:\n"
        "一、主要工作\n(一)落实第一责任人职责.局长全年主持召开党组会议3次.\n(二)加强普法.全年开展普法活动6场.\n"
    )
    assert (m.title, m.doc_type, m.issuer, m.year) == ("东川县审计局2024年法治政府建设工作情况报告", "report", "东川县审计局", 2024)


def test_addressee_first_copy_gets_a_title_from_its_content():
    """A copy that lost its title starts with the addressee; the signature says who wrote it."""
    m = meta(
        "县人民政府：\n"
        "2023年，我局认真贯彻落实县委全面依法治县委员会的部署要求，持续推进法治审计机关建设。现将2023年法治政府建设情况报告如下：\n"
        "一、主要举措和成效\n全年开展普法活动8场。\n二、存在问题\n学法不够深入。\n"
        "南山县审计局\n2024年1月20日\n"
    )
    assert (m.doc_type, m.issuer, m.year) == ("report", "南山县审计局", 2023)
    assert m.title == "南山县审计局2023年法治政府建设情况报告"
    assert m.addressee_line == 0 and m.title_lines == ()
    assert is_addressee("青禾县人民政府：") and not is_addressee("现将有关情况报告如下。")


def test_laws_notices_and_other_documents():
    law = meta("# 中华人民共和国审计法\n（2021年10月23日第十三届全国人民代表大会常务委员会第三十一次会议修正）\n第一章 总则\n"
               "第一条 为了加强国家的审计监督，制定本法。\n第二条 国家实行审计监督制度。\n第三条 审计机关独立行使审计监督权。\n")
    assert (law.title, law.doc_type, law.issuer, law.year) == ("中华人民共和国审计法", "law", "全国人民代表大会常务委员会", 2021)
    notice = meta("南溪市审计局关于开展2025年度普法考试的通知\n各科室：\n定于3月10日开展普法考试。\n南溪市审计局\n2025年3月1日\n")
    assert (notice.doc_type, notice.issuer, notice.year) == ("notice", "南溪市审计局", 2025)
    other = meta("会议记录\n今天讨论了档案整理。\n")
    assert other.doc_type == "other" and other.title


def test_display_title_shortens_only_long_titles():
    assert display_title("中华人民共和国审计法") == "中华人民共和国审计法"
    long = "关于" + "审计" * 60 + "的报告"
    assert display_title(long).endswith("…") and len(display_title(long)) < len(long)
