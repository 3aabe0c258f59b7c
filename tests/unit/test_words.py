"""How a typed question becomes clauses: the rules both search backends share."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from portal.search.analysis import SYNONYMS
from portal.search.words import MAX_PHRASE_FORMS, MAX_PIECES, MAX_WEAK, Clause, Option, parse


def words_of(text: str, **options) -> list[list[tuple[str, ...]]]:
    """Each clause's options as typed (everyday words, weak options, left out)."""
    return [
        [o.words for o in c.options if not o.weak] for c in parse(text, SYNONYMS, **options).clauses
    ]


def typed(clause: Clause) -> tuple[Option, ...]:
    return tuple(o for o in clause.options if not o.weak)


def test_common_words_are_left_out_unless_nothing_else_was_typed():
    assert words_of("how did the forces engage") == [[("forces",)], [("engage",)]]
    assert words_of("the") == [[("the",)]]
    assert words_of("the OR misogyny") == [[("the",), ("misogyny",)]]  # joined by OR: kept


def test_an_acronym_and_its_words_go_both_ways():
    expected = [("vawg",), ("violence", "against", "women", "and", "girls")]
    assert sorted(words_of("VAWG")[0]) == sorted(expected)
    assert sorted(words_of('"violence against women and girls"')[0]) == sorted(expected)
    # Typed in plain words, each word is a clause (most of the words still count them one
    # by one), and the acronym meets each.
    assert words_of("violence against women and girls") == [
        [("violence",), ("vawg",)],
        [("women",), ("vawg",)],
        [("girls",), ("vawg",)],
    ]


def test_the_glossary_is_each_meaning_both_ways_plurals_included():
    from portal.reference import glossary

    listed = {term: expansion for term, (expansion, _) in glossary().items()}

    def read(text: str) -> list[tuple[str, ...]]:
        return sorted(o.words for o in parse(text, listed).clauses[0].options)

    assert ("multi", "agency", "risk", "assessment", "conference") in read("MARAC")
    assert ("marac",) in read("multi-agency risk assessment conference")
    assert ("marac",) in read('"multi-agency risk assessment conference"')
    assert ("detective", "constables") in read("DCs") and ("dcs",) in read("detective constables")
    pip = read("PIP")  # two meanings, each searched
    assert ("personal", "independence", "payment") in pip
    assert ("professionalising", "investigation", "programme") in pip
    assert ("pip",) in read("personal independence payment")


def test_the_glossary_is_well_formed():
    import re

    from portal.reference import glossary

    found = glossary()
    assert len(found) >= 300
    for term, (expansion, source) in found.items():
        assert re.fullmatch(r"[a-z0-9]{2,40}", term), term
        assert 2 <= len(expansion) <= 200 and "  " not in expansion, term
        assert all(m.strip() for m in expansion.split("|")), term
        assert source and len(source) <= 160, term
    assert set(SYNONYMS) <= set(found)  # what the search always knew stays known


def test_everyday_words_are_weak_options_of_the_words_typed():
    def weak(text: str) -> list[list[tuple[str, ...]]]:
        return [[o.words for o in c.options if o.weak] for c in parse(text, {}).clauses]

    assert ("children",) in weak("kids")[0] and ("kids",) in weak("children")[0]
    assert ("children",) in weak("kid")[0]  # a singular finds its plural's group
    assert weak("monthly") == [[]] and weak("flat") == [[]]  # words of their own
    assert weak("ladies")[0] == [("women",)] and weak("lady")[0] == [("women",)]
    assert ("licensed", "premises") not in weak("pubs")[0]  # groups are not chained
    assert ("door", "supervisors") in weak("bouncers")[0]
    # Words of several typed in a row: each typed word stays a clause, each met weakly by
    # the group's other forms (and by its own word's group).
    young = weak("young people at night")
    assert ("youngsters",) in young[0] and ("youngsters",) in young[1] and young[2] == []
    assert ("parents",) in weak("mums and dads")[0] and ("mothers",) in weak("mums and dads")[0]
    # An exclusion excludes only what was typed; in quotes, only the words typed count.
    assert weak("football -kids") == [[("footie",), ("footy",), ("soccer",)], []]
    assert weak('"kids"') == [[]] and weak('"young people"') == [[]]
    # Never a word twice, never more than MAX_WEAK to a clause.
    for clause in parse("police officers alleyway kids mums", {}).clauses:
        words = [o.words for o in clause.options]
        assert len(words) == len(set(words)) and sum(o.weak for o in clause.options) <= MAX_WEAK


def test_the_everyday_words_are_well_formed():
    import csv
    import io
    from importlib import resources

    raw = resources.files("portal").joinpath("data/everyday.csv").read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert len(rows) >= 100
    seen: set[str] = set()
    for row in rows:
        forms = row["words"].split("|")
        assert len(forms) >= 2 and row["source"], row
        for form in forms:
            assert re.fullmatch(r"[a-z]+( [a-z]+)*", form), form
            assert form not in seen, form  # one group a form
            seen.add(form)


def test_compounds_in_quotes_are_each_way_of_writing_them():
    known = {"night", "time", "nighttime"}.intersection
    forms = words_of('"nighttime economy"', known=lambda ws: known(ws))[0]
    assert ("night", "time", "economy") in forms and ("nighttime", "economy") in forms


def test_only_the_last_word_of_a_search_being_typed_is_a_prefix():
    clauses = parse("rugby pla", SYNONYMS, partial=True).clauses
    assert typed(clauses[0]) == (Option(("rugby",)),)
    assert clauses[1].options == (Option(("pla",), prefix=True),)
    assert parse("rugby pla", SYNONYMS).clauses[1].options == (Option(("pla",)),)


def test_a_last_letter_alone_waits_for_the_next():
    clauses = parse("rugby p", SYNONYMS, partial=True).clauses
    assert [typed(c) for c in clauses] == [(Option(("rugby",)),)]


def test_exclusions_and_or_are_read():
    clauses = parse("misogyny -movember menopause OR bystander", SYNONYMS).clauses
    assert [c.negated for c in clauses] == [False, True, False]
    assert [o.words for o in typed(clauses[2])] == [("menopause",), ("bystander",)]


def test_what_one_question_costs_is_bounded():
    long = " ".join(f"w{n}-x{n}-y{n}" for n in range(200))
    assert len(parse(long, SYNONYMS).clauses) <= MAX_PIECES
    phrase = '"' + " ".join(f"a{n}-b{n}" for n in range(30)) + '"'
    assert len(parse(phrase, SYNONYMS).clauses[0].options) <= MAX_PHRASE_FORMS + 1


@given(st.text(max_size=300))
def test_any_text_parses_into_bounded_clauses_of_plain_words(text):
    for partial in (False, True):
        question = parse(text, SYNONYMS, partial=partial, known=lambda ws: set(ws))
        assert len(question.clauses) <= MAX_PIECES
        for clause in question.clauses:
            assert clause.options and len(clause.options) <= MAX_PHRASE_FORMS + 4
            for option in clause.options:
                assert option.words and all(w and "-" not in w for w in option.words)


def test_a_spelling_is_applied_without_asking_only_when_sure():
    from portal.search.analysis import sure

    assert sure("menapause support", "menopause support", one_edit=True)
    assert sure("promtion exam sergant", "promotion exam sergeant", one_edit=False)
    assert not sure("york", "work", one_edit=False)  # four letters: a place, perhaps
    assert not sure("rugby devonn", "rugby dvpn", one_edit=True)  # two edits, beside a find
    assert sure('"domestic abusse"', '"domestic abuse"', one_edit=True)
