"""Supervised fine-tuning (chapter 08): from a model that continues documents to an assistant.

A base model continues text. SFT trains it on *conversations* rendered with the chat template
(:mod:`minilm.text.chat_template`), so that after ``<|im_start|>assistant`` it writes a reply and then
``<|im_end|>``. The loss counts only the assistant's tokens, its ``<|im_end|>`` included (the mask
of :func:`minilm.text.chat_template.render_conversation`): the model is taught to answer and to stop,
not to write the user's questions.

What the conversations say comes from :mod:`minilm.data.conversations` (tiny-world facts, refusals,
arithmetic, letters, multi-turn chats, identity; knowledge-aware facts) and, optionally, a real chat
data set (:mod:`minilm.data.chat_sets`). The evaluation (:mod:`minilm.evals.chat_eval`) asks about the *other*
halves of the people and held-out problems and words, so what it measures is not a memorised SFT
reply.

**Encoding** (:func:`encode_conversations`): conversations are packed into rows of ``seq_len + 1``
tokens, whole (a conversation never straddles two rows), the rest of a row padded with
``<|pad|>``; the mask is 0 on padding and on everything but assistant tokens. In a packed row a
conversation can attend to the ones before it in the same row: they are independent and each
starts with ``<|im_start|>``, so the model learns to ignore them (the usual trade: no padding
wasted, no per-document attention mask). ``pack=False`` puts each conversation alone in its row:
exact, at the price of padding.

**Training** (:func:`train_sft`): the shared loop :func:`minilm.models.train.train` on those rows with
their mask (whole rows are drawn, so no conversation is cut by a window). :func:`sft` is the
pipeline's stage: it starts from the mid-trained model (:func:`minilm.stages.midtrain.artifact`) and
measures the evaluation suite before and after; :func:`artifact` keeps the result.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.checks import check_count
from ..core.config import Budget, SFTConfig, as_budget
from ..core.device import best_device
from ..core.files import write_json
from ..data.chat_sets import load_chat_dataset
from ..data.conversations import Conversation, conversations, length_stats, mix_conversations
from ..core.tables import markdown_table
from ..evals.chat_eval import check_settings, format_eval_table, run_eval
from ..evals.probes import identity_rate
from ..models.gpt import extend_context
from ..text.chat_template import render_conversation
from ..text.tokenizer import PAD
from ..text.world import World
from . import midtrain, tokenizer as tokenizer_stage
from .artifact import artifact_dir, content_key, trained_model_artifact, with_settings


# ----------------------------------------------------------------------------------------------
# Encoding: rows of packed conversations and their loss mask


@dataclass
class SFTBatches:
    """Conversations as rows for :func:`minilm.models.train.train`.

    tokens: (rows, seq_len + 1) token ids; mask: the same shape, 1 on the tokens to learn (the
    assistant's, ``<|im_end|>`` included), 0 elsewhere (user turns, role headers, tool results,
    padding). ``conversations`` were encoded, of which ``truncated`` were cut to fit; ``dropped``
    were left out (too long, or cut to nothing to learn); ``lengths`` are the token lengths of
    every conversation given, before any was dropped; ``real_tokens`` counts the row positions
    that hold a conversation's token (the rest is padding).
    """

    tokens: np.ndarray
    mask: np.ndarray
    conversations: int
    dropped: int = 0
    truncated: int = 0
    lengths: list[int] = field(default_factory=list)
    real_tokens: int = 0

    @property
    def seq_len(self) -> int:
        return self.tokens.shape[1] - 1

    @property
    def trained_tokens(self) -> int:
        """Targets in the loss (the first token of a row is never a target)."""
        return int(self.mask[:, 1:].sum())

    def stats(self) -> dict:
        """Rows, conversations, dropped and truncated ones, how full the rows are, tokens trained."""
        return {"rows": int(self.tokens.shape[0]), "seq_len": self.seq_len, "conversations": self.conversations,
                "dropped": self.dropped, "truncated": self.truncated,
                "fill": round(self.real_tokens / self.tokens.size, 4),
                "trained_tokens": self.trained_tokens,
                "trained_share": round(self.trained_tokens / max(1, self.mask[:, 1:].size), 4)}


def encode_conversations(convs: Sequence[Conversation], tokenizer, seq_len: int, pack: bool = True,
                         too_long: str = "drop") -> SFTBatches:
    """Render each conversation (ids and assistant mask) and lay them out in rows of ``seq_len + 1``.

    With ``pack``, conversations fill a row one after another while they fit whole, then the rest
    of the row is padding; without, each has a row of its own. A conversation longer than a row is
    dropped (``too_long="drop"``) or cut to its first ``seq_len + 1`` tokens (``"truncate"``: the
    model then never sees its end, ``<|im_end|>`` included); both are counted. A cut conversation
    with no assistant token left is dropped.

    >>> from minilm.text.tokenizer import Tokenizer
    >>> tok = Tokenizer.train("Hi there. Hello!", vocab_size=300)
    >>> hi = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    >>> batches = encode_conversations([hi, hi, hi], tok, seq_len=49)  # 23 tokens each: two fit in a row
    >>> batches.tokens.shape, batches.conversations
    ((2, 50), 3)
    >>> tok.decode([t for t, m in zip(batches.tokens[0], batches.mask[0]) if m])
    'Hello!<|im_end|>Hello!<|im_end|>'
    """
    check_count("seq_len", seq_len)
    if too_long not in ("drop", "truncate"):
        raise ValueError(f"too_long={too_long!r} is not allowed: choose 'drop' or 'truncate'")
    width = seq_len + 1
    pad = tokenizer.special_id(PAD)
    rows_ids: list[list[int]] = []
    rows_mask: list[list[int]] = []
    kept = dropped = truncated = 0
    lengths = []
    for conversation in convs:
        ids, mask = render_conversation(tokenizer, conversation)
        lengths.append(len(ids))
        if len(ids) > width:
            if too_long == "drop" or not any(mask[:width]):
                dropped += 1
                continue
            ids, mask = ids[:width], mask[:width]
            truncated += 1
        kept += 1
        if pack and rows_ids and len(rows_ids[-1]) + len(ids) <= width:
            rows_ids[-1] += ids
            rows_mask[-1] += mask
        else:
            rows_ids.append(list(ids))
            rows_mask.append(list(mask))
    if not rows_ids:
        longest = max(lengths, default=0)
        raise ValueError(f"no conversation fits in a row of seq_len + 1 = {width} tokens ({dropped} dropped, "
                         f"the longest has {longest}): use a longer context or shorter conversations")
    tokens = np.full((len(rows_ids), width), pad, dtype=np.int64)
    masks = np.zeros((len(rows_ids), width), dtype=np.uint8)
    for r, (ids, mask) in enumerate(zip(rows_ids, rows_mask)):
        tokens[r, : len(ids)] = ids
        masks[r, : len(mask)] = mask
    real = sum(len(ids) for ids in rows_ids)
    return SFTBatches(tokens, masks, kept, dropped, truncated, lengths, real)


# ----------------------------------------------------------------------------------------------
# Training


def at_sft_context(model, budget: Budget):
    """``model`` at the context SFT trains with: the mid-trained model's own, or ``SFTConfig.context``
    when that asks for more, stretched as mid-training stretched it (``MidtrainConfig.context_method``)."""
    context = budget.sft.context
    if context and context != model.config.block_size:
        return extend_context(model, context, budget.midtrain.context_method)
    return model


def train_config(config: SFTConfig, seq_len: int, compile: bool = False):
    """The shared loop's settings: warmup, then the learning rate decays linearly to zero."""
    from ..models.train import TrainConfig

    return TrainConfig(steps=config.steps, batch_size=config.batch_size, seq_len=seq_len, lr=config.lr,
                       warmup_steps=config.warmup_steps, schedule="wsd", decay_fraction=1.0, min_lr_ratio=0.0,
                       eval_every=config.eval_every, eval_tokens=10**9, checkpoint_every=max(50, config.steps // 5),
                       compile=compile, seed=config.seed + 2)


def train_sft(model, tokenizer, convs: Sequence[Conversation], config: SFTConfig,
              val_convs: Sequence[Conversation] | None = None, device: str | None = None, progress: bool = True,
              checkpoint: str | Path | None = None, compile: bool = False):
    """Fine-tune ``model`` in place on ``convs`` with the assistant-only loss; returns
    ``(TrainResult, SFTBatches)``.

    Rows are as long as the model's context. Validation (every ``config.eval_every`` steps) is
    the masked loss (and bits per byte) on the assistant tokens of ``val_convs``. With ``checkpoint``,
    an interrupted call resumes from it.
    Whatever the starting point (the mid-trained model, a random initialisation for the
    bootstrapping ablation), the data, schedule and batches are the same for the same config.
    """
    from ..models.train import token_byte_lengths, train

    device = device or best_device()
    seq_len = model.config.block_size
    batches = encode_conversations(convs, tokenizer, seq_len, config.pack, config.too_long)
    val = encode_conversations(val_convs, tokenizer, seq_len, config.pack, config.too_long) if val_convs else None
    cfg = train_config(config, seq_len, compile)
    result = train(model, batches.tokens, cfg, val_tokens=val.tokens if val else None,
                   val_mask=val.mask if val else None, train_mask=batches.mask, checkpoint=checkpoint,
                   byte_lengths=token_byte_lengths(tokenizer),
                   resume=checkpoint is not None, device=device, progress=progress)
    return result, batches


# ----------------------------------------------------------------------------------------------
# The stage


def sft_data(budget: Budget, tokenizer, seq_len: int, total: int | None = None, knowledge: dict | None = None) -> dict:
    """The stage's data: training conversations by source (fitting ``seq_len + 1`` tokens), the
    validation conversations, and the measured length statistics of what the streams give before
    any is skipped. ``knowledge`` (:func:`minilm.evals.probes.probe_knowledge`) makes the fact answers
    knowledge-aware."""

    world = World(budget.world)
    cfg = budget.sft
    width = seq_len + 1
    by_source = conversations(world, cfg, seed=cfg.seed, total=total, tokenizer=tokenizer, max_tokens=width,
                              knowledge=knowledge)
    raw = conversations(world, cfg, seed=cfg.seed, total=total, knowledge=knowledge)
    stats = length_stats(raw, tokenizer, max_tokens=width)
    if cfg.chat_dataset and cfg.chat_conversations:
        by_source["chat"] = load_chat_dataset(cfg.chat_dataset, limit=cfg.chat_conversations)
        stats["chat"] = length_stats({"chat": by_source["chat"]}, tokenizer, max_tokens=width)["chat"]
    val = conversations(world, cfg, seed=cfg.seed + 1, total=cfg.val_conversations, tokenizer=tokenizer,
                        max_tokens=width, knowledge=knowledge) if cfg.val_conversations else {}
    return {"train": by_source, "val": mix_conversations(val, cfg.seed + 1), "lengths": stats}


def sft(budget: Budget | str | None = None, checkpoint: str | Path | None = None, device: str | None = None,
        progress: bool = True) -> tuple:
    """The pipeline's SFT stage: the budget's mid-trained model fine-tuned on the budget's mix.

    Returns the model (a plain GPT on the CPU, in eval mode) and a summary: the data (counts and
    lengths per source, rows, dropped), the training history, the evaluation suite
    (:func:`minilm.evals.chat_eval.run_eval`) and the identity probe before and after, and the times.
    """

    budget = as_budget(budget)
    cfg = budget.sft
    device = device or best_device()
    started = time.perf_counter()
    model, tokenizer, _ = midtrain.artifact(budget, progress=progress, device=device)
    model = at_sft_context(model, budget)
    seq_len = model.config.block_size
    world = World(budget.world)
    data = sft_data(budget, tokenizer, seq_len)
    model.to(device).eval()
    before = run_eval(model, tokenizer, world, n=cfg.eval_n)
    identity_before = identity_rate(model, tokenizer)
    train_started = time.perf_counter()
    result, batches = train_sft(model, tokenizer, mix_conversations(data["train"], cfg.seed), cfg,
                                val_convs=data["val"], device=device, progress=progress, checkpoint=checkpoint,
                                compile=budget.pretrain.compile)
    train_seconds = time.perf_counter() - train_started
    model.eval()
    after = run_eval(model, tokenizer, world, n=cfg.eval_n)
    identity_after = identity_rate(model, tokenizer)
    summary = {
        "budget": budget.name, "config": asdict(cfg), "train_config": asdict(train_config(cfg, seq_len)),
        "device": device, "context": seq_len,
        "data": {"counts": {s: len(c) for s, c in data["train"].items()}, "lengths": data["lengths"],
                 "val_conversations": len(data["val"]), **batches.stats()},
        "history": result.history, "train_seconds": round(train_seconds, 1),
        "tokens_per_s": round(result.tokens_per_s),
        "eval": {"before": before, "after": after},
        "identity": {"before": identity_before, "after": identity_after},
    }
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return midtrain.plain_gpt(model).cpu(), summary


def data_rows(summary: dict) -> list[list[str]]:
    """Per source: conversations used, token lengths (median / 90th percentile / max) of what the
    stream gives, and the share of those longer than a row (skipped while drawing).

    >>> s = {"data": {"counts": {"facts": 3}, "lengths": {"facts": {"n": 3, "median": 20.0, "p90": 24.0,
    ...      "max": 25, "over": 0, "over_share": 0.0}}}}
    >>> data_rows(s)
    [['facts', '3', '20 / 24 / 25', '0%']]
    """
    rows = []
    for source, count in summary["data"]["counts"].items():
        length = summary["data"]["lengths"].get(source, {})
        spread = f"{length['median']:.0f} / {length['p90']:.0f} / {length['max']}" if "median" in length else "-"
        rows.append([source, str(count), spread, f"{100 * length.get('over_share', 0):.0f}%"])
    return rows


DATA_COLUMNS = ("source", "conversations", "tokens (median / p90 / max)", "longer than a row")


# ----------------------------------------------------------------------------------------------
# The artifact, and what loads or evaluates it

# Bump when SFT changes what its model holds or how it is trained.
SFT_VERSION = 1


def chat_data_contents(chat_dataset: str) -> dict:
    """A key part for a local chat data file or folder: a hash of its contents, so that editing the
    file builds a new model instead of reusing the one trained on its old text. Empty for no chat
    data (the budgets' own keys stay as they were) and for hub names.

    >>> chat_data_contents("")
    {}
    """
    import hashlib

    folder = Path(chat_dataset).expanduser() if chat_dataset else None
    if folder is None or not folder.exists():
        return {}
    digest = hashlib.sha256()
    for file in sorted([folder] if folder.is_file() else [f for f in folder.rglob("*") if f.is_file()]):
        digest.update(str(file.relative_to(folder) if file != folder else file.name).encode() + b"\0")
        with open(file, "rb") as handle:  # in chunks: a large data file need not fit in memory
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return {"chat_data": digest.hexdigest()[:16]}


def path(budget: Budget) -> Path:
    """Keyed by the mid-trained model it starts from, the SFT settings and a local chat data set's contents."""
    k = content_key(midtrain=midtrain.path(budget).name, sft=repr(budget.sft), version=SFT_VERSION,
                    **chat_data_contents(budget.sft.chat_dataset))
    return artifact_dir(budget) / f"sft-{k}.pt"


def artifact(budget: Budget | str | None = None, progress: bool = True, device: str | None = None):
    """The budget's chat model (supervised fine-tuning of the mid-trained model): ``(model, tokenizer, summary)``.

    Built from the mid-trained model (itself built if missing) the first time. Training writes
    ``sft-<key>.partial.pt`` as it goes (an interrupted build resumes from it) and renames it to
    ``sft-<key>.pt`` with a ``.json`` summary (data, history, evaluation before and after) when done.
    """
    budget = as_budget(budget)
    model, summary = trained_model_artifact(
        path(budget), lambda partial: sft(budget, checkpoint=partial, device=device, progress=progress))
    return model, tokenizer_stage.artifact(budget, progress=progress), summary


def load_chat_model(budget=None, checkpoint: str | Path | None = None):
    """``(model, tokenizer, path)`` to chat with: the budget's SFT model, or any ``checkpoint``
    with the budget's tokenizer. Nothing is trained here: a missing SFT model is a
    FileNotFoundError that names the command that builds it.
    """
    budget = as_budget(budget)
    if checkpoint is not None:
        return (*tokenizer_stage.load_model_with_tokenizer(Path(checkpoint), budget), Path(checkpoint))
    file = path(budget)
    if not (file.exists() and file.with_suffix(".json").exists()):
        raise FileNotFoundError(f"no SFT model for the {budget.name} budget at {file}: "
                                f"build it with `minilm --budget {budget.name} sft`")
    model, tokenizer, _ = artifact(budget, progress=False)
    return model, tokenizer, file


def eval_path(checkpoint: str | Path) -> Path:
    """Where the results of a checkpoint are saved: next to it, ``<name>.eval.json``.

    >>> eval_path("runs/artifacts/laptop/sft-abc.pt").name
    'sft-abc.eval.json'
    """
    return Path(checkpoint).with_suffix(".eval.json")


def eval_checkpoint(path: str | Path, budget=None, n: int = 50, samples: int = 1, temperature: float = 0.0,
                    top_k=None, max_new_tokens: int = 48, seed: int = 0, tools: bool = True,
                    progress: bool = False) -> dict:
    """Load a checkpoint (and the budget's tokenizer), run :func:`minilm.evals.chat_eval.run_eval` over the budget's world,
    write the result to :func:`eval_path` atomically and return it.

    A missing or unreadable checkpoint raises :class:`minilm.models.checkpoint.CheckpointError` (a ValueError
    with a one-line message); a tokenizer of another vocabulary size raises a ValueError.
    """
    check_settings(n, samples, temperature, top_k, max_new_tokens)
    budget = as_budget(budget)
    path = Path(path)
    model, tokenizer = tokenizer_stage.load_model_with_tokenizer(path, budget, progress)
    results = run_eval(model, tokenizer, World(budget.world), n=n, samples=samples, temperature=temperature,
                       top_k=top_k, max_new_tokens=max_new_tokens, seed=seed, tools=tools, progress=progress)
    results["checkpoint"] = str(path)
    results["budget"] = budget.name
    write_json(eval_path(path), results)
    return results


# ----------------------------------------------------------------------------------------------
# The command: `minilm sft` (one generic handler in minilm.cli reads these)

COMMAND, CHAPTER, PRODUCT = "sft", "08", "chat model"
HELP = "fine-tune on conversations into a chat model; eval before and after"
# The budget's SFT settings the command may change: flag -> (type, help). chat_data and chat_limit
# name a real chat data set to add (configure turns them into chat_dataset / chat_conversations).
FLAGS = {"steps": (int, "optimizer steps (default: the budget's)"),
         "lr": (float, "learning rate after warmup, decayed linearly to zero"),
         "chat_data": (str, "also train on a real chat data set: a Hugging Face name (online), a save_to_disk "
                       "folder or a JSON/JSONL file"),
         "chat_limit": ("count", "conversations to take from --chat-data (default 1000)")}


def configure(budget: Budget, steps=None, lr=None, chat_data=None, chat_limit=None) -> Budget:
    changes = {k: v for k, v in (("steps", steps), ("lr", lr)) if v is not None}
    if chat_data is not None:
        changes["chat_dataset"] = chat_data
        changes["chat_conversations"] = chat_limit if chat_limit is not None else 1000
    elif chat_limit is not None:
        raise ValueError("--chat-limit needs --chat-data (a data set name, folder or JSON file)")
    return with_settings(budget, "sft", short_warmup=True, **changes)


def report(result) -> str:
    """What ``minilm sft`` prints: the data, the eval before and after, the identity probe, the time."""
    summary = result[2]
    data, identity = summary["data"], summary["identity"]
    return "\n".join([
        markdown_table(DATA_COLUMNS, data_rows(summary)),
        f"\n{data['conversations']} conversations in {data['rows']} rows of {data['seq_len'] + 1} tokens "
        f"({data['fill']:.0%} full, {data['dropped']} dropped, {data['truncated']} truncated)\n",
        format_eval_table({"mid-trained": summary["eval"]["before"], "SFT": summary["eval"]["after"]}),
        f"\nnames itself minilm: {identity['before']['rate']:.0%} before, {identity['after']['rate']:.0%} after "
        "(new wordings of 'who are you')",
        f"built in {summary['seconds']:.0f} s ({summary['config']['steps']} steps in {summary['train_seconds']:.0f} s)"])
