"""Exercise 06 (inference): top-p sampling, the KV cache, int8 quantization and a safe calculator.

Write the five functions below, replacing each ``raise NotImplementedError(...)``:

* ``top_p_filter``: nucleus (top-p) filtering of next-token logits, the cut ``minilm.inference.generate``
  applies before it samples;
* ``kv_cache_update``: writing new keys and values into a preallocated cache and handing back
  everything cached so far, as ``minilm.models.gpt.KVCache.update`` does for one layer;
* ``quantize_int8`` and ``dequantize_int8``: int8 weights with one absmax scale per output channel,
  as in ``minilm.inference.quantize``;
* ``evaluate``: a calculator for text a model writes, walking Python's syntax tree and accepting
  only numbers, ``+ - * /``, unary minus and parentheses, as ``minilm.core.calculator.evaluate`` does.
  Never ``eval``.

Check your work with ``make check CH=06`` (or ``minilm check 06``): the tests compare your functions
with ``minilm.inference.generate.filtered_probs``, ``minilm.models.gpt.KVCache``, ``minilm.inference.quantize`` and
``minilm.core.calculator``, and run a real model with your cache update inside. Use PyTorch tensor
operations (``sort``, ``softmax``, ``cumsum``, ``scatter``, ``amax``, ``round``, ``clamp``...) and the
standard library's ``ast`` and ``fractions``. Reference solutions are in ``exercises/solutions/``:
try first!
"""

from __future__ import annotations

import ast  # noqa: F401 -- for evaluate
from fractions import Fraction

import torch

MAX_LENGTH = 200  # characters of an expression
MAX_DEPTH = 30  # nesting of its syntax tree
MAX_ABS = 10**30  # the largest absolute value any intermediate result may have


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filtering: the logits (B, V) with every token outside the nucleus set to ``-inf``.

    In each row, sort the tokens by probability (softmax of the logits), most likely first. The
    nucleus is the smallest prefix of that order whose probabilities add up to at least ``top_p``:
    a token is kept when the tokens *before* it add up to less than ``top_p``. So the most likely
    token is always kept, and ``top_p=1`` keeps every token. Kept logits are returned unchanged, in
    their original positions; do not change ``logits`` in place. ``top_p`` outside (0, 1] is a
    ``ValueError``.

    Hint: ``torch.sort(..., descending=True)`` gives the order; ``cumsum`` minus the probability
    itself is "the probability before me"; ``scatter`` puts sorted values back in place.

    >>> logits = torch.log(torch.tensor([[0.1, 0.5, 0.3, 0.1]]))
    >>> top_p_filter(logits, 0.7).exp()  # 0.5 alone is not enough; 0.5 + 0.3 reaches 0.7
    tensor([[0.0000, 0.5000, 0.3000, 0.0000]])
    >>> top_p_filter(logits, 0.01).exp()  # the most likely token always stays
    tensor([[0.0000, 0.5000, 0.0000, 0.0000]])
    """
    raise NotImplementedError("exercise 06: write top_p_filter in exercises/06_inference.py")


def kv_cache_update(cache_k: torch.Tensor, cache_v: torch.Tensor, start: int, k: torch.Tensor,
                    v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Write ``k``, ``v`` (B, H, T, D) into the caches (B, H, max_len, D) at positions
    ``start .. start+T-1``, in place, and return the keys and values of positions ``0 .. start+T-1``.

    The caches are allocated once, at their full length, so decoding a token costs a write of one
    position instead of a copy of the whole history. Return views of the caches (slices), not
    copies. Writing past ``max_len`` is a ``ValueError`` that says how many positions the cache has.

    >>> cache_k, cache_v = torch.zeros(1, 1, 4, 2), torch.zeros(1, 1, 4, 2)
    >>> keys, values = kv_cache_update(cache_k, cache_v, 0, torch.ones(1, 1, 2, 2), 2 * torch.ones(1, 1, 2, 2))
    >>> keys.shape, cache_k[0, 0, :, 0].tolist()  # the prompt: positions 0 and 1
    (torch.Size([1, 1, 2, 2]), [1.0, 1.0, 0.0, 0.0])
    >>> keys, values = kv_cache_update(cache_k, cache_v, 2, torch.full((1, 1, 1, 2), 3.0), torch.zeros(1, 1, 1, 2))
    >>> keys[0, 0, :, 0].tolist()  # one new token at position 2: three positions so far
    [1.0, 1.0, 3.0]
    """
    raise NotImplementedError("exercise 06: write kv_cache_update in exercises/06_inference.py")


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Int8 weight-only quantization with one absmax scale per output channel (row).

    For a float weight (out_features, in_features) return ``(q, scale)``: ``scale`` (out_features,)
    in float32 with ``scale[i] = max_j |weight[i, j]| / 127``, and ``q = round(weight / scale)`` per
    row, as ``torch.int8`` in -127..127. A row of zeros gets ``scale = 1`` (any scale represents it,
    and dividing by 0 would not). A weight that is not 2-D is a ``ValueError``.

    Each element is then within ``scale[i] / 2`` of ``q * scale``, and the matrix takes a quarter of
    its float32 bytes (plus 4 bytes per row).

    >>> q, scale = quantize_int8(torch.tensor([[0.5, -1.0, 0.25], [2.0, 0.0, -4.0]]))
    >>> q
    tensor([[  64, -127,   32],
            [  64,    0, -127]], dtype=torch.int8)
    >>> (scale * 127).tolist()
    [1.0, 4.0]
    """
    raise NotImplementedError("exercise 06: write quantize_int8 in exercises/06_inference.py")


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 weight that ``(q, scale)`` stands for: row ``i`` of ``q`` times ``scale[i]``.

    >>> dequantize_int8(torch.tensor([[127, -64], [1, 0]], dtype=torch.int8), torch.tensor([0.5, 2.0]))
    tensor([[ 63.5000, -32.0000],
            [  2.0000,   0.0000]])
    """
    raise NotImplementedError("exercise 06: write dequantize_int8 in exercises/06_inference.py")


