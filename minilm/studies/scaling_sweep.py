"""Chapter 05's scaling study: an isoFLOP sweep, fitted two ways, and a prediction checked by a larger run.

Each choice below fixes a way a naive sweep fails at laptop scale:

- **A small vocabulary.** The runs use the budget's tokenizer truncated to ``vocab_size`` tokens
  (exactly the tokenizer training to that size gives, :meth:`minilm.text.tokenizer.Tokenizer.truncated`).
  With 4096 tokens a 32-wide model is 90% embedding table and its compute is the output layer;
  at 512 the sweep's models are mostly transformer.
- **IsoFLOP levels.** At each compute budget C = 6ND, N counting *all* parameters as Hoffmann et
  al. did (the records hold the non-embedding count too), a window of model sizes around that
  level's optimum trains, the window sliding up with C as theirs did. With tied embeddings 6N is
  exactly the matrix products' FLOPs per token: the output layer's 6Vd is counted once, the input
  lookup costs nothing. Each level has its own best size (their approach 2), and all the points
  together fit L(N, D) (approach 3).
- **Measured on the mixture it trains on:** every source's held-out text, weighted by the source's
  share of the (re-tokenized) training tokens (:class:`minilm.models.train.SourceTokens`).
- **Several seeds per point**, so the fits' intervals include training noise.
- **Predict, then train:** :func:`plan_prediction` states the loss of a run with
  ``predict_factor`` times the largest level's compute, and writes it down before
  :func:`run_budget_prediction` trains that run.

Everything is cached under ``runs/artifacts/<budget>/scaling-<key>/``: the small tokenizer, the
re-tokenized data (``tokens.npz``), one record per run (``runs.json``, written after every run),
every run's checkpoint (``checkpoints/``: chapter 12 may take a student from them) and
``prediction.json``. The key hashes the config and the data, so a rerun trains only what is
missing, and an interrupted sweep goes on where it stopped. The fits live in
:mod:`minilm.studies.scaling_law`.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..core.checks import ConfigError, check_range

SWEEP_VERSION = 2  # bump when a run changes what it measures, so old caches are not reused


@dataclass(frozen=True)
class SweepConfig:
    """An isoFLOP grid: at each compute level, its model shapes, each trained once per seed.

    levels: ``(C, shapes)`` pairs: the FLOP budget C = 6 N D (N all parameters) and the
        (n_layer, n_embd) shapes trained at it; heads have ``head_dim`` dimensions (modern GPT:
        RMSNorm, SwiGLU, RoPE, tied embeddings). Each run gets D = C / 6N tokens, rounded to whole
        steps of ``batch_size`` x ``seq_len``.
    seeds: one run per seed (weights and batch order) at every point.
    vocab_size: the truncated tokenizer's size.
    Each run warms up for ``warmup_fraction`` of its steps, then decays with a cosine to the end of
    *its own* budget (Hoffmann et al. found that a schedule longer than the run overstates loss).
    eval_tokens: validation tokens per source.
    min_steps: the fewest steps a run may have (a bigger model at a small budget gets few).
    predict_factor, predict_shapes: the predicted run has ``predict_factor`` x the largest level's
        compute and the shape among ``predict_shapes`` closest to the fitted optimum.
    workers: runs trained at once on a CPU, one thread each (2 on 2 cores: about twice the
        throughput of one run on 2 threads, since models this small gain little from a second
        thread). Results do not depend on it.
    """

    levels: tuple[tuple[float, tuple[tuple[int, int], ...]], ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    vocab_size: int = 512
    head_dim: int = 16
    batch_size: int = 16
    seq_len: int = 64
    lr: float = 3e-3
    warmup_fraction: float = 0.1
    eval_tokens: int = 16_384
    min_steps: int = 20
    predict_factor: float = 8.0
    predict_shapes: tuple[tuple[int, int], ...] = ()
    workers: int = 1

    def __post_init__(self):
        if not self.levels:
            raise ConfigError("levels=() is empty: give at least one (compute, shapes) pair")
        for level in self.levels:
            if len(level) != 2 or not level[1]:
                raise ConfigError(f"level {level!r} must be a pair (compute, shapes) with at least one shape")
            check_range("compute", level[0], 1.0, 1e30)
        if not self.seeds:
            raise ConfigError("seeds=() is empty: give at least one seed")
        check_range("head_dim", self.head_dim, 2, 1024)
        for shape in self.shapes + self.predict_shapes:
            if len(shape) != 2:
                raise ConfigError(f"shape {shape!r} must be a pair (n_layer, n_embd)")
            layers, width = shape
            check_range("n_layer", layers, 1, 1000)
            check_range("n_embd", width, 1, 65536)
            if width % self.head_dim:
                raise ConfigError(f"n_embd={width} must be a multiple of head_dim={self.head_dim}")
        for seed in self.seeds:
            check_range("seed", seed, 0, 2**31 - 1)
        check_range("vocab_size", self.vocab_size, 257, 65536)
        check_range("batch_size", self.batch_size, 1, 10**6)
        check_range("seq_len", self.seq_len, 1, 10**6)
        check_range("lr", self.lr, 0.0, 10.0)
        check_range("warmup_fraction", self.warmup_fraction, 0.0, 1.0)
        check_range("eval_tokens", self.eval_tokens, 1, 10**10)
        check_range("min_steps", self.min_steps, 1, 10**9)
        check_range("predict_factor", self.predict_factor, 1.0, 1e6)
        check_range("workers", self.workers, 1, 256)

    @property
    def compute(self) -> tuple[float, ...]:
        return tuple(c for c, _ in self.levels)

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """Every shape of the sweep, each once, in order of first appearance."""
        return tuple(dict.fromkeys(shape for _, shapes in self.levels for shape in shapes))

    def specs(self) -> list[tuple[tuple[int, int], float, int]]:
        """Every run: ``(shape, compute, seed)``, by level, then shape, then seed."""
        return [(shape, c, seed) for c, shapes in self.levels for shape in shapes for seed in self.seeds]

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    def steps(self, params: int, compute: float) -> int:
        """Steps of a run of ``params`` parameters at ``compute`` FLOPs (6ND, at least one step)."""
        return max(1, round(compute / (6 * params * self.tokens_per_step)))


SMOKE_SHAPES = ((1, 16), (1, 32), (2, 32))
LAPTOP_SHAPES = ((1, 16), (1, 32), (2, 32), (2, 48), (2, 64), (3, 80), (3, 96))  # 12k to 380k parameters
GPU_SHAPES = ((2, 128), (4, 256), (6, 384), (8, 512), (10, 640), (12, 768), (16, 1024))

SWEEPS: dict[str, SweepConfig] = {
    # seconds on 2 CPU cores: three shapes x three levels x two seeds of a few dozen steps
    "smoke": SweepConfig(levels=tuple((c, SMOKE_SHAPES) for c in (3e8, 6e8, 1.2e9)), seeds=(0, 1), vocab_size=300,
                         batch_size=8, seq_len=32, eval_tokens=2_048, min_steps=5, predict_factor=4.0,
                         predict_shapes=SMOKE_SHAPES + ((2, 48),)),
    # about 7 minutes on 2 CPU cores (two runs at a time): 3 levels 2x apart, 5 sizes each spanning
    # 9-11x and sliding up one size per level, 3 seeds: 45 runs of 40 to 4000 steps
    "laptop": SweepConfig(levels=((2e11, LAPTOP_SHAPES[0:5]), (4e11, LAPTOP_SHAPES[1:6]), (8e11, LAPTOP_SHAPES[2:7])),
                          predict_factor=8.0, workers=2,
                          predict_shapes=((2, 64), (3, 64), (3, 80), (3, 96), (4, 96), (4, 128), (5, 128), (6, 128))),
    # one GPU: a 4096-token vocabulary and models of 1M to 170M parameters
    "gpu": SweepConfig(levels=((3e15, GPU_SHAPES[0:5]), (1e16, GPU_SHAPES[1:6]), (3e16, GPU_SHAPES[2:7])),
                       vocab_size=4096, head_dim=64, batch_size=32, seq_len=256, lr=2e-3, eval_tokens=131_072,
                       predict_factor=4.0, predict_shapes=GPU_SHAPES[3:] + ((20, 1280),)),
}


def sweep_config(budget=None) -> SweepConfig:
    """The sweep sized for a budget (name, Budget or None for the one in force)."""
    from ..core.config import as_budget

    return SWEEPS[as_budget(budget).name]


def model_config(shape: tuple[int, int], cfg: SweepConfig):
    """The GPTConfig of one sweep shape."""
    from ..models.gpt import GPTConfig

    layers, width = shape
    return GPTConfig.modern(vocab_size=cfg.vocab_size, n_layer=layers, n_embd=width, n_head=width // cfg.head_dim,
                            block_size=cfg.seq_len)


def shape_params(shape: tuple[int, int], cfg: SweepConfig) -> tuple[int, int]:
    """(all parameters, non-embedding parameters) of a sweep shape."""
    import torch

    from ..models.gpt import GPT

    with torch.device("meta"):  # counts without allocating or initialising weights
        model = GPT(model_config(shape, cfg))
    return model.num_params(), model.num_params(non_embedding=True)


# ----------------------------------------------------------------------------------------------
# The data: the budget's mixture, re-tokenized with the small vocabulary


@dataclass
class SweepData:
    train: np.ndarray
    val: object  # minilm.models.train.SourceTokens
    byte_lengths: np.ndarray
    tokenizer: object = None


def _documents(tokens: np.ndarray, eot: int) -> list[np.ndarray]:
    """A stream of documents, each followed by ``eot``, cut back into documents (without it)."""
    ends = np.flatnonzero(tokens == eot)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [tokens[s:e] for s, e in zip(starts, ends)]


def retokenize(report: dict, big, small, progress: bool = True):
    """The data stage's build (``report``), written with tokenizer ``big``, in tokenizer ``small``:
    ``(train stream, {source: validation stream}, {source: training tokens})``. Byte-level BPE
    decodes exactly, so every document is the same text."""
    import json

    from ..core.progress import progress_bar
    from ..data.shards import TokenShards
    from ..stages.data import DOC_SOURCES_FILE, validation_sets

    big_eot, small_eot = big.special_id("<|endoftext|>"), small.special_id("<|endoftext|>")

    def encode(tokens: np.ndarray, desc: str) -> list[list[int]]:
        texts = [big.decode(doc.tolist()) for doc in _documents(np.asarray(tokens), big_eot)]
        out = []
        for start in progress_bar(range(0, len(texts), 512), desc=desc, disable=not progress, mininterval=2.0):
            out += small.encode_batch(texts[start:start + 512], num_threads=2)
        return out

    def stream(docs: list[list[int]]) -> np.ndarray:
        return np.fromiter((t for ids in docs for t in (*ids, small_eot)), dtype=np.uint16)

    docs = encode(TokenShards(report["directory"]).tokens("train"), "retokenize")
    sources = json.loads((Path(report["directory"]) / DOC_SOURCES_FILE).read_text())  # a list: not read_json's dict
    if len(sources) != len(docs):
        raise ValueError(f"{report['directory']}: {len(docs)} training documents but {len(sources)} source labels")
    counts: dict[str, int] = {}
    for source, ids in zip(sources, docs):
        counts[source] = counts.get(source, 0) + len(ids) + 1
    val = {source: stream(encode(tokens, f"retokenize val_{source}")) for source, tokens in validation_sets(report).items()}
    return stream(docs), val, counts


def prepare_data(budget=None, cfg: SweepConfig | None = None, folder: Path | None = None,
                 progress: bool = True) -> SweepData:
    """The budget's mixture in the sweep's vocabulary, built once and kept in ``folder``."""
    import json

    from ..core.config import as_budget
    from ..core.files import atomic_write_bytes
    from ..models.train import SourceTokens, token_byte_lengths
    from ..stages import data as data_stage, tokenizer as tokenizer_stage
    from ..text.tokenizer import Tokenizer

    budget = as_budget(budget)
    cfg = cfg or sweep_config(budget)
    folder = folder or study_path(budget, cfg)
    tokens_file, tokenizer_file = folder / "tokens.npz", folder / "tokenizer.json"
    if tokens_file.exists() and tokenizer_file.exists():
        small = Tokenizer.load(tokenizer_file)
        with np.load(tokens_file) as saved:
            counts = json.loads(str(saved["counts"]))
            val = {name[4:]: saved[name] for name in saved.files if name.startswith("val_")}
            return SweepData(saved["train"], SourceTokens(val, counts), token_byte_lengths(small), small)
    report = data_stage.artifact(budget, progress=progress)
    small = tokenizer_stage.artifact(budget, progress=progress).truncated(cfg.vocab_size)
    train, val, counts = retokenize(report, tokenizer_stage.artifact(budget, progress=False), small, progress)
    folder.mkdir(parents=True, exist_ok=True)
    small.save(tokenizer_file)
    buffer = io.BytesIO()
    np.savez(buffer, train=train, counts=np.array(json.dumps(counts)), **{f"val_{s}": v for s, v in val.items()})
    atomic_write_bytes(tokens_file, buffer.getvalue())
    return SweepData(train, SourceTokens(val, counts), token_byte_lengths(small), small)


# ----------------------------------------------------------------------------------------------
# Training the runs


def run_name(shape: tuple[int, int], compute: float, seed: int) -> str:
    """The name of one run (its record and its checkpoint file).

    >>> run_name((2, 64), 4e11, 1)
    '2x64-C4e+11-s1'
    """
    return f"{shape[0]}x{shape[1]}-C{compute:.3g}-s{seed}"


def check_grid(cfg: SweepConfig) -> None:
    """Raise ConfigError when a shape would get fewer than ``min_steps`` steps at some level."""
    for compute, shapes in cfg.levels:
        for shape in shapes:
            params, _ = shape_params(shape, cfg)
            if cfg.steps(params, compute) < cfg.min_steps:
                raise ConfigError(f"shape {shape[0]}x{shape[1]} ({params:,} parameters) gets only "
                                  f"{cfg.steps(params, compute)} steps at C = {compute:.3g}: raise that level or "
                                  f"drop the shape (min_steps={cfg.min_steps})")


def train_run(shape: tuple[int, int], compute: float, seed: int, cfg: SweepConfig, data: SweepData,
              checkpoint: Path | None = None, device: str = "cpu") -> dict:
    """Train one model from scratch at one compute budget, measure it, and keep its checkpoint."""
    import torch

    from ..models.checkpoint import save_checkpoint
    from ..models.gpt import GPT
    from ..models.train import TrainConfig, evaluate, train

    torch.manual_seed(seed)
    model = GPT(model_config(shape, cfg))
    params = model.num_params()
    steps = cfg.steps(params, compute)
    train_cfg = TrainConfig(steps=steps, batch_size=cfg.batch_size, seq_len=cfg.seq_len, lr=cfg.lr,
                            warmup_steps=int(cfg.warmup_fraction * steps), eval_every=0, seed=seed)
    started = time.perf_counter()
    result = train(model, data.train, train_cfg, device=device, progress=False, log_every=steps)
    seconds = time.perf_counter() - started
    metrics = evaluate(model, data.val, cfg.seq_len, 32, cfg.eval_tokens, data.byte_lengths, device)
    tokens = steps * cfg.tokens_per_step
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, None, steps, asdict(train_cfg), result.history, seconds, tokens)
    return {"name": run_name(shape, compute, seed), "n_layer": shape[0], "n_embd": shape[1], "seed": seed,
            "compute_level": compute, "params": params, "params_non_embedding": model.num_params(non_embedding=True),
            "tokens": tokens, "steps": steps, "flops": 6.0 * params * tokens,
            "flops_model": float(model.flops_per_token(cfg.seq_len, unembedding=True)) * tokens,
            "val_loss": metrics["loss"], "val_bpb": metrics.get("bpb"),
            "val_sources": {s: metrics[f"{s}_loss"] for s in data.val},
            "train_loss": result.history[-1]["loss"], "seconds": round(seconds, 2)}


_WORKER: dict = {}


def _start_worker(folder: str, cfg: SweepConfig) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.update(folder=Path(folder), cfg=cfg, data=prepare_data(None, cfg, Path(folder), progress=False))


def _worker_run(spec) -> dict:
    shape, compute, seed = spec
    folder = _WORKER["folder"]
    return train_run(shape, compute, seed, _WORKER["cfg"], _WORKER["data"],
                     folder / "checkpoints" / f"{run_name(shape, compute, seed)}.pt")


def train_runs(specs: list, cfg: SweepConfig, data: SweepData, folder: Path | None, device: str = "cpu",
               progress: bool = True, done: dict | None = None, on_record=None) -> tuple[list[dict], int]:
    """Train every ``(shape, compute, seed)`` of ``specs`` not in ``done`` (name -> record);
    ``on_record(record)`` runs after each (to save it). Returns (records in ``specs`` order, how
    many were trained now). With ``cfg.workers > 1`` on a CPU (and a ``folder`` the workers read
    the data from), runs train in that many processes."""
    import torch

    from ..core.processes import map_in_processes
    from ..core.progress import progress_bar

    done = dict(done or {})
    todo = [spec for spec in specs if run_name(*spec) not in done]
    bar = progress_bar(total=len(specs), initial=len(specs) - len(todo), desc="runs", disable=not progress or not todo,
                       mininterval=2.0)

    def finish(record):
        done[record["name"]] = record
        if on_record is not None:
            on_record(record)
        bar.update()

    parallel = cfg.workers > 1 and torch.device(device).type == "cpu" and folder is not None and len(todo) > 1
    if parallel:
        # Runs finished before a failure are saved by on_record.
        for record in map_in_processes(_worker_run, todo, cfg.workers, _start_worker, (str(folder), cfg),
                                       what="the sweep"):
            finish(record)
    else:
        threads = torch.get_num_threads()
        if torch.device(device).type == "cpu":
            torch.set_num_threads(1)  # the same arithmetic as the workers: results do not depend on `workers`
        try:
            for shape, compute, seed in todo:
                checkpoint = folder / "checkpoints" / f"{run_name(shape, compute, seed)}.pt" if folder else None
                finish(train_run(shape, compute, seed, cfg, data, checkpoint, device))
        finally:
            torch.set_num_threads(threads)
    bar.close()
    return [done[run_name(*spec)] for spec in specs], len(todo)


@dataclass
class SweepResult:
    records: list  # one dict per run, ordered by level, size, seed
    config: SweepConfig
    folder: Path | None  # the study's folder
    reused: int  # runs read from the cache instead of trained
    seconds: float  # time spent in this call


def study_key(cfg: SweepConfig, data_key: str) -> str:
    """Everything a study's results depend on, hashed: the config (less ``workers``) and the data."""
    from ..stages.artifact import content_key

    return content_key(config=asdict(replace(cfg, workers=1)), data=data_key, version=SWEEP_VERSION)


