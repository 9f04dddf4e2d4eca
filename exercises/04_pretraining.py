"""Exercise 04 (pretraining): the loss, its measures, the schedule and the optimizer, from scratch.

Write the six functions below, replacing each ``raise NotImplementedError(...)``:

* a numerically stable log-softmax, and the next-token cross-entropy built on it, with an ignore
  index for positions that carry no target (padding, or a prompt that is not trained on);
* perplexity and bits per byte, the two ways chapter 04 reports a loss;
* the learning-rate schedule of ``minilm.models.train``: linear warmup, then cosine decay to a floor or
  warmup-stable-decay (WSD);
* one step of AdamW: Adam's moving averages with bias correction, and decoupled weight decay.

Check your work with ``make check CH=04`` (or ``minilm check 04``): the tests compare your functions
with ``torch.nn.functional.cross_entropy``, ``torch.optim.AdamW`` and ``minilm.models.train``. Use PyTorch
tensor operations (``max``, ``exp``, ``log``, ``sum``, ``gather``, indexing...), but not the
functions that do the whole job: no ``F.cross_entropy``, ``F.nll_loss``, ``log_softmax`` or
``logsumexp``, no ``torch.optim``. Reference solutions are in ``exercises/solutions/``: try first!
"""

from __future__ import annotations

import torch


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``log(softmax(logits))`` over the last dimension, without overflow; same shape as ``logits``.

    ``log softmax(z)_i = z_i - log(sum_j exp(z_j))``. Computed like that, ``exp(1e4)`` is ``inf``
    and the answer is ``nan``. Subtract the row maximum ``m`` first: ``z_i - m - log(sum_j exp(z_j - m))``
    is the same number, and now every ``exp`` is at most 1.

    >>> log_softmax(torch.tensor([0.0, 0.0])).tolist()  # two equal logits: log(1/2) each
    [-0.6931471824645996, -0.6931471824645996]
    >>> log_softmax(torch.tensor([1e4, 0.0])).tolist()  # a naive exp() would overflow here
    [0.0, -10000.0]
    """
    raise NotImplementedError("exercise 04: write log_softmax in exercises/04_pretraining.py")


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean next-token loss in nats: the average of ``-log_softmax(logits)[target]`` over positions.

    ``logits`` is ``(..., V)`` (for example (B, T, V)) and ``targets`` is ``(...)``, integer token
    ids in ``0..V-1`` (for example (B, T)). A position whose target is ``ignore_index`` counts for
    nothing: it is left out of the sum *and* of the count the mean divides by. Return a 0-dim
    tensor; it must carry gradients back to ``logits`` (no ``.item()``, no in-place changes to
    ``logits``).

    When every target is ignored the mean is over no positions: return ``nan``, as
    ``F.cross_entropy`` does. (A 0 would look like a perfect prediction and hide the bug that
    masked everything.)

    Hint: ``gather`` cannot look up index -100; pick the log-probabilities of the kept positions
    only, or replace ignored targets by 0 before the lookup and zero their losses afterwards.

    >>> uniform = torch.zeros(2, 4)  # two positions, four equally likely tokens
    >>> cross_entropy(uniform, torch.tensor([1, 3]))  # log(4)
    tensor(1.3863)
    >>> cross_entropy(uniform, torch.tensor([1, -100])), cross_entropy(uniform, torch.tensor([-100, -100]))
    (tensor(1.3863), tensor(nan))
    """
    raise NotImplementedError("exercise 04: write cross_entropy in exercises/04_pretraining.py")


def perplexity(loss: float) -> float:
    """The perplexity of a mean loss in nats: ``exp(loss)``, a Python float.

    A model that spreads its bet evenly over ``k`` tokens has loss ``log(k)`` and perplexity ``k``:
    perplexity is the number of tokens it is "choosing between".

    >>> round(perplexity(1.3862943611198906), 6)  # log(4)
    4.0
    >>> perplexity(0.0)  # certain and right
    1.0
    """
    raise NotImplementedError("exercise 04: write perplexity in exercises/04_pretraining.py")


