"""Why a fact the model stored is not answered in chat: the same fact asked two ways, failures sorted.

A base model that completes "Ada Holm comes from" with "Lisbon" has the fact in its weights; an SFT
model asked "Where does Ada Holm come from?" may still miss it. Allen-Zhu & Li (*Physics of Language
Models, Part 3.1*, 2023) show that storing a fact and being able to extract it through questions are
different things. :func:`diagnose_extraction` asks each fact of the eval's seen people (the people
the SFT data never mentions, as :func:`minilm.evals.chat_eval.run_eval` asks them) as a chat
question and as a few-shot cloze (chapter 04's probe) of the same model, and sorts each chat answer
into one of :data:`OUTCOMES`; given the model before SFT, its cloze too, which separates a fact SFT
made the model forget from one it never stored.

>>> name_in("Paul Quintero was born in Lagos.", asked="Noor Quintero")
'Paul Quintero'
"""

from __future__ import annotations

import re

from ..text.chat_template import render_conversation
from ..text.world import FIRST_NAMES, LAST_NAMES
from .chat_eval import _replies, eval_cases, is_refusal, score
from .probes import complete_values, fact_prompts

# Each wrong chat answer gets the first outcome that fits, in this order.
OUTCOMES = {
    "right": "right",
    "refusal": "refused a fact the model was taught",
    "other_person": "named another person (a copying error)",
    "stored": "wrong value, though the cloze completes it: stored, not extracted",
    "forgotten": "wrong value, cloze wrong now but right before SFT: forgotten",
    "not_stored": "wrong value, cloze wrong too: not stored",
}
_NAME = re.compile(rf"\b(?:{'|'.join(FIRST_NAMES)}) (?:{'|'.join(LAST_NAMES)})\b")


def name_in(reply: str, asked: str) -> str | None:
    """The first person's name in ``reply`` (any first name of the world with any last name: a
    garbled copy is a name too) that is not ``asked``; None when there is none."""
    for found in _NAME.findall(reply):
        if found != asked:
            return found
    return None


def cloze_right(model, tokenizer, world, keys: list[tuple[str, str]]) -> list[bool]:
    """For each (name, attribute): does the model's greedy few-shot cloze (chapter 04's prompt)
    give the value?"""
    prompts = {(r[0].rsplit(". ", 1)[-1], r[2]): r for r in fact_prompts(world)}
    rows = [prompts[(cloze, attribute)] for cloze, attribute in keys]
    return complete_values(model, tokenizer, [p for p, _, _ in rows], [gold for _, gold, _ in rows])[1]


def diagnose_extraction(model, tokenizer, world, n: int = 200, before=None, batch_size: int = 64) -> dict:
    """Sort the chat answers to ``n`` fact questions of :func:`minilm.evals.chat_eval.eval_cases` (the
    same questions, asked the same way, greedy: its chat accuracy is run_eval's facts accuracy) by :data:`OUTCOMES`. Returns
    ``{"n", "counts": {outcome: k}, "chat_accuracy", "cloze_accuracy", "cloze_before_accuracy"
    (None without ``before``), "items": [{question, gold, reply, cloze, cloze_before, outcome}]}``.
    """
    cases = [c for c in eval_cases(world, n) if c.category == "facts"]
    prompts = [render_conversation(tokenizer, list(c.messages), add_generation_prompt=True)[0] for c in cases]
    replies = [reply for reply, _ in _replies(model, tokenizer, prompts, 48, 0.0, None, 0, True, batch_size)]
    keys = [(c.item.meta["cloze"], c.item.meta["attribute"]) for c in cases]
    cloze = cloze_right(model, tokenizer, world, keys)
    cloze_before = cloze_right(before, tokenizer, world, keys) if before is not None else [False] * len(cases)
    items, counts = [], dict.fromkeys(OUTCOMES, 0)
    for case, reply, now, then in zip(cases, replies, cloze, cloze_before):
        if score(case, reply):
            outcome = "right"
        elif is_refusal(reply):
            outcome = "refusal"
        elif name_in(reply, case.item.meta["name"]):
            outcome = "other_person"
        elif now:
            outcome = "stored"
        elif then:
            outcome = "forgotten"
        else:
            outcome = "not_stored"
        counts[outcome] += 1
        items.append({"question": case.messages[-1]["content"], "gold": case.item.answer, "reply": reply,
                      "cloze": now, "cloze_before": then if before is not None else None, "outcome": outcome})
    return {"n": len(cases), "counts": counts, "chat_accuracy": counts["right"] / max(1, len(cases)),
            "cloze_accuracy": sum(cloze) / max(1, len(cases)),
            "cloze_before_accuracy": sum(cloze_before) / max(1, len(cases)) if before is not None else None,
            "items": items}


def outcome_rows(diagnosis: dict) -> list[list[str]]:
    """One row per outcome: what it is, how many answers, their share, and an example reply.

    >>> d = {"n": 2, "counts": {"right": 1, "refusal": 1}, "items": [
    ...     {"outcome": "right", "question": "Q?", "gold": "Oslo", "reply": "Oslo."},
    ...     {"outcome": "refusal", "question": "Where?", "gold": "Lima", "reply": "I don't know."}]}
    >>> outcome_rows(d)[1]
    ['refused a fact the model was taught', '1', '50%', 'Where? → "I don\\'t know." (world: Lima) ✗']
    """
    rows = []
    for outcome, count in diagnosis["counts"].items():
        example = next((i for i in diagnosis["items"] if i["outcome"] == outcome), None)
        shown = (f"{example['question']} → \"{example['reply'].strip()}\" (world: {example['gold']}) "
                 f"{'✓' if outcome == 'right' else '✗'}") if example else "-"
        rows.append([OUTCOMES[outcome], str(count), f"{count / max(1, diagnosis['n']):.0%}", shown])
    return rows


OUTCOME_COLUMNS = ("chat answer", "answers", "share", "example")
