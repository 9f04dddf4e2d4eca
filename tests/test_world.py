"""The tiny world: determinism, sizes, held-out splits, worked solutions, verifiers, gold judge."""

import pytest

from minilm.core.checks import ConfigError
from minilm.core.config import WorldConfig, get_budget
from minilm.text.world import (
                               ATTRIBUTES,
                               REFUSAL,
                               World,
                               arithmetic_item,
                               gold_judge,
                               is_heldout_problem,
                               verify,
                               worked_addition,
                               worked_multiplication,
                               worked_subtraction,
                               )


@pytest.fixture(scope="module")
def world():
    return World(get_budget("smoke").world)


def test_deterministic(world):
    again = World(get_budget("smoke").world)
    assert again.people == world.people and again.documents() == world.documents()
    other = World(WorldConfig(people=30, heldout_people=10, seed=1))
    assert other.people != world.people


def test_sizes_follow_the_config(world):
    cfg = world.config
    docs = world.documents()
    assert len(world.people) == cfg.people and len(world.heldout_people) == cfg.heldout_people
    assert len(docs["biographies"]) == cfg.people * cfg.bios_per_person
    assert len(docs["arithmetic"]) == cfg.arithmetic_docs
    assert len(docs["countdown"]) == cfg.countdown_docs and len(docs["letters"]) == cfg.spelling_docs


def test_laptop_world_is_sized_for_a_small_model():
    cfg = get_budget("laptop").world
    assert 100 <= cfg.people <= 300


def test_names_are_unique_and_heldout_people_never_appear_in_text(world):
    names = [p.name for p in world.people + world.heldout_people]
    assert len(set(names)) == len(names)
    text = "\n".join(doc for docs in world.documents().values() for doc in docs)
    assert all(p.name in text for p in world.people)
    assert not any(p.name in text for p in world.heldout_people)


def test_biographies_are_paraphrases_stating_every_fact(world):
    person = world.people[0]
    bios = [b for b in world.biographies() if person.name in b][: world.config.bios_per_person]
    assert len(set(bios)) > 1  # different wordings / orders
    for bio in bios:
        for attribute in ATTRIBUTES:
            assert person.value(attribute) in bio


def test_heldout_arithmetic_never_in_training_text(world):
    text = "\n".join(world.documents()["arithmetic"])
    for item in world.arithmetic_items(100):
        a, op, b = item.meta["a"], item.meta["op"], item.meta["b"]
        assert is_heldout_problem(a, op, b)
        assert f"\n{a} {op} {b} =" not in text and f"What is {a} {op} {b}?" not in text


def test_heldout_split_is_about_a_tenth():
    problems = [(a, "+", b) for a in range(10, 100) for b in range(10, 100)]
    share = sum(is_heldout_problem(*p) for p in problems) / len(problems)
    assert 0.08 < share < 0.12


def test_asking_for_more_heldout_problems_than_exist_is_a_clear_error(world):
    with pytest.raises(ValueError, match="held-out problems exist"):
        world.arithmetic_items(500, op="+", digits=1)


@pytest.mark.parametrize("a, b", [(0, 0), (9, 9), (47, 38), (999, 1), (123, 877), (5, 995)])
def test_worked_addition_is_right(a, b):
    text = worked_addition(a, b)
    assert text.endswith(f"Answer: {a + b}")


@pytest.mark.parametrize("a, b", [(52, 17), (100, 1), (1000, 999), (90, 90), (301, 102)])
def test_worked_subtraction_digits_spell_the_answer(a, b):
    text = worked_subtraction(a, b)
    assert text.endswith(f"Answer: {a - b}")
    # every step's result is a digit of the answer, least significant first
    digits = [int(step.split("= ")[1].split(",")[0]) for step in text.split(". ")[:-1]]
    assert sum(d * 10**i for i, d in enumerate(digits)) == a - b


@pytest.mark.parametrize("a, b", [(47, 8), (999, 9), (10, 2), (305, 7)])
def test_worked_multiplication_is_right(a, b):
    assert worked_multiplication(a, b).endswith(f"Answer: {a * b}")


def test_every_solution_verifies_and_wrong_answers_do_not(world):
    for kind, items in world.eval_items(30).items():
        for item in items:
            assert verify(item, item.solution), (kind, item)
            assert not verify(item, "Answer: 123456789"), (kind, item)


@pytest.mark.parametrize("n", [0, -3])
def test_eval_items_need_at_least_one_per_kind(world, n):
    # A slice [: 0 * 4] or [: -12] would give an empty or shortened set without a word.
    with pytest.raises(ConfigError, match=f"n_per_kind={n} is out of range"):
        world.eval_items(n)


def test_fact_verifier_rejects_hedging(world):
    item = world.fact_items()[0]
    other = next(p.value(item.meta["attribute"]) for p in world.people if p.value(item.meta["attribute"]) != item.answer)
    assert verify(item, f"It is {item.answer}.")
    assert not verify(item, f"Either {item.answer} or {other}.")


def test_unknown_fact_needs_a_refusal_without_a_guess(world):
    item = world.fact_items(heldout=True)[0]
    assert item.answer == REFUSAL and verify(item, "I don't know.")
    assert not verify(item, "Lisbon, I think.")
    assert not verify(item, "I don't know, maybe Lisbon or 1975 or Oslo or a baker at Northwind Labs.")


def test_countdown_verifier_checks_numbers_and_target(world):
    item = world.countdown_items(1, "t")[0]
    assert verify(item, f"Answer: {item.answer}")
    target, numbers = item.meta["target"], item.meta["numbers"]
    assert not verify(item, f"Answer: {target}")  # the bare target uses a number not offered
    assert not verify(item, "Answer: import os")
    assert not verify(item, f"Answer: {numbers[0]} + {numbers[0]} + {numbers[0]} + {numbers[0]} + {numbers[0]}")


def test_arithmetic_verifier_reads_the_answer():
    item = arithmetic_item(47, "+", 38)
    assert verify(item, "85") and verify(item, "The sum is 85") and verify(item, "7+8=15 ... Answer: 85.")
    assert not verify(item, "Answer: 84") and not verify(item, "85 no wait 86")


def test_gold_judge_prefers_correct_then_concise_then_well_formed(world):
    item = world.fact_items()[0]
    correct = f"{item.answer}."
    rambling = f"{item.answer}. " + " ".join(f"Filler sentence number {i}." for i in range(40))
    wrong = "Nobody knows."
    assert gold_judge(item, correct) > gold_judge(item, rambling) > gold_judge(item, wrong)
    assert gold_judge(item, correct) > gold_judge(item, f"{item.answer} {item.answer}. {item.answer} {item.answer}.")
    assert 0.0 <= gold_judge(item, "") <= 1.0


def test_world_config_validation():
    with pytest.raises(ConfigError, match="people=0 is out of range"):
        WorldConfig(people=0)
    with pytest.raises(ValueError, match="distinct names"):
        World(WorldConfig(people=5000, heldout_people=10))


def test_no_eval_question_appears_in_pretraining_text(world):
    from minilm.data.contamination import ContaminationIndex, contamination_report, world_eval_texts

    index = ContaminationIndex(world_eval_texts(world, 30), n=8)
    docs = [d for docs in world.documents().values() for d in docs]
    assert contamination_report(docs, index)["contaminated_documents"] == []
    planted = docs[:5] + [docs[5] + "\n" + index.eval_texts[3] + " Answer: 42"]
    assert contamination_report(planted, index)["contaminated_documents"] == [5]
