"""Checks of user-given values: each failure is one line naming the value and what is allowed.

The configuration dataclasses validate themselves with these, and so does every function that
takes a size, a count or a choice from a user, so a bad value fails at once with a clear message
instead of deep inside torch.
"""

from __future__ import annotations

from numbers import Integral


class ConfigError(ValueError):
    """A configuration value is wrong. The message is one line naming the field and what is allowed."""


def check_range(name: str, value, low, high) -> None:
    """Raise ConfigError unless ``low <= value <= high`` (and value is a number of the right kind).

    >>> check_range("vocab_size", 512, 257, 65536)
    >>> check_range("vocab_size", 10, 257, 65536)
    Traceback (most recent call last):
    ...
    minilm.core.checks.ConfigError: vocab_size=10 is out of range: it must be between 257 and 65536
    """
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(low, int) and isinstance(high, int) and not isinstance(value, int):
        is_number = False
    if not is_number:
        kind = "an integer" if isinstance(low, int) and isinstance(high, int) else "a number"
        raise ConfigError(f"{name}={value!r} is not {kind}: it must be between {low} and {high}")
    if not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is out of range: it must be between {low} and {high}")


def check_learning_rate(name: str, value, high: float = 10.0) -> None:
    """Raise ConfigError unless ``value`` is a learning rate a stage can learn with: above 0.

    >>> check_learning_rate("lr", 0.0)
    Traceback (most recent call last):
    ...
    minilm.core.checks.ConfigError: lr=0.0: a learning rate of 0 (or less) trains nothing; give one above 0, at most 10.0
    """
    check_range(name, value, 0.0, high)
    if value <= 0:
        raise ConfigError(f"{name}={value!r}: a learning rate of 0 (or less) trains nothing; give one above 0, at most {high}")


def check_count(name: str, value, low: int = 1, note: str = "") -> None:
    """Raise ValueError unless ``value`` is a whole number (an int or a numpy integer, not a bool
    or a float: 2.5 steps or True tokens are mistakes) of at least ``low``; ``note`` ends the message.

    >>> check_count("max_docs", 3)
    >>> check_count("top_k", 0, note=" (or None: no top-k)")
    Traceback (most recent call last):
    ...
    ValueError: top_k=0 must be a whole number >= 1 (or None: no top-k)
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name}={value!r} must be a whole number >= {low}{note}")


def check_choice(name: str, value, choices) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``.

    >>> check_choice("budget", "laptop", ("smoke", "laptop", "gpu"))
    """
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{name}={value!r} is not allowed: choose one of {allowed}")
