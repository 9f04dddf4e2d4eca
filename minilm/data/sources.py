"""The pretraining data pipeline: sources -> clean -> redact -> dedup -> filter -> decontaminate -> mix -> shards.

Each step is a function on a ``datasets.Dataset`` with a ``text`` and a ``source`` column, so the
steps compose and run in parallel (``num_proc``). The embedded sources (Shakespeare, the tiny
world) work offline; Hugging Face data sets (TinyStories, FineWeb-edu, ...) load through
``datasets`` for users who are online, and fail with one clear message when not.

Which steps apply to which source matters: the tiny world is synthetic and trusted, and its
biographies are paraphrases of each other *on purpose* (knowledge augmentation), so near-dedup and
the natural-language quality heuristics run only on natural text (Shakespeare, web data), while
exact dedup, cleaning and decontamination run on everything. The data stage
(:func:`minilm.stages.data.artifact`) runs it all on the budget's sources and writes the shards
pretraining reads.
"""

from __future__ import annotations

import math
import numbers
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.checks import check_count
from ..core.config import Budget, get_budget

NATURAL_SOURCES = {"shakespeare", "tinystories", "fineweb-edu", "local", "web"}
WORLD_SOURCES = ("biographies", "arithmetic", "countdown", "letters")

# Hugging Face data sets a user online can add to the mixture: name -> (hub id, config, text column).
HF_SOURCES = {
    "tinystories": ("roneneldan/TinyStories", None, "text"),
    "fineweb-edu": ("HuggingFaceFW/fineweb-edu", "sample-10BT", "text"),
}


class DataSourceError(RuntimeError):
    """A data source cannot be loaded (offline, unknown name, wrong local path)."""


# ----------------------------------------------------------------------------------------------
# Sources


def load_hf_source(name: str, split: str = "train", max_docs: int = 10_000, streaming: bool = True,
                   local_path: str | Path | None = None) -> list[str]:
    """Texts from a Hugging Face data set (streamed, first ``max_docs``), or from a local copy.

    ``local_path`` may be a directory written by ``Dataset.save_to_disk`` or a json/jsonl/parquet
    file with the same text column: the tests use that, and it lets offline users bring data.
    """
    import datasets

    check_count("max_docs", max_docs)  # [:-3] would drop the last 3
    if name not in HF_SOURCES and local_path is None:
        raise DataSourceError(f"unknown data set {name!r}: choose one of {', '.join(HF_SOURCES)} or give local_path")
    hub_id, config, column = HF_SOURCES.get(name, (name, None, "text"))
    try:
        if local_path is not None:
            path = Path(local_path)
            if path.is_dir():
                loaded = datasets.load_from_disk(str(path))
                dataset = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
            elif path.is_file():
                kind = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}.get(path.suffix)
                if kind is None:
                    raise DataSourceError(f"{path}: use a .json, .jsonl or .parquet file, or a save_to_disk folder")
                dataset = datasets.load_dataset(kind, data_files=str(path), split="train")
            else:
                raise DataSourceError(f"{path}: no such file or folder")
            if column not in dataset.column_names:
                raise KeyError(column)
            texts = dataset[column][:max_docs]
        else:
            dataset = datasets.load_dataset(hub_id, config, split=split, streaming=streaming)
            texts = [row[column] for _, row in zip(range(max_docs), dataset)]
    except DataSourceError:
        raise
    except KeyError:
        raise DataSourceError(f"{name}: no text column {column!r} (or split {split!r}) in the data") from None
    except Exception as err:  # connection errors come in many types, from requests, hub and fsspec
        raise DataSourceError(
            f"could not load {name!r} ({hub_id}) from the Hugging Face hub: {type(err).__name__}. "
            "Are you offline? The embedded sources ('shakespeare' and the tiny world) need no network."
        ) from None
    return [t for t in texts if isinstance(t, str) and t.strip()]


def source_documents(budget: Budget) -> dict[str, dict[str, list[str]]]:
    """Raw documents of the embedded sources, by split and source.

    Every source has a validation split: the held-out plays, and the tiny world's held-out text
    (:meth:`minilm.text.world.World.validation_documents`), so a model is measured on each part of
    what it trains on.
    """
    from ..text.corpus import shakespeare_texts
    from ..text.world import World

    world = World(budget.world)
    train = {"shakespeare": shakespeare_texts("train", budget.corpus_chars), **world.documents()}
    val = {"shakespeare": shakespeare_texts("val"), **world.validation_documents()}
    return {"train": train, "val": val}


