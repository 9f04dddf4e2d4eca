"""Exercise 03 (transformer): causal self-attention, RoPE and RMSNorm from scratch.

Write the eight functions below, replacing each ``raise NotImplementedError(...)``. Together they
are the attention half of a modern (Llama-style) transformer block:

* a causal mask, and scaled dot-product attention written with ``@`` and ``softmax``;
* splitting the channels into heads and merging them back;
* rotary position embeddings (RoPE): cos/sin tables, and the rotation of queries and keys;
* RMSNorm with a learned weight;
* ``self_attention``, which puts the pieces together and must give the same output as
  ``minilm.models.gpt.Attention`` with the same weights.

Check your work with ``make check CH=03`` (or ``minilm check 03``): the tests compare your functions
with ``minilm.models.gpt`` and with ``torch.nn.functional.scaled_dot_product_attention``. Use PyTorch
tensor operations (``@``, ``torch.softmax``, ``masked_fill``, ``view``/``transpose``, ``cos``/``sin``,
``rsqrt``...), but not the functions that do the whole job: no ``F.scaled_dot_product_attention``,
no ``nn.RMSNorm`` or ``F.rms_norm``. Reference solutions are in ``exercises/solutions/``: try first!
"""

from __future__ import annotations

import torch


def causal_mask(n_queries: int, n_keys: int | None = None) -> torch.Tensor:
    """A boolean mask of shape ``(n_queries, n_keys)``: True where a query may look at a key.

    The queries are the *last* ``n_queries`` positions of a sequence of ``n_keys`` tokens
    (``n_keys`` defaults to ``n_queries``), so query ``i`` sits at position
    ``n_keys - n_queries + i`` and may look at keys ``0`` up to and including that position, never
    at a later one. With ``n_queries == n_keys`` this is the usual lower-triangular mask; with fewer
    queries than keys it is the mask of generation with a KV cache (new tokens after cached ones).

    >>> causal_mask(3).int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    >>> causal_mask(1, 3)  # one new token after two cached ones sees all three
    tensor([[True, True, True]])
    """
    raise NotImplementedError("exercise 03: write causal_mask in exercises/03_transformer.py")


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scaled dot-product attention: ``softmax(q @ k^T / sqrt(D), masked) @ v``.

    Shapes: ``q`` is ``(..., T_q, D)``, ``k`` is ``(..., T_k, D)``, ``v`` is ``(..., T_k, D_v)``; the
    leading dimensions (batch, heads, or none) are the same for all three. The result is
    ``(..., T_q, D_v)``. ``mask`` is a boolean tensor that broadcasts to ``(..., T_q, T_k)``
    (for example ``causal_mask(T_q, T_k)``): where it is False, set the score to ``-inf`` before
    the softmax, so that key gets weight exactly 0. ``mask=None`` means every query sees every key.
    Take the softmax over the keys (the last dimension). Every row of the mask is assumed to allow
    at least one key.

    >>> v = torch.tensor([[1.0], [2.0], [3.0]])
    >>> attention(torch.zeros(3, 2), torch.ones(3, 2), v, causal_mask(3))  # equal scores: a running mean
    tensor([[1.0000],
            [1.5000],
            [2.0000]])
    """
    raise NotImplementedError("exercise 03: write attention in exercises/03_transformer.py")


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """Cut the channels of ``x`` (B, T, C) into ``n_head`` heads: return (B, n_head, T, C // n_head).

    Head ``h`` gets the channels ``h * D`` to ``(h + 1) * D - 1`` (with ``D = C // n_head``), as
    ``minilm.models.gpt.Attention`` does. ``C`` is a multiple of ``n_head``.

    >>> x = torch.arange(8.0).view(1, 2, 4)  # one sequence of two tokens, four channels
    >>> split_heads(x, 2)[0, 1]  # head 1: channels 2 and 3 of both tokens
    tensor([[2., 3.],
            [6., 7.]])
    """
    raise NotImplementedError("exercise 03: write split_heads in exercises/03_transformer.py")


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """The inverse of ``split_heads``: (B, H, T, D) -> (B, T, H * D), head 0's channels first.

    >>> x = torch.arange(24.0).view(2, 3, 4)
    >>> torch.equal(merge_heads(split_heads(x, 2)), x)
    True
    """
    raise NotImplementedError("exercise 03: write merge_heads in exercises/03_transformer.py")


def rope_tables(head_dim: int, length: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The cos and sin tables of rotary position embeddings, each ``(length, head_dim // 2)``, float32.

    Pair ``i`` of a head (``0 <= i < head_dim // 2``) turns at the frequency
    ``theta ** (-2 * i / head_dim)`` radians per position, so at position ``t`` its angle is
    ``t * theta ** (-2 * i / head_dim)``: pair 0 turns by one radian per token, later pairs ever
    more slowly. Return ``(cos(angles), sin(angles))``. ``head_dim`` is even.

    >>> cos, sin = rope_tables(4, 3)
    >>> cos.shape, cos.dtype
    (torch.Size([3, 2]), torch.float32)
    >>> sin[:, 0]  # pair 0 at positions 0, 1, 2: angles 0, 1, 2 radians
    tensor([0.0000, 0.8415, 0.9093])
    """
    raise NotImplementedError("exercise 03: write rope_tables in exercises/03_transformer.py")


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the pairs of ``x`` (..., T, D) by the angles of their positions; same shape out.

    The pairing is the **half-split** ("rotate half") convention of ``minilm.models.gpt.apply_rope``,
    GPT-NeoX and Hugging Face Llama: pair ``i`` is ``(x[..., i], x[..., i + D // 2])``, the first half
    of the channels against the second half. (The RoPE paper and GPT-J pair *adjacent* channels
    ``(2i, 2i + 1)`` instead; that is a different function, and weights trained with one do not
    work with the other.) With ``a = x[..., :D//2]`` and ``b = x[..., D//2:]``, the result is the
    concatenation of ``a * cos - b * sin`` and ``a * sin + b * cos``, where ``cos`` and ``sin`` are
    ``(T, D // 2)`` tables (rows = positions) that broadcast over the leading dimensions.

    >>> quarter_turn = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 1.0]])  # one position, 90 degrees
    >>> apply_rope(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), *quarter_turn)  # pairs (1, 3) and (2, 4) turn
    tensor([[-3., -4.,  1.,  2.]])
    """
    raise NotImplementedError("exercise 03: write apply_rope in exercises/03_transformer.py")


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm over the last dimension: ``x / sqrt(mean(x ** 2) + eps) * weight``.

    ``x`` is ``(..., C)`` and ``weight`` is ``(C,)``; the mean is over the last dimension only, one
    per vector. Unlike LayerNorm there is no mean subtracted and no bias. Same as
    ``minilm.models.gpt.RMSNorm`` with this ``weight`` and ``eps``.

    >>> rms_norm(torch.tensor([3.0, 4.0]), torch.ones(2), eps=0.0)  # the rms of (3, 4) is 3.5355
    tensor([0.8485, 1.1314])
    """
    raise NotImplementedError("exercise 03: write rms_norm in exercises/03_transformer.py")


def self_attention(x: torch.Tensor, w_qkv: torch.Tensor, w_out: torch.Tensor, n_head: int,
                   cos: torch.Tensor | None = None, sin: torch.Tensor | None = None) -> torch.Tensor:
    """Causal multi-head self-attention of ``x`` (B, T, C), the forward pass of ``minilm.models.gpt.Attention``.

    The weights are stored as in ``nn.Linear`` (``y = x @ w.T``): ``w_qkv`` is ``(3 * C, C)`` and
    ``w_out`` is ``(C, C)``; there are no biases. The steps:

    1. ``x @ w_qkv.T`` is (B, T, 3C): its channels are the queries, then the keys, then the values
       (C each);
    2. split each of q, k, v into ``n_head`` heads;
    3. if ``cos`` and ``sin`` are given ((T, D/2) tables for positions 0..T-1), apply RoPE to the
       queries and the keys (never to the values);
    4. causal attention in each head, merge the heads, and project with ``w_out``.

    Returns (B, T, C). Use your functions above.

    >>> x = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0]]])  # two tokens, C = 4
    >>> zero, identity = torch.zeros(4, 4), torch.eye(4)  # q = 0 (equal scores), k = v = x
    >>> self_attention(x, torch.cat([zero, identity, identity]), identity, n_head=2)  # token 1 averages both
    tensor([[[1.0000, 0.0000, 0.0000, 0.0000],
             [0.5000, 0.5000, 0.0000, 0.0000]]])
    """
    raise NotImplementedError("exercise 03: write self_attention in exercises/03_transformer.py")
