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
from minilm.core.config import DataConfig, MidtrainConfig, PretrainConfig, TokenizerConfig, WorldConfig, get_budget
from minilm.inference.generate import calculator_result
from minilm.stages.midtrain import (PROBE_NAMES, RUNS, ToolMaskedGPT, comparison_rows, encode_documents,
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


# -- the artifact -----------------------------------------------------------------------------

TINY_MID = MidtrainConfig(steps=6, batch_size=4, warmup_steps=1, curated_docs=10, tool_docs=10, eval_every=3,
                          probe_n=3, tool_digits=(3,), grow_steps=2)


@pytest.fixture(scope="module")
def tiny_budget():
    return get_budget("smoke").with_overrides(
        corpus_chars=40_000, tokenizer=TokenizerConfig(vocab_size=400),
        world=WorldConfig(people=8, heldout_people=4, bios_per_person=2, arithmetic_docs=20, countdown_docs=4,
                          spelling_docs=4),
        data=DataConfig(total_chars=60_000, shard_tokens=50_000),
        pretrain=PretrainConfig(depth=1, steps=4, batch_size=4, seq_len=64, warmup_steps=1, eval_every=4,
                                sample_every=0),
        midtrain=TINY_MID)


@pytest.fixture(scope="module")
def built(tiny_budget, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        runs = tmp_path_factory.mktemp("runs")
        patch.setenv("MINILM_RUNS", str(runs))
        model, tokenizer, summary = midtrain_artifact(tiny_budget, progress=False)
        yield runs, model, tokenizer, summary


def test_midtrain_artifact_holds_model_and_summary(built, tiny_budget, monkeypatch):
    runs, model, tokenizer, summary = built
    monkeypatch.setenv("MINILM_RUNS", str(runs))
    path = midtrain_model_path(tiny_budget)
    assert path.exists() and path.with_suffix(".json").exists() and path.is_relative_to(runs)
    assert not list(path.parent.glob("*.partial.*"))  # checkpoints of the runs are gone
    assert type(model) is GPT and model.config.vocab_size == tokenizer.vocab_size
    assert set(summary["runs"]) == set(RUNS) and summary["budget"] == "smoke"
    for run in RUNS:
        record = summary["runs"][run]
        assert record["history"][-1]["step"] == TINY_MID.steps and record["history"][-1]["lr"] == 0.0  # decayed to zero
        assert record["val_bpb"] > 0 and set(record["probes"]) == {"facts_seen", "addition_2digit",
                                                                   "subtraction_2digit", "addition_3digit"}
    # Both mixes give the same share to calculator calls; the rest is the annealing mix or the pretraining mix.
    assert set(summary["mixtures"]["anneal"]) == {s for s, _ in TINY_MID.mixture} | {"tool_arithmetic"}
    assert set(summary["mixtures"]["continue"]) == set(tiny_budget.data.weights()) | {"tool_arithmetic"}
    for run in RUNS:
        assert summary["mixtures"][run]["tool_arithmetic"]["weight"] == TINY_MID.tool_share
    assert [(row["op"], row["digits"]) for row in summary["tools"]] == [("+", 3), ("-", 3)]
    assert len(comparison_rows(summary)) == 2 + 4 and len(tool_rows(summary)) == 2
    # The artifact is the annealed run's final model: its validation loss is the summary's.
    from minilm.stages.pretrain import load_tokens
    from minilm.models.train import evaluate, token_byte_lengths

    _, val, _ = load_tokens(tiny_budget, progress=False)
    again = evaluate(model, val, 64, 64, 10**9, token_byte_lengths(tokenizer))
    assert again["loss"] == pytest.approx(summary["runs"]["anneal"]["val_loss"], abs=1e-5)
    # Annealed minus continued, item by item: the probes' questions and the validation windows.
    comparison = summary["comparison"]
    assert set(comparison) == set(summary["runs"]["anneal"]["probes"]) | {"val_loss", "val_bpb"}
    for key, probe in summary["runs"]["anneal"]["probes"].items():
        other = summary["runs"]["continue"]["probes"][key]
        assert len(probe["right"]) == probe["n"] == comparison[key]["n"]
        assert comparison[key]["value"] == pytest.approx(probe["accuracy"] - other["accuracy"])
    for metric in ("loss", "bpb"):
        d = comparison[f"val_{metric}"]
        runs_ = summary["runs"]
        assert d["value"] == pytest.approx(runs_["anneal"][f"val_{metric}"] - runs_["continue"][f"val_{metric}"], abs=1e-5)
        assert d["low"] <= d["value"] <= d["high"] and d["verdict"] in ("higher", "lower", "within noise")


def test_the_comparison_figures_have_every_source_and_probe(built):
    import matplotlib.pyplot as plt

    from minilm.plots.midtrain import plot_anneal_sources, plot_comparison

    *_, summary = built
    sources = list(summary["runs"]["anneal"]["val_sources"])
    axes = plot_anneal_sources(summary)
    assert [ax.get_title() for ax in axes] == sources
    assert all(ax.get_xlabel() and ax.get_ylabel() == "bits per byte" and len(ax.lines) == 2 for ax in axes)
    ax = plot_comparison(summary["comparison"], PROBE_NAMES)
    assert ax.get_title() and "percentage points" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == [PROBE_NAMES[k] for k in summary["runs"]["anneal"]["probes"]]
    plt.close("all")


def test_midtrain_artifact_loads_without_training(built, tiny_budget, monkeypatch):
    runs, model, _, summary = built
    monkeypatch.setenv("MINILM_RUNS", str(runs))

    def must_not_train(*args, **kwargs):
        raise AssertionError("the artifact exists: it must be loaded, not trained again")

    monkeypatch.setattr(midtrain_module, "midtrain", must_not_train)
    again, _, summary_again = midtrain_artifact(tiny_budget, progress=False)
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert summary_again == json.loads(json.dumps(summary, default=float))


def test_an_interrupted_build_resumes(built, tiny_budget, monkeypatch):
    runs, *_ = built
    monkeypatch.setenv("MINILM_RUNS", str(runs))
    budget = tiny_budget.with_overrides(midtrain=replace(TINY_MID, steps=8))
    real_train, calls = midtrain_module.train, []

    def interrupted(*args, **kwargs):
        calls.append(kwargs["checkpoint"])
        if len(calls) == 2:  # the second run stops half-way, as if the machine went down
            real_train(*args, **{**kwargs, "stop_at": 4})
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(midtrain_module, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        midtrain_artifact(budget, progress=False)
    path = midtrain_model_path(budget)
    assert not path.exists() and len(list(path.parent.glob(f"{path.stem}.*.partial.pt"))) == 2
    steps_run = []

    def counting(*args, **kwargs):
        result = real_train(*args, **kwargs)
        steps_run.append(result.history[-1]["step"] - result.start_step)
        # The result is still the whole run's (the checkpoint's tokens count).
        assert result.tokens == 8 * budget.midtrain.batch_size * budget.pretrain.seq_len
        return result

    monkeypatch.setattr(midtrain_module, "train", counting)
    _, _, summary = midtrain_artifact(budget, progress=False)
    assert steps_run == [0, 4]  # the finished run is not trained again; the other carries on from step 4
    assert [h["step"] for h in summary["runs"]["anneal"]["history"] if "val_loss" in h] == [3, 6, 8]


def test_the_key_follows_midtraining_but_not_the_growing_experiment(tiny_budget):
    path = midtrain_model_path(tiny_budget)
    assert path != midtrain_model_path(tiny_budget.with_overrides(midtrain=replace(TINY_MID, lr=1e-3)))
    assert path != midtrain_model_path(tiny_budget.with_overrides(midtrain=replace(TINY_MID, optimizer="adamw")))
    assert path == midtrain_model_path(tiny_budget.with_overrides(midtrain=replace(TINY_MID, grow_steps=99)))
    other_base = tiny_budget.with_overrides(pretrain=replace(tiny_budget.pretrain, steps=5))
    assert base_model_path(other_base) != base_model_path(tiny_budget)
    assert path != midtrain_model_path(other_base)
