"""Counting instead of learning: an interpolated Kneser-Ney n-gram language model over token ids.

Before neural networks, language models were tables of counts: how often each token followed
each short history in the training text. Raw frequencies give zero probability to anything
unseen, so smoothing moves a little mass from seen continuations to a lower-order model.
Kneser-Ney (Kneser & Ney 1995; Chen & Goodman, "An empirical study of smoothing techniques for
language modeling", 1998) does this in two ways that made it the strongest of them:

* absolute discounting: every seen continuation gives up a fixed ``D`` (by default Ney's
  estimate ``n1 / (n1 + 2 n2)`` from the number of n-grams seen once and twice), and the history
  passes the mass collected, ``D * types / total``, to the next-lower order;
* continuation counts: the lower orders count in how many different contexts a token was seen,
  not how often ("Francisco" is frequent but follows almost only "San"), because they are only
  asked about histories the higher order knows too little about.

The probability of ``w`` after history ``h`` (the last ``order - 1`` tokens) is built level by
level, from the uniform distribution up::

    p_k(w | h) = max(c_k(h w) - D_k, 0) / c_k(h) + D_k * types_k(h) / c_k(h) * p_{k-1}(w | h')

where ``h'`` drops the oldest token of ``h``, ``c_k`` is the raw count at the top order and the
continuation count below it, and a history never seen leaves ``p_{k-1}`` as it is.

:meth:`KneserNey.distributions` computes whole next-token distributions for a batch of windows
with tensor operations (about 15 ms for 32 x 64 positions over 2,048 tokens on 2 CPU cores), so
the counts can be mixed with a transformer's predictions (:class:`Interpolated`, with the weight
fitted on held-out text by :func:`fit_interpolation`); :meth:`KneserNey.target_probs` gives only
the probabilities of the tokens that came, and :meth:`KneserNey.prob` reads the formula one token
at a time, as the reference the tests check both against.

On the 2,048-token BPE of the course's Shakespeare, a 4-gram model counted in under a second
scores about as well on the held-out plays as the 90-second transformer of ``minilm bench
pretrain``, and the two interpolated beat both by far (the README has the figures).

>>> lm = KneserNey([0, 1, 2, 0, 1, 2, 0, 1], vocab_size=4, order=3)
>>> lm.discounts  # too few counts for Ney's estimate: 0.5 at every order
[0.5, 0.5, 0.5]
>>> round(lm.prob([2, 0], 1), 4)  # "2 0" was always followed by 1: 0.75 + 0.25 * p(1 | 0)
0.9115
>>> round(lm.prob([2, 0], 3), 4)  # 3 was never seen: only the mass passed down to the unigrams
0.0156
>>> dist = lm.distributions(torch.tensor([[2, 0]]))
>>> tuple(dist.shape), round(float(dist[0, 1].sum()), 6), round(float(dist[0, 1, 1]), 4)
((1, 2, 4), 1.0, 0.9115)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.checks import check_range
from .train import window_starts


# The largest V x V bigram table kept dense (entries): 4096 tokens take 64 MB in float32. Larger
# vocabularies add each position's bigram continuations sparsely (slower: frequent tokens have
# thousands of them).
DENSE_BIGRAM_LIMIT = 2**24


def ney_discount(counts: np.ndarray) -> float:
    """Ney's estimate of the absolute discount, ``n1 / (n1 + 2 * n2)``, from n-gram counts
    (0.5 when there are no n-grams seen once or twice to estimate it from).

    >>> ney_discount(np.array([1, 1, 1, 2, 5]))  # three seen once, one twice
    0.6
    """
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    return n1 / (n1 + 2 * n2) if n1 and n2 else 0.5


def modified_discounts(counts: np.ndarray) -> tuple[float, float, float]:
    """Chen & Goodman's three discounts for n-grams seen once, twice and three or more times
    (modified Kneser-Ney), from the counts of counts: with ``Y = n1 / (n1 + 2 n2)``,
    ``D1 = 1 - 2Y n2/n1``, ``D2 = 2 - 3Y n3/n2``, ``D3+ = 3 - 4Y n4/n3``. Where a count of counts
    is missing, Ney's single estimate stands in.

    >>> modified_discounts(np.array([1] * 8 + [2] * 4 + [3] * 2 + [4]))  # n1..n4 = 8, 4, 2, 1
    (0.5, 1.25, 2.0)
    """
    n = [int((counts == i).sum()) for i in (1, 2, 3, 4)]
    if not all(n):
        single = ney_discount(counts)
        return single, single, single
    y = n[0] / (n[0] + 2 * n[1])
    d1, d2, d3 = 1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]
    # Keep each in (0, c): a discount may not take a whole count away or give to it.
    return tuple(float(min(max(d, 1e-3), c - 1e-3)) for d, c in ((d1, 1), (d2, 2), (d3, 3)))


def ngram_keys(tokens, n: int, vocab_size: int):
    """Every run of ``n`` consecutive tokens along the last axis of ``tokens`` (a numpy array or a
    tensor) as one base-``vocab_size`` number, oldest token most significant: the keys the count
    tables are sorted by, so an n-gram is found by binary search.

    >>> ngram_keys(np.array([1, 2, 1, 2]), 2, vocab_size=3)  # "1 2" = 1 * 3 + 2, "2 1" = 7
    array([5, 7, 5])
    """
    length = tokens.shape[-1] - n + 1
    key = tokens[..., :length] * 0  # integer zeros of the right shape, as numpy array or tensor
    for i in range(n):
        key = key * vocab_size + tokens[..., i : i + length]
    return key


def check_keys_fit(vocab_size: int, n: int) -> None:
    """Raise ValueError unless every run of ``n`` tokens over ``vocab_size`` fits one signed 64-bit
    key of :func:`ngram_keys` (with room to spare for the searches' arithmetic).

    >>> check_keys_fit(2048, 5)  # 2**55: fits
    """
    if vocab_size**n >= 2**62:
        raise ValueError(f"vocab_size={vocab_size} with order={n}: n-grams do not fit in 64-bit keys")


def count_ngrams(streams: list[np.ndarray], n: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct n-grams of the streams (none spans two streams) as sorted base-``vocab_size``
    keys, oldest token most significant, with how often each occurs.

    >>> count_ngrams([np.array([1, 2, 1, 2])], 2, vocab_size=3)  # "1 2" = 5 twice, "2 1" = 7 once
    (array([5, 7]), array([2, 1]))
    """
    keys = [ngram_keys(s, n, vocab_size) for s in streams if len(s) >= n]
    if not keys:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(keys), return_counts=True)


