"""Chapter 07's context-extension study: every method trained alike from the base model, measured
before and after, cached."""

import pytest

from minilm.models.gpt import CONTEXT_METHODS
from minilm.studies import context_extension


@pytest.fixture(scope="module")
def study(midtrained, tiny_midtrain_budget):
    runs, *_ = midtrained
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINILM_RUNS", str(runs))
        yield context_extension.artifact(tiny_midtrain_budget, progress=False)


def test_every_method_is_trained_alike_and_measured_before_and_after(study, tiny_midtrain_budget):
    mid = tiny_midtrain_budget.midtrain
    assert (study["context"], study["trained"], study["steps"]) == (128, 64, mid.extension_steps)
    assert list(study["methods"]) == list(CONTEXT_METHODS)
    for method, record in study["methods"].items():
        assert record["name"] == CONTEXT_METHODS[method]
        for when in ("before", "after"):
            assert len(record[when]["loss_by_position"]) == 128 and len(record[when]["late_window_loss"]) > 0
            assert all(probe["n"] == mid.probe_n for probe in record[when]["recall"].values())
        assert record["after"]["loss_by_position"] != record["before"]["loss_by_position"]  # it trained
    # Before training, plain extrapolation is the base model itself on its own window's positions.
    base_window = study["methods"]["extrapolate"]["before"]["loss_by_position"][:64]
    interpolated = study["methods"]["interpolate"]["before"]["loss_by_position"][:64]
    assert base_window != interpolated


def test_the_study_is_cached_and_keyed(study, midtrained, tiny_midtrain_budget, monkeypatch):
    from dataclasses import replace

    runs, *_ = midtrained
    monkeypatch.setenv("MINILM_RUNS", str(runs))
    monkeypatch.setattr(context_extension, "extension_study", lambda *a, **k: pytest.fail("must load the cache"))
    assert context_extension.artifact(tiny_midtrain_budget, progress=False) == study
    mid = tiny_midtrain_budget.midtrain
    path = context_extension.path(tiny_midtrain_budget)
    assert path != context_extension.path(tiny_midtrain_budget.with_overrides(midtrain=replace(mid, extension_steps=9)))
    assert path != context_extension.path(tiny_midtrain_budget.with_overrides(midtrain=replace(mid, context=256)))
    assert path == context_extension.path(tiny_midtrain_budget.with_overrides(midtrain=replace(mid, grow_steps=9)))
