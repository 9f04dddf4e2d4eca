"""The evaluation harness: one chat suite over the tiny world, used by chapter 08 and every later one.

Each case is a one-turn conversation, asked the way a chat model is asked::

    <|im_start|>user
    Where was Ada Holm born?<|im_end|><|im_start|>assistant
                                                     -> "Ada Holm was born in Lisbon.<|im_end|>"

and the reply (generated in batches, greedy by default, until ``<|im_end|>``) is scored with the
world's verifier (:func:`minilm.text.world.verify`). The categories:

- ``facts``: an attribute of a person seen in pretraining but never in SFT data
(:func:`minilm.text.world.people_split`).
- ``unknown``: the same questions about a held-out person, never seen at all: the right answer is
  a refusal that names no value. A reply that names a value is a *hallucination*
  (``hallucination_rate``); a refusal on ``facts`` is a *false refusal* (``false_refusal_rate``).
- ``arithmetic``: a held-out problem asked directly; ``arithmetic_worked``: the same problems with
  :data:`minilm.text.world.WORKED_SUFFIX`, right only when the final ``Answer:`` is.
- ``letters``: letter counting and spelling of held-out words.
- ``format`` (over every reply): the turn ended with ``<|im_end|>`` within ``max_new_tokens``, the
  reply is not empty and has the category's form (see :func:`well_formed`).

Accuracy comes with a Wilson 95% interval (:func:`wilson_interval`): 50 questions pin a rate down
to about +-13 points, which is the honest resolution of a comparison at this size. With several
samples per case, pass@k (:func:`pass_at_k`, Chen et al. 2021) says how often at least one of k
tries is right.

>>> wilson_interval(5, 10)
(0.2366, 0.7634)
>>> pass_at_k(n=4, c=1, k=2)
0.5
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass

from ..core.checks import check_count
from ..core.tables import markdown_table
from ..models.checkpoint import check_same_vocabulary
from ..text.chat_template import render_conversation
from ..text.world import _REFUSAL_PATTERN, VALUES, WORKED_SUFFIX, Item, people_split, verify

CATEGORIES = ("facts", "unknown", "arithmetic", "arithmetic_worked", "letters")


# ----------------------------------------------------------------------------------------------
# Statistics


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a rate of ``successes`` out of ``n`` (95% for z = 1.96).

    Unlike the textbook interval p +- z sqrt(p(1-p)/n), it never leaves [0, 1] and is not zero
    wide at 0/n or n/n (Wilson 1927; Brown, Cai & DasGupta 2001 recommend it for small n).
    Rounded to 4 places. With ``n = 0`` nothing was measured: (0, 1).

    >>> wilson_interval(0, 10), wilson_interval(10, 10)
    ((0.0, 0.2775), (0.7225, 1.0))
    >>> wilson_interval(50, 100)
    (0.4038, 0.5962)
    >>> wilson_interval(11, 10)
    Traceback (most recent call last):
    ...
    ValueError: successes=11 must be between 0 and n=10
    """
    check_count("n", n, 0)
    check_count("successes", successes, 0)
    if successes > n:
        raise ValueError(f"successes={successes} must be between 0 and n={n}")
    if not z > 0:
        raise ValueError(f"z={z!r} must be > 0 (1.96 for a 95% interval)")
    if n == 0:
        return 0.0, 1.0
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of ``k`` samples is right, from ``n`` samples of which ``c`` were.

    The unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on
    Code"): 1 - C(n-c, k) / C(n, k), the share of the k-subsets of the n samples that hold at
    least one right one. Drawing exactly k samples and checking would be far noisier.

    >>> pass_at_k(10, 0, 5), pass_at_k(10, 10, 1), pass_at_k(10, 3, 1)
    (0.0, 1.0, 0.3)
    >>> round(pass_at_k(10, 3, 5), 4)
    0.9167
    >>> pass_at_k(4, 1, 5)
    Traceback (most recent call last):
    ...
    ValueError: k=5 must be between 1 and n=4 (the samples drawn)
    """
    check_count("n", n)
    check_count("c", c, 0)
    check_count("k", k)
    if c > n:
        raise ValueError(f"c={c} must be between 0 and n={n} (right samples among those drawn)")
    if k > n:
        raise ValueError(f"k={k} must be between 1 and n={n} (the samples drawn)")
    if n - c < k:  # every k-subset holds a right sample
        return 1.0
    total = math.comb(n, k)
    return (total - math.comb(n - c, k)) / total  # one division of exact integers: no rounding on the way


def rate(successes: int, n: int) -> dict:
    """A measured rate with its Wilson 95% interval, as the results store it.

    >>> rate(3, 4)
    {'accuracy': 0.75, 'correct': 3, 'n': 4, 'ci_low': 0.3006, 'ci_high': 0.9544}
    """
    low, high = wilson_interval(successes, n)
    return {"accuracy": round(successes / n, 4) if n else 0.0, "correct": successes, "n": n,
            "ci_low": low, "ci_high": high}


# ----------------------------------------------------------------------------------------------
# The cases


@dataclass(frozen=True)
class EvalCase:
    """One question: its category, the world item that scores it, and the conversation asked."""

    category: str
    item: Item
    messages: tuple[dict, ...]


def _ask(category: str, item: Item, suffix: str = "") -> EvalCase:
    return EvalCase(category, item, ({"role": "user", "content": item.question + suffix},))


def eval_cases(world, n: int) -> list[EvalCase]:
    """Up to ``n`` cases per category, in the order of :data:`CATEGORIES`; deterministic.

    Facts and unknowns are spread over the ``eval_*`` people and their attributes (a seeded
    shuffle); a small world holds fewer than ``n`` of them, and then all of them are asked (the
    result's ``n`` says how many). Arithmetic (direct and worked: the same problems) and letters
    come from the held-out side of the world's fixed split.

    >>> from minilm.text.world import World, WorldConfig
    >>> cases = eval_cases(World(WorldConfig(people=4, heldout_people=2)), n=3)
    >>> [(c.category, len([d for d in cases if d.category == c.category])) for c in cases[::3]]
    [('facts', 3), ('unknown', 3), ('arithmetic', 3), ('arithmetic_worked', 3), ('letters', 3)]
    >>> cases[9].messages[0]["content"] == cases[6].item.question + WORKED_SUFFIX
    True
    """
    check_count("n", n)
    split = people_split(world)
    cases = []
    for category, heldout, people in (("facts", False, split["eval_known"]), ("unknown", True, split["eval_unknown"])):
        names = {p.name for p in people}
        items = [i for i in world.fact_items(heldout=heldout) if i.meta["name"] in names]
        random.Random(f"eval-{category}-{world.config.seed}").shuffle(items)
        cases += [_ask(category, item) for item in items[:n]]
    arithmetic = world.arithmetic_items(n)
    cases += [_ask("arithmetic", item) for item in arithmetic]
    cases += [_ask("arithmetic_worked", item, WORKED_SUFFIX) for item in arithmetic]
    cases += [_ask("letters", item) for item in world.letter_items(n, "eval-letters", heldout=True)]
    return cases


# ----------------------------------------------------------------------------------------------
# Scoring one reply

_NUMBER = re.compile(r"\d")
_SPELLED = re.compile(r"\b[a-z](?:-[a-z])+\b", re.I)


def names_value(item: Item, reply: str) -> bool:
    """Does ``reply`` name a possible value of the asked attribute (a city, a year, ...)?

    >>> from minilm.text.world import Item
    >>> item = Item("unknown_fact", "Where was Ida Falk born?", "I don't know.", "", {"attribute": "birthplace"})
    >>> names_value(item, "Ida Falk was born in Oslo."), names_value(item, "I don't know.")
    (True, False)
    """
    return any(re.search(rf"\b{re.escape(v)}\b", reply) for v in VALUES[item.meta["attribute"]])


def is_refusal(reply: str) -> bool:
    """Does ``reply`` say it does not know (the world's refusal phrases)?

    >>> is_refusal("I don't know."), is_refusal("In 1970.")
    (True, False)
    """
    return bool(_REFUSAL_PATTERN.search(reply))


def score(case: EvalCase, reply: str) -> bool:
    """Is ``reply`` right? Worked arithmetic also needs a final ``Answer:``.

    >>> from minilm.text.world import arithmetic_item
    >>> case = _ask("arithmetic_worked", arithmetic_item(47, "+", 38), WORKED_SUFFIX)
    >>> score(case, "7 + 8 = 15, write 5 carry 1. 4 + 3 + 1 = 8, write 8. Answer: 85"), score(case, "85")
    (True, False)
    """
    if case.category == "arithmetic_worked" and "Answer:" not in reply:
        return False
    return verify(case.item, reply)


def well_formed(case: EvalCase, reply: str, ended: bool) -> bool:
    """Format compliance: the turn ended (``<|im_end|>``), the reply is not empty, and it has the
    category's form: facts and unknowns one line; arithmetic and letter counts a number; worked
    arithmetic an ``Answer:``; spelling a hyphen-spelled word (``d-o-g``).

    >>> from minilm.text.world import arithmetic_item
    >>> case = _ask("arithmetic", arithmetic_item(47, "+", 38))
    >>> well_formed(case, "It is 85.", ended=True), well_formed(case, "It is 85.", ended=False)
    (True, False)
    >>> well_formed(case, "I like sums.", ended=True)
    False
    """
    text = reply.strip()
    if not ended or not text:
        return False
    if case.category in ("facts", "unknown"):
        return "\n" not in text
    if case.category == "arithmetic_worked":
        return "Answer:" in text
    if case.item.kind == "spelling":
        return bool(_SPELLED.search(text))
    return bool(_NUMBER.search(text))


# ----------------------------------------------------------------------------------------------
# Running the suite


def _pass_ks(samples: int) -> list[int]:
    """1, the powers of two below ``samples``, and ``samples``: where pass@k is reported.

    >>> _pass_ks(1), _pass_ks(10)
    ([1], [1, 2, 4, 8, 10])
    """
    ks, k = [], 1
    while k < samples:
        ks.append(k)
        k *= 2
    return ks + [samples]


def _replies(model, tokenizer, prompts: list[list[int]], max_new_tokens: int, temperature: float, top_k,
             seed: int, tools: bool, batch_size: int) -> list[tuple[str, bool]]:
    """(reply text, ended with <|im_end|>) for each prompt, decoded in batches of similar lengths."""
    from ..inference.generate import CalculatorTool, generate
    from ..text.tokenizer import ENDOFTEXT, IM_END

    end = tokenizer.special_id(IM_END)
    stops = (end, tokenizer.special_id(ENDOFTEXT))  # a base model may end a document instead of a turn
    tool = CalculatorTool(tokenizer) if tools else None
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # little padding per batch
    out: list[tuple[str, bool]] = [("", False)] * len(prompts)
    for first in range(0, len(order), batch_size):
        chunk = order[first : first + batch_size]
        new = generate(model, [prompts[i] for i in chunk], max_new_tokens, temperature=temperature, top_k=top_k,
                       stop_ids=stops, seed=seed + first, tools=tool)
        for i, ids in zip(chunk, new):
            ended = bool(ids) and ids[-1] == end
            out[i] = (tokenizer.decode(ids[:-1] if ids and ids[-1] in stops else ids), ended)
    return out


def check_settings(n: int, samples: int, temperature: float, top_k=None, max_new_tokens: int = 48) -> None:
    """Raise a ValueError naming the first bad eval setting (before any model is loaded).

    >>> check_settings(n=50, samples=4, temperature=0.8)
    >>> check_settings(n=50, samples=4, temperature=0.0)
    Traceback (most recent call last):
    ...
    ValueError: samples=4 needs a temperature > 0 (e.g. 0.8): greedy replies would all be the same
    """
    from ..inference.generate import check_sampling

    check_count("n", n)
    check_count("samples", samples)
    check_count("max_new_tokens", max_new_tokens)
    check_sampling(temperature, top_k)
    if samples > 1 and temperature == 0:
        raise ValueError(f"samples={samples} needs a temperature > 0 (e.g. 0.8): greedy replies would all be the same")


def run_eval(model, tokenizer, world, n: int = 50, samples: int = 1, temperature: float = 0.0, top_k=None,
             max_new_tokens: int = 48, seed: int = 0, tools: bool = True, progress: bool = False,
             batch_size: int = 64) -> dict:
    """Ask every case of :func:`eval_cases` and score the replies. A JSON-serialisable dict:

    - ``categories``: for each of :data:`CATEGORIES`, ``accuracy``, ``correct``, ``n``, ``ci_low``,
      ``ci_high`` (Wilson 95%), ``with_tool`` (replies that called the calculator) and, when
      ``samples > 1``, ``pass_at_k`` ({"1": ..., "samples": ...}; keys are strings, as in JSON).
    - ``format``: the same fields for format compliance over every reply.
    - ``hallucination_rate``: share of ``unknown`` replies that name a value of the asked
      attribute; ``false_refusal_rate``: share of ``facts`` replies that refuse; ``rates`` holds
      both with counts and intervals.
    - ``examples``: the first two (question, gold answer, reply) of each category.
    - ``config`` (the settings) and ``seconds``.

    Accuracy, format and the rates score the first sample of each case (greedy by default), so
    their intervals are over independent cases. With ``samples > 1`` (``temperature > 0``) each
    case is sampled ``samples`` times, each time with other seeds; pass@k uses them all
    (pass@1 is then the mean accuracy over samples: the first sample's expectation, less noisy).
    ``tools`` answers the model's calculator calls (:class:`minilm.inference.generate.CalculatorTool`); the
    replies keep the calls, so a right number written by the calculator counts.
    """
    from ..text.tokenizer import CALC_START

    check_settings(n, samples, temperature, top_k, max_new_tokens)
    check_count("batch_size", batch_size)
    check_same_vocabulary(model, tokenizer)
    started = time.perf_counter()
    cases = eval_cases(world, n)
    prompts = [render_conversation(tokenizer, list(c.messages), add_generation_prompt=True)[0] for c in cases]
    runs = []  # runs[s][i]: (reply, ended) of sample s of case i
    for s in range(samples):
        # Batches of sample s are seeded seed + 10^6 s + (their first case): no two draws share a seed.
        runs.append(_replies(model, tokenizer, prompts, max_new_tokens, temperature, top_k, seed + 10**6 * s, tools,
                             batch_size))
        if progress:
            print(f"eval: sample {s + 1}/{samples}, {len(cases)} cases, {time.perf_counter() - started:.0f} s")
    right = [[score(c, runs[s][i][0]) for s in range(samples)] for i, c in enumerate(cases)]
    first = [reply for reply, _ in runs[0]]

    categories = {}
    for category in CATEGORIES:
        index = [i for i, c in enumerate(cases) if c.category == category]
        entry = rate(sum(right[i][0] for i in index), len(index))
        entry["with_tool"] = sum(CALC_START in first[i] for i in index)
        if samples > 1 and index:
            # Mean over cases of each case's estimate; keys are strings, as JSON writes them.
            entry["pass_at_k"] = {str(k): round(sum(pass_at_k(samples, sum(right[i]), k) for i in index) / len(index),
                                                4) for k in _pass_ks(samples)}
        categories[category] = entry
    formatted = rate(sum(well_formed(c, *runs[0][i]) for i, c in enumerate(cases)), len(cases))
    unknown = [i for i, c in enumerate(cases) if c.category == "unknown"]
    facts = [i for i, c in enumerate(cases) if c.category == "facts"]
    hallucination = rate(sum(names_value(cases[i].item, first[i]) for i in unknown), len(unknown))
    false_refusal = rate(sum(is_refusal(first[i]) for i in facts), len(facts))
    examples = {category: [[c.messages[-1]["content"], c.item.answer, first[i]]
                           for i, c in enumerate(cases) if c.category == category][:2] for category in CATEGORIES}
    return {
        "categories": categories,
        "format": formatted,
        "hallucination_rate": hallucination["accuracy"],
        "false_refusal_rate": false_refusal["accuracy"],
        "rates": {"hallucination": hallucination, "false_refusal": false_refusal},
        "examples": examples,
        "config": {"n": n, "samples": samples, "temperature": temperature, "top_k": top_k,
                   "max_new_tokens": max_new_tokens, "seed": seed, "tools": tools},
        "seconds": round(time.perf_counter() - started, 2),
    }


# ----------------------------------------------------------------------------------------------
# Tables


def _percent_with_interval(entry: dict) -> str:
    return f"{entry['accuracy']:.0%} [{entry['ci_low']:.0%}, {entry['ci_high']:.0%}]"


def eval_rows(results: dict[str, dict]) -> list[list[str]]:
    """Rows of the comparison table: one per category (then format, hallucination and false
    refusals; pass@k where sampled), one column per model in ``results`` ({model name: run_eval
    result}). Cells read ``accuracy [95% interval]``; the first cell names the row and its size.

    >>> entry = {"accuracy": 0.5, "correct": 1, "n": 2, "ci_low": 0.0945, "ci_high": 0.9055}
    >>> result = {"categories": {c: entry for c in CATEGORIES}, "format": entry,
    ...           "rates": {"hallucination": entry, "false_refusal": entry}}
    >>> eval_rows({"sft": result})[0]
    ['facts (n=2)', '50% [9%, 91%]']
    """
    if not results:
        raise ValueError("results is empty: give {model name: run_eval(...) result}")
    models = list(results.values())

    def row(label: str, entries: list[dict]) -> list[str]:
        sizes = {e["n"] for e in entries}
        if len(sizes) == 1:
            return [f"{label} (n={sizes.pop()})"] + [_percent_with_interval(e) for e in entries]
        return [label] + [f"{_percent_with_interval(e)} of {e['n']}" for e in entries]

    rows = [row(category, [m["categories"][category] for m in models]) for category in CATEGORIES]
    rows.append(row("format", [m["format"] for m in models]))
    rows.append(row("hallucination (unknown, lower is better)", [m["rates"]["hallucination"] for m in models]))
    rows.append(row("false refusal (facts, lower is better)", [m["rates"]["false_refusal"] for m in models]))
    for category in CATEGORIES:
        ks = [max(m["categories"][category].get("pass_at_k", {"1": 0}), key=int) for m in models]
        if any(k != "1" for k in ks):
            rows.append([f"{category} pass@k"] + [
                f"pass@{k} {m['categories'][category]['pass_at_k'][k]:.0%}" if k != "1" else "-"
                for k, m in zip(ks, models)])
    return rows


def format_eval_table(results: dict[str, dict]) -> str:
    """The markdown table of :func:`eval_rows`, with the model names as column headers."""
    return markdown_table(["category", *results], eval_rows(results))
