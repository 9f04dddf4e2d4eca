"""Exercise 08 checked against the package: minilm.text.chat_template (the loss mask), minilm.stages.sft
(packing, knowledge-aware refusals) and minilm.models.train (the targets the loss sees).

The conversations are the SFT data of a small tiny world (facts, refusals, arithmetic with
calculator calls and their results, multi-turn), rendered with a BPE tokenizer trained on it.
"""

import numpy as np
import pytest

from minilm.text.chat_template import render_conversation
from minilm.core.config import SFTConfig
from minilm.evals.chat_eval import is_refusal
from minilm.text.world import people_split
from minilm.data.conversations import FACT_ANSWERS, conversations, knowledge_aware_conversations, knowledge_key
from minilm.stages.sft import encode_conversations
from minilm.text.tokenizer import IM_END, IM_START, PAD, RESULT_END, RESULT_START, Tokenizer
from minilm.models.train import get_batch
from minilm.text.world import ATTRIBUTES, QUESTIONS, World, WorldConfig

MIX = (("facts", 12), ("refusals", 6), ("arithmetic", 6), ("arithmetic_worked", 4), ("calculator", 6),
       ("letters", 4), ("multi_turn", 8), ("identity", 4))


@pytest.fixture(scope="module")
def world():
    return World(WorldConfig(people=8, heldout_people=4))


@pytest.fixture(scope="module")
def data(world):
    by_source = conversations(world, SFTConfig(mix=MIX))
    return [c for convs in by_source.values() for c in convs]


@pytest.fixture(scope="module")
def tokenizer(world, data):
    text = "\n".join(world.biographies() + [m["content"] for c in data for m in c])
    return Tokenizer.train(text, vocab_size=400)


def specials(tokenizer) -> dict:
    return {"im_start": tokenizer.special_id(IM_START), "im_end": tokenizer.special_id(IM_END),
            "assistant_header": tokenizer.encode("assistant\n"), "result_start": tokenizer.special_id(RESULT_START),
            "result_end": tokenizer.special_id(RESULT_END)}


def first_difference(tokenizer, ids, got, expected) -> str:
    i = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
    return (f"token {i} ({tokenizer.decode([ids[i]])!r}, after {tokenizer.decode(ids[max(0, i - 6) : i])!r}): "
            f"your mask says {got[i]}, render_conversation says {expected[i]}")


# -- the assistant-only loss mask -------------------------------------------------------------------


def test_assistant_mask_matches_render_conversation(exercise, tokenizer, data):
    system = {"role": "system", "content": "You are minilm."}
    cases = [(c, False) for c in data] + [([system, *data[0]], False), (data[1][:1], True), (data[-1], True)]
    for messages, generation_prompt in cases:
        ids, expected = render_conversation(tokenizer, messages, add_generation_prompt=generation_prompt)
        got = exercise.assistant_mask(ids, **specials(tokenizer))
        assert isinstance(got, list) and len(got) == len(ids), f"return one 0 or 1 per token ({len(ids)}), got {got!r}"
        assert got == expected, first_difference(tokenizer, ids, got, expected)


def test_assistant_mask_learns_the_end_of_turn_and_not_the_tool_result(exercise, tokenizer, data):
    calculator = next(c for c in data if "<|result_start|>" in c[-1]["content"])
    ids, _ = render_conversation(tokenizer, calculator)
    mask = exercise.assistant_mask(ids, **specials(tokenizer))
    learned = tokenizer.decode([t for t, m in zip(ids, mask) if m])
    result = calculator[-1]["content"].split("<|result_start|>")[1].split("<|result_end|>")[0]
    assert learned.endswith("<|im_end|>"), f"the assistant's <|im_end|> is learned (mask 1); you learn {learned!r}"
    assert "<|result_" not in learned and result not in learned.split("<|calc_end|>")[-1], (
        f"the tool writes the result, from <|result_start|> to <|result_end|> included: mask 0; you learn {learned!r}")
    assert "<|calc_start|>" in learned, "the calculator call itself is the model's: mask 1"


def test_assistant_mask_goes_by_the_header_not_by_the_word(exercise, tokenizer):
    # The user's message starts with the very text of the assistant header: still the user's turn.
    messages = [{"role": "user", "content": "assistant\nsay hi"}, {"role": "assistant", "content": "hi"}]
    ids, expected = render_conversation(tokenizer, messages)
    got = exercise.assistant_mask(ids, **specials(tokenizer))
    assert got == expected, first_difference(tokenizer, ids, got, expected)
    with pytest.raises(ValueError):
        exercise.assistant_mask(ids[1:], **specials(tokenizer))


# -- packing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seq_len", [40, 63, 127])
def test_pack_rows_matches_encode_conversations(exercise, tokenizer, data, seq_len):
    rendered = [render_conversation(tokenizer, c) for c in data]
    pad = tokenizer.special_id(PAD)
    inputs, targets, dropped = exercise.pack_rows(rendered, seq_len, pad)
    batches = encode_conversations(data, tokenizer, seq_len, pack=True, too_long="drop")
    expected_inputs = batches.tokens[:, :-1]
    expected_targets = np.where(batches.mask[:, 1:] == 1, batches.tokens[:, 1:], -1)
    assert dropped == batches.dropped, (
        f"seq_len={seq_len}: {batches.dropped} conversations are too long, you drop {dropped}")
    assert len(inputs) == len(batches.tokens), (
        f"seq_len={seq_len}: minilm packs {len(data) - dropped} conversations into {len(batches.tokens)} rows, "
        f"you into {len(inputs)}: a conversation joins the last row when it fits whole")
    assert all(len(row) == seq_len for row in inputs + targets), f"rows of inputs and targets have {seq_len} tokens"
    assert np.array_equal(np.array(inputs), expected_inputs), "the inputs differ from minilm's rows (row[:-1])"
    assert np.array_equal(np.array(targets), expected_targets), (
        "the targets differ: row[1:], with -1 where mask[1:] is 0 (padding included)")


