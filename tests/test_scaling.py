"""Scaling laws: 6ND, the Chinchilla fit and its closed-form optimum, inference-optimal sizes, sweeps."""

import doctest
import json

import numpy as np
import pytest
import torch

import minilm.studies.scaling_law
import minilm.studies.scaling_sweep
from minilm.models.gpt import GPT, GPTConfig
from minilm.studies.scaling_law import (CHINCHILLA, EPOCH_REFIT, ScalingFit, approach2, bootstrap_fits, compute_optimal, isoflop_minimum, fit_scaling_law, flops_check, inference_optimal, isoflop_curve, measured_flops_per_token, tokens_per_parameter, training_flops)
from minilm.models.train import SourceTokens
from minilm.studies.scaling_sweep import (SweepConfig, SweepData, fit_approach2, fit_approach3, records_arrays, run_prediction,
                                           run_sweep, sweep_config)

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
    (lambda: SweepConfig(levels=()), "empty"),
    (lambda: SweepConfig(levels=((1e9, ()),)), "at least one shape"),
    (lambda: SweepConfig(levels=((1e9, ((1, 30),)),)), "multiple of head_dim"),
    (lambda: SweepConfig(levels=((-5, ((1, 32),)),)), "out of range"),
    (lambda: SweepConfig(levels=((1e9, ((1, 32),)),), seeds=()), "seeds=\\(\\) is empty"),
    (lambda: isoflop_minimum([1, 2], [3, 4]), "3 or more model sizes"),
    (lambda: isoflop_minimum([1, 10, 100], [1, 2, 1]), "no minimum"),
    (lambda: approach2([1e9] * 3, [1, 10, 100], [2, 1, 2]), "2 or more compute levels"),
    (lambda: records_arrays([]), "no sweep records"),
])
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- approach 2 --------------------------------------------------------------------------------


def test_approach2_recovers_the_optima_of_a_known_law():
    """IsoFLOP curves of a known L(N, D), sampled around each optimum: the parabolas' minima and
    the power law through them give the law's N_opt and exponent a = beta / (alpha + beta)."""
    levels = np.array([1e15, 1e16, 1e17])
    compute, n = [], []
    for c in levels:
        n_opt, _ = compute_optimal(c, TRUTH)
        for factor in np.geomspace(1 / 3, 3, 7):
            compute.append(c)
            n.append(n_opt * factor)
    compute, n = np.array(compute), np.array(n)
    fit = approach2(compute, n, TRUTH.loss(n, compute / (6 * n)))
    assert fit["a"] == pytest.approx(TRUTH.a, abs=0.01)
    for c, got in zip(levels, fit["n_opt"]):
        assert got == pytest.approx(compute_optimal(c, TRUTH)[0], rel=0.05)
    assert fit["d_opt"][0] == pytest.approx(levels[0] / (6 * fit["n_opt"][0]))


# -- the sweep ------------------------------------------------------------------------------------

MICRO = SweepConfig(levels=((2e7, ((1, 16), (1, 32))), (4e7, ((1, 16), (1, 32)))), seeds=(0, 1), vocab_size=300,
                    batch_size=4, seq_len=16, eval_tokens=256, min_steps=2, predict_factor=2.0,
                    predict_shapes=((1, 16), (2, 32)))


def micro_data(seed=0, vocab=300):
    rng = np.random.default_rng(seed)
    pattern = rng.integers(0, vocab, 50)  # a repeating pattern: learnable in a few steps
    other = rng.integers(0, vocab, 30)
    val = SourceTokens({"a": np.tile(pattern, 8).astype(np.uint16), "b": np.tile(other, 8).astype(np.uint16)},
                       {"a": 3, "b": 1})
    return SweepData(np.tile(pattern, 40).astype(np.uint16), val, np.ones(vocab, dtype=np.int64))


