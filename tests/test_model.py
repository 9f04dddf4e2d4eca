"""minilm.models.gpt: GPT-2 equivalence with Hugging Face, causality, KV cache, GQA, sizes, errors."""

import re

import pytest
import torch

from minilm.core.checks import ConfigError
from minilm.models.gpt import GPT, GPTConfig, KVCache, RMSNorm, apply_rope, check_token_ids, rope_tables

torch.set_num_threads(2)

SMALL = dict(vocab_size=300, block_size=32, n_layer=2, n_embd=64, n_head=4)
VARIANTS = {
    "gpt2": GPTConfig.gpt2(**SMALL),
    "modern": GPTConfig.modern(**SMALL),
    "modern-gqa": GPTConfig.modern(**SMALL, n_kv_head=2),
    "modern-mqa-qknorm": GPTConfig.modern(**SMALL, n_kv_head=1, qk_norm=True),
    "untied": GPTConfig.modern(**SMALL, tie_embeddings=False),
}


def make(config, seed=0):
    torch.manual_seed(seed)
    return GPT(config).eval()


@pytest.mark.parametrize("settings", [
    {},  # GPT-2 as released: gelu_new, tied embeddings
    {"activation_function": "gelu"},  # exact GELU
    {"activation_function": "gelu_pytorch_tanh"},
    {"tie_word_embeddings": False},  # an unembedding of its own
])
def test_matches_hugging_face_gpt2_logits(settings):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_config = transformers.GPT2Config(vocab_size=300, n_positions=32, n_embd=64, n_layer=2, n_head=4,
                                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **settings)
    hf = transformers.GPT2LMHeadModel(hf_config).eval()
    if settings.get("tie_word_embeddings") is False:  # make the two matrices differ, or the test sees nothing
        with torch.no_grad():
            hf.lm_head.weight.normal_()
        assert hf.lm_head.weight.data_ptr() != hf.transformer.wte.weight.data_ptr()
    ours = GPT.from_hf_gpt2(hf).eval()
    idx = torch.randint(0, 300, (3, 32))
    with torch.no_grad():
        expected = hf(idx).logits
        got, _ = ours(idx)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0), (got - expected).abs().max()


@pytest.mark.parametrize("settings, named", [
    ({"activation_function": "relu"}, "activation_function='relu'"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx=True"),
    ({"scale_attn_weights": False}, "scale_attn_weights=False"),
])
def test_hugging_face_settings_that_change_the_logits_are_refused_by_name(settings, named):
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.GPT2Config(vocab_size=300, n_positions=32, n_embd=64, n_layer=2, n_head=4, **settings)
    hf = transformers.GPT2LMHeadModel(hf_config).eval()
    with pytest.raises(ValueError, match=re.escape(named)):
        GPT.from_hf_gpt2(hf)


def test_from_pretrained_offline_is_a_clear_error(monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="could not load 'gpt2-nonexistent-test'"):
        GPT.from_pretrained("gpt2-nonexistent-test")


@pytest.mark.parametrize("name", VARIANTS)
def test_future_tokens_do_not_change_past_logits(name):
    model = make(VARIANTS[name])
    idx = torch.randint(0, 300, (2, 20))
    changed = idx.clone()
    changed[:, 10:] = torch.randint(0, 300, (2, 10))
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(changed)
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-6)
    assert not torch.allclose(a[:, 10:], b[:, 10:])


