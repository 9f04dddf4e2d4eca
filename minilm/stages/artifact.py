"""What every stage's product shares: where it lives, its key, and how a build survives a crash.

A stage's artifact lives under ``runs/artifacts/<budget>/`` and its file name carries a key of
everything it depends on (config, data version and the upstream artifact's name), so changing the
budget or a config builds a new artifact instead of silently reusing a stale one. This module knows
no stage: each stage module (``tokenizer_stage``, ``data``, ``pretrain``, ``midtrain``, ``sft``)
owns its ``path`` and ``artifact`` and reaches its upstream product by importing that stage, so the
imports are the lineage.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import replace
from pathlib import Path

from ..core.config import Budget, runs_dir
from ..core.files import read_json, remove_orphan_temporaries, write_json
from ..models.checkpoint import load_model

# Bump when the corpus cleaning changes, so artifacts built from the old text are not reused.
CORPUS_VERSION = 1


def artifact_dir(budget: Budget) -> Path:
    return runs_dir() / "artifacts" / budget.name


def content_key(**parts) -> str:
    """A short hash of everything an artifact depends on, for its file name.

    >>> content_key(vocab=512, version=1) == content_key(version=1, vocab=512)
    True
    """
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]


def trained_model_artifact(path: Path, build) -> tuple:
    """``(model, summary)`` of the checkpoint at ``path`` and its ``.json`` summary; when missing,
    ``build(partial_checkpoint)`` trains it (returning the model and its summary), writing
    ``<path>.partial.pt`` as it goes, and both files are renamed into place once complete."""
    summary_path = path.with_suffix(".json")
    partial = path.with_suffix(".partial.pt")
    remove_orphan_temporaries(path.parent)
    recover_finished(path, partial)
    if not (path.exists() and summary_path.exists()):
        model, summary = build(partial)
        model.cpu()  # as loaded from the file below: callers move it where they want it
        if summary is None:  # a process other than 0 under torchrun: process 0 writes the files
            return model, None
        write_json(summary_path.with_suffix(".partial.json"), summary)
        partial.replace(path)
        summary_path.with_suffix(".partial.json").replace(summary_path)
    else:
        model = load_model(path)
    # Read back even when just written, so a fresh and a reused artifact give the same summary.
    return model, read_json(summary_path)


def recover_finished(path: Path, partial: Path) -> None:
    """A finished model whose summary is missing is made whole again instead of retrained from scratch.

    A build renames the model and then its summary into place; a crash between the two leaves the model
    beside a ``.partial.json`` summary, whose rename is finished here. A model with no summary at all
    (deleted by hand) becomes the partial checkpoint again: the build resumes at its last step, trains
    nothing and writes the summary anew.
    """
    summary_path = path.with_suffix(".json")
    if not path.exists() or summary_path.exists():
        return
    pending = summary_path.with_suffix(".partial.json")
    if pending.exists():
        pending.replace(summary_path)
    else:
        path.replace(partial)


def with_settings(budget: Budget, section: str, short_warmup: bool = False, **changes) -> Budget:
    """``budget`` with settings of one stage changed (what ``minilm <stage> --steps ...`` asks);
    ``short_warmup``: a run shorter than its warmup warms up for all but its last step.

    >>> from minilm.core.config import get_budget
    >>> budget = with_settings(get_budget("smoke"), "sft", short_warmup=True, steps=3)
    >>> budget.sft.steps, budget.sft.warmup_steps
    (3, 2)
    """
    if not changes:
        return budget
    settings = getattr(budget, section)
    steps = changes.get("steps")
    if short_warmup and steps is not None and steps >= 1 and settings.warmup_steps > steps - 1:
        warnings.warn(f"{section}: warmup_steps={settings.warmup_steps} does not fit in {steps} steps (at most "
                      f"{steps - 1}); warming up over {steps - 1} instead", stacklevel=2)
        changes["warmup_steps"] = steps - 1
    return budget.with_overrides(**{section: replace(settings, **changes)})
