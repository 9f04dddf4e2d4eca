"""Attention probabilities of a ``minilm.models.gpt.GPT``: where each position looks, layer by layer.

``minilm.models.gpt`` runs attention through ``scaled_dot_product_attention``, which never hands back
the probabilities it uses. This module recomputes them from a layer's own query/key projection,
exactly as the layer does (QK-norm, RoPE, grouped-query heads, causal mask), so chapter 03 can draw
the patterns of a trained model and measure what its heads do.

>>> import torch
>>> from minilm.models.gpt import GPT, GPTConfig
>>> model = GPT(GPTConfig.modern(vocab_size=50, n_layer=2, n_embd=32, n_head=4, block_size=16))
>>> probs = attention_weights(model, torch.arange(6)[None])
>>> tuple(probs.shape), bool(torch.allclose(probs.sum(-1), torch.ones(2, 1, 4, 6)))
((2, 1, 4, 6, 6), True)
"""

from __future__ import annotations

import math

import torch

from ..models.gpt import GPT, Attention, apply_rope, check_token_ids


@torch.no_grad()
def layer_attention(attn: Attention, x: torch.Tensor, rope=None, start: int = 0) -> torch.Tensor:
    """Probabilities (B, n_head, T, T) that ``attn`` gives to keys for its input ``x`` (B, T, C).

    ``rope`` is the model's ``(cos, sin)`` tables (None for learned positions) and ``start`` the
    position of the first token. Row t is the softmax over keys 0..t of q_t . k_s / sqrt(head_dim);
    entries above the diagonal are exactly zero.
    """
    cfg = attn.config
    B, T, _ = x.shape
    hd, heads, kv = cfg.head_dim, cfg.n_head, cfg.kv_heads
    q, k, _ = attn.c_attn(x).split([heads * hd, kv * hd, kv * hd], dim=-1)
    q = q.view(B, T, heads, hd).transpose(1, 2)
    k = k.view(B, T, kv, hd).transpose(1, 2)
    if attn.q_norm is not None:
        q, k = attn.q_norm(q), attn.k_norm(k)
    if rope is not None:
        cos, sin = rope[0][start : start + T], rope[1][start : start + T]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    k = k.repeat_interleave(heads // kv, dim=1)  # each key head serves a group of query heads
    scores = (q @ k.transpose(-2, -1)).float() / math.sqrt(hd)
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)


@torch.no_grad()
def attention_weights(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """Attention probabilities of every layer for token ids ``idx`` (B, T): (n_layer, B, n_head, T, T).

    Runs one forward pass with hooks that catch each attention layer's input (the normed residual
    stream) and recompute its probabilities with ``layer_attention``; the hooks are removed after.
    """
    check_token_ids(idx, model.config.vocab_size)
    rope = (model.rope_cos, model.rope_sin) if model.config.position == "rope" else None
    found: dict[int, torch.Tensor] = {}

    def catch(layer):
        def hook(module, args):
            found[layer] = layer_attention(module, args[0], rope)
        return hook

    handles = [block.attn.register_forward_pre_hook(catch(i)) for i, block in enumerate(model.blocks)]
    was_training = model.training
    model.eval()
    try:
        model(idx)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return torch.stack([found[i] for i in range(len(model.blocks))])


def head_summary(probs: torch.Tensor) -> dict[str, torch.Tensor]:
    """What each head attends to on average, from probabilities (..., n_head, T, T).

    Averages over query positions 1..T-1 (position 0 can only look at itself) and over the batch,
    the dimension just before the heads when there is one: (L, B, H, T, T) gives (L, H), (B, H, T, T)
    and (H, T, T) give (H,). The statistics: ``previous`` (weight on the token
    just before), ``self`` (on the query's own token), ``first`` (on position 0, the "attention sink")
    and ``distance`` (mean number of positions looked back).

    >>> p = torch.eye(4)[None].expand(2, 4, 4)                    # 2 heads that look only at themselves
    >>> {k: v.tolist() for k, v in head_summary(p).items()}
    {'previous': [0.0, 0.0], 'self': [1.0, 1.0], 'first': [0.0, 0.0], 'distance': [0.0, 0.0]}
    """
    T = probs.shape[-1]
    if T < 2:
        raise ValueError("need at least 2 positions to summarise attention")
    rows = probs[..., 1:, :]  # queries 1..T-1
    positions = torch.arange(T, device=probs.device, dtype=probs.dtype)
    back = (positions[1:, None] - positions[None, :]).clamp(min=0)  # query - key
    stats = {
        "previous": probs.diagonal(offset=-1, dim1=-2, dim2=-1),
        "self": probs.diagonal(dim1=-2, dim2=-1)[..., 1:],
        "first": rows[..., 0],
        "distance": (rows * back).sum(-1),
    }
    # average over query positions, then over every leading dimension except the heads
    lead = tuple(range(probs.dim() - 3))
    return {k: (v.mean(-1).mean(dim=lead[-1]) if lead else v.mean(-1)) for k, v in stats.items()}
