"""Growing a trained model: insert identity blocks, keep training (chapter 07).

A pre-norm block adds ``attn(norm(x))`` and then ``mlp(norm(x))`` to the residual stream. If the
two output projections (``attn.c_proj`` and ``mlp.c_proj``) are zero, the block adds nothing: the
grown model computes exactly what the small one did, so training continues from the small model's
loss instead of from scratch. The zero projections still get gradients (their input is not zero),
so the first step already moves them, and the rest of the block follows. LLaMA Pro (Wu et al.
2024) expands a model this way, copying each new block from its neighbour; Gong et al. (2019,
"stacking") and Net2Net (Chen et al. 2016) grow networks while keeping their function.

:func:`grow_depth` builds the deeper model; :func:`growth_experiment` trains a small model, grows
it and trains on, against a model of the grown size trained from scratch for the same compute.

>>> import torch
>>> from minilm.models.gpt import GPT, GPTConfig
>>> _ = torch.manual_seed(0)
>>> small = GPT(GPTConfig.modern(vocab_size=64, n_layer=2, n_embd=32, n_head=2, block_size=16))
>>> big = grow_depth(small, 2)
>>> big.config.n_layer, torch.allclose(small(torch.arange(8)[None])[0], big(torch.arange(8)[None])[0], atol=1e-6)
(4, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.checks import check_count, check_range
from ..core.config import Budget, as_budget
from ..core.device import best_device
from ..core.files import read_json, write_json
from ..evals.intervals import Difference, loss_difference
from ..models.gpt import GPT, GPTConfig
from ..stages import data as data_stage, pretrain
from ..stages.artifact import artifact_dir, content_key


def default_positions(n_layer: int, new_layers: int) -> list[int]:
    """Spread new blocks evenly: one after each group of ``n_layer / new_layers`` old blocks.

    >>> default_positions(4, 2), default_positions(3, 3), default_positions(2, 4)
    ([2, 4], [1, 2, 3], [1, 1, 2, 2])
    """
    check_range("n_layer", n_layer, 1, 10**4)
    check_range("new_layers", new_layers, 1, 10**4)
    return [max(1, round((i + 1) * n_layer / new_layers)) for i in range(new_layers)]


def grow_depth(model: GPT, new_layers: int, positions: list[int] | None = None, init: str = "copy",
               seed: int = 0) -> GPT:
    """A deeper copy of ``model`` that computes the same function: ``new_layers`` new blocks whose
    output projections are zero. The input model is not changed.

    positions: for each new block, the number of old blocks before it (0 = before the first block,
        ``n_layer`` = after the last); default: spread evenly (:func:`default_positions`).
    init: how the rest of a new block starts: ``"copy"`` the old block just before it (just after,
        at position 0), as LLaMA Pro does, or ``"random"`` (the usual initialisation, seeded).

    Every block of the new model is built for its new index, so the KV cache (one slot per layer)
    works as before.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"grow_depth needs a minilm GPT, got {type(model).__name__}")
    check_count("new_layers", new_layers)
    if init not in ("copy", "random"):
        raise ValueError(f"init={init!r} is not allowed: choose 'copy' or 'random'")
    old = model.config.n_layer
    positions = default_positions(old, new_layers) if positions is None else list(positions)
    if len(positions) != new_layers:
        raise ValueError(f"positions={positions} gives {len(positions)} places for new_layers={new_layers} blocks")
    for p in positions:
        if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= old:
            raise ValueError(f"positions={positions}: each must be a whole number from 0 to n_layer={old}")
    config = model.config.with_overrides(n_layer=old + new_layers)
    parameter = next(model.parameters())
    with torch.random.fork_rng(devices=[]):  # the new blocks' random init must not disturb the caller's RNG
        torch.manual_seed(seed)
        grown = GPT(config)
    grown.to(device=parameter.device, dtype=parameter.dtype)

    # The new stack, as (source, old index): old blocks in order, new ones where positions put them.
    layout: list[tuple[str, int]] = []
    for i in range(old + 1):
        layout += [("new", i)] * sorted(positions).count(i)
        if i < old:
            layout.append(("old", i))
    source_state = model.state_dict()
    state = grown.state_dict()
    for name in state:
        if not name.startswith("blocks."):
            state[name] = source_state[name].clone()
    for index, (kind, where) in enumerate(layout):
        copy_from = where if kind == "old" else (where - 1 if where > 0 else 0) if init == "copy" else None
        for name in [n for n in state if n.startswith(f"blocks.{index}.")]:
            suffix = name[len(f"blocks.{index}."):]
            if copy_from is not None:
                state[name] = source_state[f"blocks.{copy_from}.{suffix}"].clone()
            if kind == "new" and suffix.startswith(("attn.c_proj.", "mlp.c_proj.")):
                state[name] = torch.zeros_like(state[name])  # the block adds nothing to the residual stream
    grown.load_state_dict(state)
    grown.train(model.training)
    return grown


