"""A memory of the document: the cache language model.

Text repeats itself locally. A play names its characters in every speaker line, a scene returns
to its phrases, and none of that is in the training text when the play is new. A model that reads
a 64-token window cannot know that "MALVOLIO" has been speaking for three acts; counting the
document read so far can. The cache language model (Kuhn & De Mori 1990; Jelinek et al. 1991;
Grave et al., "Improving neural language models with a continuous cache", 2017) mixes such counts
into a trained model's predictions, reading only text that came before the predicted token.

Here the counts of the document so far are mixed in as a Witten-Bell style recursion over history
lengths ``k = 0 .. order - 1``, starting from the base model's prediction ``p_base``::

    p_k(w | h) = (c(h_k w) + beta_k * u(h_k) * p_{k-1}(w | h)) / (c(h_k) + beta_k * u(h_k))

where ``h_k`` is the last ``k`` tokens, ``c`` counts in the current document before this token,
``u(h_k)`` is how many different tokens followed ``h_k`` so far, and a history not yet seen in the
document leaves the prediction as it is. A history seen often and always followed by the same
token gets most of the weight (a speaker's name after its first letters); a history followed by
many different tokens gets little. Each level mixes two distributions that sum to one, so the
result does too. The ``beta`` of each level is fitted by maximum likelihood on held-out documents
(:func:`fit_cache`), as an interpolation weight is.

Only the probabilities of the tokens that came are needed to score text, so everything works on
those: :func:`cache_statistics` counts, for every position of a stream at once (sorting, no Python
loop), what the document before it holds; :func:`cache_probs` applies the recursion to a base
model's probabilities of the same tokens.

>>> tokens = np.array([5, 6, 7, 5, 6, 7, 5, 6])
>>> stats = cache_statistics(tokens, order=3)
>>> stats[:, 1, 7].tolist()  # before the last 6: "5" was seen twice, followed by 6 both times
[2.0, 2.0, 1.0]
>>> base = np.full(len(tokens), 0.1)  # the base model gives every token 0.1
>>> cache_probs(base, stats, betas=[10.0, 1.0, 1.0]).round(3).tolist()
[0.1, 0.091, 0.091, 0.121, 0.559, 0.779, 0.785, 0.856]
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.checks import check_count
from .ngram import check_keys_fit, ngram_keys


def document_ids(n_tokens: int, doc_starts=(0,)) -> np.ndarray:
    """The document each position of a stream belongs to, from where the documents start (the
    first must start at 0).

    >>> document_ids(5, doc_starts=[0, 2]).tolist()
    [0, 0, 1, 1, 1]
    """
    starts = np.asarray(doc_starts, dtype=np.int64).reshape(-1)
    if not len(starts) or starts[0] != 0 or (np.diff(starts) <= 0).any() or starts[-1] >= max(n_tokens, 1):
        raise ValueError(f"doc_starts must begin at 0 and increase within the stream of {n_tokens} tokens, got {starts.tolist()}")
    return np.searchsorted(starts, np.arange(n_tokens), side="right") - 1


def _earlier_in_group(groups: tuple[np.ndarray, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
    """For positions grouped by equal ``groups`` keys: how many earlier positions share each
    position's group, and the order that sorts positions by group then position."""
    order = np.lexsort((np.arange(n),) + tuple(reversed(groups)))  # by groups[0], ..., then position
    same = np.ones(n - 1, dtype=bool)
    for key in groups:
        same &= key[order][1:] == key[order][:-1]
    starts = np.concatenate([[True], ~same])  # sorted positions that open a group
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    earlier = np.empty(n, dtype=np.int64)
    earlier[order] = np.arange(n) - group_start
    return earlier, order