def to_dataset(documents: dict[str, list[str]]):
    """One ``datasets.Dataset`` with ``text`` and ``source`` columns."""
    import datasets

    texts = [t for docs in documents.values() for t in docs]
    sources = [name for name, docs in documents.items() for _ in docs]
    return datasets.Dataset.from_dict({"text": texts, "source": sources})


# ----------------------------------------------------------------------------------------------
# Mixing


def mix(documents: dict[str, list[str]], weights: dict[str, float], total_chars: int, seed: int = 0):
    """Documents drawn by weight (shares of characters), repeating small sources in whole passes.

    Returns ``(mixed, stats)``: ``mixed`` is a shuffled list of ``(source, text)``; ``stats`` gives,
    per source, documents and characters drawn and how many times over the source was used.
    """
    missing = [s for s in weights if not documents.get(s)]
    if missing:
        raise DataSourceError(f"mixture names sources with no documents: {', '.join(missing)}")
    # A source of empty texts, or an infinite weight, would never reach its share: the loop below
    # would draw forever.
    empty = [s for s in weights if not any(documents[s])]
    if empty:
        raise DataSourceError(f"mixture sources hold only empty texts: {', '.join(empty)}")
    bad = {s: w for s, w in weights.items()
           if isinstance(w, bool) or not isinstance(w, numbers.Real) or not 0 <= w < math.inf}
    if bad:
        raise ValueError(f"mixture weights must be finite numbers >= 0, got {bad}")
    check_count("total_chars", total_chars)
    rng = random.Random(f"mix-{seed}")
    mixed, stats = [], {}
    for source, weight in weights.items():
        docs = documents[source]
        natural = sum(map(len, docs))
        target = weight * total_chars
        drawn, chars = [], 0
        while chars < target:
            order = list(range(len(docs)))
            rng.shuffle(order)  # each pass in a new order
            for i in order:
                if chars >= target:
                    break
                drawn.append(docs[i])
                chars += len(docs[i])
        mixed += [(source, t) for t in drawn]
        stats[source] = {"documents": len(drawn), "chars": chars, "passes": round(chars / natural, 2)}
    rng.shuffle(mixed)
    return mixed, stats


# ----------------------------------------------------------------------------------------------
# The build


@dataclass
class StepLog:
    """Documents in/out and seconds of each pipeline step (what notebook 02 and the report show)."""

    rows: list[dict] = field(default_factory=list)

    def record(self, step: str, before, after, seconds: float, **extra) -> None:
        self.rows.append({"step": step, "docs_in": len(before), "docs_out": len(after),
                          "seconds": round(seconds, 2), **extra})


def _run(log: StepLog, name: str, step, dataset, **extra):
    start = time.perf_counter()
    result = step(dataset)
    log.record(name, dataset, result, time.perf_counter() - start, **extra)
    return result


def process(dataset, eval_texts: list[str], log: StepLog | None = None, num_proc: int | None = None):
    """Run the cleaning steps on a dataset of documents (columns ``text``, ``source``)."""
    from .cleaning import clean
    from .pii import redact
    from .contamination import ContaminationIndex, decontaminate
    from .dedup import exact_dedup, near_dedup
    from .quality import heuristic_filter

    log = log if log is not None else StepLog()
    natural = lambda ds: ds.filter(lambda s: s in NATURAL_SOURCES, input_columns="source")  # noqa: E731
    synthetic = lambda ds: ds.filter(lambda s: s not in NATURAL_SOURCES, input_columns="source")  # noqa: E731

    dataset = _run(log, "clean", lambda ds: clean(ds, num_proc=num_proc), dataset)
    dataset = _run(log, "redact PII", lambda ds: redact(ds, num_proc=num_proc), dataset)
    dataset = _run(log, "exact dedup", exact_dedup, dataset)

    def natural_only(step):
        def run(ds):
            import datasets

            return datasets.concatenate_datasets([step(natural(ds)), synthetic(ds)])
        return run

    dataset = _run(log, "near dedup (natural text)", natural_only(near_dedup), dataset)
    dataset = _run(log, "quality heuristics (natural text)",
                   natural_only(lambda ds: heuristic_filter(ds, num_proc=num_proc)), dataset)
    index = ContaminationIndex(eval_texts)
    dataset = _run(log, "decontaminate", lambda ds: decontaminate(ds, index, num_proc=num_proc), dataset)
    return dataset, log


