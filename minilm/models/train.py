"""One training loop for every stage: schedules, accumulation, clipping, evaluation, checkpoints.

What it does each step: for each of ``grad_accum`` micro-batches, draw windows of tokens, compute the
loss (bf16 autocast on CUDA), and backpropagate a share of it; clip the gradient norm; set the
learning rate from the schedule; take an AdamW step. Every ``eval_every`` steps it measures the
validation loss and bits per byte, and every ``checkpoint_every`` steps it writes a checkpoint.

Resuming is exact: the batch of step ``s`` is a pure function of ``(seed, s, micro-batch, rank)``,
and a checkpoint holds the model, the optimizer, the step and the RNG state, so training N steps,
stopping, resuming and training N more gives the same losses as 2N steps straight.

The training data is either one token stream (pretraining: a batch is random windows of it) or
rows of ``seq_len + 1`` tokens (supervised fine-tuning: packed conversations; a batch is random
whole rows, so no conversation is cut by a window). Either may come with a loss mask of the same
shape: a target whose mask is 0 is left out of the loss (SFT trains only the assistant's tokens).

>>> lr_at(0, total_steps=100, warmup_steps=10, lr=1e-3), lr_at(10, 100, 10, 1e-3)
(0.0001, 0.001)
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.checks import check_choice, check_count, check_range
from ..core.device import check_device
from .checkpoint import load_checkpoint, save_checkpoint

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``batch_size`` sequences of ``seq_len`` tokens per micro-batch; the optimizer
    steps after ``grad_accum`` micro-batches (tokens per step = batch_size * seq_len * grad_accum)."""

    steps: int = 1000
    batch_size: int = 16
    seq_len: int = 128
    grad_accum: int = 1
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    schedule: str = "cosine"  # "cosine" | "wsd" (warmup-stable-decay) | "constant"
    decay_fraction: float = 0.2  # WSD: the last fraction of steps decays linearly to min_lr
    weight_decay: float = 0.1
    optimizer: str = "adamw"  # "adamw" | "muon" (Muon for the blocks' weight matrices, AdamW for the rest)
    muon_lr: float = 0.02  # Muon's peak learning rate; the schedule scales it like lr
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_tokens: int = 32_768
    # Windows of the periodic evaluation (0 = seq_len). Mid-training at a longer context measures at
    # pretraining's window, so that its validation curve continues the base model's.
    eval_seq_len: int = 0
    checkpoint_every: int = 0  # 0 = only at the end
    compile: bool = False  # torch.compile the model (worth it on GPUs; on CPU compiling takes a while)
    # torch.compile's mode: "max-autotune" times Triton matmul kernels against cuBLAS (minutes of
    # compiling), "reduce-overhead" replays CUDA graphs (fewer kernel launches for small models).
    compile_mode: str = "default"
    seed: int = 0
    # > 0: train for this many seconds instead (``steps`` becomes an upper bound). The schedule then
    # ends where the time does: it runs as if the whole run had as many steps as the pace so far
    # projects. For time-budgeted benchmarks; the run then depends on the machine's speed.
    max_seconds: float = 0.0

    def __post_init__(self):
        check_range("steps", self.steps, 1, 10**9)
        check_range("batch_size", self.batch_size, 1, 10**6)
        check_range("seq_len", self.seq_len, 1, 10**6)
        check_range("grad_accum", self.grad_accum, 1, 10**6)
        check_range("lr", self.lr, 0.0, 10.0)
        check_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        check_range("warmup_steps", self.warmup_steps, 0, 10**9)
        check_choice("schedule", self.schedule, ("cosine", "wsd", "constant"))
        check_range("decay_fraction", self.decay_fraction, 0.0, 1.0)
        check_range("weight_decay", self.weight_decay, 0.0, 10.0)
        check_choice("optimizer", self.optimizer, ("adamw", "muon"))
        check_choice("compile_mode", self.compile_mode, COMPILE_MODES)
        check_range("muon_lr", self.muon_lr, 0.0, 10.0)
        check_range("grad_clip", self.grad_clip, 0.0, 1e6)
        check_range("eval_every", self.eval_every, 0, 10**9)
        check_range("eval_seq_len", self.eval_seq_len, 0, 10**6)
        check_range("checkpoint_every", self.checkpoint_every, 0, 10**9)
        check_range("max_seconds", self.max_seconds, 0.0, 10**7)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len * self.grad_accum


