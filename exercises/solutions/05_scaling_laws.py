"""Exercise 05 (scaling laws): reference solutions. Try the exercise yourself first!

Compute is arithmetic on the model's shape; the power law is a line in log-log space, and its
interval comes from refitting on points drawn with replacement. This file deliberately does not use
``minilm``: the tests compare it with ``minilm.studies.scaling_law`` and ``GPT.flops_per_token``.
"""

from __future__ import annotations

import numpy as np


def training_flops(n_params: float, n_tokens: float) -> float:
    return 6 * n_params * n_tokens


def attention_flops_per_token(n_layer: int, d_model: int, seq_len: int) -> float:
    return 12 * n_layer * d_model * seq_len


def flops_per_token(non_embedding_params: int, n_layer: int, d_model: int, seq_len: int) -> float:
    return 6 * non_embedding_params + attention_flops_per_token(n_layer, d_model, seq_len)


def _logs(x, y):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("x and y must be flat lists of the same length")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("a power law needs positive x and y")
    if np.unique(x).size < 2:
        raise ValueError("x needs at least two different values to fit a slope")
    return np.log(x), np.log(y)


def fit_power_law(x, y) -> tuple[float, float]:
    lx, ly = _logs(x, y)
    a, log_k = np.polyfit(lx, ly, 1)
    return float(np.exp(log_k)), float(a)


def exponent_interval(x, y, samples: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    lx, ly = _logs(x, y)
    rng = np.random.default_rng(seed)
    exponents = []
    for _ in range(samples):
        idx = rng.integers(0, lx.size, lx.size)
        if np.unique(lx[idx]).size < 2:  # one x value drawn every time: no slope
            continue
        exponents.append(np.polyfit(lx[idx], ly[idx], 1)[0])
    low, high = np.quantile(exponents, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
