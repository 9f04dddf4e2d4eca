"""Exercise 01 (tokenization): your byte-level BPE, checked against ``minilm.text.tokenizer``.

Run with ``make check CH=01`` or ``minilm check 01``. Each test compares one of your functions with
the package on tricky inputs: the empty string, one character, emoji (4-byte UTF-8 and a skin-tone
modifier), Korean (3-byte UTF-8), whitespace runs, digits, and a whole Shakespeare scene.

The exercise trainer has no pre-tokenization: it sees the text as one sequence. The package's
``train_bpe`` takes pre-token counts, so giving it ``{text: 1}`` (the whole text as one pre-token,
seen once) asks it for exactly the same thing: same bytes, same overlapping pair counts, same tie
rule (most frequent, then the smallest pair), same stopping rule (vocab full, or no pair left).
Its incremental, heap-based bookkeeping must then learn the same merges as a plain recount.
"""

from __future__ import annotations

from functools import lru_cache

import pytest

from minilm.text.corpus import load_shakespeare
from minilm.text.tokenizer import Tokenizer, bpe_encode_piece, merge_pair, pair_counts, train_bpe

SCENE_TITLE = "Romeo and Juliet, Act IV, Scene III"  # Juliet takes the potion: ~2,700 characters

TEXTS = {
    "empty": "",
    "single char": "a",
    "emoji": "🤗👋🏽",
    "korean": "안녕하세요 세계",
    "whitespace runs": "  \t\t\n\n\n   x    \r\n\u00a0\u3000 end  ",
    "digits": "3.14159 2025 1000000 007 12,345 99 99 99",
    "repeats": "aaaaaaa abababab aaaa",
    "accents and quotes": "naïve café — “quoted” ’tis, Ünïcödé 🤗!",
    "shakespeare scene": None,  # filled in by text_of(): loaded only when a test needs it
}
SHORT = [name for name in TEXTS if name != "shakespeare scene"]


@lru_cache(maxsize=None)
def text_of(name: str) -> str:
    if TEXTS[name] is not None:
        return TEXTS[name]
    for doc in load_shakespeare():
        if doc.title == SCENE_TITLE:
            return doc.text
    raise LookupError(f"the scene {SCENE_TITLE!r} is not in minilm.text.corpus.load_shakespeare()")


@lru_cache(maxsize=None)
def package_training(text: str, vocab_size: int) -> tuple[list, dict[int, bytes]]:
    """The package's trainer given the whole text as one pre-token seen once (see module docstring)."""
    merges, vocab = train_bpe({text: 1}, vocab_size)
    return merges, dict(enumerate(vocab))


def package_ranks(text: str, vocab_size: int) -> dict[bytes, int]:
    return {token: i for i, token in package_training(text, vocab_size)[1].items()}


def whole_text_tokenizer(ranks: dict[bytes, int]) -> Tokenizer:
    """The package Tokenizer (tiktoken inside) with a pattern that keeps the whole text one piece."""
    return Tokenizer(ranks, pattern=r"[\s\S]+", special_tokens=())


def show(vocab: dict[int, bytes], merge: tuple) -> str:
    left, right, new = merge
    return f"({left}, {right}) -> {new}  i.e. {vocab.get(left, b'?')!r} + {vocab.get(right, b'?')!r}"


def explain_merges(yours: list, expected: list, vocab: dict[int, bytes]) -> str:
    """A readable account of the first merge where two merge lists part ways."""
    yours = [tuple(m) for m in yours]
    for step, (a, b) in enumerate(zip(yours, expected)):
        if a != b:
            return (f"merge #{step} differs:\n  yours:    {show(vocab, a)}\n  expected: {show(vocab, b)}\n"
                    "(most frequent pair first; on equal counts the smallest (left_id, right_id))")
    if len(yours) < len(expected):
        return (f"you stopped after {len(yours)} merges; expected {len(expected)}. Next expected: "
                f"{show(vocab, expected[len(yours)])} (keep going while a pair is left, even seen once)")
    return f"you learned {len(yours)} merges; expected only {len(expected)}: {show(vocab, yours[len(expected)])}"


