"""The training loop: schedules, batches, bits per byte, exact resume, checkpoint errors."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from minilm.core.checks import ConfigError
from minilm.models.gpt import GPT, GPTConfig
from minilm.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minilm.models.train import TrainConfig, evaluate, get_batch, lr_at, train

torch.set_num_threads(2)
CONFIG = GPTConfig.modern(vocab_size=64, block_size=32, n_layer=2, n_embd=32, n_head=2)
# A learnable stream: a repeating pattern with a little noise.
rng = np.random.default_rng(0)
TOKENS = np.tile(np.arange(16, dtype=np.uint16), 400)
TOKENS[rng.integers(0, len(TOKENS), 200)] = rng.integers(16, 64, 200)


def model(seed=0):
    torch.manual_seed(seed)
    return GPT(CONFIG)


def test_warmup_then_cosine_to_the_floor():
    lrs = [lr_at(s, 100, 10, 1.0, "cosine", 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_wsd_is_flat_then_decays():
    lrs = [lr_at(s, 100, 10, 1.0, "wsd", 0.0, decay_fraction=0.2) for s in range(100)]
    assert all(lr == 1.0 for lr in lrs[10:80])
    assert lrs[-1] == pytest.approx(0.0) and all(a > b for a, b in zip(lrs[80:], lrs[81:]))


def test_batches_are_deterministic_and_shifted():
    x, y = get_batch(TOKENS, 4, 8, seed=1, step=3)
    x2, y2 = get_batch(TOKENS, 4, 8, seed=1, step=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert torch.equal(x[:, 1:], y[:, :-1])
    other, _ = get_batch(TOKENS, 4, 8, seed=1, step=4)
    assert not torch.equal(x, other)
    with pytest.raises(ValueError, match="too few"):
        get_batch(TOKENS[:5], 1, 8, 0, 0)


def test_bits_per_byte_is_loss_in_bits_over_bytes():
    m = model().eval()
    byte_lengths = np.full(64, 2)  # every token is 2 bytes
    metrics = evaluate(m, TOKENS, seq_len=16, batch_size=4, max_tokens=256, byte_lengths=byte_lengths)
    assert metrics["bpb"] == pytest.approx(metrics["loss"] / math.log(2) / 2)
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    with pytest.raises(ValueError, match="seq_len \\+ 1 = 17 tokens"):
        evaluate(m, TOKENS[:10], seq_len=16, batch_size=4, max_tokens=256)


def test_training_learns_the_pattern():
    m = model()
    cfg = TrainConfig(steps=60, batch_size=8, seq_len=16, lr=1e-2, warmup_steps=5, eval_every=60, eval_tokens=512)
    result = train(m, TOKENS, cfg, val_tokens=TOKENS, progress=False)
    first, last = result.history[0], result.history[-1]
    assert last["loss"] < first["loss"] * 0.5
    assert last["val_loss"] < math.log(64) / 2 and result.tokens == 60 * 8 * 16


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_resume_is_exact(tmp_path, optimizer):
    cfg = TrainConfig(steps=20, batch_size=4, seq_len=16, grad_accum=2, lr=5e-3, warmup_steps=3, eval_every=0,
                      checkpoint_every=0, optimizer=optimizer)
    straight = train(model(), TOKENS, cfg, progress=False, log_every=1)
    path = tmp_path / "ckpt.pt"
    first = train(model(), TOKENS, cfg, checkpoint=path, progress=False, log_every=1, stop_at=10)
    assert len(first.history) == 10 and path.exists()
    first_saved = load_checkpoint(path)["seconds"]
    resumed_model = model(seed=123)  # different init: everything must come from the checkpoint
    second = train(resumed_model, TOKENS, cfg, checkpoint=path, resume=True, progress=False, log_every=1)
    assert [r["loss"] for r in second.history] == [r["loss"] for r in straight.history]
    # The result is the whole run's: the first call's tokens and time count (read from the checkpoint).
    assert first.tokens == straight.tokens // 2 and second.tokens == straight.tokens
    assert 0 < first_saved <= first.seconds < load_checkpoint(path)["seconds"] <= second.seconds
    # Resumed at its last step, a run trains nothing and still reports the whole run.
    again = train(model(), TOKENS, cfg, checkpoint=path, resume=True, progress=False, log_every=1)
    assert again.tokens == straight.tokens and again.seconds >= load_checkpoint(path)["seconds"] > 0


def test_checkpoint_errors(tmp_path):
    m = model()
    path = save_checkpoint(tmp_path / "c.pt", m, None, 5, {}, [])
    assert load_checkpoint(path, model())["step"] == 5
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        load_checkpoint(tmp_path / "missing.pt")
    other = GPT(CONFIG.with_overrides(n_layer=3))
    with pytest.raises(CheckpointError, match="n_layer=2 in the file, 3 here"):
        load_checkpoint(path, other)
    # A file written before a GPTConfig field existed loads when the model uses that field's default.
    state = torch.load(path, weights_only=True)
    del state["model_config"]["gelu_approximate"]
    older = tmp_path / "older.pt"
    torch.save(state, older)
    assert load_checkpoint(older, model())["step"] == 5
    with pytest.raises(CheckpointError, match="gelu_approximate='tanh' in the file, 'none' here"):
        load_checkpoint(older, GPT(CONFIG.with_overrides(gelu_approximate="none")))
    truncated = tmp_path / "t.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(truncated)
    foreign = tmp_path / "f.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a minilm checkpoint"):
        load_checkpoint(foreign)


def test_muon_trains_the_block_matrices_and_adamw_the_rest():
    from minilm.models.muon import MuonAdamW
    from minilm.models.train import make_optimizer

    m = model()
    optimizer = make_optimizer(m, TrainConfig(optimizer="muon", lr=1e-2, muon_lr=0.05))
    assert isinstance(optimizer, MuonAdamW)
    muon_ids = {id(p) for g in optimizer.muon.param_groups for p in g["params"]}
    expected = {id(p) for n, p in m.named_parameters() if n.startswith("blocks.") and p.dim() == 2}
    assert muon_ids == expected and id(m.wte.weight) not in muon_ids
    assert optimizer.muon.param_groups[0]["lr_scale"] == pytest.approx(5.0)
    cfg = TrainConfig(steps=60, batch_size=8, seq_len=16, lr=1e-2, muon_lr=0.05, warmup_steps=5, eval_every=0,
                      optimizer="muon")
    result = train(m, TOKENS, cfg, progress=False)
    assert result.history[-1]["loss"] < result.history[0]["loss"] * 0.5


def test_muon_update_is_close_to_the_orthogonal_factor():
    from minilm.models.muon import Muon, orthogonalize

    g = torch.randn(24, 64, generator=torch.Generator().manual_seed(1))
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    approx = orthogonalize(g)
    cosine = (approx * (u @ vh)).sum() / (approx.norm() * (u @ vh).norm())
    assert cosine > 0.95 and orthogonalize(g.T).shape == (64, 24)
    with pytest.raises(ValueError, match="2-D"):
        orthogonalize(torch.zeros(3))
    with pytest.raises(ValueError, match="2-D weight matrices only"):
        Muon([torch.nn.Parameter(torch.zeros(4))])


@pytest.mark.parametrize("settings", [dict(lr=float("nan")), dict(lr=float("inf")), dict(lr="0.1"),
                                      dict(weight_decay=float("nan")), dict(momentum=1.0), dict(ns_steps=2.5),
                                      dict(ns_steps=0)])
def test_muon_refuses_settings_that_would_break_the_weights(settings):
    from minilm.models.muon import Muon

    with pytest.raises(ValueError, match="Muon: bad settings"):
        Muon([torch.nn.Parameter(torch.zeros(4, 4))], **settings)


@pytest.mark.parametrize("shape", [(24, 64), (64, 24)])
def test_a_stack_of_matrices_is_orthogonalized_one_by_one(shape):
    # Muon stacks same-shape matrices into one batched iteration: each must come out as if alone.
    from minilm.models.muon import orthogonalize

    stack = torch.randn(3, *shape, generator=torch.Generator().manual_seed(2))
    batched = orthogonalize(stack)
    for matrix, out in zip(stack, batched):
        torch.testing.assert_close(out, orthogonalize(matrix), rtol=1e-5, atol=1e-6)


def test_muon_steps_match_a_plain_loop_over_the_matrices():
    # The optimizer works on stacks and foreach lists; this is its update written one matrix at a time.
    from minilm.models.muon import Muon, orthogonalize

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(*s)) for s in [(8, 16), (8, 16), (16, 8), (12, 12)]]
    expected = [p.detach().clone() for p in params]
    buffers = [torch.zeros_like(p) for p in params]
    optimizer = Muon(params, lr=0.05, momentum=0.9, weight_decay=0.1)
    for _ in range(3):
        grads = [torch.randn_like(p) for p in params]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        optimizer.step()
        for i, g in enumerate(grads):
            buffers[i] = buffers[i].lerp(g, 1 - 0.9)
            update = orthogonalize(g.lerp(buffers[i], 0.9))
            expected[i] = expected[i] * (1 - 0.05 * 0.1) - 0.05 * max(1.0, g.size(0) / g.size(1)) ** 0.5 * update
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)


def test_a_checkpoint_from_another_optimizer_is_a_clear_error(tmp_path):
    path = tmp_path / "adamw.pt"
    cfg = TrainConfig(steps=2, batch_size=2, seq_len=8, eval_every=0)
    train(model(), TOKENS, cfg, checkpoint=path, progress=False)
    muon_cfg = TrainConfig(steps=4, batch_size=2, seq_len=8, eval_every=0, optimizer="muon")
    with pytest.raises(CheckpointError, match="does not fit this optimizer"):
        train(model(), TOKENS, muon_cfg, checkpoint=path, resume=True, progress=False)


@pytest.mark.parametrize("tokens, options, message", [
    (TOKENS.astype(np.float64), {}, "integer token ids, got dtype float64"),
    (TOKENS.tolist(), {}, "a numpy array of token ids .* got list"),
    (np.append(TOKENS, 64), {}, r"train_tokens hold ids 0\.\.64: the model's vocab_size=64"),
    (np.append(TOKENS.astype(np.int64), -1), {}, r"train_tokens hold ids -1\.\.63"),
    (TOKENS, dict(val_tokens=np.append(TOKENS, 99)), "val_tokens hold ids"),
    (TOKENS, dict(stop_at=0), "stop_at=0"),
    (TOKENS, dict(stop_at=-1), "stop_at=-1"),
    (TOKENS, dict(log_every=0), "log_every=0"),
    (TOKENS, dict(train_mask=np.zeros(len(TOKENS))), "leaves no target to train on"),
    (TOKENS, dict(train_mask=np.eye(1, len(TOKENS))[0]), "leaves no target"),  # the first token is no target
])
def test_bad_training_input_says_what_is_wrong(tokens, options, message):
    cfg = TrainConfig(steps=2, batch_size=2, seq_len=8, eval_every=0)
    with pytest.raises(ValueError, match=message):
        train(model(), tokens, cfg, progress=False, **options)


def test_fractional_token_ids_are_refused_everywhere():
    fractional = np.linspace(0, 5, 100)
    with pytest.raises(ValueError, match="integer token ids"):
        get_batch(fractional, 2, 8, seed=0, step=0)
    with pytest.raises(ValueError, match="integer token ids"):
        evaluate(model(), fractional, 8, 2, 64)


def test_bad_train_config():
    with pytest.raises(ConfigError, match="schedule='linear' is not allowed"):
        TrainConfig(schedule="linear")
    with pytest.raises(ConfigError, match="steps=0 is out of range"):
        TrainConfig(steps=0)
    with pytest.raises(ConfigError, match="optimizer='sgd' is not allowed"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ConfigError, match="compile_mode='fast' is not allowed"):
        TrainConfig(compile_mode="fast")


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path, torchrun):
    import json
    from pathlib import Path

    out = tmp_path / "ddp.json"
    worker = Path(__file__).with_name("_ddp_train.py")
    result = torchrun(2, str(worker), str(out), env={"OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"})
    assert result.returncode == 0, result.stderr[-2000:]
    ddp = json.loads(out.read_text())
    assert ddp["world"] == 2
    # One process, two micro-batches per step: the same windows the two ranks drew, same global batch.
    torch.manual_seed(0)
    single = GPT(CONFIG)
    cfg = TrainConfig(steps=8, batch_size=4, seq_len=16, grad_accum=2, lr=5e-3, warmup_steps=2, eval_every=0)
    history = train(single, np.tile(np.arange(16, dtype=np.uint16), 400), cfg, progress=False, log_every=1).history
    assert np.allclose(ddp["losses"], [r["loss"] for r in history], atol=1e-5)
    weights = torch.cat([p.detach().flatten() for p in single.parameters()]).numpy()
    assert np.allclose(ddp["weights"], weights, atol=1e-5)


def test_a_time_budget_ends_the_run_and_its_schedule_together(tmp_path):
    cfg = TrainConfig(steps=10**6, batch_size=4, seq_len=16, lr=1e-2, warmup_steps=5, min_lr_ratio=0.0,
                      eval_every=0, max_seconds=1.5)
    path = tmp_path / "timed.pt"
    result = train(model(), TOKENS, cfg, checkpoint=path, progress=False, log_every=1)
    assert 1.2 < result.seconds < 2.0, result.seconds
    lrs = [r["lr"] for r in result.history]
    assert len(lrs) > 20 and max(lrs) == pytest.approx(1e-2, rel=0.05)  # warmed up to the peak...
    assert lrs[-1] < 2e-4  # ...and decayed to the floor as the time ran out
    assert load_checkpoint(path)["step"] == result.history[-1]["step"]  # the last step is saved
    # cfg.steps still bounds the run; the schedule then ends at that step.
    short = train(model(), TOKENS, replace(cfg, steps=7), progress=False, log_every=1)
    assert short.history[-1]["step"] == 7 and short.seconds < 1.0
    assert short.history[-1]["lr"] == pytest.approx(lr_at(6, 7, 5, 1e-2, "cosine", 0.0))
    with pytest.raises(ConfigError, match="max_seconds"):
        TrainConfig(max_seconds=-1)


def test_ddp_ranks_share_one_clock_under_a_time_budget(tmp_path, torchrun):
    import json
    from pathlib import Path

    out = tmp_path / "timed.json"
    worker = Path(__file__).with_name("_ddp_train.py")
    result = torchrun(2, str(worker), str(out), "1.0", env={"OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"})
    assert result.returncode == 0, result.stderr[-2000:]
    ranks = [json.loads(Path(f"{out}.rank{r}").read_text()) for r in (0, 1)]
    # The same learning rate at every step and the same last step, or the replicas would drift apart.
    assert len(ranks[0]["lrs"]) > 5 and ranks[0]["lrs"] == ranks[1]["lrs"]
    assert 0.8 < ranks[0]["seconds"] < 1.6


@pytest.mark.parametrize("mode, passed", [("default", None), ("max-autotune", "max-autotune")])
def test_the_compile_mode_reaches_torch_compile(monkeypatch, mode, passed):
    modes = []
    monkeypatch.setattr(torch, "compile", lambda module, mode=None: modes.append(mode) or module)
    tokens = np.tile(np.arange(16, dtype=np.uint16), 20)
    model = GPT(GPTConfig.modern(vocab_size=16, block_size=8, n_layer=1, n_embd=16, n_head=2))
    train(model, tokens, TrainConfig(steps=1, batch_size=2, seq_len=8, warmup_steps=0, eval_every=0, compile=True,
                                     compile_mode=mode), progress=False)
    assert modes == [passed]


def test_compiled_training_gives_the_losses_of_eager_training():
    # torch.compile (the GPU benchmark's path) must not change what is learned; on a CPU it compiles
    # C++ kernels, so this checks the compiled step end to end without a GPU.
    tokens = np.tile(np.arange(16, dtype=np.uint16), 200)
    cfg = TrainConfig(steps=4, batch_size=2, seq_len=16, lr=5e-3, warmup_steps=1, eval_every=0)
    losses = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = GPT(GPTConfig.modern(vocab_size=32, block_size=16, n_layer=1, n_embd=32, n_head=2))
        result = train(model, tokens, replace(cfg, compile=compiled), progress=False, log_every=1)
        losses[compiled] = [r["loss"] for r in result.history]
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    assert result.tokens_per_s_after(2) > 0 and result.history[-1]["seconds"] <= result.seconds


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_training_on_a_missing_gpu_says_so():
    model = GPT(GPTConfig.modern(vocab_size=16, block_size=8, n_layer=1, n_embd=16, n_head=2))
    tokens = np.tile(np.arange(16, dtype=np.uint16), 20)
    with pytest.raises(ValueError, match="this PyTorch sees no CUDA GPU"):
        train(model, tokens, TrainConfig(steps=1, batch_size=2, seq_len=8, warmup_steps=0, eval_every=0),
              device="cuda", progress=False)


def test_validation_by_source_weights_losses_and_bytes_by_training_share():
    """The mixture's loss is the share-weighted mean of the sources' losses per token; its bits per
    byte are the weighted bits over the weighted bytes (not the mean of the sources' bpb)."""
    import math

    from minilm.models.train import SourceTokens

    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=64, n_layer=1, n_embd=32, n_head=2, block_size=16))
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 64, 400), rng.integers(0, 8, 300)  # b: few ids, so a different loss
    byte_lengths = np.array([1 + i % 4 for i in range(64)])
    sets = SourceTokens({"a": a, "b": b}, {"a": 0.6, "b": 0.2, "unused": 0.2})
    assert sets.weights == pytest.approx({"a": 0.75, "b": 0.25})
    got = evaluate(model, sets, 16, 8, 10**9, byte_lengths)
    one = {name: evaluate(model, t, 16, 8, 10**9, byte_lengths) for name, t in (("a", a), ("b", b))}
    assert got["a_loss"] == one["a"]["loss"] and got["b_bpb"] == one["b"]["bpb"]
    loss = 0.75 * one["a"]["loss"] + 0.25 * one["b"]["loss"]
    bytes_per_token = {k: v["loss"] / math.log(2) / v["bpb"] for k, v in one.items()}
    assert got["loss"] == pytest.approx(loss, rel=1e-12)
    assert got["bpb"] == pytest.approx(loss / math.log(2) / (0.75 * bytes_per_token["a"] + 0.25 * bytes_per_token["b"]))
    assert got["bpb"] != pytest.approx(0.75 * one["a"]["bpb"] + 0.25 * one["b"]["bpb"], rel=1e-6)
    # train() records the mixture and every source at each evaluation
    history = train(model, a, TrainConfig(steps=2, batch_size=2, seq_len=16, eval_every=1, eval_tokens=64),
                    val_tokens=sets, byte_lengths=byte_lengths, progress=False).history
    assert {"val_loss", "val_bpb", "val_a_loss", "val_b_loss", "val_a_bpb", "val_b_bpb"} <= set(history[-1])
    with pytest.raises(ValueError, match="positive weight: none for \\['b'\\]"):
        SourceTokens({"a": a, "b": b}, {"a": 1.0})
    with pytest.raises(ValueError, match="val_tokens\\['b'\\] hold ids"):
        train(model, a, TrainConfig(steps=1, batch_size=2, seq_len=16), progress=False,
              val_tokens=SourceTokens({"a": a, "b": np.array([99] * 40)}, {"a": 1, "b": 1}))


