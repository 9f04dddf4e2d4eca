"""The extraction diagnosis: chat and cloze of the same facts, every wrong answer sorted once."""

import pytest
import torch

from minilm.evals import extraction
from minilm.evals.chat_eval import run_eval
from minilm.evals.extraction import OUTCOMES, diagnose_extraction, name_in, outcome_rows


@pytest.mark.parametrize("reply, found", [
    ("Noor Quintero was born in Lagos.", None),  # the asked person only
    ("Paul Quintero was born in Lagos.", "Paul Quintero"),  # a garbled copy
    ("She works for Starling Air.", None),  # an employer is not a person
    ("I don't know.", None),
])
def test_name_in_finds_another_persons_name(reply, found):
    assert name_in(reply, asked="Noor Quintero") == found


def test_the_diagnosis_sorts_every_fact_question_once(midtrained):
    from minilm.core.config import get_budget
    from minilm.text.world import World

    _, model, tokenizer, _ = midtrained
    world = World(get_budget("smoke").world.__class__(people=8, heldout_people=4, bios_per_person=2))
    torch.manual_seed(0)
    d = diagnose_extraction(model, tokenizer, world, n=6, before=model)
    assert d["n"] == len(d["items"]) == 6 and sum(d["counts"].values()) == 6 and set(d["counts"]) == set(OUTCOMES)
    # The chat answers are run_eval's, on the same questions.
    assert d["chat_accuracy"] == run_eval(model, tokenizer, world, n=6)["categories"]["facts"]["accuracy"]
    # The same model before and after: nothing can have been forgotten.
    assert d["counts"]["forgotten"] == 0 and d["cloze_before_accuracy"] == d["cloze_accuracy"]
    assert len(outcome_rows(d)) == len(OUTCOMES)


def test_each_outcome_is_chosen_in_order(monkeypatch):
    """Stand-in replies and clozes: each rule fires where the earlier ones do not."""
    from minilm.core.config import WorldConfig
    from minilm.evals.chat_eval import eval_cases
    from minilm.text.world import World

    world = World(WorldConfig(people=8, heldout_people=2))
    cases = [c for c in eval_cases(world, 6) if c.category == "facts"]
    other = next(p.name for p in world.people if p.name != cases[2].item.meta["name"])
    wrong = lambda case: "Nowhere 1234."  # noqa: E731
    replies = [cases[0].item.answer + ".", "I don't know.", f"{other} did.", wrong(cases[3]), wrong(cases[4]),
               wrong(cases[5])]
    monkeypatch.setattr(extraction, "render_conversation", lambda *a, **k: ([1, 2], [0, 0]))
    monkeypatch.setattr(extraction, "_replies", lambda *a, **k: [(r, True) for r in replies])
    clozes = iter([[True, True, True, True, False, False], [True, True, True, True, True, False]])
    monkeypatch.setattr(extraction, "cloze_right", lambda *a: next(clozes))
    d = diagnose_extraction(None, None, world, n=6, before=object())
    assert [i["outcome"] for i in d["items"]] == list(OUTCOMES)
