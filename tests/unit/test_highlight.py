"""Snippets: the passage around the first match, escaped, with every match marked."""

from whoosh import query as wq

from portal.search.highlight import positive_terms, snippet


def test_marks_every_form_of_the_word_and_escapes_the_rest():
    html = snippet("<b>Mentoring</b> & mentors: we mentored.", {"mentor"})
    assert html == (
        "&lt;b&gt;<mark>Mentoring</mark>&lt;/b&gt; &amp; <mark>mentors</mark>: we "
        "<mark>mentored</mark>."
    )


def test_a_late_match_is_shown_with_context_and_ellipses():
    text = "opening words " * 30 + "the misogyny event " + "closing words " * 30
    html = snippet(text, {"misogyni"})
    assert html.startswith("… ") and html.endswith(" …")
    assert "<mark>misogyny</mark>" in html
    assert len(html) < 300


def test_no_match_gives_none():
    assert snippet("nothing to see", {"misogyni"}) is None
    assert snippet("", {"word"}) is None


def test_excluded_words_are_not_marked():
    parsed = wq.AndNot(wq.Term("content", "rugbi"), wq.Term("content", "pledg"))
    assert positive_terms(parsed) == {"rugbi"}
    phrase = wq.Or([wq.Phrase("content", ["night", "time"]), wq.Term("title", "nte")])
    assert positive_terms(phrase) == {"night", "time", "nte"}