def test_loss_by_position_averages_to_the_evaluation_loss():
    from minilm.models.train import loss_by_position

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, n_layer=1, n_embd=32, n_head=2, block_size=16))
    tokens = np.random.default_rng(0).integers(0, 50, size=300)
    losses = loss_by_position(model, tokens, seq_len=16, batch_size=3, max_tokens=160)
    assert losses.shape == (10, 16)
    assert losses.mean() == pytest.approx(evaluate(model, tokens, 16, 4, 160)["loss"], rel=1e-5)
    # Position 0 predicts from one token: the loss there is the unigram-like guess of a fresh window.
    x = torch.from_numpy(tokens[:17].astype(np.int64))[None]
    with torch.no_grad():
        logits, _ = model(x[:, :-1])
    first = torch.nn.functional.cross_entropy(logits[0, :1], x[0, 1:2]).item()
    assert losses[0, 0] == pytest.approx(first, rel=1e-5)
    with pytest.raises(ValueError, match="a stream of tokens, not rows"):
        loss_by_position(model, tokens[:34].reshape(2, 17), 16, 2, 100)


def test_the_periodic_evaluation_can_use_its_own_window():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, n_layer=1, n_embd=32, n_head=2, block_size=32))
    tokens = np.random.default_rng(0).integers(0, 50, size=2000)
    cfg = TrainConfig(steps=2, batch_size=2, seq_len=32, eval_seq_len=8, eval_every=2, eval_tokens=64, lr=1e-3,
                      warmup_steps=0)
    result = train(model, tokens, cfg, val_tokens=tokens, progress=False)
    assert result.history[-1]["val_loss"] == pytest.approx(evaluate(model, tokens, 8, 2, 64)["loss"], rel=1e-6)