# ----------------------------------------------------------------------------------------------
# A corpus with planted problems (chapter 02 walks it through every step)

BOILERPLATE_LINES = (
    "Home | About | Contact | Blog",
    "We use cookies to improve your experience. Accept all cookies",
    "Click here to subscribe to our newsletter!",
    "© 2024 Example Media Ltd. All rights reserved.",
    "Share on Facebook | Share on Twitter",
)


def _near_copy(text: str, rng: random.Random, edit_rate: float = 0.01) -> str:
    """A copy with a few words replaced or dropped: what a scraper sees as a re-post."""
    words = text.split(" ")
    for _ in range(max(1, int(len(words) * edit_rate))):
        i = rng.randrange(len(words))
        if rng.random() < 0.5:
            words[i] = rng.choice(("verily", "indeed", "perchance", "anon"))
        else:
            del words[i]
    return " ".join(words)


def planted_corpus(n_clean: int = 200, seed: int = 0, world=None):
    """A web-like corpus with known problems planted in it, as a ``datasets.Dataset``.

    Clean documents are paragraphs of Shakespeare (a few hundred words each). Planted, each with a
    label in the ``planted`` column: exact duplicates (re-cased, re-spaced copies), near-duplicates
    (a few words edited), PII added to a document, web boilerplate added to a document, junk pages,
    and leaks of the tiny world's evaluation questions with their answers. The originals come
    first, so dedup (which keeps the first of each group) removes the planted copies. The leaked
    questions come from ``world`` (default: the tiny world of the budget in force).
    """
    import datasets

    from ..text.corpus import shakespeare_texts
    from .quality import low_quality_examples
    from ..text.world import World

    rng = random.Random(f"planted-{seed}")
    paragraphs = [p.strip() for t in shakespeare_texts("train") for p in t.split("\n\n") if 600 <= len(p) <= 2500]
    k = max(1, n_clean // 10)
    n_leaks = max(1, k // 2)
    # Distinct paragraphs for the clean documents and for those that carry PII, boilerplate or a
    # leak: otherwise those would also be near-copies of a clean one, and dedup would take them.
    pool = rng.sample(paragraphs, n_clean + 2 * k + n_leaks)
    clean, with_pii, with_boilerplate, with_leak = (pool[:n_clean], pool[n_clean : n_clean + k],
                                                   pool[n_clean + k : n_clean + 2 * k], pool[n_clean + 2 * k :])
    rows = [(text, "clean") for text in clean]
    rows += [("  " + t.upper().replace(" ", "  ") + "\n", "exact_dup") for t in rng.sample(clean, k)]
    rows += [(_near_copy(t, rng), "near_dup") for t in rng.sample(clean, k)]
    pii = ("Write to {name}@example.com for tickets.", "Call me on +1 (415) 555-0132 tonight.",
           "The server at 192.168.10.24 is down.", "Card: 4111 1111 1111 1111, exp 04/27.")
    rows += [(t + "\n" + rng.choice(pii).format(name=rng.choice(("romeo", "viola", "puck"))), "pii") for t in with_pii]
    rows += [("\n".join(rng.sample(BOILERPLATE_LINES, 2)) + "\n" + t + "\n" + BOILERPLATE_LINES[3], "boilerplate")
             for t in with_boilerplate]
    rows += [(text, "junk") for text in low_quality_examples(k, seed)[0]]
    world = world or World(get_budget().world)
    world_items = [i for items in world.eval_items(20).values() for i in items]
    rows += [(t + f"\nQuiz: {item.question} Answer: {item.answer}", "leak")
             for t, item in zip(with_leak, rng.sample(world_items, n_leaks))]
    # Originals first, then the planted rows (each shuffled): "keep the first copy" keeps the original.
    clean_rows, planted_rows = rows[:n_clean], rows[n_clean:]
    rng.shuffle(clean_rows)
    rng.shuffle(planted_rows)
    rows = clean_rows + planted_rows
    return datasets.Dataset.from_dict({"text": [r[0] for r in rows], "source": ["web"] * len(rows),
                                       "planted": [r[1] for r in rows]})
