"""PII redaction: e-mail addresses, phone numbers, IP addresses and card numbers, found and replaced.

The second step of the pretraining data pipeline, after :mod:`minilm.data.cleaning`: a span that looks
like personal information becomes a placeholder (``<EMAIL>``, ``<PHONE>``, ``<IP>``, ``<CARD>``).
The regular expressions aim for recall on common formats *and* for precision against look-alikes
(version numbers, dates, ISBNs, prices); :func:`pii_precision_recall` measures both on planted
examples.

>>> redact_pii("Write to ann.lee@example.com or call (415) 555-0132.")
('Write to <EMAIL> or call <PHONE>.', {'email': 1, 'phone': 1, 'ip': 0, 'card': 0})
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections import Counter

from .cleaning import check_column, check_str


# ----------------------------------------------------------------------------------------------
# PII: find, then replace

PII_KINDS = ("email", "phone", "ip", "card")
PLACEHOLDERS = {"email": "<EMAIL>", "phone": "<PHONE>", "ip": "<IP>", "card": "<CARD>"}


# The regular expressions are written for recall on common formats *and* against the look-alikes
# that fill real text: years and year ranges (1599-1601), dates, prices, version numbers
# (3.11.7), act.scene.line references (3.1.56), ISBNs and arithmetic. Digits right next to a match
# always cancel it: PII is never a piece of a longer number.
EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?![\w@-])"
    # ... and the common way of hiding one from scrapers, which does not hide it from a model:
    r"|(?<![\w.])[A-Za-z0-9][\w.+-]*\s?[\[(]at[\])]\s?[A-Za-z0-9-]+(?:\s?[\[(]dot[\])]\s?[A-Za-z0-9-]+)+(?![\w-])",
    re.IGNORECASE,
)
_NOT_IN_A_NUMBER = r"(?<![\w+.,/-])(?<!\d[ .-])"


_NOT_BEFORE_A_NUMBER = r"(?![\w/-]|[ .,-]\d)"
PHONE = re.compile(
    _NOT_IN_A_NUMBER + r"(?:"
    # International: + or 00, a country code, then groups (the total is checked: 8 to 15 digits).
    r"(?:\+|00)[1-9]\d{0,2}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}"
    # North America: (415) 555-0132, 415-555-0132, 415.555.0132, 1-800-555-0199. Area code and
    # exchange never start with 0 or 1, which rules out most number lists.
    r"|(?:1[ .-])?(?:\([2-9]\d\d\)[ .-]?|[2-9]\d\d[ .-])[2-9]\d\d[ .-]\d{4}"
    # National numbers with a trunk 0: 020 7946 0958, 07700 900123, 030 12345678, 01 23 45 67 89.
    r"|\(?0\d{1,4}\)?[ -]\d{3,4}[ -]?\d{3,4}|0[1-9](?:[ .]\d\d){4}"
    r")" + _NOT_BEFORE_A_NUMBER
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"


IPV4 = re.compile(r"(?<![\w.])" + r"\.".join([_OCTET] * 4) + r"(?![\w]|\.\d)")
# An IPv6 candidate is any run of hex digits and colons with at least two colons; ``ipaddress``
# then decides (so times like 12:30:45 and C++ names like std::vector are not addresses).
IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
# "version 1.2.3.4" and "build 10.0.0.1" have the shape of an address.
_VERSION_WORD = re.compile(r"\b(?:version|release|build|ver\.?|v)\s*$", re.IGNORECASE)
# Card numbers: 13-19 digits, alone or in the printed groups (4-4-4-4[-3], Amex 4-6-5, Diners 4-6-4).
CARD = re.compile(
    r"(?<![\w.,-])(?:\d{13,19}|\d{4}(?P<s>[ -])\d{4}(?:(?P=s)\d{4}){2}(?:(?P=s)\d{3})?"
    r"|\d{4}(?P<t>[ -])\d{6}(?P=t)\d{4,5})(?![\w-]|[.,]\d)"
)


def luhn_valid(number: str) -> bool:
    """The Luhn checksum every payment card number satisfies (and 9 in 10 random numbers fail).

    >>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112")
    (True, False)
    """
    check_str("luhn_valid", "number", number)
    digits = [int(c) for c in number if c.isdigit()]
    if not digits:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:  # every second digit from the right is doubled
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    # Issuers' numbers start with 2-6 (Mastercard 2/5, Amex/Diners 3, Visa 4, Discover/UnionPay 6).
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)


def _is_ipv6(candidate: str) -> bool:
    if not any(c.isdigit() for c in candidate):
        return False  # "::" or "add:bad::cafe" is far more often not an address
    try:
        ipaddress.IPv6Address(candidate)
        return True
    except ValueError:
        return False


def _is_phone(number: str) -> bool:
    digits = sum(c.isdigit() for c in number)
    return 8 <= digits <= 15 if number[0] in "+0" else 10 <= digits <= 11


def find_pii(text: str) -> list[tuple[int, int, str]]:
    """Spans ``(start, end, kind)`` of the PII in ``text``, in order, never overlapping.

    Kinds are tried in the order e-mail, card, IP, phone; a later kind cannot claim characters an
    earlier one took (a card number is not also read as a phone number).

    >>> find_pii("Mail bob@example.org from 10.0.0.1 (Python 3.11.7, 1599-1601).")
    [(5, 20, 'email'), (26, 34, 'ip')]
    """
    check_str("find_pii", "text", text)
    found: list[tuple[int, int, str]] = []
    taken = bytearray(len(text))  # 1 where an earlier span already claimed the character

    def add(start: int, end: int, kind: str) -> None:
        if not any(taken[start:end]):
            found.append((start, end, kind))
            taken[start:end] = b"\x01" * (end - start)

    for m in EMAIL.finditer(text):
        add(m.start(), m.end(), "email")
    for m in CARD.finditer(text):
        if _is_card(m.group()):
            add(m.start(), m.end(), "card")
    for m in IPV4.finditer(text):
        if not _VERSION_WORD.search(text[max(0, m.start() - 12) : m.start()]):
            add(m.start(), m.end(), "ip")
    for m in IPV6.finditer(text):
        if _is_ipv6(m.group()):
            add(m.start(), m.end(), "ip")
    for m in PHONE.finditer(text):
        if _is_phone(m.group()):
            add(m.start(), m.end(), "phone")
    return sorted(found)


def redact_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace PII by placeholder tokens; also return how many of each kind were replaced.

    Card-shaped numbers that fail the Luhn check are left alone: they are order numbers, IDs, or
    cards mistyped beyond use.

    >>> redact_pii("Card 4111-1111-1111-1111, not 4111-1111-1111-1112; server 2001:db8::1.")
    ('Card <CARD>, not 4111-1111-1111-1112; server <IP>.', {'email': 0, 'phone': 0, 'ip': 1, 'card': 1})
    """
    check_str("redact_pii", "text", text)
    counts = dict.fromkeys(PII_KINDS, 0)
    pieces, last = [], 0
    for start, end, kind in find_pii(text):
        pieces += [text[last:start], PLACEHOLDERS[kind]]
        counts[kind] += 1
        last = end
    pieces.append(text[last:])
    return "".join(pieces), counts


