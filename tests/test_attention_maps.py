"""minilm.evals.attention_maps: recomputed attention probabilities match the model's own attention."""

import doctest

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import minilm.evals.attention_maps  # noqa: E402
from minilm.evals.attention_maps import attention_weights, head_summary, layer_attention  # noqa: E402
from minilm.models.gpt import GPT, GPTConfig  # noqa: E402
from minilm.plots.transformer import plot_attention_heads  # noqa: E402

torch.set_num_threads(2)

SMALL = dict(vocab_size=97, block_size=24, n_layer=2, n_embd=32, n_head=4)
CONFIGS = {
    "gpt2": GPTConfig.gpt2(**SMALL),
    "modern": GPTConfig.modern(**SMALL),
    "gqa": GPTConfig.modern(**SMALL, n_kv_head=2),
    "mqa-qknorm": GPTConfig.modern(**SMALL, n_kv_head=1, qk_norm=True),
}


def make(config, seed=0):
    torch.manual_seed(seed)
    return GPT(config).eval()


def rope_of(model):
    return (model.rope_cos, model.rope_sin) if model.config.position == "rope" else None


def angles_at(model, start, length):
    """What a block or attention layer takes: the rotary angles of positions start..start+length-1."""
    rope = rope_of(model)
    return None if rope is None else (rope[0][start : start + length], rope[1][start : start + length])


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("start", [0, 5])
def test_probabilities_times_values_give_the_layer_output(name, start):
    model = make(CONFIGS[name])
    attn, cfg = model.blocks[0].attn, model.config
    torch.manual_seed(1)
    x = torch.randn(2, 9, cfg.n_embd)
    probs = layer_attention(attn, x, rope_of(model), start)
    hd, heads, kv = cfg.head_dim, cfg.n_head, cfg.kv_heads
    v = attn.c_attn(x).split([heads * hd, kv * hd, kv * hd], dim=-1)[2]
    v = v.view(2, 9, kv, hd).transpose(1, 2).repeat_interleave(heads // kv, dim=1)
    ours = attn.c_proj((probs @ v).transpose(1, 2).reshape(2, 9, heads * hd))
    with torch.no_grad():
        expected = attn(x, angles_at(model, start, 9), None, start)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", CONFIGS)
def test_attention_weights_are_causal_distributions_for_every_layer(name):
    model = make(CONFIGS[name])
    idx = torch.randint(0, 97, (3, 11), generator=torch.Generator().manual_seed(0))
    probs = attention_weights(model, idx)
    assert probs.shape == (2, 3, 4, 11, 11)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 3, 4, 11))
    assert (probs.triu(diagonal=1) == 0).all()
    assert (probs.diagonal(dim1=-2, dim2=-1)[..., 0] == 1).all()  # position 0 sees only itself


def test_attention_weights_follow_the_residual_stream_layer_by_layer():
    model = make(CONFIGS["modern"])
    idx = torch.arange(10)[None]
    probs = attention_weights(model, idx)
    with torch.no_grad():  # walk the model by hand: block 1's attention reads the stream after block 0
        x = model.wte(idx)
        expected0 = layer_attention(model.blocks[0].attn, model.blocks[0].ln_1(x), rope_of(model))
        x = model.blocks[0](x, angles_at(model, 0, 10))
        expected1 = layer_attention(model.blocks[1].attn, model.blocks[1].ln_1(x), rope_of(model))
    torch.testing.assert_close(probs[0], expected0)
    torch.testing.assert_close(probs[1], expected1)


def test_hooks_are_removed_and_the_mode_restored():
    model = make(CONFIGS["gpt2"]).train()
    idx = torch.arange(8)[None]
    attention_weights(model, idx)
    assert model.training
    assert all(not block.attn._forward_pre_hooks for block in model.blocks)


@pytest.mark.parametrize("idx, message", [
    (torch.arange(8), "batch, time"),
    (torch.tensor([[1, 97]]), r"token ids must be in \[0, 97\); got 1\.\.97"),
    (torch.tensor([[-2, 5]]), r"token ids must be in \[0, 97\); got -2\.\.5"),
    (torch.tensor([[1.0, 2.5]]), "tensor of integers, got torch.float32"),
    ([[1, 2]], "tensor of integers, got list"),
])
def test_bad_ids_are_a_clear_error(idx, message):
    with pytest.raises(ValueError, match=message):
        attention_weights(make(CONFIGS["gpt2"]), idx)


def test_head_summary_of_known_patterns():
    T = 6
    previous = torch.zeros(T, T)
    previous[0, 0] = 1
    previous[torch.arange(1, T), torch.arange(T - 1)] = 1
    uniform = torch.ones(T, T).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)
    stats = head_summary(torch.stack([previous, uniform])[None])  # (B=1, H=2, T, T)
    torch.testing.assert_close(stats["previous"], torch.tensor([1.0, sum(1 / (t + 1) for t in range(1, T)) / (T - 1)]))
    torch.testing.assert_close(stats["distance"], torch.tensor([1.0, sum(t / 2 for t in range(1, T)) / (T - 1)]))
    torch.testing.assert_close(stats["first"][1], stats["self"][1])
    assert stats["self"][0] == 0 and stats["first"][0] == 1 / (T - 1)


def test_head_summary_keeps_layers_and_averages_the_batch():
    model = make(CONFIGS["gqa"])
    probs = attention_weights(model, torch.randint(0, 97, (3, 7), generator=torch.Generator().manual_seed(2)))
    stats = head_summary(probs)
    assert {k: tuple(v.shape) for k, v in stats.items()} == {k: (2, 4) for k in ("previous", "self", "first", "distance")}
    torch.testing.assert_close(stats["previous"][1], head_summary(probs[1])["previous"])
    with pytest.raises(ValueError, match="2 positions"):
        head_summary(torch.ones(1, 1, 1))


def test_heatmaps_have_titles_and_labels():
    probs = attention_weights(make(CONFIGS["modern"]), torch.arange(5)[None])[0, 0]
    axes = plot_attention_heads(probs, list("abcde"), "layer 0")
    assert len(axes) == 4 and axes[0].get_ylabel() and axes[0].get_xlabel()
    assert axes[0].figure._suptitle.get_text() == "layer 0"
    with pytest.raises(ValueError, match="labels"):
        plot_attention_heads(probs, list("abc"), "wrong")
    plt.close("all")


def test_docstring_examples():
    result = doctest.testmod(minilm.evals.attention_maps)
    assert result.attempted > 0 and result.failed == 0


def test_head_summary_grid_is_labelled():
    from minilm.plots.transformer import plot_head_summary

    stats = head_summary(attention_weights(make(CONFIGS["gpt2"]), torch.arange(6)[None]))
    axes = plot_head_summary(stats, title="summary")
    assert len(axes) == 2 and all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() for ax in axes)
    assert len(axes[0].texts) == 2 * 4  # one number per layer and head
    plt.close("all")
