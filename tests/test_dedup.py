"""Exact and near-duplicate (MinHash + LSH) deduplication, on small local datasets."""

import json
import os
import subprocess
import sys

import datasets
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minilm.bench import BENCHMARKS
from minilm.data.dedup import (
                               EMPTY, MinHasher, choose_bands_rows, dedup_quality, estimated_jaccard, exact_dedup, exact_duplicates,
                               exact_jaccard, find_near_duplicates, lsh_candidate_pairs, lsh_probability, near_dedup,
                               near_dedup_with_stats, near_duplicate_clusters, normalize_for_hash, pair_jaccard,
                               planted_near_duplicates, sha256_key, shingle_hashes, shingles, similar_pairs,
                               )


@pytest.fixture(scope="module")
def planted():
    return planted_near_duplicates(400, dup_fraction=0.1, seed=3)


# ----------------------------------------------------------------------------------------------
# Exact dedup


def test_normalization_is_nfkc_casefold_and_whitespace():
    assert normalize_for_hash("  Ｓｔｒａßｅ\u00a0\tIS\n\nhere ") == "strasse is here"
    assert sha256_key("STRASSE  is here") == sha256_key("straße is\nhere")
    assert sha256_key("a b") != sha256_key("ab")  # spacing collapses, it does not vanish


def test_exact_dedup_keeps_the_first_of_each_group():
    texts = ["The Tempest", "  the  TEMPEST\n", "Macbeth", "Hamlet", "MACBETH", "the tempest."]
    assert exact_duplicates(texts) == [False, True, False, False, True, False]
    dataset = datasets.Dataset.from_dict({"text": texts, "id": list(range(len(texts)))})
    kept = exact_dedup(dataset)
    assert kept["id"] == [0, 2, 3, 5] and kept.column_names == ["text", "id"]
    assert len(exact_dedup(dataset.select([]))) == 0


def test_exact_duplicates_rejects_a_bare_string():
    with pytest.raises(TypeError, match="list of texts"):
        exact_duplicates("aab")


def test_exact_dedup_on_another_column_in_two_processes():
    dataset = datasets.Dataset.from_dict({"body": ["x", "X ", "y", "x"] * 5})
    assert exact_dedup(dataset, column="body", num_proc=2)["body"] == ["x", "y"]


@pytest.mark.parametrize("dedup", [exact_dedup, near_dedup, near_dedup_with_stats])
@pytest.mark.parametrize("rows", [2, 0])  # an empty dataset is checked too
def test_a_missing_column_is_named_with_the_columns_there_are(dedup, rows):
    dataset = datasets.Dataset.from_dict({"body": ["x y z"] * rows, "id": list(range(rows))})
    with pytest.raises(ValueError, match="^the dataset has no column 'text': its columns are body, id$"):
        dedup(dataset)


# ----------------------------------------------------------------------------------------------
# Shingles and hashes


def test_shingles_edge_cases():
    assert shingles("") == [] and shingles(" \n\t ") == []
    assert shingles("Exit, pursued by a bear") == ["exit, pursued by a bear"]  # exactly n words: one
    assert shingles("Exit pursued", n=5) == ["exit pursued"]  # shorter than n: one shingle of all
    assert shingles("안녕하세요 여러분 반갑습니다 정말로", n=2) == ["안녕하세요 여러분", "여러분 반갑습니다", "반갑습니다 정말로"]
    assert shingles("🙂 🙂 🙂 👋", n=2) == ["🙂 🙂", "🙂 🙂", "🙂 👋"]
    assert exact_jaccard("🙂 🙂 🙂 👋", "🙂 🙂 👋", n=2) == 1.0  # sets: repeats do not count
    assert exact_jaccard("", "") == 1.0 and exact_jaccard("", "a") == 0.0
    with pytest.raises(ValueError):
        shingles("a b", n=0)


@pytest.mark.fuzz
@given(st.text(max_size=80), st.integers(1, 4))
def test_shingle_hashes_follow_the_shingles(text, n):
    # The numpy byte-level hashing must see exactly the words str.split() sees, in every script.
    strings, hashes = shingles(text, n), shingle_hashes(text, n)
    assert len(hashes) == len(strings)
    for i in range(len(strings)):
        for j in range(len(strings)):
            assert (strings[i] == strings[j]) == (hashes[i] == hashes[j])


