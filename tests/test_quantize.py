"""Int8 weight-only quantization: the rounding error stays within half a step of each row's own scale,
layers and whole models compute nearly what they did in fp32 at about a quarter of the bytes, the
input model is left alone, and bad input is refused with a message."""

import io

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from minilm.models.gpt import GPT, GPTConfig
from minilm.inference.quantize import (QMAX, Int8Embedding, Int8Linear, dequantize_int8, format_report, layer_bytes,
                                       model_size_bytes, quantization_report, quantize_int8, quantize_model,
                                       quantized_layer_bytes, quantized_layer_names)

torch.set_num_threads(1)

SHAPE = dict(vocab_size=96, n_layer=2, n_embd=48, n_head=4, block_size=32)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def tiny_model(style="modern", **overrides):
    torch.manual_seed(0)
    preset = GPTConfig.modern if style == "modern" else GPTConfig.gpt2
    return GPT(preset(**{**SHAPE, **overrides})).eval()


# -- quantize / dequantize --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (64, 48), (3, 1000)], ids=str)
def test_round_trip_error_is_at_most_half_a_step_per_element(shape):
    # Rows of very different sizes, as in trained models.
    weight = randn(*shape) * torch.logspace(-3, 2, shape[0])[:, None]
    q, scale = quantize_int8(weight)
    assert q.dtype == torch.int8 and q.shape == weight.shape
    assert scale.dtype == torch.float32 and scale.shape == (shape[0],)
    error = (dequantize_int8(q, scale) - weight).abs()
    bound = scale[:, None] / 2 * (1 + 1e-5)  # float32 division and rounding: a hair over exactly s/2
    assert (error <= bound).all(), f"worst excess {(error - scale[:, None] / 2).max().item():.3g}"


def test_each_output_channel_has_its_own_absmax_scale():
    weight = torch.stack([randn(40, seed=1) * 1000.0, randn(40, seed=2) * 0.001, torch.zeros(40)])
    q, scale = quantize_int8(weight)
    torch.testing.assert_close(scale[:2], weight[:2].abs().amax(dim=1) / QMAX)
    assert scale[2] == 1.0 and (q[2] == 0).all()  # an all-zero row: any scale is exact
    assert q[:2].abs().amax(dim=1).tolist() == [QMAX, QMAX]  # each row uses the whole range
    assert q.min() >= -QMAX
    # With one scale for the whole matrix the small row would round to all zeros; per channel it survives.
    per_tensor_scale = weight.abs().max() / QMAX
    assert (torch.round(weight[1] / per_tensor_scale) == 0).all()
    assert (q[1] != 0).sum() > 30
    relative = (dequantize_int8(q, scale)[1] - weight[1]).abs().max() / weight[1].abs().max()
    assert relative <= 0.5 / QMAX * (1 + 1e-5)


def test_quantization_is_exact_on_representable_weights():
    q = torch.randint(-QMAX, QMAX + 1, (6, 9), generator=torch.Generator().manual_seed(0), dtype=torch.int8)
    q[:, 0] = QMAX  # every row reaches the top of the range, so its scale is exactly the one below
    scale = torch.tensor([0.5, 0.25, 2.0, 1.0, 0.125, 4.0])
    again, again_scale = quantize_int8(dequantize_int8(q, scale))
    assert torch.equal(again, q) and torch.equal(again_scale, scale)


def test_bf16_weights_are_quantized_from_their_float_values():
    weight = randn(8, 16).to(torch.bfloat16)
    q, scale = quantize_int8(weight)
    assert ((dequantize_int8(q, scale) - weight.float()).abs() <= scale[:, None] / 2 * (1 + 1e-5)).all()


@pytest.mark.parametrize("bad, message", [
    (torch.ones(3), "2-D"),
    (torch.ones(2, 3, 4), "2-D"),
    (torch.ones(2, 3, dtype=torch.int64), "floating-point"),
    (torch.ones(0, 3), "empty"),
    (torch.tensor([[1.0, float("nan")]]), "inf or nan"),
    (torch.tensor([[1.0, float("inf")]]), "inf or nan"),
])
def test_bad_weights_are_refused_with_a_message(bad, message):
    with pytest.raises(ValueError, match=message):
        quantize_int8(bad)