def new_block_indices(n_layer: int, positions: list[int]) -> list[int]:
    """Indices, in the grown model, of the blocks :func:`grow_depth` inserts at ``positions``.

    >>> new_block_indices(3, [1, 3])
    [1, 4]
    """
    for p in positions:
        check_range("position", p, 0, n_layer)  # blocks go between 0 and n_layer old blocks
    return [p + i for i, p in enumerate(sorted(positions))]


# ----------------------------------------------------------------------------------------------
# Grow, then train: against training the big model from scratch for the same compute


@dataclass
class GrowthResult:
    """Validation curves against training FLOPs, and the check at insertion."""

    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # name -> [(FLOPs, val loss)]
    loss_before: float = 0.0  # small model, end of its training
    loss_after_insertion: float = 0.0  # the grown model before any step: equal to loss_before
    flops: dict[str, float] = field(default_factory=dict)  # total training FLOPs per run
    flops_per_step: dict[str, float] = field(default_factory=dict)  # small and grown shapes
    params: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # Final validation loss, grown minus scratch, on every validation window (the curves' last
    # points read the first eval_tokens only), with a paired bootstrap interval over the windows:
    # it covers the evaluation's noise, not the seed's.
    final_difference: Difference | None = None
    eval_tokens: int = 0  # per source, for the curves' points

    def final(self, name: str) -> float:
        return self.curves[name][-1][1]


def _curve(history: list[dict], flops_per_step: float, offset: float = 0.0) -> list[tuple[float, float]]:
    return [(offset + h["step"] * flops_per_step, h["val_loss"]) for h in history if "val_loss" in h]