def test_signatures_do_not_depend_on_the_process():
    texts = ["to be or not to be that is the question", "한국어 문장 하나 둘 셋 넷 다섯", "🙂 x", ""]
    code = ("import json, sys; from minilm.data.dedup import MinHasher; "
            "print(json.dumps(MinHasher(num_perm=16, seed=7).signatures(json.loads(sys.argv[1])).tolist()))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(texts)], env=env, capture_output=True,
                         text=True, check=True).stdout
    here = MinHasher(num_perm=16, seed=7).signatures(texts)
    assert json.loads(out) == here.tolist()
    assert (here[3] == EMPTY).all() and not (here[:3] == EMPTY).any()
    assert not np.array_equal(MinHasher(num_perm=16, seed=8).signatures(texts[:1]), here[:1])


def test_chunking_does_not_change_signatures():
    # Long documents span many chunks of shingles; tiny chunks and blocks must give the same minima.
    from minilm.text.corpus import shakespeare_texts

    texts = shakespeare_texts("train")[:3] + ["", "short one", "a b c d e f g"]
    default = MinHasher(num_perm=32).signatures(texts)
    tiny = MinHasher(num_perm=32, chunk_shingles=7, block_docs=2).signatures(texts)
    assert np.array_equal(default, tiny)


# ----------------------------------------------------------------------------------------------
# Jaccard: exact and estimated


def test_estimated_jaccard_is_within_its_standard_error(planted):
    sigs = MinHasher(num_perm=128).signatures(planted.texts)
    exact = planted.jaccard  # near-duplicates (0.8-1) and hard negatives (0.3-0.6)
    estimate = estimated_jaccard(sigs[planted.pairs[:, 0]], sigs[planted.pairs[:, 1]])
    # Each estimate is a mean of 128 Bernoulli(J) draws: standard error sqrt(J(1-J)/128).
    z = (estimate - exact) / np.sqrt(exact * (1 - exact) / 128)
    assert np.abs(z).max() < 4.5  # 60 pairs: P(any |z| > 4.5) ~ 4e-4 if the hashing is sound
    assert abs(z.mean()) < 3 / np.sqrt(len(z))  # unbiased: the mean z is within 3 of its s.e.
    assert 0.6 < z.std() < 1.4  # and the spread is what the binomial model says
    assert np.allclose(pair_jaccard(planted.texts, planted.pairs), exact)  # hashed sets == string sets


def test_lsh_probability_matches_a_monte_carlo_run_of_the_real_pipeline():
    # Pairs of word sets with a known Jaccard (shingle_size=1: shingles are words); distinct
    # random words per pair make the pairs independent trials of the same experiment.
    bands, rows, trials = 4, 4, 1000
    hasher = MinHasher(num_perm=bands * rows, shingle_size=1, seed=5)
    for shared in (0, 10, 16, 18):
        texts = []
        for t in range(trials):
            words = [f"w{shared}x{t}x{i}" for i in range(40 - shared)]
            texts += [" ".join(words[:20]), " ".join(words[:shared] + words[20:])]
        jaccard = shared / (40 - shared)
        assert exact_jaccard(texts[0], texts[1], n=1) == pytest.approx(jaccard)
        candidates = lsh_candidate_pairs(hasher.signatures(texts), bands, rows)
        hits = {tuple(p) for p in candidates.tolist()}
        rate = np.mean([(2 * t, 2 * t + 1) in hits for t in range(trials)])
        expected = lsh_probability(jaccard, bands, rows)
        # 4 binomial standard errors (+0.01 for p = 0); a model with one band less or one row more
        # is off by 6 or more of them at J = 0.67 and 0.82
        assert abs(rate - expected) < 4 * np.sqrt(expected * (1 - expected) / trials) + 0.01, jaccard
        assert all(j == i + 1 and i % 2 == 0 for i, j in hits)  # no pair across trials


