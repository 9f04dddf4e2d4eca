"""Exercise 06 (inference): reference solutions. Try the exercise yourself first!

Nucleus filtering with a sort and a cumulative sum, a cache update that is two slice assignments,
absmax int8 quantization per row, and a calculator that walks the syntax tree and accepts only
arithmetic. This file deliberately does not use ``minilm``: the tests compare it with
``minilm.inference.generate``, ``minilm.models.gpt.KVCache``, ``minilm.inference.quantize`` and ``minilm.core.calculator``.
"""

from __future__ import annotations

import ast
from fractions import Fraction

import torch

MAX_LENGTH = 200  # characters of an expression
MAX_DEPTH = 30  # nesting of its syntax tree
MAX_ABS = 10**30  # the largest absolute value any intermediate result may have


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p} must be in (0, 1]")
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = sorted_logits.softmax(dim=-1)
    # The probability of the tokens before each one; the first token has 0 before it, so it stays.
    before = probs.cumsum(dim=-1) - probs
    sorted_logits = sorted_logits.masked_fill(before >= top_p, float("-inf"))
    # Put every logit back where it came from.
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


def kv_cache_update(cache_k: torch.Tensor, cache_v: torch.Tensor, start: int, k: torch.Tensor,
                    v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    end = start + k.shape[2]
    if end > cache_k.shape[2]:
        raise ValueError(f"KV cache holds {cache_k.shape[2]} positions; writing up to position {end}")
    cache_k[:, :, start:end] = k
    cache_v[:, :, start:end] = v
    # Slicing makes views: no copy of the history, whatever its length.
    return cache_k[:, :, :end], cache_v[:, :, :end]


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
    w = weight.float()
    scale = w.abs().amax(dim=1) / 127
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float()[:, None]


def _checked(value: Fraction) -> Fraction:
    if abs(value) > MAX_ABS:
        raise ValueError("number too large")
    return value


def _walk(node: ast.AST, depth: int) -> Fraction:
    if depth > MAX_DEPTH:
        raise ValueError("expression nested too deeply")
    if isinstance(node, ast.Expression):
        return _walk(node.body, depth + 1)
    # type(...) in (int, float), not isinstance: True is an int to isinstance.
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        # The decimal as written (repr: the shortest decimal that reads back as this float), not its binary value.
        return _checked(Fraction(repr(node.value)) if type(node.value) is float else Fraction(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _walk(node.operand, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        left, right = _walk(node.left, depth + 1), _walk(node.right, depth + 1)
        if isinstance(node.op, ast.Add):
            return _checked(left + right)
        if isinstance(node.op, ast.Sub):
            return _checked(left - right)
        if isinstance(node.op, ast.Mult):
            return _checked(left * right)
        if right == 0:
            raise ValueError("division by zero")
        return _checked(left / right)
    # Everything else -- names, calls, attributes, subscripts, lists, strings, ** -- is refused.
    raise ValueError(f"not allowed in arithmetic: {type(node).__name__}")


def evaluate(expression: str) -> Fraction:
    if not isinstance(expression, str):
        raise ValueError(f"expression must be text, got {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise ValueError(f"expression longer than {MAX_LENGTH} characters")
    text = expression.replace("×", "*").replace("÷", "/").strip()
    if "**" in text:
        raise ValueError("not allowed in arithmetic: power")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from None
    return _walk(tree, 0)
