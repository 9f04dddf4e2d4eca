"""The evaluation harness: statistics against references, scoring against known replies, a real run."""

import itertools
import json
import math
import re

import pytest
import torch

from minilm.text.chat_template import parse_conversation
from minilm.core.config import WorldConfig
from minilm.evals.chat_eval import CATEGORIES, eval_cases, eval_rows, format_eval_table, pass_at_k, run_eval, wilson_interval
from minilm.stages.sft import eval_checkpoint, eval_path
from minilm.text.world import WORKED_SUFFIX, people_split
from minilm.models.gpt import GPT, GPTConfig
from minilm.text.tokenizer import CALC_END, CALC_START, IM_END, Tokenizer
from minilm.text.world import World

WORLD = WorldConfig(people=8, heldout_people=4, bios_per_person=1, arithmetic_docs=4, countdown_docs=1,
                    spelling_docs=1)


@pytest.fixture(scope="module")
def world():
    return World(WORLD)


@pytest.fixture(scope="module")
def tokenizer(world):
    """A small BPE trained on the world's text and the eval's questions (all special tokens included)."""
    texts = [doc for docs in world.documents().values() for doc in docs]
    texts += [c.messages[0]["content"] for c in eval_cases(world, 5)]
    return Tokenizer.train(texts + ["I don't know. Answer: user assistant"], vocab_size=400)


# ----------------------------------------------------------------------------------------------
# Statistics


def wilson_reference(successes, n, z=1.96):
    """The Wilson interval as the root of (p - phat)^2 = z^2 p (1 - p) / n: the quadratic formula."""
    phat = successes / n
    a, b, c = 1 + z * z / n, -(2 * phat + z * z / n), phat * phat
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


@pytest.mark.parametrize("successes, n, expected", [
    (0, 10, (0.0, 0.2775)), (5, 10, (0.2366, 0.7634)), (10, 10, (0.7225, 1.0)), (1, 50, (0.0035, 0.1050)),
])
def test_wilson_matches_known_values(successes, n, expected):
    assert wilson_interval(successes, n) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("successes, n", [(0, 1), (3, 7), (17, 50), (49, 50), (500, 1000)])
def test_wilson_is_the_root_of_the_score_equation(successes, n):
    low, high = wilson_interval(successes, n)
    ref_low, ref_high = wilson_reference(successes, n)
    assert low == pytest.approx(ref_low, abs=1e-4) and high == pytest.approx(ref_high, abs=1e-4)
    assert low <= successes / n <= high


