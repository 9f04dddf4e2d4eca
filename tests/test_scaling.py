"""Scaling laws: 6ND, the Chinchilla fit and its closed-form optimum, inference-optimal sizes, sweeps."""

import doctest
import json
import math

import numpy as np
import pytest
import torch

import minilm.studies.scaling_law
import minilm.studies.scaling_sweep
from minilm.models.gpt import GPT, GPTConfig
from minilm.studies.scaling_law import (CHINCHILLA, EPOCH_REFIT, ScalingFit, bootstrap_fits, compute_optimal, fit_scaling_law, flops_check, inference_optimal, isoflop_curve, measured_flops_per_token, tokens_per_parameter, training_flops)
from minilm.studies.scaling_sweep import SweepConfig, records_arrays, run_sweep, sweep_config

TRUTH = ScalingFit(E=1.9, A=300.0, B=900.0, alpha=0.35, beta=0.4)


def synthetic(points=48, noise=0.0, seed=0, law=TRUTH):
    """Runs spread over 3 decades of N and D, losses from a known law (times lognormal noise)."""
    rng = np.random.default_rng(seed)
    n, d = 10 ** rng.uniform(5, 8, points), 10 ** rng.uniform(7, 10, points)
    return n, d, law.loss(n, d) * np.exp(noise * rng.standard_normal(points))


# -- compute ------------------------------------------------------------------------------------


def test_training_flops_is_six_n_d():
    assert training_flops(70e9, 1.4e12) == pytest.approx(5.88e23)
    assert training_flops([1.0, 2.0], 3.0).tolist() == [18.0, 36.0]


