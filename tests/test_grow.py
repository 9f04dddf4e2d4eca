"""Growing a model: identity blocks keep the function, get gradients, and work with the KV cache."""

import numpy as np
import pytest
import torch

from minilm.inference.generate import generate
from minilm.studies.grow import default_positions, grow_depth, growth_experiment, new_block_indices
from minilm.models.gpt import GPT, GPTConfig, KVCache

VOCAB = 97


def trained_like(config: GPTConfig, seed: int = 0) -> GPT:
    """A model whose weights are far from initialisation (as a trained one), norms and biases included."""
    torch.manual_seed(seed)
    model = GPT(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


CONFIGS = {
    "gpt2": GPTConfig.gpt2(vocab_size=VOCAB, n_layer=2, n_embd=32, n_head=4, block_size=32),
    "modern": GPTConfig.modern(vocab_size=VOCAB, n_layer=3, n_embd=32, n_head=4, n_kv_head=2, qk_norm=True,
                               block_size=32),
}


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, VOCAB, (3, 24), generator=g), torch.randint(0, VOCAB, (3, 24), generator=g)


@pytest.mark.parametrize("style", CONFIGS)
@pytest.mark.parametrize("positions", [None, [0, 0], [1, 2], [2, 2]])
@pytest.mark.parametrize("init", ["copy", "random"])
def test_logits_and_loss_unchanged_at_insertion(style, positions, init, batch):
    model = trained_like(CONFIGS[style])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grown = grow_depth(model, 2, positions=positions, init=init)
    x, y = batch
    logits, loss = model(x, y)
    grown_logits, grown_loss = grown(x, y)
    assert grown.config.n_layer == model.config.n_layer + 2
    assert grown.num_params() > model.num_params()
    assert torch.allclose(logits, grown_logits, rtol=0, atol=1e-6)
    assert abs(loss.item() - grown_loss.item()) < 1e-6
    for name, value in model.state_dict().items():  # the input model is not changed
        assert torch.equal(value, before[name]), name


def test_new_blocks_sit_where_asked_and_old_blocks_keep_their_weights():
    model = trained_like(CONFIGS["modern"])
    grown = grow_depth(model, 2, positions=[1, 3], init="random")
    new = new_block_indices(3, [1, 3])
    assert new == [1, 4]
    old = [i for i in range(5) if i not in new]
    for old_index, index in enumerate(old):
        pairs = zip(model.blocks[old_index].named_parameters(), grown.blocks[index].named_parameters())
        for (name, p), (_, q) in pairs:
            assert torch.equal(p, q), name
    for index in new:
        assert grown.blocks[index].attn.c_proj.weight.abs().sum() == 0
        assert grown.blocks[index].mlp.c_proj.weight.abs().sum() == 0
        assert grown.blocks[index].attn.c_attn.weight.abs().sum() > 0  # the rest is not zero: it can learn


def test_copy_init_copies_the_block_before():
    model = trained_like(CONFIGS["gpt2"])
    grown = grow_depth(model, 1, positions=[2], init="copy")  # after the last block: a copy of block 1
    assert torch.equal(grown.blocks[2].attn.c_attn.weight, model.blocks[1].attn.c_attn.weight)
    assert torch.equal(grown.blocks[2].ln_1.weight, model.blocks[1].ln_1.weight)
    assert grown.blocks[2].mlp.c_proj.bias.abs().sum() == 0 and grown.blocks[2].attn.c_proj.bias.abs().sum() == 0


@pytest.mark.parametrize("style", CONFIGS)
def test_gradients_reach_the_new_blocks(style, batch):
    model = trained_like(CONFIGS[style])
    grown = grow_depth(model, 1, positions=[1]).train()
    x, y = batch
    _, loss = grown(x, y)
    loss.backward()
    new = grown.blocks[1]
    # The zero projections get gradient (their inputs are not zero)...
    assert new.attn.c_proj.weight.grad.abs().sum() > 0 and new.mlp.c_proj.weight.grad.abs().sum() > 0
    # ... while what lies before them only starts to after the first step has made them non-zero.
    assert new.attn.c_attn.weight.grad.abs().sum() == 0
    opt = torch.optim.SGD(grown.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    _, loss = grown(x, y)
    loss.backward()
    assert new.attn.c_attn.weight.grad.abs().sum() > 0 and new.mlp.c_fc.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("style", CONFIGS)
def test_kv_cache_layers_are_right_after_growing(style):
    model = trained_like(CONFIGS[style])
    grown = grow_depth(model, 2, positions=[0, 1], init="random")
    assert [block.attn.layer for block in grown.blocks] == list(range(grown.config.n_layer))
    prompts = [[5, 6, 7, 8], [9, 10, 11, 12]]
    cached = generate(grown, prompts, max_new_tokens=8)
    assert cached == generate(grown, prompts, max_new_tokens=8, use_cache=False)
    assert cached == generate(model, prompts, max_new_tokens=8)  # same function, same greedy tokens
    # Cached logits, token by token, equal the full forward pass.
    x = torch.tensor(prompts)
    cache = KVCache(grown.config, 2, 8)
    step_logits = [grown(x[:, t : t + 1], cache=cache, start=t)[0] for t in range(4)]
    full, _ = grown(x)
    assert torch.allclose(torch.cat(step_logits, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"new_layers": 0}, "new_layers=0 must be a whole number >= 1"),
    ({"new_layers": 1.5}, "new_layers=1.5"),
    ({"new_layers": 2, "positions": [1]}, "gives 1 places for new_layers=2"),
    ({"new_layers": 1, "positions": [4]}, "from 0 to n_layer=3"),
    ({"new_layers": 1, "positions": [-1]}, "from 0 to n_layer=3"),
    ({"new_layers": 1, "init": "zeros"}, "init='zeros' is not allowed"),
])
def test_bad_input_is_a_clear_error(kwargs, message):
    model = trained_like(CONFIGS["modern"])
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        grow_depth(model, **kwargs)