def test_lsh_probability_and_band_choice():
    assert lsh_probability(1.0, 25, 5) == 1.0 and lsh_probability(0.0, 25, 5) == 0.0
    curve = lsh_probability(np.linspace(0, 1, 11), 25, 5)
    assert np.all(np.diff(curve) >= 0)  # an S-curve: increasing in J
    assert choose_bands_rows(0.8, 128) == (25, 5) and lsh_probability(0.8, 25, 5) > 0.9999
    bands, rows = choose_bands_rows(0.9, 128)
    assert bands * rows <= 128 and lsh_probability(0.9, bands, rows) >= 0.999


def test_lsh_edge_cases():
    sigs = MinHasher(num_perm=8).signatures(["", "", "a b c d e f", "a b c d e f"])
    assert lsh_candidate_pairs(sigs, 2, 4).tolist() == [[2, 3]]  # documents without words take no part
    assert lsh_candidate_pairs(sigs[:1], 2, 4).shape == (0, 2)
    with pytest.raises(ValueError, match="permutations"):
        lsh_candidate_pairs(sigs, 3, 4)


@pytest.mark.parametrize("bands, rows", [(4, 0), (0, 2), (-1, 2)])
def test_lsh_candidate_pairs_rejects_empty_bands(bands, rows):
    sigs = MinHasher(num_perm=8).signatures(["a b c d e f", "x y z w v u"])
    with pytest.raises(ValueError, match="must be at least 1"):
        lsh_candidate_pairs(sigs, bands, rows)


@pytest.mark.parametrize("call, match", [
    (lambda: choose_bands_rows(0.8, 0), "num_perm=0"),
    (lambda: choose_bands_rows(0.8, -5), "num_perm=-5"),
    (lambda: choose_bands_rows(0.8, 128, min_probability=0), "min_probability"),
    (lambda: choose_bands_rows(0.8, 128, min_probability=1.5), "min_probability"),
    (lambda: MinHasher(chunk_shingles=0), "chunk_shingles"),
    (lambda: MinHasher(block_docs=0), "block_docs"),
    (lambda: MinHasher(block_docs=-1), "block_docs"),
    (lambda: planted_near_duplicates(20, 0.1, negative_fraction=-0.5), "negative_fraction"),
    (lambda: planted_near_duplicates(20, 0.1, negative_fraction=1.5), "negative_fraction"),
])
def test_sizes_and_fractions_out_of_range_are_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_union_find_clusters_are_transitive():
    assert near_duplicate_clusters(np.array([[4, 5], [1, 4], [2, 3]]), 7) == [[1, 4, 5], [2, 3]]
    assert near_duplicate_clusters(np.zeros((0, 2), dtype=int), 3) == []


@pytest.mark.parametrize("pairs, error, match", [
    ([[0, -1]], ValueError, "index -1"),
    ([[0, -2]], ValueError, "index -2"),
    ([[0, 3]], ValueError, "index 3"),
    (np.array([[0, 1.7]]), TypeError, "integer"),
    ([[0, 1, 2]], ValueError, "shape"),
])
def test_pairs_must_name_documents_in_range(pairs, error, match):
    texts = ["a b c d e f", "a b c d e g", "x y z"]
    with pytest.raises(error, match=match):
        near_duplicate_clusters(np.array(pairs), 3)
    with pytest.raises(error, match=match):
        pair_jaccard(texts, pairs)


# ----------------------------------------------------------------------------------------------
# The dataset step and its quality


def test_similar_pairs_equals_brute_force():
    corpus = planted_near_duplicates(120, dup_fraction=0.15, seed=4)
    sets = [set(shingles(t)) for t in corpus.texts]
    for threshold in (0.8, 0.3):
        brute = {(i, j) for i in range(len(sets)) for j in range(i + 1, len(sets))
                 if len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= threshold}
        pairs, jaccard = similar_pairs(corpus.texts, threshold)
        assert {tuple(p) for p in pairs.tolist()} == brute and np.all(jaccard >= threshold)
    planted_dups = corpus.pairs[np.array(corpus.kinds) == "near_duplicate"]
    assert np.all(corpus.jaccard[np.array(corpus.kinds) == "near_duplicate"] >= 0.8) and len(planted_dups) == 18
    negatives = corpus.jaccard[np.array(corpus.kinds) == "hard_negative"]
    assert np.all((negatives >= 0.3) & (negatives <= 0.6))