@pytest.mark.parametrize("name", VARIANTS)
def test_kv_cache_prefill_and_steps_match_full_forward(name):
    model = make(VARIANTS[name])
    idx = torch.randint(0, 300, (2, 24))
    with torch.no_grad():
        full, _ = model(idx)
        cache = KVCache(model.config, batch_size=2)
        pieces = [model(idx[:, :10], cache=cache, start=0)[0]]  # prefill
        pieces.append(model(idx[:, 10:16], cache=cache, start=10)[0])  # a chunk
        pieces += [model(idx[:, t : t + 1], cache=cache, start=t)[0] for t in range(16, 24)]  # one by one
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("name", VARIANTS)
def test_left_padded_rows_give_the_logits_each_row_has_alone(name):
    """Prompts of lengths 5, 9 and 12 padded on the left to 12: with their padding counts, every real
    position's logits equal the row run alone, full forward and through the cache (prefill, chunk, steps)."""
    model = make(VARIANTS[name])
    torch.manual_seed(1)
    rows = [torch.randint(0, 300, (n,)) for n in (5, 9, 12)]
    continuation = torch.randint(0, 300, (3, 8))
    longest = max(len(r) for r in rows)
    pad = torch.tensor([longest - len(r) for r in rows])
    idx = torch.stack([torch.cat([torch.zeros(longest - len(r), dtype=torch.long), r]) for r in rows])
    idx = torch.cat([idx, continuation], dim=1)  # (3, 20): padding, prompt, 8 more tokens
    with torch.no_grad():
        full, _ = model(idx, pad=pad)
        cache = KVCache(model.config, batch_size=3, max_len=20)
        pieces = [model(idx[:, :12], cache=cache, start=0, pad=pad)[0], model(idx[:, 12:15], cache=cache, start=12, pad=pad)[0]]
        pieces += [model(idx[:, t : t + 1], cache=cache, start=t, pad=pad)[0] for t in range(15, 20)]
        cached = torch.cat(pieces, dim=1)
        for b, row in enumerate(rows):
            alone, _ = model(torch.cat([row, continuation[b]])[None])
            real = slice(int(pad[b]), None)
            assert torch.allclose(full[b, real], alone[0], atol=1e-5), (full[b, real] - alone[0]).abs().max()
            assert torch.allclose(cached[b, real], alone[0], atol=1e-5), (cached[b, real] - alone[0]).abs().max()
    assert torch.isfinite(full).all() and torch.isfinite(cached).all()  # padding queries do not make NaNs


def test_pad_needs_one_count_per_row():
    model = make(VARIANTS["modern"])
    with pytest.raises(ValueError, match=r"pad must hold one count per row, shape \(2,\)"):
        model(torch.zeros(2, 4, dtype=torch.long), pad=torch.tensor([1, 0, 0]))


def test_loss_is_cross_entropy_and_ignores_minus_one():
    model = make(VARIANTS["modern"])
    idx = torch.randint(0, 300, (2, 8))
    targets = torch.randint(0, 300, (2, 8))
    logits, loss = model(idx, targets)
    expected = torch.nn.functional.cross_entropy(logits.view(-1, 300), targets.view(-1))
    assert torch.allclose(loss, expected)
    masked = targets.clone()
    masked[:, :4] = -1
    _, partial = model(idx, masked)
    manual = torch.nn.functional.cross_entropy(logits[:, 4:].reshape(-1, 300), targets[:, 4:].reshape(-1))
    assert torch.allclose(partial, manual)
    assert abs(make(VARIANTS["gpt2"])(idx, targets)[1].item() - torch.log(torch.tensor(300.0)).item()) < 0.5  # ~uniform at init


def test_parameter_counts():
    gpt2 = make(GPTConfig.gpt2(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768))
    assert gpt2.num_params() == 124_439_808  # GPT-2 small, as published by Hugging Face
    modern = make(VARIANTS["modern"])
    by_part = modern.param_counts_by_component()
    assert sum(by_part.values()) == modern.num_params()
    mha, gqa, mqa = (make(VARIANTS[n]).param_counts_by_component()["attention"] for n in ("modern", "modern-gqa", "modern-mqa-qknorm"))
    assert mha > gqa > mqa  # fewer key/value heads, fewer parameters
    untied = make(VARIANTS["untied"])
    assert untied.num_params() == modern.num_params() + 300 * 64


def test_flops_per_token_is_6n_plus_attention():
    model = make(VARIANTS["modern"])
    n = model.num_params(non_embedding=True)
    assert model.flops_per_token(32) == 6 * n + 12 * 2 * 4 * 16 * 32


def test_rmsnorm_matches_torch():
    x = torch.randn(3, 5, 16)
    ours = RMSNorm(16, eps=1e-6)
    reference = torch.nn.RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ours.weight.uniform_()
        reference.weight.copy_(ours.weight)
    assert torch.allclose(ours(x), reference(x), atol=1e-6)


