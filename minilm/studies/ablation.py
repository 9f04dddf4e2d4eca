"""GPT-2 versus modern components, one change at a time, on a short seeded training run.

Chapter 03 trains several variants of one model shape on the same tokens, with the same seed and
the same batches, and compares validation bits per byte, training throughput and KV-cache size:

- ``GPT-2``: LayerNorm with biases, GELU MLP, learned position embeddings;
- ``+ RMSNorm``, ``+ RoPE``, ``+ SwiGLU``: GPT-2 with one component swapped for the modern one;
- ``modern``: all three, and no biases (Llama-style);
- ``modern + GQA``: the modern model with fewer key/value heads than query heads.

The sizes come from the budget (``ablation_setup``), so the same call runs in seconds at ``smoke``
and for minutes at ``laptop``. Throughput is measured on the training steps alone: the validation
pass runs after the clock stops.

>>> sorted(variant_configs(300, dict(n_layer=1, n_embd=32, n_head=4, block_size=16)))[:2]
['+ RMSNorm', '+ RoPE']
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..core.config import Budget, as_budget
from ..models.gpt import GPT, GPTConfig
from ..models.train import TrainConfig, evaluate, train


@dataclass(frozen=True)
class AblationSetup:
    """Model shape, training run and evaluation size of the component ablation for one budget."""

    shape: dict
    train: TrainConfig
    eval_tokens: int
    kv_heads: int = 1  # key/value heads of the GQA variant (1 = multi-query attention)


SETUPS = {
    "smoke": AblationSetup(shape=dict(n_layer=2, n_embd=64, n_head=2, block_size=64),
                           train=TrainConfig(steps=8, batch_size=4, seq_len=64, warmup_steps=2, lr=3e-3, eval_every=0),
                           eval_tokens=4096),
    "laptop": AblationSetup(shape=dict(n_layer=4, n_embd=128, n_head=4, block_size=128),
                            train=TrainConfig(steps=300, batch_size=8, seq_len=128, warmup_steps=30, lr=3e-3,
                                              eval_every=0),
                            eval_tokens=32_768),
    "gpu": AblationSetup(shape=dict(n_layer=8, n_embd=512, n_head=8, block_size=512),
                         train=TrainConfig(steps=2000, batch_size=32, seq_len=512, warmup_steps=100, lr=1e-3,
                                           eval_every=0),
                         eval_tokens=1_048_576, kv_heads=2),
}


def ablation_setup(budget: Budget | str | None = None) -> AblationSetup:
    """The ablation's sizes for a budget (the one in force when None)."""
    return SETUPS[as_budget(budget).name]


def variant_configs(vocab_size: int, shape: dict, kv_heads: int = 1) -> dict[str, GPTConfig]:
    """The variants, in order: GPT-2, GPT-2 with one modern component each, modern, modern + GQA."""
    base = dict(vocab_size=vocab_size, **shape)
    gpt2 = GPTConfig.gpt2(**base)
    return {
        "GPT-2": gpt2,
        "+ RMSNorm": gpt2.with_overrides(norm="rmsnorm"),
        "+ RoPE": gpt2.with_overrides(position="rope"),
        "+ SwiGLU": gpt2.with_overrides(mlp="swiglu"),
        "modern": GPTConfig.modern(**base),
        "modern + GQA": GPTConfig.modern(**base, n_kv_head=kv_heads),
    }


def describe(config: GPTConfig) -> str:
    """One line naming a config's components, e.g. 'LayerNorm · GELU · learned pos · biases'."""
    parts = ["RMSNorm" if config.norm == "rmsnorm" else "LayerNorm", "SwiGLU" if config.mlp == "swiglu" else "GELU",
             "RoPE" if config.position == "rope" else "learned pos"]
    if config.kv_heads != config.n_head:
        parts.append(f"{config.kv_heads} KV head{'s' if config.kv_heads > 1 else ''}")
    parts.append("biases" if config.bias else "no biases")
    return " · ".join(parts)


