"""Comparing two versions: exact, readable, and bounded whatever an author sends."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.casestudies import diff as diff_module
from portal.casestudies.diff import ADDED, BUDGET, MAX_SHOWN_LINES, REMOVED, SAME, compare


def sides(diff) -> tuple[list[str], list[str]]:
    """Rebuild the two versions from a comparison shown in full."""
    before = [line.before for line in diff.lines if line.op in " -~"]
    after = [line.after for line in diff.lines if line.op in " +~"]
    return before, after


def marked(line, kind) -> list[str]:
    return [text for piece_kind, text in line.parts if piece_kind == kind]


lines = st.lists(
    st.sampled_from(["", "rugby", "allies", "the", "fire service", "a b a"]), max_size=30
)
texts = st.lists(st.text(alphabet=st.sampled_from("ab \n.£é"), max_size=60), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(lines, lines)
def test_a_comparison_holds_both_versions_exactly(old, new):
    changes = compare({"body": "\n".join(old)}, {"body": "\n".join(new)}, context=10**6)
    if "\n".join(old).splitlines() == "\n".join(new).splitlines():
        assert changes == []
        return
    (diff,) = changes
    assert sides(diff) == ("\n".join(old).splitlines(), "\n".join(new).splitlines())


@settings(max_examples=300, deadline=None)
@given(texts, texts)
def test_words_marked_inside_lines_still_spell_both_versions(old, new):
    before, after = "\n".join(old), "\n".join(new)
    for budget in (0, 50, 400_000):  # a spent budget is less fine, never wrong
        changes = compare({"body": before}, {"body": after}, budget=budget, context=10**6)
        if before.splitlines() == after.splitlines():
            assert changes == []
            continue
        assert sides(changes[0]) == (before.splitlines(), after.splitlines())
        for line in changes[0].lines:  # a changed line is one line on both sides
            assert line.op != "~" or "\n" not in line.text


words = st.lists(st.sampled_from(["allies", "rugby", "the", "day", ",", ".", "20."]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(words, words, st.sampled_from([" ", "  ", "\t", " \u00a0", ""]))
def test_what_a_page_shows_reads_as_the_new_version(old, new, space):
    before, after = space.join(old), " ".join(new)
    for diff in compare({"body": before}, {"body": after}, context=10**6):
        for line in diff.lines:
            shown = line.shown
            if line.op == "~":  # without the removed words, the new line (spacing aside)
                kept = "".join(text for kind, text in shown if kind != REMOVED)
                assert "".join(kept.split()) == "".join(line.after.split())
            for kind, text in shown:  # marks hold words; the spaces around them are not marked
                assert kind == SAME or (text and text == text.strip())


def test_only_the_changed_words_are_marked():
    (diff,) = compare({"title": "Rugby allies day"}, {"title": "Rugby allies evening"})
    assert [(line.op, line.parts) for line in diff.lines] == [
        ("~", ((SAME, "Rugby allies "), (REMOVED, "day"), (ADDED, "evening"))),
    ]


def test_a_sentence_added_to_a_paragraph_is_marked_inside_it():
    paragraph = "We walked, we talked. Officers joined in every week."
    added = "We walked, we talked. We raised £12,000. Officers joined in every week."
    (diff,) = compare({"body": f"# Heading\n\n{paragraph}"}, {"body": f"# Heading\n\n{added}"})
    (line,) = [line for line in diff.lines if line.op != " "]
    assert line.op == "~"
    assert marked(line, ADDED) == ["We raised £12,000. "]
    assert marked(line, REMOVED) == []
    assert (line.before, line.after) == (paragraph, added)
    assert line.shown == (
        (SAME, "We walked, we talked. "),
        (ADDED, "We raised £12,000."),
        (SAME, " Officers joined in every week."),
    )


def test_a_word_replaced_shows_the_old_word_removed_and_the_new_one_added():
    (diff,) = compare(
        {"outcomes": "230 walkers; 41 people asked for support."},
        {"outcomes": "230 walkers; 41 asked for support; £12,000 raised."},
    )
    (line,) = diff.lines
    assert line.op == "~"
    assert [piece for piece in line.shown if piece[0] != SAME] == [
        (REMOVED, "people"),
        (ADDED, "; £12,000 raised"),
    ]


def test_a_new_word_with_its_space_is_marked_without_the_space():
    (diff,) = compare({"title": "Walk day"}, {"title": "Walk and talk day"})
    (line,) = diff.lines
    assert line.shown == ((SAME, "Walk "), (ADDED, "and talk"), (SAME, " day"))


def test_spacing_alone_is_kept_exactly_and_shown_as_the_new_spacing():
    (diff,) = compare({"summary": "Rugby  allies day"}, {"summary": "Rugby allies night"})
    (line,) = diff.lines
    assert (line.before, line.after) == ("Rugby  allies day", "Rugby allies night")
    assert line.shown == ((SAME, "Rugby allies "), (REMOVED, "day"), (SAME, " "), (ADDED, "night"))


def test_a_paragraph_rewritten_is_shown_removed_then_added():
    (diff,) = compare(
        {"lessons": "Start planning in September with the club."},
        {"lessons": "Book the hall early; ask partners before summer."},
    )
    assert [line.op for line in diff.lines] == ["-", "+"]
    assert diff.lines[0].before == "Start planning in September with the club."


def test_a_paragraph_split_in_two_is_shown_removed_then_added():
    (diff,) = compare(
        {"body": "We walked. We talked about men's health."},
        {"body": "We walked.\nWe talked about men's health."},
    )
    assert [line.op for line in diff.lines] == ["-", "+", "+"]
    assert sides(diff) == (
        ["We walked. We talked about men's health."],
        ["We walked.", "We talked about men's health."],
    )


def test_a_sentence_added_to_each_of_300_paragraphs_stays_fast_and_inline():
    old = "\n\n".join(f"Paragraph {n}: the allies met on day {n}." for n in range(300))
    new = old.replace(" met on", " met, trained together and met on")
    started = time.perf_counter()
    (diff,) = compare({"body": old}, {"body": new})
    assert time.perf_counter() - started < 5  # a backstop: bench/bounds_bench.py times it
    changed = [line for line in diff.lines if line.op == "~"]
    assert len(changed) == 300
    assert {tuple(marked(line, ADDED)) for line in changed} == {(", trained together and met",)}


def test_long_unchanged_stretches_are_folded_to_a_count():
    old = [f"paragraph {n}" for n in range(100)]
    new = old[:50] + ["a new paragraph"] + old[50:]
    (diff,) = compare({"body": "\n".join(old)}, {"body": "\n".join(new)})
    assert [line.op for line in diff.lines] == ["…", " ", " ", "+", " ", " ", "…"]
    assert (diff.lines[0].folded, diff.lines[-1].folded) == (48, 48)


def test_one_word_changed_in_a_100_kb_paragraph_is_found():
    words = " ".join(f"word{n}" for n in range(14_000))
    assert len(words) > 100_000
    (diff,) = compare({"body": words}, {"body": words.replace("word7000 ", "changed ")})
    (line,) = diff.lines
    assert line.op == "~"
    assert (marked(line, REMOVED), marked(line, ADDED)) == (["word7000"], ["changed"])


def test_a_field_rewritten_beyond_reading_is_shown_whole():
    old = "\n".join(f"old line {n}" for n in range(MAX_SHOWN_LINES))
    new = "\n".join(f"new line {n}" for n in range(MAX_SHOWN_LINES))
    (diff,) = compare({"body": old}, {"body": new})
    assert diff.too_large and diff.lines == ()
    assert (diff.before, diff.after) == (old, new)


def test_lists_are_compared_item_by_item():
    (diff,) = compare({"themes": ["Allyship", "Safety"]}, {"themes": ["Allyship", "Sport"]})
    assert [(line.op, line.text) for line in diff.lines] == [
        (" ", "Allyship"),
        ("-", "Safety"),
        ("+", "Sport"),
    ]


def _respaced(words: list[str], everywhere: bool) -> tuple[str, str]:
    """A paragraph and the same words spaced differently at both ends, or everywhere."""
    new = " ".join(words)
    if everywhere:
        return new.replace(" ", "  "), new
    first, last = new.index(" "), new.rindex(" ")
    return f"{new[:first]}  {new[first + 1 : last]}  {new[last + 1 :]}", new


@pytest.mark.parametrize("everywhere", [False, True], ids=["at both ends", "everywhere"])
def test_the_same_words_spaced_differently_cost_what_the_budget_allows(monkeypatch, everywhere):
    # The words between the changed spaces are matched one by one, then marked a piece each:
    # that work is charged to the budget, so past it the paragraph is shown removed and
    # added (less fine, still exact), and the pieces are bounded by what was charged.
    words = [f"word{n}" for n in range(10_000 if everywhere else 11_000)]
    old, new = _respaced(words, everywhere)
    assert 80_000 < max(len(old), len(new)) <= 100_000
    budgets: list[diff_module._Budget] = []
    pieces: list[int] = []

    class Budget(diff_module._Budget):
        def __init__(self, items: int) -> None:
            super().__init__(items)
            budgets.append(self)

    lines_of = diff_module._lines_of
    monkeypatch.setattr(diff_module, "_Budget", Budget)
    monkeypatch.setattr(diff_module, "_lines_of", lambda p: pieces.append(len(p)) or lines_of(p))

    (diff,) = compare({"body": old}, {"body": new})
    (line,) = diff.lines
    assert line.op == "~" and (line.before, line.after) == (old, new)
    spent = BUDGET - budgets[-1].left
    assert spent >= 2 * len(words) - 4  # each word was charged, on both sides
    assert pieces[-1] <= 3 * spent + 3  # at most three pieces a charged word, plus the ends
    if everywhere:
        assert line.shown == ((SAME, new),)  # a change of spacing alone shows the new spacing

    (diff,) = compare({"body": old}, {"body": new}, budget=len(words))
    assert [line.op for line in diff.lines] == ["-", "+"]
    assert sides(diff) == ([old], [new])
    # A few pieces (the same start and end, the words removed and added), not some a word.
    assert pieces[-1] <= 10
