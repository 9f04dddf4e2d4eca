"""Mid-training: tool-use data and its loss mask, the mixes, and the mid-trained model artifact."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from minilm.stages import midtrain as midtrain_module
from minilm.stages.midtrain import artifact as midtrain_artifact, path as midtrain_model_path
from minilm.stages.pretrain import path as base_model_path
from minilm.core.checks import ConfigError
from minilm.core.config import MidtrainConfig, WorldConfig, get_budget
from minilm.inference.generate import calculator_result
from minilm.stages.midtrain import (ToolMaskedGPT, comparison_rows, encode_documents,
                                    mask_tool_results, mixture_tokens, probe_tool_arithmetic, tool_rows)
from minilm.models.gpt import GPT, GPTConfig
from minilm.text.tokenizer import CALC_END, CALC_START, ENDOFTEXT, RESULT_END, RESULT_START, Tokenizer
from minilm.text.world import World, is_heldout_problem, tool_call_text, tool_prompt

torch.set_num_threads(1)
SPECIALS = (CALC_START, CALC_END, RESULT_START, RESULT_END)


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.train("12 + 30 = 42. Calculator practice.\n" * 20, vocab_size=300)


@pytest.fixture(scope="module")
def world():
    return World(WorldConfig(people=6, heldout_people=3, items_per_doc=5))


def result_positions(ids: list[int], tokenizer) -> set[int]:
    """Reference: indices of the tool's tokens (result start, value, result end) in a whole stream."""
    start, end = tokenizer.special_id(RESULT_START), tokenizer.special_id(RESULT_END)
    inside, positions = False, set()
    for i, token in enumerate(ids):
        inside = inside or token == start
        if inside:
            positions.add(i)
        if token == end:
            inside = False
    return positions


# -- tool-use data ----------------------------------------------------------------------------


def test_tool_lines_are_exactly_the_calculator_format_and_values(world):
    assert tool_call_text(12345, "+", 6789) == \
        "12345+6789=<|calc_start|>12345+6789<|calc_end|><|result_start|>19134<|result_end|>"
    pattern = re.compile(r"(\d+)([+*-])(\d+)=<\|calc_start\|>(\1\2\3)<\|calc_end\|>"
                         r"<\|result_start\|>(-?\d+)<\|result_end\|>")
    docs = world.tool_documents(20, max_digits=5)
    assert len(docs) == 20 and all(doc.startswith("Calculator practice.\n") for doc in docs)
    lines = [line for doc in docs for line in doc.splitlines()[1:]]
    assert len(lines) == 20 * 5
    sizes = set()
    for line in lines:
        match = pattern.fullmatch(line)
        assert match, line
        a, op, b, expression, value = match.groups()
        # The result in the data is what the engine's calculator writes for the same call.
        assert value == calculator_result(expression) == str(eval(f"{a}{op}{b}"))  # noqa: S307 (test reference)
        assert not is_heldout_problem(int(a), op, int(b))  # evaluation problems never appear
        sizes |= {len(a), len(b)}
    assert sizes == {1, 2, 3, 4, 5}


def test_tool_prompt_is_the_start_of_a_tool_line(world):
    doc = world.tool_documents(1)[0]
    line = doc.splitlines()[1]
    a, op, b = re.match(r"(\d+)([+*-])(\d+)=", line).groups()
    assert (doc[: doc.index("<|calc_start|>")]).endswith(tool_prompt(int(a), op, int(b)).split("\n")[1])
    assert tool_prompt(int(a), op, int(b)).startswith("Calculator practice.\n")


def test_operand_problems_reject_bad_input(world):
    with pytest.raises(ValueError, match="ops='/'"):
        world.operand_problems(3, 2, ops="/")
    with pytest.raises(ValueError, match="max_digits=0"):
        world.operand_problems(3, 0)
    with pytest.raises(ValueError, match="op='/'"):
        tool_call_text(1, "/", 2)


def test_encoding_keeps_calculator_tokens_special(tokenizer, world):
    docs = world.tool_documents(3)
    tokens = encode_documents(docs, tokenizer)
    ids = tokens.tolist()
    assert tokens.dtype == np.uint16
    assert ids.count(tokenizer.special_id(ENDOFTEXT)) == 3
    for special in SPECIALS:
        assert ids.count(tokenizer.special_id(special)) == 15  # one per line, 5 lines per document
    assert tokenizer.decode(ids).replace(ENDOFTEXT, "") == "".join(docs)


# -- the loss mask ----------------------------------------------------------------------------


