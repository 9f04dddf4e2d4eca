"""Few-shot probes of a base model: what it knows (tiny-world facts) and can compute (arithmetic).

A base model is a document simulator: it continues text. So a probe writes the beginning of a
document in the style of the training text, a few solved examples followed by an unsolved one,
and reads the greedy continuation:

    Ada Holm comes from Lisbon. Ivo Stone comes from Oslo. Kai Falk comes from      -> " Kyoto"
    31 + 45 = 76
    12 + 70 = 82
    47 + 38 =                                                                      -> " 85"

Facts of *seen* people measure memorisation; facts of *held-out* people (never in the training
text) should sit near chance, 1 / (number of possible values), which is what later chapters on
hallucination and refusal start from. Arithmetic problems are drawn from the held-out tenth of
all problems, so a correct answer is computed, not remembered.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from typing import Sequence

from ..core.checks import check_count, check_range
from ..data.conversations import is_known, knowledge_key
from ..inference.generate import complete
from ..text.chat_template import render_conversation
from ..text.world import (ATTRIBUTES, CLOZE, QUESTIONS, VALUES, Item, World, arithmetic_item, is_heldout_problem, verify)
from .chat_eval import wilson_interval

_INTEGER = re.compile(r"-?\d+")


def fact_prompts(world: World, heldout: bool = False, shots: int = 3, limit: int | None = None,
                 seed: int = 0) -> list[tuple[str, str, str]]:
    """(prompt, gold value, attribute) for each fact of the seen (or held-out) people.

    The solved examples are facts of other *seen* people with the same attribute, so the prompt
    shows the format the answer should take.
    """
    rng = random.Random(f"fact-probe-{seed}")
    people = world.heldout_people if heldout else world.people
    rows = []
    for person in people:
        others = [p for p in world.people if p.name != person.name]
        for attribute in ATTRIBUTES:
            examples = [f"{CLOZE[attribute].format(name=p.name)} {p.value(attribute)}." for p in rng.sample(others, shots)]
            prompt = " ".join(examples + [CLOZE[attribute].format(name=person.name)])
            rows.append((prompt, person.value(attribute), attribute))
    return rows[:limit] if limit else rows


def fact_chance() -> float:
    """Accuracy of guessing uniformly among each attribute's possible values (mean over attributes)."""
    return sum(1 / len(VALUES[a]) for a in ATTRIBUTES) / len(ATTRIBUTES)


def complete_values(model, tokenizer, prompts: Sequence[str], golds: Sequence[str]) -> tuple[list[str], list[bool]]:
    """Greedy completions of few-shot cloze prompts, up to the sentence's end, and whether each is
    exactly its gold value: how every cloze probe here (facts, in-context recall) and the extraction
    diagnosis (:mod:`minilm.evals.extraction`) score an answer."""
    answers = complete(model, tokenizer, list(prompts), max_new_tokens=8, stop=".")
    return answers, [a.strip() == gold for a, gold in zip(answers, golds)]


def at_chance(probe: dict) -> bool:
    """Does the 95% Wilson interval of a probe's accuracy (its ``right`` answers) contain its
    ``chance`` rate?

    >>> at_chance({"right": [1] + [0] * 29, "chance": 0.04}), at_chance({"right": [1] * 10, "chance": 0.04})
    (True, False)
    """
    low, high = wilson_interval(sum(probe["right"]), len(probe["right"]))
    return low <= probe["chance"] <= high


