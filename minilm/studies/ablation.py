"""GPT-2 versus modern components, one change at a time, on a short seeded training run.

Chapter 03 trains several variants of one model shape on the same tokens, each with several seeds
(the same seeds, so the same batches), and compares validation bits per byte (a difference counts
only when the seeds do not overlap: :func:`compare_seeds`), training throughput and KV-cache size:

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
    seeds: tuple[int, ...] = (0, 1, 2)  # every variant trains once per seed
    workers: int = 1  # runs trained at once on a CPU, one thread each (minilm.core.processes)


SETUPS = {
    "smoke": AblationSetup(shape=dict(n_layer=2, n_embd=64, n_head=2, block_size=64),
                           train=TrainConfig(steps=8, batch_size=4, seq_len=64, warmup_steps=2, lr=3e-3, eval_every=0),
                           eval_tokens=4096),
    "laptop": AblationSetup(shape=dict(n_layer=4, n_embd=128, n_head=4, block_size=128),
                            train=TrainConfig(steps=300, batch_size=8, seq_len=128, warmup_steps=30, lr=3e-3,
                                              eval_every=0),
                            eval_tokens=32_768, workers=2),
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


def run_ablation(configs: dict[str, GPTConfig], train_tokens: np.ndarray, val_tokens,
                 train_config: TrainConfig, byte_lengths: np.ndarray | None = None, eval_tokens: int = 32_768,
                 seeds: tuple[int, ...] = (0, 1, 2), device: str = "cpu", progress: bool = True,
                 workers: int = 1) -> list[AblationRun]:
    """Train every variant in ``configs`` once per seed (the seed draws the weights and the batches,
    so every variant sees the same batches under the same seed). The models of the first seed are
    kept (``run.model``); the others are dropped to save memory. Runs come back seed by seed, in
    the order of ``configs``.

    ``workers`` > 1 on a CPU trains that many runs at once, each in its own process on one thread
    (:func:`minilm.core.processes.map_in_processes`): on two cores about 1.5 times as fast as one
    run on both. Each run's tokens/s is then that of one thread.
    """
    from ..core.processes import map_in_processes
    from ..core.progress import progress_bar

    if len(seeds) < 1 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds!r}: give one or more different seeds")
    runs_to_train = [(name, cfg, seed) for seed in seeds for name, cfg in configs.items()]
    jobs = [(i, name, cfg, seed, seed == seeds[0]) for i, (name, cfg, seed) in enumerate(runs_to_train)]
    data = dict(train_tokens=train_tokens, val_tokens=val_tokens, train_config=train_config,
                byte_lengths=byte_lengths, eval_tokens=eval_tokens, device=device)
    bar = progress_bar(total=len(jobs), desc="variants x seeds", disable=not progress, notebook=True)
    runs: dict[int, AblationRun] = {}
    if workers > 1 and torch.device(device).type == "cpu" and len(jobs) > 1:
        finished = map_in_processes(_ablation_job, jobs, workers, _start_ablation_worker, (data,),
                                    what="the ablation")
    else:
        _ABLATION_DATA.update(data)
        finished = map(_ablation_job, jobs)
    try:
        for i, run in finished:
            runs[i] = run
            bar.update()
    finally:
        _ABLATION_DATA.clear()
        bar.close()
    return [runs[i] for i in sorted(runs)]


_ABLATION_DATA: dict = {}  # what every run of run_ablation shares, in whichever process trains it


def _start_ablation_worker(data: dict) -> None:
    torch.set_num_threads(1)
    _ABLATION_DATA.update(data)


def _ablation_job(job) -> tuple[int, AblationRun]:
    i, name, config, seed, keep_model = job
    d = _ABLATION_DATA
    return i, run_variant(name, config, d["train_tokens"], d["val_tokens"], d["train_config"], d["byte_lengths"],
                          d["eval_tokens"], seed=seed, device=d["device"], keep_model=keep_model)


def compare_seeds(a, b) -> str:
    """How a metric of variant A (one value per seed) compares with B's: ``"lower"`` when every seed
    of A is below every seed of B, ``"higher"`` when every one is above, else ``"overlap"``.

    With three seeds each, chance alone separates the two groups this way with probability 1/20 per
    direction (the 20 ways of splitting six values into two groups of three), so a separation is
    evidence at about the 5% level, and an overlap means the runs cannot tell the variants apart.

    >>> compare_seeds([2.01, 2.03, 2.02], [2.10, 2.08, 2.12]), compare_seeds([2.0, 2.2], [2.1, 2.3])
    ('lower', 'overlap')
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("compare_seeds needs at least one value on each side")
    if a.max() < b.min():
        return "lower"
    if a.min() > b.max():
        return "higher"
    return "overlap"


def by_variant(runs: list[AblationRun], metric: str = "bpb") -> dict[str, np.ndarray]:
    """``{variant: values of the metric, one per seed}`` in the order the variants first appear."""
    values: dict[str, list] = {}
    for r in runs:
        values.setdefault(r.name, []).append(r.val.get(metric, float("nan")))
    return {name: np.array(v) for name, v in values.items()}


VERDICTS = {"lower": "better on every seed", "higher": "worse on every seed", "overlap": "within seed noise"}


def results_rows(runs: list[AblationRun], baseline: str = "GPT-2") -> list[list]:
    """Table rows, one per variant: components, parameters, validation bpb (mean ± sd over seeds),
    change of the mean against ``baseline``, the verdict of :func:`compare_seeds` (lower bpb is
    better), tokens/s (mean) and KV-cache bytes per token (bf16)."""
    bpb = by_variant(runs)
    if baseline not in bpb:
        raise KeyError(f"baseline {baseline!r} is not a variant: choose from {', '.join(bpb)}")
    first = {}
    for r in runs:
        first.setdefault(r.name, r)
    speed = {name: np.mean([r.tokens_per_s for r in runs if r.name == name]) for name in bpb}
    rows = []
    for name, values in bpb.items():
        r = first[name]
        spread = f" ± {values.std(ddof=1):.4f}" if values.size > 1 else ""
        delta = values.mean() - bpb[baseline].mean()
        rows.append([name, describe(r.config), f"{r.params:,}", f"{values.mean():.4f}{spread}",
                     "—" if name == baseline else f"{delta:+.4f}",
                     "—" if name == baseline else VERDICTS[compare_seeds(values, bpb[baseline])],
                     f"{speed[name]:,.0f}", f"{kv_cache_bytes_per_token(r.config):,}"])
    return rows


RESULT_HEADERS = ["variant", "components", "parameters", "val bits/byte (mean ± sd over seeds)", "Δ vs GPT-2",
                  "verdict (seeds)", "train tokens/s", "KV cache bytes/token (bf16)"]
