"""The scaling sweep: train a grid of model sizes x token counts and record their final losses.

Each run is a small GPT (:mod:`minilm.models.gpt`) trained with :func:`minilm.models.train.train` on the
budget's pretraining shards; the records (parameters, tokens, FLOPs, validation loss) are cached
under a key of everything they depend on, so a rerun trains only what is missing. The fit of
L(N, D) to these records lives in :mod:`minilm.studies.scaling_law`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..core.checks import ConfigError, check_range


SWEEP_VERSION = 1  # bump when a sweep run changes what it measures, so old caches are not reused


@dataclass(frozen=True)
class SweepConfig:
    """A grid of model shapes x training-token budgets, each trained from scratch.

    shapes: (n_layer, n_embd) pairs; heads have ``head_dim`` dimensions (modern GPT: RMSNorm,
        SwiGLU, RoPE, tied embeddings).
    tokens: training tokens of each run (rounded to whole steps of batch_size x seq_len).
    Each run warms up for ``warmup_fraction`` of its steps, then decays with a cosine to the end of
    *its own* budget (Hoffmann et al. found that a schedule longer than the run overstates loss).
    """

    shapes: tuple[tuple[int, int], ...]
    tokens: tuple[int, ...]
    head_dim: int = 16
    batch_size: int = 16
    seq_len: int = 64
    lr: float = 3e-3
    warmup_fraction: float = 0.1
    eval_tokens: int = 16_384
    seed: int = 0

    def __post_init__(self):
        if not self.shapes:
            raise ConfigError("shapes=() is empty: give at least one (n_layer, n_embd)")
        if not self.tokens:
            raise ConfigError("tokens=() is empty: give at least one token budget")
        check_range("head_dim", self.head_dim, 2, 1024)
        for shape in self.shapes:
            if len(shape) != 2:
                raise ConfigError(f"shape {shape!r} must be a pair (n_layer, n_embd)")
            layers, width = shape
            check_range("n_layer", layers, 1, 1000)
            check_range("n_embd", width, 1, 65536)
            if width % self.head_dim:
                raise ConfigError(f"n_embd={width} must be a multiple of head_dim={self.head_dim}")
        for budget in self.tokens:
            check_range("tokens", budget, 1, 10**13)
        check_range("batch_size", self.batch_size, 1, 10**6)
        check_range("seq_len", self.seq_len, 1, 10**6)
        check_range("lr", self.lr, 0.0, 10.0)
        check_range("warmup_fraction", self.warmup_fraction, 0.0, 1.0)
        check_range("eval_tokens", self.eval_tokens, 1, 10**10)
        check_range("seed", self.seed, 0, 2**31 - 1)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    def steps(self, tokens: int) -> int:
        return max(1, round(tokens / self.tokens_per_step))


SWEEPS: dict[str, SweepConfig] = {
    # seconds on 2 CPU cores: three shapes x two budgets of a few dozen steps
    "smoke": SweepConfig(shapes=((1, 16), (1, 32), (2, 32)), tokens=(4_096, 8_192), batch_size=8, seq_len=32,
                         eval_tokens=4_096),
    # about five minutes on one CPU thread: N from ~13k to ~107k non-embedding parameters, D from 32k to 512k
    # tokens (64 to 1024 steps), so D/N spans ~0.3 to ~40; with a 4096-token vocabulary most of the
    # compute is the output layer
    "laptop": SweepConfig(shapes=((1, 32), (2, 32), (2, 48), (2, 64)),
                          tokens=(32_768, 65_536, 131_072, 262_144, 524_288), batch_size=8, eval_tokens=8_192),
    # one GPU: N from ~0.4M to ~25M, D from 0.5M to 8M tokens (below the ~12M the gpu budget's mixture
    # holds, so no run repeats data)
    "gpu": SweepConfig(shapes=((2, 128), (4, 256), (6, 384), (8, 512)), tokens=(2**19, 2**20, 2**21, 2**22, 2**23),
                       head_dim=64, batch_size=32, seq_len=256, lr=2e-3, eval_tokens=262_144),
}


def sweep_config(budget=None) -> SweepConfig:
    """The sweep sized for a budget (name, Budget or None for the one in force)."""
    from ..core.config import as_budget

    return SWEEPS[as_budget(budget).name]


def model_config(shape: tuple[int, int], vocab_size: int, cfg: SweepConfig):
    """The GPTConfig of one sweep shape."""
    from ..models.gpt import GPTConfig

    layers, width = shape
    return GPTConfig.modern(vocab_size=vocab_size, n_layer=layers, n_embd=width, n_head=width // cfg.head_dim,
                            block_size=cfg.seq_len)


def _fingerprint(tokens: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(tokens).tobytes()).hexdigest()[:16]


def sweep_key(cfg: SweepConfig, train_tokens: np.ndarray, val_tokens: np.ndarray, vocab_size: int) -> str:
    """Everything a sweep's results depend on, hashed: the config, the data and the vocabulary."""
    parts = {"config": asdict(cfg), "train": _fingerprint(train_tokens), "val": _fingerprint(val_tokens),
             "vocab": vocab_size, "version": SWEEP_VERSION}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class SweepResult:
    records: list  # one dict per run, in shape-major order
    config: SweepConfig
    path: Path | None  # the cache file
    reused: int  # runs read from the cache instead of trained
    seconds: float  # time spent training in this call


