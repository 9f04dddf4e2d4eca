"""The data stage: the budget's sources cleaned, mixed and written as token shards, and kept.

The steps themselves live in :mod:`minilm.data.sources` (they transform what they are given); this stage
runs them on the budget's sources with the budget's tokenizer and keeps the shards under a key of
everything they depend on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..core.config import Budget, as_budget
from ..core.files import read_json, remove_orphan_temporaries, write_json
from ..data.contamination import world_eval_texts
from ..data.shards import is_complete, load_index, write_shards
from ..data.sources import StepLog, mix, process, source_documents, to_dataset
from ..text.world import World
from . import tokenizer as tokenizer_stage
from .artifact import CORPUS_VERSION, artifact_dir


def data_key(budget: Budget) -> str:
    """Everything the shards depend on, hashed: changing any of it builds new shards."""
    parts = {"data": repr(budget.data), "world": repr(budget.world.pretraining_view()), "corpus_chars": budget.corpus_chars,
             "corpus": CORPUS_VERSION, "tokenizer": tokenizer_stage.path(budget).name, "pipeline": PIPELINE_VERSION}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


PIPELINE_VERSION = 2  # bump when a step changes what it keeps (2: one validation split per source)
VAL_PREFIX = "val_"  # the validation split of source s is "val_s"
DOC_SOURCES_FILE = "train_doc_sources.json"


def path(budget: Budget) -> Path:
    """The folder of the budget's shards and build report."""
    return artifact_dir(budget) / f"data-{data_key(budget)}"


def artifact(budget: Budget | str | None = None, progress: bool = True, num_proc: int | None = None) -> dict:
    """Build (or reuse) the budget's pretraining shards; returns the build report (also saved)."""
    budget = as_budget(budget)
    key = data_key(budget)
    out = path(budget)
    report_path = out / "build_report.json"
    for folder in (out, out.parent):
        remove_orphan_temporaries(folder)
    if is_complete(out, key) and report_path.exists():
        report = read_json(report_path)
        # Where the shards are now: a runs folder copied or moved elsewhere must not read the old one.
        report["directory"] = str(out)
        return report

    import datasets  # heavy: only when the shards are built

    raw = source_documents(budget)
    eval_texts = world_eval_texts(World(budget.world))
    log = StepLog()
    processed = {}
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one bar per map/filter is noise; the tokenize bar remains
    try:
        for split, documents in raw.items():
            dataset, _ = process(to_dataset(documents), eval_texts, log if split == "train" else StepLog(), num_proc)
            by_source: dict[str, list[str]] = {}
            for text, source in zip(dataset["text"], dataset["source"]):
                by_source.setdefault(source, []).append(text)
            processed[split] = by_source
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()

    weights = budget.data.weights()
    mixed, mix_stats = mix(processed["train"], weights, budget.data.total_chars, budget.data.seed)
    tokenizer = tokenizer_stage.artifact(budget, progress=progress)
    # One validation split per source of the mixture, so every evaluation can say which part of
    # what the model trains on it learned (a source without held-out text gets none).
    val_splits = {VAL_PREFIX + source: docs for source, docs in processed["val"].items() if source in weights and docs}
    write_shards({"train": [t for _, t in mixed], **val_splits}, tokenizer, out, key,
                 shard_tokens=budget.data.shard_tokens, progress=progress)

    # Which source each training document came from, in shard order: a study that re-tokenizes the
    # mixture (chapter 05's small vocabulary) weights its validation sources by its own token counts.
    write_json(out / DOC_SOURCES_FILE, [source for source, _ in mixed])
    index = load_index(out)
    token_counts = _tokens_per_source(mixed, tokenizer)
    report = {
        "budget": budget.name, "key": key, "directory": str(out),
        "raw_documents": {split: {s: len(d) for s, d in docs.items()} for split, docs in raw.items()},
        "steps": log.rows,
        "mixture": {s: {**mix_stats[s], "weight": round(weights[s], 4), "tokens": token_counts.get(s, 0)} for s in weights},
        "splits": {s: {"documents": v["documents"], "tokens": v["tokens"], "shards": len(v["shards"])}
                   for s, v in index["splits"].items()},
        "vocab_size": tokenizer.vocab_size,
    }
    write_json(report_path, report)
    return report


def validation_sets(report: dict) -> dict[str, np.ndarray]:
    """The validation tokens of every source of a build (:func:`artifact`'s report), by source."""
    from ..data.shards import TokenShards

    shards = TokenShards(report["directory"])
    return {split[len(VAL_PREFIX):]: shards.tokens(split) for split in report["splits"] if split.startswith(VAL_PREFIX)}


def token_shares(report: dict) -> dict[str, float]:
    """Each source's share of the training tokens: the weights that make the per-source validation
    losses into the loss of the mixture as trained.

    >>> token_shares({"mixture": {"plays": {"tokens": 300}, "sums": {"tokens": 100}}})
    {'plays': 0.75, 'sums': 0.25}
    """
    total = sum(m["tokens"] for m in report["mixture"].values())
    return {source: m["tokens"] / total for source, m in report["mixture"].items()}


def _tokens_per_source(mixed: list[tuple[str, str]], tokenizer) -> dict[str, int]:
    counts: dict[str, int] = {}
    texts = [t for _, t in mixed]
    for (source, _), ids in zip(mixed, tokenizer.encode_batch(texts, num_threads=2)):
        counts[source] = counts.get(source, 0) + len(ids) + 1  # + the <|endoftext|> separator
    return counts


# ----------------------------------------------------------------------------------------------
# The command: `minilm data` (one generic handler in minilm.cli reads these)

COMMAND, CHAPTER, PRODUCT = "data", "02", "shards"
HELP = "clean, dedup, filter, mix and shard the pretraining data"


def report(build: dict) -> str:
    """What ``minilm data`` prints: each step's documents in and out, the mixture, the shards."""
    lines = [f"{row['step']:<36} {row['docs_in']:>7} -> {row['docs_out']:>7} docs  {row['seconds']:>6.1f} s"
             for row in build["steps"]]
    lines += [f"{source:<14} weight {m['weight']:.2f}  {m['tokens']:>10,} tokens  ({m['passes']} passes)"
              for source, m in build["mixture"].items()]
    val = sum(split["tokens"] for name, split in build["splits"].items() if name.startswith(VAL_PREFIX))
    lines.append(f"shards: {build['directory']}  (train {build['splits']['train']['tokens']:,} tokens, "
                 f"validation {val:,} tokens in {len(build['splits']) - 1} sources)")
    return "\n".join(lines)
