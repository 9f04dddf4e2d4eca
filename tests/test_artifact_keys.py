"""Artifact names are content keys: they change when a stage's settings or version change, never
because code moved. Moving code (a refactor of the package layout) must leave every artifact a
student has built loadable, with no retraining; this test fails if a move changes a key. When a
stage's settings or version change on purpose, update its names here in the same commit."""

import pytest

from minilm.stages import midtrain, pretrain, sft, tokenizer as tokenizer_stage
from minilm.studies import sft_ablations
from minilm.core.config import BUDGETS
from minilm.stages.data import data_key

# Recorded on 2026-12-07 at commit 81f2812, before the package layout changes (issue 22).
KEYS = {
    "smoke": {"tokenizer": "tokenizer-1024-082f7cc491.json", "data": "c4f6bdbf7f8c", "base": "base-682ce9032d.pt",
              "midtrain": "midtrain-a22e6b5b64.pt", "sft": "sft-e8346f84c4.pt",
              "sft_ablations": "sft-ablations-44677a7be0.json"},
    "laptop": {"tokenizer": "tokenizer-4096-51e5695704.json", "data": "c551235d7bc8", "base": "base-1d42e8d6b3.pt",
               "midtrain": "midtrain-28e6adb962.pt", "sft": "sft-fa77de8206.pt",
               "sft_ablations": "sft-ablations-35f288127f.json"},
    "gpu": {"tokenizer": "tokenizer-8192-3979653eb3.json", "data": "f8661cb10cdb", "base": "base-641a894474.pt",
            "midtrain": "midtrain-44662c089a.pt", "sft": "sft-b6ffb3ebc0.pt",
            "sft_ablations": "sft-ablations-2a81d00bd4.json"},
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