def probe_facts(model, tokenizer, world: World, heldout: bool = False, shots: int = 3,
                limit: int | None = None) -> dict:
    """Greedy few-shot completion of facts; a completion is right when it is exactly the value.

    Returns accuracy overall and per attribute, the number of facts probed, chance, a few
    examples (prompt tail, gold, answer) and ``right``: 1 or 0 per fact, in a fixed order, so that
    two models probed alike compare question by question (:mod:`minilm.evals.intervals`).
    """
    rows = fact_prompts(world, heldout, shots, limit)
    answers, right = complete_values(model, tokenizer, [p for p, _, _ in rows], [gold for _, gold, _ in rows])
    by_attribute = {}
    for attribute in ATTRIBUTES:
        hits = [r for r, (_, _, a) in zip(right, rows) if a == attribute]
        by_attribute[attribute] = sum(hits) / len(hits) if hits else 0.0
    examples = [(p.rsplit(". ", 1)[-1], gold, a.strip()) for (p, gold, _), a in list(zip(rows, answers))[:4]]
    return {"accuracy": sum(right) / max(1, len(right)), "n": len(right), "by_attribute": by_attribute,
            "chance": fact_chance(), "examples": examples, "right": [int(r) for r in right]}


def recall_prompts(world: World, tokenizer, n: int = 100, gap: int = 64, shots: int = 2,
                   seed: int = 0) -> list[tuple[str, str, int]]:
    """(prompt, gold value, tokens from the end of the needle to the answer) for ``n`` in-context
    recall questions: a biography of a *never-seen* person (the needle), then at least ``gap`` tokens
    of other people's biographies, then ``shots`` solved facts of seen people and the needle's cloze.

    The model cannot know the answer from its weights, only read it from the prompt, and only if
    its context reaches back to the needle: a task that needs a long window (chapter 07).
    """
    check_count("n", n)
    check_range("gap", gap, 0, 10**6)
    rng = random.Random(f"recall-{gap}-{seed}")
    rows = []
    for i in range(n):
        person = world.heldout_people[i % len(world.heldout_people)]
        attribute = rng.choice(ATTRIBUTES)
        filler, filler_tokens = [], 0
        while filler_tokens < gap:
            sentence = world.biography(rng.choice(world.people), rng)
            filler.append(sentence)
            filler_tokens += len(tokenizer.encode(" " + sentence))
        others = rng.sample(world.people, shots)
        solved = [f"{CLOZE[attribute].format(name=p.name)} {p.value(attribute)}." for p in others]
        tail = " ".join(filler + solved + [CLOZE[attribute].format(name=person.name)])
        rows.append((world.biography(person, rng) + " " + tail, person.value(attribute),
                     len(tokenizer.encode(" " + tail))))
    return rows


def probe_recall(model, tokenizer, world: World, n: int = 100, gap: int = 64, shots: int = 2) -> dict:
    """Greedy answers to :func:`recall_prompts`: accuracy, the mean distance (tokens) from the
    needle to the answer, and the longest prompt (tokens). A model whose context is shorter than
    the distance sees only the prompt's last ``block_size`` tokens and can only guess (chance as
    for facts, :func:`fact_chance`)."""
    rows = recall_prompts(world, tokenizer, n, gap, shots)
    _, right = complete_values(model, tokenizer, [p for p, _, _ in rows], [gold for _, gold, _ in rows])
    return {"accuracy": sum(right) / len(right), "n": len(right), "right": [int(r) for r in right],
            "distance": sum(d for _, _, d in rows) / len(rows),
            "longest_prompt": max(len(tokenizer.encode(p)) for p, _, _ in rows), "chance": fact_chance()}


def arithmetic_prompts(world: World, n: int = 200, op: str = "+", digits: int = 2, shots: int = 3,
                       seed: int = 0) -> list[tuple[str, int]]:
    """(prompt, answer) for ``n`` held-out problems, after ``shots`` solved training-side ones.

    The format is the one of the direct equations in the pretraining text: ``a + b = c``.
    """
    rng = random.Random(f"arith-probe-{op}-{digits}-{seed}")
    low, high = 10 ** (digits - 1), 10**digits - 1

    def operands():
        a, b = rng.randint(low, high), rng.randint(low, high)
        return (max(a, b), min(a, b)) if op == "-" else (a, b)

    rows = []
    for item in world.arithmetic_items(n, op=op, digits=digits):
        examples = []
        while len(examples) < shots:
            a, b = operands()
            if not is_heldout_problem(a, op, b):
                examples.append(f"{a} {op} {b} = {arithmetic_item(a, op, b).answer}")
        a, b = item.meta["a"], item.meta["b"]
        rows.append(("\n".join(examples + [f"{a} {op} {b} ="]), int(item.answer)))
    return rows