def growth_experiment(train_tokens: np.ndarray, val_tokens: np.ndarray, small_config, new_layers: int, steps: int,
                      batch_size: int = 16, lr: float = 3e-3, eval_every: int = 25, eval_tokens: int = 16_384,
                      device: str = "cpu", progress: bool = False, seed: int = 0) -> GrowthResult:
    """Train ``small_config`` for ``steps`` steps, grow it by ``new_layers`` identity blocks, train
    ``steps`` more; train the grown shape from scratch for the same total FLOPs.

    Each run warms up and decays at its end (warmup-stable-decay), so every run finishes with
    a decayed learning rate; the small model's phase ends without a decay, like a stable-phase
    checkpoint. FLOPs per token come from ``GPT.flops_per_token`` (the unembedding counted).
    """
    from ..models.train import SourceTokens, TrainConfig, evaluate, train, window_totals

    if steps < 2:
        raise ValueError(f"steps={steps} must be at least 2")
    seq_len = small_config.block_size
    warmup = max(1, steps // 20)

    def config(n: int, schedule: str) -> TrainConfig:
        return TrainConfig(steps=n, batch_size=batch_size, seq_len=seq_len, lr=lr, warmup_steps=min(warmup, n - 1),
                           schedule=schedule, min_lr_ratio=0.0, eval_every=eval_every, eval_tokens=eval_tokens,
                           seed=seed)

    result = GrowthResult(eval_tokens=eval_tokens)
    torch.manual_seed(seed)
    small = GPT(small_config)
    tokens_per_step = batch_size * seq_len
    small_flops = small.flops_per_token(seq_len, unembedding=True) * tokens_per_step
    run = train(small, train_tokens, config(steps, "constant"), val_tokens=val_tokens, device=device, progress=progress)
    result.curves["small"] = _curve(run.history, small_flops)
    result.seconds["small"] = run.seconds
    result.loss_before = evaluate(small, val_tokens, seq_len, batch_size, eval_tokens, device=device)["loss"]

    grown = grow_depth(small, new_layers, seed=seed)
    result.loss_after_insertion = evaluate(grown, val_tokens, seq_len, batch_size, eval_tokens, device=device)["loss"]
    grown_flops = grown.flops_per_token(seq_len, unembedding=True) * tokens_per_step
    run = train(grown, train_tokens, config(steps, "wsd"), val_tokens=val_tokens, device=device, progress=progress)
    offset = steps * small_flops
    result.curves["grown"] = [(offset, result.loss_after_insertion)] + _curve(run.history, grown_flops, offset)
    result.seconds["grown"] = run.seconds

    scratch_steps = max(2, round((steps * small_flops + steps * grown_flops) / grown_flops))
    torch.manual_seed(seed + 1)
    scratch = GPT(grown.config)
    run = train(scratch, train_tokens, config(scratch_steps, "wsd"), val_tokens=val_tokens, device=device,
                progress=progress)
    result.curves["scratch"] = _curve(run.history, grown_flops)
    result.seconds["scratch"] = run.seconds
    result.flops = {"small + grown": steps * (small_flops + grown_flops), "scratch": scratch_steps * grown_flops}
    result.flops_per_step = {"small": small_flops, "grown": grown_flops}
    result.params = {"small": small.num_params(), "grown": grown.num_params()}
    sets = val_tokens if isinstance(val_tokens, SourceTokens) else {"validation": val_tokens}
    windows = [{source: window_totals(m, stream, seq_len, 64, 10**9, device=device) for source, stream in sets.items()}
               for m in (grown, scratch)]
    result.final_difference = loss_difference(*windows, getattr(sets, "weights", None), seed=seed)
    return result


# ----------------------------------------------------------------------------------------------
# Chapter 07's experiment, cached

# Bump when the experiment changes what it runs or records.
GROW_VERSION = 1


def path(budget: Budget) -> Path:
    """Keyed by the pretraining data and the ``grow_*`` settings of the budget's mid-training."""
    settings = {k: v for k, v in asdict(budget.midtrain).items() if k.startswith("grow_")}
    k = content_key(data=data_stage.data_key(budget), grow=repr(sorted(settings.items())),
                    context=budget.pretrain.seq_len, version=GROW_VERSION)
    return artifact_dir(budget) / f"grow-{k}.json"


def _to_dict(result: GrowthResult) -> dict:
    record = asdict(result)
    record["final_difference"] = result.final_difference.as_dict() if result.final_difference else None
    return record


def _from_dict(record: dict) -> GrowthResult:
    fields_ = {**record, "curves": {name: [tuple(p) for p in points] for name, points in record["curves"].items()}}
    difference = record.get("final_difference")
    fields_["final_difference"] = Difference.from_dict(difference) if difference else None
    return GrowthResult(**fields_)


def artifact(budget: Budget | str | None = None, progress: bool = False, device: str | None = None) -> GrowthResult:
    """Chapter 07's growing experiment for the budget (:func:`growth_experiment` on the pretraining
    data: a ``grow_layers``-layer model of width ``grow_width``, ``grow_steps`` steps, grown by
    ``grow_new_layers`` blocks): run the first time (two to three minutes at laptop), saved as
    ``grow-<key>.json``, loaded after."""
    budget = as_budget(budget)
    file = path(budget)
    if not file.exists():
        train_tokens, val_tokens, tokenizer = pretrain.load_tokens(budget, progress=progress)
        m = budget.midtrain
        small = GPTConfig.modern(vocab_size=tokenizer.vocab_size, n_layer=m.grow_layers, n_embd=m.grow_width,
                                 n_head=m.grow_width // 64, block_size=budget.pretrain.seq_len)
        result = growth_experiment(train_tokens, val_tokens, small, m.grow_new_layers, m.grow_steps, batch_size=16,
                                   eval_every=max(2, m.grow_steps // 10), device=device or best_device(),
                                   progress=progress)
        write_json(file, _to_dict(result))
    return _from_dict(read_json(file))