def test_rmsnorm_normalises_bf16_inputs_in_float32():
    x = (torch.randn(4, 16) * 30).to(torch.bfloat16)
    norm = RMSNorm(16)
    with torch.no_grad():
        norm.weight.uniform_()
    by_hand = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5)
    assert torch.equal(norm(x), by_hand.to(torch.bfloat16) * norm.weight)


@pytest.mark.parametrize("name", ["gpt2", "modern-gqa"])
def test_last_only_gives_the_last_positions_logits(name):
    model = make(VARIANTS[name])
    idx = torch.randint(0, 300, (3, 12))
    with torch.no_grad():
        full, _ = model(idx)
        last, loss = model(idx, last_only=True)
    assert last.shape == (3, 1, 300) and loss is None
    assert torch.allclose(last, full[:, -1:], atol=1e-6)
    with pytest.raises(ValueError, match="last_only"):
        model(idx, targets=idx, last_only=True)


def test_rope_preserves_norms_and_encodes_relative_position():
    cos, sin = rope_tables(16, 64)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    def at(x, pos):
        return apply_rope(x, cos[pos : pos + 1], sin[pos : pos + 1])
    assert torch.allclose(at(q, 7).norm(), q.norm(), atol=1e-5)
    score_a = (at(q, 10) * at(k, 3)).sum()
    score_b = (at(q, 40) * at(k, 33)).sum()  # same distance, other positions
    assert torch.allclose(score_a, score_b, atol=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_embd=65, n_head=4), "multiple of n_head"),
    (dict(n_head=4, n_kv_head=3), "multiple of n_kv_head"),
    (dict(norm="batchnorm"), "norm='batchnorm' is not allowed"),
    (dict(n_embd=12, n_head=4), "RoPE needs an even head size"),
    (dict(n_layer=0), "n_layer=0 is out of range"),
])
def test_bad_configs_get_one_line_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GPTConfig.modern(**{**SMALL, **kwargs})


def test_gelu_switch_chooses_the_exact_or_tanh_form():
    x = torch.randn(3, 64)
    for approximate, reference in (("tanh", torch.nn.GELU(approximate="tanh")), ("none", torch.nn.GELU())):
        mlp = make(GPTConfig.gpt2(**SMALL, gelu_approximate=approximate)).blocks[0].mlp
        expected = mlp.c_proj(reference(mlp.c_fc(x)))
        torch.testing.assert_close(mlp(x), expected, rtol=0, atol=0)
    assert GPTConfig.gpt2(**SMALL).gelu_approximate == "tanh"  # GPT-2's own form, for the Hugging Face match
    with pytest.raises(ConfigError, match="gelu_approximate='fast' is not allowed"):
        GPTConfig.gpt2(**SMALL, gelu_approximate="fast")


def test_sequence_too_long_is_a_clear_error():
    model = make(VARIANTS["modern"])
    with pytest.raises(ValueError, match="exceed block_size=32"):
        model(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(ValueError, match="KV cache holds 8 positions"):
        model(torch.zeros(1, 9, dtype=torch.long), cache=KVCache(model.config, 1, max_len=8))


@pytest.mark.parametrize("ids, options, message", [
    (torch.zeros(8, dtype=torch.long), {}, r"\(batch, time\) tensor of integers, got torch.int64 of shape \(8,\)"),
    (torch.zeros(1, 8), {}, "got torch.float32"),
    (torch.zeros(1, 8, dtype=torch.bool), {}, "got torch.bool"),
    (torch.zeros(1, 8, dtype=torch.int16), {}, "got torch.int16"),
    ([[1, 2, 3]], {}, r"got list \(a list of rows: torch.tensor\(ids\)\)"),
    (torch.zeros(1, 8, dtype=torch.long), dict(start=-3), "start=-3 must be >= 0"),
])
def test_ids_of_the_wrong_shape_or_kind_are_a_clear_error(ids, options, message):
    with pytest.raises(ValueError, match=message):
        make(VARIANTS["modern"])(ids, **options)


@pytest.mark.parametrize("ids, message", [
    ([[1, 300]], r"must be in \[0, 300\); got 1\.\.300"),
    ([[-1, 2]], r"must be in \[0, 300\); got -1\.\.2"),
])
def test_check_token_ids_names_ids_outside_the_vocabulary(ids, message):
    check_token_ids(torch.tensor([[0, 299]]), 300)
    check_token_ids(torch.tensor(ids))  # without a vocab_size only the shape and dtype are checked
    with pytest.raises(ValueError, match=message):
        check_token_ids(torch.tensor(ids), 300)


def test_from_depth_derives_the_shape():
    cfg = GPTConfig.from_depth(6)
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.head_dim) == (6, 384, 6, 64)
    assert GPTConfig.from_depth(2, style="gpt2").position == "learned"