def study_path(budget=None, cfg: SweepConfig | None = None) -> Path:
    """The folder of a budget's scaling study."""
    from ..core.config import as_budget
    from ..stages import data as data_stage
    from ..stages.artifact import artifact_dir

    budget = as_budget(budget)
    cfg = cfg or sweep_config(budget)
    return artifact_dir(budget) / f"scaling-{study_key(cfg, data_stage.data_key(budget))}"


def _read_records(path: Path, fmt: str) -> dict:
    from ..core.files import read_json

    try:
        saved = read_json(path)
        if saved.get("format") != fmt:
            return {}
        return {r["name"]: r for r in saved["records"]}
    except (OSError, ValueError, KeyError, TypeError):  # missing, unreadable or half-edited: train again
        return {}


def run_sweep(cfg: SweepConfig, data: SweepData, folder: Path | None = None, device: str = "cpu",
              progress: bool = True) -> SweepResult:
    """Train the whole grid of ``cfg`` on ``data`` (reusing the runs saved in ``folder``)."""
    from ..core.files import write_json

    if not isinstance(cfg, SweepConfig):
        raise ValueError(f"cfg must be a SweepConfig, got {type(cfg).__name__}")
    for name, tokens in [("train", data.train), *((f"val[{s!r}]", t) for s, t in data.val.items())]:
        if tokens.ndim != 1 or len(tokens) < cfg.seq_len + 2:
            raise ValueError(f"{name} must be a flat array of at least seq_len + 2 = {cfg.seq_len + 2} token ids, "
                             f"got shape {tokens.shape}")
        if int(tokens.max()) >= cfg.vocab_size:
            raise ValueError(f"{name} token ids go up to {int(tokens.max())}, beyond vocab_size={cfg.vocab_size}")
    check_grid(cfg)
    started = time.perf_counter()
    runs_file = folder / "runs.json" if folder is not None else None
    done = _read_records(runs_file, "minilm-scaling-runs") if runs_file else {}
    specs = cfg.specs()

    def save(record):
        if runs_file is not None:
            done[record["name"]] = record
            write_json(runs_file, {"format": "minilm-scaling-runs", "config": asdict(cfg), "records": list(done.values())})

    records, trained = train_runs(specs, cfg, data, folder, device, progress, done, save)
    return SweepResult(records, cfg, folder, len(specs) - trained, round(time.perf_counter() - started, 2))


