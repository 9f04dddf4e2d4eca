"""Mid-training (chapter 07): annealing on a curated mix, and learning to call a calculator.

Mid-training continues the base model on data chosen for what it should get better at, before
any chat fine-tuning. :func:`midtrain` runs two continuations of the budget's base model with the
same start, schedule (a short warmup, then the learning rate falling linearly to zero) and number
of tokens, differing only in their data:

- **continue**: the pretraining mixture, as if pretraining had simply gone on (the control);
- **anneal**: the annealing mixture of ``MidtrainConfig.mixture``: the plays and the facts as in
  pretraining, and *curated* arithmetic (all three operations equally, more 3-digit problems,
  half of them worked digit by digit) in place of half of the pretraining arithmetic.

Both give the same share of their tokens (``tool_share``) to **tool-use** documents, in which
arithmetic is done through calculator calls::

    12345+6789=<|calc_start|>12345+6789<|calc_end|><|result_start|>19134<|result_end|>

The model learns to write the call; the result is written by the tool at inference
(:class:`minilm.inference.generate.CalculatorTool`), so the loss skips it (:func:`mask_tool_results`). The
rest of each mix keeps the model from forgetting what pretraining taught.

Both runs draw from one pool of documents with :func:`minilm.data.sources.mix` and train with
:func:`minilm.models.train.train`. The summary compares them on validation loss and bits per byte and on
the probes of chapter 04, and measures large-number arithmetic of the annealed model with and
without the calculator. :func:`artifact` keeps the annealed model, the starting point of supervised
fine-tuning.

>>> import torch
>>> masked = mask_tool_results(torch.tensor([[7, 5, 1, 2, 6, 9]]), result_start=5, result_end=6)
>>> masked.tolist()  # the result (5 1 2 6) is the tool's, not the model's, to write
[[7, -1, -1, -1, -1, 9]]
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from ..core.checks import ConfigError
from ..core.config import Budget, as_budget
from ..core.device import best_device
from ..core.files import read_json, remove_orphan_temporaries, write_json
from ..core.tables import markdown_table
from ..data.contamination import world_eval_texts
from ..data.sources import mix, process, source_documents, to_dataset
from ..models.checkpoint import load_model
from ..models.gpt import GPT
from ..models.train import TrainConfig, source_metrics, sum_windows, token_byte_lengths, train, window_totals
from ..text.tokenizer import CALC_END, CALC_START, ENDOFTEXT, RESULT_END, RESULT_START
from . import pretrain, tokenizer as tokenizer_stage
from .artifact import artifact_dir, content_key, recover_finished, with_settings

RUNS = ("anneal", "continue")  # the pipeline's run, and the control (minilm.studies.anneal_control)
TOOL_TOKENS = (CALC_START, CALC_END, RESULT_START, RESULT_END)
# Sources made for mid-training (the others are the pretraining sources of minilm.data.sources).
CURATED, TOOL = "curated_arithmetic", "tool_arithmetic"


# ----------------------------------------------------------------------------------------------
# Data


def curated_world(budget: Budget):
    """The tiny world with the curated arithmetic settings (the people are the same)."""
    from ..text.world import World

    m = budget.midtrain
    return World(replace(budget.world, op_weights=m.curated_op_weights, arithmetic_docs=m.curated_docs,
                         three_digit_fraction=m.curated_three_digit_fraction, direct_fraction=m.curated_direct_fraction))


def midtrain_documents(budget: Budget) -> dict[str, list[str]]:
    """The pool both runs draw from, by source.

    The pretraining sources and the curated arithmetic go through the pretraining cleaning steps
    (:func:`minilm.data.sources.process`: cleaning, PII, dedup, quality, decontamination). The tool-use
    documents do not: they are generated, and cleaning rightly strips reserved tokens such as
    ``<|calc_start|>`` from ordinary text.
    """
    import datasets  # heavy: only when the pool is built

    from ..text.world import World

    world = World(budget.world)
    raw = {**source_documents(budget)["train"], CURATED: curated_world(budget).arithmetic_documents()}
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        dataset, _ = process(to_dataset(raw), world_eval_texts(world))
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    pool: dict[str, list[str]] = {}
    for text, source in zip(dataset["text"], dataset["source"]):
        pool.setdefault(source, []).append(text)
    pool[TOOL] = world.tool_documents(budget.midtrain.tool_docs, budget.midtrain.tool_max_digits)
    return pool


def _encode(document: str, tokenizer) -> list[int]:
    # Calculator tokens are allowed (tool documents); each document ends with <|endoftext|>, as in the shards.
    return tokenizer.encode(document, allowed_special=TOOL_TOKENS) + [tokenizer.special_id(ENDOFTEXT)]


def encode_documents(documents: list[str], tokenizer) -> np.ndarray:
    """One token stream: each document (calculator tokens allowed) followed by ``<|endoftext|>``."""
    return np.asarray([i for doc in documents for i in _encode(doc, tokenizer)], dtype=np.uint16)


def mixture_tokens(pool: dict[str, list[str]], weights: dict[str, float], total_chars: int, tokenizer,
                   seed: int = 0) -> tuple[np.ndarray, dict]:
    """Documents drawn by weight with :func:`minilm.data.sources.mix`, tokenized; and per-source statistics
    (documents, characters, passes over the source, weight, tokens)."""

    mixed, stats = mix(pool, weights, total_chars, seed)
    ids: list[int] = []
    for source, text in mixed:
        encoded = _encode(text, tokenizer)
        stats[source]["tokens"] = stats[source].get("tokens", 0) + len(encoded)
        ids += encoded
    for source in stats:
        stats[source]["weight"] = round(weights[source], 4)
    return np.asarray(ids, dtype=np.uint16), stats


def mix_chars(budget: Budget) -> int:
    """Characters to draw for a run: about as many tokens as it trains on (a token is 2-4 characters)."""
    m = budget.midtrain
    return max(100_000, 4 * m.steps * m.batch_size * context_length(budget))


# ----------------------------------------------------------------------------------------------
# Loss masking


def mask_tool_results(targets: torch.Tensor, result_start: int, result_end: int) -> torch.Tensor:
    """A copy of ``targets`` (B, T) with every token of a tool result set to -1 (ignored by the loss).

    Masked: ``<|result_start|>``, the value, ``<|result_end|>``: the tool writes them at inference,
    so the model must not be trained to produce them (it would learn to guess results instead of
    calling the tool). The call itself and the text after the result are trained. A training window
    may start inside a result: then its first marker is a ``<|result_end|>``, and everything before
    it is masked too. This is exact as long as a window is longer than any result, so that no
    window lies wholly inside one (:func:`midtrain` checks it).
    """
    if targets.dim() != 2:
        raise ValueError(f"targets must be (batch, time), got shape {tuple(targets.shape)}")
    starts, ends = targets == result_start, targets == result_end
    T = targets.shape[1]
    positions = torch.arange(T, device=targets.device).expand_as(targets)
    first_start = torch.where(starts, positions, T).min(dim=1).values
    first_end = torch.where(ends, positions, T).min(dim=1).values
    inside_at_start = (first_end < first_start).long()[:, None]
    depth = inside_at_start + starts.long().cumsum(1) - ends.long().cumsum(1) + ends.long()
    return targets.masked_fill(depth > 0, -1)


class ToolMaskedGPT(GPT):
    """A GPT whose training loss leaves out tool results (see :func:`mask_tool_results`).

    Same parameters and state dict as :class:`minilm.models.gpt.GPT`, so :func:`minilm.models.train.train`
    trains it unchanged and its checkpoints load into a plain GPT.
    """

    def __init__(self, config, result_start: int, result_end: int):
        super().__init__(config)
        self.result_start, self.result_end = result_start, result_end

    @classmethod
    def from_model(cls, model: GPT, tokenizer) -> "ToolMaskedGPT":
        """A copy of ``model`` (weights copied, the input untouched) for this tokenizer's tool tokens."""
        masked = cls(model.config, tokenizer.special_id(RESULT_START), tokenizer.special_id(RESULT_END))
        masked.load_state_dict(model.state_dict())
        return masked.to(next(model.parameters()).device)

    def forward(self, idx, targets=None, *args, **kwargs):
        if targets is not None:
            targets = mask_tool_results(targets, self.result_start, self.result_end)
        return super().forward(idx, targets, *args, **kwargs)