def explain_ids(yours: list[int], expected: list[int], vocab: dict[int, bytes]) -> str:
    """Where two token sequences first differ, with the tokens' bytes."""
    step = next((i for i, (a, b) in enumerate(zip(yours, expected)) if a != b), min(len(yours), len(expected)))
    window = slice(max(0, step - 2), step + 3)
    return (f"{len(yours)} ids vs {len(expected)} expected; first difference at position {step}:\n"
            f"  yours:    {[vocab.get(i, i) for i in yours[window]]}\n"
            f"  expected: {[vocab.get(i, i) for i in expected[window]]}")


# -- get_pair_counts and merge ------------------------------------------------------------------

PAIR_CASES = [[], [5], [1, 2], [1, 2, 3, 1, 2], [7, 7, 7], [7, 7, 7, 7], [300, 1, 300, 1]]


@pytest.mark.parametrize("ids", [pytest.param(ids, id=str(ids)) for ids in PAIR_CASES]
                         + [pytest.param(list(text_of(n).encode()), id=f"bytes of {n}") for n in SHORT])
def test_get_pair_counts(exercise, ids):
    original = list(ids)
    yours = exercise.get_pair_counts(ids)
    expected = dict(pair_counts(ids))
    assert ids == original, "get_pair_counts must not change the list it is given"
    assert dict(yours) == expected, (
        f"for ids={ids}:\n  yours:    {dict(yours)}\n  expected: {expected}\n"
        "(pairs overlap: [7, 7, 7] holds (7, 7) twice)")


@pytest.mark.parametrize("ids, pair, new_id", [
    ([1, 2, 2, 2, 3], (2, 2), 9),
    ([2, 2, 2, 2], (2, 2), 9),
    ([5, 6, 5, 6, 5], (5, 6), 300),
    ([1, 2], (1, 2), 256),
    ([2, 1, 2, 1], (1, 2), 256),
    ([1, 2, 3], (3, 1), 300),
    ([1], (1, 2), 256),
    ([], (1, 2), 256),
    (list("🤗👋🏽".encode()), (240, 159), 256),
], ids=str)
def test_merge(exercise, ids, pair, new_id):
    original = list(ids)
    yours = exercise.merge(ids, pair, new_id)
    expected = merge_pair(ids, pair, new_id)
    assert ids == original, "merge must return a new list and leave its input unchanged"
    assert list(yours) == expected, (
        f"merge({ids}, {pair}, {new_id}):\n  yours:    {yours}\n  expected: {expected}\n"
        "(scan left to right; after a match skip both ids, so matches never overlap)")


# -- train_bpe -----------------------------------------------------------------------------------

TRAIN_CASES = (
    [(name, size) for name in SHORT for size in (260, 1000)]  # 1000: runs until no pair is left
    + [("shakespeare scene", 300), ("shakespeare scene", 512)]
)


@pytest.mark.parametrize("name, vocab_size", TRAIN_CASES)
def test_train_bpe_learns_the_packages_merges(exercise, name, vocab_size):
    text = text_of(name)
    merges, vocab = exercise.train_bpe(text, vocab_size)
    expected_merges, expected_vocab = package_training(text, vocab_size)
    assert [tuple(m) for m in merges] == expected_merges, explain_merges(merges, expected_merges, expected_vocab)
    assert dict(vocab) == expected_vocab, (
        f"the merges agree but the vocabularies do not: ids only in yours "
        f"{sorted(set(vocab) - set(expected_vocab))[:10]}, ids missing from yours "
        f"{sorted(set(expected_vocab) - set(vocab))[:10]}, ids with other bytes "
        f"{[i for i in expected_vocab if i in vocab and vocab[i] != expected_vocab[i]][:10]}")


def test_train_bpe_vocabulary_is_well_formed(exercise):
    text = text_of("shakespeare scene")
    merges, vocab = exercise.train_bpe(text, 300)
    assert len(vocab) == 300, f"vocab_size=300 counts the 256 bytes: you returned {len(vocab)} tokens"
    assert sorted(vocab) == list(range(300)), "token ids must be 0, 1, ..., vocab_size - 1"
    assert all(vocab[i] == bytes([i]) for i in range(256)), "ids 0..255 must be the single bytes"
    assert len(set(vocab.values())) == len(vocab), "two ids share the same bytes (reuse the existing id)"
    for left, right, new in merges:
        assert vocab[new] == vocab[left] + vocab[right], f"token {new} is not {show(vocab, (left, right, new))}"