def redact(dataset, column: str = "text", num_proc: int | None = None):
    """``redact_pii`` on every document; adds a ``pii`` column of counts by kind (a dict per row)."""
    check_column(dataset, column)

    def redact_batch(texts):
        results = [redact_pii(t) for t in texts]
        return {column: [r[0] for r in results], "pii": [r[1] for r in results]}

    return dataset.map(redact_batch, input_columns=column, batched=True, num_proc=num_proc, desc="redact PII")


# ----------------------------------------------------------------------------------------------
# Measuring the redactor on planted PII

_FIRST = ("ann", "bob", "chen", "dara", "elif", "femi", "gia", "hugo", "ines", "jun", "kofi", "lena", "omar", "priya")
_LAST = ("lee", "smith", "okafor", "garcia", "novak", "tanaka", "reyes", "muller", "khan", "rossi")


_DOMAINS = ("example.com", "mail.example.org", "uni.example.ac.uk", "example.io", "post.example.de")


def _random_email(rng: random.Random) -> str:
    first, last, domain = rng.choice(_FIRST), rng.choice(_LAST), rng.choice(_DOMAINS)
    forms = (f"{first}.{last}@{domain}", f"{first}_{last}{rng.randint(1, 99)}@{domain}",
             f"{first[0]}{last}+news@{domain}", f"{first}@{domain}".upper(), f"{first}-{last}@{domain}",
             f"{first} [at] {domain.replace('.', ' [dot] ')}", f"{first}(at){domain.replace('.', '(dot)')}")
    return rng.choice(forms)