def cache_statistics(tokens, order: int = 4, doc_starts=(0,), vocab_size: int | None = None) -> np.ndarray:
    """What the document holds before each position of ``tokens``, for history lengths
    ``k = 0 .. order - 1``: an array (3, order, len(tokens)) of float64 holding

    * ``[0, k, t]``: how often the last ``k`` tokens before ``t`` were followed by ``tokens[t]``,
    * ``[1, k, t]``: how often those ``k`` tokens occurred (followed by anything),
    * ``[2, k, t]``: how many different tokens followed them,

    all counted in ``t``'s document before ``t`` (0 where the history would reach into the previous
    document). Documents start at ``doc_starts``. ``tokens`` is one 1-D stream of integer ids in
    ``0 .. vocab_size - 1`` (``vocab_size=None``: one more than the largest id).

    >>> cache_statistics(np.array([1, 2, 1, 2, 1]), order=2)[:, 1].tolist()  # after one token
    [[0.0, 0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0, 1.0]]
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:  # rows would be read as one stream, their n-grams running across row ends
        raise ValueError(f"tokens must be one 1-D stream, got shape {tokens.shape}")
    if tokens.size and not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"token ids must be integers, got dtype {tokens.dtype}")
    tokens = tokens.astype(np.int64)
    if order < 1:
        raise ValueError(f"order={order} must be at least 1")
    if len(tokens) and tokens.min() < 0:
        raise ValueError("token ids must be >= 0")
    if vocab_size is None:
        vocab_size = int(tokens.max()) + 1 if len(tokens) else 1
    check_count("vocab_size", vocab_size, note=" (or None: one more than the largest id)")
    if len(tokens) and tokens.max() >= vocab_size:  # ids past it would share n-gram keys with others
        raise ValueError(f"token ids must be < vocab_size={vocab_size}, got {tokens.max()}")
    vocab_size = int(vocab_size)
    check_keys_fit(vocab_size, order)
    n = len(tokens)
    stats = np.zeros((3, order, n), dtype=np.float64)
    doc = document_ids(n, doc_starts) if n else np.zeros(0, dtype=np.int64)
    position_in_doc = np.arange(n) - np.asarray(doc_starts, dtype=np.int64)[doc] if n else doc
    for k in range(order):
        valid = np.flatnonzero(position_in_doc >= k)  # the k tokens before t lie in t's document
        if not len(valid):
            continue
        gram = ngram_keys(tokens, k + 1, vocab_size)[valid - k]  # (history, token) ending at t
        history = gram // vocab_size
        d = doc[valid]
        seen_gram, _ = _earlier_in_group((d, gram), len(valid))
        seen_history, by_history = _earlier_in_group((d, history), len(valid))
        # Types so far: the positions of the same history before t whose token was new then.
        first_time = (seen_gram == 0).astype(np.int64)[by_history]
        cumulative = np.cumsum(first_time) - first_time  # exclusive, along the sorted positions
        group_start = np.arange(len(valid)) - seen_history[by_history]
        types = np.empty(len(valid), dtype=np.int64)
        types[by_history] = cumulative - cumulative[group_start]
        stats[0, k, valid], stats[1, k, valid], stats[2, k, valid] = seen_gram, seen_history, types
    return stats


def _check(base_probs: np.ndarray, stats: np.ndarray, betas) -> tuple[np.ndarray, np.ndarray]:
    base_probs = np.asarray(base_probs, dtype=np.float64)
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim != 3 or stats.shape[0] != 3 or stats.shape[2:] != base_probs.shape:
        raise ValueError(f"stats {stats.shape} must be cache_statistics (3, order, N) of the {base_probs.shape} probabilities")
    # Written so that NaN fails the checks (any comparison with NaN is False).
    if betas is not None and (len(betas) != stats.shape[1] or not all(0 < b < np.inf for b in betas)):
        raise ValueError(f"need one beta per history length ({stats.shape[1]}), each finite and > 0, got {list(betas)}")
    if not ((base_probs >= 0) & (base_probs <= 1)).all():
        raise ValueError("base probabilities must lie in [0, 1] (NaN is not a probability)")
    return base_probs, stats


def _recursion(base, stats, betas):
    """The cache recursion in numpy or torch (float64): one level per history length."""
    where = torch.where if isinstance(base, torch.Tensor) else np.where
    probs = base
    for k in range(stats.shape[1]):
        counts, total, types = stats[0, k], stats[1, k], stats[2, k]
        weight = betas[k] * types
        # (total == 0) keeps the unused branch finite: torch would turn its 0/0 into NaN gradients
        probs = where(total > 0, (counts + weight * probs) / (total + weight + (total == 0)), probs)
    return probs


def cache_probs(base_probs, stats, betas) -> np.ndarray:
    """The probability of each token after mixing in the document's counts: ``base_probs[t]`` is
    the base model's probability of ``tokens[t]``, ``stats`` is :func:`cache_statistics` of the
    same positions, one ``beta`` per history length (larger trusts the counts less).

    >>> stats = cache_statistics(np.array([3, 3]), order=1)
    >>> cache_probs(np.array([0.2, 0.2]), stats, betas=[1.0]).tolist()  # (1 + 1 * 0.2) / (1 + 1)
    [0.2, 0.6]
    """
    base_probs, stats = _check(base_probs, stats, betas)
    return _recursion(base_probs, stats, np.asarray(betas, dtype=np.float64))


def fit_cache(base_probs, stats, iterations: int = 100) -> list[float]:
    """The betas that maximise the likelihood of held-out documents under :func:`cache_probs`,
    given the base model's probability of each of their tokens and their ``stats``: L-BFGS over
    log beta (each beta in [1e-3, 1e8]; at the top a history length is all but switched off).

    The documents must be new to the base model, as the text the cache will be used on is.
    """
    base_probs, stats = _check(base_probs, stats, None)
    if not base_probs.size or (base_probs <= 0).any():
        raise ValueError("need the base model's probability (> 0) of at least one held-out token")
    base, counts = torch.from_numpy(base_probs), torch.from_numpy(stats)
    log_betas = torch.zeros(stats.shape[1], dtype=torch.float64, requires_grad=True)
    low, high = np.log(1e-3), np.log(1e8)
    optimizer = torch.optim.LBFGS([log_betas], max_iter=iterations, line_search_fn="strong_wolfe", tolerance_change=1e-12)

    def nll():
        optimizer.zero_grad()
        loss = -_recursion(base, counts, log_betas.clamp(low, high).exp()).log().mean()
        loss.backward()
        return loss

    optimizer.step(nll)
    return [round(float(b), 6) for b in log_betas.detach().clamp(low, high).exp()]
