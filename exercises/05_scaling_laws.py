"""Exercise 05 (scaling laws): count a transformer's training compute, and fit a power law with an interval.

Write the five functions below, replacing each ``raise NotImplementedError(...)``:

* the C = 6ND rule for the training compute of a run;
* the attention term that 6N leaves out, and a model's training FLOPs per token with it;
* a power law ``y = k x^a`` fitted as a straight line in log-log space;
* a bootstrap interval for its exponent: how sure the fit is, from the points themselves.

Check your work with ``make check CH=05`` (or ``minilm check 05``): the tests compare your functions
with ``minilm.studies.scaling_law`` and with ``GPT.flops_per_token`` of real models. Use plain Python
or numpy (``np.log``, ``np.polyfit``, ``np.quantile``, ``np.random.default_rng``). Reference
solutions are in ``exercises/solutions/``: try first!
"""

from __future__ import annotations

import numpy as np


def training_flops(n_params: float, n_tokens: float) -> float:
    """The compute of training ``n_params`` parameters on ``n_tokens`` tokens: 6 N D FLOPs.

    Each parameter does a multiply and an add per token in the forward pass (2 FLOPs) and twice
    that in the backward pass (4 FLOPs): gradients with respect to the inputs and to the weights.

    >>> training_flops(70e9, 1.4e12)  # Chinchilla: 70B parameters, 1.4T tokens
    5.88e+23
    """
    raise NotImplementedError("exercise 05: write training_flops in exercises/05_scaling_laws.py")


def attention_flops_per_token(n_layer: int, d_model: int, seq_len: int) -> float:
    """Training FLOPs per token of attention's scores and weighted sums, which 6N does not count.

    Per layer and token, ``q @ k^T`` against ``seq_len`` keys and ``scores @ v`` each take
    ``2 * d_model * seq_len`` FLOPs forward (heads x head_dim = d_model); the backward pass doubles
    both twice over, as for the weights: 3 x (2 + 2) x d_model x seq_len = 12 d_model seq_len per
    layer (Kaplan et al. 2020 count the forward pass; PaLM's appendix B, this sum).

    >>> attention_flops_per_token(n_layer=2, d_model=64, seq_len=128)
    196608
    """
    raise NotImplementedError("exercise 05: write attention_flops_per_token in exercises/05_scaling_laws.py")


def flops_per_token(non_embedding_params: int, n_layer: int, d_model: int, seq_len: int) -> float:
    """A model's training FLOPs per token: 6 N (N: the non-embedding parameters) plus attention's term.

    >>> flops_per_token(100_000, n_layer=2, d_model=64, seq_len=128)
    796608
    """
    raise NotImplementedError("exercise 05: write flops_per_token in exercises/05_scaling_laws.py")


def fit_power_law(x, y) -> tuple[float, float]:
    """``(k, a)`` of ``y = k x^a`` for positive ``x`` and ``y``: take logs, ``log y = log k + a log x``
    is a line, fit it by least squares. Raise ValueError if ``x`` has fewer than two distinct values
    (no slope to fit) or any value is not positive.

    >>> k, a = fit_power_law([1, 10, 100], [2, 20, 200])
    >>> round(k, 6), round(a, 6)
    (2.0, 1.0)
    """
    raise NotImplementedError("exercise 05: write fit_power_law in exercises/05_scaling_laws.py")


def exponent_interval(x, y, samples: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of the exponent ``a`` of :func:`fit_power_law`.

    ``samples`` times: draw ``len(x)`` indices with replacement with
    ``rng = np.random.default_rng(seed)`` and ``rng.integers(0, len(x), len(x))``, skip a draw whose
    x values are all equal, and fit the drawn points. Return the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of the exponents (``np.quantile``). Drawn this way, your interval
    and the package's are the same numbers.

    >>> low, high = exponent_interval([1, 2, 4, 8, 16], [3.1, 5.9, 12.4, 23.5, 49.0], samples=200)
    >>> low < 1.0 < high
    True
    """
    raise NotImplementedError("exercise 05: write exponent_interval in exercises/05_scaling_laws.py")