def lr_at(step: int, total_steps: int, warmup_steps: int, lr: float, schedule: str = "cosine",
          min_lr_ratio: float = 0.1, decay_fraction: float = 0.2) -> float:
    """The learning rate at ``step`` (0-based): linear warmup, then cosine or warmup-stable-decay.

    Cosine decays from ``lr`` to ``lr * min_lr_ratio`` over the steps after warmup. WSD (used by
    MiniCPM and DeepSeek) holds ``lr`` and decays linearly only over the last ``decay_fraction``,
    so a run can be extended from any stable-phase checkpoint.
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    floor = lr * min_lr_ratio
    if schedule == "constant":
        return lr
    if schedule == "wsd":
        decay_start = total_steps - int(decay_fraction * total_steps)
        if step < decay_start:
            return lr
        progress = (step - decay_start + 1) / max(1, total_steps - decay_start)
        return lr - (lr - floor) * min(1.0, progress)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + 0.5 * (lr - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def check_rows(tokens: np.ndarray, seq_len: int, mask: np.ndarray | None = None) -> None:
    """Raise ValueError unless ``tokens`` is a stream or rows of ``seq_len + 1``, and ``mask`` (if
    given) has its shape."""
    if not isinstance(tokens, np.ndarray):
        raise ValueError(f"tokens must be a numpy array of token ids (np.array(ids, dtype=np.int64)), got "
                         f"{type(tokens).__name__}")
    if tokens.ndim not in (1, 2):
        raise ValueError(f"tokens must be a stream (1-D) or rows (2-D), got {tokens.ndim} dimensions")
    if not np.issubdtype(tokens.dtype, np.integer):  # batches cast to int64, which would truncate 1.7 to 1
        raise ValueError(f"tokens must be integer token ids, got dtype {tokens.dtype}")
    if tokens.ndim == 2 and (tokens.shape[1] != seq_len + 1 or tokens.shape[0] == 0):
        raise ValueError(f"rows of tokens must be seq_len + 1 = {seq_len + 1} long (and at least one), "
                         f"got shape {tokens.shape}")
    if mask is not None and mask.shape != tokens.shape:
        raise ValueError(f"the loss mask has shape {mask.shape}, the tokens {tokens.shape}: they must match")


def get_batch(tokens: np.ndarray, batch_size: int, seq_len: int, seed: int, step: int, micro: int = 0,
              device="cpu", mask: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of ``seq_len + 1`` tokens: inputs and next-token targets.

    ``tokens`` is a stream (windows start anywhere) or rows of ``seq_len + 1`` (whole rows are
    drawn). With ``mask`` (same shape, 1 = train on this token), targets whose mask is 0 are -1,
    which the model's loss ignores.

    The offsets depend only on ``(seed, step, micro)``: no hidden state, so a resumed run sees
    exactly the batches it would have seen. Under DDP, ``micro`` is the global index of the
    micro-batch (``micro * world_size + rank``), so N processes draw exactly the batches one process
    would draw with N times the gradient accumulation.

    >>> rows = np.array([[1, 2, 3], [4, 5, 6]]); keep = np.array([[0, 0, 1], [0, 1, 1]])
    >>> x, y = get_batch(rows, 2, 2, seed=1, step=0, mask=keep)
    >>> x.tolist(), y.tolist()
    ([[1, 2], [4, 5]], [[-1, 3], [5, 6]])
    """
    check_rows(tokens, seq_len, mask)
    rng = np.random.default_rng([seed, step, micro])
    if tokens.ndim == 2:
        picked = rng.integers(0, len(tokens), size=batch_size)
        window = tokens[picked].astype(np.int64)
        keep = mask[picked] if mask is not None else None
    else:
        if len(tokens) < seq_len + 2:
            raise ValueError(f"{len(tokens)} tokens are too few for windows of seq_len={seq_len}")
        starts = rng.integers(0, len(tokens) - seq_len - 1, size=batch_size)
        window = np.stack([tokens[s : s + seq_len + 1] for s in starts]).astype(np.int64)
        keep = np.stack([mask[s : s + seq_len + 1] for s in starts]) if mask is not None else None
    x, y = torch.from_numpy(window[:, :-1]), torch.from_numpy(window[:, 1:])
    if keep is not None:
        y = y.masked_fill(torch.from_numpy(keep[:, 1:] == 0), -1)
    return x.to(device), y.to(device)