def test_not_a_gpt_is_a_clear_error():
    with pytest.raises(TypeError, match="needs a minilm GPT, got Linear"):
        grow_depth(torch.nn.Linear(2, 2), 1)


def test_default_positions_spread_new_blocks():
    assert default_positions(4, 4) == [1, 2, 3, 4]
    assert default_positions(1, 2) == [1, 1]
    assert all(0 <= p <= 6 for p in default_positions(6, 5))


def test_growth_experiment_matches_compute_and_starts_from_the_small_model():
    rng = np.random.default_rng(0)
    # A learnable stream: a repeated random pattern with noise.
    pattern = rng.integers(0, 40, size=50)
    tokens = np.tile(pattern, 200).astype(np.uint16)
    noise = rng.random(len(tokens)) < 0.1
    tokens[noise] = rng.integers(0, 40, size=int(noise.sum()))
    config = GPTConfig.modern(vocab_size=40, n_layer=1, n_embd=32, n_head=2, block_size=16)
    result = growth_experiment(tokens[:8000], tokens[8000:], config, new_layers=1, steps=12, batch_size=4,
                               eval_every=6, eval_tokens=512)
    assert abs(result.loss_after_insertion - result.loss_before) < 1e-6
    assert result.curves["grown"][0] == (result.curves["small"][-1][0], result.loss_after_insertion)
    # The same total compute, to within half a step of the big model; FLOPs per step as the model counts them.
    per_step = result.flops_per_step
    assert per_step["grown"] > per_step["small"] > 0
    assert abs(result.flops["scratch"] - result.flops["small + grown"]) <= per_step["grown"] / 2
    assert result.curves["scratch"][-1][0] == pytest.approx(result.flops["scratch"])
    assert result.curves["grown"][-1][0] == pytest.approx(result.flops["small + grown"])
    assert result.params["grown"] > result.params["small"]
    for name in ("small", "grown", "scratch"):
        assert all(np.isfinite(loss) for _, loss in result.curves[name])
    assert result.final("grown") < result.loss_before  # training went on from where the small model was
    d = result.final_difference  # grown minus scratch on every validation window, not the curves' first 512 tokens
    assert d.low <= d.value <= d.high and d.n > 512 // 16 and d.verdict in ("higher", "lower", "within noise")


@pytest.mark.parametrize("call, message", [
    (lambda: default_positions(0, 2), "n_layer=0 is out of range"),  # gave [1, 1]: blocks past the model
    (lambda: default_positions(3, 0), "new_layers=0 is out of range"),
    (lambda: new_block_indices(3, [-2, 1]), "position=-2 is out of range"),
    (lambda: new_block_indices(3, [5]), "position=5 is out of range"),
])
def test_positions_of_new_blocks_are_checked(call, message):
    from minilm.core.checks import ConfigError

    with pytest.raises(ConfigError, match=message):
        call()


def test_the_chapter_experiment_is_cached_and_reads_back_the_same(midtrained, tiny_midtrain_budget, monkeypatch):
    from dataclasses import replace

    from minilm.studies import grow

    runs, *_ = midtrained
    monkeypatch.setenv("MINILM_RUNS", str(runs))
    budget = tiny_midtrain_budget.with_overrides(
        midtrain=replace(tiny_midtrain_budget.midtrain, grow_layers=1, grow_new_layers=1, grow_width=64, grow_steps=4))
    first = grow.artifact(budget)
    assert grow.path(budget).exists() and set(first.curves) == {"small", "grown", "scratch"}
    assert abs(first.loss_after_insertion - first.loss_before) < 1e-5
    monkeypatch.setattr(grow, "growth_experiment", lambda *a, **k: pytest.fail("must load the cache"))
    again = grow.artifact(budget)
    assert again == first and again.final_difference.verdict == first.final_difference.verdict
    # Its key follows the grow_* settings, not the rest of mid-training's.
    m = budget.midtrain
    assert grow.path(budget.with_overrides(midtrain=replace(m, grow_steps=5))) != grow.path(budget)
    assert grow.path(budget.with_overrides(midtrain=replace(m, steps=99))) == grow.path(budget)
