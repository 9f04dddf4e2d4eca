"""Pretraining stage: the base-model artifact is trained once, logs samples and probes, then loads."""

import json
from dataclasses import replace

import pytest
import torch

from minilm.stages import pretrain as pretrain_module
from minilm.stages.pretrain import artifact as base_model_artifact, path as base_model_path
from minilm.cli import main
from minilm.core.checks import ConfigError
from minilm.core.config import PretrainConfig, get_budget

TINY = PretrainConfig(depth=1, steps=6, batch_size=4, seq_len=32, warmup_steps=1, eval_every=3, sample_every=3)


@pytest.fixture
def budget():
    return get_budget("smoke").with_overrides(pretrain=TINY)


def test_base_model_is_trained_once_with_samples_and_probes(isolated_runs, budget, monkeypatch):
    model, tokenizer, summary = base_model_artifact(budget, progress=False)
    path = base_model_path(budget)
    assert path.exists() and path.with_suffix(".json").exists() and not path.with_suffix(".partial.pt").exists()
    assert model.config.n_layer == 1 and model.config.vocab_size == tokenizer.vocab_size
    sampled = [h for h in summary["history"] if "samples" in h]
    assert [h["step"] for h in sampled] == [3, 6] and len(sampled[0]["samples"]) == 3
    assert summary["tokens_seen"] == 6 * 4 * 32 and summary["val_bpb"] > 0
    for probe in ("facts_seen", "facts_heldout", "addition_2digit"):
        assert 0.0 <= summary["probes"][probe]["accuracy"] <= 1.0 and summary["probes"][probe]["n"] > 0

    def must_not_train(*args, **kwargs):
        raise AssertionError("the artifact exists: it must be loaded, not trained again")

    monkeypatch.setattr(pretrain_module, "pretrain", must_not_train)
    again, _, summary_again = base_model_artifact(budget, progress=False)
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert summary_again == json.loads(json.dumps(summary, default=float))


def test_the_key_follows_the_pretraining_config(budget):
    assert base_model_path(budget) != base_model_path(budget.with_overrides(pretrain=replace(TINY, steps=7)))
    assert base_model_path(budget) == base_model_path(get_budget("smoke").with_overrides(pretrain=TINY))


@pytest.mark.parametrize("field, value", [("depth", 0), ("seq_len", 2), ("lr", -1.0), ("schedule", "linear")])
def test_bad_pretrain_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        replace(TINY, **{field: value})


def test_cli_rejects_a_bad_depth_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--budget", "smoke", "pretrain", "--depth", "-2"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "depth=-2" in err and "Traceback" not in err


def test_torchrun_pretrain_splits_each_batch_and_trains_like_one_process(isolated_runs, torchrun):
    # `torchrun --nproc_per_node 2 -m minilm --budget smoke pretrain`, on 2 CPU processes (gloo):
    # each process takes half the rows of every batch, so the run is one process's run with two
    # micro-batches of half the rows, and process 0 alone writes the artifact and reports.
    from minilm.models.gpt import GPT
    from minilm.stages.pretrain import load_tokens, model_config, train_config
    from minilm.models.train import train

    launched = torchrun(2, "-m", "minilm", "--budget", "smoke", "pretrain",
                        env={"MINILM_RUNS": str(isolated_runs), "OMP_NUM_THREADS": "1"}, timeout=600)
    assert launched.returncode == 0, launched.stderr[-2000:]
    assert launched.stdout.count("facts of seen people") == 1
    budget = get_budget("smoke")
    summary = json.loads(base_model_path(budget).with_suffix(".json").read_text())
    assert summary["processes"] == 2 and summary["tokens_seen"] == budget.pretrain.steps * budget.pretrain.batch_size * budget.pretrain.seq_len

    train_tokens, _, tokenizer = load_tokens(budget, progress=False)
    torch.manual_seed(0)
    single = GPT(model_config(budget, tokenizer.vocab_size))
    cfg = replace(train_config(budget), batch_size=budget.pretrain.batch_size // 2, grad_accum=2, eval_every=0)
    expected = {r["step"]: r["loss"] for r in train(single, train_tokens, cfg, progress=False).history}
    launched_losses = {r["step"]: r["loss"] for r in summary["history"] if r["step"] in expected}
    assert len(launched_losses) >= 3
    assert all(abs(launched_losses[s] - expected[s]) < 1e-4 for s in launched_losses)