def bits_per_byte(logits: torch.Tensor, targets: torch.Tensor, token_bytes: torch.Tensor) -> float:
    """The loss in bits per UTF-8 byte of the predicted text, as ``minilm.models.train.evaluate`` reports it.

    ``logits`` is ``(..., V)``, ``targets`` is ``(...)`` (no ignored positions here), and
    ``token_bytes`` is ``(V,)``: how many bytes of text each token id stands for (special tokens
    count 0). Bits per byte = the *summed* loss over all positions in bits (nats / ln 2) divided by
    the total bytes of the target tokens. Unlike a loss per token, it does not depend on the
    tokenizer, so models with different vocabularies compare. Return a Python float; raise
    ``ValueError`` when the targets hold no bytes at all.

    >>> uniform, one_byte_each = torch.zeros(3, 256), torch.ones(256, dtype=torch.long)
    >>> round(bits_per_byte(uniform, torch.tensor([7, 8, 9]), one_byte_each), 6)  # a guess among 256 bytes
    8.0
    """
    raise NotImplementedError("exercise 04: write bits_per_byte in exercises/04_pretraining.py")


def lr_at(step: int, total_steps: int, warmup_steps: int, lr: float, schedule: str = "cosine",
          min_lr_ratio: float = 0.1, decay_fraction: float = 0.2) -> float:
    """The learning rate at ``step`` (0-based) of ``total_steps``, exactly as ``minilm.models.train.lr_at``.

    * Warmup: while ``step < warmup_steps``, ``lr * (step + 1) / warmup_steps`` (so step 0 does not
      waste a step at rate 0, and the last warmup step reaches ``lr``). No warmup when
      ``warmup_steps == 0``.
    * After warmup, with ``floor = lr * min_lr_ratio``:

      - ``"constant"``: ``lr``.
      - ``"cosine"``: ``progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)``,
        capped at 1, and ``floor + (lr - floor) * (1 + cos(pi * progress)) / 2``: from ``lr`` at the
        end of warmup down to ``floor`` at ``total_steps`` and after.
      - ``"wsd"`` (warmup-stable-decay): the decay starts at
        ``decay_start = total_steps - int(decay_fraction * total_steps)``. Before it, ``lr``; from
        it on, a straight line down: ``progress = (step - decay_start + 1) / max(1, total_steps - decay_start)``,
        capped at 1, and ``lr - (lr - floor) * progress`` (the last step, ``total_steps - 1``,
        reaches the floor).

    >>> lr_at(0, 100, 10, 1.0), lr_at(9, 100, 10, 1.0), lr_at(100, 100, 10, 1.0)  # warmup, peak, floor
    (0.1, 1.0, 0.1)
    >>> lr_at(50, 100, 0, 1.0, "wsd", min_lr_ratio=0.5), lr_at(99, 100, 0, 1.0, "wsd", min_lr_ratio=0.5)
    (1.0, 0.5)
    """
    raise NotImplementedError("exercise 04: write lr_at in exercises/04_pretraining.py")


def adamw_step(params: list[torch.Tensor], grads: list[torch.Tensor], state: dict, lr: float,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01) -> None:
    """One AdamW step (Loshchilov & Hutter 2019), the update of ``torch.optim.AdamW``, in place.

    ``params`` and ``grads`` are lists of tensors of matching shapes; change each parameter
    in place (``p.mul_``, ``p.sub_``, ... or ``p[...] = ...``; wrap the updates in
    ``torch.no_grad()`` in case a parameter requires grad). ``state`` starts as an empty dict and
    carries the optimizer's memory from one call to the next: keep the step count in
    ``state["step"]`` (1 after the first call) and the moving averages in ``state["m"]`` and
    ``state["v"]`` (lists of tensors like ``params``, starting at zero). With
    ``beta1, beta2 = betas`` and ``t = state["step"]`` after counting this step, for each parameter
    ``p`` with gradient ``g``:

    1. decoupled weight decay: ``p = p * (1 - lr * weight_decay)`` (it shrinks the weights directly;
       it is *not* added to the gradient, which is what makes AdamW differ from Adam with L2);
    2. ``m = beta1 * m + (1 - beta1) * g`` and ``v = beta2 * v + (1 - beta2) * g * g``;
    3. bias correction (m and v start at 0, so early averages are too small):
       ``m_hat = m / (1 - beta1 ** t)``, ``v_hat = v / (1 - beta2 ** t)``;
    4. ``p = p - lr * m_hat / (sqrt(v_hat) + eps)``.

    Return nothing.

    >>> p, state = [torch.tensor([1.0, -2.0])], {}
    >>> adamw_step(p, [torch.tensor([0.5, -3.0])], state, lr=0.1, weight_decay=0.0)
    >>> p[0], state["step"]  # the first step moves each weight by lr against the sign of its gradient
    (tensor([ 0.9000, -1.9000]), 1)
    """
    raise NotImplementedError("exercise 04: write adamw_step in exercises/04_pretraining.py")
