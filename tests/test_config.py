"""Budgets and config validation."""

from dataclasses import replace

import pytest

from minilm.core.checks import ConfigError, check_range
from minilm.core.config import BUDGETS, Budget, MidtrainConfig, TokenizerConfig, budget_name, get_budget, runs_dir


@pytest.mark.parametrize("env, expected", [
    ({}, "laptop"),
    ({"CI": "true"}, "smoke"),
    ({"MINILM_BUDGET": "gpu"}, "gpu"),
    ({"MINILM_BUDGET": "laptop", "CI": "true"}, "laptop"),  # an explicit budget beats CI
    ({"MINILM_BUDGET": " Smoke "}, "smoke"),
])
def test_budget_resolution(monkeypatch, env, expected):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("MINILM_BUDGET", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert budget_name() == expected
    assert get_budget().name == expected


def test_explicit_name_beats_environment(monkeypatch):
    monkeypatch.setenv("MINILM_BUDGET", "gpu")
    assert get_budget("smoke").name == "smoke"


def test_unknown_budget_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("MINILM_BUDGET", "huge")
    with pytest.raises(ConfigError) as err:
        get_budget()
    assert str(err.value) == "budget='huge' is not allowed: choose one of 'smoke', 'laptop', 'gpu'"


@pytest.mark.parametrize("kwargs, message", [
    ({"vocab_size": 100}, "vocab_size=100 is out of range: it must be between 257 and 65536"),
    ({"vocab_size": 70000}, "vocab_size=70000 is out of range"),
    ({"vocab_size": 1000.5}, "vocab_size=1000.5 is not an integer"),
    ({"vocab_size": True}, "vocab_size=True is not an integer"),
    ({"digit_group": 0}, "digit_group=0 is out of range: it must be between 1 and 3"),
    ({"digit_group": "3"}, "digit_group='3' is not an integer"),
])
def test_tokenizer_config_validation_names_the_field(kwargs, message):
    with pytest.raises(ConfigError) as err:
        TokenizerConfig(**kwargs)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_budgets_are_valid_and_ordered():
    assert list(BUDGETS) == ["smoke", "laptop", "gpu"]
    assert BUDGETS["smoke"].tokenizer.vocab_size < BUDGETS["laptop"].tokenizer.vocab_size
    assert BUDGETS["smoke"].corpus_chars > 0  # smoke uses a prefix of the corpus; laptop all of it


def test_with_overrides_validates():
    budget = get_budget("smoke")
    assert budget.with_overrides(corpus_chars=5).corpus_chars == 5
    with pytest.raises(ConfigError, match="not a budget field"):
        budget.with_overrides(epochs=3)
    with pytest.raises(ConfigError, match="corpus_chars=-1"):
        budget.with_overrides(corpus_chars=-1)
    with pytest.raises(ConfigError, match="vocab_sweep"):
        Budget(name="smoke", corpus_chars=0, vocab_sweep=())


def test_check_range_accepts_floats_for_float_ranges():
    check_range("lr", 3e-4, 0.0, 1.0)
    with pytest.raises(ConfigError, match="lr=2.0 is out of range"):
        check_range("lr", 2.0, 0.0, 1.0)


def test_runs_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MINILM_RUNS", str(tmp_path))
    assert runs_dir() == tmp_path


def test_midtrain_budgets_grow_and_keep_the_base_model_valid():
    smoke, laptop, gpu = (BUDGETS[n].midtrain for n in ("smoke", "laptop", "gpu"))
    assert smoke.steps < laptop.steps <= gpu.steps and smoke.probe_n < laptop.probe_n < gpu.probe_n
    for budget in BUDGETS.values():
        weights = budget.midtrain.weights()
        assert sum(weights.values()) == pytest.approx(1.0) and weights["tool_arithmetic"] == budget.midtrain.tool_share
        # Calculator results (up to 2 x tool_max_digits digits and two markers) fit in a training window.
        assert budget.pretrain.seq_len > 2 * budget.midtrain.tool_max_digits + 2
    with pytest.raises(ConfigError, match="tool_share"):
        get_budget("smoke").with_overrides(midtrain=replace(smoke, tool_share=-0.1))


def test_midtrain_settings_do_not_change_the_base_model_key():
    from minilm.stages.pretrain import path as base_model_path

    smoke = get_budget("smoke")
    changed = smoke.with_overrides(midtrain=replace(smoke.midtrain, steps=5, tool_share=0.1))
    assert base_model_path(changed) == base_model_path(smoke)


@pytest.mark.parametrize("name", list(BUDGETS))
def test_every_budget_has_enough_held_out_problems_for_its_tool_probes(name):
    from minilm.text.world import World

    budget = BUDGETS[name]
    world = World(budget.world)
    for op in "+-":
        for digits in budget.midtrain.tool_digits:
            assert len(world.arithmetic_items(budget.midtrain.probe_n, op=op, digits=digits)) == budget.midtrain.probe_n


def test_context_settings_name_the_models_methods_and_extend_every_budget():
    from minilm.models.gpt import CONTEXT_METHODS

    for method in CONTEXT_METHODS:  # every method the model layer has is a valid setting
        MidtrainConfig(context_method=method)
    with pytest.raises(ConfigError, match="context_method"):
        MidtrainConfig(context_method="yarn")
    for budget in BUDGETS.values():
        # Mid-training extends pretraining's window (at least 2x), with as many tokens per step or fewer.
        m, p = budget.midtrain, budget.pretrain
        assert m.context >= 2 * p.seq_len and m.batch_size * m.context <= p.batch_size * p.seq_len


@pytest.mark.parametrize("name", ["laptop", "gpu"])
def test_the_eval_asks_at_least_200_never_seen_questions(name):
    from minilm.evals.chat_eval import eval_cases
    from minilm.text.world import World

    budget = BUDGETS[name]
    cases = eval_cases(World(budget.world), budget.sft.eval_n)
    assert budget.sft.eval_n >= 200
    assert all(sum(c.category == k for c in cases) == budget.sft.eval_n for k in ("facts", "unknown"))
