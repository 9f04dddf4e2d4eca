"""The Kneser-Ney model against a plain dictionary implementation of the same formula, and its
interpolation with a GPT."""

import math
from collections import Counter

import numpy as np
import pytest
import torch

import minilm.models.ngram as ngram_module
from minilm.models.gpt import GPT, GPTConfig
from minilm.models.ngram import (
                                 Interpolated,
                                 KneserNey,
                                 count_ngrams,
                                 fit_interpolation,
                                 interpolation_weight,
                                 modified_discounts,
                                 ney_discount,
                                 )
from minilm.models.train import evaluate, token_byte_lengths


def reference_kneser_ney(streams, vocab_size, order, discounts):
    """Interpolated Kneser-Ney written out with dictionaries, one n-gram at a time. ``discounts``
    holds per order one discount, or three (seen once, twice, more: modified Kneser-Ney)."""
    grams = [Counter() for _ in range(order + 2)]
    for s in streams:
        for n in range(1, order + 2):
            for i in range(len(s) - n + 1):
                grams[n][tuple(s[i : i + n])] += 1
    counted = {}
    for k in range(1, order + 1):
        if k == order:
            counted[k] = Counter(grams[k])
        else:  # continuation counts: distinct tokens seen before the k-gram
            counted[k] = Counter(g[1:] for g in grams[k + 1])
    def discount(k, c):
        d = discounts[k - 1]
        return d if np.isscalar(d) else d[min(c, 3) - 1]

    totals = {k: Counter() for k in counted}
    taken = {k: Counter() for k in counted}  # the mass each history's discounts took
    for k, table in counted.items():
        for g, c in table.items():
            totals[k][g[:-1]] += c
            taken[k][g[:-1]] += discount(k, c)

    def prob(history, token):
        p = 1.0 / vocab_size
        for k in range(1, order + 1):
            if len(history) < k - 1:
                break
            h = tuple(history[len(history) - (k - 1) :]) if k > 1 else ()
            total = totals[k][h]
            if not total:
                continue
            c = counted[k][h + (token,)]
            p = (c - discount(k, c) if c else 0) / total + taken[k][h] / total * p
        return p

    return prob


def random_streams(seed, vocab_size, lengths):
    rng = np.random.default_rng(seed)
    # A skewed distribution, so some n-grams repeat and others are seen once.
    weights = 1.0 / np.arange(1, vocab_size + 1)
    return [rng.choice(vocab_size, size=n, p=weights / weights.sum()) for n in lengths]


@pytest.mark.parametrize("modified", [False, True], ids=["KN", "modified KN"])
@pytest.mark.parametrize("dense_limit", [2**24, 0], ids=["dense bigrams", "sparse bigrams"])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_matches_the_dictionary_reference_at_every_position(order, dense_limit, modified, monkeypatch):
    monkeypatch.setattr(ngram_module, "DENSE_BIGRAM_LIMIT", dense_limit)
    vocab_size = 7
    streams = random_streams(order, vocab_size, [300, 40, 5])
    lm = KneserNey(streams, vocab_size, order, modified=modified, dtype=torch.float64)
    if modified and order > 1:  # the three discounts are estimated, and differ
        assert len(set(lm.discounts[-1])) == 3
    reference = reference_kneser_ney([list(s) for s in streams], vocab_size, order, lm.discounts)
    # Windows that mix seen and unseen histories (a fresh random sequence) and a 1-token window.
    windows = [torch.from_numpy(random_streams(99, vocab_size, [12])[0]), torch.tensor([3])]
    for window in windows:
        dist = lm.distributions(window[None])[0]
        assert dist.dtype == torch.float64
        assert torch.allclose(dist.sum(-1), torch.ones(len(window), dtype=torch.float64), atol=1e-12)
        for t in range(len(window)):
            history = window[: t + 1].tolist()
            for token in range(vocab_size):
                expected = reference(history[-(order - 1) :] if order > 1 else [], token)
                assert dist[t, token].item() == pytest.approx(expected, rel=1e-12)
                assert lm.prob(history, token) == pytest.approx(expected, rel=1e-12)
        targets = torch.roll(window, -1)
        picked = dist.gather(-1, targets[:, None])[:, 0]
        assert torch.allclose(lm.target_probs(window[None], targets[None])[0], picked, rtol=1e-12)


