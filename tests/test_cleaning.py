"""Cleaning (Unicode, whitespace, boilerplate, junk lines) and PII redaction."""

import re

import datasets
import pytest

from minilm.data.cleaning import (clean, clean_text, is_boilerplate, is_junk_line, is_menu, normalize_unicode, normalize_whitespace, remove_boilerplate, remove_junk_lines)
from minilm.data.pii import PII_KINDS, find_pii, luhn_valid, pii_precision_recall, planted_pii, redact, redact_pii
from minilm.core.config import get_budget
from minilm.text.corpus import load_shakespeare
from minilm.text.world import World

# ----------------------------------------------------------------------------------------------
# Unicode and whitespace


@pytest.mark.parametrize("raw, expected", [
    ("", ""),
    ("cafe\u0301", "café"),  # NFC: e + combining accent -> é
    ("\u1100\u1161\u11a8", "각"),  # decomposed Hangul jamo -> one syllable
    ("안녕하세요. 오늘 날씨가 좋네요.", "안녕하세요. 오늘 날씨가 좋네요."),
    ("no\u00a0break and\u202fnarrow and\u3000wide", "no break and narrow and wide"),
    ("pass\u200bword\u2060 \ufeffsoft\u00adhyphen", "password softhyphen"),
    ("\u201cquoted\u201d and don\u2019t", '"quoted" and don\'t'),
    ("line\r\nwindows\rold mac\u2028sep", "line\nwindows\nold mac\nsep"),
    ("\ufb01ne \ufb02ow", "fine flow"),
    ("x\u00b2 and 10\u2079 and \u00bd", "x\u00b2 and 10\u2079 and \u00bd"),  # NFKC would turn x² into x2
    ("👩\u200d💻 and \u200cZWNJ", "👩\u200d💻 and \u200cZWNJ"),  # joiners stay: emoji and scripts need them
    ("bell\x07 and null\x00", "bell and null"),
])
def test_normalize_unicode(raw, expected):
    assert normalize_unicode(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("", ""),
    ("a  \nb\t\n", "a\nb\n"),
    ("a\tb    c", "a b c"),
    ("\n\n\na\n\n\n\n\nb\n\n\n", "a\n\nb\n"),
    ("    indented code\n\tand a tab", "    indented code\n    and a tab"),
    ("no final newline   ", "no final newline"),
    ("   \n \t \n", ""),
])
def test_normalize_whitespace(raw, expected):
    assert normalize_whitespace(raw) == expected


# ----------------------------------------------------------------------------------------------
# Boilerplate and junk lines


@pytest.mark.parametrize("line", [
    "Home | About | Contact | Blog",
    "Home > News > Sport > Football",
    "About Us Contact Us Login",
    "We use cookies to improve your experience. Accept all cookies",
    "This website uses cookies. By continuing you agree to our Cookie Policy.",
    "Click here to subscribe to our newsletter!",
    "© 2024 Example Media Ltd. All rights reserved.",
    "Copyright 2019 Foo Inc.",
    "Share on Facebook | Share on Twitter",
    "Follow us on Instagram",
    "Read more »",
    "Advertisement",
    "Privacy Policy · Terms of Use",
    "Skip to main content",
    "Please enable JavaScript to view the comments.",
])
def test_boilerplate_lines_are_found(line):
    assert is_boilerplate(line)


@pytest.mark.parametrize("line", [
    "I do subscribe to thy opinion, sir.",
    "Share the spoils, and let us home.",
    "Help, help, help!",
    "Home, home, sweet home.",
    "I would read more of thee, good sir.",
    "The terms of our treaty stand.",
    "HAMLET:",
    "Exit",
    "[Aside]",
    "안녕하세요",
    "",
])
def test_content_lines_are_not_boilerplate(line):
    assert not is_boilerplate(line)


@pytest.mark.parametrize("line, junk", [
    ("-----", True), ("* * *", True), ("|||", True), ("★★★★☆ 4.5", True), ("🎉🎉🎉", True),
    ("2023", True), ("04/27/2023", True), ("1 2 3 4 5 6", True), (">> $$$ ## @@ ok", True),
    ("355 - 256 = 99", False), ("(12 * 10) - 100 = 20", False),
    ("A: 2 - 7 = -5. -5 + 100 = 95. Answer: (2 - 7) + 100", False),
    ("...", False), ("Exit", False), ("Great party 🎉🎉", False), ("안녕하세요.", False), ("", False),
    ("   ", False),
])
def test_junk_lines(line, junk):
    assert is_junk_line(line) is junk


def test_line_repeated_all_over_a_page_keeps_its_first_occurrence():
    page = "\n".join(f"Comment number {i} is here.\nReply" for i in range(6))
    assert remove_junk_lines(page).count("Reply") == 1
    # A refrain that is a small share of the text stays whole.
    song = "\n".join(["With hey, ho, the wind and the rain"] + [f"verse line {i}" for i in range(20)]) * 4
    assert remove_junk_lines(song) == song


