"""Probes: prompts in the training text's format, held-out problems only, honest scoring."""

import pytest

from minilm import probes
from minilm.config import WorldConfig
from minilm.world import ATTRIBUTES, CLOZE, World, is_heldout_problem


@pytest.fixture(scope="module")
def world():
    return World(WorldConfig(people=12, heldout_people=5))


def test_fact_prompts_end_with_the_cloze_and_show_solved_examples(world):
    rows = probes.fact_prompts(world, shots=3)
    assert len(rows) == 12 * len(ATTRIBUTES)
    for prompt, gold, attribute in rows:
        person = next(p for p in world.people if prompt.endswith(CLOZE[attribute].format(name=p.name)))
        assert person.value(attribute) == gold
        assert prompt.count(".") >= 3 and gold not in prompt.rsplit(".", 1)[-1]


def test_heldout_fact_prompts_ask_about_people_never_seen(world):
    seen = {p.name for p in world.people}
    for prompt, _, attribute in probes.fact_prompts(world, heldout=True):
        asked = prompt.rsplit(". ", 1)[-1]
        assert not any(asked.startswith(name) for name in seen)
        assert any(asked == CLOZE[attribute].format(name=p.name) for p in world.heldout_people)


@pytest.mark.parametrize("op", ["+", "-"])
def test_arithmetic_prompts_ask_only_heldout_problems(world, op):
    rows = probes.arithmetic_prompts(world, n=50, op=op, digits=2)
    assert len(rows) == 50
    for prompt, answer in rows:
        *examples, question = prompt.split("\n")
        a, _, b, _ = question.split()
        assert is_heldout_problem(int(a), op, int(b)) and 10 <= int(a) <= 99 and 10 <= int(b) <= 99
        assert answer == (int(a) + int(b) if op == "+" else int(a) - int(b))
        for line in examples:  # solved examples come from the training side and are right
            x, _, y, _, z = line.split()
            assert not is_heldout_problem(int(x), op, int(y)) and int(z) == (int(x) + int(y) if op == "+" else int(x) - int(y))


def fake_complete(answers):
    def complete(model, tokenizer, prompts, **kwargs):
        return [answers(p) for p in prompts]
    return complete


def test_scoring_counts_exact_values_only(world, monkeypatch):
    gold = {prompt: value for prompt, value, _ in probes.fact_prompts(world)}
    monkeypatch.setattr(probes, "complete", fake_complete(lambda p: " " + gold[p]))
    assert probes.probe_facts(None, None, world)["accuracy"] == 1.0
    monkeypatch.setattr(probes, "complete", fake_complete(lambda p: " " + gold[p] + " and more"))
    assert probes.probe_facts(None, None, world)["accuracy"] == 0.0
    monkeypatch.setattr(probes, "complete", fake_complete(lambda p: " Lisbon"))
    result = probes.probe_facts(None, None, world)
    assert 0.0 <= result["by_attribute"]["birthplace"] < 1 and result["by_attribute"]["birth_year"] == 0.0


def test_arithmetic_scoring_reads_the_first_integer(world, monkeypatch):
    rows = dict(probes.arithmetic_prompts(world, n=20))
    monkeypatch.setattr(probes, "complete", fake_complete(lambda p: f" {rows[p]}"))
    assert probes.probe_arithmetic(None, None, world, n=20)["accuracy"] == 1.0
    monkeypatch.setattr(probes, "complete", fake_complete(lambda p: f" {rows[p] + 1}"))
    assert probes.probe_arithmetic(None, None, world, n=20)["accuracy"] == 0.0


def test_chance_is_the_mean_of_one_over_the_number_of_values():
    assert 0.02 < probes.fact_chance() < 0.05