def test_hand_computed_probabilities():
    lm = KneserNey([0, 1, 2, 0, 1, 2, 0, 1], vocab_size=4, order=3, dtype=torch.float64)
    assert lm.discounts == [0.5, 0.5, 0.5]  # no n-gram seen exactly twice at every order: the fallback
    # unigram continuation counts: 0, 1, 2 each follow one distinct token; p1 = 1/6 + 0.5 / 4
    p1 = 1 / 6 + 0.5 * 0.25
    p2 = 0.5 + 0.5 * p1  # "0" was followed by "1" once (continuation count), back-off weight 0.5
    assert lm.prob([2, 0], 1) == pytest.approx(0.75 + 0.25 * p2)  # "2 0 1" twice: (2 - 0.5) / 2
    assert lm.prob([2, 0], 3) == pytest.approx(0.25 * 0.5 * 0.5 * 0.25)  # 3 never seen
    assert lm.prob([3], 0) == pytest.approx(p1)  # unseen history: the unigram level alone


def test_documents_are_counted_separately():
    joined = KneserNey([0, 1, 2, 3], vocab_size=4, order=2, dtype=torch.float64)
    apart = KneserNey([[0, 1], [2, 3]], vocab_size=4, order=2, dtype=torch.float64)
    assert joined.prob([1], 2) > 0.5  # "1 2" counted across the boundary
    assert apart.prob([1], 2) < 0.3  # never seen: "1" has no continuation, unigram level only
    assert count_ngrams([np.array([0, 1]), np.array([2, 3])], 2, 4)[0].tolist() == [1, 11]


def test_modified_discounts_fall_back_and_stay_in_range():
    assert modified_discounts(np.array([1, 1, 2, 2, 3])) == (ney_discount(np.array([1, 1, 2, 2, 3])),) * 3  # no n4
    d1, d2, d3 = modified_discounts(np.array([1] * 100 + [2] * 3 + [3] * 50 + [4]))  # odd counts of counts
    assert 0 < d1 < 1 and 0 < d2 < 2 and 0 < d3 < 3
    with pytest.raises(ValueError, match="triples"):
        KneserNey([0, 1], vocab_size=4, order=2, modified=True, discounts=[(0.5, 0.5, 0.5), (1.5, 0.5, 0.5)])


def test_ney_discount_from_counts_of_counts():
    assert ney_discount(np.array([1, 1, 2, 2, 3])) == pytest.approx(2 / (2 + 4))
    assert ney_discount(np.array([3, 4])) == 0.5
    streams = random_streams(0, 50, [5000])
    lm = KneserNey(streams, 50, 3)
    assert all(0 < d < 1 for d in lm.discounts) and lm.discounts == sorted(lm.discounts)


def test_float32_tables_agree_with_float64():
    streams = random_streams(1, 30, [2000])
    exact = KneserNey(streams, 30, 3, dtype=torch.float64)
    fast = KneserNey(streams, 30, 3)
    window = torch.from_numpy(random_streams(2, 30, [4, 50])[1]).reshape(2, 25)
    assert fast.distributions(window).dtype == torch.float32
    assert torch.allclose(fast.distributions(window).double(), exact.distributions(window), atol=1e-6)
    assert torch.allclose(fast.distributions(window).sum(-1), torch.ones(2, 25), atol=1e-5)