def small_model(vocab=256, layers=2, width=64, block=128):
    torch.manual_seed(0)
    return GPT(GPTConfig.modern(vocab_size=vocab, n_layer=layers, n_embd=width, n_head=width // 16, block_size=block))


def test_six_n_is_close_to_the_model_count_at_short_context():
    model = small_model()
    n = model.num_params(non_embedding=True)
    for seq_len in (4, 8, 16):
        # attention adds 12 * layers * d_model * T per token; 6N is ~72 * layers * d_model^2, so the
        # gap is about T / (6 d_model): under 5% for T <= 16 at d_model = 64
        gap = 1 - 6 * n / model.flops_per_token(seq_len)
        assert 0 < gap <= seq_len / (6 * 64) and gap < 0.05
    check = flops_check(model, 8)
    assert check["six_n"] == 6 * n and abs(check["six_n_error"]) < 0.03
    assert 0 < check["attention_share"] < 0.03


def test_measured_flops_equal_the_model_count_plus_the_output_layer():
    model = small_model()
    for seq_len in (16, 128):
        check = flops_check(model, seq_len)
        # every matrix product is counted; the norms' gains, in N but not multiplied, are not
        norms = model.param_counts_by_component()["norms"]
        assert check["measured"] == pytest.approx(check["model"] + 6 * 256 * 64 - 6 * norms, rel=1e-12)
        assert abs(check["measured_error"]) < 0.01
    # attention's share of the model's count grows with the context
    shares = [flops_check(model, t)["attention_share"] for t in (8, 32, 128)]
    assert shares == sorted(shares) and shares[-1] > 0.1
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="block_size"):
        measured_flops_per_token(model, 129)


# -- the fit --------------------------------------------------------------------------------------


def test_fit_recovers_a_known_law_exactly_without_noise():
    result = fit_scaling_law(*synthetic())
    for name in ("E", "A", "B", "alpha", "beta"):
        assert getattr(result.fit, name) == pytest.approx(getattr(TRUTH, name), rel=1e-4), name
    assert result.rms_log_error < 1e-6 and result.starts >= 5


def test_fit_recovers_a_known_law_with_small_noise():
    n, d, loss = synthetic(points=80, noise=0.003, seed=1)
    fit = fit_scaling_law(n, d, loss).fit
    assert fit.alpha == pytest.approx(TRUTH.alpha, abs=0.03)
    assert fit.beta == pytest.approx(TRUTH.beta, abs=0.03)
    assert fit.E == pytest.approx(TRUTH.E, abs=0.05)
    # what matters downstream: predictions and the optimal allocation
    assert np.max(np.abs(fit.loss(n, d) / TRUTH.loss(n, d) - 1)) < 0.01
    assert tokens_per_parameter(1e20, fit) == pytest.approx(tokens_per_parameter(1e20, TRUTH), rel=0.5)


def test_fit_recovers_the_published_chinchilla_constants():
    n, d, loss = synthetic(law=CHINCHILLA, seed=2)
    fit = fit_scaling_law(n, d, loss).fit
    assert (fit.alpha, fit.beta) == pytest.approx((0.34, 0.28), abs=1e-4)


def test_fit_of_a_pure_power_law_may_put_e_at_zero():
    law = ScalingFit(E=0.0, A=300.0, B=900.0, alpha=0.35, beta=0.4)
    fit = fit_scaling_law(*synthetic(law=law)).fit
    assert fit.E < 1e-3 and (fit.alpha, fit.beta) == pytest.approx((0.35, 0.4), abs=1e-3)
    assert compute_optimal(1e20, fit)[0] == pytest.approx(compute_optimal(1e20, law)[0], rel=1e-2)


def test_fit_is_deterministic_and_bootstrap_gives_a_spread():
    n, d, loss = synthetic(points=20, noise=0.01, seed=3)
    assert fit_scaling_law(n, d, loss) == fit_scaling_law(n, d, loss)
    fits = bootstrap_fits(n, d, loss, samples=5, seed=0, grid_starts=4)
    assert len(fits) == 5
    alphas = [f.alpha for f in fits]
    assert np.std(alphas) > 0
    assert bootstrap_fits(n, d, loss, samples=5, seed=0, grid_starts=4) == fits


def test_bootstrap_skips_resamples_with_a_single_model_size():
    n, d, loss = synthetic(points=8)
    assert bootstrap_fits(np.full(8, 1e6), d, loss, samples=5) == []


# -- the optimum ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit", [CHINCHILLA, EPOCH_REFIT, TRUTH])
def test_compute_optimal_matches_the_closed_form_and_spends_the_budget(fit):
    budgets = np.array([1e18, 1e21, 1e24])
    n_opt, d_opt = compute_optimal(budgets, fit)
    g = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1 / (fit.alpha + fit.beta))
    a, b = fit.beta / (fit.alpha + fit.beta), fit.alpha / (fit.alpha + fit.beta)
    np.testing.assert_allclose(n_opt, g * (budgets / 6) ** a, rtol=1e-12)
    np.testing.assert_allclose(d_opt, (budgets / 6) ** b / g, rtol=1e-12)
    np.testing.assert_allclose(6 * n_opt * d_opt, budgets, rtol=1e-12)
    # and it is the minimum of the isoFLOP curve, found by brute force
    for c, n_best in zip(budgets, n_opt):
        sizes = n_best * np.geomspace(0.5, 2.0, 2001)
        _, losses = isoflop_curve(float(c), fit, sizes)
        assert sizes[np.argmin(losses)] == pytest.approx(n_best, rel=2e-3)


def test_published_fits_give_tens_of_tokens_per_parameter():
    budgets = [1e21, 1e22, 1e23, 1e24]
    hoffmann = [tokens_per_parameter(c, CHINCHILLA) for c in budgets]
    epoch = [tokens_per_parameter(c, EPOCH_REFIT) for c in budgets]
    # Hoffmann et al.'s printed approach-3 constants: about 50 at 1e21 FLOPs rising to about 98 at 1e24
    # (alpha > beta); the refit of Besiroglu et al. 2024: about 20 throughout, the headline rule
    assert 45 < hoffmann[0] < hoffmann[-1] < 110 and hoffmann == sorted(hoffmann)
    assert all(15 < x < 25 for x in epoch)
    # Chinchilla itself: 70B parameters on 1.4T tokens = 20 tokens per parameter
    assert 1.4e12 / 70e9 == pytest.approx(20)