def run_budget_sweep(budget=None, progress: bool = True, device: str | None = None) -> SweepResult:
    """The budget's sweep on the budget's mixture (built if missing), cached in :func:`study_path`."""
    from ..core.config import as_budget
    from ..core.device import best_device

    budget = as_budget(budget)
    cfg = sweep_config(budget)
    folder = study_path(budget, cfg)
    data = prepare_data(budget, cfg, folder, progress)
    return run_sweep(cfg, data, folder, device or best_device(), progress)


def records_arrays(records: list[dict], params: str = "params") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, D, validation loss) of sweep records, ready for :func:`minilm.studies.scaling_law.fit_scaling_law`;
    ``params="params_non_embedding"`` counts as Kaplan et al. did.

    >>> n, d, loss = records_arrays([{"params": 1e6, "tokens": 2e7, "val_loss": 3.5}])
    >>> n.tolist(), d.tolist(), loss.tolist()
    ([1000000.0], [20000000.0], [3.5])
    """
    if not records:
        raise ValueError("no sweep records given")
    return tuple(np.array([r[k] for r in records], dtype=np.float64) for k in (params, "tokens", "val_loss"))


# ----------------------------------------------------------------------------------------------
# The two fits, with intervals from resampling seeds


def seed_means(records: list[dict], params: str = "params") -> dict:
    """``{(compute level, N): [loss of each seed]}``: the sweep's points and their seeds."""
    points: dict = {}
    for r in records:
        points.setdefault((r["compute_level"], r[params]), []).append(r["val_loss"])
    return points