def test_bad_quantized_tensors_are_refused():
    with pytest.raises(TypeError, match="torch.Tensor"):
        quantize_int8([[1.0, 2.0]])
    q = torch.zeros(3, 4, dtype=torch.int8)
    with pytest.raises(ValueError, match="one entry per row"):
        dequantize_int8(q, torch.ones(4))
    with pytest.raises(ValueError, match="2-D int8"):
        dequantize_int8(q.float(), torch.ones(3))
    with pytest.raises(ValueError, match="one entry per row"):
        Int8Linear(q, torch.ones(2))
    with pytest.raises(ValueError, match="scale holds NaN or inf"):
        Int8Linear(q, torch.tensor([1.0, float("nan"), 1.0]))
    with pytest.raises(ValueError, match=r"bias must have one entry per output channel, shape \(3,\); got \(5,\)"):
        Int8Linear(q, torch.ones(3), bias=torch.ones(5))
    with pytest.raises(TypeError, match="nn.Linear"):
        Int8Linear.from_linear(nn.Conv1d(2, 2, 1))


# -- Int8Linear ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("rows", [1, 5, 200], ids=lambda r: f"{r}rows")  # both ways of applying the scale
def test_int8_linear_is_close_to_the_fp32_layer(bias, rows):
    torch.manual_seed(0)
    linear = nn.Linear(64, 24, bias=bias)
    layer = Int8Linear.from_linear(linear)
    x = randn(rows, 64, seed=3)
    got, exact = layer(x), linear(x)
    # It computes exactly the dequantized layer (to float rounding) ...
    torch.testing.assert_close(got, F.linear(x, layer.dequantized_weight(), linear.bias), atol=1e-5, rtol=1e-5)
    # ... which differs from fp32 by at most sum_i |x_i| * scale_j / 2 on output j.
    bound = x.abs().sum(dim=1, keepdim=True) * layer.scale / 2
    assert ((got - exact).abs() <= bound + 1e-5).all()
    assert (got - exact).abs().max() < 0.05 * exact.abs().max()
    assert layer.weight.dtype == torch.int8 and (not bias or torch.equal(layer.bias, linear.bias.detach()))


def test_int8_linear_keeps_leading_dimensions_and_bf16_inputs():
    layer = Int8Linear.from_linear(nn.Linear(16, 8))
    x = randn(2, 3, 16)
    assert layer(x).shape == (2, 3, 8)
    assert layer(x.to(torch.bfloat16)).dtype == torch.bfloat16


# -- whole models ----------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["modern", "gpt2"])
def test_a_quantized_model_gives_nearly_the_same_logits_and_leaves_the_original_alone(style):
    model = tiny_model(style)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small = quantize_model(model)
    ids = torch.randint(0, SHAPE["vocab_size"], (2, 20), generator=torch.Generator().manual_seed(0))
    logits, small_logits = model(ids)[0], small(ids)[0]
    error = (small_logits - logits).abs().max().item()
    assert error < 0.02 * logits.abs().max().item(), error
    assert error > 0  # it really is a different, quantized model
    assert (small_logits.argmax(-1) == logits.argmax(-1)).float().mean() > 0.9
    # The original is untouched: same weights, still float Linear layers.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(isinstance(m, (Int8Linear, Int8Embedding)) for m in model.modules())
    names = quantized_layer_names(small)
    assert len(names) == len([m for m in model.modules() if isinstance(m, nn.Linear)]) and "lm_head" in names


def test_the_tied_embedding_and_head_share_one_int8_matrix():
    model = tiny_model()
    small = quantize_model(model)
    assert isinstance(small.wte, Int8Embedding) and small.wte.weight is small.lm_head.weight
    ids = torch.tensor([[0, 5, 95]])
    torch.testing.assert_close(small.wte(ids), dequantize_int8(small.lm_head.weight, small.lm_head.scale)[ids])
    # Stored once: the whole model shrinks to about a quarter (norms stay in fp32).
    assert model_size_bytes(small) < 0.3 * model_size_bytes(model)

    kept = quantize_model(model, skip=["lm_head"])
    assert isinstance(kept.lm_head, nn.Linear) and kept.lm_head.weight is kept.wte.weight
    assert isinstance(kept.blocks[0].attn.c_attn, Int8Linear)
    untied = quantize_model(tiny_model(tie_embeddings=False))
    assert isinstance(untied.wte, nn.Embedding) and isinstance(untied.lm_head, Int8Linear)


def test_skip_patterns_keep_layers_in_float():
    model = tiny_model()
    small = quantize_model(model, skip=("blocks.0.*", "lm_head"))
    assert isinstance(small.blocks[0].mlp.c_fc, nn.Linear) and isinstance(small.blocks[1].mlp.c_fc, Int8Linear)
    assert all(name.startswith("blocks.1.") for name in quantized_layer_names(small))


