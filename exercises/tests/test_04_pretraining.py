"""Exercise 04 checked against PyTorch (F.cross_entropy, torch.optim.AdamW) and the package (minilm.models.train).

Losses and the optimizer are compared in float64, where a correct function agrees with PyTorch to
about 1e-12; float32 appears where the point is overflow (logits of 1e4) or where the package works
in float32 (``evaluate``).
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minilm.models import gpt as package_model
from minilm.models import train as package

F64 = torch.float64


def randn(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def randint(high, *shape, seed=0):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


def close(got, expected, atol=1e-12, rtol=0.0):
    assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
    assert got.shape == expected.shape, f"shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    torch.testing.assert_close(got, expected, atol=atol, rtol=rtol)


@pytest.fixture
def no_library_losses(monkeypatch):
    """Make the functions that would do the exercise's work raise, while the exercise runs."""
    def forbidden(*args, **kwargs):
        raise AssertionError("write the loss with max, exp, log and sum: not F.cross_entropy, "
                             "F.nll_loss, log_softmax or logsumexp")

    for module, name in [(F, "cross_entropy"), (F, "nll_loss"), (F, "log_softmax"), (torch, "log_softmax"),
                         (torch, "logsumexp"), (torch.special, "log_softmax"), (torch.special, "logsumexp"),
                         (torch.Tensor, "log_softmax"), (torch.Tensor, "logsumexp")]:
        monkeypatch.setattr(module, name, forbidden)


# -- log-softmax and cross-entropy ----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 4, 50), (1, 1)], ids=str)
def test_log_softmax_matches_pytorch(exercise, shape):
    logits = 3 * randn(*shape)
    close(exercise.log_softmax(logits), torch.log_softmax(logits, dim=-1))


@pytest.mark.parametrize("scale", [1e4, -1e4, 1e30])
def test_log_softmax_does_not_overflow(exercise, scale):
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]]) * scale
    got = exercise.log_softmax(logits)
    assert torch.isfinite(got).all(), f"log_softmax of logits near {scale:g} gave {got}: subtract the row maximum first"
    close(got, torch.log_softmax(logits, dim=-1), atol=1e-6)


def test_log_softmax_is_written_from_scratch(exercise, no_library_losses):
    exercise.log_softmax(randn(3, 5))


@pytest.mark.parametrize("shape", [(2, 5, 11), (1, 1, 2), (4, 3, 300), (7, 13)], ids=str)
@pytest.mark.parametrize("ignored", [0.0, 0.3])
def test_cross_entropy_matches_pytorch(exercise, shape, ignored):
    logits, targets = 2 * randn(*shape), randint(shape[-1], *shape[:-1], seed=1)
    drop = torch.rand(targets.shape, generator=torch.Generator().manual_seed(2)) < ignored
    targets[drop] = -100
    targets.view(-1)[0] = 0  # keep at least one position
    expected = F.cross_entropy(logits.reshape(-1, shape[-1]), targets.reshape(-1))
    got = exercise.cross_entropy(logits, targets)
    assert isinstance(got, torch.Tensor) and got.dim() == 0, "return a 0-dim tensor (a scalar loss), not a float"
    close(got, expected)


def test_cross_entropy_gradient_matches_pytorch(exercise):
    logits, targets = randn(6, 9).requires_grad_(), randint(9, 6, seed=1)
    targets[2] = -100
    expected = torch.autograd.grad(F.cross_entropy(logits, targets), logits)[0]
    loss = exercise.cross_entropy(logits, targets)
    assert loss.requires_grad, "the loss lost its gradient: no .item(), no torch.tensor(...) around the result"
    close(torch.autograd.grad(loss, logits)[0], expected)  # softmax - one_hot, / kept positions; 0 on row 2


def test_cross_entropy_with_huge_logits(exercise):
    logits = 1e4 * randn(4, 6, 20, dtype=torch.float32)
    targets = randint(20, 4, 6, seed=1)
    got = exercise.cross_entropy(logits, targets)
    assert torch.isfinite(got), f"cross_entropy of logits near 1e4 gave {got.item()}: the log-softmax overflows"
    expected = F.cross_entropy(logits.reshape(-1, 20), targets.reshape(-1))
    close(got, expected, rtol=1e-5, atol=1e-3)


def test_cross_entropy_when_every_target_is_ignored_is_nan(exercise):
    logits = randn(2, 3, 5)
    targets = torch.full((2, 3), -100)
    assert torch.isnan(F.cross_entropy(logits.reshape(-1, 5), targets.reshape(-1)))  # PyTorch's answer
    got = exercise.cross_entropy(logits, targets)
    assert isinstance(got, torch.Tensor) and torch.isnan(got), f"a mean over no positions is nan, got {got}"


