"""Exercise 03 checked against the package (minilm.models.gpt) and PyTorch's fused attention.

Most comparisons run in float64, where a correct function agrees with the reference to about 1e-12,
so a tolerance of 1e-10 still catches a missing scale or a wrong pairing. RoPE tables are float32,
like the package's, and are compared at a tolerance that covers float32 rounding of the angles.
"""

import pytest
import torch
import torch.nn.functional as F

from minilm.models import gpt as package

F64 = torch.float64


def randn(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def close(got, expected, atol=1e-10, rtol=0.0):
    assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
    assert got.shape == expected.shape, f"shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    torch.testing.assert_close(got, expected, atol=atol, rtol=rtol)


# -- causal_mask ----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 5, 16])
def test_causal_mask_is_lower_triangular(exercise, length):
    mask = exercise.causal_mask(length)
    assert mask.dtype == torch.bool, f"the mask should be boolean (True = may attend), got {mask.dtype}"
    assert torch.equal(mask, torch.ones(length, length, dtype=torch.bool).tril()), mask.int()


@pytest.mark.parametrize("n_queries, n_keys", [(1, 1), (1, 7), (3, 7), (7, 7)])
def test_causal_mask_with_cached_keys(exercise, n_queries, n_keys):
    # The mask minilm.models.gpt.Attention builds when new queries follow n_keys - n_queries cached keys.
    expected = torch.ones(n_queries, n_keys, dtype=torch.bool).tril(diagonal=n_keys - n_queries)
    got = exercise.causal_mask(n_queries, n_keys)
    assert torch.equal(got, expected), f"causal_mask({n_queries}, {n_keys}):\n{got.int()}\nexpected\n{expected.int()}"


# -- attention ------------------------------------------------------------------------------------

SHAPES = [(2, 3, 5, 8), (1, 1, 1, 4), (4, 1, 7, 1), (3, 6, 16), (9, 2)]  # (..., T, D): T=1, one head, D=1, no batch


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_causal_attention_matches_pytorch(exercise, shape):
    q, k, v = randn(*shape, seed=1), randn(*shape, seed=2), randn(*shape, seed=3)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    got = exercise.attention(q, k, v, exercise.causal_mask(shape[-2]))
    close(got, expected)


def test_attention_without_a_mask_sees_everything(exercise):
    q, k, v = randn(2, 4, 6, seed=1), randn(2, 9, 6, seed=2), randn(2, 9, 3, seed=3)  # T_k != T_q, D_v != D
    close(exercise.attention(q, k, v), F.scaled_dot_product_attention(q, k, v))


@pytest.mark.parametrize("n_queries, n_keys", [(1, 6), (3, 6)])
def test_attention_with_cached_keys_matches_pytorch(exercise, n_queries, n_keys):
    q, k, v = randn(2, 2, n_queries, 8, seed=1), randn(2, 2, n_keys, 8, seed=2), randn(2, 2, n_keys, 8, seed=3)
    mask = torch.ones(n_queries, n_keys, dtype=torch.bool).tril(diagonal=n_keys - n_queries)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    close(exercise.attention(q, k, v, exercise.causal_mask(n_queries, n_keys)), expected)


def test_attention_survives_large_scores(exercise):
    # Scores of about 1e4: exp() of them overflows to inf in float32 unless the row maximum is
    # subtracted first (torch.softmax does this for you).
    q, k = 100 * randn(2, 6, 16, seed=1, dtype=torch.float32), 100 * randn(2, 6, 16, seed=2, dtype=torch.float32)
    v = randn(2, 6, 4, seed=3, dtype=torch.float32)
    got = exercise.attention(q, k, v, exercise.causal_mask(6))
    assert torch.isfinite(got).all(), "attention gave inf/nan for large scores: is the softmax stable?"
    expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=True).float()
    close(got, expected, atol=1e-5)


