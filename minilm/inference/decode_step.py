"""One decoding step of a GPT with the KV cache, as a flat list of tensor ops.

A cached decode step at batch 1 does little arithmetic: one matrix-vector product per weight
matrix. On a CPU it is bounded by overhead instead. Each ``nn.Module`` call, each attribute
lookup through ``Module.__getattr__`` and each small tensor op costs microseconds, and
``GPT.forward`` makes about 35 module calls and a hundred small ops per step. On the course's
2-core machine the laptop model's step took 2.7 ms through ``forward`` against 2.3 ms here
(``minilm bench generate``'s ``decode_step_ms``, medians of interleaved runs). The step matters because
the KV cache's whole point is to make
a new token cost one position's work: overhead that the uncached path spreads over hundreds of
positions lands on the cached one in full.

``DecodeStep(model)`` reads the model's parameters once (references, not copies, so it never goes
stale while it is in use) and computes exactly what ``model(idx, cache=cache, start=start,
pad=pad)`` computes for one new token per row, op for op. The logits are identical, not merely
close: the tests compare them with ``torch.equal``. The token and position lookups are
``GPT.embed``, the same method ``forward`` calls; layers it does not know (``minilm.inference.quantize``'s
int8 linears) are called as the modules they are.

>>> from minilm.models.gpt import GPT, GPTConfig, KVCache
>>> _ = torch.manual_seed(0)
>>> model = GPT(GPTConfig.modern(vocab_size=50, n_layer=2, n_embd=32, n_head=4, block_size=16)).eval()
>>> cache = KVCache(model.config, batch_size=1)
>>> _ = model(torch.tensor([[1, 2, 3]]), cache=cache, start=0)  # prefill
>>> step = DecodeStep(model)
>>> fast = step(torch.tensor([[4]]), cache, start=3)
>>> slow, _ = model(torch.tensor([[4]]), cache=cache, start=3)  # rewrites slot 3 with the same key
>>> torch.equal(fast, slow)
True
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.gpt import GPT, KVCache, RMSNorm, apply_rope, check_token_ids, padded_causal_mask

Op = Callable[[torch.Tensor], torch.Tensor]


def _flat(module: nn.Module | None) -> Op | None:
    """The functional call of a plain Linear / RMSNorm / LayerNorm (bound to its tensors), or the
    module itself for anything else (int8 layers keep their forward)."""
    if module is None:
        return None
    if type(module) is nn.Linear:
        return partial(F.linear, weight=module.weight, bias=module.bias)
    if type(module) is RMSNorm:
        fused = partial(F.rms_norm, normalized_shape=module.weight.shape, weight=module.weight, eps=module.eps)
        # RMSNorm.forward's float32 branch; other dtypes take the module's own path, as in forward.
        return lambda x: fused(x) if x.dtype == torch.float32 else module(x)
    if type(module) is nn.LayerNorm:
        return partial(F.layer_norm, normalized_shape=module.normalized_shape, weight=module.weight,
                       bias=module.bias, eps=module.eps)
    return module


def applies_to(model) -> bool:
    """Whether ``model`` computes ``GPT.forward`` (a subclass with its own forward, or a wrapper such as
    ``torch.compile``'s, keeps its own path)."""
    return isinstance(model, GPT) and type(model).forward is GPT.forward


class DecodeStep:
    """``model``'s forward for one new token per row with a KV cache, flattened (see the module
    docstring). Call it as ``step(idx, cache, start, pad=None)`` with ``idx`` (B, 1): the logits
    (B, 1, vocab) of the slot ``start``, whose key and value it writes into ``cache``."""

    def __init__(self, model: GPT):
        if not applies_to(model):
            raise TypeError(f"DecodeStep computes minilm.models.gpt.GPT's forward; {type(model).__name__} has its own")
        c = model.config
        self.vocab_size = c.vocab_size
        self.heads, self.kv_heads, self.head_dim = c.n_head, c.kv_heads, c.head_dim
        self.embed = model.embed  # once per step: the token (and position) lookups and the RoPE angles
        self.layers = []
        for block in model.blocks:
            attn, mlp = block.attn, block.mlp
            self.layers.append((
                _flat(block.ln_1), _flat(attn.c_attn), _flat(attn.q_norm), _flat(attn.k_norm), _flat(attn.c_proj),
                _flat(block.ln_2), _flat(getattr(mlp, "c_gate", None)), _flat(mlp.c_fc), _flat(mlp.c_proj),
                mlp.approximate,
            ))
        self.norm, self.head = _flat(model.ln_f), _flat(model.lm_head)

    def __call__(self, idx: torch.Tensor, cache: KVCache, start: int, pad: torch.Tensor | None = None) -> torch.Tensor:
        # A few microseconds a step, against an id out of range failing inside the embedding lookup
        # (on a GPU as a device-side assert, after which the process cannot use the GPU again).
        check_token_ids(idx, self.vocab_size)
        B, T = idx.shape
        if T != 1:
            raise ValueError(f"a decode step takes one token per row, (B, 1); got shape {tuple(idx.shape)}")
        heads, kv, hd = self.heads, self.kv_heads, self.head_dim
        x, rope = self.embed(idx, start, pad)
        mask = None if pad is None else padded_causal_mask(pad, start, 1, start + 1)
        for layer, (ln_1, c_attn, q_norm, k_norm, o_proj, ln_2, gate, up, down, approximate) in enumerate(self.layers):
            # Attention: with one position, (B, 1, heads, D) -> (B, heads, 1, D) is a view, not a transpose.
            qkv = c_attn(ln_1(x)).view(B, heads + 2 * kv, 1, hd)
            qk, v = qkv[:, : heads + kv], qkv[:, heads + kv :]
            if q_norm is not None:
                qk = torch.cat((q_norm(qk[:, :heads]), k_norm(qk[:, heads:])), dim=1)
            if rope is not None:
                qk = apply_rope(qk, *rope)
            k, v = cache.update(layer, start, qk[:, heads:], v)
            y = F.scaled_dot_product_attention(qk[:, :heads], k, v, attn_mask=mask, enable_gqa=kv != heads)
            x = x + o_proj(y.reshape(B, 1, heads * hd))
            # MLP
            h = ln_2(x)
            x = x + down(F.silu(gate(h)) * up(h) if gate is not None else F.gelu(up(h), approximate=approximate))
        return self.head(self.norm(x))