def test_inference_optimal_is_smaller_and_trained_longer():
    loss = EPOCH_REFIT.loss(8e9, 15e12)
    plain = inference_optimal(EPOCH_REFIT, loss, 0.0)
    n_opt, d_opt = compute_optimal(plain["train_flops"], EPOCH_REFIT)
    assert plain["n_params"] == pytest.approx(n_opt, rel=1e-6)
    assert plain["train_tokens"] == pytest.approx(d_opt, rel=1e-6)
    previous = plain
    for served in (1e11, 1e13, 1e15):
        best = inference_optimal(EPOCH_REFIT, loss, served)
        assert EPOCH_REFIT.loss(best["n_params"], best["train_tokens"]) == pytest.approx(loss, rel=1e-9)
        assert best["n_params"] < previous["n_params"] and best["tokens_per_param"] > previous["tokens_per_param"]
        assert best["total_flops"] == pytest.approx(best["train_flops"] + 2 * best["n_params"] * served)
        # no other size reaching the same loss costs less
        for factor in (0.9, 1.1):
            n = best["n_params"] * factor
            d = (EPOCH_REFIT.B / (loss - EPOCH_REFIT.E - EPOCH_REFIT.A / n**EPOCH_REFIT.alpha)) ** (1 / EPOCH_REFIT.beta)
            assert 6 * n * d + 2 * n * served > best["total_flops"]
        previous = best


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda: fit_scaling_law([], [], []), "empty"),
    (lambda: fit_scaling_law([1e5] * 6, [1e7] * 5, [3.0] * 6), "same length"),
    (lambda: fit_scaling_law([1e5, -1, 1e6, 1e7, 1e8], [1e7] * 5, [3.0] * 5), "positive"),
    (lambda: fit_scaling_law([1e5] * 4, [1e7] * 4, [3.0] * 4), "at least 5"),
    (lambda: fit_scaling_law([1e5] * 5, [1e7] * 5, [3.0, 3.0, float("nan"), 3.0, 3.0]), "finite"),
    (lambda: fit_scaling_law([1e6] * 5, [1e8] * 5, [3.0] * 5), "2 or more different n_params"),
    (lambda: fit_scaling_law([1e6] * 5, [1e7, 1e8, 1e9, 1e10, 1e11], [3.0] * 5), "got 1 and 5"),
    (lambda: fit_scaling_law(*synthetic(8), grid_starts=-1), "grid_starts=-1"),
    (lambda: fit_scaling_law(*synthetic(8), grid_starts=0), "grid_starts=0"),
    (lambda: fit_scaling_law(*synthetic(8), max_iter=0), "max_iter=0"),
    (lambda: fit_scaling_law(*synthetic(8), max_exponent=0), "max_exponent=0"),
    (lambda: fit_scaling_law(*synthetic(8), max_exponent=-1), "max_exponent=-1"),
    (lambda: fit_scaling_law(*synthetic(8), max_exponent=float("inf")), "max_exponent=inf"),
    (lambda: training_flops(-1, 10), "positive"),
    (lambda: training_flops([], 10), "empty"),
    (lambda: compute_optimal(0, CHINCHILLA), "positive"),
    (lambda: compute_optimal("lots", CHINCHILLA), "numbers"),
    (lambda: isoflop_curve([1e20, 1e21], CHINCHILLA, [1e9]), "one number"),
    (lambda: ScalingFit(E=1.0, A=-1.0, B=1.0, alpha=0.3, beta=0.3), ">= 0"),
    (lambda: ScalingFit(E=1.0, A=1.0, B=1.0, alpha=0.0, beta=0.3), "positive"),
    (lambda: inference_optimal(CHINCHILLA, 1.5, 1e12), "above"),
    (lambda: inference_optimal(CHINCHILLA, 2.5, -1), ">= 0"),
    (lambda: SweepConfig(shapes=(), tokens=(1000,)), "empty"),
    (lambda: SweepConfig(shapes=((1, 32),), tokens=()), "empty"),
    (lambda: SweepConfig(shapes=((1, 30),), tokens=(1000,)), "multiple of head_dim"),
    (lambda: SweepConfig(shapes=((1, 32),), tokens=(-5,)), "out of range"),
    (lambda: records_arrays([]), "no sweep records"),
])
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- the sweep ------------------------------------------------------------------------------------

MICRO = SweepConfig(shapes=((1, 16), (1, 32)), tokens=(512, 1024), batch_size=4, seq_len=16, eval_tokens=256)


