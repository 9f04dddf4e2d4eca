"""Exercise 05 checked against the package (minilm.studies.scaling_law) and real models' FLOP counts."""

import numpy as np
import pytest

from minilm.models.gpt import GPT, GPTConfig
from minilm.studies import scaling_law as package


@pytest.mark.parametrize("n, d", [(1.0, 1.0), (70e9, 1.4e12), (2_114_880, 8_192_000), (124e6, 3e11)])
def test_training_flops_is_six_n_d(exercise, n, d):
    assert exercise.training_flops(n, d) == pytest.approx(package.training_flops(n, d), rel=1e-12)


SHAPES = [dict(n_layer=1, n_embd=32, n_head=2), dict(n_layer=2, n_embd=64, n_head=4),
          dict(n_layer=4, n_embd=96, n_head=6, n_kv_head=2), dict(n_layer=3, n_embd=48, n_head=3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seq_len", [16, 128, 1024])
def test_flops_per_token_match_the_model_count(exercise, shape, seq_len):
    model = GPT(GPTConfig.modern(vocab_size=300, block_size=1024, **shape))
    n = model.num_params(non_embedding=True)
    attention = exercise.attention_flops_per_token(shape["n_layer"], shape["n_embd"], seq_len)
    assert attention == model.flops_per_token(seq_len) - 6 * n
    assert exercise.flops_per_token(n, shape["n_layer"], shape["n_embd"], seq_len) == model.flops_per_token(seq_len)


def test_attention_grows_with_the_context_and_6n_does_not(exercise):
    short = exercise.flops_per_token(10**6, 4, 256, 128)
    long = exercise.flops_per_token(10**6, 4, 256, 4096)
    assert long - short == exercise.attention_flops_per_token(4, 256, 4096 - 128)


POINTS = [  # (x, y): exact, noisy, and a decreasing law like loss against compute
    ([1, 10, 100], [2, 20, 200]),
    ([1, 2, 4, 8, 16], [3.1, 5.9, 12.4, 23.5, 49.0]),
    ([1e15, 3e15, 1e16, 3e16, 1e17], [4.1, 3.8, 3.5, 3.3, 3.05]),
    ([2e5, 4e5, 8e5, 1.6e6, 3.2e6, 6.4e6], [2.0e5, 2.9e5, 3.8e5, 5.5e5, 7.4e5, 1.05e6]),
]


@pytest.mark.parametrize("x, y", POINTS)
def test_fit_power_law_matches_the_package(exercise, x, y):
    k, a = exercise.fit_power_law(x, y)
    pk, pa = package.fit_power_law(x, y)
    assert a == pytest.approx(pa, abs=1e-9) and k == pytest.approx(pk, rel=1e-9)


def test_fit_power_law_recovers_an_exact_law(exercise):
    x = np.geomspace(1e3, 1e9, 7)
    k, a = exercise.fit_power_law(x, 0.3 * x**-0.076)
    assert (k, a) == (pytest.approx(0.3, rel=1e-9), pytest.approx(-0.076, abs=1e-12))


@pytest.mark.parametrize("x, y", [([1, 1, 1], [1, 2, 3]), ([1, 2, 0], [1, 2, 3]), ([1, 2, 3], [1, -2, 3])])
def test_fit_power_law_refuses_what_has_no_law(exercise, x, y):
    with pytest.raises(ValueError):
        exercise.fit_power_law(x, y)


@pytest.mark.parametrize("x, y", POINTS[1:])
@pytest.mark.parametrize("seed", [0, 7])
def test_exponent_interval_is_the_package_interval(exercise, x, y, seed):
    got = exercise.exponent_interval(x, y, samples=300, level=0.9, seed=seed)
    assert got == pytest.approx(package.power_law_interval(x, y, samples=300, level=0.9, seed=seed), abs=1e-9)


def test_the_interval_holds_the_fit_and_narrows_with_less_noise(exercise):
    rng = np.random.default_rng(0)
    x = np.geomspace(1, 1e4, 12)
    noisy = 2 * x**0.5 * np.exp(rng.normal(0, 0.3, x.size))
    quiet = 2 * x**0.5 * np.exp(rng.normal(0, 0.03, x.size))
    low, high = exercise.exponent_interval(x, noisy, samples=400)
    q_low, q_high = exercise.exponent_interval(x, quiet, samples=400)
    assert low < exercise.fit_power_law(x, noisy)[1] < high
    assert q_high - q_low < (high - low) / 3 and exercise.fit_power_law(x, quiet)[1] == pytest.approx(0.5, abs=0.02)