def test_cross_entropy_with_the_package_ignore_index(exercise):
    # minilm.models.gpt.GPT marks positions without a target by -1 (see GPT.forward).
    torch.manual_seed(0)
    gpt = package_model.GPT(package_model.GPTConfig.modern(vocab_size=40, n_layer=1, n_embd=16, n_head=2, block_size=8))
    idx, targets = randint(40, 2, 8, seed=1), randint(40, 2, 8, seed=2)
    targets[:, :3] = -1  # a prompt that is not trained on
    with torch.no_grad():
        logits, loss = gpt(idx, targets)
    got = exercise.cross_entropy(logits, targets, ignore_index=-1)
    close(got, loss, atol=1e-6, rtol=1e-6)


def test_cross_entropy_is_written_from_scratch(exercise, no_library_losses):
    exercise.cross_entropy(randn(3, 5), torch.tensor([0, 4, -100]))


# -- perplexity and bits per byte -----------------------------------------------------------------


@pytest.mark.parametrize("vocab", [2, 50, 4096])
def test_uniform_guessing_has_perplexity_vocab(exercise, vocab):
    loss = exercise.cross_entropy(torch.zeros(3, vocab, dtype=F64), torch.tensor([0, 1, vocab - 1]))
    assert exercise.perplexity(loss.item()) == pytest.approx(vocab, rel=1e-12)


@pytest.mark.parametrize("loss", [0.0, 0.5, 3.2, 10.0])
def test_perplexity_is_exp_of_the_loss(exercise, loss):
    got = exercise.perplexity(loss)
    assert isinstance(got, float), f"return a Python float, got {type(got).__name__}"
    assert got == pytest.approx(math.exp(loss), rel=1e-12)


def test_bits_per_byte_by_hand(exercise):
    # Uniform over 16 tokens of 2 bytes each: 4 bits per token, 2 bits per byte.
    got = exercise.bits_per_byte(torch.zeros(5, 16, dtype=F64), randint(16, 5), torch.full((16,), 2))
    assert isinstance(got, float), f"return a Python float, got {type(got).__name__}"
    assert got == pytest.approx(2.0, rel=1e-12)


def test_bits_per_byte_weighs_tokens_by_their_bytes(exercise):
    logits, targets = randn(2, 6, 10), randint(10, 2, 6, seed=1)
    token_bytes = torch.tensor([0, 1, 1, 2, 3, 4, 1, 2, 5, 0])  # ids 0 and 9 are special tokens: 0 bytes
    nats = F.cross_entropy(logits.reshape(-1, 10), targets.reshape(-1), reduction="sum").item()
    expected = nats / math.log(2) / token_bytes[targets].sum().item()
    assert exercise.bits_per_byte(logits, targets, token_bytes) == pytest.approx(expected, rel=1e-12)


def test_bits_per_byte_without_bytes_is_an_error(exercise):
    with pytest.raises(ValueError):
        exercise.bits_per_byte(torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(3, dtype=torch.long))


def test_loss_perplexity_and_bpb_match_evaluate(exercise):
    """minilm.models.train.evaluate on a small random model, recomputed with your functions."""
    torch.manual_seed(0)
    vocab, seq_len, windows = 64, 8, 4
    gpt = package_model.GPT(package_model.GPTConfig.modern(vocab_size=vocab, n_layer=1, n_embd=16, n_head=2,
                                                           block_size=seq_len))
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, vocab, size=seq_len * windows + 1)
    byte_lengths = rng.integers(0, 5, size=vocab)
    expected = package.evaluate(gpt, tokens, seq_len, batch_size=windows, max_tokens=seq_len * windows,
                                byte_lengths=byte_lengths)
    # evaluate reads consecutive windows: inputs tokens[w*T : w*T+T], targets shifted by one.
    window = torch.from_numpy(np.stack([tokens[w * seq_len : w * seq_len + seq_len + 1] for w in range(windows)]))
    with torch.no_grad():
        logits, _ = gpt(window[:, :-1])
    targets = window[:, 1:]
    loss = exercise.cross_entropy(logits, targets).item()
    assert loss == pytest.approx(expected["loss"], rel=1e-5)
    assert exercise.perplexity(loss) == pytest.approx(expected["perplexity"], rel=1e-5)
    assert exercise.bits_per_byte(logits, targets, torch.from_numpy(byte_lengths)) == pytest.approx(expected["bpb"], rel=1e-5)


