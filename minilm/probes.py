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

from .generate import complete
from .world import ATTRIBUTES, CLOZE, VALUES, World, arithmetic_item, is_heldout_problem

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


def probe_facts(model, tokenizer, world: World, heldout: bool = False, shots: int = 3,
                limit: int | None = None) -> dict:
    """Greedy few-shot completion of facts; a completion is right when it is exactly the value.

    Returns accuracy overall and per attribute, the number of facts probed, chance, and a few
    examples (prompt tail, gold, answer).
    """
    rows = fact_prompts(world, heldout, shots, limit)
    answers = complete(model, tokenizer, [p for p, _, _ in rows], max_new_tokens=8, stop=".")
    right = [a.strip() == gold for a, (_, gold, _) in zip(answers, rows)]
    by_attribute = {}
    for attribute in ATTRIBUTES:
        hits = [r for r, (_, _, a) in zip(right, rows) if a == attribute]
        by_attribute[attribute] = sum(hits) / len(hits) if hits else 0.0
    examples = [(p.rsplit(". ", 1)[-1], gold, a.strip()) for (p, gold, _), a in list(zip(rows, answers))[:4]]
    return {"accuracy": sum(right) / max(1, len(right)), "n": len(right), "by_attribute": by_attribute,
            "chance": fact_chance(), "examples": examples}


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
    """Accuracy of greedy few-shot answers to held-out problems (the first integer must be right)."""
    rows = arithmetic_prompts(world, n, op, digits, shots)
    answers = complete(model, tokenizer, [p for p, _ in rows], max_new_tokens=digits + 4, stop="\n")
    right = []
    for answer, (_, gold) in zip(answers, rows):
        found = _INTEGER.search(answer)
        right.append(found is not None and int(found.group()) == gold)
    examples = [(p.rsplit("\n", 1)[-1], gold, a.strip()) for (p, gold), a in list(zip(rows, answers))[:4]]
    return {"accuracy": sum(right) / max(1, len(right)), "n": len(right), "examples": examples}


def probe_base_model(model, tokenizer, world: World, n: int = 200) -> dict:
    """The base-model report card: facts of seen and held-out people, 2-digit addition and more."""
    return {
        "facts_seen": probe_facts(model, tokenizer, world, limit=n * len(ATTRIBUTES) // 2),
        "facts_heldout": probe_facts(model, tokenizer, world, heldout=True, limit=n * len(ATTRIBUTES) // 2),
        "addition_2digit": probe_arithmetic(model, tokenizer, world, n, "+", 2),
        "subtraction_2digit": probe_arithmetic(model, tokenizer, world, n, "-", 2),
        "addition_3digit": probe_arithmetic(model, tokenizer, world, n, "+", 3),
    }