def _random_phone(rng: random.Random) -> str:
    d = lambda k: "".join(str(rng.randint(0, 9)) for _ in range(k))  # noqa: E731
    area, exchange = f"{rng.randint(2, 9)}{d(2)}", f"{rng.randint(2, 9)}{d(2)}"
    forms = (f"({area}) {exchange}-{d(4)}", f"{area}-{exchange}-{d(4)}", f"{area}.{exchange}.{d(4)}",
             f"+1 {area} {exchange} {d(4)}", f"+1-{area}-{exchange}-{d(4)}", f"1-800-{exchange}-{d(4)}",
             f"+1 ({area}) {exchange}-{d(4)}", f"+44 20 {d(4)} {d(4)}", f"+44 7700 {d(6)}", f"020 {d(4)} {d(4)}",
             f"07700 {d(6)}", f"+49 30 {d(8)}", f"+49 (0)30 {d(4)} {d(4)}", f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
             f"01 {d(2)} {d(2)} {d(2)} {d(2)}", f"+91 9{d(4)} {d(5)}", f"+81 3-{d(4)}-{d(4)}",
             f"+1{area}{exchange}{d(4)}", f"0044 20 {d(4)} {d(4)}")
    return rng.choice(forms)


def _random_ip(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.6:
        octets = [rng.choice((rng.randint(0, 9), rng.randint(10, 99), rng.randint(100, 255))) for _ in range(4)]
        return ".".join(map(str, octets))
    groups = [rng.randint(0, 0xFFFF) for _ in range(8)]
    start, run = rng.randint(1, 5), rng.randint(2, 3)
    groups[start : start + run] = [0] * run  # a run of zero groups, written "::" when compressed
    address = ipaddress.IPv6Address(":".join(f"{g:x}" for g in groups))
    if kind < 0.8:
        return address.compressed
    return rng.choice((address.exploded, "::1", f"fe80::{rng.randint(1, 0xffff):x}:{rng.randint(1, 0xffff):x}"))


def _luhn_complete(prefix_and_body: str) -> str:
    """The number with the check digit that makes it Luhn-valid appended."""
    for check in "0123456789":
        if luhn_valid(prefix_and_body + check):
            return prefix_and_body + check
    raise AssertionError("unreachable: one check digit always works")


def _format_card(digits: str, rng: random.Random) -> str:
    sep = rng.choice((" ", "-", ""))
    if not sep:
        return digits
    if len(digits) == 15:  # Amex prints 4-6-5
        return sep.join((digits[:4], digits[4:10], digits[10:]))
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4)) + (sep + digits[16:] if len(digits) > 16 else "")