def test_future_tokens_do_not_leak(exercise):
    q, k, v = randn(1, 8, 4, seed=1), randn(1, 8, 4, seed=2), randn(1, 8, 4, seed=3)
    before = exercise.attention(q, k, v, exercise.causal_mask(8))
    k2, v2 = k.clone(), v.clone()
    k2[:, 5:], v2[:, 5:] = 1e3, -1e3  # change only the last three tokens
    after = exercise.attention(q, k2, v2, exercise.causal_mask(8))
    assert torch.equal(before[:, :5], after[:, :5]), "outputs at positions 0-4 changed when only tokens 5-7 did"


def test_attention_is_written_from_scratch(exercise, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("write attention with @ and torch.softmax, not F.scaled_dot_product_attention")

    monkeypatch.setattr(F, "scaled_dot_product_attention", forbidden)
    q = randn(1, 3, 4)
    exercise.attention(q, q, q, exercise.causal_mask(3))


# -- heads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch, length, channels, n_head", [(2, 5, 12, 3), (1, 1, 4, 1), (3, 4, 8, 8)])
def test_split_and_merge_heads(exercise, batch, length, channels, n_head):
    x = randn(batch, length, channels)
    # minilm.models.gpt.Attention: view as (B, T, H, D), then swap T and H.
    expected = x.view(batch, length, n_head, channels // n_head).transpose(1, 2)
    heads = exercise.split_heads(x, n_head)
    assert torch.equal(heads, expected), "head h should hold channels h*D .. (h+1)*D - 1 of every token"
    assert torch.equal(exercise.merge_heads(heads), x), "merge_heads(split_heads(x)) should give x back"
    assert torch.equal(exercise.merge_heads(heads * 2), x * 2)


# -- RoPE -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("head_dim, length, theta", [(2, 1, 1e4), (8, 16, 1e4), (64, 256, 1e4), (16, 100, 5e5)])
def test_rope_tables_match_the_package(exercise, head_dim, length, theta):
    cos, sin = exercise.rope_tables(head_dim, length, theta)
    expected_cos, expected_sin = package.rope_tables(head_dim, length, theta)
    assert cos.dtype == sin.dtype == torch.float32, f"return float32 tables, got {cos.dtype}"
    # float32 angles of up to `length` radians carry rounding errors of about length * 6e-8.
    close(cos, expected_cos, atol=5e-5)
    close(sin, expected_sin, atol=5e-5)


@pytest.mark.parametrize("shape", [(2, 3, 7, 8), (1, 1, 1, 2), (1, 4, 16, 64)], ids=str)
def test_apply_rope_matches_the_package(exercise, shape):
    cos, sin = package.rope_tables(shape[-1], shape[-2])
    x = randn(*shape, dtype=torch.float32)
    expected = package.apply_rope(x, cos, sin)
    got = exercise.apply_rope(x, cos, sin)
    adjacent = _adjacent_pairs_rope(x, cos, sin)
    if got.shape == expected.shape and shape[-1] > 2 and torch.allclose(got, adjacent, atol=1e-6):
        pytest.fail("you rotated adjacent channels (2i, 2i+1); the package pairs channel i with i + D/2")
    close(got, expected, atol=1e-6)
    # Without batch or head dimensions: (T, D) rotates the same way.
    close(exercise.apply_rope(x[0, 0], cos, sin), expected[0, 0], atol=1e-6)


def _adjacent_pairs_rope(x, cos, sin):
    """The other convention (RoPE paper, GPT-J): pair (2i, 2i+1). Only to recognise a common mix-up."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


def test_rope_makes_scores_depend_on_distance_only(exercise):
    cos, sin = exercise.rope_tables(16, 40)
    q, k = randn(1, 16, dtype=torch.float32, seed=1), randn(1, 16, dtype=torch.float32, seed=2)

    def score(query_position, key_position):
        at_query, at_key = slice(query_position, query_position + 1), slice(key_position, key_position + 1)
        rotated_q = exercise.apply_rope(q, cos[at_query], sin[at_query])
        rotated_k = exercise.apply_rope(k, cos[at_key], sin[at_key])
        return (rotated_q * rotated_k).sum().item()

    assert score(3, 1) == pytest.approx(score(30, 28), abs=1e-4), "q.k should depend only on the distance, 2 here"
    assert score(0, 0) == pytest.approx((q * k).sum().item(), abs=1e-5), "position 0 is not rotated"
    assert exercise.apply_rope(q, cos[7:8], sin[7:8]).norm().item() == pytest.approx(q.norm().item(), rel=1e-5), (
        "a rotation keeps the length of the vector")


# -- RMSNorm --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 5, 16), (3, 64), (7,), (1, 1, 1)], ids=str)
@pytest.mark.parametrize("eps", [1e-5, 1e-6, 0.1])
def test_rms_norm_matches_the_package(exercise, shape, eps):
    norm = package.RMSNorm(shape[-1], eps=eps)
    with torch.no_grad():
        norm.weight.copy_(randn(shape[-1], seed=5, dtype=torch.float32))
    x = 3 * randn(*shape, dtype=torch.float32)
    with torch.no_grad():
        expected = norm(x)
    close(exercise.rms_norm(x, norm.weight.detach(), eps), expected, atol=1e-6, rtol=1e-5)


def test_rms_norm_hard_cases(exercise):
    weight = torch.ones(8)
    zeros = exercise.rms_norm(torch.zeros(2, 8), weight)
    assert torch.equal(zeros, torch.zeros(2, 8)), "a zero vector stays zero (eps keeps the division finite)"
    x = randn(4, 8, dtype=torch.float32)
    close(exercise.rms_norm(1e3 * x, weight, eps=0.0), exercise.rms_norm(x, weight, eps=0.0), atol=1e-5, rtol=1e-5)
    rms = exercise.rms_norm(x, weight).pow(2).mean(-1).sqrt()
    assert torch.allclose(rms, torch.ones(4), atol=1e-4), f"with weight 1, each output should have rms 1, got {rms}"


def test_rms_norm_is_written_from_scratch(exercise, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("write RMSNorm with tensor operations, not F.rms_norm / nn.RMSNorm")

    monkeypatch.setattr(F, "rms_norm", forbidden, raising=False)
    exercise.rms_norm(randn(2, 4), torch.ones(4, dtype=F64))


# -- the whole attention layer --------------------------------------------------------------------


@pytest.mark.parametrize("batch, length, channels, n_head", [(2, 9, 32, 4), (1, 1, 8, 1), (3, 16, 64, 2)])
@pytest.mark.parametrize("position", ["rope", "learned"])
def test_self_attention_matches_the_package(exercise, batch, length, channels, n_head, position):
    torch.manual_seed(0)
    config = package.GPTConfig.modern(vocab_size=16, block_size=length, n_embd=channels, n_head=n_head,
                                      position=position)
    layer = package.Attention(config, layer=0).double().eval()
    x = randn(batch, length, channels, seed=7)
    rope = package.rope_tables(config.head_dim, length) if position == "rope" else None
    with torch.no_grad():
        expected = layer(x, rope)
        got = exercise.self_attention(x, layer.c_attn.weight, layer.c_proj.weight, n_head, *(rope or ()))
    close(got, expected, atol=1e-10)


def test_self_attention_with_your_own_rope_tables(exercise):
    torch.manual_seed(1)
    config = package.GPTConfig.modern(vocab_size=16, block_size=12, n_embd=48, n_head=3)
    layer = package.Attention(config, layer=0).eval()
    x = randn(2, 12, 48, dtype=torch.float32)
    with torch.no_grad():
        expected = layer(x, package.rope_tables(config.head_dim, 12))
        got = exercise.self_attention(x, layer.c_attn.weight, layer.c_proj.weight, 3, *exercise.rope_tables(16, 12))
    close(got, expected, atol=1e-5)
