"""Chapter 07's context-extension study: how to stretch a RoPE model past the context it was
pretrained on, three ways, compared at equal training.

Pretraining at a short context is cheap; mid-training extends it (Llama 3 and Xiong et al. 2023
pretrain short, then continue on long text). The base model is copied three times, each stretched
to the mid-training context by one method of :data:`minilm.models.gpt.CONTEXT_METHODS`:

- **extrapolate**: RoPE as trained, its tables simply longer; positions past the pretraining window
  rotate by angles the model never saw;
- **interpolate**: Position Interpolation (Chen et al. 2023): positions are divided by the
  extension factor, so every angle lies in the trained range (but neighbours sit closer);
- **base**: a larger base frequency (NTK-aware scaling): the fast pairs turn as before and the slow
  ones stretch.

Each copy then trains ``MidtrainConfig.extension_steps`` steps at the long context on the
pretraining mixture (same data, schedule and seed for all three). Before and after, it is measured
by its loss at each position of long windows of the held-out plays and by in-context recall of a
never-seen person's fact from 20 to 160 tokens back (:func:`minilm.stages.midtrain.position_study`).
:func:`artifact` caches the result: the pipeline does not run it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ..core.config import Budget, as_budget
from ..core.device import best_device
from ..core.files import read_json, write_json
from ..stages import midtrain, pretrain
from ..stages.artifact import artifact_dir, content_key

# Bump when the study changes what it runs or records.
CONTEXT_EXTENSION_VERSION = 1


def extension_study(budget: Budget | str | None = None, progress: bool = True, device: str | None = None) -> dict:
    """Every method of :data:`minilm.models.gpt.CONTEXT_METHODS`, from the budget's base model:
    ``{"context", "trained", "steps", "methods": {method: {"name", "before", "after", "seconds"}},
    "seconds"}``, with ``before`` / ``after`` as :func:`minilm.stages.midtrain.position_study` gives them."""
    from ..models.gpt import CONTEXT_METHODS, extend_context
    from ..models.train import train
    from ..text.world import World

    budget = as_budget(budget)
    device = device or best_device()
    started = time.perf_counter()
    m = budget.midtrain
    base, tokenizer, _ = pretrain.artifact(budget, progress=progress)
    train_tokens, val_tokens, _ = pretrain.load_tokens(budget, progress=progress)
    world = World(budget.world)
    context, short = midtrain.context_length(budget), budget.pretrain.seq_len
    cfg = replace(midtrain.train_config(budget), steps=m.extension_steps,
                  warmup_steps=min(m.warmup_steps, m.extension_steps - 1), eval_every=0, checkpoint_every=0)
    result = {"budget": budget.name, "device": device, "context": context, "trained": short,
              "steps": cfg.steps, "tokens_per_step": cfg.tokens_per_step, "methods": {}}
    base.to(device)
    for method, name in CONTEXT_METHODS.items():
        one_started = time.perf_counter()
        model = extend_context(base, context, method)
        before = midtrain.position_study(model, tokenizer, world, val_tokens, context, m.probe_n, device, short)
        train(model, train_tokens, cfg, device=device, progress=progress)
        after = midtrain.position_study(model, tokenizer, world, val_tokens, context, m.probe_n, device, short)
        result["methods"][method] = {"name": name, "before": before, "after": after,
                                     "seconds": round(time.perf_counter() - one_started, 1)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def path(budget: Budget) -> Path:
    """Keyed by the base model and the mid-training settings the study uses."""
    m = budget.midtrain
    k = content_key(base=pretrain.path(budget).name, context=midtrain.context_length(budget),
                    settings=repr((m.batch_size, m.lr, m.muon_lr, m.optimizer, m.warmup_steps, m.extension_steps,
                                   m.probe_n)),
                    world=repr(budget.world), version=CONTEXT_EXTENSION_VERSION)
    return artifact_dir(budget) / f"context-extension-{k}.json"


def artifact(budget: Budget | str | None = None, progress: bool = True, device: str | None = None) -> dict:
    """:func:`extension_study`'s result: run the first time (three short trainings from the base
    model, itself built if missing), saved atomically as ``context-extension-<key>.json``, loaded after."""
    budget = as_budget(budget)
    file = path(budget)
    if not file.exists():
        write_json(file, extension_study(budget, progress=progress, device=device))
    return read_json(file)
