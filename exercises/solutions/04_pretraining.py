"""Exercise 04 (pretraining): reference solutions. Try the exercise yourself first!

The loss, its two reporting units, the schedule and one optimizer step, each in a few lines of
tensor code. This file deliberately does not use ``minilm``: the tests compare it with
``minilm.models.train`` and with PyTorch's ``F.cross_entropy`` and ``torch.optim.AdamW``.
"""

from __future__ import annotations

import math

import torch


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    # Shifting every logit by the row maximum changes no probability, and keeps exp() <= 1.
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    return shifted - shifted.exp().sum(dim=-1, keepdim=True).log()


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    log_probs = log_softmax(logits).reshape(-1, logits.shape[-1])
    targets = targets.reshape(-1)
    keep = targets != ignore_index
    # The mean of an empty selection is nan: all targets ignored gives nan, as in PyTorch.
    return -log_probs[keep, targets[keep]].mean()


def perplexity(loss: float) -> float:
    return math.exp(loss)


def bits_per_byte(logits: torch.Tensor, targets: torch.Tensor, token_bytes: torch.Tensor) -> float:
    total_bytes = int(token_bytes[targets].sum())
    if total_bytes == 0:
        raise ValueError("the targets hold no bytes of text: bits per byte is undefined")
    total_nats = cross_entropy(logits, targets).item() * targets.numel()
    return total_nats / math.log(2) / total_bytes


def lr_at(step: int, total_steps: int, warmup_steps: int, lr: float, schedule: str = "cosine",
          min_lr_ratio: float = 0.1, decay_fraction: float = 0.2) -> float:
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps  # step 0 already moves: no step is wasted at rate 0
    if schedule == "constant":
        return lr
    floor = lr * min_lr_ratio
    if schedule == "wsd":
        decay_steps = int(decay_fraction * total_steps)
        steps_into_decay = step - (total_steps - decay_steps) + 1
        if steps_into_decay <= 0:
            return lr  # the stable phase
        return lr - (lr - floor) * min(1.0, steps_into_decay / max(1, decay_steps))
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return floor + (lr - floor) * (1 + math.cos(math.pi * progress)) / 2


def adamw_step(params: list[torch.Tensor], grads: list[torch.Tensor], state: dict, lr: float,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01) -> None:
    beta1, beta2 = betas
    if not state:
        state.update(step=0, m=[torch.zeros_like(p) for p in params], v=[torch.zeros_like(p) for p in params])
    state["step"] += 1
    t = state["step"]
    with torch.no_grad():
        for p, g, m, v in zip(params, grads, state["m"], state["v"]):
            p.mul_(1 - lr * weight_decay)  # decay the weight itself, not through the gradient
            m.mul_(beta1).add_(g, alpha=1 - beta1)
            v.mul_(beta2).add_(g * g, alpha=1 - beta2)
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
            p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
