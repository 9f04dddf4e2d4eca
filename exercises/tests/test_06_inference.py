"""Exercise 06 checked against the package: minilm.inference.generate (top-p), minilm.models.gpt.KVCache,
minilm.inference.quantize and minilm.core.calculator.

The cache update also runs inside a real model: generation with your update must give the logits
of a full forward pass. Quantization is compared element by element (a rounding step may differ by
one where a value lies within float error of a half step), then by its error bound.
"""

from fractions import Fraction

import pytest
import torch

from minilm.core import calculator
from minilm.inference import quantize
from minilm.inference.generate import filtered_probs
from minilm.models.gpt import GPT, GPTConfig, KVCache

torch.set_num_threads(1)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# -- top-p --------------------------------------------------------------------------------------


@pytest.mark.parametrize("top_p", [0.05, 0.3, 0.5, 0.9, 0.99])
def test_top_p_keeps_the_tokens_minilm_keeps(exercise, top_p):
    logits = 2 * randn(6, 50, seed=1)
    got = exercise.top_p_filter(logits, top_p)
    assert isinstance(got, torch.Tensor) and got.shape == logits.shape, "return the logits' shape (B, V)"
    expected = filtered_probs(logits, top_p=top_p)
    kept, expected_kept = torch.isfinite(got), expected > 0
    assert torch.equal(kept, expected_kept), (
        f"top_p={top_p}: you keep {kept.sum(-1).tolist()} tokens per row, minilm keeps {expected_kept.sum(-1).tolist()}")
    assert torch.equal(got[kept], logits[kept]), "kept logits must be returned unchanged, in their places"
    assert (got[~kept] == float("-inf")).all(), "dropped tokens get -inf"
    torch.testing.assert_close(got.softmax(-1), expected)


def test_top_p_always_keeps_the_most_likely_token_and_leaves_the_input_alone(exercise):
    logits = torch.tensor([[0.0, 9.0, 1.0], [5.0, 5.5, -3.0]])
    before = logits.clone()
    got = exercise.top_p_filter(logits, 1e-6)
    assert torch.isfinite(got).sum(-1).tolist() == [1, 1] and got.argmax(-1).tolist() == [1, 1]
    assert torch.equal(logits, before), "do not change the logits in place"
    assert torch.isfinite(exercise.top_p_filter(logits, 1.0)).all(), "top_p=1 keeps every token"
    flat = torch.zeros(1, 8)  # eight equally likely tokens: 0.5 needs exactly four of them
    assert torch.isfinite(exercise.top_p_filter(flat, 0.5)).sum().item() == 4


@pytest.mark.parametrize("top_p", [0.0, -0.5, 1.5])
def test_top_p_outside_0_1_is_a_value_error(exercise, top_p):
    with pytest.raises(ValueError):
        exercise.top_p_filter(randn(1, 5), top_p)


# -- the KV cache ---------------------------------------------------------------------------------

CONFIG = GPTConfig.modern(vocab_size=50, n_layer=2, n_embd=32, n_head=4, n_kv_head=2, block_size=16)


def test_kv_cache_update_matches_minilm_step_by_step(exercise):
    B, H, D, max_len = 2, CONFIG.kv_heads, CONFIG.head_dim, 12
    package = KVCache(CONFIG, B, max_len)
    cache_k, cache_v = torch.zeros(B, H, max_len, D), torch.zeros(B, H, max_len, D)
    start = 0
    for step, T in enumerate([5, 1, 1, 3, 1]):  # a prompt, then tokens one (or a few) at a time
        k, v = randn(B, H, T, D, seed=2 * step), randn(B, H, T, D, seed=2 * step + 1)
        keys, values = exercise.kv_cache_update(cache_k, cache_v, start, k, v)
        expected_keys, expected_values = package.update(0, start, k, v)
        assert keys.shape == expected_keys.shape, (
            f"after writing positions {start}..{start + T - 1} return all {start + T} positions so far, "
            f"shape {tuple(expected_keys.shape)}; got {tuple(keys.shape)}")
        assert torch.equal(keys, expected_keys) and torch.equal(values, expected_values)
        assert torch.equal(cache_k, package.k[0]) and torch.equal(cache_v, package.v[0]), "write into the cache in place"
        start += T
    assert keys.data_ptr() == cache_k.data_ptr(), "return a view of the cache (a slice), not a copy"


def test_kv_cache_refuses_to_write_past_its_end(exercise):
    cache_k, cache_v = torch.zeros(1, 2, 4, 8), torch.zeros(1, 2, 4, 8)
    exercise.kv_cache_update(cache_k, cache_v, 0, randn(1, 2, 3, 8), randn(1, 2, 3, 8))
    with pytest.raises(ValueError, match="4"):
        exercise.kv_cache_update(cache_k, cache_v, 3, randn(1, 2, 2, 8), randn(1, 2, 2, 8))


