"""Int8 weight-only quantization of a GPT's linear layers, with one absmax scale per output channel.

Each row of a weight matrix ``W`` (out_features, in_features) holds the weights of one output
channel. It gets its own scale ``s = max|row| / 127`` and is stored as ``q = round(W / s)`` in int8,
so every weight is within ``s / 2`` of ``q * s``: a quarter of fp32's bytes plus one float per row.
One scale per row instead of one per matrix matters because rows differ in size: a single scale
is set by the largest weight of the whole matrix and rounds the small rows coarsely.

Only the weights are quantized ("weight-only"); activations stay in floating point, so nothing
needs calibrating. ``quantize_model`` returns a copy with every ``nn.Linear`` replaced by an
``Int8Linear`` (names matching ``skip`` excepted). A GPT with tied embeddings uses one matrix as
the token embedding and as the output head; its rows are the vocabulary entries in both roles, so
the head's per-output-channel scales are exactly the embedding's per-row scales, and one int8 copy
with one scale vector serves both (``Int8Embedding``): the tie and its memory saving survive.

>>> import torch
>>> from minilm.models.gpt import GPT, GPTConfig
>>> _ = torch.manual_seed(0)
>>> model = GPT(GPTConfig.modern(vocab_size=64, n_layer=1, n_embd=32, n_head=2, block_size=16))
>>> small = quantize_model(model)
>>> fp32, int8 = quantized_layer_bytes(model, small)
>>> round(int8 / fp32, 3)
0.277
>>> ids = torch.tensor([[1, 2, 3]])
>>> bool((model(ids)[0] - small(ids)[0]).abs().max() < 0.05)
True
"""

from __future__ import annotations

import copy
import fnmatch
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .timing import generation_seconds


QMAX = 127  # symmetric range -127..127: -128 is not used, so q and -q are both representable


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(q, scale)``: int8 ``q`` (out, in) and float32 ``scale`` (out,) with ``weight ≈ q * scale[:, None]``.

    ``scale[i] = max |weight[i]| / 127`` (an all-zero row gets scale 1: any scale represents it).

    >>> q, scale = quantize_int8(torch.tensor([[0.5, -1.0, 0.25], [2.0, 0.0, -4.0]]))
    >>> q.tolist(), [round(s * 127, 3) for s in scale.tolist()]
    ([[64, -127, 32], [64, 0, -127]], [1.0, 4.0])
    """
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
    if not weight.is_floating_point():
        raise ValueError(f"weight must be a floating-point tensor, got dtype {weight.dtype}")
    if weight.numel() == 0:
        raise ValueError(f"weight is empty (shape {tuple(weight.shape)}): nothing to quantize")
    w = weight.detach().float()
    if not torch.isfinite(w).all():
        raise ValueError("weight contains inf or nan: its absmax scale would be meaningless")
    scale = w.abs().amax(dim=1) / QMAX
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.round(w / scale[:, None]).clamp(-QMAX, QMAX).to(torch.int8)
    return q, scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 weight ``q * scale[:, None]`` that ``(q, scale)`` stands for.

    >>> dequantize_int8(torch.tensor([[127, -64]], dtype=torch.int8), torch.tensor([0.5])).tolist()
    [[63.5, -32.0]]
    """
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8 or q.dim() != 2:
        raise ValueError(f"q must be a 2-D int8 tensor, got {getattr(q, 'dtype', type(q).__name__)} "
                         f"of shape {tuple(getattr(q, 'shape', ()))}")
    if not isinstance(scale, torch.Tensor) or scale.shape != (q.shape[0],):
        raise ValueError(f"scale must have one entry per row of q, shape ({q.shape[0]},); "
                         f"got {tuple(getattr(scale, 'shape', ()))}")
    return q.float() * scale.float()[:, None]


def _check_finite(scale: torch.Tensor) -> None:
    # Checked once when a layer is built, not in forward: a NaN scale would make every output NaN.
    if not torch.isfinite(scale).all():
        raise ValueError("scale holds NaN or inf: the weights it stands for are not numbers")