def micro_data(vocab=64, seed=0):
    rng = np.random.default_rng(seed)
    pattern = rng.integers(0, vocab, 50)  # a repeating pattern: learnable in a few steps
    train = np.tile(pattern, 40).astype(np.uint16)
    val = np.tile(pattern, 8).astype(np.uint16)
    return train, val


def test_sweep_records_are_sane_and_the_cache_is_reused(tmp_path):
    train, val = micro_data()
    first = run_sweep(MICRO, train, val, vocab_size=64, byte_lengths=np.ones(64, dtype=np.int64),
                      cache_dir=tmp_path, progress=False)
    assert first.reused == 0 and len(first.records) == 4
    assert [(r["n_embd"], r["tokens"]) for r in first.records] == [(16, 512), (16, 1024), (32, 512), (32, 1024)]
    for r in first.records:
        assert r["steps"] * 64 == r["tokens"] and r["flops"] == 6 * r["params"] * r["tokens"]
        assert 0 < r["params"] < r["params_total"]
        assert r["flops_model"] > r["flops"]
        assert 0 < r["val_loss"] < math.log(64) + 0.5 and r["val_bpb"] == pytest.approx(r["val_loss"] / math.log(2))
    by_key = {(r["n_embd"], r["tokens"]): r["val_loss"] for r in first.records}
    assert by_key[(16, 1024)] < by_key[(16, 512)] and by_key[(32, 1024)] < by_key[(32, 512)]
    assert first.records[2]["params"] > first.records[0]["params"]
    saved = json.loads(first.path.read_text())
    assert saved["format"] == "minilm-scaling-sweep" and len(saved["records"]) == 4
    assert not list(tmp_path.glob("*.tmp"))

    again = run_sweep(MICRO, train, val, vocab_size=64, byte_lengths=np.ones(64, dtype=np.int64),
                      cache_dir=tmp_path, progress=False)
    assert again.reused == 4 and again.records == first.records and again.path == first.path

    # another config or other data is another key: nothing reused
    other = run_sweep(SweepConfig(**{**MICRO.__dict__, "tokens": (512,)}), train, val, vocab_size=64,
                      cache_dir=tmp_path, progress=False)
    assert other.reused == 0 and other.path != first.path


def test_sweep_is_deterministic_and_survives_a_corrupted_cache(tmp_path):
    train, val = micro_data(seed=1)
    config = SweepConfig(**{**MICRO.__dict__, "shapes": ((1, 16),), "tokens": (256,)})
    first = run_sweep(config, train, val, vocab_size=64, cache_dir=tmp_path, progress=False)
    first.path.write_text("{ half a file")
    second = run_sweep(config, train, val, vocab_size=64, cache_dir=tmp_path, progress=False)
    assert second.reused == 0
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in (first.records + second.records)]
    assert strip[0] == strip[1]
    assert json.loads(second.path.read_text())["records"][0]["val_loss"] == first.records[0]["val_loss"]


def test_sweep_rejects_bad_data():
    train, val = micro_data()
    with pytest.raises(ValueError, match="vocab_size"):
        run_sweep(MICRO, train, val, vocab_size=10, progress=False)
    with pytest.raises(ValueError, match="at least"):
        run_sweep(MICRO, train[:10], val, vocab_size=64, progress=False)
    with pytest.raises(ValueError, match="SweepConfig"):
        run_sweep({"shapes": ((1, 16),)}, train, val, vocab_size=64, progress=False)


def test_budget_sweeps_grow_and_fit_five_constants():
    smoke, laptop, gpu = (sweep_config(name) for name in ("smoke", "laptop", "gpu"))
    for cfg in (smoke, laptop, gpu):
        assert len(cfg.shapes) * len(cfg.tokens) >= 5  # enough runs for 5 constants
    assert max(smoke.tokens) < max(laptop.tokens) < max(gpu.tokens)


@pytest.mark.parametrize("module", [minilm.studies.scaling_law, minilm.studies.scaling_sweep])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_sweep_restores_the_thread_setting():
    train, val = micro_data()
    before = torch.get_num_threads()
    config = SweepConfig(**{**MICRO.__dict__, "shapes": ((1, 16),), "tokens": (128,)})
    run_sweep(config, train, val, vocab_size=64, progress=False, threads=1)
    assert torch.get_num_threads() == before
