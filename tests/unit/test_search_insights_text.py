"""What the search insights keep of a search: normalised words, never an email or a phone."""

from __future__ import annotations

import pytest

from portal.insights.services import keepable, looks_like_email, looks_like_phone, normalise

EMAILS = [
    "jane.smith@kent.police.uk",
    "JANE.SMITH@KENT.POLICE.UK",
    "contact jane@kent please",  # no dot after the @: still an address's shape
    "jane @ kent.police.uk",
    "o'neil+hr@met.police.uk",
    "jane＠kent.police.uk",  # full-width commercial at
    "jane﹫kent.police.uk",  # small commercial at
    "jane\u200b@\u200bkent.police.uk",  # zero-width spaces around the @
    "jane\u202e@kent.police.uk",  # a bidirectional override
    "jane(at)kent.police.uk",
    "jane [at] kent dot police dot uk",
    "jane at kent dot police dot uk",
    "renée.dupont@gendarmerie.fr",
    "用户@例子.中国",
    "x" * 190 + " jane@kent.police.uk",  # past the 200 characters that would be kept
]

PHONES = [
    "1234567",
    "07700900123",
    "07700 900123",
    "07700 900 123",
    "+44 7700 900123",
    "+44 (0)20 7946 0958",
    "(020) 7946 0958",
    "020-7946-0958",
    "020.7946.0958",
    "0161 496 0000",
    "1-800-555-0199",
    "+1 (202) 555-0143",
    "+33 1 23 45 67 89",
    "+49 30 901820",
    "[0]20 7946 0958",
    "020/7946/0958",
    "1 2 3 4 5 6 7",
    "call 07700 900123 after six",
    "07700\u00a0900\u00a0123",  # no-break spaces
    "07700\u2009900\u2009123",  # thin spaces
    "07700–900–123",  # en dashes
    "07700—900—123",  # em dashes
    "07700\u2212900\u2212123",  # minus signs
    "07700\u2011900\u2011123",  # non-breaking hyphens
    "０７７００ ９００１２３",  # full-width digits
    "٠٧٧٠٠٩٠٠١٢٣",  # Arabic-Indic digits
    "۰۷۷۰۰۹۰۰۱۲۳",  # Persian digits
    "०७७०० ९००१२३",  # Devanagari digits
    "𝟎𝟕𝟕𝟎𝟎𝟗𝟎𝟎𝟏𝟐𝟑",  # mathematical bold digits
    "⓪⑦⑦⓪⓪⑨⓪⓪①②③",  # circled digits
    "0770\u200b0900\u200b123",  # zero-width spaces between the digits
    "0\u202e7700900123",  # a bidirectional override inside
    "0\u20667700\u2069900123",  # isolates inside
    "07700\u2028900123",  # a line separator
    "07700\n900\t123",
    "x" * 195 + " 07700 900123",  # starts inside the 200 characters, ends past them
]

KEPT = [
    ("VAWG", "vawg"),
    ("  Domestic   Abuse  ", "domestic abuse"),
    ("Night-time\tECONOMY\u2028plan", "night-time economy plan"),
    ("ＶＡＷＧ", "vawg"),  # full-width letters fold
    ("va\u200bwg", "vawg"),  # a zero-width space is removed
    ("\u202evawg\u202c", "vawg"),  # bidirectional controls are removed
    ("\ufeffmentoring", "mentoring"),
    ("bell\x07 and null\x00", "bell and null"),
    ("Cwmbrân", "cwmbrân"),
    ("ÉQUIPE", "équipe"),
    ("ﬁrearms", "firearms"),  # a ligature folds
    ("👮‍♀️ safety", "👮\u200d♀️ safety"),  # the joiner inside an emoji is kept
    ("999 calls", "999 calls"),
    ("operation 123456", "operation 123456"),  # 6 digits: a reference, not a phone
    ("top 10 ideas 2024", "top 10 ideas 2024"),
    ("@ sign", "@ sign"),  # an @ with nothing before it
    ("mentoring at night", "mentoring at night"),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),  # escaped when shown
]


@pytest.mark.parametrize("text", EMAILS)
def test_anything_shaped_like_an_email_address_is_not_kept(text):
    assert keepable(text) is None


@pytest.mark.parametrize("text", PHONES)
def test_anything_holding_a_phone_number_is_not_kept(text):
    assert keepable(text) is None


@pytest.mark.parametrize(("text", "stored"), KEPT)
def test_other_searches_are_kept_normalised(text, stored):
    assert keepable(text) == stored
    assert normalise(text) == stored


@pytest.mark.parametrize("text", ["", "   ", "\x00\x07", "\u200b\u200b", "\u2028\u2029", "\u202e"])
def test_empty_searches_are_not_kept(text):
    assert keepable(text) is None


def test_a_kept_search_is_at_most_200_characters_without_a_trailing_space():
    assert keepable("a" * 300) == "a" * 200
    assert keepable("a" * 199 + " b" * 20) == "a" * 199
    assert len(keepable("İ" * 300)) == 200  # lower case may lengthen text; cut afterwards


def test_the_checks_see_the_shapes_and_let_other_text_through():
    """The control: each check finds its shape, and neither finds it in ordinary searches."""
    assert looks_like_email("a@b") and not looks_like_email("a @")
    assert looks_like_phone("123-4567") and not looks_like_phone("123-456 x")
    assert not looks_like_phone("12 34 56 vawg 78")  # letters end a run of digits


def test_text_longer_than_any_search_is_not_kept():
    assert keepable("a" * 1000) == "a" * 200
    assert keepable("\u200b" * 995 + "07700 900123") is None
    assert keepable("a" * 1001) is None


def test_only_text_is_read():
    assert keepable(None) is None  # type: ignore[arg-type]
    assert keepable(12345678) is None  # type: ignore[arg-type]