def test_mask_covers_exactly_the_tool_results_in_every_window(tokenizer, world):
    ids = encode_documents(world.tool_documents(4), tokenizer).astype(np.int64)
    truth = result_positions(ids.tolist(), tokenizer)
    assert truth  # there are results to mask
    results = re.findall(r"<\|result_start\|>(\d+)<\|result_end\|>", "".join(world.tool_documents(4)))
    longest = max(len(r) for r in results)
    assert longest + 2 < 16  # a window is longer than any result: the mask can see where it is
    for seq_len in (16, 33, 64):
        starts = range(0, len(ids) - seq_len - 1)
        windows = np.stack([ids[s : s + seq_len + 1] for s in starts])
        targets = torch.from_numpy(windows[:, 1:])
        masked = mask_tool_results(targets, tokenizer.special_id(RESULT_START), tokenizer.special_id(RESULT_END))
        for row, s in enumerate(starts):
            expected = [(s + 1 + t) in truth for t in range(seq_len)]
            assert (masked[row] == -1).tolist() == expected, (seq_len, s)
            keep = masked[row] != -1
            assert torch.equal(masked[row][keep], targets[row][keep])


def test_mask_of_text_without_results_is_a_no_op():
    targets = torch.randint(0, 50, (4, 16))
    assert torch.equal(mask_tool_results(targets, 60, 61), targets)
    with pytest.raises(ValueError, match="targets must be"):
        mask_tool_results(targets[0], 60, 61)


def test_masked_model_loss_ignores_results_only(tokenizer, world):
    torch.manual_seed(0)
    plain = GPT(GPTConfig.modern(vocab_size=tokenizer.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=32))
    masked_model = ToolMaskedGPT.from_model(plain, tokenizer)
    ids = torch.from_numpy(encode_documents(world.tool_documents(2), tokenizer)[:65].astype(np.int64))
    x, y = ids[:-1].reshape(2, 32), ids[1:].reshape(2, 32)
    manual = y.clone()
    truth = result_positions(ids.tolist(), tokenizer)
    for i in range(64):
        if i + 1 in truth:
            manual.view(-1)[i] = -1
    _, masked_loss = masked_model(x, y)
    _, reference = plain(x, manual)
    _, unmasked = plain(x, y)
    assert masked_loss.item() == pytest.approx(reference.item(), abs=1e-6)
    assert abs(masked_loss.item() - unmasked.item()) > 1e-3
    assert masked_model.state_dict().keys() == plain.state_dict().keys()
    logits, loss = masked_model(x)  # generation path: no targets, same logits as the plain model
    assert loss is None and torch.allclose(logits, plain(x)[0])


# -- the mixes and the tool probe ---------------------------------------------------------------


def test_mixture_follows_the_weights(tokenizer, world):
    pool = {"tool_arithmetic": world.tool_documents(40), "biographies": world.biographies()}
    tokens, stats = mixture_tokens(pool, {"tool_arithmetic": 0.75, "biographies": 0.25}, 20_000, tokenizer)
    assert stats["tool_arithmetic"]["weight"] == 0.75
    share = stats["tool_arithmetic"]["chars"] / (stats["tool_arithmetic"]["chars"] + stats["biographies"]["chars"])
    assert 0.7 < share < 0.8
    assert int((tokens == tokenizer.special_id(CALC_START)).sum()) > 0
    assert sum(stats[s]["tokens"] for s in stats) == len(tokens)
    assert int((tokens == tokenizer.special_id(ENDOFTEXT)).sum()) == sum(stats[s]["documents"] for s in stats)


def test_tool_probe_scores_the_calculators_result(monkeypatch, world, tokenizer):
    items = world.arithmetic_items(3, op="+", digits=4)
    call = "<|calc_start|>{}+{}<|calc_end|><|result_start|>{}<|result_end|>"
    texts = [call.format(items[0].meta["a"], items[0].meta["b"], items[0].answer),  # right call
             call.format(items[1].meta["a"], items[1].meta["b"] + 1, int(items[1].answer) + 1),  # wrong call
             items[2].answer]  # the right number, but without the tool: not a tool answer
    seen = {}

    def fake_complete(model, tok, prompts, **kwargs):
        seen.update(prompts=prompts, **kwargs)
        return texts

    monkeypatch.setattr("minilm.inference.generate.complete", fake_complete)
    result = probe_tool_arithmetic(None, tokenizer, world, n=3, op="+", digits=4)
    assert result["accuracy"] == pytest.approx(1 / 3) and result["called"] == pytest.approx(2 / 3)
    assert seen["tools"] is True and seen["stop"] == "\n"
    assert seen["prompts"][0] == tool_prompt(items[0].meta["a"], "+", items[0].meta["b"])