def fit_approach2(records: list[dict], samples: int = 1000, level: float = 0.95, seed: int = 0,
                  params: str = "params") -> dict:
    """Hoffmann et al.'s approach 2 on the sweep: each level's best N (a parabola in log N through
    the seed means), then ``N_opt = k C^a`` through those minima.

    The interval of ``a`` (and of each level's N_opt) comes from ``samples`` resamples of the seeds:
    every point's mean is redrawn from its seeds with replacement, and the minima and the power law
    are fitted again (a draw whose parabola has no minimum is skipped and counted).
    """
    from .scaling_law import approach2

    points = seed_means(records, params)
    keys = sorted(points)
    compute = np.array([c for c, _ in keys])
    n = np.array([k[1] for k in keys], dtype=np.float64)
    means = np.array([np.mean(points[k]) for k in keys])
    fit = approach2(compute, n, means, missing_ok=True)  # a level without a minimum is NaN (and not inside)
    rng = np.random.default_rng(seed)
    draws, skipped = [], 0
    for _ in range(samples):
        redrawn = np.array([np.mean(rng.choice(points[k], size=len(points[k]))) for k in keys])
        try:
            draws.append(approach2(compute, n, redrawn))
        except ValueError:
            skipped += 1
    q = [(1 - level) / 2, (1 + level) / 2]
    if draws:
        fit["a_interval"] = [float(x) for x in np.quantile([d["a"] for d in draws], q)]
        fit["n_opt_interval"] = np.quantile([d["n_opt"] for d in draws], q, axis=0).T.tolist()
    else:  # no resample had a minimum at every level: no interval
        fit["a_interval"], fit["n_opt_interval"] = [math.nan, math.nan], [[math.nan, math.nan]] * len(fit["n_opt"])
    fit["resamples"], fit["skipped"] = len(draws), skipped
    fit["n_range"] = [float(n.min()), float(n.max())]
    fit["inside"] = bool(all(n.min() <= x <= n.max() for x in fit["n_opt"]))  # False for a NaN
    return fit