def test_sweep_records_are_sane_and_the_cache_is_reused(tmp_path):
    data = micro_data()
    first = run_sweep(MICRO, data, tmp_path, progress=False)
    assert first.reused == 0 and len(first.records) == 8
    assert [(r["compute_level"], r["n_embd"], r["seed"]) for r in first.records][:3] == [(2e7, 16, 0), (2e7, 16, 1), (2e7, 32, 0)]
    for r in first.records:
        assert r["steps"] == MICRO.steps(r["params"], r["compute_level"]) and r["tokens"] == r["steps"] * 64
        assert r["flops"] == 6 * r["params"] * r["tokens"] and r["flops"] == pytest.approx(r["compute_level"], rel=0.2)
        assert 0 < r["params_non_embedding"] < r["params"]
        assert set(r["val_sources"]) == {"a", "b"}
        # the mixture as trained: weighted by the sources' shares (3:1)
        assert r["val_loss"] == pytest.approx(0.75 * r["val_sources"]["a"] + 0.25 * r["val_sources"]["b"])
        assert (tmp_path / "checkpoints" / f"{r['name']}.pt").exists()
    loss = {(r["compute_level"], r["n_embd"], r["seed"]): r["val_loss"] for r in first.records}
    assert loss[(4e7, 16, 0)] < loss[(2e7, 16, 0)]  # twice the tokens
    assert loss[(2e7, 16, 0)] != loss[(2e7, 16, 1)]  # seeds differ
    saved = json.loads((tmp_path / "runs.json").read_text())
    assert saved["format"] == "minilm-scaling-runs" and len(saved["records"]) == 8
    assert not list(tmp_path.glob("*.tmp"))

    again = run_sweep(MICRO, data, tmp_path, progress=False)
    assert again.reused == 8 and again.records == first.records


def test_a_saved_checkpoint_is_the_run_it_records(tmp_path):
    from minilm.models.checkpoint import load_model
    from minilm.models.train import evaluate

    data = micro_data()
    config = SweepConfig(**{**MICRO.__dict__, "levels": ((2e7, ((1, 16),)),), "seeds": (0,)})
    record = run_sweep(config, data, tmp_path, progress=False).records[0]
    model = load_model(tmp_path / "checkpoints" / f"{record['name']}.pt")
    assert evaluate(model, data.val, 16, 32, 256, data.byte_lengths)["loss"] == pytest.approx(record["val_loss"], abs=1e-6)


def test_sweep_is_deterministic_survives_a_corrupted_cache_and_restores_threads(tmp_path):
    data = micro_data(seed=1)
    config = SweepConfig(**{**MICRO.__dict__, "levels": ((2e7, ((1, 16),)),), "seeds": (0,)})
    before = torch.get_num_threads()
    first = run_sweep(config, data, tmp_path, progress=False)
    assert torch.get_num_threads() == before
    (tmp_path / "runs.json").write_text("{ half a file")
    second = run_sweep(config, data, tmp_path, progress=False)
    assert second.reused == 0
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in (first.records + second.records)]
    assert strip[0] == strip[1]


def test_two_workers_give_the_same_records_as_one(tmp_path):
    """Runs in worker processes read the data the study saved; results do not depend on workers."""
    import io

    data = micro_data()
    config = SweepConfig(**{**MICRO.__dict__, "levels": ((2e7, ((1, 16), (1, 32))),), "seeds": (0,)})
    one = run_sweep(config, data, tmp_path / "one", progress=False)
    folder = tmp_path / "two"
    folder.mkdir()
    buffer = io.BytesIO()  # the files minilm.studies.scaling_sweep.prepare_data keeps, for the workers
    np.savez(buffer, train=data.train, counts=np.array(json.dumps({"a": 3, "b": 1})),
             **{f"val_{s}": v for s, v in data.val.items()})
    (folder / "tokens.npz").write_bytes(buffer.getvalue())
    from minilm.text.tokenizer import Tokenizer

    text = " ".join(f"{chr(97 + i % 26)}{chr(97 + i * 7 % 26)}{chr(97 + i * 3 % 26)}" for i in range(3000))
    tokenizer = Tokenizer.train(text, vocab_size=300)
    assert tokenizer.vocab_size == 300  # the workers' byte lengths come from it
    tokenizer.save(folder / "tokenizer.json")
    data.byte_lengths = np.ones(300, dtype=np.int64)
    two = run_sweep(SweepConfig(**{**config.__dict__, "workers": 2}), data, folder, progress=False)
    strip = lambda records: [{k: v for k, v in r.items() if k not in ("seconds", "val_bpb")} for r in records]
    assert strip(two.records) == strip(one.records)