def plain_gpt(model: GPT) -> GPT:
    """The same weights as a plain :class:`minilm.models.gpt.GPT` (what the artifact stores and later chapters load)."""
    plain = GPT(model.config)
    plain.load_state_dict(model.state_dict())
    return plain.eval()


# ----------------------------------------------------------------------------------------------
# Training


def context_length(budget: Budget) -> int:
    """The context mid-training extends the model to (and SFT keeps): ``MidtrainConfig.context``,
    or pretraining's ``seq_len`` when that is 0."""
    return budget.midtrain.context or budget.pretrain.seq_len


def train_config(budget: Budget) -> TrainConfig:
    """Every run: warmup, then the learning rate decays linearly to zero (WSD with all of it decay).
    Rows of the long context; the periodic validation keeps pretraining's windows, so its curve
    continues the base model's (loss by position shows the long context, :func:`position_study`)."""
    m = budget.midtrain
    return TrainConfig(steps=m.steps, batch_size=m.batch_size, seq_len=context_length(budget), lr=m.lr,
                       optimizer=m.optimizer, muon_lr=m.muon_lr, warmup_steps=m.warmup_steps, schedule="wsd",
                       decay_fraction=1.0, min_lr_ratio=0.0, eval_every=m.eval_every,
                       eval_seq_len=budget.pretrain.seq_len, checkpoint_every=max(50, m.steps // 5),
                       compile=budget.pretrain.compile, seed=1)


def task_probes(model, tokenizer, world, n: int) -> dict:
    """Chapter 04's probes that mid-training can move (facts of seen people, held-out sums), with
    the same prompts as :func:`minilm.evals.probes.probe_base_model` for the same ``n``."""
    from ..evals.probes import probe_arithmetic, probe_facts

    return {"facts_seen": probe_facts(model, tokenizer, world, limit=n * 2),
            "addition_2digit": probe_arithmetic(model, tokenizer, world, n, "+", 2),
            "subtraction_2digit": probe_arithmetic(model, tokenizer, world, n, "-", 2),
            "addition_3digit": probe_arithmetic(model, tokenizer, world, n, "+", 3)}


def compare_runs(runs: dict, windows: dict, weights: dict) -> dict:
    """Annealed minus continued, with 95% paired bootstrap intervals over the evaluation items:
    each probe's questions (accuracy) and the validation windows of every source (the mixture's
    loss and bits per byte, weighted as pretraining was). Intervals cover the evaluation's noise,
    not the seed's: one training run per mix."""
    from ..evals.intervals import accuracy_difference, loss_difference

    a, c = runs["anneal"], runs["continue"]
    result = {key: accuracy_difference(a["probes"][key]["right"], c["probes"][key]["right"]).as_dict()
              for key in a["probes"]}
    for metric in ("loss", "bpb"):
        result[f"val_{metric}"] = loss_difference(windows["anneal"], windows["continue"], weights, metric).as_dict()
    return result


_RESULT = re.compile(re.escape(RESULT_START) + r"(.*?)" + re.escape(RESULT_END))


def tool_answer_right(text: str, answer: str) -> bool:
    """Is the calculator's result in ``text`` (between the result tokens) the ``answer``? Text with
    no result, such as the model's own digits after a call with the tool off, is not right.

    >>> tool_answer_right("<|calc_start|>2+3<|calc_end|><|result_start|>5<|result_end|>", "5")
    True
    >>> tool_answer_right("<|calc_start|>2+3<|calc_end|>5", "5")
    False
    """
    found = _RESULT.search(text)
    return found is not None and found.group(1).strip() == answer


def probe_tool_arithmetic(model, tokenizer, world, n: int = 200, op: str = "+", digits: int = 3) -> dict:
    """Held-out problems asked as calculator practice (``a+b=``), answered with the tool on.

    The answer is the value the calculator returned for the model's call: right when the model
    called it with the right expression. Returns accuracy, the share of answers with a call, and
    a few examples (prompt end, gold, completion).
    """
    from ..inference.generate import complete
    from ..text.world import tool_prompt

    items = world.arithmetic_items(n, op=op, digits=digits)
    prompts = [tool_prompt(i.meta["a"], op, i.meta["b"]) for i in items]
    # call + expression + result, digits one token each, with room to spare
    texts = complete(model, tokenizer, prompts, max_new_tokens=3 * digits + 10, stop="\n", tools=True)
    right, called = [], []
    for item, text in zip(items, texts):
        called.append(CALC_START in text)
        right.append(tool_answer_right(text, item.answer))
    examples = [(p.rsplit("\n", 1)[-1], i.answer, t) for p, i, t in list(zip(prompts, items, texts))[:4]]
    return {"accuracy": sum(right) / max(1, len(right)), "called": sum(called) / max(1, len(called)),
            "n": len(right), "examples": examples}


def tool_use_table(model, tokenizer, world, digits: tuple[int, ...], n: int, ops: str = "+-") -> list[dict]:
    """Accuracy on held-out problems by operation and operand size, with and without the calculator.

    Without it the model answers directly, prompted as in chapter 04 (few-shot ``a + b =``).
    """
    from ..evals.probes import probe_arithmetic

    rows = []
    for op in ops:
        for d in digits:
            with_tool = probe_tool_arithmetic(model, tokenizer, world, n, op, d)
            without = probe_arithmetic(model, tokenizer, world, n, op, d)
            rows.append({"op": op, "digits": d, "with_tool": with_tool["accuracy"], "called_tool": with_tool["called"],
                         "without_tool": without["accuracy"], "n": with_tool["n"],
                         "examples": with_tool["examples"][:2], "examples_without": without["examples"][:2]})
    return rows


# Distances of the in-context recall probe (:func:`minilm.evals.probes.probe_recall`): filler tokens
# between the needle and the question, from inside pretraining's window to well past it.
RECALL_GAPS = (0, 64, 128)


def position_study(model, tokenizer, world, val_tokens, context: int, n: int, device: str,
                   trained: int | None = None) -> dict:
    """What a longer context buys a model: its mean loss at each position of ``context``-token
    windows of the held-out plays (the only source whose documents run past pretraining's window),
    each window's mean loss past the first ``trained`` positions (for intervals), and its in-context
    recall at each of :data:`RECALL_GAPS` (``n`` questions each)."""
    from ..evals.probes import probe_recall
    from ..models.train import loss_by_position

    losses = loss_by_position(model, val_tokens["shakespeare"], context, 16, 64 * context, device)
    result = {"loss_by_position": [round(float(x), 4) for x in losses.mean(axis=0)],
              "recall": {str(gap): probe_recall(model, tokenizer, world, n, gap) for gap in RECALL_GAPS}}
    if trained is not None and trained < context:
        result["late_window_loss"] = [round(float(x), 5) for x in losses[:, trained:].mean(axis=1)]
    return result


def validation_windows(model, budget: Budget, tokenizer, val_tokens, device: str) -> dict:
    """Each validation source's windows' totals (:func:`minilm.models.train.window_totals`), at
    pretraining's window."""
    model.eval()
    byte_lengths = token_byte_lengths(tokenizer)
    return {source: window_totals(model, stream, budget.pretrain.seq_len, 64, 10**9, byte_lengths, device)
            for source, stream in val_tokens.items()}


def measure(model, budget: Budget, tokenizer, world, val_tokens, probe_n: int, device: str) -> tuple[dict, dict]:
    """A mid-trained model's validation (every source, at pretraining's windows: comparable with the
    base model's) and chapter 04's probes; and the validation windows' totals by source, for the
    comparison's intervals (:func:`compare_runs`)."""
    windows = validation_windows(model, budget, tokenizer, val_tokens, device)
    # evaluate()'s figures, from the same windows (one pass over the validation sets, not two)
    final = source_metrics({source: sum_windows(*w) for source, w in windows.items()}, val_tokens.weights)
    return {"val_loss": final["loss"], "val_bpb": final["bpb"], "val_sources": pretrain.by_source(final, val_tokens),
            "probes": task_probes(model, tokenizer, world, probe_n)}, windows


def train_run(budget: Budget, run: str, base: GPT, tokenizer, pool: dict, val_tokens, checkpoint: str | None,
              device: str, progress: bool = True) -> tuple[GPT, dict]:
    """One continuation of ``base`` (extended to the mid-training context) on the ``run`` mix:
    "anneal" (the annealing mix) or "continue" (the pretraining mix, the control of
    :mod:`minilm.studies.anneal_control`); both with ``tool_share`` of calculator practice. Returns
    the trained model (a plain GPT) and a record: the mix's statistics, time, history."""
    from ..models.gpt import extend_context

    check_run(run)
    m, cfg = budget.midtrain, train_config(budget)
    weights = m.weights(budget.data.weights()) if run == "continue" else m.weights()
    tokens, stats = mixture_tokens(pool, weights, mix_chars(budget), tokenizer, seed=budget.data.seed + 1)
    model = ToolMaskedGPT.from_model(extend_context(base, cfg.seq_len, m.context_method), tokenizer)
    result = train(model, tokens, cfg, val_tokens=val_tokens, byte_lengths=token_byte_lengths(tokenizer),
                   checkpoint=checkpoint, resume=checkpoint is not None, device=device, progress=progress)
    return plain_gpt(model), {"mixture": stats, "tokens_available": int(len(tokens)),
                              "seconds": round(result.seconds, 1), "tokens_per_s": round(result.tokens_per_s),
                              "history": result.history}


def check_run(run: str) -> None:
    if run not in RUNS:
        raise ConfigError(f"run={run!r}: mid-training runs are {', '.join(RUNS)}")


def check_tool_window(budget: Budget) -> None:
    """A training window must be longer than any tool result (see :func:`mask_tool_results`)."""
    longest_result = 2 * budget.midtrain.tool_max_digits + 2  # a product's digits and the two result tokens
    if context_length(budget) <= longest_result:
        raise ConfigError(f"a context of {context_length(budget)} is too short for tool results of up to "
                          f"{longest_result} tokens (tool_max_digits={budget.midtrain.tool_max_digits}): "
                          "lower tool_max_digits")


def midtrain(budget: Budget | str | None = None, checkpoint_prefix: str | Path | None = None,
             device: str | None = None, progress: bool = True) -> tuple[GPT, dict]:
    """Extend the base model's context and anneal it; returns the mid-trained model and a summary:
    validation and probes against the base model's, loss by position and in-context recall before
    and after the extension, and tool use with and without the calculator.

    With ``checkpoint_prefix`` the run writes ``<prefix>.anneal.partial.pt`` as it goes and an
    interrupted call resumes from there. The control run on the pretraining mix is a study
    (:mod:`minilm.studies.anneal_control`), outside the pipeline.
    """
    from ..models.gpt import CONTEXT_METHODS, extend_context
    from ..text.world import World

    budget = as_budget(budget)
    check_tool_window(budget)
    device = device or best_device()
    started = time.perf_counter()
    base, tokenizer, base_summary = pretrain.artifact(budget, progress=progress)
    _, val_tokens, _ = pretrain.load_tokens(budget, progress=progress)
    world = World(budget.world)
    cfg, m = train_config(budget), budget.midtrain
    # The base model was measured the same way when it was trained (the whole validation set, the
    # probes with the same prompts): its summary gives the starting point.
    probe_n = base_summary["probes"]["addition_2digit"]["n"]
    base_probes = {k: v for k, v in base_summary["probes"].items() if k in PROBE_NAMES}
    summary = {"budget": budget.name, "config": asdict(m), "train_config": asdict(cfg), "device": device,
               "base": {"val_loss": base_summary["val_loss"], "val_bpb": base_summary["val_bpb"],
                        "probes": base_probes},
               "context": {"trained": budget.pretrain.seq_len, "extended": cfg.seq_len, "method": m.context_method,
                           "method_name": CONTEXT_METHODS[m.context_method]}, "runs": {}}
    base.to(device)
    short = budget.pretrain.seq_len
    summary["context"]["base"] = position_study(extend_context(base, cfg.seq_len, "extrapolate"), tokenizer, world,
                                                val_tokens, cfg.seq_len, m.probe_n, device, short)
    # The base model at its own window (recall prompts cut to their last block_size tokens).
    summary["context"]["base_window"] = position_study(base, tokenizer, world, val_tokens, budget.pretrain.seq_len,
                                                       m.probe_n, device)
    pool_started = time.perf_counter()
    pool = midtrain_documents(budget)
    summary["pool_seconds"] = round(time.perf_counter() - pool_started, 1)
    checkpoint = f"{checkpoint_prefix}.anneal.partial.pt" if checkpoint_prefix is not None else None
    model, record = train_run(budget, "anneal", base, tokenizer, pool, val_tokens, checkpoint, device, progress)
    measured, _ = measure(model, budget, tokenizer, world, val_tokens, probe_n, device)
    summary["mixture"] = record.pop("mixture")
    summary["runs"]["anneal"] = record | measured
    summary["context"]["midtrained"] = position_study(model, tokenizer, world, val_tokens, cfg.seq_len, m.probe_n,
                                                      device, short)
    tools_started = time.perf_counter()
    summary["tools"] = tool_use_table(model, tokenizer, world, m.tool_digits, m.probe_n)
    summary["tools_seconds"] = round(time.perf_counter() - tools_started, 1)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return model.cpu(), summary


# ----------------------------------------------------------------------------------------------
# The artifact

# Bump when mid-training changes what its model holds or how it is trained.
MIDTRAIN_VERSION = 3  # 2: per-item probe results; 3: the long context, one run (the control is a study)


STUDY_SETTINGS = ("grow_", "extension_")  # settings of chapter 07's studies, not of the stage


def path(budget: Budget) -> Path:
    """Keyed by the base model it starts from, the world and the mid-training settings (not those
    of the growing and context-extension studies, which only notebook 07 runs)."""
    settings = {k: v for k, v in asdict(budget.midtrain).items() if not k.startswith(STUDY_SETTINGS)}
    # The world too: its held-out people are the recall probe's needles (the base key ignores them).
    k = content_key(base=pretrain.path(budget).name, midtrain=repr(sorted(settings.items())), world=repr(budget.world),
                    version=MIDTRAIN_VERSION)
    return artifact_dir(budget) / f"midtrain-{k}.pt"


def artifact(budget: Budget | str | None = None, progress: bool = True, device: str | None = None):
    """The budget's mid-trained model (long context, annealed, calculator calls learned):
    ``(model, tokenizer, summary)``.

    Built from the base model (itself built if missing) the first time. The run writes
    ``midtrain-<key>.anneal.partial.pt`` as it goes (an interrupted build resumes from it); when it
    is done the model becomes ``midtrain-<key>.pt`` with a ``.json`` summary.
    """
    budget = as_budget(budget)
    file = path(budget)
    summary_path = file.with_suffix(".json")
    prefix = file.with_suffix("")
    remove_orphan_temporaries(file.parent)
    recover_finished(file, Path(f"{prefix}.anneal.partial.pt"))
    if not (file.exists() and summary_path.exists()):
        model, summary = midtrain(budget, checkpoint_prefix=prefix, device=device, progress=progress)
        write_json(summary_path.with_suffix(".partial.json"), summary)
        Path(f"{prefix}.anneal.partial.pt").replace(file)
        summary_path.with_suffix(".partial.json").replace(summary_path)
    else:
        model = load_model(file)
    return model, tokenizer_stage.artifact(budget, progress=progress), read_json(summary_path)


# ----------------------------------------------------------------------------------------------
# Reports


# How tables, plots and reports name the operations of the tool-use probes.
OP_NAMES = {"+": "addition", "-": "subtraction"}
PROBE_NAMES = {"facts_seen": "facts of seen people", "addition_2digit": "held-out 2-digit addition",
               "subtraction_2digit": "held-out 2-digit subtraction", "addition_3digit": "held-out 3-digit addition"}


def comparison_rows(summary: dict) -> list[list[str]]:
    """The base model and each run of ``summary["runs"]`` (the control's, when a study added it,
    then the annealed one), side by side: validation loss, bits per byte, probes.

    >>> s = {"base": {"val_loss": 2.0, "val_bpb": 1.0, "probes": {"facts_seen": {"accuracy": 0.5}}},
    ...      "runs": {"anneal": {"val_loss": 1.9, "val_bpb": 0.9, "probes": {"facts_seen": {"accuracy": 0.75}}}}}
    >>> comparison_rows(s)[2]
    ['facts of seen people', '50.0%', '75.0%']
    """
    columns = [summary["base"], *(summary["runs"][r] for r in reversed(RUNS) if r in summary["runs"])]
    rows = [["validation loss (nats / token)", *(f"{c['val_loss']:.3f}" for c in columns)],
            ["validation bits per byte", *(f"{c['val_bpb']:.3f}" for c in columns)]]
    for key, probe in columns[0]["probes"].items():
        rows.append([PROBE_NAMES.get(key, key), *(f"{100 * c['probes'][key]['accuracy']:.1f}%" for c in columns)])
    return rows


RUN_NAMES = {"continue": "continue (pretraining mix)", "anneal": "anneal (curated mix)"}


def comparison_columns(summary: dict) -> tuple[str, ...]:
    """The headers of :func:`comparison_rows` for this summary."""
    return ("measure", "base model", *(RUN_NAMES[r] for r in reversed(RUNS) if r in summary["runs"]))


def context_rows(summary: dict) -> list[list[str]]:
    """In-context recall at each distance, and the mean loss on the plays inside and past
    pretraining's window: the base model at its own window, the base model stretched to the long
    context without training, and the mid-trained model."""
    c = summary["context"]
    short, long_ = c["trained"], c["extended"]
    models = [c["base_window"], c["base"], c["midtrained"]]
    rows = []
    for gap in c["midtrained"]["recall"]:
        rows.append([f"recall, needle {c['midtrained']['recall'][gap]['distance']:.0f} tokens back",
                     *(f"{100 * m['recall'][gap]['accuracy']:.0f}%" for m in models)])
    for name, part in ((f"positions 0-{short - 1}", slice(0, short)), (f"positions {short}-{long_ - 1}", slice(short, long_))):
        rows.append([f"plays loss, {name} (nats)",
                     *(f"{np.mean(m['loss_by_position'][part]):.3f}" if len(m["loss_by_position"][part]) else "-"
                       for m in models)])
    return rows


def context_columns(summary: dict) -> tuple[str, ...]:
    c = summary["context"]
    return ("measure", f"base ({c['trained']} tokens)", f"base stretched to {c['extended']} (no training)",
            f"mid-trained ({c['extended']}, {c['method']})")


def tool_rows(summary: dict) -> list[list[str]]:
    """Large-number arithmetic of the annealed model: without the tool, with it, and how often it called it."""
    return [[f"{row['digits']}-digit {OP_NAMES.get(row['op'], row['op'])}", f"{100 * row['without_tool']:.1f}%",
             f"{100 * row['with_tool']:.1f}%", f"{100 * row['called_tool']:.0f}%"] for row in summary["tools"]]


TOOL_COLUMNS = ("held-out problems", "without the tool", "with the calculator", "answers with a call")


def tool_example(summary: dict) -> tuple[str, str, str]:
    """One tool-use example to show, (prompt end, gold, completion): a right call from the largest
    operands if there is one, else a call, else the first example.

    >>> row = {"digits": 3, "examples": [["1+2=", "3", "3"], ["4+5=", "9", "<|calc_start|>4+5<|calc_end|>..."]]}
    >>> tool_example({"tools": [row]})[0]
    '4+5='
    """
    examples = [e for row in sorted(summary["tools"], key=lambda r: -r["digits"]) for e in row["examples"]]
    right = [e for e in examples if tool_answer_right(e[2], e[1])]
    called = [e for e in examples if CALC_START in e[2]]
    return tuple((right or called or examples)[0])


# ----------------------------------------------------------------------------------------------
# The command: `minilm midtrain` (one generic handler in minilm.cli reads these)

COMMAND, CHAPTER, PRODUCT = "midtrain", "07", "mid-trained model"
HELP = "mid-train the base model: a longer context, annealing and calculator calls"
# The budget's mid-training settings the command may change: flag -> (type, help).
FLAGS = {"steps": (int, "optimizer steps (default: the budget's)"),
         "lr": (float, "learning rate after warmup, decayed linearly to zero")}


def configure(budget: Budget, **changes) -> Budget:
    return with_settings(budget, "midtrain", short_warmup=True, **changes)


def report(result) -> str:
    """What ``minilm midtrain`` prints: the runs compared, tool use, an example call."""
    summary = result[2]
    prompt, gold, completion = tool_example(summary)
    return "\n".join([markdown_table(comparison_columns(summary), comparison_rows(summary)), "",
                      markdown_table(context_columns(summary), context_rows(summary)), "",
                      markdown_table(TOOL_COLUMNS, tool_rows(summary)),
                      f"\nexample: {prompt}{completion}   (gold {gold})",
                      f"built in {summary['seconds']:.0f} s ({summary['config']['steps']} steps)"])