def fit_approach3(records: list[dict], samples: int = 100, seed: int = 0, params: str = "params") -> dict:
    """Approach 3 on every run (each seed a point): L(N, D) = E + A/N^alpha + B/D^beta by
    :func:`minilm.studies.scaling_law.fit_scaling_law`, with percentile intervals (95%) of every
    constant from ``samples`` bootstrap refits over the runs, as Besiroglu et al. 2024 report them."""
    from .scaling_law import bootstrap_fits, compute_optimal, fit_scaling_law

    n, d, loss = records_arrays(records, params)
    fitted = fit_scaling_law(n, d, loss)
    boots = bootstrap_fits(n, d, loss, samples=samples, seed=seed, grid_starts=2)
    levels = sorted({r["compute_level"] for r in records})
    n_opt = [float(compute_optimal(c, fitted.fit)[0]) for c in levels]
    intervals = {name: [float(x) for x in np.quantile([getattr(b, name) for b in boots], [0.025, 0.975])]
                 for name in ("E", "A", "B", "alpha", "beta", "a")} if boots else {}
    return {"fit": fitted.fit, "rms_log_error": fitted.rms_log_error, "boots": boots, "intervals": intervals,
            "levels": levels, "n_opt": n_opt, "n_range": [float(n.min()), float(n.max())],
            "inside": bool(all(n.min() <= x <= n.max() for x in n_opt))}