def test_a_model_decoding_with_your_cache_gives_the_full_forward_logits(exercise, monkeypatch):
    def update(self, layer, start, k, v):
        return exercise.kv_cache_update(self.k[layer], self.v[layer], start, k, v)

    monkeypatch.setattr(KVCache, "update", update)
    torch.manual_seed(0)
    model = GPT(CONFIG).eval()
    ids = torch.randint(0, CONFIG.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    cache = KVCache(CONFIG, 2, 12)
    with torch.no_grad():
        full, _ = model(ids)
        steps = [model(ids[:, :6], cache=cache, start=0)[0]]  # prefill, then one token at a time
        steps += [model(ids[:, t : t + 1], cache=cache, start=t)[0] for t in range(6, 12)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


# -- int8 quantization ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (64, 48)], ids=str)
def test_quantize_matches_minilm(exercise, shape):
    weight = randn(*shape, seed=4) * torch.logspace(-2, 1, shape[0])[:, None]
    q, scale = exercise.quantize_int8(weight)
    expected_q, expected_scale = quantize.quantize_int8(weight)
    assert isinstance(q, torch.Tensor) and q.dtype == torch.int8, f"q must be torch.int8, got {getattr(q, 'dtype', q)}"
    assert q.shape == weight.shape and scale.shape == (shape[0],), "q: same shape as weight; scale: one per row"
    torch.testing.assert_close(scale.float(), expected_scale, rtol=1e-6, atol=0)
    assert (q.int() - expected_q.int()).abs().max() <= 1, "q = round(weight / scale), row by row"
    assert (q.int() != expected_q.int()).float().mean() < 0.01
    assert q.int().abs().max() <= 127, "q stays in -127..127"
    error = (exercise.dequantize_int8(q, scale) - weight).abs()
    assert (error <= scale[:, None] / 2 * (1 + 1e-5)).all(), "each weight is within half a step of its row's scale"


def test_dequantize_matches_minilm(exercise):
    q = torch.randint(-127, 128, (6, 9), generator=torch.Generator().manual_seed(0), dtype=torch.int8)
    scale = torch.rand(6, generator=torch.Generator().manual_seed(1))
    got = exercise.dequantize_int8(q, scale)
    assert got.dtype == torch.float32, f"return float32, got {got.dtype}"
    torch.testing.assert_close(got, quantize.dequantize_int8(q, scale))


def test_quantize_handles_zero_rows_and_refuses_other_shapes(exercise):
    weight = torch.stack([torch.zeros(5), torch.arange(5.0)])
    q, scale = exercise.quantize_int8(weight)
    assert scale[0].item() == 1.0 and (q[0] == 0).all(), "a row of zeros: scale 1, q all 0 (no division by 0)"
    assert q[1].tolist() == [0, 32, 64, 95, 127]
    with pytest.raises(ValueError):
        exercise.quantize_int8(torch.ones(4))
    with pytest.raises(ValueError):
        exercise.quantize_int8(torch.ones(2, 2, 2))


def test_your_quantization_inside_a_model_keeps_its_logits(exercise):
    torch.manual_seed(0)
    model = GPT(CONFIG).eval()
    small = quantize.quantize_model(model)
    with torch.no_grad():  # put your int8 weights into minilm's quantized layers
        for module in small.modules():
            if isinstance(module, quantize.Int8Linear):
                float_weight = module.dequantized_weight()
                module.weight, module.scale = exercise.quantize_int8(float_weight)
    ids = torch.randint(0, CONFIG.vocab_size, (1, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, small_logits = model(ids)[0], small(ids)[0]
    assert (small_logits - logits).abs().max() < 0.02 * logits.abs().max()


# -- the safe calculator ----------------------------------------------------------------------------

VALID = ["1 + 2 * 3", "(1 + 2) * 3", "-4 + 10", "7 / 2", "12 × 3 ÷ 4", "  42 ", "2.5 * 2", "0.1 + 0.2",
         "-(-(3))", "+5 - -5", "((((7))))", "100 / 8 / 5", "1 - 2 - 3", "2 * (3 + 4) / (5 - 1)",
         "999999999999 * 999999999999", "1 / 3 + 1 / 6"]


@pytest.mark.parametrize("expression", VALID)
def test_calculator_matches_minilm(exercise, expression):
    got = exercise.evaluate(expression)
    expected = calculator.evaluate(expression)
    assert got == expected and isinstance(got, Fraction), f"{expression!r}: got {got!r}, minilm gives {expected!r}"


FORBIDDEN = [
    "__import__('os').system('ls')",  # a call
    "x + 1",  # a name
    "(1).real",  # an attribute
    "2 ** 100000",  # power: a huge number in a few characters
    "2 ** 3",  # power, even small
    "1 / 0",
    "1 / (2 - 2)",
    "-" * 50 + "1",  # nested too deeply
    "9" * 40,  # a number too large
    "10000000000000000 * 10000000000000000",  # a result too large
    "1 +",
    "",
    "1" * 300,  # too long
    "[1, 2]",
    "'a' + 'b'",
    "True + 1",
    "1j * 2",
    "1 if 2 else 3",
    "lambda: 1",
    "(1, 2)",
    "1 < 2",
    "7 // 2",
    "7 % 2",
    "[x for x in ()]",
]


@pytest.mark.parametrize("expression", FORBIDDEN, ids=range(len(FORBIDDEN)))
def test_calculator_refuses_what_minilm_refuses(exercise, expression):
    with pytest.raises(calculator.CalculatorError):
        calculator.evaluate(expression)  # the package refuses it ...
    with pytest.raises(ValueError):  # ... and so must you, with a ValueError
        exercise.evaluate(expression)


def test_calculator_never_calls_eval(exercise, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("never eval or exec text a model wrote: walk the syntax tree instead")

    # Names in your module's globals shadow the builtins, so this catches eval(...) and exec(...) there.
    monkeypatch.setattr(exercise, "eval", forbidden, raising=False)
    monkeypatch.setattr(exercise, "exec", forbidden, raising=False)
    assert exercise.evaluate("(2 + 3) * 4") == 20
