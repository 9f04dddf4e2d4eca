"""Exercise 03 (transformer): reference solutions. Try the exercise yourself first!

Attention written out with ``@`` and ``softmax``, RoPE in the half-split pairing, and RMSNorm,
each a few lines. This file deliberately does not use ``minilm``: the tests compare it with
``minilm.models.gpt`` and with PyTorch's fused attention.
"""

from __future__ import annotations

import math

import torch


def causal_mask(n_queries: int, n_keys: int | None = None) -> torch.Tensor:
    n_keys = n_queries if n_keys is None else n_keys
    # Query i is at position n_keys - n_queries + i; key j is visible when j <= that position.
    query_positions = torch.arange(n_keys - n_queries, n_keys)[:, None]
    key_positions = torch.arange(n_keys)[None, :]
    return key_positions <= query_positions


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    # Dividing by sqrt(D) keeps the scores' variance near 1, so the softmax does not saturate.
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # exp(-inf) = 0: no weight on hidden keys
    # torch.softmax subtracts the row maximum first, so large scores do not overflow.
    return torch.softmax(scores, dim=-1) @ v


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    batch, length, channels = x.shape
    return x.view(batch, length, n_head, channels // n_head).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, length, head_dim = x.shape
    # transpose makes the tensor non-contiguous; reshape copies where view would refuse.
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


def rope_tables(head_dim: int, length: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    pair = torch.arange(head_dim // 2, dtype=torch.float32)
    frequency = theta ** (-2 * pair / head_dim)  # radians per position, one per pair
    angles = torch.arange(length, dtype=torch.float32)[:, None] * frequency[None, :]
    return torch.cos(angles), torch.sin(angles)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)  # pair i = (a[i], b[i]): first half against second half
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mean_square = (x * x).mean(dim=-1, keepdim=True)
    return x * torch.rsqrt(mean_square + eps) * weight


def self_attention(x: torch.Tensor, w_qkv: torch.Tensor, w_out: torch.Tensor, n_head: int,
                   cos: torch.Tensor | None = None, sin: torch.Tensor | None = None) -> torch.Tensor:
    q, k, v = (x @ w_qkv.T).chunk(3, dim=-1)
    q, k, v = (split_heads(t, n_head) for t in (q, k, v))
    if cos is not None:
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)  # positions enter through q and k only
    length = x.shape[1]
    y = attention(q, k, v, causal_mask(length))
    return merge_heads(y) @ w_out.T