# ----------------------------------------------------------------------------------------------
# Predict, then train


def plan_prediction(result: SweepResult, samples: int = 100) -> dict:
    """The run to predict and its predicted loss, from approach 3 fitted to the sweep: compute
    ``predict_factor`` x the largest level, the shape of ``predict_shapes`` nearest the fitted
    optimum (in log N), and L(N, D) with a 95% interval from the bootstrap refits."""
    from .scaling_law import compute_optimal

    cfg = result.config
    shapes = cfg.predict_shapes or cfg.shapes
    third = fit_approach3(result.records, samples=samples)
    fit = third["fit"]
    compute = cfg.predict_factor * max(cfg.compute)
    n_opt = float(compute_optimal(compute, fit)[0])
    params = {shape: shape_params(shape, cfg)[0] for shape in shapes}
    shape = min(shapes, key=lambda s: abs(np.log(params[s] / n_opt)))
    steps = cfg.steps(params[shape], compute)
    tokens = steps * cfg.tokens_per_step
    boots = [float(b.loss(params[shape], tokens)) for b in third["boots"]]
    return {"shape": list(shape), "params": params[shape], "tokens": tokens, "steps": steps,
            "compute_level": compute, "flops": 6.0 * params[shape] * tokens, "n_opt": n_opt,
            "predicted_loss": float(fit.loss(params[shape], tokens)),
            "interval": [float(x) for x in np.quantile(boots, [0.025, 0.975])] if boots else None,
            "fit": fit.as_dict(), "sweep_runs": len(result.records), "planned_at": time.strftime("%Y-%m-%d %H:%M:%S")}