def test_tool_probe_runs_the_engine_with_the_tool(world, tokenizer):
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=tokenizer.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=64))
    result = probe_tool_arithmetic(model, tokenizer, world, n=4, op="-", digits=3)
    assert result["n"] == 4 and 0 <= result["accuracy"] <= result["called"] <= 1


def test_midtrain_config_is_validated():
    with pytest.raises(ConfigError, match="warmup_steps=10 is out of range"):
        MidtrainConfig(steps=10, warmup_steps=10)
    with pytest.raises(ConfigError, match="mixture weights sum to 0"):
        MidtrainConfig(mixture=(("biographies", 0.0),))
    with pytest.raises(ConfigError, match="tool_digits=1"):
        MidtrainConfig(tool_digits=(1, 3))
    with pytest.raises(ConfigError, match="grow_width=100 must be a multiple of 64"):
        MidtrainConfig(grow_width=100)
    with pytest.raises(ConfigError, match="tool_share=1.0 is out of range"):
        MidtrainConfig(tool_share=1.0)
    with pytest.raises(ConfigError, match="optimizer='sgd'"):
        MidtrainConfig(optimizer="sgd")
    config = MidtrainConfig(tool_share=0.4)
    assert sum(config.weights().values()) == pytest.approx(1.0)
    base_mix = config.weights({"shakespeare": 1.0, "arithmetic": 3.0})
    assert base_mix == pytest.approx({"shakespeare": 0.15, "arithmetic": 0.45, "tool_arithmetic": 0.4})
    assert "tool_arithmetic" not in MidtrainConfig(tool_share=0.0).weights()


def test_both_runs_train_with_the_configured_optimizer():
    from minilm.stages.midtrain import train_config

    budget = get_budget("smoke")
    muon = train_config(budget)
    assert (muon.optimizer, muon.muon_lr) == ("muon", budget.midtrain.muon_lr)
    adamw = train_config(budget.with_overrides(midtrain=replace(budget.midtrain, optimizer="adamw")))
    assert adamw.optimizer == "adamw" and (adamw.lr, adamw.steps) == (muon.lr, muon.steps)


# -- the artifact (built once: tests/conftest.py, tiny_midtrain_budget and midtrained) ----------


def test_midtrain_artifact_holds_model_and_summary(midtrained, tiny_midtrain_budget, monkeypatch):
    runs, model, tokenizer, summary = midtrained
    mid = tiny_midtrain_budget.midtrain
    monkeypatch.setenv("MINILM_RUNS", str(runs))
    path = midtrain_model_path(tiny_midtrain_budget)
    assert path.exists() and path.with_suffix(".json").exists() and path.is_relative_to(runs)
    assert not list(path.parent.glob("*.partial.*"))  # the run's checkpoint is gone
    assert type(model) is GPT and model.config.vocab_size == tokenizer.vocab_size
    # The context is extended from pretraining's 64 tokens to 128, by Position Interpolation.
    assert (model.config.block_size, model.config.rope_scaling) == (128, 2.0)
    assert set(summary["runs"]) == {"anneal"} and summary["budget"] == "smoke"
    record = summary["runs"]["anneal"]
    assert record["history"][-1]["step"] == mid.steps and record["history"][-1]["lr"] == 0.0  # decayed to zero
    assert record["val_bpb"] > 0 and set(record["probes"]) == {"facts_seen", "addition_2digit",
                                                               "subtraction_2digit", "addition_3digit"}
    assert set(summary["mixture"]) == {s for s, _ in mid.mixture} | {"tool_arithmetic"}
    assert summary["mixture"]["tool_arithmetic"]["weight"] == mid.tool_share
    assert [(row["op"], row["digits"]) for row in summary["tools"]] == [("+", 3), ("-", 3)]
    assert len(comparison_rows(summary)) == 2 + 4 and len(tool_rows(summary)) == 2
    # The artifact is the run's final model: its validation loss (pretraining's windows) is the summary's.
    from minilm.stages.pretrain import load_tokens
    from minilm.models.train import evaluate, token_byte_lengths

    _, val, _ = load_tokens(tiny_midtrain_budget, progress=False)
    again = evaluate(model, val, 64, 64, 10**9, token_byte_lengths(tokenizer))
    assert again["loss"] == pytest.approx(record["val_loss"], abs=1e-5)