class Int8Linear(nn.Module):
    """A linear layer whose weight is stored in int8 with a float32 scale per output channel.

    ``y = x @ (q * scale).T + bias``. The scale of output channel j multiplies every term of output
    j's dot product, so it can be applied before the matmul (to the out x in weights) or after it
    (to the rows x out outputs): forward scales whichever is smaller. Measured single-threaded on
    this course's 2-core CPU (torch 2.13) with the laptop model's shapes: for one decoding token,
    scaling the outputs is 20-40% faster than dequantizing the weight; for a 64 x 64-token
    evaluation batch, dequantizing the weight is up to 15% faster. PyTorch's int8 weight-only
    kernel ``torch.ops.aten._weight_int8pack_mm`` was 3-50x slower than both in this CPU build.

    Every call still converts the int8 weight to float, so on a CPU this layer is slower than fp32
    (about 1.5-3.5x for one decoding token, 0-20% for large batches): weight-only int8 here saves
    memory (4x on these layers) and loses some time. It saves time where a kernel multiplies int8
    weights directly and the work is bound by reading weights from memory (large models, GPUs).
    """

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        dequantize_int8(q, scale)  # validates shapes and dtypes with a clear message
        _check_finite(scale)
        if bias is not None and tuple(bias.shape) != (q.shape[0],):
            raise ValueError(f"bias must have one entry per output channel, shape ({q.shape[0]},); got {tuple(bias.shape)}")
        self.out_features, self.in_features = q.shape
        self.register_buffer("weight", q)
        self.register_buffer("scale", scale.float())
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "Int8Linear":
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"expected an nn.Linear, got {type(linear).__name__}")
        q, scale = quantize_int8(linear.weight)
        return cls(q, scale, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, scale = self.weight.to(x.dtype), self.scale.to(x.dtype)
        rows = x.numel() // max(1, x.shape[-1])
        if rows < self.in_features:  # fewer outputs (rows x out) than weights (out x in): scale the outputs
            y = F.linear(x, weight) * scale
        else:
            y = F.linear(x, weight * scale[:, None])
        return y if self.bias is None else y + self.bias.to(x.dtype)

    def dequantized_weight(self) -> torch.Tensor:
        return dequantize_int8(self.weight, self.scale)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Int8Embedding(nn.Module):
    """A token embedding that reads rows of an int8 matrix with per-row scales (tied to an Int8Linear).

    Only the looked-up rows are converted to float, so a lookup costs as much as in fp32.
    """

    def __init__(self, q: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        dequantize_int8(q, scale)
        _check_finite(scale)
        self.num_embeddings, self.embedding_dim = q.shape
        self.register_buffer("weight", q)
        self.register_buffer("scale", scale)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.weight).float() * self.scale[idx][..., None]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, module)