@pytest.mark.parametrize("options, error, match", [
    ({"min_repeats": 0}, ValueError, "min_repeats=0"),
    ({"min_repeats": -1}, ValueError, "min_repeats=-1"),
    ({"min_repeats": 2.5}, TypeError, "min_repeats=2.5"),
    ({"max_share": float("nan")}, ValueError, "max_share=nan"),
    ({"max_share": -1}, ValueError, "max_share=-1"),
    ({"max_share": 1.5}, ValueError, "max_share=1.5"),
])
def test_remove_junk_lines_rejects_bad_limits(options, error, match):
    with pytest.raises(error, match=match):
        remove_junk_lines("Reply\nNice post!\nReply", **options)


@pytest.mark.parametrize("raw, expected", [
    ("", ""),
    ("\n \n\t\n", ""),
    ("Great party 🎉🎉\n🎉🎉🎉\nSee you soon!", "Great party 🎉🎉\nSee you soon!"),
    ("안녕하세요.\r\n오늘 날씨가 좋네요.\r\n", "안녕하세요.\n오늘 날씨가 좋네요.\n"),
    ("To\u00a0be,\u200b or not\u00a0to be.\r\n", "To be, or not to be.\n"),
    ("Home | About | Contact\n\n\nThe article text.   \n© 2023 Site. All rights reserved.\n",
     "The article text.\n"),
    ("Skip to content\r\n-----\r\nShall I compare thee to a summer\u2019s day?\r\n\r\n\r\nRead more\r\n",
     "Shall I compare thee to a summer's day?\n"),
])
def test_clean_text_hard_inputs(raw, expected):
    assert clean_text(raw) == expected


def test_clean_text_is_idempotent():
    page = "Home | Blog\n\u201cHi\u201d\u00a0there,\t friend.  \n\n\n\n-----\nBye.\n"
    once = clean_text(page)
    assert clean_text(once) == once


@pytest.mark.parametrize("function, argument", [
    (clean_text, "text"), (normalize_unicode, "text"), (normalize_whitespace, "text"), (is_boilerplate, "line"),
    (is_menu, "line"), (is_junk_line, "line"), (remove_boilerplate, "text"), (remove_junk_lines, "text"),
    (luhn_valid, "number"), (find_pii, "text"), (redact_pii, "text"),
])
@pytest.mark.parametrize("value, kind", [(None, "NoneType"), (b"Home | About", "bytes"), (["a", "b"], "list")])
def test_per_text_functions_name_an_argument_that_is_not_a_str(function, argument, value, kind):
    with pytest.raises(TypeError, match=f"^{function.__name__} needs {argument} to be a str, not {kind}$"):
        function(value)


def test_shakespeare_passes_through_cleaning_with_its_words_intact():
    scenes = [doc.text for doc in load_shakespeare()]
    cleaned = [clean_text(s) for s in scenes]
    words = lambda text: re.findall(r"\w+", text)  # noqa: E731
    assert all(words(a) == words(b) for a, b in zip(scenes, cleaned))
    assert sum(a == b for a, b in zip(scenes, cleaned)) / len(scenes) >= 0.99


def test_tiny_world_documents_are_untouched():
    # The pipeline cleans and redacts every source: arithmetic lines and biographies must survive.
    world = World(get_budget("smoke").world)
    docs = [t for texts in world.documents().values() for t in texts]
    assert all(clean_text(t) == t for t in docs)
    assert not any(find_pii(t) for t in docs)


# ----------------------------------------------------------------------------------------------
# PII