@pytest.mark.parametrize("text, vocab_size, expected", [
    # one pair seen 3 times, then (256, 256) seen once: still merged, until one token is left
    ("aaaa", 400, [(97, 97, 256), (256, 256, 257)]),
    # all counts 1: the smallest pair wins each tie; stops with one token, far below 300
    ("abcd", 300, [(97, 98, 256), (99, 100, 257), (256, 257, 258)]),
    ("aaab", 258, [(97, 97, 256), (97, 98, 257)]),  # stops when the vocabulary is full
    ("x", 300, []),
    ("", 300, []),
], ids=repr)
def test_train_bpe_small_cases(exercise, text, vocab_size, expected):
    merges, vocab = exercise.train_bpe(text, vocab_size)
    assert package_training(text, vocab_size)[0] == expected  # the package agrees with this table
    assert [tuple(m) for m in merges] == expected, explain_merges(merges, expected, package_training(text, vocab_size)[1])


# -- encode ----------------------------------------------------------------------------------------

# Ranks to encode with: learned by the package on the text itself, or on the Shakespeare scene
# (then emoji and Korean fall back to raw bytes).
RANK_SOURCES = {"own text": lambda text: package_ranks(text, 1000), "scene": lambda text: package_ranks(text_of("shakespeare scene"), 512)}
ENCODE_CASES = [(name, source) for name in SHORT for source in RANK_SOURCES] + [("shakespeare scene", "scene")]


@pytest.mark.parametrize("name, source", ENCODE_CASES)
def test_encode_matches_the_package(exercise, name, source):
    text = text_of(name)
    ranks = RANK_SOURCES[source](text)
    yours = exercise.encode(text, ranks)
    expected = bpe_encode_piece(text.encode("utf-8"), ranks)
    assert list(yours) == expected, explain_ids(yours, expected, {i: t for t, i in ranks.items()})
    # bpe_encode_piece and tiktoken (Rust), given the whole text as one piece, agree with each other
    assert whole_text_tokenizer(ranks).encode(text) == expected


def test_encode_whole_token_shortcut_and_ties(exercise):
    ranks = {bytes([i]): i for i in range(256)} | {b"abc": 256}
    assert exercise.encode("abc", ranks) == [256], "a text that is itself a token encodes to that one id"
    assert exercise.encode("abcabc", ranks) == [97, 98, 99, 97, 98, 99], (
        "no adjacent pair of 'abcabc' is a token, so nothing merges (only a *whole* text may jump to a token)")
    ranks = {bytes([i]): i for i in range(256)} | {b"aa": 256}
    assert exercise.encode("aaa", ranks) == bpe_encode_piece(b"aaa", ranks) == [256, 97], (
        "two pairs with the same rank: merge the leftmost one first")


# -- decode and the round trip ---------------------------------------------------------------------

EMOJI = list("🤗".encode())  # 4 bytes: f0 9f a4 97


@pytest.mark.parametrize("ids", [[], [104, 105], EMOJI, EMOJI[:2], EMOJI[1:], [0xC3], [0x80, 0x41], [256, 257, 32]], ids=str)
def test_decode_matches_the_package(exercise, ids):
    ranks = package_ranks(text_of("shakespeare scene"), 512)
    vocab = {i: t for t, i in ranks.items()}
    yours = exercise.decode(ids, vocab)
    expected = whole_text_tokenizer(ranks).decode(ids)
    assert yours == expected, (
        f"decode({ids}) gave {yours!r}, expected {expected!r} (join the bytes, then .decode('utf-8', errors='replace'))")


@pytest.mark.parametrize("name", list(TEXTS))
def test_round_trip_with_your_own_tokenizer(exercise, name):
    text = text_of(name)
    vocab_size = 400 if name == "shakespeare scene" else 1000
    _, vocab = exercise.train_bpe(text, vocab_size)
    ranks = {token: i for i, token in vocab.items()}
    ids = exercise.encode(text, ranks)
    assert exercise.decode(ids, vocab) == text, "decode(encode(text)) must give the text back"
    other = "Juliet 🤗 안녕 007\n\t "  # text the tokenizer was not trained on: bytes fall back
    assert exercise.decode(exercise.encode(other, ranks), vocab) == other