class KneserNey(nn.Module):
    """Interpolated Kneser-Ney over token ids ``0 .. vocab_size - 1``, fitted on ``tokens``: one
    1-D stream, or a list of streams (documents) counted separately so no n-gram spans two.

    ``discounts`` gives one discount per order, lowest first; by default each is Ney's estimate
    from that order's counts. ``modified=True`` is Chen & Goodman's modified Kneser-Ney: three
    discounts per order, for n-grams seen once, twice and more often (:func:`modified_discounts`;
    ``discounts`` then holds a triple per order; on the held-out plays better alone, worse mixed with
    a transformer, see ``minilm.bench``). Probabilities are kept in ``dtype`` (float32: half the
    memory traffic of float64 for a batch's distributions; float64 for exact comparisons). The
    tables are buffers, so ``.to(device)`` moves them; they are not saved in a state dict (refit
    them from the data: fitting is deterministic and takes about a second for a million tokens).
    """

    def __init__(self, tokens, vocab_size: int, order: int = 3, discounts: list | None = None,
                 modified: bool = False, dtype: torch.dtype = torch.float32):
        super().__init__()
        check_range("vocab_size", vocab_size, 1, 2**21)
        check_range("order", order, 1, 6)
        check_keys_fit(vocab_size, order)
        if discounts is not None and (len(discounts) != order or not all(_valid_discount(d, modified) for d in discounts)):
            kind = "triples (D1, D2, D3+) with 0 < Dc < c" if modified else "numbers in (0, 1)"
            raise ValueError(f"discounts must be {order} {kind}, lowest order first; got {discounts}")
        streams = _as_streams(tokens)
        for s in streams:
            if len(s) and (s.min() < 0 or s.max() >= vocab_size):
                raise ValueError(f"token ids must lie in [0, {vocab_size}); got values {s.min()} to {s.max()}")
        if not any(len(s) for s in streams):
            raise ValueError("KneserNey needs at least one training token")
        self.vocab_size, self.order, self.dtype, self.discounts = vocab_size, order, dtype, []
        for k in range(1, order + 1):
            if k == order:
                keys, counts = count_ngrams(streams, k, vocab_size)
            else:  # continuation count of a k-gram: how many distinct tokens came before it
                longer, _ = count_ngrams(streams, k + 1, vocab_size)
                keys, counts = np.unique(longer % vocab_size**k, return_counts=True)
            if discounts is not None:
                discount = discounts[k - 1]
            else:
                discount = modified_discounts(counts) if modified else ney_discount(counts)
            self.discounts.append(discount)
            self._add_level(k, keys, counts, discount if modified else (discount,) * 3)
        # Dense tables for the low orders: the unigram distribution, and (when the vocabulary is
        # small enough for a V x V table) the bigram distribution after every token.
        dense = torch.full((1, vocab_size), 1.0 / vocab_size, dtype=dtype)
        self._interpolate(dense, torch.zeros(1, dtype=torch.int64), 1)
        self.dense_order = 1
        if order >= 2 and vocab_size**2 <= DENSE_BIGRAM_LIMIT:
            dense = dense.expand(vocab_size, vocab_size).clone()
            self._interpolate(dense, torch.arange(vocab_size), 2)
            self.dense_order = 2
        self.register_buffer("dense", dense, persistent=False)

    def _add_level(self, k: int, keys: np.ndarray, counts: np.ndarray, discount: tuple) -> None:
        """Order k's tables: its histories (sorted keys), where each history's continuations start
        and end in the flat arrays, each history's back-off weight (the mass its discounts took),
        and per continuation its token and discounted probability mass. ``discount`` holds the
        discounts of n-grams seen once, twice, and three or more times."""
        history = keys // self.vocab_size
        histories, first, per_history = np.unique(history, return_index=True, return_counts=True)
        reduce = (lambda values: np.add.reduceat(values, first)) if len(counts) else (lambda values: values)
        totals = reduce(counts).astype(np.float64)
        taken = np.asarray(discount, dtype=np.float64)[np.minimum(counts, 3) - 1]  # each n-gram's discount
        tables = {
            "keys": torch.from_numpy(keys),  # the whole n-grams, to look one up directly
            "histories": torch.from_numpy(histories),
            "starts": torch.from_numpy(first.astype(np.int64)),
            "lengths": torch.from_numpy(per_history.astype(np.int64)),
            "backoff": torch.from_numpy(reduce(taken) / totals).to(self.dtype),
            "tokens": torch.from_numpy(keys % self.vocab_size),
            "mass": torch.from_numpy(np.maximum(counts - taken, 0) / np.repeat(totals, per_history)).to(self.dtype),
        }
        for name, table in tables.items():
            self.register_buffer(f"order{k}_{name}", table, persistent=False)

    def _interpolate(self, probs: torch.Tensor, keys: torch.Tensor, k: int) -> None:
        """Raise ``probs`` (..., V), order k - 1's distributions, to order k's in place, where
        ``keys`` (...) are the positions' order-k histories; unseen histories are left as they are."""
        table = self._level(k)
        if not len(table["histories"]):
            return
        where = torch.searchsorted(table["histories"], keys).clamp(max=len(table["histories"]) - 1)
        seen = (table["histories"][where] == keys).nonzero(as_tuple=True)
        h = where[seen]
        probs[seen] *= table["backoff"][h].unsqueeze(-1)
        # Add each seen history's continuations to its position's distribution: entry j of
        # history h sits at starts[h] + j in the flat arrays.
        lengths = table["lengths"][h]
        owner = torch.repeat_interleave(torch.arange(len(h), device=keys.device), lengths)
        within = torch.arange(int(lengths.sum()), device=keys.device) - (torch.cumsum(lengths, 0) - lengths)[owner]
        entries = table["starts"][h][owner] + within
        probs[tuple(index[owner] for index in seen) + (table["tokens"][entries],)] += table["mass"][entries]

    def _level(self, k: int) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"order{k}_{name}") for name in
                ("keys", "histories", "starts", "lengths", "backoff", "tokens", "mass")}

    def _history_keys(self, rows: torch.Tensor, k: int) -> torch.Tensor:
        """Order k's history key (rows, T - max(k - 2, 0)) of every position t >= k - 2 of
        ``rows`` (rows, T): its tokens t-k+2 .. t (none for the unigrams, whose one history is 0)."""
        return ngram_keys(rows, k - 1, self.vocab_size) if k > 1 else torch.zeros_like(rows)

    def distributions(self, idx: torch.Tensor) -> torch.Tensor:
        """Next-token distributions (..., T, vocab), in the model's dtype, after each position of
        token ids (..., T), each from the tokens of its own row up to that position (the last
        ``order - 1`` of them). The first positions of a row, with a shorter history, use the
        orders it allows."""
        self._check_ids(idx)
        shape, V = idx.shape, self.vocab_size
        rows = idx.reshape(-1, shape[-1]).long()
        T = rows.shape[1]
        # The orders with a dense table give every position's distribution by one lookup (the
        # unigram one, or the bigram one after the position's token); the higher orders are sparse.
        probs = self.dense[rows if self.dense_order == 2 else torch.zeros_like(rows)]
        for k in range(self.dense_order + 1, self.order + 1):
            if k - 1 > T:  # no position has k - 1 tokens of history
                break
            self._interpolate(probs[:, k - 2 :], self._history_keys(rows, k), k)  # a view: writes into probs
        return probs.reshape(*shape, V)

    def prob(self, history, token: int) -> float:
        """p(token | history) for one position, read table by table (the reference for
        :meth:`distributions`; slow)."""
        self._check_ids(torch.as_tensor([*history, token]))  # float ids become a float tensor: refused
        history = [int(t) for t in history][-(self.order - 1) :] if self.order > 1 else []
        p = 1.0 / self.vocab_size
        for k in range(1, self.order + 1):
            if len(history) < k - 1:
                break
            key = 0
            for t in history[len(history) - (k - 1) :] if k > 1 else []:
                key = key * self.vocab_size + t
            table = self._level(k)
            h = int(torch.searchsorted(table["histories"], torch.tensor(key)))
            if h >= len(table["histories"]) or int(table["histories"][h]) != key:
                continue
            start, length = int(table["starts"][h]), int(table["lengths"][h])
            tokens = table["tokens"][start : start + length]
            i = int(torch.searchsorted(tokens, torch.tensor(token)))
            mass = float(table["mass"][start + i]) if i < length and int(tokens[i]) == token else 0.0
            p = mass + float(table["backoff"][h]) * p
        return p

    def target_probs(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """p(targets[..., t] | idx[..., :t + 1]) for every position (float64, the shape of
        ``idx``): the probability of each next token only, without building whole distributions.
        """
        if idx.shape != targets.shape:
            raise ValueError(f"idx {tuple(idx.shape)} and targets {tuple(targets.shape)} must have the same shape")
        self._check_ids(idx)
        self._check_ids(targets)
        V, T = self.vocab_size, idx.shape[-1]
        rows, wanted = idx.reshape(-1, T).long(), targets.reshape(-1, T).long()
        probs = torch.full(rows.shape, 1.0 / V, dtype=torch.float64, device=idx.device)
        for k in range(1, self.order + 1):
            table = self._level(k)
            if k - 1 > T or not len(table["histories"]):
                continue
            first = max(k - 2, 0)
            keys = self._history_keys(rows, k)
            h = torch.searchsorted(table["histories"], keys).clamp(max=len(table["histories"]) - 1)
            seen = table["histories"][h] == keys
            gram = keys * V + wanted[:, first:]  # the n-gram (history, target) as one key
            e = torch.searchsorted(table["keys"], gram).clamp(max=len(table["keys"]) - 1)
            mass = torch.where(table["keys"][e] == gram, table["mass"][e].double(), 0.0)  # found: its history is too
            level = probs[:, first:]
            probs[:, first:] = torch.where(seen, mass + table["backoff"][h].double() * level, level)
        return probs.reshape(idx.shape)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Log-probabilities (..., T, vocab) in place of logits, and the mean loss against
        ``targets`` when given (-1 = ignored): the n-gram model scores text through
        :func:`minilm.models.train.evaluate` exactly as a GPT does, on the same windows."""
        log_probs = self.distributions(idx).float().clamp(min=torch.finfo(torch.float32).tiny).log()
        loss = None
        if targets is not None:
            loss = F.nll_loss(log_probs.reshape(-1, self.vocab_size), targets.reshape(-1), ignore_index=-1)
        return log_probs, loss

    def _check_ids(self, idx: torch.Tensor) -> None:
        if idx.dtype not in (torch.int32, torch.int64) or idx.dim() == 0:
            raise ValueError(f"token ids must be an integer tensor of shape (..., T), got {idx.dtype} {tuple(idx.shape)}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size})")


def _valid_discount(discount, modified: bool) -> bool:
    if not modified:
        return np.isscalar(discount) and 0 < discount < 1
    return len(discount) == 3 and all(0 < d < c for d, c in zip(discount, (1, 2, 3)))


def _as_streams(tokens) -> list[np.ndarray]:
    if isinstance(tokens, (list, tuple)) and tokens and not np.isscalar(tokens[0]):
        streams = [np.asarray(t).reshape(-1) for t in tokens]
    else:
        streams = [np.asarray(tokens).reshape(-1)]
    for s in streams:  # a cast to int64 would truncate 1.7 to 1
        if len(s) and not np.issubdtype(s.dtype, np.integer):
            raise ValueError(f"token ids must be integers, got dtype {s.dtype}")
    return [s.astype(np.int64) for s in streams]


# ----------------------------------------------------------------------------------------------
# Interpolating a network with the counts


def interpolation_weight(p_model: np.ndarray, p_ngram: np.ndarray, iterations: int = 200, tol: float = 1e-9) -> float:
    """The weight ``w`` that maximises the likelihood of ``w * p_model + (1 - w) * p_ngram`` on
    held-out tokens, given each model's probability of the same tokens: expectation-maximisation
    (Jelinek & Mercer 1980), where each step sets ``w`` to the mean share of the mixture's
    probability that came from the first model. The likelihood is concave in ``w``, so it
    converges to the optimum.

    >>> interpolation_weight(np.array([0.9, 0.1]), np.array([0.1, 0.9]))  # each better half the time
    0.5
    >>> round(interpolation_weight(np.array([0.5, 0.5]), np.array([0.1, 0.1])), 3)  # one always better
    1.0
    """
    p_model, p_ngram = np.asarray(p_model, dtype=np.float64), np.asarray(p_ngram, dtype=np.float64)
    if p_model.shape != p_ngram.shape or not p_model.size:
        raise ValueError(f"need the two models' probabilities of the same tokens; got shapes {p_model.shape}, {p_ngram.shape}")
    if (p_model < 0).any() or (p_ngram < 0).any() or ((p_model == 0) & (p_ngram == 0)).any():
        raise ValueError("probabilities must be >= 0, and on every token at least one model's > 0")
    weight = 0.5
    for _ in range(iterations):
        share = weight * p_model / (weight * p_model + (1 - weight) * p_ngram)
        weight, previous = float(share.mean()), weight
        if abs(weight - previous) < tol:
            break
    return round(weight, 6)


class Interpolated(nn.Module):
    """A model and an n-gram model mixed, ``weight * p_model + (1 - weight) * p_ngram``, for
    scoring text: ``forward`` returns log-probabilities in place of logits (their softmax is the
    mixture), so :func:`minilm.models.train.evaluate` scores it like any GPT. Both read the same window
    of tokens.

    Linear interpolation of a network with counts is an old and strong combination: after one
    pass over the text the counts remember exact phrases that the network has not yet learned,
    while the network generalises between similar contexts (Mikolov et al. 2011 mixed recurrent
    networks with Kneser-Ney 5-grams; Liu et al., "Infini-gram", 2024, still gain by mixing
    large transformers with n-gram counts).
    """

    def __init__(self, model: nn.Module, ngram: KneserNey, weight: float):
        super().__init__()
        check_range("weight", weight, 0.0, 1.0)
        if ngram.vocab_size != model.config.vocab_size:
            raise ValueError(f"the n-gram model has {ngram.vocab_size} tokens, the model {model.config.vocab_size}")
        self.model, self.ngram, self.weight = model, ngram, weight
        self.config = model.config

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits, _ = self.model(idx)
        tiny = torch.finfo(torch.float32).tiny  # a weight of 0 or 1 leaves the other term at log(tiny)
        log_probs = torch.logaddexp(F.log_softmax(logits.float(), dim=-1) + math.log(max(self.weight, tiny)),
                                    self.ngram(idx)[0] + math.log(max(1 - self.weight, tiny)))
        loss = None
        if targets is not None:
            loss = F.nll_loss(log_probs.reshape(-1, log_probs.size(-1)), targets.reshape(-1), ignore_index=-1)
        return log_probs, loss


@torch.no_grad()
def window_target_probs(model: nn.Module, tokens: np.ndarray, seq_len: int, max_tokens: int | None = None,
                        batch_size: int = 32, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Each predicted token's probability under ``model`` (float64), with the stream cut into
    consecutive windows of ``seq_len`` exactly as :func:`minilm.models.train.evaluate` cuts it, and the
    positions in ``tokens`` of the tokens predicted. ``model`` is a GPT (logits), an n-gram
    model (its exact :meth:`KneserNey.target_probs`) or anything returning log-probabilities.

    >>> lm = KneserNey([0, 1, 0, 1, 0, 1], vocab_size=2, order=2)
    >>> positions, probs = window_target_probs(lm, np.array([0, 1, 0, 1, 0]), seq_len=2)
    >>> positions.tolist(), probs.round(3).tolist()  # windows [0 1 0] and [0 1 0]
    ([1, 2, 3, 4], [0.917, 0.875, 0.917, 0.875])
    """
    tokens = _as_streams(tokens)[0]  # whole-number ids (a cast would truncate 1.7 to 1), as int64
    starts = window_starts(len(tokens), seq_len, max_tokens or len(tokens))
    if not starts:
        raise ValueError(f"need at least seq_len + 1 = {seq_len + 1} tokens, got {len(tokens)}")
    windows = torch.from_numpy(np.stack([tokens[s : s + seq_len + 1] for s in starts]))
    was_training = model.training
    model.eval()
    probs = []
    for first in range(0, len(windows), batch_size):
        window = windows[first : first + batch_size].to(device)
        x, y = window[:, :-1], window[:, 1:]
        if hasattr(model, "target_probs"):
            probs.append(model.target_probs(x, y).cpu())
        else:
            logits, _ = model(x)
            log_probs = F.log_softmax(logits.float(), dim=-1).gather(-1, y[..., None])[..., 0]
            probs.append(log_probs.double().exp().cpu())  # float32 as evaluate's loss; a double softmax costs 2x
    model.train(was_training)
    positions = np.concatenate([np.arange(s + 1, s + seq_len + 1) for s in starts])
    return positions, torch.cat(probs).numpy().reshape(-1)


def fit_interpolation(model: nn.Module, ngram: KneserNey, tokens: np.ndarray, seq_len: int,
                      max_tokens: int = 16_384, batch_size: int = 32, device="cpu") -> float:
    """The interpolation weight of ``model`` against ``ngram`` (see :func:`interpolation_weight`)
    on held-out ``tokens``, cut into consecutive windows of ``seq_len`` as evaluation cuts them.

    The held-out text must be new to both: the n-gram model would otherwise look certain of every
    phrase it counted, and the weight would go to it.
    """
    if len(tokens) < seq_len + 1:
        raise ValueError(f"need at least seq_len + 1 = {seq_len + 1} held-out tokens, got {len(tokens)}")
    _, p_model = window_target_probs(model, tokens, seq_len, max_tokens, batch_size, device)
    _, p_ngram = window_target_probs(ngram, tokens, seq_len, max_tokens, batch_size, device)
    return interpolation_weight(p_model, p_ngram)