def test_wilson_narrows_with_more_data():
    widths = [wilson_interval(n // 2, n)[1] - wilson_interval(n // 2, n)[0] for n in (10, 100, 1000)]
    assert widths[0] > widths[1] > widths[2] and widths[2] < 0.07


@pytest.mark.parametrize("successes, n, message", [
    (-1, 10, "successes=-1"), (3, -2, "n=-2"), (11, 10, "between 0 and n=10"), (1.5, 10, "successes=1.5"),
])
def test_wilson_rejects_bad_counts(successes, n, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        wilson_interval(successes, n)


def brute_force_pass_at_k(n, c, k):
    """Share of all k-subsets of n samples (the first c right) that hold a right one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_equals_brute_force_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_1_is_the_share_right_and_grows_with_k():
    assert pass_at_k(20, 7, 1) == pytest.approx(7 / 20)
    values = [pass_at_k(20, 3, k) for k in range(1, 21)]
    assert all(a <= b for a, b in zip(values, values[1:])) and values[-1] == 1.0


@pytest.mark.parametrize("args, message", [
    ((0, 0, 1), "n=0"), ((5, 6, 1), "c=6"), ((5, 2, 0), "k=0"), ((5, 2, 6), "k=6"), ((5, -1, 1), "c=-1"),
])
def test_pass_at_k_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        pass_at_k(*args)


# ----------------------------------------------------------------------------------------------
# The cases


def test_people_split_is_disjoint_and_covers_everyone(world):
    split = people_split(world)
    names = {k: {p.name for p in v} for k, v in split.items()}
    assert names["sft_known"] | names["eval_known"] == {p.name for p in world.people}
    assert names["sft_unknown"] | names["eval_unknown"] == {p.name for p in world.heldout_people}
    assert not names["sft_known"] & names["eval_known"] and not names["sft_unknown"] & names["eval_unknown"]


def test_eval_cases_ask_only_eval_people_and_heldout_problems(world):
    from minilm.text.world import is_heldout_problem

    cases = eval_cases(world, 6)
    split = people_split(world)
    by = {c: [x for x in cases if x.category == c] for c in CATEGORIES}
    assert all(len(by[c]) == 6 for c in CATEGORIES)
    eval_known = {p.name for p in split["eval_known"]}
    assert {x.item.meta["name"] for x in by["facts"]} <= eval_known
    assert len({x.item.meta["name"] for x in by["facts"]}) > 1  # spread over people, not one person's facts
    assert {x.item.meta["name"] for x in by["unknown"]} <= {p.name for p in split["eval_unknown"]}
    assert all(is_heldout_problem(x.item.meta["a"], x.item.meta["op"], x.item.meta["b"]) for x in by["arithmetic"])
    assert [x.item for x in by["arithmetic_worked"]] == [x.item for x in by["arithmetic"]]
    assert all(x.messages[0]["content"].endswith(WORKED_SUFFIX) for x in by["arithmetic_worked"])
    assert cases == eval_cases(world, 6)  # deterministic
    assert len([x for x in eval_cases(world, 100) if x.category == "unknown"]) == 2 * 4  # all there are
    with pytest.raises(ValueError, match="n=0"):
        eval_cases(world, 0)


# ----------------------------------------------------------------------------------------------
# Scoring against known replies


def scripted_generate(tokenizer, answer_for):
    """A stand-in for minilm.inference.generate.generate: each prompt gets ``answer_for(question)`` (text, or
    (text, ended)), written as tokens followed by <|im_end|> when the turn ends."""
    end = tokenizer.special_id(IM_END)

    def generate(model, prompts, max_new_tokens, stop_ids=(), tools=None, **sampling):
        out = []
        for ids in prompts:
            question = parse_conversation(tokenizer, ids)[0]["content"]
            reply = answer_for(question)
            text, ended = reply if isinstance(reply, tuple) else (reply, True)
            out.append(tokenizer.encode(text, allowed_special="all") + ([end] if ended else []))
        return out

    return generate


def test_scores_known_replies_exactly(world, tokenizer, monkeypatch):
    """A scripted 'model': the numbers are known in advance, so a scoring bug fails this test."""
    cases = eval_cases(world, 4)
    gold = {c.messages[0]["content"]: c for c in cases}
    facts = [c for c in cases if c.category == "facts"]
    unknown = [c for c in cases if c.category == "unknown"]
    arithmetic = [c for c in cases if c.category == "arithmetic"]
    letters = [c for c in cases if c.category == "letters"]

    def some_value(item):  # a possible value of the asked attribute: naming it is a guess
        from minilm.text.world import VALUES

        return VALUES[item.meta["attribute"]][0]

    def answer_for(question):
        case = gold[question]
        i, item = [c for c in cases if c.category == case.category].index(case), case.item
        if case.category == "facts":  # 3 right (one of them hedged by a refusal), 1 false refusal
            return [f"It is {item.answer}.", f"{item.answer}.", f"I'm not sure, maybe {item.answer}.",
                    "I don't know."][i]
        if case.category == "unknown":  # a refusal; wrong but no value named; a guess; a refusal naming a value
            return ["I do not know that person.", "That person is nice.", f"{some_value(item)}.",
                    f"I don't know, maybe {some_value(item)}."][i]
        if case.category == "arithmetic":  # right, right via a calculator call, wrong, right but never ended
            a, op, b = item.meta["a"], item.meta["op"], item.meta["b"]
            return [item.answer, f"{CALC_START}{a}{op}{b}{CALC_END}<|result_start|>{item.answer}<|result_end|>",
                    str(int(item.answer) + 1), (item.answer, False)][i]
        if case.category == "arithmetic_worked":  # worked and right; right number without "Answer:"; wrong Answer:
            return [item.solution, item.answer, f"steps. Answer: {int(item.answer) + 1}", "Answer: none"][i]
        return item.solution if i < 2 else "no idea"  # letters: 2 right, 2 without the form

    monkeypatch.setattr("minilm.inference.generate.generate", scripted_generate(tokenizer, answer_for))
    model = GPT(GPTConfig.modern(vocab_size=tokenizer.vocab_size, n_layer=1, n_embd=16, n_head=2, block_size=64))
    result = run_eval(model, tokenizer, world, n=4)
    got = {c: (result["categories"][c]["correct"], result["categories"][c]["n"]) for c in CATEGORIES}
    # facts: "I'm not sure, maybe X" names the right value only: verify counts it.
    assert got == {"facts": (3, 4), "unknown": (1, 4), "arithmetic": (3, 4), "arithmetic_worked": (1, 4),
                   "letters": (2, 4)}
    assert result["categories"]["arithmetic"]["with_tool"] == 1
    assert result["hallucination_rate"] == 0.5  # two replies name a value (three are wrong)
    assert result["false_refusal_rate"] == 0.5  # "I'm not sure, maybe X" and "I don't know."
    # format: facts 4 and unknown 4 (one line each), arithmetic 3 (the reply never ended is not
    # compliant; a wrong number is), worked 3 (three have "Answer:"), letters 2.
    assert result["format"]["correct"] == 4 + 4 + 3 + 3 + 2 and result["format"]["n"] == 20
    for entry in [*result["categories"].values(), result["format"]]:
        assert entry["ci_low"] <= entry["accuracy"] <= entry["ci_high"]
        assert (entry["ci_low"], entry["ci_high"]) == wilson_interval(entry["correct"], entry["n"])
    assert result["examples"]["facts"][0] == [facts[0].messages[0]["content"], facts[0].item.answer,
                                              f"It is {facts[0].item.answer}."]
    assert result["examples"]["arithmetic"][1][2].startswith(CALC_START)
    assert len(unknown) == len(arithmetic) == len(letters) == 4
    json.dumps(result)  # JSON-serialisable as it is


def test_pass_at_k_from_scripted_samples(world, tokenizer, monkeypatch):
    """Sample s of every case is right when s is even: 3 of 6 right, so pass@1 = 1/2, pass@2 = 1 - C(3,2)/C(6,2)
    = 0.8, and pass@4 = 1 (any 4 of the 6 hold a right one)."""
    import minilm.inference.generate as engine

    cases = eval_cases(world, 2)
    gold = {c.messages[0]["content"]: c.item for c in cases}
    calls = []

    def generate(model, prompts, max_new_tokens, seed=None, **kwargs):
        calls.append(seed)
        right = (seed // 10**6) % 2 == 0  # run_eval seeds sample s with seed + 10^6 s (+ batch offset)
        return scripted_generate(tokenizer, lambda q: gold[q].solution if right else "no")(model, prompts,
                                                                                           max_new_tokens)

    monkeypatch.setattr(engine, "generate", generate)
    model = GPT(GPTConfig.modern(vocab_size=tokenizer.vocab_size, n_layer=1, n_embd=16, n_head=2, block_size=64))
    result = run_eval(model, tokenizer, world, n=2, samples=6, temperature=1.0)
    assert len(set(calls)) == 6  # a different seed per sample
    for category in ("arithmetic_worked", "letters"):
        entry = result["categories"][category]
        assert entry["pass_at_k"] == {"1": 0.5, "2": 0.8, "4": 1.0, "6": 1.0}
        assert entry["accuracy"] == 1.0  # the first sample (seed 0) is a right one
    assert "pass@6" in format_eval_table({"sampled": result})


def test_bad_settings_are_clear_errors(world, tokenizer):
    model = GPT(GPTConfig.modern(vocab_size=tokenizer.vocab_size, n_layer=1, n_embd=16, n_head=2, block_size=64))
    with pytest.raises(ValueError, match="greedy replies would all be the same"):
        run_eval(model, tokenizer, world, n=2, samples=4, temperature=0.0)
    with pytest.raises(ValueError, match="samples=0"):
        run_eval(model, tokenizer, world, n=2, samples=0)
    with pytest.raises(ValueError, match="n=-1"):
        run_eval(model, tokenizer, world, n=-1)
    other = GPT(GPTConfig.modern(vocab_size=tokenizer.vocab_size + 1, n_layer=1, n_embd=16, n_head=2, block_size=64))
    with pytest.raises(ValueError, match="not trained together"):
        run_eval(other, tokenizer, world, n=2)


# ----------------------------------------------------------------------------------------------
# A real model, end to end


def test_run_eval_end_to_end_on_a_tiny_random_model(world, tokenizer):
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=tokenizer.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=64))
    result = run_eval(model, tokenizer, world, n=5, max_new_tokens=12)
    assert set(result["categories"]) == set(CATEGORIES)
    for category, entry in result["categories"].items():
        assert entry["n"] == 5 and 0 <= entry["accuracy"] <= 1
        assert entry["ci_low"] <= entry["accuracy"] <= entry["ci_high"]
        assert len(result["examples"][category]) == 2 and all(len(e) == 3 for e in result["examples"][category])
    assert result["format"]["n"] == 25 and 0 <= result["hallucination_rate"] <= 1
    assert result["config"]["tools"] is True and result["seconds"] < 30
    assert json.loads(json.dumps(result)) == result
    assert result == {**run_eval(model, tokenizer, world, n=5, max_new_tokens=12), "seconds": result["seconds"]}
    sampled = run_eval(model, tokenizer, world, n=3, samples=2, temperature=1.0, max_new_tokens=6, tools=False)
    assert all(set(e["pass_at_k"]) == {"1", "2"} for e in sampled["categories"].values())
    table = format_eval_table({"random": result, "sampled": sampled})
    assert table.count("\n") == 2 + len(CATEGORIES) + 3 - 1 + len(CATEGORIES)  # header, rule, rows, pass@k rows
    assert eval_rows({"random": result})[0][0] == "facts (n=5)"


def test_eval_checkpoint_writes_json_next_to_it(isolated_runs, world, tokenizer):
    from minilm.stages.tokenizer import path as tokenizer_path
    from minilm.core.config import get_budget
    from minilm.models.checkpoint import CheckpointError, save_checkpoint

    budget = get_budget("smoke").with_overrides(world=WORLD)
    tokenizer.save(tokenizer_path(budget))
    torch.manual_seed(1)
    model = GPT(GPTConfig.modern(vocab_size=tokenizer.vocab_size, n_layer=1, n_embd=16, n_head=2, block_size=64))
    path = save_checkpoint(isolated_runs / "sft-test.pt", model, None, 0, {}, [])
    result = eval_checkpoint(path, budget, n=2, max_new_tokens=4)
    assert eval_path(path) == isolated_runs / "sft-test.eval.json"
    assert json.loads(eval_path(path).read_text()) == result and result["budget"] == "smoke"
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        eval_checkpoint(isolated_runs / "missing.pt", budget)
    other = GPT(GPTConfig.modern(vocab_size=300, n_layer=1, n_embd=16, n_head=2, block_size=64))
    with pytest.raises(ValueError, match="vocab_size=300"):
        eval_checkpoint(save_checkpoint(isolated_runs / "other.pt", other, None, 0, {}, []), budget, n=2)


def test_plot_eval_bars_draws_every_category_with_intervals(world, tokenizer, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from minilm.plots.sft import plot_eval_bars, plot_refusals

    entry = {"accuracy": 0.5, "correct": 2, "n": 4, "ci_low": 0.15, "ci_high": 0.85}
    results = {name: {"categories": {c: entry for c in CATEGORIES}, "format": entry,
                      "rates": {"hallucination": entry, "false_refusal": entry}} for name in ("base", "sft")}
    ax = plot_eval_bars(results)
    assert len(ax.patches) == 2 * (len(CATEGORIES) + 1)
    assert ax.get_title() and "%" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["base", "sft"]
    ax = plot_refusals(results)
    assert len(ax.patches) == 4 and ax.get_title()