def token_byte_lengths(tokenizer) -> np.ndarray:
    """UTF-8 bytes of every token id (special tokens count 0): turns losses into bits per byte."""
    lengths = np.zeros(tokenizer.vocab_size, dtype=np.int64)
    for i, token in tokenizer.vocab.items():
        lengths[i] = len(token)
    return lengths


def bits_per_byte(probs: np.ndarray, tokens: np.ndarray, byte_lengths: np.ndarray) -> float:
    """Bits per byte from each predicted token's probability: the total ``-log2 p`` over the UTF-8
    bytes of ``tokens``, the tokens those probabilities are of (``evaluate`` does the same from losses).

    >>> bits_per_byte(np.array([0.5, 0.25]), np.array([0, 1]), byte_lengths=np.array([1, 2]))  # 3 bits, 3 bytes
    1.0
    """
    return float(-np.log2(probs).sum() / byte_lengths[tokens].sum())


def window_starts(n_tokens: int, seq_len: int, max_tokens: int) -> list[int]:
    """Where the consecutive evaluation windows of a stream of ``n_tokens`` start: windows of
    ``seq_len`` inputs plus the next token, covering the first ``max_tokens`` (at least one window
    when the stream holds one); each window's last target is the next window's first input.

    >>> window_starts(10, seq_len=4, max_tokens=100), window_starts(10, seq_len=4, max_tokens=4)
    ([0, 4], [0])
    """
    n_windows = max(1, min(max_tokens, n_tokens - 1) // seq_len)
    return [w * seq_len for w in range(n_windows) if w * seq_len + seq_len + 1 <= n_tokens]


class SourceTokens(dict):
    """Validation streams by source, with the weights that make their losses the mixture's.

    A model trained on a mixture is measured on each source's held-out text, and on the mixture as
    it was trained: the per-source losses averaged with each source's share of the training tokens
    (``weights``, normalised over the sources given). :func:`evaluate` and :func:`train` take one
    wherever they take a validation stream.

    >>> sets = SourceTokens({"a": np.arange(10), "b": np.arange(10)}, {"a": 3, "b": 1, "c": 4})
    >>> sets.weights
    {'a': 0.75, 'b': 0.25}
    """

    def __init__(self, sets: dict, weights: dict):
        super().__init__(sets)
        missing = [source for source in sets if weights.get(source, 0) <= 0]
        if not sets or missing:
            raise ValueError(f"every validation source needs a positive weight: none for {missing}" if missing
                             else "no validation sources given")
        total = sum(weights[source] for source in sets)
        self.weights = {source: weights[source] / total for source in sets}


@torch.no_grad()
def evaluate(model, tokens, seq_len: int, batch_size: int, max_tokens: int,
             byte_lengths: np.ndarray | None = None, device="cpu", mask: np.ndarray | None = None) -> dict:
    """Mean next-token loss (nats), perplexity and bits per byte over the first ``max_tokens``.

    Bits per byte = total loss in bits / total UTF-8 bytes of the predicted tokens: unlike loss per
    token it does not depend on the tokenizer, so models with different vocabularies compare.
    ``tokens`` is a stream (cut into consecutive windows) or rows of ``seq_len + 1``; with ``mask``
    only the targets whose mask is 1 count (and their bytes).

    ``tokens`` may also be a :class:`SourceTokens`: each source is measured on its first
    ``max_tokens`` (as ``<source>_loss`` and ``<source>_bpb``), and ``loss``, ``perplexity`` and
    ``bpb`` are those of the mixture as trained: the weighted mean of the sources' losses per token,
    and the weighted bits over the weighted bytes.
    """
    if isinstance(tokens, SourceTokens):
        if mask is not None:
            raise ValueError("a loss mask applies to one stream, not to validation sets by source")
        totals = {source: _evaluation_totals(model, stream, seq_len, batch_size, max_tokens, byte_lengths, device)
                  for source, stream in tokens.items()}
        return source_metrics(totals, tokens.weights)
    return _metrics(*_evaluation_totals(model, tokens, seq_len, batch_size, max_tokens, byte_lengths, device, mask))


def mixture_per_token(totals: dict, weights: dict) -> tuple:
    """``(nats, bytes)`` per token of the mixture as trained, from each source's ``(nats, targets,
    bytes)`` totals: the sources' means per token, weighted by ``weights`` (which sum to 1). Works
    on numbers or on numpy arrays of them (a bootstrap's draws, :mod:`minilm.evals.intervals`).

    >>> mixture_per_token({"a": (10.0, 5, 20), "b": (2.0, 2, 2)}, {"a": 0.5, "b": 0.5})
    (1.5, 2.5)
    """
    nats = sum(weights[source] * n / t for source, (n, t, _) in totals.items())
    bytes_ = sum(weights[source] * b / t for source, (_, t, b) in totals.items())
    return nats, bytes_


def source_metrics(totals: dict, weights: dict) -> dict:
    """What :func:`evaluate` returns for validation sets by source, from each source's ``(nats,
    targets, bytes)`` totals (:func:`sum_windows` of :func:`window_totals`)."""
    result = {}
    for source, one in totals.items():
        result.update({f"{source}_{k}": v for k, v in _metrics(*one).items() if k != "perplexity"})
    nats, bytes_ = mixture_per_token(totals, weights)
    return _metrics(nats, 1.0, bytes_) | result


def _metrics(nats: float, tokens: float, bytes_: float) -> dict:
    """Loss per token, perplexity and (with bytes) bits per byte from the totals of an evaluation."""
    loss = nats / tokens
    result = {"loss": loss, "perplexity": math.exp(min(loss, 50))}
    if bytes_:
        result["bpb"] = nats / math.log(2) / bytes_
    return result


def _evaluation_totals(model, tokens: np.ndarray, seq_len: int, batch_size: int, max_tokens: int,
                       byte_lengths: np.ndarray | None = None, device="cpu", mask: np.ndarray | None = None):
    """``(nats, targets, bytes)`` summed over the first ``max_tokens`` of one stream or set of rows."""
    return sum_windows(*window_totals(model, tokens, seq_len, batch_size, max_tokens, byte_lengths, device, mask))


def sum_windows(nats: np.ndarray, targets: np.ndarray, bytes_: np.ndarray) -> tuple[float, int, int]:
    """``(nats, targets, bytes)`` of a whole evaluation from :func:`window_totals`' arrays."""
    if not targets.sum():
        raise ValueError("the loss mask leaves no target to evaluate")
    return float(nats.sum()), int(targets.sum()), int(bytes_.sum())


@torch.no_grad()
def loss_by_position(model, tokens: np.ndarray, seq_len: int, batch_size: int, max_tokens: int,
                     device="cpu") -> np.ndarray:
    """Next-token loss (nats), (windows, seq_len), at each position 0..seq_len-1 of the consecutive
    windows of a stream (the windows of :func:`evaluate`). Its mean over windows says how well the
    model predicts a token from the 1, 2, ... seq_len tokens before it: past the context a model
    was trained on, whether it can use the extra tokens (the curve keeps falling) or is thrown by
    them (it rises).

    >>> from minilm.models.gpt import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=50, n_layer=1, n_embd=32, n_head=2, block_size=16))
    >>> loss_by_position(model, np.arange(100) % 50, seq_len=16, batch_size=4, max_tokens=64).shape
    (4, 16)
    """
    check_rows(tokens, seq_len)
    if tokens.ndim != 1:
        raise ValueError("loss_by_position reads a stream of tokens, not rows")
    starts = window_starts(len(tokens), seq_len, max_tokens)
    if not starts:
        raise ValueError(f"need at least seq_len + 1 = {seq_len + 1} tokens, got {len(tokens)}")
    was_training = model.training
    model.eval()
    losses = []
    for first in range(0, len(starts), batch_size):
        window = torch.from_numpy(np.stack([tokens[s : s + seq_len + 1] for s in starts[first : first + batch_size]])
                                  .astype(np.int64)).to(device)
        logits, _ = model(window[:, :-1])
        nats = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), window[:, 1:], reduction="none")
        losses.append(nats.double().cpu().numpy())
    model.train(was_training)
    return np.concatenate(losses)


