"""Artifact names are content keys: they change when a stage's settings or version change, never
because code moved. Moving code (a refactor of the package layout) must leave every artifact a
student has built loadable, with no retraining; this test fails if a move changes a key. When a
stage's settings or version change on purpose, update its names here in the same commit."""

from pathlib import Path

import pytest

from minilm.stages import midtrain, pretrain, sft, tokenizer as tokenizer_stage
from minilm.studies import sft_ablations
from minilm.core.config import BUDGETS
from minilm.stages.data import data_key

DATA = Path(__file__).resolve().parent / "data"

# Recorded at commit 81f2812 (before issue 22's layout change, which left them alone), then changed on
# purpose by issue 23 (a validation split per source, the reworded biographies, the rebalanced mixture;
# then mid-training's version 2: per-item probe results and the runs' comparison with intervals) and by
# issue 24 (mid-training's version 3 at a longer context; the tokenizer and data keys hash the world as
# pretraining sees it, WorldConfig.pretraining_view, which left the laptop's unchanged).
KEYS = {
    "smoke": {"tokenizer": "tokenizer-1024-7d1b5a67f0.json", "data": "0200a8d77716", "base": "base-72f9857b78.pt",
              "midtrain": "midtrain-5904c772ad.pt", "sft": "sft-bcceb8449c.pt",
              "sft_ablations": "sft-ablations-db2525e167.json"},
    "laptop": {"tokenizer": "tokenizer-4096-27e21c5661.json", "data": "95f1dec4cb3d", "base": "base-cd0322b1b0.pt",
              "midtrain": "midtrain-0ba84ccf01.pt", "sft": "sft-5d566888d3.pt",
              "sft_ablations": "sft-ablations-6cad30c93d.json"},
    "gpu": {"tokenizer": "tokenizer-8192-3cac7d9aa6.json", "data": "7ed18db19e51", "base": "base-00e3065f1d.pt",
              "midtrain": "midtrain-e8f19d9068.pt", "sft": "sft-d6007a77ba.pt",
              "sft_ablations": "sft-ablations-7ff29a428d.json"},
}


@pytest.mark.parametrize("name", list(BUDGETS))
def test_artifact_names_are_the_recorded_keys(name):
    budget = BUDGETS[name]
    assert {
        "tokenizer": tokenizer_stage.path(budget).name,
        "data": data_key(budget),
        "base": pretrain.path(budget).name,
        "midtrain": midtrain.path(budget).name,
        "sft": sft.path(budget).name,
        "sft_ablations": sft_ablations.path(budget).name,
    } == KEYS[name]


def test_a_setting_changes_the_key():
    laptop = BUDGETS["laptop"]
    changed = laptop.with_overrides(corpus_chars=1000)
    assert tokenizer_stage.path(changed).name != KEYS["laptop"]["tokenizer"]
    assert sft.path(changed).name != KEYS["laptop"]["sft"]  # the lineage carries it down


def test_the_artifacts_are_looked_for_where_they_were(monkeypatch):
    # The package moved one folder deeper (minilm/core/config.py): the checkout's runs/ must still be found,
    # or every artifact a student built would seem gone and be trained again.
    from minilm.core.config import repo_root, runs_dir

    monkeypatch.delenv("MINILM_RUNS", raising=False)
    root = Path(__file__).resolve().parents[1]
    assert repo_root() == root and runs_dir() == root / "runs"


def test_files_written_by_the_flat_layout_load_the_same():
    # tests/data/flat-layout-*: a tokenizer and a tiny model's checkpoint written by the last flat release
    # (1b5ce7b, minilm.train.save_checkpoint and Tokenizer.save), with the figures it computed from them then.
    import torch

    from minilm.models.checkpoint import load_checkpoint, load_model
    from minilm.text.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(DATA / "flat-layout-tokenizer.json")
    ids = tokenizer.encode("ROMEO. But soft, what light")
    assert ids == [82, 79, 77, 69, 79, 46, 32, 66, 117, 116, 262, 111, 102, 116, 44, 263, 104, 97, 116, 278, 105, 103,
                   104, 116]
    model = load_model(DATA / "flat-layout-model.pt")
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids]))
    assert logits[0, -1, :4].tolist() == pytest.approx([-0.097065, -0.032015, -0.010321, -0.111265], abs=1e-6)
    assert float(logits.sum()) == pytest.approx(6.1081, abs=1e-3)
    state = load_checkpoint(DATA / "flat-layout-model.pt")
    assert state["step"] == 7 and state["train_config"]["steps"] == 7


def test_a_finished_artifact_of_the_flat_layout_is_loaded_not_trained(tmp_path):
    import json
    import shutil

    from minilm.stages.artifact import trained_model_artifact

    path = tmp_path / "base-0123456789.pt"
    shutil.copy(DATA / "flat-layout-model.pt", path)
    path.with_suffix(".json").write_text(json.dumps({"val_bpb": 2.5}))
    model, summary = trained_model_artifact(path, lambda partial: pytest.fail("a built artifact must not be trained"))
    assert summary == {"val_bpb": 2.5} and model.config.n_embd == 16