def probe_arithmetic(model, tokenizer, world: World, n: int = 200, op: str = "+", digits: int = 2,
                     shots: int = 3) -> dict:
    """Accuracy of greedy few-shot answers to held-out problems (the first integer must be right),
    with ``right``: 1 or 0 per problem, in a fixed order."""
    rows = arithmetic_prompts(world, n, op, digits, shots)
    answers = complete(model, tokenizer, [p for p, _ in rows], max_new_tokens=digits + 4, stop="\n")
    right = []
    for answer, (_, gold) in zip(answers, rows):
        found = _INTEGER.search(answer)
        right.append(found is not None and int(found.group()) == gold)
    examples = [(p.rsplit("\n", 1)[-1], gold, a.strip()) for (p, gold), a in list(zip(rows, answers))[:4]]
    return {"accuracy": sum(right) / max(1, len(right)), "n": len(right), "examples": examples,
            "right": [int(r) for r in right]}


def probe_base_model(model, tokenizer, world: World, n: int = 200) -> dict:
    """The base-model report card: facts of seen and held-out people, 2-digit addition and more."""
    check_range("n", n, 1, 10**6)
    return {
        "facts_seen": probe_facts(model, tokenizer, world, limit=n * len(ATTRIBUTES) // 2),
        "facts_heldout": probe_facts(model, tokenizer, world, heldout=True, limit=n * len(ATTRIBUTES) // 2),
        "addition_2digit": probe_arithmetic(model, tokenizer, world, n, "+", 2),
        "subtraction_2digit": probe_arithmetic(model, tokenizer, world, n, "-", 2),
        "addition_3digit": probe_arithmetic(model, tokenizer, world, n, "+", 3),
    }


# ----------------------------------------------------------------------------------------------
# Prompting styles (chapter 06): the same held-out questions asked four ways.
#
#   zero-shot question   Q: What is 47 + 38?\nA:            (a question, as a user would ask it)
#   zero-shot            47 + 38 =                         (the start of a training-text line)
#   few-shot             31 + 45 = 76\n12 + 70 = 82\n47 + 38 =   (solved examples first: chapter 04's probes)
#   few-shot CoT         Q: What is 31 + 45?\nA: <worked solution> Answer: 76\n\nQ: What is 47 + 38?\nA:
#
# Facts go the same way, with "Ada Holm comes from" as the training-text form and, as the worked
# solution, the sentence that states the fact followed by "Answer: <value>".

PROMPT_STYLES = ("zero-shot question", "zero-shot", "few-shot", "few-shot CoT")
PROMPT_TASKS = {"addition_2digit": ("+", 2), "addition_3digit": ("+", 3), "subtraction_2digit": ("-", 2),
                "facts": (None, None)}
DEFAULT_SHOTS = {"zero-shot question": 0, "zero-shot": 0, "few-shot": 3, "few-shot CoT": 1}


def qa_prompt(question: str, examples: list[tuple[str, str]] = ()) -> str:
    """``Q: <question>\nA:`` after solved ``examples`` (question, answer), in the frame of the
    training text's worked problems.

    >>> print(qa_prompt("What is 2 + 3?", [("What is 1 + 1?", "1 + 1 = 2. Answer: 2")]))
    Q: What is 1 + 1?
    A: 1 + 1 = 2. Answer: 2
    <BLANKLINE>
    Q: What is 2 + 3?
    A:
    """
    return "\n\n".join([f"Q: {q}\nA: {a}" for q, a in examples] + [f"Q: {question}\nA:"])


def fact_solution(person, attribute: str) -> str:
    """A worked answer to a fact question: the sentence the fact is read in, then the answer.

    >>> from minilm.text.world import Person
    >>> fact_solution(Person("Ada Holm", "Lisbon", "1970", "baker", "Maple Studio"), "birthplace")
    'Ada Holm comes from Lisbon. Answer: Lisbon'
    """
    value = person.value(attribute)
    return f"{CLOZE[attribute].format(name=person.name)} {value}. Answer: {value}"


def _worked_examples(world: World, task: str, item: Item, shots: int, rng: random.Random) -> list[tuple[str, str]]:
    """``shots`` (question, worked solution) pairs: training-side problems, or facts of other seen people."""
    op, digits = PROMPT_TASKS[task]
    if op is None:
        attribute = item.meta["attribute"]
        others = rng.sample([p for p in world.people if p.name != item.meta["name"]], shots)
        return [(QUESTIONS[attribute].format(name=p.name), fact_solution(p, attribute)) for p in others]
    low, high = 10 ** (digits - 1), 10**digits - 1
    examples = []
    while len(examples) < shots:
        a, b = rng.randint(low, high), rng.randint(low, high)
        a, b = (max(a, b), min(a, b)) if op == "-" else (a, b)
        if not is_heldout_problem(a, op, b):
            example = arithmetic_item(a, op, b)
            examples.append((example.question, example.solution))
    return examples


def styled_prompts(world: World, task: str, style: str, n: int = 60, shots: int | None = None,
                   seed: int = 0) -> list[tuple[str, Item]]:
    """(prompt, item) for ``n`` questions of ``task`` asked in ``style`` (see the table above).

    Arithmetic questions are held-out problems (never in the training text); fact questions are
    the first ``n`` facts of seen people. ``shots`` defaults to 3 for few-shot and 1 for few-shot
    CoT (a worked solution is about 40 tokens: one fills most of a 64-token context).
    """
    if task not in PROMPT_TASKS:
        raise ValueError(f"task={task!r} is not one of {list(PROMPT_TASKS)}")
    if style not in PROMPT_STYLES:
        raise ValueError(f"style={style!r} is not one of {PROMPT_STYLES}")
    shots = DEFAULT_SHOTS[style] if shots is None else shots
    if style.startswith("zero-shot") and shots:
        raise ValueError(f"style={style!r} shows no examples; got shots={shots}")
    op, digits = PROMPT_TASKS[task]
    items = world.fact_items()[:n] if op is None else world.arithmetic_items(n, op=op, digits=digits)
    if style in ("zero-shot", "few-shot"):  # the training text's own form, as chapter 04's probes write it
        rows = fact_prompts(world, shots=shots, limit=n, seed=seed) if op is None else \
            arithmetic_prompts(world, n, op, digits, shots, seed)
        return [(row[0], item) for row, item in zip(rows, items)]
    rng = random.Random(f"styled-{task}-{seed}")
    return [(qa_prompt(item.question, _worked_examples(world, task, item, shots, rng)), item) for item in items]


def answer_stop(task: str, style: str) -> str:
    """Where an answer ends: a fact in sentence form at its full stop, everything else at the line's end."""
    return "." if task == "facts" and style in ("zero-shot", "few-shot") else "\n"


def probe_styles(model, tokenizer, world: World, tasks=tuple(PROMPT_TASKS), styles=PROMPT_STYLES, n: int = 60,
                 max_new_tokens: int = 48) -> dict:
    """Accuracy of greedy answers for every (task, style), scored with :func:`minilm.text.world.verify`
    (a worked answer counts by its ``Answer:``, a short one by its number or value).

    Returns ``{task: {style: {"accuracy", "n", "answer_tokens", "examples"}}}``; ``answer_tokens`` is
    the mean length of the answers in tokens (how much the model wrote, i.e. thought).
    """
    results: dict = {}
    for task in tasks:
        for style in styles:
            rows = styled_prompts(world, task, style, n)
            answers = complete(model, tokenizer, [p for p, _ in rows], max_new_tokens=max_new_tokens,
                               stop=answer_stop(task, style))
            right = [verify(item, answer) for answer, (_, item) in zip(answers, rows)]
            lengths = [len(tokenizer.encode(a)) for a in answers]
            results.setdefault(task, {})[style] = {
                "accuracy": sum(right) / max(1, len(right)), "n": len(right),
                "answer_tokens": sum(lengths) / max(1, len(lengths)),
                "examples": [(item.question, item.answer, a.strip()) for a, (_, item) in list(zip(answers, rows))[:3]],
            }
    return results


# ----------------------------------------------------------------------------------------------
# What a model knows before SFT (Llama 3), and who it says it is after
#
# SFT data that states a fact the model cannot recall teaches it to *assert* things it does not
# know: hallucination, in the format of a confident answer. Llama 3 (section 4.3.6) probes the
# model first: it asks questions about its pretraining data, samples several answers, has a judge
# compare them with the source, and writes refusals where the answers are consistently wrong.
# Here the questions are cloze prompts in the base model's own format (fact_prompts above), the
# judge is the world's verifier (minilm.text.world.verify), and the rule is a strict majority
# (minilm.data.conversations.is_known).

# Asked only when measuring (never in the SFT data): does the identity generalise to new wordings?
IDENTITY_PROBES = ("Who am I talking to?", "What is your name, please?", "Can you tell me who you are?",
                   "What kind of program are you?", "Do you have a name?", "Which model are you?")


def probe_knowledge(model, tokenizer, world, people, samples: int = 4, temperature: float = 0.7, seed: int = 0,
                    shots: int = 3, max_new_tokens: int = 8) -> dict[str, dict]:
    """Ask the model (before SFT) every attribute of every one of ``people``, ``samples`` times.

    The question is the fact's cloze prompt (``item.meta["cloze"]`` of
    :meth:`minilm.text.world.World.fact_items`, e.g. "Ada Holm comes from") after ``shots`` solved
    examples about other people, as :func:`minilm.evals.probes.fact_prompts` writes it: the document
    format a base model continues. Each sample (``temperature``, seeded ``seed + s``) is judged by
    :func:`minilm.text.world.verify`: right when it names the true value and no other. A fact is
    *known* when a strict majority of the samples is right (:func:`is_known`); Llama 3 writes
    refusals where sampled answers are consistently wrong, which is the same split for 4 samples
    up to ties, which count as not known here.

    Returns ``{"Name|attribute": {"name", "attribute", "value", "right", "samples", "known",
    "answers"}}`` (JSON-friendly; ``answers`` are the sampled completions), in the order of
    ``people`` and :data:`minilm.text.world.ATTRIBUTES`. ``people`` may be seen or held-out people.
    """
    from ..inference.generate import check_sampling, complete
    from .probes import fact_prompts
    from ..text.world import verify

    check_count("samples", samples)
    check_sampling(temperature)
    people = list(people)
    if not people:
        raise ValueError("people is empty: give the people to probe (e.g. people_split(world)['sft_known'])")
    names = {p.name for p in people}
    unknown = sorted(names - {p.name for p in world.people + world.heldout_people})
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a person of this world")
    rows = {}  # (name, attribute) -> (prompt, judge item)
    for heldout in (False, True):
        group = world.heldout_people if heldout else world.people
        if not names & {p.name for p in group}:
            continue
        for (prompt, value, attribute), item in zip(fact_prompts(world, heldout, shots, seed=seed),
                                                   world.fact_items(heldout)):
            if not prompt.endswith(item.meta["cloze"]) or item.meta["attribute"] != attribute:
                raise RuntimeError("minilm.evals.probes.fact_prompts and World.fact_items list facts in different orders")
            if item.meta["name"] in names:
                # Held-out items are "unknown_fact" (the right reply is a refusal); the probe asks
                # whether the model names the true value, so every fact is judged as a "fact".
                rows[(item.meta["name"], attribute)] = (prompt, replace(item, kind="fact", answer=value))
    keys = [(p.name, a) for p in people for a in ATTRIBUTES]
    prompts = [rows[key][0] for key in keys]
    answers = [complete(model, tokenizer, prompts, max_new_tokens=max_new_tokens, stop=".",
                        temperature=temperature, seed=seed + s) for s in range(samples)]
    knowledge = {}
    for i, (name, attribute) in enumerate(keys):
        item = rows[(name, attribute)][1]
        said = [answers[s][i].strip() for s in range(samples)]
        right = sum(verify(item, text) for text in said)
        knowledge[knowledge_key(name, attribute)] = {
            "name": name, "attribute": attribute, "value": item.answer, "right": right, "samples": samples,
            "known": is_known(right, samples), "answers": said}
    return knowledge


def knowledge_summary(knowledge: dict) -> dict:
    """How many probed facts are known (answered in SFT) and unknown (refused), overall and per attribute.

    >>> knowledge_summary({"A|birthplace": {"attribute": "birthplace", "right": 3, "samples": 4},
    ...                    "A|employer": {"attribute": "employer", "right": 1, "samples": 4}})["known_share"]
    0.5
    """
    by_attribute: dict[str, dict] = {}
    for key, entry in knowledge.items():
        attribute = entry.get("attribute", key.rsplit("|", 1)[-1])
        counts = by_attribute.setdefault(attribute, {"facts": 0, "known": 0, "unknown": 0})
        known = is_known(entry["right"], entry["samples"])
        counts["facts"] += 1
        counts["known" if known else "unknown"] += 1
    facts = sum(c["facts"] for c in by_attribute.values())
    known = sum(c["known"] for c in by_attribute.values())
    return {"facts": facts, "known": known, "unknown": facts - known,
            "known_share": round(known / facts, 4) if facts else 0.0, "by_attribute": by_attribute}


REFUSAL_COLUMNS = ("attribute", "facts probed", "known (answered)", "unknown (refused)", "known share")


def refusal_rows(knowledge: dict) -> list[list[str]]:
    """A table of :func:`knowledge_summary`: one row per attribute, then ``all`` (columns :data:`REFUSAL_COLUMNS`).

    >>> refusal_rows({"A|employer": {"attribute": "employer", "right": 1, "samples": 4}})
    [['employer', '1', '0', '1', '0%'], ['all', '1', '0', '1', '0%']]
    """
    summary = knowledge_summary(knowledge)
    rows = [[attribute, str(c["facts"]), str(c["known"]), str(c["unknown"]), f"{100 * c['known'] / c['facts']:.0f}%"]
            for attribute, c in summary["by_attribute"].items()]
    rows.append(["all", str(summary["facts"]), str(summary["known"]), str(summary["unknown"]),
                 f"{100 * summary['known_share']:.0f}%"])
    return rows


def names_itself(reply: str) -> bool:
    """Does a reply to "who are you?" name the model (``minilm``)?

    >>> names_itself("I'm minilm, a tiny model."), names_itself("I don't know.")
    (True, False)
    """
    return "minilm" in reply.lower()


def identity_rate(model, tokenizer, questions: Sequence[str] = IDENTITY_PROBES, max_new_tokens: int = 24) -> dict:
    """How often the model names itself (``minilm``) when asked who it is in words SFT never used.

    Greedy replies; returns the share, the count and the (question, reply) pairs.
    """
    from ..inference.generate import generate
    from ..text.tokenizer import IM_END

    end = tokenizer.special_id(IM_END)
    prompts = [render_conversation(tokenizer, [{"role": "user", "content": q}], add_generation_prompt=True)[0]
               for q in questions]
    outputs = generate(model, prompts, max_new_tokens, stop_ids=(end,))
    replies = [tokenizer.decode([t for t in ids if t != end]) for ids in outputs]
    named = sum(names_itself(r) for r in replies)
    return {"rate": round(named / max(1, len(replies)), 4), "named": named, "n": len(replies),
            "replies": [[q, r] for q, r in zip(questions, replies)]}