@torch.no_grad()
def window_totals(model, tokens: np.ndarray, seq_len: int, batch_size: int, max_tokens: int,
                  byte_lengths: np.ndarray | None = None, device="cpu",
                  mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What :func:`evaluate` sums, window by window: three arrays with one entry per evaluation
    window of one stream (or set of rows): the window's loss in nats, its targets, and their bytes
    (zeros without ``byte_lengths``). Two models measured on the same windows can be compared
    window by window, e.g. with a paired bootstrap (:mod:`minilm.evals.intervals`).
    """
    check_rows(tokens, seq_len, mask)
    was_training = model.training
    model.eval()
    if tokens.ndim == 2:
        windows = tokens[: max(1, max_tokens // seq_len)]
        masks = mask[: len(windows)] if mask is not None else None
    else:
        starts = window_starts(len(tokens), seq_len, max_tokens)
        if not starts:
            raise ValueError(f"need at least seq_len + 1 = {seq_len + 1} tokens to evaluate, got {len(tokens)}")
        windows = np.stack([tokens[s : s + seq_len + 1] for s in starts])
        masks = np.stack([mask[s : s + seq_len + 1] for s in starts]) if mask is not None else None
    nats_, targets_, bytes_ = [], [], []
    for first in range(0, len(windows), batch_size):
        window = windows[first : first + batch_size].astype(np.int64)
        targets = window[:, 1:]
        keep = masks[first : first + batch_size, 1:] != 0 if masks is not None else np.ones_like(targets, dtype=bool)
        x, y = torch.from_numpy(window[:, :-1]).to(device), torch.from_numpy(np.where(keep, targets, -1)).to(device)
        logits, _ = model(x)
        nats = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1),
                                                 ignore_index=-1, reduction="none").reshape(y.shape)
        nats_.append(nats.sum(dim=1).double().cpu().numpy())
        targets_.append(keep.sum(axis=1))
        bytes_.append((byte_lengths[targets] * keep).sum(axis=1) if byte_lengths is not None
                      else np.zeros(len(window), dtype=np.int64))
    model.train(was_training)
    return np.concatenate(nats_), np.concatenate(targets_).astype(np.int64), np.concatenate(bytes_).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# The loop


def setup_distributed() -> tuple[int, int, str]:
    """Join the process group ``torchrun`` describes (RANK, WORLD_SIZE, LOCAL_RANK in the
    environment); returns ``(rank, world_size, device)``. Without torchrun: ``(0, 1, best device)``.

    NCCL on CUDA, gloo on CPU (so the multi-process path is tested on CPU too).
    """
    import os

    import torch.distributed as dist

    from ..core.device import best_device

    if "RANK" not in os.environ:
        return 0, 1, best_device()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    device = "cpu"
    if torch.cuda.is_available():
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def make_optimizer(model, cfg: TrainConfig, device_type: str = "cpu"):
    """AdamW with weight decay on matrices only (not on norms and biases); fused on CUDA.

    Elsewhere the multi-tensor ("foreach") implementation: one call per operation for all
    parameters instead of a Python loop over them, which PyTorch enables by default only on CUDA.
    For small models on a CPU it is measurably faster (about 20% more tokens/s for nanoGPT's
    baby Shakespeare model on 2 cores).

    With ``cfg.optimizer == "muon"`` the weight matrices inside the blocks go to Muon (see
    ``minilm.models.muon``) at ``cfg.muon_lr``; embeddings, the output head, norms and biases stay with
    AdamW. Each group's ``lr_scale`` says how the schedule's learning rate maps to its own.
    """
    fast = {"fused": True} if device_type == "cuda" else {"foreach": True}
    named = list(model.named_parameters())
    use_muon = cfg.optimizer == "muon"
    muon_params = [p for n, p in named if use_muon and p.dim() == 2 and n.startswith("blocks.")]
    taken = {id(p) for p in muon_params}
    rest = [(n, p) for n, p in named if id(p) not in taken]
    decay = [p for _, p in rest if p.dim() >= 2]
    no_decay = [p for _, p in rest if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    adamw = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **fast)
    if not use_muon:
        return adamw
    from .muon import Muon, MuonAdamW

    if not muon_params:
        raise ValueError("optimizer='muon' found no weight matrices under model.blocks")
    scale = cfg.muon_lr / cfg.lr if cfg.lr else 0.0
    muon = Muon([{"params": muon_params, "lr_scale": scale}], lr=cfg.muon_lr, weight_decay=cfg.weight_decay)
    return MuonAdamW(muon, adamw)


@dataclass
class TrainResult:
    history: list = field(default_factory=list)  # one dict per logged step
    # The whole run's training time and tokens: a resumed run's earlier calls count (from the checkpoint).
    seconds: float = 0.0
    tokens: int = 0
    tokens_per_step: int = 0  # over all processes
    start_step: int = 0  # where this call began (resumed runs: the checkpoint's step)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def tokens_per_s_after(self, step: int) -> float:
        """Throughput from the first logged step >= ``step`` to the last logged step of this call:
        leaves out the first steps, which pay for compilation, memory allocation and kernel choice.

        >>> result = TrainResult([{"step": 10, "seconds": 5.0}, {"step": 20, "seconds": 6.0}], tokens_per_step=100)
        >>> result.tokens_per_s_after(10)
        1000.0
        """
        timed = [r for r in self.history if r["step"] > self.start_step]  # this call's records, not resumed ones
        begin = next((r for r in timed if r["step"] >= step), None)
        if begin is None or begin is timed[-1]:
            raise ValueError(f"no two logged steps from step {step} on: train longer or log more often")
        end = timed[-1]
        return (end["step"] - begin["step"]) * self.tokens_per_step / (end["seconds"] - begin["seconds"])


def train(model, train_tokens: np.ndarray, cfg: TrainConfig, val_tokens: np.ndarray | None = None,
          byte_lengths: np.ndarray | None = None, checkpoint: str | Path | None = None, resume: bool = False,
          device: str = "cpu", progress: bool = True, log_every: int = 10, stop_at: int | None = None,
          hook=None, hook_every: int = 0, train_mask: np.ndarray | None = None,
          val_mask: np.ndarray | None = None) -> TrainResult:
    """Train ``model`` in place for ``cfg.steps`` optimizer steps (or the rest of them, resuming).

    ``train_tokens`` (and ``val_tokens``) are a token stream or rows of ``cfg.seq_len + 1`` tokens
    (see :func:`get_batch`); ``train_mask`` / ``val_mask`` of the same shape keep only the targets
    marked 1 in the loss (``tokens`` in the result still counts every position processed).
    ``val_tokens`` may be a :class:`SourceTokens`: each evaluation then records ``val_loss`` and
    ``val_bpb`` of the mixture as trained, and ``val_<source>_loss`` / ``val_<source>_bpb``.

    With ``cfg.max_seconds`` the call trains for about that long (steps up to ``cfg.steps``) and the
    schedule ends with the time (see :class:`TrainConfig`); the budget counts from this call's start.

    ``stop_at`` ends this call early at that step (with a checkpoint), as an interruption would:
    the schedule still runs to ``cfg.steps``, so a later ``resume=True`` call carries on exactly.
    ``hook(step, model, history)`` runs on rank 0 every ``hook_every`` steps and after the last one
    (``history`` ends with this step's record); the dict it returns (for example sample
    generations) is added to that record. A hook must not draw from torch's global random
    generator, or resumed runs would differ; it may plot (see ``minilm.plots.viz.LiveLossPlot``).
    """
    from contextlib import nullcontext

    import torch.distributed as dist

    from ..core.progress import progress_bar

    check_rows(train_tokens, cfg.seq_len, train_mask)
    val_streams = dict(val_tokens) if isinstance(val_tokens, SourceTokens) else {"": val_tokens}
    if isinstance(val_tokens, SourceTokens) and val_mask is not None:
        raise ValueError("val_mask applies to one validation stream, not to validation sets by source")
    eval_len = cfg.eval_seq_len or cfg.seq_len
    for tokens in val_streams.values():
        if tokens is not None:
            check_rows(tokens, eval_len, val_mask)
    # Checked once here: an id outside the embedding table fails deep in torch, at the first batch holding it.
    vocab = model.config.vocab_size
    named = [("train_tokens", train_tokens)] + [(f"val_tokens{'[' + repr(s) + ']' if s else ''}", t)
                                                for s, t in val_streams.items()]
    for name, tokens in named:
        if tokens is not None and tokens.size and (tokens.min() < 0 or tokens.max() >= vocab):
            raise ValueError(f"{name} hold ids {tokens.min()}..{tokens.max()}: the model's vocab_size={vocab} "
                             f"allows 0..{vocab - 1}")
    # A stream's first token and a row's first token are never targets.
    if train_mask is not None and not (train_mask[..., 1:] != 0).any():
        raise ValueError("the loss mask (train_mask) leaves no target to train on")
    if stop_at is not None:
        check_count("stop_at", stop_at, note=" (or None: train to cfg.steps)")
    check_count("log_every", log_every)
    check_device(device)  # a clear message instead of torch's assertion from .to("cuda") without CUDA
    ddp = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if ddp else (0, 1)
    model.to(device)
    model.train()
    device_type = torch.device(device).type
    optimizer = make_optimizer(model, cfg, device_type)
    result, start_step = TrainResult(tokens_per_step=cfg.tokens_per_step * world), 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, model, optimizer)
        start_step, result.history = state["step"], list(state["history"])
        result.start_step = start_step
        # Checkpoints written before these were recorded count from this call, as they used to.
        result.seconds, result.tokens = float(state.get("seconds", 0.0)), int(state.get("tokens", 0))
        torch.set_rng_state(state["torch_rng"])
    else:
        torch.manual_seed(cfg.seed)
    # DDP averages gradients across processes after backward; rank 0 alone logs and saves.
    runner = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
    if cfg.compile:  # compiles on the first step (and again if shapes change); same numbers, faster steps
        runner = torch.compile(runner, mode=None if cfg.compile_mode == "default" else cfg.compile_mode)
    progress = progress and rank == 0
    autocast = torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda")
    started = time.perf_counter()
    seconds_before, tokens_before = result.seconds, result.tokens
    end_step = min(stop_at or cfg.steps, cfg.steps)
    timed = cfg.max_seconds > 0
    # Counted by hand (not by iterating the bar) so that the step the loop breaks at is counted too.
    bar = progress_bar(desc="train", initial=start_step, total=None if timed else cfg.steps, disable=not progress)
    planned_steps = cfg.steps  # with a time budget, re-projected from the pace after every step
    for step in range(start_step, end_step):
        lr = lr_at(step, planned_steps, cfg.warmup_steps, cfg.lr, cfg.schedule, cfg.min_lr_ratio, cfg.decay_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        # The loss stays on the device: reading it (.item()) waits for the GPU to finish the step, so
        # it is read only on logged steps and the GPU can run ahead in between.
        total = torch.zeros((), device=device)
        for micro in range(cfg.grad_accum):
            x, y = get_batch(train_tokens, cfg.batch_size, cfg.seq_len, cfg.seed, step, micro * world + rank,
                             device=device, mask=train_mask)
            # Under DDP, only the last micro-batch's backward all-reduces the gradients.
            sync = runner.no_sync() if ddp and micro < cfg.grad_accum - 1 else nullcontext()
            with sync:
                with autocast:
                    _, loss = runner(x, y)
                (loss / cfg.grad_accum).backward()
            total += loss.detach() / cfg.grad_accum
        if ddp:  # the loss to report is the mean over all processes
            dist.all_reduce(total)
            total /= world
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip, foreach=True) if cfg.grad_clip else None
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        result.tokens += cfg.tokens_per_step * world
        last = step + 1 == cfg.steps
        if timed:
            # Every process must see the same clock, or their learning rates (and last steps) would
            # differ: under DDP the slowest one's time counts.
            elapsed = time.perf_counter() - started
            if ddp:
                clock = torch.tensor([elapsed], dtype=torch.float64, device=device)
                dist.all_reduce(clock, op=dist.ReduceOp.MAX)
                elapsed = clock.item()
            done = step + 1 - start_step
            # The last step is the one after which another would end past the budget.
            last = last or elapsed * (done + 1) / done > cfg.max_seconds
            planned_steps = min(cfg.steps, max(step + 2, round(start_step + done * cfg.max_seconds / elapsed)))
        evaluating = val_tokens is not None and cfg.eval_every and ((step + 1) % cfg.eval_every == 0 or last)
        hooking = hook is not None and rank == 0 and hook_every and ((step + 1) % hook_every == 0 or last)
        if hooking or evaluating or (step + 1) % log_every == 0 or last:
            record = {"step": step + 1, "lr": lr, "loss": total.item()}  # waits for the step to finish
            # Seconds since this call started, read after that wait: throughput is measured between records.
            record["seconds"] = time.perf_counter() - started
            if grad_norm is not None:
                record["grad_norm"] = float(grad_norm)
            if evaluating:
                metrics = evaluate(model, val_tokens, eval_len, cfg.batch_size, cfg.eval_tokens, byte_lengths,
                                   device, mask=val_mask)
                record.update({f"val_{k}": v for k, v in metrics.items()})
            result.history.append(record)
            if hooking:
                record.update(hook(step + 1, model, result.history) or {})
            bar.set_postfix(loss=f"{record['loss']:.3f}",
                            tok_s=f"{(result.tokens - tokens_before) / max(record['seconds'], 1e-9):,.0f}")
        stopping = step + 1 == end_step or last
        if checkpoint is not None and rank == 0 and (stopping or (cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0)):
            save_checkpoint(checkpoint, model, optimizer, step + 1, asdict(cfg), result.history,
                            seconds_before + time.perf_counter() - started, result.tokens)
        bar.update()
        if last:
            break
    bar.close()
    if device_type == "cuda":
        torch.cuda.synchronize(device)
    result.seconds = seconds_before + time.perf_counter() - started
    return result
