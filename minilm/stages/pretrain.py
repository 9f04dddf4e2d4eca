"""Pretraining the base model (chapter 04): the budget's GPT trained on the budget's data mixture.

One call, :func:`pretrain`, does what ``minilm pretrain`` and the pipeline's ``pretrain`` stage do:
build (or reuse) the tokenizer and the token shards, derive the model from the budget's ``depth``,
train with warmup + cosine decay, evaluate validation loss and bits per byte as it goes, write
sample generations every ``sample_every`` steps (the base model as a "document simulator" that
improves over time), and finally probe what the model knows and can compute
(:mod:`minilm.evals.probes`). :func:`artifact` keeps the result, so later chapters load it instead of
training again.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..core.checks import ConfigError
from ..core.config import Budget, as_budget
from ..core.device import mfu
from ..data.shards import TokenShards
from ..evals.probes import probe_base_model
from ..inference.generate import complete
from ..models.gpt import GPT, GPTConfig
from ..models.train import SourceTokens, TrainConfig, evaluate, setup_distributed, token_byte_lengths, train
from ..text.world import World
from . import data as data_stage, tokenizer as tokenizer_stage
from .artifact import artifact_dir, content_key, trained_model_artifact, with_settings

# Bump when the model or the training loop changes what a checkpoint holds or how it is trained.
MODEL_VERSION = 1


def model_config(budget: Budget, vocab_size: int) -> GPTConfig:
    """The base model: modern components, shapes from the budget's one knob, ``depth``."""
    p = budget.pretrain
    return GPTConfig.from_depth(p.depth, vocab_size=vocab_size, block_size=p.seq_len)


