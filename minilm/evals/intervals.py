"""How sure is a difference between two models measured on the same items? Paired bootstrap intervals.

Where training is too dear to repeat with several seeds (chapter 07's mid-training and growing runs),
the evidence for "A is better than B" has to come from the evaluation itself: both models answer
the *same* questions and read the *same* validation windows, so we resample those items (with
replacement, keeping each item's pair of results together) and see how far the difference moves.
Pairing removes the items' own difficulty from the noise, which makes the interval much narrower
than two separate intervals would be.

What such an interval does **not** cover: seed variance. Another seed would train other models,
whose difference may be larger or smaller; the interval says only that, for these two trained
models, the evaluation set is large enough (or not) to tell them apart.

>>> a = [1] * 80 + [0] * 20          # model A right on 80 of 100 questions
>>> b = [1] * 60 + [0] * 40          # model B right on 60 of the same questions
>>> d = accuracy_difference(a, b)
>>> round(d.value, 2), d.verdict, d.low > 0
(0.2, 'higher', True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..models.train import mixture_per_token

__all__ = ["Difference", "accuracy_difference", "loss_difference", "mean_difference", "VERDICT_WORDS"]

# How prose names a verdict, by what is compared: for accuracy higher is better, for a loss lower is.
VERDICT_WORDS = {"higher": "higher", "lower": "lower", "within noise": "within evaluation noise"}


@dataclass(frozen=True)
class Difference:
    """``value`` = metric of A minus metric of B, with a bootstrap interval ``[low, high]``."""

    value: float
    low: float
    high: float
    n: int  # items (questions or windows) the difference was measured on
    confidence: float = 0.95

    @property
    def verdict(self) -> str:
        """``"higher"`` (A above B) or ``"lower"`` when the interval excludes zero, else ``"within noise"``."""
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return "within noise"

    def as_dict(self) -> dict:
        return asdict(self) | {"verdict": self.verdict}

    @classmethod
    def from_dict(cls, d: dict) -> "Difference":
        """Back from :meth:`as_dict` (as a stage's JSON summary keeps it)."""
        return cls(d["value"], d["low"], d["high"], d["n"], d.get("confidence", 0.95))

    def describe(self, scale: float = 1.0, unit: str = "", digits: int = 3) -> str:
        """E.g. ``'+0.200 (95% interval +0.090 to +0.310)'``; ``scale`` 100 and unit ``' points'``
        for accuracies in percentage points."""
        f = f"{{:+.{digits}f}}"
        return (f"{f.format(scale * self.value)}{unit} ({100 * self.confidence:.0f}% interval "
                f"{f.format(scale * self.low)} to {f.format(scale * self.high)}{unit})")


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    return float(low), float(high)


def _resampled_sums(rng: np.random.Generator, values: np.ndarray, n_boot: int) -> np.ndarray:
    """Sums of ``values`` (rows of k quantities over n items) over ``n_boot`` resamples of the items
    with replacement: shape (k, n_boot). Drawn as how often each item is picked."""
    n = values.shape[-1]
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)  # (n_boot, n)
    return np.atleast_2d(values) @ counts.T


def _check(confidence: float, n_boot: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must lie between 0 and 1")
    if n_boot < 100:
        raise ValueError(f"n_boot={n_boot}: use at least 100 resamples")


def mean_difference(values_a, values_b, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0,
                    what: str = "item") -> Difference:
    """Mean of A minus mean of B over the same items (one value per item for each model, in the
    same order: a window's loss, a question's 0/1), with a paired bootstrap interval over the items.

    >>> mean_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.5]).value
    0.8333333333333334
    """
    a, b = np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need one value per {what} for both models, in the same order; got {a.shape} and {b.shape}")
    _check(confidence, n_boot)
    diff = a - b
    samples = _resampled_sums(np.random.default_rng(seed), diff, n_boot)[0] / diff.size
    return Difference(float(diff.mean()), *_interval(samples, confidence), n=int(diff.size), confidence=confidence)


def accuracy_difference(right_a, right_b, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> Difference:
    """Accuracy of A minus accuracy of B on the same questions (``right_*``: one 0/1 per question,
    in the same order), with a paired bootstrap interval over the questions.

    >>> accuracy_difference([1, 0, 1, 1], [1, 0, 1, 1]).verdict  # identical answers: no difference
    'within noise'
    """
    return mean_difference(right_a, right_b, n_boot, confidence, seed, what="question")


def loss_difference(windows_a: dict, windows_b: dict, weights: dict | None = None, metric: str = "loss",
                    n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> Difference:
    """Validation loss (or bits per byte) of A minus B, measured on the same windows.

    ``windows_*``: ``{source: (nats, targets, bytes)}``, the arrays of
    :func:`minilm.models.train.window_totals` per source. With ``weights`` (each source's share of
    the training tokens, as :class:`~minilm.models.train.SourceTokens` carries) the metric is the
    mixture's, computed as :func:`~minilm.models.train.evaluate` computes it; each bootstrap draw
    resamples the windows of every source separately (a stratified bootstrap), so each source keeps
    its weight.
    """
    if metric not in ("loss", "bpb"):
        raise ValueError(f"metric={metric!r}: use 'loss' or 'bpb'")
    if set(windows_a) != set(windows_b) or not windows_a:
        raise ValueError(f"both models must be measured on the same sources; got {sorted(windows_a)} and {sorted(windows_b)}")
    weights = weights or {source: 1.0 for source in windows_a}
    if set(weights) != set(windows_a):
        raise ValueError(f"weights name {sorted(weights)}, the windows {sorted(windows_a)}")
    _check(confidence, n_boot)
    rng = np.random.default_rng(seed)
    total = sum(weights.values())
    shares = {source: w / total for source, w in weights.items()}

    def mixture(sums: dict) -> np.ndarray:  # sums: source -> (nats, targets, bytes), arrays over draws
        nats, bytes_ = mixture_per_token(sums, shares)
        return nats if metric == "loss" else nats / np.log(2) / bytes_

    observed, draws, n = {}, {}, 0
    for source in windows_a:
        a = np.asarray(windows_a[source], dtype=float)
        b = np.asarray(windows_b[source], dtype=float)
        if a.shape != b.shape or a.ndim != 2 or a.shape[0] != 3:
            raise ValueError(f"{source}: give (nats, targets, bytes) of the same windows for both models")
        if metric == "bpb" and not a[2].sum():
            raise ValueError(f"{source}: bits per byte needs the windows' bytes (evaluate with byte_lengths)")
        if not np.array_equal(a[1], b[1]) or not np.array_equal(a[2], b[2]):
            raise ValueError(f"{source}: the two models were not measured on the same windows")
        n += a.shape[1]
        observed[source] = (a.sum(axis=1), b.sum(axis=1))
        both = _resampled_sums(rng, np.concatenate([a, b]), n_boot)  # the same draws for A and B: paired
        draws[source] = (both[:3], both[3:])  # (nats, targets, bytes) x n_boot each
    value = mixture({s: o[0] for s, o in observed.items()}) - mixture({s: o[1] for s, o in observed.items()})
    samples = mixture({s: d[0] for s, d in draws.items()}) - mixture({s: d[1] for s, d in draws.items()})
    return Difference(float(value), *_interval(samples, confidence), n=n, confidence=confidence)