def evaluate(expression: str) -> Fraction:
    """The exact value of an arithmetic expression, from its syntax tree. Never ``eval``.

    Accept only: integer and float literals (not ``True``, strings or complex numbers), binary
    ``+ - * /``, unary ``-`` and ``+``, and parentheses (they leave no node of their own in the
    tree). ``×`` and ``÷`` count as ``*`` and ``/``; surrounding spaces are ignored. Compute with
    ``Fraction`` so that division is exact (a float literal becomes the decimal it was written as,
    ``Fraction(repr(value))``: 0.1 is 1/10, where ``Fraction(0.1)`` would be its binary value
    3602879701896397/36028797018963968). Raise ``ValueError`` with a message for anything else: names, calls, attributes,
    lists, strings, ``**`` (even ``2 ** 3``: powers make huge numbers in a few characters), text
    that does not parse, division by zero, an expression longer than ``MAX_LENGTH`` characters, a
    tree nested deeper than ``MAX_DEPTH`` (the ``ast.Expression`` at depth 0, each child one deeper),
    and any literal or intermediate value whose absolute value passes ``MAX_ABS``.

    Hint: ``ast.parse(text, mode="eval")`` gives an ``ast.Expression``; walk it recursively with
    ``isinstance`` checks on ``ast.Constant``, ``ast.UnaryOp`` (``ast.USub``, ``ast.UAdd``) and
    ``ast.BinOp`` (``ast.Add``, ``ast.Sub``, ``ast.Mult``, ``ast.Div``).

    >>> evaluate("(25 - 4) * 3 / 7")
    Fraction(9, 1)
    >>> evaluate("12 × 3 ÷ 8")
    Fraction(9, 2)
    >>> evaluate("__import__('os')")
    Traceback (most recent call last):
    ...
    ValueError: not allowed in arithmetic: Call
    """
    raise NotImplementedError("exercise 06: write evaluate in exercises/06_inference.py")
