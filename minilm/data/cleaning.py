"""Cleaning: the first step of the pretraining data pipeline (PII redaction, the second, is :mod:`minilm.data.pii`).

Text scraped from the web arrives with invisible characters, odd spaces, menus, cookie banners and
copyright footers around the content. This module holds the per-text functions (readable,
unit-tested, used in notebook 02) and, built on them, the steps on a ``datasets.Dataset`` that the
pipeline runs (``minilm.data.sources.process``):

1. ``normalize_unicode``: one spelling for one text (NFC, plain spaces, no zero-width characters).
2. ``remove_boilerplate``: lines that belong to the web page, not to the document (menus, cookie
   banners, share buttons, copyright footers).
3. ``remove_junk_lines``: lines of symbols or bare numbers, and a line repeated all over a page.
4. ``normalize_whitespace``: no trailing spaces or tabs, at most one blank line in a row.
   (``clean_text`` runs 1 to 4; ``clean`` runs it on a dataset.)

Every rule here is written so that the course's own data goes through unchanged: Shakespeare's
verse (short lines without full stops, repeated speaker names and stage directions) and the tiny
world's documents (lines of arithmetic such as ``355 - 256 = 99``). The C4 rules that keep only
lines ending in punctuation and with at least five words would delete most of a play, so we do not
apply them line by line; ``minilm.data.quality`` judges whole documents instead.

>>> clean_text("Home | About | Contact\\nTo be, or not to be:\\u00a0that is the question.  \\n\\n\\n")
'To be, or not to be: that is the question.\\n'
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter


def check_str(caller: str, name: str, value) -> None:
    """Raise TypeError, naming the argument, unless ``value`` is a str (None, bytes or a list
    would otherwise fail deep inside ``re`` or a str method, or pass unnoticed).

    >>> check_str("clean_text", "text", None)
    Traceback (most recent call last):
    ...
    TypeError: clean_text needs text to be a str, not NoneType
    """
    if not isinstance(value, str):
        raise TypeError(f"{caller} needs {name} to be a str, not {type(value).__name__}")


def check_not_one_text(caller: str, texts, what: str = "texts") -> None:
    """Raise TypeError where a list of texts is wanted and one str came: iterating it would treat
    each character as a text.

    >>> check_not_one_text("contamination_report", "To be, or not to be")
    Traceback (most recent call last):
    ...
    TypeError: contamination_report needs a list of texts, not a str: pass [text]
    """
    if isinstance(texts, str):
        raise TypeError(f"{caller} needs a list of {what}, not a str: pass [text]")


# ----------------------------------------------------------------------------------------------
# Unicode

# NFC, not NFKC. NFC only merges *canonically* equivalent spellings (e + combining acute and the
# single code point é become one), which never changes what the text says. NFKC also folds
# "compatibility" characters, and some of those folds change the meaning: x² becomes x2, 10⁹
# becomes 109, ½ becomes 1⁄2, ™ becomes TM. We apply NFC and then fold, by hand, only the
# characters below, whose variants carry no meaning for a language model and would otherwise split
# one word into several token spellings.
SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")  # NBSP, thin, ideographic...
# Zero-width space, word joiner, BOM and soft hyphen are invisible but split a word in two for the
# tokenizer ("pass\u200bword" would never match "password"). ZWJ and ZWNJ (U+200C/D) stay: emoji
# sequences (👩‍💻) and scripts such as Persian and Devanagari need them.
INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")
# Control characters (C0 and C1) other than newline and tab: noise from broken extraction.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Curly quotes become straight ones. The quote itself carries no meaning, and the GPT-4
# pre-tokenizer's contraction rule matches only the ASCII apostrophe: "don’t" and "don't" would
# otherwise be two different token sequences for one word. (Guillemets and CJK quotes stay: they
# are the normal spelling of their languages, not a typographic variant.)
QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
                        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"'})
# Latin ligatures (ﬁ, ﬂ, ...) come from PDF extraction; they are the letters they join.
LIGATURES = re.compile("[\ufb00-\ufb06]")


def normalize_unicode(text: str) -> str:
    """NFC, one kind of newline and of space, no invisible characters, straight quotes.

    >>> normalize_unicode("caf\\u0065\\u0301 \\u201cno\\u00a0way\\u201d\\r\\npass\\u200bword \\ufb01ne x\\u00b2")
    'café "no way"\\npassword fine x²'
    """
    check_str("normalize_unicode", "text", text)
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = SPACES.sub(" ", text)
    text = INVISIBLE.sub("", text)
    text = CONTROL.sub("", text)
    text = LIGATURES.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    return text.translate(QUOTES)


def normalize_whitespace(text: str) -> str:
    """Tabs and runs of spaces inside a line become one space; no trailing spaces; at most one
    blank line in a row; no blank lines at the start or end. Indentation at the start of a line
    stays (code and verse use it), and the text keeps its final newline if it had one.

    >>> normalize_whitespace("\\n  a\\tb   c  \\n\\n\\n\\nd\\n")
    '  a b c\\n\\nd\\n'
    """
    check_str("normalize_whitespace", "text", text)
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" \t")
        indent = line[: len(line) - len(body)].replace("\t", "    ")
        body = re.sub(r"[ \t]+", " ", body).rstrip()
        lines.append(indent + body if body else "")
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return cleaned + "\n" if cleaned and text.endswith("\n") else cleaned


# ----------------------------------------------------------------------------------------------
# Boilerplate and junk lines

# A line is removed when it contains one of these phrases. They are specific on purpose: a rule
# such as "contains 'subscribe'" would delete Shakespeare ("I do subscribe"). C4 (Raffel et al.
# 2020) likewise removes every line that mentions JavaScript. Each pattern is keyed by a word it
# needs: a substring test for that word is fast, and skips the regex for most lines.
BOILERPLATE_PATTERNS = {
    "cookie": r"\b(we|this (web)?site|our (web)?site) (use|uses) cookies\b|\buse of cookies\b"
              r"|\baccept (all )?cookies\b|\bcookie (policy|settings|preferences|consent)\b",
    "click here": r"\bclick here\b",
    "subscribe": r"\bsubscribe (to|for) (our|the|my) (newsletter|channel|mailing list|updates)\b"
                 r"|\bsubscribe now\b",
    "newsletter": r"\bsign up for (our|the) newsletter\b",
    "share": r"\bshare (on|via) (facebook|twitter|x|linkedin|pinterest|reddit|whatsapp|email)\b",
    "follow us": r"\bfollow us on\b",
    "rights reserved": r"\ball rights reserved\b",
    "©": r"©\s*\d{4}",
    "(c)": r"\(c\)\s*\d{4}",
    "copyright": r"\bcopyright\s*(©\s*)?\d{4}",
    "privacy policy": r"\bprivacy policy\b",
    "terms": r"\bterms (of|and) (use|service|conditions)\b",
    "skip to": r"\bskip to (main )?content\b",
    "back to top": r"\bback to top\b",
    "javascript": r"\b(enable|enabled|disable|disabled) javascript\b"
                  r"|\bjavascript (is|must be) (disabled|enabled|required)\b",
}
# These count only when they are the whole line ("Read more" alone is a button; "I want to read
# more books" is a sentence).
BOILERPLATE_LINES = [
    "read more", "continue reading", "advertisement", "sponsored", "related posts", "related articles",
    "you may also like", "load more", "show more", "leave a comment", "leave a reply", "reply",
    "print", "share", "share this", "tweet", "loading", "posted in", "tags", "categories",
]
_BOILERPLATE = {word: re.compile(pattern) for word, pattern in BOILERPLATE_PATTERNS.items()}  # on lower case
_BOILERPLATE_LINE = re.compile(
    r"^[\s«‹<←]*(%s)[\s.:!…»›>→]*$" % "|".join(map(re.escape, BOILERPLATE_LINES)), re.IGNORECASE)

# Words of site navigation. A line made only of these (and numbers, for page links) is a menu.
MENU_WORDS = frozenset("""
home about us contact blog news login log in out sign up register search menu faq help privacy
terms shop store cart checkout account my profile products services careers jobs next previous prev
more top back skip to content main sitemap subscribe newsletter share tweet follow comments reply
print email rss feed archive archives categories tags page pages events gallery press team support
facebook twitter instagram linkedin youtube pinterest
""".split())
# A separator between menu items: | • · » › > / with spaces around it (so "either/or" is not one).
_MENU_SEPARATOR = re.compile(r"\s+[|•·»›>/]\s+|\s*\|\s*")
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
# Characters that make a "symbol" line: anything but letters, digits, spaces and the punctuation
# of ordinary sentences. "+", "*" and "=" count, but an arithmetic line still has more digits.
_SYMBOL = re.compile(r"[^\w\s.,;:!?'\"()\[\]\-—–…]|_")
_LETTER = re.compile(r"[^\W\d_]")
# A line of arithmetic is content (the tiny world's practice documents are made of them).
_EQUATION = re.compile(r"^[\d\s+\-*/×÷=().,^%]*\d[\d\s+\-*/×÷=().,^%]*=[\d\s+\-*/×÷=().,^%]*$")


def is_boilerplate(line: str) -> bool:
    """True for a line typical of a web page's template rather than its content.

    >>> is_boilerplate("© 2023 Example Media. All rights reserved."), is_boilerplate("Read more »")
    (True, True)
    >>> is_boilerplate("I would read more of thee, good sir.")
    False
    """
    check_str("is_boilerplate", "line", line)
    return _is_boilerplate(line.strip(), _BOILERPLATE)


def _is_boilerplate(stripped: str, patterns: dict) -> bool:
    lowered = stripped.lower()
    return (any(word in lowered and pattern.search(lowered) for word, pattern in patterns.items())
            or bool(_BOILERPLATE_LINE.match(stripped)) or is_menu(stripped))


def is_menu(line: str) -> bool:
    """True for a navigation menu or breadcrumb: "Home | About | Contact", "Home > News > Sport",
    "Log in Sign up". Lines with sentence punctuation are never menus (a menu has none).

    >>> is_menu("Home | About Us | Contact"), is_menu("Home > News > Sport"), is_menu("Help, help!")
    (True, True, False)
    """
    check_str("is_menu", "line", line)
    if re.search(r"[.,;!?]", line):
        return False
    items = [item for item in _MENU_SEPARATOR.split(line.strip()) if item]
    if len(items) >= 3 and all(len(item.split()) <= 3 for item in items):
        return True
    words = _WORD.findall(line.lower())
    only_words = not re.search(r"[^\w\s|•·»›>/]", line)
    return only_words and len(words) >= 2 and all(w in MENU_WORDS or w.isdigit() for w in words)


def is_junk_line(line: str) -> bool:
    """True for a line with no words in it: only symbols ("-----", "★★★★★"), bare numbers
    ("12 | 13 | 14", "04/27/2023") or mostly symbols. Equations are kept; so are blank lines
    (paragraph breaks are whitespace clean-up's business).

    >>> [is_junk_line(s) for s in ("-----", "★★★★☆ 4.5", "2023", "355 - 256 = 99", "Exit", "")]
    [True, True, True, False, False, False]
    """
    check_str("is_junk_line", "line", line)
    stripped = line.strip()
    if not stripped or stripped in ("...", "…"):  # an ellipsis alone is a pause in dialogue
        return False
    if not _LETTER.search(stripped):
        return not _EQUATION.match(stripped)
    visible = len(stripped) - stripped.count(" ")
    return len(_SYMBOL.findall(stripped)) / visible > 0.5


def remove_boilerplate(text: str) -> str:
    """Drop the lines that ``is_boilerplate`` flags.

    >>> remove_boilerplate("We use cookies. Accept all cookies\\nO Romeo, Romeo!\\nShare on Facebook")
    'O Romeo, Romeo!'
    """
    check_str("remove_boilerplate", "text", text)
    lowered = text.lower()
    # Only the patterns whose word occurs somewhere in the text need to be tried on its lines.
    patterns = {word: pattern for word, pattern in _BOILERPLATE.items() if word in lowered}
    return "\n".join(line for line in text.split("\n") if not _is_boilerplate(line.strip(), patterns))


def remove_junk_lines(text: str, min_repeats: int = 4, max_share: float = 0.25) -> str:
    """Drop junk lines (``is_junk_line``), and repeats of a line that fills a large share of the page.

    A line that occurs at least ``min_repeats`` times and makes up more than ``max_share`` of the
    non-blank lines ("Reply" under every comment, "Advertisement" between paragraphs) is template:
    only its first occurrence stays. The share matters: in Shakespeare a speaker's name is often
    repeated dozens of times, but never makes up more than 20% of a scene's lines.

    >>> remove_junk_lines("Reply\\nNice post!\\nReply\\nThanks.\\nReply\\n***\\nAgreed.\\nReply")
    'Reply\\nNice post!\\nThanks.\\nAgreed.'
    """
    check_str("remove_junk_lines", "text", text)
    if not isinstance(min_repeats, int) or isinstance(min_repeats, bool):
        raise TypeError(f"min_repeats={min_repeats!r} must be an int, not {type(min_repeats).__name__}")
    if min_repeats < 1:
        raise ValueError(f"min_repeats={min_repeats} must be at least 1")
    if not 0 <= max_share <= 1:  # NaN fails here too, and would otherwise mark no line as template
        raise ValueError(f"max_share={max_share!r} must be between 0 and 1")
    lines = [line for line in text.split("\n") if not is_junk_line(line)]
    counts = Counter(line.strip() for line in lines if line.strip())
    total = sum(counts.values())
    template = {line for line, n in counts.items() if n >= min_repeats and n > max_share * total}
    kept, seen = [], set()
    for line in lines:
        key = line.strip()
        if key in template:
            if key in seen:
                continue
            seen.add(key)
        kept.append(line)
    return "\n".join(kept)


def clean_text(text: str) -> str:
    """All the cleaning, in order: Unicode, boilerplate, junk lines, whitespace.

    >>> clean_text("Skip to content\\r\\nThe  quality of\\tmercy is not strain'd.\\r\\n-----\\r\\n")
    "The quality of mercy is not strain'd.\\n"
    >>> clean_text("")
    ''
    """
    check_str("clean_text", "text", text)
    text = normalize_unicode(text)
    ends_with_newline = text.endswith("\n")
    text = remove_junk_lines(remove_boilerplate(text))
    return normalize_whitespace(text + "\n" if ends_with_newline else text)


class MissingColumnError(KeyError, ValueError):
    """A dataset has no column of the name given: a KeyError, as for any missing key, and a
    ValueError, what ``datasets`` itself raises for one (so callers may catch either)."""

    __str__ = ValueError.__str__  # KeyError's would print the message in quotes


def check_column(dataset, column: str) -> None:
    """Raise MissingColumnError, naming the columns there are, unless ``dataset`` has ``column``."""
    if column not in dataset.column_names:
        raise MissingColumnError(f"the dataset has no column {column!r}: its columns are "
                                 f"{', '.join(dataset.column_names)}")


def clean(dataset, column: str = "text", num_proc: int | None = None):
    """``clean_text`` on every document of a ``datasets.Dataset``; documents left empty are dropped."""
    check_column(dataset, column)
    if num_proc is not None and num_proc < 1:
        raise ValueError(f"num_proc={num_proc} must be None or at least 1")
    cleaned = dataset.map(lambda batch: {column: [clean_text(t) for t in batch[column]]}, batched=True,
                          num_proc=num_proc, desc="clean")
    return cleaned.filter(lambda texts: [bool(t.strip()) for t in texts], input_columns=column, batched=True,
                          num_proc=num_proc, desc="drop empty")