def _saved_prediction(folder: Path | None) -> dict | None:
    from ..core.files import read_json

    path = folder / "prediction.json" if folder is not None else None
    try:
        saved = read_json(path) if path is not None and path.exists() else None
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) and saved.get("format") == "minilm-scaling-prediction" else None


def prediction_plan(result: SweepResult, samples: int = 100) -> dict:
    """The prediction as first written down for this sweep (``prediction.json``), or a new one
    (:func:`plan_prediction`), saved before anything trains."""
    from ..core.files import write_json

    saved = _saved_prediction(result.folder)
    if saved is not None:
        return saved["plan"]
    plan = plan_prediction(result, samples)
    if result.folder is not None:
        write_json(result.folder / "prediction.json", {"format": "minilm-scaling-prediction", "plan": plan, "records": []})
    return plan


def run_prediction(result: SweepResult, data: SweepData, device: str = "cpu", progress: bool = True) -> dict:
    """The prediction's plan (:func:`prediction_plan`: written down first), then its run trained
    once per seed, with the measured losses and the error: ``measured`` is the mean over seeds,
    ``error`` is (measured - predicted) / measured."""
    from ..core.files import write_json

    cfg, folder = result.config, result.folder
    path = folder / "prediction.json" if folder is not None else None
    plan = prediction_plan(result)
    shape, compute = tuple(plan["shape"]), plan["compute_level"]
    done = {r["name"]: r for r in (_saved_prediction(folder) or {}).get("records", [])}

    def save(record):
        if path is not None:
            done[record["name"]] = record
            write_json(path, {"format": "minilm-scaling-prediction", "plan": plan, "records": list(done.values())})

    records, _ = train_runs([(shape, compute, s) for s in cfg.seeds], cfg, data, folder, device, progress, done, save)
    losses = [r["val_loss"] for r in records]
    measured = float(np.mean(losses))
    return {"plan": plan, "records": records, "measured": measured, "seed_losses": losses,
            "error": (measured - plan["predicted_loss"]) / measured}


def run_budget_prediction(budget=None, progress: bool = True, device: str | None = None) -> dict:
    """The budget's sweep (trained if missing), then its prediction run (see :func:`run_prediction`)."""
    from ..core.config import as_budget
    from ..core.device import best_device

    budget = as_budget(budget)
    result = run_budget_sweep(budget, progress, device)
    data = prepare_data(budget, result.config, result.folder, progress=False)
    return run_prediction(result, data, device or best_device(), progress)
