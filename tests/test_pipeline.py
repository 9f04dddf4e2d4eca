"""The course pipeline at the smoke budget, and stage artifacts."""

import json

import pytest

from minilm.stages.tokenizer import artifact as tokenizer_artifact, path as tokenizer_path
from minilm.core.config import get_budget
from minilm.pipeline import HEADLINES, results_markdown, run_pipeline
from minilm.text.tokenizer import Tokenizer
from minilm.models.train import TrainConfig


def test_pipeline_writes_report_metrics_and_figure(isolated_runs, tmp_path):
    report = run_pipeline(get_budget("smoke"), tmp_path / "run")
    text = report.read_text()
    assert "## Corpus" in text and "## Tokenizer" in text and "## Time per stage" in text
    figure = tmp_path / "run" / "figures" / "bytes_per_token.png"
    assert figure.stat().st_size > 10_000 and figure.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert all(f.suffix == ".png" for f in figure.parent.iterdir())  # each written whole: no temp file left
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["tokenizer"]["vocab_size"] == get_budget("smoke").tokenizer.vocab_size
    # our Shakespeare-trained tokenizer compresses held-out plays, and GPT-4's was measured on them too
    assert 2.0 < metrics["tokenizer"]["val_bytes_per_token"]
    assert metrics["tokenizer"]["val_bytes_per_token_GPT-4 (cl100k_base)"] > 3.0
    assert metrics["corpus"]["val_documents"] > 0
    # the README's headline table reads every figure it names from a whole run's metrics
    table = results_markdown(metrics).splitlines()
    assert len(table) == 4 + len(HEADLINES) and "| pretrain | validation bits per byte (the mixture as trained) |" in "\n".join(table)


def test_artifact_is_built_once_then_loaded(isolated_runs):
    budget = get_budget("smoke").with_overrides(corpus_chars=20_000)
    first = tokenizer_artifact(budget, progress=False)
    path = tokenizer_path(budget)
    assert path.exists() and path.is_relative_to(isolated_runs)
    mtime = path.stat().st_mtime_ns
    second = tokenizer_artifact(budget, progress=False)
    assert path.stat().st_mtime_ns == mtime and second.ranks == first.ranks
    assert isinstance(second, Tokenizer)


def test_artifact_key_changes_with_config():
    smoke = get_budget("smoke")
    assert tokenizer_path(smoke) != tokenizer_path(smoke.with_overrides(corpus_chars=1000))


def test_readme_results_table_comes_from_the_run(isolated_runs, tmp_path):
    from minilm.pipeline import README_END, README_START, update_readme

    report = run_pipeline(get_budget("smoke"), tmp_path / "run", stages=["corpus", "tokenizer", "data"])
    metrics = json.loads((report.parent / "metrics.json").read_text())
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n{README_START}\nold\n{README_END}\nafter\n")
    update_readme(readme, metrics)
    text = readme.read_text()
    assert "old" not in text and text.endswith("after\n") and "**smoke** budget" in text
    assert f"| data | training tokens | {metrics['data']['train_tokens']:,} |" in text
    tokenizer = metrics["tokenizer"]
    assert (f"| tokenizer | bytes per token, held-out plays: ours / GPT-4 | {tokenizer['val_bytes_per_token']} / "
            f"{tokenizer['val_bytes_per_token_GPT-4 (cl100k_base)']} |") in text
    assert "| pretrain |" not in text  # a stage the run did not have has no row
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="no <!-- results:start -->"):
        update_readme(readme, metrics)