def _random_card(rng: random.Random, valid: bool = True) -> str:
    prefix, length = rng.choice((("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                                 ("6011", 16), ("4", 19), ("4", 13)))
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    digits = _luhn_complete(body)
    if not valid:  # a different last digit always breaks the checksum
        digits = digits[:-1] + str((int(digits[-1]) + rng.randint(1, 9)) % 10)
    return _format_card(digits, rng) if length in (15, 16, 19) else digits


_POSITIVE_TEMPLATES = {
    "email": ("Please write to {} before Friday.", "Contact: {}", "You can reach the author at {} for questions.",
              "Send your drafts to {}, not to the list.", "From: {}"),
    "phone": ("Call {} for tickets.", "Tel: {}", "Her number is {} if the office is closed.",
              "Ring the box office on {} after 9 am.", "Questions? Call {}."),
    "ip": ("The server at {} stopped responding.", "Blocked a login attempt from {} yesterday.",
           "ping {} returns nothing.", "Our proxy ({}) is down."),
    "card": ("My card number is {}, expiry 04/27.", "Charged to card {} on Monday.",
             "Pay with {} and keep the receipt.", "card: {}"),
}
# Look-alikes: text that has the shape of PII and is not (ground truth: no span).
_NEGATIVES = (
    lambda r: f"Hamlet was written around {r.randint(1590, 1600)}-{r.randint(1600, 1602)}.",
    lambda r: f"See Hamlet {r.randint(1, 5)}.{r.randint(1, 4)}.{r.randint(1, 400)} for the speech.",
    lambda r: f"Upgrade to Python {r.randint(2, 3)}.{r.randint(0, 13)}.{r.randint(0, 20)} first.",
    lambda r: f"We shipped version {r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)} today.",
    lambda r: f"It is v{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)} in the changelog.",
    lambda r: f"The meeting is on {r.randint(2000, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}.",
    lambda r: f"Born {r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(1900, 2020)} in Vienna.",
    lambda r: f"Due by {r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(2000, 2030)} at noon.",
    lambda r: f"It costs ${r.randint(1, 9)},{r.randint(100, 999)}.{r.randint(10, 99)} plus tax.",
    lambda r: f"The city has {r.randint(1, 9)},{r.randint(100, 999)},{r.randint(100, 999)} people.",
    lambda r: f"Order {r.randint(10**11, 10**12 - 1)} has shipped.",
    lambda r: f"Card {_random_card(r, valid=False)} was declined as invalid.",
    lambda r: f"Reference {_random_card(r, valid=False)} is on the invoice.",
    lambda r: f"ISBN 978-{r.randint(0, 9)}-{r.randint(10, 99)}-{r.randint(100000, 999999)}-{r.randint(0, 9)}",
    lambda r: f"The race started at {r.randint(10, 23)}:{r.randint(10, 59)}:{r.randint(10, 59)} sharp.",
    lambda r: f"{r.randint(100, 999)} - {r.randint(10, 99)} = {r.randint(100, 999)} and {r.randint(2, 9)} * 6 = 42",
    lambda r: f"Read pages {r.randint(100, 199)}-{r.randint(200, 299)} and "
              f"{r.randint(1000, 1999)}-{r.randint(2000, 2999)}.",
    lambda r: f"Use some of the numbers {' '.join(str(r.choice((*range(1, 11), 25, 50, 75, 100))) for _ in range(6))} "
              f"to make {r.randint(100, 999)}.",
    lambda r: f"The zip code is {r.randint(10000, 99999)}-{r.randint(1000, 9999)}.",
    lambda r: f"Act {r.choice(('I', 'II', 'III', 'IV', 'V'))}, Scene {r.randint(1, 7)}, "
              f"lines {r.randint(1, 99)}-{r.randint(100, 300)}.",
)


def planted_pii(n: int = 400, seed: int = 0) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """``n`` short texts with PII of every kind planted in varied formats, mixed with look-alikes
    that are not PII (Luhn-invalid card numbers, dates, years, versions, prices, ISBNs, times,
    arithmetic). Each item is ``(text, spans)`` with the true ``(start, end, kind)`` spans.

    What it measures: how well ``find_pii`` does on the formats this module was *designed* for.
    It is a regression test and a teaching tool, not an estimate of recall on real web PII, whose
    formats are far more varied (and include names and addresses, which regexes cannot find).

    >>> text, spans = planted_pii(5, seed=1)[0]
    >>> all(kind in PII_KINDS for _, _, kind in spans)
    True
    """
    if n < 0:
        raise ValueError(f"n={n} must be at least 0")
    rng = random.Random(f"planted-pii-{seed}")
    makers = {"email": _random_email, "phone": _random_phone, "ip": _random_ip, "card": _random_card}
    examples = []
    for i in range(n):
        text, spans = "", []
        for _ in range(rng.randint(1, 3)):
            if text:
                text += " "
            if rng.random() < 0.55:
                kind = PII_KINDS[(i + len(spans)) % len(PII_KINDS)] if rng.random() < 0.5 else rng.choice(PII_KINDS)
                value = makers[kind](rng)
                before, after = rng.choice(_POSITIVE_TEMPLATES[kind]).split("{}")
                spans.append((len(text) + len(before), len(text) + len(before) + len(value), kind))
                text += before + value + after
            else:
                text += rng.choice(_NEGATIVES)(rng)
        examples.append((text, spans))
    return examples


def pii_precision_recall(examples=None, n: int = 400, seed: int = 0) -> dict[str, dict[str, float]]:
    """Precision and recall of ``find_pii`` per kind on planted examples (``planted_pii(n, seed)``
    unless given). A found span counts only if its kind *and* both ends are exactly right: a
    half-redacted phone number still leaks.

    >>> scores = pii_precision_recall(n=50)
    >>> sorted(scores) == sorted(PII_KINDS) and all(0 <= s["recall"] <= 1 for s in scores.values())
    True
    """
    examples = planted_pii(n, seed) if examples is None else examples
    true_pos, found, planted = Counter(), Counter(), Counter()
    for text, spans in examples:
        truth = set(spans)
        for span in find_pii(text):
            found[span[2]] += 1
            true_pos[span[2]] += span in truth
        planted.update(kind for _, _, kind in spans)
    return {kind: {"precision": true_pos[kind] / found[kind] if found[kind] else 1.0,
                   "recall": true_pos[kind] / planted[kind] if planted[kind] else 1.0,
                   "planted": planted[kind], "found": found[kind]}
            for kind in PII_KINDS}
