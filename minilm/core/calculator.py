"""A safe arithmetic evaluator: numbers, + - * /, unary minus and parentheses. Never ``eval``.

It walks Python's AST and accepts only those nodes, with limits on the length of the expression,
the size of numbers and the depth of nesting, so that text written by a model (a countdown answer,
a calculator tool call) can be evaluated without risk. Division is exact (fractions).

>>> evaluate("(25 - 4) * 3 / 7")
Fraction(9, 1)
>>> evaluate("0.1 + 0.2")
Fraction(3, 10)
>>> evaluate("__import__('os')")
Traceback (most recent call last):
...
minilm.core.calculator.CalculatorError: not allowed in arithmetic: Call
"""

from __future__ import annotations

import ast
import math
from fractions import Fraction

MAX_LENGTH = 200  # characters of expression
MAX_DEPTH = 30  # nesting of the syntax tree
MAX_ABS = 10**30  # any intermediate value larger than this is refused


class CalculatorError(ValueError):
    """The expression is not plain arithmetic, or is too large, or divides by zero."""


def _check(value: Fraction) -> Fraction:
    if abs(value) > MAX_ABS:
        raise CalculatorError("number too large")
    return value


def _walk(node: ast.AST, depth: int) -> Fraction:
    if depth > MAX_DEPTH:
        raise CalculatorError("expression nested too deeply")
    if isinstance(node, ast.Expression):
        return _walk(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if type(node.value) is float and not math.isfinite(node.value):  # "1e999" parses as inf
            raise CalculatorError("number too large")
        # The decimal as written, not the float's binary value: "0.1 + 0.2" is 3/10. repr gives the
        # shortest decimal that reads back as the same float, which is the literal as typed.
        return _check(Fraction(repr(node.value)) if type(node.value) is float else Fraction(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _walk(node.operand, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        left, right = _walk(node.left, depth + 1), _walk(node.right, depth + 1)
        if isinstance(node.op, ast.Add):
            return _check(left + right)
        if isinstance(node.op, ast.Sub):
            return _check(left - right)
        if isinstance(node.op, ast.Mult):
            return _check(left * right)
        if right == 0:
            raise CalculatorError("division by zero")
        return _check(left / right)
    raise CalculatorError(f"not allowed in arithmetic: {type(node).__name__}")


def evaluate(expression: str) -> Fraction:
    """The exact value of an arithmetic expression (``×`` and ``÷`` are accepted as ``*`` and ``/``)."""
    if not isinstance(expression, str):
        raise CalculatorError(f"expression must be text, got {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"expression longer than {MAX_LENGTH} characters")
    text = expression.replace("×", "*").replace("÷", "/").strip()
    if "**" in text:
        raise CalculatorError("not allowed in arithmetic: power")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from None
    return _walk(tree, 0)


def numbers_in(expression: str) -> list[int]:
    """The integer literals an expression uses, in order (for checking countdown answers).

    >>> numbers_in("(25 - 4) * 3")
    [25, 4, 3]
    """
    # The same limits as evaluate: a long expression overflows the parser's recursion.
    if not isinstance(expression, str):
        raise CalculatorError(f"expression must be text, got {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.replace("×", "*").replace("÷", "/").strip(), mode="eval")
    except SyntaxError:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from None
    constants = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and type(n.value) is int]
    return [n.value for n in sorted(constants, key=lambda n: n.col_offset)]
