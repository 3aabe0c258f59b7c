"""Comparing two versions: exact, readable, and bounded whatever an author sends."""

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.casestudies.diff import MAX_SHOWN_LINES, compare


def sides(diff) -> tuple[list[str], list[str]]:
    """Rebuild the two versions from a comparison shown in full."""
    before = [line.text for line in diff.lines if line.op in " -"]
    after = [line.text for line in diff.lines if line.op in " +"]
    return before, after


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


def test_only_the_changed_words_are_marked():
    (diff,) = compare({"title": "Rugby allies day"}, {"title": "Rugby allies evening"})
    assert [(line.op, line.parts) for line in diff.lines] == [
        ("-", ((False, "Rugby allies "), (True, "day"))),
        ("+", ((False, "Rugby allies "), (True, "evening"))),
    ]


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
    removed, added = diff.lines
    assert [text for changed, text in removed.parts if changed] == ["word7000"]
    assert [text for changed, text in added.parts if changed] == ["changed"]


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
