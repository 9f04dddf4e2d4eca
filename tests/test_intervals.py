"""minilm.evals.intervals: paired bootstrap intervals for two models measured on the same items."""

import math

import numpy as np
import pytest
import torch

from minilm.evals.intervals import Difference, accuracy_difference, loss_difference
from minilm.models.gpt import GPT, GPTConfig
from minilm.models.train import SourceTokens, evaluate, window_totals


def test_a_paired_accuracy_interval_has_the_textbook_width():
    rng = np.random.default_rng(1)
    a = (rng.random(2000) < 0.7).astype(int)
    b = np.where(rng.random(2000) < 0.8, a, 1 - a)  # B agrees with A on about 80% of the questions
    d = accuracy_difference(a, b, n_boot=4000)
    diff = a - b
    se = diff.std(ddof=1) / math.sqrt(diff.size)  # the paired standard error
    assert d.value == pytest.approx(a.mean() - b.mean())
    assert (d.high - d.low) == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert d.n == 2000 and d.low < d.value < d.high


@pytest.mark.parametrize("a, b, verdict", [
    ([1] * 90 + [0] * 10, [1] * 50 + [0] * 50, "higher"),
    ([1] * 50 + [0] * 50, [1] * 90 + [0] * 10, "lower"),
    ([1, 0] * 50, [0, 1] * 50, "within noise"),  # every answer differs, the accuracies do not
])
def test_the_verdict_comes_from_the_interval(a, b, verdict):
    assert accuracy_difference(a, b).verdict == verdict


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="same order"):
        accuracy_difference([1, 0], [1])
    with pytest.raises(ValueError, match="confidence"):
        accuracy_difference([1, 0], [1, 1], confidence=1.5)
    one = {"s": (np.ones(4), np.full(4, 8), np.full(4, 10))}
    with pytest.raises(ValueError, match="same sources"):
        loss_difference(one, {"t": one["s"]})
    with pytest.raises(ValueError, match="same windows"):
        loss_difference(one, {"s": (np.ones(4), np.full(4, 7), np.full(4, 10))})
    with pytest.raises(ValueError, match="metric"):
        loss_difference(one, one, metric="accuracy")


def test_describe_reads_the_numbers():
    text = Difference(0.2, 0.1, 0.3, n=100).describe(scale=100, unit=" points", digits=1)
    assert text == "+20.0 points (95% interval +10.0 to +30.0 points)"
    d = Difference(0.2, 0.1, 0.3, n=100)
    assert d.as_dict()["verdict"] == "higher" and Difference.from_dict(d.as_dict()) == d


def test_the_loss_difference_is_evaluates_mixture_on_the_same_windows():
    torch.manual_seed(0)
    config = GPTConfig.modern(vocab_size=50, block_size=16, n_layer=1, n_embd=32, n_head=2)
    a, b = GPT(config), GPT(config)
    rng = np.random.default_rng(0)
    sets = SourceTokens({"x": rng.integers(0, 50, 700).astype(np.uint16), "y": rng.integers(0, 10, 500).astype(np.uint16)},
                        {"x": 0.75, "y": 0.25})
    byte_lengths = rng.integers(1, 4, 50)
    windows = {m: {s: window_totals(m, t, 16, 4, 10**6, byte_lengths) for s, t in sets.items()} for m in (a, b)}
    for metric in ("loss", "bpb"):
        d = loss_difference(windows[a], windows[b], sets.weights, metric=metric)
        expected = evaluate(a, sets, 16, 4, 10**6, byte_lengths)[metric] - evaluate(b, sets, 16, 4, 10**6, byte_lengths)[metric]
        assert d.value == pytest.approx(expected, rel=1e-5)
        assert d.low <= d.value <= d.high and d.n == sum(len(w[0]) for w in windows[a].values())
    # A model against itself: no difference at all.
    same = loss_difference(windows[a], windows[a], sets.weights)
    assert same.value == 0 and same.low == 0 and same.high == 0 and same.verdict == "within noise"


def test_window_totals_add_up_to_evaluate():
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=30, block_size=8, n_layer=1, n_embd=16, n_head=2))
    tokens = np.random.default_rng(2).integers(0, 30, 300).astype(np.uint16)
    byte_lengths = np.arange(1, 31)
    nats, targets, bytes_ = window_totals(model, tokens, 8, 5, 200, byte_lengths)
    result = evaluate(model, tokens, 8, 5, 200, byte_lengths)
    assert len(nats) == len(targets) == len(bytes_) == 200 // 8 and set(targets) == {8}
    assert nats.sum() / targets.sum() == pytest.approx(result["loss"], rel=1e-6)
    assert nats.sum() / math.log(2) / bytes_.sum() == pytest.approx(result["bpb"], rel=1e-6)


def test_mean_difference_is_paired_over_items_and_matches_accuracy_difference():
    from minilm.evals.intervals import mean_difference

    rng = np.random.default_rng(1)
    shared = rng.normal(5.0, 2.0, size=64)  # each window's own difficulty, common to both models
    a, b = shared + 0.05, shared + rng.normal(0.0, 0.01, size=64)
    d = mean_difference(a, b)
    assert d.value == pytest.approx(float(np.mean(a - b))) and d.verdict == "higher" and d.n == 64
    # Pairing: the windows' spread (2 nats) does not widen the interval.
    assert d.high - d.low < 0.02
    right_a, right_b = [1, 0, 1, 1, 0] * 10, [0, 0, 1, 1, 1] * 10
    assert mean_difference(right_a, right_b) == accuracy_difference(right_a, right_b)
    with pytest.raises(ValueError, match="one value per window"):
        mean_difference([1.0, 2.0], [1.0], what="window")
