"""Metrics shared by `rag eval` and eval/: retrieval hit@k/MRR, answer accuracy, refusals, citations, latency.

Citation support (applied the same way to every system): an answer sentence is supported by its
cited passage when the support checker of `rag.citations` says so — numbers, dates, article
numbers and names match exactly, obligation and negation agree, and the meaning is close.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.citations import CITED_SENTENCE, MARKER, check_support
from rag.text import squash

SupportFn = Callable[[str, "Passage"], bool]


@dataclass(frozen=True)
class QuestionSet:
    name: str
    path: Path
    role: str  # train: used to fit the answer model | held-out: never used to fit anything
    about: str


def question_sets(settings) -> list[QuestionSet]:
    """The visible question sets and their roles (`make eval`, `make calibrate`)."""
    shared = settings.eval.dev_set.parent
    own = settings.eval.sets_dir
    root = own.parent
    return [
        QuestionSet("dev", settings.eval.dev_set, "train", "shared dev set"),
        QuestionSet("project", own / "qa_project.jsonl", "train", "written for this project before the learned scorer"),
        QuestionSet("multi", shared / "multi-bureau" / "qa.jsonl", "train", "six other bureaus' reports (shared)"),
        QuestionSet("paraphrase", own / "qa_paraphrase.jsonl", "train", "other people's words, headers and trailers, 201 questions"),
        QuestionSet("orgs", root / "tests" / "fixtures" / "orgs" / "qa.jsonl", "train", "ten documents of nine organisations in several shapes"),
        QuestionSet("holdout", own / "qa_holdout.jsonl", "train", "written after the first tuning; held out until round 30, then training (its failures had been read)"),
        QuestionSet("stranger", own / "qa_stranger.jsonl", "train", "written by a tester who saw no tuning (held out until the learned scorer's third round)"),
        QuestionSet("fresh", own / "qa_fresh.jsonl", "train", "written by another tester who saw neither code nor questions (held out until the third round)"),
        QuestionSet("fresh2", own / "qa_fresh2.jsonl", "train", "written in the third round by a tester who saw neither code nor any question (held out until the fifth round)"),
        QuestionSet("fresh4", own / "qa_fresh4.jsonl", "train", "written in the fifth round by another tester who saw neither code nor any question; held out until round 30, then training (its failures had been read)"),
        QuestionSet("fresh3", own / "qa_fresh3.jsonl", "train", "written in the fifth round by a tester who saw neither code nor any question; held out until round 30, then training (its failures had been read)"),
        QuestionSet("fresh5", own / "qa_fresh5.jsonl", "train", "written in the sixth round by another tester who saw neither code nor any question (held out for the round's first changes, then read)"),
        QuestionSet("fresh6", own / "qa_fresh6.jsonl", "train", "written later in the sixth round by another tester who saw neither code nor any question (held out until the round's last change)"),
        QuestionSet("fresh7", own / "qa_fresh7.jsonl", "train", "written at the end of the sixth round by another tester who saw neither code nor any question (held out, measured once, then read in the seventh round)"),
        QuestionSet("fresh8", own / "qa_fresh8.jsonl", "train", "written at the start of the seventh round by another tester who saw neither code nor any question (held out in the seventh round, then read)"),
        QuestionSet("fresh9", own / "qa_fresh9.jsonl", "train", "written at the end of the seventh round by another tester who saw neither code nor any question; held out until round 30, then training (its failures had been read)"),
        QuestionSet("fresh10", own / "qa_fresh10.jsonl", "train", "written at the start of the eighth round by another tester who saw neither code nor any question; held out until round 30, then training (its failures had been read)"),
        QuestionSet("fresh11", own / "qa_fresh11.jsonl", "train", "written at the start of the ninth round by another tester who saw neither code nor any question (measured once held out, then read)"),
        QuestionSet("fresh12", own / "qa_fresh12.jsonl", "train", "written at the end of the ninth round by another tester who saw neither code nor any question; its failures were read, nothing was changed for them; held out until round 30, then training (its failures had been read)"),
        QuestionSet("fresh13", own / "qa_fresh13.jsonl", "train", "written at the start of the tenth round by another tester who saw neither code nor any question, asked for near-miss refusals (measured once held out, then read)"),
        QuestionSet("fresh14", own / "qa_fresh14.jsonl", "train", "written at the start of the eleventh round by another tester who saw neither code nor any question, in everyday words with chat politeness (measured once held out, then read)"),
        QuestionSet("fresh15", own / "qa_fresh15.jsonl", "held-out", "written in the eleventh round by another tester who saw neither code nor any question, five kinds of asker; measured once, its failures not read when this round's changes were made, never fitted on"),
        QuestionSet("fresh16", own / "qa_fresh16.jsonl", "train", "written at the end of the eleventh round by another tester who saw neither code nor any question, short chat-style questions; measured once, then read (a two-digit year was fixed after); held out until round 30, then training (its failures had been read)"),
        QuestionSet("fresh17", own / "qa_fresh17.jsonl", "train", "written at the start of the twelfth round by a tester who saw neither code nor any question: situations in everyday words, keyword queries, a law's dates, the report's header and trailer; measured once, then read; held out until round 30, then training (its failures had been read)"),
        QuestionSet("fresh18", own / "qa_fresh18.jsonl", "train", "written in the twelfth round by a tester who saw neither code nor any question: short chat messages describing a situation; measured once, then read; held out until round 30, then training (its failures had been read)"),
        QuestionSet("fresh19", own / "qa_fresh19.jsonl", "train", "written in the thirteenth round by a tester who saw neither code nor any question: laws in everyday words, the own report in the first person, six other bureaus by city and year, refusals; measured once, then read (two of its failures were the categories fixed in round 14); held out until round 30, then training (its failures had been read)"),
        QuestionSet("fresh20", own / "qa_fresh20.jsonl", "held-out", "written in the fourteenth round by a tester who saw neither code nor any question: laws as situations at work, keyword and chat questions, the own report's header and trailer, six other bureaus by city and year, near-miss refusals; measured before and after the round's change, its failures not read, never fitted on"),
        QuestionSet("fresh21", own / "qa_fresh21.jsonl", "train", "written in the fourteenth round by a tester who saw neither code nor any question, asked for situations at the asker's own bureau answered by laws and for near-miss refusals in the first person; measured once (0.859 / 0.031 / 0.688), then training"),
        QuestionSet("fresh22", own / "qa_fresh22.jsonl", "train", "written in the fourteenth round by a tester who saw neither code nor any question: short phone-typed situations in everyday words, the law's words avoided; measured once (0.682 / 0.136 / 0.786), failures not read (a trial fit on it in round 14, not kept, lowered the refusal threshold: held-out refusal recall 0.761 -> 0.727, fresh23 unchanged); held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh23", own / "qa_fresh23.jsonl", "train", "written at the end of the fourteenth round by a tester who saw neither code nor any question, four voices (a new legal-section graduate, the office director writing the report, a field auditor, a citizen-service clerk); measured once with the committed model (0.750 / 0.042 / 0.667; the same with fresh22 fitted on, which was not kept), failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh24", own / "qa_fresh24.jsonl", "train", "written at the start of the fifteenth round by a tester who saw neither code nor any question: laws as work situations in everyday words, the own report (its addressee, date and 抄送 lines too), six other bureaus by place and year, 14 near-miss refusals; measured once with the round-14 model before any change; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh25", own / "qa_fresh25.jsonl", "train", "written at the start of the sixteenth round by a tester who saw neither code nor any question: laws as work situations in everyday words, the own report (header, date, signature, 抄送 too), six other bureaus by place and year, 16 near-miss refusals; measured once with the round-15 model before any change; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh26", own / "qa_fresh26.jsonl", "train", "written at the start of the seventeenth round by a tester who saw neither code nor any question: laws as work situations in everyday words over 25 laws, the own report (addressee, date, 抄送, document number too), six other bureaus by place and year, 16 near-miss refusals; measured once with the round-14 model before any change; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh27", own / "qa_fresh27.jsonl", "train", "written at the start of the eighteenth round by a tester who saw neither code nor any question: colleagues of other departments (office, finance, personnel, a new hire, a section chief) in everyday words over all 25 laws, the own report (addressee, date, 抄送 too), six other bureaus by place and year, 16 near-miss refusals; measured once with the round-17 code (the round-14 model) before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh28", own / "qa_fresh28.jsonl", "train", "written at the start of the nineteenth round by a tester who saw neither code nor any question: laws as work situations in everyday words (a field auditor, the service window, the legal section, a leader) over at least 20 laws, the own report in the first person (heading, date, 抄送 and issuing lines too), six other bureaus by place and year, 16 near-miss refusals; measured once with the round-18 code before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh29", own / "qa_fresh29.jsonl", "train", "written at the start of the twentieth round by a tester who saw neither code nor any question: everyday chat questions over 24 of the 25 laws (time limits, fines, approvals, dates, article numbers), all seven bureau reports (figures, dates, document numbers, addresses), 24 refusals (bureaus and years not indexed, near-miss details, laws not indexed); measured once with the round-19 code before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh30", own / "qa_fresh30.jsonl", "train", "written at the start of the twenty-first round by a tester who saw neither code nor any question: 28 clerk-style chat questions over all 25 laws (time limits, amounts, approvals, exceptions), 28 on all seven bureau reports (figures, document numbers, names, dates, addresses, awards), 24 refusals (years and bureaus not indexed, details the reports leave out, rules not among the 25); measured once with the round-20 code before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh31", own / "qa_fresh31.jsonl", "train", "written at the start of the twenty-second round by a tester who saw neither code nor any question: 28 everyday questions over 20 of the 25 laws (loosely named), 28 on all seven bureau reports (titles, addressee, date, 抄送 and document-number lines too), 24 refusals (figures the reports leave out, bureaus and years not indexed, articles a law does not have, rules not among the 25); measured once with the round-21 code before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh32", own / "qa_fresh32.jsonl", "train", "written at the start of the twenty-third round by a tester who saw neither code nor any question: 28 everyday questions over all 25 laws, 28 on all seven bureau reports (titles, addressee and date lines, figures), 24 refusals; measured once with the round-22 code before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh33", own / "qa_fresh33.jsonl", "train", "written at the start of the twenty-fourth round by a tester who saw neither code nor any question: 28 everyday questions over all 25 laws (mostly not naming the law), 28 on all seven bureau reports (figures, activities, date, document-number, 抄送 and address lines), 24 near-miss refusals; measured once with the round-23 code before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh34", own / "qa_fresh34.jsonl", "train", "written at the start of the twenty-fifth round by a tester who saw neither code nor any question: 28 everyday questions over all 25 laws (three name their source), 28 on all seven bureau reports (titles, addressee, date, 抄送, document-number, postcode and address lines, figures), 24 near-miss refusals (bureaus and years not indexed, figures the reports leave out, rules not among the 25, details a law does not state); measured once with the round-24 code before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh35", own / "qa_fresh35.jsonl", "train", "written at the start of the twenty-sixth round by a tester who saw neither code nor any question: 28 everyday questions over all 25 laws (none names its source), 28 on all seven bureau reports (figures, dates, addressee, document-number, signature and contact lines, counts), 24 near-miss refusals (bureaus and years not indexed, figures the reports leave out, amounts and standards the laws do not state); measured once with the round-25 code before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh36", own / "qa_fresh36.jsonl", "train", "written at the start of the twenty-seventh round by a tester who saw neither code nor any question: 28 everyday questions over all 25 laws (half describe the situation without naming the law), 29 on all seven bureau reports (counts, names, dates, addressees, document numbers, addresses and postcodes), 23 near-miss refusals (phone numbers and figures the reports leave out, years and bureaus not indexed, rules the laws do not state); measured once with the round-26 code before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh37", own / "qa_fresh37.jsonl", "train", "written at the start of the twenty-eighth round by a tester who saw neither code nor any question: 28 everyday questions over all 25 laws (18 describe the situation without naming the law), 29 on all seven bureau reports (counts, names, addressees, copies, dates, document numbers, address and postcode, training, disclosure figures), 23 near-miss refusals (years and details the reports leave out, rules the laws do not state); measured once with the round-27 answerer before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh38", own / "qa_fresh38.jsonl", "train", "written at the start of the twenty-ninth round by a tester who saw neither code nor any question: 28 everyday questions over all 25 laws (voices of a field auditor, a service-window clerk, a finance colleague, a new hire and a leader; 5 name the law), 29 on all seven bureau reports (figures, document numbers, copy and signature lines, addresses and postcodes, the legal adviser, awards, training and disclosure counts; 4 keyword-only), 23 near-miss refusals (years and bureaus not indexed, details the reports leave out, articles a law does not have, rules not among the 25); measured once with the round-28 answerer before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh39", own / "qa_fresh39.jsonl", "train", "written at the start of the thirtieth round by a tester who saw neither code nor any question: 28 everyday questions over all 25 laws (most describe the situation; 2 name an article), 29 on all seven bureau reports (addressee, copy, issuing and signature lines, document numbers, the legal adviser, counts, table figures, addresses and postcode; keyword-only and chatty, short names, 2024年度/去年), 23 near-miss refusals (years and bureaus not indexed, details the reports leave out, articles a law does not have, rules not among the 25); measured once with the round-29 answerer before any change, failures not read; held out until round 36, then training (its failures not read before)"),
        QuestionSet("fresh40", own / "qa_fresh40.jsonl", "held-out", "written at the start of the thirty-first round by a tester who saw neither code nor any question: 27 everyday questions covering all 25 laws, 30 on all seven bureau reports (table cells, addressee, copy and signature lines, document numbers, the legal adviser, postcode), 23 near-miss refusals; measured once with the round-30 answerer before any change, failures not read"),
        QuestionSet("fresh41", own / "qa_fresh41.jsonl", "held-out", "written at the end of the thirty-second round by a tester who saw neither code nor any question: 57 everyday questions over all 25 laws and all seven bureau reports (one with full-width digits), 23 near-miss refusals; measured once with the round-30 answerer before any change, failures not read"),
        QuestionSet("fresh42", own / "qa_fresh42.jsonl", "held-out", "written at the start of the thirty-third round by a tester who saw neither code nor any question: 27 everyday questions covering all 25 laws, 30 on all seven bureau reports, 23 near-miss refusals; measured once with the round-30 answerer before any change, failures not read"),
        QuestionSet("fresh43", own / "qa_fresh43.jsonl", "held-out", "written at the start of the thirty-fourth round by a tester who saw neither code nor any question: 27 everyday questions covering all 25 laws, 30 on all seven bureau reports (addressee, signature, copy lines, document numbers, table cells, postcode), 23 near-miss refusals; measured once with the round-30 answerer before any change, failures not read"),
        QuestionSet("fresh44", own / "qa_fresh44.jsonl", "held-out", "written in the thirty-fourth round by a tester who saw neither code nor any question: 27 chat-style questions covering all 25 laws, 30 on all seven bureau reports (short bureau names, table cells, signature and copy lines, document numbers), 23 near-miss refusals; measured once with the round-30 answerer and the round-34 checker before any further change, failures not read"),
        QuestionSet("fresh45", own / "qa_fresh45.jsonl", "train", "written in the thirty-fifth round by a tester who saw neither code nor any question: 36 questions on all 25 laws typed as a busy official would (a concrete situation, everyday words, colloquial or no law names, yes/no and negated questions), 12 on all seven bureau reports, 12 near-miss refusals; measured once with the round-30 answerer before any change, failures read in round 41; joined training in round 48, its failures read by then"),
        QuestionSet("fresh46", own / "qa_fresh46.jsonl", "held-out", "written in the thirty-fifth round by a tester who saw neither code nor any question: 40 questions on all seven bureau reports as a colleague preparing their own report asks them (abbreviations, counts and table cells, named measures, header and signature lines, two facts at once), 8 everyday questions on the laws, 12 near-miss refusals; measured once with the round-30 answerer before any change, failures not read"),
        QuestionSet("fresh47", own / "qa_fresh47.jsonl", "held-out", "written at the start of the thirty-sixth round by a tester who saw neither code nor any question: 30 questions on all 25 laws as a new clerk or field auditor describes a situation at work (everyday words, yes/no, what happens if, time limits, amounts, who decides), 18 on all seven bureau reports (7 on the own report in the first person; figures, dates, names, addressee, copy and signature lines, document numbers, a table cell), 12 near-miss refusals checked against every document; measured once with the round-30 answerer before any change, failures not read"),
        QuestionSet("fresh48", own / "qa_fresh48.jsonl", "train", "written at the start of the thirty-seventh round by a tester who saw neither code nor any question: 30 questions on all 25 laws as an affected citizen or company owner, a journalist checking a figure or a new audit-bureau clerk asks them (everyday words, a situation instead of the term), 18 on all seven bureau reports (titles, issuers, date lines, counts), 12 near-miss refusals; measured once with the round-36 answerer before any change (0.812 / 0.000 / 0.750, hit@1 0.729, hit@5 0.896) and the same with the round-37 answerer, failures read in round 41; joined training in round 48, its failures read by then"),
        QuestionSet("fresh49", own / "qa_fresh49.jsonl", "held-out", "written at the end of the thirty-seventh round by a tester who saw neither code nor any question: 30 questions on all 25 laws (articles from the middle and end of each law) as a department head asks in keywords, a legal adviser asks with conditions or a member of the public without legal words, 18 on all seven bureau reports (6 on the own report in the first person: tables, named campaigns, admitted problems, plans, contact details), 12 near-miss refusals; measured once with the round-37 answerer, failures not read"),
        QuestionSet("fresh50", own / "qa_fresh50.jsonl", "train", "written at the start of the thirty-eighth round by a tester who saw neither code nor any question: 30 questions on all 25 laws (articles from the middle and end of each law) as an auditor types keywords, a lawyer asks with a scenario or a citizen asks in everyday words, 18 on all seven bureau reports (5 on the own report in the first person: tables, trainings, admitted problems, plans, contact details, issuer and date), 12 near-miss refusals; measured once with the round-37 answerer, failures read in the fortieth round (they led to the enumeration rule); joined training in round 48, its failures read by then"),
        QuestionSet("fresh51", own / "qa_fresh51.jsonl", "train", "written at the start of the thirty-eighth round by a second tester who saw neither code nor any question: 28 short colloquial questions on all 25 laws (deadlines, amounts, who decides, exceptions, prohibitions, procedures) as a new clerk or a citizen on the phone asks, 20 on all seven bureau reports (tables, named rules, trainings, admitted problems, plans, trailers; some ask two facts at once), 12 near-miss refusals; measured once with the round-37 answerer, failures read in the fortieth round (they led to the enumeration rule); joined training in round 48, its failures read by then"),
        QuestionSet("fresh52", own / "qa_fresh52.jsonl", "train", "written at the start of the thirty-ninth round by a tester who saw neither code nor any question: 30 questions on all 25 laws by people who are not lawyers and tell their situation in everyday words (a shop owner fined, a citizen asking for a document, a clerk sanctioned, a contractor, a petitioner), 18 on all seven bureau reports (6 on the own report in the first person, the others by place name, some with the year; figures, measures, trainings, admitted problems, plans, title, issuer, date), 12 near-miss refusals; measured once with the round-38 answerer, failures read in the fortieth round (they led to the enumeration rule); joined training in round 48, its failures read by then"),
        QuestionSet("fresh53", own / "qa_fresh53.jsonl", "train", "written at the start of the thirty-ninth round by a second tester who saw neither code nor any question: 30 questions on all 25 laws as busy staff type into a search box (bare keywords, office abbreviations, yes/no and two-part questions), 18 on all seven bureau reports (5 on the own report naming no bureau; table figures, counts, named platforms, roles, problems, title, issuer, date, addressee), 12 near-miss refusals; measured once with the round-38 answerer, failures read in the fortieth round (they led to the enumeration rule); joined training in round 48, its failures read by then"),
        QuestionSet("fresh54", own / "qa_fresh54.jsonl", "held-out", "written at the start of the fortieth round by a tester who saw neither code nor any question: 30 questions on all 25 laws as a new colleague asks a senior one on the office chat (a preamble or context, two sentences, six with a wrong assumption the law corrects), 16 on the six other bureaus' reports (by place name, some with the year), 6 on the own report in the first person, 8 near-miss refusals; measured once with the round-38 answerer, failures not read"),
        QuestionSet("fresh55", own / "qa_fresh55.jsonl", "held-out", "written at the start of the fortieth round by a second tester who saw neither code nor any question: 34 questions on all seven bureau reports as a colleague at another bureau benchmarks them (figures, named rules, trainings, cases, table rows, dates; in everyday words, never the report's phrasing; each names the bureau by place), 16 on 12 laws as someone preparing a training talk asks for the exact rule (amounts, periods, who approves, exceptions), 10 near-miss refusals; measured once with the round-38 answerer, failures not read"),
        QuestionSet("fresh56", own / "qa_fresh56.jsonl", "held-out", "written at the end of the fortieth round by a tester who saw neither code nor any question: 28 questions on all 25 laws as a legal-affairs officer asks about procedure, conditions, exceptions and who approves, 20 on all seven bureau reports as a records clerk asks what which bureau did in which year, 12 near-miss refusals (mostly a year with no report for the bureau named, or a bureau not indexed); measured once with the round-40 answerer, failures not read"),
        QuestionSet("fresh57", own / "qa_fresh57.jsonl", "held-out", "written at the start of the forty-first round by a tester who saw neither code nor any question: 30 questions on all 25 laws as a section chief preparing for a law-enforcement inspection types them (about half as search-box keywords without a question mark, half as everyday questions, some with a case from work), 18 on all seven bureau reports (figures, named measures, who signed or issued, dates), 12 near-miss refusals; measured once with the round-40 answerer before any change, failures not read"),
        QuestionSet("fresh58", own / "qa_fresh58.jsonl", "held-out", "written at the start of the forty-first round by a second tester who saw neither code nor any question: 26 questions on all 25 laws as an auditor in the field asks them in the words of someone who has never read the text (ten answered by an exception or a condition), 22 on all seven bureau reports as a colleague drafting her own report borrows from them (how a bureau handled a topic, its figures, title, date, addressee, issuer, first and last lines), 12 near-miss refusals; measured once with the round-40 answerer before any change, failures not read"),
        QuestionSet("fresh59", own / "qa_fresh59.jsonl", "held-out", "written at the start of the forty-second round by a tester who saw neither code nor any question: 28 questions on 21 laws as a clerk of a legal affairs office asks them in the middle of a case (information-disclosure requests, reconsideration, penalty files; time limits, who decides, exceptions), 20 on all seven bureau reports as a new colleague compiling a comparison table asks them (which bureau did what, figures, titles, dates, addressees; two asking the same fact of two bureaus), 12 near-miss refusals; measured once with the round-41 answerer before any change, failures not read"),
        QuestionSet("fresh60", own / "qa_fresh60.jsonl", "held-out", "written at the start of the forty-third round by a tester who saw neither code nor any question: 28 questions on all 25 laws as an auditor in the field types them on a phone (short, blunt, colloquial, often without punctuation: audit procedure, budgets, fiscal penalties, compensation, what a body may or may not do), 20 on all seven bureau reports as a deputy director preparing a speech asks them politely and indirectly (a figure, a measure, next year's plans, title, date, signature, addressee, document number), 12 near-miss refusals; measured once with the round-42 answerer before any change, failures not read"),
        QuestionSet("fresh61", own / "qa_fresh61.jsonl", "train", "written at the start of the forty-fourth round by a tester who saw neither code nor any question: 28 questions on 24 laws as a first-year auditor asks a senior colleague in chat (long-winded, with the case at hand, everyday words for the documents' terms), 20 on all seven bureau reports asked as a colleague would (counts, dates, which measures), 12 near-miss refusals; measured once with the round-42 answerer before any change, failures not read; joined training in round 48, its failures read by then"),
        QuestionSet("fresh62", own / "qa_fresh62.jsonl", "held-out", "written at the start of the forty-fifth round by a tester who saw neither code nor any question: 24 questions on 24 laws as a county auditor types them fast in a work chat (terse, case first, everyday words, informal law names), 24 on 22 bureau reports by place and year (figures, activities, dates, document numbers, addressee, signature and 抄送 lines), 12 near-miss refusals (years and a bureau not indexed, two rules not among the 25, articles past a law's end, details the reports leave out); measured once with the round-45 answerer, failures not read"),
        QuestionSet("fresh63", own / "qa_fresh63.jsonl", "train", "written at the start of the forty-fifth round by a tester who saw neither code nor any question: 24 questions on 24 laws as a member of the public and a new service-window clerk ask them (full polite sentences, the situation as it happened, yes/no questions, no legal terms), 24 on 21 bureau reports by place and year (activities, counts, dates, signatures, where to apply, comparisons of two bureaus or years), 12 near-miss refusals (details not stated, years and bureaus not indexed, an opinion, laws not among the 25); measured once with the round-45 answerer, failures not read; joined training in round 48, its failures read by then"),
        QuestionSet("fresh64", own / "qa_fresh64.jsonl", "held-out", "written at the start of the forty-sixth round by a tester who saw neither code nor any question: 26 questions on 25 laws as a people's-congress deputy, their liaison staff or a city-newspaper journalist asks them (own words, a preamble, two sentences); 22 on all seven bureau reports (5 on the own report in the first person); 12 near-miss refusals; measured once with the round-45 system before any change, failures not read"),
        QuestionSet("fresh65", own / "qa_fresh65.jsonl", "held-out", "written at the start of the forty-sixth round by a tester who saw neither code nor any question: 26 questions on 22 laws as the finance director of an audited school, hospital or company asks a friend at the audit bureau (office words, the situation first, some terse chat messages); 22 on all seven bureau reports (3 comparisons by a graduate student, 5 on the own report); 12 near-miss refusals; measured once with the round-45 system before any change, failures not read"),
        QuestionSet("fresh66", own / "qa_fresh66.jsonl", "held-out", "written at the start of the forty-seventh round by a tester who saw neither code nor any question: 28 questions on all 25 laws as a discipline-inspection officer or the internal auditor of a state company or hospital asks them (trade words, a case first or one terse line); 20 on all seven bureau reports (by city name, 去年 in the bureau's own voice); 12 near-miss refusals; measured once with the round-46 system before any change, failures not read"),
        QuestionSet("fresh67", own / "qa_fresh67.jsonl", "held-out", "written at the start of the forty-seventh round by a second tester who saw neither code nor any question: 28 questions on all 25 laws as items of a legal-knowledge quiz (fill in the blank, true or false with a wrong figure in the claim, why and who); 20 on all seven bureau reports; 12 near-miss refusals; measured once with the round-46 system before any change, failures not read"),
        QuestionSet("fresh68", own / "qa_fresh68.jsonl", "held-out", "written at the start of the forty-eighth round by a tester who saw neither code nor any question: 28 questions on all 25 laws as the outside lawyer or legal counsel of an audited unit asks them (their own legal words, a half-remembered article number, the client's situation first); 20 on all seven bureau reports by place name; 12 near-miss refusals; measured once with the round-47 system before any change, failures not read"),
        QuestionSet("fresh69", own / "qa_fresh69.jsonl", "held-out", "written at the start of the forty-eighth round by a second tester who saw neither code nor any question: 26 questions on all 25 laws as a provincial inspector's checklist or a graduate student's academic words; 22 on all seven bureau reports (headers, dates, signatures, table figures); 12 near-miss refusals; measured once with the round-47 system before any change, failures not read"),
        QuestionSet("fresh70", own / "qa_fresh70.jsonl", "held-out", "written at the start of the forty-ninth round by a tester who saw neither code nor any question: 26 questions on all 25 laws as a retired cadre advising the legal section asks them (a case from his experience first, sometimes a misremembered figure or law name the answer corrects); 22 on all seven bureau reports as the justice bureau's rule-of-law assessor checks evidence (7 on the own report as 我局; headers, trailers, table figures); 12 near-miss refusals; measured once with the round-48 system before any change, failures not read"),
        QuestionSet("fresh71", own / "qa_fresh71.jsonl", "held-out", "written at the start of the forty-ninth round by a second tester who saw neither code nor any question: 28 questions on all 25 laws as a 12345 hotline operator relays a caller (the fact described instead of the term, yes/no answered by a condition or exception) or an exam candidate asks in textbook words; 20 on all seven bureau reports (8 on the own report as 我们局); 12 near-miss refusals; measured once with the round-48 system before any change, failures not read"),
        QuestionSet("fresh72", own / "qa_fresh72.jsonl", "held-out", "written in the forty-ninth round, after its changes, by a tester who saw neither code nor any question: 26 questions on all 25 laws as a website FAQ's plain 问：…？ or an audited company's accountant in accounting words (账, 凭证, 款项); 22 on all seven bureau reports (8 on the own report as 我局); 12 near-miss refusals; measured once with the round-49 system, failures not read"),
        QuestionSet("fresh73", own / "qa_fresh73.jsonl", "held-out", "written at the start of the fiftieth round by a tester who saw neither code nor any question: 27 questions on all 25 laws as a people's congress deputy preparing a hearing on audit and budget work asks them, or a staff member newly transferred from the finance bureau asks in blunt everyday verbs (查, 管, 报, 交, 罚); 21 on all seven bureau reports (8 on the own report as 我局/咱们局); 12 near-miss refusals; measured once with the round-49 system before any change, failures not read"),
        QuestionSet("fresh74", own / "qa_fresh74.jsonl", "held-out", "written at the start of the fiftieth round by a second tester who saw neither code nor any question: 27 questions on all 25 laws as a local journalist asks in media words (老百姓, 门槛, 红线, 说法) or a township official describes the situation instead of the legal term; 21 on all seven bureau reports (7 on the own report as 我局); 12 near-miss refusals; some typed without punctuation; measured once with the round-49 system before any change, failures not read"),
        QuestionSet("fresh75", own / "qa_fresh75.jsonl", "held-out", "written at the start of the fifty-first round by a tester who saw neither code nor any question: 25 questions on all 25 laws as a lawyer for audited or fined companies asks, sceptical and practical, often with background first, or a new county-office clerk asks in short textbook words; 23 on all seven bureau reports (8 on the own report as 我局); 12 near-miss refusals; measured once with the round-50 system before any change, failures not read"),
        QuestionSet("fresh76", own / "qa_fresh76.jsonl", "held-out", "written at the start of the fifty-first round by a second tester who saw neither code nor any question: 26 questions on all 25 laws as a discipline-inspection officer checks facts in officialese (口径, 时限, 主体, 情形) or a retired cadre asks in colloquial northern Mandarin, often with a story first (我听说…是真的吗, 这事归谁管); yes/no and which-kinds questions; 22 on all seven bureau reports (8 on the own report); 12 near-miss refusals; measured once with the round-50 system before any change, failures not read"),
        QuestionSet("fresh77", own / "qa_fresh77.jsonl", "held-out", "written at the start of the fifty-second round by a tester who saw neither code nor any question: 27 questions on all 25 laws as a petitioner who feels wronged tells his story first in everyday words (被罚了, 拖着不办, 能不能告他们) or a procuratorate official asks short questions in procedural words (起算, 期间, 法定情形, 移送, 管辖); 21 on all seven bureau reports (8 on the own report, named as 开封市审计局 by outsiders); 12 near-miss refusals; measured once with the round-51 system before any change, failures not read"),
        QuestionSet("fresh78", own / "qa_fresh78.jsonl", "held-out", "written at the start of the fifty-second round by a second tester who saw neither code nor any question: 26 questions on all 25 laws as a young civil servant types in a work chat (no punctuation, short forms such as 审计条例, 政务公开, 复议, a homophone typo, two asks run together) or a statistics clerk compiles a comparison (figures, counts, dates, 哪个更多, 第几项); 22 on all seven bureau reports (8 on the own report); 12 near-miss refusals; measured once with the round-51 system before any change, failures not read"),
        QuestionSet("fresh79", own / "qa_fresh79.jsonl", "held-out", "written in the fifty-second round by a tester who saw neither code nor any question: 27 questions on all 25 laws, most as a private-enterprise owner dealing with audited projects, procurement and investment asks in business words (回款, 结算, 垫资, 被查, 罚多少), often two or three sentences of his situation first, some as a colleague in the bureau office asks which article to quote; 23 on all seven bureau reports (8 on the own report as 我局); 12 near-miss refusals; measured once with the round-51 system, failures not read"),
        QuestionSet("fresh80", own / "qa_fresh80.jsonl", "train", "written at the start of the fifty-third round as training questions of the weak kind, by a tester who saw neither code nor any question: 51 of 60 tell a story first (a shop owner or villager fined or kept waiting, a township official describing a case at work); 30 on all 25 laws, 18 on all seven bureau reports, 12 near-miss refusals; measured once with the round-52 system before any change, then read (training: the next `make calibrate` fits on it; round 53 did not refit)"),
        QuestionSet("fresh81", own / "qa_fresh81.jsonl", "train", "written at the start of the fifty-third round as training questions of the weak kind, by a second tester who saw neither code nor any question: 59 of 60 give two to four sentences of background first, 67 to 129 characters (a company or hospital finance manager under audit, a new clerk of 开封市审计局 writing to a colleague); 29 on all 25 laws, 19 on all seven bureau reports, 12 near-miss refusals; measured once with the round-52 system before any change, then read (training: the next `make calibrate` fits on it; round 53 did not refit)"),
        QuestionSet("fresh82", own / "qa_fresh82.jsonl", "held-out", "written at the start of the fifty-third round by a tester who saw neither code nor any question: 26 questions on all 25 laws and 22 on all seven bureau reports, as a retired teacher writes to the 12345 hotline (greeting, what happened, then the question) or a newspaper reporter says what her story is about and asks for a figure, date, document or rule; 12 near-miss refusals; measured with the round-52 system before any change, failures not read"),
    ]


@dataclass(frozen=True)
class EvalSetup:
    """An index and a user the question sets are asked against (the way the sets were written)."""

    name: str
    paths: tuple[Path, ...]
    org: str | None
    sets: tuple[str, ...]


def eval_setups(settings) -> list[EvalSetup]:
    """`shared`: the sample report and the laws (one bureau). `bureaus`: the same plus other bureaus'
    reports and the multi-organisation fixtures, for a user at 开封市审计局 (RAG_ORG)."""
    shared = settings.eval.dev_set.parent.parent
    root = settings.eval.sets_dir.parent
    one = (root / "corpus", shared / "corpus")
    many = one + (shared / "eval" / "multi-bureau" / "reports", root / "tests" / "fixtures" / "orgs")
    one_sets = ("dev", "project", "holdout")  # every other set is asked of `bureaus`
    return [
        EvalSetup("shared", tuple(p for p in one if p.exists()), None, one_sets),
        EvalSetup("bureaus", tuple(p for p in many if p.exists()), "开封市审计局", tuple(q.name for q in question_sets(settings) if q.name not in one_sets)),
    ]


def setup_components(settings, setup: EvalSetup, base_index: Path):
    """Components for one evaluation setup, with its own index directory under `base_index`."""
    from rag.components import build

    return build(settings.with_index(base_index / setup.name).with_(answer={"org": setup.org}))


def indexed_setups(settings, base_index: Path) -> Iterator[tuple[EvalSetup, Any, list[tuple[QuestionSet, EvalItem]]]]:
    """Each evaluation setup with its components (its documents indexed if need be) and the questions of
    its sets, each with its set."""
    from rag.ingest import ingest_paths

    by_name = {s.name: s for s in question_sets(settings)}
    for setup in eval_setups(settings):
        components = setup_components(settings, setup, base_index)
        ingest_paths(components.index, setup.paths, show_bar=False)
        yield setup, components, [(by_name[name], item) for name in setup.sets for item in load_dataset(by_name[name].path)]


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    sources: tuple[str, ...]
    contains: tuple[str, ...]
    refuse: bool
    history: tuple[str, ...] = ()
    category: str = ""


@dataclass(frozen=True)
class Passage:
    source: str
    text: str
    title: str = ""
    section: str = ""


@dataclass(frozen=True)
class Prediction:
    """What a system returned for one item, in the shape every metric reads."""

    answer: str
    refused: bool
    citations: dict[int, Passage]
    ranked: tuple[Passage, ...]
    latency_ms: float


@dataclass
class ItemResult:
    id: str
    question: str
    category: str
    answer: str
    refused: bool
    expected_refuse: bool
    correct: bool
    rank: int | None
    latency: float  # milliseconds, end to end
    supported_pairs: int
    total_pairs: int
    citations: list[dict] = field(default_factory=list)


def load_dataset(path: str | Path) -> list[EvalItem]:
    items: list[EvalItem] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} 第{n}行不是合法的 JSON：{exc}") from exc
            expected = raw.get("expected") or {}
            source = expected.get("source") or ()
            sources = tuple(source) if isinstance(source, list) else ((source,) if source else ())
            items.append(
                EvalItem(
                    id=str(raw.get("id", n)),
                    question=raw["question"],
                    sources=sources,
                    contains=tuple(expected.get("contains") or ()),
                    refuse=bool(expected.get("refuse")),
                    history=tuple(raw.get("history") or ()),
                    category=raw.get("category", ""),
                )
            )
    return items


def passage_matches(item: EvalItem, passage: Passage) -> bool:
    text = squash(passage.text)
    return passage.source in item.sources and all(squash(c) in text for c in item.contains)


def first_relevant_rank(item: EvalItem, ranked: Sequence[Passage]) -> int | None:
    for i, passage in enumerate(ranked, start=1):
        if passage_matches(item, passage):
            return i
    return None


def is_correct(item: EvalItem, pred: Prediction) -> bool:
    """Not refused; the answer holds every expected string; the cited passages from an expected
    source hold them too (a list answer may spread them over several cited passages)."""
    if item.refuse:
        return pred.refused
    if pred.refused:
        return False
    answer = squash(pred.answer)
    if not all(squash(c) in answer for c in item.contains):
        return False
    cited = [squash(p.text) for p in pred.citations.values() if p.source in item.sources]
    return all(any(squash(c) in text for text in cited) for c in item.contains)


def default_support(sentence: str, passage: Passage) -> bool:
    return check_support(sentence, passage.text, context=f"{passage.title} {passage.section}").supported


def citation_pairs(pred: Prediction, support: SupportFn | None = None) -> tuple[int, int]:
    """(supported, total) over (answer sentence, cited passage) pairs."""
    support = support or default_support
    supported = total = 0
    for sentence in CITED_SENTENCE.findall(pred.answer):
        for n in (int(m) for m in MARKER.findall(sentence)):
            total += 1
            passage = pred.citations.get(n)
            if passage is not None and support(sentence, passage):
                supported += 1
    return supported, total


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summarize(items: Sequence[EvalItem], results: Sequence[ItemResult]) -> dict:
    answerable = [r for r in results if not r.expected_refuse]
    refusals = [r for r in results if r.expected_refuse]
    ranks = [r.rank for r in answerable]
    supported = sum(r.supported_pairs for r in results)
    pairs = sum(r.total_pairs for r in results)
    latencies = [r.latency for r in results]

    def share(n: int, d: int) -> float:
        return round(n / d, 4) if d else 0.0

    return {
        "retrieval": {
            "hit@1": share(sum(1 for r in ranks if r is not None and r <= 1), len(answerable)),
            "hit@5": share(sum(1 for r in ranks if r is not None and r <= 5), len(answerable)),
            "mrr": round(sum(1 / r for r in ranks if r) / len(answerable), 4) if answerable else 0.0,
        },
        "answer_accuracy": share(sum(1 for r in answerable if r.correct), len(answerable)),
        "refusal_recall": share(sum(1 for r in refusals if r.refused), len(refusals)),
        "false_refusal_rate": share(sum(1 for r in answerable if r.refused), len(answerable)),
        "citation_precision": share(supported, pairs),
        "latency_ms": {"p50": round(percentile(latencies, 50), 2), "p95": round(percentile(latencies, 95), 2)},
    }


System = Callable[[EvalItem], Prediction]


def run_system(
    items: Sequence[EvalItem],
    system: System,
    progress: Callable[[int, int], None] | None = None,
    support: SupportFn | None = None,
) -> tuple[dict, list[ItemResult]]:
    results: list[ItemResult] = []
    for n, item in enumerate(items, start=1):
        pred = system(item)
        supported, total = citation_pairs(pred, support)
        results.append(
            ItemResult(
                id=item.id,
                question=item.question,
                category=item.category,
                answer=pred.answer,
                refused=pred.refused,
                expected_refuse=item.refuse,
                correct=is_correct(item, pred),
                rank=None if item.refuse else first_relevant_rank(item, pred.ranked),
                latency=round(pred.latency_ms, 2),
                supported_pairs=supported,
                total_pairs=total,
                citations=[{"id": n, "source": p.source, "text": p.text} for n, p in sorted(pred.citations.items())],
            )
        )
        if progress:
            progress(n, len(items))
    return summarize(items, results), results


# ---------------------------------------------------------------- the system under test


def system_predictor(assistant) -> System:
    """Adapter: ask the assistant (with the item's history as earlier turns) and time it end to end."""
    from rag.text import normalize_question

    def predict(item: EvalItem) -> Prediction:
        history = assistant.turns(item.history)
        started = time.perf_counter()
        answer = assistant.ask(item.question, history=history, use_llm=False)
        latency = (time.perf_counter() - started) * 1000
        resolved = answer.resolved or assistant.resolve(normalize_question(item.question), history)
        ranked = assistant.retriever.search(resolved, k=10).hits
        return prediction_of(answer, tuple(Passage(h.source, h.text, h.title, h.section) for h in ranked), latency)

    return predict


def prediction_of(answer, ranked: tuple[Passage, ...] = (), latency_ms: float = 0.0) -> Prediction:
    """An assistant's Answer in the shape every metric reads (no citations when it refused)."""
    cited = {} if answer.refused else {c.id: Passage(c.source, c.text, c.title, c.section) for c in answer.citations}
    return Prediction(answer=answer.answer, refused=answer.refused, citations=cited, ranked=ranked, latency_ms=latency_ms)




# ---------------------------------------------------------------- one `rag eval` run

METRIC_ROWS = (
    ("retrieval.hit@1", "检索 hit@1"),
    ("retrieval.hit@5", "检索 hit@5"),
    ("retrieval.mrr", "检索 MRR"),
    ("answer_accuracy", "回答准确率"),
    ("refusal_recall", "拒答召回率"),
    ("false_refusal_rate", "误拒率"),
    ("citation_precision", "引文精确率"),
    ("latency_ms.p50", "时延 p50 (ms)"),
    ("latency_ms.p95", "时延 p95 (ms)"),
)


def metric_value(metrics: dict | None, dotted: str):
    value = metrics
    for key in dotted.split("."):
        if value is None:
            return None
        value = value.get(key)
    return value