def test_the_summary_measures_the_longer_context(midtrained):
    from minilm.stages.midtrain import RECALL_GAPS, context_columns, context_rows

    *_, summary = midtrained
    c = summary["context"]
    assert (c["trained"], c["extended"], c["method"]) == (64, 128, "interpolate")
    assert len(c["base_window"]["loss_by_position"]) == 64 and "late_window_loss" not in c["base_window"]
    for model in ("base", "midtrained"):
        assert len(c[model]["loss_by_position"]) == 128 and all(x > 0 for x in c[model]["loss_by_position"])
        assert len(c[model]["late_window_loss"]) > 0
    for model in ("base_window", "base", "midtrained"):
        assert list(c[model]["recall"]) == [str(g) for g in RECALL_GAPS]
        distances = [c[model]["recall"][str(g)]["distance"] for g in RECALL_GAPS]
        assert distances == sorted(distances)  # farther needles
    rows = context_rows(summary)
    assert len(rows) == len(RECALL_GAPS) + 2 and all(len(r) == len(context_columns(summary)) for r in rows)
    assert rows[-1][1] == "-"  # the base model at its own window has no positions past it


def test_midtrain_artifact_loads_without_training(midtrained, tiny_midtrain_budget, monkeypatch):
    runs, model, _, summary = midtrained
    monkeypatch.setenv("MINILM_RUNS", str(runs))

    def must_not_train(*args, **kwargs):
        raise AssertionError("the artifact exists: it must be loaded, not trained again")

    monkeypatch.setattr(midtrain_module, "midtrain", must_not_train)
    again, _, summary_again = midtrain_artifact(tiny_midtrain_budget, progress=False)
    assert again.config == model.config
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert summary_again == json.loads(json.dumps(summary, default=float))


def test_an_interrupted_build_resumes(midtrained, tiny_midtrain_budget, monkeypatch):
    runs, *_ = midtrained
    monkeypatch.setenv("MINILM_RUNS", str(runs))
    budget = tiny_midtrain_budget.with_overrides(midtrain=replace(tiny_midtrain_budget.midtrain, steps=8))
    real_train, calls = midtrain_module.train, []

    def interrupted(*args, **kwargs):
        calls.append(kwargs["checkpoint"])
        real_train(*args, **{**kwargs, "stop_at": 4})  # stops half-way, as if the machine went down
        raise KeyboardInterrupt

    monkeypatch.setattr(midtrain_module, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        midtrain_artifact(budget, progress=False)
    path = midtrain_model_path(budget)
    assert not path.exists() and len(list(path.parent.glob(f"{path.stem}.*.partial.pt"))) == 1
    steps_run = []

    def counting(*args, **kwargs):
        result = real_train(*args, **kwargs)
        steps_run.append(result.history[-1]["step"] - result.start_step)
        # The result is still the whole run's (the checkpoint's tokens count), in rows of the long context.
        assert result.tokens == 8 * budget.midtrain.batch_size * budget.midtrain.context
        return result

    monkeypatch.setattr(midtrain_module, "train", counting)
    _, _, summary = midtrain_artifact(budget, progress=False)
    assert steps_run == [4]  # carried on from step 4
    assert [h["step"] for h in summary["runs"]["anneal"]["history"] if "val_loss" in h] == [3, 6, 8]


def test_a_context_too_short_for_tool_results_is_refused(tiny_midtrain_budget):
    budget = tiny_midtrain_budget.with_overrides(
        pretrain=replace(tiny_midtrain_budget.pretrain, seq_len=8),
        midtrain=replace(tiny_midtrain_budget.midtrain, context=0, tool_max_digits=5))
    with pytest.raises(ConfigError, match="a context of 8 is too short for tool results of up to 12 tokens"):
        midtrain_module.midtrain(budget, progress=False)


def test_the_key_follows_midtraining_but_not_the_studies(tiny_midtrain_budget):
    tiny_budget, mid = tiny_midtrain_budget, tiny_midtrain_budget.midtrain
    path = midtrain_model_path(tiny_budget)
    assert path != midtrain_model_path(tiny_budget.with_overrides(midtrain=replace(mid, lr=1e-3)))
    assert path != midtrain_model_path(tiny_budget.with_overrides(midtrain=replace(mid, optimizer="adamw")))
    assert path != midtrain_model_path(tiny_budget.with_overrides(midtrain=replace(mid, context=256)))
    assert path != midtrain_model_path(tiny_budget.with_overrides(midtrain=replace(mid, context_method="base")))
    assert path == midtrain_model_path(tiny_budget.with_overrides(midtrain=replace(mid, grow_steps=99)))
    assert path == midtrain_model_path(tiny_budget.with_overrides(midtrain=replace(mid, extension_steps=99)))
    other_base = tiny_budget.with_overrides(pretrain=replace(tiny_budget.pretrain, steps=5))
    assert base_model_path(other_base) != base_model_path(tiny_budget)
    assert path != midtrain_model_path(other_base)
