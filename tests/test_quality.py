"""Quality filters: Gopher/C4 heuristics, the reference-perplexity model, synthetic junk."""

import math
from collections import Counter

import datasets
import numpy as np
import pytest

from minilm.core.checks import ConfigError
from minilm.text.corpus import load_shakespeare, shakespeare_texts
from minilm.data.quality import (LOW_QUALITY_KINDS, QualityThresholds, ReferenceModel, duplicate_ngram_chars,
                                 heuristic_filter, heuristic_reasons, low_quality_examples, passes_heuristics,
                                 perplexity_filter, shakespeare_reference, top_ngram_chars)

GOOD_PROSE = (
    "The library opens at nine in the morning and closes at six in the evening. Visitors can borrow up to "
    "five books at a time, and most loans last three weeks. If you need a book that is already on loan, ask "
    "at the front desk and we will put your name on the waiting list. Children's events take place every "
    "Saturday, and the reading room on the second floor is kept quiet for people who want to study."
)


# ----------------------------------------------------------------------------------------------
# Heuristics


def test_thresholds_default_to_the_papers_and_are_validated():
    t = QualityThresholds()
    assert (t.min_words, t.max_words, t.min_mean_word_length, t.max_mean_word_length) == (50, 100_000, 3, 10)
    assert (t.max_symbol_word_ratio, t.max_bullet_line_fraction, t.max_ellipsis_line_fraction) == (0.1, 0.9, 0.3)
    assert t.min_alpha_word_fraction == 0.8 and t.min_stop_words == 2
    assert t.max_top_ngram_char_fraction[0] == (2, 0.20) and t.max_duplicate_ngram_char_fraction[-1] == (10, 0.10)
    with pytest.raises(ConfigError, match="max_bullet_line_fraction=1.5 is out of range"):
        QualityThresholds(max_bullet_line_fraction=1.5)
    with pytest.raises(ConfigError, match="min_stop_words=9 is out of range"):
        QualityThresholds(min_stop_words=9)
    with pytest.raises(Exception):
        t.min_words = 3  # frozen


def test_good_prose_passes():
    assert heuristic_reasons(GOOD_PROSE) == []
    assert passes_heuristics(GOOD_PROSE.replace(". ", ".\r\n").replace(" ", "\u00a0", 3))


@pytest.mark.parametrize("text, reason", [
    ("Too short to be a document.", "too_few_words"),
    ("Pneumonoultramicroscopic " * 60, "mean_word_length"),
    ("a b c d e f g h i j " * 10 + GOOD_PROSE, "mean_word_length"),
    (GOOD_PROSE + " #tag" * 12, "symbol_word_ratio"),
    ("\n".join(f"And then there was {i}..." for i in range(30)) + GOOD_PROSE, "ellipsis_lines"),
    ("\n".join(f"• item {i} of the list with the words" for i in range(40)), "bullet_lines"),
    (GOOD_PROSE + " 12 34 56 78 90 11 22 33" * 10, "non_alpha_words"),
    (" ".join(["Lorem", "dolor", "sit", "amet", "quis", "nostrud", "ullamco"] * 10), "no_stop_words"),
    ("\n".join(["Buy now and save with the best deals."] * 10 + [GOOD_PROSE]), "duplicate_lines"),
    (GOOD_PROSE + "\n\n" + GOOD_PROSE, "duplicate_paragraphs"),
    (GOOD_PROSE + " the best deal" * 30, "top_ngram_2"),
    (GOOD_PROSE + " " + GOOD_PROSE, "duplicate_ngrams_5"),
    (GOOD_PROSE + " Lorem ipsum dolor sit amet.", "lorem_ipsum"),
    (GOOD_PROSE + " function f() { return 1; }", "curly_bracket"),
    (GOOD_PROSE.upper(), "uppercase"),
])
def test_each_rule_catches_what_it_is_for(text, reason):
    assert reason in heuristic_reasons(text)


@pytest.mark.parametrize("text", ["", "   \n\n", "🎉🎉🎉 🎉", "안녕하세요. 오늘 날씨가 좋네요.",
                                  "no\u00a0break\u200b", "windows\r\nline\r\nendings\r\n", "{", "...", "#"])
def test_hard_inputs_give_reasons_without_crashing(text):
    reasons = heuristic_reasons(text)
    assert "too_few_words" in reasons


def test_ngram_helpers():
    assert top_ngram_chars("a b a b a b".split(), 2) == 6
    assert top_ngram_chars("a b c".split(), 2) == 0 and top_ngram_chars([], 2) == 0
    assert duplicate_ngram_chars("x y z x y z".split(), 3) == 3
    assert duplicate_ngram_chars("a a a a a a".split(), 2) == 5  # overlapping repeats count each word once
    assert duplicate_ngram_chars(["a"], 5) == 0


def test_heuristics_keep_shakespeare_and_drop_junk():
    scenes = [doc.text for doc in load_shakespeare()]
    kept = sum(passes_heuristics(s) for s in scenes) / len(scenes)
    assert kept >= 0.98, kept
    texts, kinds = low_quality_examples(140, seed=1)
    dropped = [not passes_heuristics(t) for t in texts]
    assert sum(dropped) / len(texts) >= 0.90
    by_kind = Counter(kind for kind, d in zip(kinds, dropped) if d)
    assert all(by_kind[kind] >= 0.7 * kinds.count(kind) for kind in LOW_QUALITY_KINDS), by_kind