# -- learning-rate schedule -----------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["cosine", "wsd", "constant"])
@pytest.mark.parametrize("total_steps", [1, 10, 97, 250])
def test_lr_schedule_matches_the_package(exercise, schedule, total_steps):
    for warmup_steps in sorted({0, 1, 10, total_steps // 4, total_steps, total_steps + 3}):
        for min_lr_ratio in (0.0, 0.1, 1.0):
            for decay_fraction in (0.0, 0.2, 0.5, 1.0):
                args = (total_steps, warmup_steps, 3e-3, schedule, min_lr_ratio, decay_fraction)
                for step in range(total_steps + 5):  # a few steps past the end, too
                    expected = package.lr_at(step, *args)
                    got = exercise.lr_at(step, *args)
                    assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-18), (
                        f"lr_at(step={step}, total_steps={total_steps}, warmup_steps={warmup_steps}, lr=3e-3, "
                        f"schedule={schedule!r}, min_lr_ratio={min_lr_ratio}, decay_fraction={decay_fraction}) "
                        f"= {got}, the package gives {expected}")


def test_lr_schedule_landmarks(exercise):
    lr = 1e-3
    assert exercise.lr_at(0, 100, 0, lr) == pytest.approx(lr), "without warmup, step 0 starts at the peak"
    assert exercise.lr_at(0, 100, 10, lr) == pytest.approx(lr / 10), "warmup step 0 is lr / warmup_steps, not 0"
    assert exercise.lr_at(9, 100, 10, lr) == pytest.approx(lr), "the last warmup step reaches lr"
    assert exercise.lr_at(55, 100, 10, lr) == pytest.approx(0.55 * lr), "cosine is half way down half way through"
    for step in (100, 101, 10_000):
        assert exercise.lr_at(step, 100, 10, lr) == pytest.approx(0.1 * lr), "after total_steps the rate stays at the floor"
    assert exercise.lr_at(79, 100, 10, lr, "wsd") == pytest.approx(lr), "WSD is stable until the last 20% of steps"
    assert exercise.lr_at(99, 100, 10, lr, "wsd") == pytest.approx(0.1 * lr), "WSD reaches the floor at the last step"


# -- AdamW ----------------------------------------------------------------------------------------


def _params_and_grads(steps):
    shapes = [(3, 4), (5,), (1,), (2, 2)]
    params = [randn(*shape, seed=i) for i, shape in enumerate(shapes)]
    grads = []
    for step in range(steps):
        g = [randn(*shape, seed=100 * step + i) for i, shape in enumerate(shapes)]
        g[1] = 1e-9 * g[1]  # gradients far below eps: where eps goes in the formula matters
        g[2] = torch.zeros_like(g[2])  # no gradient at all: only the weight decay moves it
        grads.append(g)
    return params, grads


@pytest.mark.parametrize("betas, weight_decay, eps", [((0.9, 0.999), 0.01, 1e-8), ((0.9, 0.95), 0.1, 1e-8),
                                                      ((0.8, 0.9), 0.0, 1e-6)])
def test_adamw_matches_pytorch_over_several_steps(exercise, betas, weight_decay, eps):
    steps = 6
    params, grads = _params_and_grads(steps)
    reference = [torch.nn.Parameter(p.clone()) for p in params]
    optimizer = torch.optim.AdamW(reference, lr=1.0, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
    ours = [p.clone() for p in params]
    originals = list(ours)
    state = {}
    for step in range(steps):
        lr = package.lr_at(step, steps, 2, 1e-2)  # the rate changes every step, as in training
        for group in optimizer.param_groups:
            group["lr"] = lr
        for p, g in zip(reference, grads[step]):
            p.grad = g.clone()
        optimizer.step()
        exercise.adamw_step(ours, [g.clone() for g in grads[step]], state, lr, betas=betas, eps=eps,
                            weight_decay=weight_decay)
        assert state.get("step") == step + 1, f"state['step'] should be {step + 1} after {step + 1} calls"
        for i, (got, expected) in enumerate(zip(originals, reference)):
            assert torch.allclose(got, expected.detach(), rtol=0, atol=1e-12), (
                f"parameter {i} after step {step + 1}: largest difference {(got - expected).abs().max().item():.3g} "
                f"(update the tensors in place; parameter 1 has tiny gradients, parameter 2 none)")


def test_adamw_updates_parameters_that_require_grad(exercise):
    weight = torch.nn.Parameter(torch.ones(3, dtype=F64))
    state = {}
    exercise.adamw_step([weight], [torch.tensor([1.0, -1.0, 0.0], dtype=F64)], state, lr=0.1, weight_decay=0.5)
    # Decay first (1 - 0.1 * 0.5 = 0.95), then a step of lr against the sign of the gradient.
    expected = torch.tensor([0.95 - 0.1, 0.95 + 0.1, 0.95], dtype=F64)
    assert torch.allclose(weight.detach(), expected, atol=1e-7), weight
    assert len(state["m"]) == len(state["v"]) == 1 and state["m"][0].shape == (3,)


def test_adamw_is_written_from_scratch(exercise, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("write the AdamW update with tensor operations, not torch.optim")

    for name in ("AdamW", "Adam"):
        monkeypatch.setattr(torch.optim, name, forbidden)
    exercise.adamw_step([torch.ones(2)], [torch.ones(2)], {}, lr=0.1)
