"""Scaling laws: count compute, fit L(N, D), allocate a budget (the sweep that trains: :mod:`minilm.studies.scaling_sweep`).

The training compute of a dense transformer is about ``C = 6 N D`` FLOPs: each parameter does a
multiply and an add per token in the forward pass (2 FLOPs) and twice that in the backward pass
(4 FLOPs), for N parameters and D training tokens (Kaplan et al. 2020). Hoffmann et al. 2022
("Chinchilla") model the final loss of a run as

    L(N, D) = E + A / N^alpha + B / D^beta

fit it to hundreds of runs (their approach 3: Huber loss on log L, many initialisations) and solve
for the N and D that minimise L at a fixed C. The minimiser has a closed form: with
``G = (alpha A / (beta B))^(1 / (alpha + beta))``,

    N_opt = G (C/6)^(beta / (alpha + beta)),    D_opt = (C/6)^(alpha / (alpha + beta)) / G.

A model that will also serve many tokens should be smaller and trained longer than that: the
total cost ``6 N D + 2 N D_inference`` is lowest for a smaller N (Sardana et al. 2023).

Parameter convention: ``N`` in the sweep counts **all** parameters, as Hoffmann et al. did (and the
published fits ``CHINCHILLA`` and ``EPOCH_REFIT``); the records also hold the non-embedding count
of Kaplan et al., ``GPT.num_params(non_embedding=True)``.

>>> n, d = compute_optimal(5.76e23, CHINCHILLA)
>>> round(6 * n * d / 5.76e23, 6)
1.0
>>> round(float(training_flops(70e9, 1.4e12)), -20)
5.88e+23
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..core.checks import check_count


# ----------------------------------------------------------------------------------------------
# Input checks


def _as_positive_array(name: str, values, allow_empty: bool = False) -> np.ndarray:
    """A float64 array of finite, positive numbers, or a ValueError that names ``name``."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers, got {values!r}") from None
    if array.ndim > 1:
        raise ValueError(f"{name} must be a number or a flat list of numbers, got shape {array.shape}")
    if array.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: give at least one value")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite numbers, got {values!r}")
    if np.any(array <= 0):
        raise ValueError(f"{name} must be positive, got {array[array <= 0][:3].tolist()}")
    return array


def _scalar_or_array(values: np.ndarray, *inputs):
    """A float when every input was a single number, else the array."""
    return float(values) if all(np.ndim(x) == 0 for x in inputs) else values


# ----------------------------------------------------------------------------------------------
# Compute


def training_flops(n_params, n_tokens):
    """Training compute C = 6 N D in FLOPs (forward 2 N D, backward 4 N D); arrays broadcast.

    >>> training_flops(1e6, 2e7)
    120000000000000.0
    """
    n = _as_positive_array("n_params", n_params)
    d = _as_positive_array("n_tokens", n_tokens)
    return _scalar_or_array(6.0 * n * d, n_params, n_tokens)