@pytest.mark.parametrize("num_proc", [1, 2])
def test_heuristic_filter_matches_per_text(num_proc):
    texts = [GOOD_PROSE, *low_quality_examples(7)[0], GOOD_PROSE.upper(), "", shakespeare_texts("val")[1]]
    ds = datasets.Dataset.from_dict({"text": texts, "id": list(range(len(texts)))})
    out = heuristic_filter(ds, num_proc=num_proc)
    assert out["id"] == [i for i, t in enumerate(texts) if passes_heuristics(t)] == [0, 10]
    with pytest.raises(KeyError, match="no column 'body'"):
        heuristic_filter(ds, column="body")
    with pytest.raises(ValueError, match="no column 'body': its columns are text, id"):
        perplexity_filter(ds, ReferenceModel(order=2).fit("hello"), 5.0, column="body")


# ----------------------------------------------------------------------------------------------
# The reference model


def test_low_quality_examples():
    texts, kinds = low_quality_examples(21, seed=5)
    assert (texts, kinds) == low_quality_examples(21, seed=5)
    assert kinds == list(LOW_QUALITY_KINDS) * 3 and all(texts)
    assert low_quality_examples(0) == ([], [])
    with pytest.raises(ValueError, match="n=-2 must be at least 0"):
        low_quality_examples(-2)


def test_reference_model_probabilities_sum_to_one():
    model = ReferenceModel(order=3).fit(["abracadabra, abracadabra!", "a cab"])
    vocabulary = sorted(model.counts[1]) + ["Z"]  # "Z" was never seen: it stands for every other character
    for history in ("", "a", "ab", "ca", "zz", "a b"):
        total = sum(2 ** model.char_log2probs(history + c)[-1] for c in vocabulary)
        assert total == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("call, message", [
    (lambda: heuristic_reasons(None), "heuristic_reasons needs text to be a str, not NoneType"),
    (lambda: passes_heuristics(b"bytes"), "passes_heuristics needs text to be a str, not bytes"),
    (lambda: top_ngram_chars(None, 2), "top_ngram_chars needs words to be a list of str, not NoneType"),
    (lambda: duplicate_ngram_chars("a b a b", 2), "duplicate_ngram_chars needs words to be a list of str, not str"),
    (lambda: ReferenceModel().fit(None), "ReferenceModel.fit needs texts to be a str or a list of str, not NoneType"),
    (lambda: ReferenceModel().fit(["a", None]), r"ReferenceModel.fit needs texts\[1\] to be a str, not NoneType"),
    (lambda: ReferenceModel(order=2).fit("ab").bits_per_char(None),
     "ReferenceModel.bits_per_char needs text to be a str, not NoneType"),
    (lambda: ReferenceModel(order=2).fit("ab").char_log2probs(3),
     "ReferenceModel.char_log2probs needs text to be a str, not int"),
    (lambda: ReferenceModel(order=2).fit("ab").threshold(None),
     "threshold needs heldout_texts to be a list of str, not NoneType"),
    (lambda: ReferenceModel(order=2).fit("ab").threshold(["ab", 7]),
     r"threshold needs heldout_texts\[1\] to be a str, not int"),
])
def test_text_arguments_that_are_not_text_are_named(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_reference_model_errors():
    with pytest.raises(RuntimeError, match="not fitted yet"):
        ReferenceModel().bits_per_char("hello")
    with pytest.raises(ValueError, match="at least one non-empty text"):
        ReferenceModel().fit(["", ""])
    with pytest.raises(ConfigError, match="order=0 is out of range"):
        ReferenceModel(order=0)
    model = ReferenceModel(order=2).fit("hello there")
    assert model.bits_per_char("") == math.inf
    with pytest.raises(ValueError, match="at least one non-empty held-out text"):
        model.threshold([""])
    with pytest.raises(TypeError, match="not a str"):
        model.threshold("the cat sat")  # scored character by character before
    with pytest.raises(ConfigError, match="heldout_every=1 is out of range"):
        shakespeare_reference(max_chars=1000, heldout_every=1)
    with pytest.raises(ConfigError, match="no_lorem_ipsum='no' must be True or False"):
        QualityThresholds(no_lorem_ipsum="no")


@pytest.mark.parametrize("threshold", [float("nan"), 0.0, -1.0])
def test_perplexity_filter_needs_a_positive_threshold(threshold):
    import datasets

    model = ReferenceModel(order=2).fit("hello there")
    with pytest.raises(ValueError, match="must be a positive number of bits per character"):
        perplexity_filter(datasets.Dataset.from_dict({"text": ["hello"]}), model, threshold)


@pytest.fixture(scope="module")
def reference():
    return shakespeare_reference(max_chars=400_000)


def test_perplexity_ranks_unseen_shakespeare_above_junk(reference):
    model, threshold = reference
    val = np.array([model.bits_per_char(t) for t in shakespeare_texts("val")[:24]])
    junk = np.array([model.bits_per_char(t) for t in low_quality_examples(70)[0]])
    auc = (val[:, None] < junk[None, :]).mean()  # P(a Shakespeare scene scores better than a junk page)
    assert auc >= 0.99, auc
    assert (junk > threshold).mean() >= 0.9 and (val <= threshold).mean() >= 0.75
    assert 1.5 < np.median(val) < threshold < np.median(junk)


@pytest.mark.parametrize("num_proc", [1, 2])
def test_perplexity_filter_matches_per_text(reference, num_proc):
    model, threshold = reference
    texts = [shakespeare_texts("val")[0][:3000], *low_quality_examples(7)[0], GOOD_PROSE]
    ds = datasets.Dataset.from_dict({"text": texts})
    out = perplexity_filter(ds, model, threshold, num_proc=num_proc)
    scores = [model.bits_per_char(t) for t in texts]
    assert out["text"] == [t for t, s in zip(texts, scores) if s <= threshold]
    assert out["bits_per_char"] == pytest.approx([s for s in scores if s <= threshold])
    assert texts[0] in out["text"]
