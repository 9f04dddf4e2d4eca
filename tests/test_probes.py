"""Probes: prompts in the training text's format, held-out problems only, honest scoring."""

import pytest

from minilm.evals import probes
from minilm.core.checks import ConfigError
from minilm.core.config import WorldConfig
from minilm.text.world import ATTRIBUTES, CLOZE, VALUES, World, is_heldout_problem


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


# -- prompting styles (chapter 06) ---------------------------------------------------------------


@pytest.mark.parametrize("task", list(probes.PROMPT_TASKS))
def test_every_style_asks_the_same_questions(world, task):
    by_style = {style: probes.styled_prompts(world, task, style, n=12) for style in probes.PROMPT_STYLES}
    items = [item for _, item in by_style["zero-shot"]]
    assert len(items) == 12 and all([i for _, i in rows] == items for rows in by_style.values())
    for (question_prompt, item), (cot_prompt, _), (few_prompt, _), (zero_prompt, _) in zip(
            by_style["zero-shot question"], by_style["few-shot CoT"], by_style["few-shot"], by_style["zero-shot"]):
        assert question_prompt == f"Q: {item.question}\nA:"
        assert cot_prompt.endswith("\n\n" + question_prompt) and cot_prompt.count("Answer:") == 1
        assert few_prompt.endswith(zero_prompt) and len(few_prompt) > len(zero_prompt)
        if task == "facts":
            assert zero_prompt == item.meta["cloze"] and item.meta["name"] not in cot_prompt[: -len(question_prompt)]
        else:
            a, op, b = item.meta["a"], item.meta["op"], item.meta["b"]
            assert zero_prompt == f"{a} {op} {b} =" and is_heldout_problem(a, op, b)


def test_worked_examples_are_right_and_from_the_training_side(world):
    from minilm.text.world import final_answer

    for prompt, _ in probes.styled_prompts(world, "addition_3digit", "few-shot CoT", n=20, shots=2):
        examples = prompt.split("\n\n")[:-1]
        assert len(examples) == 2
        for example in examples:
            a, _, b = example.split("?")[0].removeprefix("Q: What is ").split()
            assert not is_heldout_problem(int(a), "+", int(b)) and final_answer(example) == str(int(a) + int(b))


def test_fact_solutions_state_the_fact_then_answer(world):
    person = world.people[0]
    for attribute in ATTRIBUTES:
        solution = probes.fact_solution(person, attribute)
        assert solution.startswith(CLOZE[attribute].format(name=person.name))
        assert solution.endswith(f"Answer: {person.value(attribute)}")


def test_probe_styles_scores_worked_and_short_answers(world, monkeypatch):
    stops = []

    def answers(right):
        def complete(model, tokenizer, prompts, max_new_tokens, stop):
            stops.append(stop)
            out = []
            for prompt in prompts:
                item = gold[prompt]
                answer = item.answer if right else wrong(item)
                worked = f"{item.solution.rsplit('Answer:', 1)[0]}Answer: {answer}" if item.kind != "fact" else \
                    f"{item.meta['cloze']} {answer}. Answer: {answer}"
                out.append(f" {worked}" if prompt.endswith("A:") else f" {answer}")
            return out
        return complete

    def wrong(item):
        if item.kind == "fact":
            return next(v for v in VALUES[item.meta["attribute"]] if v != item.answer)
        return str(int(item.answer) + 1)

    gold = {p: item for task in ("addition_2digit", "facts") for style in probes.PROMPT_STYLES
            for p, item in probes.styled_prompts(world, task, style, n=8)}

    class Tok:
        def encode(self, text):
            return text.split()

    for right, expected in ((True, 1.0), (False, 0.0)):
        monkeypatch.setattr(probes, "complete", answers(right))
        results = probes.probe_styles(None, Tok(), world, tasks=("addition_2digit", "facts"), n=8)
        assert {s: r["accuracy"] for s, r in results["facts"].items()} == dict.fromkeys(probes.PROMPT_STYLES, expected)
        assert {s: r["accuracy"] for s, r in results["addition_2digit"].items()} == dict.fromkeys(probes.PROMPT_STYLES, expected)
    assert stops[:8] == ["\n"] * 4 + ["\n", ".", ".", "\n"]  # a fact written as a sentence ends at its full stop


@pytest.mark.parametrize("kwargs, message", [
    (dict(task="division", style="few-shot"), "task='division'"),
    (dict(task="facts", style="one-shot"), "style='one-shot'"),
    (dict(task="facts", style="zero-shot", shots=2), "shows no examples"),
])
def test_bad_prompting_arguments_are_named(world, kwargs, message):
    with pytest.raises(ValueError, match=message):
        probes.styled_prompts(world, **kwargs)



def test_the_report_card_needs_at_least_one_problem_per_probe(world):
    # n=0 would mean "no limit" to the fact probes (limit=0) and zero sums: refused instead.
    with pytest.raises(ConfigError, match="n=0 is out of range"):
        probes.probe_base_model(None, None, world, n=0)

@pytest.mark.parametrize("gap", [0, 40, 120])
def test_recall_prompts_hold_the_answer_only_in_a_never_seen_persons_biography(world, small_tokenizer, gap):
    rows = probes.recall_prompts(world, small_tokenizer, n=12, gap=gap)
    heldout = {p.name: p for p in world.heldout_people}
    for prompt, gold, distance in rows:
        # The needle: the first person's biography, one sentence per attribute.
        sentences = prompt.split(". ")
        needle = ". ".join(sentences[: len(ATTRIBUTES)]) + "."
        person = next(p for name, p in heldout.items() if sentences[0].count(name))
        attribute = next(a for a in ATTRIBUTES if prompt.endswith(CLOZE[a].format(name=person.name)))
        assert gold == person.value(attribute) and gold in needle
        tail = prompt[len(needle) + 1:]
        assert tail.count(person.name) == 1 and tail.endswith(person.name + CLOZE[attribute].split("}")[1])
        assert distance == len(small_tokenizer.encode(" " + tail)) >= gap


def test_recall_distances_grow_with_the_gap(world, small_tokenizer):
    means = [sum(d for *_, d in probes.recall_prompts(world, small_tokenizer, 8, gap)) / 8 for gap in (0, 50, 100)]
    assert means == sorted(means) and means[2] - means[0] >= 100
