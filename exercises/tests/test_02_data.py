"""Exercise 02 checked against the package (minilm.data.dedup, minilm.data.cleaning)."""

import random

import numpy as np
import pytest

from minilm.data import dedup, pii

PRIME = 2**61 - 1
HARD_TEXTS = ["", "   ", "Hello  World", "hello world\n", "ＨＥＬＬＯ\u00a0world", "안녕하세요 세계", "👋 🤗 👋",
              "To be, or not to be", "TO BE,   OR NOT TO BE ", "a\tb\nc", "ﬁne ligature", "fine ligature"]


def test_exact_duplicates_match_the_package(exercise):
    texts = HARD_TEXTS + HARD_TEXTS[::-1]
    assert exercise.exact_duplicates(texts) == dedup.exact_duplicates(texts)
    assert exercise.exact_duplicates([]) == []


@pytest.mark.parametrize("n", [1, 3, 5])
@pytest.mark.parametrize("text", HARD_TEXTS + ["It is a tale told by an idiot, full of sound and fury, signifying nothing."])
def test_shingles_match_the_package(exercise, text, n):
    assert exercise.shingle_set(text, n) == set(dedup.shingles(text, n)), f"shingle_set({text!r}, n={n})"


def test_minhash_shape_and_determinism(exercise):
    shingles = exercise.shingle_set("the quick brown fox jumps over the lazy dog again and again", 3)
    first = exercise.minhash_signature(shingles, num_perm=64, seed=3)
    assert len(first) == 64 and all(isinstance(v, int) and 0 <= v < PRIME for v in first)
    assert exercise.minhash_signature(shingles, 64, 3) == first, "same shingles and seed must give the same signature"
    assert exercise.minhash_signature(shingles, 64, 4) != first, "the seed must change the hash functions"
    assert exercise.minhash_signature(set(), 4) == [PRIME] * 4


def test_minhash_follows_the_documented_family(exercise):
    import zlib

    rng = random.Random(7)
    a, b = rng.randrange(1, PRIME), rng.randrange(0, PRIME)
    x = zlib.crc32(b"one shingle")
    assert exercise.minhash_signature({"one shingle"}, num_perm=1, seed=7) == [(a * x + b) % PRIME]


def test_minhash_estimates_jaccard_like_the_package(exercise):
    rng = random.Random(0)
    words = [f"w{i}" for i in range(400)]
    for overlap in (0.0, 0.3, 0.6, 0.9, 1.0):
        base = rng.sample(words, 120)
        other = base[: int(120 * overlap)] + rng.sample([w for w in words if w not in base], 120 - int(120 * overlap))
        a, b = " ".join(base), " ".join(other)
        truth = dedup.exact_jaccard(a, b, n=1)
        sig_a = exercise.minhash_signature(exercise.shingle_set(a, 1), 256, seed=1)
        sig_b = exercise.minhash_signature(exercise.shingle_set(b, 1), 256, seed=1)
        estimate = np.mean(np.array(sig_a) == np.array(sig_b))
        # 4 standard errors of a mean of 256 Bernoulli(J) draws, plus a little for hash collisions.
        tolerance = 4 * np.sqrt(max(truth * (1 - truth), 0.01) / 256) + 0.01
        assert abs(estimate - truth) <= tolerance, f"J={truth:.2f} but your signatures agree on {estimate:.2f}"
        package = dedup.MinHasher(num_perm=256, shingle_size=1, seed=1).signatures([a, b])
        assert abs(dedup.estimated_jaccard(package[0], package[1]) - estimate) <= 2 * tolerance


@pytest.mark.parametrize("bands, rows", [(2, 2), (4, 1), (1, 4), (3, 2)])
def test_lsh_candidates_match_the_package(exercise, bands, rows):
    rng = np.random.default_rng(bands * 10 + rows)
    signatures = rng.integers(0, 3, size=(25, bands * rows), dtype=np.uint32)  # small values: many collisions
    expected = {tuple(p) for p in dedup.lsh_candidate_pairs(signatures, bands, rows).tolist()}
    assert exercise.lsh_candidate_pairs(signatures.tolist(), bands, rows) == expected


def test_lsh_needs_the_whole_band_to_agree(exercise):
    assert exercise.lsh_candidate_pairs([[1, 2], [1, 3]], bands=1, rows=2) == set()
    assert exercise.lsh_candidate_pairs([[1, 2], [1, 3]], bands=2, rows=1) == {(0, 1)}
    assert exercise.lsh_candidate_pairs([[5, 5], [5, 5], [5, 5]], 1, 2) == {(0, 1), (0, 2), (1, 2)}


def test_find_emails_matches_the_package_on_planted_pii(exercise):
    # The package also catches obfuscated forms ("kofi(at)mail(dot)org"); the exercise asks for the
    # plain "@" form only, so compare on those.
    for text, _ in pii.planted_pii(200, seed=1):
        expected = [text[s:e] for s, e, kind in pii.find_pii(text) if kind == "email" and "@" in text[s:e]]
        assert exercise.find_emails(text) == expected, text


@pytest.mark.parametrize("text, expected", [
    ("reach me at a.b-c+tag@mail.example.co.uk.", ["a.b-c+tag@mail.example.co.uk"]),
    ("two: x@y.io,z@w.org", ["x@y.io", "z@w.org"]),
    ("not an address: @home, user@, user@host", []),
])
def test_find_emails_edge_cases(exercise, text, expected):
    assert exercise.find_emails(text) == expected


def test_luhn_matches_the_package(exercise):
    rng = random.Random(0)
    numbers = ["4111 1111 1111 1111", "4111-1111-1111-1112", "378282246310005", "6011111111111117", "0", "", "abc"]
    numbers += ["".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19))) for _ in range(500)]
    for number in numbers:
        assert exercise.luhn_valid(number) == pii.luhn_valid(number), number
