"""Benchmark contamination: find (and remove) training documents that contain evaluation items.

If the answers to an evaluation set sit in the pretraining data, a model can score well by
memorising them, and the score says nothing about what it can do. GPT-3 (Brown et al. 2020,
appendix C) and Llama 2 flagged training documents sharing long word n-grams with test items. We do
the same with the tiny world's evaluation sets: every evaluation *question* contributes its word
n-grams (lower-cased, punctuation split off), and a training document is contaminated when it
contains all the n-grams of at least one question (the whole question appears in it).

Short questions give few n-grams, so ``n`` adapts: a question shorter than ``n`` words is matched
as one whole n-gram of its own length.

>>> index = ContaminationIndex(["What is 47 + 38?"], n=8)
>>> index.matches("Homework: what is 47 + 38? The answer is 85.")
[0]
>>> index.matches("What is 47 + 39?")
[]
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable, Sequence

from .cleaning import check_column, check_not_one_text

_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks: 'What is 47+38?' -> what, is, 47, +, 38, ?"""
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """All n-grams of a word list; a list shorter than n is its own single n-gram.

    >>> sorted(ngrams(["a", "b", "c"], 2))
    [('a', 'b'), ('b', 'c')]
    """
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


class ContaminationIndex:
    """The n-grams of evaluation texts, for fast lookup over a training corpus."""

    def __init__(self, eval_texts: Iterable[str], n: int = 8):
        # bool is an int subclass: n=True would quietly mean 1-grams.
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"n={n!r} must be an int, not {type(n).__name__}")
        if n < 1:
            raise ValueError(f"n={n} must be at least 1")
        check_not_one_text("ContaminationIndex", eval_texts)
        self.n = n
        self.eval_texts = list(eval_texts)
        self.required: list[set[tuple[str, ...]]] = []
        self.owners: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self.lengths: set[int] = set()
        for index, text in enumerate(self.eval_texts):
            grams = ngrams(words(text), n)
            self.required.append(grams)
            for gram in grams:
                self.owners[gram].append(index)
                self.lengths.add(len(gram))

    def matches(self, text: str) -> list[int]:
        """Indices of the evaluation texts fully contained (as n-grams) in ``text``."""
        tokens = words(text)
        found: dict[int, set] = defaultdict(set)
        for length in self.lengths:
            for gram in ngrams(tokens, length) if len(tokens) >= length else ():
                for owner in self.owners.get(gram, ()):
                    found[owner].add(gram)
        return sorted(i for i, grams in found.items() if grams >= self.required[i])


def contamination_report(texts: Sequence[str], index: ContaminationIndex) -> dict:
    """Which documents contain which evaluation items, with counts."""
    check_not_one_text("contamination_report", texts)
    hits = {i: index.matches(t) for i, t in enumerate(texts)}
    hits = {i: m for i, m in hits.items() if m}
    leaked = sorted({item for m in hits.values() for item in m})
    return {"documents": len(texts), "contaminated_documents": sorted(hits), "leaked_items": leaked,
            "matches": hits}


def decontaminate(dataset, index: ContaminationIndex, column: str = "text", num_proc: int | None = None):
    """A ``datasets.Dataset`` without the documents that contain an evaluation item."""
    check_column(dataset, column)
    return dataset.filter(lambda text: not index.matches(text), input_columns=column, num_proc=num_proc,
                          desc="decontaminate")


def world_eval_texts(world, n_per_kind: int = 100) -> list[str]:
    """The questions of the tiny world's evaluation sets, which must not appear in training text.

    Biographies of seen people *are* meant to be in the training data (they are the knowledge
    being tested), but they never contain the question forms, so they do not match.
    """
    texts = []
    for kind, items in world.eval_items(n_per_kind).items():
        texts.extend(item.question for item in items)
    return texts