def test_higher_orders_score_better_on_real_text():
    from minilm.text.corpus import shakespeare_texts
    from minilm.text.tokenizer import Tokenizer

    texts = shakespeare_texts("train", max_chars=300_000)
    tok = Tokenizer.train(texts, 512)
    ids = tok.encode("".join(texts))
    cut = int(0.9 * len(ids))
    train_ids, held_out = ids[:cut], ids[cut:]
    byte_lengths = token_byte_lengths(tok)
    bpb = {n: evaluate(KneserNey(train_ids, tok.vocab_size, n), np.array(held_out), 64, 16, 10**6, byte_lengths)["bpb"]
           for n in (1, 2, 3)}
    assert bpb[1] > bpb[2] > bpb[3]  # every order of context helps on held-out text
    # evaluate() reads the forward's log-probabilities: the same as the formula, position by position
    lm = KneserNey(train_ids, tok.vocab_size, 3, dtype=torch.float64)
    window = np.array(held_out[:65])
    nats = evaluate(lm, window, 64, 1, 64)["loss"]
    by_hand = -np.mean([math.log(lm.prob(window[max(0, t - 2) : t], window[t])) for t in range(1, 65)])
    assert nats == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize("bad, message", [
    (dict(tokens=[0, 5], vocab_size=4), "must lie in"),
    (dict(tokens=[], vocab_size=4), "at least one training token"),
    (dict(tokens=[0, 1], vocab_size=4, order=0), "order"),
    (dict(tokens=[0, 1], vocab_size=4, order=2, discounts=[0.5]), "discounts"),
    (dict(tokens=[0, 1], vocab_size=4, order=2, discounts=[0.5, 1.5]), "discounts"),
    (dict(tokens=[0, 1], vocab_size=2**20, order=4), "64-bit"),
    (dict(tokens=[0.5, 1.7, 2.2], vocab_size=4), "integers, got dtype float64"),
    (dict(tokens=[[0, 1], [1.5, 2.0]], vocab_size=4), "integers, got dtype float64"),
])
def test_bad_fits_say_what_is_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        KneserNey(**bad)


def test_bad_queries_say_what_is_wrong():
    lm = KneserNey([0, 1, 2], vocab_size=3, order=2)
    with pytest.raises(ValueError, match="must lie in"):
        lm.distributions(torch.tensor([[0, 3]]))
    with pytest.raises(ValueError, match="integer"):
        lm.distributions(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="same shape"):
        lm.target_probs(torch.tensor([[0, 1]]), torch.tensor([[1]]))
    log_probs, loss = lm(torch.tensor([[0, 1]]), torch.tensor([[1, -1]]))  # -1: ignored
    assert loss.item() == pytest.approx(-log_probs[0, 0, 1].item())


@pytest.mark.parametrize("history, token, message", [
    ([0, 1], 7, "must lie in"),
    ([0, 1], -1, "must lie in"),
    ([9, 1], 1, "must lie in"),
    ([-1, 1], 1, "must lie in"),
    ([0.5, 1], 1, "integer"),
    ([0, 1], 1.5, "integer"),
])
def test_prob_checks_ids_as_forward_does(history, token, message):
    lm = KneserNey([0, 1, 2, 0, 1, 2], vocab_size=5, order=3)
    with pytest.raises(ValueError, match=message):
        lm.prob(history, token)
    with pytest.raises(ValueError, match=message):
        lm(torch.tensor([history + [token]]))


def test_interpolation_weight_is_the_likelihood_maximum():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.01, 1, 500), rng.uniform(0.01, 1, 500)
    w = interpolation_weight(a, b)

    def loglik(x):
        return np.log(x * a + (1 - x) * b).sum()

    assert 0 < w < 1
    assert loglik(w) >= max(loglik(w - 0.01), loglik(w + 0.01))
    assert interpolation_weight(a * 0 + 0.5, a * 0 + 0.1) > 0.999  # one model always better
    with pytest.raises(ValueError, match="same tokens"):
        interpolation_weight(a, b[:3])
    with pytest.raises(ValueError, match="at least one model"):
        interpolation_weight(np.array([0.0]), np.array([0.0]))