def test_near_dedup_finds_every_planted_pair_and_keeps_one_per_cluster(planted):
    dataset = datasets.Dataset.from_dict({"text": planted.texts, "source": ["web"] * len(planted.texts),
                                          "id": list(range(len(planted.texts)))})
    kept, stats = near_dedup_with_stats(dataset)
    found = find_near_duplicates(planted.texts)
    cluster_of = {d: k for k, members in enumerate(found.clusters) for d in members}
    for (a, b), kind in zip(planted.pairs.tolist(), planted.kinds):
        if kind == "near_duplicate":
            assert cluster_of.get(a) is not None and cluster_of.get(a) == cluster_of.get(b)
        else:  # a hard negative never joins its source's cluster
            assert cluster_of.get(a) is None or cluster_of.get(a) != cluster_of.get(b)
    assert stats["docs_in"] == len(dataset) and stats["docs_out"] == len(kept)
    assert stats["docs_out"] == len(dataset) - stats["docs_in_clusters"] + stats["clusters"]
    assert stats["verified_pairs"] <= stats["candidate_pairs"] and stats["clusters"] > 0
    assert set(kept["id"]) == set(range(len(dataset))) - {d for c in found.clusters for d in c[1:]}
    assert kept.column_names == ["text", "source", "id"]
    assert len(similar_pairs(kept["text"])[0]) == 0  # nothing near-duplicate is left
    assert near_dedup(dataset)["id"] == kept["id"]


def test_near_dedup_small_and_empty_inputs():
    empty = datasets.Dataset.from_dict({"text": []})
    assert len(near_dedup(empty)) == 0
    dataset = datasets.Dataset.from_dict({"text": ["", "", "one line of text only", "One line of text, only"]})
    assert near_dedup(dataset)["text"] == dataset["text"]  # empties are exact dedup's job
    with pytest.raises(ValueError, match="verify"):
        find_near_duplicates(["a"], verify="maybe")


@pytest.mark.parametrize("threshold", [1.5, float("nan"), -1, 0])
def test_thresholds_outside_zero_one_are_rejected(threshold):
    texts = ["a b c d e f", "a b c d e g", "x y z"]
    with pytest.raises(ValueError, match="threshold"):
        find_near_duplicates(texts, threshold=threshold, bands=4, rows=4)
    with pytest.raises(ValueError, match="threshold"):
        find_near_duplicates(texts, threshold=threshold)
    with pytest.raises(ValueError, match="threshold"):
        similar_pairs(texts, threshold=threshold)


@pytest.mark.parametrize("options", [{"bands": 2}, {"rows": 4}])
def test_bands_and_rows_come_together(options):
    with pytest.raises(ValueError, match="both or neither"):
        find_near_duplicates(["a b c d e f", "a b c d e g"], **options)


def test_dedup_quality_meets_the_targets():
    corpus = planted_near_duplicates(2000, dup_fraction=0.1, seed=1)
    quality = dedup_quality(corpus)
    assert quality["recall"] >= 0.95 and quality["precision"] >= 0.95
    assert quality["jaccard_mae"] < 0.05  # the standard error is <= 0.044 for every J
    assert quality["true_pairs"] == quality["planted_pairs"] + quality["unplanted_true_pairs"]
    assert (quality["bands"], quality["rows"]) == (25, 5)
    by_signature = dedup_quality(corpus, verify="signature")
    assert by_signature["verified_pairs"] <= by_signature["candidate_pairs"]


def test_bench_dedup_prints_the_promised_fields():
    result = BENCHMARKS["dedup"](n_docs=1000)
    assert {"docs", "seconds", "docs_per_s", "recall", "precision"} <= set(result)
    assert result["docs"] == 1000 and result["docs_per_s"] > 0
    json.dumps(result)
