"""The document cache (minilm.models.doc_cache) against a plain dictionary reading of its definition."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from minilm.models.doc_cache import cache_probs, cache_statistics, document_ids, fit_cache


def reference_probs(tokens, base, betas, doc_starts=(0,)):
    """The recursion read literally, one token at a time: counts of the current document kept in
    dictionaries, updated after each token is predicted. Also returns the statistics it used."""
    order, n = len(betas), len(tokens)
    probs, stats = np.array(base, dtype=np.float64), np.zeros((3, order, n))
    for t in range(n):
        if t in doc_starts:
            grams, totals, followers, doc = defaultdict(int), defaultdict(int), defaultdict(set), t
        p = base[t]
        for k in range(order):
            if t - k < doc:
                break
            h = (k,) + tuple(tokens[t - k : t])
            stats[:, k, t] = grams[h, tokens[t]], totals[h], len(followers[h])
            if totals[h]:
                weight = betas[k] * len(followers[h])
                p = (grams[h, tokens[t]] + weight * p) / (totals[h] + weight)
        probs[t] = p
        for k in range(order):
            if t - k < doc:
                break
            h = (k,) + tuple(tokens[t - k : t])
            grams[h, tokens[t]] += 1
            totals[h] += 1
            followers[h].add(tokens[t])
    return probs, stats


def random_case(seed, n, vocab_size, n_docs):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab_size, n)
    doc_starts = [0] + sorted(rng.choice(np.arange(1, n), n_docs - 1, replace=False).tolist())
    return tokens, rng.uniform(0.01, 1.0, n), doc_starts


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("vocab_size, n_docs", [(2, 1), (5, 3), (40, 2)])
def test_matches_the_dictionary_reference_at_every_position(order, vocab_size, n_docs):
    tokens, base, doc_starts = random_case(order * 100 + vocab_size, 300, vocab_size, n_docs)
    betas = [0.5 + k for k in range(order)]
    expected_probs, expected_stats = reference_probs(tokens.tolist(), base, betas, doc_starts)
    stats = cache_statistics(tokens, order, doc_starts, vocab_size)
    assert np.array_equal(stats, expected_stats)
    np.testing.assert_allclose(cache_probs(base, stats, betas), expected_probs, rtol=1e-12, atol=0)


def test_hand_computed_example():
    # "a b a b a": before the last "a", history "b" was followed by "a" once; "" saw a, b, a, b
    stats = cache_statistics(np.array([0, 1, 0, 1, 0]), order=2)
    assert stats[:, :, 4].tolist() == [[2, 1], [4, 1], [2, 1]]
    p = cache_probs(np.full(5, 0.25), stats, betas=[1.0, 1.0])[4]
    unigram = (2 + 1.0 * 2 * 0.25) / (4 + 1.0 * 2)  # 2.5 / 6
    assert p == pytest.approx((1 + 1.0 * 1 * unigram) / (1 + 1.0 * 1))


def every_continuation(tokens, t, base_distribution, betas, doc_starts=(0,)):
    """The cache's probability of every token at position t (the stream's t-th token replaced)."""
    probs = []
    for w in range(len(base_distribution)):
        trial = np.array(tokens[: t + 1])
        trial[t] = w
        stats = cache_statistics(trial, len(betas), [s for s in doc_starts if s <= t], len(base_distribution))
        probs.append(cache_probs(np.array([base_distribution[w]]), stats[:, :, t:], betas)[0])
    return np.array(probs)


def test_a_normalised_base_stays_normalised():
    tokens, _, doc_starts = random_case(3, 120, 6, 2)
    base_distribution = np.random.default_rng(4).dirichlet(np.ones(6))
    for t in (0, 1, 37, 119):
        total = every_continuation(tokens, t, base_distribution, [0.7, 2.0, 0.3], doc_starts).sum()
        assert total == pytest.approx(1.0, abs=1e-12)


def test_reads_only_the_current_document_before_the_token():
    tokens, base, doc_starts = random_case(5, 200, 4, 2)
    probs = cache_probs(base, cache_statistics(tokens, 3, doc_starts), [1.0, 1.0, 1.0])
    changed = tokens.copy()
    changed[150:] = (changed[150:] + 1) % 4  # the future changes
    changed[: doc_starts[1]] = 0  # and so does the previous document
    after = cache_probs(base, cache_statistics(changed, 3, doc_starts), [1.0, 1.0, 1.0])
    assert np.array_equal(after[doc_starts[1] : 150], probs[doc_starts[1] : 150])
    # at each document's first token the base prediction stands
    assert after[doc_starts[1]] == base[doc_starts[1]] and probs[0] == base[0]


def test_fit_finds_the_likelihood_maximum_and_helps_on_repeated_text():
    rng = np.random.default_rng(6)
    phrases = [rng.integers(0, 50, 6) for _ in range(8)]  # a document that repeats its phrases
    tokens = np.concatenate([phrases[i] for i in rng.integers(0, 8, 80)])
    base = np.full(len(tokens), 1 / 50)  # a base model that knows nothing of them
    stats = cache_statistics(tokens, 3)
    betas = fit_cache(base, stats)

    def nll(b):
        return -np.log(cache_probs(base, stats, b)).mean()

    assert nll(betas) < nll([1e8] * 3) - 1.0  # the cache is worth more than a nat per token here
    for k in range(3):  # no single beta moved by a factor 1.5 does better
        for factor in (1.5, 1 / 1.5):
            moved = list(betas)
            moved[k] = min(moved[k] * factor, 1e8)
            assert nll(moved) >= nll(betas) - 1e-9


def test_fit_turns_the_cache_off_where_the_document_does_not_repeat():
    tokens = np.random.default_rng(7).integers(0, 8, 3000)  # independent tokens, base = the truth
    base = np.full(len(tokens), 1 / 8)
    stats = cache_statistics(tokens, 2)
    betas = fit_cache(base, stats)
    assert -np.log(cache_probs(base, stats, betas)).mean() <= np.log(8) + 1e-3
    assert min(betas) > 50  # the counts get almost no weight


def test_real_play_names_are_learned_from_the_play_itself():
    from minilm.bench import play_starts
    from minilm.text.corpus import load_shakespeare
    from minilm.models.ngram import KneserNey, window_target_probs
    from minilm.text.tokenizer import Tokenizer
    from minilm.models.train import token_byte_lengths

    docs = load_shakespeare()
    train_docs = [d for d in docs if d.split == "train"][:60]
    val_docs = [d for d in docs if d.split == "val"][10:26]  # the end of Twelfth Night, then Julius Caesar
    tok = Tokenizer.train([d.text for d in train_docs], 512)
    train_ids = np.array(tok.encode("".join(d.text for d in train_docs)))
    val_ids = np.array(tok.encode("".join(d.text for d in val_docs)))
    byte_lengths = token_byte_lengths(tok)
    starts = play_starts(val_docs, val_ids, byte_lengths)
    assert len(starts) == 2 and tok.decode(val_ids[starts[1] : starts[1] + 5].tolist()).startswith("Julius")
    positions, base = window_target_probs(KneserNey(train_ids, tok.vocab_size, 3), val_ids, 64)
    stats = cache_statistics(val_ids, 4, starts, tok.vocab_size)[:, :, positions]
    n_bytes = byte_lengths[val_ids[positions]].sum()
    half = len(positions) // 2  # betas fitted on one half, scored on the other
    betas = fit_cache(base[:half], stats[:, :, :half])
    before = -np.log2(base[half:]).sum() / byte_lengths[val_ids[positions[half:]]].sum()
    after = -np.log2(cache_probs(base[half:], stats[:, :, half:], betas)).sum() / byte_lengths[val_ids[positions[half:]]].sum()
    assert after < before - 0.1, (before, after)  # bits per byte of the held-out half
    assert n_bytes > 0


@pytest.mark.parametrize("call, message", [
    (lambda: cache_statistics([0, 1], order=0), "order"),
    (lambda: cache_statistics([0, -1], order=1), ">= 0"),
    (lambda: cache_statistics([0, 1], order=4, vocab_size=2**20), "64-bit"),
    (lambda: cache_statistics([0, 1, 2], order=1, doc_starts=[1]), "doc_starts"),
    (lambda: cache_statistics([0, 1, 2], order=1, doc_starts=[0, 2, 1]), "doc_starts"),
    (lambda: cache_statistics([0, 1, 2], order=1, doc_starts=[0, 3]), "doc_starts"),
    (lambda: cache_probs(np.ones(3) / 2, np.zeros((3, 2, 4)), [1.0, 1.0]), "stats"),
    (lambda: cache_probs(np.ones(3) / 2, np.zeros((3, 2, 3)), [1.0]), "one beta"),
    (lambda: cache_probs(np.ones(3) / 2, np.zeros((3, 2, 3)), [1.0, 0.0]), "one beta"),
    (lambda: cache_probs(np.ones(3) * 2, np.zeros((3, 1, 3)), [1.0]), r"\[0, 1\]"),
    (lambda: fit_cache(np.zeros(3), np.zeros((3, 1, 3))), "> 0"),
    (lambda: fit_cache(np.zeros(0), np.zeros((3, 1, 0))), "at least one"),
    (lambda: cache_statistics([0.5, 1.5, 2.5], order=2), "integers, got dtype float64"),
    (lambda: cache_statistics(np.array([[0, 1], [1, 0]]), order=2), "one 1-D stream"),
    (lambda: cache_statistics([0, 3, 1, 0], order=2, vocab_size=3), "< vocab_size=3, got 3"),
    (lambda: cache_statistics([0, 1], order=2, vocab_size=0), "vocab_size=0"),
    (lambda: cache_statistics([0, 1], order=2, vocab_size=2.5), "vocab_size=2.5"),
    (lambda: cache_probs(np.array([np.nan, 0.2]), np.zeros((3, 1, 2)), [1.0]), "NaN"),
    (lambda: fit_cache(np.array([np.nan, 0.2]), np.zeros((3, 1, 2))), "NaN"),
    (lambda: cache_probs(np.ones(2) / 2, np.zeros((3, 1, 2)), [np.inf]), "each finite"),
])
def test_bad_input_says_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_document_ids_and_empty_streams():
    assert document_ids(4, [0, 1, 3]).tolist() == [0, 1, 1, 2]
    assert cache_statistics(np.zeros(0, dtype=np.int64), order=2).shape == (3, 2, 0)