def quantize_model(model: nn.Module, skip: tuple[str, ...] | list[str] = ()) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` replaced by an ``Int8Linear``; ``model`` is unchanged.

    ``skip`` holds module-name patterns (``fnmatch``: ``"lm_head"``, ``"blocks.0.*"``) of linear
    layers to keep in float. An embedding whose matrix is a quantized linear layer's weight (tied
    embeddings) reads the same int8 copy, so the tie stays and its matrix is stored once; skip
    ``"lm_head"`` to keep the tied pair in float.

    >>> from minilm.models.gpt import GPT, GPTConfig
    >>> model = GPT(GPTConfig.modern(vocab_size=64, n_layer=1, n_embd=32, n_head=2, block_size=16))
    >>> sorted({type(m).__name__ for m in quantize_model(model, skip=["lm_head"]).modules()} & {"Linear", "Int8Linear"})
    ['Int8Linear', 'Linear']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if skip is None or isinstance(skip, str) or not all(isinstance(pattern, str) for pattern in skip):
        raise ValueError(f"skip must be a list of module-name patterns, got {skip!r}")
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layers to quantize")
    for pattern in skip:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in linears):
            raise ValueError(f"skip pattern {pattern!r} matches no linear layer; they are: {', '.join(linears[:8])}"
                             + (", ..." if len(linears) > 8 else ""))

    quantized = copy.deepcopy(model)  # deepcopy keeps tied parameters tied in the copy
    int8_of = {}  # id of a float weight -> (q, scale), so a matrix shared by two modules is quantized once
    for name, module in list(quantized.named_modules()):
        if not isinstance(module, nn.Linear) or any(fnmatch.fnmatchcase(name, p) for p in skip):
            continue
        key = id(module.weight)
        if key not in int8_of:
            int8_of[key] = quantize_int8(module.weight)
        _set_module(quantized, name, Int8Linear(*int8_of[key], module.bias))
    for name, module in list(quantized.named_modules()):
        if isinstance(module, nn.Embedding) and id(module.weight) in int8_of:
            _set_module(quantized, name, Int8Embedding(*int8_of[id(module.weight)]))
    return quantized


# ----------------------------------------------------------------------------------------------
# Sizes


def _tensor_bytes(tensors) -> int:
    """Bytes of distinct tensors (a tensor reached twice, like a tied matrix, counts once).

    Tuples are searched too (PyTorch's quantized layers keep ``(weight, bias)`` in their state);
    a per-tensor quantized tensor adds its scale and zero point (8 bytes).
    """
    seen, total = set(), 0
    stack = list(tensors)
    while stack:
        t = stack.pop()
        if isinstance(t, (tuple, list)):
            stack.extend(t)
            continue
        if not isinstance(t, torch.Tensor):
            continue
        key = (t.data_ptr(), t.dtype, tuple(t.shape))
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size() + (8 if t.is_quantized else 0)
    return total


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of what a checkpoint of ``model`` stores: parameters and persistent buffers, each once.

    >>> model_size_bytes(nn.Linear(10, 4))  # (40 weights + 4 biases) x 4 bytes
    176
    """
    return _tensor_bytes(model.state_dict().values())


def _dynamic_linear_tensors(module: nn.Module) -> list[torch.Tensor] | None:
    """The stored tensors of a PyTorch dynamically quantized linear layer, or None for other modules."""
    if not (hasattr(module, "_packed_params") and callable(getattr(module, "weight", None))):
        return None
    return [module.weight(), module.bias()]  # a per-tensor qint8 weight and a float bias (or None)


def layer_bytes(model: nn.Module, names) -> int:
    """Bytes of the weights, biases and scales of the named linear layers (fp32, ours or PyTorch's)."""
    tensors = []
    for name in names:
        module = model.get_submodule(name)
        dynamic = _dynamic_linear_tensors(module)
        if dynamic is not None:
            tensors += dynamic
        elif isinstance(module, (nn.Linear, Int8Linear)):
            tensors += [module.weight, module.bias, getattr(module, "scale", None)]
        else:
            raise ValueError(f"{name} is a {type(module).__name__}, not a linear layer")
    return _tensor_bytes(tensors)


def quantized_layer_names(quantized: nn.Module) -> list[str]:
    """Names of the layers ``quantize_model`` replaced by ``Int8Linear``."""
    return [name for name, module in quantized.named_modules() if isinstance(module, Int8Linear)]


def quantized_layer_bytes(original: nn.Module, quantized: nn.Module) -> tuple[int, int]:
    """``(float bytes, int8 bytes)`` of the layers that ``quantize_model`` replaced, before and after."""
    names = quantized_layer_names(quantized)
    if not names:
        raise ValueError("the second model has no Int8Linear layers: pass the result of quantize_model")
    return layer_bytes(original, names), layer_bytes(quantized, names)


# ----------------------------------------------------------------------------------------------
# Size, speed and quality side by side


def torch_dynamic_int8(model: nn.Module, names) -> nn.Module:
    """PyTorch's own CPU option: ``torch.ao.quantization.quantize_dynamic`` (int8 weights, per tensor,
    activations quantized on the fly) of the named linear layers. Raises RuntimeError if unavailable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
            from torch.ao.quantization import quantize_dynamic

            return quantize_dynamic(copy.deepcopy(model).cpu(), set(names), dtype=torch.qint8)
    except Exception as err:  # noqa: BLE001 -- any failure of the optional backend is reported, not raised
        raise RuntimeError(f"torch.ao.quantization.quantize_dynamic failed: {type(err).__name__}: {err}") from None


def quantization_report(model: nn.Module, val_tokens: np.ndarray, byte_lengths: np.ndarray,
                        skip: tuple[str, ...] = (), eval_tokens: int | None = None, new_tokens: int | None = None,
                        repeats: int = 3, device: str = "cpu") -> list[dict]:
    """Rows ``fp32``, ``int8 (minilm)`` and ``int8 dynamic (PyTorch)``, each with the bytes of the
    quantized layers, their ratio to fp32, the whole model's bytes, decode tokens/s (batch 1, KV
    cache) and validation bits per byte (``minilm.models.train.evaluate`` over ``eval_tokens`` tokens,
    default all) with its relative change from fp32.

    PyTorch's dynamic quantization runs on CPU only; where it is unavailable or fails, its row says
    why in ``note`` and its figures are None.
    """
    from ..models.train import evaluate

    if len(val_tokens) < 2:
        raise ValueError(f"{len(val_tokens)} validation tokens: need at least 2")
    block = model.config.block_size
    seq_len = min(block, len(val_tokens) - 1)
    prompt_len = max(1, min(8, block // 4))
    new_tokens = new_tokens or block - prompt_len  # what fits in the context, so the cache is used
    prompt = [[int(t) for t in val_tokens[:prompt_len]]]
    int8 = quantize_model(model, skip=skip)
    names = quantized_layer_names(int8)
    fp32_bytes = layer_bytes(model, names)
    candidates = [("fp32", lambda: model, ""), ("int8 (minilm)", lambda: int8, "")]
    note = "" if str(device) == "cpu" else f"CPU only; measured on cpu, not {device}"
    candidates.append(("int8 dynamic (PyTorch)", lambda: torch_dynamic_int8(model, names), note))

    rows, base_bpb = [], None
    for method, build, note in candidates:
        row = {"method": method, "layers_bytes": None, "size_ratio": None, "model_bytes": None,
               "decode_tokens_per_s": None, "val_bpb": None, "bpb_change": None, "note": note}
        try:
            candidate = build()
            where = "cpu" if method.startswith("int8 dynamic") else device
            candidate.to(where).eval()
            seconds = generation_seconds(candidate, prompt, new_tokens, repeats=repeats)
            bpb = evaluate(candidate, val_tokens, seq_len, 64, eval_tokens or len(val_tokens), byte_lengths, where)["bpb"]
        except RuntimeError as err:
            rows.append({**row, "note": str(err)})
            continue
        base_bpb = bpb if base_bpb is None else base_bpb
        layers = layer_bytes(candidate, names)
        rows.append({**row, "layers_bytes": layers, "size_ratio": layers / fp32_bytes,
                     "model_bytes": model_size_bytes(candidate), "decode_tokens_per_s": new_tokens / seconds,
                     "val_bpb": bpb, "bpb_change": bpb / base_bpb - 1})
    return rows


def format_report(rows: list[dict]) -> str:
    """The report as a fixed-width table (sizes in KiB, bpb change in percent)."""
    lines = [f"{'method':<24} {'layers KiB':>10} {'ratio':>6} {'model KiB':>9} {'tok/s':>7} {'val bpb':>8} {'change':>8}"]
    for r in rows:
        if r["val_bpb"] is None:
            lines.append(f"{r['method']:<24} {r['note']}")
            continue
        lines.append(f"{r['method']:<24} {r['layers_bytes'] / 1024:>10.0f} {r['size_ratio']:>6.3f} "
                     f"{r['model_bytes'] / 1024:>9.0f} {r['decode_tokens_per_s']:>7.0f} {r['val_bpb']:>8.4f} "
                     f"{100 * r['bpb_change']:>+7.2f}%" + (f"  ({r['note']})" if r["note"] else ""))
    return "\n".join(lines)


def expected_layer_ratio(in_features: int, bias: bool = False) -> float:
    """Bytes of an int8 layer over fp32: ``(in + 4 + 4 bias) / (4 in + 4 bias)`` per output channel.

    >>> round(expected_layer_ratio(192), 4)
    0.2552
    """
    if in_features < 1:
        raise ValueError(f"in_features={in_features} must be >= 1")
    return (in_features + 4 + 4 * bias) / (4 * in_features + 4 * bias)

