"""Chapter 07's control for annealing: the same continuation of the base model on the pretraining
mix, to tell what the curated mix did from what any further training does.

The pipeline's mid-training (:mod:`minilm.stages.midtrain`) trains one run, on the annealing mix.
This study trains its control with everything else equal (start, long context, schedule, tokens,
calculator practice): only the rest of the mix differs. It then compares the two on each probe's
questions and each source's validation windows, with paired bootstrap intervals over those items
(:func:`minilm.stages.midtrain.compare_runs`). :func:`artifact` caches the result: the pipeline
does not run it.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..core.config import Budget, as_budget
from ..core.device import best_device
from ..core.files import read_json, remove_orphan_temporaries, write_json
from ..stages import midtrain, pretrain
from ..stages.artifact import artifact_dir, content_key

# Bump when the study changes what it runs or records.
ANNEAL_CONTROL_VERSION = 1


def control_study(budget: Budget | str | None = None, progress: bool = True, device: str | None = None,
                  checkpoint: str | Path | None = None) -> dict:
    """The control run and its comparison with the pipeline's annealed model: ``{"runs":
    {"continue": record}, "mixture", "comparison", "seconds"}`` (records as in the mid-training
    summary's ``runs``; comparison annealed minus continued)."""
    from ..text.world import World

    budget = as_budget(budget)
    device = device or best_device()
    started = time.perf_counter()
    annealed, tokenizer, summary = midtrain.artifact(budget, progress=progress, device=device)
    base, _, base_summary = pretrain.artifact(budget, progress=progress)
    _, val_tokens, _ = pretrain.load_tokens(budget, progress=progress)
    world = World(budget.world)
    pool = midtrain.midtrain_documents(budget)
    model, record = midtrain.train_run(budget, "continue", base, tokenizer, pool, val_tokens,
                                       None if checkpoint is None else str(checkpoint), device, progress)
    measured, windows = midtrain.measure(model, budget, tokenizer, world, val_tokens,
                                         base_summary["probes"]["addition_2digit"]["n"], device)
    mixture = record.pop("mixture")
    # The annealed model's probe answers are in its summary; its validation windows are measured again.
    annealed_windows = midtrain.validation_windows(annealed.to(device), budget, tokenizer, val_tokens, device)
    comparison = midtrain.compare_runs({"anneal": summary["runs"]["anneal"], "continue": measured},
                                       {"anneal": annealed_windows, "continue": windows}, val_tokens.weights)
    return {"budget": budget.name, "device": device, "runs": {"continue": record | measured}, "mixture": mixture,
            "comparison": comparison, "seconds": round(time.perf_counter() - started, 1)}


def path(budget: Budget) -> Path:
    """Keyed by the mid-trained model it is the control of (whose key holds every setting it uses)."""
    k = content_key(midtrain=midtrain.path(budget).name, version=ANNEAL_CONTROL_VERSION)
    return artifact_dir(budget) / f"anneal-control-{k}.json"


def artifact(budget: Budget | str | None = None, progress: bool = True, device: str | None = None) -> dict:
    """:func:`control_study`'s result: run the first time (one mid-training run, resumable from
    ``anneal-control-<key>.partial.pt``), saved atomically as ``anneal-control-<key>.json``, loaded after."""
    budget = as_budget(budget)
    file = path(budget)
    remove_orphan_temporaries(file.parent)
    if not file.exists():
        checkpoint = file.with_suffix(".partial.pt")
        write_json(file, control_study(budget, progress=progress, device=device, checkpoint=checkpoint))
        checkpoint.unlink(missing_ok=True)
    return read_json(file)