def train_config(budget: Budget) -> TrainConfig:
    p = budget.pretrain
    return TrainConfig(steps=p.steps, batch_size=p.batch_size, seq_len=p.seq_len, lr=p.lr,
                       warmup_steps=p.warmup_steps, schedule=p.schedule, eval_every=p.eval_every,
                       compile=p.compile, checkpoint_every=max(100, p.steps // 10), seed=0)


def sample_prompts(world) -> list[str]:
    """What the training log samples: a play, a biography, an equation (fixed, so runs compare)."""
    person = world.people[0]
    return ["ROMEO.\n", f"{person.name} was born in", "23 + 45 ="]


def sampler(tokenizer, prompts: list[str], max_new_tokens: int = 24, seed: int = 0):
    """A training hook that writes one sampled continuation per prompt into the log.

    Sampling uses its own seeded generator, so it does not disturb the training's random state.
    """
    def hook(step: int, model, history=None) -> dict:
        texts = complete(model, tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=0.8, top_k=50,
                         seed=seed)
        return {"samples": [p + t for p, t in zip(prompts, texts)]}

    return hook


def load_tokens(budget: Budget, progress: bool = True) -> tuple[np.ndarray, SourceTokens, object]:
    """Train tokens, the validation tokens of every source (weighted by their share of the training
    tokens) and the tokenizer of the budget (built if missing)."""
    report = data_stage.artifact(budget, progress=progress)
    val = SourceTokens(data_stage.validation_sets(report), data_stage.token_shares(report))
    return TokenShards(report["directory"]).tokens("train"), val, tokenizer_stage.artifact(budget, progress=progress)


def by_source(metrics: dict, sources) -> dict:
    """``{source: {"loss": ..., "bpb": ...}}`` from :func:`minilm.models.train.evaluate`'s flat keys.

    >>> by_source({"loss": 2.0, "bpb": 1.0, "plays_loss": 3.0, "plays_bpb": 1.5}, ["plays"])
    {'plays': {'loss': 3.0, 'bpb': 1.5}}
    """
    return {s: {k: metrics[f"{s}_{k}"] for k in ("loss", "bpb") if f"{s}_{k}" in metrics} for s in sources}


def distributed_train_config(cfg: TrainConfig, world_size: int) -> TrainConfig:
    """The budget's run split over ``world_size`` processes: each takes ``batch_size / world_size``
    rows per micro-batch, so the global batch (and the learning-rate schedule) stay the budget's.

    >>> distributed_train_config(TrainConfig(batch_size=32), 4).batch_size
    8
    """
    if cfg.batch_size % world_size:
        raise ConfigError(f"batch_size={cfg.batch_size} does not split over {world_size} processes: "
                          f"use a batch size that is a multiple of the process count")
    return replace(cfg, batch_size=cfg.batch_size // world_size)


def pretrain(budget: Budget | str | None = None, checkpoint: str | Path | None = None, device: str | None = None,
             progress: bool = True) -> tuple[GPT, dict | None]:
    """Train the budget's base model; returns the model and a summary (history, samples, probes).

    With ``checkpoint``, training resumes from it if it exists (an interrupted build carries on
    exactly where it stopped) and is saved there along the way.

    Under ``torchrun`` (``torchrun --nproc_per_node 8 -m minilm pretrain``) every process trains a
    share of each batch (DDP, see :func:`distributed_train_config`); process 0 builds the data
    first, and alone evaluates, probes and returns the summary (the others return ``None``).
    """
    import torch
    import torch.distributed as dist

    budget = as_budget(budget)
    rank, world_size, process_device = setup_distributed()
    device = process_device if world_size > 1 else device or process_device
    if rank != 0:  # process 0 builds the tokenizer and the shards; the others then load them
        dist.barrier()
    train_tokens, val_tokens, tokenizer = load_tokens(budget, progress and rank == 0)
    if world_size > 1 and rank == 0:
        dist.barrier()
    world = World(budget.world)
    torch.manual_seed(0)  # the initial weights
    model = GPT(model_config(budget, tokenizer.vocab_size))
    cfg = train_config(budget)
    if world_size > 1:
        cfg = distributed_train_config(cfg, world_size)
    byte_lengths = token_byte_lengths(tokenizer)
    result = train(model, train_tokens, cfg, val_tokens=val_tokens, byte_lengths=byte_lengths, checkpoint=checkpoint,
                   resume=checkpoint is not None, device=device, progress=progress,
                   hook=sampler(tokenizer, sample_prompts(world)), hook_every=budget.pretrain.sample_every)
    model.eval()
    if rank != 0:
        dist.destroy_process_group()
        return model, None
    final = evaluate(model, val_tokens, cfg.seq_len, 64, 10**9, byte_lengths, device)
    n_probe = 200 if budget.name != "smoke" else 20
    probes = probe_base_model(model, tokenizer, world, n=n_probe)
    flops = model.flops_per_token(cfg.seq_len, unembedding=True)
    summary = {
        "budget": budget.name, "model_config": asdict(model.config), "train_config": asdict(cfg),
        "params": model.num_params(), "non_embedding_params": model.num_params(non_embedding=True),
        "flops_per_token": flops, "train_tokens_available": int(len(train_tokens)),
        "tokens_seen": cfg.steps * cfg.tokens_per_step * world_size, "seconds": round(result.seconds, 1),
        "tokens_per_s": round(result.tokens_per_s), "device": device, "processes": world_size,
        "mfu": mfu(flops, result.tokens_per_s, device),
        "val_loss": final["loss"], "val_bpb": final["bpb"], "val_sources": by_source(final, val_tokens),
        "val_weights": val_tokens.weights, "history": result.history, "probes": probes,
    }
    if world_size > 1:
        dist.destroy_process_group()
    return model, summary


def summary_rows(summary: dict) -> list[tuple[str, str]]:
    """The headline figures of a pretraining run, for tables in the notebook and the report."""
    probes = summary["probes"]
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    return [
        ("parameters", f"{summary['params']:,} ({summary['non_embedding_params']:,} non-embedding)"),
        ("tokens seen", f"{summary['tokens_seen']:,} ({summary['tokens_seen'] / summary['train_tokens_available']:.2f} epochs)"),
        ("training time", f"{summary['seconds']:.0f} s at {summary['tokens_per_s']:,} tokens/s on {summary['device']}"),
        ("validation loss / bits per byte (the mixture as trained)", f"{summary['val_loss']:.3f} / {summary['val_bpb']:.3f}"),
        *((f"validation loss / bits per byte: {source}", f"{v['loss']:.3f} / {v['bpb']:.3f}")
          for source, v in summary.get("val_sources", {}).items()),
        ("facts of seen people", pct(probes["facts_seen"]["accuracy"])),
        ("facts of held-out people (chance)", f"{pct(probes['facts_heldout']['accuracy'])} ({pct(probes['facts_heldout']['chance'])})"),
        ("held-out 2-digit addition", pct(probes["addition_2digit"]["accuracy"])),
        ("held-out 2-digit subtraction", pct(probes["subtraction_2digit"]["accuracy"])),
        ("held-out 3-digit addition", pct(probes["addition_3digit"]["accuracy"])),
    ]



def path(budget: Budget) -> Path:
    """Keyed by the data shards it trains on and the pretraining settings."""
    k = content_key(data=data_stage.data_key(budget), pretrain=repr(budget.pretrain), model=MODEL_VERSION)
    return artifact_dir(budget) / f"base-{k}.pt"


def artifact(budget: Budget | str | None = None, progress: bool = True, device: str | None = None):
    """The budget's pretrained base model: ``(model, tokenizer, summary)``, trained if missing.

    Training writes ``base-<key>.partial.pt`` as it goes (an interrupted build resumes from it) and
    renames it to ``base-<key>.pt`` with a ``.json`` summary (history, samples, probes) when done.
    """
    budget = as_budget(budget)
    model, summary = trained_model_artifact(
        path(budget), lambda partial: pretrain(budget, checkpoint=partial, device=device, progress=progress))
    if summary is None:  # a process other than 0 under torchrun
        return model, None, None
    return model, tokenizer_stage.artifact(budget, progress=progress), summary


# ----------------------------------------------------------------------------------------------
# The command: `minilm pretrain` (one generic handler in minilm.cli reads these)

COMMAND, CHAPTER, PRODUCT = "pretrain", "04", "base model"
HELP = "train (or load) the budget's base model and probe it"
# The budget's pretraining settings the command may change: flag -> (type, help).
FLAGS = {"depth": (int, "layers (width = 64 x depth); default: the budget's"),
         "steps": (int, "optimizer steps (default: the budget's)"), "lr": (float, "peak learning rate"),
         "batch_size": (int, "sequences per step"), "seq_len": (int, "tokens per sequence")}


def configure(budget: Budget, **changes) -> Budget:
    return with_settings(budget, "pretrain", short_warmup=True, **changes)


def report(result) -> str:
    """What ``minilm pretrain`` prints: the headline figures (nothing on a torchrun process other than 0)."""
    summary = result[2]
    if summary is None:
        return ""
    rows = summary_rows(summary)
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:>{width}}: {value}" for name, value in rows)