@pytest.mark.parametrize("kind, value", [
    ("email", "ann.lee@example.com"), ("email", "BOB_SMITH42@MAIL.EXAMPLE.ORG"), ("email", "j+news@uni.example.ac.uk"),
    ("email", "gia [at] example [dot] com"), ("email", "hugo(at)post(dot)example(dot)de"),
    ("phone", "(415) 555-0132"), ("phone", "415-555-0132"), ("phone", "415.555.0132"), ("phone", "1-800-555-0199"),
    ("phone", "+1 415 555 0132"), ("phone", "+1 (415) 555-0132"), ("phone", "+14155550132"),
    ("phone", "+44 20 7946 0958"), ("phone", "020 7946 0958"), ("phone", "07700 900123"),
    ("phone", "+49 (0)30 1234 5678"), ("phone", "+33 1 23 45 67 89"), ("phone", "01 23 45 67 89"),
    ("phone", "+91 98765 43210"), ("phone", "+81 3-1234-5678"), ("phone", "0044 20 7946 0958"),
    ("ip", "192.168.10.24"), ("ip", "8.8.8.8"), ("ip", "255.255.255.255"), ("ip", "2001:db8::8a2e:370:7334"),
    ("ip", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"), ("ip", "::1"), ("ip", "fe80::1ff:fe23:4567:890a"),
    ("card", "4111 1111 1111 1111"), ("card", "4111-1111-1111-1111"), ("card", "4111111111111111"),
    ("card", "5555 5555 5555 4444"), ("card", "3782 822463 10005"), ("card", "378282246310005"),
    ("card", "6011 1111 1111 1117"), ("card", "4222222222222"),
])
def test_pii_is_found_in_several_formats(kind, value):
    text = f"Note: {value}, as agreed."
    redacted, counts = redact_pii(text)
    assert redacted == f"Note: <{kind.upper()}>, as agreed."
    assert counts == {k: int(k == kind) for k in PII_KINDS}


@pytest.mark.parametrize("text", [
    "Hamlet was written around 1599-1601, in 1600 or so.",
    "See Hamlet 3.1.56 and Act III, Scene II, lines 12-150.",
    "Upgrade to Python 3.11.7 (or 10.0.19041.1); we shipped version 1.2.3.4 and v2.0.1.7.",
    "Tickets cost $1,299.99 or 1.299,99 EUR; the city has 8,336,817 people.",
    "Due by 2023-04-05, 05/06/2023 or 12.03.2021 at 12:30:45.",
    "Card 4111 1111 1111 1112 was declined; reference 4111111111111112 too.",
    "ISBN 978-3-16-148410-0, zip code 94103-1234, order 102938475610.",
    "355 - 256 = 99 and 779 * 812 = 632548; use the numbers 25 50 75 100 3 6 to make 952.",
    "std::vector<int> and a::b are C++; 999.1.1.1 is no address.",
    "안녕하세요 🎉 no PII here",
    "",
])
def test_look_alikes_are_left_alone(text):
    assert redact_pii(text) == (text, dict.fromkeys(PII_KINDS, 0))


def test_luhn():
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005") and luhn_valid("0")
    assert not luhn_valid("4111111111111112") and not luhn_valid("") and not luhn_valid("1234 5678 9012 3456")


def test_planted_pii_has_true_spans_and_look_alikes():
    examples = planted_pii(300, seed=3)
    assert examples == planted_pii(300, seed=3)  # deterministic
    kinds = [kind for _, spans in examples for _, _, kind in spans]
    assert set(kinds) == set(PII_KINDS) and min(kinds.count(k) for k in PII_KINDS) >= 40
    assert sum(not spans for _, spans in examples) > 30  # documents with look-alikes only
    for text, spans in examples:
        for start, end, kind in spans:
            assert text[start:end].strip() == text[start:end] and text[start:end]
    assert planted_pii(0) == []
    with pytest.raises(ValueError, match="n=-1 must be at least 0"):
        planted_pii(-1)


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_pii_precision_and_recall(seed):
    scores = pii_precision_recall(n=600, seed=seed)
    for kind in PII_KINDS:
        assert scores[kind]["planted"] >= 80
        assert scores[kind]["precision"] >= 0.95, (kind, scores[kind])
        assert scores[kind]["recall"] >= 0.95, (kind, scores[kind])


# ----------------------------------------------------------------------------------------------
# The steps on datasets

WEB_PAGES = [
    "Home | About | Contact\nThe quality of mercy is not strain'd.\n© 2023 Site. All rights reserved.",
    "Click here!\n-----",  # nothing left after cleaning
    "Write to ann@example.com or call 415-555-0132.\r\nServer 10.0.0.1, card 4111 1111 1111 1111.",
    "안녕하세요 🎉\u00a0zero\u200bwidth",
    "",
    "Plain text, kept as it is.",
]


@pytest.mark.parametrize("num_proc", [1, 2])
def test_clean_dataset_matches_clean_text(num_proc):
    ds = datasets.Dataset.from_dict({"text": WEB_PAGES, "source": ["web"] * len(WEB_PAGES)})
    cleaned = clean(ds, num_proc=num_proc)
    expected = [clean_text(t) for t in WEB_PAGES]
    assert cleaned["text"] == [t for t in expected if t.strip()]
    assert cleaned.column_names == ["text", "source"] and len(cleaned) == 4


@pytest.mark.parametrize("num_proc", [1, 2])
def test_redact_dataset_matches_redact_pii(num_proc):
    ds = datasets.Dataset.from_dict({"body": WEB_PAGES})
    redacted = redact(ds, column="body", num_proc=num_proc)
    expected = [redact_pii(t) for t in WEB_PAGES]
    assert redacted["body"] == [text for text, _ in expected]
    assert redacted["pii"] == [counts for _, counts in expected]
    assert redacted["pii"][2] == {"email": 1, "phone": 1, "ip": 1, "card": 1}


def test_steps_compose_and_name_a_missing_column():
    ds = datasets.Dataset.from_dict({"text": WEB_PAGES})
    out = redact(clean(ds))
    assert "<EMAIL>" in out["text"][1] and len(out) == 4
    with pytest.raises(KeyError, match="no column 'content'"):
        clean(ds, column="content")
    # A ValueError as well: what datasets raises for a missing column.
    with pytest.raises(ValueError, match="^the dataset has no column 'content': its columns are text$"):
        redact(ds, column="content")


@pytest.mark.parametrize("num_proc", [0, -1])
def test_clean_rejects_num_proc_below_one(num_proc):
    with pytest.raises(ValueError, match="num_proc"):
        clean(datasets.Dataset.from_dict({"text": WEB_PAGES}), num_proc=num_proc)