def small_gpt(vocab_size):
    torch.manual_seed(0)
    return GPT(GPTConfig.modern(vocab_size=vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=16))


def test_interpolated_model_scores_the_mixture():
    streams = random_streams(3, 20, [3000])
    lm = KneserNey(streams, 20, 3, dtype=torch.float64)
    gpt = small_gpt(20).eval()
    x = torch.from_numpy(random_streams(4, 20, [32])[0]).reshape(2, 16)
    log_probs, loss = Interpolated(gpt, lm, 0.3)(x, x)
    expected = torch.log(0.3 * torch.softmax(gpt(x)[0], -1).double() + 0.7 * lm.distributions(x))
    assert torch.allclose(log_probs.double(), expected, atol=1e-5)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 16), atol=1e-5)
    assert loss.item() == pytest.approx(-expected.gather(-1, x[..., None]).mean().item(), rel=1e-5)
    assert torch.allclose(Interpolated(gpt, lm, 1.0)(x)[0], torch.log_softmax(gpt(x)[0], -1), atol=1e-6)
    assert torch.allclose(Interpolated(gpt, lm, 0.0)(x)[0].double(), lm.distributions(x).log(), atol=1e-5)
    # evaluate() scores it like a GPT, and the mixture is never worse than the weighted average (Jensen)
    tokens = random_streams(5, 20, [400])[0]
    bpb = {w: evaluate(Interpolated(gpt, lm, w), tokens, 16, 8, 400, np.ones(20, dtype=np.int64))["bpb"] for w in (0.0, 0.3, 1.0)}
    assert bpb[0.3] <= 0.3 * bpb[1.0] + 0.7 * bpb[0.0] + 1e-6
    with pytest.raises(ValueError, match="tokens"):
        Interpolated(small_gpt(21), lm, 0.5)


def test_window_target_probs_score_as_evaluate_does():
    from minilm.models.ngram import window_target_probs

    lm = KneserNey(random_streams(8, 20, [3000]), 20, 3)
    gpt = small_gpt(20)
    tokens = random_streams(9, 20, [300])[0]
    byte_lengths = np.arange(1, 21)
    for model in (gpt, lm):
        positions, probs = window_target_probs(model, tokens, 16, max_tokens=200, batch_size=5)
        assert positions.tolist() == list(range(1, 193))  # 12 windows of 16 targets
        bpb = -np.log2(probs).sum() / byte_lengths[tokens[positions]].sum()
        assert bpb == pytest.approx(evaluate(model, tokens, 16, 4, 200, byte_lengths)["bpb"], rel=1e-6)
    with pytest.raises(ValueError, match="seq_len"):
        window_target_probs(gpt, tokens[:16], 16)
    with pytest.raises(ValueError, match="integers, got dtype float64"):
        window_target_probs(gpt, tokens.astype(np.float64) + 0.5, 16)


def test_fit_interpolation_uses_held_out_windows():
    streams = random_streams(6, 20, [3000])
    lm = KneserNey(streams, 20, 3)
    gpt = small_gpt(20)
    held_out = random_streams(7, 20, [161])[0]
    w = fit_interpolation(gpt, lm, held_out, seq_len=16, batch_size=3)
    windows = torch.from_numpy(held_out[:161]).unfold(0, 17, 16)  # 10 windows of 17
    with torch.no_grad():
        p_gpt = torch.softmax(gpt(windows[:, :-1])[0], -1).gather(-1, windows[:, 1:, None])[..., 0]
    p_ngram = lm.target_probs(windows[:, :-1], windows[:, 1:])
    assert w == pytest.approx(interpolation_weight(p_gpt.double().numpy(), p_ngram.numpy()), abs=1e-6)
    assert gpt.training  # left as it was found
    with pytest.raises(ValueError, match="held-out tokens"):
        fit_interpolation(gpt, lm, held_out[:10], seq_len=16)