def test_gradients_flow_to_every_parameter():
    model = make(VARIANTS["modern-mqa-qknorm"]).train()
    idx = torch.randint(0, 300, (2, 16))
    _, loss = model(idx, idx)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


# -- a longer context ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["extrapolate", "interpolate", "base"])
def test_a_rope_model_takes_a_longer_context_with_the_same_weights(method):
    from minilm.core.checks import ConfigError
    from minilm.models.gpt import extend_context

    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=32, block_size=16, n_layer=1, n_embd=32, n_head=2)).eval()
    longer = extend_context(model, 64, method)
    assert longer.config.block_size == 64 and model.config.block_size == 16 and not longer.training
    for a, b in zip(model.state_dict().values(), longer.state_dict().values()):
        assert torch.equal(a, b)
    ids = torch.randint(0, 32, (2, 16))
    same = torch.allclose(longer(ids)[0], model(ids)[0], atol=1e-5)
    # Plain extrapolation keeps the function where both are defined; the other two change the angles.
    assert same == (method == "extrapolate")
    assert longer(torch.randint(0, 32, (1, 64)))[0].shape == (1, 64, 32)
    with pytest.raises(ConfigError, match="needs rotary positions"):
        extend_context(GPT(GPTConfig.gpt2(vocab_size=32, block_size=16, n_layer=1, n_embd=32, n_head=2)), 40, method)
    with pytest.raises(ConfigError, match="shorter than the model's 16"):
        extend_context(model, 8, method)


def test_each_context_method_gives_the_angles_its_paper_defines():
    from minilm.models.gpt import extended_config

    config = GPTConfig.modern(vocab_size=32, block_size=16, n_layer=1, n_embd=32, n_head=2)  # head size 16
    d = config.head_dim
    base_inverse = 1.0 / 10000.0 ** (torch.arange(0, d, 2) / d)
    positions = torch.arange(64, dtype=torch.float32)
    for method, expected in {
        "extrapolate": torch.outer(positions, base_inverse),
        "interpolate": torch.outer(positions / 4, base_inverse),  # Chen et al. 2023: position / (64 / 16)
        "base": torch.outer(positions, 1.0 / (10000.0 * 4 ** (d / (d - 2))) ** (torch.arange(0, d, 2) / d)),
    }.items():
        c = extended_config(config, 64, method)
        cos, sin = rope_tables(d, c.block_size, c.rope_theta, c.rope_scaling)
        torch.testing.assert_close(cos, expected.cos(), atol=1e-5, rtol=0)
        torch.testing.assert_close(sin, expected.sin(), atol=1e-5, rtol=0)
    # NTK-aware: the slowest pair turns over the long context by what it turned over the short one.
    slow = lambda c: c.block_size / c.rope_scaling * (1.0 / c.rope_theta ** ((d - 2) / d))  # noqa: E731
    assert slow(extended_config(config, 64, "base")) == pytest.approx(slow(config))
    # Extending an extended model compounds the factor.
    twice = extended_config(extended_config(config, 32, "interpolate"), 64, "interpolate")
    assert twice.rope_scaling == 4.0


def test_rope_settings_out_of_range_are_refused():
    from minilm.core.checks import ConfigError

    with pytest.raises(ConfigError, match="rope_scaling"):
        GPTConfig(rope_scaling=0.5)
    with pytest.raises(ConfigError, match="rope_theta"):
        GPTConfig(rope_theta=0.0)