def test_pack_rows_gives_the_batches_the_training_loop_draws(exercise, tokenizer, data):
    seq_len = 63
    inputs, targets, _ = exercise.pack_rows([render_conversation(tokenizer, c) for c in data], seq_len,
                                            tokenizer.special_id(PAD))
    batches = encode_conversations(data, tokenizer, seq_len)
    x, y = get_batch(batches.tokens, 16, seq_len, seed=0, step=0, mask=batches.mask)
    yours = {tuple(i): tuple(t) for i, t in zip(inputs, targets)}
    for x_row, y_row in zip(x.tolist(), y.tolist()):
        assert tuple(x_row) in yours, "a row minilm.models.train.get_batch draws is not one of your rows"
        assert yours[tuple(x_row)] == tuple(y_row), "for this row, minilm.models.train.get_batch has other targets"


def test_pack_rows_keeps_conversations_whole_and_refuses_when_nothing_fits(exercise):
    a, b, c = ([1, 2, 3], [0, 1, 1]), ([1, 4, 5, 6], [0, 0, 1, 1]), ([1, 7], [0, 1])
    inputs, targets, dropped = exercise.pack_rows([a, b, c], seq_len=5, pad_id=0)
    # a (3) + b (4) > 6: b opens a row, c (2) fits after it
    assert inputs == [[1, 2, 3, 0, 0], [1, 4, 5, 6, 1]] and dropped == 0
    assert targets == [[2, 3, -1, -1, -1], [-1, 5, 6, -1, 7]]
    with pytest.raises(ValueError):
        exercise.pack_rows([([1] * 10, [1] * 10)], seq_len=5, pad_id=0)


# -- refusal data from knowledge probes -----------------------------------------------------------------

TEMPLATES = {attribute: FACT_ANSWERS[attribute].replace("{" + attribute + "}", "{value}") for attribute in ATTRIBUTES}


def probe_counts(people) -> dict:
    """(right, samples) per fact: 1 to 5 samples, every count of right, ties included."""
    counts = {}
    for i, person in enumerate(people):
        for j, attribute in enumerate(ATTRIBUTES):
            samples = 1 + (i + j) % 5
            counts[(person.name, attribute)] = ((3 * i + 2 * j) % (samples + 1), samples)
    return counts


def test_refusal_data_answers_and_refuses_as_minilm_does(exercise, world):
    people = people_split(world)["sft_known"]
    probe = probe_counts(people)
    truth = {(p.name, a): p.value(a) for p in people for a in ATTRIBUTES}
    pairs = exercise.refusal_data(probe, truth, QUESTIONS, TEMPLATES)
    assert len(pairs) == len(probe), f"one (question, answer) per probed fact: {len(probe)}, got {len(pairs)}"
    knowledge = {knowledge_key(n, a): {"right": r, "samples": s} for (n, a), (r, s) in probe.items()}
    minilm_answers = {c[0]["content"]: c[1]["content"] for c in knowledge_aware_conversations(world, knowledge, people)}
    for ((name, attribute), (right, samples)), (question, answer) in zip(probe.items(), pairs):
        assert question == QUESTIONS[attribute].format(name=name), f"expected the question of {name}'s {attribute}"
        expected = minilm_answers[question]
        if is_refusal(expected):
            assert answer == "I don't know.", f"{right} of {samples} right is not a strict majority: refuse"
        else:
            assert answer == expected, f"{right} of {samples} right: the model knows it, answer {expected!r}"


def test_refusal_data_majority_rule_order_and_errors(exercise):
    facts = [("Ada Holm", a) for a in ATTRIBUTES]
    truth = {fact: value for fact, value in zip(facts, ["Lisbon", "1970", "baker", "Maple Studio"])}
    probe = {facts[0]: (2, 4), facts[1]: (1, 1), facts[2]: (2, 3), facts[3]: (0, 1)}
    pairs = exercise.refusal_data(probe, truth, QUESTIONS, TEMPLATES, refusal="No idea.")
    assert [answer for _, answer in pairs] == [
        "No idea.", "Ada Holm was born in the year 1970.", "Ada Holm works as a baker.", "No idea."], (
        "2 of 4 is a tie (refuse), 1 of 1 and 2 of 3 are majorities (answer), 0 of 1 is not")
    reordered = dict(reversed(list(probe.items())))
    assert exercise.refusal_data(reordered, truth, QUESTIONS, TEMPLATES, refusal="No idea.") == pairs[::-1]
    for bad in [(5, 4), (-1, 4), (0, 0)]:
        with pytest.raises(ValueError):
            exercise.refusal_data({facts[0]: bad}, truth, QUESTIONS, TEMPLATES)
    with pytest.raises(ValueError):
        exercise.refusal_data({("Nobody", "birthplace"): (1, 1)}, truth, QUESTIONS, TEMPLATES)