def kv_cache_bytes_per_token(config: GPTConfig, bytes_per_value: int = 2) -> int:
    """Memory the KV cache holds for each token of context: keys and values of every layer
    (``bytes_per_value`` 2 = bf16/fp16, 4 = fp32).

    >>> kv_cache_bytes_per_token(GPTConfig.modern(n_layer=2, n_embd=64, n_head=4, n_kv_head=1))
    128
    """
    return 2 * config.n_layer * config.kv_heads * config.head_dim * bytes_per_value


@dataclass
class AblationRun:
    """One trained variant: what it is, what it cost and what it reached."""

    name: str
    config: GPTConfig
    seed: int
    params: int
    seconds: float  # training steps only
    tokens_per_s: float
    val: dict  # evaluate(): loss, perplexity, bpb
    history: list = field(default_factory=list)  # train() history: step, lr, loss, grad_norm
    model: GPT | None = None

    @property
    def losses(self) -> np.ndarray:
        return np.array([h["loss"] for h in self.history])


def run_variant(name: str, config: GPTConfig, train_tokens: np.ndarray, val_tokens: np.ndarray,
                train_config: TrainConfig, byte_lengths: np.ndarray | None = None, eval_tokens: int = 32_768,
                seed: int | None = None, device: str = "cpu", progress: bool = False, keep_model: bool = True) -> AblationRun:
    """Build ``config`` with weights drawn from ``seed`` (default: the training seed), train it,
    then evaluate it on the first ``eval_tokens`` validation tokens."""
    seed = train_config.seed if seed is None else seed
    cfg = replace(train_config, seed=seed)
    torch.manual_seed(seed)
    model = GPT(config)
    result = train(model, train_tokens, cfg, device=device, progress=progress, log_every=1)
    val = evaluate(model, val_tokens, cfg.seq_len, cfg.batch_size, eval_tokens, byte_lengths, device)
    model.eval()
    return AblationRun(name=name, config=config, seed=seed, params=model.num_params(), seconds=result.seconds,
                       tokens_per_s=result.tokens_per_s, val=val, history=result.history,
                       model=model if keep_model else None)


def run_ablation(configs: dict[str, GPTConfig], train_tokens: np.ndarray, val_tokens: np.ndarray,
                 train_config: TrainConfig, byte_lengths: np.ndarray | None = None, eval_tokens: int = 32_768,
                 repeat: dict[str, int] | None = None, device: str = "cpu", progress: bool = True) -> list[AblationRun]:
    """Train every variant in ``configs`` (same seed, same batches); ``repeat`` maps a variant name to
    another seed to train it again with, which shows how much of a difference is seed noise."""
    from ..core.progress import progress_bar

    jobs = [(name, cfg, train_config.seed) for name, cfg in configs.items()]
    for name, seed in (repeat or {}).items():
        if name not in configs:
            raise KeyError(f"repeat names {name!r}, which is not a variant: choose from {', '.join(configs)}")
        jobs.append((f"{name} (seed {seed})", configs[name], seed))
    runs = []
    for name, cfg, seed in progress_bar(jobs, desc="variants", disable=not progress, notebook=True):
        runs.append(run_variant(name, cfg, train_tokens, val_tokens, train_config, byte_lengths, eval_tokens,
                                seed=seed, device=device))
    return runs


def results_rows(runs: list[AblationRun], baseline: str = "GPT-2") -> list[list]:
    """Table rows: variant, components, parameters, validation bpb, change against ``baseline``,
    tokens/s and KV-cache bytes per token (bf16)."""
    base = next((r for r in runs if r.name == baseline), runs[0])
    rows = []
    for r in runs:
        bpb = r.val.get("bpb", float("nan"))
        delta = bpb - base.val.get("bpb", float("nan"))
        rows.append([r.name, describe(r.config), f"{r.params:,}", f"{bpb:.4f}",
                     "—" if r is base else f"{delta:+.4f}", f"{r.tokens_per_s:,.0f}",
                     f"{kv_cache_bytes_per_token(r.config):,}"])
    return rows


RESULT_HEADERS = ["variant", "components", "parameters", "val bits/byte", "Δ vs GPT-2", "train tokens/s",
                  "KV cache bytes/token (bf16)"]