def _load_cache(path: Path | None, key: str) -> dict:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("format") != "minilm-scaling-sweep" or data.get("key") != key:
            return {}
        return {(r["n_layer"], r["n_embd"], r["tokens_requested"]): r for r in data["records"]}
    except (OSError, ValueError, KeyError, TypeError):  # unreadable or half-edited: train again
        return {}


def run_sweep(cfg: SweepConfig, train_tokens: np.ndarray, val_tokens: np.ndarray, vocab_size: int,
              byte_lengths: np.ndarray | None = None, cache_dir: str | Path | None = None,
              device: str = "cpu", progress: bool = True, threads: int | None = 1) -> SweepResult:
    """Train every (shape, token budget) of ``cfg`` from scratch and measure its validation loss.

    Each record holds the shape, ``params`` (N, non-embedding), ``params_total``, ``tokens`` (D,
    tokens actually trained on), ``flops`` (6ND), ``flops_model`` (``GPT.flops_per_token`` x D,
    attention included), ``val_loss`` (nats per token) and ``val_bpb`` (bits per byte, when
    ``byte_lengths`` is given), the last training loss and the seconds taken. Every model starts
    from the same seed and sees batches in the same order.

    With ``cache_dir``, results are saved (atomically, after every run) to
    ``cache_dir/scaling-sweep-<key>.json``, the key hashing the config and the data, and runs
    found there are not trained again: re-running a notebook reuses them, and an interrupted
    sweep goes on where it stopped.

    On CPU the runs use ``threads`` threads (None leaves torch's setting): models this small gain
    little from a second thread, and threads that wait for a busy core make them many times slower
    (measured: 40 s instead of 3.5 s for one smoke run on 2 shared cores).
    """
    import torch

    if not isinstance(cfg, SweepConfig):
        raise ValueError(f"cfg must be a SweepConfig, got {type(cfg).__name__}")
    train_tokens, val_tokens = np.asarray(train_tokens), np.asarray(val_tokens)
    for name, tokens in (("train_tokens", train_tokens), ("val_tokens", val_tokens)):
        if tokens.ndim != 1 or len(tokens) < cfg.seq_len + 2:
            raise ValueError(f"{name} must be a flat array of at least seq_len + 2 = {cfg.seq_len + 2} token ids, "
                             f"got shape {tokens.shape}")
    if int(max(train_tokens.max(), val_tokens.max())) >= vocab_size:
        raise ValueError(f"token ids go up to {int(max(train_tokens.max(), val_tokens.max()))}, "
                         f"beyond vocab_size={vocab_size}")
    key = sweep_key(cfg, train_tokens, val_tokens, vocab_size)
    path = Path(cache_dir) / f"scaling-sweep-{key}.json" if cache_dir is not None else None
    done = _load_cache(path, key)
    runs = [(shape, budget) for shape in cfg.shapes for budget in cfg.tokens]
    records, started = [], time.perf_counter()
    threads_before = torch.get_num_threads()
    if threads is not None and torch.device(device).type == "cpu":
        torch.set_num_threads(threads)
    try:
        trained = _run_all(runs, done, records, cfg, train_tokens, val_tokens, vocab_size, byte_lengths, path, key,
                           device, progress)
    finally:
        torch.set_num_threads(threads_before)
    return SweepResult(records=records, config=cfg, path=path, reused=len(runs) - trained,
                       seconds=round(time.perf_counter() - started, 2))