def test_quantized_layers_take_at_most_30_percent_of_their_fp32_bytes():
    model = tiny_model()
    small = quantize_model(model)
    fp32, int8 = quantized_layer_bytes(model, small)
    assert int8 / fp32 <= 0.30
    # Exactly one byte per weight and four per row's scale, against four per weight.
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    rows = sum(m.weight.shape[0] for m in model.modules() if isinstance(m, nn.Linear))
    assert fp32 == 4 * weights and int8 == weights + 4 * rows
    assert layer_bytes(model, ["lm_head"]) == 4 * SHAPE["vocab_size"] * SHAPE["n_embd"]
    assert model_size_bytes(nn.Linear(10, 4)) == 176


def test_a_quantized_model_generates_and_saves():
    from minilm.inference.generate import generate

    model = tiny_model()
    small = quantize_model(model)
    out = generate(small, [[1, 2, 3], [4, 5]], 6)
    assert [len(row) for row in out] == [6, 6]
    buffer = io.BytesIO()
    torch.save(small.state_dict(), buffer)
    buffer.seek(0)
    again = quantize_model(tiny_model())  # same shapes; load the saved int8 state into it
    again.load_state_dict(torch.load(buffer))
    assert again.lm_head.weight.dtype == torch.int8
    ids = torch.tensor([[3, 1, 4, 1, 5]])
    torch.testing.assert_close(again(ids)[0], small(ids)[0])


@pytest.mark.parametrize("args, error, message", [
    (("not a model",), TypeError, "nn.Module"),
    ((nn.Sequential(nn.ReLU()),), ValueError, "no nn.Linear layers"),
    ((nn.Linear(2, 2), "lm_head"), ValueError, "list of module-name patterns"),
    ((nn.Linear(2, 2), None), ValueError, "list of module-name patterns"),
    ((nn.Sequential(nn.Linear(2, 2)), ["lm_haed"]), ValueError, "'lm_haed' matches no linear layer"),
])
def test_quantize_model_refuses_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        quantize_model(*args)


def test_sizes_need_a_quantized_model_and_linear_layers():
    model = tiny_model()
    with pytest.raises(ValueError, match="no Int8Linear"):
        quantized_layer_bytes(model, model)
    with pytest.raises(ValueError, match="not a linear layer"):
        layer_bytes(model, ["ln_f"])


# -- the report ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_inputs():
    tokens = np.random.default_rng(0).integers(0, SHAPE["vocab_size"], 2_000)
    byte_lengths = np.ones(SHAPE["vocab_size"], dtype=np.int64)
    return tiny_model(), tokens, byte_lengths


def test_report_compares_fp32_ours_and_pytorch(report_inputs):
    from minilm.models.train import evaluate

    model, tokens, byte_lengths = report_inputs
    rows = quantization_report(model, tokens, byte_lengths, new_tokens=8, repeats=1)
    assert [r["method"] for r in rows] == ["fp32", "int8 (minilm)", "int8 dynamic (PyTorch)"]
    fp32, ours, torch_row = rows
    assert fp32["size_ratio"] == 1.0 and fp32["bpb_change"] == 0.0
    assert fp32["val_bpb"] == pytest.approx(evaluate(model, tokens, 32, 64, len(tokens), byte_lengths)["bpb"])
    assert ours["size_ratio"] <= 0.30 and ours["model_bytes"] < 0.3 * fp32["model_bytes"]
    assert 0 < abs(ours["bpb_change"]) < 0.01
    assert all(r["decode_tokens_per_s"] > 0 for r in (fp32, ours))
    # PyTorch's dynamic int8 runs on CPU in this torch build; if it ever fails, the row must say why.
    if torch_row["val_bpb"] is None:
        assert "quantize_dynamic failed" in torch_row["note"]
    else:
        assert torch_row["size_ratio"] <= 0.30 and abs(torch_row["bpb_change"]) < 0.05
    table = format_report(rows)
    assert table.count("\n") == 3 and "int8 (minilm)" in table


def test_report_says_why_when_pytorch_quantization_fails(report_inputs, monkeypatch):
    import minilm.inference.quantize as quantize

    def broken(model, names):
        raise RuntimeError("torch.ao.quantization.quantize_dynamic failed: NotImplementedError: no engine")

    monkeypatch.setattr(quantize, "torch_dynamic_int8", broken)
    model, tokens, byte_lengths = report_inputs
    rows = quantization_report(model, tokens, byte_lengths, new_tokens=4, repeats=1, eval_tokens=500)
    assert rows[2]["val_bpb"] is None and "no engine" in rows[2]["note"]
    assert rows[1]["val_bpb"] is not None
    assert "no engine" in format_report(rows)
    with pytest.raises(ValueError, match="validation tokens"):
        quantization_report(model, tokens[:1], byte_lengths)