def measured_flops_per_token(model, seq_len: int, batch_size: int = 1, seed: int = 0) -> float:
    """Training FLOPs per token counted by PyTorch: one forward and backward pass on random tokens,
    with every matrix product counted by ``torch.utils.flop_counter.FlopCounterMode``.

    Attention runs through the plain "math" kernel while counting, so its products are counted
    too (fused kernels are invisible to the counter on CPU). The model's gradients are cleared
    afterwards.
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    if seq_len < 1 or seq_len > model.config.block_size:
        raise ValueError(f"seq_len={seq_len} must be between 1 and block_size={model.config.block_size}")
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    idx = torch.randint(0, model.config.vocab_size, (batch_size, seq_len), generator=generator).to(device)
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        _, loss = model(idx, idx)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / idx.numel()


def flops_check(model, seq_len: int) -> dict:
    """6N against the model's own count and against PyTorch's, per training token.

    - ``six_n``: 6 x non-embedding parameters (the C = 6ND rule, Kaplan's convention);
    - ``model``: ``GPT.flops_per_token``: 6N plus attention's 12 x layers x d_model x T;
    - ``unembedding``: 6 x vocab x d_model, the output layer's product, left out of both above;
    - ``measured``: what FlopCounterMode counts: ``model + unembedding``, less 6 x the norms'
      gains (parameters in N that multiply no matrix);
    - ``attention_share``: attention's part of ``model``; ``six_n_error``: 6N / model - 1.
    """
    cfg = model.config
    six_n = 6.0 * model.num_params(non_embedding=True)
    analytic = float(model.flops_per_token(seq_len))
    unembedding = 6.0 * cfg.vocab_size * cfg.n_embd
    measured = measured_flops_per_token(model, seq_len)
    return {"seq_len": seq_len, "six_n": six_n, "model": analytic, "unembedding": unembedding,
            "measured": measured, "attention_share": (analytic - six_n) / analytic,
            "six_n_error": six_n / analytic - 1.0, "measured_error": measured / (analytic + unembedding) - 1.0}


# ----------------------------------------------------------------------------------------------
# The law and its published fits


@dataclass(frozen=True)
class ScalingFit:
    """L(N, D) = E + A / N^alpha + B / D^beta, in nats per token."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""

    def __post_init__(self):
        for name in ("E", "A", "B", "alpha", "beta"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"ScalingFit.{name}={value!r} must be a finite number >= 0")
            if name != "E" and value == 0:  # E = 0 is a pure power law; A, B or an exponent of 0 is no law
                raise ValueError(f"ScalingFit.{name}=0 must be positive")

    def loss(self, n_params, n_tokens):
        """Predicted loss of a model of N parameters trained on D tokens (arrays broadcast)."""
        n = _as_positive_array("n_params", n_params)
        d = _as_positive_array("n_tokens", n_tokens)
        value = self.E + self.A / n**self.alpha + self.B / d**self.beta
        return _scalar_or_array(value, n_params, n_tokens)

    @property
    def a(self) -> float:
        """Exponent of N_opt in C: beta / (alpha + beta)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt in C: alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def as_dict(self) -> dict:
        return asdict(self)


# Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", approach 3 (eq. 10),
# the constants as printed in the paper; N counts all parameters.
CHINCHILLA = ScalingFit(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
                        source="Hoffmann et al. 2022, approach 3")
# Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt" (arXiv 2404.10102): the same
# approach refit to data read off Hoffmann et al.'s figure; agrees with their approaches 1 and 2.
EPOCH_REFIT = ScalingFit(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658,
                         source="Besiroglu et al. 2024 (refit of approach 3)")


def compute_optimal(compute, fit: ScalingFit):
    """(N_opt, D_opt) minimising fit.loss(N, D) subject to 6 N D = compute (arrays accepted).

    >>> n, d = compute_optimal(1e21, CHINCHILLA)
    >>> f"{n:.3g} parameters, {d:.3g} tokens"
    '1.82e+09 parameters, 9.14e+10 tokens'
    """
    c = _as_positive_array("compute", compute)
    n_opt = fit.G * (c / 6.0) ** fit.a
    d_opt = (c / 6.0) / n_opt  # = (C/6)^b / G
    return _scalar_or_array(n_opt, compute), _scalar_or_array(d_opt, compute)


def tokens_per_parameter(compute, fit: ScalingFit):
    """D_opt / N_opt at a compute budget: G^-2 (C/6)^(b - a)."""
    n_opt, d_opt = compute_optimal(compute, fit)
    return d_opt / n_opt


def optimal_loss(compute, fit: ScalingFit):
    """The loss of the compute-optimal model at a budget."""
    n_opt, d_opt = compute_optimal(compute, fit)
    return fit.loss(n_opt, d_opt)


def isoflop_curve(compute: float, fit: ScalingFit, n_params) -> tuple[np.ndarray, np.ndarray]:
    """Along a fixed budget C: the tokens D = C / (6N) each model size N gets, and its loss.

    >>> d, loss = isoflop_curve(6e20, CHINCHILLA, [1e9, 1e10])
    >>> d.tolist()
    [100000000000.0, 10000000000.0]
    """
    if np.ndim(compute) != 0:
        raise ValueError("compute must be one number (one isoFLOP curve per budget)")
    c = float(_as_positive_array("compute", compute))
    n = _as_positive_array("n_params", n_params).reshape(-1)
    d = c / (6.0 * n)
    return d, np.asarray(fit.loss(n, d), dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Fitting L(N, D)


@dataclass(frozen=True)
class FitResult:
    fit: ScalingFit
    objective: float  # the Huber objective at the optimum (sum over points)
    rms_log_error: float  # root mean square of log(predicted) - log(measured)
    starts: int  # initialisations tried


def _grid_starts(logn, logd, logl, alphas, betas, keep: int) -> list[tuple[float, ...]]:
    """Variable projection: for each (alpha, beta) the law is linear in (E, A, B), so least squares
    gives them at once; keep the ``keep`` best grid points with E, A, B > 0 as starting points."""
    x = np.exp(-np.multiply.outer(alphas, logn))  # (na, n)
    y = np.exp(-np.multiply.outer(betas, logd))  # (nb, n)
    target = np.exp(logl)
    na, nb, n = len(alphas), len(betas), len(logn)
    design = np.stack(np.broadcast_arrays(np.ones((na, nb, n)), x[:, None, :], y[None, :, :]), axis=-1)
    gram = np.einsum("abni,abnj->abij", design, design) + 1e-12 * np.eye(3)
    rhs = np.einsum("abni,n->abi", design, target)
    try:
        coef = np.linalg.solve(gram, rhs[..., None])[..., 0]  # (na, nb, 3): E, A, B
    except np.linalg.LinAlgError:
        return []
    pred = np.einsum("abni,abi->abn", design, coef)
    feasible = np.all(coef > 0, axis=-1) & np.all(pred > 0, axis=-1)
    score = np.where(feasible, ((np.log(np.where(pred > 0, pred, 1.0)) - logl) ** 2).sum(-1), np.inf)
    order = np.argsort(score, axis=None)[:keep]
    starts = []
    for flat in order:
        i, j = np.unravel_index(flat, score.shape)
        if not np.isfinite(score[i, j]):
            break
        e, a_coef, b_coef = coef[i, j]
        starts.append((math.log(a_coef), math.log(b_coef), math.log(e), float(alphas[i]), float(betas[j])))
    return starts


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _huber(r: np.ndarray, delta: float) -> float:
    """Sum of Huber losses: r^2 / 2 inside +-delta, delta (|r| - delta/2) outside (as torch's)."""
    small = np.abs(r) <= delta
    return float(np.sum(np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))))