def test_sweep_rejects_bad_data_and_too_short_runs():
    data = micro_data()
    with pytest.raises(ValueError, match="vocab_size"):
        run_sweep(SweepConfig(**{**MICRO.__dict__, "vocab_size": 260}), micro_data(vocab=300), progress=False)
    with pytest.raises(ValueError, match="at least"):
        run_sweep(MICRO, SweepData(data.train[:10], data.val, data.byte_lengths), progress=False)
    with pytest.raises(ValueError, match="SweepConfig"):
        run_sweep({"levels": ()}, data, progress=False)
    with pytest.raises(ValueError, match="gets only 1 steps"):
        run_sweep(SweepConfig(**{**MICRO.__dict__, "levels": ((1e5, ((1, 32),)),)}), data, progress=False)


def test_fits_and_the_prediction_are_written_before_the_run(tmp_path):
    data = micro_data()
    result = run_sweep(MICRO, data, tmp_path, progress=False)
    third = fit_approach3(result.records, samples=5)
    assert third["fit"].alpha > 0 and len(third["n_opt"]) == 2
    prediction = run_prediction(result, data, progress=False)
    plan = prediction["plan"]
    assert plan["compute_level"] == 2.0 * 4e7 and tuple(plan["shape"]) in MICRO.predict_shapes
    assert plan["predicted_loss"] == pytest.approx(ScalingFit(**plan["fit"]).loss(plan["params"], plan["tokens"]))
    assert len(prediction["records"]) == 2 and prediction["measured"] == pytest.approx(
        np.mean([r["val_loss"] for r in prediction["records"]]))
    assert prediction["error"] == pytest.approx((prediction["measured"] - plan["predicted_loss"]) / prediction["measured"])
    saved = json.loads((tmp_path / "prediction.json").read_text())
    assert saved["plan"] == plan and len(saved["records"]) == 2
    # a second call reads the plan written down before the run, and trains nothing
    again = run_prediction(result, data, progress=False)
    assert again["plan"] == plan and again["records"] == prediction["records"]


def test_fit_approach2_on_seeds_of_a_known_law_recovers_its_exponent():
    """Records as a sweep writes them (3 levels x 7 sizes x 3 seeds, seed noise of 0.3%): the
    exponent comes back, inside its interval, and every minimum lies inside the sizes trained."""
    rng = np.random.default_rng(0)
    records = []
    for c in (1e15, 1e16, 1e17):
        n_opt, _ = compute_optimal(c, TRUTH)
        for n in n_opt * np.geomspace(1 / 4, 4, 7):
            for seed in range(3):
                loss = float(TRUTH.loss(n, c / (6 * n))) * (1 + 0.003 * rng.standard_normal())
                records.append({"compute_level": c, "params": float(n), "val_loss": loss})
    second = fit_approach2(records, samples=200)
    assert second["a"] == pytest.approx(TRUTH.a, abs=0.03)
    assert second["a_interval"][0] <= TRUTH.a <= second["a_interval"][1]
    assert second["inside"] and second["resamples"] + second["skipped"] == 200


def test_budget_sweeps_are_isoflop_grids_that_grow():
    smoke, laptop, gpu = (sweep_config(name) for name in ("smoke", "laptop", "gpu"))
    for cfg in (laptop, gpu):
        assert len(cfg.levels) >= 3 and len(cfg.seeds) >= 3 and cfg.predict_factor >= 4
        for _, shapes in cfg.levels:
            assert len(shapes) >= 5
    assert max(smoke.compute) < max(laptop.compute) < max(gpu.compute)


def test_laptop_sweep_spans_eight_fold_at_every_level_with_enough_steps():
    from minilm.studies.scaling_sweep import check_grid, shape_params

    cfg = sweep_config("laptop")
    check_grid(cfg)
    for _, shapes in cfg.levels:
        params = [shape_params(shape, cfg)[0] for shape in shapes]
        assert max(params) / min(params) >= 8


@pytest.mark.parametrize("module", [minilm.studies.scaling_law, minilm.studies.scaling_sweep])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
