"""The checkpoint file: one model's weights and settings, and what a run needs to resume.

A checkpoint is a ``torch.save`` of plain values (dicts, lists, tensors, numbers), read back with
``weights_only=True``, so loading runs no code and the file holds no class paths: moving or renaming
a class never breaks an old file. Writes are atomic, and every way a file can be wrong (missing,
truncated, from another model) is one :class:`CheckpointError` line naming the file.
"""

from __future__ import annotations

import io
from dataclasses import asdict, fields
from pathlib import Path

import torch

from ..core.files import atomic_write_bytes
from .gpt import GPT, GPTConfig


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupted or belongs to another model."""


def save_checkpoint(path, model, optimizer, step: int, train_config: dict, history: list,
                    seconds: float = 0.0, tokens: int = 0) -> Path:
    """Write everything needed to resume, atomically (a crash never leaves half a checkpoint).

    ``train_config`` is a plain dict (``asdict`` of the run's settings), so this file format knows no
    training code. ``seconds`` and ``tokens``: the training time and tokens so far, so a resumed run
    reports the whole run's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": "minilm-checkpoint", "version": 1,
        "model": model.state_dict(), "model_config": asdict(model.config),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": step, "train_config": dict(train_config), "history": history,
        "torch_rng": torch.get_rng_state(), "seconds": float(seconds), "tokens": int(tokens),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_checkpoint(path, model=None, optimizer=None) -> dict:
    """Load (with ``weights_only=True``: no code runs) and, if given, restore model and optimizer."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint here")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, bad pickle, ... all mean the same to the user
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupted?): {type(err).__name__}") from None
    if not isinstance(state, dict) or state.get("format") != "minilm-checkpoint":
        raise CheckpointError(f"{path}: not a minilm checkpoint")
    if model is not None:
        # A field added to GPTConfig after the file was written counts as its default value.
        saved = {**asdict(type(model.config)()), **state["model_config"]}
        ours = asdict(model.config)
        different = {k: (saved.get(k), v) for k, v in ours.items() if saved.get(k) != v}
        if different:
            detail = ", ".join(f"{k}={a!r} in the file, {b!r} here" for k, (a, b) in sorted(different.items()))
            raise CheckpointError(f"{path}: saved for another model shape: {detail}")
        model.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as err:
            raise CheckpointError(f"{path}: its optimizer state does not fit this optimizer "
                                  f"(saved with another --optimizer?): {err}") from None
    return state


def load_model(path: Path):
    """The model saved in a checkpoint file, in eval mode on the CPU."""
    state = load_checkpoint(path)
    if not isinstance(state.get("model_config"), dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{path}: a minilm checkpoint without a model (no model_config or weights)")
    unknown = sorted(set(state["model_config"]) - {f.name for f in fields(GPTConfig)})
    if unknown:
        raise CheckpointError(f"{path}: its model has settings this minilm does not know ({', '.join(unknown)}): "
                              "written by a newer version?")
    model = GPT(GPTConfig(**state["model_config"]))
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if missing or unexpected:  # torch's own message is many lines long
        raise CheckpointError(f"{path}: its weights do not fit its model settings (missing: "
                              f"{', '.join(missing) or 'none'}; unexpected: {', '.join(unexpected) or 'none'})")
    return model.eval()


def check_same_vocabulary(model, tokenizer) -> None:
    """Raise a ValueError unless ``model`` and ``tokenizer`` have the same vocabulary size (a model
    paired with another tokenizer reads its token ids as other tokens)."""
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"the model has vocab_size={model.config.vocab_size} but the tokenizer has "
                         f"{tokenizer.vocab_size}: they were not trained together")