def _levenberg_marquardt(theta, logn, logd, logl, delta, max_exponent, max_iter):
    """Minimise the Huber objective from ``theta`` = (a, b, e, logit alpha, logit beta) by
    Levenberg-Marquardt on iteratively reweighted least squares (weights min(1, delta/|r|)).
    Returns (theta, objective)."""

    def residuals(t):
        alpha, beta = max_exponent / (1 + np.exp(-t[3])), max_exponent / (1 + np.exp(-t[4]))
        terms = np.stack([t[0] - alpha * logn, t[1] - beta * logd, np.full_like(logn, t[2])])
        top = terms.max(axis=0)
        weights = np.exp(terms - top)
        total = weights.sum(axis=0)
        return top + np.log(total) - logl, weights / total, alpha, beta

    r, soft, alpha, beta = residuals(theta)
    value, damping = _huber(r, delta), 1e-3
    for _ in range(max_iter):
        jac = np.stack([soft[0], soft[1], soft[2],
                        -soft[0] * logn * alpha * (1 - alpha / max_exponent),
                        -soft[1] * logd * beta * (1 - beta / max_exponent)], axis=1)
        w = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))
        grad = jac.T @ (w * r)
        hess = jac.T @ (w[:, None] * jac)
        if np.max(np.abs(grad)) < 1e-14:
            break
        for _ in range(30):
            try:
                step = np.linalg.solve(hess + damping * (np.diag(np.diag(hess)) + 1e-12 * np.eye(5)), -grad)
            except np.linalg.LinAlgError:
                damping *= 10
                continue
            trial = theta + step
            r_new, soft_new, alpha_new, beta_new = residuals(trial)
            new_value = _huber(r_new, delta) if np.all(np.isfinite(r_new)) else math.inf
            if new_value <= value:
                break
            damping *= 10
        else:
            break  # no step lowers the objective: converged (or stuck)
        improvement = value - new_value
        theta, r, soft, alpha, beta, value = trial, r_new, soft_new, alpha_new, beta_new, new_value
        damping = max(damping / 5, 1e-15)
        if improvement <= 1e-16 * max(value, 1e-300) and np.max(np.abs(step)) < 1e-12:
            break
    return theta, value