def _run_all(runs, done, records, cfg, train_tokens, val_tokens, vocab_size, byte_lengths, path, key, device,
             progress) -> int:
    """Train the runs not in ``done`` (appending every run's record to ``records``); returns how many."""
    import torch

    from ..core.files import write_json
    from ..models.gpt import GPT
    from ..core.progress import progress_bar
    from ..models.train import TrainConfig, evaluate, train

    trained = 0
    bar = progress_bar(runs, desc="sweep", disable=not progress, mininterval=2.0)
    for shape, budget in bar:
        cached = done.get((shape[0], shape[1], budget))
        if cached is not None:
            records.append(dict(cached))
            continue
        bar.set_postfix(shape=f"{shape[0]}x{shape[1]}", tokens=budget)
        model_cfg = model_config(shape, vocab_size, cfg)
        torch.manual_seed(cfg.seed)
        model = GPT(model_cfg)
        steps = cfg.steps(budget)
        train_cfg = TrainConfig(steps=steps, batch_size=cfg.batch_size, seq_len=cfg.seq_len, lr=cfg.lr,
                                warmup_steps=int(cfg.warmup_fraction * steps), eval_every=0, seed=cfg.seed)
        t0 = time.perf_counter()
        result = train(model, train_tokens, train_cfg, device=device, progress=False, log_every=max(1, steps))
        metrics = evaluate(model, val_tokens, cfg.seq_len, cfg.batch_size, cfg.eval_tokens, byte_lengths, device)
        n, d = model.num_params(non_embedding=True), steps * cfg.tokens_per_step
        record = {"n_layer": shape[0], "n_embd": shape[1], "n_head": model_cfg.n_head, "tokens_requested": budget,
                  "params": n, "params_total": model.num_params(), "tokens": d, "steps": steps,
                  "flops": 6.0 * n * d, "flops_model": float(model.flops_per_token(cfg.seq_len)) * d,
                  "val_loss": metrics["loss"], "val_bpb": metrics.get("bpb"),
                  "train_loss": result.history[-1]["loss"], "seconds": round(time.perf_counter() - t0, 2)}
        records.append(record)
        trained += 1
        done[(shape[0], shape[1], budget)] = record
        if path is not None:
            write_json(path, {"format": "minilm-scaling-sweep", "key": key, "config": asdict(cfg),
                              "records": list(done.values())})
    return trained


def run_budget_sweep(budget=None, progress: bool = True, device: str | None = None) -> SweepResult:
    """The budget's sweep on the budget's pretraining data and tokenizer (built if missing),
    cached under ``runs/artifacts/<budget>/``; ``progress`` shows a bar over the runs."""
    from ..stages import data as data_stage, tokenizer as tokenizer_stage
    from ..core.config import as_budget
    from ..stages.artifact import artifact_dir
    from ..core.device import best_device
    from ..data.shards import TokenShards
    from ..models.train import token_byte_lengths

    budget = as_budget(budget)
    report = data_stage.artifact(budget, progress=False)
    shards = TokenShards(report["directory"])
    tokenizer = tokenizer_stage.artifact(budget, progress=False)
    return run_sweep(sweep_config(budget), shards.tokens("train"), shards.tokens("val"), tokenizer.vocab_size,
                     byte_lengths=token_byte_lengths(tokenizer), cache_dir=artifact_dir(budget),
                     device=device or best_device(), progress=progress)


def records_arrays(records: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, D, validation loss) of sweep records, ready for :func:`minilm.studies.scaling_law.fit_scaling_law`.

    >>> n, d, loss = records_arrays([{"params": 1e6, "tokens": 2e7, "val_loss": 3.5}])
    >>> n.tolist(), d.tolist(), loss.tolist()
    ([1000000.0], [20000000.0], [3.5])
    """
    if not records:
        raise ValueError("no sweep records given")
    return tuple(np.array([r[k] for r in records], dtype=np.float64) for k in ("params", "tokens", "val_loss"))