def test_midtrain_stage_reports_the_context_annealing_and_tool_use(tmp_path, monkeypatch, midtrained):
    import minilm.stages.midtrain
    import minilm.stages.pretrain
    from minilm.pipeline import Run, stage_midtrain

    *_, summary = midtrained
    history = summary["runs"]["anneal"]["history"]
    monkeypatch.setattr(minilm.stages.midtrain, "artifact", lambda budget: (None, None, summary))
    monkeypatch.setattr(minilm.stages.pretrain, "artifact", lambda budget: (None, None, {"history": history}))
    run = Run(tmp_path)
    figures = stage_midtrain(get_budget("smoke"), run)
    text = "\n".join(run.sections)
    record = summary["runs"]["anneal"]
    assert "## Mid-training" in text and "stretched from 64 to 128 tokens" in text
    assert f"| validation bits per byte | {summary['base']['val_bpb']:.3f} | {record['val_bpb']:.3f} |" in text
    assert "| recall, needle" in text and "| plays loss, positions 64-127 (nats) | - |" in text
    assert "| 3-digit subtraction |" in text
    for name in ("midtraining", "context", "tool_use"):
        assert (tmp_path / "figures" / f"{name}.png").exists()
    assert figures["val_bpb"] == round(record["val_bpb"], 3) and figures["context"] == 128
    assert figures["recall_128_after"] == summary["context"]["midtrained"]["recall"]["128"]["accuracy"]
    assert figures["3digit_addition_with_tool"] == summary["tools"][0]["with_tool"]


@pytest.mark.parametrize("damage, message", [
    (lambda state: {"format": state["format"], "version": state["version"]}, "without a model"),
    (lambda state: {**state, "model_config": {**state["model_config"], "n_experts": 8}},
     r"settings this minilm does not know \(n_experts\): written by a newer version"),
    (lambda state: {**state, "model": {k: v for k, v in state["model"].items() if k != "ln_f.weight"}},
     r"do not fit its model settings \(missing: ln_f.weight; unexpected: none\)"),
])
def test_load_model_names_what_is_wrong_with_a_checkpoint(tmp_path, damage, message):
    import torch

    from minilm.models.checkpoint import load_model
    from minilm.models.gpt import GPT, GPTConfig
    from minilm.models.checkpoint import CheckpointError, save_checkpoint

    path = save_checkpoint(tmp_path / "model.pt", GPT(GPTConfig.modern(vocab_size=300, block_size=8, n_layer=1,
                                                                         n_embd=16, n_head=2)),
                           None, 0, {}, [])
    assert load_model(path).config.n_embd == 16
    torch.save(damage(torch.load(path, weights_only=True)), path)
    with pytest.raises(CheckpointError, match=message) as err:
        load_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_finished_model_missing_its_summary_is_not_trained_again(isolated_runs):
    # The model is renamed into place, then its summary: a crash between the two, or a deleted summary,
    # must not send a finished (laptop: 20-minute) model back to step 0.
    import numpy as np

    import torch

    from minilm.stages.artifact import artifact_dir, trained_model_artifact
    from minilm.models.checkpoint import load_model
    from minilm.models.gpt import GPT, GPTConfig
    from minilm.models.train import train

    budget = get_budget("smoke").with_overrides(corpus_chars=20_000)
    path = artifact_dir(budget) / "base-test.pt"
    path.parent.mkdir(parents=True)
    starts = []

    def build(partial):
        model = GPT(GPTConfig.modern(vocab_size=32, block_size=16, n_layer=1, n_embd=32, n_head=2))
        cfg = TrainConfig(steps=6, batch_size=2, seq_len=16, eval_every=0)
        result = train(model, np.arange(400) % 32, cfg, checkpoint=partial, resume=True, progress=False)
        starts.append(result.start_step)
        return model, {"steps": cfg.steps}

    _, summary = trained_model_artifact(path, build)
    assert starts == [0] and summary == {"steps": 6}
    weights = load_model(path).state_dict()

    # A crash between the renames: the summary waits as .partial.json; its rename is finished.
    path.with_suffix(".json").replace(path.with_suffix(".partial.json"))
    trained_model_artifact(path, build)
    assert starts == [0] and path.with_suffix(".json").exists() and not path.with_suffix(".partial.json").exists()

    # A summary deleted by hand: the build resumes at the last step, trains nothing, writes it again.
    path.with_suffix(".json").unlink()
    _, summary = trained_model_artifact(path, build)
    assert starts == [0, 6] and summary == {"steps": 6} and not path.with_suffix(".partial.pt").exists()
    assert all(torch.equal(weights[k], v) for k, v in load_model(path).state_dict().items())

    # A damaged summary is named, with how to rebuild it.
    path.with_suffix(".json").write_text("[1, 2")
    with pytest.raises(ValueError, match=r"base-test.json: not a readable JSON file .*delete it to rebuild it"):
        trained_model_artifact(path, build)
