"""The inference engine: the KV cache and batching change nothing but speed; sampling filters keep
what they promise; streaming is UTF-8 safe; calculator calls are answered, bad ones with an error."""

import math
from fractions import Fraction

import pytest
import torch

from minilm.inference.generate import (CalculatorTool, calculator_result, complete, filtered_probs, format_number, generate,
                                       generate_tokens, sample_next, stream)
from minilm.models.gpt import GPT, GPTConfig
from minilm.text.tokenizer import CALC_END, CALC_START, RESULT_END, RESULT_START

torch.set_num_threads(1)

SHAPE = dict(vocab_size=40, n_layer=2, n_embd=32, n_head=4, block_size=24)
VARIANTS = {
    "gpt2": GPTConfig.gpt2(**SHAPE),  # learned positions: each row's positions must count from its own start
    "modern": GPTConfig.modern(**SHAPE),  # RoPE
    "modern-gqa": GPTConfig.modern(**SHAPE, n_kv_head=2, qk_norm=True),  # RoPE + grouped-query attention
}
MIXED = [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10, 11, 12, 13], [14]]  # prompts of different lengths


def sharp(model, scale=6.0):
    """At init a tiny model mostly repeats its input token's favourite; larger weights make its tokens
    depend on the context, so a wrong mask or wrong positions change them."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(scale)
    return model.eval()


@pytest.fixture(scope="module", params=list(VARIANTS))
def model(request):
    torch.manual_seed(0)
    return sharp(GPT(VARIANTS[request.param]))


# -- the KV cache and batching ------------------------------------------------------------------


def test_cache_gives_the_same_tokens_as_recomputing(model):
    for prompts in ([[1, 2, 3, 4], [5, 6, 7, 8]], MIXED):
        assert generate(model, prompts, 12) == generate(model, prompts, 12, use_cache=False)
        sampled = dict(temperature=1.0, seed=3)
        assert generate(model, prompts, 12, **sampled) == generate(model, prompts, 12, use_cache=False, **sampled)


def test_a_prompt_alone_gives_the_same_tokens_as_in_a_mixed_batch(model):
    together = generate(model, MIXED, 10)
    alone = [generate(model, [p], 10)[0] for p in MIXED]
    assert together == alone
    assert len({tuple(t) for t in together}) > 1  # not a model that ignores its input


def test_the_engine_reads_the_logits_of_a_full_forward(model):
    """Greedy tokens from the cached, padded engine = argmax of full forward passes, step by step."""
    for prompt, tokens in zip(MIXED, generate(model, MIXED, 8)):
        sequence = list(prompt)
        for token in tokens:
            with torch.no_grad():
                logits, _ = model(torch.tensor([sequence]))
            assert token == int(logits[0, -1].argmax())
            sequence.append(token)


def test_past_the_context_the_window_slides(model):
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]]  # up to 40 positions > block_size 24
    out = generate(model, prompts, 30)
    assert [len(o) for o in out] == [30, 30]
    assert out == generate(model, prompts, 30, use_cache=False)
    assert out == [generate(model, [p], 30)[0] for p in prompts]


def test_stop_tokens_end_a_row_and_the_others_go_on(model):
    first = generate(model, [[1, 2]], 1)[0][0]
    out = generate(model, [[1, 2], [7, 8, 9]], 10, stop_ids=(first,))
    assert out[0] == [first]
    assert len(out[1]) == 10 or out[1][-1] == first


def test_token_iterator_yields_every_row_each_step(model):
    steps = list(generate_tokens(model, MIXED, 5))
    assert len(steps) == 5 and all(len(s) == len(MIXED) for s in steps)
    assert [[s[row] for s in steps] for row in range(len(MIXED))] == generate(model, MIXED, 5)


def test_generation_leaves_the_model_in_training_mode_if_it_was():
    model = GPT(VARIANTS["modern"]).train()
    pieces = generate_tokens(model, [[1, 2]], 5)
    next(pieces)
    pieces.close()  # a reader that stops early
    assert model.training


# -- sampling ------------------------------------------------------------------------------------


def test_greedy_equals_top_k_1_tiny_top_p_and_min_p_1(model):
    prompt = [[3, 1, 4, 1, 5]]
    greedy = generate(model, prompt, 8)
    assert generate(model, prompt, 8, temperature=1.0, top_k=1, seed=0) == greedy
    assert generate(model, prompt, 8, temperature=1.0, top_p=1e-6, seed=0) == greedy
    assert generate(model, prompt, 8, temperature=1.0, min_p=1.0, seed=0) == greedy


def test_seeded_sampling_is_reproducible_and_seeds_differ(model):
    prompt = [[9, 9, 9]]
    a = generate(model, prompt, 16, temperature=1.5, seed=1)
    assert a == generate(model, prompt, 16, temperature=1.5, seed=1)
    assert any(generate(model, prompt, 16, temperature=1.5, seed=s) != a for s in range(2, 6))


PROBS = torch.tensor([[0.5, 0.3, 0.12, 0.05, 0.03]])


def test_filters_keep_the_tokens_they_promise():
    logits = PROBS.log()
    assert torch.allclose(filtered_probs(logits), PROBS, atol=1e-6)  # no filter: the model's distribution
    assert torch.allclose(filtered_probs(logits, top_k=2), torch.tensor([[0.625, 0.375, 0, 0, 0]]), atol=1e-6)
    # top-p 0.85: 0.5 + 0.3 = 0.8 is not enough, the third token is needed, the fourth is not
    assert torch.allclose(filtered_probs(logits, top_p=0.85), torch.tensor([[0.5, 0.3, 0.12, 0, 0]]) / 0.92, atol=1e-6)
    # min-p 0.2: keep p >= 0.2 * 0.5 = 0.1
    assert torch.allclose(filtered_probs(logits, min_p=0.2), torch.tensor([[0.5, 0.3, 0.12, 0, 0]]) / 0.92, atol=1e-6)
    assert torch.allclose(filtered_probs(logits, min_p=0.0), PROBS, atol=1e-6)
    assert filtered_probs(logits, temperature=0).tolist() == [[1.0, 0, 0, 0, 0]]


def test_temperature_sharpens_and_flattens():
    logits = PROBS.log()
    cold, hot = filtered_probs(logits, temperature=0.5), filtered_probs(logits, temperature=2.0)
    expected_cold = PROBS**2 / (PROBS**2).sum()
    assert torch.allclose(cold, expected_cold, atol=1e-6)

    def entropy(p):
        return -(p * p.log()).sum().item()
    assert entropy(cold) < entropy(PROBS) < entropy(hot) < math.log(5)


def test_min_p_follows_the_models_confidence():
    """Same min_p, a confident and a flat distribution: the flat one keeps more tokens."""
    confident = torch.tensor([[0.9, 0.05, 0.03, 0.02]]).log()
    flat = torch.tensor([[0.3, 0.27, 0.23, 0.2]]).log()
    kept = [(filtered_probs(x, min_p=0.1) > 0).sum().item() for x in (confident, flat)]
    assert kept == [1, 4]


def test_samples_follow_the_filtered_distribution():
    logits = PROBS.log().repeat(20_000, 1)
    draws = sample_next(logits, 1.0, min_p=0.2, generator=torch.Generator().manual_seed(0))
    frequencies = torch.bincount(draws, minlength=5).float() / len(draws)
    expected = filtered_probs(PROBS.log(), min_p=0.2)[0]
    assert frequencies[3:].sum() == 0 and torch.allclose(frequencies, expected, atol=0.015)
    top = sample_next(logits, 1.0, top_k=2, generator=torch.Generator().manual_seed(0))
    assert set(top.tolist()) == {0, 1}


@pytest.mark.parametrize("bad, message", [
    (dict(prompts=[[]]), "non-empty"),
    (dict(prompts=[[1], []]), "non-empty"),
    (dict(prompts=[[1, 99]]), r"token ids must be in \[0, 40\)"),
    (dict(prompts=[[1.7, 2.2]]), "whole numbers; got 1.7"),
    (dict(prompts=[[1, float("nan")]]), "whole numbers; got nan"),
    (dict(prompts=[1, 2]), "each a list of token ids"),
    (dict(prompts=[[1]], max_new_tokens=-1), "max_new_tokens=-1"),
    (dict(prompts=[[1]], temperature=-1), "temperature=-1"),
    (dict(prompts=[[1]], temperature=float("nan")), "temperature=nan"),
    (dict(prompts=[[1]], temperature=1, top_p=0), "top_p=0"),
    (dict(prompts=[[1]], temperature=1, top_p=1.5), "top_p=1.5"),
    (dict(prompts=[[1]], temperature=1, top_k=0), "top_k=0"),
    (dict(prompts=[[1]], temperature=1, top_k=2.5), "top_k=2.5"),
    (dict(prompts=[[1]], temperature=1, min_p=-0.1), "min_p=-0.1"),
    (dict(prompts=[[1]], temperature=0, min_p=2), "min_p=2"),
])
def test_bad_arguments_say_what_is_wrong(model, bad, message):
    with pytest.raises(ValueError, match=message):
        generate(model, **{"max_new_tokens": 2, **bad})


# -- text: complete and stream ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_model(small_tokenizer):
    torch.manual_seed(0)
    return GPT(GPTConfig.modern(vocab_size=small_tokenizer.vocab_size, n_layer=1, n_embd=32, n_head=2,
                                block_size=64)).eval()


def test_whole_number_floats_are_token_ids(model):
    assert generate(model, [[1.0, 2.0]], 3) == generate(model, [[1, 2]], 3)


def test_complete_refuses_one_bare_string(small_tokenizer, text_model):
    with pytest.raises(ValueError, match="prompts is one string"):
        complete(text_model, small_tokenizer, "To be", max_new_tokens=2)


def test_complete_batches_prompts_of_any_length(small_tokenizer, text_model):
    prompts = ["To be", "or not to be, that", "is the question:", "To be"]
    together = complete(text_model, small_tokenizer, prompts, max_new_tokens=6)
    alone = [complete(text_model, small_tokenizer, [p], max_new_tokens=6)[0] for p in prompts]
    assert together == alone and together[0] == together[3]
    assert complete(text_model, small_tokenizer, prompts, max_new_tokens=6, batch_size=3) == together
    cut = complete(text_model, small_tokenizer, prompts, max_new_tokens=6, stop="e")
    assert all("e" not in text for text in cut)


@pytest.mark.parametrize("sampling", [dict(), dict(temperature=1.0, top_p=0.9, seed=4), dict(stop="e")])
def test_stream_pieces_join_to_the_completion(small_tokenizer, text_model, sampling):
    pieces = list(stream(text_model, small_tokenizer, "KING.\nWhat", max_new_tokens=20, **sampling))
    assert "".join(pieces) == complete(text_model, small_tokenizer, ["KING.\nWhat"], max_new_tokens=20, **sampling)[0]
    assert len(pieces) > 1


class ScriptedModel(torch.nn.Module):
    """A stand-in model that writes a fixed script: row r greedily emits ``scripts[key][step]``, where
    ``key`` is the last token of its prompt. It records the token it was fed at every step, so a
    test can see what the engine forced into the sequence."""

    def __init__(self, vocab_size: int, scripts: dict[int, list[int]]):
        super().__init__()
        self.config = GPTConfig.modern(vocab_size=vocab_size, n_layer=1, n_embd=8, n_head=2, block_size=256)
        self.weight = torch.nn.Parameter(torch.zeros(1))  # the engine reads device and dtype from it
        self.scripts, self.fed, self.rows = scripts, [], None

    def forward(self, idx, targets=None, cache=None, start=0, pad=None, last_only=False):
        if self.rows is None:  # the prefill: which script each row follows
            self.rows = [self.scripts[int(last)] for last in idx[:, -1]]
        else:
            self.fed.append(idx[:, -1].tolist())
        step = len(self.fed)
        logits = torch.zeros(*idx.shape, self.config.vocab_size)
        for row, script in enumerate(self.rows):
            logits[row, -1, script[min(step, len(script) - 1)]] = 10.0
        return (logits[:, -1:] if last_only else logits), None


def _ids(tokenizer, text):
    return tokenizer.encode(text, allowed_special="all")


def test_utf8_is_never_cut_in_half(small_tokenizer):
    text = "café ⏎ 🤗!"
    byte_ids = list(text.encode("utf-8"))  # one byte-level token per byte: characters span tokens
    prompt = _ids(small_tokenizer, "Hi")
    model = ScriptedModel(small_tokenizer.vocab_size, {prompt[-1]: byte_ids})
    pieces = list(stream(model, small_tokenizer, "Hi", max_new_tokens=len(byte_ids)))
    assert "".join(pieces) == text
    assert all("\ufffd" not in piece for piece in pieces) and len(pieces) == len(text)


def test_stream_holds_back_a_stop_string_split_over_tokens(small_tokenizer):
    prompt = _ids(small_tokenizer, "Hi")
    script = [i for piece in ["ab", "c#", "#", "d"] for i in _ids(small_tokenizer, piece)]
    model = ScriptedModel(small_tokenizer.vocab_size, {prompt[-1]: script})
    assert "".join(stream(model, small_tokenizer, "Hi", max_new_tokens=len(script), stop="##")) == "abc"
    model = ScriptedModel(small_tokenizer.vocab_size, {prompt[-1]: script})
    assert "".join(stream(model, small_tokenizer, "Hi", max_new_tokens=len(script), stop="#d")) == "abc#"


# -- the calculator tool ---------------------------------------------------------------------------


@pytest.mark.parametrize("expression, result", [
    ("123+456", "579"), ("12 * (3 - 5)", "-24"), ("7 / 2", "3.5"), ("-7 / 2", "-3.5"), ("2 / 3", "0.666667"),
    ("1 / 8", "0.125"), ("10 / 5", "2"), ("1/0", "error: division by zero"),
    ("2 ** 10", "error: not allowed in arithmetic: power"),
    ("__import__('os')", "error: not allowed in arithmetic: Call"),
    ("1e999", "error: number too large"), ("12 +", "error: not an arithmetic expression: '12 +'"),
])
def test_calculator_results_are_numbers_or_error_strings(expression, result):
    assert calculator_result(expression) == result


def test_format_number_is_exact_for_integers_and_rounds_fractions():
    assert format_number(Fraction(10**25)) == "1" + "0" * 25
    assert format_number(Fraction(1, 3), places=2) == "0.33"
    assert format_number(Fraction(-5, 1000), places=2) == "0"  # -0.005 rounds (to even) to 0, never "-0"
    assert format_number(Fraction(-1, 3), places=2) == "-0.33"


def test_calculator_calls_are_answered_and_generation_goes_on(small_tokenizer):
    tok = small_tokenizer
    newline = _ids(tok, "\n")
    calc, bad = _ids(tok, f"{CALC_START}12+30{CALC_END}"), _ids(tok, f"{CALC_START}1/0{CALC_END}")
    result_42 = [tok.special_id(RESULT_START), *tok.encode("42"), tok.special_id(RESULT_END)]
    result_err = [tok.special_id(RESULT_START), *tok.encode("error: division by zero"), tok.special_id(RESULT_END)]
    after = _ids(tok, " ok") + newline
    prompts = ["Sum", "Ratio", "Plain"]
    keys = [_ids(tok, p)[-1] for p in prompts]
    assert len(set(keys)) == 3
    # While a result is forced, the script asks for a stop token: forcing must win, and not stop the row.
    scripts = {keys[0]: calc + newline * len(result_42) + after, keys[1]: bad + newline * len(result_err) + after,
               keys[2]: _ids(tok, " no call here") + newline}
    model = ScriptedModel(tok.vocab_size, scripts)
    out = generate(model, [_ids(tok, p) for p in prompts], 40, stop_ids=tuple(newline), tools=CalculatorTool(tok))
    assert out[0] == calc + result_42 + after
    assert out[1] == bad + result_err + after
    assert out[2] == _ids(tok, " no call here") + newline
    # What the model was fed on row 0: its own call, then the forced result, then its own text.
    fed_row0 = [step[0] for step in model.fed]  # the batch goes on while row 1 finishes
    assert fed_row0[: len(out[0]) - 1] == (calc + result_42 + after)[:-1]
    untooled = generate(ScriptedModel(tok.vocab_size, scripts), [_ids(tok, "Sum")], 40, stop_ids=tuple(newline))
    assert untooled == [calc + newline[:1]]  # without tools the model's own next token is taken


def test_complete_and_stream_with_tools_show_the_call(small_tokenizer):
    """The call midtraining evaluations make: complete(..., stop="\\n", tools=True)."""
    tok = small_tokenizer
    call = _ids(tok, f" {CALC_START}123+456{CALC_END}")
    n_result = len(_ids(tok, f"{RESULT_START}579{RESULT_END}"))
    tail = _ids(tok, " so 579\nQ:")

    def make_model():
        return ScriptedModel(tok.vocab_size, {_ids(tok, "A:")[-1]: call + [0] * n_result + tail})

    expected = f" {CALC_START}123+456{CALC_END}{RESULT_START}579{RESULT_END} so 579"
    assert complete(make_model(), tok, ["A:"], max_new_tokens=40, stop="\n", tools=True) == [expected]
    assert "".join(stream(make_model(), tok, "A:", max_new_tokens=40, stop="\n", tools=True)) == expected
    without = complete(make_model(), tok, ["A:"], max_new_tokens=40, stop="\n")[0]
    assert RESULT_START not in without  # no tools: nothing is forced


def test_a_call_in_the_prompt_is_answered_too(small_tokenizer):
    tok = small_tokenizer
    prompt = f"Q: 6*7\nA: {CALC_START}6*7"
    model = ScriptedModel(tok.vocab_size, {_ids(tok, prompt)[-1]: [tok.special_id(CALC_END)] + [0] * 8})
    text = complete(model, tok, [prompt], max_new_tokens=5, tools=True)[0]  # "42" is two tokens (digits split)
    assert text == f"{CALC_END}{RESULT_START}42{RESULT_END}"