def fit_scaling_law(n_params, n_tokens, losses, delta: float = 1e-3, max_exponent: float = 2.5,
                    grid_starts: int = 8, max_iter: int = 500) -> FitResult:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta as Hoffmann et al. 2022 (approach 3) do.

    Minimise the Huber loss (``delta``) between log L and the model's log-sum-exp form
    ``LSE(a - alpha log N, b - beta log D, e)`` with A = e^a, B = e^b, E = e^e, from many
    initialisations; keep the best. (Hoffmann et al. use L-BFGS; we use Levenberg-Marquardt on
    reweighted least squares, which reaches the same minimum in far fewer steps.) The starts are
    the best points of a grid over (alpha, beta), where E, A, B follow by linear least squares
    (variable projection), plus a few of Hoffmann et al.'s fixed starts. Exponents are kept in
    (0, ``max_exponent``).

    >>> rng = np.random.default_rng(0)
    >>> n, d = 10 ** rng.uniform(5, 8, 40), 10 ** rng.uniform(7, 10, 40)
    >>> result = fit_scaling_law(n, d, CHINCHILLA.loss(n, d))
    >>> round(result.fit.alpha, 3), round(result.fit.beta, 3), round(result.fit.E, 3)
    (0.34, 0.28, 1.69)
    """
    n = _as_positive_array("n_params", n_params)
    d = _as_positive_array("n_tokens", n_tokens)
    loss = _as_positive_array("losses", losses)
    if not (n.ndim == d.ndim == loss.ndim == 1) or not (len(n) == len(d) == len(loss)):
        raise ValueError(f"n_params, n_tokens and losses must be lists of the same length, "
                         f"got {n.size}, {d.size} and {loss.size}")
    if len(n) < 5:
        raise ValueError(f"fitting 5 constants needs at least 5 runs, got {len(n)}")
    # With one N (or one D) the law's dependence on it is undetermined: any fit would be arbitrary.
    if len(np.unique(n)) < 2 or len(np.unique(d)) < 2:
        raise ValueError(f"fitting how the loss falls with N and D needs runs at 2 or more different n_params and "
                         f"2 or more different n_tokens, got {len(np.unique(n))} and {len(np.unique(d))}")
    if not delta > 0:
        raise ValueError(f"delta={delta} must be positive")
    if not 0 < max_exponent < math.inf:
        raise ValueError(f"max_exponent={max_exponent} must be a positive finite number")
    for name, value in (("grid_starts", grid_starts), ("max_iter", max_iter)):
        check_count(name, value)
    logn, logd, logl = np.log(n), np.log(d), np.log(loss)

    grid = np.linspace(0.02, max_exponent * 0.96, 60)
    starts = _grid_starts(logn, logd, logl, grid, grid, grid_starts)
    for exponent in (0.3, 1.0):  # a few fixed starts in the spirit of Hoffmann et al.'s grid
        for log_coefficient in (5.0, 15.0):
            starts.append((log_coefficient, log_coefficient, 0.0, exponent, exponent))

    best, best_value = None, math.inf
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for a0, b0, e0, alpha0, beta0 in starts:
            theta = np.array([a0, b0, e0, _logit(alpha0 / max_exponent), _logit(beta0 / max_exponent)])
            theta, value = _levenberg_marquardt(theta, logn, logd, logl, delta, max_exponent, max_iter)
            if math.isfinite(value) and value < best_value:
                best, best_value = theta, value
    if best is None:
        raise RuntimeError("no initialisation of the scaling-law fit converged")
    alpha, beta = (max_exponent / (1 + math.exp(-best[i])) for i in (3, 4))
    if not (math.exp(best[0]) > 0 and math.exp(best[1]) > 0 and math.isfinite(math.exp(max(best[0], best[1])))):
        raise RuntimeError(f"the runs do not determine the law: the fit sent A = e^{best[0]:.4g} or B = e^{best[1]:.4g} "
                           f"to 0 or infinity (does the loss fall with both N and D?)")
    fit = ScalingFit(E=math.exp(best[2]), A=math.exp(best[0]), B=math.exp(best[1]), alpha=alpha, beta=beta,
                     source="fit")
    rms = float(np.sqrt(np.mean((np.log(fit.loss(n, d)) - logl) ** 2)))
    return FitResult(fit=fit, objective=best_value, rms_log_error=rms, starts=len(starts))


def bootstrap_fits(n_params, n_tokens, losses, samples: int = 50, seed: int = 0, **options) -> list[ScalingFit]:
    """Refit on ``samples`` resamples of the runs (drawn with replacement): the spread of the
    constants is how much a sweep this size pins them down. Resamples too degenerate to fit
    (fewer than 5 distinct runs, a single N or D, or a law they do not determine) are skipped."""
    n, d, loss = (np.asarray(v, dtype=np.float64) for v in (n_params, n_tokens, losses))
    if not (len(n) == len(d) == len(loss)):
        raise ValueError(f"n_params, n_tokens and losses must have the same length, got {len(n)}, {len(d)}, {len(loss)}")
    rng = np.random.default_rng(seed)
    fits = []
    for _ in range(samples):
        pick = rng.integers(0, len(n), size=len(n))
        if len(np.unique(pick)) < 5 or len(np.unique(n[pick])) < 2 or len(np.unique(d[pick])) < 2:
            continue
        try:
            fits.append(fit_scaling_law(n[pick], d[pick], loss[pick], **options).fit)
        except RuntimeError:
            continue
    return fits


# ----------------------------------------------------------------------------------------------
# One power law, y = k x^a (the isoFLOP optima against compute: Hoffmann et al.'s approach 2)


def _paired_logs(x, y) -> tuple[np.ndarray, np.ndarray]:
    lx, ly = np.log(_as_positive_array("x", x)), np.log(_as_positive_array("y", y))
    if lx.shape != ly.shape:
        raise ValueError(f"x and y must have the same length, got {lx.size} and {ly.size}")
    if np.unique(lx).size < 2:
        raise ValueError("x needs at least two different values to fit a slope")
    return lx, ly


def fit_power_law(x, y) -> tuple[float, float]:
    """``(k, a)`` of ``y = k x^a``: a least-squares line through ``(log x, log y)``.

    >>> k, a = fit_power_law([1, 10, 100], [2, 20, 200])
    >>> round(k, 6), round(a, 6)
    (2.0, 1.0)
    """
    lx, ly = _paired_logs(x, y)
    a, log_k = np.polyfit(lx, ly, 1)
    return float(np.exp(log_k)), float(a)


def power_law_interval(x, y, samples: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of the exponent ``a`` of :func:`fit_power_law`.

    ``samples`` times: draw ``len(x)`` indices with replacement (``numpy.random.default_rng(seed)``,
    ``rng.integers(0, len(x), len(x))``), skip a draw whose x values are all equal (no slope), fit.
    The interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the exponents
    (``numpy.quantile``'s default, linear).

    >>> low, high = power_law_interval([1, 2, 4, 8, 16], [3.1, 5.9, 12.4, 23.5, 49.0], samples=200)
    >>> low < 1.0 < high
    True
    """
    check_count("samples", samples)
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must be between 0 and 1")
    lx, ly = _paired_logs(x, y)
    rng = np.random.default_rng(seed)
    exponents = []
    for _ in range(samples):
        idx = rng.integers(0, lx.size, lx.size)
        if np.unique(lx[idx]).size < 2:
            continue
        exponents.append(np.polyfit(lx[idx], ly[idx], 1)[0])
    if not exponents:
        raise ValueError("every bootstrap draw had a single x value: give more distinct points")
    low, high = np.quantile(exponents, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def isoflop_minimum(n_params, losses) -> tuple[float, float]:
    """The bottom of one isoFLOP curve: ``(N_opt, loss there)`` of a parabola in log N fitted to
    the losses of models trained with the same compute (Hoffmann et al.'s approach 2).

    >>> n = np.array([1e3, 1e4, 1e5])
    >>> [round(float(v), 6) for v in isoflop_minimum(n, 2 + (np.log(n) - np.log(3e3)) ** 2)]
    [3000.0, 2.0]
    """
    x = np.log(_as_positive_array("n_params", n_params)).reshape(-1)
    y = np.asarray(losses, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"n_params and losses must have the same length, got {x.size} and {y.size}")
    if np.unique(x).size < 3:
        raise ValueError("a parabola needs losses at 3 or more model sizes")
    c2, c1, c0 = np.polyfit(x, y, 2)
    if not c2 > 0:
        raise ValueError("the losses do not curve up along log N: this isoFLOP curve has no minimum")
    x_opt = -c1 / (2 * c2)
    return float(np.exp(x_opt)), float(c0 - c1 * c1 / (4 * c2))


def approach2(compute, n_params, losses, missing_ok: bool = False) -> dict:
    """Hoffmann et al.'s approach 2: the best N of every compute level (:func:`isoflop_minimum`),
    then the power law ``N_opt = k C^a`` through them (:func:`fit_power_law`); D_opt = C / 6N_opt.

    A level whose losses do not curve up has no minimum: a ValueError, or with ``missing_ok`` a NaN
    for that level, left out of the power law (whose ``k`` and ``a`` are NaN with fewer than two
    minima left).

    >>> c = np.repeat([1e12, 1e13], 3)
    >>> n = np.array([1e4, 3e4, 1e5, 3e4, 1e5, 3e5])
    >>> best = np.repeat([3e4, 3e4 * 10 ** 0.5], 3)  # the best N grows as C^0.5
    >>> fit = approach2(c, n, 2 + (np.log(n) - np.log(best)) ** 2)
    >>> round(fit["a"], 3)
    0.5
    """
    c = _as_positive_array("compute", compute).reshape(-1)
    n = _as_positive_array("n_params", n_params).reshape(-1)
    y = np.asarray(losses, dtype=np.float64).reshape(-1)
    if not c.shape == n.shape == y.shape:
        raise ValueError(f"compute, n_params and losses must have the same length, got {c.size}, {n.size}, {y.size}")
    levels = np.unique(c)
    if levels.size < 2:
        raise ValueError("a power law in compute needs 2 or more compute levels")
    minima = []
    for level in levels:
        try:
            minima.append(isoflop_minimum(n[c == level], y[c == level]))
        except ValueError:
            if not missing_ok:
                raise
            minima.append((math.nan, math.nan))
    n_opt = np.array([m[0] for m in minima])
    found = np.isfinite(n_opt)
    k, a = fit_power_law(levels[found], n_opt[found]) if found.sum() >= 2 else (math.nan, math.nan)
    d_opt = levels / (6.0 * n_opt)
    return {"compute": levels.tolist(), "n_opt": n_opt.tolist(), "loss_opt": [m[1] for m in minima],
            "d_opt": d_opt.tolist(), "tokens_per_param": (d_opt / n_opt).tolist(), "k": k, "a": a}


# ----------------------------------------------------------------------------------------------
# Inference-optimal: training plus serving


def inference_optimal(fit: ScalingFit, loss: float, inference_tokens: float, grid: int = 4001) -> dict:
    """The model that reaches ``loss`` at the lowest total cost, training plus serving
    ``inference_tokens`` tokens: minimise 6 N D + 2 N D_inference subject to L(N, D) = loss
    (Sardana et al. 2023). With ``inference_tokens=0`` this is the compute-optimal model.

    Every N above N_min = (A / (loss - E))^(1/alpha) reaches the loss with
    D(N) = (B / (loss - E - A / N^alpha))^(1/beta) tokens; the cost is minimised over log N on a
    grid, then refined by golden-section search.

    >>> best = inference_optimal(CHINCHILLA, 2.0, 0.0)
    >>> n, d = compute_optimal(best["train_flops"], CHINCHILLA)
    >>> round(best["n_params"] / n, 4), round(best["train_tokens"] / d, 4)
    (1.0, 1.0)
    """
    if not isinstance(fit, ScalingFit):
        raise ValueError(f"fit must be a ScalingFit, got {type(fit).__name__}")
    if not (isinstance(loss, (int, float)) and math.isfinite(loss)) or loss <= fit.E:
        raise ValueError(f"loss={loss!r} must be above the fit's irreducible loss E={fit.E:.4g}")
    if not (isinstance(inference_tokens, (int, float)) and math.isfinite(inference_tokens)) or inference_tokens < 0:
        raise ValueError(f"inference_tokens={inference_tokens!r} must be a number >= 0")
    gap = loss - fit.E
    log_n_min = math.log(fit.A / gap) / fit.alpha

    def tokens(log_n):
        left = gap - fit.A * np.exp(-fit.alpha * log_n)
        return np.where(left > 0, (fit.B / np.where(left > 0, left, 1.0)) ** (1.0 / fit.beta), np.inf)

    def log_cost(log_n):
        n = np.exp(log_n)
        return np.log(6.0 * n * tokens(log_n) + 2.0 * n * inference_tokens)

    xs = log_n_min + np.geomspace(1e-6, 40.0, grid)  # from just above N_min to e^40 times it
    costs = log_cost(xs)
    i = int(np.argmin(costs))
    lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(200):  # golden-section search on the bracket around the grid minimum
        x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if log_cost(x1) < log_cost(x2):
            hi = x2
        else:
            lo = x1
    log_n = (lo + hi) / 2
    n, d = math.exp(log_n), float(tokens(log_n))
    train, serve = 6.0 * n * d, 2.0 * n * inference_tokens
    return {"n_params": n, "train_tokens": d, "tokens_per_param": d / n, "train_flops": train,
            "inference_flops": serve, "total_flops": train + serve, "loss": loss}
