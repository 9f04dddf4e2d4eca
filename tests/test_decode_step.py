"""The flat decode step computes exactly what GPT.forward computes for one new token per row: the
same logits (torch.equal, not allclose) and the same cache contents, for every model switch, for
padded batches and for int8 layers; the engine uses it and still matches uncached generation."""

import pytest
import torch

import minilm.inference.generate as generate_module
from minilm.inference.timing import decode_step_seconds
from minilm.inference.decode_step import DecodeStep, applies_to
from minilm.inference.generate import generate
from minilm.stages.midtrain import ToolMaskedGPT
from minilm.models.gpt import GPT, GPTConfig, KVCache
from minilm.inference.quantize import quantize_model

torch.set_num_threads(1)

SHAPE = dict(vocab_size=40, n_layer=2, n_embd=32, n_head=4, block_size=24)
VARIANTS = {
    "gpt2": GPTConfig.gpt2(**SHAPE),  # LayerNorm with biases, GELU, learned positions
    "gpt2-exact-gelu": GPTConfig.gpt2(**SHAPE, gelu_approximate="none"),
    "modern": GPTConfig.modern(**SHAPE),  # RMSNorm, SwiGLU, RoPE, tied
    "modern-gqa-qknorm": GPTConfig.modern(**SHAPE, n_kv_head=2, qk_norm=True),
    "modern-mqa-untied-bias": GPTConfig.modern(**SHAPE, n_kv_head=1, tie_embeddings=False, bias=True),
}


def sharp(model, scale=6.0):
    """Larger weights than at init, so that a wrong position, mask or head would change the logits."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale if p.dim() == 2 else 1.0).add_(0.1 * torch.randn_like(p) if p.dim() == 1 else 0.0)
    return model.eval()


@pytest.fixture(params=list(VARIANTS))
def model(request):
    torch.manual_seed(0)
    return sharp(GPT(VARIANTS[request.param]))


def decode_both_ways(model, prompts: torch.Tensor, pad, steps: int):
    """Prefill ``prompts`` into two caches, then feed the same tokens through ``forward`` and the flat
    step; return both lists of logits and both caches."""
    B, T = prompts.shape
    dtype = next(model.parameters()).dtype
    caches = [KVCache(model.config, B, T + steps, dtype=dtype), KVCache(model.config, B, T + steps, dtype=dtype)]
    step = DecodeStep(model)
    slow, fast = [], []
    with torch.inference_mode():
        for cache in caches:
            model(prompts, cache=cache, start=0, pad=pad)
        tokens = torch.randint(0, model.config.vocab_size, (steps, B, 1), generator=torch.Generator().manual_seed(1))
        for i in range(steps):
            slow.append(model(tokens[i], cache=caches[0], start=T + i, pad=pad)[0])
            fast.append(step(tokens[i], caches[1], T + i, pad))
    return slow, fast, caches


@pytest.mark.parametrize("padded", [False, True])
def test_logits_and_cache_are_identical_to_forward(model, padded):
    prompts = torch.tensor([[0, 0, 3, 4, 5], [6, 7, 8, 9, 10], [0, 0, 0, 0, 11]])
    pad = torch.tensor([2, 0, 4]) if padded else None
    slow, fast, (slow_cache, fast_cache) = decode_both_ways(model, prompts, pad, steps=6)
    for a, b in zip(slow, fast):
        assert a.shape == b.shape == (3, 1, model.config.vocab_size)
        assert torch.equal(a, b)
    assert torch.equal(slow_cache.k, fast_cache.k) and torch.equal(slow_cache.v, fast_cache.v)
    assert not torch.equal(slow[0], slow[1])  # the steps differ: the test compares something


def test_int8_layers_run_as_their_modules():
    torch.manual_seed(0)
    int8 = quantize_model(sharp(GPT(VARIANTS["modern"])))
    slow, fast, _ = decode_both_ways(int8, torch.tensor([[1, 2, 3]]), None, steps=4)
    assert all(torch.equal(a, b) for a, b in zip(slow, fast))


def test_a_bfloat16_model_takes_the_norms_own_low_precision_path():
    torch.manual_seed(0)
    model = sharp(GPT(VARIANTS["modern-gqa-qknorm"])).to(torch.bfloat16)
    slow, fast, _ = decode_both_ways(model, torch.tensor([[1, 2, 3]]), None, steps=4)
    assert fast[0].dtype == torch.bfloat16 and all(torch.equal(a, b) for a, b in zip(slow, fast))


def test_the_engine_uses_the_flat_step_and_matches_recomputing(model, monkeypatch):
    calls = []
    original = DecodeStep.__call__

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DecodeStep, "__call__", counted)
    prompts = [[1, 2, 3, 4], [5, 6], [7]]
    cached = generate(model, prompts, 10)
    assert len(calls) == 9  # every step after the prefill
    assert cached == generate(model, prompts, 10, use_cache=False)
    assert generate(model, prompts, 10, temperature=1.0, seed=2) == generate(model, prompts, 10, temperature=1.0,
                                                                             seed=2, use_cache=False)


def test_a_model_with_its_own_forward_keeps_it(monkeypatch):
    torch.manual_seed(0)
    masked = ToolMaskedGPT(VARIANTS["modern"], result_start=1, result_end=2).eval()
    assert applies_to(GPT(VARIANTS["modern"])) and not applies_to(masked)
    with pytest.raises(TypeError, match="has its own"):
        DecodeStep(masked)
    monkeypatch.setattr(generate_module.DecodeStep, "__call__", lambda *a, **k: pytest.fail("flat step used"))
    assert len(generate(masked, [[1, 2]], 4)[0]) == 4


def test_bad_calls_say_what_is_wrong():
    model = GPT(VARIANTS["modern"]).eval()
    step, cache = DecodeStep(model), KVCache(model.config, 1)
    with pytest.raises(ValueError, match=r"one token per row, \(B, 1\); got shape \(1, 2\)"):
        step(torch.tensor([[1, 2]]), cache, 0)
    with pytest.raises(ValueError, match="exceed block_size=24"):
        step(torch.tensor([[1]]), cache, 24)


@pytest.mark.parametrize("idx, message", [
    (torch.tensor([[40]]), r"token ids must be in \[0, 40\); got 40\.\.40"),
    (torch.tensor([[3], [-1]]), r"token ids must be in \[0, 40\); got -1\.\.3"),
    (torch.tensor([[1.5]]), "tensor of integers, got torch.float32"),
    ([[1]], "tensor of integers, got list"),
])
def test_ids_outside_the_vocabulary_are_named_before_the_lookup(idx, message):
    model = GPT(VARIANTS["modern"]).eval()
    step = DecodeStep(model)
    with pytest.raises(ValueError, match=message):
        step(idx, KVCache(model.config, len(idx)), 0)


def test_decode_step_timing_times_both_paths_and_checks_its_window():
    model = GPT(VARIANTS["modern"]).eval()
    forward, flat = decode_step_seconds(model, prompt_tokens=4, steps=8, repeats=2)
    assert 0 < forward < 1 and 0 < flat < 1
    with pytest.raises(ValueError, match="must fit block_size=24"):
        decode_step_seconds(model, prompt_tokens=8, steps=20)
