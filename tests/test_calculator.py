"""The safe arithmetic evaluator."""

from fractions import Fraction

import pytest

from minilm.core.calculator import CalculatorError, evaluate, numbers_in


@pytest.mark.parametrize("expression, value", [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("-4 + 10", 6), ("7 / 2", Fraction(7, 2)), ("12 × 3 ÷ 4", 9),
    ("  42 ", 42), ("2.5 * 2", 5),
])
def test_arithmetic(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize("expression, message", [
    ("__import__('os').system('ls')", "not allowed"), ("x + 1", "not allowed"), ("2 ** 100000", "power"),
    ("1 / 0", "division by zero"), ("-" * 50 + "1", "nested too deeply"),
    ("9" * 40, "too large"), ("1e999", "too large"), ("-1e999 + 1", "too large"), ("1 +", "not an arithmetic expression"), ("1" * 300, "longer than"),
    ("[1, 2]", "not allowed"), ("'a' + 'b'", "not allowed"), ("True + 1", "not allowed"),
])
def test_refuses_anything_else(expression, message):
    with pytest.raises(CalculatorError, match=message):
        evaluate(expression)


def test_numbers_in_order():
    assert numbers_in("(100 - 7) * 3 + 25") == [100, 7, 3, 25]


def test_decimals_are_the_decimals_written():
    # Fraction(0.1) would be the float's binary value, 3602879701896397/36028797018963968.
    assert evaluate("0.1 + 0.2") == Fraction(3, 10)
    assert evaluate("1e29 * 10") == 10**30 and evaluate("2.5 * 2") == 5


@pytest.mark.parametrize("expression, message", [("1+" * 50_000 + "1", "longer than 200"), (None, "must be text")])
def test_numbers_in_has_evaluates_limits(expression, message):
    with pytest.raises(CalculatorError, match=message):
        numbers_in(expression)
