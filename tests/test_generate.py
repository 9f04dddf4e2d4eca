"""Sampling: the KV cache changes nothing but speed; greedy, top-k, top-p and seeds behave."""

import pytest
import torch

from minilm.generate import complete, generate, sample_next
from minilm.model import GPT, GPTConfig


@pytest.fixture(scope="module", params=["modern", "gpt2"])
def model(request):
    torch.manual_seed(0)
    preset = GPTConfig.modern if request.param == "modern" else GPTConfig.gpt2
    return GPT(preset(vocab_size=40, n_layer=2, n_embd=32, n_head=4, block_size=24)).eval()


def test_cache_gives_the_same_tokens_as_recomputing(model):
    prompts = [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert generate(model, prompts, 12) == generate(model, prompts, 12, use_cache=False)
    sampled = dict(temperature=1.0, seed=3)
    assert generate(model, prompts, 12, **sampled) == generate(model, prompts, 12, use_cache=False, **sampled)


def test_past_the_context_the_window_slides(model):
    out = generate(model, [[1, 2, 3]], 30)  # 33 positions > block_size 24
    assert len(out[0]) == 30


def test_greedy_equals_top_k_1_and_tiny_top_p(model):
    prompt = [[3, 1, 4, 1, 5]]
    greedy = generate(model, prompt, 8)
    assert generate(model, prompt, 8, temperature=1.0, top_k=1, seed=0) == greedy
    assert generate(model, prompt, 8, temperature=1.0, top_p=1e-6, seed=0) == greedy


def test_seeded_sampling_is_reproducible_and_seeds_differ(model):
    prompt = [[9, 9, 9]]
    a = generate(model, prompt, 16, temperature=1.5, seed=1)
    assert a == generate(model, prompt, 16, temperature=1.5, seed=1)
    assert any(generate(model, prompt, 16, temperature=1.5, seed=s) != a for s in range(2, 6))


def test_top_k_and_top_p_keep_only_the_likely_tokens():
    logits = torch.tensor([[5.0, 4.0, 0.0, -1.0]]).repeat(500, 1)
    assert set(sample_next(logits, 1.0, top_k=2, generator=torch.Generator().manual_seed(0)).tolist()) == {0, 1}
    # probabilities ~ 0.72, 0.26, 0.01, 0.005: top_p=0.9 keeps the first two only
    assert set(sample_next(logits, 1.0, top_p=0.9, generator=torch.Generator().manual_seed(0)).tolist()) == {0, 1}


def test_stop_tokens_end_a_row(model):
    first = generate(model, [[1, 2]], 1)[0][0]
    assert generate(model, [[1, 2]], 10, stop_ids=(first,)) == [[first]]


@pytest.mark.parametrize("bad, message", [
    (dict(prompts=[[1, 2], [3]]), "equal length"),
    (dict(prompts=[[]]), "non-empty"),
    (dict(prompts=[[1]], temperature=-1), "temperature"),
    (dict(prompts=[[1]], temperature=1, top_p=0), "top_p"),
    (dict(prompts=[[1]], temperature=1, top_k=0), "top_k"),
])
def test_bad_arguments_say_what_is_wrong(model, bad, message):
    with pytest.raises(ValueError, match=message):
        generate(model, max_new_tokens=2, **bad)


def test_complete_batches_prompts_of_any_length(small_tokenizer):
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=small_tokenizer.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=64))
    prompts = ["To be", "or not to be, that", "is the question:", "To be"]
    together = complete(model, small_tokenizer, prompts, max_new_tokens=6)
    alone = [complete(model, small_tokenizer, [p], max_new_tokens=6)[0] for p in prompts]
    assert together == alone and together[0] == together[3]
    cut = complete(model, small_tokenizer, prompts, max_new_tokens=6, stop="e")
    assert all("e" not in text for text in cut)
